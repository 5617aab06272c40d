"""The exact method: a JAX program, traced to its jaxpr, rewritten primitive by primitive in SymPy.

Derivatives then come from SymPy's own calculus, never from JAX's derivative rules, so a wrong
`custom_jvp`/`custom_vjp` rule cannot leak into the reference: custom rules are inlined as their
*primal* program. Values are arrays: NumPy object arrays of SymPy expressions where they depend on
the differentiated parameters, plain NumPy arrays where they are constants (those are folded by
JAX itself, so iota, masks and integer index arithmetic need no translation).
"""

from __future__ import annotations

import contextvars
import math
import time
from dataclasses import dataclass, field

import jax
import jax.extend
import mpmath
import numpy as np
import sympy

from .errors import BudgetExceeded, Unavailable
from .exact import DIGITS

PREFIX = "p__"


#: Largest expression (distinct nodes) the symbolic method builds before giving up.
MAX_NODES = 500_000


class Budget:
    """A time and size limit for one symbolic check; exceeding it is `BudgetExceeded`."""

    def __init__(self, seconds: float | None = None, nodes: int | None = None):
        self.seconds = seconds
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.nodes = MAX_NODES if nodes is None else nodes

    def check(self):
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExceeded(f"timed out: the symbolic derivatives took over {self.seconds:g} s (--timeout)")

    def check_size(self, exprs, definitions=None):
        size = dag_size(exprs, self.nodes, definitions)
        if size > self.nodes:
            raise BudgetExceeded(f"too large: the expression has over {self.nodes:,} distinct nodes")


_BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("budget", default=None)
_LETS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("lets", default=None)


def dag_size(exprs, limit: int, definitions=None) -> int:
    """Distinct subexpressions, counted as a graph (shared nodes once), stopping past `limit`."""
    definitions = definitions or {}
    seen, stack = set(), [e for e in exprs if isinstance(e, sympy.Basic)]
    while stack and len(seen) <= limit:
        e = stack.pop()
        if e not in seen:
            seen.add(e)
            stack.extend((definitions[e],) if e in definitions else e.args)
    return len(seen)


def inline(exprs, definitions) -> list:
    """The expressions with every let-bound symbol replaced by its definition: whole trees, for
    the whole-expression route on small programs."""
    from .exact import topological

    full = {}
    for node in topological(exprs, definitions):
        if node in definitions:
            full[node] = definitions[node].xreplace(full)
    return [e.xreplace(full) if isinstance(e, sympy.Basic) else e for e in exprs]


class StopGradient(sympy.Function):
    """`lax.stop_gradient`: the identity in value, a constant for differentiation."""

    is_extended_real = True

    def fdiff(self, argindex=1):
        return sympy.S.Zero


class _Extremum(sympy.Function):
    """n-ary max or min, unsimplified: SymPy's Max/Min spend their time proving orderings we never
    need. d/da_i is the indicator that a_i is the extreme one, Heaviside(0) = 1/2 at a tie as in
    JAX's max and min."""

    is_extended_real = True  # of real arguments; without it SymPy wraps Abs(exp(·)) in re(·)
    direction = 1  # +1: maximum, −1: minimum

    @classmethod
    def eval(cls, *args):
        if len(args) == 1:
            return args[0]
        if all(a.is_number and a.is_extended_real for a in args):
            return (sympy.Max if cls.direction > 0 else sympy.Min)(*args)
        return None

    def fdiff(self, argindex=1):
        a = self.args[argindex - 1]
        others = [b for j, b in enumerate(self.args) if j != argindex - 1]
        return sympy.Mul(*[sympy.Heaviside(self.direction * (a - b)) for b in others])


class Maximum(_Extremum):
    """`lax.max` and `reduce_max`."""


class Minimum(_Extremum):
    """`lax.min` and `reduce_min`."""

    direction = -1


@dataclass(frozen=True)
class Translation:
    """A traced function as SymPy expressions of one real symbol per parameter element."""

    symbols: tuple  # per parameter leaf, an object array of Symbols of the leaf's shape
    outputs: tuple  # per output leaf, an object array of expressions of the output's shape
    # Let-bound symbols → their expressions, one per value the program computes: expressions stay
    # small (SymPy's automatic simplification never meets a whole network), the graph stays shared.
    definitions: dict = field(default_factory=dict)
    # The epsilon of the least precise float the program rounds to: a cast to float32 inside a
    # float64 program is the identity here, so values agree with JAX's only to that precision.
    eps: float = float(np.finfo(np.float64).eps)


