"""The SymPy side of the primitive records: diffcheck's own SymPy functions, values as object
arrays, and the rules that translate one primitive each (`_primitives.PRIMITIVES` names them).

A rule of `Form.ARRAY` takes the eqn's operands as arrays (object arrays of SymPy expressions where
they depend on the parameters) and its params as keywords. A rule of `Form.LOCAL` takes the point
first (`point.value(expr)`, `point.values(array)`, `point.guards(exprs)`): what it returns is one
smooth piece of the function, exact around the point — a permutation, a branch, a quotient that is
constant there — and the expressions whose sign change ends the piece ride along as `Piece`
guards, which the kink analysis reads like the arguments of `abs`.
"""

from __future__ import annotations

import fractions
import math

import mpmath
import numpy as np
import sympy

from . import _dot as dot
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


class Piece(sympy.Function):
    """A value on one smooth piece of the function around the point: `args[0]` is the value, the
    rest are guards, expressions whose sign change ends the piece (a tie in a sort, a predicate at
    its threshold, a quotient at an integer), read by the kink analysis like the argument of abs.
    Differentiation sees the value alone. A guard that is itself a `Piece` (of value 0) carries
    many guards shared by many values."""

    is_extended_real = True

    @classmethod
    def eval(cls, value, *guards):
        if all(g.is_number for g in guards):
            return value  # nothing can end the piece
        return None

    def _eval_is_integer(self):
        return self.args[0].is_integer

    def fdiff(self, argindex=1):
        return sympy.S.One if argindex == 1 else sympy.S.Zero


class _Step(sympy.Function):
    """An integer-valued step function of a real argument: derivative zero away from its jumps (the
    jumps are marked by the `Piece` guards around it, at the point's neighbouring integers)."""

    is_extended_real = True
    is_integer = True

    @classmethod
    def eval(cls, x):
        if x.is_Rational:
            return sympy.Integer(cls.exact(fractions.Fraction(int(x.p), int(x.q))))
        return None

    def fdiff(self, argindex=1):
        return sympy.S.Zero


class Floor(_Step):
    """`lax.floor` (SymPy's floor leaves its derivative unevaluated)."""

    exact = staticmethod(math.floor)


class Ceil(_Step):
    """`lax.ceil`."""

    exact = staticmethod(math.ceil)


class Trunc(_Step):
    """Rounding toward zero: `rem`'s quotient and a cast to an integer."""

    exact = staticmethod(math.trunc)


class RoundHalfEven(_Step):
    """`lax.round` with `TO_NEAREST_EVEN` (jnp.round)."""

    exact = staticmethod(round)


class RoundHalfAway(_Step):
    """`lax.round` with `AWAY_FROM_ZERO`."""

    exact = staticmethod(lambda f: int(math.copysign(math.floor(abs(f) + fractions.Fraction(1, 2)), f)))


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
        out[index] = bounded(fn(*(a[index] for a in args)))
    return out


#: Bits an exact constant may hold before it is carried as a `CONSTANT_DIGITS`-digit float: SymPy
#: computes powers and products of numbers exactly, and 0.5**1e300 (or a constant squared in a loop
#: forty times) would never finish. The derivatives do not depend on a constant's last digits.
MAX_EXACT_BITS = 2**17
CONSTANT_DIGITS = 60


def bounded(value):
    """`value`, or its `CONSTANT_DIGITS`-digit float when it is an exact rational over `MAX_EXACT_BITS`."""
    if isinstance(value, sympy.Rational) and value.p.bit_length() + value.q.bit_length() > MAX_EXACT_BITS:
        return sympy.Float(value, CONSTANT_DIGITS)
    return value


