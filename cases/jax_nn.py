"""jax.nn's own implementations under test, against the exact SymPy truth of their primal programs.

Points include those JAX's own tests use: softplus, mish and squareplus at 1e-8 (up to order 4)
and at 0; relu and relu6 at ±1 (up to order 3); elu at 1e4 (up to order 4).
"""

import jax
import numpy as np

from diffcheck import Case

_SCALAR = {"x=-2.3": dict(x=-2.3), "x=0.7": dict(x=0.7), "x=4.1": dict(x=4.1)}
_VECTOR = {"seeded": dict(x=np.array([0.4, -1.3, 2.2, 0.1]))}


def _nn(name, fn, points=None, orders=(1, 2), vector=False, call=None):
    return Case(
        name=f"jax_nn_{name}",
        fn=fn,
        wrt="x",
        points=points or (_VECTOR if vector else _SCALAR),
        sample=(lambda rng: dict(x=rng.normal(0, 2, 4))) if vector else (lambda rng: dict(x=float(rng.normal(0, 2)))),
        orders=orders,
        tags=("jax.nn", "higher-order"),
        description=f"jax.nn.{call or name}" + (" (vector)" if vector else ""),
    )


_TINY_AND_ZERO = {"x=1e-8": dict(x=1e-8), "x=0": dict(x=0.0), "x=0.7": dict(x=0.7)}
_PLUS_MINUS_ONE = {"x=1": dict(x=1.0), "x=-1": dict(x=-1.0)}

sigmoid = _nn("sigmoid", jax.nn.sigmoid)
log_sigmoid = _nn("log_sigmoid", jax.nn.log_sigmoid)
softplus = _nn("softplus", jax.nn.softplus, _TINY_AND_ZERO, orders=(1, 2, 3, 4))
relu = _nn("relu", jax.nn.relu, _PLUS_MINUS_ONE, orders=(1, 2, 3))
relu6 = _nn("relu6", jax.nn.relu6, _PLUS_MINUS_ONE, orders=(1, 2, 3))
elu = _nn("elu", jax.nn.elu, {"x=1e4": dict(x=1e4), "x=-0.5": dict(x=-0.5)}, orders=(1, 2, 3, 4))
gelu_erf = _nn("gelu", lambda x: jax.nn.gelu(x, approximate=False), call="gelu(x, approximate=False)")
gelu_tanh = _nn("gelu_tanh", lambda x: jax.nn.gelu(x, approximate=True), call="gelu(x, approximate=True)")
silu = _nn("silu", jax.nn.silu)
mish = _nn("mish", jax.nn.mish, _TINY_AND_ZERO, orders=(1, 2, 3, 4))
squareplus = _nn("squareplus", jax.nn.squareplus, _TINY_AND_ZERO, orders=(1, 2, 3, 4))
sparse_plus = _nn(
    "sparse_plus", jax.nn.sparse_plus, {"x=-2.3": dict(x=-2.3), "x=0.4": dict(x=0.4), "x=2.5": dict(x=2.5)}
)
softmax = _nn("softmax", jax.nn.softmax, vector=True)
log_softmax = _nn("log_softmax", jax.nn.log_softmax, vector=True)
logsumexp = _nn("logsumexp", lambda x: jax.nn.logsumexp(x), vector=True)
standardize = _nn("standardize", jax.nn.standardize, vector=True)
