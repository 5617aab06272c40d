"""Exact derivatives evaluated over the expression graph, in high precision.

A traced program is a graph: its SymPy expressions share subexpressions, and written out as
trees they can grow exponentially (`x = sin(x·x + x)` forty times). Everything here walks the
graph once per distinct node:

* `evaluate` — the value of every node, in mpmath at 30 digits (or NumPy float64 over many points);
* `jacobian` — the chain rule applied backwards over the graph (reverse accumulation), where each
  node's local derivatives are SymPy's own derivatives of that node's function (`fdiff`), never
  JAX's rules. The result is the exact derivative evaluated at 30 digits, at a cost linear in the
  size of the graph for each output, instead of one whole-expression `diff` per parameter.
"""

from __future__ import annotations

import collections
import math

import mpmath
import numpy as np
import sympy
from mpmath.libmp import from_float, mpf_mul
from sympy.functions.elementary.piecewise import ExprCondPair

from . import _dot as dot
from ._dot import Bilinear, Linear
from ._nodes import (
    _NUMPY,
    _local_derivatives,
    _mpmath_node,
    _number,
    _numpy_node,
    _pairwise,
    _pairwise_levels,
)
from .errors import BudgetExceeded

#: Significant decimal digits of the high-precision evaluation of the exact values.
DIGITS = 30

#: Most bytes of moved rows the stencil's evaluation holds at once before the exact method gives up.
MOVED_BYTES = 1 << 30


def topological(exprs, definitions=None) -> list:
    """Distinct nodes reachable from `exprs`, every node after its arguments.

    `definitions` maps let-bound symbols (one per value of the traced program) to their
    expressions: such a symbol's only argument is its definition.
    """
    definitions = definitions or {}
    order, seen = [], set()
    for root in exprs:
        if root in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((node, True))
            children = (definitions[node],) if node in definitions else node.args
            stack.extend((a, False) for a in children if a not in seen)
    return order


def evaluate(exprs, symbols, values, definitions=None, digits: int = DIGITS, budget=None) -> list:
    """Each expression at `values` (one float, or mpmath number, per symbol) in mpmath with `digits` digits."""
    with mpmath.workdps(digits):
        values = [v if isinstance(v, mpmath.mpf) else mpmath.mpf(float(v)) for v in values]
        env = _values(_graph(exprs, definitions), symbols, values, budget)
        return [env[e] for e in exprs]


def node_values(exprs, nodes, symbols, values, definitions=None, digits: int = DIGITS) -> list:
    """The values of some `nodes` of the graph of `exprs` at `values`, in mpmath with `digits`
    digits: from the graph's last evaluation, when it was at the same point (`_values`)."""
    with mpmath.workdps(digits):
        values = [v if isinstance(v, mpmath.mpf) else mpmath.mpf(float(v)) for v in values]
        env = _values(_graph(exprs, definitions), symbols, values, None)
        return [env[n] for n in nodes]


def evaluate_float(exprs, symbols, points: np.ndarray, definitions=None) -> np.ndarray:
    """Each expression at many points in float64: `points` is (P, symbols); returns (P, exprs)."""
    columns = [np.asarray(points[:, i], np.float64) for i in range(points.shape[1])]
    with np.errstate(all="ignore"):
        env = _forward(exprs, symbols, columns, _NUMPY, None, definitions)
    return np.stack([np.broadcast_to(np.asarray(env[e], np.float64), (len(points),)) for e in exprs], axis=1)


def evaluate_moved(exprs, symbols, theta, where, to, definitions=None) -> tuple[np.ndarray, np.ndarray]:
    """Each expression in float64 at the point `theta` and at R moved points, row r being `theta`
    with element `where[r]` set to `to[r]`; returns (values at theta (E,), values at the rows (R, E)).

    A node changes only in the rows that move a symbol it depends on, so each node is evaluated
    at the point and at those rows alone: for a stencil (two rows per parameter) the cost is the
    sum over nodes of their symbols, not nodes × rows, and a node is freed after its last use.
    """
    at = np.zeros(len(exprs))
    moved = np.zeros((len(where), len(exprs)))

    def consume(k, value):
        base, rows, vals = value
        at[k] = base
        moved[:, k] = base
        moved[rows, k] = vals

    _moved(exprs, symbols, theta, where, to, definitions, consume)
    return at, moved


