"""The tutorial's PyTorch programs and torch functions: torch autograd against the exact value (from
the JAX cases) and finite differences. Runs wherever torch is installed (the test extra installs it)."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from diffcheck.cases import _torch_tutorial as tutorial  # noqa: E402

import diffcheck  # noqa: E402
from diffcheck import _compare as compare  # noqa: E402
from diffcheck._records import Method, State  # noqa: E402


def _point(report):
    [point] = report.points
    return point


def test_the_tutorials_neuron_program_prints_its_gradients():
    w_grad, b_grad = tutorial.tutorial_neuron_gradients()
    assert round(float(w_grad[0]), 4) == -0.0898 and round(float(b_grad[0]), 4) == -0.0817


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sigmoid_neuron_agrees_with_the_exact_gradient(dtype):
    point = _point(tutorial.check_sigmoid_neuron(dtype=dtype))
    assert point.ok, point.problems()
    assert point.methods == {
        "symbolic": "ok",
        "autodiff": "ok",
        "autodiff_forward": "ok",
        "finite_difference": "ok",
    }
    exact = {e.parameter: e.values["symbolic"] for e in point.elements}
    assert round(exact["args[0]"], 4) == -0.0898 and round(exact["args[1]"], 4) == -0.0817
    # the torch gradient is the tutorial's own: loss.backward() at the same point
    w = torch.tensor([2.2], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    x, y = torch.tensor([1.1], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    tutorial.sigmoid_neuron(w, b, x, y).backward()
    if dtype == "float64":
        assert point.elements[0].values["autodiff"] == float(w.grad[0])
        assert point.elements[1].values["autodiff"] == float(b.grad[0])


@pytest.mark.parametrize("seed, dtype", [(0, "float64"), (1, "float64"), (0, "float32")])
def test_simple_net_agrees_with_the_exact_gradient_of_the_jax_case(seed, dtype):
    point = _point(tutorial.check_simple_net(seed=seed, dtype=dtype))
    assert point.ok, point.problems()
    assert set(point.methods.values()) == {"ok"}  # symbolic, torch reverse and forward mode, finite differences
    assert len(point.elements) == 61  # every parameter of SimpleNet
    assert [e.parameter for e in point.elements[:1]] == ["fc1.weight"]
    assert {e.parameter for e in point.elements} == set(tutorial.SIMPLE_NET_PARAMETERS)


def test_the_tutorials_literal_labels_no_longer_fit_nn_bceloss():
    net = tutorial.SimpleNet()
    with pytest.raises(ValueError, match="target size"):
        torch.nn.BCELoss()(net(torch.randn(1, 10)), torch.tensor([1.0]))


class _WrongSin(torch.autograd.Function):
    """sin with a backward rule off by a relative 1e-7."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cos(x) * (1 + 1e-7)


def test_a_wrong_torch_rule_is_the_odd_one_out():
    x = torch.tensor([0.4, 1.3], dtype=torch.float64)
    point = _point(diffcheck.check_grad(lambda x: _WrongSin.apply(x).sum(), x, reference=lambda x: jnp.sum(jnp.sin(x))))
    assert not point.ok
    assert [e.odd_one_out for e in point.elements] == ["autodiff", "autodiff"]
    assert "odd one out: autodiff" in point.problems()[0]


def test_without_a_reference_the_torch_program_is_its_own_exact_reference():
    # torch.export captures the forward (the Function's forward: sin), never its backward
    x = torch.tensor([0.4, 1.3], dtype=torch.float64)
    point = _point(diffcheck.check_grad(lambda x: _WrongSin.apply(x).sum(), x))
    assert point.methods["symbolic"] == "ok"
    assert not point.ok and all(e.odd_one_out == "autodiff" for e in point.elements)
    good = _point(diffcheck.check_grad(lambda x: torch.sin(x).sum(), x))
    assert good.ok and good.methods["symbolic"] == "ok"


