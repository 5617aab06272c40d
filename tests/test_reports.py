"""The reports: terminal table and colour, progress, JUnit XML (xunit2), the HTML page, Jupyter, and
one run writing them all, each file whole or not at all."""

import base64
import io
import json
import math
import re
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import junitparser
import pytest
from samples import WRONG_RULE_FILE

from diffcheck import UsageError, cli, terminal
from diffcheck._fragment import report_html_fragment
from diffcheck._records import Element, Expectation, PointResult, Report, StepSweep
from diffcheck.html import MAX_DIGITS, agreement, digits, to_html
from diffcheck.junit import to_junit

PAIRS = (("symbolic", "autodiff"), ("symbolic", "finite_difference"), ("autodiff", "finite_difference"))
STEPS = tuple(10.0**-k for k in range(1, 13))


def _element(name, exact, fd, verdict="agree", odd=None):
    values = {"symbolic": exact, "autodiff": exact, "finite_difference": fd}
    errors = {PAIRS[0]: 0.0, PAIRS[1]: abs(exact - fd), PAIRS[2]: abs(exact - fd)}
    return Element(name, (), (), values, errors, dict.fromkeys(PAIRS, 1e-8), verdict, odd)


def _sweep(element, chosen=1e-5):
    errors = tuple(0.3 * h**2 + 1e-16 / h for h in STEPS)  # truncation + rounding: a V, 4e-11 at 1e-5
    return StepSweep(element, STEPS, errors, chosen, 1e-5, 2.0)


def _report():
    """Every kind of outcome, with names that need escaping."""
    agree = PointResult(
        "sigmoid <bce>",
        "tutorial",
        "float64",
        "cpu",
        {"symbolic": "ok"},
        elements=(_element("w", 0.5, 0.5 + 1e-11), _element("b", 0.25, 0.25)),
        sweeps=(_sweep("w"), _sweep("b", chosen=3e-6)),
        seconds=0.125,
    )
    mismatch = PointResult(
        "wrong_rule",
        "p",
        "float64",
        "cpu",
        {"symbolic": "ok"},
        elements=(_element("x", 0.9, 0.95, "mismatch", "finite_difference"),),
        seconds=0.5,
        order=2,
    )
    kink = _element("x", 1.0, 0.5, "kink")
    with_kink = PointResult("relu", "zero", "float32", "cpu", {"symbolic": "ok"}, elements=(kink,))
    error = PointResult("broken", "p", "float64", "cpu", {}, error="function raised <script>alert(1)</script> \x1b\x00")
    load = "cases/x.py:3: cannot load cases/x.py: RuntimeError: boom"
    return Report((agree, mismatch, with_kink, error), errors=(load,), seconds=1.25)


# --- terminal -----------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    "env, tty, colour",
    [
        ({}, True, True),
        ({}, False, False),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, True, True),  # empty counts as unset (no-color.org)
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False),  # NO_COLOR wins
    ],
)
def test_colour_only_on_a_terminal_unless_told(env, tty, colour):
    assert terminal.wants_colour(_Terminal() if tty else io.StringIO(), env) is colour


