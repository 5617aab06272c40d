"""The one owner of every public option and setting: what is valid, and the message when it is not.

The Python API (`check_grad`, `check_case`, `run_cases`), the command line and the pytest plugin
validate through these functions, so an option means the same and is refused in the same words
everywhere. Each validator returns the value unchanged (or normalised, for the command line's
text) and raises `UsageError` naming the option, what came and what is valid.

Settings from the environment are read once (`settings()`), validated here too; a bad value is a
usage error naming the variable and its valid values.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import re
from pathlib import Path
from typing import NamedTuple

from .errors import UsageError

DTYPES = ("float64", "float32")
DEVICES = ("cpu", "gpu")
PRECISIONS = ("warn", "strict")  # what avoidable precision loss is: a warning, or a failure
MAX_ORDER = 4


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _got(value) -> str:
    return f"{value!r} ({type(value).__name__})" if not isinstance(value, (int, float)) else repr(value)


def dtype(value, *, name: str = "dtype"):
    """None (float64) or one of `DTYPES`, as a name or a NumPy dtype."""
    if value is None:
        return None
    try:
        import numpy as np

        canonical = np.dtype(value).name
    except TypeError:
        canonical = None
    if canonical not in DTYPES or isinstance(value, bool):
        raise UsageError(f"{name} must be one of {', '.join(DTYPES)} (or None for float64), got {_got(value)}")
    return value


def device(value, *, name: str = "device"):
    """None (JAX's default device) or one of `DEVICES`."""
    if value is not None and value not in DEVICES:
        raise UsageError(f"{name} must be one of {', '.join(DEVICES)} (or None for JAX's default), got {_got(value)}")
    return value


def order(value, *, name: str = "order", optional: bool = False):
    """A derivative order, a whole number from 1 to `MAX_ORDER` (None allowed when `optional`)."""
    if value is None and optional:
        return None
    if not _is_int(value) or not 1 <= value <= MAX_ORDER:
        raise UsageError(f"{name} must be a whole number from 1 to {MAX_ORDER}, got {_got(value)}")
    return value


def precision(value, *, name: str = "precision"):
    """What avoidable precision loss is (`_precision`): "warn" (the default, a warning) or "strict"
    (a failure)."""
    if not isinstance(value, str) or value not in PRECISIONS:
        raise UsageError(f"{name} must be one of {', '.join(map(repr, PRECISIONS))}, got {_got(value)}")
    return value


def seed(value, *, name: str = "seed"):
    """A random seed: a whole number, 0 or more (NumPy's generators take no negative seed)."""
    if not _is_int(value) or value < 0:
        raise UsageError(f"{name} must be a whole number, 0 or more, got {_got(value)}")
    return value


def timeout(value, *, name: str = "timeout"):
    """None (no limit) or a number of seconds, more than 0 (inf: no limit)."""
    if value is None:
        return None
    if not _is_real(value) or math.isnan(value) or not value > 0:
        raise UsageError(f"{name} must be a number of seconds more than 0 (or None: no limit), got {_got(value)}")
    return value


def tolerance(value, *, name: str):
    """`rtol` or `atol`: None (the error model) or a finite number, 0 or more."""
    if value is None:
        return None
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise UsageError(f"{name} must be a finite number, 0 or more (or None: the error model), got {_got(value)}")
    return value


def points(value, *, name: str = "points"):
    """None (the default, 2) or the number of random points per case, 0 or more."""
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise UsageError(f"{name} must be a whole number, 0 or more (random points per case), got {_got(value)}")
    return value


def jobs(value, *, name: str = "jobs"):
    """None (in this process) or a number of worker processes, 1 or more."""
    if value is None:
        return None
    if not _is_int(value) or value < 1:
        raise UsageError(f"{name} must be a whole number of at least 1 (worker processes), got {_got(value)}")
    return value


def memory(value, *, name: str = "max_memory"):
    """None (the default budget) or a number of bytes per worker process, more than 0."""
    if value is None:
        return None
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"{name} must be a number of bytes more than 0, got {_got(value)}")
    return int(value)


