"""The chain rule: y = f(g(h(x))) for smooth f, g, h, scalar in and out."""

import jax
import jax.numpy as jnp
import sympy

from diffcheck import Case


def _scalar(rng, low=-2.0, high=2.0):
    return dict(x=rng.uniform(low, high))


chain_sin_exp_square = Case(
    name="chain_sin_exp_square",
    fn=lambda x: jnp.sin(jnp.exp(x**2)),
    wrt="x",
    points={"one": dict(x=1.0), "zero": dict(x=0.0)},
    sample=lambda rng: _scalar(rng, -1.5, 1.5),
    tags=("tutorial", "chain-rule"),
    description="sin(exp(x²))",
)

chain_sigmoid_tanh_affine = Case(
    name="chain_sigmoid_tanh_affine",
    fn=lambda x: jax.nn.sigmoid(jnp.tanh(3 * x - 1)),
    wrt="x",
    points={"half": dict(x=0.5)},
    sample=_scalar,
    tags=("tutorial", "chain-rule"),
    description="σ(tanh(3x − 1))",
)

chain_log1p_sqrt_cosh = Case(
    name="chain_log1p_sqrt_cosh",
    fn=lambda x: jnp.log1p(jnp.sqrt(jnp.cosh(x))),
    wrt="x",
    points={"one": dict(x=1.0)},
    sample=_scalar,
    tags=("tutorial", "chain-rule"),
    description="log(1 + √cosh x)",
)

_x = sympy.Symbol("x")

chain_from_sympy = Case.from_sympy(
    "chain_from_sympy",
    sympy.exp(sympy.sin(_x)) ** 2 / (1 + _x**2),
    points={"one": dict(x=1.0)},
    sample=_scalar,
    tags=("tutorial", "chain-rule", "sympy"),
    description="exp(sin x)² / (1 + x²), written as a SymPy expression",
)
