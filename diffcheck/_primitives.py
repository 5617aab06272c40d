"""One record per JAX primitive the exact method translates, and per SymPy function it evaluates.

A `Primitive` says everything diffcheck knows about one JAX primitive: how it is written in SymPy
(`translate`), in which form (`Form`: element by element, a rule on whole arrays, or a pure move of
elements), and whether JAX's complex extension of it is the analytic continuation of the real
function (`analytic`: only then may the complex step vote on a program that uses it). The complex
step's allowlist is this table: a primitive without a record, or with `analytic=False`, keeps the
complex step out.

The SymPy side: diffcheck's own function classes (`StopGradient`, `Maximum`, `Minimum`) carry
their derivative (`fdiff`), and `NUMERIC` gives each function that lambdify cannot evaluate
alone its mpmath and NumPy versions; `kink_arguments` says where a function is not smooth;
`STEP_DERIVATIVES` gives the derivative of the step functions SymPy leaves unevaluated.

Adding an elementwise primitive is one `Primitive(...)` entry in `PRIMITIVES` (and one row in
`tests/test_symbolic.py`'s primitive table): see docs/contributing.md.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy

from .errors import Unavailable

# --- SymPy functions of diffcheck's own ------------------------------------------------------


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


def _heaviside(x, h=0.5):
    return mpmath.mpf(1) if x > 0 else mpmath.mpf(0) if x < 0 else mpmath.mpf(h)


#: Numeric versions of the SymPy functions lambdify cannot evaluate by itself (or not as the exact
#: method needs): backend ("mpmath" or "numpy") → SymPy class → function of the argument values.
NUMERIC = {
    "mpmath": {
        StopGradient: lambda x: x,
        Maximum: max,
        Minimum: min,
        sympy.Heaviside: _heaviside,
        sympy.DiracDelta: lambda x, k=0: mpmath.mpf(0) if x != 0 else mpmath.nan,
        sympy.sign: lambda x: mpmath.sign(x),
        sympy.re: lambda x: x,  # every value here is real
        sympy.im: lambda x: mpmath.mpf(0),
    },
    "numpy": {
        StopGradient: lambda x: x,
        Maximum: lambda *a: functools.reduce(np.maximum, a),
        Minimum: lambda *a: functools.reduce(np.minimum, a),
    },
}

#: Derivatives of the step functions, which SymPy leaves unevaluated: zero away from the jump.
STEP_DERIVATIVES = {
    sympy.sign: lambda a: 2 * sympy.DiracDelta(a),
    sympy.floor: lambda a: sympy.S.Zero,
    sympy.ceiling: lambda a: sympy.S.Zero,
}

#: SymPy functions whose first argument's sign change is a kink or a jump.
_KINKED_AT_ZERO = (sympy.Abs, sympy.sign, sympy.Heaviside, sympy.floor, sympy.ceiling)


def kink_arguments(node) -> list:
    """The expressions whose sign change makes `node` a kink or a jump ([] for a smooth node):
    the argument of Abs, sign, Heaviside, floor and ceiling, the pairwise differences inside
    max/min, and lhs − rhs of a comparison (the conditions of Piecewise and select_n)."""
    if isinstance(node, _KINKED_AT_ZERO):
        return [node.args[0]]
    if isinstance(node, _Extremum):
        return [a - b for i, a in enumerate(node.args) for b in node.args[i + 1 :]]
    if isinstance(node, sympy.core.relational.Relational):
        return [node.lhs - node.rhs]
    return []


# --- values as arrays ---------------------------------------------------------------------------


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


def is_symbolic(x) -> bool:
    """Whether an array holds SymPy expressions (it depends on the parameters)."""
    return isinstance(x, np.ndarray) and x.dtype == object


def as_objects(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == object:
        return x
    out = np.empty(x.shape, dtype=object)
    for index in np.ndindex(*x.shape):
        out[index] = to_sympy(x[index])
    return out


def elementwise(fn, *args):
    args = np.broadcast_arrays(*[as_objects(a) for a in args])
    out = np.empty(args[0].shape, dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = fn(*(a[index] for a in args))
    return out


# --- the records ---------------------------------------------------------------------------------


class Form(enum.StrEnum):
    """How a primitive's translation is applied."""

    ELEMENTWISE = "elementwise"  # translate(*scalars) per element, operands broadcast
    ARRAY = "array"  # translate(*arrays, **params) on whole object arrays
    MOVE = "move"  # only moves elements: JAX runs it on index arrays (exact by construction)


