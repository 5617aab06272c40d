"""Hostile input: what an adversary (or a very unlucky user) gives diffcheck, and what each gets.

Every input must end in a clear error or a correct verdict, within its time budget plus a few
seconds; none may exit 0 without having run everything, replace a file it was not asked to write,
or call a usage error an internal error. `docs/reliability.md` lists them.

Time bounds are generous on purpose (a shared 2-core machine); the runs that need worker
processes are grouped (one serial and one `--jobs 2` run of one hostile case folder).
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import diffcheck
from diffcheck import Case, _options, cli, formula
from diffcheck.errors import CaseError, FormulaError, UsageError
from diffcheck.parallel import CASE_POINT

pytest_plugins = ["pytester"]

ROOT = Path(diffcheck.__file__).resolve().parents[1]


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", **extra)
    env.pop("FORCE_COLOR", None)
    return env


def _cli(*argv, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "diffcheck", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        **kwargs,
    )


# --- formulas: refused before SymPy sees them, or checked within seconds -----------------------

REFUSED_FORMULAS = [
    ("(x-x+9)**(9**9)", "the constant exponent 387,420,489 is over the limit"),  # a huge exponent, by value
    ("x + ((1.0000001**1024)**1024)**1024", "exact value of about 33,462,594 digits"),  # exact size, not literal count
    ("(x**1024)**1024", "total power of 1,048,576"),  # nested powers fold
    ("((x-x+1.0000001)**1024)**1024", "total power of 1,048,576"),  # folds to a constant only in SymPy
    ("9**9**9", "over the limit"),
    ("x**-2000", "the constant exponent -2,000 is over the limit"),
    ("x*2**1000**1.1", "the constant exponent 1995.26 is over the limit"),
    ("1e308*10*x", "overflows float64"),
    ("x/(1-1)", "division by zero"),
    ("(-8)**(1/3)*x", "not real"),
    ("x\x00", "unprintable character '\\x00'"),
    ("x\ud800", "unprintable character '\\ud800'"),
    ("x\x1b[2J", "unprintable character '\\x1b'"),
    ("sin(" * 40 + "x" + ")" * 40, "nests deeper than"),
    ("x+" * 600 + "x", "over the limit of 1000"),
    ("__import__('os').system('true')", "attribute access (.system)"),
    ("__import__('os')", "unknown function '__import__'"),
    ("x.__class__", "attribute access"),
    ("lambda: 1", "lambda"),
    ("exp", "exp is a function"),
    ("x if x else x", "if-else"),
    ("", "the formula is empty"),
    ("x\ny", "one line"),
]


@pytest.mark.parametrize("text, message", REFUSED_FORMULAS, ids=[repr(t)[:30] for t, _ in REFUSED_FORMULAS])
def test_hostile_formula_is_refused_quickly(text, message):
    start = time.monotonic()
    with pytest.raises(FormulaError) as info:
        formula.parse(text)
    assert message in str(info.value)
    assert time.monotonic() - start < 5


def test_a_constant_that_only_sympy_folds_is_refused_when_built():
    # The text's sizes allow it ((x-x+1.1) is not a constant to the parser); SymPy folds the base
    # to 1.1·1.3 as an exact binary fraction, whose 1024th power would be 65,000 digits.
    parsed = formula.parse("((x-x+1.1)*(x-x+1.3))**1024")
    start = time.monotonic()
    with pytest.raises(FormulaError, match="folds to the constant"):
        parsed.sympy()
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("wrt, message", [(["x", "x"], "--wrt x given twice"), (["z"], "--wrt z: not a variable")])
def test_bad_wrt_is_a_usage_error(wrt, message):
    with pytest.raises(UsageError, match=message):
        formula.check_wrt(formula.parse("x*y"), wrt)


@pytest.mark.parametrize("at", [["x=1e400"], ["x=nan"], ["x=1", "x=2"], ["x"], ["x=abc"]])
def test_bad_point_for_a_formula_is_a_usage_error(at):
    with pytest.raises(UsageError):
        formula.parse_point(at, ("x",))


def test_formulas_on_the_command_line():
    """One process per command: a leading minus, a hang that is now a refusal, a fold, --wrt twice."""
    start = time.monotonic()
    minus = _cli("check", "-x**2", "--at", "x=0.5")
    assert minus.returncode == cli.OK, minus.stderr
    assert "symbolic -1" in minus.stdout
    dashes = _cli("check", "--at", "x=0.5", "--", "-x")
    assert dashes.returncode == cli.OK, dashes.stderr
    hang = _cli("check", "(x-x+9)**(9**9)", "--at", "x=1", "--timeout", "5")
    assert hang.returncode == cli.USAGE_ERROR and "formula refused" in hang.stderr
    folded = _cli("check", "((x-x+1.1)*(x-x+1.3))**1024", "--at", "x=1", "--timeout", "5")
    assert folded.returncode == cli.USAGE_ERROR and "folds to the constant" in folded.stderr, folded.stderr
    assert "internal error" not in hang.stderr + folded.stderr
    assert time.monotonic() - start < 120


# --- options: each a usage error naming the option and what is valid ---------------------------

BAD_CHECK_GRAD_OPTIONS = [
    (dict(seed=-1), "seed must be a whole number, 0 or more"),
    (dict(seed="abc"), "seed must be a whole number"),
    (dict(seed=1.5), "seed must be a whole number"),
    (dict(timeout="5"), "timeout must be a number of seconds"),
    (dict(timeout=-1), "timeout must be a number of seconds more than 0"),
    (dict(timeout=0), "timeout must be a number of seconds more than 0"),
    (dict(timeout=math.nan), "timeout must be a number of seconds"),
    (dict(rtol=-1), "rtol must be a finite number, 0 or more"),
    (dict(rtol="1e-3"), "rtol must be a finite number"),
    (dict(atol=math.inf), "atol must be a finite number"),
    (dict(argnums="0"), "argnums must be a position"),
    (dict(argnums=()), "argnums must be a position"),
    (dict(argnums=(0, 0)), "names an argument twice"),
    (dict(argnums=5), "out of range for 1 argument"),
    (dict(argnums=(True,)), "argnums must be a position"),
    (dict(order=0), "order must be a whole number from 1 to 4"),
    (dict(order=True), "order must be a whole number from 1 to 4"),
    (dict(order=2.0), "order must be a whole number from 1 to 4"),
    (dict(dtype="float16"), "dtype must be one of float64, float32"),
    (dict(dtype=123), "dtype must be one of float64, float32"),
    (dict(device="tpu"), "device must be one of cpu, gpu"),
]


@pytest.mark.parametrize("options, message", BAD_CHECK_GRAD_OPTIONS, ids=[repr(o) for o, _ in BAD_CHECK_GRAD_OPTIONS])
def test_bad_check_grad_option_is_a_usage_error(options, message):
    with pytest.raises(UsageError, match=message):
        diffcheck.check_grad(jnp.sin, 0.3, **options)


@pytest.mark.parametrize(
    "args, message", [((), "at least one argument"), (({},), "empty pytree"), (([],), "empty pytree")]
)
def test_nothing_to_differentiate_is_a_usage_error(args, message):
    with pytest.raises(UsageError, match=message):
        diffcheck.check_grad(lambda *a: 0.0, *args)


SQUARE = Case(name="square", fn=lambda x: x**2, wrt="x", points={"p": dict(x=2.0)})


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(points=-1), "points must be a whole number, 0 or more"),
        (dict(points="2"), "points must be a whole number"),
        (dict(order=7), "order must be a whole number from 1 to 4"),
        (dict(timeout=math.nan), "timeout must be"),
        (dict(seed=-3), "seed must be"),
    ],
)
def test_bad_check_case_option_is_a_usage_error(options, message):
    with pytest.raises(UsageError, match=message):
        diffcheck.check_case(SQUARE, **options)


def test_check_case_of_something_else_is_a_usage_error():
    with pytest.raises(UsageError, match="check_case takes a diffcheck.Case, got str"):
        diffcheck.check_case("square")


BAD_ARGV = [
    (["run", "--seed", "-1"], "argument --seed: seed"),
    (["run", "--seed", "x"], "argument --seed"),
    (["run", "--timeout", "nan"], "argument --timeout"),
    (["run", "--timeout", "0"], "argument --timeout"),
    (["run", "--jobs", "0"], "argument --jobs"),
    (["run", "--points", "-1"], "argument --points"),
    (["run", "--max-memory", "0"], "argument --max-memory"),
    (["run", "--scheduler", "notanaddress"], "argument --scheduler"),
    (["run", "--cache-dir", ""], "argument --cache-dir"),
    (["run", "--json", ""], "argument --json"),
    (["check", "x", "--at", "x=1", "--order", "5"], "argument --order"),
]


@pytest.mark.parametrize("argv, message", BAD_ARGV, ids=[" ".join(a) for a, _ in BAD_ARGV])
def test_bad_command_line_option_is_a_usage_error(argv, message, capsys):
    assert cli.main(argv) == cli.USAGE_ERROR
    err = capsys.readouterr().err
    assert message in err
    assert "internal error" not in err


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("JAX_COMPILATION_CACHE_MAX_SIZE", "abc", "$JAX_COMPILATION_CACHE_MAX_SIZE='abc' is not valid"),
        ("JAX_COMPILATION_CACHE_MAX_SIZE", "-5", "or -1 for no bound"),
        ("DIFFCHECK_INTERNAL_ERRORS", "shout", "valid values are report, raise"),
        ("DIFFCHECK_CACHE_DIR", "   ", "$DIFFCHECK_CACHE_DIR='   ' is not valid"),
    ],
)
def test_bad_setting_in_the_environment_is_a_usage_error(variable, value, message, monkeypatch, capsys):
    monkeypatch.setenv(variable, value)
    assert cli.main(["list", "--help"]) == cli.OK  # help needs no setting
    assert cli.main(["check", "x*x", "--at", "x=1"]) == cli.USAGE_ERROR
    err = capsys.readouterr().err
    assert message in err and "internal error" not in err
    monkeypatch.delenv(variable)
    _options.reload_settings()


def test_settings_are_read_once_and_internal_errors_can_be_raised(monkeypatch):
    monkeypatch.setenv("DIFFCHECK_INTERNAL_ERRORS", "raise")
    assert _options.reload_settings().internal_errors == "raise" and _options.raise_internal_errors()
    monkeypatch.setenv("DIFFCHECK_INTERNAL_ERRORS", "report")
    assert _options.raise_internal_errors()  # read once: the change is not seen until reloaded
    assert not (_options.reload_settings() and _options.raise_internal_errors())


# --- case definitions: a CaseError naming the case and the field --------------------------------


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(points=[dict(x=1.0)]), "points must be a dict"),
        (dict(points={"p": [1.0]}), "a point must be a dict"),
        (dict(orders=2), "orders must be a tuple of derivative orders"),
        (dict(orders=(0,)), "orders must be integers from 1 to 4"),
        (dict(wrt=123), "wrt must be a parameter name or a tuple"),
        (dict(wrt=("x", 1)), "wrt must be a parameter name or a tuple"),
        (dict(tags=None), "tags must be a tag or a tuple"),
        (dict(tags=("a", 2)), "tags must be a tag or a tuple"),
        (dict(decimals="4"), "decimals must be a whole number from 0 to 17"),
        (dict(decimals=-1), "decimals must be a whole number"),
        (dict(sample=5), "sample must be a function"),
        (dict(expected=[1.0]), "expected must be a dict"),
        (dict(description=3), "description must be a string"),
        (dict(name="a b"), "case name 'a b' is not valid"),
        (dict(fn="lambda x: x"), "fn must be callable"),
    ],
)
def test_malformed_case_is_a_case_error(fields, message):
    base = dict(name="c", fn=jnp.sin, wrt="x", points={"p": dict(x=1.0)})
    with pytest.raises(CaseError, match=message):
        Case(**{**base, **fields})


def test_a_string_of_tags_is_one_tag_not_its_letters():
    assert Case(name="c", fn=jnp.sin, wrt="x", points={"p": dict(x=1.0)}, tags="abc").tags == ("abc",)


# --- report paths: nothing replaced that was not asked for -----------------------------------


def test_report_through_a_device_a_fifo_and_a_symlink(tmp_path):
    cli.write_report("/dev/null", "{}")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # still the device, even for root
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="no process is reading this FIFO"):
        cli.write_report(fifo, "{}")  # never blocks the run at its end
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        cli.write_report(fifo, "hello")
        assert os.read(reader, 100) == b"hello" and stat.S_ISFIFO(os.stat(fifo).st_mode)
    finally:
        os.close(reader)
    target = tmp_path / "real.json"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    cli.write_report(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the file's own permissions kept
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "made.json")
    cli.write_report(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "made.json").read_text() == "made"
    with pytest.raises(OSError, match="No space left"):
        cli.write_report("/dev/full", "x" * 10_000)
    assert not list(tmp_path.glob(".*.tmp"))


def _read_only_folder(tmp_path) -> Path:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root writes anyway: a folder the kernel refuses
        folder = Path("/sys/kernel")
        if os.access(folder, os.W_OK) and not _refuses(folder):
            pytest.skip("no read-only folder available")
    return folder


def _refuses(folder) -> bool:
    try:
        with open(folder / f"diffcheck-{uuid.uuid4().hex}", "w"):
            pass
    except OSError:
        return True
    return False


def test_report_targets_are_checked_before_the_run(tmp_path):
    sock = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    try:
        with pytest.raises(UsageError, match="is a socket"):
            cli.report_target(str(sock))
    finally:
        server.close()
    if os.path.exists("/dev/loop0"):
        with pytest.raises(UsageError, match="is a block device"):
            cli.report_target("/dev/loop0")
    with pytest.raises(UsageError, match="is a folder"):
        cli.report_target(str(tmp_path))
    with pytest.raises(UsageError, match="does not exist"):
        cli.report_target(str(tmp_path / "nope" / "r.json"))
    with pytest.raises(UsageError, match="cannot write the report"):
        cli.report_target(str(_read_only_folder(tmp_path) / "r.json"))
    assert cli.report_target("-") == "-"


def test_report_path_problems_on_the_command_line(tmp_path, capsys):
    same = str(tmp_path / "r")
    assert cli.main(["check", "x*x", "--at", "x=1", "--json", same, "--junit", same]) == cli.USAGE_ERROR
    assert "--json and --junit both name" in capsys.readouterr().err
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "r")
    assert cli.main(["check", "x*x", "--at", "x=1", "--json", same, "--html", str(link)]) == cli.USAGE_ERROR
    assert "--json and --html both name" in capsys.readouterr().err
    assert cli.main(["check", "x*x", "--at", "x=1", "--json", "-", "--junit", "-"]) == cli.USAGE_ERROR
    assert "--json and --junit both name '-'" in capsys.readouterr().err
    assert cli.main(["check", "x*x", "--at", "x=1", "--json", "-", "--junit", "/dev/stdout"]) == cli.USAGE_ERROR
    assert "--json and --junit both name '/dev/stdout'" in capsys.readouterr().err
    read_only = _read_only_folder(tmp_path) / "r.xml"
    assert cli.main(["run", "--case", "sigmoid_bce", "--junit", str(read_only)]) == cli.USAGE_ERROR
    err = capsys.readouterr().err
    assert "cannot write the report" in err and "internal error" not in err
    assert not (tmp_path / "r").exists()  # nothing ran


def test_a_full_disk_names_the_report_and_the_others_are_written(tmp_path):
    json_path, xml_path = tmp_path / "r.json", tmp_path / "r.xml"
    done = _cli(
        "check", "x*x", "--at", "x=1", "--json", str(json_path), "--html", "/dev/full", "--junit", str(xml_path)
    )
    assert done.returncode == cli.REPORT_ERROR, done.stderr
    assert "cannot write the HTML report to '/dev/full': No space left on device" in done.stderr
    assert json.loads(json_path.read_text())["ok"] is True and xml_path.read_text().startswith("<?xml")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    stdout = _cli("check", "x*x", "--at", "x=1", "--json", "-", "--junit", "/dev/null", "--html", "/dev/null")
    assert stdout.returncode == cli.OK, stdout.stderr
    assert json.loads(stdout.stdout)["ok"] is True  # the table went to stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # /dev/null may take every report
    junit = _cli("check", "x*x", "--at", "x=1", "--junit", "/dev/stdout")
    assert junit.returncode == cli.OK and "<testsuites" in junit.stdout and os.path.islink("/dev/stdout")


# --- hostile cases: each costs only itself, in serial and parallel runs alike -------------------

HOSTILE_CASES = """
    import ctypes, os, signal, sys, time
    import jax.numpy as jnp
    from diffcheck import Case

    def _case(name, fn, **kw):
        return Case(name=name, fn=fn, wrt="x", points={"p": dict(x=0.3)}, **kw)

    def _sleep(x):
        time.sleep(1000)

    def _spin(x):
        while True:
            pass

    def _stubborn(x):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(1000)

    def _hog(x):
        # touched memory (resident, unlike bytearray's zero pages), in one C call: the pool's memory
        # kill, not the point's preemption, must stop it however slow the machine
        hoard = b"x" * 2**31
        return x

    class Escape(BaseException):
        pass

    def _raise(exc):
        def fn(x):
            raise exc
        return fn

    a_good = _case("a_good", lambda x: jnp.sin(x))
    b_sys_exit_0 = _case("b_sys_exit_0", lambda x: sys.exit(0))
    c_sys_exit_text = _case("c_sys_exit_text", lambda x: sys.exit("bye"))
    d_os_exit_0 = _case("d_os_exit_0", lambda x: os._exit(0))
    e_segfault = _case("e_segfault", lambda x: ctypes.string_at(0))
    f_abort = _case("f_abort", lambda x: os.abort())
    g_sleeps = _case("g_sleeps", _sleep)
    h_spins = _case("h_spins", _spin)
    i_ignores_sigterm = _case("i_ignores_sigterm", _stubborn)
    j_memory_hog = _case("j_memory_hog", _hog)
    k_keyboard_interrupt = _case("k_keyboard_interrupt", _raise(KeyboardInterrupt()))
    l_base_exception = _case("l_base_exception", _raise(Escape("out")))
    m_surrogate = _case("m_surrogate", _raise(ValueError("bad \\ud800 text")))
    n_sampler_exits = Case(name="n_sampler_exits", fn=jnp.sin, wrt="x", sample=lambda rng: sys.exit(0))
    o_returns_none = _case("o_returns_none", lambda x: None)
    def _deaf(x):  # SIGALRM blocked: the in-process watchdog cannot reach it, the pool's kill does
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
        time.sleep(1000)

    q_blocks_sigalrm = _case("q_blocks_sigalrm", _deaf)
    p_good = _case("p_good", lambda x: jnp.cos(x) * x)
