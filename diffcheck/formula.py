"""A formula typed on the command line, as a case: `python -m diffcheck check "log(1 + exp(x))" --at x=0.3`.

The text is parsed by Python's `ast` module and every node is checked against an allowlist of
syntax — numbers, variable names, + − × ÷ **, unary ±, and calls of the functions in `FUNCTIONS` —
before anything is built from it. The text is never evaluated: one tree walker builds the JAX
function and the SymPy expression from the checked tree, each backend mapping the same names.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .errors import FormulaError, UsageError

#: Longest formula accepted, in characters.
MAX_LENGTH = 1000
#: Deepest nesting of operations and calls accepted.
MAX_DEPTH = 32
#: Largest |exponent| of a power with a constant exponent, by its value (9**9 is 387,420,489):
#: SymPy computes powers of numbers exactly, and `(x - x + 9)**(9**9)` folds to one.
MAX_CONSTANT_EXPONENT = 1024
#: Largest exact size, in bits, of a constant (about 39,000 digits): SymPy computes constants as
#: exact rationals, and ((1.0000001**1024)**1024)**1024 has some 33 billion digits.
MAX_CONSTANT_BITS = 2**17
#: Largest total power the variables are raised to ((x**1024)**1024 is x**1048576): SymPy folds
#: nested powers, and evaluates them exactly at the point.
MAX_DEGREE = 4096

_OPERATORS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
_UNARY = {ast.USub: "neg", ast.UAdd: "pos"}

#: The functions a formula may call, with their number of arguments and what each computes.
FUNCTIONS = {
    "exp": (1, "eˣ"),
    "expm1": (1, "eˣ − 1"),
    "log": (1, "natural logarithm"),
    "log1p": (1, "log(1 + x)"),
    "sqrt": (1, "square root"),
    "sin": (1, "sine"),
    "cos": (1, "cosine"),
    "tan": (1, "tangent"),
    "asin": (1, "inverse sine"),
    "acos": (1, "inverse cosine"),
    "atan": (1, "inverse tangent"),
    "sinh": (1, "hyperbolic sine"),
    "cosh": (1, "hyperbolic cosine"),
    "tanh": (1, "hyperbolic tangent"),
    "asinh": (1, "inverse hyperbolic sine"),
    "atanh": (1, "inverse hyperbolic tangent"),
    "sigmoid": (1, "1 / (1 + e⁻ˣ)"),
    "softplus": (1, "log(1 + eˣ)"),
    "log_sigmoid": (1, "log σ(x) = −softplus(−x)"),
    "silu": (1, "x σ(x)"),
    "relu": (1, "max(x, 0)"),
    "abs": (1, "|x|"),
    "erf": (1, "error function"),
    "erfc": (1, "1 − erf(x)"),
    "max": (2, "the larger of two"),
    "min": (2, "the smaller of two"),
}

#: Names that stand for numbers rather than variables.
CONSTANTS = {"pi": math.pi, "e": math.e}


@dataclass(frozen=True)
class Formula:
    """A checked formula: its text, its syntax tree, and its variables in order of appearance."""

    text: str
    tree: ast.expr
    variables: tuple

    def jax(self) -> Callable:
        """The formula as a JAX function of keyword arguments, one per variable."""
        backend = _jax_backend()
        return lambda **values: walk(self.tree, backend, values)

    def sympy(self):
        """The formula as a SymPy expression of real symbols named as the variables."""
        import sympy

        symbols = {name: sympy.Symbol(name, real=True) for name in self.variables}
        return walk(self.tree, _sympy_backend(), symbols)


def parse(text: str) -> Formula:
    """Checks `text` against the allowlist and returns the `Formula`; raises `FormulaError` saying
    what is not allowed and at which column."""
    if not isinstance(text, str):
        raise FormulaError(f"a formula is text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula has {len(text)} characters, over the limit of {MAX_LENGTH}")
    text = text.strip()
    if not text:
        raise FormulaError("the formula is empty")
    if "\n" in text or "\r" in text:
        raise FormulaError("the formula must be one line")
    bad = next((i for i, c in enumerate(text) if not c.isprintable()), None)
    if bad is not None:  # a NUL, a control character, a lone surrogate: never part of a formula
        raise FormulaError(f"the formula holds the unprintable character {ascii(text[bad])} at column {bad + 1}")
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        # offset 0 (or a later line): the formula ended before the expression did
        column = min(exc.offset, len(text) + 1) if exc.lineno == 1 and exc.offset else len(text) + 1
        raise FormulaError(f"not a formula: {exc.msg}", text, column) from None
    except (RecursionError, MemoryError):
        raise FormulaError(f"the formula nests too deeply (the limit is {MAX_DEPTH})") from None
    variables = {}
    _check(tree, text, 1, variables)
    return Formula(text, tree, tuple(variables))


class _Size(NamedTuple):
    """What `_check` knows of a checked subexpression: its value in floats when it is a constant
    (None otherwise), the size in bits of its exact value (SymPy computes constants as exact
    rationals), and the total power its variables are raised to (0 for a constant)."""

    value: float | None
    bits: int
    degree: int


def _check(node, text, depth, variables) -> _Size:
    """Refuses every node outside the allowlist, and every constant whose exact value would be
    too large for SymPy to compute quickly (bounded by value, not by the text)."""
    column = getattr(node, "col_offset", 0) + 1
    if depth > MAX_DEPTH:
        raise FormulaError(f"the formula nests deeper than {MAX_DEPTH} levels", text, column)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise FormulaError(f"{type(node.value).__name__} literals are not allowed; only numbers", text, column)
        value = _finite(float(node.value), text, column) if isinstance(node.value, float) else _int(node, text)
        return _Size(value, _exact_bits(node.value), 0)
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise FormulaError(f"{node.id} is a function: call it, as {node.id}(x)", text, column)
        if node.id in CONSTANTS:
            return _Size(CONSTANTS[node.id], _exact_bits(CONSTANTS[node.id]), 0)
        if node.id.startswith("_"):
            raise FormulaError(f"variable names may not start with '_': {node.id}", text, column)
        variables.setdefault(node.id, None)
        return _Size(None, 0, 1)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        size = _check(node.operand, text, depth + 1, variables)
        if size.value is None or isinstance(node.op, ast.UAdd):
            return size
        return size._replace(value=-size.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        a = _check(node.left, text, depth + 1, variables)
        b = _check(node.right, text, depth + 1, variables)
        power = isinstance(node.op, ast.Pow)
        if isinstance(node.op, ast.Div) and b.value == 0:
            raise FormulaError("division by zero in a constant", text, node.right.col_offset + 1)
        if power and b.value is not None and abs(b.value) > MAX_CONSTANT_EXPONENT:
            raise FormulaError(
                f"the constant exponent {_number(b.value)} is over the limit of {MAX_CONSTANT_EXPONENT}", text, column
            )
        if power:
            times = max(1.0, abs(b.value)) if b.value is not None else 1.0
            bits, degree = int(a.bits * times) + b.bits, int(a.degree * times) if b.value is not None else a.degree
        else:
            bits, degree = (
                a.bits + b.bits + 1,
                max(a.degree, b.degree) if type(node.op) in (ast.Add, ast.Sub) else a.degree + b.degree,
            )
        if bits > MAX_CONSTANT_BITS:
            segment = ast.get_source_segment(text, node) or "a constant"
            raise FormulaError(
                f"{segment} has an exact value of about {bits * 0.30103:,.0f} digits, which SymPy would "
                f"compute exactly; the limit is {MAX_CONSTANT_BITS * 0.30103:,.0f} digits",
                text,
                column,
            )
        if degree > MAX_DEGREE:
            raise FormulaError(
                f"the formula raises its variables to a total power of {degree:,}, over the limit of {MAX_DEGREE:,}",
                text,
                column,
            )
        if a.value is None or b.value is None:
            return _Size(None, bits if a.value is not None and b.value is not None else max(a.bits, b.bits), degree)
        try:
            value = _FLOAT_OPERATORS[type(node.op)](a.value, b.value)
        except ZeroDivisionError:
            raise FormulaError("division by zero in a constant", text, column) from None
        except OverflowError:
            value = math.inf
        if isinstance(value, complex):
            raise FormulaError("a negative number to a fractional power is not real", text, column)
        return _Size(_finite(value, text, column), bits, 0)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            _check(node.func, text, depth + 1, variables)  # refuses what is called, where it is
            raise FormulaError("only named functions may be called", text, column)
        name = node.func.id
        if name not in FUNCTIONS:
            raise FormulaError(f"unknown function {name!r}; valid functions: {_names()}", text, column)
        if node.keywords:
            raise FormulaError(f"{name}() takes no keyword arguments", text, node.keywords[0].value.col_offset + 1)
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise FormulaError(f"{name}() takes no *arguments", text, column)
        arity = FUNCTIONS[name][0]
        if len(node.args) != arity:
            raise FormulaError(f"{name}() takes {arity} argument(s), got {len(node.args)}", text, column)
        sizes = [_check(arg, text, depth + 1, variables) for arg in node.args]
        # A function of constants is left to the backends; sqrt and abs stay powers for SymPy.
        return _Size(None, max(s.bits for s in sizes), max(max(s.degree for s in sizes), 1))
    if isinstance(node, ast.Attribute):  # point at the attribute's name, not at what holds it
        column = node.end_col_offset - len(node.attr) + 1
        raise FormulaError(f"attribute access (.{node.attr}) is not allowed in a formula", text, column)
    raise FormulaError(f"{_describe(node)} is not allowed in a formula", text, column)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value.is_integer() and abs(value) < 1e18 else f"{value:g}"


def _exact_bits(value) -> int:
    """The size of a number as SymPy holds it exactly: an int's bits, a float's binary fraction's."""
    if isinstance(value, int):
        return max(value.bit_length(), 1)
    numerator, denominator = float(value).as_integer_ratio()
    return max(abs(numerator).bit_length(), 1) + denominator.bit_length()


