"""The HTML report in a real browser: headless Chromium loads the page and every image decodes.

Skips when Chromium is missing, unless DIFFCHECK_REQUIRE_BROWSER=1 (set by .ci/run), where it fails:
CI must never pass by silently skipping it.
"""

import dataclasses
import os
import re
import shutil
import subprocess

import pytest

from diffcheck import check_case, collect_cases
from diffcheck._records import StepSweep
from diffcheck.html import to_html

# Written into a copy of the page under test (the report itself has no script): once the page has
# loaded, it records how many <img> decoded to a picture with a width.
_PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  document.body.setAttribute("data-images-loaded", loaded + "/" + images.length);
});
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "headless Chromium is not installed (Debian: apt-get install -y chromium)"
    if os.environ.get("DIFFCHECK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"DIFFCHECK_REQUIRE_BROWSER=1 but {message}")
    pytest.skip(message)


def _render(page: str, tmp_path) -> str:
    """The DOM after Chromium has loaded `page` (with the probe) from a file: URL."""
    chromium = _chromium()
    path = tmp_path / "report.html"
    path.write_text(page.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",  # let the load event and its handler run before the dump
        "--dump-dom",
        path.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _loaded(dom: str) -> tuple[int, int]:
    found = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert found, "the page's load event never ran"
    return int(found[1]), int(found[2])


def test_report_loads_in_chromium_with_every_image(tmp_path):
    (case,) = [c for c in collect_cases()[0] if c.name == "sigmoid_bce"]
    report = check_case(case, points=1, order=1)
    # Sweeps as the finite-difference module records them (one per point), so the page has a V to draw.
    steps = tuple(10.0**-k for k in range(1, 13))
    sweep = StepSweep("w", steps, tuple(0.1 * h**2 + 1e-16 / h for h in steps), 1e-5, 1e-5, 2.0)
    points = tuple(dataclasses.replace(p, sweeps=p.sweeps or (sweep,)) for p in report.points)
    report = dataclasses.replace(report, points=points)

    page = to_html(report)
    dom = _render(page, tmp_path)
    loaded, total = _loaded(dom)
    assert total == page.count("<img ") >= 2 and loaded == total
    assert "<table" in dom and "sigmoid_bce" in dom and report.summary() in dom


def test_the_probe_sees_a_broken_image(tmp_path):
    # The check above can fail: an image that does not decode is counted as not loaded.
    page = '<!DOCTYPE html><html><body><img src="data:image/png;base64,bm90IGEgcG5n" alt="x"></body></html>'
    assert _loaded(_render(page, tmp_path)) == (0, 1)