"""

BAD_FILES = {
    "exits_on_import_cases.py": "import sys\nsys.exit(0)\n",
    "os_exits_on_import_cases.py": "import os\nos._exit(0)\n",
    "segfaults_on_import_cases.py": "import ctypes\nctypes.string_at(0)\n",
    "bad_decimals_cases.py": "import jax.numpy as jnp\nfrom diffcheck import Case\n"
    "c = Case(name='bad_decimals', fn=jnp.sin, wrt='x', points={'p': dict(x=1.0)}, decimals='4')\n",
    "twin_cases.py": "import jax.numpy as jnp\nfrom diffcheck import Case\n"
    "c = Case(name='a_good', fn=lambda x: jnp.sin(x), wrt='x', points={'p': dict(x=1.0)})\n",
}

# What each hostile case gets: its point's error (the case is named by the point's case).
EXPECTED = {
    "b_sys_exit_0": "the function called sys.exit(0)",  # the point's error: the check itself catches it
    "c_sys_exit_text": "the function called sys.exit('bye')",
    "d_os_exit_0": "the worker process exited with code 0",
    "e_segfault": "the worker process was killed by SIGSEGV, in the case's own code",
    "f_abort": "the worker process was killed by SIGABRT",
    "g_sleeps": "timed out after",
    "h_spins": "timed out after",
    "i_ignores_sigterm": "timed out after",
    "j_memory_hog": "ran out of memory: its worker used",
    "k_keyboard_interrupt": "the case raised KeyboardInterrupt",
    "l_base_exception": "checking it failed: Escape: out",
    "m_surrogate": "the function raised ValueError: bad \ud800 text",  # JSON keeps it, escaped
    "n_sampler_exits": "the case called sys.exit(0)",
    "o_returns_none": "the function",
    "q_blocks_sigalrm": "timed out after",
}
LOAD_ERRORS = {
    "exits_on_import_cases.py": "it called sys.exit(0) on import",
    "os_exits_on_import_cases.py": "the worker process exited with code 0",
    "segfaults_on_import_cases.py": "the worker process was killed by SIGSEGV",
    "bad_decimals_cases.py": "decimals must be a whole number from 0 to 17, got '4' (str)",
    "twin_cases.py": "case name 'a_good' defined twice",
}


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "hostile_cases.py").write_text(textwrap.dedent(HOSTILE_CASES))
    for name, text in BAD_FILES.items():
        (folder / name).write_text(text)
    return folder


def _hostile_run(folder, *extra):
    out = folder / f"run{len(extra)}"
    out.mkdir()
    # a small memory budget: the hog is killed for memory early, even on a loaded machine
    argv = ["run", str(folder), "--points", "1", "--timeout", "3", "--max-memory", "0.6"]
    argv += ["--json", str(out / "r.json"), "--junit", str(out / "r.xml"), "--html", str(out / "r.html"), *extra]
    start = time.monotonic()
    done = _cli(*argv, timeout=600)
    return done, out, time.monotonic() - start


@pytest.fixture(scope="module")
def serial_run(hostile_folder):
    return _hostile_run(hostile_folder)


@pytest.fixture(scope="module")
def parallel_run(hostile_folder):
    return _hostile_run(hostile_folder, "--jobs", "2")


def _errors(out) -> dict:
    data = json.loads((out / "r.json").read_text())
    points = {}
    for p in data["points"]:  # the first of a name defined twice
        points.setdefault(p["case"], (p["point"], p["status"], p["error"] or ""))
    return points, data


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_each_hostile_case_costs_only_itself(mode, request):
    done, out, seconds = request.getfixturevalue(f"{mode}_run")
    assert done.returncode == cli.LOAD_ERROR, done.stderr[-3000:]  # files failed to load; everything else ran
    points, data = _errors(out)
    assert data["ok"] is False and data["interrupted"] is False
    assert points["a_good"][1] == "agree" and points["p_good"][1] == "agree"
    for name, message in EXPECTED.items():
        assert name in points, f"{name} is missing from the report"
        assert message in points[name][2], (name, points[name])
    for name in ("d_os_exit_0", "e_segfault", "q_blocks_sigalrm", "j_memory_hog"):
        assert points[name][0] == CASE_POINT  # the worker was killed: the case's error
    for name in ("g_sleeps", "h_spins", "i_ignores_sigterm"):  # preempted inside the worker: the point's
        assert points[name][0] == "p" and "for the point" in points[name][2], points[name]
    joined = "\n".join(data["errors"])
    for file, message in LOAD_ERRORS.items():
        assert any(file in e and message in e for e in data["errors"]), (file, joined)
    assert "internal error" not in done.stdout + done.stderr
    assert "BrokenProcessPool" not in done.stdout + done.stderr
    assert "in the case's own code" in points["g_sleeps"][2]  # the phase: where it hung
    assert "bad \\ud800 text" in done.stdout  # printed escaped, never a UnicodeEncodeError
    assert (out / "r.xml").read_text().count("<testcase") >= len(EXPECTED) + 2
    assert "m_surrogate" in (out / "r.html").read_text()
    assert seconds < 400  # each time-out costs 2 s + 5 s of grace; each crash one worker's start


def test_serial_and_parallel_hostile_reports_are_the_same(serial_run, parallel_run):
    def outline(out):
        points, data = _errors(out)
        # messages name times and sizes measured in the run: compare up to the first number
        return {k: (v[0], v[1], v[2].split(" after ")[0].split(" used ")[0]) for k, v in points.items()}, sorted(
            e.split(":")[0] for e in data["errors"]
        )

    assert outline(serial_run[1]) == outline(parallel_run[1])


# --- signals: workers ended, partial reports, documented exit codes ----------------------------

HUNG = """
    import time
    import jax.numpy as jnp
    from diffcheck import Case

    quick = Case(name="quick", fn=lambda x: jnp.sin(x), wrt="x", points={"p": dict(x=0.3)})
    hung = Case(name="hung", fn=lambda x: time.sleep(1000), wrt="x", points={"p": dict(x=0.3)})
