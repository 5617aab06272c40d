"""The finite-difference method: central differences with Richardson extrapolation, batched.

For each parameter element j the stencil is evaluated at three steps h, h/2, h/4, where h is
chosen per dtype and per the element's scale. Central differences have an error series in even
powers of h, so two Richardson levels cancel the h² and h⁴ terms. The difference between the last
two levels estimates the truncation error, and the dtype's epsilon over the step estimates the
rounding error; their sum is this method's own error bound. All 6·N perturbed points are evaluated
with one jit-compiled `vmap` per chunk, never a Python loop per element.
"""

from __future__ import annotations

import functools
import threading
from typing import NamedTuple

import numpy as np

from . import _autodiff as autodiff
from ._autodiff import Cancelled, Pending
from ._primitives import CALLS, PRIMITIVES

#: Rows (perturbed points) evaluated per vmapped chunk; bounds memory for large parameter counts.
CHUNK = 4096
#: Chunks per call of a large stencil: the loop over them runs inside the compiled program.
GROUP = 64

_LEVELS = (1.0, 0.5, 0.25)
#: How many times a step is shrunk (by 8) when the stencil leaves the function's domain.
_SHRINKS = 6


def base_step(theta: np.ndarray, dtype) -> np.ndarray:
    """h_j = eps^(1/7) · max(|θ_j|, 1), rounded to a power of two so that θ ± h is exact.

    eps^(1/7) balances the O(h⁶) truncation of the extrapolated stencil against the O(eps/h)
    rounding error of the differences.
    """
    eps = np.finfo(dtype).eps
    h = eps ** (1 / 7) * np.maximum(np.abs(theta), 1.0)
    return np.exp2(np.round(np.log2(h))).astype(dtype)


class Estimate(NamedTuple):
    jac: np.ndarray  # dF/dθ, outputs × parameters
    bound: np.ndarray  # its error bound, same shape
    steps: np.ndarray  # the largest step taken per parameter element (the stencil spans θ ± step)
    notes: dict  # parameter element → why its step differs from the rule (e.g. shrunk)


def jacobian(
    F, theta: np.ndarray, data, dtype, ladder_dtype=None, noise_floor=0.0, ladder_sample=None, f0=None
) -> Estimate:
    """dF/dθ (outputs × parameters) with its error bound, the steps, and notes on shrunk steps.

    `F(θ, data)` maps a flat vector of `dtype` to a flat vector; `theta` is the point. With
    `ladder_dtype`, the stencil is evaluated in that precision too: the difference measures the
    rounding noise of each value of F, including cancellation inside F that |F| cannot show.
    `noise_floor` is the least noise assumed in each value (for F an autodiff derivative: its own
    rounding bound). `ladder_sample`: re-evaluate at most that many elements' stencils (seeded
    random) in the ladder precision, their largest noise standing for all. `f0`: F(θ), when the
    caller has it. Call it inside `autodiff.precision(dtype)`.
    """
    return start(F, theta, data, dtype, ladder_dtype, noise_floor, ladder_sample, f0, thread=False).result()


def start(
    F, theta: np.ndarray, data, dtype, ladder_dtype=None, noise_floor=0.0, ladder_sample=None, f0=None, thread=True
):
    """`jacobian`, computed beside the caller's next steps (a `Pending`) where F's programs are
    compiled: they are compiled here, for both precisions, and a thread only runs them — a
    compiled program runs without Python's lock and traces no user code, so the exact method's
    Python and the finite differences' XLA share the machine. A problem run by NumPy
    (`autodiff.eager`), a program that calls back into Python (the user's code: pure_callback,
    jax.debug.print), or `thread` False is computed here and now. Call it inside
    `autodiff.precision(dtype)`."""
    dtype = np.dtype(dtype)
    theta = np.asarray(theta, dtype=dtype)
    f0 = autodiff.value(F, theta, data) if f0 is None else np.asarray(f0)
    batched = _batched(F, theta, data, dtype, ladder_dtype, noise_floor, ladder_sample)
    if not (thread and batched.compile_ahead()):
        return Pending.done(_estimate(batched, theta, f0, dtype))
    return Pending(functools.partial(_estimate, batched, theta, f0, dtype), batched.cancelled)


