"""The numeric methods at one point: JAX autodiff in both modes and finite differences (with the
complex step), each with its error bound, for the derivative the plan checks.

Every method runs the same flat program F(θ, data) (`flat_program`); its rounding is measured by
running the same program in the other precision (the ladder: float32 for a float64 run, and vice
versa), which a wrong rule cannot widen because both runs use the same rules.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _autodiff as autodiff
from . import _compare as compare
from . import _finite as finite
from . import _lower as lower
from ._plan import DIRECTIONS, LADDER_SAMPLE, LARGE, Plan, combined, fits
from ._probes import dot_product_test
from ._records import OK, DotProductTest, Method, State, Status, offsets_of, unavailable
from .errors import PointError, Unavailable


class Numeric(NamedTuple):
    """What the numeric methods found at the point."""

    f64: np.ndarray  # the function's flat output in float64
    f32: np.ndarray  # and in float32: their difference measures cancellation inside the function
    out_shape: tuple
    methods: dict  # Method → Status
    values: dict  # Method → (rows × parameters) derivative matrix
    bounds: dict  # Method → its error bound, per element
    steps: np.ndarray  # finite-difference steps per parameter element
    notes: dict  # parameter element → a note on its finite differences (a shrunk step, one-sided)
    plan: Plan
    dot_product: DotProductTest | None
    along: tuple | None  # large N: (directions V, complex step's J vᵀ, its measured spread)
    checks: str  # what was checked, as the report states it
    F: object  # the order-1 flat program F(θ, data), for the probes
    data: dict  # the data F takes
    floor: float  # the least rounding error of a derivative here (`_compare.rounding_floor`)
    # The epsilon f64 is exact to: float64's, or the run's when the program only runs in its dtype.
    value_eps: float = float(np.finfo(np.float64).eps)
    pending: object = None  # while forward mode or finite differences run in a thread: `finished` waits

    def finished(self) -> Numeric:
        """These results with forward mode and the finite differences in (waiting for their threads)."""
        return self if self.pending is None else self.pending()

    def cancel(self) -> None:
        """Stops forward mode and finite differences still being computed (the check has ended without them)."""
        if self.pending is not None:
            self.pending.cancel()


def ladder_of(run_dtype) -> np.dtype:
    """The other precision, whose run of the same program measures this one's rounding."""
    return np.dtype(np.float32 if run_dtype == np.float64 else np.float64)