def cache_dir(value, *, name: str = "cache_dir") -> Path:
    """A folder for compiled programs: a non-empty path (an empty one would mean the current folder)."""
    if not isinstance(value, (str, os.PathLike)) or not str(os.fspath(value)).strip():
        raise UsageError(f"{name} must name a folder (a non-empty path), got {_got(value)}")
    return Path(value)


_ADDRESS = re.compile(r"^(?:(?:tcp|tls|inproc|ucx|ws|wss)://[^\s/]+|[A-Za-z0-9_.\-\[\]:]+:\d+)$")


def scheduler(value, *, name: str = "scheduler"):
    """None or the address of a Dask scheduler: PROTOCOL://HOST:PORT (tcp, tls, …) or HOST:PORT."""
    if value is None:
        return None
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise UsageError(
            f"{name} must be a Dask scheduler address such as tcp://127.0.0.1:8786 or host:8786, got {_got(value)}"
        )
    return value


def argnums(value, nargs: int, *, name: str = "argnums"):
    """None (every argument), a position, or a non-empty tuple of distinct positions of `nargs` arguments."""
    valid = f"a position from {-nargs} to {nargs - 1}, a non-empty tuple of them, or None (all)"
    if value is None:
        return None
    items = (value,) if _is_int(value) else value
    if not isinstance(items, (tuple, list)) or not items or not all(_is_int(i) for i in items):
        raise UsageError(f"{name} must be {valid}, got {_got(value)}")
    bad = [i for i in items if not -nargs <= i < nargs]
    if bad:
        raise UsageError(f"{name} {bad} out of range for {nargs} argument(s); valid: {valid}")
    positions = [i % nargs for i in items]
    if len(set(positions)) != len(positions):
        raise UsageError(f"{name} {tuple(items)} names an argument twice; valid: {valid}")
    return value


def arguments(args, positions, *, name: str = "args"):
    """Each differentiated argument holds at least one array leaf (an empty pytree has nothing to differentiate)."""
    import jax

    for i in positions:
        if not jax.tree_util.tree_leaves(args[i]):
            raise UsageError(
                f"{name}[{i}] is an empty pytree ({type(args[i]).__name__}): nothing to differentiate; "
                "pass floats or arrays, or leave it out of argnums"
            )


def check_grad(args, **options) -> None:
    """Every option of `check_grad` (argnums, order, dtype, rtol, atol, seed, device, timeout,
    precision), before any work."""
    if not args:
        raise UsageError("check_grad needs at least one argument to differentiate in")
    _common(options, optional_order=False)
    chosen = options.get("argnums")
    argnums(chosen, len(args))
    if chosen is None:
        positions = range(len(args))
    else:
        positions = [i % len(args) for i in ((chosen,) if _is_int(chosen) else chosen)]
    arguments(args, positions)


def check_case(case, **options) -> None:
    """Every option of `check_case` (dtype, device, points, seed, order, rtol, atol, timeout,
    precision), before any work."""
    from .case import Case

    if not isinstance(case, Case):
        raise UsageError(f"check_case takes a diffcheck.Case, got {type(case).__name__}")
    _common(options, optional_order=True)
    points(options.get("points"))


def _common(options: dict, *, optional_order: bool) -> None:
    order(options.get("order", 1), optional=optional_order)
    dtype(options.get("dtype"))
    device(options.get("device"))
    seed(options.get("seed", 0))
    timeout(options.get("timeout"))
    tolerance(options.get("rtol"), name="rtol")
    tolerance(options.get("atol"), name="atol")
    precision(options.get("precision", "warn"))


# --- the command line's text -------------------------------------------------------------------


def parse_int(text: str, validate, name: str):
    """`validate(int(text))`, for argparse: a usage error names the option."""
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name} expects a whole number, got {text!r}") from None
    return validate(value, name=name)


def parse_seconds(text: str, name: str):
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name} expects a number of seconds, got {text!r}") from None
    return timeout(value, name=name)