def test_piped_table_is_plain_and_complete(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    out = io.StringIO()
    report = _report()
    terminal.show(report, terminal.console(out))
    text = out.getvalue()
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert lines[0].split() == [
        "case",
        "point",
        "dtype",
        "order",
        "sym",
        "~",
        "ad",
        "sym",
        "~",
        "fd",
        "ad",
        "~",
        "fd",
    ] + ["verdict"]
    # Each row whole on one line, wide or not: a log is searched by line.
    assert any(
        line.split()[:4] == ["wrong_rule", "p", "float64", "2"] and line.split()[-1] == "mismatch" for line in lines
    )
    for failure in report.failures():
        assert failure.replace("\x1b", "").replace("\x00", "") in text.replace("\x1b", "").replace("\x00", "")
    assert lines[-1] == report.summary()


def test_forced_colour_colours_the_verdicts(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    out = io.StringIO()
    terminal.show(_report(), terminal.console(out))
    text = out.getvalue()
    assert re.search(r"\x1b\[[0-9;]*32m\s*agree", text)  # green
    assert re.search(r"\x1b\[[0-9;]*31m\s*mismatch", text)  # red
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    terminal.show(_report(), terminal.console(out))
    assert "\x1b[" not in out.getvalue()


def test_str_stays_plain():
    text = str(_report())
    assert "\x1b[" not in text.replace("\x1b\x00", "")  # only the error message's own escape character
    assert text.splitlines()[0].split()[:4] == ["case", "point", "dtype", "order"]


def test_progress_without_a_terminal_prints_one_line_per_case():
    stream = io.StringIO()
    with terminal.progress(3, stream) as progress:
        progress.start("first")  # a serial run: each case announced as it starts
        progress.done("first")
        progress.start("second")
        progress.done("second")
        progress.done("third")  # finished elsewhere (a worker process), never announced
    assert stream.getvalue() == "[1/3] first\n[2/3] second\n[3/3] third done\n"


def test_progress_bar_on_a_terminal_appears_only_after_the_delay():
    quick = _Terminal()
    with terminal.progress(3, quick, delay=30) as progress:
        progress.start("first")
        progress.done("first")
    assert quick.getvalue() == ""  # a quick run prints only its report
    slow = _Terminal()
    with terminal.progress(3, slow, delay=0) as progress:
        progress.start("first")
        progress.done("first")
        progress.start("second")
        deadline = time.monotonic() + 10
        while "1/3" not in slow.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    text = slow.getvalue()
    assert "second" in text and "1/3" in text
    assert text.endswith("\x1b[2K") or "\x1b[2K" in text[-40:]  # erased at the end (transient)


# --- JUnit XML ----------------------------------------------------------------------------

# The xunit2 structure (pytest's junit_family=xunit2, Jenkins' junit-10.xsd): which children and
# attributes each element may have, and which attributes it must have.
_XUNIT2 = {
    "testsuites": ({"testsuite"}, set(), {"name", "time", "tests", "failures", "errors"}),
    "testsuite": (
        {"testcase", "properties", "system-out", "system-err"},
        {"name", "tests", "failures", "errors"},
        {"name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname"},
    ),
    "testcase": ({"failure", "error", "skipped", "system-out", "system-err"}, {"name"}, {"name", "classname", "time"}),
    "failure": (set(), set(), {"message", "type"}),
    "error": (set(), set(), {"message", "type"}),
    "system-out": (set(), set(), set()),
}
_TIME = re.compile(r"^[0-9]+(\.[0-9]{1,3})?$")


def _check_xunit2(node):
    children, required, allowed = _XUNIT2[node.tag]
    assert {c.tag for c in node} <= children, node.tag
    assert required <= set(node.attrib) <= allowed, (node.tag, node.attrib)
    if "time" in node.attrib:
        assert _TIME.match(node.attrib["time"]), node.attrib["time"]
    for child in node:
        _check_xunit2(child)


def test_junit_is_xunit2_with_one_testcase_per_point_and_the_failure_format():
    report = _report()
    text = to_junit(report)
    root = ET.fromstring(text)
    _check_xunit2(root)
    (suite,) = root
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("load", "cases/x.py:3"),
        ("sigmoid <bce>", "tutorial/float64/order1"),
        ("wrong_rule", "p/float64/order2"),
        ("relu", "zero/float32/order1"),
        ("broken", "p/float64/order1"),
    ]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5",
        "1",
        "2",
        "0",
    )
    assert [c.get("time") for c in cases][1:3] == ["0.125", "0.500"]
    load, agree, mismatch, kink, error = cases
    assert list(agree) == []
    (failure,) = mismatch
    assert failure.tag == "failure" and failure.text == "\n".join(Report((report.points[1],)).failures())
    assert failure.get("message").startswith("wrong_rule @ p (float64, order 2): x: symbolic=0.9")
    assert [c.tag for c in kink] == ["system-out"] and "kink" in kink[0].text  # a warning, not a failure
    assert error[0].tag == "error" and "<script>" in error[0].get("message")
    assert "\\x1b" in error[0].get("message")  # a control character XML cannot hold, spelled out
    assert load[0].tag == "error" and "RuntimeError: boom" in load[0].text