def _estimate(batched, theta, f0, dtype) -> Estimate:
    """The body of `jacobian`: the stencil at every element, then the retries of those whose
    stencil left the function's domain or whose table did not settle."""
    n = theta.size
    h = base_step(theta, dtype)
    jac, err, settled = _richardson(batched, theta, h, np.arange(n), f0, dtype)
    notes = {}
    bad = np.flatnonzero(~np.all(np.isfinite(jac), axis=0)) if np.all(np.isfinite(f0)) else np.array([], int)
    shrunk = bad
    # The stencil stepped outside the domain (NaN/Inf). A boundary at 0 (log, sqrt, x·log x) is
    # |θⱼ| away, and the function varies on that scale: first a step relative to |θⱼ| itself.
    near = bad[theta[bad] != 0]
    if near.size:
        relative = base_step(theta[near], dtype) * np.abs(theta[near]) / np.maximum(np.abs(theta[near]), 1)
        h[near] = np.minimum(h[near], np.exp2(np.floor(np.log2(relative.astype(np.float64)))).astype(dtype))
        jac[:, near], err[:, near], settled[near] = _richardson(batched, theta, h, near, f0, dtype)
        bad = bad[~np.all(np.isfinite(jac[:, bad]), axis=0)]
    for _ in range(_SHRINKS):  # still outside: step closer
        if bad.size == 0:
            break
        h[bad] /= 8
        jac[:, bad], err[:, bad], settled[bad] = _richardson(batched, theta, h, bad, f0, dtype)
        bad = bad[~np.all(np.isfinite(jac[:, bad]), axis=0)]
    shrunk = np.setdiff1d(shrunk, bad)
    h0 = base_step(theta, dtype)
    for j in bad:  # θ sits on the boundary itself: differences from the side where F is defined
        for sign, side in ((1, "forward"), (-1, "backward")):
            d, e = _one_sided(batched, theta, h0, j, f0, dtype, sign)
            if np.all(np.isfinite(d)):
                jac[:, j], err[:, j], h[j] = d, e, h0[j]
                notes[int(j)] = f"one-sided ({side}) differences: the function is undefined on the other side"
                break
    if shrunk.size:
        # The boundary lies within 8 steps: 64 times closer keeps the stencil's h⁶ error small.
        h[shrunk] /= 64
        jac[:, shrunk], err[:, shrunk], settled[shrunk] = _richardson(batched, theta, h, shrunk, f0, dtype)
        for j in shrunk:
            notes[int(j)] = f"step shrunk to {float(h[j]):.3g} to stay inside the function's domain"
    # A table whose differences do not shrink like h² is not yet in the asymptotic range (the
    # function changes on a scale below the step, e.g. LayerNorm of a near-constant input): step
    # closer while that helps.
    for _ in range(_SHRINKS):
        unsettled = np.flatnonzero(~settled)
        if unsettled.size == 0:
            break
        h[unsettled] /= 8
        retry = _richardson(batched, theta, h, unsettled, f0, dtype)
        jac[:, unsettled], err[:, unsettled], settled[unsettled] = retry
        for j in unsettled:
            notes[int(j)] = f"step shrunk to {float(h[j]):.3g}: the function varies on a smaller scale"
    return Estimate(jac, err, h.astype(np.float64), notes)


def closer(F, theta: np.ndarray, data, dtype, cols: np.ndarray, steps: np.ndarray, noise_floor=0.0) -> Estimate:
    """Columns `cols` of the Jacobian estimated again from steps 64 times smaller than `steps`
    (those the first estimate took): the estimate, its bound and steps for those columns.

    A second look where autodiff disagrees with the first estimate and no exact value can say
    which is wrong: a stencil that crossed a kink, or a change on a scale below its step, gives an
    estimate that depends on the step, which the first table's three levels do not always show
    (a max of two inputs 0.43 steps apart passes its h² test). Call it inside
    `autodiff.precision(dtype)`.
    """
    dtype = np.dtype(dtype)
    theta = np.asarray(theta, dtype=dtype)
    f0 = autodiff.value(F, theta, data)
    h = np.zeros(theta.size, dtype)
    h[cols] = np.asarray(steps, dtype) / 64
    batched = _batched(F, theta, data, dtype, None, noise_floor, None)
    jac, err, _ = _richardson(batched, theta, h, np.asarray(cols), f0, dtype)
    return Estimate(jac, err, h[cols].astype(np.float64), {})


