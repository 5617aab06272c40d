"""diffcheck: is this gradient right?

Differentiates a JAX function three independent ways — exactly with SymPy, by autodiff with JAX,
and by finite differences — and cross-validates them element by element.
"""

from .case import Case, as_case, collect_cases, load_cases
from .check import assert_grad, check_case, check_grad
from .errors import CaseError, DiffcheckError, FormulaError, Unavailable, UsageError
from .report import Element, Expectation, PointResult, Report, StepSweep

__version__ = "0.1.0"

__all__ = [
    "Case",
    "CaseError",
    "DiffcheckError",
    "Element",
    "Expectation",
    "FormulaError",
    "PointResult",
    "Report",
    "StepSweep",
    "Unavailable",
    "UsageError",
    "as_case",
    "assert_grad",
    "check_case",
    "check_grad",
    "collect_cases",
    "load_cases",
]
