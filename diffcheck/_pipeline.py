"""The data path for one problem at one point: the three derivatives, compared, as a record.

    problem → numeric methods (autodiff, finite differences) → exact method (SymPy) → compare → record

Where the numeric programs are compiled, forward mode and the finite differences each run in a
thread of their own while the complex step and the exact method run (`_autodiff.start_forward`,
`_finite.start`); the exact method waits for the steps before its kink search, the comparison for
all of them.

`check_point` never raises because of a mismatch: a method that cannot run is unavailable and the
others go on; a problem with the user's function is the point's error; a bug in diffcheck is an
internal error that keeps its traceback (`DIFFCHECK_INTERNAL_ERRORS=raise` re-raises it).
"""

from __future__ import annotations

import contextlib
import time
import traceback
from typing import NamedTuple

import numpy as np

from . import _autodiff as autodiff
from . import _compare as compare
from . import _precision as precision_audit
from . import _probes as probes
from . import _watchdog as watchdog
from ._autodiff import dtype as dtype_of
from ._diagnosis import diagnose
from ._exact import Exact, departure, exact_method, remembered
from ._kinks import Kinks
from ._numeric import JAX, NonFiniteOutput
from ._options import raise_internal_errors
from ._plan import MAX_ORDER, labels
from ._records import Method, PointResult, State, Status, unavailable
from .errors import PointError, UsageError


def check_point(
    problem,
    *,
    dtype=None,
    device=None,
    order=1,
    rtol=None,
    atol=None,
    timeout=None,
    seed=0,
    strict=False,
    precision="warn",
) -> PointResult:
    """Checks `problem.fn`'s derivatives in every parameter element, three ways, and compares them.

    `order` > 1 checks the full derivative tensor when it has at most `_plan.MAX_TENSOR` entries,
    else (order 2 of a scalar) Hessian-vector products along random directions drawn with `seed`.
    `timeout` bounds the exact method (seconds). `precision` "strict" fails avoidable precision
    loss (`_precision`), "warn" reports it. Other options as `diffcheck.check_grad`.
    """
    start = time.perf_counter()
    run = _Run.of(problem, dtype, device, order, rtol, atol, timeout, seed, strict, precision)
    try:
        # NumPy's floating-point warnings from diffcheck's own arithmetic (a NaN derivative cast,
        # an overflow in a bound) are results here, never warnings for the user.
        with np.errstate(all="ignore"), _in_users_mode(run.dtype):
            problem.check_finite()
            # The point as the run's dtype sees it: every method (and the exact truth) is evaluated there.
            leaves = [np.asarray(leaf, run.dtype).astype(np.float64) for leaf in problem.leaves]
            # `timeout` bounds the whole point: past it plus grace the numeric methods are preempted
            # (a sleeping function, a Python loop, JAX tracing), and the symbolic method stops at it.
            end = None if timeout is None else time.monotonic() + timeout
            with run.on_device, watchdog.deadline(_past(end)):
                numeric = run.backend.methods(problem, leaves, run.dtype, order, seed)
            try:  # the finite differences may still be running in their thread: the exact method meanwhile
                exact = _exact(problem, leaves, numeric, run, timeout, end)
                with watchdog.deadline(_past(end)):
                    numeric = numeric.finished()
            finally:
                numeric.cancel()
            compared = _compare(problem, leaves, numeric, exact, run)
    except watchdog.Preempted as exc:
        seconds = time.perf_counter() - start
        message = f"timed out after {seconds:.1f} s (--timeout {timeout:g} s for the point, plus {watchdog.GRACE:g} s)"
        return _failed(problem, run, start, message + watchdog.phase_of(exc))
    except NonFiniteOutput as exc:
        why = ""
        if problem.translation is None and not problem.no_reference:
            program = problem.reference or problem.fn
            why = departure(program, leaves, problem.names, problem.data, exc.output, timeout)
        why = why or "outside the function's domain, or an overflow"
        return _failed(problem, run, start, f"{exc} ({why})")
    except PointError as exc:
        return _failed(problem, run, start, str(exc))
    except SystemExit as exc:  # the user's function called sys.exit: that point's error, not the run's end
        return _failed(problem, run, start, f"the function called sys.exit({exc.code!r})")
    except Exception as exc:  # noqa: BLE001 - one broken point must not stop the others
        if raise_internal_errors():
            raise
        message = f"internal error in diffcheck (please report): {type(exc).__name__}: {exc}".splitlines()[0]
        return _failed(problem, run, start, message, traceback.format_exc())
    return _record(problem, run, numeric, exact, compared, start)


