"""A report as JUnit XML in the xunit2 flavour (pytest's `junit_family=xunit2`), for CI systems.

One testcase per case, point, dtype and order (classname = the case; name = "point/dtype/orderN");
a mismatch is a <failure>, a point that could not be checked or a case file that did not load is an
<error>; messages are the one failure format. Nothing is ever skipped. Warnings (kinks, avoidable
precision loss) are the testcase's <system-out>.
"""

from __future__ import annotations

import datetime
import re
import socket
import sys
import xml.etree.ElementTree as ET

from ._records import PointResult, Report

# Characters XML 1.0 cannot hold at all (not even escaped): control characters, lone surrogates.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _seconds(t: float) -> str:
    return f"{t:.3f}"


def testcase_name(point: PointResult) -> str:
    """The testcase name of a point: "point/dtype/orderN"."""
    return f"{point.point}/{point.dtype}/order{point.order}"


def _testcase(suite, classname: str, name: str, seconds: float):
    attributes = dict(classname=_xml_text(classname), name=_xml_text(name), time=_seconds(seconds))
    return ET.SubElement(suite, "testcase", attributes)


def _result(testcase, tag: str, kind: str, lines: list[str]):
    node = ET.SubElement(testcase, tag, message=_xml_text(lines[0]), type=kind)
    node.text = _xml_text("\n".join(lines))


def to_junit(report: Report, *, interrupted: bool = False, suite_name: str = "diffcheck") -> str:
    """The report as a JUnit XML document (xunit2): <testsuites><testsuite><testcase>…"""
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name=suite_name)
    failures = errors = 0
    for message in report.errors:
        # A case file that did not load: named by where it failed ("file.py:12"), so CI lists it.
        _result(_testcase(suite, "load", message.split(": ", 1)[0], 0.0), "error", "CaseError", [message])
        errors += 1
    for point in report.points:
        testcase = _testcase(suite, point.case, testcase_name(point), point.seconds)
        if not point.ok:
            lines = Report((point,)).failures(limit=sys.maxsize)  # the one failure format, every line
            if point.error:
                _result(testcase, "error", "PointError", lines)
                errors += 1
            else:
                _result(testcase, "failure", "DerivativeMismatch", lines)
                failures += 1
        alone = Report((point,))
        warnings = alone.kink_warnings(limit=sys.maxsize) + alone.precision_warnings(limit=sys.maxsize)
        if warnings:  # warnings, not failures: shown with the test's output
            out = ET.SubElement(testcase, "system-out")
            out.text = _xml_text("\n".join(warnings))
    if interrupted:
        run = _testcase(suite, "diffcheck", "run", 0.0)
        _result(run, "error", "Interrupted", ["interrupted (Ctrl-C): the report is partial"])
        errors += 1
    tests = len(report.errors) + len(report.points) + interrupted
    suite.attrib.update(
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=_seconds(report.seconds),
        timestamp=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        hostname=_xml_text(socket.gethostname()),
    )
    root.attrib.update(tests=str(tests), failures=str(failures), errors=str(errors), time=_seconds(report.seconds))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