def power(a, b):
    """a**b; a power of two numbers whose exact value would pass `MAX_EXACT_BITS` is computed with
    `CONSTANT_DIGITS` digits instead (mpmath keeps any exponent), never exactly."""
    if isinstance(a, sympy.Rational) and isinstance(b, sympy.Rational) and abs(a) not in (0, 1):
        if abs(b) * max(a.p.bit_length(), a.q.bit_length()) > MAX_EXACT_BITS:
            with mpmath.workdps(CONSTANT_DIGITS):
                value = mpmath.power(mpmath.mpf(a.p) / a.q, mpmath.mpf(b.p) / b.q)
            # a negative base to a non-integer power: NaN, as in the float program
            return sympy.nan if isinstance(value, mpmath.mpc) else sympy.Float(value, CONSTANT_DIGITS)
    return a**b


# --- rules ------------------------------------------------------------------------------------


def logical(fn):
    return lambda *xs: fn(*(sympy.true if x is True else sympy.false if x is False else x for x in xs))


def identity(x):
    return x


def integer_pow(x, *, y):
    return elementwise(lambda a: power(a, sympy.Integer(y)), x)


def cbrt(x):
    # The real cube root: SymPy's cbrt is the principal complex root (of −8: 1 + 1.73i).
    return sympy.sign(x) * sympy.Abs(x) ** sympy.Rational(1, 3)


def clamp(lo, x, hi):
    return elementwise(lambda a, b, c: Minimum(Maximum(b, a), c), lo, x, hi)


#: Guards are ≥ 0 on their piece; the rounding of exact values at the point stays above −this.
OFF_PIECE = 1e-25


def orient(point, guards) -> list:
    """The guards, each signed to be ≥ 0 on the piece: positive ones as they are, negative ones
    negated, and one that vanishes at the point (a tie, a threshold) as −|g|, ≥ 0 there alone.
    Off its piece a `Piece` evaluates to NaN, so that at a boundary the one-sided derivatives of the
    kink analysis are unknown rather than those of the piece continued."""
    out = []
    for g in dict.fromkeys(guards):
        if not isinstance(g, sympy.Expr) or g.is_number:
            continue
        v = point.value(g) if point is not None and not isinstance(g, Piece) else 1
        if isinstance(v, mpmath.mpf) and mpmath.isnan(v):
            continue
        out.append(g if v > 0 else -g if v < 0 else -sympy.Abs(g))
    return out


def attach(value, guards, point):
    """`value` on the piece that `guards` bound (shared through one carrier when there are many)."""
    guards = orient(point, guards)
    if not guards or not isinstance(value, sympy.Expr):
        return value
    return Piece(value, *(guards if len(guards) <= 4 else [Piece(sympy.S.Zero, *guards)]))


def attach_all(values, guards, point) -> np.ndarray:
    """Every element of an array on the piece that `guards` bound (one shared carrier)."""
    values = as_objects(values)
    guards = orient(point, guards) if guards else []
    if not guards:
        return values
    carrier = guards if len(guards) <= 4 else [Piece(sympy.S.Zero, *guards)]
    out = np.empty(values.shape, dtype=object)
    for index in np.ndindex(*values.shape):
        out[index] = Piece(values[index], *carrier) if isinstance(values[index], sympy.Expr) else values[index]
    return out


# --- local pieces: steps, quotients, casts ---------------------------------------------------


def _floor_guards(x, n):
    return [x - n, x - (n + 1)]  # floor(x) = n on [n, n + 1)


def _trunc_guards(x, n):
    # trunc(x) = n on [n, n + 1) for n > 0, on (n − 1, n] for n < 0, on (−1, 1) for n = 0
    lo, hi = (n, n + 1) if n > 0 else (n - 1, n) if n < 0 else (-1, 1)
    return [x - lo, x - hi]


def floor(point, x):
    def one(a):
        v = point.value(a)
        n = sympy.Integer(int(mpmath.floor(v))) if mpmath.isfinite(v) else None
        return attach(Floor(a), _floor_guards(a, n), point) if n is not None else Floor(a)

    return elementwise(one, x)


def ceil(point, x):
    def one(a):
        v = point.value(a)
        n = sympy.Integer(int(mpmath.ceil(v))) if mpmath.isfinite(v) else None
        return attach(Ceil(a), [a - (n - 1), a - n], point) if n is not None else Ceil(a)

    return elementwise(one, x)


