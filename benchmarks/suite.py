"""Speed where a test suite feels it: many small distinct functions checked in one process, and
one function checked again in a warm process, side by side with `jax.test_util.check_grads`
(forward and reverse mode) and `torch.autograd.gradcheck` on the same mathematics.

    python -m benchmarks.suite                 # 20 functions at order 1, 3 interleaved rounds, and warm SimpleNet
    python -m benchmarks.suite --order 2       # the same at order 2 (check_grads order 2, gradgradcheck)
    python -m benchmarks.suite --rounds 5 --json suite.json

Each tool runs in a fresh (spawned) process per round: it checks one unrelated function first
(imports, JAX's start-up), then every suite function once, each a new function object it has
never seen, so no tool reuses anything a real suite of distinct tests could not. Rounds
interleave the tools, so machine load falls on all of them alike; the table gives medians.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: Two arguments, a (4,) and b (5,): 9 parameters; tanh and log1p throughout.
SHAPES = ((4,), (5,))


def _suite(xp):
    """20 distinct functions of (a, b), written once against `xp` (jax.numpy or torch)."""
    outer = lambda a, b: a[:, None] * b[None, :]  # noqa: E731
    return [
        lambda a, b: xp.sum(xp.tanh(a)) * xp.sum(xp.log1p(b**2)),
        lambda a, b: xp.sum(xp.tanh(outer(a, b) + 0.5)),
        lambda a, b: xp.sum(xp.log1p(xp.exp(outer(a, b)))),
        lambda a, b: xp.sum(xp.tanh(a) ** 2) + xp.sum(xp.log1p(xp.tanh(b) ** 2)),
        lambda a, b: xp.sum(xp.log1p(a**2)) / (1 + xp.sum(xp.tanh(b) ** 2)),
        lambda a, b: xp.sum(xp.tanh(xp.tanh(outer(a, b)))),
        lambda a, b: xp.sum(xp.log1p(outer(a**2, b**2))),
        lambda a, b: xp.sum(xp.tanh(a)[:, None] * xp.log1p(b**2)[None, :]),
        lambda a, b: xp.sum(xp.sin(a) * xp.tanh(b[:4])) + xp.log1p(b[4] ** 2),
        lambda a, b: xp.sum(xp.tanh(a * b[:4] + b[1:])),
        lambda a, b: xp.log1p(xp.sum(xp.tanh(outer(a, b)) ** 2)),
        lambda a, b: xp.sum(xp.exp(-(a**2))) * xp.sum(xp.tanh(3 * b)),
        lambda a, b: xp.sum(xp.log1p(xp.exp(-(outer(a, b) ** 2)))),
        lambda a, b: xp.sum(xp.tanh(outer(a, b)) @ xp.log1p(b**2)),
        lambda a, b: xp.sum(xp.tanh(a @ outer(a, b))),
        lambda a, b: xp.sum(xp.cos(outer(a, b)) * xp.tanh(outer(a, b))),
        lambda a, b: xp.sqrt(1 + xp.sum(xp.log1p(outer(a, b) ** 2))),
        lambda a, b: xp.sum(xp.tanh(a[1:]) * xp.tanh(a[:-1])) + xp.sum(xp.log1p(b**4)),
        lambda a, b: xp.sum(xp.tanh(xp.log1p(a**2)[:, None] - b[None, :])),
        lambda a, b: xp.sum(xp.log1p(xp.tanh(outer(a, b)) ** 2) * outer(a, b)),
    ]


def _warm_up(xp):
    """A function outside the suite, checked first: imports and start-up are not the suite's."""
    return lambda a, b: xp.sum(a**3) + xp.sum(b**3)


