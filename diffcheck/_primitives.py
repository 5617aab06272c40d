"""One record per JAX primitive the exact method translates, and per SymPy function it evaluates.

A `Primitive` says everything diffcheck knows about one JAX primitive: how it is written in SymPy
(`translate`), in which form (`Form`: element by element, a rule on whole arrays, or a pure move of
elements), and whether JAX's complex extension of it is the analytic continuation of the real
function (`analytic`: only then may the complex step vote on a program that uses it). The complex
step's allowlist is this table: a primitive without a record, or with `analytic=False`, keeps the
complex step out.

The SymPy side: diffcheck's own function classes (`StopGradient`, `Maximum`, `Minimum`, `Piece`,
the steps `Trunc`, `RoundHalfEven`, `RoundHalfAway`, all in `_rules`) carry their derivative
(`fdiff`), and `NUMERIC` gives each function that lambdify cannot evaluate alone its mpmath and
NumPy versions; `kink_arguments` says where a function is not smooth; `STEP_DERIVATIVES` gives the
derivative of the step functions SymPy leaves unevaluated. The rules themselves live in `_rules`.

Adding an elementwise primitive is one `Primitive(...)` entry in `PRIMITIVES` and one row in
`tests/test_symbolic.py`'s primitive table (a test fails on a record without a row).
`docs/primitives.md` is this table, written by `python -m benchmarks.primitives`.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy

from . import _linalg as la
from . import _rules as r
from . import _structured as st
from ._rules import (  # noqa: F401 - the array helpers and SymPy functions other modules use
    Maximum,
    Minimum,
    Piece,
    StopGradient,
    _Extremum,
    as_objects,
    elementwise,
    is_symbolic,
    sum_of_products,
    to_sympy,
)


def _mp_step(fn):
    return lambda x: x if not mpmath.isfinite(x) else mpmath.mpf(fn(x))


def _mp_round_away(x):
    return mpmath.sign(x) * mpmath.floor(abs(x) + mpmath.mpf(0.5))


#: mpmath and NumPy versions of the step functions and of Piece (NaN off its piece).
_STEPS = {
    "mpmath": {
        r.Floor: _mp_step(mpmath.floor),
        r.Ceil: _mp_step(mpmath.ceil),
        r.Trunc: _mp_step(lambda x: int(x)),
        r.RoundHalfEven: _mp_step(mpmath.nint),
        r.RoundHalfAway: _mp_step(_mp_round_away),
        Piece: lambda value, *guards: value if all(g >= -r.OFF_PIECE for g in guards) else mpmath.nan,
    },
    "numpy": {
        r.Floor: np.floor,
        r.Ceil: np.ceil,
        r.Trunc: np.trunc,
        r.RoundHalfEven: np.rint,
        r.RoundHalfAway: lambda x: np.sign(x) * np.floor(np.abs(x) + 0.5),
        Piece: lambda value, *guards: np.where(_on_piece(guards), value, np.nan),
    },
}


def _on_piece(guards):
    return functools.reduce(np.logical_and, [np.asarray(g) >= -r.OFF_PIECE for g in guards])


# special functions through SymPy's own


def _lgamma(x):
    # log|Γ(x)|, as JAX's lgamma: SymPy's loggamma is complex for negative x
    return sympy.Piecewise((sympy.loggamma(x), x > 0), (sympy.log(sympy.Abs(sympy.gamma(x))), True))


def _bessel_i0e(x):
    return sympy.exp(-sympy.Abs(x)) * sympy.besseli(0, x)


def _bessel_i1e(x):
    return sympy.exp(-sympy.Abs(x)) * sympy.besseli(1, x)


def _igamma(a, x):
    return sympy.lowergamma(a, x) / sympy.gamma(a)


def _igammac(a, x):
    return sympy.uppergamma(a, x) / sympy.gamma(a)


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
        # mpmath's I_n of a negative argument is an mpc with a zero imaginary part: real for integer n
        sympy.besseli: lambda n, x: mpmath.re(mpmath.besseli(n, x)),
        la.RegularizedBeta: la._betainc_mp,
        **_STEPS["mpmath"],
    },
    "numpy": {
        StopGradient: lambda x: x,
        Maximum: lambda *a: functools.reduce(np.maximum, a),
        Minimum: lambda *a: functools.reduce(np.minimum, a),
        la.RegularizedBeta: la._betainc_np,
        **_STEPS["numpy"],
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
    the argument of Abs, sign, Heaviside, floor and ceiling, lhs − rhs of a comparison (the
    conditions of Piecewise and select_n), and the guards of a `Piece` (a carrier of guards is
    itself a Piece, found in its turn). A max or min has none here: its kinks depend on which
    element is the largest at the point (`_kinks.gaps`)."""
    if isinstance(node, Piece):
        return [g for g in node.args[1:] if not isinstance(g, Piece)]
    if isinstance(node, _KINKED_AT_ZERO):
        return [node.args[0]]
    if isinstance(node, sympy.core.relational.Relational) and isinstance(node.lhs, sympy.Expr):
        return [node.lhs - node.rhs]  # (a comparison of two conditions: theirs are found below it)
    return []


