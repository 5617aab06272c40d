"""A fast subset of the corpus from JAX's own tests (benchmarks/_jax_corpus.py), one test per entry.

What a user relies on: on correct code diffcheck agrees (and `strict=True` does not fail a point that
only looks like a kink); where JAX itself is wrong, diffcheck names the method that is wrong, and
only where it is wrong. The entries are chosen to cover each class of issue 13; an entry that fails
today because of a diffcheck bug is marked `xfail(strict=True)` with its class, so that the fix of a
class turns its entries into XPASS and the mark is removed with it. The whole corpus, side by side
with `jax.test_util.check_grads`, is `python -m benchmarks.jax_suite` (docs/jax_suite.md).

Each check runs inside `jax.enable_x64(True)`, as JAX's own tests run under JAX_ENABLE_X64=1.
"""

import math

import jax
import pytest

import diffcheck
from benchmarks._jax_corpus import BY_NAME
from benchmarks.jax_suite import FAST

XFAIL = {}
# Smooth where a kink might be suspected: strict=True must pass there.
STRICT = {"nn.softplus@0_o2", "nn.mish@0_o2", "jnp.sinc@0_o2", "jnp.x_relu_x@0"}


def _check(entry, strict=False):
    with jax.enable_x64(True):
        dtype = None if entry.dtype == "float64" else entry.dtype
        return diffcheck.check_grad(
            entry.fn, *entry.args, argnums=entry.argnums, order=entry.order, dtype=dtype, strict=strict
        )


def _agrees(entry, report):
    assert report.ok, str(report) + "\n" + "\n".join(report.points[0].problems())
    if entry.name in STRICT:
        [point] = report.points
        assert not point.kinks, "\n".join(e.describe_kink() for e in point.kinks)


def _autodiff_wrong_only_where_not_finite(entry, report):
    """JAX's reverse mode is NaN at some elements: named there, and nowhere else."""
    [point] = report.points
    assert point.error is None, point.error
    assert point.mismatches, str(report)
    for element in point.mismatches:
        assert element.odd_one_out == "autodiff", element.describe()
        assert not math.isfinite(element.values["autodiff"]), element.describe()


def _names_the_departing_operation(entry, report):
    """A float NaN where the mathematics is finite: the report says which operation departs (log1p)."""
    [point] = report.points
    text = point.error or "\n".join(point.problems())
    assert not report.ok
    assert "log1p" in text, text


EXPECT = {
    "special.spence@1.7": _autodiff_wrong_only_where_not_finite,
    "faq.where_sqrt": _autodiff_wrong_only_where_not_finite,
    "user.bce_sigmoid_saturated": _names_the_departing_operation,
}


def _param(name):
    marks = [pytest.mark.xfail(strict=True, reason=XFAIL[name])] if name in XFAIL else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in FAST])
def test_jax_corpus_entry(name):
    entry = BY_NAME[name]
    assert (name in EXPECT) == bool(entry.jax_problem)
    report = _check(entry, strict=name in STRICT)
    EXPECT.get(name, _agrees)(entry, report)


def test_subset_covers_every_source_and_both_dtypes():
    entries = [BY_NAME[n] for n in FAST]
    assert {e.source for e in entries} >= {
        "tests/lax_autodiff_test.py",
        "tests/nn_test.py",
        "tests/lax_numpy_test.py",
        "tests/lax_scipy_special_functions_test.py",
        "tests/linalg_test.py",
        "tests/lax_control_flow_test.py",
        "tests/api_test.py",
    }
    assert {e.dtype for e in entries} == {"float64", "float32"}
    assert any(e.order > 1 for e in entries)
    assert set(XFAIL) <= set(FAST) and set(STRICT) <= set(FAST)


# Entries whose exact reference needs a translation once missing: lu and custom_linear_solve (inv),
# qr, eigh (order 2 too), svd, the incomplete beta function, order 2 of a vector output along directions.
EXACT = (
    "linalg.inv",
    "linalg.qr_r",
    "linalg.eigvalsh_max_o2",
    "linalg.svd_u_abs",
    "special.betainc_x[3]",
    "lax.dot[2x3,3x4]_o2",
)


@pytest.mark.parametrize("name", EXACT)
def test_the_exact_reference_runs_and_agrees(name):
    report = _check(BY_NAME[name])
    _agrees(BY_NAME[name], report)
    assert dict(report.points[0].methods)["symbolic"] == "ok"