def _point(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def _phases():
    """diffcheck's phase timers (benchmarks.scale's), installed in this process."""
    from .scale import PHASES, install_timers

    return install_timers(PHASES)


def run_tool(tool: str, order: int) -> dict:
    """The suite with one tool, in this process: seconds per function, total wall and CPU."""
    a, b = _point()
    if tool == "diffcheck":
        import diffcheck

        spent = _phases()
        xp = _jnp()

        def check(f):
            report = diffcheck.check_grad(f, a, b, order=order)
            if not report.ok:
                raise AssertionError(str(report))

    elif tool == "check_grads":
        import jax

        jax.config.update("jax_enable_x64", True)  # a benchmark process of its own
        from jax.test_util import check_grads

        spent, xp = None, _jnp()
        args = (jax.numpy.asarray(a), jax.numpy.asarray(b))

        def check(f):
            check_grads(f, args, order=order, modes=("fwd", "rev"))

    elif tool == "gradcheck":
        import torch

        spent, xp = None, torch
        args = tuple(torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in (a, b))

        def check(f):
            ok = (torch.autograd.gradcheck if order == 1 else torch.autograd.gradgradcheck)(f, args)
            if not ok:
                raise AssertionError("gradcheck failed")

    else:
        raise ValueError(f"unknown tool {tool!r}; valid tools are diffcheck, check_grads, gradcheck")
    check(_warm_up(xp))
    if spent is not None:
        spent.clear()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    cpu, start = time.process_time(), time.perf_counter()
    for f in _suite(xp):
        t = time.perf_counter()
        check(f)
        times.append(time.perf_counter() - t)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "tool": tool,
        "functions": len(times),
        "wall": wall,
        "cpu": cpu,
        "per_function_median": statistics.median(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_rise_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024,
        "phases": dict(spent or {}),
    }


def _jnp():
    import jax.numpy as jnp

    return jnp


def run_warm(repeats: int) -> dict:
    """The tutorial's SimpleNet checked again and again in one warm process: median seconds per
    check for diffcheck, check_grads (fwd + rev) and gradcheck (the same net in torch)."""
    import jax
    import jax.numpy as jnp
    from diffcheck.cases import tutorial

    import diffcheck

    point = tutorial.simple_net.points["init"]
    wrt = tutorial.simple_net.wrt
    data = {k: v for k, v in point.items() if k not in wrt}
    params = [np.asarray(point[k], np.float64) for k in wrt]

    def loss(W1, b1, W2, b2):
        return tutorial.simple_net_loss(W1, b1, W2, b2, **data)

    def with_x64(fn):
        def run():
            with jax.enable_x64(True):
                return fn()

        return run

    jax_params = [jnp.asarray(p) for p in params]
    from jax.test_util import check_grads

    spent = _phases()
    tools = {
        "diffcheck": lambda: diffcheck.check_grad(loss, *params),
        "check_grads": with_x64(
            lambda: check_grads(loss, [jnp.asarray(p) for p in jax_params], 1, modes=("fwd", "rev"))
        ),
    }
    try:
        import torch

        from .functions import simple_net

        tp = [torch.tensor(p, requires_grad=True) for p in params]
        tx, ty = torch.tensor(data["x"]), float(data["y"])
        tools["gradcheck"] = lambda: torch.autograd.gradcheck(lambda *w: simple_net(torch, *w, tx, ty), tp)
    except ImportError:
        pass
    for fn in tools.values():  # warm: compile caches, first dispatches
        fn(), fn()
    spent.clear()
    times = {name: [] for name in tools}
    for _ in range(repeats):
        for name, fn in tools.items():
            t = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - t)
            if name == "diffcheck" and not result.ok:
                raise AssertionError(str(result))
    return {
        "median": {name: statistics.median(t) for name, t in times.items()},
        "phases": {k: v / repeats for k, v in spent.items()},
    }


def _spawn(*args) -> dict:
    command = [sys.executable, "-m", "benchmarks.suite", *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__.splitlines()[0])
    parser.add_argument("--order", type=int, default=1, choices=(1, 2))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, one fresh process per tool each")
    parser.add_argument("--tools", nargs="+", default=["check_grads", "diffcheck", "gradcheck"])
    parser.add_argument("--warm-repeats", type=int, default=7, help="checks of SimpleNet in the warm process (0: skip)")
    parser.add_argument("--json", type=Path, help="write the records as JSON")
    parser.add_argument("--tool", help=argparse.SUPPRESS)
    parser.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tool:
        print(json.dumps(run_tool(args.tool, args.order)))
        return 0
    if args.warm:
        print(json.dumps(run_warm(args.warm_repeats)))
        return 0

    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load before: {uptime}")
    rounds = []
    for _ in range(args.rounds):
        rounds.append({tool: _spawn("--tool", tool, "--order", str(args.order)) for tool in args.tools})
    print(
        f"\n{len(_suite(np))} distinct functions of 9 parameters, order {args.order}, {args.rounds} rounds (median):\n"
    )
    print("| tool | suite wall | suite CPU | per function | × check_grads (wall) | × check_grads (CPU) | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    keys = ("wall", "cpu", "per_function_median", "peak_rss_mb")
    med = {tool: {k: statistics.median(r[tool][k] for r in rounds) for k in keys} for tool in args.tools}
    base = med.get("check_grads")
    for tool in args.tools:
        m = med[tool]
        ratio = f"{m['wall'] / base['wall']:.2f}" if base else "—"
        ratio_cpu = f"{m['cpu'] / base['cpu']:.2f}" if base else "—"
        print(
            f"| {tool} | {m['wall']:.2f} s | {m['cpu']:.2f} s | {m['per_function_median'] * 1e3:.0f} ms | "
            f"{ratio} | {ratio_cpu} | {m['peak_rss_mb']:.0f} MB |"
        )
    if "diffcheck" in args.tools:
        phases = {}
        for r in rounds:
            for k, v in r["diffcheck"]["phases"].items():
                phases.setdefault(k, []).append(v)
        print("\ndiffcheck's phases over the suite (s, median of rounds):")
        print(" · ".join(f"{k} {statistics.median(v):.2f}" for k, v in phases.items()))
    warm = None
    if args.warm_repeats:
        warm = _spawn("--warm", "--warm-repeats", str(args.warm_repeats))
        m = warm["median"]
        print(f"\nWarm SimpleNet (61 parameters), one process, {args.warm_repeats} checks each (median):\n")
        print("| tool | per check | × check_grads |")
        print("|---|---|---|")
        for name, t in m.items():
            print(f"| {name} | {t * 1e3:.1f} ms | {t / m['check_grads']:.2f} |")
        print(
            "\ndiffcheck's phases per warm check (ms): "
            + " · ".join(f"{k} {v * 1e3:.1f}" for k, v in warm["phases"].items())
        )
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\nload after: {uptime}")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "warm": warm}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
