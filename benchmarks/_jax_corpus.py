"""A corpus of gradient checks taken from JAX's own test suite, written as JAX writes its tests.

Each entry re-expresses one record or one `test*Grad` method of JAX's tests (jax-ml/jax `tests/…`):
the same operation, the same kind of point (drawn by JAX's own `jax._src.test_util` `rand_*`
factories, with a seed fixed per entry), the same derivative order and the tolerance JAX passes to
`jax.test_util.check_grads`. Data is closed over as NumPy constants, the way JAX's tests and most
users write a loss (`X = rng.randn(16, 10); loss = lambda W: jnp.mean(jnp.tanh(X @ W))`).

Nothing here imports diffcheck: `benchmarks.jax_suite` runs the corpus through diffcheck and
`check_grads` side by side, and `tests/test_jax_suite.py` runs a fast subset. Building the corpus
draws NumPy arrays only (no JAX array is created at import), so the same entries come out under
any x64 setting; every argument is float64 (or float32 for the float32 slice).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
from jax import lax
from jax._src import test_util as jtu

LAX = "tests/lax_autodiff_test.py"
NN = "tests/nn_test.py"
NUMPY = "tests/lax_numpy_test.py"
SPECIAL = "tests/lax_scipy_special_functions_test.py"
LINALG = "tests/linalg_test.py"
CONTROL = "tests/lax_control_flow_test.py"
API = "tests/api_test.py"
FAQ = "docs/faq.rst"  # a function JAX's documentation discusses rather than a test
USER = "issue 13 (a user's loss)"


@dataclass(frozen=True)
class Entry:
    """One gradient check: `fn` at `args`, as one of JAX's tests writes it."""

    name: str  # unique, e.g. "lax.tanh[3]_o2"
    source: str  # the file of JAX's tests (or docs) it is taken from
    fn: object
    args: tuple  # NumPy arrays or floats, float64 (float32 in the float32 slice)
    order: int = 1  # the derivative order (diffcheck's order=, check_grads' order)
    dtype: str = "float64"  # "float64" or "float32": diffcheck's dtype=
    argnums: tuple | None = None  # differentiated positions; None: all of them
    tol: object = None  # check_grads' atol = rtol as JAX's test passes it (a number or a dtype → number dict)
    eps: float | None = None  # check_grads' eps as JAX's test passes it
    modes: tuple = ("fwd", "rev")  # check_grads' modes as JAX's test passes them
    # A real problem in JAX at this point (documented, with the method expected to be the odd one out),
    # e.g. "autodiff: jax.grad(spence) is NaN where jvp is finite". Empty: the function and JAX are right.
    jax_problem: str = ""
    tags: tuple = field(default_factory=tuple)  # e.g. ("closure",), ("kink",)


CORPUS: list[Entry] = []


def _rng(name: str) -> np.random.RandomState:
    """A RandomState per entry, as JaxTestCase.rng() gives one per test (stable under insertions)."""
    return np.random.RandomState(zlib.crc32(name.encode()))


def _draw(name, factory, shapes, dtype=np.float64):
    rng = factory(_rng(name))
    return tuple(np.asarray(rng(s, dtype)) if s != () else np.float64(rng(s, dtype)) for s in shapes)


def _add(name, source, fn, args, **kw):
    if any(e.name == name for e in CORPUS):
        raise ValueError(f"duplicate corpus entry {name!r}")
    CORPUS.append(Entry(name, source, fn, tuple(args), **kw))


def _shape_name(shapes) -> str:
    return ",".join("x".join(map(str, s)) or "()" for s in shapes)


# --- lax_autodiff_test.py: LAX_GRAD_OPS (testOpGrad), each at two shape groups, order 1 and 2 -------
uniform = jtu.rand_uniform
_LAX_GRAD_OPS = [
    # (op, nargs, order JAX uses, rng factory, tol JAX passes)
    (lax.neg, 1, 2, jtu.rand_default, None),
    (lax.floor, 1, 2, partial(uniform, low=0.1, high=0.4), None),
    (lax.ceil, 1, 2, partial(uniform, low=0.1, high=0.4), None),
    (lax.round, 1, 2, partial(uniform, low=0.1, high=0.4), None),
    (lax.exp, 1, 2, jtu.rand_small, None),
    (lax.exp2, 1, 2, jtu.rand_small, None),
    (lax.expm1, 1, 2, jtu.rand_default, None),
    (lax.log, 1, 2, jtu.rand_positive, None),
    (lax.log1p, 1, 2, jtu.rand_positive, None),
    (lax.sinh, 1, 2, jtu.rand_default, 1e-5),
    (lax.cosh, 1, 2, jtu.rand_default, 1e-5),
    (lax.tanh, 1, 2, jtu.rand_default, 2e-4),
    (lax.sin, 1, 2, jtu.rand_default, {np.float32: 5e-1}),
    (lax.cos, 1, 2, jtu.rand_default, None),
    (lax.tan, 1, 2, partial(uniform, low=-1.3, high=1.3), 1e-3),
    (lax.asin, 1, 2, partial(uniform, low=-1.3, high=1.3), 1e-3),
    (lax.acos, 1, 2, partial(uniform, low=-1.3, high=1.3), 2e-2),
    (lax.atan, 1, 2, jtu.rand_default, None),
    (lax.atan2, 2, 2, jtu.rand_default, None),
    (lax.erf, 1, 2, jtu.rand_small, None),
    (lax.erfc, 1, 2, jtu.rand_small, None),
    (lax.erf_inv, 1, 2, jtu.rand_small, None),
    (lax.bessel_i0e, 1, 2, jtu.rand_default, None),
    (lax.bessel_i1e, 1, 2, jtu.rand_default, None),
    (lax.abs, 1, 2, jtu.rand_positive, None),
    (lax.pow, 2, 2, jtu.rand_positive, {np.float32: 3e-1}),
    (lax.sqrt, 1, 2, jtu.rand_positive, None),
    (lax.rsqrt, 1, 2, jtu.rand_positive, None),
    (lax.cbrt, 1, 2, jtu.rand_not_small, {np.float64: 5e-3}),
    (lax.logistic, 1, 2, jtu.rand_default, None),
    (lax.add, 2, 2, jtu.rand_default, None),
    (lax.sub, 2, 2, jtu.rand_default, None),
    (lax.mul, 2, 2, jtu.rand_default, None),
    (lax.div, 2, 1, jtu.rand_not_small, None),
    (lax.max, 2, 2, jtu.rand_default, None),
    (lax.min, 2, 2, jtu.rand_default, None),
]
# JAX's compatible_shapes, one combination from each of two groups (small enough for a full Jacobian).
_SHAPES = {1: [((3,),), ((2, 1, 4),)], 2: [((3,), (3,)), ((3, 1), (1, 4))]}

# Unary ops at the order JAX uses, and at order 1 too for the commonest; binary ops at both orders and
# at order 1 with broadcasting (the second shape group).
_ORDER_1_TOO = {"tanh", "exp", "log", "sin", "logistic", "sqrt", "cbrt", "erf", "asin", "log1p", "expm1", "abs"}
for op, nargs, top, factory, tol in _LAX_GRAD_OPS:
    for i, shapes in enumerate(_SHAPES[nargs]):
        if i and nargs == 1:
            continue
        if i:
            orders = (1,)
        elif nargs == 2 or op.__name__ in _ORDER_1_TOO or top == 1:
            orders = sorted({1, top})
        else:
            orders = (top,)
        for order in orders:
            name = f"lax.{op.__name__}[{_shape_name(shapes)}]_o{order}"
            args = _draw(name, factory, shapes)
            problem = ""
            if op in (lax.asin, lax.acos) and np.any(np.abs(args[0]) > 1):
                problem = "domain: JAX's test draws on [-1.3, 1.3], outside [-1, 1]: NaN (check_grads: NaN == NaN)"
            _add(name, LAX, op, args, order=order, tol=tol, jax_problem=problem)

# testOpGradSpecialValue: LAX_GRAD_SPECIAL_VALUE_TESTS, order 2.
for op, values, tol in [
    (lax.sinh, [0.0], None),
    (lax.cosh, [0.0], None),
    (lax.tanh, [0.0, 1000.0], 5e-3),
    (lax.sin, [0.0, np.pi, np.pi / 2.0, np.pi / 4.0], None),
    (lax.cos, [0.0, np.pi, np.pi / 2.0, np.pi / 4.0], None),
    (lax.tan, [0.0], None),
    (lax.asin, [0.0], None),
    (lax.acos, [0.0], None),
    (lax.atan, [0.0, 1000.0], None),
    (lax.erf, [0.0, 10.0], None),
    (lax.erfc, [0.0, 10.0], None),
]:
    for v in values:
        _add(f"lax.{op.__name__}@{v:.6g}_o2", LAX, op, (np.float64(v),), order=2, tol=tol, tags=("special",))

