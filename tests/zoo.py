"""The bug zoo: deliberately wrong gradient rules, and correct functions at hard points.

One table, used by tests/test_zoo.py (diffcheck must catch every bug and raise no false alarm)
and by benchmarks/zoo.py (the same table through jax.test_util.check_grads and, where an entry
translates, torch.autograd.gradcheck). Each entry is a JAX function, the arguments it is checked at, the
derivative order, and — for a bug — the relative size of the error the rule makes there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Entry(NamedTuple):
    name: str
    fn: Callable
    args: tuple  # the point (float64 NumPy values)
    bug: float  # 0 for correct code; else the relative size of the rule's error at this point
    order: int = 1


def _vjp(primal, rule):
    """A custom_vjp function: `primal(*x)` with the cotangent rule `rule(x, g) -> grads`."""
    f = jax.custom_vjp(primal)
    f.defvjp(lambda *x: (primal(*x), x), lambda x, g: tuple(rule(x, g)))
    return f


# --- wrong rules ---------------------------------------------------------------------------

_sin_scaled = _vjp(jnp.sin, lambda x, g: [g * jnp.cos(x[0]) * (1 + 1e-6)])
_x_sin_x = _vjp(lambda x: x * jnp.sin(x), lambda x, g: [g * x[0] * jnp.cos(x[0])])  # drops sin x
_cube_sign = _vjp(lambda x: jnp.sum(x**3), lambda x, g: [g * 3 * x[0] ** 2 * jnp.array([1.0, -1.0, 1.0])])
_matvec_T = _vjp(lambda W, v: W @ v, lambda x, g: [jnp.outer(g, x[1]).T, x[0].T @ g])  # dW transposed
_sig = lambda z: 1 / (1 + jnp.exp(-z))
_sigmoid_pre = _vjp(_sig, lambda x, g: [g * x[0] * (1 - x[0])])  # σ' from z instead of σ(z)
_softmax_T = _vjp(
    lambda x: jax.nn.softmax(x / 2.0),
    lambda x, g: [(lambda s: s * (g - jnp.sum(g * s)))(jax.nn.softmax(x[0] / 2.0))],  # forgets 1/T
)
_bias_mean = _vjp(lambda X, b: X + b, lambda x, g: [g, jnp.mean(g, axis=0)])  # mean, not sum, over the batch
_small_offset = _vjp(lambda x: 1e-5 * jnp.sin(x), lambda x, g: [g * (1e-5 * jnp.cos(x[0]) + 1e-9)])
_elu_neg = _vjp(
    lambda x: jnp.where(x > 0, x, jnp.expm1(x)),
    lambda x, g: [g * jnp.where(x[0] > 0, 1.0, jnp.expm1(x[0]))],  # exp(x) − 1, should be exp(x)
)
_log1p_rule = _vjp(jnp.log1p, lambda x, g: [g / (1 + x[0] + x[0] ** 2 * 1e-3)])
_tanh_rule = _vjp(jnp.tanh, lambda x, g: [g * (1 - jnp.tanh(x[0]) ** 2) * (1 + 1e-3)])
_mse_half = _vjp(lambda p, y: jnp.mean((p - y) ** 2), lambda x, g: [g * (x[0] - x[1]) / x[0].size, 0 * x[1]])
_softplus_sign = _vjp(jax.nn.softplus, lambda x, g: [g * jax.nn.sigmoid(-x[0])])


@jax.custom_jvp
def _exp_jvp(x):
    return jnp.exp(x)


_exp_jvp.defjvp(lambda p, t: (jnp.exp(p[0]), t[0] * jnp.exp(p[0]) * (1 + 1e-3)))


@jax.custom_jvp
def _sin_second(x):
    return jnp.sin(x)


# Right value and right first derivative at 0.3; its derivative is off by 1e-3 per unit there.
_sin_second.defjvp(lambda p, t: (jnp.sin(p[0]), t[0] * (jnp.cos(p[0]) + 1e-3 * (p[0] - 0.3))))


def _layer_norm(x):
    mu = jnp.mean(x)
    return (x - mu) / jnp.sqrt(jnp.mean((x - mu) ** 2) + 1e-5)


def _layer_norm_rule(x, g):
    # Treats the mean as a constant: drops the −mean(g) term of the true rule.
    (x,) = x
    mu = jnp.mean(x)
    s = jnp.sqrt(jnp.mean((x - mu) ** 2) + 1e-5)
    y = (x - mu) / s
    return [(g - y * jnp.mean(g * y)) / s]


_layer_norm_bug = _vjp(_layer_norm, _layer_norm_rule)
_gelu_approx = _vjp(
    lambda x: jax.nn.gelu(x, approximate=False),
    lambda x, g: [g * jax.vmap(jax.grad(lambda u: jax.nn.gelu(u, approximate=True)))(x[0])],  # tanh form's slope
)


def _transpose_wrong_primitive():
    """A linear primitive v ↦ A v whose transpose rule forgets to transpose: right in forward
    mode, wrong in reverse mode (what the dot-product test is for)."""
    from jax.extend.core import Primitive
    from jax.interpreters import ad, batching, mlir

    A = np.array([[1.0, 2.0, 0.5], [-1.0, 0.3, 4.0], [0.0, 1.5, -2.0]])
    prim = Primitive("zoo_matvec")
    prim.def_impl(lambda v: jnp.asarray(A, v.dtype) @ v)
    prim.def_abstract_eval(lambda v: jax.core.ShapedArray(v.shape, v.dtype))
    mlir.register_lowering(prim, mlir.lower_fun(lambda v: jnp.asarray(A, v.dtype) @ v, multiple_results=False))
    ad.deflinear2(prim, lambda ct, v: [prim.bind(ct)])  # should be Aᵀ ct
    batching.primitive_batchers[prim] = lambda args, dims: (
        jax.vmap(lambda v: jnp.asarray(A, v.dtype) @ v, in_axes=dims[0])(args[0]),
        0,
    )
    return lambda v: jnp.sum(jnp.sin(prim.bind(v)))


_A_v = _transpose_wrong_primitive()

X4 = np.array([[0.3, -1.2], [0.8, 0.1], [-0.4, 0.9]])

BUGS = [
    Entry("scaled_1e-6", lambda x: jnp.sum(_sin_scaled(x) ** 2), (np.array([0.3, 1.2, -0.7]),), 1e-6),
    Entry("missing_product_term", lambda x: jnp.sum(_x_sin_x(x)), (np.array([0.4, 1.1]),), 0.5),
    Entry("one_sign_flipped", lambda x: _cube_sign(x), (np.array([0.5, -1.5, 2.0]),), 2.0),
    Entry(
        "transposed_matrix_gradient",
        lambda W, v: jnp.sum(jnp.tanh(_matvec_T(W, v))),
        (np.array([[0.2, -0.5], [0.7, 0.1]]), np.array([1.3, -0.6])),
        0.5,
    ),
    Entry("sigmoid_grad_from_preactivation", lambda z: jnp.sum(_sigmoid_pre(z)), (np.array([0.8, -1.3]),), 1.0),
    Entry(
        "softmax_wrong_temperature",
        lambda x: jnp.sum(jnp.array([1.0, -2.0, 0.5]) * _softmax_T(x)),
        (np.array([0.2, 1.0, -0.3]),),
        1.0,
    ),
    Entry("bias_averaged", lambda b: jnp.sum(jnp.tanh(_bias_mean(X4, b))), (np.array([0.1, -0.2]),), 0.6),
    Entry("absolute_1e-9_on_1e-5", lambda x: jnp.sum(_small_offset(x)), (np.array([0.3, 1.0]),), 1e-4),
    Entry("wrong_only_in_second_derivative", _sin_second, (np.array(0.3),), 1e-3, order=2),
    Entry("wrong_only_for_negative_inputs", lambda x: jnp.sum(_elu_neg(x)), (np.array([-0.5, -1.5]),), 1.0),
    Entry("log1p_rule_extra_term", lambda x: jnp.sum(_log1p_rule(x)), (np.array([0.5, 2.0]),), 1e-3),
    Entry("tanh_rule_1e-3", lambda x: jnp.sum(_tanh_rule(x) * x), (np.array([0.3, -0.9]),), 1e-3),
    Entry("mse_missing_factor_2", lambda p: _mse_half(p, jnp.array([0.5, -0.2])), (np.array([1.0, 0.4]),), 0.5),
    Entry("softplus_rule_sign", lambda x: jnp.sum(_softplus_sign(x)), (np.array([1.2, -0.4]),), 0.5),
    Entry("custom_jvp_scaled_1e-3", lambda x: jnp.sum(_exp_jvp(x) * x), (np.array([0.2, -1.0]),), 1e-3),
    Entry(
        "layer_norm_mean_term_dropped",
        lambda x: jnp.sum(jnp.array([1.0, 2.0, -1.0, 0.5]) * _layer_norm_bug(x)),
        (np.array([0.3, -1.0, 2.0, 0.7]),),
        0.1,
    ),
    Entry("gelu_tanh_slope_for_exact_gelu", lambda x: jnp.sum(_gelu_approx(x)), (np.array([0.7, -1.4]),), 1e-4),
    Entry("transpose_rule_not_transposed", _A_v, (np.array([0.4, -0.3, 1.1]),), 0.5),
]


# --- correct code at hard points -----------------------------------------------------------

_sin_right = _vjp(jnp.sin, lambda x, g: [g * jnp.cos(x[0])])


@jax.custom_jvp
def _softplus_stable(x):
    return jnp.logaddexp(x, 0.0)


_softplus_stable.defjvp(lambda p, t: (_softplus_stable(p[0]), t[0] * jax.nn.sigmoid(p[0])))

CORRECT = [
    Entry("pole_1/(x-0.999)_at_1", lambda x: 1 / (x - 0.999), (np.array(1.0),), 0),
    Entry("xlogx_at_1e-7", lambda x: x * jnp.log(x), (np.array(1e-7),), 0),
    Entry("1e8+sin", lambda x: 1e8 + jnp.sin(x), (np.array(0.7),), 0),
    Entry("softplus_at_40", jax.nn.softplus, (np.array(40.0),), 0),
    Entry("logsumexp_near_1000", jax.scipy.special.logsumexp, (np.array([1000.0, 999.5, 1001.0, 998.0]),), 0),
    Entry("sigmoid_saturated", lambda z: jnp.sum(jax.nn.sigmoid(z)), (np.array([30.0, -40.0, 12.0]),), 0),
    Entry("relu_at_0_kink", lambda x: jnp.sum(jax.nn.relu(x)), (np.array([0.0, 1.5, -2.0]),), 0),
    Entry("abs_at_0_kink", lambda x: jnp.sum(jnp.abs(x) * jnp.array([1.0, 2.0])), (np.array([0.0, -0.5]),), 0),
    Entry("softplus_at_0", jax.nn.softplus, (np.array(0.0),), 0),
    Entry("log_near_0", lambda x: jnp.sum(jnp.log(x)), (np.array([1e-3, 2e-6]),), 0),
    Entry("sqrt_near_0", lambda x: jnp.sum(jnp.sqrt(x)), (np.array([1e-8, 3.0]),), 0),
    Entry("max_tie_kink", lambda x, y: jnp.maximum(x, y) * 2.0, (np.array(0.5), np.array(0.5)), 0),
    Entry("tanh_saturated", lambda x: jnp.sum(jnp.tanh(x) ** 2), (np.array([20.0, -9.0]),), 0),
    Entry("exp_at_50", lambda x: jnp.exp(x), (np.array(50.0),), 0),
    Entry("custom_vjp_right", lambda x: jnp.sum(_sin_right(x) ** 2), (np.array([0.3, 1.2, -0.7]),), 0),
    Entry("custom_jvp_right_at_-30", lambda x: jnp.sum(_softplus_stable(x)), (np.array([-30.0, 30.0, 0.2]),), 0),
    Entry("clip_at_boundary_kink", lambda x: jnp.sum(jnp.clip(x, -1.0, 1.0) ** 2), (np.array([1.0, 0.3]),), 0),
    Entry("second_derivative_of_log_sigmoid", jax.nn.log_sigmoid, (np.array(-20.0),), 0, order=2),
    Entry(
        "bce_logits_confident",
        lambda z: jnp.sum(jax.nn.softplus(z) - jnp.array([1.0, 0.0]) * z),
        (np.array([35.0, -35.0]),),
        0,
    ),
    Entry(
        "layer_norm_right",
        lambda x: jnp.sum(jnp.array([1.0, 2.0, -1.0, 0.5]) * _layer_norm(x)),
        (np.array([0.3, -1.0, 2.0, 0.7]),),
        0,
    ),
]

ZOO = BUGS + CORRECT