def _nearest(point, a, step):
    v = point.value(a)
    if not mpmath.isfinite(v):
        return step(a)
    m, e = mpmath.mpf(v).man_exp
    n = sympy.Integer(step.exact(fractions.Fraction(m) * fractions.Fraction(2) ** e))
    half = sympy.Rational(1, 2)
    return attach(step(a), [a - (n - half), a - (n + half)], point)


def round_(point, x, *, rounding_method=0):
    step = RoundHalfEven if int(rounding_method) == 1 else RoundHalfAway
    return elementwise(lambda a: _nearest(point, a, step), x)


def _trunc(point, t):
    v = point.value(t)
    if not mpmath.isfinite(v):
        return Trunc(t)
    return attach(Trunc(t), _trunc_guards(t, sympy.Integer(int(v))), point)


def rem(point, a, b):
    # a − b·trunc(a/b): the quotient is a constant on the piece, a jump at each integer.
    return elementwise(lambda x, y: x - y * _trunc(point, x / y), a, b)


def is_finite(point, x):
    """isfinite, as its value at the point: True where the exact value is a float64 number (not
    ±∞, NaN, or past float64's range, where the program's own value overflows). A value finite at
    the point is finite near it, so the condition is constant on the piece and needs no guard."""
    limit = mpmath.mpf(np.finfo(np.float64).max)

    def one(a):
        v = point.value(a)
        return sympy.true if mpmath.isfinite(v) and abs(v) <= limit else sympy.false

    return elementwise(one, x)


def _boolean(x) -> bool:
    # a SymPy Symbol is a Boolean too: only a condition that is not an expression counts
    return isinstance(x, (bool, np.bool_)) or (
        isinstance(x, sympy.logic.boolalg.Boolean) and not isinstance(x, sympy.Expr)
    )


def _integer_valued(point, e, depth=8) -> bool:
    e = point.resolve(e)
    if e.is_Integer or isinstance(e, (_Step, sympy.floor, sympy.ceiling, sympy.sign)):
        return True
    if depth == 0:
        return False
    if isinstance(e, Piece):
        return _integer_valued(point, e.args[0], depth - 1)
    if isinstance(e, sympy.Piecewise):
        return all(_integer_valued(point, pair.expr, depth - 1) for pair in e.args)
    if isinstance(e, dot.Linear) and not np.all(e.coefficients == np.round(e.coefficients)):
        return False
    if isinstance(e, (sympy.Add, sympy.Mul, _Extremum, dot.Linear, dot.Bilinear)):
        return all(_integer_valued(point, a, depth - 1) for a in e.args)
    return False


def convert_element_type(point, x, *, new_dtype, **_):
    """A cast. Between floats the identity on exact values (its rounding is in Translation.eps); of
    a condition to a number 1 where it holds, else 0; to an integer, trunc: a step at each integer,
    the identity on a value that is already an integer on its piece."""
    new_dtype = np.dtype(new_dtype)

    def one(a):
        if new_dtype == np.bool_:
            return a if _boolean(a) else sympy.Ne(a, 0)
        if _boolean(a):
            return sympy.Piecewise((sympy.S.One, a), (sympy.S.Zero, True))
        if not np.issubdtype(new_dtype, np.integer) or _integer_valued(point, a):
            return a
        return _trunc(point, a)

    if np.issubdtype(new_dtype, np.complexfloating):
        raise Unavailable(f"convert_element_type to {new_dtype}: complex values are not translated")
    return elementwise(one, x)


