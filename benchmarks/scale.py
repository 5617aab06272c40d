"""The scale target: a full three-way check (symbolic, autodiff and finite differences for every
parameter) of networks of growing size, each in a fresh (spawned) process.

    python -m benchmarks.scale                     # tanh nets, widths 50, 100, 200: 2,601 / 10,201 / 40,401 parameters
    python -m benchmarks.scale --widths 100        # just the 10,201-parameter net
    python -m benchmarks.scale --family mlp        # 100→32→10 and 784→32→10, batch 16; width, batch doubled
    python -m benchmarks.scale --family gpt2       # the 2-layer tiny GPT-2 (29,632 parameters), batch 2, then 4
    python -m benchmarks.scale --family mlp --nets 784,32,10,16   # one net: inputs,hidden,classes,batch

Per net: the whole process's wall time (start, imports, the check, exit), the check's own wall
and CPU time, the process's peak memory (RSS), where the check's time went, and the ratio of each
time to the net it doubles (its width, its batch, its depth).
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

import numpy as np

from .functions import net_point, tanh_net, tanh_net_params

PHASES = {
    "translate": ("diffcheck._translate", "translate"),
    "exact value": ("diffcheck._graph", "evaluate"),
    "exact gradient": ("diffcheck._graph", "jacobian"),
    "kinks": ("diffcheck._kinks", "stencil_kinks"),
    "reverse mode (with the value)": ("diffcheck._autodiff", "value_and_jacobian"),
    "forward mode": ("diffcheck._autodiff", "_forward_blocks"),  # in its thread where compiled
    "finite differences": ("diffcheck._finite", "_estimate"),  # in its thread where compiled
    "complex step": ("diffcheck._finite", "complex_step"),
    "complex step along v": ("diffcheck._finite", "complex_step_along"),
}


def _timed(spent, phase, fn, cpu=None):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start, used = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - start
            if cpu is not None:  # on a shared machine the wall time is mostly waiting
                cpu[phase] = cpu.get(phase, 0.0) + time.process_time() - used

    return wrapper


def install_timers(phases, cpu=None) -> dict:
    """Wraps each phase's function in diffcheck with a timer; returns the dict they add to (wall
    seconds per phase; CPU seconds per phase go to `cpu`, when given)."""
    import importlib

    spent = {}
    for phase, (module, name) in phases.items():
        module = importlib.import_module(module)
        if hasattr(module, name):  # an older diffcheck may lack a phase
            setattr(module, name, _timed(spent, phase, getattr(module, name), cpu))
    return spent


def measure(width: int, large: int | None = None) -> dict:
    """One check in this process (fresh): times, CPU, peak memory, time per phase. `large`: the
    parameter count above which the complex step goes directional (diffcheck._plan.LARGE)."""
    import jax.numpy as jnp

    from diffcheck import Case, _numeric, check_case

    if large is not None:
        _numeric.LARGE = large

    spent = install_timers(PHASES)
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


def measure_net(family: str, spec: tuple, large: int | None = None) -> dict:
    """One check of a batched net (`benchmarks.nets`) by `check_grad`, in this process."""
    from diffcheck import _numeric, check_grad

    from . import nets

    if large is not None:
        _numeric.LARGE = large
    spent_cpu = {}
    spent = install_timers(PHASES, spent_cpu)
    if family == "mlp":
        inputs, hidden, classes, batch = spec
        loss, params, _ = nets.mlp(inputs, hidden, classes, batch)
    else:
        (batch, layers) = spec
        loss, params, _ = nets.gpt2(batch=batch, layers=layers)
    cpu, start = time.process_time(), time.perf_counter()
    report = check_grad(loss, *params)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    (point,) = report.points
    return {
        "params": int(sum(np.size(p) for p in params)),
        "net": _label(family, spec),
        "ok": report.ok,
        "error": point.error,
        "methods": point.methods,
        "checks": point.checks,
        "check_seconds": seconds,
        "check_cpu_seconds": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "phases": spent,
        "phases_cpu": spent_cpu,
    }


#: The nets of each family, and which earlier net each one doubles (width, batch or depth).
FAMILIES = {
    "mlp": [
        (100, 32, 10, 16),
        (100, 32, 10, 32),
        (100, 64, 10, 16),
        (784, 32, 10, 16),
        (784, 32, 10, 32),
        (784, 64, 10, 16),
    ],
    "gpt2": [(2, 2), (4, 2), (2, 4)],
}


def _label(family, spec) -> str:
    if family == "mlp":
        inputs, hidden, classes, batch = spec
        return f"{inputs}→{hidden}→{classes}, batch {batch}"
    if family == "gpt2":
        batch, layers = spec
        return f"GPT-2 {layers} layers, batch {batch}"
    return f"tanh net, width {spec[0]}"


def _doubles(family, spec, done) -> tuple | None:
    """The measured net that `spec` doubles in one dimension (and which), or None."""
    for other in done:
        diff = [i for i, (a, b) in enumerate(zip(spec, other)) if a != b]
        if len(diff) == 1 and spec[diff[0]] == 2 * other[diff[0]]:
            names = {"mlp": ("inputs", "width", "classes", "batch"), "gpt2": ("batch", "depth")}.get(family, ("width",))
            return other, names[diff[0]]
    return None


def main_nets(args) -> int:
    specs = FAMILIES[args.family] if not args.nets else [tuple(int(x) for x in n.split(",")) for n in args.nets]
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load before: {uptime}")
    records, ok = {}, True
    for spec in specs:
        start = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "benchmarks.scale",
            "--family",
            args.family,
            "--one-net",
            ",".join(map(str, spec)),
        ]
        command += [] if args.large is None else ["--large", str(args.large)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        record = json.loads(done.stdout.strip().splitlines()[-1])
        record["process_seconds"] = time.perf_counter() - start
        records[spec] = record
        ok &= record["ok"]
    print(
        "| net | parameters | process wall | check wall | check CPU | doubles | × (wall) | × (CPU) | peak RSS "
        "| verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for spec, r in records.items():
        doubled = _doubles(args.family, spec, [s for s in records if s != spec])
        twice, ratio, ratio_cpu = "", "", ""
        if doubled:
            other, what = doubled
            twice = what
            ratio = f"{r['check_seconds'] / records[other]['check_seconds']:.2f}"
            ratio_cpu = f"{r['check_cpu_seconds'] / records[other]['check_cpu_seconds']:.2f}"
        verdict = "agree" if r["ok"] else f"FAILED {r['error'] or ''}"
        print(
            f"| {r['net']} | {r['params']:,} | {r['process_seconds']:.1f} s | {r['check_seconds']:.1f} s | "
            f"{r['check_cpu_seconds']:.1f} s | {twice} | {ratio} | {ratio_cpu} | "
            f"{r['peak_rss_mb']:.0f} MB | {verdict} |"
        )
    print("\nWhat was checked:")
    for r in records.values():
        print(f"- {r['net']}: {r['checks']}; methods {r['methods']}")
    for title, key in (("Wall", "phases"), ("CPU", "phases_cpu")):
        print(f"\n{title} time per phase (s):")
        print("| net | " + " | ".join(PHASES) + " |")
        print("|---|" + "---|" * len(PHASES))
        for r in records.values():
            print(f"| {r['net']} | " + " | ".join(f"{r.get(key, {}).get(p, 0.0):.2f}" for p in PHASES) + " |")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\nload after: {uptime}")
    if args.json:
        args.json.write_text(json.dumps(list(records.values()), indent=1))
    return 0 if ok else 1


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
    parser.add_argument("--family", choices=("tanh", "mlp", "gpt2"), default="tanh")
    parser.add_argument(
        "--nets", nargs="+", help="mlp: inputs,hidden,classes,batch; gpt2: batch,layers (default: the family)"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--one-net", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.large)))
        return 0
    if args.one_net:
        print(json.dumps(measure_net(args.family, tuple(int(x) for x in args.one_net.split(",")), args.large)))
        return 0
    if args.family != "tanh":
        return main_nets(args)
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
