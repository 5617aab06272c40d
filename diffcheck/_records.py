"""Result records and their own renderings: a readable table (`str`) and JSON-safe dicts.

The records know nothing of SymPy or JAX: they hold numbers and names. Methods, verdicts and
statuses are enums (`Method`, `Verdict`, `State`); a pair of methods is a tuple, joined into
"a~b" only in `to_dict`. The other renderings (terminal, JUnit, HTML) read these records.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from ._fragment import report_html_fragment
from ._names import element_names, format_index, offsets_of, pair_key  # noqa: F401 - with the records

SCHEMA = "diffcheck.report/1"


class Method(enum.StrEnum):
    """A way of computing the derivative."""

    SYMBOLIC = "symbolic"  # exact: SymPy from the program, evaluated at 30 digits
    AUTODIFF = "autodiff"  # reverse mode
    FORWARD = "autodiff_forward"  # forward mode, compared wherever reverse mode is
    FINITE = "finite_difference"
    COMPLEX = "complex_step"

    @property
    def short(self) -> str:
        return _SHORT[self]


_SHORT = {
    Method.SYMBOLIC: "sym",
    Method.AUTODIFF: "ad",
    Method.FORWARD: "fwd",
    Method.FINITE: "fd",
    Method.COMPLEX: "cs",
}


class Verdict(enum.StrEnum):
    """An element's verdict."""

    AGREE = "agree"
    MISMATCH = "mismatch"
    KINK = "kink"  # non-differentiable here: a warning (a failure under strict)
    # Within the error model, but losing digits the problem does not: avoidable precision loss, a
    # warning (a failure under precision="strict"; see `Precision`).
    IMPRECISE = "imprecise"


class State(enum.StrEnum):
    """What happened to a method or a probe."""

    OK = "ok"
    MISMATCH = "mismatch"
    UNAVAILABLE = "unavailable"  # it cannot run on this function: the others decide
    REJECTED = "rejected"  # the exact method's translation failed its value check: a failure
    TIMED_OUT = "timed out"  # past its time budget (--timeout)
    TOO_LARGE = "too large"  # past its size budget
    DIRECTIONAL = "directional"  # checked along random directions (see PointResult.directional)
    NONDETERMINISTIC = "not deterministic"  # two runs at the same input differ: a failure


class Status(str):
    """A state and its reason; it reads (and compares, and is written to JSON) as "state: reason"."""

    state: State
    reason: str

    def __new__(cls, state, reason: str = ""):
        state = State(state)
        self = super().__new__(cls, f"{state}: {reason}" if reason else str(state))
        self.state, self.reason = state, reason
        return self

    def __getnewargs__(self):
        return (self.state, self.reason)

    @property
    def ok(self) -> bool:
        return self.state not in (State.MISMATCH, State.REJECTED, State.NONDETERMINISTIC)


OK = Status(State.OK)


def unavailable(reason: str) -> Status:
    return Status(State.UNAVAILABLE, reason)


#: The method pairs compared, in the order reports list them; forward mode is compared wherever
#: reverse mode is.
PAIRS = (
    (Method.SYMBOLIC, Method.AUTODIFF),
    (Method.SYMBOLIC, Method.FINITE),
    (Method.AUTODIFF, Method.FINITE),
    (Method.AUTODIFF, Method.FORWARD),
    (Method.SYMBOLIC, Method.FORWARD),
    (Method.SYMBOLIC, Method.COMPLEX),
    (Method.AUTODIFF, Method.COMPLEX),
)
#: The pairs the table shows, one column each.
TABLE_PAIRS = PAIRS[:3]
_BY_CASE = PAIRS[:2]
#: Digits of agreement with the exact value, per method, as `by_case` reports them.
_DIGITS = (Method.AUTODIFF, Method.FINITE, Method.COMPLEX)


def pair_label(pair: tuple) -> str:
    """A method pair as the table heads it: "sym ~ ad"."""
    return " ~ ".join(Method(m).short for m in pair)


def _json_number(x):
    return None if x is None or not math.isfinite(x) else float(x)


def _table(rows) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


