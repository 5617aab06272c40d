"""`python -m diffcheck`: run the case library (or case files), list cases, check a formula.

Exit codes follow pytest's:

    0  every point agrees
    1  a derivative mismatch (or a point that could not be checked)
    2  interrupted (Ctrl-C); the partial report is still written
    3  internal error (a bug in diffcheck: please report it)
    4  usage error (bad option, unknown case name, no GPU)
    5  no cases selected
    6  a case file or case failed to load (the others still ran)
    7  a report file could not be written (the others were)
  143  terminated (SIGTERM); the partial report is still written
"""

from __future__ import annotations

import argparse
import difflib
import errno
import json
import os
import re
import signal
import stat
import sys
import tempfile
import traceback
from pathlib import Path

OK, MISMATCH, INTERRUPTED, INTERNAL_ERROR, USAGE_ERROR, NO_CASES, LOAD_ERROR, REPORT_ERROR = range(8)
TERMINATED = 128 + signal.SIGTERM  # 143, as a shell reports a process ended by SIGTERM


def _parser() -> argparse.ArgumentParser:
    from . import _options

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
    run.add_argument("--dtype", choices=_options.DTYPES, default="float64")
    run.add_argument("--device", choices=_options.DEVICES, default=None)
    run.add_argument("--seed", type=_seed, default=0, help="seed of the random points (default 0)")
    run.add_argument("--points", type=_non_negative, default=2, metavar="K", help="random points per case (default 2)")
    run.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=120.0,
        metavar="SECONDS",
        help="time budget per point (default 120), for every method: the symbolic method stops itself at it, "
        "past it plus 5 s the point is preempted, and a case past (timeout + 5 s) per point, plus 5 s, is killed; "
        "each is reported as timed out, with the phase",
    )
    _memory_argument(run)
    run.add_argument(
        "--json", type=_output_file, metavar="FILE", help="write the report as JSON (- for standard output)"
    )
    run.add_argument("--junit", type=_output_file, metavar="FILE", help="write the report as JUnit XML (xunit2)")
    run.add_argument("--html", type=_output_file, metavar="FILE", help="write a self-contained HTML report with plots")
    run.add_argument("--strict", action="store_true", help="a kink (non-differentiable point) fails its point")
    _precision_argument(run)
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
        type=_address,
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
    check.add_argument(
        "formula", metavar="FORMULA", help='the formula; one that starts with "-" is read as one too ("-x**2")'
    )
    check.add_argument(
        "--at", action="append", default=[], metavar="NAME=VALUE", help="a variable's value: --at x=0.3,y=2"
    )
    check.add_argument("--wrt", action="append", default=None, metavar="NAME", help="differentiate only in NAME")
    check.add_argument(
        "--order", type=int, choices=range(1, _options.MAX_ORDER + 1), default=1, help="derivative order (default 1)"
    )
    check.add_argument("--dtype", choices=_options.DTYPES, default="float64")
    check.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=120.0,
        metavar="SECONDS",
        help="time budget of the point (default 120), for every method; past it plus 5 s the check is "
        "preempted (or its worker killed) and reported as timed out, with the phase",
    )
    _memory_argument(check)
    check.add_argument("--strict", action="store_true", help="a kink (non-differentiable point) fails the check")
    _precision_argument(check)
    check.add_argument(
        "--json", type=_output_file, metavar="FILE", help="write the report as JSON (- for standard output)"
    )
    check.add_argument("--junit", type=_output_file, metavar="FILE", help="write the report as JUnit XML (xunit2)")
    check.add_argument("--html", type=_output_file, metavar="FILE", help="write a self-contained HTML report")
    _cache_arguments(check)
    return parser


def _precision_argument(parser) -> None:
    parser.add_argument(
        "--strict-precision",
        action="store_const",
        const="strict",
        default="warn",
        dest="precision",
        help="avoidable precision loss (autodiff loses 10^3 times more digits than the problem's condition "
        "number allows) fails its point; by default it is a warning",
    )


def _cache_arguments(parser) -> None:
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-dir",
        type=_folder,
        metavar="DIR",
        help="keep JAX's compiled programs in DIR across runs (default: $DIFFCHECK_CACHE_DIR, else "
        "$JAX_COMPILATION_CACHE_DIR, else diffcheck/jax in the user's cache folder, e.g. ~/.cache/diffcheck/jax)",
    )
    cache.add_argument("--no-cache", action="store_true", help="keep no compiled programs: every run compiles afresh")


