"""Small problems run JAX's own programs (jaxprs) in NumPy instead of compiling them: the same
values as XLA's, the same dtypes, every transform, and programs found again only when they are
the same program (custom rules included)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffcheck import _autodiff as autodiff
from diffcheck import _jaxpr_numpy as jaxpr_numpy
from diffcheck._numeric import flat_program as _flat_program


def _nn(t):
    return jax.nn.log_softmax(t[:3] * t[3:6]) @ jax.nn.relu(t[6:9]) + jax.nn.softplus(t[0])


FUNCTIONS = {
    "elementwise": lambda t: jnp.tanh(t) * jnp.log1p(t**2) + jnp.exp(-t) / (1 + t**4) - jnp.sqrt(1 + t**2),
    "trig": lambda t: jnp.sin(t) * jnp.cos(2 * t) + jnp.arctan(t) + jnp.arcsinh(t) + jax.nn.sigmoid(t),
    "outer and reductions": lambda t: jnp.sum(jnp.tanh(t[:, None] * t[None, :]), axis=0) + jnp.max(t),
    "matmul with batch": lambda t: jnp.einsum("bij,bjk->bik", t.reshape(1, 3, 3), t.reshape(1, 3, 3)).ravel(),
    "where and comparisons": lambda t: jnp.where(t > 0.1, t**3, -t) + jnp.clip(t, -0.5, 0.5),
    "slices, pad, concatenate": lambda t: jnp.concatenate([t[::2], jnp.pad(t[1:4], (2, 1)), t[::-1]]),
    "split and stack": lambda t: jnp.stack(jnp.split(t, 3)).T.ravel() * jnp.arange(9.0),
    "integer indices": lambda t: t[jnp.array([2, 0, 1])] * t[jnp.argmax(t)] + jnp.cumsum(t)[-1],
    "softmax, relu, softplus": _nn,
    "integer power": lambda t: t**5 - t**-2 + jnp.abs(t) ** 1.5,
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_runs_every_transform_as_xla_does(name, dtype, rng):
    fn = FUNCTIONS[name]
    F = _flat_program(lambda t: fn(t), ((9,),))
    theta = rng.normal(size=9).astype(dtype) + 0.3
    rtol = 1e-13 if dtype == np.float64 else 2e-5
    with autodiff.precision(dtype):
        for kind, args in (
            ("reverse", (theta, {})),
            ("forward", (theta, np.arange(9), {})),
            ("perturbed", (theta, np.arange(9), theta + 0.25, {})),
        ):
            want = autodiff._Jitted(autodiff._transform(F, kind))(*args)
            got = autodiff.call_eager(F, kind, *args)
            for w, g in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got)):
                w = np.asarray(w)
                assert g.dtype == w.dtype, kind
                # Rounding differs by a few units of the largest value (XLA's float32 tanh is its own).
                np.testing.assert_allclose(g, w, rtol=rtol, atol=10 * rtol * np.abs(w).max(initial=1), err_msg=kind)


def test_the_complex_step_program_runs_in_numpy(rng):
    F = _flat_program(lambda t: jnp.tanh(t) * jnp.log1p(t**2), ((4,),))
    theta = rng.normal(size=4)
    moved = (theta + 1e-20j).astype(np.complex128)
    with autodiff.precision(np.float64):
        rows = autodiff.call_eager(F, "perturbed", theta.astype(np.complex128), np.arange(4), moved, {})
        jac = np.asarray(jax.jacfwd(lambda t: jnp.tanh(t) * jnp.log1p(t**2))(theta))
    assert rows.dtype == np.complex128
    np.testing.assert_allclose(rows.imag / 1e-20, jac.T, rtol=1e-14)


def _rule(scale):
    @jax.custom_jvp
    def f(x):
        return jnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        return f(primals[0]), scale * jnp.cos(primals[0]) * tangents[0]

    return f


def test_a_program_is_found_again_only_with_the_same_custom_rule():
    # Two custom_jvp functions whose jaxprs print alike (same name, same primal): their keys differ.
    good, bad = _rule(1.0), _rule(2.0)
    with jax.enable_x64(True):
        keys = [autodiff.program_key(jax.make_jaxpr(f)(0.3)) for f in (good, bad, good)]
        assert keys[0] is not None and keys[0] == keys[2] and keys[0] != keys[1]
        for f, want in ((good, np.cos(0.3)), (bad, 2 * np.cos(0.3)), (good, np.cos(0.3))):
            F = _flat_program(lambda t, f=f: f(t[0])[None], ((1,),))
            _, jac = autodiff.value_and_jacobian(F, np.array([0.3]), {})
            np.testing.assert_allclose(jac[0, 0], want, rtol=1e-15)


def test_a_program_with_a_custom_vjp_is_traced_afresh():
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (g * jnp.cos(x),))
    with jax.enable_x64(True):
        assert autodiff.program_key(jax.make_jaxpr(f)(0.3)) is None


def test_a_primitive_without_a_numpy_rule_is_bound_to_jax():
    closed = jax.make_jaxpr(lambda x: jax.lax.erf_inv(x) + jax.lax.cumsum(x))(np.linspace(-0.5, 0.5, 5))
    (out,) = jaxpr_numpy.run(closed, np.linspace(-0.5, 0.5, 5))
    np.testing.assert_allclose(out, jax.lax.erf_inv(np.linspace(-0.5, 0.5, 5)) + np.cumsum(np.linspace(-0.5, 0.5, 5)))


def test_large_problems_and_other_devices_compile():
    assert autodiff.eager(9) and not autodiff.eager(autodiff.EAGER + 1)


def test_a_programs_key_tells_apart_what_its_text_tells_apart():
    x = np.arange(6.0).reshape(2, 3)
    c = np.ones(3)
    programs = [
        lambda x: jnp.sum(x, axis=0),
        lambda x: jnp.sum(x, axis=1),  # a parameter
        lambda x: x**2,
        lambda x: x**3,  # a literal
        lambda x: x * c,
        lambda x: x * (2 * c),  # a constant's value
        lambda x: jax.lax.cond(x.sum() > 0, jnp.sin, jnp.cos, x),
        lambda x: jax.lax.cond(x.sum() > 0, jnp.sin, jnp.tan, x),  # a branch inside a parameter
    ]
    with jax.enable_x64(True):
        keys = [autodiff.program_key(jax.make_jaxpr(f)(x)) for f in programs]
        again = [autodiff.program_key(jax.make_jaxpr(f)(x)) for f in programs]
    assert keys == again and None not in keys
    assert len(set(keys)) == len(keys)


def test_pad_with_interior_and_negative_padding_is_xlas():
    # reverse mode's transpose of a strided or cropping slice pads so: it must not fall back to JAX
    rng = np.random.default_rng(0)
    checked = 0
    with jax.enable_x64(True):
        for shape in [(5,), (3, 4), (2, 1, 6), (1,)]:
            for _ in range(25):
                cfg = [
                    tuple(int(v) for v in (rng.integers(-3, 3), rng.integers(-3, 3), rng.integers(0, 3))) for _ in shape
                ]
                x = rng.standard_normal(shape)
                try:
                    want = np.asarray(jax.lax.pad(jnp.asarray(x), 0.5, cfg))
                except Exception:  # noqa: BLE001 - a crop past the array: JAX refuses it too
                    continue
                got = jaxpr_numpy._pad(x, np.float64(0.5), padding_config=cfg)
                assert got.shape == want.shape and np.array_equal(got, want), cfg
                checked += 1
    assert checked > 60