_FLOAT_OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


def _int(node, text) -> float:
    try:
        return _finite(float(node.value), text, node.col_offset + 1)
    except OverflowError:
        raise FormulaError("the number is too large for float64", text, node.col_offset + 1) from None


def _finite(value: float, text, column) -> float:
    if not math.isfinite(value):
        raise FormulaError("the constant overflows float64", text, column)
    return value


_KINDS = {
    ast.Subscript: "subscripting ([…])",
    ast.Lambda: "lambda",
    ast.Compare: "a comparison",
    ast.BoolOp: "and/or",
    ast.IfExp: "if-else",
    ast.NamedExpr: "assignment (:=)",
    ast.JoinedStr: "an f-string",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.ListComp: "a comprehension",
    ast.GeneratorExp: "a generator",
    ast.Starred: "unpacking (*)",
    ast.Await: "await",
}


def _describe(node) -> str:
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__} ({_SYMBOLS.get(type(node.op), '?')})"
    if isinstance(node, ast.UnaryOp):
        return f"the operator {type(node.op).__name__} ({_SYMBOLS.get(type(node.op), '?')})"
    return _KINDS.get(type(node), type(node).__name__)


_SYMBOLS = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.Not: "not",
}


def _names() -> str:
    return ", ".join(FUNCTIONS)


