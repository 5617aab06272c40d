"""Cross-validation: each method's error bound, pairwise agreement, the verdict and the odd one out.

Every method brings its own error bound for every element, and two methods agree when they differ
by no more than the sum of their bounds:

* symbolic — exact, evaluated to 30 digits: its bound is the rounding to float64.
* autodiff — exact up to rounding in the run's dtype: 64 eps·|value|, plus 16 eps·(the largest
  derivative of that output), plus an absolute 16 float64 epsilons, plus four times the
  rounding error measured by running the same autodiff in the other precision (float32 for a
  float64 run, scaled by the ratio of epsilons; float64 for a float32 run). Both runs use the
  same rules, so a wrong rule does not widen it.
* finite differences — the Richardson truncation estimate plus the rounding of the stencil, its
  noise measured by evaluating the stencil in the other precision too.
* complex step — Im f(θ + ih eⱼ)/h has no subtraction, so only f's own rounding: the autodiff
  bound, with its spread measured by the complex step in the other precision.

The bounds' absolute part is `rounding_floor`: 16 float64 epsilons of the function's scale (its
largest value or derivative, or the largest term its float program adds, measured by `_terms`). A
gradient that cancels terms of that size (σ(35) − 1 = −6e-16 computed as 0) shows rounding at that
level in both precisions, which the ladder cannot reveal.

Explicit `rtol`/`atol` replace these bounds for every pair: |a − b| ≤ atol + rtol·|reference|.
"""

from __future__ import annotations

import math

import numpy as np

from . import _kinks as kinks
from ._records import PAIRS, Element, Expectation, Method, Unlisted, Verdict, offsets_of

SYMBOLIC, AUTODIFF, FORWARD, FINITE, COMPLEX = (
    Method.SYMBOLIC,
    Method.AUTODIFF,
    Method.FORWARD,
    Method.FINITE,
    Method.COMPLEX,
)
AGREE, MISMATCH, KINK = Verdict.AGREE, Verdict.MISMATCH, Verdict.KINK
#: The methods that vote, in the order the odd one out is looked for.
METHODS = (SYMBOLIC, AUTODIFF, FINITE, COMPLEX)
#: Digits of agreement reported for an exact match (float64 carries about 16).
FULL_DIGITS = 17.0


def rounding_floor(f, jac, terms: float = 1.0) -> float:
    """The least rounding error a derivative of this function can carry: 16 float64 epsilons of
    its scale, the largest of its values, of its derivatives, and of the terms its program adds
    (`terms`, measured by `_terms`; at most 1).

    Terms that cancel (σ(35) − 1 = −6e-16 computed as 0; 1 − tanh² on a saturated row of a batch
    whose other rows have derivatives of size 4) leave rounding at their own size in both
    precisions, which neither the element's own value nor the ladder can show. Where the terms
    were not measured (a torch function's `reference=`, a program without reverse mode) they count as 1:
    then a wrong rule of a function whose values, derivatives and terms are all ≪ 1e-15 goes
    unseen (docs/verification.md). The exact translation cannot stand in for the terms: SymPy
    cancels softplus(x) − log1p(exp(x)) to 0 as it builds it, while the program computes both.
    """
    return 16 * float(np.finfo(np.float64).eps) * max(scale(f, jac), min(terms, 1.0))


def scale(f, jac) -> float:
    """The function's scale: the largest finite magnitude of its values and its derivatives."""
    return max(float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0)) for a in (np.asarray(f), np.asarray(jac)))


def autodiff_bound(
    jac: np.ndarray, dtype, ladder: np.ndarray | None, ladder_dtype, eps: float = 0.0, floor: float | None = None
) -> np.ndarray:
    """The rounding-error bound of an autodiff Jacobian computed in `dtype`.

    `ladder` is the same Jacobian computed in `ladder_dtype`. Rounding errors scale with epsilon,
    so their difference, scaled to `dtype`'s epsilon when the ladder is the less precise one,
    measures this point's conditioning: cancellation that a fixed multiple of eps would miss.
    Without a ladder (the program does not run in the other precision) the conditioning is not
    measured, and `UNMEASURED` ulps of each row's largest derivative stand in for it. `eps`: the
    least precise float the program itself rounds to, when that is coarser than `dtype`'s.
    `floor`: the function's `rounding_floor` (default: that of the Jacobian alone).
    """
    eps = max(float(np.finfo(dtype).eps), eps)
    finite = np.where(np.isfinite(jac), np.abs(jac), 0.0)  # a NaN element is its own failure only
    row_scale = finite.max(axis=1, keepdims=True)
    floor = rounding_floor(0.0, jac) if floor is None else floor
    bound = 64 * eps * finite + 16 * eps * row_scale + floor
    if ladder is None:
        return bound + UNMEASURED * eps * row_scale
    scale = min(1.0, eps / np.finfo(ladder_dtype).eps)
    spread = np.abs(jac - ladder) * scale
    # Where the ladder is not finite (an overflow in float32, a loop cut short) nothing was measured.
    return bound + np.where(np.isfinite(spread), 4 * spread, UNMEASURED * eps * row_scale)


