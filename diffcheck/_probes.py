"""The probes: checks beside the per-element comparison that need no exact value of their own.

* the forward/reverse dot-product test: uᵀ(J v) by jvp against (Jᵀu)ᵀ v by vjp;
* the directional test: the complex step's J v against the reference's, for large N;
* the step sweep: plain central differences over steps 1e-1 … 1e-12 against the exact value;
* the second look: without an exact value, finite differences autodiff disagrees with, again at
  a smaller step.
"""

from __future__ import annotations

import numpy as np

from . import _autodiff as autodiff
from . import _compare as compare
from . import _finite as finite
from ._records import (
    OK,
    DirectionalTest,
    DotProductTest,
    Method,
    State,
    Status,
    StepSweep,
    element_names,
    offsets_of,
    unavailable,
)

#: Seeded direction pairs (u, v) of the forward/reverse dot-product test.
DOT_DIRECTIONS = 3


def dot_product_test(values, methods, bound, dtype, seed, floor) -> DotProductTest:
    """uᵀ(J v) by forward mode against (Jᵀu)ᵀ v by reverse mode for seeded random u, v.

    The forward-mode Jacobian is jvp along each basis vector, the reverse-mode one vjp along each:
    no finite differences, both exact up to rounding, so they must agree to about eps times the
    sizes of the terms — a jvp and a vjp rule that disagree (a transpose rule that forgets to
    transpose, a rule right in one mode only) cannot hide in a truncation error.
    """
    if Method.FORWARD not in values:
        return DotProductTest(methods.get(Method.FORWARD, unavailable("no forward mode")))
    J_rev, J_fwd = values[Method.AUTODIFF], values[Method.FORWARD]
    rng = np.random.default_rng([seed, *J_rev.shape])
    U = rng.standard_normal((DOT_DIRECTIONS, J_rev.shape[0])).astype(dtype).astype(np.float64)
    V = rng.standard_normal((DOT_DIRECTIONS, J_rev.shape[1])).astype(dtype).astype(np.float64)
    forward = np.einsum("di,ij,dj->d", U, J_fwd, V)
    reverse = np.einsum("di,ij,dj->d", U, J_rev, V)
    if not (np.all(np.isfinite(forward)) and np.all(np.isfinite(reverse)) and np.all(np.isfinite(bound))):
        return DotProductTest(unavailable("a derivative is not finite here"))
    # Each of J's entries may be off by its own bound in either mode; the sums round too.
    bounds = tuple(
        2 * float(np.abs(u) @ bound @ np.abs(v)) + compare.dot_product_bound(u, J_rev, v, dtype, floor)
        for u, v in zip(U, V)
    )
    ok = all(abs(f - r) <= b for f, r, b in zip(forward, reverse, bounds))
    return DotProductTest(
        OK if ok else Status(State.MISMATCH), tuple(forward.tolist()), tuple(reverse.tolist()), bounds
    )


def directional_test(along, values, bounds, dtype, floor) -> DirectionalTest:
    """The complex step's J v against the exact J v (else reverse-mode autodiff's), each direction.

    The bound: the complex step's own (its spread across precisions, rounding of the sum's terms,
    the absolute floor once per term) plus the reference's bound carried through the sum.
    """
    V, cs, spread = along
    reference = Method.SYMBOLIC if Method.SYMBOLIC in values else Method.AUTODIFF
    J = values[reference]
    expected = V @ J.T  # (directions, outputs)
    size = np.abs(V) @ np.abs(J).T
    eps = np.finfo(dtype).eps
    bound = (
        4 * spread + 128 * eps * size + floor * np.abs(V).sum(axis=1, keepdims=True) + np.abs(V) @ bounds[reference].T
    )
    if not (np.all(np.isfinite(cs)) and np.all(np.isfinite(expected)) and np.all(np.isfinite(bound))):
        return DirectionalTest(Method.COMPLEX, unavailable("a derivative is not finite here"), reference, len(V))
    ok = bool(np.all(np.abs(cs - expected) <= bound))
    flat = (tuple(a.reshape(-1).tolist()) for a in (cs, expected, bound))
    return DirectionalTest(Method.COMPLEX, OK if ok else Status(State.MISMATCH), reference, len(V), *flat)


