"""Kinks: where the function is not smooth, its one-sided derivatives there, and the subgradient test.

A kink is found on the exact program: an argument of abs, sign, floor or a comparison
(`_primitives.kink_arguments`), or the gap between a max's largest element and another (`gaps`),
that vanishes at the point, or changes sign across an element's finite-difference stencil. At
the point itself, the one-sided derivatives come from the exact program at 60 digits; equal ones
are a smooth point (the kinks cancel), else autodiff must lie between them (a subgradient) and its
convention is named.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import mpmath
import numpy as np
import sympy

from . import _graph as graph
from . import _rows as rows_
from ._primitives import StopGradient, _Extremum
from ._primitives import kink_arguments as _node_kinks
from ._records import Element, Method, Verdict
from .errors import BudgetExceeded


def kink_arguments(exprs, definitions=None, stopped=True) -> tuple[list, list]:
    """Every expression in the program whose sign change is a kink or a jump of the function, and
    the program's maxima and minima, whose kinks depend on the point (`gaps`). `stopped` False:
    none that reaches the outputs only through a stop_gradient (whose value changes no output)."""
    definitions = definitions or {}
    found, extrema, seen = [], [], set()
    stack = [e for e in exprs if isinstance(e, sympy.Basic)]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        if not stopped and isinstance(e, StopGradient):
            continue
        stack.extend((definitions[e],) if e in definitions else e.args)
        if isinstance(e, _Extremum):
            extrema.append(e)
        else:
            found += _node_kinks(e)
    return _expressions(found), extrema


def gaps(extrema, values) -> tuple[list, list]:
    """The kinks of each max near the point: aₘ − aᵢ for its maximiser m at the point (the first,
    on a tie) and every other element i (aᵢ − aₘ for a min), n − 1 expressions, each ≥ 0 there;
    and, for a max with an element that does not compare (NaN, complex), every difference.

    A max is smooth where its maximiser is unique, and has a kink where another element ties it:
    where a gap reaches 0. The other n(n − 1)/2 − (n − 1) differences change sign between elements
    below the maximiser, where the max is smooth. `values[a]`: each element's value at the point
    (exact; a constant −∞, attention's mask, compares).
    """
    found, differences = [], []
    for e in extrema:
        args = e.args
        vals = [values[a] for a in args]
        if not all(isinstance(v, mpmath.mpf) and not mpmath.isnan(v) for v in vals):
            differences += [a - b for i, a in enumerate(args) for b in args[i + 1 :]]
            continue
        top = max(range(len(args)), key=lambda i: e.direction * vals[i])  # the first of the largest
        found += [e.direction * (args[top] - a) for i, a in enumerate(args) if i != top]
    return _expressions(found), _expressions(differences)


def _expressions(found) -> list:
    return [k for k in dict.fromkeys(found) if not k.is_number]


def stencil_kinks(exprs, symbols, theta, steps, definitions=None, gaps: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Where the kink arguments `exprs` change sign on the stencil: (at, crossed), two boolean
    arrays over the elements of θ.

    For element j the stencil's ends are θ ± stepsⱼ eⱼ; an argument "moves" at j when its sign at
    either end differs from its sign at θ (a NaN differs from everything). `at`: it moves at j
    and is 0 at θ (θ may sit on the kink); `crossed`: it moves and the two ends differ (the
    stencil crosses it). The last `gaps` arguments are a max's gaps to its maximiser at θ
    (`_kinks.gaps`): one that moves away from a nonzero value at θ crosses, even with both ends
    alike, since another element is the largest at an end — the max changes its piece there.
    The same as comparing the signs of `_rows.evaluate`'s rows, without its rows × arguments
    matrix: each argument's rows are folded in as it is computed, and freed.
    """
    theta = np.asarray(theta, np.float64)
    steps = np.broadcast_to(np.asarray(steps, np.float64), theta.shape)
    n = theta.size
    at, crossed = np.zeros(n, bool), np.zeros(n, bool)
    first_gap = len(exprs) - gaps
    for lo, hi in _blocks(exprs, symbols, definitions, n):
        # A pass over the graph per block of elements: the whole stencil's rows at once, in a
        # network whose every value moves in every row, would hold a layer of 2·N floats each.
        m = hi - lo
        elements = np.arange(lo, hi)
        where = np.concatenate([elements, elements])
        to = np.concatenate([theta[lo:hi] + steps[lo:hi], theta[lo:hi] - steps[lo:hi]])

        def consume(k, value, m=m, lo=lo, hi=hi):
            base, rows, vals = value
            s0 = np.sign(base)
            plus, minus = np.full(m, s0), np.full(m, s0)
            signs, upper = np.sign(vals), rows >= m
            plus[rows[~upper]] = signs[~upper]
            minus[rows[upper] - m] = signs[upper]
            moves = (plus != s0) | (minus != s0)
            at[lo:hi] |= moves & (s0 == 0)
            crossed[lo:hi] |= moves & ((plus != minus) | (k >= first_gap and s0 != 0))

        rows_.moved(exprs, symbols, theta, where, to, definitions, consume)
    return at, crossed


#: Most elements per pass of the stencil's evaluation: 2·16,384 float64 rows (256 KiB a node) stay
#: in the cache, where 59,264 rows ran 3-6× slower per row (a dot product's 32 terms, measured).
BLOCK = 1 << 14

#: Most passes over the graph the stencil's evaluation makes (blocks of elements) before the exact
#: method gives up: each pass walks the whole graph.
MAX_PASSES = 64


def _blocks(exprs, symbols, definitions, n) -> list:
    """Blocks of elements, [lo, hi), whose stencil rows (2 per element) fit in `_rows.MOVED_BYTES` / 4
    at once: a bound from each node's rows (at most the sum of its arguments', at most all) and
    how long it lives in the evaluation order, as `_rows.moved` holds them."""
    graph_ = graph._graph(exprs, definitions)
    total = 2 * n
    rows = dict.fromkeys(symbols, 2)
    children, freed, last = graph_.lifetimes()
    live = peak = 0
    held = {}
    for i, node in enumerate(graph_.order):
        if node not in rows:
            count = min(total, sum(rows.get(a, 0) for a in children[i]))
            rows[node] = count
            if node not in graph_.definitions and count:
                size = 8 * total if count > total // 4 else 16 * count
                peak = max(peak, live + size)
                if node in last:  # else freed as soon as it is computed
                    held[node] = size
                    live += size
        for a in freed[i]:
            live -= held.pop(a, 0)
    passes = max(1, math.ceil(4 * peak / rows_.MOVED_BYTES), math.ceil(n / BLOCK))
    if passes > MAX_PASSES:
        raise BudgetExceeded(
            "too large",
            f"the kink search would hold over {rows_.MOVED_BYTES / 2**30:g} GiB of stencil rows in {MAX_PASSES} passes",
        )
    size = math.ceil(n / passes)
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


class Kinks(NamedTuple):
    """Where the function is not smooth, per parameter element (flat index)."""

    at: frozenset  # elements where a kink's argument vanishes: the point may be non-differentiable
    crossed: frozenset  # elements whose finite-difference stencil crosses a kink
    sides: dict  # element in `at` → (left, right) one-sided derivatives of every output (exact)

    @classmethod
    def none(cls):
        return cls(frozenset(), frozenset(), {})

    @classmethod
    def find(cls, outputs, symbols, theta, steps, lets, one_sided=True, stopped=True):
        args, extrema = kink_arguments(outputs, lets, stopped)
        if extrema:
            nodes = list(dict.fromkeys(a for e in extrema for a in e.args if not a.is_number))
            values = dict(zip(nodes, graph.node_values(outputs, nodes, symbols, theta, lets)))
            values.update({a: mpmath.mpf(float(a)) for e in extrema for a in e.args if a.is_number})
            extra, differences = gaps(extrema, values)
            args = _expressions(args + differences)
            known = set(args)
            extra = [g for g in extra if g not in known]
        else:
            extra = []
        if not args and not extra:
            return cls.none()
        # Signs at the point and at θ ± hⱼeⱼ for every element j: the ends of each stencil.
        at, crossed = stencil_kinks(args + extra, symbols, theta, steps, lets, gaps=len(extra))
        at = np.flatnonzero(at).tolist()
        sides = one_sided_derivatives(outputs, symbols, theta, lets, at[:MAX_KINKS]) if one_sided and at else {}
        return cls(frozenset(at), frozenset(np.flatnonzero(crossed).tolist()), sides)


#: Kink elements per point whose one-sided derivatives are computed (each costs four evaluations).
MAX_KINKS = 32
#: Digits and relative step of the one-sided differences at a kink: a step of 1e-20 at 60 digits
#: leaves 40 digits after the subtraction, and one extrapolation cancels the O(step) term.
_KINK_DIGITS, _KINK_STEP = 60, 1e-20


def one_sided_derivatives(outputs, symbols, theta, lets, elements) -> dict:
    """(left, right) derivatives of every output in each element, from the exact program at 60 digits.

    Where a one-sided quotient does not settle (a jump, not a kink), that side is NaN.
    """
    out = {}
    with mpmath.workdps(_KINK_DIGITS):
        base = [mpmath.mpf(float(v)) for v in theta]
        f0 = graph.evaluate(outputs, symbols, base, lets, digits=_KINK_DIGITS)
        for k in elements:
            t = mpmath.mpf(_KINK_STEP) * max(1, abs(float(theta[k])))
            sides = []
            for sign in (-1, 1):
                quotients = []
                for step in (t, t / 2):
                    moved = list(base)
                    moved[k] = base[k] + sign * step
                    f = graph.evaluate(outputs, symbols, moved, lets, digits=_KINK_DIGITS)
                    quotients.append([(a - b) / (sign * step) for a, b in zip(f, f0)])
                side = []
                for coarse, fine in zip(*quotients):
                    settled = abs(coarse - fine) <= mpmath.mpf(10) ** -8 * (1 + abs(fine))
                    side.append(float(2 * fine - coarse) if settled else math.nan)
                sides.append(np.array(side))
            out[k] = tuple(sides)
    return out


def same_side(left: float, right: float, scale: float = 0.0) -> bool:
    """Whether one-sided derivatives are equal: the kinks cancel and the point is smooth.

    They come from the exact program at 60 digits with an O(step²) error of about 1e-40, so they
    agree to 12 digits of their size, or to 1e-20 of the output's largest derivative `scale`
    (sinc at 0: −7.8e-42 and 7.8e-42 are both zero).
    """
    if not (math.isfinite(left) and math.isfinite(right)):
        return False
    scale = scale if math.isfinite(scale) else 0.0
    return abs(left - right) <= 1e-12 * max(abs(left), abs(right)) + 1e-20 * max(scale, 1.0)


def kink_element(name, index, output, vals, bnds, left, right, via) -> Element:
    """A non-differentiable point: a warning, unless autodiff lies outside the one-sided derivatives."""
    note = "the point is at a kink"
    if not (math.isfinite(left) and math.isfinite(right)):
        note = "the point is at a jump or a kink whose one-sided derivatives are unknown"
        return Element(name, index, output, vals, {}, {}, Verdict.KINK, None, note, via, kink={})
    kink = {"left": left, "right": right}
    inside, conventions = True, []
    for method in (Method.AUTODIFF, Method.FORWARD):
        if method not in vals:
            continue
        v = vals[method]
        slack = bnds.get(method, 0.0) + 1e-12 * max(abs(left), abs(right))
        kink[method] = float(v)
        inside = inside and bool(min(left, right) - slack <= v <= max(left, right) + slack)
        conventions.append(convention(v, left, right, slack))
    kink["subgradient"] = inside
    kink["convention"] = conventions[0] if len(set(conventions)) == 1 else " / ".join(conventions)
    if inside:
        return Element(name, index, output, vals, {}, {}, Verdict.KINK, None, note, via, kink=kink)
    note = f"at a kink, autodiff is not a subgradient: outside [{min(left, right):.17g}, {max(left, right):.17g}]"
    return Element(name, index, output, vals, {}, {}, Verdict.MISMATCH, Method.AUTODIFF, note, via, kink=kink)


def convention(value, left, right, slack) -> str:
    if abs(value - left) <= slack:
        return "left derivative"
    if abs(value - right) <= slack:
        return "right derivative"
    if abs(value - (left + right) / 2) <= slack:
        return "mean of both sides"
    if value == 0:
        return "zero"
    return "between the sides" if min(left, right) <= value <= max(left, right) else "outside the sides"