@dataclass(frozen=True)
class Primitive:
    """What the exact method and the complex step know about one JAX primitive."""

    translate: Callable | None  # None for Form.MOVE
    form: Form = Form.ELEMENTWISE
    # JAX's complex version of the primitive is the analytic continuation of the real function, so
    # Im f(θ + ih)/h is its derivative. False for kinks, branches, comparisons and casts, and for
    # primitives whose complex version in XLA is another function (atan2, cbrt's principal root).
    analytic: bool = True
    # Form.MOVE: how many leading operands carry data (the rest are indices); None: all of them.
    data_operands: int | None = 1


def _logical(fn):
    return lambda *xs: fn(*(sympy.true if x is True else sympy.false if x is False else x for x in xs))


def _unary(fn, analytic=True) -> Primitive:
    return Primitive(fn, Form.ELEMENTWISE, analytic)


def _rule(fn, analytic=True) -> Primitive:
    return Primitive(fn, Form.ARRAY, analytic)


def _move(data_operands=1) -> Primitive:
    return Primitive(None, Form.MOVE, True, data_operands)


def _integer_pow(x, *, y):
    return elementwise(lambda a: a**y, x)


def _convert_element_type(x, *, new_dtype, **_):
    if np.issubdtype(new_dtype, np.floating):
        return x
    raise Unavailable(f"convert_element_type of a differentiated value to {np.dtype(new_dtype)}")


def _select_n(which, *cases):
    if not is_symbolic(which):
        which, *cases = np.broadcast_arrays(which, *[as_objects(c) for c in cases])
        return np.choose(which.astype(np.int64), cases) if cases else which

    def pick(w, *branches):
        if w in (sympy.true, sympy.false) or isinstance(w, bool):
            return branches[1] if w in (True, sympy.true) else branches[0]
        if isinstance(w, sympy.logic.boolalg.Boolean):  # a condition: case 1 where it holds
            return sympy.Piecewise((branches[1], w), (branches[0], True))
        raise Unavailable("select_n on a symbolic integer index")

    return elementwise(pick, which, *cases)


def _clamp(lo, x, hi):
    return elementwise(lambda a, b, c: Minimum(Maximum(b, a), c), lo, x, hi)


def _reduce(op):
    def rule(x, *, axes, **_):
        x = as_objects(x)
        kept = [d for d in range(x.ndim) if d not in axes]
        moved = np.transpose(x, kept + list(axes)).reshape([x.shape[d] for d in kept] + [-1])
        out = np.empty(moved.shape[:-1], dtype=object)
        for index in np.ndindex(*out.shape):
            out[index] = op(*moved[index])  # one n-ary node, not n nested binary ones
        return out

    return rule


def _dot_general(lhs, rhs, *, dimension_numbers, **_):
    (lc, rc), (lb, rb) = dimension_numbers
    lhs, rhs = as_objects(lhs), as_objects(rhs)
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
    for a, b in zip(lhs, rhs, strict=True):
        if a.is_Rational and b.is_Symbol:
            a, b = b, a
        if not (a.is_Symbol and b.is_Rational) or a in rests:
            return sympy.Add(*[x * y for x, y in zip(lhs, rhs, strict=True)])
        if b != 0:
            terms.append(a if b == 1 else sympy.Mul._from_args((b, a)))
            rests.add(a)
    if len(terms) < 2:
        return terms[0] if terms else sympy.S.Zero
    return sympy.Add._from_args(terms)


def _cumulative(op):
    def rule(x, *, axis, reverse, **_):
        x = np.moveaxis(as_objects(x), axis, -1)
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


def _identity(x):
    return x


#: Primitives that call a jaxpr held in their params and compute nothing of their own: the
#: translator runs the jaxpr (a custom_jvp/custom_vjp's primal, never its rule).
CALLS = frozenset(
    {"jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr",
     "remat", "checkpoint", "remat2", "custom_lin"}
)  # fmt: skip