def jax_methods(fn, leaves, data, run_dtype, order, seed) -> Numeric:
    """Autodiff (both modes) and finite differences of the order-`order` derivative of
    `fn(*leaves, **data)`, with bounds."""
    flat64 = np.concatenate([leaf.reshape(-1) for leaf in leaves])
    F1 = flat_program(fn, tuple(leaf.shape for leaf in leaves))
    F0 = F1  # the user's program as traced for its own reverse mode (F1 becomes its laddered twin)
    f64, f32, out_shape, reverse64, reverse32, F1, checks = _values(F1, fn, leaves, flat64, data, run_dtype, order)
    plan = Plan.choose(order, f64.size, flat64.size, seed, run_dtype)
    F, args, f_run, jac, ladder, no_reverse = _derivative(
        F1, data, plan, flat64, run_dtype, f64, f32, reverse64, reverse32
    )
    ladder_dtype = ladder_of(run_dtype) if ladder is not None else None
    methods, values, bounds = {Method.AUTODIFF: OK}, {Method.AUTODIFF: jac}, {}
    if no_reverse:  # autodiff is forward mode: there is no second mode to hold it against
        methods[Method.FORWARD] = unavailable(f"autodiff itself is forward mode here (JAX has no {no_reverse})")
        checks.append("autodiff in forward mode (JAX has no reverse mode for this program)")
    # A cast to float32 inside a float64 program rounds to float32 from there on.
    roundoff = getattr(F1, "roundoff", 0.0)
    checked = F0 if F is F1 else F  # order 1: the program whose reverse mode gave jac, traced once
    floor = compare.rounding_floor(f_run, jac, term_size(checked, flat64, args, run_dtype, f_run, jac))
    bounds[Method.AUTODIFF] = compare.autodiff_bound(jac, run_dtype, ladder, ladder_dtype, roundoff, floor)
    forward_bound = functools.partial(
        compare.autodiff_bound, dtype=run_dtype, ladder=ladder, ladder_dtype=ladder_dtype, eps=roundoff, floor=floor
    )
    # Where compiled, forward mode and then finite differences each run in a thread of their own,
    # beside the complex step and the exact method (`finished` waits for them).
    with autodiff.precision(run_dtype):
        theta = flat64.astype(run_dtype)
        forward = None
        try:
            if no_reverse:
                raise Unavailable(no_reverse)
            forward = autodiff.start_forward(F, theta, args)
        except Unavailable as exc:
            methods.setdefault(Method.FORWARD, unavailable(str(exc)))
        else:
            methods[Method.FORWARD] = OK
            values[Method.FORWARD] = bounds[Method.FORWARD] = None  # filled by `finished`
        # Above order 1, F's values are autodiff derivatives, as noisy as autodiff's own bound.
        noise = floor if order > 1 else 0.0
        large = flat64.size > LARGE
        sample = LADDER_SAMPLE if large else None
        try:
            fd = finite.start(
                F, theta, args, run_dtype, ladder_dtype, noise_floor=noise, ladder_sample=sample,
                f0=f_run.astype(run_dtype),
            )  # fmt: skip
        except BaseException:  # a preemption, a failure: nothing is left running
            _cancel(forward)
            raise
    methods[Method.FINITE] = OK
    values[Method.FINITE] = bounds[Method.FINITE] = None  # their place in the methods' order, filled by `finished`
    checks = [plan.describe(), *checks]
    along = None
    if large and flat64.size > LADDER_SAMPLE:
        checks.append(f"finite-difference noise measured on {LADDER_SAMPLE:,} of {flat64.size:,} elements")
    if plan.order == 1:
        try:
            along = _complex_step(F, flat64, args, run_dtype, seed, large, methods, values, bounds, checks, floor)
        except BaseException:
            _cancel(forward, fd)
            raise
    numeric = Numeric(
        f64, f32, out_shape, methods, values, bounds, None, {}, plan, None, along, "; ".join(checks), F1, data, floor,
    )  # fmt: skip
    return numeric._replace(pending=_Finishing(numeric, fd, forward, forward_bound, run_dtype, seed))


def _cancel(*pending) -> None:
    for work in pending:
        if work is not None:
            work.cancel()


class _Finishing:
    """A `Numeric` whose finite differences and forward mode are still being computed
    (`autodiff.Pending`): called, it waits for them and returns the whole of it, once."""

    def __init__(self, numeric, fd, forward, forward_bound, run_dtype, seed):
        self._numeric, self._fd, self._forward, self._forward_bound = numeric, fd, forward, forward_bound
        self._run_dtype, self._seed = run_dtype, seed
        self._finished = None

    def __call__(self) -> Numeric:
        if self._finished is None:
            numeric, fd = self._numeric, self._fd.result()
            values, bounds = dict(numeric.values), dict(numeric.bounds)
            if self._forward is not None:
                values[Method.FORWARD] = self._forward.result()
                bounds[Method.FORWARD] = self._forward_bound(values[Method.FORWARD])
            # The same absolute floor as autodiff's: terms of size 1 that cancel (σ(35) − 1) leave
            # float64 rounding of 1e-16 in F that neither precision shows.
            values[Method.FINITE], bounds[Method.FINITE] = fd.jac, fd.bound + numeric.floor
            dot = dot_product_test(
                values, numeric.methods, bounds[Method.AUTODIFF], self._run_dtype, self._seed, numeric.floor
            )
            self._finished = numeric._replace(
                values=values, bounds=bounds, steps=fd.steps, notes=fd.notes, dot_product=dot
            )
        return self._finished

    def cancel(self) -> None:
        _cancel(self._fd, self._forward)


