"""Many cases at once: in worker processes (`jobs`), on any `concurrent.futures.Executor`, or on a
Dask cluster (`scheduler`).

Workers receive case *identifiers* — the case's name and the module or file that defines it —
never compiled functions: each worker loads the case itself (JAX programs and SymPy expressions
stay in the process that made them), checks it, and sends back its `Report`, which is plain data.
Results come back in the order of the cases, so a parallel run reports exactly what a serial run
does (timings aside).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ._cache import disable_compilation_cache, enable_compilation_cache
from ._watchdog import GRACE as PREEMPT_GRACE
from ._workers import Worker, default_memory, die_with_parent, rss, stack_phase
from .errors import CaseError, UsageError

if TYPE_CHECKING:
    from ._records import Report
    from .case import Case

# This module imports neither NumPy nor the case machinery at its top (`_records`, `case`): the
# command line starts its workers first, and imports them while the workers import JAX.


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
    from .case import Case

    return {v.name: v for v in vars(importlib.import_module(module)).values() if isinstance(v, Case)}


@functools.cache
def _file_cases(path: str) -> dict:
    """The cases of a case file, loaded once per worker process."""
    from .case import collect_cases

    cases, errors = collect_cases(path)
    if errors:
        raise CaseError("\n".join(errors))
    return {c.name: c for c in cases}


class FormulaId(NamedTuple):
    """A formula checked in a worker (`python -m diffcheck check`): rebuilt there from its text."""

    text: str
    at: tuple  # ((name, value), …)
    wrt: tuple | None = None
    order: int = 1
    name: str = "formula"

    def load(self) -> Case:
        from . import formula

        return formula.case(self.text, dict(self.at), wrt=self.wrt, order=self.order)


class CaseInfo(NamedTuple):
    """What the command line needs to know of a case loaded in a worker: to select, list and bound it."""

    name: str
    tags: tuple
    description: str
    source: str
    id: CaseId | None
    named: int  # named points
    sampled: bool  # has a sampler (random points)
    orders: tuple

    @classmethod
    def of(cls, case: Case) -> CaseInfo:
        return cls(
            case.name,
            case.tags,
            case.description,
            case.source,
            CaseId.of(case),
            len(case.points),
            case.sample is not None,
            case.orders,
        )

    def point_checks(self, points: int, order: int | None = None) -> int:
        count = self.named + (points if self.sampled else 0)
        return count * (1 if order is not None else len(self.orders))


def _case_error(name: str, what: str, options: dict | None = None) -> Report:
    """A case that could not be checked at all (it crashed, exited, timed out, …): one point
    named `CASE_POINT`, with the error, so that it shows in the table, the JSON and JUnit like any
    point that could not be checked."""
    from ._records import PointResult, Report

    options = options or {}
    point = PointResult(
        str(name),
        CASE_POINT,
        str(options.get("dtype") or "float64"),
        str(options.get("device") or "default"),
        {},
        error=what,
    )
    return Report((point,))


#: The point name of a case's error when the case could not be checked at all.
CASE_POINT = "(case)"


def _exit_message(exc: SystemExit) -> str:
    return f"the case called sys.exit({exc.code!r}) while being checked; a case must not exit"


def check_one(target, options: dict) -> Report:
    """Loads (from a `CaseId`) and checks one case. A case that cannot be loaded, raises, or exits
    becomes the report's error, never an exception: one broken case must not stop the rest."""
    report, _ = _check_one(target, options)
    return report


def _check_one(target, options: dict, loaded=None, in_worker: bool = False) -> tuple[Report, str | None]:
    """(report, usage error message or None); `loaded()` is called once the case is loaded.
    In a worker (which ignores SIGINT) a KeyboardInterrupt can only come from the case itself."""
    from ._api import check_case
    from ._options import raise_internal_errors
    from ._records import Report

    name = getattr(target, "name", "?")
    try:
        case = target.load() if isinstance(target, (CaseId, FormulaId)) else target
    except UsageError as exc:  # a formula refused (its SymPy form folds to a huge constant, …)
        return Report(), str(exc)
    except KeyboardInterrupt:
        if not in_worker:
            raise
        return _case_error(name, "cannot load it: it raised KeyboardInterrupt", options), None
    except SystemExit as exc:
        return _case_error(name, f"cannot load it: {_exit_message(exc)}", options), None
    except BaseException as exc:  # noqa: BLE001
        return _case_error(name, f"cannot load it on the worker: {type(exc).__name__}: {exc}", options), None
    if loaded is not None:
        loaded()
    try:
        return check_case(case, **options), None
    except KeyboardInterrupt:
        if not in_worker:
            raise
        return _case_error(name, "the case raised KeyboardInterrupt", options), None
    except UsageError as exc:
        return _case_error(name, f"{exc}", options), None
    except SystemExit as exc:
        return _case_error(name, _exit_message(exc), options), None
    except BaseException as exc:  # noqa: BLE001 - a malformed case, a bug: this case's error
        if raise_internal_errors():
            raise
        message = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        return _case_error(name, f"checking it failed: {message}", options), None


