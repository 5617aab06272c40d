"""The program's nodes at a point and at rows that each move one element of it (a stencil's
ends), in float64: each node evaluated at the point and only at the rows that move a symbol it
depends on — the floats of `_graph.evaluate_float` at those points, bit for bit.

`_kinks.stencil_kinks` reads each kink argument's signs at a stencil's ends from here.
"""

from __future__ import annotations

import numpy as np
import sympy
from sympy.functions.elementary.piecewise import ExprCondPair

from ._dot import Bilinear, Linear
from ._graph import _graph
from ._nodes import _numpy_node, _pairwise, _pairwise_levels
from .errors import BudgetExceeded

#: Most bytes of moved rows the stencil's evaluation holds at once before the exact method gives up.
MOVED_BYTES = 1 << 30


def evaluate(exprs, symbols, theta, where, to, definitions=None) -> tuple[np.ndarray, np.ndarray]:
    """Each expression in float64 at the point `theta` and at R moved points, row r being `theta`
    with element `where[r]` set to `to[r]`; returns (values at theta (E,), values at the rows (R, E)).

    A node changes only in the rows that move a symbol it depends on, so each node is evaluated
    at the point and at those rows alone: for a stencil (two rows per parameter) the cost is the
    sum over nodes of their symbols, not nodes × rows, and a node is freed after its last use.
    """
    at = np.zeros(len(exprs))
    out = np.zeros((len(where), len(exprs)))

    def consume(k, value):
        base, rows, vals = value
        at[k] = base
        out[:, k] = base
        out[rows, k] = vals

    moved(exprs, symbols, theta, where, to, definitions, consume)
    return at, out


def moved(exprs, symbols, theta, where, to, definitions, consume):
    """Runs the sparse evaluation of `evaluate`, handing each expression's (value at θ,
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
    _, freed, last = graph.lifetimes()
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
                if value is not None and (np.iscomplexobj(value[0]) or np.iscomplexobj(value[2])):
                    sums.complex.add(node)
                for k in wanted.get(node, ()):
                    consume(k, value)
                if node not in last:  # an expression no other node uses: done with once consumed
                    env.pop(node, None)
                    live -= counted.pop(node, 0)
            for a in freed[i]:
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
        args = linear[1]
        terms = [(c, env[a]) for c, a in zip(graph.floats(node), args)]
    elif isinstance(node, Bilinear):
        lhs, rhs = node.halves
        args = lhs + rhs
        pairs = [(env[a], env[b]) for a, b in zip(lhs, rhs)]
        if sums.real(args):
            base = _pairwise_levels(np.array([x[0] * y[0] for x, y in pairs], dtype=np.float64))[-1][0]
            if any(x[1] is dense or y[1] is dense for x, y in pairs):
                return (base, dense, sums.add(len(pairs), lambda i, out: _write_product(*pairs[i], dense, out)))
            value = _products(pairs, base, sums)
            if value is not None:
                return value
        terms = [(None, _moved_product(x, y, dense)) for x, y in pairs]
    else:
        args = node.args
        terms = [(None, env[a]) for a in args]
    if any(t[1] is dense for _, t in terms) and sums.real(args):
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
    sum (a dense dot product's own arrays were most of the kink search's time). Also the nodes
    whose values are complex (none of this is for them) and a row index for `union`."""

    def __init__(self, total):
        self.rows = np.empty((2, total))
        self.index = np.zeros(total, np.int64)
        self.complex = set()

    def real(self, nodes) -> bool:
        return not self.complex or self.complex.isdisjoint(nodes)

    def union(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """The distinct `rows`, sorted, and where each of `rows` sits among them: by a mask over
        every row when they are many (sorting 20,000 rows of a layer's factors took 0.2 ms)."""
        total = self.index.size
        if rows.size * 16 < total:
            union = _union(rows)
            return union, np.searchsorted(union, rows)
        mask = np.zeros(total, bool)
        mask[rows] = True
        union = np.flatnonzero(mask)
        self.index[union] = np.arange(union.size)
        return union, self.index[rows]

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


#: Most entries of a (terms × rows) array of one sum's values at the rows that move it.
MATRIX_ENTRIES = 1 << 22


def _products(pairs, base, sums):
    """Σ aᵢ·bᵢ, no factor moving in every row, at the rows that move any: every factor's values
    there as one (factors × rows) array, the products and their pairwise sums in a few array
    operations (a product at a time, each gathering its own rows, took 3 ms a node); None when
    that array would be too large."""
    factors = [f for pair in pairs for f in pair]  # a₀, b₀, a₁, b₁, …
    moving = [(k, r, v) for k, (_, r, v) in enumerate(factors) if r.size]
    if not moving:
        return (base, _NO_ROWS, _NO_ROWS)
    union, positions = sums.union(np.concatenate([r for _, r, _ in moving]))
    if len(factors) * union.size > MATRIX_ENTRIES:
        return None
    values = np.repeat(np.array([b for b, _, _ in factors], np.float64)[:, None], union.size, axis=1)
    which = np.repeat([k for k, _, _ in moving], [r.size for _, r, _ in moving])
    values[which, positions] = np.concatenate([v for _, _, v in moving])
    return (base, union, _pairwise_rows(values[0::2] * values[1::2]))


def _pairwise_rows(terms: np.ndarray) -> np.ndarray:
    """`_pairwise` down the first axis of a (terms × rows) array: the same sums, row by row."""
    while terms.shape[0] > 1:
        half = terms.shape[0] // 2
        paired = terms[0 : 2 * half : 2] + terms[1 : 2 * half : 2]
        terms = np.concatenate([paired, terms[-1:]]) if terms.shape[0] % 2 else paired
    return terms[0]


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
