"""One node of the expression graph at a time: its value (in mpmath at high precision, or in NumPy
over many points) and its local derivatives, from SymPy's own derivative of the node's function."""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import sympy
from sympy.core.relational import Relational
from sympy.functions.elementary.piecewise import ExprCondPair

from . import _dot as dot
from ._primitives import NUMERIC, STEP_DERIVATIVES
from .errors import Unavailable


def _pairwise_levels(terms: np.ndarray) -> list:
    """The partial sums of a pairwise sum, level by level: terms, pair sums, …, [total]."""
    levels = [terms]
    while levels[-1].size > 1:
        level = levels[-1]
        paired = level[: level.size - 1 : 2] + level[1::2]
        levels.append(np.concatenate([paired, level[-1:]]) if level.size % 2 else paired)
    if not levels[-1].size:
        levels.append(np.zeros(1))
    return levels


def _pairwise(values):
    """Σ values added in pairs, then pairs of pairs (scalars or arrays): the float64 sum of every
    `Add` in `_graph.evaluate_float` and `_rows.evaluate`, which a moved row can update along one path."""
    values = list(values)
    while len(values) > 1:
        paired = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            paired.append(values[-1])
        values = paired
    return values[0]


@functools.cache
def _partial_expression(func, nargs: int, i: int):
    dummies = sympy.symbols(f"a0:{nargs}", real=True)
    if func in STEP_DERIVATIVES:  # SymPy leaves these unevaluated: zero away from the jump
        return dummies, STEP_DERIVATIVES[func](dummies[0])
    try:
        derivative = func(*dummies).fdiff(i + 1)
    except sympy.core.function.ArgumentIndexError:
        derivative = sympy.S.Zero
    except Exception as exc:  # noqa: BLE001
        raise Unavailable(f"SymPy has no derivative of {func.__name__}: {exc}") from None
    if derivative.has(sympy.Derivative, sympy.Subs):
        raise Unavailable(f"SymPy has no closed-form derivative of {func.__name__}")
    return dummies, derivative


# --- forward evaluation --------------------------------------------------------------------


def _number(node):
    if node is sympy.true or node is sympy.false:
        return bool(node)
    if isinstance(node, sympy.Integer):
        return mpmath.mpf(int(node))
    if isinstance(node, sympy.Rational):
        return mpmath.mpf(int(node.p)) / int(node.q)
    if node is sympy.oo:
        return mpmath.inf
    if node is -sympy.oo:
        return -mpmath.inf
    if node is sympy.nan:
        return mpmath.nan
    return mpmath.mpf(sympy.N(node, mpmath.mp.dps + 5)._mpf_)


def _piecewise(node, env, select):
    # The first pair whose condition holds gives the value (SymPy's semantics).
    pairs = [env[pair] for pair in node.args]
    return select(pairs)


def _mpmath_select(pairs):
    for value, condition in pairs:
        if condition:
            return value
    return mpmath.nan


def _numpy_select(pairs):
    conditions = [np.asarray(c, bool) for _, c in pairs]
    return np.select(conditions, [v for v, _ in pairs], default=np.nan)


def _mpmath_node(node, env):
    if node.is_Atom:
        if node.is_Symbol:
            raise Unavailable(f"no value for symbol {node}")
        return _number(node)
    if isinstance(node, (dot.Linear, dot.Bilinear)):
        return dot.mpmath_value(node, env)
    args = [env[a] for a in node.args]
    if isinstance(node, sympy.Add):
        return mpmath.fsum(args)
    if isinstance(node, sympy.Mul):
        return mpmath.fprod(args)
    if isinstance(node, sympy.Pow):
        return _power(*args)
    if isinstance(node, sympy.Piecewise):
        return _piecewise(node, env, _mpmath_select)
    if isinstance(node, ExprCondPair):
        return tuple(args)
    if type(node) in _LOGIC:
        return _LOGIC[type(node)](args)
    try:
        return _function(type(node), len(args), "mpmath")(*args)
    except (ValueError, ZeroDivisionError, OverflowError):
        return mpmath.nan


def _power(base, exponent):
    if base < 0 and not mpmath.isint(exponent):
        return mpmath.nan  # outside the real domain
    if base == 0 and exponent < 0:
        return mpmath.inf
    return mpmath.power(base, exponent)