def run_cases(
    cases: Iterable[Case], *, jobs: int | None = None, executor=None, scheduler: str | None = None, **options
) -> Iterator[tuple[Case, Report]]:
    """Checks each case with `check_case(case, **options)` and yields (case, report) in case order.

    Args:
        cases: the cases (from the library, case files, or made in code).
        jobs: run in this many worker processes (the spawn start method: JAX is not fork-safe).
            A worker that crashes, exits or runs past the time or memory budget costs only the
            case it was checking (named in the report's errors); it is replaced for the others.
        executor: any `concurrent.futures.Executor` (a thread pool, a process pool, Dask's
            `client.get_executor()`, …); left running afterwards.
        scheduler: the address of a Dask distributed scheduler (needs `diffcheck[distributed]`).
        **options: `check_case`'s options (dtype, device, points, seed, order, rtol, atol, timeout).
            In worker processes `timeout` also bounds each case by preemption: a case running past
            its budget (`timeout` plus grace per point check, plus `GRACE`) is killed.

    Give at most one of jobs, executor and scheduler; none checks in this process (a case that
    raises or calls `sys.exit` is still that case's error, but a crash or hang is not contained).
    Cases loaded from the library or a file travel as a `CaseId`; a case made in code travels as
    itself, which only an executor that can pickle its functions (threads, Dask) can take.
    """
    from . import _options

    cases = list(cases)
    if sum(x is not None for x in (executor, scheduler)) + (jobs is not None and jobs != 1) > 1:
        raise UsageError("give at most one of jobs, executor and scheduler")
    _options.jobs(jobs)
    _options.scheduler(scheduler)
    if executor is None and scheduler is None and jobs is None:
        for case in cases:
            yield case, check_one(case, options)
        return
    if jobs is not None:
        tasks = [Task(CaseId.of(case) or case, options, _point_checks(case, options)) for case in cases]
        with Pool(jobs, cache=_inherited_cache()) as pool:
            done = {}
            results = pool.run(tasks)
            for i, case in enumerate(cases):
                while i not in done:
                    event = next(results)
                    if event.kind == "done":
                        done[event.index] = event.report
                yield case, done.pop(i)
        return
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(_dask(scheduler))
        futures = []
        try:
            for case in cases:
                futures.append(executor.submit(check_one, CaseId.of(case) or case, options))
            for case, future in zip(cases, futures):
                yield case, _result(case, future)
        finally:
            for future in futures:
                future.cancel()


def _point_checks(case, options) -> int:
    from ._api import DEFAULT_POINTS

    points = options.get("points")
    return case.point_checks(DEFAULT_POINTS if points is None else points, options.get("order"))


def check_cases(cases: Iterable[Case], **options) -> Report:
    """`run_cases`, its reports added up in case order."""
    from ._records import Report

    report = Report()
    for _, one in run_cases(cases, **options):
        report = report + one
    return report


def _result(case: Case, future) -> Report:
    from ._records import Report

    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a worker that died, a case that cannot be pickled
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return Report(errors=(f"case {case.name!r}: the worker failed: {message}",))


# --- worker processes ---------------------------------------------------------------------------

#: Seconds a case may run past its budget (`_case_budget`) before it is killed.
GRACE = 5.0


def _case_budget(timeout: float, checks: int) -> float:
    """Seconds a case may run before its worker is killed. Inside, each point is preempted past
    `timeout` plus `_watchdog.GRACE` (`_pipeline.check_point`); the kill is for what preemption
    cannot reach (C code: XLA compiling, a C extension) and for the case's own code between points."""
    return (timeout + PREEMPT_GRACE) * max(checks, 1) + GRACE


#: What each worker process runs (`_workers.Worker`).
_WORKER = "diffcheck.parallel:_worker_main"

#: How often the parent looks at its workers (memory, deadlines), in seconds.
POLL = 0.2


class Task(NamedTuple):
    """One case for a worker: what to load, `check_case`'s options, and how many point checks it makes."""

    target: object  # CaseId, FormulaId, or a picklable Case
    options: dict
    checks: int = 1


class Event(NamedTuple):
    """What `Pool.run` yields: "start" as a task is handed to a worker, "done" with its report."""

    kind: str
    index: int
    report: Report | None = None
    usage_error: str | None = None