def test_a_program_torch_export_cannot_capture_is_checked_against_finite_differences():
    x = torch.tensor([0.4, 1.3], dtype=torch.float64)
    branchy = lambda x: torch.sin(x).sum() if x.sum() > 0 else torch.cos(x).sum()  # noqa: E731
    point = _point(diffcheck.check_grad(branchy, x))
    assert point.methods["symbolic"].startswith("unavailable: no exact translation of the torch program")
    assert point.ok and point.methods["finite_difference"] == "ok"


def test_a_reference_of_other_mathematics_is_named():
    # torch computes tanh, the "reference" sin: the reference's value is not torch's, so it is
    # rejected before its derivative is compared (the same value check as a JAX translation's)
    x = torch.tensor([0.4], dtype=torch.float64)
    point = _point(diffcheck.check_grad(lambda x: torch.tanh(x).sum(), x, reference=lambda x: jnp.sum(jnp.sin(x))))
    assert not point.ok and point.methods["symbolic"].startswith("rejected: its function value")


def test_check_grad_routes_torch_tensors_to_torch():
    report = diffcheck.check_grad(
        lambda W, v: (W @ v).pow(3).sum(), torch.ones(2, 3, dtype=torch.float64), torch.arange(3.0)
    )
    point = _point(report)
    assert point.ok and point.value.keys() == {"torch", "symbolic"}  # the program is its own exact reference
    assert [e.parameter for e in point.elements] == ["args[0]"] * 6 + ["args[1]"] * 3


def test_check_grad_passes_the_reference_to_torch():
    x = torch.tensor([0.4, 1.3], dtype=torch.float64)
    wrong = diffcheck.check_grad(lambda x: _WrongSin.apply(x).sum(), x, reference=lambda x: jnp.sum(jnp.sin(x)))
    assert [e.odd_one_out for e in _point(wrong).elements] == ["autodiff", "autodiff"]
    with pytest.raises(diffcheck.UsageError, match="reference= is for torch functions"):
        diffcheck.check_grad(jnp.sin, 0.3, reference=jnp.sin)


def test_a_vector_output_gives_a_jacobian():
    x = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    point = _point(
        diffcheck.check_grad(lambda x: torch.softmax(x, 0), x, reference=lambda x: jnp.exp(x) / jnp.exp(x).sum())
    )
    assert point.ok and len(point.elements) == 9 and point.methods["symbolic"] == "ok"


# (what is wrong, call, the message)
BAD = [
    (
        "integer parameter",
        lambda: diffcheck.check_grad(lambda n: n * 2.0, torch.tensor([1, 2])),
        "int64 values cannot be differentiated",
    ),
    ("order 3", lambda: diffcheck.check_grad(torch.sin, torch.tensor(0.3), order=3), "or 2 (by double backward)"),
    ("no arguments", lambda: diffcheck.check_grad(torch.sin), "at least one argument"),
    ("argnums", lambda: diffcheck.check_grad(torch.sin, torch.tensor(0.3), argnums=3), "argnums [3] out of range"),
    (
        "unmapped parameter",
        lambda: diffcheck.check_module(
            tutorial.SimpleNet(),
            lambda out: out.sum(),
            torch.ones(1, 10),
            reference=tutorial.tutorial.simple_net,
            parameters={"fc1.weight": "W1"},
            data={"x": np.ones(10), "y": 1.0},
        ),
        "parameter(s) b1, W2, b2 mapped to no module parameter",
    ),
    (
        "unknown torch parameter",
        lambda: diffcheck.check_module(
            tutorial.SimpleNet(),
            lambda out: out.sum(),
            torch.ones(1, 10),
            reference=tutorial.tutorial.simple_net,
            parameters={"fc3.weight": "W1"},
            data={},
        ),
        "no parameter fc3.weight in the module",
    ),
    (
        "sparse tensor",  # was a raw TypeError from .numpy(), out of check_grad (the OpInfo suite's sparse.mm)
        lambda: diffcheck.check_grad(
            lambda a, b: torch.sparse.mm(a, b).sum(),
            torch.eye(3, dtype=torch.float64).to_sparse(),
            torch.ones(3, 2, dtype=torch.float64),
        ),
        "args[0] is a sparse tensor (layout torch.sparse_coo): pass it dense",
    ),
]