def parse_gib(text: str, name: str) -> int:
    """A memory budget given in GiB on the command line, as bytes."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name} expects a number of GiB (e.g. 4 or 0.5), got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{name} expects a number of GiB more than 0, got {text!r}")
    return int(value * 2**30)


# --- settings from the environment, read once --------------------------------------------------

INTERNAL_ERRORS = ("report", "raise")


class Settings(NamedTuple):
    """diffcheck's settings from the environment (`settings()`)."""

    cache_dir: Path | None  # $DIFFCHECK_CACHE_DIR: the command line's compilation cache folder
    jax_cache_dir: Path | None  # $JAX_COMPILATION_CACHE_DIR: JAX's own folder, the fallback
    jax_cache_max_size: int | None  # $JAX_COMPILATION_CACHE_MAX_SIZE in bytes; None (or -1): no bound
    internal_errors: str  # $DIFFCHECK_INTERNAL_ERRORS: "report" (default) or "raise" (keep the traceback)
    max_memory: int | None = None  # $DIFFCHECK_MAX_MEMORY in GiB, as bytes: the memory budget of a check


def _folder_variable(environ, variable: str) -> Path | None:
    value = environ.get(variable)
    if value is None or value == "":
        return None
    if not value.strip():
        raise UsageError(f"${variable}={value!r} is not valid: give a folder, or leave it unset")
    return Path(value)


def read_settings(environ=None) -> Settings:
    """Reads and validates the settings from `environ` (default: `os.environ`)."""
    env = os.environ if environ is None else environ
    size = env.get("JAX_COMPILATION_CACHE_MAX_SIZE")
    bound = None
    if size not in (None, ""):
        try:
            number = int(size)
        except ValueError:
            number = None
        if number is None or number < -1:
            raise UsageError(
                f"$JAX_COMPILATION_CACHE_MAX_SIZE={size!r} is not valid: give a whole number of bytes, "
                "or -1 for no bound"
            )
        bound = None if number == -1 else number
    mode = env.get("DIFFCHECK_INTERNAL_ERRORS", "") or "report"
    if mode not in INTERNAL_ERRORS:
        raise UsageError(
            f"$DIFFCHECK_INTERNAL_ERRORS={mode!r} is not valid: valid values are {', '.join(INTERNAL_ERRORS)}"
        )
    memory = env.get("DIFFCHECK_MAX_MEMORY")
    budget = None
    if memory not in (None, ""):
        try:
            budget = parse_gib(memory, name="DIFFCHECK_MAX_MEMORY")
        except UsageError:
            raise UsageError(
                f"$DIFFCHECK_MAX_MEMORY={memory!r} is not valid: give a number of GiB more than 0, e.g. 4 or 0.5"
            ) from None
    return Settings(
        max_memory=budget,
        cache_dir=_folder_variable(env, "DIFFCHECK_CACHE_DIR"),
        jax_cache_dir=_folder_variable(env, "JAX_COMPILATION_CACHE_DIR"),
        jax_cache_max_size=bound,
        internal_errors=mode,
    )


@functools.cache
def settings() -> Settings:
    """The settings, read from the environment once per process (`reload_settings` reads them again)."""
    return read_settings()


def reload_settings() -> Settings:
    """Reads the environment again: the command line does so once per command."""
    settings.cache_clear()
    return settings()


def memory_budget() -> int:
    """The memory budget of one check in bytes: $DIFFCHECK_MAX_MEMORY (the command line's
    --max-memory sets it for its workers), or half the machine's memory."""
    try:
        budget = settings().max_memory
    except UsageError:  # the command line refuses a bad value up front
        budget = None
    if budget is None:
        try:
            budget = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
        except (ValueError, OSError, AttributeError):
            budget = 4 * 2**30
    return int(budget)


def raise_internal_errors() -> bool:
    """Whether `DIFFCHECK_INTERNAL_ERRORS=raise`: a bug in diffcheck propagates with its traceback
    instead of becoming the point's "internal error" line. A bad value counts as "report" here
    (the command line refuses it up front)."""
    try:
        return settings().internal_errors == "raise"
    except UsageError:
        return False
