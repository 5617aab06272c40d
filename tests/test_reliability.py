"""Bad input gets a clear error that says what and where, and nothing else is lost.

Each case below is one bad input and the message it produces.
"""

import json
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from samples import without_timings

import diffcheck
from diffcheck import Case, cli
from diffcheck import _translate as symbolic


def _point(report):
    [point] = report.points
    return point


def _case(fn, wrt, point, **kwargs):
    return Case(name="bad", fn=fn, wrt=wrt, points={"p": point}, **kwargs)


# (what is wrong, case, the error message it must produce)
BAD_POINTS = [
    (
        "raises while traced",
        _case(lambda x: (_ for _ in ()).throw(ValueError("boom")), "x", dict(x=1.0)),
        "the function raised ValueError: boom",
    ),
    ("NaN in a parameter", _case(lambda x: jnp.sum(x), "x", dict(x=np.array([1.0, np.nan]))), "parameter x[1] is nan"),
    (
        "Inf in the data",
        _case(lambda x, d: x * jnp.sum(d), "x", dict(x=1.0, d=np.array([0.0, 0.0, np.inf]))),
        "data d[2] is inf",
    ),
    ("NaN output: outside the domain", _case(lambda x: jnp.log(x), "x", dict(x=-1.0)), "output element 0 is nan"),
    ("Inf output: overflow", _case(lambda x: jnp.exp(x), "x", dict(x=1000.0)), "output element 0 is inf"),
    ("integer parameter", _case(lambda n: n * 2.0, "n", dict(n=np.array([1, 2]))), "parameter n: integer values"),
    ("complex parameter", _case(lambda z: jnp.abs(z), "z", dict(z=1 + 2j)), "parameter z: complex values"),
    (
        "mismatched shapes",
        _case(lambda W, x: jnp.sum(W @ x), "W", dict(W=np.ones((2, 3)), x=np.ones(4))),
        "dot_general requires contracting dimensions to have the same shape",
    ),
    (
        "Python control flow on a traced value",
        _case(lambda x: x if x > 0 else -x, "x", dict(x=1.0)),
        "not traceable by JAX",
    ),
    ("complex output", _case(lambda x: x * 1j, "x", dict(x=1.0)), "complex128 values"),
]


@pytest.mark.parametrize("case, message", [b[1:] for b in BAD_POINTS], ids=[b[0] for b in BAD_POINTS])
def test_bad_point_is_a_clear_error(case, message):
    report = diffcheck.check_case(case)
    point = _point(report)
    assert not report.ok
    assert point.status == "error"
    assert message in point.error
    assert "Traceback" not in str(report)


def test_one_broken_case_does_not_stop_the_others(tmp_path, capsys):
    (tmp_path / "cases.py").write_text(
        textwrap.dedent(
            """
            import jax.numpy as jnp
            from diffcheck import Case

            broken = Case(name="broken", fn=lambda x: jnp.log(x), wrt="x", points={"p": dict(x=-2.0)})
            fine = Case(name="fine", fn=lambda x: jnp.sin(x), wrt="x", points={"p": dict(x=0.5)})
            """
        )
    )
    assert cli.main(["run", str(tmp_path)]) == cli.MISMATCH
    out = capsys.readouterr().out
    assert "broken @ p (float64): error: output element 0 is nan" in out
    assert "fine" in out and "1 agree" in out


def test_sampler_that_fails_is_reported_for_its_case_only():
    def sample(rng):
        raise RuntimeError("no points today")

    case = Case(name="c", fn=jnp.sin, wrt="x", points={"p": dict(x=0.1)}, sample=sample)
    report = diffcheck.check_case(case)
    assert "drawing random points failed: RuntimeError: no points today" in str(report)


def test_unknown_primitive_leaves_the_other_methods_running():
    spectrum = lambda x: jnp.sum(jnp.fft.rfft(x).real) * x[1]  # noqa: E731 - complex values: untranslated
    case = _case(spectrum, "x", dict(x=np.array([0.3, 1.0, 2.0])))
    point = _point(diffcheck.check_case(case))
    assert point.methods["symbolic"].startswith("unavailable: no SymPy translation for primitive 'fft'")
    assert point.methods["autodiff"] == "ok" and point.ok


