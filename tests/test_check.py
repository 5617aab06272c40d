"""The public API: check_grad, assert_grad, check_case and the report they return."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffcheck
from diffcheck import Case, UsageError
from diffcheck._records import Method, Verdict


def _sin_with_rule(scale):
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * jnp.cos(x) * scale,))
    return f


def test_wrong_custom_vjp_is_a_mismatch_with_autodiff_named():
    f = _sin_with_rule(1 + 1e-7)  # off by a relative 1e-7
    report = diffcheck.check_grad(lambda x: jnp.sum(f(x) ** 2), jnp.array([0.3, 1.2, -0.7]))
    assert not report.ok
    for element in report.points[0].elements:
        assert element.verdict == "mismatch"
        assert element.odd_one_out == "autodiff"
    assert report.points[0].methods["autodiff_forward"].startswith("unavailable")


def test_correct_twin_passes():
    f = _sin_with_rule(1.0)
    report = diffcheck.check_grad(lambda x: jnp.sum(f(x) ** 2), jnp.array([0.3, 1.2, -0.7]))
    assert report.ok, str(report)


def test_assert_grad_message_names_argument_element_values_and_odd_one_out():
    f = _sin_with_rule(1 + 1e-7)
    with pytest.raises(AssertionError) as info:
        diffcheck.assert_grad(lambda a, b: jnp.sum(f(b) * a), 2.0, jnp.array([0.3, 1.2]))
    message = str(info.value)
    assert "args[1][1]" in message
    assert "symbolic=" in message and "autodiff=" in message and "finite_difference=" in message
    assert "odd one out: autodiff" in message


def test_pytrees_argnums_and_element_indices():
    def loss(params, x):
        return jnp.sum(jnp.tanh(x @ params["W"] + params["b"]) ** 2)

    params = {"W": np.arange(6.0).reshape(3, 2) / 10, "b": np.array([0.1, -0.2])}
    report = diffcheck.check_grad(loss, params, np.ones((4, 3)), argnums=0)
    assert report.ok, str(report)
    names = {(e.parameter, e.index) for e in report.points[0].elements}
    assert ("args[0]['W']", (2, 1)) in names and ("args[0]['b']", (1,)) in names
    assert len(names) == 8  # x is not differentiated


def test_array_output_gives_the_full_jacobian():
    report = diffcheck.check_grad(lambda v: jnp.tanh(v) * v[::-1], np.array([0.1, 0.5, -0.4]))
    assert report.ok
    assert {e.output for e in report.points[0].elements} == {(0,), (1,), (2,)}
    assert len(report.points[0].elements) == 9


def test_float32_run_agrees_without_false_alarm():
    report = diffcheck.check_grad(
        lambda x: jnp.sum(jax.nn.softplus(x) * jnp.exp(-x)), np.linspace(-3, 3, 7), dtype="float32"
    )
    assert report.ok, str(report)
    assert report.points[0].dtype == "float32"


def test_float32_run_keeps_the_users_x64_mode():
    """JAX's own float32 tests run with x64 on; an int64 index array closed over is then fine, and
    would fail if diffcheck turned x64 off behind the user's back (JAX refuses int64 + int32)."""
    index = np.array([2, 0, 3, 3])
    x = np.linspace(-1.0, 1.0, 5, dtype=np.float32)
    with jax.enable_x64(True):
        report = diffcheck.check_grad(lambda v: v[index] ** 2, x, dtype="float32")
        assert jax.config.jax_enable_x64
    assert report.ok, str(report)
    # In the other mode the same function is JAX's own error, and the message names the mode.
    point = diffcheck.check_grad(lambda v: v[index] ** 2, x, dtype="float32").points[0]
    assert point.error and "x64 mode off" in point.error


def test_unknown_primitive_leaves_symbolic_unavailable_and_the_rest_running():
    spectrum = lambda x: jnp.sum(jnp.fft.rfft(x).real * x[:2])  # noqa: E731
    report = diffcheck.check_grad(spectrum, np.array([0.3, 1.1, -0.2]))
    methods = report.points[0].methods
    assert methods["symbolic"].startswith("unavailable") and "'fft'" in methods["symbolic"]
    assert methods["autodiff"] == "ok" and methods["finite_difference"] == "ok"
    assert report.ok


