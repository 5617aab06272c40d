"""Finite differences: accuracy, the error bound, steps per dtype and scale, the domain guard."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffcheck import finite
from diffcheck.autodiff import precision


def _fd(F, theta, dtype=np.float64):
    with precision(dtype):
        return finite.jacobian(lambda t, data: F(t), np.asarray(theta, dtype), {}, np.dtype(dtype))


@pytest.mark.parametrize(
    "F, dF, x",
    [
        (jnp.sin, jnp.cos, [0.3, 1.7, -2.0]),
        (jnp.exp, jnp.exp, [0.0, 5.0, -3.0]),
        (lambda x: x**4, lambda x: 4 * x**3, [1e3, 2.0, -0.5]),
        (jax.nn.sigmoid, lambda x: jax.nn.sigmoid(x) * (1 - jax.nn.sigmoid(x)), [0.0, 3.0, 10.0]),
    ],
)
def test_richardson_is_accurate_and_its_bound_holds(F, dF, x):
    jac, err, *_ = _fd(F, x)
    with precision(np.float64):
        truth = np.diag(np.asarray(dF(jnp.asarray(x))))
    actual = np.abs(jac - truth)
    assert np.all(actual <= err + 1e-300)  # the bound is a bound
    assert np.all(np.diag(actual) <= 1e-9 * np.maximum(np.abs(np.diag(truth)), 1))


def test_step_scales_with_the_input_and_the_dtype():
    h64 = finite.base_step(np.array([1.0, 1e4]), np.float64)
    h32 = finite.base_step(np.array([1.0, 1e4], np.float32), np.float32)
    assert h64[1] / h64[0] == pytest.approx(1e4, rel=1)  # a power of two near the scale ratio
    assert np.all(h32 > h64)
    assert np.all(np.log2(h64) == np.round(np.log2(h64)))  # exact θ ± h


def test_stencil_never_steps_outside_the_domain():
    jac, err, _, notes = _fd(lambda x: jnp.log(x), [1e-3])
    assert np.isfinite(jac).all()
    assert jac[0, 0] == pytest.approx(1e3, rel=1e-6)
    assert "shrunk" in notes[0]


def test_float32_bound_covers_float32_noise():
    jac, err, *_ = _fd(lambda x: jnp.sum(jnp.tanh(x) ** 2)[None], [0.4, -1.3], np.float32)
    truth = 2 * np.tanh([0.4, -1.3]) / np.cosh([0.4, -1.3]) ** 2
    assert np.all(np.abs(jac[0] - truth) <= err[0])
