"""Side by side, on the same functions: diffcheck, `jax.test_util.check_grads`,
`torch.autograd.gradcheck` (slow and fast mode) and numdifftools' `Gradient`.

    python -m benchmarks.run                       # the table, results JSON and the plot
    python -m benchmarks.run --widths 3 --repeat 1 --no-plot    # a quick smoke run

Each (tool, function) runs in a fresh process: imports and one untimed warm-up on another
function object first, then `--repeat` timed checks, each of a new function object so that no
compilation cache carries over (a user checking a new function pays for compiling it). Recorded:
the median wall time, its ratio to diffcheck's, the rise of the process's peak memory (RSS) over
its level before the first check, and the digits of each tool's derivative against the exact
gradient (diffcheck's 30-digit symbolic value): of the autodiff it validates ("AD") and of the
numerical reference it compares that autodiff with ("reference"). Tools that are not installed
are skipped, with a note.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .functions import WIDTHS, benchmarks

TOOLS = ("diffcheck", "jax.check_grads", "torch.gradcheck", "torch.gradcheck(fast)", "numdifftools")
NEEDS = {"torch.gradcheck": "torch", "torch.gradcheck(fast)": "torch", "numdifftools": "numdifftools"}
#: What each tool checks: every element, or derivatives along random directions.
CHECKS = {
    "diffcheck": "every element, 3 ways",
    "jax.check_grads": "1 random direction (fwd + rev)",
    "torch.gradcheck": "every element",
    "torch.gradcheck(fast)": "1 random direction",
    "numdifftools": "every element (FD only)",
}


# --- one tool on one function, in its own process -------------------------------------------------


def _flat(bench, xp, theta):
    """The benchmark as a function of one flat parameter vector (for numdifftools and FD references)."""
    shapes = [np.shape(bench.point[k]) for k in bench.wrt]
    sizes = [int(np.prod(s)) for s in shapes]
    parts = np.split(theta, np.cumsum(sizes)[:-1])
    params = {k: p.reshape(s) for k, p, s in zip(bench.wrt, parts, shapes)}
    return bench.fn(xp, **params, **bench.data())


def _theta(bench):
    return np.concatenate([np.ravel(bench.point[k]) for k in bench.wrt]).astype(np.float64)


def _directional(bench, eps, seed=0):
    """(v, central difference of f along v with step eps), as check_grads and fast gradcheck take it."""
    theta = _theta(bench)
    v = np.random.default_rng(seed).standard_normal(theta.size)
    f = functools.partial(_flat, bench, np)
    return v, (f(theta + eps * v) - f(theta - eps * v)) / (2 * eps)


def _elementwise(bench, eps):
    """Central differences per element with step eps (torch.gradcheck's numerical Jacobian)."""
    theta, f = _theta(bench), functools.partial(_flat, bench, np)
    out = np.empty(theta.size)
    for j in range(theta.size):
        e = np.zeros(theta.size)
        e[j] = eps
        out[j] = (f(theta + e) - f(theta - e)) / (2 * eps)
    return out


def run_diffcheck(bench):
    from diffcheck import check_case

    def once():
        return check_case(bench.case(), points=0)  # a new function object each time

    def derivatives(report):
        (point,) = report.points
        assert point.ok, report.failures()
        values = {m: np.array([e.values[m] for e in point.elements]) for m in ("symbolic", "autodiff")}
        values["finite_difference"] = np.array([e.values["finite_difference"] for e in point.elements])
        return {"exact": values["symbolic"], "ad": values["autodiff"], "reference": values["finite_difference"]}

    return once, derivatives


def run_jax(bench):
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    jax.config.update("jax_enable_x64", True)
    args = tuple(jnp.asarray(bench.point[k]) for k in bench.wrt)

    def fresh():
        return lambda *params: bench.fn(jnp, **dict(zip(bench.wrt, params)), **bench.data())

    def once():
        check_grads(fresh(), args, order=1)  # raises on a mismatch

    def derivatives(_):
        grads = jax.grad(fresh(), argnums=tuple(range(len(args))))(*args)
        v, ref = _directional(bench, 1e-4)  # check_grads' step
        return {"ad": np.concatenate([np.ravel(g) for g in grads]), "direction": v, "reference": ref}

    return once, derivatives


def run_torch(bench, fast):
    import torch

    inputs = tuple(torch.tensor(np.asarray(bench.point[k], np.float64), requires_grad=True) for k in bench.wrt)
    data = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in bench.data().items()}

    def f(*params):
        return bench.fn(torch, **dict(zip(bench.wrt, params)), **data)

    def once():
        assert torch.autograd.gradcheck(f, inputs, fast_mode=fast)

    def derivatives(_):
        grads = torch.autograd.grad(f(*inputs), inputs)
        ad = np.concatenate([g.detach().numpy().ravel() for g in grads])
        if fast:
            v, ref = _directional(bench, 1e-6)  # gradcheck's step
            return {"ad": ad, "direction": v, "reference": ref}
        return {"ad": ad, "reference": _elementwise(bench, 1e-6)}

    return once, derivatives


def run_numdifftools(bench):
    import numdifftools

    theta = _theta(bench)

    def once():
        return numdifftools.Gradient(functools.partial(_flat, bench, np))(theta)

    return once, lambda gradient: {"reference": np.ravel(gradient)}


