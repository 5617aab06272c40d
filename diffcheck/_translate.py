"""The exact method: a JAX program, traced to its jaxpr, rewritten primitive by primitive in SymPy.

Derivatives then come from SymPy's own calculus, never from JAX's derivative rules, so a wrong
`custom_jvp`/`custom_vjp` rule cannot leak into the reference: custom rules are inlined as their
*primal* program. Values are arrays: NumPy object arrays of SymPy expressions where they depend on
the differentiated parameters, plain NumPy arrays where they are constants (those are folded by
JAX itself, so iota, masks and integer index arithmetic need no translation).

The translation is made at a point, and is exact on the smooth piece of the function around it:
an integer computed from the parameters (an index from argmax, a cast, a cond's branch index, a
while loop's trip count) is the constant it is there, and the expressions whose sign change would
change it ride along as `Piece` guards, which the kink analysis reports like the argument of abs.
"""

from __future__ import annotations

import contextvars
import itertools
import time
from dataclasses import dataclass, field

import jax
import jax.extend
import mpmath
import numpy as np
import sympy

from . import _dot as dot
from . import _graph as graph
from . import _linalg as linalg
from . import _nodes as nodes
from ._primitives import CALLS, PRIMITIVES, UNTRANSLATED, Form, as_objects, elementwise, is_symbolic
from ._rules import Piece, attach_all
from .errors import BudgetExceeded, Unavailable

PREFIX = "p__"


#: Largest expression (distinct nodes) the symbolic method builds before giving up.
MAX_NODES = 500_000

#: Most iterations of a while loop unrolled at the point before the translation gives up.
MAX_WHILE_ITERATIONS = 1000

#: Digits of the values at the point that decide a piece (a permutation, a branch, a quotient).
POINT_DIGITS = 50


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
_ORIGINS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("origins", default=None)
_POINT: contextvars.ContextVar[Point | None] = contextvars.ContextVar("point", default=None)


class Point:
    """The parameters' values, for the pieces decided there: each expression's value at the point
    (mpmath, `POINT_DIGITS` digits), kept for every node met so that each is computed once."""

    def __init__(self, symbols, leaves, definitions):
        with mpmath.workdps(POINT_DIGITS):
            self.env = {
                s: mpmath.mpf(float(v))
                for sym, leaf in zip(symbols, leaves)
                for s, v in zip(sym.reshape(-1), np.asarray(leaf).reshape(-1))
            }
        self.definitions = definitions

    def resolve(self, e):
        while e in self.definitions:
            e = self.definitions[e]
        return e

    def value(self, expr):
        """The value of one expression at the point: an mpmath number, or a bool for a condition."""
        if not isinstance(expr, sympy.Basic):
            return expr
        env, definitions = self.env, self.definitions
        with mpmath.workdps(POINT_DIGITS):
            stack = [(expr, False)]
            while stack:
                node, ready = stack.pop()
                if node in env:
                    continue
                if ready:
                    env[node] = env[definitions[node]] if node in definitions else nodes._MPMATH(node, env)
                    continue
                stack.append((node, True))
                children = (definitions[node],) if node in definitions else node.args
                stack.extend((c, False) for c in children if c not in env)
        return env[expr]

    def values(self, array) -> np.ndarray:
        array = np.asarray(array, dtype=object)
        out = np.empty(array.shape, dtype=object)
        for index in np.ndindex(*array.shape):
            out[index] = self.value(array[index])
        return out

    def concrete(self, array, dtype) -> np.ndarray:
        """The array's values at the point as a NumPy array of `dtype` (integers exactly)."""
        values = self.values(array).reshape(-1)
        dtype = np.dtype(dtype)
        if dtype == np.bool_:
            return np.array([bool(v) for v in values], dtype).reshape(np.shape(array))
        if np.issubdtype(dtype, np.integer):
            return np.array([int(v) for v in values], dtype).reshape(np.shape(array))
        return np.array([float(v) for v in values], dtype).reshape(np.shape(array))

    def guards(self, exprs) -> list:
        """The expressions whose sign change changes the value of integer or boolean `exprs`: the
        guards of the pieces and the comparisons they are built of (not what lies below those:
        it stays reachable through the guards themselves)."""
        found, seen = [], set()
        stack = [e for e in exprs if isinstance(e, sympy.Basic)]
        while stack:
            e = stack.pop()
            if e in seen or e.is_Atom and e not in self.definitions:
                continue
            seen.add(e)
            if e in self.definitions:
                stack.append(self.definitions[e])
            elif isinstance(e, Piece):
                stack.extend(g for g in e.args[1:] if isinstance(g, Piece))
                found.extend(g for g in e.args[1:] if not isinstance(g, Piece))
            elif isinstance(e, sympy.core.relational.Relational) and isinstance(e.lhs, sympy.Expr):
                found.append(e.lhs - e.rhs)
            else:
                stack.extend(e.args)
        return list(dict.fromkeys(found))


