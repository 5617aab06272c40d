"""The size of the terms a float program adds: where its rounding comes from when values cancel.

A float program's result is exact up to relative rounding in every operation, and relative
rounding only becomes large against the result where terms of opposite sign cancel: 1 − tanh²(x)
at saturation, σ(35) − 1, softplus(x) − x. The rounding of such a result is of the order of the
terms' size, not of its own. This module measures that size on the program itself, by a running
(first-order) analysis of its jaxpr at the point: every additive operation (add, sub, a sum, a dot
product, a convolution, a scatter-add) contributes the sum of its terms' magnitudes, |x| + |y| or
Σ|aᵢ·bᵢ|, and every operation carries the sizes of its inputs' terms to its output scaled by the
magnitude of its partial derivatives (|∂z/∂x|·Tₓ: the local derivative in absolute value; |A|·T_B
+ T_A·|B| for a product). A product, a quotient or a function of one value adds no terms of its
own: its rounding is relative to its value, which the error bounds already carry.

The analysis runs on JAX's own transform (the reverse-mode program whose Jacobian is checked,
custom rules included as primitives), so its terms are those the float program adds, not those of
the exact translation (SymPy cancels softplus(x) − log1p(exp(x)) as it builds it). Its partial
derivatives are JAX's primitive rules applied to nonnegative tangents; a custom rule is not used
for them: a custom_jvp/custom_vjp's primal program is analysed in its place. Control flow keeps
its structure (cond, while and scan run as `lax` branches and loops over the analysed bodies).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.extend.core import Literal

#: Calls analysed through their program.
_INLINED = frozenset({"jit", "pjit", "closed_call", "core_call", "remat", "checkpoint", "remat2"})
#: Custom rules: their primal program stands for them (the rule may be what is wrong).
_CUSTOM = frozenset({"custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr"})
#: Products: linear in each input, so a term carried through input i is the product with the
#: others' magnitudes; dot products and convolutions also add their terms.
_PRODUCTS = frozenset({"mul", "dot_general", "conv_general_dilated"})
_SUMS = frozenset({"dot_general", "conv_general_dilated"})
#: Additions: their terms are the magnitudes of what they add.
_ADDITIONS = frozenset({"add", "add_any", "sub", "reduce_sum", "cumsum", "scatter-add", "reduce_window_sum"})


def largest(closed, *args) -> jax.Array:
    """The largest term size over every floating output of `closed` (a ClosedJaxpr) at `args`
    (0 when it adds no terms); traceable, so that it runs as one program."""
    _, sizes = _eval(closed.jaxpr, list(closed.consts), list(args), [None] * len(args))
    largest_each = [
        jax.lax.convert_element_type(jax.lax.reduce_max(t, tuple(range(t.ndim))), jnp.float32)
        for t in sizes
        if t is not None and t.size
    ]
    return functools.reduce(jax.lax.max, largest_each, jnp.float32(0.0))


def _inexact(x) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jnp.inexact)


def _eval(jaxpr, consts, args, terms):
    """(values, term sizes) of jaxpr's outputs; a term size None is zero (nothing added yet)."""
    env = {}

    def read(var):
        if isinstance(var, Literal):
            return var.val, None
        return env[var]

    for var, val in zip(jaxpr.constvars, consts, strict=True):
        env[var] = val, None
    for var, val, t in zip(jaxpr.invars, args, terms, strict=True):
        env[var] = val, t
    for eqn in jaxpr.eqns:
        pairs = [read(v) for v in eqn.invars]
        outs, out_terms = _apply(eqn, [p[0] for p in pairs], [p[1] for p in pairs])
        for var, val, t in zip(eqn.outvars, outs, out_terms, strict=True):
            env[var] = val, t
    results = [read(v) for v in jaxpr.outvars]
    return [r[0] for r in results], [r[1] for r in results]


def _apply(eqn, vals, terms):
    name, params = eqn.primitive.name, eqn.params
    if name in _INLINED or name in _CUSTOM:
        sub = params.get("jaxpr") or params.get("call_jaxpr") or params.get("fun_jaxpr")
        return _eval(getattr(sub, "jaxpr", sub), list(getattr(sub, "consts", ())), vals, terms)
    if name == "cond":
        return _cond(params, vals, terms)
    if name == "while":
        return _while(params, vals, terms)
    if name == "scan":
        return _scan(params, vals, terms)
    bound = eqn.primitive.get_bind_params(params)
    subfuns, bound = bound if isinstance(bound, tuple) else ((), bound)

    def bind(*xs):
        out = eqn.primitive.bind(*subfuns, *xs, **bound)
        return list(out) if eqn.primitive.multiple_results else [out]

    outs = bind(*vals)
    carried = [i for i, (v, t) in enumerate(zip(vals, terms)) if t is not None and _inexact(v)]
    sizes = [None] * len(outs)
    for i in carried:
        if name in _PRODUCTS:
            moved = bind(*[terms[i] if k == i else _magnitude(v) for k, v in enumerate(vals)])
        else:
            moved = _moved(bind, vals, i, terms[i])
        sizes = [_plus(s, m) for s, m in zip(sizes, moved)]
    own = None
    if name in _ADDITIONS or name in _SUMS:
        if name == "sub":
            own = [jax.lax.add(*(_magnitude(v) for v in vals))]
        else:
            own = bind(*[_magnitude(v) for v in vals])
    if own is not None:
        sizes = [_plus(s, o) for s, o in zip(sizes, own)]
    sizes = [s if s is not None and _inexact(o) else None for s, o in zip(sizes, outs)]
    return outs, [None if s is None else _like(s, o) for s, o in zip(sizes, outs)]


