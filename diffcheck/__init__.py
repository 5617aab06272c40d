"""diffcheck: is this gradient right?

Differentiates a JAX function three independent ways — exactly with SymPy, by autodiff with JAX,
and by finite differences — and cross-validates them element by element.
"""

from .case import Case, collect_cases, load_cases
from .check import assert_grad, check_case, check_grad
from .errors import CaseError, DiffcheckError, Unavailable, UsageError
from .report import Element, Expectation, PointResult, Report, StepSweep

__version__ = "0.1.0"

__all__ = [
    "Case",
    "CaseError",
    "DiffcheckError",
    "Element",
    "Expectation",
    "PointResult",
    "Report",
    "StepSweep",
    "Unavailable",
    "UsageError",
    "assert_grad",
    "check_case",
    "check_grad",
    "collect_cases",
    "load_cases",
]
