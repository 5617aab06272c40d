"""JAX's own autodiff tests (benchmarks/_jax_corpus.py) through diffcheck and `jax.test_util.check_grads`.

    python -m benchmarks.jax_suite                        # the whole corpus: a summary on stdout
    python -m benchmarks.jax_suite --subset fast          # the entries tests/test_jax_suite.py runs
    python -m benchmarks.jax_suite --json docs/jax_suite.json --md docs/jax_suite.md --jobs 2

Each entry runs once through `diffcheck.check_grad` (its own error model, the entry's order and
dtype) and once through `check_grads` (modes and tolerances as JAX's test passes them). Both run
inside `jax.enable_x64(True)`, as JAX's test suite runs under `JAX_ENABLE_X64=1` and as
benchmarks/zoo.py does: the benchmark, not diffcheck, chooses the mode, and only for the duration
of each entry. Entries run in worker processes started with the spawn method (never fork after
JAX is imported), one entry at a time per worker, with a per-entry timeout (`--timeout`, default
240 s): a worker that runs past it is ended and a fresh one started.

diffcheck's outcome per entry:
    agree           report.ok
    mismatch        the derivatives disagree: the odd one out and the first failing element's message
    point error     the point could not be checked (the function's fault: NaN, domain, tracing …)
    internal error  a point error whose message says "internal error in diffcheck"
    timeout         the entry ran past --timeout
and whether the symbolic (exact) method ran, or why it was unavailable (the primitive, when named).
An entry whose `jax_problem` documents a real problem in JAX is expected not to agree; any other
non-agree outcome on correct code is a false alarm (mismatch) or an error to look at.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import sys
import time
import traceback
import warnings
from collections import Counter
from multiprocessing.connection import wait
from pathlib import Path

# The fast subset that tests/test_jax_suite.py runs (one test per entry), chosen to cover each class
# of issue 13 and each source file of JAX's tests.
FAST = (
    "lax.cbrt[3]_o1",
    "lax.sin@0_o2",
    "lax.convert_element_type_f32_inside",
    "lax.conv[2x2x3x4,3x2x1x2]_(1, 1)_VALID_lhs_o1",
    "lax.dot_general[2x3x4,2x4x3]_(([2], [1]), ([0], [0]))_lhs_o1",
    "lax.reduce_window_max[4x6]_(2, 1)_(1, 2)_VALID",
    "lax.gather[5]_fill_fill2.5_[[0], [2], [7]]_sum",
    "lax.gather[10x5]_clip_fillNone_[[0], [2], [1]]",
    "lax.dynamic_update_slice[5x3]_(1, 1)_closed_update",
    "lax.pad[2x3]_[(-1, 0, 0), (-2, 0, 1)]_o2",
    "lax.clamp[]_pos0_o2",
    "nn.softplus@0_o2",
    "nn.mish@0_o2",
    "nn.dot_product_attention_q",
    "jnp.sinc@0_o2",
    "jnp.x_relu_x@0",
    "jnp.index_logp_labels",
    "jnp.interp[4]",
    "jnp.convolve[5]",
    "special.spence@1.7",
    "linalg.svd_values",
    "linalg.qr_r",
    "linalg.det",
    "control.scan_rnn",
    "control.cond_true",
    "api.closure_tanh_mean_f32",
    "api.checkpoint_dots_saveable",
    "api.stop_gradient",
    "api.vmap_tanh_saturated",
    "api.prng_key_inside_f32",
    "faq.where_sqrt",
    "user.bce_sigmoid_saturated",
    "lax.exp[3]_o1_f32",
)

AGREE, MISMATCH, POINT_ERROR, SIZE_LIMIT, INTERNAL, TIMEOUT, CRASH = (
    "agree",
    "mismatch",
    "point error",
    "size limit",
    "internal error",
    "timeout",
    "crash",
)
OUTCOMES = (AGREE, MISMATCH, POINT_ERROR, SIZE_LIMIT, INTERNAL, TIMEOUT, CRASH)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def symbolic_blocker(status: str) -> str:
    """What kept the exact method from running: the primitive when the reason names one, else the reason."""
    m = re.search(r"primitive '([^']+)'", status)
    if m:
        return m.group(1)
    reason = status.split(":", 1)[-1].strip()
    return _short(re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", reason), 80)


def outcome_of_error(message: str) -> str:
    """A point error's class: diffcheck's own failure, its size limit, or the function's fault."""
    if "internal error in diffcheck" in message:
        return INTERNAL
    if "checked in full" in message:  # order ≥ 2 of a vector output beyond what diffcheck checks in full
        return SIZE_LIMIT
    return POINT_ERROR