"""


def _workers_of(mark: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"DIFFCHECK_TEST_MARK={mark}".encode() in environ:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, cli.INTERRUPTED), (signal.SIGTERM, cli.TERMINATED)])
def test_one_signal_ends_the_workers_and_writes_the_partial_report(tmp_path, signum, code):
    (tmp_path / "hung_cases.py").write_text(textwrap.dedent(HUNG))
    mark = uuid.uuid4().hex
    target = tmp_path / "r.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "diffcheck",
            "run",
            str(tmp_path),
            "--jobs",
            "2",
            "--points",
            "0",
            "--json",
            str(target),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(DIFFCHECK_TEST_MARK=mark),
    )
    for line in process.stderr:  # the quick case is done: the hung one runs in the other worker
        if "quick done" in line:
            break
    time.sleep(0.5)
    assert len(_workers_of(mark)) >= 2  # the parent and its workers
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    data = json.loads(target.read_text())
    assert data["ok"] is False and data["interrupted"] is True
    assert [p["case"] for p in data["points"]] == ["quick"]
    deadline = time.monotonic() + 10
    while _workers_of(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _workers_of(mark) == []  # no orphan left running the hung case


# --- caches --------------------------------------------------------------------------------------


def test_hostile_cache_folders(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    monkeypatch.setenv("DIFFCHECK_CACHE_DIR", str(blocker))  # a file, not a folder: one warning
    assert cli.main(["check", "x*x", "--at", "x=1"]) == cli.OK
    err = capsys.readouterr().err
    assert "warning: compiled programs are not cached" in err and blocker.read_text() == "keep me"
    with pytest.raises(UsageError, match="must name a folder"):
        diffcheck.enable_compilation_cache("")  # never the current folder


# --- pytest ----------------------------------------------------------------------------------------


def test_pytest_broken_marker_file_is_one_error_and_an_exiting_case_file_no_internal_error(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's plugin, wherever pytester runs
    pytester.makepyfile(
        bad="raise RuntimeError('boom')\n",
        exits_cases="import sys\nsys.exit(0)\n",
        test_mod="""
        import pytest

        def test_unrelated():
            pass

        @pytest.mark.diffcheck_cases("bad.py")
        def test_over_bad(diffcheck_case):
            pass
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "test_mod.py")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_unrelated PASSED*", "*bad.py:1: cannot load*RuntimeError: boom*"])
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--diffcheck",
        "--diffcheck-case",
        "sigmoid_bce",
        "--diffcheck-points",
        "0",
        "--continue-on-collection-errors",
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*exits_cases.py*it called sys.exit(0) on import*"])
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 2 and outcomes["errors"] == 2  # the exiting file and the marker's bad file
    result = pytester.runpytest_subprocess("--diffcheck-points", "-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--diffcheck-points: points must be a whole number, 0 or more*"])


