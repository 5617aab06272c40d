"""Worker processes: one fresh interpreter per worker, started as multiprocessing's spawn starts
one and running a target function, its pipe, its stack dumped on demand, its memory read.

`parallel.Pool` hands cases to them and watches them, and `parallel._worker_main` is the loop they
run; this module knows nothing of cases.
"""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import multiprocessing.spawn
import multiprocessing.util
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ._watchdog import phase


def default_memory(jobs: int) -> int:
    """The default memory budget per worker: half the machine's memory shared among the workers."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return max(2**30, total // 2 // max(jobs, 1))


def rss(pid: int) -> int:
    """Resident memory of a process in bytes (0 where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# A worker's first lines: the parent's interpreter state (`multiprocessing.spawn.prepare`), then
# its target, `module:function`, called with the pipe and the arguments sent after the state.
_BOOT = (
    "import importlib, sys; from multiprocessing.connection import Connection; "
    "from multiprocessing.spawn import prepare; conn = Connection(int(sys.argv[1])); "
    "module, function = sys.argv[2].split(':'); prepare(conn.recv()); "  # prepare sets the parent's sys.argv
    "getattr(importlib.import_module(module), function)(conn, *conn.recv())"
)


class Spawned:
    """A fresh interpreter running `target(conn, *args)`, started as multiprocessing's spawn starts one (the
    parent's executable, interpreter flags, sys.path, folders and main module) but without the
    resource tracker spawn starts beside it: a third interpreter's start-up on every run, for
    semaphores and shared memory no worker uses. The parts of `multiprocessing.Process` the pool
    uses: pid, sentinel (readable once the process has ended), is_alive, join, exitcode, terminate, kill."""

    def __init__(self, target: str, args: tuple, name: str):
        ours, theirs = socket.socketpair()
        self.sentinel, held = os.pipe()  # the child holds the write end until it ends
        command = [
            multiprocessing.spawn.get_executable(),
            *multiprocessing.util._args_from_interpreter_flags(),  # as spawn's own command line
            "-c",
            _BOOT,
            str(theirs.fileno()),
            target,
        ]
        try:
            self._popen = subprocess.Popen(command, pass_fds=(theirs.fileno(), held), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
            os.close(held)
        self.pid = self._popen.pid
        self.conn = multiprocessing.connection.Connection(ours.detach())
        state = multiprocessing.spawn.get_preparation_data(name)
        state["authkey"] = bytes(state["authkey"])  # pickled as bytes (spawn itself pickles it by a permit)
        self.conn.send(state)
        self.conn.send(args)

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()  # negative: the signal that ended it, as multiprocessing says

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._popen.terminate()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.sentinel)


class Worker:
    """One spawned worker process running `target` ("module:function", called with its pipe, the
    file its stack is dumped to and `args`), its pipe, and that file."""

    def __init__(self, target: str, *args):
        fd, self.stack_file = tempfile.mkstemp(prefix="diffcheck-worker-", suffix=".txt")
        os.close(fd)
        self.process = Spawned(target, (self.stack_file, *args), name="diffcheck-worker")
        self.conn = self.process.conn
        self.task = None  # index of the task it is checking
        self.deadline = None  # monotonic time it must be done by, once the case is loaded
        self.started = self.loaded = None

    def stack(self, signal_first: bool) -> str:
        """The worker's Python stack, from faulthandler: asked for (SIGUSR1) or left by a crash."""
        if signal_first and self.process.is_alive():
            with contextlib.suppress(OSError, AttributeError):
                os.kill(self.process.pid, signal.SIGUSR1)
                time.sleep(0.3)
        try:
            return Path(self.stack_file).read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(1.0)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5.0)
        self.process.close()
        with contextlib.suppress(OSError):
            self.conn.close()
        with contextlib.suppress(OSError):
            os.unlink(self.stack_file)


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<fn>\S+)')


def stack_phase(dump: str) -> str:
    """ ", in <phase> (at file:line in fn)" from a faulthandler dump (most recent call first), or ""."""
    return phase([(m["file"], m["line"], m["fn"]) for m in _FRAME.finditer(dump)])


def die_with_parent() -> None:
    """Linux: the kernel kills this worker when its parent dies, even one killed by SIGKILL, even
    while the worker is stuck in C code: no orphans left at 100% CPU."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
