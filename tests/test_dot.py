"""Dot products as single nodes (`_dot.Linear`, `_dot.Bilinear`) give exactly the numbers of the
same sums written as SymPy terms: values, derivatives, moved rows, higher orders."""

import pickle

import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import sympy

from diffcheck import _dot as dot
from diffcheck import _gradient as gradient
from diffcheck import _graph as graph
from diffcheck import _rows as rows
from diffcheck import _translate as translate
from diffcheck._primitives import to_sympy


def _symbols(n, name="p"):
    return list(sympy.symbols(f"{name}0:{n}", real=True))


def _programs(rng, terms):
    """The same small program twice: with dot-product nodes, and with the sums as SymPy terms."""
    p, q = _symbols(terms), _symbols(terms, "q")
    data = rng.normal(size=(3, terms))
    data[2, 1] = 0.0  # a zero coefficient is dropped
    lets, plain = {}, {}
    v = _symbols(8, "v")
    for k in range(3):
        lets[v[k]] = dot.linear(data[k], p)
        plain[v[k]] = sympy.Add(*[to_sympy(c) * s for c, s in zip(data[k], p)])
    for k, (lhs, rhs) in enumerate([(p, q), (p, p)]):  # a square too: both factors one symbol
        lets[v[3 + k]] = dot.bilinear(lhs, rhs)
        plain[v[3 + k]] = sympy.Add(*[a * b for a, b in zip(lhs, rhs)])
    for defs in (lets, plain):
        defs[v[5]] = sympy.tanh(v[0]) * v[1] + sympy.sin(v[3]) + v[2] ** 2 + v[4]
    return p + q, [v[5], v[0], v[3]], lets, plain


@pytest.mark.parametrize("terms", [2, 7, 64])
def test_values_and_derivatives_equal_the_sums_as_sympy_terms(terms, rng):
    symbols, outputs, lets, plain = _programs(rng, terms)
    assert isinstance(lets[outputs[1]], dot.Linear) and isinstance(lets[outputs[2]], dot.Bilinear)
    theta = rng.normal(size=len(symbols))
    got = graph.evaluate(outputs, symbols, theta, lets)
    want = graph.evaluate(outputs, symbols, theta, plain)
    assert all(abs(a - b) <= mpmath.mpf(10) ** -28 * (1 + abs(b)) for a, b in zip(got, want))
    # The dot product itself is exact before its one rounding, as mpmath's fdot.
    with mpmath.workdps(30):
        values = {s: mpmath.mpf(float(t)) for s, t in zip(symbols, theta)}
        node = lets[outputs[1]]
        exact = mpmath.fdot([mpmath.mpf(c) for c in node.coefficients], [values[a] for a in node.args])
        assert dot.mpmath_value(node, values) == exact
    np.testing.assert_allclose(
        graph.jacobian(outputs, symbols, theta, lets), graph.jacobian(outputs, symbols, theta, plain), rtol=1e-15
    )
    # Second derivatives go through the nodes' own derivative expressions.
    second = gradient.expressions(outputs[0], symbols, lets)
    second_plain = gradient.expressions(outputs[0], symbols, plain)
    np.testing.assert_allclose(
        graph.jacobian(second, symbols, theta, lets), graph.jacobian(second_plain, symbols, theta, plain), rtol=1e-13
    )


@pytest.mark.parametrize("terms", [2, 7, 64])
def test_moved_rows_equal_the_dense_evaluation(terms, rng):
    symbols, outputs, lets, _ = _programs(rng, terms)
    theta = rng.normal(size=len(symbols))
    n = theta.size
    # Two rows per element, as a stencil moves them, and rows that move two elements at once.
    where = np.concatenate([np.arange(n), np.arange(n), [0, 1, terms]])
    to = theta[where] + rng.normal(size=where.size)
    dense = np.repeat(theta[None, :], where.size + 1, axis=0)
    dense[1 + np.arange(where.size), where] = to
    want = graph.evaluate_float(outputs, symbols, dense, lets)
    at, moved = rows.evaluate(outputs, symbols, theta, where, to, lets)
    np.testing.assert_array_equal(at, want[0])
    np.testing.assert_array_equal(moved, want[1:])


