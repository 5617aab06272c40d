"""The exact method's driver: translate the program, check the translation's value against the
program's own, and differentiate it exactly — by reverse accumulation over the expression graph
(`_graph`), each node differentiated by SymPy, never by JAX's rules."""

from __future__ import annotations

import functools
import re
from traceback import format_exc
from typing import NamedTuple

import numpy as np
import sympy

from . import _gradient as gradient
from . import _graph as graph
from . import _translate as translate
from ._kinks import Kinks
from ._options import raise_internal_errors
from ._primitives import StopGradient, to_sympy
from ._records import OK, State, Status, unavailable
from .errors import BudgetExceeded, Unavailable


class Program(NamedTuple):
    """The exact program at the point, kept for the precision audit (`_precision`): it
    differentiates the derivative once more, and evaluates the program node by node."""

    level: list  # the expressions whose Jacobian is the derivative checked
    symbols: list  # one per parameter element
    definitions: dict  # let-bound symbols → their expressions
    origins: dict  # let-bound symbol → (primitive, source line)
    point: np.ndarray  # the flat parameters
    values: np.ndarray  # every output's exact value (float64)
    eps: float  # the epsilon of the least precise float the program rounds to


class Exact(NamedTuple):
    """What the exact method found at the point."""

    status: Status
    value: float | None  # the function's first output, exactly (None when it did not run)
    jacobian: np.ndarray | None  # the exact derivative checked (rows × parameters), or None
    kinks: Kinks
    # Why finite differences and the complex step cannot be compared with autodiff anywhere here
    # ("" when they can): a stop_gradient on a differentiated path is a constant to autodiff and
    # the exact method, by design, but not to the function's values that the estimates difference.
    estimates_blind: str = ""
    traceback: str | None = None  # an internal error's, kept for the report
    program: Program | None = None  # for the precision audit, when the exact derivative was computed


#: Exact results by what determines them (`remembered`), the newest last.
_REMEMBERED: dict = {}
_REMEMBERED_KEPT = 64


def remembered(key, compute) -> Exact:
    """`compute()`, or the result it gave for `key` before: a program checked again at the same
    point (a test suite's check run again, a notebook cell) is the same SymPy program, and its
    exact result a function of the key alone. `key` None: not remembered. Only results that ran
    to the end are kept (a time-out depends on the budget, not on the key)."""
    if key is None:
        return compute()
    if key in _REMEMBERED:
        exact = _REMEMBERED[key] = _REMEMBERED.pop(key)
    else:
        exact = compute()
        if exact.status.state not in (State.OK, State.REJECTED, State.UNAVAILABLE):
            return exact
        while len(_REMEMBERED) >= _REMEMBERED_KEPT:
            _REMEMBERED.pop(next(iter(_REMEMBERED)))
        _REMEMBERED[key] = exact
    jac = None if exact.jacobian is None else exact.jacobian.copy()  # the caller's to change
    return exact._replace(jacobian=jac)


