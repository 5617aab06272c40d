"""The jaxpr → SymPy translation, primitive by primitive, against JAX's own values."""

import jax
import jax.extend
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import sympy
from jax import lax

from diffcheck import _graph as exact
from diffcheck import _translate as symbolic
from diffcheck.errors import Unavailable


def _primitives(fn, *args):
    names = set()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    with jax.enable_x64(True):
        walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return names


def _translate_and_compare(fn, args):
    names = [f"a{i}" for i in range(len(args))]
    tr = symbolic.translate(fn, args, names)
    outputs = [e for out in tr.outputs for e in out.reshape(-1)]
    symbols = [s for sym in tr.symbols for s in sym.reshape(-1)]
    point = np.concatenate([np.ravel(a) for a in args])
    exact_value = np.array([float(v) for v in exact.evaluate(outputs, symbols, point, tr.definitions)])
    with jax.enable_x64(True):
        value = np.concatenate([np.ravel(o) for o in jax.tree_util.tree_leaves(fn(*args))])
        rtol = max(1e-12, 10 * tr.eps)  # a cast to float32 inside rounds; the translation does not
        np.testing.assert_allclose(exact_value, value, rtol=rtol, atol=1e-14)
        if value.size == 1:  # the exact gradient of a scalar program against JAX's
            graph = exact.jacobian(outputs, symbols, point, tr.definitions)[0]
            # The whole-expression route (sympy.diff per parameter) must give the same numbers.
            whole = symbolic.jacobian([np.array(symbolic.inline(outputs, tr.definitions), dtype=object)], tr.symbols)
            expression = np.array([float(v) for v in symbolic.evaluate(whole, tr.symbols, args)])
            np.testing.assert_allclose(graph, expression, rtol=1e-13, atol=1e-15)
            grads = jax.grad(lambda *a: jnp.sum(fn(*a)), argnums=tuple(range(len(args))))(*args)
            grad = np.concatenate([np.ravel(g) for g in grads])
            np.testing.assert_allclose(graph, grad, rtol=max(1e-10, 10 * tr.eps), atol=1e-12)


def _pos(shape=(3,)):
    return lambda rng: rng.uniform(0.2, 2.0, shape)


def _any(shape=(3,)):
    return lambda rng: rng.normal(size=shape)


