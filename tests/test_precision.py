"""Precision: autodiff's correct digits against the exact value, what the problem allows (its condition
number at the point), avoidable loss as a warning (a failure under precision="strict"), and the
operation that lost the digits.

The rules are written here from their formulas, as `jax.custom_jvp`: the cancelling ones that shipped
in public projects and their stable twins, which must pass both ways.
"""

import json
import math
import xml.etree.ElementTree as ET

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffcheck
from diffcheck import UsageError, check_grad
from diffcheck._fragment import table_html
from diffcheck._precision import MARGIN, dtype_digits
from diffcheck.junit import to_junit


def _rule(primal, tangent):
    """`primal` with the derivative rule `tangent(x)` (the factor multiplying the tangent)."""
    f = jax.custom_jvp(primal)
    f.defjvp(lambda p, t: (primal(p[0]), tangent(p[0]) * t[0]))
    return f


def _sigmoid(x):
    return 1 / (1 + jnp.exp(-x))


def _sigmoid_cancelling(x):
    ans = _sigmoid(x)
    return ans * (1 - ans)  # 1 − ans cancels for large x


def _tanh_cancelling(x):
    y = jnp.tanh(x)
    return 1 - y**2  # 1 − tanh² cancels for large |x|


def _expm1_cancelling(x):
    return jnp.expm1(x) + 1  # expm1(x) + 1 cancels for very negative x


def _gelu(x):
    return 0.5 * x * (1 + jax.scipy.special.erf(x / jnp.sqrt(2.0)))


def _gelu_six_digits(x):
    # the forward in full precision, the backward with 6-digit constants
    return 0.5 * (1 + jax.scipy.special.erf(x * 0.707107)) + x * 0.398942 * jnp.exp(-0.5 * x**2)


SIXTH_FLOAT32 = float(np.float32(1 / 6))

CANCELLING = [  # (name, rule, point, the primitive that loses the digits)
    ("sigmoid ans·(1 − ans)", _rule(_sigmoid, _sigmoid_cancelling), 17.3, "sub"),
    ("tanh 1 − tanh²", _rule(jnp.tanh, _tanh_cancelling), 8.1, "sub"),
    ("tanh 1 − tanh² (negative)", _rule(jnp.tanh, _tanh_cancelling), -7.6, "sub"),
    ("expm1 backward expm1(x) + 1", _rule(jnp.expm1, _expm1_cancelling), -13.2, "add"),
]
STABLE = [
    ("sigmoid σ(x)·σ(−x)", _rule(_sigmoid, lambda x: _sigmoid(x) * _sigmoid(-x)), 17.3),
    ("tanh 1/cosh²", _rule(jnp.tanh, lambda x: 1 / jnp.cosh(x) ** 2), 8.1),
    ("expm1 backward exp(x)", _rule(jnp.expm1, jnp.exp), -13.2),
]
WRONG_CONSTANTS = [
    ("x³/6 with 1/6 as float32", _rule(lambda x: x**3 / 6, lambda x: 3 * x**2 * SIXTH_FLOAT32), 1.3),
    ("GELU backward with 6-digit constants", _rule(_gelu, _gelu_six_digits), 0.8),
]


def _check(rule, x, **options):
    return check_grad(lambda v: rule(v), np.float64(x), **options)


@pytest.mark.parametrize("name, rule, x, primitive", CANCELLING, ids=[c[0] for c in CANCELLING])
def test_a_cancelling_rule_is_warned_by_default_and_fails_under_strict(name, rule, x, primitive):
    report = _check(rule, x)
    point = report.points[0]
    (element,) = point.elements
    assert report.ok and element.verdict == "imprecise"
    loss = element.precision
    assert loss.avoidable and loss.lost >= 3, loss
    assert loss.digits < loss.allowed - math.log10(MARGIN)
    assert loss.allowed > 14  # a condition number of about |x|: the problem allows almost every digit
    assert loss.where.startswith(primitive + " ") and "test_precision.py" in loss.where, loss.where
    warnings = report.precision_warnings()
    assert len(warnings) == 2 and "digits are lost at " + primitive in warnings[1]
    assert "1 avoidable precision losses (warnings, not failures)" in report.summary()
    assert "Avoidable precision loss" in str(report)

    strict = _check(rule, x, precision="strict")
    assert not strict.ok and strict.points[0].status == "mismatch"
    assert any(line.startswith("(strict precision) autodiff has") for line in strict.points[0].problems())
    assert "failures: strict precision" in strict.summary()


