"""Dot products as single nodes of the expression graph: Σ cᵢ·aᵢ of data with values (`Linear`),
and Σ aᵢ·bᵢ of two vectors of values (`Bilinear`).

A layer applied to a batch (X @ Wᵀ, or the activations of the previous layer times W) has
batch × width × inputs products. As SymPy terms, each product is an object to build, hash, count,
evaluate and differentiate, and a network with a batch passes the node budget on those alone.
As one node per dot product, the graph has batch × width nodes, the products are never objects,
and the coefficients of `Linear` stay a float64 array: data are binary fractions, so each
coefficient is exact, and the node's value is an exact sum of exact products, rounded once
(`exact_sum`), as `mpmath.fdot` would give. The derivatives are the coefficients (d/daᵢ = cᵢ) and
the other factor (d/daᵢ = bᵢ): the chain rule over these nodes is written out in `_graph`.
"""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import sympy
from mpmath.libmp import from_float, mpf_mul, mpf_sum


class Linear(sympy.Expr):
    """Σ cᵢ·aᵢ: `coefficients` (float64, exact binary fractions) times the arguments."""

    is_commutative = True
    is_extended_real = True  # of the real values the translation makes

    def __new__(cls, coefficients, *args):
        coefficients = np.array(coefficients, np.float64)  # a copy, frozen: the node is immutable
        if coefficients.shape != (len(args),):
            raise ValueError(f"Linear: {coefficients.size} coefficients for {len(args)} arguments")
        coefficients.flags.writeable = False
        obj = sympy.Expr.__new__(cls, *args)
        obj.coefficients = coefficients
        obj._key = coefficients.tobytes()
        obj._mpf = None
        return obj

    def _hashable_content(self):
        return (self._key,) + self._args

    @property
    def func(self):
        # SymPy rebuilds a node as node.func(*new_args) (xreplace): the coefficients go along.
        return functools.partial(Linear, self.coefficients)

    def __getnewargs__(self):
        return (self.coefficients, *self._args)

    def __getstate__(self):
        return None

    def __setstate__(self, state):
        pass

    def mpf_coefficients(self) -> list:
        """The coefficients as mpmath's raw numbers (exact: a float is an mpf at 53 bits)."""
        if self._mpf is None:
            # A row of data is the coefficients of every output of its layer (X[b] for each
            # hidden unit): converted once per row.
            self._mpf = _MPF_ROWS.get(self._key)
            if self._mpf is None:
                self._mpf = [from_float(c) for c in self.coefficients.tolist()]
                if len(_MPF_ROWS) >= _MPF_ROWS_KEPT:
                    _MPF_ROWS.clear()
                _MPF_ROWS[self._key] = self._mpf
        return self._mpf

    def rationals(self) -> list:
        """The coefficients as exact SymPy rationals."""
        return [_rational(c) for c in self.coefficients.tolist()]

    def expanded(self):
        """The same sum as SymPy terms (for whole-expression differentiation of small programs)."""
        return sympy.Add(*[c * a for c, a in zip(self.rationals(), self.args)])

    def _eval_derivative(self, s):
        return sympy.Add(*[c * sympy.diff(a, s) for c, a in zip(self.rationals(), self.args)])

    def _sympystr(self, printer):
        return printer._print(self.expanded())


class Bilinear(sympy.Expr):
    """Σ aᵢ·bᵢ, the arguments being a₁ … aₙ, b₁ … bₙ."""

    is_commutative = True
    is_extended_real = True

    def __new__(cls, *args):
        if len(args) % 2:
            raise ValueError("Bilinear: an odd number of arguments")
        return sympy.Expr.__new__(cls, *args)

    @property
    def halves(self) -> tuple:
        n = len(self._args) // 2
        return self._args[:n], self._args[n:]

    def expanded(self):
        lhs, rhs = self.halves
        return sympy.Add(*[a * b for a, b in zip(lhs, rhs)])

    def _eval_derivative(self, s):
        return sympy.diff(self.expanded(), s)

    def _sympystr(self, printer):
        return printer._print(self.expanded())


_MPF_ROWS: dict = {}  # coefficients' bytes → their raw mpmath numbers
_MPF_ROWS_KEPT = 4096


def _rational(c: float):
    p, q = c.as_integer_ratio()
    return sympy.Integer(p) if q == 1 else sympy.Rational(p, q)


def linear(coefficients: np.ndarray, values) -> sympy.Expr:
    """Σ coefficients[i]·values[i] (zeros dropped) as one node, or the product or 0 it reduces to."""
    keep = np.flatnonzero(coefficients)
    if keep.size == 0:
        return sympy.S.Zero
    if keep.size == 1:
        c, a = float(coefficients[keep[0]]), values[keep[0]]
        return a if c == 1 else sympy.Mul._from_args((_rational(c), a))
    return Linear(coefficients[keep], *[values[k] for k in keep.tolist()])


def bilinear(lhs, rhs) -> sympy.Expr:
    """Σ lhs[i]·rhs[i] of symbols as one node (a single product as itself)."""
    if len(lhs) <= 1:
        return sympy.Mul(lhs[0], rhs[0]) if len(lhs) else sympy.S.Zero
    return Bilinear(*lhs, *rhs)


def data(x) -> np.ndarray | None:
    """A constant operand as float64 coefficients, when each of its values is exactly one (finite
    real floats, integers up to 2⁵³, booleans); None otherwise."""
    if not isinstance(x, np.ndarray) or x.dtype == object or x.dtype.kind not in "biuf":
        return None
    out = x.astype(np.float64)
    if not np.all(np.isfinite(out)) or (x.dtype.kind in "iu" and not np.array_equal(out.astype(x.dtype), x)):
        return None
    return out


def exact_sum(products: list):
    """Σ of mpmath raw numbers (`mpf_mul` of exact factors are exact), rounded once to the
    working precision."""
    prec, rounding = mpmath.mp._prec_rounding
    return mpmath.mp.make_mpf(mpf_sum(products, prec, rounding))


def mpmath_value(node, env):
    """The node's value from its arguments' (mpmath numbers in `env`), summed exactly, rounded once."""
    values = [env[a] for a in node.args]
    try:
        raw = [v._mpf_ for v in values]
    except AttributeError:  # a complex value (mpc) somewhere: mpmath's own dot product
        if isinstance(node, Linear):
            return mpmath.fdot([mpmath.mp.make_mpf(c) for c in node.mpf_coefficients()], values)
        n = len(values) // 2
        return mpmath.fdot(values[:n], values[n:])
    if isinstance(node, Linear):
        return exact_sum([mpf_mul(c, v) for c, v in zip(node.mpf_coefficients(), raw)])
    n = len(raw) // 2
    return exact_sum([mpf_mul(a, b) for a, b in zip(raw[:n], raw[n:])])


def terms(node, values) -> list:
    """The node's products in float64 (or NumPy arrays) from its arguments' `values`, in order."""
    if isinstance(node, Linear):
        return [c * v for c, v in zip(node.coefficients.tolist(), values)]
    n = len(values) // 2
    return [a * b for a, b in zip(values[:n], values[n:])]