def _values(F, fn, leaves, flat64, data, run_dtype, order):
    """F(θ) in float64 and float32, the output's shape, the reverse-mode Jacobians that come with
    them (or why F has none; None where the dense Jacobian does not fit and random output
    combinations are checked instead), F itself (for a float64 run, its float32 calls run the
    float64 program lowered: `laddered`) and notes; a failure of the user's function is the point's
    error."""
    dense = True

    def value(F, dtype):
        with autodiff.precision(dtype):
            theta = flat64.astype(dtype)
            if not dense:
                return autodiff.value(F, theta, data), None
            try:
                return autodiff.value_and_jacobian(F, theta, data)
            except Unavailable as exc:  # the value alone says whether F itself fails
                return autodiff.value(F, theta, data), exc

    try:
        with autodiff.precision(np.float64):  # refused before JAX allocates a Jacobian that cannot fit
            outputs = int(np.prod(jax.eval_shape(F, flat64, data).shape, dtype=np.int64))
        dense = not (order == 1 and combined(outputs, flat64.size))
        if dense:
            fits(outputs, flat64.size)
        f64, reverse64 = value(F, np.dtype(np.float64))
        with autodiff.precision(np.float64):
            out_leaves = jax.tree_util.tree_leaves(jax.eval_shape(functools.partial(fn, **data), *leaves))
        out_shape = out_leaves[0].shape if len(out_leaves) == 1 else f64.shape
    except PointError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's function failed: say why
        raise PointError(function_failed(exc)) from None
    check_output(f64, "float64")
    if run_dtype != np.float64:  # a float32 run: the user's function in float32, as asked
        try:
            f32, reverse32 = value(F, run_dtype)
        except Exception as exc:  # noqa: BLE001 - it fails in float32 (float64 data it mixes in, …)
            mode = "on" if autodiff.float32_x64() else "off"
            raise PointError(f"in {run_dtype.name} (JAX's x64 mode {mode}): {function_failed(exc)}") from None
        check_output(f32, run_dtype.name)
        return f64.astype(np.float64), f32.astype(np.float64), out_shape, reverse64, reverse32, F, []
    try:
        F = laddered(F, flat64, data)
        f32, reverse32 = value(F, np.dtype(np.float32))
        f32 = f32.astype(np.float64)
        if isinstance(reverse32, Unavailable) and not isinstance(reverse64, Unavailable):
            raise reverse32
    except Exception as exc:  # noqa: BLE001 - no ladder: the bounds say rounding was not measured
        why = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
        return f64.astype(np.float64), None, out_shape, reverse64, None, F, [f"rounding not measured ({why})"]
    return f64.astype(np.float64), f32, out_shape, reverse64, reverse32, F, []


def laddered(F, flat64, data):
    """F, whose float32 calls run F's float64 program lowered to 32 bits (`_lower`) instead of the
    user's code again: closed-over float64 constants, int64 indices and PRNG keys are the
    program's constants, lowered with it. Other dtypes call F itself. `G.roundoff` is the epsilon
    of the least precise float the program computes in."""
    with autodiff.precision(np.float64):
        closed = jax.make_jaxpr(F)(flat64, data)

    programs = {np.dtype(np.float32): closed}

    def G(theta, data):
        dtype = np.dtype(theta.dtype)
        if dtype not in (np.float32, np.complex64):
            return F(theta, data)
        if dtype not in programs:  # the complex step's ladder: F's complex program, lowered too
            with jax.enable_x64(True):
                programs[dtype] = jax.make_jaxpr(F)(flat64.astype(np.complex128), data)
        (out,) = lower.evaluate(programs[dtype], theta, *jax.tree_util.tree_leaves(data))
        return out

    G.roundoff = lower.roundoff(closed)
    return G