# --- the walker and its two backends -----------------------------------------------------------


def walk(node, backend: Mapping, variables: Mapping):
    """The value of a checked tree: `backend` maps each operator and function name to what
    computes it (JAX or SymPy), `variables` each variable name to its value or symbol."""
    if isinstance(node, ast.Constant):
        return backend["number"](node.value)
    if isinstance(node, ast.Name):
        return backend["number"](CONSTANTS[node.id]) if node.id in CONSTANTS else variables[node.id]
    if isinstance(node, ast.UnaryOp):
        value = walk(node.operand, backend, variables)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        a, b = walk(node.left, backend, variables), walk(node.right, backend, variables)
        return backend[_OPERATORS[type(node.op)]](a, b)
    if isinstance(node, ast.Call):
        return backend[node.func.id](*(walk(a, backend, variables) for a in node.args))
    raise FormulaError(f"unchecked node {type(node).__name__}")  # parse() refuses it first


def _jax_backend() -> dict:
    import jax
    import jax.numpy as jnp
    import jax.scipy.special as special

    return {
        "number": float,
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "pow": lambda a, b: a**b,
        "exp": jnp.exp,
        "expm1": jnp.expm1,
        "log": jnp.log,
        "log1p": jnp.log1p,
        "sqrt": jnp.sqrt,
        "sin": jnp.sin,
        "cos": jnp.cos,
        "tan": jnp.tan,
        "asin": jnp.arcsin,
        "acos": jnp.arccos,
        "atan": jnp.arctan,
        "sinh": jnp.sinh,
        "cosh": jnp.cosh,
        "tanh": jnp.tanh,
        "asinh": jnp.arcsinh,
        "atanh": jnp.arctanh,
        "sigmoid": jax.nn.sigmoid,
        "softplus": jax.nn.softplus,
        "log_sigmoid": jax.nn.log_sigmoid,
        "silu": jax.nn.silu,
        "relu": jax.nn.relu,
        "abs": jnp.abs,
        "erf": special.erf,
        "erfc": special.erfc,
        "max": jnp.maximum,
        "min": jnp.minimum,
    }


