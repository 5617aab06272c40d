"""Formula input: what is accepted and checked, and what is refused (and never runs)."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffcheck
from diffcheck import _autodiff as autodiff
from diffcheck import cli, formula
from diffcheck.errors import FormulaError


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


# (formula, point, the exact derivative in each variable, by hand)
ACCEPTED = [
    ("log(1 + exp(x))", dict(x=0.3), dict(x=_sigmoid(0.3))),
    ("softplus(x) - log1p(exp(x))", dict(x=-2.0), dict(x=0.0)),
    ("x * y**2 / (1 + x)", dict(x=0.5, y=-2.0), dict(x=4 / 1.5**2, y=2 * 0.5 * -2.0 / 1.5)),
    ("-sigmoid(w * 1.1 + b)", dict(w=2.2, b=0.0), dict(w=-1.1 * _sigmoid(2.42) * (1 - _sigmoid(2.42)))),
    (
        "tanh(x) + erf(x) + sqrt(x) + pi",
        dict(x=0.25),
        dict(x=1 - math.tanh(0.25) ** 2 + 2 / math.sqrt(math.pi) * math.exp(-0.0625) + 1),
    ),
    ("relu(x) + abs(y) + max(x, y)", dict(x=0.7, y=-0.2), dict(x=2.0, y=-1.0)),
]


@pytest.mark.parametrize("text, at, want", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_formula_is_checked_three_ways(text, at, want):
    report = diffcheck.check_case(formula.case(text, at), points=0)
    [point] = report.points
    assert report.ok, report.failures()
    assert set(point.methods) >= {"symbolic", "autodiff", "finite_difference"}
    # complex_step is "unavailable: not analytic (…)" for a formula with a kink; the three always run.
    assert all(point.methods[m] == "ok" for m in ("symbolic", "autodiff", "autodiff_forward", "finite_difference"))
    for element in point.elements:
        name = element.parameter
        if name in want:
            assert element.values["symbolic"] == pytest.approx(want[name], rel=1e-12, abs=1e-15)


def test_a_formula_is_its_own_exact_reference():
    parsed = formula.parse("x * 0.1")
    # 0.1 is the binary number JAX computes with, not one tenth
    assert str(parsed.sympy()) == "3602879701896397*x/36028797018963968"
    assert parsed.variables == ("x",)


# (what is wrong, input, what the message says, the column it points at)
REFUSED = [
    ("import and call", "__import__('os').system('echo pwned')", "attribute access (.system)", 18),
    ("dunder attribute", "x.__class__", "attribute access (.__class__)", 3),
    ("unknown function", "open('f', 'w')", "unknown function 'open'", 1),
    ("builtin function", "getattr(x, 'y')", "unknown function 'getattr'", 1),
    ("called lambda", "(lambda: 1)()", "lambda is not allowed", 2),
    ("lambda value", "x + (lambda y: y)", "lambda is not allowed", 6),
    ("subscript", "x[0]", "subscripting", 1),
    ("string", "x * 'a'", "str literals are not allowed", 5),
    ("keyword", "exp(x, base=2)", "takes no keyword arguments", 13),
    ("wrong arity", "max(x)", "max() takes 2 argument(s), got 1", 1),
    ("function without a call", "exp + x", "exp is a function: call it", 1),
    ("comparison", "x < 1", "a comparison is not allowed", 1),
    ("comprehension", "[x for x in y]", "a comprehension is not allowed", 1),
    ("walrus", "(y := x)", "assignment (:=) is not allowed", 2),
    ("f-string", "f'{x}'", "an f-string is not allowed", 1),
    ("modulo", "x % 2", "the operator Mod (%) is not allowed", 1),
    ("complex number", "x * 1j", "complex literals are not allowed", 5),
    ("boolean", "x * True", "bool literals are not allowed", 5),
    ("underscore name", "_x + 1", "may not start with '_'", 1),
    ("tower of powers", "9**9**9", "the constant exponent", 1),
    ("overflowing constant", "x * (1e308 * 10)", "overflows float64", 6),
    ("ends too early", "x +", "not a formula: invalid syntax", 4),
    ("two names in a row", "x y", "not a formula: invalid syntax", 3),
    ("unclosed call", "exp(x", "'(' was never closed", 4),
    ("two statements", "x; y", "not a formula", None),
    ("too deep", "exp(" * 40 + "x" + ")" * 40, "nests deeper than 32 levels", None),
    ("too long", "x" + " + x" * 300, "over the limit of 1000", None),
    ("empty", "   ", "the formula is empty", None),
]


@pytest.mark.parametrize("text, message, column", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_formula_outside_the_allowlist_is_refused(text, message, column):
    with pytest.raises(FormulaError) as info:
        formula.parse(text)
    assert message in info.value.message
    if column is not None:
        assert info.value.column == column
        assert f"(column {column})" in str(info.value)


def test_refused_formula_never_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "pwned"
    attempts = [
        f"__import__('os').system('touch {target}')",
        f"__import__('pathlib').Path('{target}').touch()",
        f"open('{target}', 'w')",
        "exec('import os')",
    ]
    for text in attempts:
        assert cli.main(["check", text, "--at", "x=1"]) == cli.USAGE_ERROR
        assert "formula refused" in capsys.readouterr().err
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


# (what is wrong, --at arguments, message)
BAD_POINTS = [
    ("missing value", ["x=1"], "no value for y: add --at y=NUMBER"),
    ("not a number", ["x=1,y=abc"], "--at y: expected a number, got 'abc'"),
    ("not finite", ["x=1", "y=inf"], "--at y: the value must be finite"),
    ("no equals sign", ["x=1", "y"], "--at expects NAME=NUMBER, got 'y'"),
    ("twice", ["x=1,y=2", "x=3"], "--at gives x twice"),
    ("not in the formula", ["x=1,y=2,z=3"], "--at names z, not in the formula (its variables: x, y)"),
]


@pytest.mark.parametrize("at, message", [b[1:] for b in BAD_POINTS], ids=[b[0] for b in BAD_POINTS])
def test_bad_point_is_a_usage_error(at, message, capsys):
    argv = ["check", "x * y"] + [a for value in at for a in ("--at", value)]
    assert cli.main(argv) == cli.USAGE_ERROR
    assert message in capsys.readouterr().err


def test_cli_check_prints_the_derivatives_and_writes_json(tmp_path, capsys):
    target = tmp_path / "formula.json"
    argv = ["check", "log(1 + exp(x)) * y", "--at", "x=0.3,y=2", "--wrt", "x", "--json", str(target)]
    assert cli.main(argv) == cli.OK
    out = capsys.readouterr().out
    assert "formula" in out and "agree" in out
    [line] = [line for line in out.splitlines() if line.startswith("∂/∂x: symbolic ")]
    assert float(line.split()[2].rstrip(",")) == pytest.approx(2 * _sigmoid(0.3), rel=1e-14)
    data = json.loads(target.read_text())
    assert data["ok"] and [e["parameter"] for e in data["points"][0]["elements"]] == ["x"]


def test_cli_check_outside_the_domain_exits_1(capsys):
    assert cli.main(["check", "sqrt(x)", "--at", "x=-1"]) == cli.MISMATCH
    assert "output element 0 is nan" in capsys.readouterr().out


def test_cli_check_higher_order(capsys):
    assert cli.main(["check", "x**3 * y", "--at", "x=0.5", "--at", "y=2", "--order", "2"]) == cli.OK
    assert "∂/∂x ∂/∂x: symbolic 6" in capsys.readouterr().out


def test_cli_check_a_kink_warns_and_strict_fails(capsys):
    assert cli.main(["check", "abs(x)", "--at", "x=0"]) == cli.OK
    assert "kink" in capsys.readouterr().out
    assert cli.main(["check", "abs(x)", "--at", "x=0", "--strict"]) == cli.MISMATCH


@pytest.mark.parametrize("name", sorted(formula.FUNCTIONS))
def test_each_function_means_the_same_in_jax_and_sympy(name):
    arity = formula.FUNCTIONS[name][0]
    parsed = formula.parse(f"{name}(x)" if arity == 1 else f"{name}(x, y)")
    at = {"x": 0.3, "y": 0.7}
    with autodiff.precision("float64"):
        jax_value = float(parsed.jax()(**{v: at[v] for v in parsed.variables}))
    sympy_value = float(parsed.sympy().subs({s: at[s.name] for s in parsed.sympy().free_symbols}).evalf(30))
    assert jax_value == pytest.approx(sympy_value, rel=1e-14, abs=1e-15)


def test_both_backends_cover_exactly_the_allowed_functions():
    operators = {"number", "add", "sub", "mul", "div", "pow"}
    assert set(formula._jax_backend()) - operators == set(formula.FUNCTIONS)
    assert set(formula._sympy_backend()) - operators == set(formula.FUNCTIONS)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="xy_.()[]{}'\"=:,;+-*/%@<>!~ 0123456789eabcdfgijlmnoprstuvw\\", max_size=60))
def test_any_text_is_either_a_formula_or_refused_cleanly(text):
    try:
        parsed = formula.parse(text)
    except FormulaError as exc:
        assert exc.message
        return
    assert all(v.isidentifier() and not v.startswith("_") for v in parsed.variables)