def _derivative(F, data, plan, flat64, run_dtype, f64, f32, reverse64, reverse32):
    """(F, its data, F(θ), its Jacobian, the Jacobian in the ladder precision or None, why reverse
    mode is missing or "") for the function whose Jacobian is the derivative checked: F itself at
    order 1, a derivative above. At order 1 a program without reverse mode (a while loop) is
    differentiated in forward mode."""
    f_run, jac, ladder = (f64, reverse64, reverse32) if run_dtype == np.float64 else (f32, reverse32, reverse64)
    ladder_dtype = ladder_of(run_dtype)
    no_reverse = ""
    try:
        if plan.order == 1 and isinstance(jac, Unavailable):
            no_reverse = str(jac)
            with autodiff.precision(run_dtype):
                jac = autodiff.forward_jacobian(F, flat64.astype(run_dtype), data)
            try:
                with autodiff.precision(ladder_dtype):
                    ladder = autodiff.forward_jacobian(F, flat64.astype(ladder_dtype), data)
            except Exception:  # noqa: BLE001 - no ladder: rounding unmeasured
                ladder = None
        if not plan.full or plan.order > 1:
            if plan.order == 1:  # the gradients of random output combinations wᵢᵀ·F (no dense J)
                F, data = autodiff.combinations(F), (data, plan.weights)
            elif plan.directions is not None:
                along = (plan.directions,) if plan.weights is None else (plan.directions, plan.weights)
                F, data = autodiff.derivative(F, 2, directional=True), (data, *along)
            else:
                F = autodiff.derivative(F, plan.order)
            if ladder is not None or plan.order == 1:
                try:
                    with autodiff.precision(ladder_dtype):
                        _, ladder = autodiff.value_and_jacobian(F, flat64.astype(ladder_dtype), data)
                except Exception:  # noqa: BLE001 - the derivative does not lower: rounding unmeasured
                    ladder = None
            with autodiff.precision(run_dtype):
                f_run, jac = autodiff.value_and_jacobian(F, flat64.astype(run_dtype), data)
        for result in (jac, ladder):
            if isinstance(result, Unavailable):  # e.g. a while_loop: JAX has no reverse mode for it
                raise result
    except Unavailable as exc:
        raise PointError(f"autodiff failed: {exc}") from None
    return F, data, f_run, jac, ladder, no_reverse


def term_size(F, flat64, data, run_dtype, f, jac) -> float:
    """The largest term F's reverse-mode program adds (`_terms`), where the function's own scale is
    below 1 and that size can lower its rounding floor; 1 where it is not measured."""
    if compare.scale(f, jac) >= 1:
        return 1.0
    try:
        with autodiff.precision(run_dtype):
            size = autodiff.largest_term(F, flat64.astype(run_dtype), data)
    except Exception:  # noqa: BLE001 - not measured: the floor of terms of size 1
        return 1.0
    return size if math.isfinite(size) else 1.0


def _complex_step(F, flat64, data, run_dtype, seed, large, methods, values, bounds, checks, floor):
    """The complex step, where every primitive on the path is complex-analytic in JAX: per element,
    or along random directions for large N (returned for the directional test)."""
    ladder_dtype = ladder_of(run_dtype)
    why = finite.not_analytic(F, flat64, data)
    if why:
        methods[Method.COMPLEX] = unavailable(f"not analytic ({why})")
        return None
    along = None
    try:
        if large:
            along = _complex_step_along(F, flat64, data, run_dtype, ladder_dtype, seed)
        else:
            with autodiff.precision(run_dtype):
                cs = finite.complex_step(F, flat64.astype(run_dtype), data, run_dtype)
            cs_ladder = None
            with contextlib.suppress(Exception), autodiff.precision(ladder_dtype):  # no ladder: unmeasured
                cs_ladder = finite.complex_step(F, flat64.astype(ladder_dtype), data, ladder_dtype)
    except Exception as exc:  # noqa: BLE001 - e.g. a primitive without complex support
        methods[Method.COMPLEX] = unavailable(f"{type(exc).__name__}: {exc}".splitlines()[0])
        return None
    if large:
        methods[Method.COMPLEX] = Status(State.DIRECTIONAL, f"{DIRECTIONS} random directions")
        checks.append(f"complex step along {DIRECTIONS} random directions ({flat64.size:,} parameters)")
    else:
        values[Method.COMPLEX] = cs
        bounds[Method.COMPLEX] = compare.autodiff_bound(cs, run_dtype, cs_ladder, ladder_dtype, floor=floor)
        methods[Method.COMPLEX] = OK
    return along


