"""Digits of agreement with the exact (30-digit SymPy) derivative, per method, on library cases.

    python benchmarks/digits.py sigmoid_bce simple_net

Methods: autodiff; plain central differences at the classic step h = eps^(1/3)·max(|θ|, 1);
diffcheck's Richardson-extrapolated central differences; complex step. The figure per method is the
fewest digits over every gradient element of every point (named points and 2 random ones).
"""

from __future__ import annotations

import sys

import numpy as np

import diffcheck
from diffcheck import _autodiff as autodiff
from diffcheck import _compare as compare
from diffcheck import _finite as finite
from diffcheck._numeric import flat_program as _flat_program


def central_digits(case, point_name, point, exact) -> float:
    leaves = [np.asarray(point[p], np.float64) for p in case.wrt]
    data = {k: v for k, v in point.items() if k not in case.wrt}
    F = _flat_program(lambda *values, **d: case.fn(**d, **dict(zip(case.wrt, values))), tuple(a.shape for a in leaves))
    theta = np.concatenate([a.reshape(-1) for a in leaves])
    step = np.finfo(np.float64).eps ** (1 / 3)
    worst = compare.FULL_DIGITS
    with autodiff.precision(np.float64):
        for j in range(theta.size):
            d = finite.central_differences(F, theta, data, j, (step,), np.float64)[0]
            for m in range(exact.shape[0]):
                scale = float(np.abs(exact[m]).max())
                worst = min(worst, compare.digits(float(d[m]), float(exact[m, j]), scale))
    return worst


def main(names) -> None:
    cases = {c.name: c for c in diffcheck.load_cases()}
    print("| case | autodiff | central (h = eps^(1/3)) | Richardson | complex step |")
    print("|---|---|---|---|---|")
    for name in names:
        case = cases[name]
        report = diffcheck.check_case(case, order=1, points=2, seed=0)
        digits, central = {}, compare.FULL_DIGITS
        for p, (point_name, point) in zip(report.points, case.draw(2, 0).items()):
            for method, d in p.digits().items():
                digits[method] = min(digits.get(method, compare.FULL_DIGITS), d)
            n_out = max(e.output[0] + 1 if e.output else 1 for e in p.elements)
            exact = np.array([e.values["symbolic"] for e in p.elements]).reshape(n_out, -1)
            central = min(central, central_digits(case, point_name, point, exact))
        cells = [f"{digits.get(m, float('nan')):.1f}" for m in (compare.AUTODIFF,)]
        methods = p.methods.get(compare.COMPLEX, "")
        cells += [f"{central:.1f}", f"{digits[compare.FINITE]:.1f}"]
        cells.append(f"{digits[compare.COMPLEX]:.1f}" if compare.COMPLEX in digits else f"n/a ({methods})")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["sigmoid_bce", "simple_net"])
