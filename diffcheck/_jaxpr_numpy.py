"""A traced JAX program (its jaxpr) run by NumPy, primitive by primitive.

For a small problem, compiling a program with XLA costs 0.1–0.3 s on the CPU, and running it
microseconds: a gradient check of a 9-parameter function compiled five such programs and spent
90 % of its time there. The programs checked here are JAX's own — its reverse and forward mode,
`vmap` of the stencil — traced to jaxprs; only their execution changes: NumPy runs each equation
with the same IEEE arithmetic, and any primitive without a NumPy rule here is bound to JAX
eagerly (op-by-op dispatch, compiled once per primitive and shape and cached by JAX across
programs). Each output is checked against the shape and cast to the dtype its equation declares,
so a float32 program stays float32 throughout.
"""

from __future__ import annotations

import functools
import string

import jax
import numpy as np
from jax.extend.core import Literal

#: Primitives whose equations hold programs run by this interpreter, not bound.
_CALLS = {"jit", "pjit", "closed_call", "core_call", "remat", "checkpoint", "custom_jvp_call", "custom_vjp_call"}


def run(closed, *args) -> list:
    """The outputs of `closed` (a ClosedJaxpr) at `args` (NumPy arrays), as NumPy arrays."""
    with np.errstate(all="ignore"):
        return _run(closed.jaxpr, closed.consts, args)


def _run(jaxpr, consts, args) -> list:
    env = {}

    def read(v):
        return np.asarray(v.val, v.aval.dtype) if isinstance(v, Literal) else env[v]

    for v, x in zip(jaxpr.constvars, consts):
        env[v] = _array(x)
    for v, x in zip(jaxpr.invars, args):
        env[v] = _array(x)
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        outs = _equation(eqn, invals)
        for v, x in zip(eqn.outvars, outs):
            env[v] = x
    return [read(v) for v in jaxpr.outvars]


def _equation(eqn, invals) -> list:
    name = eqn.primitive.name
    outs = None
    if name in _CALLS:
        sub = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
        if sub is not None:
            closed = sub if hasattr(sub, "consts") else None
            inner = closed.jaxpr if closed is not None else sub
            outs = _run(inner, closed.consts if closed is not None else (), invals)
    elif name in _RULES and _floating_or_bool(invals, eqn):
        result = _RULES[name](*invals, **eqn.params)
        if result is not NotImplemented:
            outs = list(result) if eqn.primitive.multiple_results else [result]
    if outs is not None:
        checked = []
        for v, x in zip(eqn.outvars, outs):
            x = np.asarray(x)
            if x.shape != v.aval.shape:
                outs = None  # a rule that does not fit this equation: JAX runs it instead
                break
            checked.append(x.astype(v.aval.dtype, copy=False))
        else:
            return checked
    return _bind(eqn, invals)


def _floating_or_bool(invals, eqn) -> bool:
    """Integer arithmetic follows XLA's rules (division rounds toward zero, shifts, overflow):
    JAX runs it, except for the structural and comparison rules that mean the same on integers."""
    if eqn.primitive.name in _ANY_DTYPE:
        return True
    if eqn.primitive.name == "convert_element_type":  # to a float: exact for the integers programs index with
        return all(v.aval.dtype.kind in "fcb" for v in eqn.outvars)
    return all(x.dtype.kind in "fcb" for x in invals) and all(v.aval.dtype.kind in "fcb" for v in eqn.outvars)


def _bind(eqn, invals) -> list:
    params = eqn.primitive.get_bind_params(eqn.params)
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*[x if _is_key(x) else jax.numpy.asarray(x) for x in invals], **params)
    outs = out if eqn.primitive.multiple_results else [out]
    return [_array(x) for x in outs]


def _is_key(x) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", np.float64), jax.dtypes.extended)


def _array(x):
    """A value as NumPy holds it; a PRNG key (an extended dtype, no NumPy form) stays JAX's."""
    if jax.dtypes.issubdtype(getattr(x, "dtype", np.float64), jax.dtypes.extended):
        return x
    return np.asarray(x)


# --- the rules -----------------------------------------------------------------------------


