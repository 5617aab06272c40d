"""diffcheck: is this gradient right?

Differentiates a JAX function three independent ways — exactly with SymPy, by autodiff with JAX,
and by finite differences — and cross-validates them element by element.

Public names load on first use (PEP 562): `import diffcheck` alone imports neither JAX nor SymPy,
so the command line, `diffcheck list` and the pytest plugin start quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import CaseError, DiffcheckError, Unavailable, UsageError

if TYPE_CHECKING:
    from .case import Case, collect_cases, load_cases
    from .check import assert_grad, check_case, check_grad
    from .parallel import check_cases
    from .report import Element, Expectation, PointResult, Report, StepSweep

__version__ = "0.1.0"

# Public name → the module that defines it.
_LAZY = {
    "Case": "case",
    "collect_cases": "case",
    "load_cases": "case",
    "assert_grad": "check",
    "check_case": "check",
    "check_grad": "check",
    "check_cases": "parallel",
    "Element": "report",
    "Expectation": "report",
    "PointResult": "report",
    "Report": "report",
    "StepSweep": "report",
}

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
    "check_cases",
    "check_grad",
    "collect_cases",
    "load_cases",
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'diffcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
