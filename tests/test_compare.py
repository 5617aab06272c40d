"""Verdicts and the odd one out, as a table."""

import pytest

from diffcheck.compare import AGREE, AUTODIFF, FINITE, FORWARD, MISMATCH, SYMBOLIC, verdict

B = {SYMBOLIC: 1e-16, AUTODIFF: 1e-15, FORWARD: 1e-15, FINITE: 1e-10}


@pytest.mark.parametrize(
    "values, expected",
    [
        ({SYMBOLIC: 1.0, AUTODIFF: 1.0, FORWARD: 1.0, FINITE: 1.0 + 1e-11}, (AGREE, None)),
        ({SYMBOLIC: 1.0, AUTODIFF: 1.0 + 1e-7, FORWARD: 1.0 + 1e-7, FINITE: 1.0}, (MISMATCH, AUTODIFF)),
        # A relative 1e-12 bug hides inside finite differences' bound, not from the exact value.
        ({SYMBOLIC: 1.0, AUTODIFF: 1.0 + 1e-12, FINITE: 1.0}, (MISMATCH, AUTODIFF)),
        ({SYMBOLIC: 1.0, AUTODIFF: 1.0, FORWARD: 1.0 + 1e-7, FINITE: 1.0}, (MISMATCH, AUTODIFF)),
        ({SYMBOLIC: 1.0, AUTODIFF: 1.0, FINITE: 1.1}, (MISMATCH, FINITE)),
        ({SYMBOLIC: 2.0, AUTODIFF: 1.0, FINITE: 1.0}, (MISMATCH, SYMBOLIC)),
        ({SYMBOLIC: 3.0, AUTODIFF: 1.0, FINITE: 2.0}, (MISMATCH, None)),
        ({AUTODIFF: 1.0, FINITE: 1.5}, (MISMATCH, None)),
        ({AUTODIFF: 1.0, FORWARD: 1.5, FINITE: 1.0}, (MISMATCH, AUTODIFF)),
        ({AUTODIFF: 1.0, FORWARD: 1.0, FINITE: 1.0}, (AGREE, None)),
    ],
)
def test_verdict_and_odd_one_out(values, expected):
    result, odd, errors, tols = verdict(values, B)
    assert (result, odd) == expected
    assert set(errors) == set(tols)


def test_explicit_tolerances_replace_the_bounds():
    values = {SYMBOLIC: 1.0, AUTODIFF: 1.0 + 1e-7, FINITE: 1.0}
    assert verdict(values, B, rtol=1e-6)[0] == AGREE
    assert verdict(values, B, atol=1e-8)[:2] == (MISMATCH, AUTODIFF)