@pytest.mark.parametrize("name, rule, x", STABLE, ids=[c[0] for c in STABLE])
@pytest.mark.parametrize("precision", ["warn", "strict"])
def test_the_stable_twin_passes_both_ways(name, rule, x, precision):
    report = _check(rule, x, precision=precision)
    (element,) = report.points[0].elements
    assert report.ok and element.verdict == "agree" and not report.points[0].imprecise
    assert element.precision is None  # never suspicious: its second derivative was not even taken
    assert element.digits["autodiff"] >= 15


@pytest.mark.parametrize("name, rule, x", WRONG_CONSTANTS, ids=[c[0] for c in WRONG_CONSTANTS])
@pytest.mark.parametrize("precision", ["warn", "strict"])
def test_a_wrong_constant_is_still_a_mismatch(name, rule, x, precision):
    report = _check(rule, x, precision=precision)
    (element,) = report.points[0].elements
    assert not report.ok and element.verdict == "mismatch" and element.odd_one_out == "autodiff"


def test_jax_own_logistic_loses_digits_at_large_x():
    report = check_grad(jax.nn.sigmoid, 17.3)
    (element,) = report.points[0].elements
    assert report.ok and element.verdict == "imprecise" and element.precision.where.startswith("sub")


def test_an_ill_conditioned_derivative_is_not_accused():
    # J = exp(x) − e at x = 1 + 1e-9 cancels because the problem does: its condition number is 1e9,
    # so 7 digits is all any evaluation can have.
    e = float(np.e)
    report = check_grad(lambda x: jnp.exp(x) - e * x + 1, 1 + 1e-9, precision="strict")
    (element,) = report.points[0].elements
    assert report.ok and element.verdict == "agree"
    assert element.precision is not None and not element.precision.avoidable
    assert element.precision.condition > 1e8 and element.precision.digits < 10


def test_float32_is_judged_against_float32():
    stable = _check(STABLE[0][1], 5.0, dtype="float32", precision="strict")
    assert stable.ok and not stable.points[0].imprecise
    assert stable.points[0].elements[0].digits["autodiff"] <= dtype_digits(np.float32)
    smooth = check_grad(lambda x: jnp.sum(jnp.sin(x) * jnp.exp(x)), np.linspace(-2, 2, 5), dtype="float32")
    assert smooth.ok and not smooth.points[0].imprecise, smooth


def test_digits_are_capped_at_the_dtype_digits():
    report = check_grad(lambda x: 2 * x, 3.0)
    assert report.points[0].digits()["autodiff"] == pytest.approx(dtype_digits(np.float64))
    assert dtype_digits(np.float64) == pytest.approx(15.95, abs=0.01)
    assert dtype_digits(np.float32) == pytest.approx(7.22, abs=0.01)


def test_the_function_value_losing_digits_is_named_and_the_translation_kept():
    # log(1 − σ(30)) keeps 4.5 digits in float64: the float program's loss, not a translation bug.
    report = check_grad(lambda x: jnp.log(1 - jax.nn.sigmoid(x)), 30.0)
    point = report.points[0]
    assert point.methods["symbolic"] == "ok" and report.ok
    loss = point.value_precision
    assert loss.subject == "the function's value" and loss.avoidable and loss.where.startswith("sub ")
    assert loss.digits == pytest.approx(4.5, abs=0.1)
    assert not check_grad(lambda x: jnp.log(1 - jax.nn.sigmoid(x)), 30.0, precision="strict").ok


