"""PyTorch's own OpInfo database through the torch.export → JAX translator, beside gradcheck.

    python -m benchmarks.torch_suite [--limit N] [--samples 1] [--stride K:R] [--only REGEX] [--check K]
                                     [--md docs/torch_suite.md] [--json PATH] [--from-json PATH ...]

For every op of `torch.testing._internal.common_methods_invocations.op_db` that supports autograd,
its first `--samples` sample inputs (CPU, float64, requires_grad) are one entry each, differentiated
as OpInfo's own gradient tests do (the op's gradcheck wrapper, the sample's output processing).
Per entry:

* captured — `torch.export` + `run_decompositions()` succeeded;
* translated — every ATen op of the graph has a record (`diffcheck._aten`);
* value equal — the translated JAX function (x64) equals torch's forward at the sample;
* SymPy-ready — every JAX primitive the translation applies to the inputs has a rule in
  diffcheck's jaxpr → SymPy translation (`diffcheck.symbolic`), so the exact method can run;
* gradcheck — `torch.autograd.gradcheck` at its default tolerances, as the side-by-side anchor;
* with `--check K`, for the ops at positions 0 mod K: the full `diffcheck.check_grad` of the entry
  (torch autograd, finite differences and the exact reference from the torch program, compared):
  its verdict, and whether the exact reference ran.

`--stride K:R` runs the ops at positions R mod K only (two processes with 2:0 and 2:1 split the
suite; `--from-json` merges their `--json` files into one table).

Entries run in worker processes (started with subprocess, never forked after importing JAX); an
entry that kills its worker (some sparse ops abort the interpreter) is recorded as a crash and the
next worker starts after it. Each entry has a time bound (`--timeout`, seconds).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.jax_suite import _plain_brackets

ROOT = Path(__file__).resolve().parents[1]


# --- the worker: one process, entries from a start position onwards ------------------------------


def _op_db():
    try:
        import expecttest  # noqa: F401 - torch's test utilities import it
    except ImportError:  # not a dependency of diffcheck: the OpInfo database needs only its name
        import types
        import unittest

        stub = types.ModuleType("expecttest")
        stub.TestCase = unittest.TestCase
        sys.modules["expecttest"] = stub
    from torch.testing._internal.common_methods_invocations import op_db

    return [op for op in op_db if op.supports_autograd]


def _worker(start_op: int, start_sample: int, samples: int, limit: int | None, timeout: float, out: str, select: str):
    import logging
    import signal
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    import torch

    ops = _op_db()
    chosen = _selection(select)

    def alarm(signum, frame):
        raise _Timeout(f"over {timeout:g} s")

    signal.signal(signal.SIGALRM, alarm)
    with open(out, "a") as log:
        for i, op in enumerate(ops):
            if i < start_op or not chosen(i, op.name):
                continue
            torch.manual_seed(i)  # the samples do not depend on where the worker started
            try:
                signal.alarm(int(timeout))
                entries = list(_first(op.sample_inputs("cpu", torch.float64, requires_grad=True), samples))
            except (Exception, _Timeout) as exc:  # noqa: BLE001
                entries = []
                row = {"op": op.name, "i": i, "j": 0, "error": f"sample_inputs: {type(exc).__name__}: {exc}"[:300]}
                log.write(json.dumps(row) + "\n")
            finally:
                signal.alarm(0)
            for j, sample in enumerate(entries):
                if i == start_op and j < start_sample:
                    continue
                if limit is not None and i * samples + j >= limit:
                    return
                log.write(json.dumps({"begin": [i, j], "op": op.name}) + "\n")
                log.flush()
                row = {"op": op.name, "i": i, "j": j}
                try:
                    signal.alarm(int(timeout))
                    row.update(_entry(torch, op, sample, chosen.full(i), timeout))
                except _Timeout as exc:
                    row["timeout"] = str(exc)
                except Exception as exc:  # noqa: BLE001 - one failing entry never stops the rest
                    row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                finally:
                    signal.alarm(0)
                log.write(json.dumps(row) + "\n")
                log.flush()


class _Timeout(BaseException):
    """The suite's own time bound per entry (SIGALRM). A BaseException: the code under test
    (torch's, diffcheck's, the op's) catches `Exception`, and a timeout caught there would be
    reported as that code's error."""


def _selection(select: str):
    """`--stride K:R` keeps the ops whose position in op_db is R mod K; `--only REGEX` the ops
    whose name matches (both deterministic: the same entries on every run)."""
    stride, offset, pattern, full = 1, 0, None, None
    for part in filter(None, select.split(";")):
        key, _, value = part.partition("=")
        if key == "stride":
            stride, offset = (int(v) for v in value.split(":"))
        elif key == "only":
            pattern = re.compile(value)
        elif key == "check":
            full = int(value)

    def chosen(i, name):
        return i % stride == offset and (pattern is None or pattern.search(name) is not None)

    chosen.full = lambda i: full is not None and i % full == 0
    return chosen


def _first(iterable, n):
    """The first n samples whose tensors that require grad all have elements (OpInfo's first sample
    is often an empty one, whose derivative has nothing to check)."""
    k = 0
    for item in iterable:
        if k >= n:
            return
        leaves = [item.input, *item.args, *item.kwargs.values()]
        if all(getattr(t, "numel", lambda: 1)() for t in leaves if getattr(t, "requires_grad", False)):
            k += 1
            yield item


def _entry(torch, op, sample, full: bool, timeout: float) -> dict:
    import signal

    row = {}
    args, kwargs = (sample.input, *sample.args), dict(sample.kwargs)

    def fn(*a, **k):
        # what OpInfo's own gradient tests differentiate: the op through its gradcheck wrapper
        # (linalg ops symmetrise a Hermitian input; masked ops zero the masked-out outputs, which
        # needs the op's function, not its OpInfo), then the sample's output processing
        # (eigenvectors up to their sign: abs)
        return sample.output_process_fn_grad(op.gradcheck_wrapper(op.get_op(), *a, **k))

    row.update(_translation(torch, fn, args, kwargs))
    row["gradcheck"] = _gradcheck(torch, fn, args, kwargs)
    if full:
        signal.alarm(int(3 * timeout))  # a time of its own: the exact method's budget is a third of it
        try:
            row["check"] = _full_check(torch, fn, args, kwargs, timeout)
        except _Timeout as exc:
            row["check"] = {"status": "timeout", "message": str(exc)}
    return row


def _full_check(torch, fn, args, kwargs, timeout) -> dict:
    """`diffcheck.check_grad` on the entry: its differentiable tensors are the parameters, the
    rest of the sample is held fixed, the floating outputs are flattened into one vector."""
    from torch.utils import _pytree

    import diffcheck

    leaves, spec = _pytree.tree_flatten((args, kwargs))
    where = [k for k, t in enumerate(leaves) if isinstance(t, torch.Tensor) and t.requires_grad]
    if not where:
        return {"status": "no differentiable input"}
    fixed = [t.detach() if isinstance(t, torch.Tensor) else t for t in leaves]
    # The outputs gradcheck differentiates (`_differentiable_outputs`): those torch's autograd
    # tracks. An output it returns detached (batch norm's saved mean and inverse std) is no
    # derivative torch claims to compute.
    a, kw = _pytree.tree_unflatten(leaves, spec)
    try:
        tracked = [
            getattr(t, "requires_grad", False)
            for t in _pytree.tree_leaves(fn(*a, **kw))
            if isinstance(t, torch.Tensor) and t.is_floating_point()
        ]
    except Exception:  # noqa: BLE001 - the op fails on its own sample: check_grad says so, as the point's error
        tracked = None

    def on(*diff):
        full = list(fixed)
        for k, t in zip(where, diff):
            full[k] = t
        a, kw = _pytree.tree_unflatten(full, spec)
        out = [t for t in _pytree.tree_leaves(fn(*a, **kw)) if isinstance(t, torch.Tensor) and t.is_floating_point()]
        out = out if tracked is None else [t for t, keep in zip(out, tracked) if keep]
        if not out:
            raise _NoRealOutput
        return out[0] if len(out) == 1 else torch.cat([t.reshape(-1) for t in out])

    on.__name__ = "entry"
    try:
        report = diffcheck.check_grad(on, *[leaves[k].detach() for k in where], timeout=timeout)
    except diffcheck.errors.UsageError as exc:
        return {"status": "usage error", "message": str(exc).splitlines()[0][:200]}
    point = report.points[0]
    if point.error and "_NoRealOutput" in point.error:
        return {
            "status": "no real output",
            "message": "its outputs are complex, integer or not tracked by autograd: no real derivative",
        }
    result = {"status": point.status, "symbolic": str(point.methods.get("symbolic", ""))[:200]}
    if point.error:
        internal = point.traceback is not None or "internal error" in point.error
        result.update(status="internal error" if internal else "error", message=point.error[:200])
    elif point.status == "mismatch":
        first = point.mismatches[0] if point.mismatches else None
        result["message"] = (_element(first) if first else _failed_method(point))[:300]
        result["odd"] = str(first.odd_one_out) if first is not None and first.odd_one_out else None
    if "TimeoutError: over" in result["symbolic"]:  # the suite's own alarm, inside the exact method
        result["status"] = "timeout"
    elif "internal error" in result["symbolic"]:
        result["status"] = "internal error"
    return result


class _NoRealOutput(Exception):
    pass


def _check_status(check) -> str:
    """The full check's status; in logs of earlier runs, the suite's own alarm inside the pipeline
    (reported there as an internal error) is a timeout, and an entry with only complex outputs
    (its flattening failed on an empty list) has no real output."""
    message = check.get("message", "")
    if "TimeoutError: over" in message:
        return "timeout"
    if "torch.cat(): expected a non-empty list of Tensors" in message:
        return "no real output"
    return check["status"]


def _element(e) -> str:
    values = ", ".join(f"{m} {v:.6g}" for m, v in e.values.items())
    return f"{e.name}: {values}"


def _failed_method(point) -> str:
    bad = [f"{m}: {s}" for m, s in point.methods.items() if not getattr(s, "ok", True)]
    if point.dot_product is not None and not point.dot_product.ok:
        bad.append(f"dot product: {point.dot_product}")
    return "; ".join(bad) or "mismatch"


def _translation(torch, fn, args, kwargs) -> dict:
    import jax
    import numpy as np
    from torch.utils import _pytree

    from diffcheck import _aten

    row = {}
    try:
        program = _aten.to_jax(fn, args, kwargs)
    except _aten.Refused as exc:
        row.update(refused=str(exc.reason), message=str(exc)[:300], missing=list(exc.ops))
        return row
    row["ops"] = list(program.ops)
    with torch.no_grad():
        expected = [t for t in _pytree.tree_leaves(fn(*args, **kwargs)) if isinstance(t, torch.Tensor)]
    inputs = [t.detach().numpy() for t in _pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    with jax.enable_x64(True):
        try:
            got = program.fn({}, *inputs)
        except _aten.Refused as exc:
            row.update(refused=str(exc.reason), message=str(exc)[:300], missing=list(exc.ops))
            return row
        got = list(got) if isinstance(got, tuple) else [got]
        got = [np.asarray(g) for g in got if g is not None]
        row["value"] = _same(got, [_numpy(torch, e) for e in expected])
        row["sympy_missing"] = sorted(_sympy_missing(jax, program, inputs))
    return row


def _numpy(torch, t):
    t = t.detach()
    return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()  # NumPy has no bfloat16


def _gradcheck(torch, fn, args, kwargs) -> str:
    from torch.utils import _pytree

    leaves, spec = _pytree.tree_flatten((args, kwargs))
    where = [k for k, t in enumerate(leaves) if isinstance(t, torch.Tensor) and t.requires_grad]
    if not where:
        return "no differentiable input"

    def on(*diff):
        full = list(leaves)
        for k, t in zip(where, diff):
            full[k] = t
        a, kw = _pytree.tree_unflatten(full, spec)
        out = fn(*a, **kw)
        return tuple(t for t in _pytree.tree_leaves(out) if isinstance(t, torch.Tensor) and t.is_floating_point())

    try:
        ok = torch.autograd.gradcheck(on, tuple(leaves[k] for k in where), raise_exception=False)
    except _Timeout:
        return "error: timeout"
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}"
    return "pass" if ok else "fail"


def _same(got, expected) -> str:
    import numpy as np

    if len(got) != len(expected):
        return f"mismatch: {len(got)} outputs, torch {len(expected)}"
    for k, (g, e) in enumerate(zip(got, expected)):
        if g.shape != e.shape:
            return f"mismatch: output {k} shape {g.shape}, torch {e.shape}"
        if np.issubdtype(e.dtype, np.floating) or np.issubdtype(e.dtype, np.complexfloating):
            g, e = g.astype(np.float64), e.astype(np.float64)
            same_special = np.array_equal(np.isnan(g), np.isnan(e)) and np.array_equal(g[np.isinf(e)], e[np.isinf(e)])
            finite = np.isfinite(e) & np.isfinite(g)
            scale = float(np.max(np.abs(e[finite]), initial=0.0))
            err = np.abs(g[finite] - e[finite])
            # the exact method's own room (`_exact.value_mismatch`): 1e-9 of the value plus the
            # output's scale; torch's trigamma alone is 3.6e-10 off at OpInfo's sample
            bound = 1e-9 * (np.abs(e[finite]) + scale) + 1e-300
            if not same_special or np.any(err > bound) or np.any(np.isfinite(e) != np.isfinite(g)):
                worst = float(np.max(err / np.maximum(np.abs(e[finite]), 1e-300), initial=0.0))
                return f"mismatch: output {k}, relative error {worst:.2g}"
        elif not np.array_equal(g, e):
            return f"mismatch: output {k} ({e.dtype}) differs in {int(np.sum(g != e))} element(s)"
    return "equal"


def _sympy_missing(jax, program, inputs) -> set[str]:
    """The primitives applied to (values depending on) the inputs that diffcheck's jaxpr → SymPy
    translation has no rule for. Equations on constants only are evaluated numerically there."""
    import numpy as np

    from diffcheck import _primitives as records

    # what `_translate._apply` handles besides the records: control flow, JAX's linear solves
    known = set(records.PRIMITIVES) | set(records.CALLS) | {"scan", "cond", "while", "reduce", "custom_linear_solve"}
    floats = [np.issubdtype(np.asarray(x).dtype, np.floating) for x in inputs]
    closed = jax.make_jaxpr(lambda *xs: program.fn({}, *xs))(*inputs)
    missing = set()

    def walk(jaxpr, tainted_in):
        tainted = {v for v, t in zip(jaxpr.invars, tainted_in) if t}
        for eqn in jaxpr.eqns:
            hit = any(not hasattr(v, "val") and v in tainted for v in eqn.invars)
            if not hit:
                continue
            tainted.update(eqn.outvars)
            name = eqn.primitive.name
            subs = [p for p in eqn.params.values() if hasattr(p, "jaxpr") or hasattr(p, "eqns")]
            if name in records.CALLS and subs:
                sub = subs[0].jaxpr if hasattr(subs[0], "jaxpr") else subs[0]
                walk(sub, [not hasattr(v, "val") and v in tainted for v in eqn.invars])
            elif name not in known and (name in records.UNTRANSLATED or not _integer_valued(eqn)):
                missing.add(name)  # an integer result is the constant it is at the point there

    walk(closed.jaxpr, floats)
    return missing


def _integer_valued(eqn) -> bool:
    import numpy as np

    return all(np.issubdtype(v.aval.dtype, np.integer) for v in eqn.outvars)


# --- the parent: runs workers, survives crashes, writes the table ----------------------------------


def run(limit, samples: int, timeout: float, log_path: Path, select: str = "", first: int = 0) -> list[dict]:
    rows, start = [], (first, 0)
    log_path.write_text("")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    while True:
        cmd = [sys.executable, "-m", "benchmarks.torch_suite", "--worker", f"{start[0]}:{start[1]}"]
        cmd += ["--samples", str(samples), "--timeout", str(timeout), "--log", str(log_path), "--select", select]
        if limit is not None:
            cmd += ["--limit", str(limit)]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
        if proc.returncode == 0:
            break
        begun = [line for line in lines if "begin" in line]
        if not begun:
            raise SystemExit(f"the worker failed before any entry (exit {proc.returncode}): {' '.join(cmd)}")
        i, j = begun[-1]["begin"]
        done = {(line["i"], line["j"]) for line in lines if "begin" not in line}
        if (i, j) in done:  # died between entries (e.g. in sample_inputs of the next op)
            i, j = i + 1, -1
        else:
            crash = {"op": begun[-1]["op"], "i": i, "j": j, "crash": f"the process died (exit {proc.returncode})"}
            with log_path.open("a") as log:
                log.write(json.dumps(crash) + "\n")
        start = (i, j + 1)
    for line in log_path.read_text().splitlines():
        entry = json.loads(line)
        if "begin" not in entry:
            rows.append(entry)
    return rows


def markdown(rows: list[dict], seconds: float, samples: int, note: str = "") -> str:
    n = len(rows)
    captured = [r for r in rows if _captured(r)]
    translated = [r for r in rows if "value" in r]
    equal = [r for r in translated if r["value"] == "equal"]
    ready = [r for r in equal if not r["sympy_missing"]]
    grad = collections.Counter(_grad_class(r.get("gradcheck")) for r in rows)

    def pct(k):
        return f"{k} ({100 * k / n:.0f}%)" if n else "0"

    out = [
        "# The OpInfo suite through the torch.export → JAX translator",
        "",
        "Generated by `python -m benchmarks.torch_suite --md docs/torch_suite.md` "
        f"({samples} sample(s) per op, {seconds / 60:.0f} min). Every op of PyTorch's OpInfo database "
        "(`torch.testing._internal.common_methods_invocations.op_db`) that supports autograd, at its "
        "sample inputs in float64 on the CPU. The translator is `diffcheck._aten` (torch.export, "
        "`run_decompositions()` to core ATen, one JAX record per ATen op); gradcheck is "
        "`torch.autograd.gradcheck` at its default tolerances, the side-by-side anchor.",
        "",
        *([note, ""] if note else []),
        "| stage | entries |",
        "|---|---|",
        f"| entries | {n} |",
        f"| captured by torch.export | {pct(len(captured))} |",
        f"| translated (every ATen op has a record) | {pct(len(translated))} |",
        f"| translated value equals torch's forward | {pct(len(equal))} |",
        f"| … and every primitive on the inputs has a SymPy rule | {pct(len(ready))} |",
        f"| gradcheck passes | {pct(grad['pass'])} |",
        f"| gradcheck fails | {pct(grad['fail'])} |",
        f"| gradcheck raises | {pct(grad['error'])} |",
        f"| gradcheck: no differentiable input | {pct(grad['none'])} |",
        "",
        "Value equality: every float element within 1e-9 of its magnitude plus the output's largest "
        "(the exact method's own value check), NaN and infinities in the same places; integer outputs "
        "(indices) exactly.",
        "",
    ]
    out += _check_section(rows)
    missing = collections.defaultdict(list)
    for r in rows:
        for op in r.get("missing", []):
            missing[op].append(r["op"])
    out += ["## ATen ops without a record", "", "| ATen op | entries | OpInfo entries |", "|---|---|---|"]
    for op, names in sorted(missing.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        out.append(f"| `{op}` | {len(names)} | {', '.join(sorted(set(names))[:6])} |")
    refused = collections.defaultdict(list)
    for r in rows:
        if "refused" in r and r["refused"] != "no-record":
            refused[(r["refused"], _short(r["message"]))].append(r["op"])
        for key in ("error", "timeout", "crash"):
            if key in r:
                refused[(key, _short(r[key]))].append(r["op"])
    out += ["", "## Not captured or refused, by reason", "", "| reason | message | entries | OpInfo entries |"]
    out.append("|---|---|---|---|")
    for (reason, message), names in sorted(refused.items(), key=lambda kv: (kv[0][0], -len(kv[1]))):
        out.append(f"| {reason} | {message} | {len(names)} | {', '.join(sorted(set(names))[:6])} |")
    mismatched = [r for r in translated if r["value"] != "equal"]
    out += ["", "## Translated values that differ from torch's forward", ""]
    if mismatched:
        out += ["| OpInfo entry | sample | result |", "|---|---|---|"]
        out += [f"| {r['op']} | {r['j']} | {r['value']} |" for r in mismatched]
    else:
        out.append("None.")
    prims = collections.defaultdict(list)
    for r in equal:
        for p in r["sympy_missing"]:
            prims[p].append(r["op"])
    out += ["", "## JAX primitives without a SymPy rule (in translated, equal entries)", ""]
    out += ["| primitive | entries | OpInfo entries |", "|---|---|---|"]
    for p, names in sorted(prims.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        out.append(f"| `{p}` | {len(names)} | {', '.join(sorted(set(names))[:6])} |")
    ops = collections.Counter(op for r in translated for op in r["ops"])
    out += ["", f"## ATen ops translated ({len(ops)} distinct)", "", ", ".join(f"`{op}`" for op in sorted(ops)), ""]
    return "\n".join(_plain_brackets(line) for line in out)  # args[0] is no mkdocs reference


def _check_section(rows) -> list[str]:
    """The full check beside gradcheck, on the entries it ran on."""
    checked = [r for r in rows if "check" in r]
    if not checked:
        return []
    n = len(checked)
    for r in checked:
        r["check"]["status"] = _check_status(r["check"])
    status = collections.Counter(r["check"]["status"] for r in checked)
    exact = sum(1 for r in checked if r["check"].get("symbolic") == "ok")
    cross = collections.Counter((r["check"]["status"], _grad_class(r.get("gradcheck"))) for r in checked)
    grads = ["pass", "fail", "error", "none"]
    out = [
        f"## The full check beside gradcheck ({n} entries)",
        "",
        f"`diffcheck.check_grad` on {n} entries (the ops at positions 0 mod the `--check` stride of op_db: a "
        "deterministic subset), the exact reference from the torch program itself. "
        f"Exact reference ran (symbolic ok): {exact} of {n} ({100 * exact / n:.0f}%).",
        "",
        "| diffcheck \\ gradcheck | " + " | ".join(grads) + " | all |",
        "|---|" + "---|" * (len(grads) + 1),
    ]
    for st in sorted(status, key=lambda k: -status[k]):
        cells = [str(cross[(st, g)]) for g in grads]
        out.append(f"| {st} | " + " | ".join(cells) + f" | {status[st]} |")
    out.append("")
    odd = [r for r in checked if r["check"]["status"] not in ("agree",)]
    if odd:
        out += ["| OpInfo entry | diffcheck | gradcheck | symbolic | detail |", "|---|---|---|---|---|"]
        for r in odd:
            c = r["check"]
            detail = _short(c.get("message", "") + (f" (odd one out: {c['odd']})" if c.get("odd") else ""))
            symbolic = _short(c.get("symbolic", ""))
            out.append(f"| {r['op']} | {c['status']} | {r.get('gradcheck')} | {symbolic} | {detail} |")
        out.append("")
    return out


def _captured(row) -> bool:
    """torch.export gave a graph (whatever the translation then made of it)."""
    if "ops" in row:
        return True
    if "refused" not in row:
        return False
    message = row["message"]
    return not message.startswith(("torch.export", "sparse tensors cannot be translated: an argument"))


def _grad_class(result) -> str:
    if result is None:
        return "none"
    if result.startswith("error"):
        return "error"
    if result == "no differentiable input":
        return "none"
    return result


def _short(message: str) -> str:
    message = message.replace("|", "\\|").replace("\n", " ")
    return message[:140] + ("…" if len(message) > 140 else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.torch_suite", description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="the first N entries only")
    parser.add_argument("--samples", type=int, default=1, help="sample inputs per op (default 1)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per entry (default 60)")
    parser.add_argument("--md", type=Path, help="write the Markdown table here (e.g. docs/torch_suite.md)")
    parser.add_argument("--json", type=Path, help="write one JSON object per entry here")
    parser.add_argument(
        "--from-json", type=Path, nargs="+", help="rewrite the table from --json files of earlier runs (merged)"
    )
    parser.add_argument("--stride", help="K:R: only the ops at positions R mod K of op_db (a deterministic subset)")
    parser.add_argument("--only", help="only the ops whose name matches this regular expression")
    parser.add_argument("--start", type=int, default=0, help="begin at this position of op_db (split a run)")
    parser.add_argument(
        "--check", type=int, metavar="K", help="also run the full diffcheck check on the ops at positions 0 mod K"
    )
    parser.add_argument("--select", default="", help=argparse.SUPPRESS)
    parser.add_argument("--note", help="a paragraph under the table's heading (how the run was made)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--log", help="keep the entries here as they finish (read back with --from-json)")
    args = parser.parse_args(argv)
    if args.worker:
        i, j = (int(p) for p in args.worker.split(":"))
        _worker(i, j, args.samples, args.limit, args.timeout, args.log, args.select)
        return 0
    start = time.perf_counter()
    if args.from_json:
        # a run's --log file too: its "begin" lines (entries under way when it stopped) are left out
        parts = [[json.loads(line) for line in p.read_text().splitlines() if line.strip()] for p in args.from_json]
        parts = [[r for r in part if "begin" not in r] for part in parts]
        seconds = sum(float(part[0].get("run_seconds", 0)) for part in parts if part)
        merged = {(r["i"], r["j"]): r for part in parts for r in part}  # an entry run twice counts once
        rows = [merged[key] for key in sorted(merged)]
    else:
        chosen = (("stride", args.stride), ("only", args.only), ("check", args.check))
        select = ";".join(f"{k}={v}" for k, v in chosen if v is not None)
        with tempfile.TemporaryDirectory() as tmp:
            log = args.log or Path(tmp) / "entries.jsonl"
            rows = run(args.limit, args.samples, args.timeout, Path(log), select, args.start)
        seconds = time.perf_counter() - start
        if rows:
            rows[0]["run_seconds"] = round(seconds)
    text = markdown(rows, seconds, args.samples, args.note or "")
    if args.json:
        args.json.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    if args.md:
        args.md.write_text(text)
    print(text.split("## ATen ops without a record")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