# testConvertElementTypeGrad: a round trip through float32 inside a float64 function.
_x = _draw("convert_element_type", jtu.rand_default, [(2, 3)])
_add(
    "lax.convert_element_type_f64_f32",
    LAX,
    lambda x: lax.convert_element_type(x, np.float32),
    _x,
    eps=1.0,
    tol=1e-3,
    tags=("precision",),
)
_add(
    "lax.convert_element_type_f64_f64_o2", LAX, lambda x: lax.convert_element_type(x, np.float64), _x, order=2, eps=1.0
)
_add(
    "lax.convert_element_type_f32_inside",
    LAX,
    lambda x: jnp.sum(jnp.sin(lax.convert_element_type(x, np.float32)).astype(np.float64) * x),
    _x,
    tol=1e-3,
    tags=("precision",),
)

# testClampGrad: the operand in each of the three positions, order 2, eps 1e-2.
for shape in [()]:
    (operand,) = _draw(f"clamp{shape}", jtu.rand_default, [shape])
    low, high = operand - 10.0, operand + 10.0
    for pos, args in enumerate([(operand, low, high), (low, operand, high), (low, high, operand)]):
        _add(f"lax.clamp{list(shape)}_pos{pos}_o2", LAX, lax.clamp, args, order=2, eps=1e-2)

# testConcatenateGrad / testSplitGrad.
for base, dim in [((4,), 0), ((3, 4), 1), ((2, 3, 4), 0)]:
    shapes = [base[:dim] + (s,) + base[dim + 1 :] for s in (3, 1, 4)]
    name = f"lax.concatenate{list(base)}_dim{dim}_o2"
    _add(
        name,
        LAX,
        lambda *a, dim=dim: lax.concatenate(a, dim),
        _draw(name, jtu.rand_default, shapes),
        order=2 if len(base) < 3 else 1,
        eps=1.0,
    )
for base, axis, sizes in [((3, 4), 1, (1, 2, 1)), ((2, 3, 4), 2, (3, 1))]:
    shape = list(base)
    shape[axis] = sum(sizes)
    name = f"lax.split{shape}_axis{axis}"
    _add(
        name,
        LAX,
        lambda x, s=sizes, a=axis: lax.split(x, s, a),
        _draw(name, jtu.rand_default, [tuple(shape)]),
        order=2,
        eps=1.0,
    )


# testConvGrad / testConvWithGeneralPaddingGrad / testConvGeneralDilatedGrad: bilinear, one argument at
# a time (check_grads_bilinear), eps 1, atol = rtol = 1e-2, float64 at HIGHEST precision.
def _bilinear(name, source, f, args, order, **kw):
    lhs, rhs = args
    _add(f"{name}_lhs_o{order}", source, lambda lhs, rhs=rhs: f(lhs, rhs), (lhs,), order=order, eps=1.0, tol=1e-2, **kw)
    _add(f"{name}_rhs_o{order}", source, lambda rhs, lhs=lhs: f(lhs, rhs), (rhs,), order=order, eps=1.0, tol=1e-2, **kw)


for lhs_shape, rhs_shape, strides, padding, order in [
    ((2, 2, 3, 4), (3, 2, 1, 2), (1, 1), "VALID", 1),
    ((2, 2, 3, 4), (2, 2, 1, 2), (1, 2), "SAME", 1),
    ((3, 2, 3, 4), (2, 2, 1, 2), (2, 1), "VALID", 2),
]:
    name = f"lax.conv[{_shape_name([lhs_shape, rhs_shape])}]_{strides}_{padding}"
    conv = partial(lax.conv, window_strides=strides, padding=padding, precision=lax.Precision.HIGHEST)
    _bilinear(name, LAX, conv, _draw(name, jtu.rand_small, [lhs_shape, rhs_shape]), order)

for lhs_shape, rhs_shape, padding, lhs_dil, rhs_dil, groups in [
    ((2, 2, 3, 4), (2, 2, 1, 2), ((1, 0), (0, 1)), (2, 1), (1, 1), 1),
    ((2, 2, 4, 4), (2, 2, 2, 2), ((0, 0), (0, 0)), (1, 1), (2, 1), 1),
    ((1, 4, 4, 3), (4, 2, 2, 2), ((1, 1), (0, 0)), (1, 1), (1, 1), 2),
]:
    shapes = _shape_name([lhs_shape, rhs_shape])
    name = f"lax.conv_general_dilated[{shapes}]_pad{padding}_ld{lhs_dil}_rd{rhs_dil}_g{groups}"
    conv = partial(
        lax.conv_general_dilated,
        window_strides=(1, 1),
        padding=padding,
        lhs_dilation=lhs_dil,
        rhs_dilation=rhs_dil,
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )
    _bilinear(name, LAX, conv, _draw(name, jtu.rand_small, [lhs_shape, rhs_shape]), 1)

# testDotGrad / testDotGeneralContractAndBatchGrad.
for lhs_shape, rhs_shape in [((3,), (3,)), ((4, 3), (3,)), ((2, 3), (3, 4))]:
    name = f"lax.dot[{_shape_name([lhs_shape, rhs_shape])}]"
    dot = partial(lax.dot, precision=lax.Precision.HIGHEST)
    args = _draw(name, jtu.rand_default, [lhs_shape, rhs_shape])
    _add(f"{name}_o2", LAX, dot, args, order=2, eps=1.0, tol=1e-2)
for lhs_shape, rhs_shape, dims in [
    ((2, 3, 4), (2, 4, 3), (([2], [1]), ([0], [0]))),
    ((3, 2, 4), (3, 4, 2), (([2], [1]), ([0], [0]))),
    ((2, 3, 4), (3, 4), (([1, 2], [0, 1]), ([], []))),
]:
    name = f"lax.dot_general[{_shape_name([lhs_shape, rhs_shape])}]_{dims}"
    dg = partial(lax.dot_general, dimension_numbers=dims, precision=lax.Precision.HIGHEST)
    _bilinear(name, LAX, dg, _draw(name, jtu.rand_small, [lhs_shape, rhs_shape]), 1)

# testBroadcastGrad / testBroadcastInDimGrad / testReshapeGrad / testTransposeGrad / testRevGrad / testSqueezeGrad.
_shape_ops = [
    ("broadcast", (2, 3), lambda x: lax.broadcast(x, (2,))),
    ("broadcast_in_dim", (3, 1), lambda x: lax.broadcast_in_dim(x, (2, 3, 4), (1, 2))),
    ("reshape", (2, 3, 2), lambda x: lax.reshape(x, (3, 4))),
    ("reshape_dims", (2, 3, 2), lambda x: lax.reshape(x, (4, 3), dimensions=(2, 0, 1))),
    ("transpose", (2, 3, 4), lambda x: lax.transpose(x, (2, 0, 1))),
    ("rev", (3, 4), lambda x: lax.rev(x, (0, 1))),
    ("squeeze", (2, 1, 3), lambda x: lax.squeeze(x, (1,))),
    ("expand_dims", (2, 3), lambda x: lax.expand_dims(x, (0, 2))),
]
for opname, shape, f in _shape_ops:
    name = f"lax.{opname}[{_shape_name([shape])}]_o2"
    _add(name, LAX, f, _draw(name, jtu.rand_default, [shape]), order=2, eps=1.0)

# testPadGrad: positive, negative and interior padding, with a padding value that is differentiated too.
for shape, pads in [
    ((2, 3), [(1, 2, 1), (0, 1, 0)]),
    ((2, 3), [(-1, 0, 0), (-2, 0, 1)]),
    ((3, 4), [(-1, -1, 1), (1, -2, 0)]),
    ((4,), [(2, 1, 2)]),
]:
    name = f"lax.pad[{_shape_name([shape])}]_{pads}"
    (operand,) = _draw(name, jtu.rand_small, [shape])
    _add(name + "_o2", LAX, lambda x, p=pads: lax.pad(x, np.array(0.0, x.dtype), p), (operand,), order=2, eps=1.0)
    _add(name + "_value", LAX, lambda x, v, p=pads: lax.pad(x, v, p), (operand, np.float64(0.7)), eps=1.0)

# testSelectGrad (select_n with a NumPy boolean predicate closed over, or passed as data).
for shape in [(), (2, 3)]:
    name = f"lax.select_n[{_shape_name([shape])}]_o2"
    pred = np.asarray(_rng(name).rand(*shape) > 0.5)
    x, y = _draw(name, jtu.rand_default, [shape, shape])
    _add(name, LAX, lambda x, y, p=pred: lax.select_n(p, x, y), (x, y), order=2, tags=("closure",))