def _option(kind: str):
    """An argparse type that reads the text and validates it with `diffcheck._options`, the one
    owner of each option; its usage error becomes argparse's, which names the option."""

    def parse(text: str):
        from . import _options
        from .errors import UsageError

        try:
            if kind == "timeout":
                return _options.parse_seconds(text, name=kind)
            if kind == "max_memory":
                return _options.parse_gib(text, name=kind)
            if kind == "cache_dir":
                return _options.cache_dir(text, name=kind)
            if kind == "scheduler":
                return _options.scheduler(text, name=kind)
            return _options.parse_int(text, getattr(_options, kind), name=kind)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = kind
    return parse


_non_negative = _option("points")
_positive = _option("jobs")
_positive_seconds = _option("timeout")
_seed = _option("seed")
_gib = _option("max_memory")
_folder = _option("cache_dir")
_address = _option("scheduler")


def _memory_argument(parser) -> None:
    parser.add_argument(
        "--max-memory",
        type=_gib,
        default=None,
        metavar="GIB",
        help="memory budget per worker process in GiB (default: half the machine's memory, shared among "
        "the workers); a Jacobian that cannot fit it is refused before it is computed, and a case past it "
        "is killed and reported as out of memory",
    )


def _output_file(text: str) -> str:
    """A report's path, checked when the command line is read (so that a typo in a folder name
    does not waste a long run); "-" is standard output."""
    from .errors import UsageError

    try:
        report_target(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (workers ended, partial reports written), exit 143."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv=None) -> int:
    from .errors import CaseError, FormulaError, UsageError

    _tolerant_streams()
    parser = _parser()
    argv = _formula_first(parser, list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error
        return OK if exc.code == 0 else USAGE_ERROR
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if _main_thread() else None
    try:
        from . import _options

        _options.reload_settings()  # read once per command; a bad variable is a usage error
        return {"run": _run, "list": _list, "check": _check}[args.command](args)
    except _Terminated:
        print("terminated (SIGTERM)", file=sys.stderr)
        return TERMINATED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:
        if isinstance(exc, FormulaError):
            print(f"diffcheck: formula refused: {exc}", file=sys.stderr)
            return USAGE_ERROR
        if isinstance(exc, UsageError):
            print(f"diffcheck: usage error: {exc}", file=sys.stderr)
            return USAGE_ERROR
        if isinstance(exc, CaseError):
            print(f"diffcheck: {exc}", file=sys.stderr)
            return LOAD_ERROR
        from ._options import raise_internal_errors

        if raise_internal_errors():
            raise
        traceback.print_exc()
        print(f"diffcheck: internal error: {type(exc).__name__}: {exc} — this is a bug in diffcheck", file=sys.stderr)
        return INTERNAL_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _tolerant_streams() -> None:
    """Text that the terminal cannot encode (a lone surrogate in a case's error message) is
    printed escaped, never a UnicodeEncodeError that loses the rest of the run."""
    for stream in (sys.stdout, sys.stderr):
        with _suppress():
            stream.reconfigure(errors="backslashreplace")


def _suppress():
    import contextlib

    return contextlib.suppress(AttributeError, ValueError, OSError)


def _formula_first(parser, argv: list) -> list:
    """`check "-x**2" --at x=1`: a formula that starts with "-" is not an option. It is moved
    behind "--" (argparse's end of options), as `check --at x=1 -- "-x**2"` would give it."""
    if not argv or argv[0] != "check" or "--" in argv:
        return argv
    check = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "check")[1]
    takes_value = {}
    for action in check._actions:
        for option in action.option_strings:
            takes_value[option] = action.nargs != 0
    i = 1
    while i < len(argv):
        token = argv[i]
        option = token.split("=", 1)[0]
        if option in takes_value:
            i += 1 + (takes_value[option] and "=" not in token)
            continue
        if token.startswith("-") and len(token) > 1:
            return argv[:i] + argv[i + 1 :] + ["--", token]
        i += 1
    return argv


def _select(args, cases, errors):
    from .errors import UsageError

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


def _collect(pool, paths):
    """The cases of `paths`, loaded in a worker: this process imports no case file, so a case
    file that crashes or exits costs its own load error, never the run."""
    from .case import _case_files

    if paths:
        _case_files(paths)  # a missing path is a CaseError (exit 6) before a worker starts
    return pool.collect(*paths)


def _list(args) -> int:
    from .parallel import Pool

    with Pool(1) as pool:
        cases, errors = _select(args, *_collect(pool, args.paths))
    width = max((len(c.name) for c in cases), default=0)
    for case in cases:
        print(f"{case.name.ljust(width)}  [{', '.join(case.tags)}]  {case.description}")
    for message in errors:
        print(f"load error: {message}", file=sys.stderr)
    return LOAD_ERROR if errors else OK if cases else NO_CASES


def _run(args) -> int:
    from . import parallel
    from .errors import UsageError

    if args.jobs > 1 and args.scheduler:
        raise UsageError("give --jobs or --scheduler, not both")
    targets = _report_targets(args)  # every report path, before any work
    cache = _compilation_cache(args)
    if args.device == "gpu":
        from . import _autodiff as autodiff

        autodiff.device(args.device)  # a missing GPU is a usage error before any work
    if args.html:
        from .html import require_matplotlib

        require_matplotlib()  # before the run, not after it
    options = dict(
        dtype=args.dtype,
        device=args.device,
        points=args.points,
        seed=args.seed,
        timeout=args.timeout,
        strict=args.strict,
        precision=args.precision,
    )
    jobs = 1 if args.scheduler else args.jobs
    pool = parallel.Pool(jobs, cache=cache, memory=args.max_memory, timeout=args.timeout)
    report, interrupted, done = None, None, {}
    try:
        with pool:
            pool.start()  # the workers import JAX while this process imports NumPy and rich, and reads the case list
            from . import terminal
            from ._records import Report

            cases, errors = _select(args, *_collect(pool, args.paths))
            report = Report(errors=tuple(errors))
            points = args.points
            if args.scheduler:
                pool.close()
                events = _dask_events(cases, args.scheduler, options)
            else:
                tasks = [parallel.Task(c.id, options, c.point_checks(points)) for c in cases]
                events = pool.run(tasks)
            with terminal.progress(len(cases)) as progress:
                for event in events:
                    if event.kind == "start":
                        if jobs == 1:  # in workers, cases start in any order: each is shown as it ends
                            progress.start(cases[event.index].name)
                        continue
                    done[event.index] = event.report
                    progress.done(cases[event.index].name)
    except KeyboardInterrupt as exc:
        interrupted = exc
    from . import terminal
    from ._records import Report

    report = Report() if report is None else report
    for i in sorted(done):  # case order, whatever order they ended in
        report = report + done[i]
    out = terminal.console(sys.stderr if _to_stdout(targets) else None)
    terminal.show(report, out)
    if args.by_case:
        out.print("\nLargest relative error and fewest digits of agreement against the exact value, per case:")
        out.print(report.by_case_table(), markup=False, soft_wrap=True)
    failed = _write_reports(targets, report, interrupted is not None)
    if interrupted is not None:
        print("interrupted: the report above is partial", file=sys.stderr)
        raise interrupted
    if failed:
        return INTERNAL_ERROR if INTERNAL_ERROR in failed else REPORT_ERROR

    if not cases:
        print("no cases selected", file=sys.stderr)
        return LOAD_ERROR if errors else NO_CASES
    if errors:
        return LOAD_ERROR
    return OK if report.ok else MISMATCH


def _dask_events(cases, address, options):
    from .parallel import CaseId, Event, _dask, check_one

    with _dask(address) as executor:
        futures = [executor.submit(check_one, c.id or CaseId(c.name), options) for c in cases]
        try:
            for i, future in enumerate(futures):
                from .parallel import _result

                yield Event("done", i, _result(cases[i], future))
        finally:
            for future in futures:
                future.cancel()


def _compilation_cache(args):
    """JAX's persistent compilation cache for the workers, on unless --no-cache: (folder, bound) or
    None. A folder that cannot be used costs the run its speed-up, never its result: one warning,
    and the run goes on uncached."""
    from . import _cache

    if args.no_cache:
        os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)  # nor JAX's own folder, in the workers
        return None
    folder, max_bytes = (args.cache_dir, None) if args.cache_dir else _cache.default_compilation_cache()
    try:
        max_bytes = _cache.prepare_compilation_cache(folder, max_bytes)
    except OSError as exc:
        os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)  # nor JAX's own folder, which would warn once per program
        reason = exc.strerror or str(exc)
        print(
            f"diffcheck: warning: compiled programs are not cached: cannot use {str(folder)!r}: {reason}",
            file=sys.stderr,
        )
        return None
    return str(folder), max_bytes