def classify(report) -> dict:
    """diffcheck's outcome on one entry as a JSON-safe record (see the module docstring)."""
    [point] = report.points
    methods = dict(point.methods)
    sym = methods.get("symbolic")
    if sym is None:  # the point failed before the methods ran
        ran, reason, blocker = "not run", "the point failed before the methods ran", ""
    elif sym == "ok" or sym.startswith("rejected"):  # rejected: it ran, and its value disagreed with JAX's
        ran, reason, blocker = "ran", "" if sym == "ok" else _short(sym), ""
    else:
        ran, reason, blocker = "unavailable", _short(sym), symbolic_blocker(sym)
    out = {
        "methods": methods,
        "symbolic": ran,  # "ran", "unavailable" (blocker says why) or "not run" (a point error)
        "symbolic_reason": reason,
        "symbolic_blocker": blocker,
        "odd_one_out": None,
        "message": "",
        "kinks": len(point.kinks),
        "seconds": round(point.seconds, 2),
        # Avoidable precision losses (a warning by default, issue 18): what each says.
        "precision": [_short(p.describe(), 240) for p in point.imprecise],
    }
    if point.error:
        out["outcome"] = outcome_of_error(point.error)
        out["message"] = _short(point.error)
    elif report.ok:
        out["outcome"] = AGREE
    else:
        out["outcome"] = MISMATCH
        named = [e.odd_one_out for e in point.mismatches if e.odd_one_out]
        if named:
            out["odd_one_out"] = Counter(named).most_common(1)[0][0]
        elif any(s.startswith("rejected") for s in methods.values()):
            out["odd_one_out"] = "symbolic (rejected)"
        elif point.dot_product is not None and not point.dot_product.ok:
            out["odd_one_out"] = "autodiff (forward vs reverse)"
        else:
            out["odd_one_out"] = "none (no two methods agree)" if point.mismatches else None
        problems = point.problems()
        out["message"] = _short(problems[0]) if problems else _short(str(report))
    return out


# Issue 13's classes, recognised by the message of a non-agree outcome: a reader's aid in the table
# (the measurement is the outcome; this column only says which class a row most likely belongs to).
_CLASSES = (
    ("same dtypes, got", "1 closure over NumPy constants (64-bit constant in the float32 re-run)"),
    ("dtype should be float64", "1 closure over NumPy constants (64-bit constant in the float32 re-run)"),
    ("verifier errors", "1 closure over NumPy constants (64-bit constant in the float32 re-run)"),
    ("PRNGKey dtype", "1 closure over NumPy constants (a PRNG key in the float32 re-run)"),
    ("object has no attribute 'jaxpr'", "3 translation: checkpoint with a policy"),
    ("nan > nan", "8 NaN gradients: the message reads nan > nan"),
    ("checked in full", "size limit: order ≥ 3 over 2,048 entries"),
)


