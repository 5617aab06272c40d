"""The terminal: a report as a rich table, a progress bar, colour only where someone can see it.

`str(report)` stays the plain rendering (logs, doctests, `print` in a script); this module is what
`python -m diffcheck run` shows.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .report import Report

VERDICT_STYLES = {"agree": "green", "mismatch": "bold red", "error": "bold magenta"}

#: Seconds a run must last before its progress bar appears, so quick runs print only their report.
PROGRESS_DELAY = 0.5

# Without a terminal there is no width to fit: keep table rows whole rather than folding them at 80.
_PIPE_WIDTH = 200


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def wants_colour(stream, environ=None) -> bool:
    """Colour on a terminal only. `NO_COLOR` (no-color.org) turns it off and wins over `FORCE_COLOR`,
    which turns it on where there is no terminal (CI logs that render ANSI); either counts when set
    to anything but the empty string."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    return _isatty(stream)


def console(stream=None) -> Console:
    """A rich console on `stream` (default stdout) that colours only when `wants_colour` says so."""
    stream = sys.stdout if stream is None else stream
    colour = wants_colour(stream)
    width = None if _isatty(stream) or os.environ.get("COLUMNS") else _PIPE_WIDTH
    return Console(
        file=stream,
        force_terminal=True if colour else None,
        no_color=not colour,
        color_system="auto" if colour else None,
        width=width,
        highlight=False,
        emoji=False,
    )


def table(report: Report) -> Table:
    """The report's table (`Report.columns` and `Report.rows`), verdicts coloured."""
    head = report.columns()
    grid = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for i, name in enumerate(head):
        # On a narrow terminal the names fold; numbers and verdicts are never cut.
        grid.add_column(name, justify="right" if 3 <= i < len(head) - 1 else "left", no_wrap=i > 1, overflow="fold")
    for row, point in zip(report.rows(), report.points):
        grid.add_row(*row[:-1], Text(row[-1], style=VERDICT_STYLES.get(point.status, "")))
    return grid


def show(report: Report, out: Console | None = None, *, limit: int = 20) -> None:
    """Prints the table, the failures in the one failure format, and the summary line."""
    out = console() if out is None else out
    if report.points:
        out.print(table(report))
        out.print()
    problems = report.failures(limit=limit)
    for line in problems:
        out.print(Text(line, style="red"), soft_wrap=True)
    if problems:
        out.print()
    style = "bold green" if report.ok and report.points else "bold red"
    out.print(Text(report.summary(), style=style), soft_wrap=True)


class _Bar:
    """A rich progress bar that appears only once the run has lasted `delay` seconds."""

    def __init__(self, total: int, stream, delay: float):
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream, force_terminal=True, no_color=not wants_colour(stream), highlight=False),
            transient=True,
        )
        self._task = self._progress.add_task("", total=total)
        self._lock = threading.Lock()
        self._shown = self._closed = False
        self._timer = threading.Timer(delay, self._show)
        self._timer.daemon = True
        self._timer.start()

    def _show(self):
        with self._lock:
            if not self._closed:
                self._progress.start()
                self._shown = True

    def step(self, done: int, label: str):
        self._progress.update(self._task, completed=done, description=label)

    def close(self):
        self._timer.cancel()
        with self._lock:
            self._closed = True
            if self._shown:
                self._progress.stop()


@contextmanager
def progress(total: int, stream=None, *, delay: float = PROGRESS_DELAY):
    """Yields `start(label)`, to call as each of `total` items (cases) begins.

    On a terminal it drives a progress bar on `stream` (default stderr) that appears after `delay`
    seconds and is erased at the end; elsewhere (a pipe, a CI log) each call prints one line,
    "[i/total] label", so a log still shows where a long run is.
    """
    stream = sys.stderr if stream is None else stream
    count = 0
    if not _isatty(stream):

        def start(label: str):
            nonlocal count
            count += 1
            print(f"[{count}/{total}] {label}", file=stream, flush=True)

        yield start
        return
    bar = _Bar(total, stream, delay)

    def start(label: str):
        nonlocal count
        bar.step(count, label)
        count += 1

    try:
        yield start
    finally:
        bar.close()