# --- report files ---------------------------------------------------------------------------------

_REPORTS = (("json", "JSON"), ("junit", "JUnit"), ("html", "HTML"))


def report_target(text: str) -> str:
    """Checks one report path before the run: "-" (standard output), a new or regular file in a
    folder that can be written to, or a character device or FIFO written through (a symlink names
    its target). Returns the path written; raises `UsageError` saying what is wrong."""
    from .errors import UsageError

    if text == "-":
        return "-"
    if not text:
        raise UsageError("a report path is empty; give a file name, or - for standard output")
    try:
        mode = os.stat(text).st_mode  # through symlinks, /dev/stdout's included
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"cannot use {text!r} for a report: {exc.strerror}") from None
    if mode is not None:
        if stat.S_ISDIR(mode):
            raise UsageError(f"{text!r} is a folder; expected a file name")
        if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or _fd_link(text):
            if not os.access(text, os.W_OK):
                raise UsageError(f"cannot write a report to {text!r}: permission denied")
            return text  # written through, never replaced
        if not stat.S_ISREG(mode):
            kind = "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file"
            raise UsageError(f"{text!r} is {kind}; a report is written to a file, a character device or a FIFO")
    path = Path(os.path.realpath(text))  # a symlink: its target is written, the link kept
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"folder {str(Path(text).parent)!r} does not exist (for {text!r})")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write the report {text!r}: folder {str(folder)!r}: {exc.strerror}") from None
    return str(path)


