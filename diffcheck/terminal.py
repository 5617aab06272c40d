"""The terminal: a report as a rich table, a progress bar, colour only where someone can see it.

`str(report)` stays the plain rendering (logs, doctests, `print` in a script); this module is what
`python -m diffcheck run` shows.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

import rich.progress
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ._records import Report

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
    """Prints the table, the failures in the one failure format, the warnings (kinks, avoidable
    precision loss) and the summary line."""
    out = console() if out is None else out
    if report.points:
        out.print(table(report))
        out.print()
    problems = report.failures(limit=limit)
    for line in problems:
        out.print(Text(line, style="red"), soft_wrap=True)
    if problems:
        out.print()
    for warnings in (report.kink_warnings(), report.precision_warnings()):
        for line in warnings:
            out.print(Text(line, style="yellow"), soft_wrap=True)
        if warnings:
            out.print()
    style = "bold green" if report.ok and report.points else "bold red"
    out.print(Text(report.summary(), style=style), soft_wrap=True)


class Progress:
    """Where a run is: `start(label)` as an item (a case) begins, `done(label)` as it ends.

    On a terminal, a rich progress bar on `stream` (items done of `total`, what runs, time elapsed)
    that appears once the run has lasted `delay` seconds and is erased at the end. Elsewhere (a pipe,
    a CI log), one line per item, "[i/total] label" as it starts, or "[i/total] label done" when it
    was never announced as started (items finishing in worker processes, in any order).
    """

    def __init__(self, total: int, stream=None, *, delay: float = PROGRESS_DELAY):
        self.total, self.finished = total, 0
        self._stream = sys.stderr if stream is None else stream
        self._started: set = set()
        self._bar = None
        if _isatty(self._stream):
            self._bar = _progress_bar(self._stream)
            self._task = self._bar.add_task("", total=total)
            self._lock = threading.Lock()
            self._closed = False
            self._timer = threading.Timer(delay, self._show)
            self._timer.daemon = True
            self._timer.start()

    def start(self, label: str) -> None:
        self._started.add(label)
        if self._bar is not None:
            self._bar.update(self._task, description=label)
        else:
            self._line(f"[{self.finished + 1}/{self.total}] {label}")

    def done(self, label: str) -> None:
        self.finished += 1
        if self._bar is not None:
            done = {} if label in self._started else {"description": f"{label} done"}
            self._bar.update(self._task, completed=self.finished, **done)
        elif label not in self._started:
            self._line(f"[{self.finished}/{self.total}] {label} done")

    def close(self) -> None:
        if self._bar is not None:
            self._timer.cancel()
            with self._lock:
                self._closed = True
                if self._bar.live.is_started:
                    self._bar.stop()

    def _line(self, text: str) -> None:
        print(text, file=self._stream, flush=True)

    def _show(self):  # on the timer's thread; close() may be running on the main one
        with self._lock:
            if not self._closed:
                self._bar.start()


def _progress_bar(stream) -> rich.progress.Progress:
    return rich.progress.Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=stream, force_terminal=True, no_color=not wants_colour(stream), highlight=False),
        transient=True,
    )


@contextmanager
def progress(total: int, stream=None, *, delay: float = PROGRESS_DELAY):
    """A `Progress` of `total` items, closed (its bar erased) however the block ends, Ctrl-C included."""
    tracker = Progress(total, stream, delay=delay)
    try:
        yield tracker
    finally:
        tracker.close()
