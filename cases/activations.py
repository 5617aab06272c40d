"""Activations, written out as formulas: GELU (erf, and the tanh form GPT-2 uses), softplus,
log-sigmoid, SiLU. Each maps a vector elementwise, so its Jacobian is checked in full."""

import jax
import jax.numpy as jnp
import numpy as np

from diffcheck import Case

_POINTS = {"grid": dict(x=np.array([-3.0, -0.7, 0.2, 1.1, 4.0]))}


def _sample(rng):
    return dict(x=rng.normal(0, 2, 5))


def _activation(name, fn, description):
    return Case(
        name=name,
        fn=fn,
        wrt="x",
        points=_POINTS,
        sample=_sample,
        orders=(1, 2),
        tags=("activation", "higher-order"),
        description=description,
    )


gelu_exact = _activation(
    "gelu_exact", lambda x: 0.5 * x * (1 + jax.scipy.special.erf(x / jnp.sqrt(2.0))), "x Φ(x) = ½x(1 + erf(x/√2))"
)
gelu_tanh = _activation(
    "gelu_tanh",
    lambda x: 0.5 * x * (1 + jnp.tanh(jnp.sqrt(2 / jnp.pi) * (x + 0.044715 * x**3))),
    "GPT-2's ½x(1 + tanh(√(2/π)(x + 0.044715x³)))",
)
softplus = _activation(
    "softplus", lambda x: jnp.log1p(jnp.exp(-jnp.abs(x))) + jnp.maximum(x, 0), "log(1 + eˣ), stable form"
)
log_sigmoid = _activation(
    "log_sigmoid", lambda x: -(jnp.log1p(jnp.exp(-jnp.abs(x))) + jnp.maximum(-x, 0)), "log σ(x) = −softplus(−x)"
)
silu = _activation("silu", lambda x: x * jax.nn.sigmoid(x), "x σ(x)")