def exact_method(fn, leaves, names, data, numeric, translation, timeout, route, end=None) -> Exact:
    """The exact method at the point: its status, the function's exact value, the exact derivative
    (or None) and the kinks, for the derivative `numeric.plan` checks.

    route "graph" (default) applies the chain rule backwards over the expression graph, each node
    differentiated by SymPy; "expression" differentiates each whole output expression with
    `sympy.diff` per parameter — exact too, but its cost grows with expression size × parameters.
    """
    budget = translate.Budget(timeout)
    if end is not None:  # the point's budget, which the numeric methods began to spend
        budget.deadline = min(budget.deadline, end)
    point = np.concatenate([leaf.reshape(-1) for leaf in leaves])
    try:
        if translation is None:
            translation = translate.translate(functools.partial(fn, **data), leaves, symbol_names(names), budget)
        outputs = [e for out in translation.outputs for e in out.reshape(-1)]
        symbols = [s for sym in translation.symbols for s in sym.reshape(-1)]
        lets = translation.definitions
        f_sym = np.array([float(v) for v in graph.evaluate(outputs, symbols, point, lets, budget=budget)])
        value = float(f_sym[0]) if f_sym.size else None
        eps = max(translation.eps, numeric.value_eps)
        mismatch = value_mismatch(f_sym, numeric.f64, eps, numeric.f32)
        if mismatch:
            # Cancellation of large intermediates (softplus(35) − 35 = 6e-16 exactly, 0 in float64)
            # is invisible in both precisions: allow rounding of the largest value the program computes.
            nodes = graph.topological(outputs, lets)
            inner = np.abs(graph.evaluate_float(nodes, symbols, point[None, :], lets))
            magnitude = float(np.max(inner[np.isfinite(inner)], initial=0.0))
            mismatch = value_mismatch(f_sym, numeric.f64, eps, numeric.f32, magnitude)
        if mismatch and _float_loss(outputs, symbols, point, lets, f_sym, numeric.f64):
            mismatch = ""  # the translation is the program; the float program loses digits (`_precision`)
        if mismatch:
            return Exact(Status(State.REJECTED, mismatch), value, None, Kinks.none())
        level = derivative_expressions(outputs, symbols, numeric.plan, budget, lets)
        blind = _stopped(outputs, symbols, lets)
        cancels, differentiated = False, level
        if route == "graph":
            stopped = [] if blind else None
            jac = graph.jacobian(level, symbols, point, lets, budget=budget, stopped=stopped)
            cancels = bool(blind) and _cancels(stopped, jac)
            blind = "" if cancels else blind
        else:
            differentiated = translate.inline(level, lets)
            jac_exprs = translate.jacobian([np.array(differentiated, dtype=object)], translation.symbols, budget)
            jac = np.array([float(v) for v in translate.evaluate(jac_exprs, translation.symbols, leaves)])
            jac = jac.reshape(jac_exprs.shape)
        # Kinks of what is differentiated: the outputs at order 1, their derivatives above it. Where
        # the stopped values change no output (softmax's max), their kinks are none of the function's.
        steps = numeric.finished().steps  # the stencil's: waits for the finite differences' thread
        kinks = Kinks.find(level, symbols, point, steps, lets, stopped=not cancels)
        program = Program(differentiated, symbols, lets, translation.origins, point, f_sym, eps)
        return Exact(OK, value, jac, kinks, blind, program=program)
    except BudgetExceeded as exc:
        return Exact(Status(exc.state, exc.reason), None, None, Kinks.none())
    except Unavailable as exc:
        return Exact(unavailable(str(exc)), None, None, Kinks.none())
    except Exception as exc:  # noqa: BLE001 - a bug in the exact method costs its vote, not the point
        if raise_internal_errors():
            raise
        message = f"internal error in diffcheck's exact method (please report): {type(exc).__name__}: {exc}"
        return Exact(unavailable(message.splitlines()[0]), None, None, Kinks.none(), traceback=format_exc())


def derivative_expressions(outputs, symbols, plan, budget, lets) -> list:
    """The expressions whose Jacobian is the derivative checked (the outputs themselves at order 1)."""
    level = list(outputs)
    if plan.directions is None and plan.weights is not None:  # order 1: random output combinations
        return [sympy.Add(*[to_sympy(w) * e for w, e in zip(weights, level)]) for weights in plan.weights]
    if plan.directions is not None:
        out = []
        for d, direction in enumerate(plan.directions):
            scalar = (
                level[0]
                if plan.weights is None
                else sympy.Add(*[to_sympy(w) * e for w, e in zip(plan.weights[d], level)])
            )
            grad = gradient.expressions(scalar, symbols, lets)
            out.append(sympy.Add(*[g * to_sympy(v) for g, v in zip(grad, direction)]))
        return out
    for _ in range(plan.order - 1):
        budget.check()
        level = [g for expr in level for g in gradient.expressions(expr, symbols, lets)]
    return level


def _stopped(outputs, symbols, lets) -> str:
    """Why the estimates are blind here: a stop_gradient whose argument depends on the parameters."""
    symbols = set(symbols)
    for node in graph.topological(outputs, lets):
        if isinstance(node, StopGradient) and any(n in symbols for n in graph.topological(node.args, lets)):
            return "finite differences not compared: a stop_gradient on the path is a constant to autodiff only"
    return ""


def _cancels(stopped, jac) -> bool:
    """Whether the stopped values change no output here: each output's adjoint at every
    stop_gradient is zero but for the 30-digit evaluation's rounding (softmax's max: the output
    is shift invariant), so the function's values — what finite differences see — have the
    derivative autodiff and the exact method give, and the estimates can be compared."""
    scales = np.max(np.abs(jac), axis=1, initial=0.0)
    return all(bar == 0 or bar <= 1e-20 * scale for bar, scale in zip(stopped, scales))