def _in_users_mode(dtype):
    """A float32 run runs the user's function in the x64 mode they run it in (`_autodiff.users_mode`)."""
    return autodiff.users_mode() if dtype == np.float32 else contextlib.nullcontext()


class _Run(NamedTuple):
    """The options of one check, resolved: the dtype, the device, the backend of the numeric methods."""

    dtype: np.dtype
    platform: str
    on_device: object  # a context that runs the numeric methods on the device
    backend: object
    order: int
    rtol: float | None
    atol: float | None
    strict: bool
    precision: str
    timeout: float | None

    @classmethod
    def of(cls, problem, dtype, device, order, rtol, atol, timeout, seed, strict, precision="warn"):
        backend = problem.backend or JAX
        on_device, platform = backend.device(device)
        if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= MAX_ORDER:
            raise UsageError(f"order must be an integer from 1 to {MAX_ORDER}, got {order!r}")
        return cls(dtype_of(dtype), platform, on_device, backend, order, rtol, atol, strict, precision, timeout)


class _Compared(NamedTuple):
    methods: dict
    elements: list
    expectations: list
    directional: tuple
    sweeps: tuple
    value_precision: object = None  # the function's value against the exact one (`_precision.value_loss`)
    unlisted: object = None  # `_records.Unlisted`: the elements of a large derivative not listed


def _compare(problem, leaves, numeric, exact, run) -> _Compared:
    """Every element's verdict, the case's recorded values, and the probes that need the exact value."""
    methods = {**numeric.methods, Method.SYMBOLIC: exact.status}
    values, bounds, notes = dict(numeric.values), dict(numeric.bounds), numeric.notes
    if exact.jacobian is not None:
        values[Method.SYMBOLIC], bounds[Method.SYMBOLIC] = exact.jacobian, compare.symbolic_bound(exact.jacobian)
    elif run.order == 1 and numeric.plan.full:  # no exact value to say which is wrong: look again
        with run.on_device:
            values, bounds, notes = probes.second_look(
                numeric.F, leaves, numeric.data, run.dtype, values, bounds, numeric.steps, notes, numeric.floor,
                run.rtol, run.atol,
            )  # fmt: skip
    shapes = [leaf.shape for leaf in leaves]
    rows = labels(problem.names, shapes, numeric.out_shape, numeric.plan)
    listed, unlisted = compare.screen(
        values, bounds, exact.kinks, run.rtol, run.atol, run.order == 1, exact.estimates_blind
    )
    elements = compare.elements(
        values, bounds, problem.names, shapes, rows, notes, exact.kinks, run.rtol, run.atol,
        run.order == 1, exact.estimates_blind, listed,
    )  # fmt: skip
    elements, value_precision = _precision(problem, numeric, exact, shapes, elements, run)
    expectations = compare.expectations(problem.expected, values, problem.names, shapes, problem.decimals)
    directional = ()
    if numeric.along is not None:
        directional = (probes.directional_test(numeric.along, values, bounds, run.dtype, numeric.floor),)
    sweeps = ()
    if exact.jacobian is not None and run.order == 1 and numeric.plan.full:
        with run.on_device:
            sweeps = probes.sweeps(
                numeric.F, leaves, problem.names, numeric.data, run.dtype, exact.jacobian, numeric.steps, exact.kinks
            )
    return _Compared(methods, elements, expectations, directional, sweeps, value_precision, unlisted)


def _precision(problem, numeric, exact, shapes, elements, run):
    """The elements with their correct digits, avoidable precision loss judged (order 1, with the
    exact program), and the function's own value judged the same way."""
    program = exact.program if run.order == 1 and numeric.plan.full else None
    if program is None:
        return precision_audit.judge(elements, None, 0.0, run.dtype, shapes), None
    eps = max(float(np.finfo(run.dtype).eps), program.eps)
    jax_program = problem.backend is None
    F, data = (numeric.F, numeric.data) if jax_program else (None, None)
    elements = precision_audit.judge(elements, program, eps, run.dtype, shapes, run.timeout, F, data)
    value = precision_audit.value_loss(program, numeric.f64, exact.jacobian, program.eps, run.timeout)
    return elements, value


