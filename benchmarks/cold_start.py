"""Cold start: whole processes, from `python` to exit, checking the tutorial's SimpleNet.

    python -m benchmarks.cold_start              # 5 runs of each command, medians
    python -m benchmarks.cold_start --runs 3 --skip-torch

Side by side, in interleaved rounds (the machine may be shared): `python -m diffcheck run --case
simple_net` (3 points × orders 1 and 2, three ways) with its default compilation cache warm, the
same with the cache empty (a first run), the same with `--no-cache`, and a fresh process running
`torch.autograd.gradcheck` or `jax.test_util.check_grads` on the same function
(benchmarks/functions.py) at one point (two ways). The cache is a temporary folder
(`$DIFFCHECK_CACHE_DIR`), never the user's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TORCH = """
import numpy as np, torch
from benchmarks.functions import benchmarks
b = {b.name: b for b in benchmarks(())}["simple_net"]
inputs = tuple(torch.tensor(np.asarray(b.point[k], np.float64), requires_grad=True) for k in b.wrt)
data = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in b.data().items()}
assert torch.autograd.gradcheck(lambda *p: b.fn(torch, **dict(zip(b.wrt, p)), **data), inputs)
"""

JAX = """
import jax, jax.numpy as jnp
from jax.test_util import check_grads
from benchmarks.functions import benchmarks
jax.config.update("jax_enable_x64", True)
b = {b.name: b for b in benchmarks(())}["simple_net"]
args = tuple(jnp.asarray(b.point[k]) for k in b.wrt)
check_grads(lambda *p: b.fn(jnp, **dict(zip(b.wrt, p)), **b.data()), args, order=1)
"""


def wall(command, env=None) -> tuple[float, float, float]:
    """The process's wall time, CPU time (user + system, s) and peak RSS (MB)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own resource usage
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            out.seek(0)
            raise SystemExit(f"{' '.join(command)} failed:\n{out.read()}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-torch", action="store_true")
    args = parser.parse_args(argv)
    py = sys.executable
    cli = [py, "-m", "diffcheck", "run", "--case", "simple_net"]
    with tempfile.TemporaryDirectory() as scratch:
        warm = {"DIFFCHECK_CACHE_DIR": str(Path(scratch) / "warm")}
        wall(cli, warm)  # fills the cache
        commands = {
            "python -m diffcheck run --case simple_net (cache warm)": (cli, warm),
            "  … cache empty (a first run)": (cli, None),
            "  … --no-cache": ([*cli, "--no-cache"], None),
            "python -c 'import diffcheck'": ([py, "-c", "import diffcheck"], None),
            "python -c 'import jax, sympy'": ([py, "-c", "import jax, sympy"], None),
            "jax.test_util.check_grads, one point, order 1": ([py, "-c", JAX], None),
        }
        if not args.skip_torch and importlib.util.find_spec("torch") is not None:
            commands["torch.autograd.gradcheck, one point, order 1"] = ([py, "-c", TORCH], None)
        results = {name: [] for name in commands}
        for run in range(args.runs):
            for name, (command, env) in commands.items():
                empty = {"DIFFCHECK_CACHE_DIR": str(Path(scratch) / f"empty-{run}")}  # a first run's
                results[name].append(wall(command, env or empty))
    load = os.getloadavg()
    print(f"load averages after the runs (1, 5, 15 min): {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}")
    gradcheck = "torch.autograd.gradcheck, one point, order 1"
    anchor = statistics.median(t[0] for t in results[gradcheck]) if results.get(gradcheck) else None
    anchor_cpu = statistics.median(t[1] for t in results[gradcheck]) if results.get(gradcheck) else None
    print(
        f"| whole process ({args.runs} interleaved runs) | wall median | min | max | CPU median | peak RSS "
        "| × gradcheck (wall) | × gradcheck (CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        times, cpu, rss = ([r[i] for r in runs] for i in range(3))
        ratio = f"{statistics.median(times) / anchor:.2f}" if anchor else ""
        ratio_cpu = f"{statistics.median(cpu) / anchor_cpu:.2f}" if anchor_cpu else ""
        print(
            f"| {name} | {statistics.median(times):.2f} s | {min(times):.2f} s | {max(times):.2f} s | "
            f"{statistics.median(cpu):.2f} s | {max(rss):.0f} MB | {ratio} | {ratio_cpu} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