class Pool:
    """`jobs` spawned worker processes that check one case at a time each.

    A worker that dies (a crash, `os._exit`), or is killed for running past its time budget or the
    memory budget, costs only the case it was checking: that case gets an error naming what
    happened and, when the stack tells, the phase; the worker is replaced for the rest. Closing the
    pool (or leaving its `with` block, Ctrl-C included) ends every worker.
    """

    def __init__(self, jobs: int = 1, *, cache=None, memory: int | None = None, timeout: float | None = None):
        self.jobs = jobs
        self.cache = cache  # (folder, max_bytes) for the workers' compilation cache, or None
        self.memory = default_memory(jobs) if memory is None else memory
        self.timeout = timeout
        self._workers: list[Worker] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Ends every worker: asked to stop when idle, killed when busy (a hung case)."""
        for worker in self._workers:
            if worker.task is None and worker.process.is_alive():
                with contextlib.suppress(OSError, BrokenPipeError):
                    worker.conn.send(None)
        for worker in self._workers:
            if worker.task is None:
                worker.process.join(2.0)
            worker.kill()
        self._workers = []

    def start(self) -> None:
        """Starts the workers now, so that their imports overlap with the caller's own work."""
        while len(self._workers) < self.jobs:
            self._workers.append(Worker(_WORKER, self.cache, self.memory))

    def _replace(self, worker: Worker) -> None:
        worker.kill()
        self._workers[self._workers.index(worker)] = Worker(_WORKER, self.cache, self.memory)

    # -- loading cases in a worker (the command line imports no case file itself) --

    def collect(self, *paths) -> tuple[list[CaseInfo], list[str]]:
        """The cases of `paths` (none: the built-in library), loaded in a worker one file at a
        time: a file that crashes or exits its worker while being imported is that file's error."""
        from .case import duplicate_names, sources

        self.start()
        infos, errors = [], []
        for source in sources(*paths):
            worker = self._workers[0]
            limit = max(60.0, self.timeout or 0.0)
            reply, problem = self._ask(worker, ("collect", source), limit)
            if problem is not None:
                errors.append(f"{source}: cannot load {source}: {problem}")
                self._replace(worker)
                continue
            _, more, failed = reply
            infos += more
            errors += failed
        return infos, errors + duplicate_names(infos)

    def _ask(self, worker: Worker, message, limit: float):
        """Sends `message` and waits for one reply: (reply, None) or (None, what went wrong)."""
        try:
            worker.conn.send(message)
        except (OSError, BrokenPipeError):
            return None, self._death(worker)
        deadline = time.monotonic() + limit
        while True:
            ready = multiprocessing.connection.wait([worker.conn, worker.process.sentinel], timeout=POLL)
            if worker.conn in ready:
                try:
                    return worker.conn.recv(), None
                except (EOFError, OSError):
                    return None, self._death(worker)
            if worker.process.sentinel in ready:
                return None, self._death(worker)
            if time.monotonic() > deadline:
                phase = stack_phase(worker.stack(signal_first=True))
                return None, f"timed out after {limit:g} s{phase}"

    def _death(self, worker: Worker) -> str:
        worker.process.join(2.0)
        code = worker.process.exitcode
        phase = stack_phase(worker.stack(signal_first=False))
        if code is None:
            return f"the worker process stopped answering{phase}"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = " (out of memory? the system may have killed it)" if -code == signal.SIGKILL else ""
            return f"the worker process was killed by {name}{why}{phase}"
        return f"the worker process exited with code {code} (the case called os._exit or exit?){phase}"

    # -- checking cases --

    def run(self, tasks: list[Task]) -> Iterator[Event]:
        """Checks each task; yields Event("start", i) as a worker takes task i and Event("done", i,
        report) as it ends, in the order they end. Leaving the loop early (Ctrl-C) ends the workers."""
        self.start()
        pending = list(range(len(tasks)))[::-1]
        busy = 0
        try:
            while pending or busy:
                for worker in self._workers:
                    if worker.task is None and pending:
                        i = pending.pop()
                        try:
                            worker.conn.send(("check", i, tasks[i].target, tasks[i].options))
                        except (OSError, BrokenPipeError):
                            pending.append(i)
                            self._replace(worker)
                            continue
                        except Exception as exc:  # noqa: BLE001 - a case made in code cannot be pickled
                            message = f"{type(exc).__name__}: {exc}".splitlines()[0]
                            yield Event(
                                "done",
                                i,
                                _case_error(_name(tasks[i]), f"the worker failed: {message}", tasks[i].options),
                            )
                            continue
                        worker.task, worker.started, worker.deadline = i, time.monotonic(), None
                        busy += 1
                        yield Event("start", i)
                waits = [w.conn for w in self._workers if w.task is not None]
                waits += [w.process.sentinel for w in self._workers if w.task is not None]
                if not waits:
                    continue
                ready = set(multiprocessing.connection.wait(waits, timeout=POLL))
                for worker in list(self._workers):
                    if worker.task is None:
                        continue
                    event = self._poll(worker, tasks[worker.task], ready)
                    if event is not None:
                        busy -= 1
                        yield event
        finally:
            self.close()

    def _poll(self, worker: Worker, task: Task, ready) -> Event | None:
        """The worker's news: a report, a death, a deadline or the memory budget passed; or None."""
        i = worker.task
        if worker.conn in ready:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                message = None
            if message is not None and message[0] == "loaded":
                worker.loaded = time.monotonic()
                timeout = task.options.get("timeout", self.timeout)
                if timeout is not None and math.isfinite(timeout):
                    worker.deadline = time.monotonic() + _case_budget(timeout, task.checks)
                return None
            if message is not None and message[0] == "done":
                worker.task = None
                return Event("done", i, message[2], message[3])
        if worker.conn in ready or worker.process.sentinel in ready or not worker.process.is_alive():
            problem = self._death(worker)
            self._replace(worker)
            return Event("done", i, _case_error(_name(task), problem, task.options))
        if worker.deadline is not None and time.monotonic() > worker.deadline:
            timeout = task.options.get("timeout", self.timeout)
            phase = stack_phase(worker.stack(signal_first=True))
            seconds = time.monotonic() - worker.loaded
            budget = (
                f"{_case_budget(timeout, task.checks):g} s for {task.checks} point check(s) at --timeout {timeout:g} s"
            )
            self._replace(worker)
            message = f"timed out after {seconds:.0f} s ({budget}){phase}"
            return Event("done", i, _case_error(_name(task), message, task.options))
        used = rss(worker.process.pid)
        if self.memory and used > self.memory:
            phase = stack_phase(worker.stack(signal_first=True))
            self._replace(worker)
            over = f"{used / 2**30:.1f} GiB, over the budget of {self.memory / 2**30:.1f} GiB (--max-memory)"
            message = f"ran out of memory: its worker used {over}{phase}"
            return Event("done", i, _case_error(_name(task), message, task.options))
        return None