def translate(fn, leaves, names, budget: Budget | None = None) -> Translation:
    """Traces `fn(*leaves)` and rewrites its jaxpr in SymPy. Raises `Unavailable` when it cannot."""
    leaves = [np.asarray(leaf, dtype=np.float64) for leaf in leaves]
    budget = budget or Budget()
    definitions = {}
    tokens = _BUDGET.set(budget), _LETS.set(definitions)
    try:
        symbols, outputs, eps = _translate(fn, leaves, names)
    finally:
        _BUDGET.reset(tokens[0])
        _LETS.reset(tokens[1])
    translation = Translation(symbols, outputs, definitions=definitions, eps=eps)
    budget.check_size([e for out in outputs for e in out.reshape(-1)], definitions)
    return translation


def _translate(fn, leaves, names):
    with jax.enable_x64(True):
        try:
            closed = jax.make_jaxpr(fn)(*leaves)
        except Exception as exc:  # any tracing failure is reported by the autodiff method too
            raise Unavailable(f"tracing failed: {type(exc).__name__}: {exc}") from None
        symbols = tuple(symbol_array(name, leaf.shape) for name, leaf in zip(names, leaves))
        outputs = evaluate_jaxpr(closed.jaxpr, closed.consts, symbols)
    eps = max([float(np.finfo(d).eps) for d in _float_casts(closed.jaxpr)] + [float(np.finfo(np.float64).eps)])
    return symbols, tuple(_as_objects(np.asarray(out)) for out in outputs), eps


def _float_casts(jaxpr):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "convert_element_type" and jax.numpy.issubdtype(eqn.params["new_dtype"], np.floating):
            yield eqn.params["new_dtype"]
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from _float_casts(sub)


def from_expression(expr, symbols) -> Translation:
    """A case written as a SymPy expression of scalar symbols is its own translation."""
    return Translation(tuple(np.array(s, dtype=object) for s in symbols), (np.array(expr, dtype=object),))


def symbol_array(name: str, shape: tuple) -> np.ndarray:
    """One real symbol per element, named after the parameter and the element's index.

    The prefix keeps names apart from the functions lambdify's namespace holds (exp, e, pi, …).
    """
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        suffix = "".join(f"_{i}" for i in index)
        out[index] = sympy.Symbol(f"{PREFIX}{name}{suffix}", real=True)
    return out


def jacobian(outputs, symbols, budget: Budget | None = None) -> np.ndarray:
    """d output_m / d symbol_n as an object matrix, SymPy differentiating each expression."""
    budget = budget or Budget()
    outs = [e for out in outputs for e in out.reshape(-1)]
    syms = [s for sym in symbols for s in sym.reshape(-1)]
    jac = np.empty((len(outs), len(syms)), dtype=object)
    for m, expr in enumerate(outs):
        free = expr.free_symbols
        for n, s in enumerate(syms):
            budget.check()
            jac[m, n] = sympy.diff(expr, s) if s in free else sympy.S.Zero
    budget.check_size(jac.reshape(-1))
    return jac


def kink_arguments(exprs, definitions=None) -> list:
    """Expressions whose sign change is a kink or a jump of the function: the arguments of Abs,
    sign and Heaviside, the pairwise differences inside max/min, and lhs − rhs of every comparison
    (the conditions of Piecewise and select_n)."""
    definitions = definitions or {}
    found, seen, stack = [], set(), [e for e in exprs if isinstance(e, sympy.Basic)]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        stack.extend((definitions[e],) if e in definitions else e.args)
        if isinstance(e, (sympy.Abs, sympy.sign, sympy.Heaviside, sympy.floor, sympy.ceiling)):
            found.append(e.args[0])
        elif isinstance(e, (Maximum, Minimum)):
            found += [a - b for i, a in enumerate(e.args) for b in e.args[i + 1 :]]
        elif isinstance(e, sympy.core.relational.Relational):
            found.append(e.lhs - e.rhs)
    return [k for k in dict.fromkeys(found) if not k.is_number]