def _fd_link(path) -> bool:
    """/dev/stdout, /dev/fd/N, /proc/self/fd/N: a name for an open file of this process, written
    through (appended to), never replaced by a new file under its target's name."""
    current = os.path.abspath(path)
    for _ in range(40):  # follow the links one at a time: the last one names a file we cannot reach
        if _FD_PATH.match(current):
            return True
        if not os.path.islink(current):
            return False
        current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
    return False


_FD_PATH = re.compile(r"^/(?:proc/[^/]+|dev)/fd/\d+$")


def _file_key(path: str):
    path = "/dev/stdout" if path == "-" else path  # "-" is standard output
    try:
        st = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    return ("file", st.st_dev, st.st_ino)


def _same_file(a: str, b: str) -> bool:
    return a == b or _file_key(a) == _file_key(b)


def _report_targets(args) -> dict:
    """{"json": path, …} for the reports asked for; two reports at one path is a usage error."""
    from .errors import UsageError

    targets, by_path = {}, {}
    for key, _ in _REPORTS:
        text = getattr(args, key, None)
        if text is None:
            continue
        target = report_target(text)
        other = next((k for p, k in by_path.items() if _same_file(p, target)), None)
        if other is not None and not (target != "-" and _is_null(target)):
            raise UsageError(f"--{other} and --{key} both name {text!r}: give each report its own file")
        by_path[target] = key
        targets[key] = target
    return targets


def _to_stdout(targets: dict) -> bool:
    """Whether a report goes to standard output: the table then goes to standard error."""
    return any(_same_file(t, "-") for t in targets.values())


def _is_null(path: str) -> bool:
    """/dev/null may take every report: nothing is kept, so nothing is overwritten."""
    return _same_file(path, os.devnull)


