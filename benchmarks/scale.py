"""The scale target: a full three-way check (symbolic, autodiff and finite differences for every
parameter) of tanh nets of growing size, each in a fresh process.

    python -m benchmarks.scale                     # widths 50, 100, 200: 2,601 / 10,201 / 40,401 parameters
    python -m benchmarks.scale --widths 100        # just the 10,201-parameter net

Per net: the whole process's wall time (start, imports, the check, exit), the check's own wall
and CPU time, the process's peak memory (RSS), where the check's time went, and the ratio of each
time to the previous net's.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from .functions import net_point, tanh_net, tanh_net_params

PHASES = {
    "translate": ("diffcheck._translate", "translate"),
    "exact value": ("diffcheck._graph", "evaluate"),
    "exact gradient": ("diffcheck._graph", "jacobian"),
    "kinks": ("diffcheck._graph", "evaluate_moved"),
    "reverse mode (with the value)": ("diffcheck._autodiff", "value_and_jacobian"),
    "forward mode": ("diffcheck._autodiff", "forward_jacobian"),
    "finite differences": ("diffcheck._finite", "jacobian"),
    "complex step": ("diffcheck._finite", "complex_step"),
    "complex step along v": ("diffcheck._finite", "complex_step_along"),
}


def _timed(spent, phase, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - start

    return wrapper


def measure(width: int, large: int | None = None) -> dict:
    """One check in this process (fresh): times, CPU, peak memory, time per phase. `large`: the
    parameter count above which the complex step goes directional (diffcheck._plan.LARGE)."""
    import importlib

    import jax.numpy as jnp

    from diffcheck import Case, _numeric, check_case

    if large is not None:
        _numeric.LARGE = large

    spent = {}
    for phase, (module, name) in PHASES.items():
        module = importlib.import_module(module)
        setattr(module, name, _timed(spent, phase, getattr(module, name)))
    case = Case(
        name=f"tanh_net_{tanh_net_params(width)}",
        fn=functools.partial(tanh_net, jnp),
        wrt=("W1", "b1", "W2", "b2"),
        points={"bench": net_point(width, width)},
    )
    cpu, start = time.process_time(), time.perf_counter()
    report = check_case(case, points=0)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    (point,) = report.points
    return {
        "params": tanh_net_params(width),
        "ok": report.ok,
        "methods": point.methods,
        "checks": point.checks,
        "check_seconds": seconds,
        "check_cpu_seconds": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "phases": spent,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--json", type=Path, help="write the records as JSON")
    parser.add_argument(
        "--large",
        type=int,
        help="parameter count above which the complex step runs along random directions and the "
        "finite-difference noise is sampled (default: diffcheck's, 16,384); e.g. 0: the same scheme at every size",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.large)))
        return 0
    records, ok = [], True
    for width in args.widths:
        start = time.perf_counter()
        command = [sys.executable, "-m", "benchmarks.scale", "--one", str(width)]
        command += [] if args.large is None else ["--large", str(args.large)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        record = json.loads(done.stdout.strip().splitlines()[-1])
        record["process_seconds"] = time.perf_counter() - start
        records.append(record)
        ok &= record["ok"]
    print("| parameters | process wall | check wall | check CPU | × previous (CPU) | peak RSS | verdict |")
    print("|---|---|---|---|---|---|---|")
    previous = None
    for r in records:
        ratio = f"{r['check_cpu_seconds'] / previous:.1f}" if previous else ""
        verdict = "agree" if r["ok"] else "FAILED"
        print(
            f"| {r['params']:,} | {r['process_seconds']:.1f} s | {r['check_seconds']:.1f} s | "
            f"{r['check_cpu_seconds']:.1f} s | {ratio} | {r['peak_rss_mb']:.0f} MB | {verdict} |"
        )
        previous = r["check_cpu_seconds"]
    print("\nWhat was checked:")
    for r in records:
        print(f"- {r['params']:,}: {r['checks']}")
    print("\nWall time per phase (s):")
    print("| parameters | " + " | ".join(PHASES) + " |")
    print("|---|" + "---|" * len(PHASES))
    for r in records:
        print(f"| {r['params']:,} | " + " | ".join(f"{r['phases'].get(p, 0.0):.2f}" for p in PHASES) + " |")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