@pytest.mark.parametrize("call, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_a_usage_error(call, message):
    with pytest.raises(diffcheck.UsageError) as info:
        call()
    assert message in str(info.value)


def test_a_failing_or_undefined_function_is_the_points_error():
    def raises(x):
        raise RuntimeError("boom")

    assert _point(diffcheck.check_grad(raises, torch.tensor(0.3))).error == "the function raised RuntimeError: boom"
    nan = _point(diffcheck.check_grad(torch.log, torch.tensor(-1.0)))
    assert nan.status == "error" and "output element 0 is nan" in nan.error


def test_a_function_raising_at_a_stencil_point_is_undefined_there_not_an_internal_error():
    # torch raises where JAX gives NaN (a Cholesky factor of a matrix no longer positive definite):
    # the finite differences step around it, from the side where the function is defined
    def half_line(x):
        if bool((x < 0.5).any()):
            raise ValueError("undefined below 0.5")
        return ((x - 0.5) ** 2 + x).sum()

    point = _point(diffcheck.check_grad(half_line, torch.tensor([0.5], dtype=torch.float64)))
    assert point.error is None and point.traceback is None
    assert point.status == "agree"
    assert "one-sided (forward)" in point.elements[0].note


@pytest.mark.parametrize("alarm", ["signal", "thread"])
def test_a_timeout_inside_the_finite_differences_is_a_timeout_not_an_internal_error(monkeypatch, alarm):
    # the watchdog's Preempted raised inside the torch callback crossed XLA as an untyped
    # "CpuCallback error": an internal error (the OpInfo suite's conv1d, batch_norm, pixel_unshuffle)
    import signal
    import time

    from diffcheck import _watchdog

    monkeypatch.setattr(_watchdog, "GRACE", 0.2)
    if alarm == "thread":  # SIGALRM is someone else's: the watchdog's timer thread interrupts
        previous = signal.signal(signal.SIGALRM, lambda signum, frame: None)
    x0 = torch.tensor([0.5, 0.25], dtype=torch.float64)

    def slow_off_the_point(x):
        if not torch.equal(x.detach(), x0):  # a stencil point: Python code the watchdog interrupts
            for _ in range(1000):
                time.sleep(0.01)
        return torch.sin(x).sum()

    try:
        point = _point(diffcheck.check_grad(slow_off_the_point, x0, timeout=0.3))
    finally:
        if alarm == "thread":
            signal.signal(signal.SIGALRM, previous)
    assert point.traceback is None
    assert point.error.startswith("timed out after") and "internal error" not in point.error
    assert "slow_off_the_point" in point.error


# --- one pipeline: options and verdicts are the JAX path's (each failed on the old torch path) ---


class _ReluWrongAtZero(torch.autograd.Function):
    """relu whose backward at 0 is 5: outside [0, 1], so no subgradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.where(x > 0, 1.0, torch.where(x == 0, 5.0, 0.0)).to(x.dtype)


def test_a_wrong_torch_rule_at_a_kink_is_caught_by_the_subgradient_test():
    x = torch.tensor([0.0, 0.7], dtype=torch.float64)
    relu = lambda x: jnp.sum(jnp.maximum(x, 0.0))  # noqa: E731
    wrong = _point(diffcheck.check_grad(lambda x: _ReluWrongAtZero.apply(x).sum(), x, reference=relu))
    assert not wrong.ok and wrong.elements[0].odd_one_out == "autodiff"
    assert "not a subgradient" in wrong.elements[0].note and wrong.elements[0].kink["subgradient"] is False
    right = _point(diffcheck.check_grad(lambda x: torch.relu(x).sum(), x, reference=relu))
    assert right.ok and right.elements[0].verdict == "kink" and right.elements[0].kink["subgradient"]


def test_strict_fails_a_torch_kink():
    x = torch.tensor([0.0], dtype=torch.float64)
    relu = lambda x: jnp.sum(jnp.maximum(x, 0.0))  # noqa: E731
    point = _point(diffcheck.check_grad(lambda x: torch.relu(x).sum(), x, reference=relu, strict=True))
    assert point.strict and not point.ok and any("(strict)" in p for p in point.problems())


def test_cancelling_kinks_in_the_reference_are_a_smooth_point():
    # JAX's softplus is max(x, 0) + log1p(exp(-|x|)): kinks at 0 that cancel
    x = torch.tensor([0.0], dtype=torch.float64)
    point = _point(diffcheck.check_grad(lambda x: torch.nn.functional.softplus(x).sum(), x, reference=_softplus))
    assert point.ok and point.elements[0].verdict == "agree"
    assert point.elements[0].note.startswith("kinks cancel here")


def _softplus(x):
    import jax

    return jnp.sum(jax.nn.softplus(x))


def test_the_seed_reaches_the_torch_dot_product_test():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    runs = [_point(diffcheck.check_grad(lambda x: torch.tanh(x) * x.sum(), x, seed=s)) for s in (0, 1)]
    assert all(p.dot_product is not None and p.dot_product.ok for p in runs)
    assert runs[0].dot_product.forward != runs[1].dot_product.forward


def test_the_torch_device_is_honoured_or_refused():
    x = torch.tensor([0.3], dtype=torch.float64)
    assert _point(diffcheck.check_grad(lambda x: torch.sin(x).sum(), x, device="cpu")).device == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(diffcheck.UsageError, match="torch sees no CUDA device"):
            diffcheck.check_grad(lambda x: torch.sin(x).sum(), x, device="cuda")
    with pytest.raises(diffcheck.UsageError, match="valid devices are cpu, cuda"):
        diffcheck.check_grad(lambda x: torch.sin(x).sum(), x, device="tpu")


def test_the_torch_finite_difference_bound_has_the_absolute_floor():
    # an output that cancels to rounding level: the floor keeps its noise from being a mismatch
    x = torch.tensor([35.0], dtype=torch.float64)
    point = _point(diffcheck.check_grad(lambda x: (torch.sigmoid(x) - 1.0).sum() * 1e3, x))
    floor = compare.rounding_floor(point.value["torch"], point.elements[0].values["autodiff"])
    assert floor > 0 and point.elements[0].bounds["finite_difference"] >= floor


# --- the tutorial's programs as written: exact from the torch code alone -----------------------


def test_the_tutorials_neuron_as_written_is_exact_from_the_torch_code():
    point = _point(tutorial.check_sigmoid_neuron_as_written())
    assert point.ok and point.methods["symbolic"] == "ok" and point.dtype == "float32"
    grads = {e.parameter: e.values["symbolic"] for e in point.elements}
    assert round(grads["args[0]"], 4) == -0.0898 and round(grads["args[1]"], 4) == -0.0817


@pytest.mark.parametrize("seed", [0, 1])
def test_simple_net_as_written_is_exact_from_the_torch_code_and_agrees_with_the_jax_case(seed):
    written = _point(tutorial.check_simple_net_as_written(seed))
    assert written.ok and written.methods["symbolic"] == "ok" and written.dtype == "float32"
    assert [e.parameter for e in written.elements[:1]] == ["fc1.weight"] and len(written.elements) == 61
    # the two exact references — torch's program captured, and the JAX case — give one gradient
    jax_case = _point(tutorial.check_simple_net(seed=seed, dtype="float32"))
    torch_exact = np.array([e.values["symbolic"] for e in written.elements])
    jax_exact = np.array([e.values["symbolic"] for e in jax_case.elements])
    np.testing.assert_allclose(torch_exact, jax_exact, rtol=1e-12, atol=1e-15)


def test_a_float32_module_is_checked_in_float32_and_a_float64_copy_in_float64():
    torch.manual_seed(0)
    net = tutorial.SimpleNet()
    x = torch.randn(2, 10)
    copy = tutorial.SimpleNet()
    copy.load_state_dict(net.state_dict())
    for module, inputs, dtype in ((net, x, "float32"), (copy.double(), x.double(), "float64")):
        point = _point(diffcheck.check_grad(module, inputs, loss=lambda out: out.sum()))
        assert point.ok and point.dtype == dtype and point.methods["symbolic"] == "ok", point.problems()


# --- torch.autograd.Function: double backward, and gradcheck's nondeterminism check ----------------


class _Sin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cos(x)


class _NoisySin(_Sin):
    @staticmethod
    def backward(ctx, g):  # a GPU kernel's race, in miniature: a little noise on every call
        (x,) = ctx.saved_tensors
        return g * torch.cos(x) * (1 + 1e-9 * torch.randn_like(x))


class _DetachedSin(_Sin):
    @staticmethod
    def backward(ctx, g):  # right at order 1; its own derivative is lost (cos of a detached x)
        (x,) = ctx.saved_tensors
        return g * torch.cos(x.detach())


_X3 = torch.tensor([0.4, 1.3, -0.7], dtype=torch.float64)


def test_a_backward_with_random_noise_is_reported_not_deterministic():
    point = diffcheck.check_grad(lambda x: _NoisySin.apply(x).sum(), _X3).points[0]
    status = point.methods["autodiff"]
    assert status.state == State.NONDETERMINISTIC and "two backward passes at the same input differ" in status
    assert not point.ok and not point.mismatches  # its values are not compared: no element is blamed
    assert point.methods["symbolic"] == "ok"


def test_a_function_drawing_new_random_numbers_on_every_call_is_the_points_error_not_a_mismatch():
    fn = lambda x: torch.nn.functional.dropout(x, 0.5, training=True).sum()  # noqa: E731
    x = torch.linspace(0.5, 2.0, 64, dtype=torch.float64)  # two masks alike: 2⁻⁶⁴
    point = diffcheck.check_grad(fn, x).points[0]
    assert point.status == "error" and not point.mismatches
    assert "the function is not deterministic" in point.error and "torch.manual_seed" in point.error


def _seeded_dropout(x):
    torch.manual_seed(11)
    return (torch.nn.functional.dropout(x, 0.5, training=True) * x).sum()


def test_a_seeded_dropout_is_checked_exactly_and_in_forward_mode():
    point = diffcheck.check_grad(_seeded_dropout, _X3).points[0]
    assert point.ok and point.methods["symbolic"] == "ok" and point.methods["autodiff_forward"] == "ok"


def test_a_seeded_normals_zero_gradient_is_caught_with_autodiff_the_odd_one_out():
    # torch defines normal()'s gradient in its mean as 0; the seeded function's derivative is 1
    def fn(mean):
        torch.manual_seed(5)
        return torch.normal(mean, 0.5).sum()

    point = diffcheck.check_grad(fn, _X3).points[0]
    assert point.methods["symbolic"] == "ok" and point.mismatches
    assert {e.odd_one_out for e in point.mismatches} == {Method.AUTODIFF}


def test_a_deterministic_backward_is_not_reported():
    point = diffcheck.check_grad(lambda x: _Sin.apply(x).sum(), _X3).points[0]
    assert point.ok and point.methods["autodiff"] == "ok" and "deterministic" not in point.checks


def test_double_backward_of_a_function_is_checked_at_order_2():
    point = diffcheck.check_grad(lambda x: (_Sin.apply(x) ** 2).sum(), _X3, order=2).points[0]
    assert point.ok and point.order == 2 and point.methods["symbolic"] == "ok"
    assert len(point.elements) == 9  # the whole Hessian


def test_a_wrong_double_backward_is_caught_with_autodiff_the_odd_one_out():
    point = diffcheck.check_grad(lambda x: (_DetachedSin.apply(x) ** 2).sum(), _X3, order=2).points[0]
    assert point.mismatches and {e.odd_one_out for e in point.mismatches} == {Method.AUTODIFF}
    # at order 1 the same rule is right
    assert diffcheck.check_grad(lambda x: (_DetachedSin.apply(x) ** 2).sum(), _X3).ok


def test_an_empty_output_is_the_points_error():
    point = diffcheck.check_grad(lambda x: x[:0] * 2, _X3).points[0]
    assert "no elements" in point.error


# --- torch's warnings under filterwarnings=error (as this suite runs) ------------------------------


def test_diffcheck_itself_raises_no_torch_warning_as_errors():
    # capture (torch.export), forward mode (torch.func, which loads decompositions with
    # torch.jit.script), the float32 ladder and double backward, under pytest's filterwarnings=error
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.GELU(), torch.nn.Softmax(-1)).double()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = diffcheck.check_grad(net, torch.ones(2, 3, dtype=torch.float64), loss=lambda o: o[:, 0].sum())
        assert report.ok and report.points[0].methods["autodiff_forward"] == "ok"
        assert diffcheck.check_grad(net.float(), torch.ones(2, 3), loss=lambda o: o[:, 0].sum()).ok
        assert diffcheck.check_grad(lambda x: torch.tanh(x).prod(), _X3, order=2).ok


def test_a_torch_warning_raised_as_an_error_is_the_points_error_and_says_so():
    # a warning torch raises on every call (its C++ TORCH_WARN_ONCE ones fire once per process:
    # a test on them depends on the order the suite runs in)
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            point = diffcheck.check_grad(lambda x: torch.nn.functional.softmax(x)[0, 0], _X3[None, :]).points[0]
        assert "UserWarning: Implicit dimension choice for softmax" in point.error and "warnings filter" in point.error


def test_a_bfloat16_output_is_read_exactly_not_refused():
    # NumPy has no bfloat16: the output crosses as float32, which holds every bfloat16 exactly
    point = diffcheck.check_grad(lambda x: (4 * x).bfloat16(), torch.tensor([0.5, 0.25], dtype=torch.float64)).points[0]
    assert point.error is None, point.error
    assert point.value["torch"] == 2.0


def _branchy_max(x):
    # a data-dependent branch: torch.export refuses it, so no exact value is there to judge
    return torch.maximum(x[0], x[1]) if x.sum() > 0 else x.sum()


def test_a_stencil_crossing_a_kink_without_an_exact_value_is_looked_at_again_not_a_mismatch():
    from diffcheck import _finite as finite

    x = torch.tensor([1.0, 1.0 - 0.0034], dtype=torch.float64)  # 0.43 of the step apart
    h = finite.base_step(x.numpy(), np.float64)
    first = finite.jacobian(lambda t, _: jnp.maximum(t[0], t[1])[None], x.numpy(), {}, np.float64)
    assert abs(first.jac[0, 1] - 0.0) > first.bound[0, 1] and 0.4 < 0.0034 / h[1] < 0.5  # the premise
    point = diffcheck.check_grad(_branchy_max, x).points[0]
    assert point.methods["symbolic"].state == State.UNAVAILABLE
    assert point.ok and not point.mismatches
    assert any("depended on it" in e.note for e in point.elements)


def test_a_wrong_rule_without_an_exact_value_is_still_caught_after_the_second_look():
    def fn(x):
        return _WrongSin.apply(x).sum() if x.sum() > 0 else x.sum()

    point = diffcheck.check_grad(
        fn,
        _X3,
    ).points[0]
    assert point.methods["symbolic"].state == State.UNAVAILABLE and point.mismatches