# --- the records ---------------------------------------------------------------------------------


class Form(enum.StrEnum):
    """How a primitive's translation is applied."""

    ELEMENTWISE = "elementwise"  # translate(*scalars) per element, operands broadcast
    ARRAY = "array"  # translate(*arrays, **params) on whole object arrays
    MOVE = "move"  # only moves elements: JAX runs it on index arrays (exact by construction)
    # translate(point, *arrays, **params): one smooth piece at the point (a permutation, a branch,
    # an integer that is constant there), its boundaries carried as `Piece` guards (kinks)
    LOCAL = "local"


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


def _unary(fn, analytic=True) -> Primitive:
    return Primitive(fn, Form.ELEMENTWISE, analytic)


def _rule(fn, analytic=True) -> Primitive:
    return Primitive(fn, Form.ARRAY, analytic)


def _move(data_operands=1) -> Primitive:
    return Primitive(None, Form.MOVE, True, data_operands)


def _local(fn, analytic=False) -> Primitive:
    return Primitive(fn, Form.LOCAL, analytic)


#: Primitives that call a jaxpr held in their params and compute nothing of their own: the
#: translator runs the jaxpr (a custom_jvp/custom_vjp's primal, never its rule).
CALLS = frozenset(
    {"jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr",
     "remat", "checkpoint", "remat2", "custom_lin"}
)  # fmt: skip


#: Primitives that hold jaxprs and are run by the translator itself, with how.
INTERPRETED = {
    "scan": "unrolled: the body translated once per step",
    "cond": "the branch taken at the point (a parameter-dependent index is a constant there, its threshold a kink)",
    "while": "unrolled for the trip count at the point (the predicates' thresholds are kinks), up to a bound",
    "reduce": "its reduction jaxpr folded over each reduced row (several operands at once)",
    "custom_linear_solve": "x with matvec(x) = b: the matrix of its matvec jaxpr, eliminated (never its solve "
    "jaxpr, which may run on stop_gradient(A))",
}

#: Why a primitive has no translation yet (the Unavailable message and docs/primitives.md say it).
UNTRANSLATED = {
    "eig": "linear algebra: complex eigenvalues are not translated",
    "householder_product": "linear algebra: not emitted by jnp.linalg.qr (its `qr` is translated); alone, not yet",
    "geqrf": "linear algebra: not emitted by jnp.linalg.qr (its `qr` is translated); alone, not yet",
    "fft": "complex values are not translated (a DFT of exact complex values would be)",
    "real": "complex values are not translated",
    "imag": "complex values are not translated",
    "complex": "complex values are not translated",
    "conj": "complex values are not translated",
    "select_and_scatter_add": "appears in max-pool gradients inside the function: not translated",
    "select_and_gather_add": "appears in max-pool gradients inside the function: not translated",
    "reduce_window": "a window reduction with a custom computation: not translated",
    "igamma_grad_a": "JAX's own derivative of igamma: diffcheck differentiates igamma itself",
    "nextafter": "a step to the neighbouring float: not a real function of its arguments",
    "random_gamma_grad": "JAX's own derivative of a random draw",
}

