"""Avoidable precision loss on the library and the bug zoo: which points raise it, and what the
precision audit costs.

    python -m benchmarks.precision            # the library (float64, float32) and the zoo
    python -m benchmarks.precision --library  # the library only
    python -m benchmarks.precision --zoo      # the zoo only

Prints, as Markdown, every precision warning (the point, autodiff's digits, the digits allowed, the
operation named) and the time spent judging precision (`_precision.judge` and `value_loss`) against
the time of the whole check, per run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import diffcheck
from diffcheck import _pipeline
from diffcheck import _precision as precision


class _Clock:
    """Seconds spent in the precision audit, by wrapping its two entry points where the pipeline calls them."""

    def __init__(self):
        self.seconds = 0.0
        self._judge, self._value = precision.judge, precision.value_loss

    def _timed(self, fn):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return run

    def __enter__(self):
        _pipeline.precision_audit.judge = self._timed(self._judge)
        _pipeline.precision_audit.value_loss = self._timed(self._value)
        return self

    def __exit__(self, *exc):
        _pipeline.precision_audit.judge, _pipeline.precision_audit.value_loss = self._judge, self._value


def _warnings(report: diffcheck.Report) -> list[str]:
    return [line for line in report.precision_warnings(limit=10**6)[1:]]


def library(dtype: str) -> tuple[list[str], list[str], float, float]:
    """(warnings, failing cases, seconds in the audit, seconds in all) for every case at its named
    points and 2 random ones."""
    lines, failures, total = [], [], 0.0
    with _Clock() as clock:
        for case in diffcheck.load_cases():
            report = diffcheck.check_case(case, dtype=dtype, points=2, seed=0)
            total += report.seconds
            lines += _warnings(report)
            if not report.ok:
                failures.append(case.name)
    return lines, failures, clock.seconds, total


def zoo(dtype: str) -> tuple[list[str], list[str], float, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from zoo import BUGS, CORRECT

    lines, alarms, total = [], [], 0.0
    with _Clock() as clock:
        for entry in BUGS + CORRECT:
            report = diffcheck.check_grad(entry.fn, *entry.args, order=entry.order, dtype=dtype)
            total += report.seconds
            lines += [f"{entry.name}: {line}" for line in _warnings(report)]
            if entry in CORRECT and not report.ok:
                alarms.append(entry.name)
    return lines, alarms, clock.seconds, total


def main(argv) -> None:
    runs = []
    if "--zoo" not in argv:
        runs += [("library", "float64", library), ("library", "float32", library)]
    if "--library" not in argv:
        runs += [("zoo", "float64", zoo), ("zoo", "float32", zoo)]
    for name, dtype, run in runs:
        lines, failures, audit, total = run(dtype)
        print(f"## {name}, {dtype}\n")
        print(
            f"precision audit {audit:.1f} s of {total:.1f} s checking ({100 * audit / max(total, 1e-9):.1f} %); ",
            end="",
        )
        print(f"failures: {', '.join(failures) or 'none'}\n")
        print("\n".join(f"- {line}" for line in lines) or "no precision warning")
        print(flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