def evaluate(exprs, symbols, values, digits: int = DIGITS) -> list:
    """Evaluates expressions at `values` (float arrays per leaf) with `digits` significant digits.

    Returns mpmath numbers; the float values are taken as the exact binary numbers they are.
    """
    syms = [s for sym in symbols for s in sym.reshape(-1)]
    args = [mpmath.mpf(float(v)) for value in values for v in np.asarray(value, np.float64).reshape(-1)]
    flat = list(np.asarray(exprs, dtype=object).reshape(-1))
    from .exact import mpmath_namespace

    fn = sympy.lambdify(syms, flat, modules=[mpmath_namespace(), "mpmath"], cse=True)
    with mpmath.workdps(digits):
        return [mpmath.mpf(v) if not isinstance(v, mpmath.mpc) else v for v in fn(*args)]


# --- the interpreter -------------------------------------------------------------------------


def evaluate_jaxpr(jaxpr, consts, args) -> list:
    """Runs a jaxpr on a mix of NumPy constants and object arrays of SymPy expressions."""
    env = {}

    def read(var):
        if type(var).__name__ == "Literal":
            return np.asarray(var.val)
        return env[var]

    for var, val in zip(jaxpr.constvars, consts):
        env[var] = np.asarray(val)
    for var, val in zip(jaxpr.invars, args):
        env[var] = _array(val)
    budget = _BUDGET.get() or Budget()
    for eqn in jaxpr.eqns:
        budget.check()
        invals = [read(v) for v in eqn.invars]
        outvals = _apply(eqn, invals)
        if not eqn.primitive.multiple_results:
            outvals = [outvals]
        for var, val in zip(eqn.outvars, outvals):
            env[var] = _array(val)
    return [read(v) for v in jaxpr.outvars]


def _array(x) -> np.ndarray:
    # Indexing a 0-d object array yields the bare expression: keep every value an array.
    return np.asarray(x, dtype=object) if isinstance(x, sympy.Basic) else np.asarray(x)


def _is_symbolic(x) -> bool:
    return isinstance(x, np.ndarray) and x.dtype == object


def _apply(eqn, invals):
    name = eqn.primitive.name
    params = eqn.params
    if name in _CALLS:
        sub = _subjaxpr(params)
        return evaluate_jaxpr(sub.jaxpr, getattr(sub, "consts", ()), invals)
    if name == "scan":
        return _scan(params, invals)
    if name == "cond":
        return _cond(params, invals)
    if not any(_is_symbolic(x) for x in invals):
        return _bind(eqn, invals)  # a constant: JAX folds it, exactly as the program would
    if name == "optimization_barrier":  # the identity on each of its operands
        return list(invals)
    if name in _STRUCTURAL:
        return _structural(eqn, invals)
    if name in _UNARY:
        return _let(_elementwise(_UNARY[name], invals[0]))
    if name in _BINARY:
        return _let(_elementwise(_BINARY[name], *invals))
    if name in _RULES:
        return _let(_RULES[name](*invals, **params))
    raise Unavailable(f"no SymPy translation for primitive '{name}'")


def _let(value):
    """Each new compound value becomes a let-bound real symbol standing for its expression."""
    definitions = _LETS.get()
    if definitions is None or not _is_symbolic(value):
        return value
    out = np.empty(value.shape, dtype=object)
    for index in np.ndindex(*value.shape):
        e = value[index]
        if isinstance(e, sympy.Expr) and not e.is_Atom:
            symbol = sympy.Symbol(f"v__{len(definitions)}", real=True)
            definitions[symbol] = e
            e = symbol
        out[index] = e
    return out


_CALLS = {
    "jit",
    "pjit",
    "closed_call",
    "core_call",
    "custom_jvp_call",
    "custom_vjp_call",
    "custom_vjp_call_jaxpr",
    "remat",
    "checkpoint",
    "remat2",
    "custom_lin",
}


def _subjaxpr(params):
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        if key in params:
            return params[key]
    raise Unavailable(f"call primitive without a jaxpr (params {sorted(params)})")


def _bind(eqn, invals):
    params = eqn.primitive.get_bind_params(eqn.params)
    subfuns, params = params if isinstance(params, tuple) else ((), params)  # JAX < 0.7 form
    out = eqn.primitive.bind(*subfuns, *invals, **params)
    if eqn.primitive.multiple_results:
        return [np.asarray(o) for o in out]
    return np.asarray(out)