def _moved(exprs, symbols, theta, where, to, definitions, consume):
    """Runs the sparse evaluation of `evaluate_moved`, handing each expression's (value at θ,
    rows, values at the rows) to `consume(index, value)` as soon as it is computed."""
    graph = _graph(exprs, definitions)
    definitions = graph.definitions
    where, to = np.asarray(where, np.int64), np.asarray(to, np.float64)
    total = len(where)
    dense = _AllRows(total)
    by_symbol = {}
    for r in np.argsort(where, kind="stable"):
        by_symbol.setdefault(int(where[r]), []).append(int(r))
    env = {}
    for n, s in enumerate(symbols):
        rows = np.asarray(by_symbol.get(n, ()), np.int64)
        env[s] = (np.float64(theta[n]), rows, to[rows])
    wanted = {}
    for k, e in enumerate(exprs):
        wanted.setdefault(e, []).append(k)
    for e in wanted:  # an expression that is a symbol (or a number) is known before the loop
        if e in env:
            for k in wanted[e]:
                consume(k, env[e])
    order = graph.order
    layouts = {}  # a linear node's arguments → how they move (`_layout`), shared by the nodes with them
    sums = _Sums(total)
    counted, live = {}, 0  # bytes of the rows held, per node and in all
    last = {}
    for i, node in enumerate(order):
        for a in _children(node, graph):
            last[a] = i
    with np.errstate(all="ignore"):
        for i, node in enumerate(order):
            if node not in env:
                if node in definitions:
                    value = env[definitions[node]]
                elif node in graph.linear or isinstance(node, (sympy.Add, Bilinear)):
                    value = _moved_sum(node, graph, env, dense, layouts, sums)
                else:
                    value = _moved_node(node, env, dense)
                if value is not None and value[1] is not dense and value[1].size > total // 4:
                    # Moved in most rows: kept as all of them, so that sums need no row matching.
                    full = np.full(total, value[0], dtype=np.result_type(value[2], np.float64))
                    full[value[1]] = value[2]
                    value = (value[0], dense, full)
                if value is not None and node not in definitions:
                    counted[node] = np.asarray(value[2]).nbytes + (0 if value[1] is dense else value[1].nbytes)
                    live += counted[node]
                    if live > MOVED_BYTES:
                        # A network whose every value moves in every row (each depends on every
                        # parameter) holds a layer of such rows at once: give up, not the memory.
                        raise BudgetExceeded(
                            "too large",
                            f"the kink search holds over {MOVED_BYTES / 2**30:g} GiB of stencil rows at once",
                        )
                env[node] = value
                for k in wanted.get(node, ()):
                    consume(k, value)
                if node not in last:  # an expression no other node uses: done with once consumed
                    env.pop(node, None)
                    live -= counted.pop(node, 0)
            for a in _children(node, graph):
                if last.get(a) == i:
                    env.pop(a, None)
                    live -= counted.pop(a, 0)


class _AllRows(np.ndarray):
    """Every row, 0 … R − 1: a node that moves in this many rows holds a value for each."""

    def __new__(cls, total):
        return np.arange(total, dtype=np.int64).view(cls)


def _positions(union, rows):
    """Where `rows` sit in the sorted `union` of rows."""
    return rows if isinstance(union, _AllRows) else np.searchsorted(union, rows)