#: Elements per point whose finite-difference error is swept over steps 1e-1 … 1e-12.
SWEEP_ELEMENTS = 3


def sweeps(F, leaves, names, data, run_dtype, exact, steps, kinks) -> tuple:
    """The V-shaped error curve of plain central differences for a few elements of output 0: the
    first element of each parameter (up to SWEEP_ELEMENTS), away from kinks."""
    shapes = [leaf.shape for leaf in leaves]
    offsets = offsets_of(shapes)
    chosen = [int(k) for k in offsets[:-1] if k not in kinks.at and k not in kinks.crossed][:SWEEP_ELEMENTS]
    if not chosen:
        return ()
    flat = np.concatenate([leaf.reshape(-1) for leaf in leaves]).astype(run_dtype)
    out = []
    with autodiff.precision(run_dtype):
        for k in chosen:
            d = finite.central_differences(F, flat, data, k, finite.SWEEP_STEPS, run_dtype)[:, 0]
            truth = exact[0, k]
            scale = abs(truth) if truth != 0 else max(float(np.abs(exact[0]).max()), 1e-300)
            errors = np.abs(d - truth) / scale
            h = np.asarray(finite.SWEEP_STEPS) * max(abs(float(flat[k])), 1.0)
            best = float(h[np.nanargmin(errors)]) if np.isfinite(errors).any() else float("nan")
            out.append(
                StepSweep(
                    element_names(names, shapes)[k],
                    tuple(h.tolist()),
                    tuple(errors.tolist()),
                    float(steps[k]),
                    best,
                    finite.convergence_order(h, errors),
                )
            )
    return tuple(out)


#: At most this many columns get a second look (each costs six evaluations of the function).
SECOND_LOOK_COLUMNS = 256


def second_look(F, leaves, data, run_dtype, values, bounds, steps, notes, floor, rtol=None, atol=None):
    """(values, bounds, notes) with the finite differences autodiff disagrees with estimated again
    from a step 64 times smaller, where no exact value can say which of the two is wrong.

    Where the closer estimate differs from the first beyond both their bounds, the first depended
    on its step (the stencil crossed a kink, or a change on a scale below the step) and the closer
    one stands in for it; the element's note says so. Where they agree, the first stands: the
    disagreement with autodiff is then not the stencil's, and stays for the verdict.
    """
    fd = values.get(Method.FINITE)
    modes = [m for m in (Method.AUTODIFF, Method.FORWARD) if m in values]
    if fd is None or not modes:
        return values, bounds, notes
    apart = np.zeros(fd.shape, bool)
    for m in modes:  # the elements' own tolerance, as whole arrays
        apart |= ~(np.abs(fd - values[m]) <= compare.tolerance(m, Method.FINITE, values, bounds, rtol, atol))
    cols = np.flatnonzero(apart.any(axis=0))[:SECOND_LOOK_COLUMNS]
    if cols.size == 0:
        return values, bounds, notes
    theta = np.concatenate([leaf.reshape(-1) for leaf in leaves]).astype(run_dtype)
    try:
        with autodiff.precision(run_dtype):
            again = finite.closer(F, theta, data, run_dtype, cols, steps[cols], floor)
    finally:
        getattr(F, "interrupted", lambda: None)()  # torch's: an interruption held while XLA ran
    moved = np.any(np.abs(again.jac - fd[:, cols]) > again.bound + bounds[Method.FINITE][:, cols], axis=0)
    moved &= np.all(np.isfinite(again.jac), axis=0)
    if not moved.any():
        return values, bounds, notes
    values, bounds, notes = dict(values), dict(bounds), dict(notes)
    values[Method.FINITE], bounds[Method.FINITE] = fd.copy(), bounds[Method.FINITE].copy()
    for k in np.flatnonzero(moved):
        j = int(cols[k])
        values[Method.FINITE][:, j], bounds[Method.FINITE][:, j] = again.jac[:, k], again.bound[:, k]
        notes[j] = (
            f"step {float(steps[j]):.3g} → {float(again.steps[k]):.3g}: the estimate at the first step "
            "depended on it (a kink or a change on a smaller scale within the stencil)"
        )
    return values, bounds, notes