def to_sympy(value):
    """A NumPy scalar as an exact SymPy number (floats as the binary rationals they are)."""
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, (bool, np.bool_)):
        return sympy.true if value else sympy.false
    if isinstance(value, (int, np.integer)):
        return sympy.Integer(int(value))
    value = float(value)
    if math.isnan(value):
        return sympy.nan
    if math.isinf(value):
        return sympy.oo if value > 0 else -sympy.oo
    if value.is_integer():
        return sympy.Integer(int(value))
    return sympy.Rational(value)


def _as_objects(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == object:
        return x
    out = np.empty(x.shape, dtype=object)
    for index in np.ndindex(*x.shape):
        out[index] = to_sympy(x[index])
    return out


def _elementwise(fn, *args):
    args = np.broadcast_arrays(*[_as_objects(a) for a in args])
    out = np.empty(args[0].shape, dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = fn(*(a[index] for a in args))
    return out


def _logical(fn):
    return lambda *xs: fn(*(sympy.true if x is True else sympy.false if x is False else x for x in xs))


_UNARY = {
    "neg": lambda x: -x,
    "exp": sympy.exp,
    "exp2": lambda x: 2**x,
    "log": sympy.log,
    "log1p": lambda x: sympy.log(1 + x),
    "expm1": lambda x: sympy.exp(x) - 1,
    "logistic": lambda x: 1 / (1 + sympy.exp(-x)),
    "tanh": sympy.tanh,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "asinh": sympy.asinh,
    "acosh": sympy.acosh,
    "atanh": sympy.atanh,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "asin": sympy.asin,
    "acos": sympy.acos,
    "atan": sympy.atan,
    "sqrt": sympy.sqrt,
    "rsqrt": lambda x: 1 / sympy.sqrt(x),
    "cbrt": sympy.cbrt,
    "square": lambda x: x**2,
    "erf": sympy.erf,
    "erfc": sympy.erfc,
    "erf_inv": sympy.erfinv,
    "lgamma": sympy.loggamma,
    "digamma": sympy.digamma,
    "abs": sympy.Abs,
    "sign": sympy.sign,
    "floor": sympy.floor,
    "ceil": sympy.ceiling,
    "stop_gradient": StopGradient,
    "copy": lambda x: x,
    "copy_p": lambda x: x,
    "reduce_precision": lambda x: x,
    "not": _logical(sympy.Not),
    # A symbolic value is a real number by construction: finite wherever it is defined.
    "is_finite": lambda x: sympy.true,
}

_BINARY = {
    "add": lambda a, b: a + b,
    "add_any": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
    "max": Maximum,
    "min": Minimum,
    "atan2": sympy.atan2,
    "eq": sympy.Eq,
    "ne": sympy.Ne,
    "lt": sympy.Lt,
    "le": sympy.Le,
    "gt": sympy.Gt,
    "ge": sympy.Ge,
    "and": _logical(sympy.And),
    "or": _logical(sympy.Or),
}


def _integer_pow(x, *, y):
    return _elementwise(lambda a: a**y, x)


def _convert_element_type(x, *, new_dtype, **_):
    if np.issubdtype(new_dtype, np.floating):
        return x
    raise Unavailable(f"convert_element_type of a differentiated value to {np.dtype(new_dtype)}")


def _select_n(which, *cases):
    if not _is_symbolic(which):
        which, *cases = np.broadcast_arrays(which, *[_as_objects(c) for c in cases])
        return np.choose(which.astype(np.int64), cases) if cases else which

    def pick(w, *branches):
        if w in (sympy.true, sympy.false) or isinstance(w, bool):
            return branches[1] if w in (True, sympy.true) else branches[0]
        if isinstance(w, sympy.logic.boolalg.Boolean):  # a condition: case 1 where it holds
            return sympy.Piecewise((branches[1], w), (branches[0], True))
        raise Unavailable("select_n on a symbolic integer index")

    return _elementwise(pick, which, *cases)


def _clamp(lo, x, hi):
    return _elementwise(lambda a, b, c: Minimum(Maximum(b, a), c), lo, x, hi)


def _reduce(op):
    def rule(x, *, axes, **_):
        x = _as_objects(x)
        kept = [d for d in range(x.ndim) if d not in axes]
        moved = np.transpose(x, kept + list(axes)).reshape([x.shape[d] for d in kept] + [-1])
        out = np.empty(moved.shape[:-1], dtype=object)
        for index in np.ndindex(*out.shape):
            out[index] = op(*moved[index])  # one n-ary node, not n nested binary ones
        return out

    return rule


def _dot_general(lhs, rhs, *, dimension_numbers, **_):
    (lc, rc), (lb, rb) = dimension_numbers
    lhs, rhs = _as_objects(lhs), _as_objects(rhs)
    lf = [d for d in range(lhs.ndim) if d not in lc and d not in lb]
    rf = [d for d in range(rhs.ndim) if d not in rc and d not in rb]
    lt = np.transpose(lhs, list(lb) + lf + list(lc))
    rt = np.transpose(rhs, list(rb) + rf + list(rc))
    nb, nl, nr = len(lb), len(lf), len(rf)
    out_shape = lt.shape[: nb + nl] + rt.shape[nb : nb + nr]
    k = int(np.prod([lhs.shape[d] for d in lc], dtype=np.int64))
    l3 = lt.reshape(int(np.prod(lt.shape[:nb], dtype=np.int64)), -1, k)
    r3 = rt.reshape(l3.shape[0], -1, k)
    out = np.empty((l3.shape[0], l3.shape[1], r3.shape[1]), dtype=object)
    for b, i, j in np.ndindex(*out.shape):
        out[b, i, j] = _sum_of_products(l3[b, i], r3[b, j])
    return out.reshape(out_shape)


def _sum_of_products(lhs, rhs):
    """Σ lhs[t]·rhs[t], built directly in the common case.

    With every value let-bound, a dot product's factors are symbols and exact numbers. SymPy's
    general Add and Mul spend about 50 µs a term working out what that case already tells: a
    product c·s of a rational and a symbol, a sum of such terms in distinct symbols, with nothing
    to collect. The terms stay in the program's order (SymPy's canonical sort alone costs more
    than the rest of the translation); anything else goes through SymPy's own constructors.
    """
    terms, rests = [], set()
    if all(a.is_Symbol for a in lhs) and all(b.is_Symbol for b in rhs):
        # Both factors let-bound values (a layer's weights times the previous layer's outputs):
        # products of distinct symbols, each product once, have nothing to combine either.
        pairs = [frozenset((a, b)) for a, b in zip(lhs, rhs)]
        if len(pairs) > 1 and all(len(p) == 2 for p in pairs) and len(set(pairs)) == len(pairs):
            return sympy.Add._from_args(
                [sympy.Mul._from_args(tuple(sorted((a, b), key=str))) for a, b in zip(lhs, rhs)]
            )
    for a, b in zip(lhs, rhs):
        if a.is_Rational and b.is_Symbol:
            a, b = b, a
        if not (a.is_Symbol and b.is_Rational) or a in rests:
            return sympy.Add(*[x * y for x, y in zip(lhs, rhs)])
        if b.p != 0:  # the integers of the Rational: SymPy's == and != sympify their operand
            terms.append(a if b.p == b.q else sympy.Mul._from_args((b, a)))
            rests.add(a)
    if len(terms) < 2:
        return terms[0] if terms else sympy.S.Zero
    return sympy.Add._from_args(terms)


def _cumulative(op):
    def rule(x, *, axis, reverse, **_):
        x = np.moveaxis(_as_objects(x), axis, -1)
        if reverse:
            x = x[..., ::-1]
        out = np.empty(x.shape, dtype=object)
        for index in np.ndindex(*x.shape[:-1]):
            acc = None
            for t in range(x.shape[-1]):
                acc = x[index + (t,)] if acc is None else op(acc, x[index + (t,)])
                out[index + (t,)] = acc
        if reverse:
            out = out[..., ::-1]
        return np.moveaxis(out, -1, axis)

    return rule


_RULES = {
    "integer_pow": _integer_pow,
    "convert_element_type": _convert_element_type,
    "select_n": _select_n,
    "clamp": _clamp,
    "reduce_sum": _reduce(sympy.Add),
    "reduce_max": _reduce(Maximum),
    "reduce_min": _reduce(Minimum),
    "reduce_prod": _reduce(sympy.Mul),
    "dot_general": _dot_general,
    "cumsum": _cumulative(lambda a, b: a + b),
    "cumprod": _cumulative(lambda a, b: a * b),
}

# Primitives that only move elements around. They are run by JAX itself on arrays of element
# indices, then the indices pick the expressions: one rule for all of them, exact by construction.
# The value is how many leading operands carry data (the rest are index operands, e.g. gather's).
_STRUCTURAL = {
    "broadcast_in_dim": 1,
    "reshape": 1,
    "transpose": 1,
    "squeeze": 1,
    "expand_dims": 1,
    "rev": 1,
    "slice": 1,
    "dynamic_slice": 1,
    "gather": 1,
    "pad": 2,
    "dynamic_update_slice": 2,
    "concatenate": None,
    "stack": None,
    "split": 1,
}


# The ones that only reshape or reorder, done in NumPy on the index array: run by JAX, each would
# compile a small program per shape. Params as in JAX's jaxprs; any other form goes through JAX.
_LAYOUT = {
    "squeeze": lambda x, p: np.squeeze(x, tuple(p["dimensions"])),
    "reshape": lambda x, p: np.reshape(x, p["new_sizes"]) if p.get("dimensions") is None else None,
    "transpose": lambda x, p: np.transpose(x, p["permutation"]),
    "rev": lambda x, p: np.flip(x, tuple(p["dimensions"])),
    "broadcast_in_dim": lambda x, p: _broadcast_in_dim(x, p["shape"], p["broadcast_dimensions"]),
}


def _broadcast_in_dim(x, shape, dimensions):
    # Operand axis i becomes output axis dimensions[i] (increasing, as JAX requires); the rest are new.
    kept = [1] * len(shape)
    for axis, n in zip(dimensions, x.shape):
        kept[axis] = n
    return np.broadcast_to(x.reshape(kept), shape)


def _structural(eqn, invals):
    n_data = _STRUCTURAL[eqn.primitive.name]
    n_data = len(invals) if n_data is None else n_data
    data, rest = invals[:n_data], invals[n_data:]
    if any(_is_symbolic(x) for x in rest):
        raise Unavailable(f"{eqn.primitive.name} with symbolic indices")
    pool, index_arrays, offset = [], [], 0
    for x in data:
        x = _as_objects(x)
        pool.extend(x.reshape(-1))
        index_arrays.append(np.arange(offset, offset + x.size, dtype=np.int64).reshape(x.shape))
        offset += x.size
    layout = _LAYOUT.get(eqn.primitive.name)
    picked = layout(index_arrays[0], eqn.params) if layout and not rest else None
    if picked is None:
        with jax.enable_x64(True):
            picked = _bind(eqn, index_arrays + list(rest))
    pool = np.array(pool + [sympy.S.Zero], dtype=object)

    def pick(indices):
        outside = (indices < 0) | (indices >= offset)  # gather's fill value in its "drop" modes
        return pool[np.where(outside, offset, indices)]

    return [pick(np.asarray(p)) for p in picked] if eqn.primitive.multiple_results else pick(np.asarray(picked))


def _scan(params, invals):
    body, length = params["jaxpr"], params["length"]
    n_consts, n_carry = params["num_consts"], params["num_carry"]
    consts, carry, xs = invals[:n_consts], invals[n_consts : n_consts + n_carry], invals[n_consts + n_carry :]
    steps = range(length - 1, -1, -1) if params["reverse"] else range(length)
    ys = []
    for t in steps:
        outs = evaluate_jaxpr(body.jaxpr, body.consts, list(consts) + list(carry) + [x[t] for x in xs])
        carry, y = outs[:n_carry], outs[n_carry:]
        ys.append(y)
    if params["reverse"]:
        ys.reverse()
    stacked = [np.stack([_as_objects(y[i]) for y in ys]) for i in range(len(ys[0]))] if ys else []
    return list(carry) + stacked


def _cond(params, invals):
    index, *operands = invals
    if _is_symbolic(index):
        raise Unavailable("cond on a value that depends on the parameters")
    branch = params["branches"][int(np.clip(index, 0, len(params["branches"]) - 1))]
    return evaluate_jaxpr(branch.jaxpr, branch.consts, operands)
