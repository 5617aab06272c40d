"""The command line: output, JSON, selection, and the documented exit codes."""

import json
import textwrap

import pytest
from samples import WRONG_RULE_FILE

from diffcheck import _autodiff as autodiff
from diffcheck import cli

GOOD = """
    import jax.numpy as jnp
    from diffcheck import Case

    square = Case(name="square", fn=lambda x: x**2, wrt="x", points={"two": dict(x=2.0)}, tags=("mine",))
"""


def _write(folder, name, text):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_run_prints_a_table_and_exits_0(capsys):
    assert cli.main(["run", "--case", "sigmoid_bce", "--points", "1"]) == cli.OK
    out = capsys.readouterr().out
    assert "sigmoid_bce" in out and "tutorial" in out and "random-0" in out and "OK:" in out


def test_json_report(tmp_path):
    target = tmp_path / "report.json"
    assert cli.main(["run", "--case", "sigmoid_bce", "--points", "0", "--json", str(target)]) == cli.OK
    data = json.loads(target.read_text())
    assert data["ok"] is True and data["points"][0]["case"] == "sigmoid_bce"
    assert {"symbolic", "autodiff", "finite_difference"} <= set(data["points"][0]["elements"][0])
    assert not list(tmp_path.glob(".*.tmp"))  # written whole, no temporary left behind


def test_mismatch_exits_1_and_names_the_odd_one_out(tmp_path, capsys):
    path = _write(tmp_path, "wrong.py", WRONG_RULE_FILE)
    assert cli.main(["run", str(path)]) == cli.MISMATCH
    assert "odd one out: autodiff" in capsys.readouterr().out


def test_unknown_case_is_a_usage_error_with_suggestions(capsys):
    assert cli.main(["run", "--case", "simple_nett"]) == cli.USAGE_ERROR
    assert "did you mean simple_net" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["run", "--dtype", "float16"], ["run", "--points", "-1"], ["frobnicate"], []])
def test_bad_arguments_are_usage_errors(argv):
    assert cli.main(argv) == cli.USAGE_ERROR


def test_no_cases_selected_exits_5():
    assert cli.main(["run", "--tag", "no-such-tag"]) == cli.NO_CASES


def test_broken_case_file_is_named_and_the_others_still_run(tmp_path, capsys):
    _write(tmp_path, "a_broken_cases.py", "x = (\n")
    _write(tmp_path, "b_raises_cases.py", "raise RuntimeError('boom')\n")
    _write(tmp_path, "c_good_cases.py", GOOD)
    assert cli.main(["run", str(tmp_path)]) == cli.LOAD_ERROR
    out = capsys.readouterr().out
    assert "a_broken_cases.py:1" in out and "syntax error" in out
    assert "b_raises_cases.py:1" in out and "RuntimeError: boom" in out
    assert "square" in out and "agree" in out


def test_list_shows_names_and_tags(tmp_path, capsys):
    _write(tmp_path, "mine_cases.py", GOOD)
    assert cli.main(["list", str(tmp_path)]) == cli.OK
    out = capsys.readouterr().out
    assert "square" in out and "[mine]" in out


def test_missing_path_is_a_load_error(tmp_path):
    assert cli.main(["run", str(tmp_path / "nope.py")]) == cli.LOAD_ERROR


def _cache_entries(folder):
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_compiled_programs_are_cached_by_default_and_not_with_no_cache(tmp_path, monkeypatch):
    # Small problems run in NumPy and compile nothing (autodiff.EAGER): compile this one, as a large one
    # is, in the worker processes too (they read DIFFCHECK_EAGER when they start).
    monkeypatch.setattr(autodiff, "EAGER", 0)
    monkeypatch.setenv("DIFFCHECK_EAGER", "0")
    folder = tmp_path / "cache"
    monkeypatch.setenv("DIFFCHECK_CACHE_DIR", str(folder))
    argv = ["check", "x * exp(x) + 0.25 * x", "--at", "x=0.3"]  # a new function: compiled afresh
    assert cli.main([*argv, "--no-cache"]) == cli.OK
    assert _cache_entries(folder) == set()
    assert cli.main(argv) == cli.OK
    entries = _cache_entries(folder)
    programs = {e.removesuffix("-cache") for e in entries if e.endswith("-cache")}
    assert len(programs) > 3
    assert {e.removesuffix("-atime") for e in entries if e.endswith("-atime")} == programs  # bounded: JAX's LRU


@pytest.mark.parametrize("how", ["environment", "option"])
def test_an_unusable_cache_folder_is_one_warning_and_the_run_goes_on(tmp_path, monkeypatch, capsys, how):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    folder = blocker / "cache"  # under a file: no one can make it, root included
    monkeypatch.setenv("DIFFCHECK_CACHE_DIR", str(folder))
    extra = ["--cache-dir", str(folder)] if how == "option" else []
    assert cli.main(["check", "x * x", "--at", "x=0.3", *extra]) == cli.OK
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning" in err[0] and str(folder) in err[0]


def test_a_folder_filled_without_a_bound_stays_usable(tmp_path, monkeypatch):
    # --cache-dir keeps no bound; JAX's bounded cache fails every write in a folder with such entries.
    monkeypatch.setattr(autodiff, "EAGER", 0)  # compiled, as a large problem is
    monkeypatch.setenv("DIFFCHECK_EAGER", "0")  # in the worker processes too
    folder = tmp_path / "cache"
    assert cli.main(["check", "x * exp(x) + 0.5 * x", "--at", "x=0.3", "--cache-dir", str(folder)]) == cli.OK
    before = _cache_entries(folder)
    monkeypatch.setenv("DIFFCHECK_CACHE_DIR", str(folder))
    assert cli.main(["check", "x * exp(x) + 0.75 * x", "--at", "x=0.3"]) == cli.OK  # JAX's warnings are errors here
    assert _cache_entries(folder) > before
