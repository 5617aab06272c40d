"""The tutorial's two PyTorch programs (../shared/reference/basic-llm-concepts.md), in JAX."""

import jax
import numpy as np

from diffcheck import Case

from ._common import binary_cross_entropy, torch_linear_init


def sigmoid_neuron_loss(w, b, x, y):
    """L = BCE(σ(x·w + b), y): one sigmoid neuron and its loss."""
    return binary_cross_entropy(jax.nn.sigmoid(x * w + b), y)


sigmoid_bce = Case(
    name="sigmoid_bce",
    fn=sigmoid_neuron_loss,
    wrt=("w", "b"),
    points={"tutorial": dict(x=1.1, y=1.0, w=2.2, b=0.0)},
    # The tutorial's PyTorch program printed these gradients.
    expected={"tutorial": dict(w=-0.0898, b=-0.0817)},
    decimals=4,
    sample=lambda rng: dict(x=rng.normal(), y=rng.uniform(), w=rng.normal(), b=rng.normal()),
    orders=(1, 2),
    tags=("tutorial", "loss", "higher-order"),
    description="BCE(σ(x·w + b), y), the tutorial's sigmoid neuron at x=1.1, y=1, w=2.2, b=0",
)


def simple_net_loss(W1, b1, W2, b2, x, y):
    """SimpleNet: Linear(10→5) → ReLU → Linear(5→1) → Sigmoid, then BCE against the label."""
    h = jax.nn.relu(W1 @ x + b1)
    p = jax.nn.sigmoid(W2 @ h + b2)[0]
    return binary_cross_entropy(p, y)


def simple_net_point(rng: np.random.Generator) -> dict:
    """Parameters as torch.nn.Linear initialises them, an input x ~ N(0, 1)¹⁰ and the label 1."""
    W1, b1 = torch_linear_init(rng, 10, 5)
    W2, b2 = torch_linear_init(rng, 5, 1)
    return dict(W1=W1, b1=b1, W2=W2, b2=b2, x=rng.standard_normal(10), y=1.0)


simple_net = Case(
    name="simple_net",
    fn=simple_net_loss,
    wrt=("W1", "b1", "W2", "b2"),
    points={"init": simple_net_point(np.random.default_rng(0))},
    sample=simple_net_point,
    orders=(1, 2),
    tags=("tutorial", "net", "higher-order"),
    description="the tutorial's SimpleNet (10→5 ReLU →1 sigmoid, BCE), all 61 parameters; Hessian-vector products",
)