def _batched(F, theta, data, dtype, ladder_dtype, noise_floor, ladder_sample):
    """(where, to) ↦ F at the stencil's rows, in `dtype` or (precision=) the ladder's.
    `compile_ahead()` compiles its programs now, for the shape of `_shape` (False where NumPy runs
    them); `cancelled`, once set, stops the next call."""
    perturbed = _perturbed(F)
    programs = {}
    ladder = None if ladder_dtype is None else np.dtype(ladder_dtype)

    def batched(where, to, precision=dtype):
        if batched.cancelled.is_set():
            raise Cancelled()
        with autodiff.precision(precision):
            return programs.get(precision, perturbed)(theta.astype(precision), where, to.astype(precision), data)

    def compile_ahead() -> bool:
        group, chunk = _shape(theta.size)
        compiled = {}
        for precision in (dtype,) if ladder is None else (dtype, ladder):
            with autodiff.precision(precision):
                rows = np.zeros((group, chunk), np.int64), np.zeros((group, chunk), precision)
                program = perturbed.ahead(theta.astype(precision), *rows, data)
            if program is None:
                return False
            compiled[precision] = program
        programs.update(compiled)
        return True

    batched.ladder = ladder
    batched.noise_floor = noise_floor
    batched.sample = ladder_sample
    batched.compile_ahead = compile_ahead
    batched.cancelled = threading.Event()
    return batched


def _richardson(batched, theta, h, cols, f0, dtype):
    moved = _moved(theta, h, cols, dtype)  # (levels, ±, len(cols)): θ_j ± s·h_j, rounded as F sees it
    rows = _evaluate(batched, theta, moved, cols)  # (levels, ±, len(cols), M)
    steps = (moved[:, 0] - moved[:, 1]).astype(np.float64)
    d = (rows[:, 0] - rows[:, 1]) / steps[:, :, None]  # central differences at h, h/2, h/4
    r1 = (4 * d[1:] - d[:-1]) / 3  # h² cancelled
    r2 = (16 * r1[1] - r1[0]) / 15  # h⁴ cancelled
    eps = np.finfo(dtype).eps
    # Noise in each F value is at least eps·|F|; the combination (64 D(h/4) − 20 D(h/2) + D(h))/45
    # amplifies it by under 3 over the smallest step.
    noise = 8 * eps * np.maximum(np.abs(rows).max(axis=(0, 1)), np.abs(f0)[None, :]) + batched.noise_floor
    if batched.ladder is not None:
        # Measured: the same stencil in the other precision, scaled to this one's epsilon.
        probe = _sample(len(cols), batched.sample)
        other = _evaluate(functools.partial(batched, precision=batched.ladder), theta, moved[:, :, probe], cols[probe])
        scale = min(1.0, eps / np.finfo(batched.ladder).eps)
        measured = (np.abs(rows[:, :, probe] - other) * scale).max(axis=(0, 1))
        measured = np.where(np.isfinite(measured), measured, 0.0)
        if len(probe) < len(cols):
            # Every row is the same F a step away from θ: its rounding noise, measured on the
            # sample, stands for every element (the largest seen).
            measured = np.broadcast_to(measured.max(axis=0), (len(cols), measured.shape[1]))
        noise = np.maximum(noise, 4 * measured)
    rounding = 3 * noise / (2 * steps[-1][:, None])
    truncation = np.abs(r2 - r1[1])
    # In the asymptotic range D(h) − D(h/2) ≈ 4 (D(h/2) − D(h/4)); differences at the noise level
    # say nothing either way.
    coarse, fine = d[0] - d[1], d[1] - d[2]
    resolved = np.abs(coarse) > 100 * rounding
    with np.errstate(all="ignore"):
        ratio = coarse / fine
    settled = ~(resolved & ~((ratio > 2) & (ratio < 32))).any(axis=1)
    return r2.T.astype(np.float64), (truncation + rounding).T.astype(np.float64), settled


