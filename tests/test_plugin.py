"""The pytest plugin: light to load, assert_grad's failures, cases as parameters, the library as tests.

Each test runs pytest in a subprocess (pytester), as a user's run would: a fresh interpreter shows
what the plugin imports, and JAX's state stays out of this process.
"""

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def this_checkout(monkeypatch):
    """pytester's subprocesses load the plugin of this checkout, not another installed copy."""
    from pathlib import Path

    import diffcheck

    monkeypatch.setenv("PYTHONPATH", str(Path(diffcheck.__file__).resolve().parents[1]))


WRONG_RULE = """
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def sin_with_wrong_rule(x):
        return jnp.sin(x)

    # a derivative rule off by a relative 1e-7
    sin_with_wrong_rule.defvjp(lambda x: (sin_with_wrong_rule(x), x), lambda x, g: (g * jnp.cos(x) * (1 + 1e-7),))
"""

USER_CASES = (
    WRONG_RULE
    + """
    from diffcheck import Case, as_case

    @as_case(points={"p": dict(x=0.4)}, tags=("mine", "wrong"))
    def wrong_rule(x):
        return sin_with_wrong_rule(x)

    @as_case(points={"p": dict(x=0.4)}, tags=("mine",))
    def right_rule(x):
        return jnp.sin(x) * x

    cube = Case(name="cube", fn=lambda z: z**3, wrt="z", points={"p": dict(z=0.5)}, tags=("mine",))
"""
)


def test_loading_the_plugin_imports_nothing_heavy_and_case_files_wait_for_the_option(pytester):
    pytester.makepyfile(
        my_cases=USER_CASES,  # not collected without --diffcheck
        test_light="""
        import sys

        def test_modules():
            assert "diffcheck.pytest_plugin" in sys.modules  # loaded through the pytest11 entry point
            heavy = [m for m in ("jax", "sympy", "mpmath", "torch", "matplotlib") if m in sys.modules]
            assert heavy == []
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_assert_grad_failure_shows_the_test_line_and_the_table_not_diffcheck_frames(pytester):
    pytester.makepyfile(
        test_grad=WRONG_RULE
        + """
    import diffcheck

    def test_rule():
        diffcheck.assert_grad(sin_with_wrong_rule, 0.4)

    def test_right():
        report = diffcheck.assert_grad(lambda w, b: jnp.tanh(w * 1.1 + b), 2.2, 0.0)
        assert report.ok
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            ">*diffcheck.assert_grad(sin_with_wrong_rule, 0.4)",
            "E*AssertionError: diffcheck: derivatives disagree",
            "E*case*point*dtype*order*sym ~ ad*verdict",
            "E*sin_with_wrong_rule*args*float64*mismatch",
            "E*args?0?: autodiff=*odd one out: autodiff*",
        ]
    )
    assert "diffcheck/check.py" not in result.stdout.str()  # diffcheck's own frames are hidden


def test_marker_parametrizes_a_test_over_cases(pytester):
    pytester.makepyfile(my_cases=USER_CASES)
    pytester.makepyfile(
        test_over_cases="""
        import pytest
        import diffcheck

        @pytest.mark.diffcheck_cases("my_cases.py", tag="mine")
        def test_mine(diffcheck_case):
            diffcheck.assert_case(diffcheck_case, points=0)

        @pytest.mark.diffcheck_cases(name=["sigmoid_bce", "softplus"])
        def test_library(diffcheck_case):
            assert diffcheck_case.name in ("sigmoid_bce", "softplus")

        def test_all_of_the_library(diffcheck_case):
            pass
        """,
        test_bad="""
        import pytest

        @pytest.mark.diffcheck_cases(name="simple_nett")
        def test_it(diffcheck_case):
            pass
        """,
    )
    argv = ["-p", "no:cacheprovider", "-v", "-k", "not all_of", "--continue-on-collection-errors"]
    result = pytester.runpytest_subprocess(*argv)
    result.stdout.fnmatch_lines(
        [
            "*test_mine?wrong_rule? FAILED*",
            "*test_mine?right_rule? PASSED*",
            "*test_mine?cube? PASSED*",
            "*test_library?softplus? PASSED*",  # in the library's order
            "*test_library?sigmoid_bce? PASSED*",
            "E*AssertionError: diffcheck: case 'wrong_rule': derivatives disagree",
            "E*wrong_rule @ p (float64): x: autodiff=*odd one out: autodiff*",
        ]
    )
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["errors"]) == (4, 1, 1)
    # an unknown case name is one error item, in diffcheck's words
    result.stdout.fnmatch_lines(["*diffcheck_cases on test_bad.py::test_it: unknown case(s) simple_nett*"])


def test_diffcheck_option_runs_the_library_and_case_files_as_tests(pytester):
    pytester.makepyfile(my_cases=USER_CASES, test_plain="def test_plain():\n    pass\n")
    argv = ["--diffcheck", "--diffcheck-points", "0", "--diffcheck-case", "sigmoid_bce", "-p", "no:cacheprovider"]
    result = pytester.runpytest_subprocess(*argv, "--diffcheck-tag", "mine", "--diffcheck-tag", "tutorial", "-v")
    result.stdout.fnmatch_lines(["*test_plain.py::test_plain PASSED*", "diffcheck::sigmoid_bce PASSED*"])
    result.assert_outcomes(passed=2)

    # a case's tags are keywords: -k selects by tag, -m diffcheck only the cases; a broken case
    # file is a collection error in one line, file and line first
    pytester.makepyfile(broken_cases="import jax\nraise RuntimeError('boom')\n")
    argv = ["--diffcheck", "--diffcheck-points", "0", "-m", "diffcheck", "-k", "mine", "-v"]
    result = pytester.runpytest_subprocess(*argv, "--continue-on-collection-errors")
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["errors"]) == (2, 1, 1)
    result.stdout.fnmatch_lines(["*broken_cases.py:2: cannot load *broken_cases.py: RuntimeError: boom"])
    assert "Traceback" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "my_cases.py::wrong_rule FAILED*",
            "*diffcheck case 'wrong_rule' (*my_cases.py): derivatives disagree",
            "wrong_rule @ p (float64): x: autodiff=*odd one out: autodiff*",
        ]
    )


def test_unknown_case_on_the_command_line_is_a_usage_error(pytester):
    result = pytester.runpytest_subprocess("--diffcheck", "--diffcheck-case", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--diffcheck-case nope: no such case*"])


SIGMOID_CASE = """
    import jax
    import jax.numpy as jnp
    from diffcheck import as_case

    @jax.custom_jvp
    def sigmoid(x):
        return 1 / (1 + jnp.exp(-x))

    # the rule cancels for large x: 1 − ans
    sigmoid.defjvp(lambda p, t: (sigmoid(p[0]), sigmoid(p[0]) * (1 - sigmoid(p[0])) * t[0]))

    @as_case(points={"saturated": dict(x=17.3)}, tags=("mine",))
    def cancelling_sigmoid(x):
        return sigmoid(x)
"""


def test_strict_precision_option_fails_a_case_that_only_warns_by_default(pytester):
    pytester.makepyfile(my_cases=SIGMOID_CASE)
    argv = ["--diffcheck", "--diffcheck-points", "0", "--diffcheck-case", "cancelling_sigmoid"]
    argv += ["-p", "no:cacheprovider"]
    pytester.runpytest_subprocess(*argv).assert_outcomes(passed=1)
    strict = pytester.runpytest_subprocess(*argv, "--diffcheck-strict-precision")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*(strict precision) autodiff has 8.4 correct digits*lost at sub*"])
