"""What a wrong rule looks like: the pattern of autodiff's error, in every report format."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffcheck

W = np.arange(9.0).reshape(3, 3) / 10
X = np.array([0.3, -0.5, 0.2])


def _rule(change):
    @jax.custom_vjp
    def f(W, x):
        return jnp.sum(jnp.tanh(W @ x))

    def fwd(W, x):
        return f(W, x), (W, x)

    def bwd(res, g):
        W, x = res
        s = 1 - jnp.tanh(W @ x) ** 2
        return change(g * jnp.outer(s, x)), g * W.T @ s

    f.defvjp(fwd, bwd)
    return f


PATTERNS = [
    ("factor", lambda gW: 2.0 * gW, "autodiff = 2 × exact on all 9 nonzero elements"),
    ("tiny scale", lambda gW: (1 + 1e-6) * gW, "autodiff = 1.000001 × exact"),
    ("sign", lambda gW: -gW, "a sign flip: autodiff = -1 × exact"),
    ("transpose", lambda gW: gW.T, "autodiff[i, j] = exact[j, i] — a transpose (square 3×3)"),
    ("zeros", lambda gW: 0 * gW, "autodiff is 0 on all 9 elements where the exact derivative is not"),
    ("subset", lambda gW: gW.at[1, 2].multiply(3.0), "off on 1 of 9 elements only ([1,2])"),
]


@pytest.mark.parametrize("change, expected", [p[1:] for p in PATTERNS], ids=[p[0] for p in PATTERNS])
def test_the_pattern_of_a_wrong_rule_is_named(change, expected):
    report = diffcheck.check_grad(_rule(change), W, X)
    [point] = report.points
    assert not report.ok
    assert any(line.startswith("args[0]: ") and expected in line for line in point.diagnosis), point.diagnosis
    assert not any(line.startswith("args[1]") for line in point.diagnosis)  # its rule is right


def test_the_pattern_reaches_every_report():
    report = diffcheck.check_grad(_rule(lambda gW: gW.T), W, X)
    line = "autodiff[i, j] = exact[j, i]"
    assert line in str(report)
    assert line in json.dumps(report.to_dict()["points"][0]["diagnosis"], ensure_ascii=False)
    assert line in diffcheck.to_junit(report)
    assert line in diffcheck.to_html(report).replace("&#x27;", "'")


def test_a_right_rule_has_no_pattern():
    assert diffcheck.check_grad(_rule(lambda gW: gW), W, X).points[0].diagnosis == ()