def _numpy_node(node, env):
    if node.is_Atom:
        return float(_number(node)) if not isinstance(node, sympy.logic.boolalg.BooleanAtom) else bool(node)
    args = [env[a] for a in node.args]
    if isinstance(node, (dot.Linear, dot.Bilinear)):
        return _pairwise(dot.terms(node, args))
    if isinstance(node, sympy.Add):
        return _pairwise(args)
    if isinstance(node, sympy.Mul):
        return functools.reduce(np.multiply, args)
    if isinstance(node, sympy.Pow):
        return np.power(np.asarray(args[0], np.float64), args[1])
    if isinstance(node, sympy.Piecewise):
        return _piecewise(node, env, _numpy_select)
    if isinstance(node, ExprCondPair):
        return tuple(args)
    if type(node) in _LOGIC:
        return _NUMPY_LOGIC[type(node)](args)
    return _function(type(node), len(args), "numpy")(*args)


_MPMATH, _NUMPY = _mpmath_node, _numpy_node

_LOGIC = {sympy.And: all, sympy.Or: any, sympy.Not: lambda a: not a[0]}
_NUMPY_LOGIC = {
    sympy.And: lambda a: np.logical_and.reduce([np.asarray(x, bool) for x in a]),
    sympy.Or: lambda a: np.logical_or.reduce([np.asarray(x, bool) for x in a]),
    sympy.Not: lambda a: np.logical_not(a[0]),
}


@functools.cache
def mpmath_namespace() -> dict:
    """Names lambdify needs beyond mpmath's own: our functions, Heaviside, DiracDelta, …"""
    return {f.__name__: fn for f, fn in NUMERIC["mpmath"].items()}


@functools.cache
def _function(func, nargs: int, module: str):
    """A numeric version of one SymPy function class (exp, tanh, erf, Lt, And, …)."""
    special = NUMERIC[module].get(func)
    if special is not None:
        return special
    dummies = sympy.symbols(f"a0:{nargs}", real=True)
    try:
        expr = func(*dummies)
    except Exception as exc:  # noqa: BLE001
        raise Unavailable(f"cannot evaluate {func.__name__}: {exc}") from None
    if module == "mpmath":
        return sympy.lambdify(dummies, expr, modules="mpmath")
    fn = sympy.lambdify(dummies, expr, modules=_numpy_modules(expr))
    vectorised = np.vectorize(fn, otypes=[np.float64])

    def call(*args):
        try:
            return fn(*args)
        except TypeError:  # a scalar-only function (math.*): one point at a time
            return vectorised(*args)

    return call


def _numpy_modules(expr) -> list:
    """NumPy alone where it has the function; scipy.special (vectorised erf, gamma, …) only where
    it is needed: importing it takes about 0.3 s of a cold start."""
    from sympy.printing.numpy import NumPyPrinter

    try:
        plain = "math." not in NumPyPrinter().doprint(expr)  # math.erf: scalars only
    except Exception:  # noqa: BLE001 - NumPy has no such function
        plain = False
    return ["numpy"] if plain else ["scipy", "numpy"]


# --- local derivatives ---------------------------------------------------------------------


def _local_derivatives(node, env, depends):
    """(argument, ∂node/∂argument at the point) for each argument that carries a derivative."""
    args = node.args
    if isinstance(node, sympy.Add):
        return [(a, 1) for a in args]
    if isinstance(node, sympy.Mul):
        values = [env[a] for a in args]
        out = []
        for i, a in enumerate(args):
            out.append((a, mpmath.fprod(values[:i] + values[i + 1 :])))
        return out
    if isinstance(node, sympy.Pow):
        base, exponent = args
        b, e = env[base], env[exponent]
        out = [(base, e * _power(b, e - 1) if e != 0 else 0)]
        if exponent.free_symbols:
            out.append((exponent, env[node] * mpmath.log(b) if b > 0 else mpmath.nan))
        return out
    if isinstance(node, sympy.Piecewise):
        for pair in args:
            if env[pair][1]:
                return [(pair.args[0], 1)]
        return []
    if isinstance(node, (Relational, sympy.logic.boolalg.Boolean, ExprCondPair)):
        return []  # conditions select branches; they carry no derivative
    if isinstance(node, sympy.re):
        return [(args[0], 1)]  # of a real argument: the identity
    if isinstance(node, sympy.DiracDelta):  # zero off the jump, undefined on it
        return [(args[0], mpmath.mpf(0) if env[args[0]] != 0 else mpmath.nan)]
    if isinstance(node, sympy.im):
        return []
    values = [env[a] for a in args]
    return [(a, _partial(type(node), len(args), i)(*values)) for i, a in enumerate(args) if depends[a]]


@functools.cache
def _partial(func, nargs: int, i: int):
    """∂func/∂(argument i) as a numeric function, from SymPy's own derivative of `func`."""
    dummies, derivative = _partial_expression(func, nargs, i)
    return sympy.lambdify(dummies, derivative, modules=[mpmath_namespace(), "mpmath"])