def _moved_sum(node, graph, env, dense, layouts, sums):
    """A sum at the point and at the rows that move any of its terms, in float64.

    Sums are pairwise here (`_pairwise`, as `evaluate_float` adds), so a row that moves one
    term — a stencil row moves one parameter, so one term of each dot product — recomputes
    the log₂(terms) partial sums on that term's path, not the whole sum. A dot product Σ cᵢ·sᵢ
    of a linear node, and Σ aᵢ·bᵢ of a bilinear one, take their products here, from their
    arguments' values: the products are never nodes of their own (a layer with a batch has
    batch × width × inputs of them).
    """
    if isinstance(node, Linear):
        bases, moved = _layout(node.args, env, dense, layouts)
        if moved is not None:  # each row moves one term at most: the same sums, as arrays
            c = node.coefficients
            levels = _pairwise_levels(c * bases)
            if moved is _STILL:
                return (levels[-1][0], _NO_ROWS, _NO_ROWS)
            rows, term, values = moved
            return (levels[-1][0], rows, _up_the_tree(levels, term, np.asarray(c[term] * values, np.float64)))
    linear = graph.linear.get(node)
    if linear is not None:
        terms = [(c, env[a]) for c, a in zip(graph.floats(node), linear[1])]
    elif isinstance(node, Bilinear):
        lhs, rhs = node.halves
        pairs = [(env[a], env[b]) for a, b in zip(lhs, rhs)]
        if any(x[1] is dense or y[1] is dense for x, y in pairs) and _real(v for x, y in pairs for v in (x, y)):
            base = _pairwise_levels(np.array([x[0] * y[0] for x, y in pairs], dtype=np.float64))[-1][0]
            return (base, dense, sums.add(len(pairs), lambda i, out: _write_product(*pairs[i], dense, out)))
        terms = [(None, _moved_product(x, y, dense)) for x, y in pairs]
    else:
        terms = [(None, env[a]) for a in node.args]
    if any(t[1] is dense for _, t in terms) and _real(t for _, t in terms):
        # Moved in every row: each term's values at every row, summed as they come (`_Sums`).
        base = _pairwise_levels(np.array([b if c is None else c * b for c, (b, _, _) in terms], np.float64))[-1][0]
        return (base, dense, sums.add(len(terms), lambda i, out: _write_term(*terms[i], dense, out)))
    scaled = [(b, v) if c is None else (c * b, c * v) for c, (b, _, v) in terms]
    levels = _pairwise_levels(np.array([b for b, _ in scaled], dtype=np.float64))
    base = levels[-1][0]
    moving = [(k, t[1], v) for k, ((_, t), (_, v)) in enumerate(zip(terms, scaled)) if t[1].size]
    if not moving:
        return (base, _NO_ROWS, _NO_ROWS)
    first = next((r for _, r, _ in moving if r is dense), moving[0][1])
    if len(moving) > 1 and all(r is first or np.array_equal(r, first) for _, r, _ in moving):
        # Every moving term moves in the same rows (z_i − z_j of one softmax): add them all there.
        values = [b for b, _ in scaled]
        for k, _, v in moving:
            values[k] = v
        return (base, first, _pairwise(values))
    if len(moving) == 1:
        rows, term, value = first, np.full(first.size, moving[0][0]), moving[0][2]
    else:
        rows = np.concatenate([r for _, r, _ in moving])
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        if first is dense or (rows[1:] == rows[:-1]).any():  # some row moves several terms: add them all there
            union, columns = _gather([(b, r, v) for (b, v), (_, (_, r, _)) in zip(scaled, terms)], dense)
            return (base, union, _pairwise(columns))
        term = np.repeat([k for k, _, _ in moving], [r.size for _, r, _ in moving])[order]
        value = np.concatenate([v for _, _, v in moving])[order]
    return (base, rows, _up_the_tree(levels, term, np.asarray(value, np.float64)))


def _up_the_tree(levels, term, value):
    """A pairwise sum at rows that each move one term (`term`, to `value`): each partial sum on
    the term's path, with its sibling's value at the point."""
    for level in levels[:-1]:
        sibling = term ^ 1
        has = sibling < level.size
        value = np.where(has, value + level[np.minimum(sibling, level.size - 1)], value)
        term = term >> 1
    return value


