"""diffcheck's pytest plugin, registered through the `pytest11` entry point.

* `diffcheck.assert_grad` in a test: on a mismatch pytest shows the test's line and the report's
  table and failures, not diffcheck's own frames.
* A test with a `diffcheck_case` argument runs once per case, selected by
  `@pytest.mark.diffcheck_cases(*paths, tag=..., name=...)` (default: the built-in library).
* `pytest --diffcheck` adds one test per built-in case (and collects case files, `cases.py`,
  `case_*.py`, `*_cases.py`, among the paths pytest searches); `--diffcheck-tag`,
  `--diffcheck-case`, `--diffcheck-points`, `--diffcheck-dtype` and `--diffcheck-strict-precision`
  select and tune them.

pytest loads this module in every run, so it imports nothing heavy: JAX and SymPy load when a case
is collected or run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .case import is_case_file

MARKER = "diffcheck_cases"
ARGUMENT = "diffcheck_case"


def pytest_addoption(parser):
    from . import _options

    group = parser.getgroup("diffcheck", "gradient checks (diffcheck)")
    group.addoption(
        "--diffcheck",
        action="store_true",
        help="run the built-in case library as tests, and the case files among the paths collected",
    )
    group.addoption("--diffcheck-tag", action="append", default=[], metavar="TAG", help="only cases with this tag")
    group.addoption("--diffcheck-case", action="append", default=[], metavar="NAME", help="only this case")
    group.addoption(
        "--diffcheck-points", type=_points, default=None, metavar="K", help="random points per case (default 2)"
    )
    group.addoption("--diffcheck-dtype", choices=_options.DTYPES, default=None, help="default float64")
    group.addoption(
        "--diffcheck-strict-precision",
        action="store_const",
        const="strict",
        default="warn",
        dest="diffcheck_precision",
        help="avoidable precision loss fails the case (default: a warning)",
    )


def _points(text: str) -> int:
    """--diffcheck-points, validated by diffcheck's one owner of the option."""
    import argparse

    from . import _options
    from .errors import UsageError

    try:
        return _options.parse_int(text, _options.points, name="points")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*paths, tag=None, name=None): run the test once per diffcheck case (argument "
        f"`{ARGUMENT}`), from case files or folders (default: the built-in library), by tag or name",
    )
    config.addinivalue_line("markers", "diffcheck: a case run as a test by `pytest --diffcheck`")


# --- parametrizing a user's test over cases ---------------------------------------------------


class _Unloadable:
    """What a `diffcheck_cases` marker could not give: one test that errors with the message,
    instead of a collection error that would stop every test of the module."""

    def __init__(self, message: str):
        self.message = message

    def __repr__(self) -> str:
        return "<diffcheck cases that did not load>"


@pytest.fixture
def diffcheck_case(request):
    """The case a test parametrized by `@pytest.mark.diffcheck_cases` runs with."""
    value = getattr(request, "param", None)
    if value is None:
        pytest.fail(f"the `{ARGUMENT}` argument needs @pytest.mark.{MARKER}(...) or the plugin's parametrization")
    if isinstance(value, _Unloadable):
        pytest.fail(value.message, pytrace=False)
    return value


def pytest_generate_tests(metafunc):
    if ARGUMENT not in metafunc.fixturenames:
        return
    where = f"{MARKER} on {metafunc.definition.nodeid}"
    try:
        cases, errors = _marked_cases(metafunc, where)
    except _MarkerError as exc:
        cases, errors = [], [str(exc)]
    params = [pytest.param(c, id=c.name) for c in cases]
    if errors:  # the cases that loaded still run; what did not is one error item
        params.append(pytest.param(_Unloadable(f"{where}: " + "\n".join(errors)), id="load-error"))
    metafunc.parametrize(ARGUMENT, params, indirect=True)


class _MarkerError(Exception):
    pass