def select_n(point, which, *cases):
    if not is_symbolic(which):
        which, *cases = np.broadcast_arrays(which, *[as_objects(c) for c in cases])
        return np.choose(which.astype(np.int64), cases) if cases else which

    def pick(w, *branches):
        if w in (sympy.true, sympy.false) or isinstance(w, bool):
            return branches[1] if w in (True, sympy.true) else branches[0]
        if _boolean(w):  # a condition: case 1 where it holds
            return sympy.Piecewise((branches[1], w), (branches[0], True))
        # an integer index computed from the parameters: the case it picks at the point
        k = int(point.value(w))
        return attach(branches[min(max(k, 0), len(branches) - 1)], point.guards([w]), point)

    return elementwise(pick, which, *cases)


# --- reductions, products, cumulative ops ----------------------------------------------------


def reduce(op):
    def rule(x, *, axes, **_):
        x = as_objects(x)
        kept = [d for d in range(x.ndim) if d not in axes]
        moved = np.transpose(x, kept + list(axes)).reshape([x.shape[d] for d in kept] + [-1])
        out = np.empty(moved.shape[:-1], dtype=object)
        for index in np.ndindex(*out.shape):
            out[index] = op(*moved[index])  # one n-ary node, not n nested binary ones
        return out

    return rule


def dot_general(lhs, rhs, *, dimension_numbers, **_):
    (lc, rc), (lb, rb) = dimension_numbers
    lhs, rhs = np.asarray(lhs), np.asarray(rhs)
    lf = [d for d in range(lhs.ndim) if d not in lc and d not in lb]
    rf = [d for d in range(rhs.ndim) if d not in rc and d not in rb]
    nb, nl, nr = len(lb), len(lf), len(rf)
    k = int(np.prod([lhs.shape[d] for d in lc], dtype=np.int64))

    def rows(x, batch, free, contracted):  # (batch, free, contracted), as the output is laid out
        x = np.transpose(x, list(batch) + free + list(contracted))
        return x.reshape(int(np.prod(x.shape[:nb], dtype=np.int64)), -1, k), x.shape

    # Data times values, and values times values, are one node per dot product (`_dot`).
    lnum, rnum = (dot.data(x) for x in (lhs, rhs))
    l3, lt_shape = rows(as_objects(lhs), lb, lf, lc)
    r3, rt_shape = rows(as_objects(rhs), rb, rf, rc)
    lsym, rsym = (_symbols(x) for x in (l3, r3))
    lnum = None if lnum is None else rows(lnum, lb, lf, lc)[0]
    rnum = None if rnum is None else rows(rnum, rb, rf, rc)[0]
    out = np.empty((l3.shape[0], l3.shape[1], r3.shape[1]), dtype=object)
    for b, i, j in np.ndindex(*out.shape):
        if lnum is not None and rsym[b, j]:
            out[b, i, j] = dot.linear(lnum[b, i], r3[b, j])
        elif rnum is not None and lsym[b, i]:
            out[b, i, j] = dot.linear(rnum[b, j], l3[b, i])
        elif lsym[b, i] and rsym[b, j]:
            out[b, i, j] = dot.bilinear(l3[b, i], r3[b, j])
        else:
            out[b, i, j] = sum_of_products(l3[b, i], r3[b, j])
    return out.reshape(lt_shape[: nb + nl] + rt_shape[nb : nb + nr])


def _symbols(x3) -> np.ndarray:
    """Whether each row (last axis) of an object array holds symbols only."""
    if x3.size == 0:
        return np.zeros(x3.shape[:2], bool)
    return np.frompyfunc(lambda e: e.is_Symbol, 1, 1)(x3).astype(bool).all(axis=-1)


def sum_of_products(lhs, rhs):
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
        pairs = [frozenset((a, b)) for a, b in zip(lhs, rhs, strict=True)]
        if len(pairs) > 1 and all(len(p) == 2 for p in pairs) and len(set(pairs)) == len(pairs):
            return sympy.Add._from_args(
                [sympy.Mul._from_args(tuple(sorted((a, b), key=str))) for a, b in zip(lhs, rhs, strict=True)]
            )
    for a, b in zip(lhs, rhs, strict=True):
        if a.is_Rational and b.is_Symbol:
            a, b = b, a
        if not (a.is_Symbol and b.is_Rational) or a in rests:
            return sympy.Add(*[x * y for x, y in zip(lhs, rhs, strict=True)])
        if b.p != 0:  # the integers of the Rational: SymPy's == and != sympify their operand
            terms.append(a if b.p == b.q else sympy.Mul._from_args((b, a)))
            rests.add(a)
    if len(terms) < 2:
        return terms[0] if terms else sympy.S.Zero
    return sympy.Add._from_args(terms)


