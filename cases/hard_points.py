"""Hard points: saturation, probabilities near 0 and 1, a dominant logit, near-constant input.

Correct code must pass here; fixed tolerances tend to raise false alarms at these points.
"""

import jax
import jax.numpy as jnp
import numpy as np

from diffcheck import Case

from .losses import bce_with_logits
from .normalisers import layer_norm_fn, softmax_fn

sigmoid_saturation = Case(
    name="sigmoid_saturation",
    fn=lambda z: jax.nn.sigmoid(z),
    wrt="z",
    points={f"z={z:g}": dict(z=float(z)) for z in (30, -30, 40, -40)},
    orders=(1, 2),
    tags=("hard-point", "activation", "higher-order"),
    description="σ(z) at |z| = 30 and 40, where σ′ is 1e-13 to 4e-18",
)

bce_extreme_logits = Case(
    name="bce_extreme_logits",
    fn=bce_with_logits,
    wrt="z",
    points={
        "confident-right": dict(z=np.array([35.0, -35.0, 30.0]), y=np.array([1.0, 0.0, 1.0])),
        "confident-wrong": dict(z=np.array([35.0, -35.0, 30.0]), y=np.array([0.0, 1.0, 0.0])),
    },
    tags=("hard-point", "loss"),
    description="BCE from logits with probabilities within 1e-15 of 0 and 1",
)

softmax_dominant = Case(
    name="softmax_dominant_logit",
    fn=softmax_fn,
    wrt="x",
    points={"dominant": dict(x=np.array([50.0, 0.0, -3.0, 1.0]))},
    tags=("hard-point", "normaliser", "jacobian"),
    description="softmax with one logit 50 above the others: a Jacobian of entries near 1e-22",
)

logsumexp_large = Case(
    name="logsumexp_large",
    fn=lambda x: jax.scipy.special.logsumexp(x),
    wrt="x",
    points={"near-1000": dict(x=np.array([1000.0, 999.5, 1001.0, 998.0]))},
    tags=("hard-point", "normaliser"),
    description="logsumexp of values near 1000 (exp overflows without the max shift)",
)

layer_norm_flat = Case(
    name="layer_norm_near_constant",
    fn=layer_norm_fn,
    wrt=("x", "gamma", "beta"),
    points={
        "flat": dict(
            x=1.0 + 1e-6 * np.array([0.3, -1.1, 0.4, 0.9, -0.2, 0.0]),
            gamma=np.array([1.0, 0.9, 1.1, 1.0, 0.8, 1.2]),
            beta=np.zeros(6),
        )
    },
    tags=("hard-point", "normaliser", "jacobian"),
    description="LayerNorm of an input constant to 1e-6: the variance is far below eps = 1e-5",
)

pole = Case(
    name="pole_near_point",
    fn=lambda x: 1 / (x - 0.999),
    wrt="x",
    points={"x=1": dict(x=1.0)},
    tags=("hard-point",),
    description="1/(x − 0.999) at x = 1: a pole 0.001 away, derivative −1e6, three digits lost to the subtraction",
)

x_log_x = Case(
    name="x_log_x_near_zero",
    fn=lambda x: x * jnp.log(x),
    wrt="x",
    points={"x=1e-7": dict(x=1e-7)},
    tags=("hard-point",),
    description="x·log x at 1e-7: the domain ends 1e-7 away, finite differences must not step into NaN",
)

large_offset = Case(
    name="large_offset_sin",
    fn=lambda x: 1e8 + jnp.sin(x),
    wrt="x",
    points={"x=0.7": dict(x=0.7)},
    tags=("hard-point",),
    description="1e8 + sin x: the value's rounding (1e-8) swamps finite differences at small steps",
)

softplus_points = Case(
    name="softplus_saturation_and_zero",
    fn=lambda x: jax.nn.softplus(x),
    wrt="x",
    points={"x=40": dict(x=40.0), "x=0": dict(x=0.0), "x=-40": dict(x=-40.0)},
    tags=("hard-point", "activation"),
    description="softplus at ±40 (saturated) and at 0: there JAX's max(x, 0) + log1p(exp(−|x|)) has kinks that cancel",
)

kinks = Case(
    name="kinks_at_the_point",
    fn=lambda x: jnp.sum(jax.nn.relu(x) + 2 * jnp.abs(x - 1.0)),
    wrt="x",
    points={"at-kinks": dict(x=np.array([0.0, 1.0, -0.5]))},
    tags=("hard-point", "activation"),
    description="relu at 0 and |x − 1| at 1: kinks reported with one-sided derivatives, warnings not failures",
)