def test_symbolic_time_budget_reports_timed_out_and_goes_on():
    [case] = [c for c in diffcheck.load_cases() if c.name == "simple_net"]
    start = time.perf_counter()
    report = diffcheck.check_case(case, points=0, order=1, timeout=1e-3)
    point = _point(report)
    assert point.methods["symbolic"].startswith("timed out: the symbolic derivatives took over 0.001 s")
    assert point.ok  # autodiff and finite differences still agree
    assert time.perf_counter() - start < 60


def test_symbolic_size_budget_reports_too_large(monkeypatch):
    monkeypatch.setattr(symbolic, "MAX_NODES", 50)
    report = diffcheck.check_grad(lambda x: jnp.sum(jnp.tanh(x) ** 2), np.linspace(-1, 1, 20))
    assert _point(report).methods["symbolic"].startswith("too large: the expression has over 50 distinct nodes")


def test_internal_error_says_it_is_one(monkeypatch):
    from diffcheck import _numeric

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(_numeric, "jax_methods", broken)
    report = diffcheck.check_grad(jnp.sin, 0.3)
    assert "internal error in diffcheck (please report): RuntimeError: a bug" in _point(report).error


def test_cli_internal_error_exits_3(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "_run", broken)
    assert cli.main(["run"]) == cli.INTERNAL_ERROR
    assert "internal error" in capsys.readouterr().err


def test_invalid_case_definitions_are_named():
    with pytest.raises(diffcheck.CaseError, match="point 'p': no value for parameter"):
        Case(name="c", fn=jnp.sin, wrt="x", points={"p": dict(y=1.0)})
    with pytest.raises(diffcheck.CaseError, match="not a Python identifier"):
        Case(name="c", fn=jnp.sin, wrt="x y", points={"p": {"x y": 1.0}})
    with pytest.raises(diffcheck.CaseError, match="has shape"):
        Case(name="c", fn=jnp.sin, wrt="x", points={"p": dict(x=[1.0, 2.0])}, expected={"p": dict(x=1.0)})
    with pytest.raises(diffcheck.CaseError, match="must be a SymPy expression"):
        Case.from_sympy("c", "__import__('os')", points={"p": {}})


def test_same_seed_same_report(tmp_path):
    runs = []
    for i in range(2):
        target = tmp_path / f"r{i}.json"
        argv = ["run", "--case", "sigmoid_bce", "--case", "tensor_ranks", "--points", "3", "--seed", "7"]
        assert cli.main([*argv, "--json", str(target)]) == cli.OK
        runs.append(without_timings(json.loads(target.read_text())))
    assert runs[0] == runs[1]
    # sigmoid_bce: (1 named + 3 random points) × orders 1, 2; tensor_ranks: (1 + 3) × order 1.
    assert len(runs[0]["points"]) == 4 * 2 + 4


def test_ctrl_c_writes_the_partial_report_and_exits_2(tmp_path):
    target = tmp_path / "partial.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "diffcheck", "run", "--points", "5", "--json", str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stderr:  # wait until the first case is done and the second is running
        if line.startswith("[2/"):
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == cli.INTERRUPTED, err
    assert "interrupted: the report above is partial" in err
    data = json.loads(target.read_text())
    assert data["interrupted"] is True and len(data["points"]) >= 1


def test_gpu_request_without_gpu_is_a_usage_error(capsys):
    if jax.devices()[0].platform == "gpu":
        pytest.skip("a GPU is visible")
    assert cli.main(["run", "--device", "gpu", "--case", "sigmoid_bce"]) == cli.USAGE_ERROR
    assert "pip install" in capsys.readouterr().err


def test_no_string_reaches_eval_exec_or_sympy_parsing():
    import re
    from pathlib import Path

    root = Path(diffcheck.__file__).parent
    sources = list(root.glob("*.py")) + list((root / "cases").glob("*.py"))
    assert len(sources) > 5
    pattern = re.compile(r"(?<!def )(?<!\.)\b(eval|exec|sympify|parse_expr)\(|sympy\.S\(")
    offenders = [
        f"{p.name}:{i}" for p in sources for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)
    ]
    assert offenders == []