def _point() -> Point:
    point = _POINT.get()
    if point is None:
        raise Unavailable("this primitive is translated at a point, and none was given")
    return point


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
            definition = definitions[node]
            if isinstance(definition, (dot.Linear, dot.Bilinear)):
                definition = definition.expanded()  # as SymPy terms, which sympy.diff knows
            full[node] = definition.xreplace(full)
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
    # Let-bound symbol → (the primitive that computed it, where in the user's source), for naming
    # the operation where the float program departs from the exact one.
    origins: dict = field(default_factory=dict)


def translate(fn, leaves, names, budget: Budget | None = None) -> Translation:
    """Traces `fn(*leaves)` and rewrites its jaxpr in SymPy. Raises `Unavailable` when it cannot."""
    leaves = [np.asarray(leaf, dtype=np.float64) for leaf in leaves]
    budget = budget or Budget()
    definitions, origins = {}, {}
    tokens = _BUDGET.set(budget), _LETS.set(definitions), _ORIGINS.set(origins)
    try:
        symbols, outputs, eps = _translate(fn, leaves, names)
    finally:
        _BUDGET.reset(tokens[0])
        _LETS.reset(tokens[1])
        _ORIGINS.reset(tokens[2])
    translation = Translation(symbols, outputs, definitions=definitions, eps=eps, origins=origins)
    budget.check_size([e for out in outputs for e in out.reshape(-1)], definitions)
    return translation


def _translate(fn, leaves, names):
    with jax.enable_x64(True):
        try:
            closed = jax.make_jaxpr(fn)(*leaves)
        except Exception as exc:  # any tracing failure is reported by the autodiff method too
            raise Unavailable(f"tracing failed: {type(exc).__name__}: {exc}") from None
        symbols = tuple(symbol_array(name, leaf.shape) for name, leaf in zip(names, leaves))
        lets = _LETS.get()
        token = _POINT.set(Point(symbols, leaves, {} if lets is None else lets))
        try:
            outputs = evaluate_jaxpr(closed.jaxpr, closed.consts, symbols)
        finally:
            _POINT.reset(token)
    eps = max([*_float_casts(closed.jaxpr), float(np.finfo(np.float64).eps)])
    return symbols, tuple(as_objects(np.asarray(out)) for out in outputs), eps