def test_junit_reads_in_junitparser(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(to_junit(_report(), interrupted=True))
    (suite,) = junitparser.JUnitXml.fromfile(str(path))
    outcomes = {(c.classname, c.name): [type(r).__name__ for r in c.result] for c in suite}
    assert outcomes[("wrong_rule", "p/float64/order2")] == ["Failure"]
    assert outcomes[("broken", "p/float64/order1")] == ["Error"]
    assert outcomes[("sigmoid <bce>", "tutorial/float64/order1")] == []
    assert outcomes[("diffcheck", "run")] == ["Error"]  # an interrupted run is never green
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (6, 1, 3, 0)


# --- HTML ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relative, expected", [(1e-3, 3.0), (0.5, -math.log10(0.5)), (0.0, MAX_DIGITS), (1e-30, MAX_DIGITS), (10.0, 0.0)]
)
def test_digits(relative, expected):
    assert digits(relative) == pytest.approx(expected)


def test_agreement_is_the_worst_over_a_cases_points():
    second = PointResult("c", "q", "float64", "cpu", {}, elements=(_element("w", 1.0, 1.0 + 1e-6),))
    first = PointResult("c", "p", "float64", "cpu", {}, elements=(_element("w", 1.0, 1.0 + 1e-9),))
    wrong = _report().points[1]
    rows, columns, matrix, broken = agreement(Report((first, second, _report().points[3], wrong)))
    assert rows == ["c", "broken", "wrong_rule"] and columns == ["sym ~ ad", "sym ~ fd", "ad ~ fd"]
    assert matrix[0] == [MAX_DIGITS, pytest.approx(6.0, abs=1e-6), pytest.approx(6.0, abs=1e-6)]
    assert all(math.isnan(v) for v in matrix[1])  # nothing compared: grey, not "perfect"
    # The mismatch: finite differences broke both of their bounds; the exact value and autodiff agree.
    assert broken == [[False, False, False], [False, False, False], [False, True, True]]


def _images(page):
    return re.findall(r'<img src="([^"]*)"', page)


def test_html_is_self_contained_escaped_and_has_its_plots():
    page = to_html(_report())
    images = _images(page)
    # The heatmap and one step-sweep plot (the only case with sweeps); every image a real PNG inline.
    assert len(images) == 2
    for uri in images:
        assert uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # nothing fetched
    assert "<script" not in page  # the error message's <script> is text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "sigmoid &lt;bce&gt;" in page
    assert page.count("No step sweep recorded.") == 3  # wrong_rule, relu, broken
    assert "<h2>Kinks</h2>" in page and "relu @ zero: x: at a kink" in page  # warnings, listed apart
    for failure in _report().failures(limit=100):
        assert failure.split(":")[0].replace("<", "&lt;").replace(">", "&gt;") in page
    # The sweep table: chosen step, best step and its error, diffcheck's own error, observed order.
    rows = re.findall(r"<tr><td>tutorial</td><td>float64</td><td>(\w)</td>(.*?)</tr>", page)
    cells = {name: re.findall(r'<td class="num">([^<]*)</td>', rest) for name, rest in rows}
    assert cells == {
        "w": ["1.0e-05", "1.0e-05", "4.0e-11", "2.0e-11", "2.00"],
        "b": ["3.0e-06", "1.0e-05", "4.0e-11", "-", "2.00"],  # b's difference is exact: no error to draw
    }


def test_sweep_plot_survives_steps_without_an_error():
    nan = StepSweep("w", STEPS, (math.nan,) * len(STEPS), 1e-5, 1e-5, math.nan)
    zero = StepSweep("b", STEPS, (0.0,) * len(STEPS), 1e-5, 1e-5, math.nan)
    point = PointResult("c", "p", "float64", "cpu", {}, elements=(_element("w", 1.0, 1.0),), sweeps=(nan, zero))
    page = to_html(Report((point,)))
    assert len(_images(page)) == 1  # the heatmap only
    assert "no finite error to draw" in page and "No step sweep recorded" not in page


def test_repr_html_is_the_table_and_needs_no_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    report = _report()
    fragment = report._repr_html_()
    assert fragment == report_html_fragment(report)
    assert fragment.count("<tr>") == 1 + len(report.points) and "sigmoid &lt;bce&gt;" in fragment
    assert "<img" not in fragment and "<script" not in fragment
    with pytest.raises(UsageError, match=r'pip install "diffcheck\[html\]"'):
        to_html(report)


# --- one run, every file ------------------------------------------------------------------


