"""Reductions and normalisers: logsumexp, log-softmax, softmax (its Jacobian), LayerNorm."""

import jax
import jax.numpy as jnp
import numpy as np

from diffcheck import Case

logsumexp = Case(
    name="logsumexp",
    fn=lambda x: jax.scipy.special.logsumexp(x),
    wrt="x",
    points={"small": dict(x=np.array([0.1, -0.5, 1.3, 0.0]))},
    sample=lambda rng: dict(x=rng.normal(0, 2, 4)),
    orders=(1, 2),
    tags=("normaliser", "higher-order"),
    description="log Σ exp(xᵢ), max-shifted as JAX computes it",
)

log_softmax = Case(
    name="log_softmax",
    fn=lambda x: x - jax.scipy.special.logsumexp(x),
    wrt="x",
    points={"small": dict(x=np.array([0.1, -0.5, 1.3, 0.0]))},
    sample=lambda rng: dict(x=rng.normal(0, 2, 4)),
    tags=("normaliser", "jacobian"),
    description="x − logsumexp(x): its full Jacobian",
)


def softmax_fn(x):
    e = jnp.exp(x - jax.lax.stop_gradient(jnp.max(x)))
    return e / jnp.sum(e)


softmax = Case(
    name="softmax",
    fn=softmax_fn,
    wrt="x",
    points={"small": dict(x=np.array([0.1, -0.5, 1.3, 0.0]))},
    sample=lambda rng: dict(x=rng.normal(0, 2, 4)),
    tags=("normaliser", "jacobian"),
    description="exp(x − max x) / Σ: its Jacobian diag(s) − s sᵀ",
)


def layer_norm_fn(x, gamma, beta, eps=1e-5):
    """LayerNorm over the last axis with learnable scale and shift, as in GPT-2."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return gamma * (x - mean) / jnp.sqrt(var + eps) + beta


def _ln_point(rng):
    return dict(x=rng.normal(size=6), gamma=1 + 0.1 * rng.normal(size=6), beta=0.1 * rng.normal(size=6))


layer_norm = Case(
    name="layer_norm",
    fn=layer_norm_fn,
    wrt=("x", "gamma", "beta"),
    points={"seeded": _ln_point(np.random.default_rng(0))},
    sample=_ln_point,
    tags=("normaliser", "jacobian"),
    description="γ (x − mean) / √(var + 1e-5) + β over 6 features: Jacobian in x, γ and β",
)