def _broadcast_in_dim(x, *, shape, broadcast_dimensions, **_):
    expanded = np.expand_dims(x, [d for d in range(len(shape)) if d not in broadcast_dimensions]) if shape else x
    return np.broadcast_to(expanded, shape)


def _reshape(x, *, new_sizes, dimensions=None, **_):
    if dimensions is not None:
        x = np.transpose(x, dimensions)
    return np.reshape(x, new_sizes)


def _slice(x, *, start_indices, limit_indices, strides=None, **_):
    strides = strides or (1,) * len(start_indices)
    return x[tuple(slice(a, b, s) for a, b, s in zip(start_indices, limit_indices, strides))]


def _pad(x, value, *, padding_config, **_):
    # As XLA: `interior` values between neighbours first, then `lo`/`hi` at the edges, a negative
    # one cropping (reverse mode's transpose of a slice pads with them).
    for axis, (_, _, interior) in enumerate(padding_config):
        if interior > 0 and x.shape[axis] > 1:
            shape = list(x.shape)
            shape[axis] = x.shape[axis] + (x.shape[axis] - 1) * int(interior)
            spread = np.full(shape, value, x.dtype)
            every = [slice(None)] * x.ndim
            every[axis] = slice(None, None, int(interior) + 1)
            spread[tuple(every)] = x
            x = spread
    x = np.pad(x, [(max(int(lo), 0), max(int(hi), 0)) for lo, hi, _ in padding_config], constant_values=value)
    crop = tuple(slice(max(-int(lo), 0), n - max(-int(hi), 0)) for (lo, hi, _), n in zip(padding_config, x.shape))
    return x[crop]


def _iota(*, dtype, shape, dimension, **_):
    index = np.arange(shape[dimension], dtype=dtype).reshape([-1 if d == dimension else 1 for d in range(len(shape))])
    return np.broadcast_to(index, shape)


def _select_n(which, *cases):
    if which.dtype == bool:
        return np.where(which, cases[1], cases[0]) if len(cases) == 2 else cases[0]
    return np.choose(which, cases)


def _dot_general(lhs, rhs, *, dimension_numbers, preferred_element_type=None, **_):
    (lc, rc), (lb, rb) = dimension_numbers
    letters = iter(string.ascii_letters)
    left, right = [None] * lhs.ndim, [None] * rhs.ndim
    batch = []
    for a, b in zip(lb, rb):
        left[a] = right[b] = next(letters)
        batch.append(left[a])
    for a, b in zip(lc, rc):
        left[a] = right[b] = next(letters)
    free_left = [left.__setitem__(i, next(letters)) or left[i] for i in range(lhs.ndim) if left[i] is None]
    free_right = [right.__setitem__(i, next(letters)) or right[i] for i in range(rhs.ndim) if right[i] is None]
    spec = f"{''.join(left)},{''.join(right)}->{''.join(batch + free_left + free_right)}"
    out = np.einsum(spec, lhs, rhs, optimize=lhs.ndim + rhs.ndim > 2)
    return out if preferred_element_type is None else out.astype(preferred_element_type)


def _reduce(fn):
    return lambda x, *, axes, **_: fn(x, axis=tuple(axes))


def _clamp(lo, x, hi):
    return np.minimum(np.maximum(x, lo), hi)


def _logistic(x):
    # The form of XLA's expansion: 1 / (1 + exp(−x)), saturating to 0 and 1 without NaN.
    return 1 / (1 + np.exp(-x))


def _integer_pow(x, *, y, **_):
    if y == 0:
        return np.ones_like(x)
    # Repeated squaring, as XLA's expansion multiplies (x**2 is x·x, not pow(x, 2.0)).
    acc, base, n = None, x, abs(y)
    while n:
        if n & 1:
            acc = base if acc is None else acc * base
        n >>= 1
        if n:
            base = base * base
    return acc if y > 0 else 1 / acc


def _convert(x, *, new_dtype, **_):
    new = np.dtype(new_dtype)
    if x.dtype.kind == "c" and new.kind != "c":
        return np.real(x).astype(new)
    return x.astype(new)


