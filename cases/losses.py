"""Losses: softmax cross-entropy, binary cross-entropy from logits, MSE, logistic regression."""

import jax
import jax.numpy as jnp
import numpy as np

from diffcheck import Case

from ._common import torch_linear_init


def softmax_cross_entropy(W, b, x, label):
    """−log softmax(W x + b)[label]: a linear classifier's loss over classes, from logits."""
    logits = W @ x + b
    return jax.scipy.special.logsumexp(logits) - logits[label]


def _classifier_point(rng):
    W, b = torch_linear_init(rng, 4, 3)
    return dict(W=W, b=b, x=rng.standard_normal(4), label=int(rng.integers(3)))


softmax_ce = Case(
    name="softmax_cross_entropy",
    fn=softmax_cross_entropy,
    wrt=("W", "b"),
    points={"init": _classifier_point(np.random.default_rng(0))},
    sample=_classifier_point,
    orders=(1, 2),
    tags=("loss", "higher-order"),
    description="−log softmax(W x + b)[label], 3 classes from 4 features; gradient and Hessian",
)


def bce_with_logits(z, y):
    """Binary cross-entropy from logits in the stable form max(z, 0) − z·y + log(1 + e^−|z|)."""
    return jnp.sum(jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z))))


bce_logits = Case(
    name="bce_with_logits",
    fn=bce_with_logits,
    wrt="z",
    points={"moderate": dict(z=np.array([0.3, -1.2, 2.5, -0.4]), y=np.array([1.0, 0.0, 1.0, 0.0]))},
    sample=lambda rng: dict(z=rng.normal(0, 3, 4), y=rng.integers(0, 2, 4).astype(float)),
    tags=("loss",),
    description="Σ max(z,0) − z·y + log1p(exp(−|z|)), the stable BCE from logits",
)


def mse(w, b, X, t):
    """Mean squared error of a linear model over a batch."""
    return jnp.mean((X @ w + b - t) ** 2)


mse_linear = Case(
    name="mse",
    fn=mse,
    wrt=("w", "b"),
    sample=lambda rng: dict(w=rng.normal(size=3), b=rng.normal(), X=rng.normal(size=(8, 3)), t=rng.normal(size=8)),
    orders=(1, 2),
    tags=("loss", "higher-order"),
    description="mean((X w + b − t)²) over a batch of 8",
)


def logistic_regression_loss(w, b, X, y):
    """Mean BCE of a logistic regression over a batch; its Hessian in w is Xᵀ S X / n."""
    return bce_with_logits(X @ w + b, y) / len(y)


def _batch(rng):
    return dict(w=rng.normal(size=3), b=rng.normal(), X=rng.normal(size=(6, 3)), y=rng.integers(0, 2, 6).astype(float))


logistic_regression = Case(
    name="logistic_regression",
    fn=logistic_regression_loss,
    wrt=("w", "b"),
    points={"seeded": _batch(np.random.default_rng(0))},
    sample=_batch,
    orders=(1, 2),
    tags=("loss", "higher-order"),
    description="mean BCE of σ(X w + b) over a batch of 6; gradient and Hessian (Xᵀ S X)",
)