@dataclass(frozen=True)
class Precision:
    """How many digits a computed value has against the exact one, and how many the problem allows:
    those a correctly rounded evaluation would keep given the inputs' rounding (`_precision`)."""

    subject: str  # what lost them: "autodiff", or "the function's value"
    digits: float  # its correct digits: −log10(|value − exact| / |exact|), at most the dtype's
    allowed: float  # the digits the problem allows: −log10(condition · eps), at most the dtype's
    condition: float  # the exact value's condition number at the point in the parameters (+1: the final rounding)
    avoidable: bool  # the error exceeds `_precision.MARGIN` times what the problem allows
    value: float  # the computed value
    exact: float  # the exact value
    at: str = ""  # where: "args[0] = 17.3" (the element's parameter and its value), or the point
    where: str = ""  # the first operation whose result lost the digits, with its source line ("" when unknown)

    @property
    def lost(self) -> float:
        return max(0.0, self.allowed - self.digits)

    def describe(self) -> str:
        at = f" at {self.at}" if self.at else ""
        lost = f"{self.lost:.1f} digits are lost" + (f" at {self.where}" if self.where else "")
        return (
            f"{self.subject} has {self.digits:.1f} correct digits{at} where the problem allows {self.allowed:.1f} "
            f"(condition number {self.condition:.3g}): {lost}; the exact value is {self.exact:.17g}, "
            f"the computed one {self.value:.17g}"
        )

    def to_dict(self) -> dict:
        return {
            "subject": self.subject,
            "digits": _json_number(self.digits),
            "allowed": _json_number(self.allowed),
            "lost": _json_number(self.lost),
            "condition": _json_number(self.condition),
            "avoidable": self.avoidable,
            "value": _json_number(self.value),
            "exact": _json_number(self.exact),
            "at": self.at,
            "where": self.where,
        }


@dataclass(frozen=True)
class Element:
    """One entry of the derivative: d output[`output`] / d `parameter`[`index`]."""

    parameter: str  # the parameter's name, e.g. "W1" or "args[0]"
    index: tuple  # the element's index inside the parameter (() for a scalar)
    output: tuple  # the output element (() for a scalar output)
    values: dict  # method → value, for the methods that ran
    errors: dict  # (a, b) → |a − b|
    tolerances: dict  # (a, b) → the largest |a − b| counted as agreement
    verdict: Verdict  # agree, mismatch, or kink (non-differentiable here: a warning)
    odd_one_out: Method | None  # the method that disagrees with the others, if one can be named
    note: str = ""  # e.g. a finite-difference step that was shrunk
    via: str = ""  # higher orders: the earlier differentiations, e.g. "∂/∂b " or "H·v0: "
    bounds: dict = field(default_factory=dict)  # method → its own error bound (the error model), when used
    digits: dict = field(default_factory=dict)  # method → digits of agreement with the exact value
    # At a kink: {"left", "right"} one-sided derivatives (exact), "autodiff" (and "autodiff_forward"),
    # "subgradient" (autodiff lies between left and right) and "convention" (which side it takes).
    kink: dict | None = None
    # Autodiff's digits against those the problem allows, where its error was large enough to ask.
    precision: Precision | None = None

    @property
    def along(self) -> bool:
        """Whether the row is a direction or an output combination (`_plan.Plan`), not an output
        of the function: its `output` then numbers the row."""
        return self.via.startswith(("H·v", "wᵀ"))

    @property
    def name(self) -> str:
        out = f" of output{format_index(self.output)}" if self.output and not self.along else ""
        prefix = f"{self.via}∂/∂" if self.via else ""
        return f"{prefix}{self.parameter}{format_index(self.index)}{out}"

    def relative_errors(self) -> dict:
        rel = {}
        for key, err in self.errors.items():
            a, b = key
            scale = max(abs(self.values[a]), abs(self.values[b]))
            rel[key] = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
        return rel

    def describe(self) -> str:
        """The one failure format: element, each method's value, the odd one out, the bound broken."""
        values = ", ".join(f"{m}={v:.17g}" for m, v in self.values.items())
        odd = f"; odd one out: {self.odd_one_out}" if self.odd_one_out else "; no two methods agree"
        broken = [
            f"|{k[0]} - {k[1]}| = {e:.3g} > {self.tolerances[k]:.3g}"
            for k, e in self.errors.items()
            if e > self.tolerances[k] and math.isfinite(e)
        ]
        broken += [f"{m} is {v}" for m, v in self.values.items() if not math.isfinite(v)]
        note = f" ({self.note})" if self.note else ""
        return f"{self.name}: {values}{odd}" + (f" [{'; '.join(broken)}]" if broken else "") + note

    def describe_kink(self) -> str:
        """A kink in one line: the one-sided derivatives, autodiff's value and the convention it follows."""
        k = self.kink or {}
        if "left" not in k:
            return f"{self.name}: at a kink ({self.note or 'non-differentiable here'})"
        sub = "a valid subgradient" if k["subgradient"] else "NOT a subgradient"
        return (
            f"{self.name}: kink, left derivative {k['left']:.17g}, right {k['right']:.17g}; "
            f"autodiff {k['autodiff']:.17g} is {sub} ({k['convention']})"
        )

    def to_dict(self) -> dict:
        out = {"parameter": self.parameter, "index": list(self.index), "output": list(self.output)}
        for method in Method:
            out[str(method)] = _json_number(self.values.get(method))
        out["errors"] = {pair_key(k): _json_number(v) for k, v in self.errors.items()}
        out["tolerances"] = {pair_key(k): _json_number(v) for k, v in self.tolerances.items()}
        out["verdict"] = str(self.verdict)
        out["odd_one_out"] = None if self.odd_one_out is None else str(self.odd_one_out)
        out["note"] = self.note
        out["via"] = self.via
        out["bounds"] = {str(k): _json_number(v) for k, v in self.bounds.items()}
        out["digits"] = {str(k): _json_number(v) for k, v in self.digits.items()}
        out["kink"] = None
        if self.kink is not None:
            out["kink"] = {k: _json_number(v) if isinstance(v, float) else v for k, v in self.kink.items()}
        out["precision"] = None if self.precision is None else self.precision.to_dict()
        return out


