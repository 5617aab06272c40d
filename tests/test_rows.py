"""The program at a stencil's rows (`_rows`) gives the floats of the dense evaluation bit for bit,
whichever way a node's rows are summed: a dot product moved in every row (activations × weights,
activations × activations), one moved in many rows but not all, one moved in a few; and the kink
search read from those rows finds the kinks the dense evaluation's signs show."""

import numpy as np
import pytest
import sympy

from diffcheck import _dot as dot
from diffcheck import _graph as graph
from diffcheck import _kinks as kinks
from diffcheck import _rows as rows
from diffcheck._nodes import _pairwise
from diffcheck._primitives import Maximum


def _symbols(n, name="p"):
    return list(sympy.symbols(f"{name}0:{n}", real=True))


def _layers(rng, n=40, width=6):
    """A small two-layer program: activations that depend on every parameter of the first layer
    (moved in most rows), times weights (moved in two rows each), times themselves; a product of
    factors moved in a fifth of the rows each; one of two weights."""
    p = _symbols(n)
    w = _symbols(5 * width, "w")
    h, lets = _symbols(width, "h"), {}
    for i in range(width):
        lets[h[i]] = sympy.tanh(dot.linear(rng.normal(size=n), p))
    f = _symbols(width, "f")
    for i in range(width):
        lets[f[i]] = dot.linear(rng.normal(size=n // 5), p[: n // 5])
    outputs = [
        dot.bilinear(h, w[:width]),  # every row × two rows
        dot.bilinear(h, h[::-1]),  # every row × every row
        dot.bilinear(f, w[width : 2 * width]),  # a fifth of the rows × two rows
        dot.bilinear(p[:3], w[2 * width : 2 * width + 3]),  # two rows × two rows
        sympy.Add(*[h[i] * w[3 * width + i] for i in range(width)]) + w[-1],
    ]
    return p + w, outputs, lets


def _dense(symbols, outputs, lets, theta, where, to):
    points = np.repeat(theta[None, :], len(where) + 1, axis=0)
    points[1 + np.arange(len(where)), where] = to
    return graph.evaluate_float(outputs, symbols, points, lets)


def test_sums_in_reused_rows_are_the_pairwise_sums(rng):
    sums = rows._Sums(50)
    for count in list(range(1, 40)) + [64, 127, 128, 129]:
        terms = rng.normal(size=(count, 50)) * 10.0 ** rng.integers(-8, 8, size=(count, 1))
        terms[0, :3] = [np.inf, np.nan, -np.inf]
        got = sums.add(count, lambda i, out, terms=terms: np.copyto(out, terms[i]))
        np.testing.assert_array_equal(got, _pairwise(list(terms)))
        np.testing.assert_array_equal(rows._pairwise_rows(terms), _pairwise(list(terms)))


def test_dot_products_at_the_rows_equal_the_dense_evaluation(rng, monkeypatch):
    symbols, outputs, lets = _layers(rng)
    used = {"every row": 0, "some rows": 0}
    add, products = rows._Sums.add, rows._products

    def counted_add(self, count, write):
        used["every row"] += 1
        return add(self, count, write)

    def counted_products(pairs, base, sums):
        used["some rows"] += 1
        return products(pairs, base, sums)

    monkeypatch.setattr(rows._Sums, "add", counted_add)
    monkeypatch.setattr(rows, "_products", counted_products)
    theta = rng.normal(size=len(symbols))
    n = theta.size
    where = np.concatenate([np.arange(n), np.arange(n), [0, 1, n - 1]])
    to = theta[where] + 0.1 * rng.normal(size=where.size)
    want = _dense(symbols, outputs, lets, theta, where, to)
    at, moved = rows.evaluate(outputs, symbols, theta, where, to, lets)
    np.testing.assert_array_equal(at, want[0])
    np.testing.assert_array_equal(moved, want[1:])
    assert used["every row"] >= 3 and used["some rows"] >= 2  # the paths this test is for ran


def test_a_tie_moved_in_every_row_moves_only_where_its_elements_part(rng):
    # u0 = p0 + s and u1 = p1 + s with p0 = p1 at θ: a tie of the max, in values moved in every
    # row (s depends on every parameter). Only p0's and p1's stencils leave it; the rows of the
    # others move u0 and u1 alike and must keep the gap exactly 0 (no seeming move at a tie).
    n = 30
    p = _symbols(n)
    u = _symbols(2, "u")
    s = dot.linear(rng.normal(size=n), p)
    lets = {u[0]: p[0] + sympy.tanh(s), u[1]: p[1] + sympy.tanh(s)}
    theta = rng.normal(size=n)
    theta[1] = theta[0]
    found = kinks.Kinks.find([Maximum(u[0], u[1])], p, theta, np.full(n, 1e-3), lets, one_sided=False)
    assert found.at == {0, 1}


@pytest.mark.parametrize("step", [1e-3, 0.3, 3.0])
def test_the_kinks_of_a_max_of_dense_values_are_the_dense_evaluations_signs(step, rng):
    # A max over activations moved in every row: its gaps to the maximiser at θ, checked against
    # their signs at every stencil end by the dense evaluation (a maximiser that changes within
    # the stencil, even back again, crosses; larger steps cross more).
    n, width = 24, 6
    p = _symbols(n)
    h = _symbols(width, "h")
    data = rng.normal(size=(width, n))
    lets = {h[i]: sympy.tanh(dot.linear(data[i], p) / 4) for i in range(width)}
    theta = rng.normal(size=n)
    steps = np.full(n, step)
    output = Maximum(*h)
    found = kinks.Kinks.find([output], p, theta, steps, lets, one_sided=False)
    at0 = graph.evaluate_float(h, p, theta[None, :], lets)[0]
    top = int(np.argmax(at0))
    gaps = [h[top] - h[i] for i in range(width) if i != top]
    where = np.concatenate([np.arange(n), np.arange(n)])
    points = np.repeat(theta[None, :], 2 * n, axis=0)
    points[np.arange(2 * n), where] = np.concatenate([theta + steps, theta - steps])
    signs = np.sign(graph.evaluate_float(gaps, p, points, lets))
    s0 = np.sign(graph.evaluate_float(gaps, p, theta[None, :], lets)[0])
    plus, minus = signs[:n], signs[n:]
    moves = (plus != s0) | (minus != s0)
    assert found.at == set(np.flatnonzero((moves & (s0 == 0)).any(axis=1)).tolist())
    assert found.crossed == set(np.flatnonzero(moves.any(axis=1)).tolist())  # every gap > 0 at θ
    assert bool(found.crossed) == (step > 1)  # the largest steps change the maximiser