def test_a_simple_eigenvalue_beside_a_repeated_one_is_differentiated_exactly():
    # eigenvalues 1, 1 and 1 + |x|²: the largest is smooth, the tie below it does not touch it
    eig = lambda x: jnp.linalg.eigvalsh(jnp.outer(x, x) + jnp.eye(3))[-1] * x[0]  # noqa: E731
    report = diffcheck.check_grad(eig, np.array([0.3, 1.1, -0.2]))
    [point] = report.points
    assert point.methods["symbolic"] == "ok" and not point.kinks
    assert report.ok


def test_report_to_dict_is_json_with_each_method_value():
    report = diffcheck.check_grad(lambda w, b: jax.nn.sigmoid(1.1 * w + b), 2.2, 0.0)
    data = json.loads(json.dumps(report.to_dict()))
    element = data["points"][0]["elements"][0]
    for key in ("symbolic", "autodiff", "finite_difference", "errors", "verdict"):
        assert key in element
    assert data["ok"] is True and data["schema"].startswith("diffcheck.report/")


def test_explicit_tolerances_override():
    f = _sin_with_rule(1 + 1e-7)
    fn = lambda x: jnp.sum(f(x))  # noqa: E731
    assert diffcheck.check_grad(fn, np.array([0.3]), rtol=1e-6).ok
    assert not diffcheck.check_grad(fn, np.array([0.3]), rtol=1e-9).ok


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.array([1, 2]),), "integer"),
        ((np.array([1.0 + 2j]),), "complex"),
    ],
)
def test_non_real_inputs_are_usage_errors(args, match):
    with pytest.raises(UsageError, match=match):
        diffcheck.check_grad(lambda x: jnp.sum(x), *args)


def test_non_finite_input_names_the_element():
    report = diffcheck.check_grad(lambda x: jnp.sum(x**2), np.array([1.0, np.nan]))
    assert not report.ok
    assert "args[0][1]" in report.points[0].error and "nan" in report.points[0].error


def test_gpu_that_jax_cannot_see_is_a_usage_error_saying_how_to_install():
    if jax.devices()[0].platform == "gpu":
        pytest.skip("a GPU is visible")
    with pytest.raises(UsageError, match="cuda"):
        diffcheck.check_grad(lambda x: x**2, 1.0, device="gpu")


def test_bad_dtype_is_a_usage_error():
    with pytest.raises(UsageError, match="float16"):
        diffcheck.check_grad(lambda x: x**2, 1.0, dtype="float16")


def test_sympy_expression_case_is_its_own_reference():
    import sympy

    x, y = sympy.symbols("x y")
    case = Case.from_sympy("poly", x**3 * y + sympy.exp(x * y), wrt=["x"], points={"p": dict(x=0.5, y=2.0)})
    report = diffcheck.check_case(case)
    assert report.ok, str(report)
    [element] = report.points[0].elements
    assert element.values["symbolic"] == pytest.approx(3 * 0.25 * 2 + 2 * np.exp(1.0), rel=1e-15)


def test_case_points_are_seeded():
    case = Case(name="c", fn=lambda x: jnp.sin(x), wrt="x", sample=lambda rng: dict(x=rng.normal()))
    a, b, c = case.draw(3, seed=1), case.draw(3, seed=1), case.draw(3, seed=2)
    assert a == b and a != c


@pytest.mark.parametrize("order, entries", [(1, 4), (2, 16), (3, 64), (4, 256)])
def test_orders_one_to_four_in_full(order, entries):
    def f(w, b):
        return jnp.sum(jax.nn.sigmoid(w) ** 2 * jnp.tanh(w[::-1])) + b**3 * jnp.sum(w)

    report = diffcheck.check_grad(f, np.array([0.3, -0.7, 1.2]), 0.5, order=order)
    [point] = report.points
    assert report.ok and point.methods["symbolic"] == "ok", str(report)
    assert point.order == order and len(point.elements) == entries