#: How a primitive is translated where its form alone does not say (docs/primitives.md reads it).
HOW = {
    "eigh": "implicit equations: A·v = λ·v, vᵀv = 1 per eigenpair (A's lower triangle), solved by mpmath's "
    "eigsy; derivatives by the implicit function theorem on the equations (SymPy); ascending order and "
    "the vectors' signs as the program's at the point; a tie is a kink",
    "svd": "implicit equations: A·v = s·u, Aᵀ·u = s·v, uᵀu + vᵀv = 2 per singular triplet, solved by "
    "mpmath's svd_r; derivatives by the implicit function theorem on the equations (SymPy); descending "
    "order and signs as the program's at the point; a tie or a zero singular value is a kink",
    "lu": "local piece: Gaussian elimination with partial pivoting's pivots at the point (the largest in "
    "magnitude, the first on a tie, as LAPACK's getrf); abs(pivot) − abs(candidate) are kinks",
    "qr": "local piece: Householder reflections as LAPACK's geqrf/orgqr (β = −sign(α)·‖x‖, the sign at the "
    "point); α = 0 is a kink",
    "regularized_incomplete_beta": "closed form I_x(a, b) (mpmath's betainc); its derivative in x, "
    "x^(a−1)·(1 − x)^(b−1)/B(a, b); in a or b SymPy has none in closed form: unavailable, never zero",
    "cholesky": "closed form: the Cholesky–Banachiewicz recurrence on the lower triangle",
    "triangular_solve": "closed form: substitution, reading only A's triangle",
}