def _like(t, value):
    """Term sizes t in the shape and dtype of the value they belong to."""
    t = jax.lax.convert_element_type(t, value.dtype)
    shape = jnp.shape(value)
    if jnp.shape(t) == shape:
        return t
    return jax.lax.broadcast_in_dim(t, shape, tuple(range(len(shape) - jnp.ndim(t), len(shape))))


def _magnitude(v):
    if isinstance(v, (int, float)):  # a Python scalar literal
        return abs(v)
    return jax.lax.abs(v) if _inexact(v) and not jnp.issubdtype(v.dtype, jnp.complexfloating) else v


def _moved(bind, vals, i, t):
    """|∂z/∂xᵢ|·tᵢ for every output z: the primitive's own derivative rule on tᵢ ≥ 0, in
    absolute value (exact for elementwise and structural primitives, whose derivative is one
    factor per element or a selection)."""

    def along(x):
        return bind(*[x if k == i else v for k, v in enumerate(vals)])

    _, tangents = jax.jvp(along, (vals[i],), (jnp.asarray(t, jnp.result_type(vals[i])),))
    return [None if not _inexact(d) else jax.lax.abs(d) for d in tangents]


def _plus(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return jax.lax.add(a, b)


def _filled(vals, terms):
    """Term sizes as arrays for every floating value (loops and branches carry a fixed structure)."""
    return [
        (jnp.zeros(jnp.shape(v), jnp.result_type(v)) if t is None else t) if _inexact(v) else None
        for v, t in zip(vals, terms)
    ]


def _body(closed):
    def run(vals, terms):
        outs, sizes = _eval(closed.jaxpr, list(closed.consts), list(vals), list(terms))
        return list(outs), _filled(outs, sizes)

    return run


def _cond(params, vals, terms):
    (index, *operands), (_, *operand_terms) = vals, terms
    operand_terms = _filled(operands, operand_terms)
    branches = [_body(b) for b in params["branches"]]
    outs, sizes = jax.lax.switch(index, [lambda o, t, b=b: b(o, t) for b in branches], operands, operand_terms)
    return list(outs), list(sizes)


def _while(params, vals, terms):
    nc, nb = params["cond_nconsts"], params["body_nconsts"]
    terms = _filled(vals, terms)
    cond_consts, body_consts, init = vals[:nc], vals[nc : nc + nb], vals[nc + nb :]
    body_terms, init_terms = terms[nc : nc + nb], terms[nc + nb :]
    cond, body = _body(params["cond_jaxpr"]), _body(params["body_jaxpr"])

    def going(state):
        c, _ = state
        return cond([*cond_consts, *c], [None] * (nc + len(c)))[0][0]

    def step(state):
        c, t = state
        return body([*body_consts, *c], [*body_terms, *t])

    outs, sizes = jax.lax.while_loop(going, step, (list(init), init_terms))
    return list(outs), list(sizes)


def _scan(params, vals, terms):
    n_consts, n_carry = params["num_consts"], params["num_carry"]
    terms = _filled(vals, terms)
    consts, carry, xs = vals[:n_consts], vals[n_consts : n_consts + n_carry], vals[n_consts + n_carry :]
    const_terms, carry_terms, xs_terms = (
        terms[:n_consts],
        terms[n_consts : n_consts + n_carry],
        terms[n_consts + n_carry :],
    )
    body = _body(params["jaxpr"])

    def step(state, x):
        c, ct = state
        xv, xt = x
        outs, sizes = body([*consts, *c, *xv], [*const_terms, *ct, *xt])
        return (outs[:n_carry], sizes[:n_carry]), (outs[n_carry:], sizes[n_carry:])

    (carry, carry_terms), (ys, ys_terms) = jax.lax.scan(
        step, (list(carry), carry_terms), (list(xs), xs_terms), length=params["length"], reverse=params["reverse"]
    )
    return [*carry, *ys], [*carry_terms, *ys_terms]