def _complex_step_along(F, flat64, data, run_dtype, ladder_dtype, seed) -> tuple:
    """(V, J Vᵀ by the complex step, its rounding spread) for DIRECTIONS seeded random directions."""
    rng = np.random.default_rng([seed, flat64.size, 1])
    V = rng.standard_normal((DIRECTIONS, flat64.size)).astype(run_dtype).astype(np.float64)
    with autodiff.precision(run_dtype):
        cs = finite.complex_step_along(F, flat64.astype(run_dtype), data, run_dtype, V)
    with autodiff.precision(ladder_dtype):
        ladder = finite.complex_step_along(F, flat64.astype(ladder_dtype), data, ladder_dtype, V)
    scale = min(1.0, np.finfo(run_dtype).eps / np.finfo(ladder_dtype).eps)
    return V, cs, np.abs(cs - ladder) * scale


def function_failed(exc: Exception) -> str:
    """The point's error when the user's function fails: what it raised, and the likely cause."""
    message = f"{type(exc).__name__}: {exc}".splitlines()[0]
    name = type(exc).__name__
    if "TracerArrayConversion" in name:
        return (
            f"the function is not traceable by JAX ({message}): a NumPy function (np.tanh, np.asarray, …) "
            "was given a traced JAX value; use jax.numpy (jnp.tanh) inside the function"
        )
    if "Concretization" in name or "TracerBool" in name or "TracerInteger" in name:
        return (
            f"the function is not traceable by JAX ({message}): Python control flow on a traced value; "
            "use jnp.where or lax.cond instead of if/while on array values"
        )
    return f"the function raised {message}"


@functools.lru_cache(maxsize=64)
def flat_program(fn, shapes):
    """`fn(*leaves, **data)` as F(θ, data) of one flat vector θ, returning one flat vector.

    Cached on (fn, shapes) so that JAX's compilation caches, keyed on F, hit across points.
    """
    bounds = offsets_of(shapes)

    def F(theta, data):
        parts = [theta[a:b].reshape(s) for a, b, s in zip(bounds[:-1], bounds[1:], shapes)]
        out = fn(*parts, **data)
        outs = jax.tree_util.tree_leaves(out)
        if not outs or not all(isinstance(o, jax.Array | np.ndarray | float | int) for o in outs):
            raise PointError(
                f"the function returned {type(out).__name__}"
                + (f" holding {type(outs[0]).__name__}" if outs and type(outs[0]) is not type(out) else "")
                + "; it must return a float array (or a pytree of them) computed from its arguments"
            )
        return jnp.concatenate([jnp.ravel(o) for o in outs])

    return F


def check_output(f, dtype_name):
    f = np.asarray(f)
    if f.size == 0:
        raise PointError("the function returned an empty array: there is no derivative to check")
    if not np.issubdtype(f.dtype, np.floating):
        raise PointError(f"the function returned {f.dtype} values; a real floating-point output is needed")
    bad = np.flatnonzero(~np.isfinite(f.reshape(-1)))
    if bad.size:
        raise NonFiniteOutput(
            f"output element {int(bad[0])} is {f.reshape(-1)[bad[0]]} in {dtype_name} at this point",
            int(bad[0]),
        )


class NonFiniteOutput(PointError):
    """The program's output is not finite at the point: outside its domain, an overflow, or a float
    program that fails where the mathematics does not (the pipeline asks the exact method which)."""

    def __init__(self, message: str, output: int):
        super().__init__(message)
        self.output = output


class _JaxBackend:
    """The numeric methods of a JAX function: JAX's own autodiff, finite differences of its program."""

    def device(self, name):
        """(a context that runs JAX there, the platform's name) for the device `name`."""
        device = autodiff.device(name)
        return jax.default_device(device), device.platform

    def methods(self, problem, leaves, run_dtype, order, seed) -> Numeric:
        return jax_methods(problem.fn, leaves, problem.data, run_dtype, order, seed)


JAX = _JaxBackend()