def _record(problem, run, numeric, exact, compared, start) -> PointResult:
    value = {backend_value_name(run.backend): float(numeric.f64[0]) if numeric.f64.size else float("nan")}
    if exact.value is not None:
        value["symbolic"] = exact.value
    explicit = run.rtol is not None or run.atol is not None
    return PointResult(
        problem.case,
        problem.point,
        run.dtype.name,
        run.platform,
        {m: compared.methods[m] for m in (*compare.METHODS, Method.FORWARD) if m in compared.methods},
        value,
        tuple(compared.elements),
        tuple(compared.expectations) if run.order == 1 else (),
        seconds=time.perf_counter() - start,
        order=run.order,
        checks=numeric.checks,
        dot_product=numeric.dot_product,
        directional=compared.directional,
        sweeps=compared.sweeps,
        tolerance=f"rtol={run.rtol or 0:g}, atol={run.atol or 0:g}" if explicit else "error model",
        strict=run.strict,
        precision=run.precision,
        value_precision=compared.value_precision,
        diagnosis=_diagnosis(compared),
        traceback=exact.traceback,
        unlisted=compared.unlisted,
    )


def _diagnosis(compared) -> tuple:
    lines = diagnose(compared.elements)
    if compared.unlisted is None:
        return lines
    return tuple(f"{line} (of the {len(compared.elements):,} elements listed)" for line in lines)


def backend_value_name(backend) -> str:
    """The key under which a point's record holds the program's own value ("jax", "torch")."""
    return getattr(backend, "name", "jax")


def _exact(problem, leaves, numeric, run, timeout, end=None):
    """The exact method on the problem's exact program (its translation, its reference, or fn),
    stopping itself at `end` (time.monotonic) and preempted past it plus grace."""
    if problem.translation is None and problem.no_reference:
        return Exact(unavailable(problem.no_reference), None, None, Kinks.none())
    program = problem.reference or problem.fn
    start = time.perf_counter()
    try:
        with watchdog.deadline(_past(end)):
            return remembered(
                _exact_key(problem, leaves, numeric, run),
                lambda: exact_method(
                    program, leaves, problem.names, problem.data, numeric, problem.translation, timeout,
                    problem.route, end,
                ),
            )  # fmt: skip
    except watchdog.Preempted as exc:  # it did not stop at its own budget: the others still decide
        seconds = time.perf_counter() - start
        # Its own seconds, while the budget is the whole point's: the numeric methods spent the rest.
        reason = (
            f"stopped after {seconds:.1f} s of its own, the point's --timeout {timeout:g} s spent "
            f"with the other methods' time{watchdog.phase_of(exc)}"
        )
        return Exact(Status(State.TIMED_OUT, reason), None, None, Kinks.none())


def _exact_key(problem, leaves, numeric, run):
    """What the exact result of a JAX function at this point is a function of — its program (text,
    constants, custom rules, data), the point, the names, the plan, and the numeric methods' value
    and steps it reads — or None where it is not remembered (a torch program, a reference written
    apart, a problem past the eager size, a program that cannot be pinned down)."""
    if problem.backend is not None or problem.reference is not None or problem.translation is not None:
        return None
    theta = np.concatenate([leaf.reshape(-1) for leaf in leaves]).astype(run.dtype)
    if theta.size > autodiff.EAGER:
        return None
    with autodiff.precision(run.dtype):  # numeric.data is problem.data: its values are in the key
        program = autodiff.key_of(numeric.F, theta, numeric.data)
    if program is None:
        return None
    plan = numeric.plan
    arrays = (theta, plan.directions, plan.weights, numeric.finished().steps, numeric.f64, numeric.f32)
    values = tuple(None if a is None else (np.asarray(a).dtype.str, np.asarray(a).tobytes()) for a in arrays)
    return program, tuple(problem.names), problem.route, plan.order, numeric.value_eps, values


def _past(end):
    """Seconds from now until a phase that should end at `end` (time.monotonic) is preempted."""
    return None if end is None else end + watchdog.GRACE - time.monotonic()


def _failed(problem, run, start, message, trace=None) -> PointResult:
    return PointResult(
        problem.case,
        problem.point,
        run.dtype.name,
        run.platform,
        {},
        error=message,
        traceback=trace,
        seconds=time.perf_counter() - start,
    )