def test_one_run_writes_json_junit_and_html(tmp_path, capsys):
    a, b, c = tmp_path / "a.json", tmp_path / "b.xml", tmp_path / "c.html"
    argv = ["run", "--case", "sigmoid_bce", "--points", "0", "--json", str(a), "--junit", str(b), "--html", str(c)]
    assert cli.main(argv) == cli.OK
    data = json.loads(a.read_text())
    assert data["schema"] == "diffcheck.report/1" and data["ok"] is True
    suite = ET.parse(b).getroot()[0]
    assert [t.get("name") for t in suite] == [f"{p['point']}/float64/order{p['order']}" for p in data["points"]]
    assert suite.get("failures") == suite.get("errors") == "0"
    page = c.read_text()
    assert "sigmoid_bce" in page and data["summary"] in page and _images(page)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.xml", "c.html"]  # no temporary left
    out = capsys.readouterr()
    assert "sigmoid_bce" in out.out and "\x1b[" not in out.out
    assert "[1/1] sigmoid_bce" in out.err


def test_a_mismatch_reaches_junit_and_html(tmp_path):
    case = tmp_path / "wrong.py"
    case.write_text(textwrap.dedent(WRONG_RULE_FILE))
    xml, page = tmp_path / "r.xml", tmp_path / "r.html"
    argv = ["run", str(case), "--points", "0", "--junit", str(xml), "--html", str(page)]
    assert cli.main(argv) == cli.MISMATCH
    (testcase,) = ET.parse(xml).getroot()[0]
    assert testcase.get("classname") == "wrong_rule" and testcase[0].tag == "failure"
    assert "odd one out: autodiff" in testcase[0].get("message")
    assert "odd one out: autodiff" in page.read_text()


@pytest.mark.parametrize("option", ["--json", "--junit", "--html"])
def test_a_missing_output_folder_is_a_usage_error_before_the_run(tmp_path, option, capsys):
    target = tmp_path / "no-such-folder" / "report"
    assert cli.main(["run", "--case", "sigmoid_bce", option, str(target)]) == cli.USAGE_ERROR
    err = capsys.readouterr().err
    assert "no-such-folder" in err and "does not exist" in err and "[1/1]" not in err


def test_html_without_matplotlib_is_a_usage_error_before_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli.main(["run", "--case", "sigmoid_bce", "--html", str(tmp_path / "r.html")]) == cli.USAGE_ERROR
    err = capsys.readouterr().err
    assert 'pip install "diffcheck[html]"' in err and "[1/1]" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rendering_leaves_the_old_file_whole(tmp_path, monkeypatch):
    import diffcheck.html

    page = tmp_path / "r.html"
    page.write_text("the previous report")

    def broken(*args, **kwargs):
        raise RuntimeError("rendering failed half way")

    monkeypatch.setattr(diffcheck.html, "to_html", broken)
    argv = ["run", "--case", "sigmoid_bce", "--points", "0", "--json", str(tmp_path / "r.json"), "--html", str(page)]
    assert cli.main(argv) == cli.INTERNAL_ERROR
    assert page.read_text() == "the previous report"
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True  # written before, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json"]


# --- the documented JSON schema -----------------------------------------------------------

DOC = (Path(__file__).parent.parent / "docs" / "reports.md").read_text()


def _documented(heading: str) -> set:
    """The backticked field names in the first column of the table (or the paragraph) after `heading`."""
    rest = DOC.split(heading, 1)[1]
    line, after = rest.split("\n", 1)
    table = line.rstrip().endswith(":") and after.strip().startswith("|")
    block = (after if table else rest).strip().split("\n\n", 1)[0]
    if not block.startswith("|"):
        return set(re.findall(r"`([a-z_]+)`", block))
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}


def test_the_json_schema_is_documented_field_by_field():
    report = _report()
    data = report.to_dict()
    assert data["schema"] == "diffcheck.report/1" and "`diffcheck.report/1`" in DOC
    assert _documented("Top level:") == set(data) | {"interrupted"}  # the CLI adds "interrupted"
    assert _documented("A **point**:") == set(data["points"][0])
    assert _documented("An **element**") == set(data["points"][0]["elements"][0])
    expectation = Expectation("w", (), 0.1, 4, {"symbolic": 0.1}, True)
    assert _documented("An **expectation**") == set(expectation.to_dict())
    assert _documented("A **sweep**") == set(data["points"][0]["sweeps"][0])
