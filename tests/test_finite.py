"""Finite differences: accuracy, the error bound, steps per dtype and scale, the domain guard."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffcheck import _finite as finite
from diffcheck._autodiff import precision


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


@pytest.mark.parametrize(
    "F, x, truth",
    [
        (lambda x: jnp.sqrt(x), 1e-8, 0.5e4),  # the boundary 1e-8 away: a step relative to |x|
        (lambda x: x * jnp.log(x), 1e-7, np.log(1e-7) + 1),
        (lambda x: jnp.where(x >= 0, x**2 + 3 * x, jnp.nan), 0.0, 3.0),  # on the boundary: one-sided
    ],
)
def test_domain_boundaries_never_step_into_nan(F, x, truth):
    jac, err, _, notes = _fd(F, [x])
    assert np.isfinite(jac).all()
    assert abs(jac[0, 0] - truth) <= err[0, 0] and abs(jac[0, 0] - truth) <= 1e-6 * abs(truth)
    assert "shrunk" in notes[0] or "one-sided (forward)" in notes[0]


@pytest.mark.parametrize(
    "F, x, dF",
    [
        (jnp.sin, [0.3, -2.0], jnp.cos),
        (lambda x: jnp.exp(x) / (1 + x**2), [0.5, 40.0], lambda x: jnp.exp(x) * (1 - x) ** 2 / (1 + x**2) ** 2),
        (jax.nn.sigmoid, [30.0, -5.0], lambda x: jax.nn.sigmoid(x) * jax.nn.sigmoid(-x)),
    ],
)
def test_complex_step_is_accurate_to_machine_precision(F, x, dF):
    with precision(np.float64):
        jac = finite.complex_step(lambda t, data: F(t), np.asarray(x), {}, np.float64)
        truth = np.asarray(dF(jnp.asarray(x)))
    np.testing.assert_allclose(np.diag(jac), truth, rtol=1e-14)


@pytest.mark.parametrize(
    "F, why",
    [
        (lambda x: jnp.sum(jnp.tanh(x) * x), ""),
        (lambda x: jnp.sum(jax.nn.relu(x)), "primitive 'max'"),
        (lambda x: jnp.sum(jnp.abs(x)), "primitive 'abs'"),
        (lambda x: jnp.sum(jnp.where(x > 0, x, 2 * x)), "primitive 'gt'"),
        (lambda x: jnp.sum(jnp.tanh(x) * jnp.max(jnp.array([1.0, 2.0]))), ""),  # max of data only
        (lambda x: jnp.sum(x.astype(jnp.float32)), "a cast to a real dtype"),
    ],
)
def test_analyticity_is_decided_from_the_jaxpr(F, why):
    with precision(np.float64):
        assert finite.not_analytic(lambda t, data: F(t), np.array([0.3, -1.0]), {}) == why


def test_step_sweep_shows_second_order_convergence():
    with precision(np.float64):
        d = finite.central_differences(
            lambda t, data: jnp.sin(t), np.array([0.7]), {}, 0, finite.SWEEP_STEPS, np.float64
        )
    errors = np.abs(d[:, 0] - np.cos(0.7)) / np.cos(0.7)
    assert finite.convergence_order(finite.SWEEP_STEPS, errors) == pytest.approx(2.0, abs=0.1)
    assert 1e-4 > finite.SWEEP_STEPS[int(np.argmin(errors))] >= 1e-7  # the V's bottom: near eps^(1/3) = 6e-6


def test_compiled_finite_differences_run_in_a_thread_and_trace_the_function_only_in_the_callers(monkeypatch):
    # With compiled programs the stencil runs in a thread beside the exact method; every program
    # is compiled before it starts, so the user's function is traced in the caller's thread only.
    import threading

    import diffcheck
    from diffcheck import _autodiff
    from diffcheck._records import Method

    monkeypatch.setattr(_autodiff, "EAGER", 0)
    traced_in = set()

    def f(x):
        traced_in.add(threading.current_thread().name)
        return jnp.sum(jnp.sin(x) * x) + jnp.prod(x)

    point = diffcheck.check_grad(f, np.array([0.3, -0.7, 1.1])).points[0]
    assert point.ok and point.methods[Method.FINITE].state.value == "ok"
    assert traced_in == {threading.current_thread().name}
    assert not [t for t in threading.enumerate() if t.name == "diffcheck-method"]


def test_a_function_that_calls_back_into_python_is_differenced_in_the_callers_thread(monkeypatch):
    import threading

    import diffcheck
    from diffcheck import _autodiff

    monkeypatch.setattr(_autodiff, "EAGER", 0)
    ran_in = set()

    def f(x):
        jax.debug.callback(lambda: ran_in.add(threading.current_thread().name))
        return jnp.sum(jnp.sin(x) * x)

    diffcheck.check_grad(f, np.array([0.3, -0.7]))
    assert ran_in == {threading.current_thread().name}


def test_finite_differences_in_their_thread_stop_when_cancelled(monkeypatch):
    from diffcheck import _autodiff

    monkeypatch.setattr(_autodiff, "EAGER", 0)
    theta = np.linspace(-1.0, 1.0, 6000)  # 36,000 rows: seven calls of the program
    with precision(np.float64):
        pending = finite.start(lambda t, data: jnp.sin(t) * jnp.sum(t**2), theta, {}, np.dtype(np.float64))
    pending.cancel()
    with pytest.raises(finite.Cancelled):
        pending.result()
