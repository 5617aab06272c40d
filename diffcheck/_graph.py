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
)
from ._rules import StopGradient

#: Significant decimal digits of the high-precision evaluation of the exact values.
DIGITS = 30


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


def _children(node, graph):
    if node in graph.definitions:
        return (graph.definitions[node],)
    if node in graph.linear:
        return graph.linear[node][1]
    if isinstance(node, sympy.Piecewise):  # its pairs are read through, never stored
        return tuple(x for pair in node.args for x in pair.args)
    return node.args if not isinstance(node, ExprCondPair) else ()


def jacobian(
    outputs,
    symbols,
    values,
    definitions=None,
    digits: int = DIGITS,
    budget=None,
    exact: bool = False,
    stopped: list | None = None,
) -> np.ndarray:
    """d output_m / d symbol_n at `values`, by reverse accumulation over the graph (float64 result;
    with `exact`, the mpmath numbers themselves, for a difference of derivatives at nearby points).
    `stopped`: a list that gets, per output, the largest |adjoint| at a stop_gradient that depends
    on the symbols — what the output would gain per unit of the stopped value if it were not
    stopped (0 for softmax's max, which cancels).
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
            worst = mpmath.mpf(0)
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
                if stopped is not None and isinstance(node, StopGradient):
                    worst = max(worst, abs(bar))
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
            if stopped is not None:
                stopped.append(float(worst))
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
        self._lifetimes = None

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

    def lifetimes(self) -> tuple[list, list, dict]:
        """For each node in evaluation order, its arguments (`_children`) and the nodes whose last
        use it is; and each used node's last use: what an evaluation that frees its values as it
        goes needs, walked once per graph (each walk hashes every edge's SymPy node)."""
        if self._lifetimes is None:
            children = [_children(node, self) for node in self.order]
            last = {}
            for i, kids in enumerate(children):
                for a in kids:
                    last[a] = i
            freed = [[] for _ in self.order]
            for a, i in last.items():
                freed[i].append(a)
            self._lifetimes = (children, freed, last)
        return self._lifetimes

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