# testDynamicSliceGrad / testDynamicUpdateSliceGrad.
for shape, start, size in [((3,), (1,), (1,)), ((5, 3), (1, 1), (3, 1)), ((7, 5, 3), (4, 1, 0), (2, 0, 1))]:
    name = f"lax.dynamic_slice[{_shape_name([shape])}]_{start}_{size}_o2"
    _add(
        name,
        LAX,
        lambda x, s=start, z=size: lax.dynamic_slice(x, s, z),
        _draw(name, jtu.rand_default, [shape]),
        order=2,
        eps=1.0,
    ) if np.prod(size) else None
for shape, start, ushape in [((3,), (1,), (1,)), ((5, 3), (1, 1), (3, 1)), ((4, 3, 2), (1, 1, 0), (2, 2, 2))]:
    name = f"lax.dynamic_update_slice[{_shape_name([shape])}]_{start}"
    operand, update = _draw(name, jtu.rand_default, [shape, ushape])
    _add(
        name + "_both_o2",
        LAX,
        lambda x, u, s=start: lax.dynamic_update_slice(x, u, s),
        (operand, update),
        order=2,
        eps=1.0,
    )
    _add(
        name + "_closed_update",
        LAX,
        lambda x, u=update, s=start: lax.dynamic_update_slice(x, u, s),
        (operand,),
        eps=1.0,
        tags=("closure",),
    )

# testReduceGrad: sum, prod, max, min over axes (JAX: rand_default, order 2 for sum, 1 for the others).
for opname, f, order, factory in [
    ("sum", lambda x, a: lax.reduce(x, np.float64(0), lax.add, a), 2, jtu.rand_default),
    ("prod", lambda x, a: lax.reduce(x, np.float64(1), lax.mul, a), 1, jtu.rand_small),
    ("max", lambda x, a: lax.reduce(x, np.float64(-np.inf), lax.max, a), 1, jtu.rand_default),
    ("min", lambda x, a: lax.reduce(x, np.float64(np.inf), lax.min, a), 1, jtu.rand_default),
]:
    for shape, axes in [((3, 4), (1,)), ((2, 3, 4), (0, 2))]:
        name = f"lax.reduce_{opname}[{_shape_name([shape])}]_{axes}"
        _add(
            name,
            LAX,
            lambda x, a=axes, f=f: f(x, a),
            _draw(name, factory, [shape]),
            order=order if len(shape) < 3 else 1,
            eps=1.0 if opname == "sum" else None,  # a step of 1 would cross a max/min's switch
        )

# testReduceWindowGrad: max / sum / min windows with strides, padding and dilation (JAX's avg/max pool).
for opname, init, op in [("max", -np.inf, lax.max), ("add", 0.0, lax.add), ("min", np.inf, lax.min)]:
    for shape, dims, strides, padding in [
        ((4, 6), (2, 1), (1, 2), "VALID"),
        ((4, 6), (1, 2), (2, 1), "SAME"),
        ((3, 4, 5), (1, 2, 2), (1, 1, 1), "SAME"),
    ]:
        name = f"lax.reduce_window_{opname}[{_shape_name([shape])}]_{dims}_{strides}_{padding}"
        pads = lax.padtype_to_pads(shape, dims, strides, padding)
        f = lambda x, i=init, o=op, d=dims, s=strides, p=pads: lax.reduce_window(x, np.float64(i), o, d, s, p)
        # JAX draws distinct values for max/min windows (rand_unique_int would tie; it uses a permutation).
        (x,) = _draw(name, jtu.rand_default, [shape])
        if opname != "add":
            x = _rng(name).permutation(x.size).reshape(shape).astype(np.float64) / x.size
        _add(
            name,
            LAX,
            f,
            (x,),
            order=2 if opname == "add" and len(shape) < 3 else 1,
            eps=1.0 if opname == "add" else None,
        )
_add(
    "lax.reduce_window_add_dilated",
    LAX,
    lambda x: lax.reduce_window(x, np.float64(0), lax.add, (2, 2), (1, 1), ((1, 0), (0, 1)), (2, 1), (1, 2)),
    _draw("lax.reduce_window_add_dilated", jtu.rand_default, [(4, 5)]),
    eps=1.0,
)

# testCumulativeReducerGrad: cumsum / cumprod / cummax / cummin / cumlogsumexp, forward and reverse.
for opname, op, factory in [
    ("cumsum", lax.cumsum, jtu.rand_default),
    ("cumprod", lax.cumprod, jtu.rand_default),
    ("cummax", lax.cummax, jtu.rand_default),
    ("cummin", lax.cummin, jtu.rand_default),
    ("cumlogsumexp", lax.cumlogsumexp, jtu.rand_default),
]:
    for shape, axis, reverse in [((5,), 0, False), ((3, 4), 1, True)]:
        name = f"lax.{opname}[{_shape_name([shape])}]_axis{axis}_rev{reverse}"
        (x,) = _draw(name, factory, [shape])
        if opname in ("cummax", "cummin"):  # distinct values (JAX: rand_unique_int)
            x = _rng(name).permutation(x.size).reshape(shape).astype(np.float64)
        _add(
            name,
            LAX,
            lambda x, o=op, a=axis, r=reverse: o(x, a, r),
            (x,),
            order=2 if opname != "cummax" else 1,
            tol={np.float64: 1e-3} if opname == "cumprod" else None,
        )

# testSortGrad / testSortKeyValGrad / testTopKGrad (distinct values: a permutation, as JAX draws them).
for shape, axis in [((5,), 0), ((3, 4), 0), ((3, 4), 1)]:
    name = f"lax.sort[{_shape_name([shape])}]_axis{axis}"
    x = _rng(name).permutation(np.prod(shape)).reshape(shape).astype(np.float64) * 0.5
    _add(name + "_o2", LAX, lambda x, a=axis: lax.sort(x, dimension=a), (x,), order=2, eps=1e-2)
for shape in [(5,), (3, 4)]:
    name = f"lax.sort_key_val[{_shape_name([shape])}]"
    keys = _rng(name).permutation(np.prod(shape)).reshape(shape).astype(np.float64)
    (vals,) = _draw(name, jtu.rand_default, [shape])
    f = lambda k, v: lax.sort_key_val(k, v, dimension=-1)
    _add(name + "_o2", LAX, lambda v, k=keys, f=f: f(k, v)[1], (vals,), order=2, eps=1e-2, tags=("closure",))
for shape, k in [((6,), 3), ((3, 5), 2)]:
    name = f"lax.top_k[{_shape_name([shape])}]_k{k}"
    x = _rng(name).permutation(np.prod(shape)).reshape(shape).astype(np.float64) / 4
    _add(name + "_o2", LAX, lambda x, k=k: lax.top_k(x, k)[0], (x,), order=2, eps=1e-2)

# testGatherGrad: lax.gather with NumPy index arrays closed over, in each mode, fill values included.
for shape, idxs, dnums, slice_sizes, mode, fill in [
    ((5,), np.array([[0], [2]]), lax.GatherDimensionNumbers((), (0,), (0,)), (1,), "clip", None),
    ((10,), np.array([[0], [0], [0]]), lax.GatherDimensionNumbers((1,), (), (0,)), (2,), "clip", None),
    ((10, 5), np.array([[0], [2], [1]]), lax.GatherDimensionNumbers((1,), (0,), (0,)), (1, 3), "clip", None),
    ((10, 5), np.array([[0, 2], [1, 0]]), lax.GatherDimensionNumbers((1,), (0,), (0, 1)), (1, 3), "clip", None),
    ((5,), np.array([[0], [2], [7]]), lax.GatherDimensionNumbers((), (0,), (0,)), (1,), "fill", None),
    ((5,), np.array([[0], [2], [7]]), lax.GatherDimensionNumbers((), (0,), (0,)), (1,), "fill", 2.5),
    ((4, 3), np.array([[0], [5], [1]]), lax.GatherDimensionNumbers((1,), (0,), (0,)), (1, 3), "fill", -1.0),
    ((5,), np.array([[1], [3]]), lax.GatherDimensionNumbers((), (0,), (0,)), (1,), "promise_in_bounds", None),
]:
    name = f"lax.gather[{_shape_name([shape])}]_{mode}_fill{fill}_{idxs.tolist()}"
    f = lambda x, i=idxs, d=dnums, s=slice_sizes, m=mode, v=fill: lax.gather(x, i, d, s, mode=m, fill_value=v)
    # JAX checks the gather's output times the sum of the operand, so that a fill value shows in the value.
    problem = ""
    if mode == "fill" and fill is None:
        problem = "function: mode='fill' without fill_value fills out-of-bounds elements with NaN (JAX's default)"
    _add(name, LAX, f, _draw(name, jtu.rand_default, [shape]), eps=1.0, tags=("closure",), jax_problem=problem)
    if fill is not None:
        _add(
            name + "_sum",
            LAX,
            lambda x, f=f: jnp.sum(f(x)) * jnp.sum(x),
            _draw(name, jtu.rand_default, [shape]),
            tags=("closure",),
        )

