"""Verdicts and the odd one out, as a table."""

import jax.numpy as jnp
import numpy as np
import pytest

from diffcheck._compare import AGREE, AUTODIFF, FINITE, FORWARD, MISMATCH, SYMBOLIC, verdict

B = {SYMBOLIC: 1e-16, AUTODIFF: 1e-15, FORWARD: 1e-15, FINITE: 1e-10}


@pytest.mark.parametrize(
    "values, expected",
    [
        ({SYMBOLIC: 1.0, AUTODIFF: 1.0, FORWARD: 1.0, FINITE: 1.0 + 1e-11}, (AGREE, None)),
        ({SYMBOLIC: 1.0, AUTODIFF: 1.0 + 1e-7, FORWARD: 1.0 + 1e-7, FINITE: 1.0}, (MISMATCH, AUTODIFF)),
        # A relative 1e-12 bug hides inside finite differences' bound, not from the exact value.
        ({SYMBOLIC: 1.0, AUTODIFF: 1.0 + 1e-12, FINITE: 1.0}, (MISMATCH, AUTODIFF)),
        ({SYMBOLIC: 1.0, AUTODIFF: 1.0, FORWARD: 1.0 + 1e-7, FINITE: 1.0}, (MISMATCH, AUTODIFF)),
        # autodiff is the exact value: a finite difference that misses is not the gradient's fault
        ({SYMBOLIC: 1.0, AUTODIFF: 1.0, FINITE: 1.1}, (AGREE, None)),
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


@pytest.mark.parametrize(
    "value, exact, scale, digits",
    [(1.0 + 1e-6, 1.0, 1.0, 6.0), (1.0, 1.0, 1.0, 17.0), (1e-9, 0.0, 1e-3, 6.0), (3.0, 1.0, 1.0, 0.0)],
)
def test_digits_of_agreement(value, exact, scale, digits):
    from diffcheck._compare import digits as agreement

    assert agreement(value, exact, scale) == pytest.approx(digits, abs=1e-6)


def test_complex_step_joins_the_vote():
    from diffcheck._compare import COMPLEX

    bounds = {**B, COMPLEX: 1e-15}
    # Every numerical method against the translation: the translation is the odd one out.
    values = {SYMBOLIC: 2.0, AUTODIFF: 1.0, FORWARD: 1.0, FINITE: 1.0, COMPLEX: 1.0}
    assert verdict(values, bounds)[:2] == (MISMATCH, SYMBOLIC)
    values = {SYMBOLIC: 1.0, AUTODIFF: 1.0 + 1e-9, FORWARD: 1.0 + 1e-9, FINITE: 1.0, COMPLEX: 1.0}
    assert verdict(values, bounds)[:2] == (MISMATCH, AUTODIFF)


def test_the_terms_a_program_adds_are_measured_on_its_reverse_mode_program():
    import jax

    from diffcheck import _autodiff

    def terms(f, x):
        with _autodiff.precision(np.float64):
            return _autodiff.largest_term(lambda t, d: jnp.atleast_1d(f(t)), np.asarray(x, np.float64), {})

    # softplus(35) − 35: the value adds 35 + 35 and more; σ(35) − 1 adds 1 + 1; a product adds nothing
    assert terms(lambda x: jax.nn.softplus(x) - x, [35.0]) >= 70
    assert 1.9 < terms(lambda x: jax.nn.sigmoid(x) - 1, [35.0]) < 2.1
    assert terms(lambda x: 1e-16 * jnp.sin(x), [0.3, 2.0]) == 0.0
    # through branches and loops, at the sizes their bodies add
    assert terms(lambda x: jax.lax.cond(x[0] > 0, lambda y: y * 1e-9 - 1e-9, lambda y: y, x), [0.5]) < 1e-8
    assert terms(lambda x: jax.lax.scan(lambda c, y: (c + y * 1e-10, c), x[0], x)[0], [9.0, 0.5]) >= 18
