"""Networks as people train them, with a batch: the MLP family and a 2-layer tiny GPT-2, in JAX.

Each is a loss of its parameters that closes over its data as `jnp` arrays (a batch of inputs and
labels), the way a training script is written; `mlp(...)` and `gpt2(...)` return the loss, the
parameters (NumPy float64, as `check_grad` takes them) and their names. `python -m
benchmarks.scale --family mlp` and `--family gpt2` check them.
"""

from __future__ import annotations

import numpy as np

from .functions import linear_init


def mlp(inputs=784, hidden=32, classes=10, batch=16, seed=0):
    """inputs → hidden tanh → classes, softmax cross-entropy averaged over the batch."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng([seed, inputs, hidden, classes, batch])
    W1, b1 = linear_init(rng, inputs, hidden)
    W2, b2 = linear_init(rng, hidden, classes)
    X = jnp.asarray(rng.standard_normal((batch, inputs)))
    Y = jnp.asarray(np.eye(classes)[rng.integers(0, classes, batch)])

    def loss(W1, b1, W2, b2):
        h = jnp.tanh(X @ W1.T + b1)
        return -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(h @ W2.T + b2), axis=-1))

    return loss, (W1, b1, W2, b2), ("W1", "b1", "W2", "b2")


def mlp_params(inputs, hidden, classes) -> int:
    return hidden * inputs + hidden + classes * hidden + classes


#: The tiny GPT-2 of the benchmark: vocabulary 64, embedding 32, 2 heads, context 8, 2 layers.
GPT2 = {"vocab": 64, "emb": 32, "heads": 2, "context": 8, "layers": 2}


def gpt2(batch=2, seed=0, **config):
    """A pre-norm GPT-2 (token and position embeddings, `layers` blocks of causal attention and
    a GELU MLP, final LayerNorm, an untied output head), next-token cross-entropy on a batch of
    random token sequences."""
    import jax
    import jax.numpy as jnp
    from diffcheck.cases.normalisers import layer_norm_fn
    from diffcheck.cases.transformer import causal_attention, gelu_tanh

    c = {**GPT2, **config}
    V, d, H, T, L = c["vocab"], c["emb"], c["heads"], c["context"], c["layers"]
    rng = np.random.default_rng([seed, V, d, H, T, L, batch])
    tokens = rng.integers(0, V, (batch, T + 1))
    # Token embedding as a product with one-hot rows (the same mathematics as a lookup).
    inputs = jnp.asarray(np.eye(V)[tokens[:, :-1]])  # (batch, T, V)
    targets = jnp.asarray(np.eye(V)[tokens[:, 1:]])
    params, names = [], []

    def add(name, value):
        names.append(name)
        params.append(np.asarray(value, np.float64))

    add("wte", rng.normal(0, 0.02, (V, d)))
    add("wpe", rng.normal(0, 0.01, (T, d)))
    for i in range(L):
        add(f"h{i}.ln1_g", 1 + 0.1 * rng.normal(size=d))
        add(f"h{i}.ln1_b", 0.1 * rng.normal(size=d))
        for w in ("Wq", "Wk", "Wv"):
            add(f"h{i}.{w}", rng.normal(0, 1 / np.sqrt(d), (d, d)))
        add(f"h{i}.Wo", rng.normal(0, 1 / np.sqrt(d), (d, d)))
        add(f"h{i}.bo", 0.1 * rng.normal(size=d))
        add(f"h{i}.ln2_g", 1 + 0.1 * rng.normal(size=d))
        add(f"h{i}.ln2_b", 0.1 * rng.normal(size=d))
        add(f"h{i}.W1", rng.normal(0, 1 / np.sqrt(d), (d, 4 * d)))
        add(f"h{i}.b1", 0.1 * rng.normal(size=4 * d))
        add(f"h{i}.W2", rng.normal(0, 1 / np.sqrt(4 * d), (4 * d, d)))
        add(f"h{i}.b2", 0.1 * rng.normal(size=d))
    add("lnf_g", 1 + 0.1 * rng.normal(size=d))
    add("lnf_b", 0.1 * rng.normal(size=d))
    add("head", rng.normal(0, 1 / np.sqrt(d), (d, V)))

    def block(x, ln1_g, ln1_b, Wq, Wk, Wv, Wo, bo, ln2_g, ln2_b, W1, b1, W2, b2):
        x = x + causal_attention(layer_norm_fn(x, ln1_g, ln1_b), Wq, Wk, Wv, H) @ Wo + bo
        return x + gelu_tanh(layer_norm_fn(x, ln2_g, ln2_b) @ W1 + b1) @ W2 + b2

    def loss(wte, wpe, *rest):
        blocks, (lnf_g, lnf_b, head) = rest[: 13 * L], rest[13 * L :]

        def one(sequence, target):
            x = sequence @ wte + wpe
            for i in range(L):
                x = block(x, *blocks[13 * i : 13 * (i + 1)])
            logits = layer_norm_fn(x, lnf_g, lnf_b) @ head
            return -jnp.sum(target * jax.nn.log_softmax(logits, axis=-1)) / T

        return jnp.mean(jax.vmap(one)(inputs, targets))

    return loss, tuple(params), tuple(names)


def gpt2_params(**config) -> int:
    c = {**GPT2, **config}
    V, d, T, L = c["vocab"], c["emb"], c["context"], c["layers"]
    block = 2 * d + 4 * d * d + d + 2 * d + d * 4 * d + 4 * d + 4 * d * d + d
    return V * d + T * d + L * block + 2 * d + d * V