def test_large_hessians_are_checked_by_hessian_vector_products():
    [case] = [c for c in diffcheck.load_cases() if c.name == "simple_net"]
    report = diffcheck.check_case(case, order=2, points=0)
    [point] = report.points
    assert report.ok and point.checks.startswith("Hessian-vector products")
    assert len(point.elements) == 2 * 61  # two directions, every parameter


def test_rule_wrong_only_in_its_second_derivative():
    x0 = 0.3

    @jax.custom_jvp
    def f(x):
        return jnp.sin(x)

    # Right value and right first derivative at x0; its derivative is off by 1e-3 there.
    f.defjvp(lambda p, t: (f(p[0]), t[0] * (jnp.cos(p[0]) + 1e-3 * (p[0] - x0))))
    assert diffcheck.check_grad(f, x0).ok
    report = diffcheck.check_grad(f, x0, order=2)
    assert not report.ok
    assert report.points[0].elements[0].odd_one_out == "autodiff"


def test_order_out_of_range_is_a_usage_error():
    with pytest.raises(UsageError, match="order must be a whole number from 1 to 4"):
        diffcheck.check_grad(jnp.sin, 0.3, order=5)


def test_order_two_of_a_vector_output_beyond_the_full_tensor_goes_along_directions():
    x0 = np.linspace(0.1, 0.9, 20)  # 20 outputs × 20² parameters: 8,000 entries, over 2,048

    @jax.custom_jvp
    def f(x):
        return jnp.sin(x) * x[::-1]

    # Right value and right first derivative at x0; the second derivative is off by 1e-3.
    f.defjvp(lambda p, t: (f(p[0]), jax.jvp(lambda x: jnp.sin(x) * x[::-1], p, t)[1] + 1e-3 * (p[0] - x0) * t[0]))
    good = diffcheck.check_grad(lambda x: jnp.sin(x) * x[::-1], x0, order=2)
    assert good.ok and good.points[0].checks.startswith("Hessian-vector products of random output combinations")
    assert dict(good.points[0].methods)["symbolic"] == "ok"
    assert diffcheck.check_grad(f, x0).ok
    bad = diffcheck.check_grad(f, x0, order=2)
    assert not bad.ok
    assert {e.odd_one_out for e in bad.points[0].mismatches} == {"autodiff"}


def test_too_large_a_tensor_is_a_clear_point_error():
    report = diffcheck.check_grad(lambda x: jnp.sum(x**3), np.ones(20), order=3)
    assert "over the 2,048 checked in full" in report.points[0].error


_A = np.random.default_rng(0).standard_normal((12, 20))


def test_order_2_of_a_large_vector_output_is_checked_along_a_random_combination():
    x = np.random.default_rng(1).standard_normal(20) * 0.3
    [point] = diffcheck.check_grad(lambda v: jnp.tanh(_A @ v), x, order=2).points  # 4,800 entries
    assert point.ok, str(point.problems())
    assert point.methods["symbolic"] == "ok"
    assert "random output combinations" in point.checks

    @jax.custom_jvp
    def cube(v):
        return v**3

    # The first derivative is right; its derivative is not (stop_gradient hides x from it).
    cube.defjvp(lambda p, t: (cube(p[0]), 3.0 * jax.lax.stop_gradient(p[0]) ** 2 * t[0]))
    report = diffcheck.check_grad(lambda v: jnp.tanh(_A @ v) + cube(v[:12]), x, order=2)
    assert not report.ok
    assert {e.odd_one_out for e in report.points[0].elements if e.verdict == "mismatch"} == {"autodiff"}