def _unary(fn):
    return lambda x, **_: fn(x)


def _binary(fn):
    return lambda x, y, **_: fn(x, y)


_RULES = {
    "neg": _unary(np.negative),
    "sign": _unary(np.sign),
    "floor": _unary(np.floor),
    "ceil": _unary(np.ceil),
    "is_finite": _unary(np.isfinite),
    "exp": _unary(np.exp),
    "exp2": _unary(np.exp2),
    "log": _unary(np.log),
    "log1p": _unary(np.log1p),
    "expm1": _unary(np.expm1),
    "tanh": _unary(np.tanh),
    "logistic": _unary(_logistic),
    "sin": _unary(np.sin),
    "cos": _unary(np.cos),
    "tan": _unary(np.tan),
    "asin": _unary(np.arcsin),
    "acos": _unary(np.arccos),
    "atan": _unary(np.arctan),
    "sinh": _unary(np.sinh),
    "cosh": _unary(np.cosh),
    "asinh": _unary(np.arcsinh),
    "acosh": _unary(np.arccosh),
    "atanh": _unary(np.arctanh),
    "sqrt": _unary(np.sqrt),
    "rsqrt": _unary(lambda x: 1 / np.sqrt(x)),
    "abs": _unary(np.abs),
    "square": _unary(np.square),
    "real": _unary(np.real),
    "imag": _unary(np.imag),
    "conj": _unary(np.conj),
    "not": _unary(np.logical_not),
    "copy": _unary(np.copy),
    "copy_p": _unary(np.copy),
    "integer_pow": _integer_pow,
    "convert_element_type": _convert,
    "add": _binary(np.add),
    "add_any": _binary(np.add),
    "sub": _binary(np.subtract),
    "mul": _binary(np.multiply),
    "div": _binary(np.divide),
    "max": _binary(np.maximum),
    "min": _binary(np.minimum),
    "pow": _binary(np.power),
    "atan2": _binary(np.arctan2),
    "rem": _binary(np.fmod),
    "eq": _binary(np.equal),
    "ne": _binary(np.not_equal),
    "lt": _binary(np.less),
    "le": _binary(np.less_equal),
    "gt": _binary(np.greater),
    "ge": _binary(np.greater_equal),
    "and": _binary(np.logical_and),
    "or": _binary(np.logical_or),
    "xor": _binary(np.logical_xor),
    "select_n": _select_n,
    "clamp": _clamp,
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": _reshape,
    "squeeze": lambda x, *, dimensions, **_: np.squeeze(x, tuple(dimensions)),
    "expand_dims": lambda x, *, dimensions, **_: np.expand_dims(x, tuple(dimensions)),
    "transpose": lambda x, *, permutation, **_: np.transpose(x, permutation),
    "rev": lambda x, *, dimensions, **_: np.flip(x, tuple(dimensions)),
    "slice": _slice,
    "pad": _pad,
    "split": lambda x, *, sizes, axis, **_: np.split(x, np.cumsum(sizes)[:-1], axis=axis),
    "concatenate": lambda *xs, dimension, **_: np.concatenate(xs, axis=dimension),
    "iota": _iota,
    "dot_general": _dot_general,
    "reduce_sum": _reduce(np.sum),
    "reduce_max": _reduce(np.max),
    "reduce_min": _reduce(np.min),
    "stop_gradient": _unary(np.asarray),
}

#: Rules that mean the same for every dtype (moving elements, comparing, converting).
_ANY_DTYPE = frozenset(
    {
        "broadcast_in_dim", "reshape", "squeeze", "expand_dims", "transpose", "rev", "slice", "pad",
        "concatenate", "split", "iota", "select_n", "eq", "ne", "lt", "le", "gt", "ge", "copy", "copy_p",
        # Integer addition and multiplication wrap around in NumPy as in XLA.
        "add", "sub", "mul", "neg", "max", "min",
    }
)  # fmt: skip


@functools.cache
def supported(name: str) -> bool:
    """Whether NumPy runs primitive `name` here (else JAX binds it eagerly)."""
    return name in _RULES or name in _CALLS