def _float_casts(jaxpr):
    """The epsilon of every rounding to a lower precision inside the program (casts to a float,
    reduce_precision)."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "convert_element_type" and jax.numpy.issubdtype(eqn.params["new_dtype"], np.floating):
            yield float(np.finfo(eqn.params["new_dtype"]).eps)
        if eqn.primitive.name == "reduce_precision":
            yield 2.0 ** -int(eqn.params["mantissa_bits"])
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
    fn = sympy.lambdify(syms, flat, modules=[nodes.mpmath_namespace(), "mpmath"], cse=True)
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
    lets, origins = _LETS.get(), _ORIGINS.get()
    for eqn in jaxpr.eqns:
        budget.check()
        invals = [read(v) for v in eqn.invars]
        before = len(lets) if lets is not None else 0
        outvals = _apply(eqn, invals)
        if origins is not None and lets is not None and len(lets) > before:
            origin = (eqn.primitive.name, _where(eqn))
            for symbol in itertools.islice(reversed(lets), len(lets) - before):
                origins.setdefault(symbol, origin)
        if not eqn.primitive.multiple_results:
            outvals = [outvals]
        for var, val in zip(eqn.outvars, outvals):
            env[var] = _array(val)
    return [read(v) for v in jaxpr.outvars]


def _where(eqn) -> str:
    """The user's source line of an equation, as JAX records it ("" when it has none)."""
    try:
        from jax._src import source_info_util

        return source_info_util.summarize(eqn.source_info)
    except Exception:  # noqa: BLE001 - JAX's private helper moved: no line, the primitive is named
        return ""


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
    if name == "while":
        return _while(params, invals)
    if name == "reduce":
        return _reduce_jaxpr(params, invals)
    if name == "custom_linear_solve":
        return _linear_solve(params, invals)
    record = PRIMITIVES.get(name)
    if record is None and (name in UNTRANSLATED or not _integer_valued(eqn)):
        reason = UNTRANSLATED.get(name, "diffcheck has no rule for it yet")
        raise Unavailable(f"no SymPy translation for primitive '{name}': {reason}")
    if record is not None and record.form is Form.MOVE:
        return _moved(eqn, invals, record.data_operands)
    if record is not None and record.form is Form.LOCAL:
        out = record.translate(_point(), *invals, **params)
    elif _integer_valued(eqn):  # any integer result, with or without a record: a constant there
        return _integer_at_point(eqn, invals)
    elif record.form is Form.ELEMENTWISE:
        return _let(elementwise(record.translate, *invals))
    else:
        out = record.translate(*invals, **params)
    return [_let(o) for o in out] if eqn.primitive.multiple_results else _let(out)


def _integer_valued(eqn) -> bool:
    return all(np.issubdtype(v.aval.dtype, np.integer) for v in eqn.outvars)


def _integer_at_point(eqn, invals):
    """An integer result computed from the parameters: the constant it is at the point (computed
    by JAX on the operands' values there), on the piece its operands' guards bound."""
    point = _point()
    concrete = [point.concrete(x, v.aval.dtype) if is_symbolic(x) else x for x, v in zip(invals, eqn.invars)]
    guards = point.guards([e for x in invals if is_symbolic(x) for e in x.reshape(-1)])
    out = _bind(eqn, concrete)
    if eqn.primitive.multiple_results:
        return [_let(attach_all(o, guards, point)) for o in out]
    return _let(attach_all(out, guards, point))


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


def _bind(eqn, invals, **changed):
    params = eqn.primitive.get_bind_params({**eqn.params, **changed})
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
    """A primitive that only moves elements, run by JAX on arrays of element indices.

    Indices computed from the parameters are the constants they are at the point, and every
    element moved carries their guards."""
    n_data = len(invals) if n_data is None else n_data
    data, rest = invals[:n_data], invals[n_data:]
    guards = []
    if any(is_symbolic(x) for x in rest):
        point = _point()
        guards = point.guards([e for x in rest if is_symbolic(x) for e in x.reshape(-1)])
        rest = [point.concrete(x, v.aval.dtype) if is_symbolic(x) else x for x, v in zip(rest, eqn.invars[n_data:])]
    pool, index_arrays, offset = [], [], 0
    for x in data:
        x = as_objects(x)
        pool.extend(x.reshape(-1))
        index_arrays.append(np.arange(offset, offset + x.size, dtype=np.int64).reshape(x.shape))
        offset += x.size
    layout = _LAYOUT.get(eqn.primitive.name)
    picked = layout(index_arrays[0], eqn.params) if layout and not rest else None
    fill = sympy.S.Zero
    if picked is None:
        changed = {}
        if eqn.primitive.name == "gather" and "FILL" in str(eqn.params.get("mode")):
            # Filled elements are marked −1 on the index array, then take the gather's fill value
            # (NaN by default for a float operand, as in JAX).
            value = eqn.params.get("fill_value")
            fill = sympy.nan if value is None else as_objects(np.asarray(value))[()]
            changed = {"fill_value": -1}
        with jax.enable_x64(True):
            picked = _bind(eqn, index_arrays + list(rest), **changed)
    pool = np.array(pool + [fill], dtype=object)

    def pick(indices):
        outside = (indices < 0) | (indices >= offset)  # gather's fill value in its "drop" modes
        return attach_all(pool[np.where(outside, offset, indices)], guards, _POINT.get())

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
    """The branch taken at the point; an index computed from the parameters is a constant there,
    and its guards (the predicate's threshold) go with every output."""
    index, *operands = invals
    guards = []
    if is_symbolic(index):
        point = _point()
        guards = point.guards(index.reshape(-1))
        index = point.concrete(index, np.int64)
    branch = params["branches"][int(np.clip(index, 0, len(params["branches"]) - 1))]
    outs = evaluate_jaxpr(branch.jaxpr, branch.consts, operands)
    return [_let(attach_all(o, guards, _POINT.get())) if guards and is_symbolic(o) else o for o in outs]


