"""diffcheck: is this gradient right?

Differentiates a JAX function three independent ways — exactly with SymPy, by autodiff with JAX,
and by finite differences — and cross-validates them element by element.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .case import Case, as_case, collect_cases, load_cases
from .errors import CaseError, DiffcheckError, FormulaError, Unavailable, UsageError
from .report import DotProductTest, Element, Expectation, PointResult, Report, StepSweep

if TYPE_CHECKING:
    from .check import assert_case, assert_grad, check_case, check_grad

__version__ = "0.1.0"

# Names whose modules import JAX and SymPy load on first use, so that `import diffcheck` (and
# the pytest plugin, which pytest loads in every run) stays light.
_LAZY = {"assert_case": "check", "assert_grad": "check", "check_case": "check", "check_grad": "check"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Case",
    "CaseError",
    "DiffcheckError",
    "DotProductTest",
    "Element",
    "Expectation",
    "FormulaError",
    "PointResult",
    "Report",
    "StepSweep",
    "Unavailable",
    "UsageError",
    "as_case",
    "assert_case",
    "assert_grad",
    "check_case",
    "check_grad",
    "collect_cases",
    "load_cases",
]
