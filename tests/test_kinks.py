"""The kinks of a max (min): only the gaps to its largest element at the point, n − 1 of them,
found on the stencil in blocks of elements; a tie, a near tie and a change of maximiser."""

import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import sympy

import diffcheck
from diffcheck import _kinks as kinks
from diffcheck import _rows as rows
from diffcheck import _translate as symbolic
from diffcheck._kinks import Kinks
from diffcheck._primitives import Maximum, Minimum


def _find(fn, point, step):
    point = np.asarray(point, np.float64)
    tr = symbolic.translate(fn, [point], ["a"])
    outputs = [e for out in tr.outputs for e in out.reshape(-1)]
    symbols = list(tr.symbols[0].reshape(-1))
    return Kinks.find(outputs, symbols, point, np.full(point.shape, step), tr.definitions)


def test_a_max_has_n_minus_1_gaps_to_its_maximiser():
    a = sympy.symbols("a0:64", real=True)
    values = {s: mpmath.mpf(v) for s, v in zip(a, np.random.default_rng(0).normal(size=64))}
    top = max(a, key=values.__getitem__)
    found, differences = kinks.gaps([Maximum(*a)], values)
    assert len(found) == 63 and not differences  # not 64·63/2 = 2,016 pairwise differences
    assert set(found) == {top - s for s in a if s != top}
    assert all(g.subs(values) > 0 for g in found)
    low = min(a, key=values.__getitem__)
    assert set(kinks.gaps([Minimum(*a)], values)[0]) == {s - low for s in a if s != low}


def test_a_max_over_values_that_do_not_compare_keeps_every_difference():
    a, b, c = sympy.symbols("a b c", real=True)
    values = {a: mpmath.mpf(1), b: mpmath.nan, c: mpmath.mpf(0)}
    assert kinks.gaps([Maximum(a, b, c)], values) == ([], [a - b, a - c, b - c])


def test_a_masked_max_has_gaps_to_its_maximiser():
    # Attention's causal mask: constant −∞ elements compare, and are never a kink.
    a, b = sympy.symbols("a b", real=True)
    values = {a: mpmath.mpf(1), b: mpmath.mpf(2), -sympy.oo: mpmath.mpf("-inf")}
    assert kinks.gaps([Maximum(a, b, -sympy.oo)], values) == ([b - a], [])
    found = _find(lambda x: jnp.max(jnp.where(jnp.arange(4) < 2, x, -jnp.inf)), [0.3, 0.3 + 1e-3, 5.0, 7.0], 1e-2)
    assert set(found.crossed) == {0, 1} and not found.at


@pytest.mark.parametrize(
    "point, at",
    [
        ([1.0, 1.0, 0.0], {0, 1}),  # the maximiser tied: a kink in both
        ([2.0, 1.0, 1.0], set()),  # a tie below the maximiser: the max is smooth there
        ([1.0, 1.0, 1.0], {0, 1, 2}),
    ],
)
def test_a_tie_in_a_max(point, at):
    found = _find(lambda a: jnp.max(a) * 2.0, point, 1e-6)
    assert set(found.at) == at and found.crossed == at


@pytest.mark.parametrize(
    "point, crossed",
    [
        ([1.0, 1.0 + 1e-3, 0.0], {0, 1}),  # the runner-up overtakes within the stencil
        ([2.0, 1.0, 1.0 + 1e-3], set()),  # two elements below the maximiser swap: no kink
        ([1.0, 1.0 + 1e-1, 0.0], set()),  # a gap wider than the stencil
    ],
)
def test_a_near_tie_in_a_max(point, crossed):
    found = _find(lambda a: jnp.max(a), point, 1e-2)
    assert not found.at and set(found.crossed) == crossed


def test_a_min_near_tie():
    found = _find(lambda a: jnp.min(a), [0.0, 1e-3, 2.0], 1e-2)
    assert not found.at and set(found.crossed) == {0, 1}


def test_a_maximiser_that_changes_within_the_stencil_at_both_ends():
    # At a = (0, 0.5) the max is a₁; at a₀ = ±1 another element is the largest at each end
    # (2a₀² + a₀ at +1, 2a₀² − a₀ at −1), so the gaps to a₁ are negative at both ends: the stencil
    # of a₀ crosses kinks though no gap differs between its ends.
    def fn(a):
        return jnp.max(jnp.stack([a[1], 2 * a[0] ** 2 + a[0], 2 * a[0] ** 2 - a[0]]))

    found = _find(fn, [0.0, 0.5], 1.0)
    assert not found.at and 0 in found.crossed
    # The maximiser replaced by the same element at both ends (a parabola over it): crossed too.
    found = _find(lambda a: jnp.maximum(a[1], a[0] ** 2), [0.0, 0.005], 0.1)
    assert 0 in found.crossed


def test_the_stencil_in_blocks_says_what_one_pass_says(monkeypatch, rng):
    p = sympy.symbols("p0:40", real=True)
    theta = rng.normal(size=40)
    x = [sympy.tanh(sum(p[i + k] * (k + 1) for k in range(5))) for i in range(0, 35)]
    args = [x[i] - x[i + 1] for i in range(34)] + [p[0] - theta[0]]
    steps = np.full(40, 0.3)
    once = kinks.stencil_kinks(args, list(p), theta, steps, gaps=10)
    assert len(kinks._blocks(args, list(p), None, 40)) == 1
    monkeypatch.setattr(rows, "MOVED_BYTES", 1024)
    assert len(kinks._blocks(args, list(p), None, 40)) > 2
    blocked = kinks.stencil_kinks(args, list(p), theta, steps, gaps=10)
    np.testing.assert_array_equal(blocked[0], once[0])
    np.testing.assert_array_equal(blocked[1], once[1])
    assert once[1].any() and not once[1].all()


def test_log_softmax_is_checked_with_its_gaps():
    # 8 classes: 7 gaps per row, not 28; the check agrees and compares the finite differences
    # of the elements whose stencil only reorders the classes below the largest.
    X = np.random.default_rng(0).normal(size=(3, 4))

    def f(W):
        return jnp.sum(jax_log_softmax(X @ W))

    report = diffcheck.check_grad(f, np.random.default_rng(1).normal(size=(4, 8)))
    assert report.ok, report
    assert all(e.verdict.name == "AGREE" for e in report.points[0].elements)


def jax_log_softmax(z):
    import jax

    return jax.nn.log_softmax(z, axis=-1)
