"""The built-in case library, run as tests: every case agrees, in float64 and in float32."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import diffcheck

CASES = diffcheck.load_cases()
ROOT = Path(__file__).resolve().parents[1]


def test_library_holds_the_tutorial_cases():
    names = {c.name for c in CASES}
    assert {"sigmoid_bce", "simple_net", "tensor_ranks", "tanh_net_mse"} <= names
    assert sum(n.startswith("chain_") for n in names) >= 3


def test_library_covers_the_llm_building_blocks_and_jax_nn():
    names = {c.name for c in CASES}
    assert {"softmax_cross_entropy", "bce_with_logits", "mse", "logistic_regression"} <= names
    assert {"logsumexp", "log_softmax", "softmax", "layer_norm"} <= names
    assert {"gelu_exact", "gelu_tanh", "softplus", "log_sigmoid", "silu"} <= names
    assert {"causal_self_attention", "gpt2_block"} <= names
    nn = {"sigmoid", "log_sigmoid", "softplus", "relu", "relu6", "elu", "gelu", "gelu_tanh", "silu", "mish"}
    nn |= {"squareplus", "sparse_plus", "softmax", "log_softmax", "logsumexp", "standardize"}
    assert {f"jax_nn_{n}" for n in nn} <= names
    tags = {t for c in CASES for t in c.tags}
    assert {
        "tutorial",
        "loss",
        "activation",
        "normaliser",
        "transformer",
        "hard-point",
        "higher-order",
        "jax.nn",
    } <= tags
    assert {k for c in CASES for k in c.orders} == {1, 2, 3, 4}
    second = {c.name for c in CASES if 2 in c.orders}
    assert {"sigmoid_bce", "logistic_regression", "softmax_cross_entropy", "simple_net"} <= second


def test_gpt2_block_checks_every_parameter_tensor():
    [case] = [c for c in CASES if c.name == "gpt2_block"]
    [point] = diffcheck.check_case(case, points=0).points
    assert point.ok and point.methods["symbolic"] == "ok"
    assert {e.parameter for e in point.elements} == set(case.wrt)
    assert len(point.elements) == sum(np.size(case.points["seeded"][p]) for p in case.wrt)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_agrees(case, dtype):
    """Every case, at every one of its orders, in both precisions: no false alarm anywhere."""
    report = diffcheck.check_case(case, dtype=dtype, points=2, seed=0)
    assert report.points, "no points were checked"
    assert {p.order for p in report.points} == set(case.orders)
    assert report.ok, str(report)
    for point in report.points:
        assert point.methods["symbolic"] == "ok", point.methods
        assert point.methods["finite_difference"] == "ok"
    # Every report is valid JSON: plain numbers and bools, no NaN (--json must never crash after a run).
    json.loads(json.dumps(report.to_dict(), allow_nan=False))


def test_tutorial_printed_gradients():
    [case] = [c for c in CASES if c.name == "sigmoid_bce"]
    report = diffcheck.check_case(case, points=0, order=1)
    [point] = report.points
    checked = {x.parameter: x for x in point.expectations}
    assert checked["w"].ok and checked["b"].ok
    values = {e.parameter: e.values for e in point.elements}
    assert round(values["w"]["symbolic"], 4) == -0.0898
    assert round(values["b"]["symbolic"], 4) == -0.0817
    assert round(values["w"]["autodiff"], 4) == -0.0898


def test_simple_net_checks_all_61_parameters():
    [case] = [c for c in CASES if c.name == "simple_net"]
    [point] = diffcheck.check_case(case, points=0, order=1).points
    assert len(point.elements) == 61
    assert {e.parameter for e in point.elements} == {"W1", "b1", "W2", "b2"}


def test_a_wrong_expected_value_fails_the_point():
    [case] = [c for c in CASES if c.name == "sigmoid_bce"]
    import dataclasses

    wrong = dataclasses.replace(case, expected={"tutorial": dict(w=-0.0899, b=-0.0817)})
    report = diffcheck.check_case(wrong, points=0, order=1)
    assert not report.ok
    assert "expected d/dw = -0.0899" in str(report)


def _run(args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "diffcheck", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_library_loads_from_any_working_directory(tmp_path):
    result = _run(["list"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sigmoid_bce" in result.stdout and "simple_net" in result.stdout


def test_library_loads_from_a_regular_install(tmp_path):
    site = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import diffcheck; print(diffcheck.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.strip().startswith(str(site))
    result = _run(["run", "--case", "sigmoid_bce", "--points", "0"], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sigmoid_bce" in result.stdout