@dataclass(frozen=True)
class Unlisted:
    """The elements of a large derivative that a point's record does not list one by one
    (`_compare.MAX_LISTED`), summarised: how many got each verdict, the largest relative error per
    method pair and the fewest digits of agreement per method among them."""

    counts: dict  # Verdict → how many unlisted elements got it
    worst: dict = field(default_factory=dict)  # (a, b) → the largest relative error
    digits: dict = field(default_factory=dict)  # method → the fewest digits of agreement with the exact value

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict:
        return {
            "count": self.total,
            "verdicts": {str(k): v for k, v in self.counts.items()},
            "worst_relative_error": {pair_key(k): _json_number(v) for k, v in self.worst.items()},
            "digits": {str(k): _json_number(v) for k, v in self.digits.items()},
        }


@dataclass(frozen=True)
class Expectation:
    """A recorded value the derivative must match to `decimals` decimal places (e.g. a tutorial's)."""

    parameter: str
    index: tuple
    expected: float
    decimals: int
    values: dict  # method → value
    ok: bool

    def describe(self) -> str:
        got = ", ".join(f"{m}={v:.6g}" for m, v in self.values.items())
        where = f"d/d{self.parameter}{format_index(self.index)}"
        return f"expected {where} = {self.expected} to {self.decimals} decimals; got {got}"

    def to_dict(self) -> dict:
        return {
            "parameter": self.parameter,
            "index": list(self.index),
            "expected": self.expected,
            "decimals": self.decimals,
            "values": {k: _json_number(v) for k, v in self.values.items()},
            "ok": self.ok,
        }