def suspected_class(record: dict) -> str:
    """The class of issue 13 a non-agree row most likely belongs to (empty when none is recognised)."""
    if record["outcome"] == AGREE:
        return ""
    message, name = record.get("message", ""), record["name"]
    if "cbrt" in name and "function value nan" in message:
        return "3 translation: cbrt of a negative number"
    if "fill" in name and "rejected" in message:
        return "3 translation: gather mode='fill' ignores fill_value"
    if "stop_gradient" in name and record.get("odd_one_out") == "finite_difference":
        return "5 stop_gradient: finite differences are not comparable"
    if "complex_step=" in message and (record.get("odd_one_out") or "").startswith("none"):
        return "2 complex step where it does not apply"
    if "tanh_saturated" in name and record["outcome"] == MISMATCH:
        return "6 cancellation: 1 - tanh² on saturated rows"
    if "where_sqrt" in name:
        return "8 NaN gradients: a healthy element is named odd one out"
    if "precision" in record.get("tags", ()) and record["outcome"] == MISMATCH:
        return "4 the program's own float32 precision"
    for needle, label in _CLASSES:
        if needle in message:
            return label
    return ""


def run_check_grads(entry) -> dict:
    """`jax.test_util.check_grads` as JAX's test calls it: {"failed", "message"}."""
    import jax
    from jax.test_util import check_grads

    fn, args = entry.fn, entry.args
    if entry.argnums is not None:
        fixed = dict(enumerate(args))
        fn = lambda *a: entry.fn(*[a[entry.argnums.index(i)] if i in entry.argnums else v for i, v in fixed.items()])  # noqa: E731
        args = tuple(args[i] for i in entry.argnums)
    try:
        with jax.enable_x64(True), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            args = tuple(jax.numpy.asarray(a) for a in args)  # JAX arrays: x.at[…] needs one
            check_grads(fn, args, entry.order, modes=list(entry.modes), atol=entry.tol, rtol=entry.tol, eps=entry.eps)
    except AssertionError as exc:
        return {"failed": True, "message": _short(str(exc).strip().splitlines()[-1] if str(exc).strip() else "assert")}
    except Exception as exc:  # noqa: BLE001 - check_grads' own failure to run (NaN, reverse mode unsupported…)
        return {"failed": True, "message": _short(f"{type(exc).__name__}: {exc}")}
    return {"failed": False, "message": ""}


def run_diffcheck(entry) -> tuple:
    """(report, warnings emitted during the run) for one entry, in x64 mode for the duration."""
    import jax

    import diffcheck

    with jax.enable_x64(True), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = diffcheck.check_grad(
            entry.fn,
            *entry.args,
            argnums=entry.argnums,
            order=entry.order,
            dtype=None if entry.dtype == "float64" else entry.dtype,
        )
    seen = sorted({_short(f"{w.category.__name__}: {w.message}", 160) for w in caught})
    return report, seen


def run_entry(entry) -> dict:
    start = time.perf_counter()
    try:
        report, seen = run_diffcheck(entry)
        record = classify(report)
        record["warnings"] = seen
    except Exception as exc:  # noqa: BLE001 - check_grad raised: reported as an internal error
        record = {
            "outcome": INTERNAL,
            "message": _short(f"check_grad raised {type(exc).__name__}: {exc} | {traceback.format_exc(limit=-2)}"),
            "symbolic": "not run",
            "symbolic_reason": "check_grad raised",
            "symbolic_blocker": "",
            "methods": {},
            "odd_one_out": None,
            "warnings": [],
        }
    record["check_grads"] = run_check_grads(entry)
    record["wall_seconds"] = round(time.perf_counter() - start, 2)
    return record


def describe(entry) -> dict:
    return {
        "name": entry.name,
        "source": entry.source,
        "order": entry.order,
        "dtype": entry.dtype,
        "jax_problem": entry.jax_problem,
        "tags": list(entry.tags),
    }


def _worker(conn) -> None:
    """A spawned process: receives entry names, sends back (name, record)."""
    from benchmarks._jax_corpus import BY_NAME

    while True:
        name = conn.recv()
        if name is None:
            return
        conn.send((name, run_entry(BY_NAME[name])))


