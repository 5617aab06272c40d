"""The same program in a lower precision, without running the user's code again.

A float64 check measures its rounding by running the same program in float32 (the ladder). Running
the user's function again under JAX's other x64 mode would retrace their code in a mode they did
not choose, where float64 NumPy constants they close over, int64 index arrays and PRNG keys meet
32-bit values and fail. Instead the program is traced once, in float64, to its jaxpr, and that
jaxpr is evaluated here equation by equation with every 64-bit value and dtype parameter lowered to
32 bits: closed-over constants are constants of the jaxpr, so they are lowered with it.

Control flow keeps its structure (scan, while and cond run as `lax` loops and branches over the
interpreted bodies), calls are inlined (jit, remat: they change neither values nor rules), and a
custom_jvp/custom_vjp keeps its rule: it is bound again with its primal program lowered. Anything
this cannot lower raises, and the caller then has no ladder (it never decides a verdict).
"""

from __future__ import annotations

import jax
import jax.extend
import jax.extend.linear_util
import numpy as np

#: 64-bit dtypes and their 32-bit counterparts.
_LOWER = {
    np.dtype(np.float64): np.dtype(np.float32),
    np.dtype(np.int64): np.dtype(np.int32),
    np.dtype(np.uint64): np.dtype(np.uint32),
    np.dtype(np.complex128): np.dtype(np.complex64),
}

_INLINED = frozenset({"jit", "pjit", "closed_call", "core_call", "remat", "checkpoint", "remat2"})


def lower_dtype(dtype):
    try:
        return _LOWER.get(np.dtype(dtype), dtype)
    except TypeError:  # an extended dtype (a PRNG key): kept
        return dtype


def lower_value(x):
    """A constant or an argument in 32 bits (PRNG keys and 32-bit values unchanged)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return x
    low = lower_dtype(dtype)
    if low is dtype or low == dtype:
        return x
    return x.astype(low) if isinstance(x, jax.Array) else np.asarray(x).astype(low)


def evaluate(closed, *args):
    """The closed jaxpr `closed` evaluated on `args`, every 64-bit value lowered to 32 bits."""
    return _eval(closed.jaxpr, [lower_value(c) for c in closed.consts], [lower_value(a) for a in args])


def _eval(jaxpr, consts, args):
    env = {}

    def read(var):
        if type(var).__name__ == "Literal":
            return lower_value(np.asarray(var.val)) if np.ndim(var.val) or hasattr(var.val, "dtype") else var.val
        return env[var]

    for var, val in zip(jaxpr.constvars, consts, strict=True):
        env[var] = val
    for var, val in zip(jaxpr.invars, args, strict=True):
        env[var] = val
    for eqn in jaxpr.eqns:
        outs = _apply(eqn, [read(v) for v in eqn.invars])
        outs = outs if eqn.primitive.multiple_results else [outs]
        for var, val in zip(eqn.outvars, outs, strict=True):
            env[var] = val
    return [read(v) for v in jaxpr.outvars]


def _apply(eqn, invals):
    name, params = eqn.primitive.name, eqn.params
    if name in _INLINED:
        sub = params.get("jaxpr") or params.get("call_jaxpr")
        return _eval(_jaxpr_of(sub), _consts_of(sub), invals)
    if name == "scan":
        return _scan(params, invals)
    if name == "while":
        return _while(params, invals)
    if name == "cond":
        return _cond(params, invals)
    params = {k: _lower_param(v) for k, v in params.items()}
    if name == "custom_jvp_call":  # the rule's own program, traced in float64 once, lowered too
        params["jvp_jaxpr_fun"] = _lowered_thunk(params["jvp_jaxpr_fun"], 2)
    if name == "custom_vjp_call":
        params["fwd_jaxpr_thunk"] = _lowered_thunk(params["fwd_jaxpr_thunk"], 1)
        params["bwd"] = _lowered_bwd(params["bwd"])
    bound = eqn.primitive.get_bind_params(params)
    subfuns, bound = bound if isinstance(bound, tuple) else ((), bound)
    return eqn.primitive.bind(*subfuns, *invals, **bound)


def _lower_param(value):
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return lower_dtype(value)
    if isinstance(value, jax.extend.core.ClosedJaxpr):  # a custom rule's primal program
        return _lowered_jaxpr(value)
    return value


def _lowered_jaxpr(closed):
    """A closed jaxpr's lowered twin, as a closed jaxpr of its own (traced from `evaluate`)."""
    avals = [jax.ShapeDtypeStruct(v.aval.shape, lower_dtype(v.aval.dtype)) for v in closed.jaxpr.invars]
    return jax.make_jaxpr(lambda *a: evaluate(closed, *a))(*avals)