@pytest.mark.parametrize(
    "fn, x, left, right, autodiff, convention",
    [
        (jax.nn.relu, 0.0, 0.0, 1.0, 0.0, "left derivative"),
        (jnp.abs, 0.0, -1.0, 1.0, 1.0, "right derivative"),
        (lambda x: jnp.maximum(x, 0.0), 0.0, 0.0, 1.0, 0.5, "mean of both sides"),
        (lambda x: jnp.clip(x, -1.0, 1.0), 1.0, 1.0, 0.0, 0.5, "mean of both sides"),
        (lambda x: -jnp.abs(x - 0.5), 0.5, 1.0, -1.0, -1.0, "right derivative"),
    ],
)
def test_kink_reports_one_sided_derivatives_and_the_convention(fn, x, left, right, autodiff, convention):
    report = diffcheck.check_grad(fn, x)
    assert report.ok  # a warning, not a failure
    [element] = report.points[0].elements
    assert element.verdict == "kink"
    k = element.kink
    assert (k["left"], k["right"], k["autodiff"]) == pytest.approx((left, right, autodiff), abs=1e-15)
    assert k["subgradient"] and k["convention"] == convention
    assert "kink" in str(report) and convention in str(report)


def test_strict_makes_a_kink_a_failure():
    report = diffcheck.check_grad(jax.nn.relu, 0.0, strict=True)
    assert not report.ok and "(strict)" in "\n".join(report.failures())
    assert diffcheck.check_grad(jax.nn.relu, 0.7, strict=True).ok  # no kink, nothing to fail


def test_softplus_cancelling_kinks_are_not_a_kink():
    # jax.nn.softplus is max(x, 0) + log1p(exp(−|x|)): two kinks at 0 that cancel exactly.
    [element] = diffcheck.check_grad(jax.nn.softplus, 0.0).points[0].elements
    assert element.verdict == "agree" and element.values["symbolic"] == 0.5
    assert "kinks cancel" in element.note


def test_a_rule_outside_the_one_sided_derivatives_is_caught_at_a_kink():
    relu = jax.custom_vjp(jax.nn.relu)
    relu.defvjp(lambda x: (jax.nn.relu(x), x), lambda x, g: (g * jnp.where(x > 0, 1.0, 2.0),))  # 2 at 0
    report = diffcheck.check_grad(relu, 0.0)
    assert not report.ok
    [element] = report.points[0].elements
    assert element.odd_one_out == "autodiff" and not element.kink["subgradient"]


def test_dot_product_test_catches_a_transpose_rule_that_is_wrong():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from zoo import BUGS

    [entry] = [e for e in BUGS if e.name == "transpose_rule_not_transposed"]
    point = diffcheck.check_grad(entry.fn, *entry.args).points[0]
    assert point.dot_product.status == "mismatch"
    assert "dot-product" in "\n".join(point.problems())
    assert diffcheck.check_grad(lambda x: jnp.sum(jnp.sin(x) * x), np.ones(3)).points[0].dot_product.status == "ok"


def test_complex_step_runs_for_analytic_code_and_says_why_not_otherwise():
    smooth = diffcheck.check_grad(lambda x: jnp.sum(jax.nn.sigmoid(x) * x), np.array([0.3, -2.0])).points[0]
    assert smooth.methods["complex_step"] == "ok"
    assert min(e.digits["complex_step"] for e in smooth.elements) >= 14
    kinked = diffcheck.check_grad(lambda x: jnp.sum(jax.nn.relu(x)), np.array([0.3, -2.0])).points[0]
    assert kinked.methods["complex_step"] == "unavailable: not analytic (primitive 'max')"


@pytest.mark.parametrize(
    "fn, complex_step",
    [
        # jnp functions that take conj and real parts of a complex input: the complex step must
        # see the program it runs (traced with complex θ), not the real one.
        (lambda x: jnp.linalg.norm(x), "unavailable: not analytic (primitive 'conj')"),
        (lambda x: jnp.var(x), "unavailable: not analytic (primitive 'select_n')"),
        # XLA's complex atan2 is not the analytic continuation of the real one.
        (lambda x: jnp.sum(jnp.arctan2(x, 2.0)), "unavailable: not analytic (primitive 'atan2')"),
        # Primitives with several operands or results.
        (lambda x: jnp.sum(jnp.stack([x * x, jnp.sin(x)]) ** 2), "ok"),
        (lambda x: jnp.sum(jnp.split(x, 3)[1] * jnp.split(x, 3)[2]), "ok"),
        (lambda x: jnp.sum(jax.lax.optimization_barrier((x * x, jnp.sin(x)))[1] - 1e4), "ok"),
    ],
    ids=["norm", "var", "atan2", "stack", "split", "optimization_barrier"],
)
def test_correct_functions_raise_no_false_alarm(fn, complex_step):
    [point] = diffcheck.check_grad(fn, np.array([0.3, 1.7, 2.9])).points
    assert point.ok, str(point.problems())
    assert point.methods["symbolic"] == "ok" and point.methods["complex_step"] == complex_step