def cumulative(op):
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


def cumlogsumexp(x, *, axis, reverse, **_):
    running = cumulative(lambda a, b: a + b)(elementwise(sympy.exp, x), axis=axis, reverse=reverse)
    return elementwise(sympy.log, running)


def argextremum(sign):
    """argmax (sign 1) or argmin (−1): the first extreme index at the point, a constant on the
    piece where that element stays the extreme one (each other element's difference a guard)."""

    def rule(point, x, *, axes, **_):
        (axis,) = axes
        x = np.moveaxis(as_objects(x), axis, -1)
        out = np.empty(x.shape[:-1], dtype=object)
        for index in np.ndindex(*out.shape):
            row = x[index]
            values = [sign * v for v in point.values(row)]  # a bool counts as 0 or 1
            best = max(range(len(row)), key=lambda i: (_nan_first(values[i]), -i))
            if any(_boolean(a) for a in row):  # of conditions (jnp.select): their thresholds
                guards = point.guards(row)
            else:
                guards = [sign * (row[best] - row[j]) for j in range(len(row)) if j != best]
            out[index] = attach(sympy.Integer(best), guards, point)
        return out

    return rule


def _nan_first(v):
    return (1, 0) if mpmath.isnan(v) else (0, v)  # argmax and argmin take a NaN as the extreme


def _order(v):
    return (1, 0) if isinstance(v, mpmath.mpf) and mpmath.isnan(v) else (0, v)  # NaN sorts last


def sort(point, *operands, dimension, num_keys, **_):
    """The permutation at the point (stable, lexicographic in the keys), the operands picked by it;
    each position's neighbours in the first key are its guards (a tie is a kink)."""
    ops = [np.moveaxis(as_objects(o), dimension, -1) for o in operands]
    outs = [np.empty(o.shape, dtype=object) for o in ops]
    n = ops[0].shape[-1]
    for index in np.ndindex(*ops[0].shape[:-1]):
        keys = [point.values(ops[k][index]) for k in range(num_keys)]
        perm = sorted(range(n), key=lambda i: tuple(_order(k[i]) for k in keys))
        first = ops[0][index]
        gaps = [first[perm[t + 1]] - first[perm[t]] for t in range(n - 1)]
        for t in range(n):
            guards = gaps[max(t - 1, 0) : t + 1]
            for o, out in zip(ops, outs):
                out[index + (t,)] = attach(o[index][perm[t]], guards, point)
    return [np.moveaxis(out, -1, dimension) for out in outs]


def top_k(point, x, *, k, axis=-1, **_):
    """The k largest along the last axis (equal ones in index order), and their indices."""
    x = np.moveaxis(as_objects(x), axis, -1)
    values = np.empty(x.shape[:-1] + (k,), dtype=object)
    indices = np.empty(values.shape, dtype=object)
    n = x.shape[-1]
    for index in np.ndindex(*x.shape[:-1]):
        row = x[index]
        v = point.values(row)
        perm = sorted(
            range(n), key=lambda i: (tuple(-a for a in _order(v[i])) if not mpmath.isnan(v[i]) else (-1, 0), i)
        )
        gaps = [row[perm[t]] - row[perm[t + 1]] for t in range(min(k, n - 1))]
        for t in range(k):
            guards = gaps[max(t - 1, 0) : t + 1]
            values[index + (t,)] = attach(row[perm[t]], guards, point)
            indices[index + (t,)] = attach(sympy.Integer(perm[t]), guards, point)
    return [np.moveaxis(values, -1, axis), np.moveaxis(indices, -1, axis)]