class _Pool:
    """Worker processes (spawn), one entry at a time each, ending a worker that runs past the timeout."""

    def __init__(self, jobs: int, timeout: float):
        self.ctx = multiprocessing.get_context("spawn")
        self.timeout = timeout
        self.workers = [self._start() for _ in range(jobs)]

    def _start(self):
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "name": None, "since": 0.0}

    def run(self, names, on_result) -> None:
        pending = list(names)
        while pending or any(w["name"] for w in self.workers):
            for w in self.workers:
                if w["name"] is None and pending:
                    w["name"], w["since"] = pending.pop(0), time.monotonic()
                    w["conn"].send(w["name"])
            busy = [w for w in self.workers if w["name"]]
            ready = wait([w["conn"] for w in busy], timeout=5.0)
            for i, w in enumerate(self.workers):
                if w["name"] is None:
                    continue
                if w["conn"] in ready:
                    try:
                        name, record = w["conn"].recv()
                    except EOFError:  # the worker died (a crash in native code, out of memory)
                        name, record = w["name"], {"outcome": CRASH, "message": "the worker process died"}
                        self._replace(i)
                    on_result(name, record)
                    self.workers[i]["name"] = None
                elif time.monotonic() - w["since"] > self.timeout:
                    name = w["name"]
                    self._replace(i)
                    on_result(name, {"outcome": TIMEOUT, "message": f"ran past {self.timeout:.0f} s"})

    def _replace(self, i) -> None:
        old = self.workers[i]
        old["proc"].terminate()
        old["proc"].join(10)
        self.workers[i] = self._start()

    def close(self) -> None:
        for w in self.workers:
            try:
                w["conn"].send(None)
            except OSError:
                pass
            w["proc"].join(10)