#: Ulps of a row's largest derivative allowed for rounding when it could not be measured.
UNMEASURED = 1024


def symbolic_bound(jac: np.ndarray) -> np.ndarray:
    return np.finfo(np.float64).eps * np.where(np.isfinite(jac), np.abs(jac), 0.0)


def digits(value: float, exact: float, scale: float) -> float:
    """Digits of agreement of `value` with `exact`: −log10 of the error relative to |exact| (or to
    `scale`, the output's largest derivative, when the exact value is zero), at most FULL_DIGITS."""
    denominator = abs(exact) if exact != 0 else scale
    if not np.isfinite(value):
        return 0.0
    error = abs(value - exact)
    if error == 0 or denominator == 0:
        return FULL_DIGITS if error == 0 else 0.0
    return relative_digits(error / denominator)


def relative_digits(relative_error: float, cap: float = FULL_DIGITS) -> float:
    """−log10(relative error), between 0 and `cap` (`cap` for an exact match, 0 for NaN)."""
    if math.isnan(relative_error):
        return 0.0
    if relative_error <= 0:
        return cap
    return min(cap, max(0.0, -math.log10(relative_error)))


def dot_product_bound(u: np.ndarray, jac: np.ndarray, v: np.ndarray, dtype, floor: float) -> float:
    """Rounding of uᵀ(J v) or (Jᵀu)ᵀ v: each is a sum of the terms uᵢ Jᵢⱼ vⱼ, so 64 eps of their
    absolute sum (plus J's own rounding, within the same factor) bounds the difference."""
    eps = np.finfo(dtype).eps
    return float(64 * eps * (np.abs(u) @ np.abs(jac) @ np.abs(v)) + floor * eps / np.finfo(np.float64).eps)


