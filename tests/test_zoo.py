"""The bug zoo (tests/zoo.py): every wrong rule caught, no false alarm on correct code at hard points.

float64: every bug, however small (a relative 1e-6, an absolute 1e-9 on a gradient of 1e-5).
float32: every bug of relative size ≥ 1e-3; smaller ones may hide in float32's rounding.
"""

import pytest
from zoo import BUGS, CORRECT

import diffcheck


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("entry", BUGS, ids=[e.name for e in BUGS])
def test_every_bug_is_caught(entry, dtype):
    if dtype == "float32" and entry.bug < 1e-3:
        pytest.skip("below float32's resolution")
    report = diffcheck.check_grad(entry.fn, *entry.args, order=entry.order, dtype=dtype)
    assert not report.ok, str(report)
    [point] = report.points
    # Autodiff is named: by an element's odd one out, or by the forward/reverse dot-product test.
    named = {e.odd_one_out for e in point.mismatches}
    assert "autodiff" in named or not point.dot_product.ok, str(report)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("entry", CORRECT, ids=[e.name for e in CORRECT])
def test_no_false_alarm(entry, dtype):
    report = diffcheck.check_grad(entry.fn, *entry.args, order=entry.order, dtype=dtype)
    assert report.ok, str(report)


def test_zoo_is_large_enough():
    assert len(BUGS) >= 15 and len(CORRECT) >= 15
    assert sum("kink" in e.name for e in CORRECT) >= 3