#: JAX primitive name → its record. Call primitives (jit, custom_jvp_call, …) and `INTERPRETED`
#: control flow are run by the translator itself: they hold jaxprs, not mathematics.
PRIMITIVES: dict[str, Primitive] = {
    # arithmetic
    "neg": _unary(lambda x: -x),
    "add": _unary(lambda a, b: a + b),
    "add_any": _unary(lambda a, b: a + b),
    "sub": _unary(lambda a, b: a - b),
    "mul": _unary(lambda a, b: a * b),
    "div": _unary(lambda a, b: a / b),
    "pow": _unary(r.power),
    "integer_pow": _rule(r.integer_pow),
    "square": _unary(lambda x: x**2),
    "sqrt": _unary(sympy.sqrt),
    "rsqrt": _unary(lambda x: 1 / sympy.sqrt(x)),
    # XLA's complex cbrt is the principal root (of −8: 1 + 1.73i), not the real one.
    "cbrt": _unary(r.cbrt, analytic=False),
    # a − b·trunc(a/b): the quotient is a constant on the piece around the point
    "rem": _local(r.rem),
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
    "lgamma": _unary(_lgamma, analytic=False),
    "digamma": _unary(sympy.digamma, analytic=False),
    "polygamma": _unary(sympy.polygamma, analytic=False),
    "zeta": _unary(sympy.zeta, analytic=False),  # Hurwitz ζ(s, q); SymPy has no ∂/∂s (nor has JAX)
    "igamma": _unary(_igamma, analytic=False),  # the regularised lower incomplete gamma P(a, x)
    "igammac": _unary(_igammac, analytic=False),  # Q(a, x) = 1 − P(a, x)
    "bessel_i0e": _unary(_bessel_i0e, analytic=False),  # e^−|x|·I₀(x): a kink at 0
    "bessel_i1e": _unary(_bessel_i1e, analytic=False),
    # kinks and steps
    "abs": _unary(sympy.Abs, analytic=False),
    "sign": _unary(sympy.sign, analytic=False),
    "floor": _local(r.floor),
    "ceil": _local(r.ceil),
    "round": _local(r.round_),
    "max": _unary(Maximum, analytic=False),
    "min": _unary(Minimum, analytic=False),
    "clamp": _rule(r.clamp, analytic=False),
    # comparisons, logic and selection
    "eq": _unary(sympy.Eq, analytic=False),
    "ne": _unary(sympy.Ne, analytic=False),
    "lt": _unary(sympy.Lt, analytic=False),
    "le": _unary(sympy.Le, analytic=False),
    "gt": _unary(sympy.Gt, analytic=False),
    "ge": _unary(sympy.Ge, analytic=False),
    # the total order (NaN after +∞) agrees with the usual one on the real values translated here
    "lt_to": _unary(sympy.Lt, analytic=False),
    "and": _unary(r.logical(sympy.And), analytic=False),
    "or": _unary(r.logical(sympy.Or), analytic=False),
    "not": _unary(r.logical(sympy.Not), analytic=False),
    "select_n": _local(r.select_n),
    # its value at the point (log(0) = −∞ is not finite), constant on the piece
    "is_finite": _local(r.is_finite),
    # identities: the complex step must not differentiate through a stop_gradient, and a rounding
    # to lower precision is not analytic
    "stop_gradient": _unary(StopGradient, analytic=False),
    "copy": _unary(r.identity),
    "reduce_precision": _unary(r.identity, analytic=False),
    "optimization_barrier": _rule(lambda *xs: list(xs)),
    # A cast between floats is the identity on exact values (its rounding is in Translation.eps);
    # to an integer it is trunc, a step (a constant on the piece). The complex step looks at each
    # cast's target dtype on the jaxpr: a cast to a real dtype drops the imaginary part.
    "convert_element_type": Primitive(r.convert_element_type, Form.LOCAL, True),
    # reductions, products, scans, windows
    "reduce_sum": _rule(r.reduce(sympy.Add)),
    "reduce_max": _rule(r.reduce(Maximum), analytic=False),
    "reduce_min": _rule(r.reduce(Minimum), analytic=False),
    "reduce_prod": _rule(r.reduce(sympy.Mul)),
    "reduce_and": _rule(r.reduce(r.logical(sympy.And)), analytic=False),
    "reduce_or": _rule(r.reduce(r.logical(sympy.Or)), analytic=False),
    "argmax": _local(r.argextremum(1)),
    "argmin": _local(r.argextremum(-1)),
    "dot_general": _rule(r.dot_general),
    "conv_general_dilated": _rule(st.conv_general_dilated),
    "cumsum": _rule(r.cumulative(lambda a, b: a + b)),
    "cumprod": _rule(r.cumulative(lambda a, b: a * b)),
    "cummax": _rule(r.cumulative(Maximum), analytic=False),
    "cummin": _rule(r.cumulative(Minimum), analytic=False),
    "cumlogsumexp": _rule(r.cumlogsumexp, analytic=False),
    "reduce_window_sum": _rule(st.reduce_window(sympy.Add, sympy.S.Zero)),
    "reduce_window_max": _rule(st.reduce_window(Maximum, -sympy.oo), analytic=False),
    "reduce_window_min": _rule(st.reduce_window(Minimum, sympy.oo), analytic=False),
    # linear algebra, small matrices: closed forms of the defining equations
    "cholesky": _rule(la.cholesky, analytic=False),  # JAX's complex version is Hermitian: conj(A)ᵀ
    "triangular_solve": _rule(la.triangular_solve),
    # the pivots (lu) and the reflectors' signs (qr) chosen at the point, as LAPACK chooses them
    "lu": _local(la.lu),
    "qr": _local(la.qr),
    # implicit nodes: solved by mpmath, differentiated by the implicit function theorem on their equations
    "eigh": _local(la.eigh),
    "svd": _local(la.svd),
    "regularized_incomplete_beta": _unary(la.RegularizedBeta, analytic=False),  # I_x(a, b)
    # permutations at the point: a tie is a kink
    "sort": _local(r.sort),
    "top_k": _local(r.top_k),
    # scatters: where each update lands is found by JAX on one-hot updates (duplicates included)
    "scatter": Primitive(st.scatter(None), Form.LOCAL, True),
    "scatter-add": Primitive(st.scatter(lambda a, *u: sympy.Add(a, *u)), Form.LOCAL, True),
    "scatter-sub": Primitive(st.scatter(lambda a, *u: a - sympy.Add(*u)), Form.LOCAL, True),
    "scatter-mul": Primitive(st.scatter(lambda a, *u: sympy.Mul(a, *u)), Form.LOCAL, True),
    "scatter-max": _local(st.scatter(Maximum)),
    "scatter-min": _local(st.scatter(Minimum)),
    # moves: run by JAX on arrays of element indices, then the indices pick the expressions
    "broadcast_in_dim": _move(),
    "reshape": _move(),
    "transpose": _move(),
    "squeeze": _move(),
    "rev": _move(),
    "slice": _move(),
    "dynamic_slice": _move(),
    "gather": _move(),
    "tile": _move(),
    "pad": _move(2),
    "dynamic_update_slice": _move(2),
    "concatenate": _move(None),
    "stack": _move(None),
    "split": _move(),
}