def value_mismatch(f_sym, f_jax, eps, f32=None, magnitude=0.0) -> str:
    """Why the translation's function value differs from JAX's (float64), or '' when it agrees.

    A translation bug is an O(1) error; 1e-9 relative (or 1000 eps of a float the program rounds
    to inside) leaves room for JAX's own rounding in float64. `f32`, the same program in float32,
    measures cancellation inside it (softplus(35) − 35 is 6e-16 exactly, 0 in float64): its
    distance from float64, scaled to float64's epsilon, widens the room by as much. `magnitude`,
    the largest intermediate value, allows 1000 float64 rounding errors of it.
    """
    if f_sym.shape != f_jax.shape:
        return f"the translation has {f_sym.size} outputs, JAX {f_jax.size}"
    scale = np.abs(f_jax).max(initial=0.0)
    tol = max(1e-9, 1e3 * eps) * (np.abs(f_jax) + scale) + 1e-300
    if f32 is not None and f32.shape == f_jax.shape:
        ratio = np.finfo(np.float64).eps / np.finfo(np.float32).eps
        spread = np.abs(f32 - f_jax)
        tol = tol + 1e3 * ratio * np.where(np.isfinite(spread), spread, 0.0)
    tol = tol + 1e3 * np.finfo(np.float64).eps * magnitude
    bad = np.flatnonzero(~(np.abs(f_sym - f_jax) <= tol))
    if bad.size:
        i = int(bad[0])
        return f"its function value {f_sym[i]:.17g} differs from JAX's {f_jax[i]:.17g} (output {i})"
    return ""


def _float_loss(outputs, symbols, point, lets, f_sym, f_jax) -> bool:
    """Whether the translation, evaluated in float64 node by node, reproduces JAX's value where it
    differs from the exact one — 100 times closer to JAX's than to the exact value at every output
    that differs: then the difference is the float program's own loss of digits (log(1 − σ(30))
    keeps 4 of them), not a translation bug, which would be as far from JAX's value in float as exactly."""
    if f_jax.shape != f_sym.shape:
        return False
    floats = graph.evaluate_float(outputs, symbols, point[None, :], lets)[0]
    differ = f_jax != f_sym
    return bool(np.all(np.abs(floats - f_jax)[differ] * 100 <= np.abs(floats - f_sym)[differ]))


def symbol_names(names) -> list[str]:
    out = []
    for i, name in enumerate(names):
        clean = re.sub(r"\W+", "_", name).strip("_") or "p"
        out.append(clean if clean.isidentifier() else f"p{i}_{clean}")
    return out


def expression_translation(case, data) -> translate.Translation:
    """A case written as a SymPy expression (`Case.from_sympy`) is its own translation."""
    # Data symbols become their values (exactly, as binary rationals); parameters become real symbols.
    symbols = {p: sympy.Symbol(translate.PREFIX + p, real=True) for p in case.wrt}
    subs = {}
    for s in case.expr.free_symbols:
        if s.name in data:
            subs[s] = to_sympy(float(data[s.name]))
        elif s.name in symbols:
            subs[s] = symbols[s.name]
    return translate.from_expression(case.expr.xreplace(subs), list(symbols.values()))


def departure(fn, leaves, names, data, output: int, timeout=None) -> str:
    """Why the float program is not finite where the mathematics is: the output's exact value, and
    the first value the program computes that is not finite in float64 while its exact value is,
    with its primitive and source line. "" when the exact program is not finite there either, or
    cannot say."""
    try:
        budget = translate.Budget(timeout)
        tr = translate.translate(functools.partial(fn, **data), leaves, symbol_names(names), budget)
        symbols = [s for sym in tr.symbols for s in sym.reshape(-1)]
        point = np.concatenate([np.ravel(leaf) for leaf in leaves])
        outputs = [e for out in tr.outputs for e in out.reshape(-1)]
        exact = _real(graph.evaluate([outputs[output]], symbols, point, tr.definitions, budget=budget)[0])
        if not np.isfinite(exact):
            return ""
        nodes = list(tr.definitions)
        floats = graph.evaluate_float(nodes, symbols, point[None, :], tr.definitions)[0]
        for k in np.flatnonzero(~np.isfinite(floats)):
            truth = _real(graph.evaluate([nodes[k]], symbols, point, tr.definitions, budget=budget)[0])
            if np.isfinite(truth):
                primitive, where = tr.origins.get(nodes[k], ("?", ""))
                at = f" ({where})" if where else ""
                return (
                    f"its exact value is {exact:.17g}: the float program departs at {primitive}{at}, "
                    f"{floats[k]} in float64 where its exact value is {truth:.17g}"
                )
        return f"its exact value is {exact:.17g}"
    except Exception:  # noqa: BLE001 - the diagnosis is a courtesy: the point's error stands without it
        return ""


def _real(value) -> float:
    value = complex(value)
    return value.real if value.imag == 0 else float("nan")