def _grow(x):  # a while_loop: JAX has no reverse mode for it
    return jax.lax.while_loop(lambda c: c[1] < 3, lambda c: (c[0] * 1.5, c[1] + 1), (x, 0))[0]


@pytest.mark.parametrize("reduce", [False, True], ids=["vector output", "scalar output"])
def test_a_function_without_reverse_mode_is_checked_in_forward_mode(reduce):
    [point] = diffcheck.check_grad(lambda x: jnp.sum(_grow(x)) if reduce else _grow(x), np.array([0.3, 1.0])).points
    assert point.ok, str(point.problems())
    assert point.methods["symbolic"] == "ok"
    assert point.methods["autodiff_forward"].startswith("unavailable: autodiff itself is forward mode here")
    assert "autodiff in forward mode" in point.checks
    # Above order 1 autodiff's derivative needs reverse mode: the point's error, never diffcheck's.
    [point] = diffcheck.check_grad(lambda x: jnp.sum(_grow(x)), np.array([0.3, 1.0]), order=2).points
    assert point.error.startswith("autodiff failed: reverse mode: ValueError: Reverse-mode differentiation")


def test_a_wrong_rule_inside_a_while_loop_is_caught_in_forward_mode():
    @jax.custom_jvp
    def square(x):
        return x * x

    square.defjvp(lambda p, t: (square(p[0]), 3.0 * p[0] * t[0]))  # 3x instead of 2x
    fn = lambda x: jax.lax.while_loop(lambda c: c[1] < 2, lambda c: (square(c[0]), c[1] + 1), (x, 0))[0]  # noqa: E731
    [point] = diffcheck.check_grad(fn, 0.7).points
    assert not point.ok and point.elements[0].odd_one_out == "autodiff"


def test_a_float64_tolerance_loop_ends_in_the_float32_ladder():
    """Newton's iteration run to a float64 tolerance never meets it in float32: the lowered loop
    stops after `_lower.MAX_TRIPS` and its rounding is left unmeasured, never hanging."""

    def sqrt(a):
        return jax.lax.while_loop(lambda x: jnp.abs(x * x - a) > 1e-15 * a, lambda x: 0.5 * (x + a / x), a)

    [point] = diffcheck.check_grad(sqrt, 2.0).points
    assert point.ok, str(point.problems())
    assert point.elements[0].values["symbolic"] == pytest.approx(0.5 / np.sqrt(2.0), rel=1e-15)


def test_report_has_digits_sweeps_and_the_bound_used():
    report = diffcheck.check_grad(lambda w, b: jnp.sum(jax.nn.sigmoid(1.1 * w + b) ** 2), np.array([2.2, 0.3]), 0.0)
    [point] = report.points
    data = json.loads(json.dumps(report.to_dict()))["points"][0]
    assert data["tolerance"] == "error model" and data["digits"]["autodiff"] >= 14
    assert data["elements"][0]["bounds"]["finite_difference"] > 0
    assert len(point.sweeps) == 2 and all(s.order == pytest.approx(2, abs=0.2) for s in point.sweeps)
    assert all(1e-8 < s.best < 1e-3 for s in point.sweeps)
    assert diffcheck.check_grad(jnp.sin, 0.3, rtol=1e-6).points[0].tolerance == "rtol=1e-06, atol=0"
    assert "digits" in report.by_case_table()


def test_cancellation_inside_the_function_is_not_a_translation_bug():
    # softplus(35) − 35 is 6.3e-16 exactly and 0 in float64; the translation must not be rejected.
    report = diffcheck.check_grad(
        lambda z: jnp.sum(jax.nn.softplus(z) - jnp.array([1.0, 0.0]) * z), np.array([35.0, -35.0])
    )
    assert report.ok and report.points[0].methods["symbolic"] == "ok", str(report)


