"""Many cases at once: in worker processes (`jobs`), on any `concurrent.futures.Executor`, or on a
Dask cluster (`scheduler`).

Workers receive case *identifiers* — the case's name and the module or file that defines it —
never compiled functions: each worker loads the case itself (JAX programs and SymPy expressions
stay in the process that made them), checks it, and sends back its `Report`, which is plain data.
Results come back in the order of the cases, so a parallel run reports exactly what a serial run
does (timings aside).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import importlib
import multiprocessing
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from ._records import Report
from .case import Case, collect_cases
from .errors import CaseError, UsageError


class CaseId(NamedTuple):
    """Where a worker finds a case: its name and the module (the built-in library) or the file
    that defines it. A file must be readable at the same path on the worker (a shared disk)."""

    name: str
    module: str | None = None
    path: str | None = None

    @classmethod
    def of(cls, case: Case) -> CaseId | None:
        """The identifier of a case loaded from the library or a case file; None for one made in code."""
        if not case.source:
            return None
        source = Path(case.source).resolve()
        if source.parent == _library_folder():
            return cls(case.name, module=f"diffcheck.cases.{source.stem}")
        return cls(case.name, path=str(source))

    def load(self) -> Case:
        cases = _module_cases(self.module) if self.module else _file_cases(self.path)
        if self.name not in cases:
            where = self.module or self.path
            raise CaseError(f"case {self.name!r} not found in {where} (on worker {os.getpid()})")
        return cases[self.name]


def _library_folder() -> Path:
    import diffcheck.cases

    return Path(diffcheck.cases.__path__[0]).resolve()


def _module_cases(module: str) -> dict:
    return {v.name: v for v in vars(importlib.import_module(module)).values() if isinstance(v, Case)}


@functools.cache
def _file_cases(path: str) -> dict:
    """The cases of a case file, loaded once per worker process."""
    cases, errors = collect_cases(path)
    if errors:
        raise CaseError("\n".join(errors))
    return {c.name: c for c in cases}


def check_one(target, options: dict) -> Report:
    """Loads (from a `CaseId`) and checks one case; runs in the worker. A case that cannot be
    loaded becomes the report's error, never an exception: one broken case must not stop the rest."""
    from ._api import check_case

    try:
        case = target.load() if isinstance(target, CaseId) else target
    except Exception as exc:  # noqa: BLE001
        return Report(errors=(f"case {target.name!r}: cannot load it on the worker: {type(exc).__name__}: {exc}",))
    return check_case(case, **options)


def run_cases(
    cases: Iterable[Case], *, jobs: int | None = None, executor=None, scheduler: str | None = None, **options
) -> Iterator[tuple[Case, Report]]:
    """Checks each case with `check_case(case, **options)` and yields (case, report) in case order.

    Args:
        cases: the cases (from the library, case files, or made in code).
        jobs: run in this many worker processes (the spawn start method: JAX is not fork-safe).
        executor: any `concurrent.futures.Executor` (a thread pool, a process pool, Dask's
            `client.get_executor()`, …); left running afterwards.
        scheduler: the address of a Dask distributed scheduler (needs `diffcheck[distributed]`).
        **options: `check_case`'s options (dtype, device, points, seed, order, rtol, atol, timeout).

    Give at most one of jobs, executor and scheduler; none (or jobs=1) checks in this process.
    Cases loaded from the library or a file travel as a `CaseId`; a case made in code travels as
    itself, which only an executor that can pickle its functions (threads, Dask) can take.
    """
    cases = list(cases)
    if sum(x is not None for x in (executor, scheduler)) + (jobs is not None and jobs != 1) > 1:
        raise UsageError("give at most one of jobs, executor and scheduler")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise UsageError(f"jobs must be a whole number of at least 1, got {jobs!r}")
    if executor is None and scheduler is None and (jobs is None or jobs == 1):
        for case in cases:
            yield case, check_one(case, options)
        return
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(_dask(scheduler) if scheduler else _processes(jobs))
        futures = []
        try:
            for case in cases:
                futures.append(executor.submit(check_one, CaseId.of(case) or case, options))
            for case, future in zip(cases, futures):
                yield case, _result(case, future)
        finally:
            for future in futures:
                future.cancel()


def check_cases(cases: Iterable[Case], **options) -> Report:
    """`run_cases`, its reports added up in case order."""
    report = Report()
    for _, one in run_cases(cases, **options):
        report = report + one
    return report