def test_nodes_with_the_same_arguments_and_other_coefficients(rng):
    # The layer's outputs share their arguments (a row of W) and differ in their data.
    p = _symbols(5)
    v = _symbols(3, "v")
    data = rng.normal(size=(2, 5))
    lets = {v[0]: dot.linear(data[0], p), v[1]: dot.linear(data[1], p), v[2]: sympy.exp(v[0]) - v[1] ** 3}
    assert lets[v[0]] != lets[v[1]] and hash(lets[v[0]]) != hash(lets[v[1]])
    theta = rng.normal(size=5)
    where, to = np.arange(5), theta + 0.25
    dense = np.repeat(theta[None, :], 6, axis=0)
    dense[1 + where, where] = to
    _, moved = rows.evaluate([v[2], v[0], v[1]], p, theta, where, to, lets)
    np.testing.assert_array_equal(moved, graph.evaluate_float([v[2], v[0], v[1]], p, dense, lets)[1:])


def test_a_node_is_rebuilt_pickled_and_printed_as_its_sum():
    p = _symbols(3)
    node = dot.linear(np.array([0.5, -2.0, 3.0]), p)
    assert pickle.loads(pickle.dumps(node)) == node
    assert node.xreplace({p[0]: p[1]}).coefficients.tolist() == [0.5, -2.0, 3.0]
    assert sympy.expand(node.expanded() - (p[0] / 2 - 2 * p[1] + 3 * p[2])) == 0
    assert str(node) == str(node.expanded())
    assert sympy.diff(node, p[1]) == -2
    assert dot.linear(np.array([0.0, 1.0, 0.0]), p) == p[1]
    assert dot.linear(np.zeros(3), p) == 0
    assert dot.data(np.array([1.0, np.nan])) is None and dot.data(np.array([2**60 + 1])) is None


def test_a_layer_with_a_batch_is_batch_times_width_nodes(rng):
    # X @ Wᵀ of a (64, 100) batch and a (8, 100) weight: 512 dot products, not 51,200 products.
    X = jnp.asarray(rng.normal(size=(64, 100)))

    def layer(W, V):
        h = jnp.tanh(X @ W.T)
        return jnp.sum(h @ V)

    W, V = rng.normal(size=(8, 100)), rng.normal(size=(8, 3))
    tr = translate.translate(layer, [W, V], ["W", "V"])
    kinds = [type(d) for d in tr.definitions.values()]
    assert kinds.count(dot.Linear) == 512 and kinds.count(dot.Bilinear) == 64 * 3
    outputs = [e for out in tr.outputs for e in out.reshape(-1)]
    assert translate.dag_size(outputs, 10**6, tr.definitions) < 5_000
    symbols = [s for sym in tr.symbols for s in sym.reshape(-1)]
    theta = np.concatenate([W.reshape(-1), V.reshape(-1)])
    value = float(graph.evaluate(outputs, symbols, theta, tr.definitions)[0])
    want = np.sum(np.tanh(np.asarray(X, np.float64) @ W.T) @ V)  # the data as the program holds them
    np.testing.assert_allclose(value, want, rtol=1e-12)


def test_a_cast_of_an_integer_valued_dot_product_is_exact_on_its_piece():
    from diffcheck import check_grad

    A = np.array([[1.0, 2.0, -1.0], [3.0, 0.0, 1.0]])

    def f(x):
        k = (A @ jnp.round(x)).astype(int)  # integer data times integer values, cast
        return jnp.sum(k * x[:2])

    report = check_grad(f, np.array([1.2, -0.7, 2.4]))
    assert report.ok, report
    assert all(e.verdict.name == "AGREE" for e in report.points[0].elements)


def test_a_kink_search_past_its_memory_gives_up_the_exact_method_not_the_check(monkeypatch):
    from diffcheck import _kinks as kinks
    from diffcheck import check_grad
    from diffcheck._records import Method

    monkeypatch.setattr(rows, "MOVED_BYTES", 1024)
    monkeypatch.setattr(kinks, "MAX_PASSES", 2)  # blocks of elements would make it fit in 1 KiB
    X = np.random.default_rng(0).normal(size=(4, 6))

    def f(W):
        z = X @ W.T
        return jnp.sum(jnp.max(jnp.tanh(z) @ W, axis=-1))  # a max: kink arguments

    report = check_grad(f, np.random.default_rng(1).normal(size=(6, 6)))
    status = report.points[0].methods[Method.SYMBOLIC]
    assert "too large" in str(status) and "stencil rows" in str(status)
    assert report.ok, report