# testScatterAddGrad / testScatterGrad / testScatterMulGrad / testScatterMin/MaxGrad.
_sdn = lax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,), scatter_dims_to_operand_dims=(0,))
_sdn2 = lax.ScatterDimensionNumbers(
    update_window_dims=(1,), inserted_window_dims=(0,), scatter_dims_to_operand_dims=(0,)
)
for opname, op, shape, idxs, ushape, dnums, mode in [
    ("scatter_add", lax.scatter_add, (5,), np.array([[0], [2]]), (2,), _sdn, None),
    ("scatter_add", lax.scatter_add, (10, 5), np.array([[0], [2], [1]]), (3, 5), _sdn2, None),
    ("scatter_add", lax.scatter_add, (5,), np.array([[0], [9]]), (2,), _sdn, "drop"),
    ("scatter", lax.scatter, (5,), np.array([[0], [2]]), (2,), _sdn, None),
    ("scatter", lax.scatter, (10, 5), np.array([[0], [2], [1]]), (3, 5), _sdn2, None),
    ("scatter_mul", lax.scatter_mul, (5,), np.array([[0], [2]]), (2,), _sdn, None),
    ("scatter_max", lax.scatter_max, (5,), np.array([[0], [2]]), (2,), _sdn, None),
    ("scatter_min", lax.scatter_min, (5,), np.array([[0], [2]]), (2,), _sdn, None),
]:
    name = f"lax.{opname}[{_shape_name([shape, ushape])}]_{idxs.tolist()}_{mode}"
    operand, update = _draw(name, jtu.rand_default, [shape, ushape])
    # JAX's testScatterMulGrad passes unique_indices=True (reverse mode needs it); the indices are unique.
    f = lambda x, u, o=op, i=idxs, d=dnums, m=mode: o(x, i, u, d, mode=m, unique_indices=True)
    _add(name, LAX, f, (operand, update), order=2 if opname == "scatter_add" else 1, eps=1.0, tags=("closure",))

# testRemGrad (rand_not_small divisor; JAX keeps the quotient away from integers) and the integer-free
# nextafter-free ops: lax.rem at order 2.
for shape in [(), (3,)]:
    name = f"lax.rem[{_shape_name([shape])}]_o2"
    x, y = _draw(name, jtu.rand_not_small, [shape, shape])
    q = np.abs(x / y) % 1.0  # away from the jumps of rem, at integer quotients
    x = np.where((q < 0.1) | (q > 0.9), x + 0.5 * y, x)
    _add(name, LAX, lax.rem, (x, y), order=2, eps=1e-3)

# testReducePrecisionGrad / testPowSpecial / testIntegerPow.
_x = _draw("reduce_precision", jtu.rand_default, [(3,)])
_add("lax.reduce_precision_f64", LAX, lambda x: lax.reduce_precision(x, exponent_bits=11, mantissa_bits=52), _x)
for n in [2, 3, -2]:
    name = f"lax.integer_pow_{n}_o2"
    _add(name, LAX, lambda x, n=n: lax.integer_pow(x, n), _draw(name, jtu.rand_not_small, [(3,)]), order=2)
_add(
    "lax.pow_x_zero_exponent",
    LAX,
    lambda x: lax.pow(x, np.float64(0.0)),
    (np.float64(0.0),),
    tags=("kink",),
    jax_problem="autodiff: d/dx lax.pow(x, 0.0) at x = 0 is NaN in JAX (y·x^(y−1) = 0·inf); the derivative is 0",
)


# --- nn_test.py ---------------------------------------------------------------------------------------
for fn_name, points, order in [
    ("softplus", [1e-8, 2.0, 0.0, -3.0], 4),
    ("relu", [1.0, -1.5], 3),
    ("relu6", [3.0, -1.5], 2),
    ("sparse_plus", [-1.3, 0.2, 2.0], 2),
    ("squareplus", [-1.0, 0.0, 2.5], 4),
    ("mish", [0.0, 1.3, -2.0], 4),
    ("silu", [0.0, 0.8, -1.7], 3),
    ("log_sigmoid", [0.0, 3.0, -4.0], 3),
    ("sigmoid", [0.0, 2.0, -20.0], 3),
    ("soft_sign", [0.5, -1.2], 3),
    ("hard_tanh", [0.5, -0.3], 2),
    ("hard_sigmoid", [0.5], 2),
    ("hard_silu", [0.7], 2),
    ("elu", [1e4, -0.5, 0.7], 4),
    ("celu", [-0.5, 0.7], 3),
    ("selu", [-0.5, 0.7], 3),
    ("leaky_relu", [-0.5, 0.7], 2),
    ("gelu", [0.0, 1.2, -0.7], 3),
]:
    f = getattr(jax.nn, fn_name)
    for p in points[:1] if fn_name not in ("softplus", "relu", "elu", "gelu", "sigmoid", "mish") else points[:2]:
        for o in sorted({1, order}) if p == points[0] else (1,):
            tags = ("kink",) if p == 0.0 else ()
            _add(f"nn.{fn_name}@{p:g}_o{o}", NN, f, (np.float64(p),), order=o, tags=tags)
_add("nn.gelu_tanh_approx_o2", NN, partial(jax.nn.gelu, approximate=True), (np.float64(0.6),), order=2)
_add("nn.gelu_exact_o2", NN, partial(jax.nn.gelu, approximate=False), (np.float64(-0.6),), order=2)
_add("nn.softplus@0_o2", NN, jax.nn.softplus, (np.float64(0.0),), order=2, tags=("kink",))
_add("nn.mish@0_o2", NN, jax.nn.mish, (np.float64(0.0),), order=2, tags=("kink",))
for fn_name, shape, kw in [
    ("softmax", (3, 4), dict(axis=-1)),
    ("softmax", (4,), dict(axis=0)),
    ("log_softmax", (3, 4), dict(axis=-1)),
    ("log_softmax", (2, 3, 2), dict(axis=(0, 2))),
    ("logsumexp", (3, 4), dict(axis=1)),
    ("standardize", (2, 5), dict(axis=-1)),
    ("glu", (2, 6), dict(axis=-1)),
]:
    f = partial(getattr(jax.nn, fn_name), **kw)
    name = f"nn.{fn_name}[{_shape_name([shape])}]_{kw}"
    _add(name, NN, f, _draw(name, jtu.rand_default, [shape]), order=1)
    if shape == (4,) or fn_name == "logsumexp":
        _add(name + "_o2", NN, f, _draw(name, jtu.rand_default, [shape]), order=2)
# testSoftmaxWhereMask: a NumPy mask closed over.
_mask = np.array([[True, False, True, True], [False, True, True, False]])
_add(
    "nn.softmax_where_mask",
    NN,
    lambda x: jax.nn.softmax(x, where=_mask),
    _draw("softmax_mask", jtu.rand_default, [(2, 4)]),
    tags=("closure",),
)
_add(
    "nn.logsumexp_where_mask",
    NN,
    lambda x: jax.nn.logsumexp(x, axis=-1, where=_mask),
    _draw("lse_mask", jtu.rand_default, [(2, 4)]),
    tags=("closure",),
)
# one_hot of NumPy labels inside a cross-entropy.
_labels = np.array([0, 2, 1, 3, 2])
_add(
    "nn.one_hot_cross_entropy",
    NN,
    lambda logits: -jnp.mean(jnp.sum(jax.nn.one_hot(_labels, 4) * jax.nn.log_softmax(logits), axis=-1)),
    _draw("one_hot_xent", jtu.rand_default, [(5, 4)]),
    tags=("closure",),
)
# testDotProductAttention (the XLA implementation computes the softmax in float32 inside).
_q, _k, _v = _draw("dpa", jtu.rand_small, [(1, 3, 2, 4), (1, 3, 2, 4), (1, 3, 2, 4)])
_add(
    "nn.dot_product_attention_q",
    NN,
    lambda q: jax.nn.dot_product_attention(q, _k, _v),
    (_q,),
    tol=1e-2,
    tags=("closure", "precision"),
)
_add(
    "nn.dot_product_attention_causal_kv",
    NN,
    lambda k, v: jnp.sum(jax.nn.dot_product_attention(_q, k, v, is_causal=True) ** 2),
    (_k, _v),
    tol=1e-2,
    tags=("closure", "precision"),
)