def _lowered_thunk(thunk, extra: int):
    """A custom rule's jaxpr, as JAX asks for it (`thunk(*zeros)` → jaxpr, consts, and `extra` − 1
    more results): traced at the program's float64 types under x64, as the program was, and
    handed back lowered."""

    def lowered(*zeros):
        with jax.enable_x64(True):
            jaxpr, consts, *rest = thunk.call_wrapped(*zeros)
        low = _lowered_jaxpr(jax.extend.core.ClosedJaxpr(jaxpr, consts))
        return (low.jaxpr, low.consts, *rest)[: 1 + extra]

    return jax.extend.linear_util.wrap_init(lowered, debug_info=thunk.debug_info)


def _lowered_bwd(bwd):
    """A custom_vjp's backward function, traced at 64 bits under x64 and evaluated lowered."""

    def lowered(*args):
        avals = [jax.ShapeDtypeStruct(np.shape(a), _raise_dtype(a.dtype)) for a in args]
        with jax.enable_x64(True):
            closed = jax.make_jaxpr(lambda *a: list(bwd.call_wrapped(*a)))(*avals)
        return evaluate(closed, *args)

    return jax.extend.linear_util.wrap_init(lowered, debug_info=bwd.debug_info)


def _raise_dtype(dtype):
    for high, low in _LOWER.items():
        if np.dtype(dtype) == low:
            return high
    return dtype


def _jaxpr_of(sub):
    return getattr(sub, "jaxpr", sub)


def _consts_of(sub):
    return [lower_value(c) for c in getattr(sub, "consts", ())]


def _body(closed):
    return lambda *args: _eval(closed.jaxpr, _consts_of(closed), list(args))


def _scan(params, invals):
    n_consts, n_carry = params["num_consts"], params["num_carry"]
    consts, carry, xs = invals[:n_consts], invals[n_consts : n_consts + n_carry], invals[n_consts + n_carry :]
    body = _body(params["jaxpr"])

    def step(c, x):
        outs = body(*consts, *c, *x)
        return list(outs[:n_carry]), list(outs[n_carry:])

    carry, ys = jax.lax.scan(step, list(carry), list(xs), length=params["length"], reverse=params["reverse"])
    return list(carry) + list(ys)


#: The most trips a lowered while loop makes: a loop run to a float64 tolerance may never meet it
#: in float32. Past it the loop's float results are NaN, which leaves its rounding unmeasured.
MAX_TRIPS = 10_000


def _while(params, invals):
    nc, nb = params["cond_nconsts"], params["body_nconsts"]
    cond_consts, body_consts, init = invals[:nc], invals[nc : nc + nb], invals[nc + nb :]
    cond, body = _body(params["cond_jaxpr"]), _body(params["body_jaxpr"])

    def going(state):
        trips, c = state
        return jax.numpy.logical_and(cond(*cond_consts, *c)[0], trips < MAX_TRIPS)

    def step(state):
        trips, c = state
        return trips + 1, list(body(*body_consts, *c))

    trips, out = jax.lax.while_loop(going, step, (np.int32(0), list(init)))
    cut = jax.numpy.logical_and(trips >= MAX_TRIPS, cond(*cond_consts, *out)[0])
    return [_nan_where(cut, x) for x in out]


def _nan_where(cut, x):
    if jax.numpy.issubdtype(x.dtype, jax.numpy.inexact):
        return jax.numpy.where(cut, jax.numpy.asarray(np.nan, x.dtype), x)
    return x


def _cond(params, invals):
    index, *operands = invals
    branches = [_body(b) for b in params["branches"]]
    return list(jax.lax.switch(index, [lambda *ops, b=b: b(*ops) for b in branches], *operands))


def roundoff(closed) -> float:
    """The epsilon of the least precise float the program computes in (float64's when none is
    less precise): a cast to float32 inside a float64 program rounds every value after it."""
    eps = float(np.finfo(np.float64).eps)
    stack = [closed.jaxpr]
    while stack:
        jaxpr = stack.pop()
        for eqn in jaxpr.eqns:
            for var in eqn.outvars:
                dtype = getattr(var.aval, "dtype", None)
                if dtype is not None and jax.dtypes.issubdtype(dtype, np.floating):  # PRNG keys too
                    eps = max(eps, float(jax.numpy.finfo(dtype).eps))
            stack += [getattr(s, "jaxpr", s) for s in jax.extend.core.jaxprs_in_params(eqn.params)]
    return eps