class _Sums:
    """Pairwise sums at every row, of terms written one at a time into reused rows: the sums of
    `_pairwise` (pairs, then pairs of pairs, an odd one out joining last), as a binary counter
    holds them — log₂(terms) rows at once, in the cache, and no new array per term or partial
    sum (a dense dot product's own arrays were most of the kink search's time)."""

    def __init__(self, total):
        self.rows = np.empty((2, total))

    def add(self, count, write) -> np.ndarray:
        """Σ of `count` terms; `write(i, out)` puts term i's values at every row into `out`."""
        if self.rows.shape[0] < count.bit_length() + 1:
            self.rows = np.empty((count.bit_length() + 1, self.rows.shape[1]))
        rows, sizes = self.rows, []  # rows[k]: the sum of a block of sizes[k] terms, the earliest first
        for i in range(count):
            write(i, rows[len(sizes)])
            size = 1
            while sizes and sizes[-1] == size:  # two blocks of the same size: a pair of them
                sizes.pop()
                np.add(rows[len(sizes)], rows[len(sizes) + 1], out=rows[len(sizes)])
                size *= 2
            sizes.append(size)
        for top in range(len(sizes) - 1, 0, -1):  # what is left, from the last block back
            np.add(rows[top - 1], rows[top], out=rows[top - 1])
        return rows[0].copy()


def _real(values) -> bool:
    return not any(np.iscomplexobj(v) for _, _, v in values)


def _write_term(c, value, dense, out):
    """A sum's term (times its coefficient c, unless None) at every row."""
    b, rows, v = value
    if rows is dense:
        if c is None:
            np.copyto(out, v)
        else:
            np.multiply(v, c, out=out)
        return
    out.fill(b if c is None else c * b)
    if rows.size:
        out[rows] = v if c is None else c * v


def _write_product(a, b, dense, out):
    """One product aᵢ·bᵢ of a bilinear node at every row: the floats of `_moved_product`."""
    if b[1] is dense and a[1] is not dense:
        a, b = b, a
    (_, ra, va), (b0, rb, vb) = a, b
    if ra is not dense:  # neither moves in every row
        base, rows, values = _moved_product(a, b, dense)
        out.fill(base)
        if rows.size:
            out[rows] = values
    elif rb is dense:
        np.multiply(va, vb, out=out)
    else:
        np.multiply(va, b0, out=out)
        if rb.size:
            out[rb] = va[rb] * vb


_STILL = object()  # no argument moves


def _layout(args, env, dense, layouts):
    """The arguments' values at the point (an array), and how they move: _STILL, or (rows, the
    term each row moves, its value there) when no row moves two terms, else None (the general
    sum). Built once per tuple of arguments: a layer's inputs are the arguments of each of its
    outputs' dot products."""
    layout = layouts.get(args)
    if layout is not None:
        return layout
    values = [env[a] for a in args]
    bases = np.array([b for b, _, _ in values], dtype=np.float64)
    moving = [(k, r, v) for k, (_, r, v) in enumerate(values) if r.size]
    layout = (bases, None)
    if not moving:
        layout = (bases, _STILL)
    elif not any(r is dense for _, r, _ in moving):
        rows = np.concatenate([r for _, r, _ in moving])
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        if not (rows[1:] == rows[:-1]).any():
            term = np.repeat([k for k, _, _ in moving], [r.size for _, r, _ in moving])[order]
            moved = np.concatenate([np.asarray(v) for _, _, v in moving])[order]
            layout = (bases, (rows, term, moved))
    layouts[args] = layout
    return layout


def _union(rows: np.ndarray) -> np.ndarray:
    """The distinct rows, sorted (NumPy's `unique` hashes integers: 5× slower here)."""
    rows = np.sort(rows)
    return rows[np.concatenate([[True], rows[1:] != rows[:-1]])] if rows.size else rows


def _children(node, graph):
    if node in graph.definitions:
        return (graph.definitions[node],)
    if node in graph.linear:
        return graph.linear[node][1]
    if isinstance(node, sympy.Piecewise):  # its pairs are read through, never stored
        return tuple(x for pair in node.args for x in pair.args)
    return node.args if not isinstance(node, ExprCondPair) else ()