# --- lax_numpy_test.py: GRAD_TEST_RECORDS, GRAD_SPECIAL_VALUE_TEST_RECORDS and grad tests ----------------
for op, nargs, order, factory, tol in [
    (jnp.arcsinh, 1, 2, jtu.rand_default, 1e-4),
    (jnp.arccosh, 1, 2, partial(uniform, low=1.1, high=4.0), 1e-4),
    (jnp.arctanh, 1, 2, partial(uniform, low=-0.9, high=0.9), 1e-4),
    (jnp.logaddexp, 2, 1, jtu.rand_default, 1e-4),
    (jnp.logaddexp2, 2, 2, jtu.rand_default, 1e-4),
    (jnp.hypot, 2, 2, jtu.rand_default, 1e-4),
    (jnp.true_divide, 2, 2, jtu.rand_not_small, 1e-4),
    (jnp.power, 2, 2, jtu.rand_positive, 1e-4),
    (jnp.cbrt, 1, 2, jtu.rand_default, 1e-4),
    (jnp.sinc, 1, 2, jtu.rand_default, 1e-4),
    (jnp.square, 1, 2, jtu.rand_default, 1e-4),
    (jnp.reciprocal, 1, 2, jtu.rand_not_small, 1e-4),
    (jnp.deg2rad, 1, 2, jtu.rand_default, 1e-4),
    (jnp.log10, 1, 2, jtu.rand_positive, 1e-4),
    (jnp.log2, 1, 2, jtu.rand_positive, 1e-4),
    (jnp.expm1, 1, 2, jtu.rand_small, 1e-4),
    (jnp.copysign, 2, 1, jtu.rand_not_small, 1e-4),
    (jnp.fmod, 2, 1, partial(uniform, low=0.3, high=0.9), 1e-4),
    (jnp.float_power, 2, 1, jtu.rand_positive, 1e-4),
    (jnp.heaviside, 2, 1, jtu.rand_not_small, 1e-4),
    (jnp.nextafter, 2, 1, jtu.rand_default, 1e-4),
]:
    shapes = [(3,)] * nargs
    name = f"jnp.{op.__name__}[{_shape_name(shapes)}]"
    args = _draw(name, factory, shapes)
    if op is jnp.nextafter:
        continue  # not differentiable in JAX (no JVP rule): not a gradient test
    if order == 1 or op in (jnp.cbrt, jnp.sinc, jnp.power, jnp.hypot, jnp.arcsinh):
        _add(name + "_o1", NUMPY, op, args, tol=tol)
    if order > 1:
        _add(name + f"_o{order}", NUMPY, op, args, order=order, tol=tol)
for op, values in [
    (jnp.arcsinh, [0.0, 1000.0]),
    (jnp.arccosh, [1000.0]),
    (jnp.arctanh, [0.0]),
    (jnp.sinc, [0.0]),
    (jnp.cbrt, [-8.0, 27.0]),
]:
    for v in values:
        _add(f"jnp.{op.__name__}@{v:g}_o2", NUMPY, op, (np.float64(v),), order=2, tol=1e-4, tags=("special",))
_add("jnp.cbrt@-3.7_o1", NUMPY, jnp.cbrt, (np.float64(-3.7),), tol=1e-4, tags=("special",))

# Reductions and friends (testReducerGrad-style and the cumulative ones).
for opname, f, shape, factory in [
    ("sum", lambda x: jnp.sum(x, axis=0), (3, 4), jtu.rand_default),
    ("prod", lambda x: jnp.prod(x, axis=1), (3, 4), jtu.rand_positive),
    ("mean", lambda x: jnp.mean(x), (2, 3, 2), jtu.rand_default),
    ("var", lambda x: jnp.var(x, axis=-1), (3, 4), jtu.rand_default),
    ("std", lambda x: jnp.std(x), (3, 4), jtu.rand_default),
    ("max", lambda x: jnp.max(x, axis=1), (3, 4), jtu.rand_default),
    ("amin", lambda x: jnp.amin(x), (3, 4), jtu.rand_default),
    ("linalg.norm_vec", lambda x: jnp.linalg.norm(x), (5,), jtu.rand_default),
    ("linalg.norm_fro", lambda x: jnp.linalg.norm(x, "fro"), (3, 4), jtu.rand_default),
    ("linalg.norm_inf", lambda x: jnp.linalg.norm(x, np.inf), (4,), jtu.rand_default),
    ("linalg.norm_nuc", lambda x: jnp.linalg.norm(x, "nuc"), (3, 3), jtu.rand_default),
    ("cumsum", lambda x: jnp.cumsum(x, axis=1), (3, 4), jtu.rand_default),
    ("cumprod", lambda x: jnp.cumprod(x), (5,), jtu.rand_default),
    ("diff", lambda x: jnp.diff(x, n=2), (6,), jtu.rand_default),
    ("trapezoid", lambda y: jnp.trapezoid(y, dx=0.5), (6,), jtu.rand_default),
    ("outer", lambda x: jnp.outer(x, x[::-1]), (3,), jtu.rand_default),
    ("kron", lambda x: jnp.kron(x, jnp.ones((2, 1))), (2, 2), jtu.rand_default),
    ("tril", lambda x: jnp.tril(x, -1), (3, 3), jtu.rand_default),
    ("roll", lambda x: jnp.roll(x, 2, axis=1), (2, 4), jtu.rand_default),
    ("tile", lambda x: jnp.tile(x, (2, 1)), (2, 3), jtu.rand_default),
    ("flip", lambda x: jnp.flip(x), (2, 3), jtu.rand_default),
    ("clip", lambda x: jnp.clip(x, -1.0, 1.0), (5,), partial(uniform, low=-3.0, high=3.0)),
    ("round", lambda x: jnp.round(x, 2) * x, (3,), jtu.rand_default),
    ("einsum", lambda x: jnp.einsum("ij,jk->ik", x, x.T), (2, 3), jtu.rand_default),
    ("matmul", lambda x: jnp.matmul(x, x.T), (2, 3), jtu.rand_default),
    ("polyval", lambda c: jnp.polyval(c, 1.3), (4,), jtu.rand_default),
    ("sort", lambda x: jnp.sort(x), (5,), jtu.rand_default),
    ("argsort_take", lambda x: x[jnp.argsort(x)] * jnp.arange(5.0), (5,), jtu.rand_default),
    ("median", lambda x: jnp.median(x), (5,), jtu.rand_default),
    ("quantile", lambda x: jnp.quantile(x, 0.3), (6,), jtu.rand_default),
    ("cov", lambda x: jnp.cov(x), (2, 5), jtu.rand_default),
    ("corrcoef", lambda x: jnp.corrcoef(x), (2, 5), jtu.rand_default),
]:
    name = f"jnp.{opname}[{_shape_name([shape])}]"
    _add(name, NUMPY, f, _draw(name, factory, [shape]), tol=1e-4)
for opname, f, shape, factory in [
    ("prod", lambda x: jnp.prod(x), (4,), jtu.rand_positive),
    ("var", lambda x: jnp.var(x), (5,), jtu.rand_default),
    ("linalg.norm_vec", lambda x: jnp.linalg.norm(x), (4,), jtu.rand_default),
    ("cumprod", lambda x: jnp.cumprod(x), (4,), jtu.rand_default),
    ("polyval", lambda c: jnp.polyval(c, 1.3), (4,), jtu.rand_default),
]:
    name = f"jnp.{opname}[{_shape_name([shape])}]_o2"
    _add(name, NUMPY, f, _draw(name, factory, [shape]), order=2, tol=1e-4)
_add(
    "jnp.linalg.norm@zero",
    NUMPY,
    lambda x: jnp.linalg.norm(x),
    (np.zeros(3),),
    tags=("kink",),
    jax_problem="autodiff: jax.grad(jnp.linalg.norm)(zeros) is NaN (a cone point: no derivative, 0 is a subgradient)",
)