# (primitive that must appear in the jaxpr, function, argument samplers)
PRIMITIVES = [
    ("dot_general", lambda a, b: jnp.sum(a @ b), [_any((2, 3)), _any((3, 4))]),
    ("dot_general", lambda a, b: jnp.sum(jnp.einsum("bij,bjk->bik", a, b)), [_any((2, 2, 3)), _any((2, 3, 2))]),
    ("add", lambda a, b: jnp.sum(a + b), [_any(), _any()]),
    ("sub", lambda a, b: jnp.sum(a - b * b), [_any(), _any()]),
    ("mul", lambda a, b: jnp.sum(a * b), [_any(), _any()]),
    ("div", lambda a, b: jnp.sum(a / b), [_any(), _pos()]),
    ("neg", lambda a: jnp.sum(-a * a), [_any()]),
    ("integer_pow", lambda a: jnp.sum(a**3 + a**-2), [_pos()]),
    ("pow", lambda a, b: jnp.sum(a**b), [_pos(), _any()]),
    ("sqrt", lambda a: jnp.sum(jnp.sqrt(a)), [_pos()]),
    ("rsqrt", lambda a: jnp.sum(lax.rsqrt(a)), [_pos()]),
    ("exp", lambda a: jnp.sum(jnp.exp(a)), [_any()]),
    ("log", lambda a: jnp.sum(jnp.log(a)), [_pos()]),
    ("log1p", lambda a: jnp.sum(jnp.log1p(a)), [_pos()]),
    ("expm1", lambda a: jnp.sum(jnp.expm1(a)), [_any()]),
    ("logistic", lambda a: jnp.sum(jax.nn.sigmoid(a)), [_any()]),
    ("tanh", lambda a: jnp.sum(jnp.tanh(a)), [_any()]),
    ("erf", lambda a: jnp.sum(jax.scipy.special.erf(a)), [_any()]),
    ("sin", lambda a: jnp.sum(jnp.sin(a) * jnp.cos(a)), [_any()]),
    ("max", lambda a, b: jnp.sum(jnp.maximum(a, b)), [_any(), _any()]),
    ("min", lambda a, b: jnp.sum(jnp.minimum(a, b)), [_any(), _any()]),
    ("abs", lambda a: jnp.sum(jnp.abs(a) * a), [_any()]),
    ("sign", lambda a: jnp.sum(jnp.sign(a) * a**2), [_any()]),
    ("select_n", lambda a, b: jnp.sum(jnp.where(a > b, a * b, a + b)), [_any(), _any()]),
    ("lt", lambda a, b: jnp.sum(jnp.where(a < b, a, 2 * b)), [_any(), _any()]),
    ("reduce_sum", lambda a: jnp.sum(a, axis=1).prod(), [_any((2, 3))]),
    ("reduce_max", lambda a: jnp.max(a, axis=0).sum(), [_any((3, 2))]),
    ("broadcast_in_dim", lambda a, b: jnp.sum(a[:, None] * b[None, :]), [_any(), _any((2,))]),
    ("reshape", lambda a: jnp.sum(a.reshape(3, 2)[0] * a.reshape(2, 3)[1, :2]), [_any((6,))]),
    ("transpose", lambda a: jnp.sum(a.T @ jnp.arange(2.0)), [_any((2, 3))]),
    ("squeeze", lambda a: jnp.squeeze(a[1:2] ** 2), [_any()]),
    ("concatenate", lambda a, b: jnp.sum(jnp.concatenate([a, b * 2]) ** 2), [_any(), _any((2,))]),
    ("slice", lambda a: jnp.sum(a[1:, ::2] ** 2), [_any((3, 4))]),
    ("gather", lambda a: jnp.sum(a[jnp.array([2, 0, 2])] ** 2), [_any()]),
    ("convert_element_type", lambda a: jnp.sum(a.astype(jnp.float32).astype(jnp.float64) * a), [_any()]),
    ("stop_gradient", lambda a: jnp.sum(lax.stop_gradient(a) * a), [_any()]),
    ("jit", lambda a: jnp.sum(jax.jit(lambda x: jnp.sin(x) ** 2)(a)), [_any()]),
    ("custom_jvp_call", lambda a: jnp.sum(jax.nn.relu(a) + jax.nn.softplus(a)), [_any()]),
    ("cumsum", lambda a: jnp.sum(jnp.cumsum(a) ** 2), [_any()]),
    ("pad", lambda a: jnp.sum(jnp.pad(a, 1, constant_values=0.5) ** 2), [_any()]),
    ("clamp", lambda a: jnp.sum(lax.clamp(-0.5, a, 0.5) * a), [_any()]),
    ("iota", lambda a: jnp.sum(jnp.tril(jnp.outer(a, a))), [_any()]),
    ("scan", lambda a: lax.fori_loop(0, 3, lambda i, c: jnp.sin(c) + a, a).sum(), [_any()]),
]


@pytest.mark.parametrize("primitive, fn, samplers", PRIMITIVES, ids=[p[0] for p in PRIMITIVES])
def test_translation_matches_jax_value_and_gradient(primitive, fn, samplers, rng):
    for _ in range(3):
        args = [np.asarray(s(rng), np.float64) for s in samplers]
        assert primitive in _primitives(fn, *args)
        _translate_and_compare(fn, args)


def test_custom_vjp_is_inlined_as_its_primal():
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * 2.0,))  # a wrong rule
    tr = symbolic.translate(f, [np.float64(0.3)], ["x"])
    [[d]] = symbolic.jacobian([np.array(symbolic.inline(list(tr.outputs[0].reshape(-1)), tr.definitions))], tr.symbols)
    (x,) = d.free_symbols
    assert sympy.simplify(d - sympy.cos(x)) == 0


