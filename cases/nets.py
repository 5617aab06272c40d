"""Small networks that are smooth everywhere."""

import jax.numpy as jnp
import numpy as np

from diffcheck import Case

from ._common import torch_linear_init


def tanh_mlp_mse(W1, b1, W2, b2, X, T):
    """Mean squared error of a one-hidden-layer tanh network over a batch."""
    H = jnp.tanh(X @ W1.T + b1)
    return jnp.mean((H @ W2.T + b2 - T) ** 2)


def _point(rng):
    W1, b1 = torch_linear_init(rng, 3, 4)
    W2, b2 = torch_linear_init(rng, 4, 2)
    return dict(W1=W1, b1=b1, W2=W2, b2=b2, X=rng.standard_normal((5, 3)), T=rng.standard_normal((5, 2)))


tanh_net_mse = Case(
    name="tanh_net_mse",
    fn=tanh_mlp_mse,
    wrt=("W1", "b1", "W2", "b2"),
    points={"init": _point(np.random.default_rng(0))},
    sample=_point,
    tags=("tutorial", "net"),
    description="3→4 tanh →2 network, MSE over a batch of 5, all 26 parameters",
)