def test_library_api_serial_run_contains_an_exiting_case():
    exiting = Case(name="exits", fn=lambda x: sys.exit(0), wrt="x", points={"p": dict(x=1.0)})
    report = diffcheck.check_cases([exiting, SQUARE])
    assert [p.case for p in report.points] == ["exits", "square"]
    assert "sys.exit(0)" in report.points[0].error and report.points[1].ok
    assert np.isfinite(report.seconds)


# --- time: the whole point is bounded in the calling process too -------------------------------


def _sleeps(x):
    time.sleep(1000)
    return x


def _spins(x):
    while True:
        pass


# (A function that catches BaseException in its loop is stopped only by the worker pool's kill.)
@pytest.mark.parametrize("fn", [_sleeps, _spins], ids=["sleeps", "spins"])
def test_check_grad_preempts_a_function_that_hangs(fn, monkeypatch):
    from diffcheck import _watchdog

    monkeypatch.setattr(_watchdog, "GRACE", 0.5)
    start = time.monotonic()
    point = diffcheck.check_grad(fn, 1.0, timeout=1).points[0]
    assert time.monotonic() - start < 60  # generous: a bound, not a benchmark
    assert point.error.startswith("timed out after") and "--timeout 1 s for the point" in point.error
    assert "in the case's own code" in point.error and "test_hostile.py" in point.error
    assert diffcheck.check_grad(jnp.sin, 1.0, timeout=1).ok  # nothing left armed behind it