def test_stop_gradient_is_a_constant_for_differentiation():
    tr = symbolic.translate(lambda a: lax.stop_gradient(a) * a, [np.float64(3.0)], ["a"])
    [[d]] = exact.jacobian(list(tr.outputs[0].reshape(-1)), list(tr.symbols[0].reshape(-1)), [3.0], tr.definitions)
    assert d == 3.0


def test_unknown_primitive_is_unavailable_with_its_name():
    with pytest.raises(Unavailable, match="sort"):
        symbolic.translate(lambda a: jnp.sort(a)[0] * a[1], [np.arange(3.0)], ["a"])


def test_exact_values_carry_thirty_digits():
    tr = symbolic.translate(lambda x: jnp.exp(x), [np.float64(1.0)], ["x"])
    [value] = exact.evaluate([tr.outputs[0][()]], [tr.symbols[0][()]], [1.0], tr.definitions)
    with mpmath.workdps(50):
        assert abs(value - mpmath.e) < mpmath.mpf(10) ** -(exact.DIGITS - 2)


def test_graph_route_handles_an_exponentially_large_tree():
    def nested(x):
        for _ in range(40):  # as a tree: 4^40 nodes; as a graph: a few hundred
            x = jnp.sin(x * x + x) * jnp.cos(x)
        return x

    tr = symbolic.translate(nested, [np.float64(0.3)], ["x"])
    [[d]] = exact.jacobian(list(tr.outputs[0].reshape(-1)), list(tr.symbols[0].reshape(-1)), [0.3], tr.definitions)
    with jax.enable_x64(True):
        assert d == pytest.approx(float(jax.grad(nested)(0.3)), rel=1e-10)


def test_higher_order_expressions_by_reverse_accumulation():
    def f(w):
        return jnp.sum(jax.nn.sigmoid(w) ** 2 * jnp.tanh(w[::-1])) + jnp.abs(w).sum()

    w = np.array([0.3, -0.7, 1.2])
    tr = symbolic.translate(f, [w], ["w"])
    syms = list(tr.symbols[0].reshape(-1))
    gradient = exact.gradient_expressions(tr.outputs[0][()], syms, tr.definitions)
    third = [e for g in gradient for e in exact.gradient_expressions(g, syms, tr.definitions)]
    hessian = exact.jacobian(gradient, syms, w, tr.definitions)
    tensor = exact.jacobian(third, syms, w, tr.definitions).reshape(3, 3, 3)
    with jax.enable_x64(True):
        np.testing.assert_allclose(hessian, jax.hessian(f)(w), atol=1e-14)
        np.testing.assert_allclose(tensor, jax.jacfwd(jax.hessian(f))(w), atol=1e-14)


@pytest.mark.parametrize(
    "fn, shape",
    [
        (lambda x: jnp.squeeze(x, (0, 2)), (1, 3, 1)),
        (lambda x: x.reshape(4, 3), (2, 6)),
        (lambda x: jnp.transpose(x, (2, 0, 1)), (2, 3, 4)),
        (lambda x: x[::-1, :, ::-1], (2, 3, 4)),
        (lambda x: jnp.broadcast_to(x, (4, 2, 3)), (2, 3)),
        (lambda x: jnp.broadcast_to(x[:, None, :], (2, 5, 3)), (2, 3)),
        (lambda x: x[None, :, None], (3,)),
    ],
)
def test_layout_primitives_in_numpy_move_elements_as_jax_does(fn, shape):
    # NumPy stands in for JAX on the index arrays (no compilation): it must pick the same elements.
    x = np.arange(np.prod(shape)).reshape(shape)
    for eqn in jax.make_jaxpr(fn)(x).eqns:
        assert eqn.primitive.name in symbolic._LAYOUT
        ours = symbolic._LAYOUT[eqn.primitive.name](x, eqn.params)
        with jax.enable_x64(True):
            theirs = symbolic._bind(eqn, [x])
        np.testing.assert_array_equal(ours, theirs)
        x = theirs