@dataclass(frozen=True)
class StepSweep:
    """Finite-difference error against the exact value over a range of steps (the V-shaped curve)."""

    element: str  # the element's name, as `Element.name` writes it
    steps: tuple  # the steps tried, largest first (e.g. 1e-1 … 1e-12)
    errors: tuple  # |central difference − exact| / max(|exact|, tiny) at each step (nan where undefined)
    chosen: float  # the step diffcheck's finite differences used for this element
    best: float  # the step with the smallest error
    order: float  # the observed convergence order (log-log slope on the truncation side; ~2 for central)

    def to_dict(self) -> dict:
        return {
            "element": self.element,
            "steps": [float(h) for h in self.steps],
            "errors": [_json_number(e) for e in self.errors],
            "chosen": float(self.chosen),
            "best": float(self.best),
            "order": _json_number(self.order),
        }


@dataclass(frozen=True)
class DotProductTest:
    """Forward against reverse mode without finite differences: uᵀ(J v) by jvp, (Jᵀu)ᵀ v by vjp."""

    status: Status  # ok, mismatch, or unavailable: <reason> (e.g. a custom_vjp has no forward mode)
    forward: tuple = ()  # uᵀ(J v) per seeded direction pair
    reverse: tuple = ()  # (Jᵀu)ᵀ v per direction pair
    bounds: tuple = ()  # the largest |forward − reverse| counted as rounding: eps · |u|ᵀ|J||v| terms

    @property
    def ok(self) -> bool:
        return _status(self.status).ok

    def describe(self) -> str:
        if not self.forward:
            return f"forward/reverse dot-product test {self.status}"
        worst = max(range(len(self.forward)), key=lambda i: abs(self.forward[i] - self.reverse[i]) / self.bounds[i])
        f, r, b = self.forward[worst], self.reverse[worst], self.bounds[worst]
        return (
            f"forward/reverse dot-product test {self.status}: uᵀ(J v) = {f:.17g} (jvp), (Jᵀu)ᵀ v = {r:.17g} (vjp), "
            f"|difference| = {abs(f - r):.3g} {'>' if abs(f - r) > b else '≤'} {b:.3g}"
        )

    def to_dict(self) -> dict:
        return {
            "status": str(self.status),
            "forward": [_json_number(v) for v in self.forward],
            "reverse": [_json_number(v) for v in self.reverse],
            "bounds": [_json_number(v) for v in self.bounds],
        }


@dataclass(frozen=True)
class DirectionalTest:
    """A method checked along random directions v instead of per element: its J v against the
    reference's (the exact J, else reverse-mode autodiff's), for parameter counts where one
    evaluation per element would dominate the run."""

    method: Method  # e.g. complex_step
    status: Status  # ok, mismatch, or unavailable: <reason>
    reference: Method | str = ""  # the method whose J v is expected: symbolic (exact) or autodiff
    directions: int = 0
    values: tuple = ()  # J v by `method`, per direction and output (direction-major)
    expected: tuple = ()  # J v by the reference
    bounds: tuple = ()  # the largest |value − expected| counted as agreement: both methods' bounds, propagated

    @property
    def ok(self) -> bool:
        return _status(self.status).ok

    def describe(self) -> str:
        if not self.values:
            return f"{self.method} along random directions {self.status}"
        worst = max(range(len(self.values)), key=lambda i: abs(self.values[i] - self.expected[i]) / self.bounds[i])
        v, e, b = self.values[worst], self.expected[worst], self.bounds[worst]
        return (
            f"{self.method} along {self.directions} random directions {self.status}: J v = {v:.17g} "
            f"({self.method}), {e:.17g} ({self.reference}), |difference| = {abs(v - e):.3g} "
            f"{'>' if abs(v - e) > b else '≤'} {b:.3g}"
        )

    def to_dict(self) -> dict:
        return {
            "method": str(self.method),
            "status": str(self.status),
            "reference": str(self.reference),
            "directions": self.directions,
            "values": [_json_number(v) for v in self.values],
            "expected": [_json_number(v) for v in self.expected],
            "bounds": [_json_number(v) for v in self.bounds],
        }


