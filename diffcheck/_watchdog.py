"""Preemption: a phase of a check that runs past its deadline is interrupted from outside.

The symbolic method watches its own budget, but a user's function that sleeps or loops, one SymPy
operation that never returns to the budget, or JAX tracing a huge program cannot be asked to stop.
`deadline` raises `Preempted` in the checking thread once its time is up: from a SIGALRM handler in
the main thread (it interrupts a sleep too), or, elsewhere or where SIGALRM is someone else's (the
user's handler, pytest-timeout's), from a timer thread by `PyThreadState_SetAsyncExc` (it interrupts
Python code, not a sleep in C). Neither reaches inside C: XLA compiling, or a C extension spinning,
is stopped only by killing its process, which the worker pool of `parallel` does.

`phase` says where a stack was, from its frames, for "timed out … in XLA compilation (…)".
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import signal
import threading
import traceback
from pathlib import Path

#: Seconds a phase may run past its budget (`--timeout`) before it is preempted: cooperation (the
#: symbolic method's own budget) gets the first chance to stop cleanly.
GRACE = 5.0
#: After the first interruption, again every this many seconds: user code that swallows it with
#: `except BaseException` is interrupted again.
REPEAT = 1.0


class Preempted(BaseException):
    """Raised in the checking thread past a deadline. A BaseException: `except Exception` in the
    user's code, SymPy's or JAX's does not swallow it."""


@contextlib.contextmanager
def deadline(seconds: float | None):
    """Raises `Preempted` in this thread once `seconds` have passed (None or inf: never)."""
    if seconds is None or not math.isfinite(seconds):
        yield
        return
    seconds = max(float(seconds), 1e-3)
    if _signal_is_free():
        with _by_signal(seconds):
            yield
    else:
        with _by_thread(seconds):
            yield


def _signal_is_free() -> bool:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return False
    return signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None) and signal.getitimer(signal.ITIMER_REAL) == (
        0.0,
        0.0,
    )


@contextlib.contextmanager
def _by_signal(seconds):
    armed = [True]

    def handler(signum, frame):
        if armed[0]:
            raise Preempted()

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT)
    try:
        yield
    finally:
        armed[0] = False  # a signal from here on does nothing
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _by_thread(seconds):
    target = ctypes.c_ulong(threading.get_ident())
    lock, stop, state = threading.Lock(), threading.Event(), {"armed": True, "fired": False}

    def watch():
        wait = seconds
        while not stop.wait(wait):
            with lock:
                if not state["armed"]:
                    return
                ctypes.pythonapi.PyThreadState_SetAsyncExc(target, ctypes.py_object(Preempted))
                state["fired"] = True
            wait = REPEAT

    watcher = threading.Thread(target=watch, name="diffcheck-watchdog", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        with lock:
            state["armed"] = False
            if state["fired"]:  # one still pending must not surface in the caller's code
                ctypes.pythonapi.PyThreadState_SetAsyncExc(target, None)
        stop.set()


# Where a stack was, innermost frame first: the first rule that matches names the phase.
PHASES = (
    ("/sympy/", "the symbolic method (SymPy)"),
    ("/mpmath/", "the symbolic method (high-precision evaluation)"),
    ("diffcheck/_translate.py", "the symbolic method (translating the jaxpr to SymPy)"),
    ("diffcheck/_rules.py", "the symbolic method (translating the jaxpr to SymPy)"),
    ("diffcheck/_graph.py", "the symbolic method (exact evaluation)"),
    ("diffcheck/_nodes.py", "the symbolic method (exact evaluation)"),
    ("diffcheck/_exact.py", "the symbolic method (exact evaluation)"),
    ("jax/_src/compiler.py", "XLA compilation"),
    ("jax/_src/interpreters/pxla.py", "XLA compilation"),
    ("diffcheck/_finite.py", "finite differences"),
    ("diffcheck/_autodiff.py", "autodiff"),
    ("diffcheck/_numeric.py", "autodiff"),
    ("diffcheck/_compare.py", "the comparison"),
    ("/jax/", "JAX (tracing or running the function)"),
    ("diffcheck/case.py", "loading the case"),
)


def phase(frames) -> str:
    """ ", in <phase> (file:line in fn)" from (path, line, function) frames, innermost first; ""
    when they do not tell."""
    package = str(Path(__file__).resolve().parent)
    for path, line, fn in frames:
        own = path.startswith(package) or "site-packages" in path or "/lib/python" in path
        typed = path in ("<string>", "<stdin>") or path.startswith("<ipython-input")  # python -c, a notebook
        if typed or (not own and not path.startswith("<")):
            return f", in the case's own code ({path}:{line} in {fn})"
        for needle, name in PHASES:
            if needle in path:
                return f", in {name} ({Path(path).name}:{line} in {fn})"
    return ""


def phase_of(exc: BaseException) -> str:
    """The phase a `Preempted` interrupted, from its traceback."""
    frames = [(f.filename, f.lineno, f.name) for f in traceback.extract_tb(exc.__traceback__)]
    return phase(reversed(frames))