@pytest.mark.parametrize(
    "translated, value, loses",
    [
        (lambda x: jnp.log(1 - jax.nn.sigmoid(x)), lambda x: jnp.log(1 - jax.nn.sigmoid(x)), True),
        (jnp.sin, jnp.tanh, False),  # other mathematics: as far from JAX's value in float as exactly
        (lambda x: jnp.log(1 - jax.nn.sigmoid(x)), lambda x: jnp.log1p(-jax.nn.sigmoid(x)) + 1e-3, False),
    ],
)
def test_only_a_translation_whose_float_run_is_jax_value_is_a_float_loss(translated, value, loses):
    from diffcheck import _graph, _translate
    from diffcheck._exact import _float_loss

    x = np.array([30.0])
    tr = _translate.translate(lambda v: translated(v[0]), [x], ["x"])
    outputs = [e for out in tr.outputs for e in out.reshape(-1)]
    symbols = [s for sym in tr.symbols for s in sym.reshape(-1)]
    exact = np.array([float(v) for v in _graph.evaluate(outputs, symbols, x, tr.definitions)])
    with jax.enable_x64(True):
        jax_value = np.array([float(value(jnp.float64(30.0)))])
    assert _float_loss(outputs, symbols, x, tr.definitions, exact, jax_value) is loses


def test_renderings_carry_the_precision_fields():
    report = _check(CANCELLING[0][1], 17.3)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["schema"] == "diffcheck.report/1"
    point = data["points"][0]
    assert point["precision"] == "warn" and point["value_precision"] is None
    fields = point["elements"][0]["precision"]
    assert fields["avoidable"] is True and fields["where"].startswith("sub")
    assert set(fields) == {
        "subject",
        "digits",
        "allowed",
        "lost",
        "condition",
        "avoidable",
        "value",
        "exact",
        "at",
        "where",
    }
    assert fields["at"] == "args[0] = 17.3"
    assert point["elements"][0]["verdict"] == "imprecise"
    out = ET.fromstring(to_junit(report)).find(".//system-out")
    assert out is not None and "correct digits" in out.text
    assert ET.fromstring(to_junit(report)).find(".//failure") is None
    html = table_html(report)
    assert "⚠" in html and "where the problem allows" in html
    assert "8.4" in report.by_case_table()  # autodiff's fewest correct digits


def test_precision_option_is_validated():
    with pytest.raises(UsageError, match="precision must be one of 'warn', 'strict', got 'lenient'"):
        check_grad(jnp.sin, 0.3, precision="lenient")
    with pytest.raises(UsageError, match="precision must be one of"):
        diffcheck.check_case(diffcheck.Case("c", lambda x: x**2, wrt=("x",), points={"p": {"x": 1.0}}), precision=True)


def test_command_line_strict_precision(tmp_path, capsys):
    from diffcheck import cli

    assert cli.main(["check", "sigmoid(x)", "--at", "x=17.3"]) == 0
    assert "avoidable precision losses (warnings" in capsys.readouterr().out
    assert cli.main(["check", "sigmoid(x)", "--at", "x=17.3", "--strict-precision"]) == 1
    assert "(strict precision) autodiff has 8.4 correct digits" in capsys.readouterr().out


def test_html_report_has_the_precision_section():
    pytest.importorskip("matplotlib")
    from diffcheck import to_html

    html = to_html(_check(CANCELLING[0][1], 17.3) + check_grad(jnp.sin, 0.3))
    assert "<h2>Precision</h2>" in html and "digits are lost at sub" in html
    assert "outlined in orange with ⚠" in html


def test_a_structural_zero_derivative_is_not_an_avoidable_loss():
    """corrcoef's diagonal is 1 whatever x is: the exact derivative is 0, and the 30-digit
    evaluation leaves its rounding (±1e-42); autodiff's 0 (or 1e-17) is no loss of digits."""
    x = np.random.default_rng(0).standard_normal((2, 5))
    [point] = diffcheck.check_grad(jnp.corrcoef, x).points
    assert point.ok and not point.imprecise, [p.describe() for p in point.imprecise]
