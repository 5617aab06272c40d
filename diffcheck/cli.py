"""`python -m diffcheck`: run the case library (or case files), list cases, check a formula.

Exit codes follow pytest's:

    0  every point agrees
    1  a derivative mismatch (or a point that could not be checked)
    2  interrupted (Ctrl-C); the partial report is still written
    3  internal error (a bug in diffcheck: please report it)
    4  usage error (bad option, unknown case name, no GPU)
    5  no cases selected
    6  a case file or case failed to load (the others still ran)
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

OK, MISMATCH, INTERRUPTED, INTERNAL_ERROR, USAGE_ERROR, NO_CASES, LOAD_ERROR = range(7)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m diffcheck",
        description="Is this gradient right? Checks derivatives exactly (SymPy), by autodiff (JAX) "
        "and by finite differences, and cross-validates them.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="check the built-in library, or the cases in PATHs")
    run.add_argument("paths", nargs="*", metavar="PATH", help="case files or folders (default: the built-in library)")
    run.add_argument("--case", action="append", default=[], metavar="NAME", help="only this case (repeatable)")
    run.add_argument("--tag", action="append", default=[], metavar="TAG", help="only cases with this tag (repeatable)")
    run.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    run.add_argument("--device", choices=("cpu", "gpu"), default=None)
    run.add_argument("--seed", type=int, default=0, help="seed of the random points (default 0)")
    run.add_argument("--points", type=_non_negative, default=2, metavar="K", help="random points per case (default 2)")
    run.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=120.0,
        metavar="SECONDS",
        help="time budget of the symbolic method per point (default 120)",
    )
    run.add_argument("--json", type=_output_file, metavar="FILE", help="write the report as JSON")
    run.add_argument("--junit", type=_output_file, metavar="FILE", help="write the report as JUnit XML (xunit2)")
    run.add_argument("--html", type=_output_file, metavar="FILE", help="write a self-contained HTML report with plots")
    run.add_argument("--strict", action="store_true", help="a kink (non-differentiable point) fails its point")
    run.add_argument(
        "--jobs",
        type=_positive,
        default=1,
        metavar="N",
        help="check cases in N worker processes (default 1: in this process); the report is the same",
    )
    run.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="check cases on a Dask distributed cluster (e.g. tcp://host:8786); needs diffcheck[distributed]",
    )
    _cache_arguments(run)
    run.add_argument(
        "--by-case",
        action="store_true",
        help="also print, per case, the largest relative error of autodiff and of finite differences "
        "against the exact value",
    )
    listing = sub.add_parser("list", help="list the cases with their tags")
    listing.add_argument("paths", nargs="*", metavar="PATH")
    check = sub.add_parser(
        "check",
        help='check a formula, e.g. check "log(1 + exp(x))" --at x=0.3',
        description="Checks the derivatives of a formula of numbers, variables, + - * / **, and the functions "
        "exp, log, sqrt, sigmoid, … (see docs/formula.md). The text is parsed, never evaluated.",
    )
    check.add_argument("formula", metavar="FORMULA")
    check.add_argument(
        "--at", action="append", default=[], metavar="NAME=VALUE", help="a variable's value: --at x=0.3,y=2"
    )
    check.add_argument("--wrt", action="append", default=None, metavar="NAME", help="differentiate only in NAME")
    check.add_argument("--order", type=int, choices=(1, 2, 3, 4), default=1, help="derivative order (default 1)")
    check.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    check.add_argument("--timeout", type=_positive_seconds, default=120.0, metavar="SECONDS")
    check.add_argument("--strict", action="store_true", help="a kink (non-differentiable point) fails the check")
    check.add_argument("--json", type=_output_file, metavar="FILE", help="write the report as JSON")
    check.add_argument("--junit", type=_output_file, metavar="FILE", help="write the report as JUnit XML (xunit2)")
    check.add_argument("--html", type=_output_file, metavar="FILE", help="write a self-contained HTML report")
    _cache_arguments(check)
    return parser


def _cache_arguments(parser) -> None:
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="keep JAX's compiled programs in DIR across runs (default: $DIFFCHECK_CACHE_DIR, else "
        "$JAX_COMPILATION_CACHE_DIR, else diffcheck/jax in the user's cache folder, e.g. ~/.cache/diffcheck/jax)",
    )
    cache.add_argument("--no-cache", action="store_true", help="keep no compiled programs: every run compiles afresh")


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds, got {text}")
    return value


def _output_file(text: str) -> Path:
    # Checked before the run, so that a typo in a folder name does not waste a long run.
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; expected a file name")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(path.parent)!r} does not exist (for {text!r})")
    return path


def main(argv=None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error
        return OK if exc.code == 0 else USAGE_ERROR
    try:
        return {"run": _run, "list": _list, "check": _check}[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:
        from .errors import CaseError, FormulaError, UsageError

        if isinstance(exc, FormulaError):
            print(f"diffcheck: formula refused: {exc}", file=sys.stderr)
            return USAGE_ERROR
        if isinstance(exc, UsageError):
            print(f"diffcheck: usage error: {exc}", file=sys.stderr)
            return USAGE_ERROR
        if isinstance(exc, CaseError):
            print(f"diffcheck: {exc}", file=sys.stderr)
            return LOAD_ERROR
        traceback.print_exc()
        print(f"diffcheck: internal error: {type(exc).__name__}: {exc} — this is a bug in diffcheck", file=sys.stderr)
        return INTERNAL_ERROR


def _select(args):
    from .case import collect_cases
    from .errors import UsageError

    cases, errors = collect_cases(*args.paths)
    if getattr(args, "case", None):
        names = {c.name for c in cases}
        unknown = [n for n in args.case if n not in names]
        if unknown:
            hints = []
            for n in unknown:
                close = difflib.get_close_matches(n, sorted(names), n=3)
                hints.append(f"{n!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
            raise UsageError(f"unknown case {', '.join(hints)}; `python -m diffcheck list` shows them all")
        cases = [c for c in cases if c.name in args.case]
    if getattr(args, "tag", None):
        cases = [c for c in cases if set(args.tag) & set(c.tags)]
    return cases, errors


def _list(args) -> int:
    cases, errors = _select(args)
    width = max((len(c.name) for c in cases), default=0)
    for case in cases:
        print(f"{case.name.ljust(width)}  [{', '.join(case.tags)}]  {case.description}")
    for message in errors:
        print(f"load error: {message}", file=sys.stderr)
    return LOAD_ERROR if errors else OK if cases else NO_CASES


def _run(args) -> int:
    from . import _autodiff as autodiff
    from . import parallel, terminal
    from ._records import Report
    from .errors import UsageError

    if args.jobs > 1 and args.scheduler:
        raise UsageError("give --jobs or --scheduler, not both")
    _compilation_cache(args)
    autodiff.device(args.device)  # a missing GPU is a usage error before any work
    if args.html:
        from .html import require_matplotlib

        require_matplotlib()  # before the run, not after it
    cases, errors = _select(args)
    report = Report(errors=tuple(errors))
    interrupted = False
    options = dict(
        dtype=args.dtype,
        device=args.device,
        points=args.points,
        seed=args.seed,
        timeout=args.timeout,
        strict=args.strict,
    )
    try:
        serial = args.jobs == 1 and not args.scheduler
        results = parallel.run_cases(cases, jobs=args.jobs, scheduler=args.scheduler, **options)
        with terminal.progress(len(cases)) as progress:
            for case in cases:
                if serial:  # in workers, cases start in any order: each is shown as it ends
                    progress.start(case.name)
                done, one = next(results)
                report = report + one
                progress.done(done.name)
    except KeyboardInterrupt:
        interrupted = True
    out = terminal.console()
    terminal.show(report, out)
    if args.by_case:
        out.print("\nLargest relative error and fewest digits of agreement against the exact value, per case:")
        out.print(report.by_case_table(), markup=False, soft_wrap=True)
    _write_reports(args, report, interrupted)
    if interrupted:
        print("interrupted: the report above is partial", file=sys.stderr)
        return INTERRUPTED
    if not cases:
        print("no cases selected", file=sys.stderr)
        return LOAD_ERROR if errors else NO_CASES
    if errors:
        return LOAD_ERROR
    return OK if report.ok else MISMATCH


def _compilation_cache(args) -> None:
    """JAX's persistent compilation cache, on unless --no-cache. A folder that cannot be used costs
    the run its speed-up, never its result: one warning, and the run goes on uncached."""
    from . import parallel

    if args.no_cache:
        parallel.disable_compilation_cache()
        return
    folder, max_bytes = (args.cache_dir, None) if args.cache_dir else parallel.default_compilation_cache()
    try:
        parallel.enable_compilation_cache(folder, max_bytes)
    except OSError as exc:
        parallel.disable_compilation_cache()  # nor JAX's own folder, which would warn once per program
        reason = exc.strerror or str(exc)
        print(
            f"diffcheck: warning: compiled programs are not cached: cannot use {str(folder)!r}: {reason}",
            file=sys.stderr,
        )


def _write_reports(args, report, interrupted: bool) -> None:
    """Each requested file, rendered whole before it is written (a failed rendering leaves no file)."""
    if args.json:
        data = report.to_dict()
        data["interrupted"] = interrupted
        write_atomic(args.json, json.dumps(data, indent=1))
    if args.junit:
        from .junit import to_junit

        write_atomic(args.junit, to_junit(report, interrupted=interrupted))
    if args.html:
        from .html import to_html

        write_atomic(args.html, to_html(report, interrupted=interrupted))


_METHOD_ORDER = ("symbolic", "autodiff", "autodiff_forward", "finite_difference", "complex_step")  # then any other


def _check(args) -> int:
    from . import formula, terminal
    from ._api import check_case

    parsed = formula.parse(args.formula)  # refused here, before anything is built from it
    _compilation_cache(args)
    point = formula.parse_point(args.at, parsed.variables)
    case = formula.case(args.formula, point, wrt=args.wrt, order=args.order)
    if args.html:
        from .html import require_matplotlib

        require_matplotlib()
    report = check_case(case, dtype=args.dtype, points=0, timeout=args.timeout, strict=args.strict)
    out = terminal.console()
    terminal.show(report, out)
    for element in (e for p in report.points for e in p.elements):
        rank = {m: i for i, m in enumerate(_METHOD_ORDER)}
        values = sorted(element.values.items(), key=lambda item: rank.get(item[0], len(rank)))
        name = element.name if element.via else f"∂/∂{element.name}"
        out.print(f"{name}: " + ", ".join(f"{m} {v:.17g}" for m, v in values), markup=False, soft_wrap=True)
    _write_reports(args, report, interrupted=False)
    return OK if report.ok else MISMATCH


def write_atomic(path: Path, text: str) -> None:
    """Writes the whole file or nothing: a temporary file in the same folder, then a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a report is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