def relative_error(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > 0 else 0.0


def tolerance(a: str, b: str, values: dict, bounds: dict, rtol=None, atol=None) -> float:
    """The largest |a − b| still counted as agreement for one element."""
    if rtol is not None or atol is not None:
        reference = values.get(SYMBOLIC)
        reference = values[a] if reference is None else reference
        return (atol or 0.0) + (rtol or 0.0) * abs(reference)
    return bounds[a] + bounds[b]


def verdict(
    values: dict, bounds: dict, rtol=None, atol=None, independent: bool = True
) -> tuple[Verdict, Method | None, dict, dict]:
    """(verdict, odd one out, errors, tolerances) for one element.

    `values` maps each available method to its value (forward mode under `autodiff_forward`);
    `bounds` maps each to its error bound. The verdict is a claim about autodiff, the method under
    test: it agrees when it is within its bound of the exact value (or, without one, of an
    estimate); a finite difference or complex step that misses then is the estimate's failure,
    never the gradient's. The odd one out is the method that disagrees with the others while they
    agree with each other; None when no such method can be named.
    """
    errors, tols, agree = {}, {}, {}
    for a, b in PAIRS:
        if a in values and b in values:
            key = (a, b)
            errors[key] = abs(values[a] - values[b])
            tols[key] = tolerance(a, b, values, bounds, rtol, atol)
            agree[(a, b)] = bool(errors[key] <= tols[key])

    def agrees(a, b):
        ok = agree.get((a, b), agree.get((b, a), True))
        if AUTODIFF in (a, b) and FORWARD in values:  # autodiff agrees only if both modes do
            other = b if a == AUTODIFF else a
            ok = ok and agree.get((other, FORWARD), agree.get((FORWARD, other), True))
        return ok

    if all(agree.values()):
        return AGREE, None, errors, tols
    numeric = [m for m in (FINITE, COMPLEX) if m in values]
    if SYMBOLIC in values:
        if agrees(AUTODIFF, SYMBOLIC):
            # Autodiff is the exact value: a dissenting estimate is the estimate's miss, not a bug.
            return AGREE, None, errors, tols
        with_exact = [m for m in numeric if agrees(m, SYMBOLIC) and not agrees(m, AUTODIFF)]
        with_autodiff = [m for m in numeric if agrees(m, AUTODIFF) and not agrees(m, SYMBOLIC)]
        against_both = [m for m in numeric if not agrees(m, AUTODIFF) and not agrees(m, SYMBOLIC)]
        if with_autodiff and not with_exact:
            # Independent methods that agree outvote the translation; a dependent pair does not.
            return MISMATCH, SYMBOLIC if independent else AUTODIFF, errors, tols
        if not with_autodiff and not against_both:  # the exact value decides
            return MISMATCH, AUTODIFF, errors, tols
        return MISMATCH, None, errors, tols
    if not agree.get((AUTODIFF, FORWARD), True):  # autodiff contradicts itself
        return MISMATCH, AUTODIFF, errors, tols
    if any(agrees(m, AUTODIFF) for m in numeric):  # a lone dissenter never outvotes agreement
        return AGREE, None, errors, tols
    if len(numeric) >= 2:  # two independent estimates against autodiff
        return MISMATCH, AUTODIFF, errors, tols
    return MISMATCH, None, errors, tols


def elements(
    values, bounds, names, shapes, labels, notes, kinks_found, rtol, atol, independent, blind="", listed=None
) -> list[Element]:
    """Every checked element with its verdict: `values`/`bounds` map each method to its
    (rows × parameters) matrix, `labels` name the rows (`_plan.labels`), `notes` hold the
    finite differences' per-parameter notes, `kinks_found` is `_kinks.Kinks`; `blind` says why the
    estimates (finite differences, complex step) are not compared anywhere ("" when they are).
    `listed` (from `screen`): the (rows × parameters) mask of the elements to list; None: all."""
    offsets = offsets_of(shapes)
    exact_values = values.get(SYMBOLIC)
    row_scale = np.abs(exact_values).max(axis=1) if exact_values is not None else None
    explicit = rtol is not None or atol is not None
    elements = []
    for m, (output, via) in enumerate(labels):
        if listed is not None and not listed[m].any():
            continue
        for leaf, (name, shape) in enumerate(zip(names, shapes)):
            for k in range(offsets[leaf], offsets[leaf + 1]):
                if listed is not None and not listed[m, k]:
                    continue
                index = tuple(int(i) for i in np.unravel_index(k - offsets[leaf], shape)) if shape else ()
                vals = {meth: float(v[m, k]) for meth, v in values.items()}
                bnds = {meth: float(b[m, k]) for meth, b in bounds.items()}
                note = notes.get(k, "")
                compared = vals
                if blind:
                    compared = {meth: v for meth, v in vals.items() if meth not in (FINITE, COMPLEX)}
                    note = blind
                if k in kinks_found.at or k in kinks_found.crossed:
                    # Finite differences and complex step need a smooth function along the stencil.
                    compared = {meth: v for meth, v in vals.items() if meth not in (FINITE, COMPLEX)}
                    note = "finite differences not compared: the stencil crosses a kink"
                if k in kinks_found.at:
                    sides = kinks_found.sides.get(k)
                    left, right = (sides[0][m], sides[1][m]) if sides else (math.nan, math.nan)
                    if kinks.same_side(left, right, float(row_scale[m]) if row_scale is not None else 0.0):
                        # The kinks cancel (softplus as max(x, 0) + log1p(exp(−|x|)) at 0): differentiable.
                        compared[SYMBOLIC] = vals[SYMBOLIC] = (left + right) / 2
                        bnds[SYMBOLIC] = float(np.finfo(np.float64).eps) * abs(vals[SYMBOLIC])
                        note = "kinks cancel here: equal one-sided derivatives; finite differences not compared"
                    else:
                        elements.append(kinks.kink_element(name, index, output, vals, bnds, left, right, via))
                        continue
                outcome, odd, errors, tols = verdict(compared, bnds, rtol, atol, independent)
                if outcome == AGREE:
                    note = _estimate_missed(errors, tols) or note
                agreement = {}
                if exact_values is not None and SYMBOLIC in vals:
                    exact = vals[SYMBOLIC]
                    agreement = {
                        meth: digits(v, exact, float(row_scale[m]))
                        for meth, v in compared.items()  # not a method left out at a kink
                        if meth != SYMBOLIC
                    }
                kept = {} if explicit else bnds
                elements.append(
                    Element(name, index, output, vals, errors, tols, outcome, odd, note, via, kept, agreement)
                )
    return elements


#: Elements a point's record lists one by one: all of them up to this many. Past it (a 3000×3000
#: Jacobian has 9 million), the record lists those that do not plainly agree (at most
#: `MAX_FAILURES_LISTED`, the farthest past their tolerance first) and the `WORST_LISTED` agreeing
#: ones nearest theirs, and summarises the rest (`Unlisted`): a record per element costs kilobytes.
MAX_LISTED = 4096
MAX_FAILURES_LISTED = 1000
WORST_LISTED = 16


def screen(values, bounds, kinks_found, rtol, atol, independent, blind="") -> tuple[np.ndarray | None, Unlisted | None]:
    """(the mask of elements to list, the summary of the others) for a large derivative, by whole
    arrays; (None, None) when every element is listed. Arguments as `elements`."""
    if blind:
        values = {m: v for m, v in values.items() if m not in (FINITE, COMPLEX)}
    shape = next(iter(values.values())).shape
    if shape[0] * shape[1] <= MAX_LISTED:
        return None, None
    explicit = rtol is not None or atol is not None
    plain, ratio = np.ones(shape, bool), np.zeros(shape)
    errors, scales = {}, {}
    for a, b in PAIRS:
        if a in values and b in values:
            errors[a, b] = error = np.abs(values[a] - values[b])
            scales[a, b] = np.maximum(np.abs(values[a]), np.abs(values[b]))
            if explicit:
                reference = values.get(SYMBOLIC, values[a])
                tol = (atol or 0.0) + (rtol or 0.0) * np.abs(reference)
            else:
                tol = bounds[a] + bounds[b]
            agree = error <= tol  # NaN: not plainly agreeing
            plain &= agree
            ratio = np.maximum(ratio, np.where(tol > 0, error / np.where(tol > 0, tol, 1.0), np.inf))
    kinked = sorted(set(kinks_found.at) | set(kinks_found.crossed))
    plain[:, kinked] = False
    listed = ~plain
    counts = {}
    failing = np.flatnonzero(listed)
    if failing.size > MAX_FAILURES_LISTED:  # the farthest listed; the others counted by their verdict
        order = np.argsort(-np.nan_to_num(ratio.reshape(-1)[failing], nan=np.inf), kind="stable")
        for flat in failing[order[MAX_FAILURES_LISTED:]]:
            m, k = divmod(int(flat), shape[1])
            outcome = KINK if k in kinked else verdict(
                {meth: float(v[m, k]) for meth, v in values.items()},
                {meth: float(b[m, k]) for meth, b in bounds.items()}, rtol, atol, independent,
            )[0]  # fmt: skip
            counts[outcome] = counts.get(outcome, 0) + 1
            listed.reshape(-1)[flat] = False
    agreeing = np.flatnonzero(plain)
    worst = agreeing[np.argsort(-ratio.reshape(-1)[agreeing], kind="stable")[:WORST_LISTED]]
    listed.reshape(-1)[worst] = True
    counts[AGREE] = counts.get(AGREE, 0) + int((plain & ~listed).sum())
    rest = ~listed
    worst_relative = {}
    for key, error in errors.items():
        relative = np.where(scales[key] > 0, error / np.where(scales[key] > 0, scales[key], 1.0), 0.0)
        worst_relative[key] = float(np.max(relative[rest], initial=0.0))
    fewest = {}
    exact = values.get(SYMBOLIC)
    if exact is not None:
        row_scale = np.abs(exact).max(axis=1, keepdims=True)
        denominator = np.where(exact != 0, np.abs(exact), row_scale)
        for meth, v in values.items():
            if meth == SYMBOLIC:
                continue
            error = np.abs(v - exact)
            with np.errstate(divide="ignore", invalid="ignore"):
                d = np.clip(-np.log10(error / denominator), 0.0, FULL_DIGITS)
            d = np.where(error == 0, FULL_DIGITS, np.where((denominator == 0) | ~np.isfinite(v), 0.0, d))
            fewest[meth] = float(np.min(d[rest], initial=FULL_DIGITS))
    return listed, Unlisted(counts, worst_relative, fewest)


def _estimate_missed(errors, tols) -> str:
    """The note on an agreeing element where an estimate (finite differences, complex step) missed
    its own bound: it does not vote against autodiff and the exact value."""
    missed = sorted(
        {m for (a, b), e in errors.items() if not e <= tols[(a, b)] for m in (a, b) if m in (FINITE, COMPLEX)}
    )
    if not missed:
        return ""
    return f"{' and '.join(missed)} outside its bound here (it does not vote against agreeing methods)"


def expectations(expected, values, names, shapes, decimals) -> list[Expectation]:
    """The recorded values a case's derivative must match (`Case.expected`), checked at order 1."""
    offsets = dict(zip(names, offsets_of(shapes)))
    shape_of = dict(zip(names, shapes))
    out = []
    for name, want in expected.items():
        want = np.asarray(want, np.float64)
        for index in np.ndindex(*want.shape):
            k = offsets[name] + (int(np.ravel_multi_index(index, shape_of[name])) if index else 0)
            got = {m: float(values[m][0, k]) for m in (SYMBOLIC, AUTODIFF) if m in values}
            ok = all(abs(v - want[index]) <= 0.5 * 10.0**-decimals for v in got.values())
            out.append(Expectation(name, index, float(want[index]), decimals, got, ok))
    return out