def _write_reports(targets: dict, report, interrupted: bool) -> list:
    """Each requested file, rendered whole before it is written (a failed rendering leaves no
    file). A file that cannot be written, or a report that cannot be rendered, is named, and the
    others are still written; returns the exit code of each failure (REPORT_ERROR, INTERNAL_ERROR)."""
    failed = []
    for key, label in _REPORTS:
        if key not in targets:
            continue
        try:
            if key == "json":
                data = report.to_dict()
                data["ok"] = bool(data["ok"]) and not interrupted  # a partial report never says ok
                data["interrupted"] = interrupted
                text = json.dumps(data, indent=1)
            elif key == "junit":
                from .junit import to_junit

                text = to_junit(report, interrupted=interrupted)
            else:
                from .html import to_html

                text = to_html(report, interrupted=interrupted)
            write_report(targets[key], text)
        except OSError as exc:
            message = f"diffcheck: cannot write the {label} report to {targets[key]!r}: {exc.strerror or exc}"
            print(message, file=sys.stderr)
            failed.append(REPORT_ERROR)
        except Exception as exc:  # noqa: BLE001 - a rendering bug loses that report only
            from ._options import raise_internal_errors

            if raise_internal_errors():
                raise
            traceback.print_exc()
            print(
                f"diffcheck: internal error: the {label} report could not be rendered: {type(exc).__name__}: {exc} "
                "— this is a bug in diffcheck",
                file=sys.stderr,
            )
            failed.append(INTERNAL_ERROR)
    return failed


_METHOD_ORDER = ("symbolic", "autodiff", "autodiff_forward", "finite_difference", "complex_step")  # then any other


def _check(args) -> int:
    from . import formula, parallel, terminal

    parsed = formula.parse(args.formula)  # refused here, before anything is built from it
    point = formula.parse_point(args.at, parsed.variables)
    wrt = formula.check_wrt(parsed, args.wrt)
    targets = _report_targets(args)
    cache = _compilation_cache(args)
    if args.html:
        from .html import require_matplotlib

        require_matplotlib()
    target = parallel.FormulaId(args.formula, tuple(point.items()), wrt, args.order)
    options = dict(dtype=args.dtype, points=0, timeout=args.timeout, strict=args.strict, precision=args.precision)
    report, interrupted = None, None
    with parallel.Pool(1, cache=cache, memory=args.max_memory, timeout=args.timeout) as pool:
        try:
            for event in pool.run([parallel.Task(target, options, 1)]):
                if event.kind == "done":
                    if event.usage_error:
                        raise formula.FormulaError(event.usage_error)
                    report = event.report
        except KeyboardInterrupt as exc:
            interrupted = exc
    if report is None:
        from ._records import Report

        report = Report()
    out = terminal.console(sys.stderr if _to_stdout(targets) else None)
    terminal.show(report, out)
    for element in (e for p in report.points for e in p.elements):
        rank = {m: i for i, m in enumerate(_METHOD_ORDER)}
        values = sorted(element.values.items(), key=lambda item: rank.get(item[0], len(rank)))
        name = element.name if element.via else f"∂/∂{element.name}"
        out.print(f"{name}: " + ", ".join(f"{m} {v:.17g}" for m, v in values), markup=False, soft_wrap=True)
    failed = _write_reports(targets, report, interrupted=interrupted is not None)
    if interrupted is not None:
        raise interrupted
    if failed:
        return INTERNAL_ERROR if INTERNAL_ERROR in failed else REPORT_ERROR

    return OK if report.ok else MISMATCH


def write_report(path, text: str) -> None:
    """Writes a report: "-" to standard output; a character device or FIFO written through (never
    replaced by a file); else atomically (`write_atomic`), through a symlink to its target."""
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or _fd_link(path)):
        flags = os.O_WRONLY | (os.O_NONBLOCK if stat.S_ISFIFO(mode) else 0) | (os.O_APPEND if _fd_link(path) else 0)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a FIFO nobody reads: writing would block the run forever
                raise OSError(exc.errno, "no process is reading this FIFO") from None
            raise
        os.set_blocking(fd, True)
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        return
    if mode is not None and not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file, a character device or a FIFO")
    real = Path(os.path.realpath(path))  # a symlink: its target is replaced, the link kept
    write_atomic(real, text, mode=None if mode is None else stat.S_IMODE(mode))


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Writes the whole file or nothing: a temporary file in the same folder, then a rename.
    `mode`: the permissions to keep (an existing file's); default, an ordinary file's (umask)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        os.chmod(tmp, (0o666 & ~_umask()) if mode is None else mode)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