# Indexing with NumPy integer arrays closed over (testIndexingGrad-style) and take / take_along_axis / interp.
_ix = np.array([2, 0, 3, 3])
_ij = (np.array([0, 2, 1]), np.array([1, 1, 0]))
_take_along = np.array([[1, 0, 2], [2, 2, 0]])
for opname, f, shape in [
    ("index_int_array", lambda x: x[_ix], (5,)),
    ("index_2d_int_arrays", lambda x: x[_ij], (3, 2)),
    ("index_slice_int", lambda x: x[1:, _ix[:2]], (3, 4)),
    ("index_negative", lambda x: x[np.array([-1, -2])], (4,)),
    ("index_bool_mask", lambda x: jnp.where(np.array([True, False, True, False]), x, 0.0), (4,)),
    ("take", lambda x: jnp.take(x, _ix), (5,)),
    ("take_fill", lambda x: jnp.take(x, np.array([1, 7]), mode="fill", fill_value=0.5), (5,)),
    ("take_clip", lambda x: jnp.take(x, np.array([1, 7]), mode="clip"), (5,)),
    ("take_along_axis", lambda x: jnp.take_along_axis(x, _take_along, axis=1), (2, 3)),
    ("at_set", lambda x: x.at[_ix[:2]].set(0.5), (5,)),
    ("at_add", lambda x: x.at[_ix].add(x[:4] ** 2), (5,)),
    ("at_mul", lambda x: x.at[np.array([1, 3])].multiply(3.0), (5,)),
    ("at_get_fill", lambda x: x.at[np.array([0, 9])].get(mode="fill", fill_value=-2.0), (5,)),
    (
        "interp",
        lambda x: jnp.interp(x, np.array([-3.0, -1.0, 0.5, 2.0, 4.0]), np.array([0.0, 1.0, -1.0, 2.0, 0.5])),
        (4,),
    ),
    (
        "interp_fp",
        lambda fp: jnp.sum(jnp.interp(np.array([-0.3, 1.1, 2.7]), np.array([-1.0, 0.0, 1.5, 3.0]), fp)),
        (4,),
    ),
    ("where_np_cond", lambda x: jnp.where(np.array([1.0, -1.0, 2.0]) > 0, jnp.sin(x), jnp.cos(x)), (3,)),
    ("convolve", lambda x: jnp.convolve(x, np.array([0.2, -0.5, 1.0])), (5,)),
    ("convolve_same", lambda x: jnp.convolve(x, x[::-1], mode="same"), (4,)),
    ("correlate", lambda x: jnp.correlate(x, np.array([1.0, 2.0, -1.0]), mode="valid"), (5,)),
]:
    name = f"jnp.{opname}[{_shape_name([shape])}]"
    _add(name, NUMPY, f, _draw(name, jtu.rand_default, [shape]), tol=1e-4, tags=("closure",))
_logp_labels = np.array([1, 0, 3, 2, 2])
_add(
    "jnp.index_logp_labels",
    NUMPY,
    lambda logits: -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(5), _logp_labels]),
    _draw("logp_labels", jtu.rand_default, [(5, 4)]),
    tags=("closure",),
)
_add("jnp.x_relu_x@0", NUMPY, lambda x: x * jax.nn.relu(x), (np.float64(0.0),), tags=("kink",))
_add("jnp.x_relu_x@0_o2", NUMPY, lambda x: x * jax.nn.relu(x), (np.float64(0.0),), order=2, tags=("kink",))
_add("jnp.abs@0", NUMPY, jnp.abs, (np.float64(0.0),), tags=("kink",))


# --- lax_scipy_special_functions_test.py: JAX_SPECIAL_FUNCTION_RECORDS with test_autodiff -------------
for fn_name, nargs, factory, extra in [
    ("betaln", 2, jtu.rand_positive, {}),
    ("digamma", 1, jtu.rand_positive, {}),
    ("gammaln", 1, jtu.rand_positive, {}),
    ("gamma", 1, jtu.rand_positive, {}),
    ("erf", 1, jtu.rand_small_positive, {}),
    ("erfc", 1, jtu.rand_small_positive, {}),
    ("erfinv", 1, jtu.rand_small_positive, {}),
    ("expit", 1, jtu.rand_small_positive, {}),
    ("logit", 1, partial(uniform, low=0.05, high=0.95), {}),
    ("log_ndtr", 1, jtu.rand_default, {}),
    ("ndtri", 1, partial(uniform, low=0.05, high=0.95), {}),
    ("ndtr", 1, jtu.rand_default, {}),
    ("i0", 1, jtu.rand_default, {}),
    ("i0e", 1, jtu.rand_default, {}),
    ("i1", 1, jtu.rand_default, {}),
    ("i1e", 1, jtu.rand_default, {}),
    ("entr", 1, partial(uniform, low=0.1, high=2.0), {}),
    ("xlogy", 2, jtu.rand_positive, {}),
    ("xlog1py", 2, jtu.rand_default, {}),
    ("rel_entr", 2, jtu.rand_positive, {}),
    ("kl_div", 2, jtu.rand_positive, {}),
    ("spence", 1, jtu.rand_positive, {}),
    ("expi", 1, partial(uniform, low=0.2, high=3.0), {}),
    ("exp1", 1, jtu.rand_positive, {}),
    ("polygamma_1", 1, jtu.rand_positive, dict(fn=lambda x: jsp.polygamma(1, x))),
    ("gammainc_x", 1, jtu.rand_positive, dict(fn=lambda x: jsp.gammainc(2.5, x))),
    ("gammaincc_x", 1, jtu.rand_positive, dict(fn=lambda x: jsp.gammaincc(1.5, x))),
    ("betainc_x", 1, partial(uniform, low=0.1, high=0.9), dict(fn=lambda x: jsp.betainc(2.0, 3.0, x))),
    ("sinc", 1, jtu.rand_default, dict(fn=jnp.sinc)),
    ("logsumexp", 1, jtu.rand_default, dict(fn=jsp.logsumexp, shape=(4,))),
    ("softmax", 1, jtu.rand_default, dict(fn=jsp.softmax, shape=(4,))),
    ("log_softmax", 1, jtu.rand_default, dict(fn=jsp.log_softmax, shape=(4,))),
]:
    f = extra.get("fn") or getattr(jsp, fn_name)
    shapes = [extra.get("shape", (3,))] * nargs
    name = f"special.{fn_name}[{_shape_name(shapes)}]"
    problem = ""
    if fn_name == "xlog1py":
        problem = "domain: rand_default draws y < -1, where log1p(y) is NaN (the function's domain)"
    if fn_name == "spence":
        problem = "autodiff: jax.grad(jax.scipy.special.spence) is NaN in jax 0.10.2 where jvp is finite"
    _add(name, SPECIAL, f, _draw(name, factory, shapes), tol=1e-4, jax_problem=problem)
    if fn_name in ("digamma", "gammaln", "expit", "log_ndtr", "xlogy"):
        _add(name + "_o2", SPECIAL, f, _draw(name, factory, shapes), order=2, tol=1e-4)
_add(
    "special.spence@1.7",
    SPECIAL,
    jsp.spence,
    (np.float64(1.7),),
    tol=1e-4,
    jax_problem="autodiff: jax.grad(jax.scipy.special.spence)(1.7) is NaN in jax 0.10.2; jvp gives -0.7588",
)
_add("special.xlogy@x=0", SPECIAL, lambda y: jsp.xlogy(0.0, y), (np.float64(0.5),), tol=1e-4)
_add("special.log_ndtr@-20", SPECIAL, jsp.log_ndtr, (np.float64(-20.0),), tol=1e-4, tags=("special",))
_add("special.ndtri@1e-10", SPECIAL, jsp.ndtri, (np.float64(1e-10),), tol=1e-4, tags=("special",))


# --- linalg_test.py: grad tests ---------------------------------------------------------------------------
def _spd(name, n):
    a = jtu.rand_default(_rng(name))((n, n), np.float64)
    return a @ a.T + n * np.eye(n)


def _sym(name, n):
    a = jtu.rand_default(_rng(name))((n, n), np.float64)
    return (a + a.T) / 2


