"""Pieces the case modules share: the tutorial's loss and PyTorch's default initialisation."""

import jax.numpy as jnp
import numpy as np


def binary_cross_entropy(p, y):
    """torch.nn.BCELoss on a probability p and a label y in [0, 1] (no reduction over a batch)."""
    return -(y * jnp.log(p) + (1 - y) * jnp.log1p(-p))


def torch_linear_init(rng: np.random.Generator, fan_in: int, fan_out: int):
    """Weights and bias of torch.nn.Linear(fan_in, fan_out): uniform on ±1/√fan_in."""
    bound = 1 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, (fan_out, fan_in)), rng.uniform(-bound, bound, fan_out)
