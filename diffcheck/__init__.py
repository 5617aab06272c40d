"""diffcheck: is this gradient right?

Differentiates a JAX function three independent ways — exactly with SymPy, by autodiff with JAX,
and by finite differences — and cross-validates them element by element.

Public names load on first use (PEP 562): `import diffcheck` alone imports neither JAX nor SymPy,
so the command line, `diffcheck list` and the pytest plugin (which pytest loads in every run) start quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import CaseError, DiffcheckError, FormulaError, Unavailable, UsageError

if TYPE_CHECKING:
    from ._api import assert_case, assert_grad, check_case, check_grad
    from ._cache import enable_compilation_cache
    from ._records import (
        DirectionalTest,
        DotProductTest,
        Element,
        Expectation,
        PointResult,
        Report,
        StepSweep,
        Unlisted,
    )
    from ._torch import check_module
    from .case import Case, as_case, collect_cases, load_cases
    from .html import to_html
    from .junit import to_junit
    from .parallel import check_cases

__version__ = "0.1.0"

# Public name → the private module that defines it.
_LAZY = {
    "Case": "case",
    "as_case": "case",
    "collect_cases": "case",
    "load_cases": "case",
    "assert_case": "_api",
    "assert_grad": "_api",
    "check_case": "_api",
    "check_grad": "_api",
    "check_module": "_torch",
    "check_cases": "parallel",
    "enable_compilation_cache": "_cache",
    "DirectionalTest": "_records",
    "DotProductTest": "_records",
    "Element": "_records",
    "Expectation": "_records",
    "PointResult": "_records",
    "Report": "_records",
    "StepSweep": "_records",
    "Unlisted": "_records",
    "to_html": "html",
    "to_junit": "junit",
}

__all__ = [
    "Case",
    "CaseError",
    "DiffcheckError",
    "DirectionalTest",
    "DotProductTest",
    "Element",
    "Expectation",
    "FormulaError",
    "PointResult",
    "Report",
    "StepSweep",
    "Unavailable",
    "Unlisted",
    "UsageError",
    "as_case",
    "assert_case",
    "assert_grad",
    "check_case",
    "check_cases",
    "check_grad",
    "check_module",
    "collect_cases",
    "enable_compilation_cache",
    "load_cases",
    "to_html",
    "to_junit",
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'diffcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
