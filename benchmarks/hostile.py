"""Wall time and peak memory of hostile inputs: each in a fresh process, as a user would meet it.

    python -m benchmarks.hostile [--only NAME] [--json docs/hostile.json]

Each input runs as `python -c <script>` (the command line's ones as `python -m diffcheck …`); the
figures are the child's wall time and its peak resident memory (`os.wait4`'s ru_maxrss), with the
first line of what it printed. docs/reliability.md quotes them, dated, with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PRELUDE = "import time, jax, jax.numpy as jnp, numpy as np\nimport diffcheck\nfrom jax import lax\n"


def _api(body: str) -> list[str]:
    return [sys.executable, "-c", _PRELUDE + body]


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "diffcheck", *argv]


def _report(expr: str) -> str:
    return f"r = {expr}\np = r.points[0]\nprint(p.status, '|', p.error or '', '|', p.methods.get('symbolic', ''))\n"


_FLIP = """
@jax.custom_jvp
def f(x):
    return 1e-16 * jnp.sin(x)
@f.defjvp
def f_jvp(p, t):
    return f(p[0]), -5e-16 * jnp.cos(p[0]) * t[0]
"""

_DEEP = "def f(x):\n    for _ in range(31):\n        x = jnp.sin(x)\n    return x\n"

#: name → (the command, what it is). The time-outs are the inputs' own, as the issue gave them.
INPUTS = {
    "formula (x-x+9)**(9**9)": (_cli("check", "(x-x+9)**(9**9)", "--at", "x=1", "--timeout", "5"), "refused"),
    "formula ((1.0000001**1024)**1024)**1024": (
        _cli("check", "x + ((1.0000001**1024)**1024)**1024", "--at", "x=1", "--timeout", "5"),
        "refused",
    ),
    "case x + (x-x+0.5)**1e300": (
        _api(_report("diffcheck.check_grad(lambda x: x + (x - x + 0.5)**1e300, 1.0, timeout=5)")),
        "checked",
    ),
    "constant squared 25 times in a loop": (
        _api(
            _report(
                "diffcheck.check_grad(lambda x: x + lax.fori_loop(0, 25, lambda i, c: c * c, x - x + 1.0000001), "
                "1.0, timeout=10)"
            )
        ),
        "checked",
    ),
    "function that sleeps, timeout=2": (
        _api("def f(x):\n    time.sleep(1000)\n    return x\n" + _report("diffcheck.check_grad(f, 1.0, timeout=2)")),
        "preempted",
    ),
    "function that spins, timeout=2": (
        _api("def f(x):\n    while True:\n        pass\n" + _report("diffcheck.check_grad(f, 1.0, timeout=2)")),
        "preempted",
    ),
    "31-deep sin, order 4, timeout=10": (
        _api(_DEEP + _report("diffcheck.check_grad(f, 0.5, order=4, timeout=10)")),
        "bounded",
    ),
    "31-deep sin, order 4, --timeout 10 (worker)": (
        _cli("check", "sin(" * 31 + "x" + ")" * 31, "--at", "x=0.5", "--order", "4", "--timeout", "10"),
        "bounded",
    ),
    "W @ W, 200×200, timeout=30": (
        _api(
            _report(
                "diffcheck.check_grad(lambda W: W @ W, np.random.default_rng(0).standard_normal((200, 200)), "
                "timeout=30)"
            )
        ),
        "refused or bounded",
    ),
    "sign flip of 1e-16·sin (custom_jvp)": (_api(_FLIP + _report("diffcheck.check_grad(f, 1.0)")), "mismatch"),
    "sin of 1,000 outputs": (_api(_report("diffcheck.check_grad(jnp.sin, jnp.linspace(0, 1, 1000))")), "agree"),
    "sin of 3,000 outputs": (_api(_report("diffcheck.check_grad(jnp.sin, jnp.linspace(0, 1, 3000))")), "agree"),
    "sin of 3,000 outputs, DIFFCHECK_MAX_MEMORY=1": (
        _api(_report("diffcheck.check_grad(jnp.sin, jnp.linspace(0, 1, 3000))")),
        "agree (random output combinations)",
    ),
}
_ENV = {"sin of 3,000 outputs, DIFFCHECK_MAX_MEMORY=1": {"DIFFCHECK_MAX_MEMORY": "1"}}


def measure(name: str, limit: float = 900.0) -> dict:
    command, expected = INPUTS[name]
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", **_ENV.get(name, {}))
    start = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    try:
        out, _ = child.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate()
    seconds = time.monotonic() - start
    # communicate() reaped the child; its usage is the largest of the children's so far
    import resource

    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    lines = [line for line in out.splitlines() if line.strip()]
    said = next(
        (line for line in reversed(lines) if "|" in line or "error" in line.lower()), lines[-1] if lines else ""
    )
    return dict(
        name=name,
        expected=expected,
        seconds=round(seconds, 1),
        peak_mib=round(peak),
        code=child.returncode,
        said=said[:200],
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run only the inputs whose name contains this")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    names = [n for n in INPUTS if not args.only or any(o in n for o in args.only)]
    rows = []
    load = os.getloadavg()[0]
    for name in names:
        # one process per input: RUSAGE_CHILDREN's peak is then this input's (a fresh interpreter each)
        done = subprocess.run(
            [sys.executable, "-c", f"import json, benchmarks.hostile as h; print(json.dumps(h.measure({name!r})))"],
            capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )  # fmt: skip
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{row['name']:<48} {row['seconds']:>7.1f} s {row['peak_mib']:>7,} MiB  exit {row['code']}  {row['said']}"
        )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{stamp}, load average {load:.1f} at the start, {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(date=stamp, load=load, rows=rows), indent=1) + "\n")


if __name__ == "__main__":
    main()