def summarise(results: list[dict]) -> dict:
    counts = Counter(r["outcome"] for r in results)
    sym_ran = sum(r.get("symbolic") == "ran" for r in results)
    unexpected = [r for r in results if r["outcome"] != AGREE and not r["jax_problem"]]
    return {
        "entries": len(results),
        "outcomes": {k: counts.get(k, 0) for k in OUTCOMES},
        "symbolic_ran": sym_ran,
        "symbolic_ran_percent": round(100 * sym_ran / max(len(results), 1), 1),
        "symbolic_unavailable": sum(r.get("symbolic") == "unavailable" for r in results),
        "symbolic_not_run": sum(r.get("symbolic") not in ("ran", "unavailable") for r in results),
        "check_grads_failed": sum(r.get("check_grads", {}).get("failed", False) for r in results),
        "false_alarms": sum(r["outcome"] == MISMATCH for r in unexpected),
        "not_agree_on_correct_code": len(unexpected),
        "documented_jax_problems": sum(bool(r["jax_problem"]) for r in results),
    }


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(results: list[dict], summary: dict, command: str, seconds: float) -> str:
    import jax

    import diffcheck

    lines = [
        "# JAX's own autodiff tests through diffcheck and check_grads",
        "",
        f"Generated by `{command}` (jax {jax.__version__}, {seconds / 60:.0f} min on this machine's CPU);",
        "the corpus is `benchmarks/_jax_corpus.py`, re-expressed from the test files named below, at the",
        "points JAX's `jax._src.test_util` `rand_*` factories draw (a fixed seed per entry), with closures",
        "over NumPy constants as JAX's tests write them. diffcheck runs with its own error model;",
        "`jax.test_util.check_grads` with the modes and tolerances JAX's test passes. Both in x64 mode.",
        f"diffcheck {getattr(diffcheck, '__version__', '')}".rstrip(),
        "",
        "## Summary",
        "",
        f"- entries: {summary['entries']}",
        "- diffcheck: " + ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items()),
        f"- the exact (symbolic) method ran on {summary['symbolic_ran']} ({summary['symbolic_ran_percent']}%), "
        f"was unavailable on {summary['symbolic_unavailable']} (reasons below) and did not run on "
        f"{summary['symbolic_not_run']} (the point failed first)",
        f"- check_grads failed on {summary['check_grads_failed']}",
        f"- documented real problems in JAX (or the function): {summary['documented_jax_problems']}",
        f"- diffcheck did not agree on correct code {summary['not_agree_on_correct_code']} times, "
        f"{summary['false_alarms']} of them false alarms (mismatch)",
        "",
        "## Per source",
        "",
        "| source | entries | agree | mismatch | point error | size limit | internal error | timeout/crash "
        "| symbolic ran | check_grads failed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for source in sorted({r["source"] for r in results}):
        rs = [r for r in results if r["source"] == source]
        c = Counter(r["outcome"] for r in rs)
        sym = sum(r.get("symbolic") == "ran" for r in rs)
        cg = sum(r.get("check_grads", {}).get("failed", False) for r in rs)
        lines.append(
            f"| {source} | {len(rs)} | {c[AGREE]} | {c[MISMATCH]} | {c[POINT_ERROR]} | {c[SIZE_LIMIT]} | {c[INTERNAL]} "
            f"| {c[TIMEOUT] + c[CRASH]} | {sym} | {cg} |"
        )
    for label, rs in [
        ("float64, order 1", [r for r in results if r["dtype"] == "float64" and r["order"] == 1]),
        ("float64, order ≥ 2", [r for r in results if r["dtype"] == "float64" and r["order"] > 1]),
        ("float32", [r for r in results if r["dtype"] == "float32"]),
    ]:
        c = Counter(r["outcome"] for r in rs)
        lines.append(
            f"| *{label}* | {len(rs)} | {c[AGREE]} | {c[MISMATCH]} | {c[POINT_ERROR]} | {c[SIZE_LIMIT]} "
            f"| {c[INTERNAL]} "
            f"| {c[TIMEOUT] + c[CRASH]} | {sum(r.get('symbolic') == 'ran' for r in rs)} "
            f"| {sum(r.get('check_grads', {}).get('failed', False) for r in rs)} |"
        )
    lines += [
        "",
        "## Every entry diffcheck did not agree on",
        "",
        "`documented` is a real problem in JAX or in the function, recorded in the corpus (`jax_problem`);",
        "every other row is diffcheck's to explain.",
        "",
        "| entry | source | order | dtype | outcome | odd one out | message | documented | issue 13 class "
        "(by its message) | check_grads |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["outcome"] == AGREE:
            continue
        cg = r.get("check_grads", {})
        cg_cell = ("FAILED: " + cg["message"]) if cg.get("failed") else "pass"
        lines.append(
            f"| `{_cell(r['name'])}` | {r['source']} | {r['order']} | {r['dtype']} | {r['outcome']} "
            f"| {_cell(r.get('odd_one_out') or '')} | {_cell(r.get('message', ''))} | {_cell(r['jax_problem'])} "
            f"| {_cell(suspected_class(r))} | {_cell(cg_cell)} |"
        )
    lines += ["", "## check_grads failures", "", "| entry | diffcheck | check_grads' message |", "|---|---|---|"]
    for r in results:
        cg = r.get("check_grads", {})
        if cg.get("failed"):
            lines.append(f"| `{_cell(r['name'])}` | {r['outcome']} | {_cell(cg['message'])} |")
    blockers = Counter(r["symbolic_blocker"] for r in results if r.get("symbolic") == "unavailable")
    lines += [
        "",
        "## What kept the exact method from running",
        "",
        "| primitive or reason | entries |",
        "|---|---|",
    ]
    lines += [f"| {_cell(k)} | {v} |" for k, v in blockers.most_common()]
    imprecise = [r for r in results if r.get("precision")]
    lines += ["", "## Avoidable precision losses (warnings)", ""]
    if not any("precision" in r for r in results):
        lines.append("Not measured in this run (entries measured before the precision audit existed).")
    elif not imprecise:
        lines.append("None.")
    else:
        lines += ["| entry | outcome | what the audit says |", "|---|---|---|"]
        lines += [f"| `{_cell(r['name'])}` | {r['outcome']} | {_cell(r['precision'][0])} |" for r in imprecise]
    leaked = Counter(w for r in results for w in r.get("warnings", []))
    if leaked:
        lines += ["", "## Warnings emitted during diffcheck's runs", "", "| warning | entries |", "|---|---|"]
        lines += [f"| {_cell(k)} | {v} |" for k, v in leaked.most_common()]
    return "\n".join(_plain_brackets(line) for line in lines) + "\n"


def _plain_brackets(line: str) -> str:
    """Index brackets outside code spans (args[0]) escaped: mkdocs would read them as references."""
    parts = line.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"(?<!\\)\[([^\]\(]*)\](?!\()", r"\\[\1\\]", parts[i])
    return "`".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jax_suite", description=__doc__.splitlines()[0])
    parser.add_argument("--subset", choices=["all", "fast"], default="all")
    parser.add_argument("--name", action="append", default=[], help="run only these entries (repeatable)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (spawn), default 1")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per entry, default 240")
    parser.add_argument(
        "--update",
        type=Path,
        help="a JSON file of an earlier run: re-run only the --name entries, keep the others' records, "
        "and write --json/--md for the whole run (after a fix, re-measure its class); without --name, "
        "only re-render",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip the entries already in --json's partial file (JSON lines written as results arrive)",
    )
    ns = parser.parse_args(argv)

    from benchmarks._jax_corpus import BY_NAME, CORPUS

    names = ns.name or (list(FAST) if ns.subset == "fast" else [e.name for e in CORPUS])
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown entries {unknown}")
    results, start = {}, time.perf_counter()
    # Each record is appended to a partial file as it arrives, so that a run cut short can be resumed.
    partial = ns.json.with_name(ns.json.name + ".partial.jsonl") if ns.json else None
    if ns.resume and partial and partial.exists():
        for line in partial.read_text().splitlines():
            record = json.loads(line)
            results[record["name"]] = record
    pending = [n for n in names if n not in results] if not (ns.update and not ns.name) else []

    def on_result(name, record):
        record = {**describe(BY_NAME[name]), **record}
        results[name] = record
        if partial:
            with partial.open("a") as out:
                out.write(json.dumps(record) + "\n")
        cg = "check_grads FAILED" if record.get("check_grads", {}).get("failed") else ""
        print(
            f"[{len(results)}/{len(names)}] {name}: {record['outcome']} {record.get('message', '')[:160]} {cg}",
            file=sys.stderr,
            flush=True,
        )

    pool = _Pool(ns.jobs, ns.timeout)
    try:
        pool.run(pending, on_result)
    finally:
        pool.close()
    seconds = time.perf_counter() - start
    command = "python -m benchmarks.jax_suite " + " ".join(argv if argv is not None else sys.argv[1:])
    if ns.update:
        earlier = json.loads(ns.update.read_text())
        before = [r["name"] for r in earlier["entries"] if r["name"] in BY_NAME]  # entries since removed: dropped
        names = before + [n for n in names if n not in set(before)]
        results = {**{r["name"]: r for r in earlier["entries"]}, **results}
        seconds += earlier["seconds"]
        command = earlier["command"]
        if ns.name:
            command += f" (then {len(ns.name)} entries re-run with --update)"
    # The corpus's description of each entry is today's (an --update keeps earlier measurements only).
    ordered = [{**results[n], **describe(BY_NAME[n])} if n in BY_NAME else results[n] for n in names]
    for r in ordered:
        if r["outcome"] in (POINT_ERROR, SIZE_LIMIT, INTERNAL):
            r["outcome"] = outcome_of_error(r.get("message", ""))
    summary = summarise(ordered)
    if ns.json:
        ns.json.write_text(
            json.dumps(
                {"command": command.strip(), "seconds": round(seconds), "summary": summary, "entries": ordered},
                indent=1,
            )
            + "\n"
        )
        if partial.exists():
            partial.unlink()
    if ns.md:
        ns.md.write_text(markdown(ordered, summary, command.strip(), seconds))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
