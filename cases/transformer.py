"""GPT-2's building blocks at tiny sizes: one-head causal self-attention and a whole block.

The block follows the tutorial's GPT-2 configuration (embedding dimension, heads, context length,
no qkv bias) with dropout off for differentiation: LayerNorm → multi-head causal attention →
residual → LayerNorm → MLP with GELU (4× width) → residual, then a scalar loss.
"""

import jax
import jax.numpy as jnp
import numpy as np

from diffcheck import Case

from .normalisers import layer_norm_fn

CONFIG = {"context_length": 4, "emb_dim": 8, "n_heads": 2, "drop_rate": 0.0, "qkv_bias": False}


def causal_attention(x, Wq, Wk, Wv, n_heads):
    """Scaled dot-product attention over heads with a causal mask, rows are tokens."""
    T, d = x.shape
    head = d // n_heads

    def split(m):  # (T, d) -> (heads, T, head)
        return m.reshape(T, n_heads, head).transpose(1, 0, 2)

    q, k, v = split(x @ Wq), split(x @ Wk), split(x @ Wv)
    scores = q @ k.transpose(0, 2, 1) / jnp.sqrt(head)
    mask = jnp.tril(jnp.ones((T, T), dtype=bool))
    weights = jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1)
    return (weights @ v).transpose(1, 0, 2).reshape(T, d)


def one_head_loss(Wq, Wk, Wv, Wo, x, target):
    """Squared error of one head's output projection against a target."""
    out = causal_attention(x, Wq, Wk, Wv, 1) @ Wo
    return 0.5 * jnp.mean((out - target) ** 2)


def _weights(rng, *names, d=8):
    return {n: rng.normal(0, 1 / np.sqrt(d), (d, d)) for n in names}


def _attention_point(rng):
    return dict(**_weights(rng, "Wq", "Wk", "Wv", "Wo"), x=rng.normal(size=(4, 8)), target=rng.normal(size=(4, 8)))


attention = Case(
    name="causal_self_attention",
    fn=one_head_loss,
    wrt=("Wq", "Wk", "Wv", "Wo"),
    points={"seeded": _attention_point(np.random.default_rng(0))},
    sample=_attention_point,
    tags=("transformer",),
    description="one head: q/k/v projections, scaled scores, causal mask, softmax, output projection (256 parameters)",
)


def gelu_tanh(x):
    return 0.5 * x * (1 + jnp.tanh(jnp.sqrt(2 / jnp.pi) * (x + 0.044715 * x**3)))


def gpt2_block_loss(ln1_g, ln1_b, Wq, Wk, Wv, Wo, bo, ln2_g, ln2_b, W1, b1, W2, b2, x, target):
    """A pre-norm GPT-2 block on a (context, embedding) input, then mean squared error."""
    h = x + causal_attention(layer_norm_fn(x, ln1_g, ln1_b), Wq, Wk, Wv, CONFIG["n_heads"]) @ Wo + bo
    h = h + gelu_tanh(layer_norm_fn(h, ln2_g, ln2_b) @ W1 + b1) @ W2 + b2
    return 0.5 * jnp.mean((h - target) ** 2)


def _block_point(rng):
    d, T = CONFIG["emb_dim"], CONFIG["context_length"]
    return dict(
        ln1_g=1 + 0.1 * rng.normal(size=d),
        ln1_b=0.1 * rng.normal(size=d),
        **_weights(rng, "Wq", "Wk", "Wv", "Wo", d=d),
        bo=0.1 * rng.normal(size=d),
        ln2_g=1 + 0.1 * rng.normal(size=d),
        ln2_b=0.1 * rng.normal(size=d),
        W1=rng.normal(0, 1 / np.sqrt(d), (d, 4 * d)),
        b1=0.1 * rng.normal(size=4 * d),
        W2=rng.normal(0, 1 / np.sqrt(4 * d), (4 * d, d)),
        b2=0.1 * rng.normal(size=d),
        x=rng.normal(size=(T, d)),
        target=rng.normal(size=(T, d)),
    )


gpt2_block = Case(
    name="gpt2_block",
    fn=gpt2_block_loss,
    wrt=("ln1_g", "ln1_b", "Wq", "Wk", "Wv", "Wo", "bo", "ln2_g", "ln2_b", "W1", "b1", "W2", "b2"),
    points={"seeded": _block_point(np.random.default_rng(0))},
    sample=_block_point,
    tags=("transformer",),
    description="tiny GPT-2 block (context 4, embedding 8, 2 heads, MLP 32): every parameter tensor",
)
