"""What a wrong gradient looks like: the pattern of autodiff's error across a parameter's elements.

When autodiff is the odd one out against the exact value, the pattern names where to look in the
rule: a constant factor (a missing ½, a 1e-6 scale), a sign flip, a transpose (a matrix rule that
forgets to transpose), zeros where the truth is not (a dropped term, an ignored cotangent), or a
subset of the elements (a rule wrong only past a threshold).
"""

from __future__ import annotations

import numpy as np

from ._records import Method, Verdict

#: Relative agreement within which two ratios count as one constant factor: far above the rounding
#: of either value, far below any factor a rule gets wrong.
_SAME = 1e-10


def diagnose(elements) -> tuple[str, ...]:
    """One line per parameter (and output row group) whose autodiff values are wrong with a pattern."""
    groups: dict[tuple, list] = {}
    for e in elements:
        groups.setdefault((e.parameter, e.via), []).append(e)
    lines = []
    for (parameter, via), group in groups.items():
        wrong = [e for e in group if e.verdict == Verdict.MISMATCH and e.odd_one_out == Method.AUTODIFF]
        comparable = [e for e in group if Method.SYMBOLIC in e.values and Method.AUTODIFF in e.values]
        if not wrong or not comparable:
            continue
        line = _pattern(f"{via}{parameter}", comparable, wrong)
        if line:
            lines.append(line)
    return tuple(lines)


def _pattern(name, comparable, wrong) -> str:
    exact = np.array([e.values[Method.SYMBOLIC] for e in comparable])
    ad = np.array([e.values[Method.AUTODIFF] for e in comparable])
    n, bad = len(comparable), len(wrong)
    nonfinite = [e for e in wrong if not np.isfinite(e.values[Method.AUTODIFF])]
    if nonfinite:
        shown = _shown(nonfinite)
        return f"{name}: autodiff is not finite on {len(nonfinite)} of {n} elements ({shown}) where the exact value is"
    nonzero = exact != 0
    if nonzero.any() and np.all(ad[nonzero] == 0) and bad == int(nonzero.sum()):
        return (
            f"{name}: autodiff is 0 on all {bad} elements where the exact derivative is not "
            "(a dropped term or an ignored cotangent?)"
        )
    if nonzero.any():
        ratios = ad[nonzero] / exact[nonzero]
        factor = float(np.median(ratios))
        same = np.all(np.abs(ratios - factor) <= _SAME * abs(factor))
        if same and abs(factor - 1) > _SAME:
            kind = "a sign flip: " if abs(factor + 1) <= _SAME else ""
            return f"{name}: {kind}autodiff = {factor:.12g} × exact on all {int(nonzero.sum())} nonzero elements"
    transpose = _transposed(comparable, exact, ad)
    if transpose:
        return f"{name}: autodiff[i, j] = exact[j, i] — a transpose ({transpose})"
    if bad < n:
        return f"{name}: off on {bad} of {n} elements only ({_shown(wrong)}); right on the others"
    return ""


def _transposed(comparable, exact, ad) -> str:
    """'square k×k' when the elements form a square matrix whose autodiff is the exact one transposed."""
    indices = [e.index for e in comparable]
    outputs = {e.output for e in comparable}
    if len(outputs) != 1 or not indices or any(len(i) != 2 for i in indices):
        return ""
    k = int(round(len(indices) ** 0.5))
    if k * k != len(indices) or k < 2 or {i for i in indices} != {(a, b) for a in range(k) for b in range(k)}:
        return ""
    E, A = np.zeros((k, k)), np.zeros((k, k))
    for (i, j), e_val, a_val in zip(indices, exact, ad, strict=True):
        E[i, j], A[i, j] = e_val, a_val
    scale = max(float(np.abs(E).max()), 1e-300)
    if np.allclose(A, E.T, rtol=_SAME, atol=_SAME * scale) and not np.allclose(A, E, rtol=_SAME, atol=_SAME * scale):
        return f"square {k}×{k}"
    return ""


def _shown(elements, limit: int = 8) -> str:
    return ", ".join(_index(e) for e in elements[:limit]) + (", …" if len(elements) > limit else "")


def _index(e) -> str:
    index = "[" + ",".join(map(str, e.index)) + "]" if e.index else "(scalar)"
    if e.along:
        return e.via + index
    return index + (" of output[" + ",".join(map(str, e.output)) + "]" if e.output else "")
