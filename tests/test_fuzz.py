"""A self-fuzzer: random compositions of the supported primitives, random shapes and points.

The three methods must agree, or the element must be classified as non-differentiable (a kink),
in which case finite differences are not counted against autodiff. CI runs a bounded number of
examples; for a longer run:

    DIFFCHECK_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz.py
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import diffcheck

EXAMPLES = int(os.environ.get("DIFFCHECK_FUZZ_EXAMPLES", "30"))

# Each unary operation keeps values in a range where the next one is defined and finite.
UNARY = {
    "sin": jnp.sin,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "exp_tanh": lambda u: jnp.exp(jnp.tanh(u)),
    "log1p_sq": lambda u: jnp.log1p(u**2),
    "sqrt_1p_sq": lambda u: jnp.sqrt(1 + u**2),
    "square": lambda u: u**2,
    "cube": lambda u: u**3 / 8,
    "erf": jax.scipy.special.erf,
    "atan": jnp.arctan,
    "abs": jnp.abs,
    "relu": jax.nn.relu,
    "reverse": lambda u: u[::-1],
    "cumsum": jnp.cumsum,
    "gelu": lambda u: jax.nn.gelu(u, approximate=False),
}
BINARY = {
    "add": jnp.add,
    "sub": jnp.subtract,
    "mul": jnp.multiply,
    "div": lambda u, v: u / (1 + v**2),
    "max": jnp.maximum,
    "where": lambda u, v: jnp.where(u > v, u * v, u - v),
}
REDUCE = {
    "sum": jnp.sum,
    "mean": jnp.mean,
    "max": jnp.max,
    "logsumexp": jax.scipy.special.logsumexp,
    "norm": lambda u: jnp.sqrt(jnp.sum(u**2) + 1),
}

leaves = st.sampled_from(["x", "y"])
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(sorted(UNARY)), inner),
        st.tuples(st.sampled_from(sorted(BINARY)), inner, inner),
    ),
    max_leaves=6,
)


def build(tree, x, y):
    if tree == "x":
        return x
    if tree == "y":
        return y
    op, *args = tree
    values = [build(a, x, y) for a in args]
    return (UNARY if len(values) == 1 else BINARY)[op](*values)


# No shrinking: each example runs three differentiations, and the report already names the
# failing composition, point and element.
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(
    tree=trees,
    reduce=st.sampled_from(sorted(REDUCE)),
    n=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from(["float64", "float64", "float32"]),
)
def test_methods_agree_or_the_point_is_a_kink(tree, reduce, n, seed, dtype):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-2, 2, n), rng.uniform(-2, 2, n)

    def fn(x, y):
        return REDUCE[reduce](build(tree, x, y))

    report = diffcheck.check_grad(fn, x, y, dtype=dtype)
    [point] = report.points
    assert point.error is None, point.error
    assert point.methods["autodiff"] == "ok" and point.methods["symbolic"] == "ok", point.methods
    assert report.ok, f"{reduce}({tree}) at x={x.tolist()}, y={y.tolist()}:\n{report}"
    for element in point.elements:
        assert element.verdict in ("agree", "kink", "imprecise")