@dataclass(frozen=True)
class PointResult:
    """The check of one case at one point."""

    case: str
    point: str
    dtype: str
    device: str
    methods: dict  # Method → its Status: ok, unavailable: <reason>, rejected: <reason>, …
    value: dict = field(default_factory=dict)  # "jax" / "symbolic" → the function's first output
    elements: tuple = ()
    expectations: tuple = ()
    error: str | None = None  # set when the point could not be checked at all
    traceback: str | None = None  # an internal error's traceback (a bug in diffcheck: please report it)
    seconds: float = 0.0
    order: int = 1  # the derivative order checked
    checks: str = "gradient"  # "gradient", "full" (a whole derivative tensor) or Hessian-vector products
    sweeps: tuple = ()  # StepSweep records for a few elements (first order, when the exact value is known)
    dot_product: DotProductTest | None = None  # forward vs reverse mode, uᵀ(J v) against (Jᵀu)ᵀ v
    tolerance: str = "error model"  # the bound used: each method's own error model, or "rtol=…, atol=…"
    strict: bool = False  # a kink fails the point (check_grad(strict=True), --strict)
    directional: tuple = ()  # DirectionalTest records: methods checked along random directions (large N)
    diagnosis: tuple = ()  # what a wrong autodiff looks like, per parameter (a factor, a transpose, …)
    precision: str = "warn"  # avoidable precision loss: "warn" (default) or "strict" (a failure)
    value_precision: Precision | None = None  # the function's own value against the exact one, when it lost digits
    unlisted: Unlisted | None = None  # a large derivative's elements not listed in `elements`, summarised

    def _unlisted(self, verdict) -> int:
        return 0 if self.unlisted is None else self.unlisted.counts.get(verdict, 0)

    @property
    def mismatches(self) -> tuple:
        return tuple(e for e in self.elements if e.verdict == Verdict.MISMATCH)

    @property
    def kinks(self) -> tuple:
        return tuple(e for e in self.elements if e.verdict == Verdict.KINK)

    @property
    def imprecise(self) -> tuple:
        """The avoidable precision losses: elements, then the function's value."""
        losses = tuple(e.precision for e in self.elements if e.verdict == Verdict.IMPRECISE)
        value = self.value_precision
        return losses + ((value,) if value is not None and value.avoidable else ())

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and not self.mismatches
            and not self._unlisted(Verdict.MISMATCH)
            and all(x.ok for x in self.expectations)
            and all(_status(s).ok for s in self.methods.values())
            and (self.dot_product is None or self.dot_product.ok)
            and all(d.ok for d in self.directional)
            and not (self.strict and (self.kinks or self._unlisted(Verdict.KINK)))
            and not (self.precision == "strict" and self.imprecise)
        )

    def digits(self) -> dict:
        """The fewest digits of agreement with the exact value per method over the elements."""
        out = {}
        for element in self.elements:
            for method, d in element.digits.items():
                out[method] = min(out.get(method, math.inf), d)
        for method, d in (self.unlisted.digits if self.unlisted else {}).items():
            out[method] = min(out.get(method, math.inf), d)
        return out

    @property
    def status(self) -> str:
        return "error" if self.error else "agree" if self.ok else "mismatch"

    def worst(self) -> dict:
        """The largest relative error per method pair over the elements."""
        worst = {}
        for element in self.elements:
            for key, rel in element.relative_errors().items():
                worst[key] = max(worst.get(key, 0.0), rel)
        for key, rel in (self.unlisted.worst if self.unlisted else {}).items():
            worst[key] = max(worst.get(key, 0.0), rel)
        return worst

    def problems(self) -> list[str]:
        out = [f"error: {self.error}"] if self.error else []
        out += [f"{m} {s}" for m, s in self.methods.items() if not _status(s).ok]
        out += [e.describe() for e in self.mismatches]
        if self._unlisted(Verdict.MISMATCH):
            out.append(f"… and {self._unlisted(Verdict.MISMATCH):,} more mismatching elements (not listed)")
        out += [f"pattern: {line}" for line in self.diagnosis]
        out += [x.describe() for x in self.expectations if not x.ok]
        if self.dot_product is not None and not self.dot_product.ok:
            out.append(self.dot_product.describe())
        out += [d.describe() for d in self.directional if not d.ok]
        if self.strict:
            out += [f"(strict) {e.describe_kink()}" for e in self.kinks]
        if self.precision == "strict":
            out += [f"(strict precision) {p.describe()}" for p in self.imprecise]
        return out

    def to_dict(self) -> dict:
        return {
            "case": self.case,
            "point": self.point,
            "dtype": self.dtype,
            "device": self.device,
            "status": self.status,
            "ok": self.ok,
            "methods": {str(m): str(s) for m, s in self.methods.items()},
            "value": {k: _json_number(v) for k, v in self.value.items()},
            "error": self.error,
            "traceback": self.traceback,
            "order": self.order,
            "checks": self.checks,
            "seconds": self.seconds,
            "worst_relative_error": {pair_key(k): _json_number(v) for k, v in self.worst().items()},
            "digits": {str(k): _json_number(v) for k, v in self.digits().items()},
            "tolerance": self.tolerance,
            "strict": self.strict,
            "precision": self.precision,
            "value_precision": None if self.value_precision is None else self.value_precision.to_dict(),
            "dot_product": None if self.dot_product is None else self.dot_product.to_dict(),
            "directional": [d.to_dict() for d in self.directional],
            "diagnosis": list(self.diagnosis),
            "expectations": [x.to_dict() for x in self.expectations],
            "elements": [e.to_dict() for e in self.elements],
            "elements_total": len(self.elements) + (self.unlisted.total if self.unlisted else 0),
            "unlisted": None if self.unlisted is None else self.unlisted.to_dict(),
            "sweeps": [s.to_dict() for s in self.sweeps],
        }