#: Steps of the one-sided stencil, as fractions of h: its error series has every power of h, so
#: three Richardson levels leave O(h⁴).
_ONE_SIDED = (1.0, 0.5, 0.25, 0.125)


def _one_sided(batched, theta, h, j, f0, dtype, sign):
    """Forward (sign +1) or backward (−1) differences in element j, extrapolated: (column, bound)."""
    cols = np.array([j])
    moved = np.stack([theta[cols] + dtype.type(sign * s) * h[cols] for s in _ONE_SIDED])  # (levels, 1)
    rows = _evaluate(batched, theta, moved, cols)[:, 0]  # (levels, M)
    steps = (moved[:, 0] - theta[j]).astype(np.float64)
    # Each level as weights over the quotients D_i, so the same weights give the rounding bound.
    table = list(np.eye(len(_ONE_SIDED)))
    for power in (1, 2):
        table = [(2**power * b - a) / (2**power - 1) for a, b in zip(table[:-1], table[1:])]
    previous = table[-1]
    last = (8 * table[1] - table[0]) / 7
    d = (rows - f0[None, :]) / steps[:, None]
    eps = np.finfo(dtype).eps
    noise = 8 * eps * np.maximum(np.abs(rows).max(axis=0), np.abs(f0)) + batched.noise_floor
    rounding = noise * (np.abs(last) @ (2 / np.abs(steps)))
    return last @ d, np.abs((last - previous) @ d) + rounding


def _sample(n: int, limit: int | None) -> np.ndarray:
    """All of range(n), or a seeded random `limit` of them."""
    if limit is None or n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng([n, limit]).choice(n, limit, replace=False))


def _perturbed(F):
    """(θ, where, to, data) ↦ F at θ with element where[g, i] set to to[g, i], for each chunk g of
    rows i: `_shape`'s (chunks, rows) at a time, the loop over the chunks inside the program; or
    (`where` 1-D) one chunk. `ahead` compiles the first."""
    chunk, group = autodiff.compiled(F, "perturbed"), autodiff.compiled(F, "perturbed_chunks")

    def perturbed(theta, where, to, data):
        return (chunk if where.ndim == 1 else group)(theta, where, to, data)

    perturbed.ahead = group.ahead
    return perturbed