def _marked_cases(metafunc, where):
    marker = metafunc.definition.get_closest_marker(MARKER)
    paths, tags, names = (), (), ()
    if marker is not None:
        unknown = set(marker.kwargs) - {"tag", "name"}
        if unknown:
            raise _MarkerError(f"{where}: unknown keyword(s) {', '.join(sorted(unknown))}; valid: tag, name")
        paths = tuple(Path(metafunc.definition.path).parent / p for p in marker.args)
        tags, names = _tuple(marker.kwargs.get("tag")), _tuple(marker.kwargs.get("name"))
    from .case import collect_cases
    from .errors import CaseError

    try:
        cases, errors = collect_cases(*paths)
    except CaseError as exc:  # a path that does not exist
        raise _MarkerError(f"{where}: {exc}") from None
    try:
        cases = _select(cases, tags, names, where=where)
    except _MarkerError:
        if errors:
            return [], errors
        raise
    return cases, errors


def _tuple(value) -> tuple:
    return () if value is None else (value,) if isinstance(value, str) else tuple(value)


def _select(cases, tags, names, where):
    known = {c.name for c in cases}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise _MarkerError(f"{where}: unknown case(s) {', '.join(unknown)}")
    selected = [c for c in cases if (not tags or set(tags) & set(c.tags)) and (not names or c.name in names)]
    if not selected:
        raise _MarkerError(f"{where}: no case has tag {' or '.join(tags)}" if tags else f"{where}: no cases")
    return selected


# --- the library and case files as tests ------------------------------------------------------


class CaseMismatch(AssertionError):
    """A case's derivatives disagree; carries the report."""

    def __init__(self, report):
        super().__init__(report.summary())
        self.report = report


class CaseItem(pytest.Item):
    """One case, checked at its named points and `--diffcheck-points` random ones."""

    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.add_marker("diffcheck")
        self.extra_keyword_matches.update(case.tags)  # -k selects by tag

    def runtest(self):
        from ._api import check_case

        options = self.config.option
        try:
            report = check_case(
                self.case,
                points=options.diffcheck_points,
                dtype=options.diffcheck_dtype,
                precision=options.diffcheck_precision,
            )
        except SystemExit as exc:  # the case's own failure, never the end of the test run
            pytest.fail(f"diffcheck case {self.case.name!r}: the case called sys.exit({exc.code!r})", pytrace=False)
        self.user_properties.append(("points", len(report.points)))
        self.user_properties.append(("summary", report.summary()))
        for line in report.precision_warnings(limit=sys.maxsize)[1:]:  # warnings, not failures
            self.user_properties.append(("precision warning", line))
        if not report.ok:
            raise CaseMismatch(report)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseMismatch):
            return (
                f"diffcheck case {self.case.name!r} ({self.case.source}): derivatives disagree\n{excinfo.value.report}"
            )
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return Path(self.case.source) if self.case.source else self.path, None, f"diffcheck case {self.case.name}"


class CaseFile(pytest.File):
    """A case file found among the paths pytest collects."""

    def collect(self):
        for case in _filtered(_load(self, self.path), self.config.option):
            yield CaseItem.from_parent(self, name=case.name, case=case)


class Library(pytest.Collector):
    """The built-in case library."""

    def collect(self):
        for case in _filtered(_load(self), self.config.option):
            yield CaseItem.from_parent(self, name=case.name, case=case)


def _load(collector, *paths):
    """The cases, or a collection error in diffcheck's words (file and line), without a traceback."""
    from .case import load_cases
    from .errors import CaseError

    try:
        return load_cases(*paths)
    except CaseError as exc:
        raise collector.CollectError(str(exc)) from None


def _filtered(cases, options):
    tags, names = options.diffcheck_tag, options.diffcheck_case
    return [c for c in cases if (not tags or set(tags) & set(c.tags)) and (not names or c.name in names)]


def pytest_collect_file(file_path, parent):
    if parent.config.option.diffcheck and file_path.suffix == ".py" and is_case_file(file_path):
        return CaseFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect
def pytest_collection_modifyitems(session, config, items):
    if not config.option.diffcheck:
        return
    library = Library.from_parent(session, name="diffcheck", nodeid="diffcheck")
    collected = config.hook.pytest_make_collect_report(collector=library)
    config.hook.pytest_collectreport(report=collected)  # counted and shown like any collection
    if collected.failed:
        return
    items.extend(collected.result)
    selected = {i.case.name for i in items if isinstance(i, CaseItem)}
    unknown = [n for n in config.option.diffcheck_case if n not in selected]
    if unknown:
        raise pytest.UsageError(
            f"--diffcheck-case {', '.join(unknown)}: no such case among those selected; "
            "`python -m diffcheck list` shows them all"
        )