def test_preemption_off_the_main_thread_and_with_sigalrm_taken(monkeypatch):
    import threading

    from diffcheck import _watchdog

    monkeypatch.setattr(_watchdog, "GRACE", 0.5)
    got = []
    worker = threading.Thread(target=lambda: got.append(diffcheck.check_grad(_spins, 1.0, timeout=1)))
    worker.start()
    worker.join(120)
    assert not worker.is_alive() and got[0].points[0].error.startswith("timed out after")
    mine = []
    previous = signal.signal(signal.SIGALRM, lambda *a: mine.append(1))
    try:  # the user's SIGALRM handler is kept: the timer thread preempts instead
        point = diffcheck.check_grad(_spins, 1.0, timeout=1).points[0]
        assert point.error.startswith("timed out after") and signal.getsignal(signal.SIGALRM) is not previous
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert not mine


def test_huge_exact_constants_in_a_function_are_not_computed_exactly():
    from jax import lax

    start = time.monotonic()
    cases = [
        lambda x: x + (x - x + 0.5) ** 1e300,  # 0.5**1e300: 1e300 bits exactly (was 4.5 GB, minutes)
        lambda x: x + (x - x + 0.5) ** (2**40),  # integer_pow
        lambda x: x + lax.fori_loop(0, 25, lambda i, c: c * c, x - x + 1.0000001),  # squared 25 times
    ]
    for fn in cases:
        point = diffcheck.check_grad(fn, 1.0, timeout=30).points[0]
        assert point.ok and point.methods["symbolic"] == "ok", point
    assert time.monotonic() - start < 120