def _gather(flat, dense):
    """The union of the rows that move any of `flat`'s (value, rows, values), and each one's
    values at every row of it (its value at θ where it does not move)."""
    rows = [r for _, r, _ in flat if r.size]
    if any(r is dense for r in rows):
        union = dense
    else:
        union = rows[0] if len(rows) == 1 else _union(np.concatenate(rows)) if rows else _NO_ROWS
    gathered = []
    for b, r, v in flat:
        if r is union:
            gathered.append(v)
            continue
        column = np.full(union.size, b)
        if r.size:
            column[_positions(union, r)] = v
        gathered.append(column)
    return union, gathered


def _moved_product(a, b, dense):
    """One product aᵢ·bᵢ of a bilinear node, at the point and at its rows."""
    (a0, ra, va), (b0, rb, vb) = a, b
    if ra is dense or rb is dense:
        # An activation that moves in every row times a weight that moves in a few (or in every
        # row too): the product at its value at θ, then at the weight's own rows — the same
        # floats as multiplying the gathered columns, without building them.
        if rb is dense and ra is not dense:
            (a0, ra, va), (b0, rb, vb) = (b0, rb, vb), (a0, ra, va)
        if rb is dense:
            return (a0 * b0, dense, va * vb)
        out = va * b0
        if rb.size:
            out[rb] = va[rb] * vb
        return (a0 * b0, dense, out)
    union, (va, vb) = _gather([a, b], dense)
    return (a[0] * b[0], union, va * vb if union.size else union)


def _moved_node(node, env, dense):
    if isinstance(node, ExprCondPair):
        return None  # read through by its Piecewise
    if node.is_Atom:
        return (_numpy_node(node, {}), _NO_ROWS, _NO_ROWS)
    parts = [[env[x] for x in pair.args] for pair in node.args] if isinstance(node, sympy.Piecewise) else None
    flat = [p for pair in parts for p in pair] if parts else [env[a] for a in node.args]
    union, gathered = _gather(flat, dense)

    def local(values):
        if parts:
            pairs = iter(values)
            return {pair: (next(pairs), next(pairs)) for pair in node.args}
        return dict(zip(node.args, values))

    base = _numpy_node(node, local([b for b, _, _ in flat]))
    if not union.size:
        return (base, union, union)
    values = np.broadcast_to(np.asarray(_numpy_node(node, local(gathered))), union.shape)
    return (base, union, values)


_NO_ROWS = np.zeros(0, np.int64)


def jacobian(
    outputs,
    symbols,
    values,
    definitions=None,
    digits: int = DIGITS,
    budget=None,
    exact: bool = False,
) -> np.ndarray:
    """d output_m / d symbol_n at `values`, by reverse accumulation over the graph (float64 result;
    with `exact`, the mpmath numbers themselves, for a difference of derivatives at nearby points).
    """
    index = {s: n for n, s in enumerate(symbols)}
    shape = (len(outputs), len(symbols))
    jac = np.full(shape, mpmath.mpf(0), dtype=object) if exact else np.zeros(shape)
    graph = _graph(outputs, definitions)
    with mpmath.workdps(digits):
        values = [v if isinstance(v, mpmath.mpf) else mpmath.mpf(float(v)) for v in values]
        env = _values(graph, symbols, values, budget)
        order, kids = graph.order, graph.kids
        depends = {}
        for node in order:
            depends[node] = node in index or any(depends[a] for a in kids[node])
        position = {node: i for i, node in enumerate(order)}
        for m, out in enumerate(outputs):
            adjoint, pending, pairs = {out: mpmath.mpf(1)}, {}, {}
            for node in order[position[out] :: -1] if out in position else ():
                bar = adjoint.pop(node, None)
                terms, complex_terms = pending.pop(node, None), pairs.pop(node, None)
                if terms is not None:  # the dot products' contributions, as one exact sum
                    total = dot.exact_sum(terms)
                    bar = total if bar is None else bar + total
                if complex_terms is not None:
                    total = mpmath.fdot(complex_terms)
                    bar = total if bar is None else bar + total
                if bar is None or not depends[node]:
                    continue
                if node in index:
                    jac[m, index[node]] = bar if exact else float(bar)
                    continue
                if budget is not None:
                    budget.check()
                linear = graph.linear.get(node)
                if linear is not None or isinstance(node, Bilinear):
                    # Σ cᵢ·aᵢ: each argument's adjoint grows by bar·cᵢ (Σ aᵢ·bᵢ: by bar·bᵢ and
                    # bar·aᵢ), the products exact, each adjoint's contributions summed once.
                    if linear is not None:
                        partials = [(a, c, None) for a, c in zip(linear[1], graph.coefficients(node))]
                    else:
                        lhs, rhs = node.halves
                        partials = [(a, _raw(env[b]), env[b]) for a, b in zip(lhs + rhs, rhs + lhs)]
                    raw = _raw(bar)
                    for a, c, value in partials:
                        if not depends[a]:
                            continue
                        if raw is not None and c is not None:
                            pending.setdefault(a, []).append(mpf_mul(raw, c))
                        else:  # a complex value: mpmath's own dot product
                            partial = value if value is not None else mpmath.mp.make_mpf(c)
                            pairs.setdefault(a, []).append((bar, partial))
                    continue
                if node in graph.definitions:
                    arg = graph.definitions[node]
                    adjoint[arg] = adjoint.get(arg, 0) + bar
                    continue
                for arg, partial in _local_derivatives(node, env, depends):
                    if depends[arg] and partial != 0:
                        adjoint[arg] = adjoint.get(arg, 0) + bar * partial
    return jac