def _result(case: Case, future) -> Report:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a worker that died, a case that cannot be pickled
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return Report(errors=(f"case {case.name!r}: the worker failed: {message}",))


@contextlib.contextmanager
def _processes(jobs: int):
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),  # JAX's threads do not survive a fork
        initializer=_start_worker,
        initargs=(
            os.environ.get("JAX_COMPILATION_CACHE_DIR"),
            _bound(os.environ.get("JAX_COMPILATION_CACHE_MAX_SIZE")),
        ),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(cache_dir, max_bytes):
    """The parent's compilation cache, same folder and bound (JAX's bound needs every writer to keep it)."""
    if cache_dir:
        try:
            enable_compilation_cache(cache_dir, max_bytes)
        except OSError:  # the parent has warned about the folder; an initializer that raises breaks the pool
            pass


@contextlib.contextmanager
def _dask(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(
            "--scheduler needs Dask's distributed scheduler: pip install 'diffcheck[distributed]'"
        ) from None
    try:
        client = Client(address, timeout=30)
    except OSError as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from None
    try:
        yield client.get_executor(pure=False)  # a case run twice is checked twice
    finally:
        client.close()


# The bound on diffcheck's own cache folder, past which JAX deletes the least recently used
# programs: generous, as one case's programs take a few hundred KB (simple_net: 250 KB).
CACHE_MAX_BYTES = 2**28


def default_compilation_cache() -> tuple[Path, int | None]:
    """The command line's compilation cache: (folder, bound in bytes or None).

    `$DIFFCHECK_CACHE_DIR`, else `$JAX_COMPILATION_CACHE_DIR`, else `<user cache folder>/diffcheck/jax`
    (platformdirs: ~/.cache/diffcheck/jax on Linux). diffcheck's own folders are bounded to
    `CACHE_MAX_BYTES`; JAX's folder has JAX's bound (`$JAX_COMPILATION_CACHE_MAX_SIZE`, none by
    default), since other JAX programs may write to it and the bound only works when every writer keeps it.
    """
    if folder := os.environ.get("DIFFCHECK_CACHE_DIR"):
        return Path(folder), CACHE_MAX_BYTES
    if folder := os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(folder), _bound(os.environ.get("JAX_COMPILATION_CACHE_MAX_SIZE"))
    import platformdirs

    return Path(platformdirs.user_cache_dir("diffcheck")) / "jax", CACHE_MAX_BYTES


def enable_compilation_cache(folder, max_bytes: int | None = None) -> None:
    """Keeps JAX's compiled programs in `folder` across processes (JAX's persistent compilation
    cache), so that a second run of the same cases skips XLA compilation. Every program is kept,
    however quick to compile: a check compiles many small ones.

    This changes JAX's configuration for the whole process (and for the worker processes that
    `run_cases` starts from it); `check_grad` and the other checks never call it themselves.
    The command line calls it on `default_compilation_cache()` unless given `--no-cache`.

    Args:
        folder: the folder, made if missing. Compiled programs are trusted code: keep it private.
        max_bytes: past this size JAX deletes the least recently used programs. Default None: no
            bound. Bound only a folder that no unbounded process writes to; a folder that already
            holds programs written without a bound stays unbounded.

    Raises:
        OSError: the folder cannot be made or written to; the cache is then left as it was.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):  # writable? JAX itself would warn once per program
        pass
    if max_bytes is not None and any(_unbounded_entries(folder)):
        max_bytes = None  # JAX's eviction reads every entry's access time: it would fail, and every write with it
    # In the environment too: inherited by worker processes.
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(folder)
    os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(-1 if max_bytes is None else max_bytes)
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_compilation_cache_max_size", -1 if max_bytes is None else max_bytes)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()  # JAX opens its cache once per process: reopen it here


def _unbounded_entries(folder: Path):
    """Programs written without a bound: JAX's "<key>-cache" files lacking their "<key>-atime"."""
    for entry in folder.glob("*-cache"):
        if not entry.with_name(entry.name.removesuffix("-cache") + "-atime").exists():
            yield entry


def _bound(max_size: str | None) -> int | None:
    """JAX's cache bound as its environment variable gives it: -1 (or nothing) is no bound."""
    return int(max_size) if max_size and int(max_size) >= 0 else None


def disable_compilation_cache() -> None:
    """Turns JAX's persistent compilation cache off in this process and its future worker processes,
    even where `$JAX_COMPILATION_CACHE_DIR` is set."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