for opname, f, make in [
    ("det", jnp.linalg.det, lambda n: _draw(n, jtu.rand_default, [(3, 3)])),
    ("det_2x2_o2", jnp.linalg.det, lambda n: _draw(n, jtu.rand_default, [(2, 2)])),
    ("slogdet", lambda a: jnp.linalg.slogdet(a)[1], lambda n: _draw(n, jtu.rand_default, [(3, 3)])),
    ("inv", jnp.linalg.inv, lambda n: _draw(n, jtu.rand_default, [(3, 3)])),
    ("solve", lambda a, b: jnp.linalg.solve(a, b), lambda n: _draw(n, jtu.rand_default, [(3, 3), (3,)])),
    ("cholesky", jnp.linalg.cholesky, lambda n: (_spd(n, 3),)),
    ("eigh_values", lambda a: jnp.linalg.eigh((a + a.T) / 2)[0], lambda n: (_sym(n, 3),)),
    ("eigvalsh", lambda a: jnp.linalg.eigvalsh(a @ a.T), lambda n: _draw(n, jtu.rand_default, [(3, 3)])),
    ("svd_values", lambda a: jnp.linalg.svd(a, compute_uv=False), lambda n: _draw(n, jtu.rand_default, [(3, 2)])),
    (
        "svd_u_abs",
        lambda a: jnp.abs(jnp.linalg.svd(a, full_matrices=False)[0]),
        lambda n: _draw(n, jtu.rand_default, [(3, 2)]),
    ),
    ("qr_r", lambda a: jnp.linalg.qr(a)[1], lambda n: _draw(n, jtu.rand_default, [(3, 3)])),
    ("qr_q", lambda a: jnp.linalg.qr(a)[0], lambda n: _draw(n, jtu.rand_default, [(3, 2)])),
    ("pinv", jnp.linalg.pinv, lambda n: _draw(n, jtu.rand_default, [(3, 2)])),
    ("matrix_power_3", lambda a: jnp.linalg.matrix_power(a, 3), lambda n: _draw(n, jtu.rand_default, [(2, 2)])),
    ("expm", jax.scipy.linalg.expm, lambda n: _draw(n, jtu.rand_small, [(3, 3)])),
    ("lu_factor", lambda a: jax.scipy.linalg.lu_factor(a)[0], lambda n: _draw(n, jtu.rand_default, [(3, 3)])),
    (
        "lu_solve",
        lambda a, b: jax.scipy.linalg.lu_solve(jax.scipy.linalg.lu_factor(a), b),
        lambda n: _draw(n, jtu.rand_default, [(3, 3), (3,)]),
    ),
    (
        "solve_triangular",
        lambda a, b: jax.scipy.linalg.solve_triangular(jnp.tril(a) + 3 * np.eye(3), b, lower=True),
        lambda n: _draw(n, jtu.rand_default, [(3, 3), (3, 2)]),
    ),
    (
        "cho_solve",
        lambda a, b: jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(a @ a.T + 3 * np.eye(3)), True), b),
        lambda n: _draw(n, jtu.rand_default, [(3, 3), (3,)]),
    ),
    ("lstsq", lambda a, b: jnp.linalg.lstsq(a, b)[0], lambda n: _draw(n, jtu.rand_default, [(4, 2), (4,)])),
    (
        "tensorsolve",
        lambda a, b: jnp.linalg.tensorsolve(a, b),
        lambda n: _draw(n, jtu.rand_default, [(2, 3, 6), (2, 3)]),
    ),
    ("matrix_norm_2", lambda a: jnp.linalg.norm(a, 2), lambda n: _draw(n, jtu.rand_default, [(3, 3)])),
]:
    name = f"linalg.{opname}"
    order = 2 if opname.endswith("_o2") else 1
    _add(name, LINALG, f, make(name), order=order, tol=1e-4 if order == 1 else 1e-3)
for opname, f, make in [
    ("det", jnp.linalg.det, lambda n: _draw(n, jtu.rand_default, [(3, 3)])),
    ("inv_trace", lambda a: jnp.trace(jnp.linalg.inv(a)), lambda n: _draw(n, jtu.rand_default, [(2, 2)])),
    ("solve", lambda a, b: jnp.sum(jnp.linalg.solve(a, b)), lambda n: _draw(n, jtu.rand_default, [(2, 2), (2,)])),
    (
        "cholesky_logdet",
        lambda a: jnp.sum(jnp.log(jnp.diag(jnp.linalg.cholesky(a @ a.T + 2 * np.eye(2))))),
        lambda n: _draw(n, jtu.rand_default, [(2, 2)]),
    ),
    ("eigvalsh_max", lambda a: jnp.max(jnp.linalg.eigvalsh((a + a.T) / 2)), lambda n: (_sym(n, 3),)),
]:
    name = f"linalg.{opname}_o2"
    _add(name, LINALG, f, make(name), order=2, tol=1e-3)


# --- lax_control_flow_test.py: cond, switch, scan, fori_loop, while_loop, associative_scan, map ------------
_W_rnn = np.random.RandomState(0).randn(3, 3) * 0.5
_xs = np.random.RandomState(1).randn(4, 3)


def _scan_rnn(h0):
    def step(h, x):
        h = jnp.tanh(_W_rnn @ h + x)
        return h, jnp.sum(h**2)

    h, ys = lax.scan(step, h0, _xs)
    return jnp.sum(h) + jnp.sum(ys)


for opname, f, args, order in [
    ("cond_true", lambda x: lax.cond(x > 0, jnp.sin, jnp.cos, x), (np.float64(0.7),), 2),
    ("cond_false", lambda x: lax.cond(x > 0, jnp.sin, jnp.cos, x), (np.float64(-0.7),), 2),
    (
        "cond_closure",
        lambda x: lax.cond(np.sum(_xs) > 0, lambda x: x @ _W_rnn, lambda x: -x @ _W_rnn, x),
        _draw("cond_closure", jtu.rand_default, [(3,)]),
        1,
    ),
    (
        "cond_operands",
        lambda x, y: lax.cond(x > y, lambda a, b: a * b, lambda a, b: a / b, x, y),
        (np.float64(1.3), np.float64(0.4)),
        2,
    ),
    ("switch", lambda x: lax.switch(1, [jnp.sin, jnp.cos, jnp.tanh], x), (np.float64(0.3),), 2),
    (
        "switch_traced_index",
        lambda x: lax.switch(jnp.clip(jnp.floor(x).astype(int), 0, 2), [jnp.sin, jnp.cos, jnp.tanh], x),
        (np.float64(1.4),),
        2,
    ),
    ("scan_rnn", _scan_rnn, _draw("scan_rnn", jtu.rand_default, [(3,)]), 1),
    ("scan_rnn_o2", _scan_rnn, _draw("scan_rnn", jtu.rand_default, [(3,)]), 2),
    (
        "scan_reverse_cumprod",
        lambda x: lax.scan(lambda c, a: (c * a, c * a), 1.0, x, reverse=True)[1],
        _draw("scan_cumprod", jtu.rand_default, [(4,)]),
        1,
    ),
    (
        "scan_unroll",
        lambda x: lax.scan(lambda c, a: (jnp.sin(c) + a, c), x[0], x, unroll=2)[0],
        _draw("scan_unroll", jtu.rand_default, [(5,)]),
        1,
    ),
    (
        "fori_loop_static",
        lambda x: lax.fori_loop(0, 4, lambda i, c: c * 0.9 + jnp.sin(c) * i, x),
        _draw("fori", jtu.rand_default, [(3,)]),
        2,
    ),
    (
        "fori_loop_closure",
        lambda w: lax.fori_loop(0, 3, lambda i, h: jnp.tanh(_W_rnn @ h + w), np.zeros(3)),
        _draw("fori_closure", jtu.rand_default, [(3,)]),
        1,
    ),
    ("map", lambda x: lax.map(lambda r: jnp.sum(jnp.sin(r) * r), x), _draw("map", jtu.rand_default, [(3, 2)]), 1),
    ("associative_scan", lambda x: lax.associative_scan(jnp.multiply, x), _draw("ascan", jtu.rand_default, [(5,)]), 1),
]:
    _add(f"control.{opname}", CONTROL, f, args, order=order)
_add(
    "control.while_loop_fwd",
    CONTROL,
    lambda x: lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, jnp.sin(c[1]) + c[1]), (0, x))[1],
    (np.array([0.3, -0.5]),),
    modes=("fwd",),
    jax_problem="autodiff: reverse mode of lax.while_loop is unsupported by design (JAX tests forward mode only)",
)


# --- api_test.py: vmap, checkpoint / remat (with policies), custom_jvp / custom_vjp, stop_gradient --------
_X = np.random.RandomState(2).randn(16, 5)
# Two rows that saturate tanh at the point drawn below (row @ w = 18.2: 1 - tanh² ≈ 6e-16).
_w_sat = np.abs(np.random.RandomState(3).randn(5))
_Xsat = np.vstack([_X[:4], np.ones((2, 5)) * 18.2 / _w_sat.sum()])


def _policy_fn(x):
    return jnp.sum(jnp.sin(_X @ x) ** 2)