def _while(params, invals):
    """The loop run for its trip count at the point: the body translated once per iteration, each
    predicate computed from the parameters decided at the point, its threshold a guard."""
    nc, nb = params["cond_nconsts"], params["body_nconsts"]
    cond, body = params["cond_jaxpr"], params["body_jaxpr"]
    cond_consts, body_consts, carry = invals[:nc], invals[nc : nc + nb], list(invals[nc + nb :])
    guards = []
    for _ in range(MAX_WHILE_ITERATIONS + 1):
        (go,) = evaluate_jaxpr(cond.jaxpr, cond.consts, list(cond_consts) + carry)
        if is_symbolic(go):
            point = _point()
            guards += point.guards(go.reshape(-1))
            go = point.concrete(go, np.bool_)
        if not bool(np.any(go)):  # a batched loop (vmap) runs while any element's predicate holds
            return [_let(attach_all(c, guards, _POINT.get())) if guards and is_symbolic(c) else c for c in carry]
        carry = evaluate_jaxpr(body.jaxpr, body.consts, list(body_consts) + carry)
    raise Unavailable(
        f"while: the loop runs over {MAX_WHILE_ITERATIONS} iterations at the point (unrolled, at most that)"
    )


def _reduce_jaxpr(params, invals):
    """`lax.reduce` with several operands: its reduction jaxpr folded over each reduced row."""
    n = len(invals) // 2
    operands, inits = [as_objects(x) for x in invals[:n]], invals[n:]
    jaxpr = params["jaxpr"]
    body, consts = getattr(jaxpr, "jaxpr", jaxpr), getattr(jaxpr, "consts", ())
    axes = tuple(params["dimensions"])
    kept = [d for d in range(operands[0].ndim) if d not in axes]
    rows = [np.transpose(x, kept + list(axes)).reshape([x.shape[d] for d in kept] + [-1]) for x in operands]
    outs = [np.empty(rows[0].shape[:-1], dtype=object) for _ in range(n)]
    for index in np.ndindex(*outs[0].shape):
        acc = [np.asarray(i) for i in inits]
        for t in range(rows[0].shape[-1]):
            acc = evaluate_jaxpr(body, consts, acc + [_array(r[index + (t,)]) for r in rows])
        for out, a in zip(outs, acc):
            out[index] = as_objects(a)[()]
    return outs


def _linear_solve(params, invals):
    """`custom_linear_solve`: x with matvec(x) = b. The matrix is the matvec jaxpr applied to each
    basis vector, and the solve is an elimination of it: the solve jaxpr is never run, as its
    primal may work on stop_gradient(A) (jnp.linalg.solve's does) and leave JAX's rule the rest."""
    lengths, jaxprs = params["const_lengths"], params["jaxprs"]
    consts, bs = invals[: sum(lengths)], invals[sum(lengths) :]
    if len(bs) != 1:
        raise Unavailable("custom_linear_solve with several right-hand sides (a pytree b) is not translated")
    b = as_objects(bs[0])
    matvec = jaxprs.matvec
    columns = []
    for i in range(b.size):
        basis = np.zeros(b.size)
        basis[i] = 1.0
        (column,) = evaluate_jaxpr(
            matvec.jaxpr, matvec.consts, list(consts[: lengths.matvec]) + [basis.reshape(b.shape)]
        )
        columns.append(as_objects(column).reshape(-1))
    x = linalg.solve(_point(), np.stack(columns, axis=1), b.reshape(-1))
    return [_let(x.reshape(b.shape))]