@dataclass(frozen=True)
class Report:
    """The result of a check: one `PointResult` per case and point, and any case that failed to load."""

    points: tuple = ()
    errors: tuple = ()  # messages for cases or files that could not be loaded or run
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every point agrees and nothing failed to load."""
        return not self.errors and all(p.ok for p in self.points)

    def __add__(self, other: Report) -> Report:
        return Report(self.points + other.points, self.errors + other.errors, self.seconds + other.seconds)

    def failures(self, limit: int = 10) -> list[str]:
        """Each problem in the one failure format, prefixed with its case and point."""
        out = list(self.errors)
        for p in self.points:
            order = f", order {p.order}" if p.order > 1 else ""
            out += [f"{p.case} @ {p.point} ({p.dtype}{order}): {msg}" for msg in p.problems()]
        return out[:limit] + ([f"… and {len(out) - limit} more"] if len(out) > limit else [])

    def summary(self) -> str:
        counts = {s: sum(p.status == s for p in self.points) for s in ("agree", "mismatch", "error")}
        parts = [f"{n} {s}" for s, n in counts.items() if n]
        kinks = sum(e.verdict == Verdict.KINK for p in self.points for e in p.elements)
        if kinks:
            strict = any(p.strict for p in self.points)
            parts.append(f"{kinks} elements at a kink ({'failures: strict' if strict else 'warnings, not failures'})")
        losses = sum(len(p.imprecise) for p in self.points)
        if losses:
            strict = any(p.precision == "strict" for p in self.points)
            how = "failures: strict precision" if strict else "warnings, not failures"
            parts.append(f"{losses} avoidable precision losses ({how})")
        if self.errors:
            parts.append(f"{len(self.errors)} not loaded")
        verdict = "OK" if self.ok and self.points else "FAILED" if self.points or self.errors else "NO CASES"
        return f"{verdict}: {len(self.points)} points, {', '.join(parts) or 'nothing run'} in {self.seconds:.1f} s"

    def by_case(self) -> list[list[str]]:
        """Per case and dtype: the largest relative error of autodiff and of finite differences
        against the exact value, the fewest digits of agreement with it of autodiff, finite
        differences and complex step, over all points and orders, and the orders checked."""
        groups = {}
        for p in self.points:
            groups.setdefault((p.case, p.dtype), []).append(p)
        rows = []
        for (case, dtype), points in groups.items():
            worst = {}
            for p in points:
                for key, rel in p.worst().items():
                    worst[key] = max(worst.get(key, 0.0), rel)
            cells = [f"{worst[k]:.1e}" if k in worst else "-" for k in _BY_CASE]
            digits = {}
            for p in points:
                for method, d in p.digits().items():
                    digits[method] = min(digits.get(method, math.inf), d)
            cells += [f"{digits[m]:.1f}" if m in digits else "-" for m in _DIGITS]
            orders = ",".join(str(k) for k in sorted({p.order for p in points}))
            status = "agree" if all(p.ok for p in points) else "FAILED"
            rows.append([case, dtype, orders, *cells, status])
        return rows

    def by_case_table(self) -> str:
        head = ["case", "dtype", "orders", "autodiff vs exact", "finite diff. vs exact"]
        head += ["digits: autodiff", "finite diff.", "complex step", "verdict"]
        return _table([head] + self.by_case())

    def rows(self) -> list[list[str]]:
        """The table: case, point, dtype, worst relative error per method pair, verdict."""
        rows = []
        for p in self.points:
            worst = p.worst()
            cells = [f"{worst[k]:.1e}" if k in worst else "-" for k in TABLE_PAIRS]
            rows.append([p.case, p.point, p.dtype, str(p.order), *cells, p.status])
        return rows

    @staticmethod
    def columns() -> list[str]:
        """The table's header, matching `rows`."""
        return ["case", "point", "dtype", "order", *map(pair_label, TABLE_PAIRS), "verdict"]

    def __str__(self) -> str:
        lines = _table([self.columns()] + self.rows()).splitlines()
        problems = self.failures(limit=20)
        if problems:
            lines += ["", *problems]
        kinks = self.kink_warnings()
        if kinks:
            lines += ["", *kinks]
        losses = self.precision_warnings()
        if losses:
            lines += ["", *losses]
        missing = self.not_run()
        if missing:
            lines += ["", *missing]
        return "\n".join(lines + ["", self.summary()])

    def not_run(self, limit: int = 10) -> list[str]:
        """Why a "-" in the table: the exact method or forward mode that did not run at a point,
        with its reason, under a heading; [] when both ran everywhere."""
        lines = []
        for p in self.points:
            for method in (Method.SYMBOLIC, Method.FORWARD):
                status = p.methods.get(method)
                if status is not None and _status(status).state is State.UNAVAILABLE:
                    lines.append(f"{p.case} @ {p.point}: {method} {status}")
        lines = list(dict.fromkeys(lines))
        if not lines:
            return []
        more = [f"… and {len(lines) - limit} more"] if len(lines) > limit else []
        return ["Not run (the others still decide):", *lines[:limit], *more]

    def kink_warnings(self, limit: int = 10) -> list[str]:
        """The kinks of non-strict points, one line each (one-sided derivatives, autodiff's
        convention), under a heading; [] when there are none."""
        lines = [f"{p.case} @ {p.point}: {e.describe_kink()}" for p in self.points if not p.strict for e in p.kinks]
        if not lines:
            return []
        more = [f"… and {len(lines) - limit} more"] if len(lines) > limit else []
        return ["Kinks (warnings; strict=True makes them failures):", *lines[:limit], *more]

    def precision_warnings(self, limit: int = 10) -> list[str]:
        """The avoidable precision losses of points not under strict precision, one line each
        (digits, the digits allowed, the operation that lost them), under a heading; [] when none."""
        points = [p for p in self.points if p.precision != "strict"]
        lines = [f"{p.case} @ {p.point}: {x.describe()}" for p in points for x in p.imprecise]
        if not lines:
            return []
        more = [f"… and {len(lines) - limit} more"] if len(lines) > limit else []
        return ['Avoidable precision loss (warnings; precision="strict" makes them failures):', *lines[:limit], *more]

    def _repr_html_(self) -> str:
        """Jupyter shows a report as its summary, table and failures (no matplotlib needed)."""
        return report_html_fragment(self)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "ok": self.ok,
            "summary": self.summary(),
            "seconds": self.seconds,
            "errors": list(self.errors),
            "points": [p.to_dict() for p in self.points],
        }


def _status(status) -> Status:
    """A method's status as a record (a plain "ok" string, as older callers wrote it, included)."""
    if isinstance(status, Status):
        return status
    state, _, reason = str(status).partition(": ")
    if state in State._value2member_map_:
        return Status(state, reason)
    return Status(State.UNAVAILABLE, str(status))