# --- the graph, once per expression set ----------------------------------------------------


class _Graph:
    """The nodes reachable from some expressions, each after its arguments, with what the
    evaluations need; built once per (expressions, definitions) and kept for the next call.

    A sum Σ cᵢ·sᵢ of rationals times distinct symbols (a dot product of data with the program's
    values: W @ x has width × inputs of them) is one node here whose arguments are the symbols:
    its value is one `mpmath.fdot`, its adjoint bar·cᵢ per symbol, and the products cᵢ·sᵢ, most
    of the graph of a layer with a batch, are never visited one by one.
    """

    def __init__(self, exprs, definitions):
        self.definitions = definitions
        self.linear = {}  # node → (rationals, symbols)
        self.kids = {}
        order, stack = [], [(e, False) for e in reversed(exprs)]
        kids = self.kids
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in kids:
                continue
            if node in definitions:
                children = (definitions[node],)
            elif isinstance(node, Linear):
                self.linear[node] = (None, node.args)
                children = node.args
            elif isinstance(node, sympy.Add) and (linear := _linear_form(node)) is not None:
                self.linear[node] = linear
                children = linear[1]
            else:
                children = node.args
            kids[node] = children
            stack.append((node, True))
            stack.extend((a, False) for a in children if a not in kids)
        self.order = order
        self.envs = {}  # (digits, symbols) → (values, env) of the last full evaluation
        self._coefficients, self._floats = {}, {}
        self._parents = None

    def coefficients(self, node) -> list:
        """The linear node's coefficients as mpmath's raw numbers at the working precision (exact,
        and then the same at every precision, for the binary fractions that float data are)."""
        if isinstance(node, Linear):
            return node.mpf_coefficients()
        out = self._coefficients.get(node)
        if out is None or out[0] < mpmath.mp.prec:
            values = [_dyadic(c) for c in self.linear[node][0]]
            if all(v is not None for v in values):
                out = (math.inf, values)
            else:
                out = (mpmath.mp.prec, [_number(c)._mpf_ for c in self.linear[node][0]])
            self._coefficients[node] = out
        return out[1]

    def floats(self, node) -> list:
        """The linear node's rationals as floats."""
        if isinstance(node, Linear):
            return node.coefficients.tolist()
        out = self._floats.get(node)
        if out is None:
            out = self._floats[node] = [int(c.p) / int(c.q) for c in self.linear[node][0]]  # correctly rounded
        return out

    def dependents(self, changed) -> list:
        """The nodes that depend on any of `changed`, in evaluation order."""
        if self._parents is None:
            self._parents, self._position = {}, {}
            for i, node in enumerate(self.order):
                self._position[node] = i
                for a in self.kids[node]:
                    self._parents.setdefault(a, []).append(node)
        seen, stack = set(), list(changed)
        while stack:
            for parent in self._parents.get(stack.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return sorted(seen, key=self._position.__getitem__)


def _dyadic(c):
    """The rational c = p / 2^k as an exact mpmath number when p fits in 53 bits, else None."""
    p, q = int(c.p), int(c.q)
    if q & (q - 1) or p.bit_length() > 53:
        return None
    return from_float(p / q)  # a float, exactly


def _linear_form(node):
    """(rationals, symbols) when `node` is Σ cᵢ·sᵢ over distinct symbols, else None."""
    coefficients, symbols = [], []
    for term in node.args:
        if term.is_Symbol:
            c, symbol = sympy.S.One, term
        elif term.is_Mul and len(term.args) == 2 and term.args[0].is_Rational and term.args[1].is_Symbol:
            c, symbol = term.args
        else:
            return None
        coefficients.append(c)
        symbols.append(symbol)
    if len(symbols) < 2 or len(set(symbols)) < len(symbols):
        return None
    return tuple(coefficients), tuple(symbols)


_GRAPHS: list = []  # the last few graphs: [(expressions, definitions, graph)]
_GRAPHS_KEPT = 4


_NO_DEFINITIONS: dict = {}


def _graph(exprs, definitions) -> _Graph:
    definitions = definitions if definitions is not None else _NO_DEFINITIONS
    exprs = tuple(exprs)
    for e, d, graph in _GRAPHS:
        if d is definitions and e == exprs:
            return graph
    graph = _Graph(exprs, definitions)
    _GRAPHS.insert(0, (exprs, definitions, graph))
    del _GRAPHS[_GRAPHS_KEPT:]
    return graph


def _values(graph, symbols, values, budget):
    """Every node's mpmath value at `values` (working precision): from the graph's last full
    evaluation at this precision when only a few symbols differ from it (the one-sided
    differences at a kink move one element), else a full evaluation, kept for the next call."""
    key = (mpmath.mp.prec, tuple(symbols))
    cached = graph.envs.get(key)
    if cached is not None:
        old, env = cached
        changed = [s for s, a, b in zip(symbols, old, values) if a != b]
        if not changed:
            return env
        if len(changed) <= max(1, len(symbols) // 16):
            moved = set(changed)
            overlay = collections.ChainMap({s: v for s, v in zip(symbols, values) if s in moved}, env)
            for node in graph.dependents(changed):
                if budget is not None:
                    budget.check()
                overlay[node] = _mpmath_value(graph, node, overlay)
            return overlay
    env = dict(zip(symbols, values))
    for node in graph.order:
        if node in env:
            continue
        if budget is not None:
            budget.check()
        env[node] = _mpmath_value(graph, node, env)
    graph.envs[key] = (list(values), env)
    return env


def _mpmath_value(graph, node, env):
    if node in graph.definitions:
        return env[graph.definitions[node]]
    linear = graph.linear.get(node)
    if linear is not None and not isinstance(node, Linear):
        values = [env[a] for a in linear[1]]
        raw = [_raw(v) for v in values]
        if all(r is not None for r in raw):
            return dot.exact_sum([mpf_mul(c, r) for c, r in zip(graph.coefficients(node), raw)])
        return mpmath.fdot([mpmath.mp.make_mpf(c) for c in graph.coefficients(node)], values)
    return _mpmath_node(node, env)


def _raw(value):
    """mpmath's raw number of a real mpf, None for anything else (a complex value)."""
    return getattr(value, "_mpf_", None)


# --- forward evaluation --------------------------------------------------------------------


def _forward(exprs, symbols, values, backend, budget, definitions=None) -> dict:
    definitions = definitions or {}
    env = dict(zip(symbols, values))
    for node in topological(exprs, definitions):
        if node in env:
            continue
        if budget is not None:
            budget.check()
        env[node] = env[definitions[node]] if node in definitions else backend(node, env)
    return env