# --- a wrong rule of a small function is seen at any scale: the floor is the program's terms -----


@pytest.mark.parametrize("s", [1.0, 1e-10, 1e-13, 1e-16, 1e-20])
def test_a_sign_flip_of_a_tiny_function_is_a_mismatch(s):
    import jax

    @jax.custom_jvp
    def f(x):
        return s * jnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return f(x), -5 * s * jnp.cos(x) * dx

    point = diffcheck.check_grad(f, 1.0).points[0]
    assert point.status == "mismatch" and point.mismatches[0].odd_one_out == "autodiff"
    assert diffcheck.check_grad(lambda x: s * jnp.sin(x), 1.0).ok  # the right rule still agrees


def test_a_sign_flip_of_a_tiny_torch_function_is_a_mismatch_and_cancelling_terms_are_not():
    # torch's floor comes from the terms of its captured program, as JAX's from its own
    torch = pytest.importorskip("torch")

    class Flipped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return 1e-16 * torch.sin(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return -5e-16 * torch.cos(x) * g

    x = torch.tensor([0.7, 1.3], dtype=torch.float64)
    point = diffcheck.check_grad(Flipped.apply, x).points[0]
    assert point.status == "mismatch" and point.mismatches[0].odd_one_out == "autodiff"
    softplus = torch.nn.functional.softplus
    at = torch.tensor([35.0, 36.5], dtype=torch.float64)
    for f in (lambda t: softplus(t) - t, lambda t: torch.sigmoid(t) - 1):
        assert diffcheck.check_grad(f, at).ok


@pytest.mark.parametrize("inside", ["cond", "scan", "jit", "vmap"])
def test_a_sign_flip_far_below_1_is_a_mismatch_inside_control_flow(inside):
    # the terms are measured through branches, loops, calls and batching, not only straight code
    import jax

    @jax.custom_jvp
    def f(x):
        return 1e-18 * jnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return f(x), -5e-18 * jnp.cos(x) * dx

    wrap = {
        "cond": lambda x: jax.lax.cond(x[0] > 0, lambda y: f(y) + 1e-18 * y, lambda y: -y, x),
        "scan": lambda x: jax.lax.scan(lambda c, y: (c + f(y), c), 0.0, x)[0],
        "jit": jax.jit(lambda x: f(x) * x),
        "vmap": jax.vmap(lambda x: f(x) - 1e-18 * x),
    }[inside]
    point = diffcheck.check_grad(wrap, jnp.array([0.7, 1.3])).points[0]
    assert point.status == "mismatch" and point.mismatches[0].odd_one_out == "autodiff"


@pytest.mark.parametrize(
    "name",
    ["softplus(x) - x", "sigmoid(x) - 1", "tanh saturated", "softplus(x) - log1p(exp(x))", "grad of tanh(A @ y)"],
)
@pytest.mark.parametrize("order", [1, 2])
def test_results_that_cancel_terms_of_size_1_are_not_alarms(name, order):
    # the float program adds terms of size 1 that cancel to ≪ 1 (SymPy's translation cancels some
    # of them exactly as it builds them): their rounding is the floor, measured on the program
    import jax

    A = jnp.asarray(np.linspace(-1.5, 2.0, 10).reshape(2, 5))
    f, x = {
        "softplus(x) - x": (lambda x: jax.nn.softplus(x) - x, jnp.array([35.0, 36.5])),
        "sigmoid(x) - 1": (lambda x: jax.nn.sigmoid(x) - 1, jnp.array([35.0, 20.0])),
        "tanh saturated": (jnp.tanh, jnp.array([9.0, 20.0, -8.5])),
        "softplus(x) - log1p(exp(x))": (lambda x: jax.nn.softplus(x) - jnp.log1p(jnp.exp(x)), jnp.array([3.0, 5.0])),
        "grad of tanh(A @ y)": (lambda y: jax.grad(lambda y: jnp.sum(jnp.tanh(A @ y)))(y), jnp.arange(1.0, 6.0)),
    }[name]
    report = diffcheck.check_grad(f, x, order=order)
    assert report.ok, report.points[0].problems()


# --- memory: a large Jacobian is summarised, not one record per element -----------------------


def test_a_large_jacobian_lists_failures_and_the_worst_and_summarises_the_rest(monkeypatch):
    import jax

    from diffcheck import _compare

    monkeypatch.setattr(_compare, "MAX_LISTED", 50)
    monkeypatch.setattr(_compare, "MAX_FAILURES_LISTED", 5)
    x = jnp.linspace(0.1, 1, 12)
    point = diffcheck.check_grad(jnp.sin, x).points[0]
    assert point.ok and len(point.elements) == _compare.WORST_LISTED
    data = point.to_dict()
    assert data["elements_total"] == 144 and data["unlisted"]["verdicts"] == {"agree": 144 - _compare.WORST_LISTED}
    assert data["unlisted"]["digits"]["autodiff"] > 14

    @jax.custom_jvp
    def wrong(x):
        return jnp.sin(x)

    @wrong.defjvp
    def wrong_jvp(primals, tangents):
        return wrong(primals[0]), -jnp.cos(primals[0]) * tangents[0]

    point = diffcheck.check_grad(wrong, x).points[0]
    assert not point.ok and len(point.mismatches) == 5
    assert point.unlisted.counts["mismatch"] == 7  # 12 diagonal, 5 listed
    assert any("7 more mismatching elements" in p for p in point.problems())
    assert all("elements listed)" in line for line in point.diagnosis)
    json.dumps(point.to_dict())


def test_a_jacobian_past_the_memory_budget_is_checked_in_output_combinations(monkeypatch, capsys):
    import jax

    monkeypatch.setenv("DIFFCHECK_MAX_MEMORY", "0.001")  # 3,355 entries
    _options.reload_settings()
    try:
        point = diffcheck.check_grad(jnp.sin, jnp.linspace(0, 1, 100)).points[0]
        assert point.ok and point.error is None, point
        assert "gradients of 2 random combinations of the 100 outputs" in point.checks
        assert len(point.elements) == 200 and point.elements[0].name == "wᵀJ0: ∂/∂args[0][0]"
        assert point.methods["symbolic"] == "ok" and point.methods["finite_difference"] == "ok"

        @jax.custom_jvp
        def wrong(x):  # one output's derivative off by 1e-7: it shows in every combination
            return jnp.sin(x)

        @wrong.defjvp
        def wrong_jvp(primals, tangents):
            x, dx = primals[0], tangents[0]
            return wrong(x), jnp.cos(x) * dx * jnp.where(jnp.arange(x.size) == 37, 1 + 1e-7, 1.0)

        point = diffcheck.check_grad(wrong, jnp.linspace(0, 1, 100)).points[0]
        assert point.status == "mismatch" and {m.odd_one_out for m in point.mismatches} == {"autodiff"}
        assert {m.index for m in point.mismatches} == {(37,)}  # the parameter element it comes from
        assert diffcheck.check_grad(jnp.sin, jnp.linspace(0, 1, 3)).ok  # a small one is checked in full
        point = diffcheck.check_grad(jnp.sin, jnp.linspace(0, 1, 2000)).points[0]  # 2 × 2,000 > 3,355
        assert point.error.startswith(
            "the Jacobian has 4,000,000 entries (2,000 outputs × 2,000 parameters): even the gradients of 2 "
            "random output combinations need about 0.00119 GiB"
        ), point.error
        assert "over the memory budget of 0.001 GiB (--max-memory, $DIFFCHECK_MAX_MEMORY)" in point.error
    finally:
        monkeypatch.delenv("DIFFCHECK_MAX_MEMORY")
        _options.reload_settings()
    monkeypatch.setenv("DIFFCHECK_MAX_MEMORY", "lots")
    assert cli.main(["check", "x*x", "--at", "x=1"]) == cli.USAGE_ERROR
    assert "$DIFFCHECK_MAX_MEMORY='lots' is not valid" in capsys.readouterr().err


def test_a_torch_jacobian_past_the_memory_budget_is_refused_before_torch_computes_it(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("DIFFCHECK_MAX_MEMORY", "0.001")  # 3,355 entries
    _options.reload_settings()
    try:
        point = diffcheck.check_grad(torch.sin, torch.linspace(0, 1, 100, dtype=torch.float64)).points[0]
        assert point.error.startswith("the Jacobian has 10,000 entries (100 outputs × 100 parameters)"), point.error
        assert diffcheck.check_grad(torch.sin, torch.linspace(0, 1, 3, dtype=torch.float64)).ok
    finally:
        monkeypatch.delenv("DIFFCHECK_MAX_MEMORY")
        _options.reload_settings()


def test_the_step_sweeps_of_a_large_jacobian_name_their_elements():
    """Past the listed elements, a sweep still names the element it swept (not a listed one)."""
    a, b = np.linspace(0.1, 1.0, 40), np.linspace(-1.0, -0.1, 40)
    point = diffcheck.check_grad(lambda a, b: jnp.concatenate([jnp.sin(a) * b.sum(), b * a.sum()]), a, b).points[0]
    assert point.ok and point.error is None, point
    assert len(point.elements) < 80 * 80  # summarised, not listed
    assert [s.element for s in point.sweeps] == ["args[0][0]", "args[1][0]"]
