"""Parameters of rank 0, 1, 2 and 3 in one contraction, so shapes and indices are exercised."""

import jax.numpy as jnp
import numpy as np

from diffcheck import Case


def contraction(s, v, M, T):
    """tanh(s) · Σ T_ijk v_i M_jk + ½‖M‖²: a scalar, a vector, a matrix and a rank-3 tensor."""
    return jnp.tanh(s) * jnp.einsum("i,jk,ijk->", v, M, T) + 0.5 * jnp.sum(M**2)


def _point(rng):
    return dict(
        s=rng.normal(),
        v=rng.normal(size=2),
        M=rng.normal(size=(3, 4)),
        T=rng.normal(size=(2, 3, 4)),
    )


tensor_ranks = Case(
    name="tensor_ranks",
    fn=contraction,
    wrt=("s", "v", "M", "T"),
    # NumPy, not jnp: JAX would compile a program for each array when the library is imported.
    points={"unit": dict(s=0.5, v=np.ones(2), M=np.ones((3, 4)), T=np.ones((2, 3, 4)))},
    sample=_point,
    tags=("tutorial", "tensor"),
    description="tanh(s)·einsum('i,jk,ijk', v, M, T) + ½‖M‖², ranks 0–3",
)


def outer_jacobian(v, M):
    """An array output: tanh(M v) ⊗ v, a rank-2 output whose full Jacobian is checked."""
    return jnp.outer(jnp.tanh(M @ v), v)


tensor_jacobian = Case(
    name="tensor_jacobian",
    fn=outer_jacobian,
    wrt=("v", "M"),
    sample=lambda rng: dict(v=rng.normal(size=3), M=rng.normal(size=(2, 3))),
    tags=("tutorial", "tensor", "jacobian"),
    description="tanh(M v) ⊗ v: the full Jacobian of an array output",
)