def _name(task: Task) -> str:
    return getattr(task.target, "name", "?")


def _inherited_cache():
    """The compilation cache the workers of `run_cases` use: this process's, from the environment."""
    from ._options import read_settings

    env = read_settings()  # as this process left it: enable_compilation_cache sets these variables
    return (str(env.jax_cache_dir), env.jax_cache_max_size) if env.jax_cache_dir else None


def _worker_main(conn, stack_file, cache, memory=None) -> None:
    """A worker's loop: ("collect", source) → ("collected", infos, errors); ("check", i, target,
    options) → ("loaded", i), then ("done", i, report, usage_error); None → exit."""
    import faulthandler

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    die_with_parent()
    parent = os.getppid()
    stack = open(stack_file, "w")  # noqa: SIM115 - open for the process's life
    faulthandler.enable(stack)
    faulthandler.register(signal.SIGUSR1, stack, all_threads=False)
    _start_worker(*(cache or (None, None)))
    if memory:  # the checks inside refuse a Jacobian that cannot fit the worker's budget, before the kill
        own = os.environ.get("DIFFCHECK_MAX_MEMORY")
        with contextlib.suppress(ValueError):
            memory = min(memory, float(own) * 2**30) if own else memory
        os.environ["DIFFCHECK_MAX_MEMORY"] = repr(memory / 2**30)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None or os.getppid() != parent:
            # Every result is sent: skip the interpreter's teardown (JAX's and XLA's take a second
            # or more of a short run's time, measured in docs/benchmarks.md "Cold start").
            with contextlib.suppress(OSError):
                sys.stdout.flush()
                sys.stderr.flush()
                stack.close()
            os._exit(0)
        if message[0] == "collect":
            from .case import load_source

            cases, errors = load_source(message[1])
            conn.send(("collected", [CaseInfo.of(c) for c in cases], errors))
        elif message[0] == "check":
            _, i, target, options = message
            report, usage = _check_one(target, options, loaded=lambda i=i: conn.send(("loaded", i)), in_worker=True)
            try:
                conn.send(("done", i, report, usage))
            except Exception as exc:  # noqa: BLE001 - a report that cannot be pickled
                why = f"its report cannot be sent: {exc}"
                conn.send(("done", i, _case_error(getattr(target, "name", "?"), why, options), None))


def _start_worker(cache_dir, max_bytes):
    """The parent's compilation cache, same folder and bound (JAX's bound needs every writer to keep it)."""
    if cache_dir:
        try:
            enable_compilation_cache(cache_dir, max_bytes)
        except OSError:  # the parent has warned about the folder
            pass
    else:
        with contextlib.suppress(Exception):
            disable_compilation_cache()


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
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError for a malformed address
        raise UsageError(f"cannot reach the Dask scheduler at {address!r}: {type(exc).__name__}: {exc}") from None
    try:
        yield client.get_executor(pure=False)  # a case run twice is checked twice
    finally:
        client.close()