# --- closures over NumPy data: the user's function is never re-run in another x64 mode ---------

_RNG = np.random.default_rng(7)
_X, _LABELS, _XP = _RNG.standard_normal((16, 10)), np.array([1, 0, 3, 2, 4]), np.linspace(0, 1, 5)

CLOSURES = [
    ("matmul", lambda W: jnp.mean(jnp.tanh(_X @ W)), 0.1 * _RNG.standard_normal(10)),
    ("int labels", lambda L: jnp.sum(jax.nn.log_softmax(L)[jnp.arange(5), _LABELS]), _RNG.standard_normal((5, 5))),
    ("interp", lambda x: jnp.sum(jnp.interp(x, _XP, np.sin(_XP)) ** 2), np.array([0.3, 0.6])),
    ("update", lambda x: jnp.sum(jax.lax.dynamic_update_slice(x, np.ones(2), (1,)) ** 2), np.arange(5.0)),
    ("prng key", lambda x: jnp.sum(x * jax.random.normal(jax.random.PRNGKey(0), (3,))), np.ones(3)),
]


@pytest.mark.parametrize("fn, x", [c[1:] for c in CLOSURES], ids=[c[0] for c in CLOSURES])
def test_closures_over_numpy_data_are_checked_with_their_rounding_measured(fn, x):
    [point] = diffcheck.check_grad(fn, x).points
    assert point.ok, point.problems()
    assert "rounding not measured" not in point.checks  # the float32 ladder is the lowered program


def test_a_float64_check_runs_the_users_function_only_under_x64():
    modes = []

    def f(x):
        modes.append(bool(jax.config.jax_enable_x64))
        return jnp.sum(jnp.tanh(_X[:, :3] @ x) ** 2)

    assert diffcheck.check_grad(f, np.array([0.1, -0.2, 0.3])).ok
    assert modes and all(modes)


def test_a_custom_rule_keeps_its_rounding_ladder_and_is_still_caught():
    @jax.custom_vjp
    def g(x):
        return jnp.sin(x)

    g.defvjp(lambda x: (g(x), x), lambda x, ct: ((1 + 1e-9) * jnp.cos(x) * ct,))
    [point] = diffcheck.check_grad(lambda x: jnp.sum(g(x)), np.linspace(-3, 3, 5)).points
    assert not point.ok and point.elements[0].odd_one_out == "autodiff"
    assert "rounding not measured" not in point.checks


@pytest.mark.parametrize(
    "fn, message",
    [
        (lambda x: None, "the function returned NoneType; it must return a float array"),
        (lambda x: "abc", "the function returned str; it must return a float array"),
        (lambda x: x[:0], "the function returned an empty array"),
        (lambda x: __import__("sys").exit(0), "the function called sys.exit(0)"),
    ],
    ids=["None", "str", "empty", "sys.exit"],
)
def test_a_function_that_returns_no_derivative_is_the_points_error(fn, message):
    [point] = diffcheck.check_grad(fn, np.ones(3)).points
    assert point.error.startswith(message)


def test_an_internal_error_keeps_its_traceback_and_can_be_raised(monkeypatch):
    from diffcheck import _compare, _options

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(_compare, "elements", broken)
    [point] = diffcheck.check_grad(jnp.sin, 0.3).points
    assert point.error == "internal error in diffcheck (please report): RuntimeError: a bug"
    assert "Traceback" in point.traceback and "in broken" in point.traceback
    assert "Traceback" in point.to_dict()["traceback"]
    monkeypatch.setenv("DIFFCHECK_INTERNAL_ERRORS", "raise")
    _options.reload_settings()
    try:
        with pytest.raises(RuntimeError, match="a bug"):
            diffcheck.check_grad(jnp.sin, 0.3)
    finally:
        monkeypatch.delenv("DIFFCHECK_INTERNAL_ERRORS")
        _options.reload_settings()