#: JAX primitive name → its record. Call primitives (jit, custom_jvp_call, …) and control flow
#: (scan, cond) are interpreted by the translator itself: they hold jaxprs, not mathematics.
PRIMITIVES: dict[str, Primitive] = {
    # arithmetic
    "neg": _unary(lambda x: -x),
    "add": _unary(lambda a, b: a + b),
    "add_any": _unary(lambda a, b: a + b),
    "sub": _unary(lambda a, b: a - b),
    "mul": _unary(lambda a, b: a * b),
    "div": _unary(lambda a, b: a / b),
    "pow": _unary(lambda a, b: a**b),
    "integer_pow": _rule(_integer_pow),
    "square": _unary(lambda x: x**2),
    "sqrt": _unary(sympy.sqrt),
    "rsqrt": _unary(lambda x: 1 / sympy.sqrt(x)),
    # XLA's complex cbrt is the principal root (of −8: 1 + 1.73i), not the real one.
    "cbrt": _unary(sympy.cbrt, analytic=False),
    # exponentials and logarithms
    "exp": _unary(sympy.exp),
    "exp2": _unary(lambda x: 2**x),
    "log": _unary(sympy.log),
    "log1p": _unary(lambda x: sympy.log(1 + x)),
    "expm1": _unary(lambda x: sympy.exp(x) - 1),
    "logistic": _unary(lambda x: 1 / (1 + sympy.exp(-x))),
    # trigonometric and hyperbolic
    "tanh": _unary(sympy.tanh),
    "sinh": _unary(sympy.sinh),
    "cosh": _unary(sympy.cosh),
    "asinh": _unary(sympy.asinh),
    "acosh": _unary(sympy.acosh),
    "atanh": _unary(sympy.atanh),
    "sin": _unary(sympy.sin),
    "cos": _unary(sympy.cos),
    "tan": _unary(sympy.tan),
    "asin": _unary(sympy.asin),
    "acos": _unary(sympy.acos),
    "atan": _unary(sympy.atan),
    # XLA's atan2 of complex operands is not the continuation of the real two-argument function.
    "atan2": _unary(sympy.atan2, analytic=False),
    # special functions: JAX has no complex versions of these
    "erf": _unary(sympy.erf, analytic=False),
    "erfc": _unary(sympy.erfc, analytic=False),
    "erf_inv": _unary(sympy.erfinv, analytic=False),
    "lgamma": _unary(sympy.loggamma, analytic=False),
    "digamma": _unary(sympy.digamma, analytic=False),
    # kinks and steps
    "abs": _unary(sympy.Abs, analytic=False),
    "sign": _unary(sympy.sign, analytic=False),
    "floor": _unary(sympy.floor, analytic=False),
    "ceil": _unary(sympy.ceiling, analytic=False),
    "max": _unary(Maximum, analytic=False),
    "min": _unary(Minimum, analytic=False),
    "clamp": _rule(_clamp, analytic=False),
    # comparisons, logic and selection
    "eq": _unary(sympy.Eq, analytic=False),
    "ne": _unary(sympy.Ne, analytic=False),
    "lt": _unary(sympy.Lt, analytic=False),
    "le": _unary(sympy.Le, analytic=False),
    "gt": _unary(sympy.Gt, analytic=False),
    "ge": _unary(sympy.Ge, analytic=False),
    "and": _unary(_logical(sympy.And), analytic=False),
    "or": _unary(_logical(sympy.Or), analytic=False),
    "not": _unary(_logical(sympy.Not), analytic=False),
    "select_n": _rule(_select_n, analytic=False),
    # A symbolic value is a real number by construction: finite wherever it is defined.
    "is_finite": _unary(lambda x: sympy.true, analytic=False),
    # identities: the complex step must not differentiate through a stop_gradient, and a rounding
    # to lower precision is not analytic
    "stop_gradient": _unary(StopGradient, analytic=False),
    "copy": _unary(_identity),
    "copy_p": _unary(_identity),
    "reduce_precision": _unary(_identity, analytic=False),
    "optimization_barrier": _rule(lambda *xs: list(xs)),
    # A cast between floats is the identity on exact values (its rounding is in Translation.eps);
    # to an integer it is a step. The complex step looks at each cast's target dtype on the jaxpr:
    # a cast to a real dtype drops the imaginary part.
    "convert_element_type": _rule(_convert_element_type),
    # reductions, products, scans
    "reduce_sum": _rule(_reduce(sympy.Add)),
    "reduce_max": _rule(_reduce(Maximum), analytic=False),
    "reduce_min": _rule(_reduce(Minimum), analytic=False),
    "reduce_prod": _rule(_reduce(sympy.Mul)),
    "dot_general": _rule(_dot_general),
    "cumsum": _rule(_cumulative(lambda a, b: a + b)),
    "cumprod": _rule(_cumulative(lambda a, b: a * b)),
    # moves: run by JAX on arrays of element indices, then the indices pick the expressions
    "broadcast_in_dim": _move(),
    "reshape": _move(),
    "transpose": _move(),
    "squeeze": _move(),
    "expand_dims": _move(),
    "rev": _move(),
    "slice": _move(),
    "dynamic_slice": _move(),
    "gather": _move(),
    "pad": _move(2),
    "dynamic_update_slice": _move(2),
    "concatenate": _move(None),
    "stack": _move(None),
    "split": _move(),
}
