"""The exact method: a JAX program, traced to its jaxpr, rewritten primitive by primitive in SymPy.

Derivatives then come from SymPy's own calculus, never from JAX's derivative rules, so a wrong
`custom_jvp`/`custom_vjp` rule cannot leak into the reference: custom rules are inlined as their
*primal* program. Values are arrays: NumPy object arrays of SymPy expressions where they depend on
the differentiated parameters, plain NumPy arrays where they are constants (those are folded by
JAX itself, so iota, masks and integer index arithmetic need no translation).
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field

import jax
import jax.extend
import mpmath
import numpy as np
import sympy

from . import _graph as graph
from ._primitives import CALLS, PRIMITIVES, Form, as_objects, elementwise, is_symbolic
from .errors import BudgetExceeded, Unavailable

PREFIX = "p__"


#: Largest expression (distinct nodes) the symbolic method builds before giving up.
MAX_NODES = 500_000


class Budget:
    """A time and size limit for one symbolic check; exceeding it is `BudgetExceeded`."""

    def __init__(self, seconds: float | None = None, nodes: int | None = None):
        self.seconds = seconds
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.nodes = MAX_NODES if nodes is None else nodes

    def check(self):
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExceeded("timed out", f"the symbolic derivatives took over {self.seconds:g} s (--timeout)")

    def check_size(self, exprs, definitions=None):
        size = dag_size(exprs, self.nodes, definitions)
        if size > self.nodes:
            raise BudgetExceeded("too large", f"the expression has over {self.nodes:,} distinct nodes")


_BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("budget", default=None)
_LETS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("lets", default=None)


def dag_size(exprs, limit: int, definitions=None) -> int:
    """Distinct subexpressions, counted as a graph (shared nodes once), stopping past `limit`."""
    definitions = definitions or {}
    seen, stack = set(), [e for e in exprs if isinstance(e, sympy.Basic)]
    while stack and len(seen) <= limit:
        e = stack.pop()
        if e not in seen:
            seen.add(e)
            stack.extend((definitions[e],) if e in definitions else e.args)
    return len(seen)


def inline(exprs, definitions) -> list:
    """The expressions with every let-bound symbol replaced by its definition: whole trees, for
    the whole-expression route on small programs."""
    full = {}
    for node in graph.topological(exprs, definitions):
        if node in definitions:
            full[node] = definitions[node].xreplace(full)
    return [e.xreplace(full) if isinstance(e, sympy.Basic) else e for e in exprs]


@dataclass(frozen=True)
class Translation:
    """A traced function as SymPy expressions of one real symbol per parameter element."""

    symbols: tuple  # per parameter leaf, an object array of Symbols of the leaf's shape
    outputs: tuple  # per output leaf, an object array of expressions of the output's shape
    # Let-bound symbols → their expressions, one per value the program computes: expressions stay
    # small (SymPy's automatic simplification never meets a whole network), the graph stays shared.
    definitions: dict = field(default_factory=dict)
    # The epsilon of the least precise float the program rounds to: a cast to float32 inside a
    # float64 program is the identity here, so values agree with JAX's only to that precision.
    eps: float = float(np.finfo(np.float64).eps)


def translate(fn, leaves, names, budget: Budget | None = None) -> Translation:
    """Traces `fn(*leaves)` and rewrites its jaxpr in SymPy. Raises `Unavailable` when it cannot."""
    leaves = [np.asarray(leaf, dtype=np.float64) for leaf in leaves]
    budget = budget or Budget()
    definitions = {}
    tokens = _BUDGET.set(budget), _LETS.set(definitions)
    try:
        symbols, outputs, eps = _translate(fn, leaves, names)
    finally:
        _BUDGET.reset(tokens[0])
        _LETS.reset(tokens[1])
    translation = Translation(symbols, outputs, definitions=definitions, eps=eps)
    budget.check_size([e for out in outputs for e in out.reshape(-1)], definitions)
    return translation


def _translate(fn, leaves, names):
    with jax.enable_x64(True):
        try:
            closed = jax.make_jaxpr(fn)(*leaves)
        except Exception as exc:  # any tracing failure is reported by the autodiff method too
            raise Unavailable(f"tracing failed: {type(exc).__name__}: {exc}") from None
        symbols = tuple(symbol_array(name, leaf.shape) for name, leaf in zip(names, leaves))
        outputs = evaluate_jaxpr(closed.jaxpr, closed.consts, symbols)
    eps = max([float(np.finfo(d).eps) for d in _float_casts(closed.jaxpr)] + [float(np.finfo(np.float64).eps)])
    return symbols, tuple(as_objects(np.asarray(out)) for out in outputs), eps


def _float_casts(jaxpr):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "convert_element_type" and jax.numpy.issubdtype(eqn.params["new_dtype"], np.floating):
            yield eqn.params["new_dtype"]
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from _float_casts(sub)


def from_expression(expr, symbols) -> Translation:
    """A case written as a SymPy expression of scalar symbols is its own translation."""
    return Translation(tuple(np.array(s, dtype=object) for s in symbols), (np.array(expr, dtype=object),))


def symbol_array(name: str, shape: tuple) -> np.ndarray:
    """One real symbol per element, named after the parameter and the element's index.

    The prefix keeps names apart from the functions lambdify's namespace holds (exp, e, pi, …).
    """
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        suffix = "".join(f"_{i}" for i in index)
        out[index] = sympy.Symbol(f"{PREFIX}{name}{suffix}", real=True)
    return out


def jacobian(outputs, symbols, budget: Budget | None = None) -> np.ndarray:
    """d output_m / d symbol_n as an object matrix, SymPy differentiating each expression."""
    budget = budget or Budget()
    outs = [e for out in outputs for e in out.reshape(-1)]
    syms = [s for sym in symbols for s in sym.reshape(-1)]
    jac = np.empty((len(outs), len(syms)), dtype=object)
    for m, expr in enumerate(outs):
        free = expr.free_symbols
        for n, s in enumerate(syms):
            budget.check()
            jac[m, n] = sympy.diff(expr, s) if s in free else sympy.S.Zero
    budget.check_size(jac.reshape(-1))
    return jac


def evaluate(exprs, symbols, values, digits: int = graph.DIGITS) -> list:
    """Evaluates expressions at `values` (float arrays per leaf) with `digits` significant digits.

    Returns mpmath numbers; the float values are taken as the exact binary numbers they are.
    """
    syms = [s for sym in symbols for s in sym.reshape(-1)]
    args = [mpmath.mpf(float(v)) for value in values for v in np.asarray(value, np.float64).reshape(-1)]
    flat = list(np.asarray(exprs, dtype=object).reshape(-1))
    fn = sympy.lambdify(syms, flat, modules=[graph.mpmath_namespace(), "mpmath"], cse=True)
    with mpmath.workdps(digits):
        return [mpmath.mpf(v) if not isinstance(v, mpmath.mpc) else v for v in fn(*args)]


# --- the interpreter -------------------------------------------------------------------------


def evaluate_jaxpr(jaxpr, consts, args) -> list:
    """Runs a jaxpr on a mix of NumPy constants and object arrays of SymPy expressions."""
    env = {}

    def read(var):
        if type(var).__name__ == "Literal":
            return np.asarray(var.val)
        return env[var]

    for var, val in zip(jaxpr.constvars, consts):
        env[var] = _constant(val)
    for var, val in zip(jaxpr.invars, args):
        env[var] = _array(val)
    budget = _BUDGET.get() or Budget()
    for eqn in jaxpr.eqns:
        budget.check()
        invals = [read(v) for v in eqn.invars]
        outvals = _apply(eqn, invals)
        if not eqn.primitive.multiple_results:
            outvals = [outvals]
        for var, val in zip(eqn.outvars, outvals):
            env[var] = _array(val)
    return [read(v) for v in jaxpr.outvars]


def _array(x) -> np.ndarray:
    # Indexing a 0-d object array yields the bare expression: keep every value an array.
    return np.asarray(x, dtype=object) if isinstance(x, sympy.Basic) else _constant(x)


def _apply(eqn, invals):
    name = eqn.primitive.name
    params = eqn.params
    if name in CALLS:
        sub = _subjaxpr(params)  # a closed jaxpr, or an open one (remat's, checkpoint's)
        return evaluate_jaxpr(getattr(sub, "jaxpr", sub), getattr(sub, "consts", ()), invals)
    if name == "scan":
        return _scan(params, invals)
    if name == "cond":
        return _cond(params, invals)
    if not any(is_symbolic(x) for x in invals):
        return _bind(eqn, invals)  # a constant: JAX folds it, exactly as the program would
    record = PRIMITIVES.get(name)
    if record is None:
        raise Unavailable(f"no SymPy translation for primitive '{name}'")
    if record.form is Form.MOVE:
        return _moved(eqn, invals, record.data_operands)
    if record.form is Form.ELEMENTWISE:
        return _let(elementwise(record.translate, *invals))
    out = record.translate(*invals, **params)
    return [_let(o) for o in out] if eqn.primitive.multiple_results else _let(out)


def _let(value):
    """Each new compound value becomes a let-bound real symbol standing for its expression."""
    definitions = _LETS.get()
    if definitions is None or not is_symbolic(value):
        return value
    out = np.empty(value.shape, dtype=object)
    for index in np.ndindex(*value.shape):
        e = value[index]
        if isinstance(e, sympy.Expr) and not e.is_Atom:
            symbol = sympy.Symbol(f"v__{len(definitions)}", real=True)
            definitions[symbol] = e
            e = symbol
        out[index] = e
    return out


def _subjaxpr(params):
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        if key in params:
            return params[key]
    raise Unavailable(f"call primitive without a jaxpr (params {sorted(params)})")


def _bind(eqn, invals):
    params = eqn.primitive.get_bind_params(eqn.params)
    subfuns, params = params if isinstance(params, tuple) else ((), params)  # JAX < 0.7 form
    out = eqn.primitive.bind(*subfuns, *invals, **params)
    if eqn.primitive.multiple_results:
        return [_constant(o) for o in out]
    return _constant(out)


def _constant(x):
    """A value computed from data alone: a NumPy array, except a PRNG key (it has no NumPy form)."""
    if jax.dtypes.issubdtype(getattr(x, "dtype", np.float64), jax.dtypes.extended):
        return x
    return np.asarray(x)


# The ones that only reshape or reorder, done in NumPy on the index array: run by JAX, each would
# compile a small program per shape. Params as in JAX's jaxprs; any other form goes through JAX.
_LAYOUT = {
    "squeeze": lambda x, p: np.squeeze(x, tuple(p["dimensions"])),
    "reshape": lambda x, p: np.reshape(x, p["new_sizes"]) if p.get("dimensions") is None else None,
    "transpose": lambda x, p: np.transpose(x, p["permutation"]),
    "rev": lambda x, p: np.flip(x, tuple(p["dimensions"])),
    "broadcast_in_dim": lambda x, p: _broadcast_in_dim(x, p["shape"], p["broadcast_dimensions"]),
}


def _broadcast_in_dim(x, shape, dimensions):
    # Operand axis i becomes output axis dimensions[i] (increasing, as JAX requires); the rest are new.
    kept = [1] * len(shape)
    for axis, n in zip(dimensions, x.shape):
        kept[axis] = n
    return np.broadcast_to(x.reshape(kept), shape)


def _moved(eqn, invals, n_data):
    """A primitive that only moves elements, run by JAX on arrays of element indices."""
    n_data = len(invals) if n_data is None else n_data
    data, rest = invals[:n_data], invals[n_data:]
    if any(is_symbolic(x) for x in rest):
        raise Unavailable(f"{eqn.primitive.name} with symbolic indices")
    pool, index_arrays, offset = [], [], 0
    for x in data:
        x = as_objects(x)
        pool.extend(x.reshape(-1))
        index_arrays.append(np.arange(offset, offset + x.size, dtype=np.int64).reshape(x.shape))
        offset += x.size
    layout = _LAYOUT.get(eqn.primitive.name)
    picked = layout(index_arrays[0], eqn.params) if layout and not rest else None
    if picked is None:
        with jax.enable_x64(True):
            picked = _bind(eqn, index_arrays + list(rest))
    pool = np.array(pool + [sympy.S.Zero], dtype=object)

    def pick(indices):
        outside = (indices < 0) | (indices >= offset)  # gather's fill value in its "drop" modes
        return pool[np.where(outside, offset, indices)]

    return [pick(np.asarray(p)) for p in picked] if eqn.primitive.multiple_results else pick(np.asarray(picked))


def _scan(params, invals):
    body, length = params["jaxpr"], params["length"]
    n_consts, n_carry = params["num_consts"], params["num_carry"]
    consts, carry, xs = invals[:n_consts], invals[n_consts : n_consts + n_carry], invals[n_consts + n_carry :]
    steps = range(length - 1, -1, -1) if params["reverse"] else range(length)
    ys = []
    for t in steps:
        outs = evaluate_jaxpr(body.jaxpr, body.consts, list(consts) + list(carry) + [x[t] for x in xs])
        carry, y = outs[:n_carry], outs[n_carry:]
        ys.append(y)
    if params["reverse"]:
        ys.reverse()
    stacked = [np.stack([as_objects(y[i]) for y in ys]) for i in range(len(ys[0]))] if ys else []
    return list(carry) + stacked


def _cond(params, invals):
    index, *operands = invals
    if is_symbolic(index):
        raise Unavailable("cond on a value that depends on the parameters")
    branch = params["branches"][int(np.clip(index, 0, len(params["branches"]) - 1))]
    return evaluate_jaxpr(branch.jaxpr, branch.consts, operands)