for opname, f, args, order in [
    ("closure_tanh_mean", lambda W: jnp.mean(jnp.tanh(_X @ W)), _draw("closure_tanh", jtu.rand_default, [(5, 2)]), 1),
    ("closure_tanh_mean_o2", lambda W: jnp.mean(jnp.tanh(_X @ W)), _draw("closure_tanh", jtu.rand_default, [(5,)]), 2),
    (
        "vmap_tanh_rows",
        lambda w: jax.vmap(lambda row: jnp.tanh(row @ w))(_X),
        _draw("vmap", jtu.rand_default, [(5,)]),
        1,
    ),
    ("vmap_tanh_saturated", lambda w: jax.vmap(lambda row: jnp.tanh(row @ w))(_Xsat), (_w_sat,), 1),
    (
        "vmap_in_axes",
        lambda w: jnp.sum(jax.vmap(jnp.dot, in_axes=(0, None))(_X[:3], w) ** 2),
        _draw("vmap_axes", jtu.rand_default, [(5,)]),
        2,
    ),
    (
        "vmap_grad",
        lambda w: jnp.sum(jax.vmap(jax.grad(lambda r, w: jnp.sin(r @ w)), in_axes=(0, None))(_X[:3], w)),
        _draw("vmap_grad", jtu.rand_default, [(5,)]),
        1,
    ),
    ("checkpoint", jax.checkpoint(_policy_fn), _draw("ckpt", jtu.rand_default, [(5,)]), 2),
    (
        "checkpoint_dots_saveable",
        jax.checkpoint(_policy_fn, policy=jax.checkpoint_policies.dots_saveable),
        _draw("ckpt_dots", jtu.rand_default, [(5,)]),
        1,
    ),
    (
        "checkpoint_nothing_saveable",
        jax.checkpoint(_policy_fn, policy=jax.checkpoint_policies.nothing_saveable),
        _draw("ckpt_nothing", jtu.rand_default, [(5,)]),
        1,
    ),
    (
        "remat_prevent_cse_false",
        jax.remat(lambda x: jnp.sum(jnp.cos(x) * x), prevent_cse=False),
        _draw("remat", jtu.rand_default, [(3,)]),
        2,
    ),
    ("stop_gradient", lambda x: jnp.sum(x * lax.stop_gradient(x)), _draw("stopg", jtu.rand_default, [(3,)]), 1),
    (
        "stop_gradient_normaliser",
        lambda x: jnp.sum(x / lax.stop_gradient(jnp.linalg.norm(x))),
        _draw("stopg_norm", jtu.rand_default, [(3,)]),
        1,
    ),
    (
        "prng_key_inside",
        lambda x: jnp.sum(x * jax.random.normal(jax.random.key(0), x.shape)),
        _draw("prng", jtu.rand_default, [(3,)]),
        1,
    ),
    (
        "prng_dropout_inside",
        lambda x: jnp.sum(jnp.where(jax.random.bernoulli(jax.random.PRNGKey(1), 0.5, x.shape), x * 2.0, 0.0) ** 2),
        _draw("dropout", jtu.rand_default, [(4,)]),
        1,
    ),
    ("jit_inside", lambda x: jax.jit(lambda y: jnp.sin(y) * y)(x), _draw("jit", jtu.rand_default, [(3,)]), 2),
    (
        "grad_of_grad_closure",
        lambda x: jax.grad(lambda y: jnp.sum(jnp.tanh(_X[:2] @ y)))(x),
        _draw("gradgrad", jtu.rand_default, [(5,)]),
        1,
    ),
]:
    tags = ("closure",) if "closure" in opname or "vmap" in opname or "checkpoint" in opname else ()
    _add(f"api.{opname}", API, f, args, order=order, tags=tags)


@jax.custom_jvp
def _logsumexp_jvp(x):
    return jnp.log(jnp.sum(jnp.exp(x)))


@_logsumexp_jvp.defjvp
def _logsumexp_jvp_rule(primals, tangents):
    (x,), (t,) = primals, tangents
    y = _logsumexp_jvp(x)
    return y, jnp.sum(jnp.exp(x - y) * t)


@jax.custom_vjp
def _clip_gradient(x):
    return jnp.sin(x)


_clip_gradient.defvjp(lambda x: (jnp.sin(x), jnp.cos(x)), lambda c, g: (g * c,))
_add("api.custom_jvp_logsumexp", API, _logsumexp_jvp, _draw("cjvp", jtu.rand_default, [(4,)]), order=2)
_add(
    "api.custom_vjp_sin",
    API,
    lambda x: jnp.sum(_clip_gradient(x) ** 2),
    _draw("cvjp", jtu.rand_default, [(3,)]),
    modes=("rev",),
)

# The where-NaN trick of JAX's FAQ and a user's binary cross-entropy from a sigmoid (issue 13).
_add(
    "faq.where_sqrt",
    FAQ,
    lambda x: jnp.where(x > 0, jnp.sqrt(x), 0.0),
    (np.array([4.0, -1.0, 0.25]),),
    jax_problem="autodiff: jnp.where(x > 0, sqrt(x), 0) has a NaN gradient at x ≤ 0 (JAX's FAQ: the untaken branch's "
    "0 · inf)",
)
_add(
    "faq.where_sqrt_safe",
    FAQ,
    lambda x: jnp.where(x > 0, jnp.sqrt(jnp.where(x > 0, x, 1.0)), 0.0),
    (np.array([4.0, -1.0, 0.25]),),
)
_add(
    "user.bce_sigmoid_saturated",
    USER,
    lambda z: -(1.0 * jnp.log(jax.nn.sigmoid(z)) + (1.0 - 1.0) * jnp.log1p(-jax.nn.sigmoid(z))),
    (np.float64(40.0),),
    jax_problem="float program: 0 · log1p(-sigmoid(40)) = 0 · log1p(-1) = 0 · -inf is NaN "
    "in float64; the mathematics is finite",
)
_add(
    "user.bce_sigmoid_moderate",
    USER,
    lambda z: -(1.0 * jnp.log(jax.nn.sigmoid(z)) + (1.0 - 1.0) * jnp.log1p(-jax.nn.sigmoid(z))),
    (np.float64(3.0),),
)
_add(
    "user.np_tanh_on_tracer",
    USER,
    lambda x: np.tanh(x),
    (np.float64(0.3),),
    jax_problem="usage: NumPy's np.tanh on a tracer cannot be traced (the function's fault)",
)


# --- the float32 slice: entries re-drawn in float32, with JAX's float32 tolerance join (1.5e-1) -----------
_F32_FROM = [
    "lax.exp[3]_o1",
    "lax.tanh[3]_o1",
    "lax.logistic[3]_o1",
    "lax.cbrt[3]_o1",
    "lax.pow[3,3]_o1",
    "lax.atan2[3,3]_o1",
    "lax.erf[3]_o1",
    "lax.tanh[3]_o2",
    "lax.sin@0_o2",
    "lax.tanh@1000_o2",
    "nn.softplus@2_o1",
    "nn.gelu@1.2_o1",
    "nn.silu@0_o1",
    "nn.log_sigmoid@0_o1",
    "nn.softmax[3x4]_{'axis': -1}",
    "nn.logsumexp[3x4]_{'axis': 1}",
    "nn.one_hot_cross_entropy",
    "nn.softmax_where_mask",
    "jnp.arcsinh[3]_o1",
    "jnp.logaddexp[3,3]_o1",
    "jnp.linalg.norm_vec[5]",
    "jnp.index_int_array[5]",
    "jnp.take_along_axis[2x3]",
    "jnp.interp[4]",
    "jnp.index_logp_labels",
    "jnp.at_add[5]",
    "jnp.convolve[5]",
    "special.digamma[3]",
    "special.log_ndtr[3]",
    "linalg.det",
    "linalg.cholesky",
    "linalg.eigh_values",
    "linalg.svd_values",
    "control.scan_rnn",
    "control.fori_loop_closure",
    "api.closure_tanh_mean",
    "api.checkpoint",
    "api.prng_key_inside",
    "api.stop_gradient",
    "lax.dynamic_update_slice[5x3]_(1, 1)_closed_update",
    "lax.gather[10x5]_clip_fillNone_[[0], [2], [1]]",
    "lax.reduce_window_max[4x6]_(2, 1)_(1, 2)_VALID",
    "lax.conv[2x2x3x4,3x2x1x2]_(1, 1)_VALID_lhs_o1",
]


def _float32_of(entry: Entry) -> Entry:
    args = tuple(np.float32(a) if np.ndim(a) == 0 else np.asarray(a, np.float32) for a in entry.args)
    tol = jtu.join_tolerance(1.5e-1, entry.tol)  # testOpGrad: tol joined with 1.5e-1 for 32-bit types
    return Entry(
        f"{entry.name}_f32",
        entry.source,
        entry.fn,
        args,
        entry.order,
        "float32",
        entry.argnums,
        tol,
        entry.eps,
        entry.modes,
        entry.jax_problem,
        entry.tags,
    )


_by_name = {e.name: e for e in CORPUS}
_missing = [n for n in _F32_FROM if n not in _by_name]
if _missing:
    raise ValueError(f"float32 slice names entries that do not exist: {_missing}")
CORPUS += [_float32_of(_by_name[n]) for n in _F32_FROM]

BY_NAME = {e.name: e for e in CORPUS}