def measure(tool: str, name: str, repeat: int, widths) -> dict:
    """Times `tool` on the benchmark `name` in this process; returns the record (see the module doc)."""
    bench = {b.name: b for b in benchmarks(widths)}[name]
    once, derivatives = {
        "diffcheck": lambda: run_diffcheck(bench),
        "jax.check_grads": lambda: run_jax(bench),
        "torch.gradcheck": lambda: run_torch(bench, fast=False),
        "torch.gradcheck(fast)": lambda: run_torch(bench, fast=True),
        "numdifftools": lambda: run_numdifftools(bench),
    }[tool]()
    warm = {b.name: b for b in benchmarks(widths)}["sigmoid_bce"]  # imports and first calls, untimed
    {
        "diffcheck": lambda: run_diffcheck(warm),
        "jax.check_grads": lambda: run_jax(warm),
        "torch.gradcheck": lambda: run_torch(warm, fast=False),
        "torch.gradcheck(fast)": lambda: run_torch(warm, fast=True),
        "numdifftools": lambda: run_numdifftools(warm),
    }[tool]()[0]()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = once()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {k: np.asarray(v).tolist() for k, v in derivatives(result).items()}
    return {
        "tool": tool,
        "name": name,
        "params": bench.params,
        "times": times,
        "peak_rise_mb": (peak - base) / 1024,
        **out,
    }


# --- the side-by-side run -------------------------------------------------------------------------


def digits(value, truth) -> float:
    """Correct decimal digits, norm-wise: −log10(max |value − truth| / max |truth|), at most 17."""
    value, truth = np.asarray(value, np.float64), np.asarray(truth, np.float64)
    error = np.max(np.abs(value - truth)) / max(np.max(np.abs(truth)), 1e-300)
    return 17.0 if error == 0 else min(17.0, -math.log10(error))


def _subprocess(tool, name, repeat, widths, timeout):
    command = [sys.executable, "-m", "benchmarks.run", "--one", tool, name, "--repeat", str(repeat)]
    command += ["--widths", *map(str, widths)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).parent.parent
        )
    except subprocess.TimeoutExpired:
        return {"tool": tool, "name": name, "error": f"over {timeout} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"tool": tool, "name": name, "error": last}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(records) -> list[dict]:
    """One row per (function, tool): median time, ratio to diffcheck, memory, digits."""
    truth = {r["name"]: np.asarray(r["exact"]) for r in records if r["tool"] == "diffcheck" and "exact" in r}
    base = {r["name"]: statistics.median(r["times"]) for r in records if r["tool"] == "diffcheck" and "times" in r}
    rows = []
    for r in records:
        row = {"name": r["name"], "tool": r["tool"], "params": r.get("params"), "checks": CHECKS[r["tool"]]}
        if "error" in r:
            rows.append({**row, "error": r["error"]})
            continue
        t = truth.get(r["name"])
        median = statistics.median(r["times"])
        row.update(seconds=median, ratio=median / base[r["name"]] if r["name"] in base else None)
        row["peak_rise_mb"] = r["peak_rise_mb"]
        if t is not None:
            if "direction" in r:  # a directional check: compare with the exact derivative along v
                exact = float(np.dot(t, np.asarray(r["direction"])))
                row["reference_digits"] = digits(r["reference"], exact)
            else:
                row["reference_digits"] = digits(r["reference"], t)
            if "ad" in r:
                row["ad_digits"] = digits(r["ad"], t)
        if r["tool"] == "diffcheck":
            row["reference_digits_note"] = "finite differences; exact value as reference"
        rows.append(row)
    return rows


def markdown(rows) -> str:
    columns = ["function", "params", "tool", "checks", "median time", "× diffcheck", "peak memory rise"]
    columns += ["AD digits", "reference digits"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | {r['params'] or ''} | {r['tool']} | {r['checks']} | {r['error']} | | | | |")
            continue
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else ""
        ad = f"{r['ad_digits']:.1f}" if "ad_digits" in r else "—"
        ref = f"{r['reference_digits']:.1f}" if "reference_digits" in r else ""
        lines.append(
            f"| {r['name']} | {r['params']:,} | {r['tool']} | {r['checks']} | {r['seconds']:.3f} s | {ratio} "
            f"| {r['peak_rise_mb']:.0f} MB | {ad} | {ref} |"
        )
    return "\n".join(lines)


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for tool in TOOLS:
        points = sorted(
            (r["params"], r["seconds"])
            for r in rows
            if r["tool"] == tool and "seconds" in r and r["name"].startswith("tanh_net")
        )
        if points:
            ax.loglog(*zip(*points), marker="o", label=tool)
    ax.set_xlabel("parameters (tanh net, logistic loss)")
    ax.set_ylabel("wall time of one check (s, median)")
    ax.set_title("Time to check a gradient against parameter count")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS[:-1]), help="tanh net widths")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per tool and function (median)")
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these functions")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per tool and function")
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks.json"))
    parser.add_argument("--plot", type=Path, default=Path("docs/benchmarks.png"))
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("TOOL", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(*args.one, args.repeat, args.widths)))
        return 0
    tools = []
    for tool in args.tools:
        if tool in NEEDS and importlib.util.find_spec(NEEDS[tool]) is None:
            print(f"skipping {tool}: {NEEDS[tool]} is not installed (pip install 'diffcheck[bench]')", file=sys.stderr)
        else:
            tools.append(tool)
    names = [b.name for b in benchmarks(args.widths) if not args.only or b.name in args.only]
    records = []
    for name in names:
        for tool in tools:
            print(f"{name}: {tool} …", file=sys.stderr, flush=True)
            records.append(_subprocess(tool, name, args.repeat, args.widths, args.timeout))
    rows = summarise(records)
    print(markdown(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    if not args.no_plot:
        plot(rows, args.plot)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