_X4 = np.array([0.3, -1.2, 2.0, 0.7])


def test_finite_differences_are_compared_through_softmaxs_stopped_max():
    # jax.nn.softmax and log_softmax subtract stop_gradient(max): the output is shift invariant,
    # so the stopped value changes nothing and the function's values have autodiff's derivative
    point = diffcheck.check_grad(lambda x: jax.nn.log_softmax(x)[1] + jax.nn.softmax(x * x)[2], _X4).points[0]
    assert point.ok
    for e in point.elements:
        assert (Method.AUTODIFF, Method.FINITE) in e.errors and "not compared" not in e.note


def test_softmaxs_stopped_max_is_no_kink_of_the_function():
    # Two logits tie: the max changes its maximiser there, but the output is shift invariant, so
    # the function is smooth and finite differences are compared (they were skipped: "kinks
    # cancel here", or "the stencil crosses a kink" a step away). A max the output reads keeps its kink.
    tie = np.array([0.7, -1.2, 0.7, 0.1])
    for x in (tie, tie + np.array([0.0, 0.0, 1e-4, 0.0])):
        point = diffcheck.check_grad(lambda x: jax.nn.log_softmax(x)[1], x).points[0]
        assert point.ok
        for e in point.elements:
            assert e.verdict == Verdict.AGREE and (Method.AUTODIFF, Method.FINITE) in e.errors and not e.note
    point = diffcheck.check_grad(lambda x: jax.nn.log_softmax(x)[1] + jnp.max(x), tie).points[0]
    assert [e.verdict for e in point.elements] == [Verdict.KINK, Verdict.AGREE, Verdict.KINK, Verdict.AGREE]


def test_finite_differences_are_not_compared_where_a_stop_gradient_changes_the_derivative():
    # a straight-through estimator: autodiff's derivative is not the function's, by design
    def ste(x):
        return jnp.sum(x + jax.lax.stop_gradient(jnp.round(x) - x)) * jnp.sum(x**2)

    point = diffcheck.check_grad(ste, _X4).points[0]
    assert point.ok
    for e in point.elements:
        assert (Method.AUTODIFF, Method.FINITE) not in e.errors and "stop_gradient" in e.note


def test_a_wrong_rule_beside_a_softmax_is_caught_by_the_exact_value_and_finite_differences():
    @jax.custom_jvp
    def square(x):
        return x**2

    square.defjvp(lambda p, t: (square(p[0]), 2.01 * p[0] * t[0]))
    point = diffcheck.check_grad(lambda x: jax.nn.log_softmax(square(x))[0], _X4).points[0]
    assert point.mismatches and {e.odd_one_out for e in point.mismatches} == {Method.AUTODIFF}
    assert all(e.verdict == Verdict.MISMATCH and (Method.AUTODIFF, Method.FINITE) in e.errors for e in point.mismatches)


def test_a_program_checked_again_at_the_same_point_gets_the_same_exact_result_and_a_changed_one_its_own():
    w = np.array([2.0])
    x = np.array([0.4, -0.9])

    def f(x):
        return jnp.sum(jnp.sin(x * w))

    first = diffcheck.check_grad(f, x).points[0]
    again = diffcheck.check_grad(f, x).points[0]
    w[0] = 3.0  # the constant it closes over, changed in place: another program
    changed = diffcheck.check_grad(f, x).points[0]
    for point, scale in ((first, 2.0), (again, 2.0), (changed, 3.0)):
        assert point.ok
        got = [e.values[Method.SYMBOLIC] for e in point.elements]
        np.testing.assert_allclose(got, scale * np.cos(scale * x), rtol=1e-15)

    @jax.custom_jvp
    def g(x):
        return jnp.sin(x)

    g.defjvp(lambda p, t: (g(p[0]), 1.001 * jnp.cos(p[0]) * t[0]))
    for _ in range(2):  # the remembered exact value still catches the wrong rule
        point = diffcheck.check_grad(lambda x: jnp.sum(g(x)), x).points[0]
        assert point.mismatches and {e.odd_one_out for e in point.mismatches} == {Method.AUTODIFF}
