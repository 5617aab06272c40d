"""Derivatives as SymPy expressions: reverse accumulation over the expression graph in symbols
instead of numbers (`_graph.jacobian` does it in numbers). The result shares the program's
subexpressions, so it can be differentiated again: the exact method's higher orders and
Hessian-vector products are built here."""

from __future__ import annotations

import sympy
from sympy.core.relational import Relational
from sympy.functions.elementary.piecewise import ExprCondPair

from ._dot import Bilinear, Linear
from ._graph import topological
from ._nodes import _partial_expression


def expressions(output, symbols, definitions=None) -> list:
    """d output / d symbol_n for every symbol, as SymPy expressions built by reverse accumulation.

    The same chain rule as `_graph.jacobian`, in symbols instead of numbers: each node contributes SymPy's
    derivative of its own function, and the result shares the program's subexpressions, so it can
    be differentiated again (higher orders) without ever writing a tree out.
    """
    definitions = definitions or {}
    index = set(symbols)
    order = topological([output], definitions)
    depends = _depends(order, index, definitions)
    adjoint, result = {output: [sympy.S.One]}, {}
    for node in reversed(order):
        terms = adjoint.pop(node, None)
        if not terms or not depends[node]:
            continue
        bar = sympy.Add(*terms)
        if node in index:
            result[node] = bar
            continue
        if node in definitions:
            adjoint.setdefault(definitions[node], []).append(bar)
            continue
        for arg, partial in _local_derivative_expressions(node, depends):
            if depends[arg] and partial != 0:
                adjoint.setdefault(arg, []).append(bar * partial)
    return [result.get(s, sympy.S.Zero) for s in symbols]


def _local_derivative_expressions(node, depends):
    args = node.args
    if isinstance(node, Linear):
        return list(zip(args, node.rationals()))
    if isinstance(node, Bilinear):
        lhs, rhs = node.halves
        return list(zip(lhs + rhs, rhs + lhs))
    if isinstance(node, sympy.Add):
        return [(a, sympy.S.One) for a in args]
    if isinstance(node, sympy.Mul):
        return [(a, sympy.Mul(*(args[:i] + args[i + 1 :]))) for i, a in enumerate(args)]
    if isinstance(node, sympy.Pow):
        base, exponent = args
        out = [(base, exponent * base ** (exponent - 1))]
        if exponent.free_symbols:
            out.append((exponent, node * sympy.log(base)))
        return out
    if isinstance(node, sympy.Piecewise):
        # Branch i carries the derivative where its condition is the first to hold.
        out = []
        for i, pair in enumerate(args):
            earlier = [(sympy.S.Zero, p.cond) for p in args[:i]]
            out.append((pair.expr, sympy.Piecewise(*earlier, (sympy.S.One, pair.cond), (sympy.S.Zero, True))))
        return out
    if isinstance(node, (Relational, sympy.logic.boolalg.Boolean, ExprCondPair, sympy.im)):
        return []
    if isinstance(node, sympy.re):
        return [(args[0], sympy.S.One)]
    if isinstance(node, sympy.DiracDelta):  # its order is an integer, not a variable
        return [(args[0], sympy.DiracDelta(args[0], (args[1] if len(args) > 1 else 0) + 1))]
    out = []
    for i, a in enumerate(args):
        if depends[a]:  # e.g. not DiracDelta's order, Heaviside's value at 0
            dummies, derivative = _partial_expression(type(node), len(args), i)
            out.append((a, derivative.xreplace(dict(zip(dummies, args)))))
    return out


def _depends(order, index, definitions) -> dict:
    depends = {}
    for node in order:
        children = (definitions[node],) if node in definitions else node.args
        depends[node] = node in index or any(depends[a] for a in children)
    return depends
