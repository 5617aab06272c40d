"""The docs site builds strictly, its generated pages follow the code, and every public name is documented."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import diffcheck

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return target


def test_the_case_library_page_lists_every_case(site):
    page = (site / "cases" / "index.html").read_text()
    cases = diffcheck.load_cases()
    missing = [c.name for c in cases if f"<code>{c.name}</code>" not in page]
    assert missing == []
    assert f"The {len(cases)} built-in cases" in page


def test_the_cli_page_holds_the_parsers_own_help(site):
    page = (site / "cli" / "index.html").read_text()
    for command in ("run", "list", "check"):
        assert f"usage: python -m diffcheck {command}" in page
    assert "--json FILE" in page and "--at NAME=VALUE" in page


def test_every_public_name_is_in_the_api_reference(site):
    page = (site / "api" / "index.html").read_text()
    documented = {anchor.rsplit(".", 1)[-1] for anchor in re.findall(r'id="(diffcheck\.[\w.]+)"', page)}
    undocumented = sorted(set(diffcheck.__all__) - documented)
    assert undocumented == []


def test_every_page_in_docs_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text()
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert sorted(p for p in pages if p not in config) == []