def _shape(n: int) -> tuple[int, int]:
    """(chunks, rows per chunk) of every evaluation of the stencil of n parameters, its retries,
    the one-sided differences and the sweeps alike: one program shape per precision, compiled once.

    About 2¹⁹ values (4 MB) of rows per chunk: measured on the CPU, blocks of 2²¹ or more ran 4-8×
    slower; and up to `GROUP` chunks per call (one dispatch each: at 40,401 parameters a chunk is
    12 rows). Never more rows than the stencil's 6·n, which a small problem's call holds whole.
    """
    rows = 2 * len(_LEVELS) * n
    chunk = max(1, min(CHUNK, (1 << 19) // max(1, n), rows))
    return min(GROUP, -(-rows // chunk)), chunk


def _moved(theta, h, cols, dtype):
    return np.stack([np.stack([theta[cols] + dtype.type(sign * s) * h[cols] for sign in (1, -1)]) for s in _LEVELS])


def _evaluate(batched, theta, moved, cols, groups_only=True):
    # Row (level, sign, j) is θ with element cols[j] replaced by moved[level, sign, j]. Only the
    # (element, value) pairs travel; the rows are built inside the compiled program, a chunk at a
    # time (all 6·N rows of N values at once would be O(N²) memory). Every compiled call has
    # `_shape`, padded with copies of the last row: a retry of a few elements pays one call, not a
    # compilation. NumPy (`autodiff.eager`) compiles nothing and runs only the chunks that hold rows.
    # `groups_only` False: rows that fit in one chunk are one chunk's call (the sweeps' 24 rows),
    # a program of its own, compiled on first use where the caller runs.
    k = len(cols)
    where, to = np.tile(cols, moved.size // k), moved.reshape(-1)
    group, chunk = _shape(theta.size)
    if not groups_only and moved.size <= chunk:
        pad = chunk - moved.size
        values = np.asarray(batched(np.pad(where, (0, pad), mode="edge"), np.pad(to, (0, pad), mode="edge")))
        return values[: moved.size].reshape(*moved.shape, -1)
    per_call = group * chunk
    calls, chunks = -(-moved.size // per_call), -(-moved.size // chunk)
    pad = calls * per_call - moved.size
    where = np.pad(where, (0, pad), mode="edge").reshape(calls, group, chunk)
    to = np.pad(to, (0, pad), mode="edge").reshape(calls, group, chunk)
    compiled = not autodiff.eager(theta.size)
    out = []
    for i in range(calls):
        keep = group if compiled else min(group, chunks - i * group)
        out.append(np.asarray(batched(where[i, :keep], to[i, :keep])).reshape(keep * chunk, -1))
    return np.concatenate(out)[: moved.size].reshape(*moved.shape, -1)


# --- complex step --------------------------------------------------------------------------


def not_analytic(F, theta, data) -> str:
    """Why `F(θ, data)` is not real-analytic in θ, from its jaxpr ("" when it is).

    The jaxpr is traced with real θ (whose primitives name the reason best), then with complex θ,
    as the complex step runs it: jnp functions dispatch on the dtype (`jnp.linalg.norm` of a
    complex vector takes conj and real parts). Only primitives whose inputs depend on θ count: a
    `max` over data is harmless. The primitive records are an allowlist: a primitive not known to
    be complex-analytic in JAX (`_primitives.PRIMITIVES[name].analytic`) keeps the complex step out.
    """
    import jax

    theta = np.asarray(theta)
    with autodiff.precision(theta.dtype):
        closed = jax.make_jaxpr(F)(theta, data)
        why = _first_non_analytic(closed.jaxpr, [True] + [False] * (len(closed.jaxpr.invars) - 1))
        if why:
            return why
        try:
            closed = jax.make_jaxpr(F)(theta.astype(np.result_type(theta.dtype, np.complex64)), data)
        except Exception as exc:  # noqa: BLE001 - e.g. a primitive without complex support
            return f"complex input fails: {type(exc).__name__}: {exc}".splitlines()[0]
        return _first_non_analytic(closed.jaxpr, [True] + [False] * (len(closed.jaxpr.invars) - 1))


def _first_non_analytic(jaxpr, dependent) -> str:
    from jax.extend.core import Literal

    depends = {v for v, d in zip(jaxpr.invars, dependent) if d}
    for eqn in jaxpr.eqns:
        inputs = [not isinstance(v, Literal) and v in depends for v in eqn.invars]
        if not any(inputs):
            continue
        name = eqn.primitive.name
        if name == "convert_element_type" and not np.issubdtype(eqn.params["new_dtype"], np.complexfloating):
            return "a cast to a real dtype"
        subs = [getattr(p, "jaxpr", p) for p in eqn.params.values()]
        subs = [s for s in subs if hasattr(s, "eqns")]
        if name in _TRANSPARENT:  # a call: the primitives inside it decide
            for sub in subs:
                flags = inputs if len(sub.invars) == len(inputs) else [True] * len(sub.invars)
                why = _first_non_analytic(sub, flags)
                if why:
                    return why
        else:
            record = PRIMITIVES.get(name)  # a primitive without a record is not known to be analytic
            if record is None or not record.analytic:
                return f"primitive '{name}'"
        depends.update(eqn.outvars)
    return ""


#: The complex step looks inside calls and scans: the primitives in their bodies decide. Branches
#: (cond) and loops with a data-dependent trip count (while) are not analytic.
_TRANSPARENT = CALLS | {"scan"}


def complex_step(F, theta: np.ndarray, data, dtype) -> np.ndarray:
    """dF/dθ (outputs × parameters) as Im F(θ + i h eⱼ) / h, one vmapped evaluation per element.

    No difference is taken, so h can be tiny: h = eps² · max(|θⱼ|, 1) makes the O(h²) truncation
    far below rounding, and the value is as accurate as F itself. Call inside
    `autodiff.precision(dtype)`; F must be real-analytic (see `not_analytic`).
    """
    dtype = np.dtype(dtype)
    complex_dtype = np.result_type(dtype, np.complex64)
    theta = np.asarray(theta, dtype)
    h = (np.finfo(dtype).eps ** 2 * np.maximum(np.abs(theta), 1.0)).astype(dtype)
    n = theta.size
    # The rows θ + i hⱼ eⱼ are built inside the compiled program, as the stencil's are (_evaluate).
    moved = (theta + 1j * h).astype(complex_dtype)
    perturbed = _perturbed(F)
    rows = _evaluate(
        lambda where, to: perturbed(theta.astype(complex_dtype), where, to, data),
        theta,
        moved[None, None],
        np.arange(n),
    )[0, 0]  # (n, outputs)
    return (rows.imag.astype(np.float64) / h.astype(np.float64)[:, None]).T


def complex_step_along(F, theta: np.ndarray, data, dtype, directions: np.ndarray) -> np.ndarray:
    """J v (directions × outputs) for each row v of `directions`, as Im F(θ + i h v) / h.

    One evaluation per direction instead of one per element: the complex step's check for
    parameter counts where N evaluations of N values each would dominate the run. h is a power of
    two, so h·v is exact wherever v is (the directions are drawn in `dtype`). Call inside
    `autodiff.precision(dtype)`.
    """
    dtype = np.dtype(dtype)
    complex_dtype = np.result_type(dtype, np.complex64)
    theta = np.asarray(theta, dtype)
    h = np.exp2(np.round(np.log2(np.finfo(dtype).eps ** 2 * max(float(np.abs(theta).max(initial=0)), 1.0))))
    program = autodiff.compiled(F, "value")
    moved = [(theta + 1j * (h * np.asarray(v, np.float64)).astype(dtype)).astype(complex_dtype) for v in directions]
    return np.stack([np.asarray(program(m, data)).reshape(-1).imag.astype(np.float64) / h for m in moved])


# --- step sweep ----------------------------------------------------------------------------

#: The steps of the sweep: 1e-1 down to 1e-12, one per decade.
SWEEP_STEPS = tuple(10.0**-k for k in range(1, 13))


def central_differences(F, theta: np.ndarray, data, j: int, steps, dtype) -> np.ndarray:
    """(F(θ + h eⱼ) − F(θ − h eⱼ)) / 2h for each step h (relative to max(|θⱼ|, 1)): (steps, outputs).

    The plain, un-extrapolated difference: its error against the exact value, over the steps, is
    the V-shaped curve (truncation ∝ h² on the right, rounding ∝ eps/h on the left). Call inside
    `autodiff.precision(dtype)`.
    """
    dtype = np.dtype(dtype)
    theta = np.asarray(theta, dtype)
    h = np.asarray(steps, np.float64) * max(abs(float(theta[j])), 1.0)
    moved = np.stack([theta[j] + h.astype(dtype), theta[j] - h.astype(dtype)])[:, :, None]  # (±, steps, 1)
    perturbed = _perturbed(F)
    rows = _evaluate(lambda where, to: perturbed(theta, where, to, data), theta, moved, np.array([j]), False)[:, :, 0]
    actual = (moved[0, :, 0].astype(np.float64) - moved[1, :, 0].astype(np.float64))[:, None]
    with np.errstate(all="ignore"):
        return (rows[0] - rows[1]) / actual


def convergence_order(steps, errors) -> float:
    """The log-log slope of error against step on the truncation side (steps above the best one,
    errors well above the best): about 2 for central differences; NaN when too few points."""
    steps, errors = np.asarray(steps, np.float64), np.asarray(errors, np.float64)
    ok = np.isfinite(errors) & (errors > 0)
    if ok.sum() < 3:
        return float("nan")
    best = np.nanargmin(np.where(ok, errors, np.nan))
    side = ok & (steps > steps[best]) & (errors > 10 * errors[best])
    if side.sum() < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log10(steps[side]), np.log10(errors[side]), 1)
    return float(slope)
