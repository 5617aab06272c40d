"""Precision: how many digits autodiff really has, and whether the loss was the problem's or the formula's.

The error model (`_compare`) asks whether autodiff is *right*: within the rounding measured in the
program itself. A formula that cancels (`ans · (1 − ans)` for σ′ at x = 17) inflates that rounding
in float32 and float64 alike, so it passes. The exact value shows the loss, and the exact program
says whether it was forced: element J of the derivative, computed from inputs θ that carry a
relative rounding of eps each, cannot be known better than

    condition · eps,   condition = Σⱼ |θⱼ · ∂J/∂θⱼ| / |J| + 1   (the 1: J's own final rounding),

and ∂J/∂θⱼ is the exact method's derivative of the exact derivative. An error more than `MARGIN`
times that is avoidable precision loss: `Verdict.IMPRECISE`, a warning (a failure under
precision="strict"). The same test on the function's own value uses the exact gradient, already
at hand. Then the float program is evaluated node by node against the exact one, and the first
operation whose result lost the digits is named with its source line.

Only elements already suspicious — an error over `MARGIN` · eps, what the smallest condition
number (1) allows — are differentiated again, at most `MAX_AUDITED` per point: a correct,
well-conditioned gradient costs nothing here.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np

from . import _graph as graph
from . import _translate as translate
from ._compare import relative_digits
from ._options import raise_internal_errors
from ._records import Method, Precision, Verdict, format_index
from .errors import BudgetExceeded

#: How far past what the problem allows an error must be to count as avoidable. A stable
#: evaluation of k operations loses at most about k roundings on top of the problem's condition
#: number; 10³ leaves room for programs of hundreds of operations (and sums of that many terms)
#: while a cancelling formula loses 10⁶ and more (σ′ at 17: 10⁷; tanh′ at 8: 10⁵).
MARGIN = 1e3

#: Most elements per point whose condition number is computed (the most suspicious first).
MAX_AUDITED = 16

#: Seconds per point the condition numbers may take; past them the rest is not judged (never accused).
AUDIT_SECONDS = 5.0

#: Most elements per point whose loss is traced to the operation that caused it.
MAX_LOCATED = 4

#: The precision modes: "warn" (default) reports avoidable loss, "strict" fails it.
MODES = ("warn", "strict")


def dtype_digits(dtype) -> float:
    """The most correct digits a value of `dtype` holds: −log10 of its unit roundoff (15.95 for
    float64, 7.22 for float32)."""
    return -math.log10(float(np.finfo(dtype).eps) / 2)


def capped(elements, dtype) -> list:
    """The elements with each method's digits against the exact value capped at the dtype's."""
    cap = dtype_digits(dtype)
    return [
        dataclasses.replace(e, digits={m: min(d, cap) for m, d in e.digits.items()})
        if any(d > cap for d in e.digits.values())
        else e
        for e in elements
    ]


def judge(elements, program, eps, dtype, shapes, timeout=None, F=None, data=None) -> list:
    """The elements, each suspicious one judged: the problem's condition number there, and, when
    autodiff's error exceeds `MARGIN` times what it allows, the verdict IMPRECISE with the
    operation that lost the digits (traced through `F(θ, data)`, the flat JAX program, when given).

    `program` is the exact method's `_exact.Program` (None: nothing is judged), `eps` the
    epsilon the run is held to (its dtype's, or a coarser float the program rounds to itself).
    """
    elements = capped(elements, dtype)
    if program is None:
        return elements
    size = sum(int(np.prod(s, dtype=np.int64)) for s in shapes)
    if size != len(program.symbols) or len(elements) != len(program.level) * size:
        return elements  # not one element per (row, parameter): nothing to line up with
    # An element far below its row's largest derivative carries the rounding of terms of the row's
    # size, which may cancel in the exact translation (SymPy cancels a − a as it builds it) while the
    # program computes them: judged only where the loss shows against the row's scale too.
    row_scale = [0.0] * len(program.level)
    for i, e in enumerate(elements):
        exact = e.values.get(Method.SYMBOLIC)
        if exact is not None and math.isfinite(exact):
            row_scale[i // size] = max(row_scale[i // size], abs(exact))
    # A derivative that is 0 structurally comes out of the 30-digit evaluation as its rounding
    # (corrcoef's constant diagonal: ±7e-42): no digits to count there.
    zero = 10.0 ** (6 - graph.DIGITS) * max(row_scale, default=0.0)
    suspects = []
    for i, e in enumerate(elements):
        error = _error(e)
        if error is None or error <= MARGIN * eps or abs(e.values[Method.SYMBOLIC]) <= zero:
            continue
        if error * abs(e.values[Method.SYMBOLIC]) <= MARGIN * eps * row_scale[i // size]:
            continue
        suspects.append((error, i))
    if not suspects:
        return elements
    budget = translate.Budget(min(timeout or math.inf, AUDIT_SECONDS))
    cap = dtype_digits(dtype)
    located, rows, gradients = 0, {}, {}
    for error, i in sorted(suspects, reverse=True)[:MAX_AUDITED]:
        e = elements[i]
        m, k = divmod(i, size)  # `_compare.elements` lists rows, then parameters
        try:
            condition = _condition(program, m, k, e.values[Method.SYMBOLIC], budget, gradients)
        except BudgetExceeded:
            break  # out of time: what is not judged is not accused
        except Exception:  # noqa: BLE001 - an element the audit cannot judge keeps its verdict
            if raise_internal_errors():
                raise
            continue
        if not math.isfinite(condition):
            continue
        avoidable = error > MARGIN * condition * eps
        where = ""
        if avoidable and F is not None and located < MAX_LOCATED and np.dtype(dtype) == np.float64:
            located += 1
            where = _where_row(F, data, program.point, m, k, error, rows, budget)
        ad = e.values[Method.AUTODIFF]
        at = f"{e.parameter}{format_index(e.index)} = {program.point[k]:.6g}"
        record = Precision(
            "autodiff", min(relative_digits(error), cap), min(relative_digits(condition * eps), cap), condition,
            bool(avoidable), ad, e.values[Method.SYMBOLIC], at, where,
        )  # fmt: skip
        elements[i] = dataclasses.replace(e, precision=record, verdict=Verdict.IMPRECISE if avoidable else e.verdict)
    return elements


def value_loss(program, f_float, jacobian, eps, timeout=None) -> Precision | None:
    """The function's own float64 value against the exact one: a `Precision` record for the worst
    output that lost more than `MARGIN` · eps (avoidable when past `MARGIN` times its condition
    number, Σⱼ |θⱼ · ∂f/∂θⱼ| / |f| + 1 from the exact gradient), with the operation that lost it."""
    if program is None or jacobian is None or f_float is None:
        return None
    exact, f_float = np.asarray(program.values, np.float64), np.asarray(f_float, np.float64)
    if exact.shape != f_float.shape or jacobian.shape[0] != exact.size:
        return None  # the derivative checked is not the output's gradient (order > 1)
    with np.errstate(all="ignore"):
        error = np.abs(f_float - exact) / np.abs(exact)
        condition = (np.abs(jacobian) @ np.abs(program.point)) / np.abs(exact) + 1
    error = np.where((exact != 0) & np.isfinite(exact) & np.isfinite(f_float), error, 0.0)
    m = int(np.argmax(error))
    if not error[m] > MARGIN * eps or not math.isfinite(condition[m]):
        return None
    avoidable = bool(error[m] > MARGIN * condition[m] * eps)
    where = ""
    if avoidable:
        outputs = program.level if len(program.level) == exact.size else None
        if outputs is not None:
            budget = translate.Budget(min(timeout or math.inf, AUDIT_SECONDS))
            try:
                where = first_loss(outputs[m], program.symbols, program.point, program.definitions,
                                   program.origins, float(error[m]), budget)  # fmt: skip
            except Exception:  # noqa: BLE001 - naming the operation is a courtesy: the finding stands
                if raise_internal_errors():
                    raise
    cap = dtype_digits(np.float64)
    output = f"output {m}" if exact.size > 1 else ""
    return Precision(
        "the function's value", min(relative_digits(float(error[m])), cap),
        min(relative_digits(float(condition[m]) * eps), cap), float(condition[m]), avoidable,
        float(f_float[m]), float(exact[m]), output, where,
    )  # fmt: skip


def _error(e) -> float | None:
    """Autodiff's relative error against the exact value (the worse mode), or None when the
    element is not one to judge: not agreeing, no exact value, or an exact 0 (no digits to count)."""
    if e.verdict != Verdict.AGREE or Method.SYMBOLIC not in e.values or Method.AUTODIFF not in e.values:
        return None
    exact = e.values[Method.SYMBOLIC]
    if exact == 0 or not math.isfinite(exact):
        return None
    got = [e.values[m] for m in (Method.AUTODIFF, Method.FORWARD) if m in e.values]
    if not all(math.isfinite(v) for v in got):
        return None
    return max(abs(v - exact) for v in got) / abs(exact)


def _condition(program, m, k, exact, budget, rows) -> float:
    """Σⱼ |θⱼ · ∂J/∂θⱼ| / |J| + 1 for J = ∂ level[m] / ∂θ_k.

    ∂J/∂θⱼ = ∂²level[m] / ∂θ_k ∂θⱼ, a row of a symmetric Hessian: the derivative of the whole exact
    gradient of level[m] along θ_k, taken as a forward difference of the exact gradient between θ
    and θ + h e_k, h = 2⁻³⁰·|θ_k| (2⁻³⁰ at 0), at the exact method's 30 digits: truncation O(h) and
    rounding 10⁻³⁰ / h leave ~9 correct digits where the condition number needs one. θ + h e_k is
    exact at that precision and moves one parameter, so the graph's evaluation at θ, kept from the
    exact derivative, is updated only where θ_k reaches: one reverse sweep per element (and one per
    row, `rows` keeps it) — not a symbolic second derivative, whose graph (a network's Hessian)
    can take minutes to build."""
    budget.check()
    outputs = program.level if len(program.level) == 1 else [program.level[m]]
    with mpmath.workdps(graph.DIGITS):
        theta = [mpmath.mpf(float(v)) for v in program.point]

        def gradient(values):
            return graph.jacobian(outputs, program.symbols, values, program.definitions, graph.DIGITS, budget, True)[0]

        if m not in rows:
            rows[m] = gradient(theta)
        h = mpmath.ldexp(abs(theta[k]) if theta[k] != 0 else mpmath.mpf(1), -30)
        moved = list(theta)
        moved[k] = theta[k] + h
        total = mpmath.fsum(abs(t * (a - b)) for t, a, b in zip(theta, gradient(moved), rows[m])) / h
        return float(total / abs(mpmath.mpf(exact))) + 1


def _where_row(F, data, theta, m, k, error, rows, budget) -> str:
    """The operation in autodiff's own program for row `m` of the Jacobian (reverse mode: the
    rules as JAX runs them, custom ones included) whose result first lost the digits of element `k`."""
    try:
        if m not in rows:
            rows[m] = _reverse_translation(F, data, theta, m, budget)
        tr = rows[m]
        if tr is None:
            return ""
        out = tr.outputs[0].reshape(-1)[k]
        symbols = [s for sym in tr.symbols for s in sym.reshape(-1)]
        return first_loss(out, symbols, theta, tr.definitions, tr.origins, error, budget)
    except Exception:  # noqa: BLE001 - naming the operation is a courtesy: the verdict stands without it
        if raise_internal_errors():
            raise
        return ""


def _reverse_translation(F, data, theta, m, budget):
    n_out = int(np.asarray(jax.eval_shape(lambda t: F(t, data), jnp.asarray(theta)).shape[0]))
    seed = np.zeros(n_out)
    seed[m] = 1.0

    def row(t):
        _, pull = jax.vjp(lambda u: F(u, data), t)
        return pull(jnp.asarray(seed, t.dtype))[0]

    try:
        return translate.translate(row, [np.asarray(theta, np.float64)], ["theta"], budget)
    except Exception:  # noqa: BLE001 - a rule the exact method cannot translate: no operation named
        return None


def first_loss(output, symbols, point, definitions, origins, error, budget=None) -> str:
    """The first operation (in program order, among those `output` depends on) whose float64
    result has lost at least a tenth of `output`'s relative `error` against its exact value — its
    arguments were still accurate — as "sub (file.py:12:20 (fn))"; "" when none."""
    nodes = [n for n in graph.topological([output], definitions) if n in definitions and n in origins]
    if not nodes:
        return ""
    floats = graph.evaluate_float(nodes, symbols, np.asarray(point, np.float64)[None, :], definitions)[0]
    exact = graph.evaluate(nodes, symbols, point, definitions, budget=budget)
    threshold = max(error / 10, MARGIN * float(np.finfo(np.float64).eps))
    for node, value, truth in zip(nodes, floats, exact):
        truth = complex(truth)
        if truth.imag != 0 or truth.real == 0 or not math.isfinite(truth.real):
            continue
        lost = abs(value - truth.real) / abs(truth.real) if math.isfinite(value) else math.inf
        if lost >= threshold:
            primitive, source = origins[node]
            at = f" ({source})" if source else ""
            return f"{primitive}{at}"
    return ""