def _sympy_backend() -> dict:
    import sympy

    from ._primitives import PRIMITIVES, Maximum, to_sympy

    # Operators and elementary functions mean here what the jaxpr translation says they mean.
    shared = {name: PRIMITIVES[name].translate for name in ("add", "sub", "mul", "div", "pow", "max", "min")}
    shared.update({name: PRIMITIVES[name].translate for name in _ELEMENTARY})
    sigmoid = PRIMITIVES["logistic"].translate

    def softplus(x):
        return sympy.log(1 + sympy.exp(x))

    exact_pow = shared["pow"]

    def power(a, b):
        # SymPy folds what the text cannot show ((x - x + 3)**1000 is 3**1000): bound it here too.
        if isinstance(a, sympy.Rational) and isinstance(b, sympy.Rational):
            bits = (abs(a.p).bit_length() + a.q.bit_length()) * max(1, abs(b))
            if bits > MAX_CONSTANT_BITS:
                raise FormulaError(
                    f"a power folds to the constant ({a})**({b}), whose exact value has about "
                    f"{float(bits) * 0.30103:,.0f} digits; the limit is {MAX_CONSTANT_BITS * 0.30103:,.0f} digits"
                )
        return exact_pow(a, b)

    shared["pow"] = power
    return {
        "number": to_sympy,  # floats as the binary rationals JAX computes with
        **shared,
        "sigmoid": sigmoid,
        "softplus": softplus,
        "log_sigmoid": lambda x: -softplus(-x),
        "silu": lambda x: x * sigmoid(x),
        "relu": lambda x: Maximum(x, 0),
    }


# Formula functions named as the JAX primitives they are.
_ELEMENTARY = (
    "exp",
    "expm1",
    "log",
    "log1p",
    "sqrt",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "atanh",
    "abs",
    "erf",
    "erfc",
)


# --- points and the case -----------------------------------------------------------------------


def parse_point(assignments, variables) -> dict:
    """`["x=0.3", "y=2"]` or `["x=0.3,y=2"]` → {"x": 0.3, "y": 2.0}; every variable needs a value."""
    point = {}
    for item in assignments:
        for part in item.split(","):
            name, sep, value = part.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name or not value:
                raise UsageError(f"--at expects NAME=NUMBER, got {part.strip()!r}")
            try:
                number = float(value)
            except ValueError:
                raise UsageError(f"--at {name}: expected a number, got {value!r}") from None
            if not math.isfinite(number):
                raise UsageError(f"--at {name}: the value must be finite, got {value}")
            if name in point:
                raise UsageError(f"--at gives {name} twice")
            point[name] = number
    missing = [v for v in variables if v not in point]
    if missing:
        raise UsageError(f"no value for {', '.join(missing)}: add --at {missing[0]}=NUMBER")
    stray = [n for n in point if n not in variables]
    if stray:
        known = ", ".join(variables) or "none"
        raise UsageError(f"--at names {', '.join(stray)}, not in the formula (its variables: {known})")
    return point


def check_wrt(formula: Formula, wrt) -> tuple:
    """The variables differentiated in (default: all of them), each a variable of the formula, once."""
    if not formula.variables:
        raise FormulaError("the formula has no variable to differentiate in")
    wrt = tuple(formula.variables if wrt is None else wrt)
    stray = [w for w in wrt if w not in formula.variables]
    if stray:
        raise UsageError(f"--wrt {', '.join(stray)}: not a variable of the formula ({', '.join(formula.variables)})")
    twice = sorted({w for w in wrt if wrt.count(w) > 1})
    if twice:
        raise UsageError(
            f"--wrt {', '.join(twice)} given twice; give each variable once ({', '.join(formula.variables)})"
        )
    return wrt


def case(text: str, at: Mapping[str, float], wrt=None, order: int = 1):
    """The `Case` that checks formula `text` at the point `at`, in `wrt` (default: every variable).

    The SymPy expression is the exact reference; the JAX function is autodiffed and finite-differenced.
    """
    from .case import Case

    formula = parse(text)
    wrt = check_wrt(formula, wrt)
    return Case.from_sympy(
        "formula",
        formula.sympy(),
        wrt=wrt,
        fn=formula.jax(),
        points={"at": dict(at)},
        orders=(order,),
        description=formula.text,
    )
