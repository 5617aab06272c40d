"""A case: one function, the parameters it is differentiated in, and the points where it is checked.

A case module is ordinary Python: every `Case` at its top level, and every function decorated with
`@as_case`, is collected, in definition order. Case files run as code when loaded, as pytest's
conftest.py files do. In a folder, the files named like `CASE_FILES` are collected, in every
subfolder, skipping names that start with "_" or "." (as pytest does with test files).
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import inspect
import pkgutil
import sys
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CaseError

Point = Mapping[str, object]


@dataclass(frozen=True)
class Case:
    """What is differentiated, in what, and where.

    Attributes:
        name: unique name, used on the command line (`--case NAME`).
        fn: the function, called as `fn(**point)`; written in JAX (jax.numpy, jax.nn, lax).
        wrt: the names of the parameters differentiated; every other entry of a point is data.
        points: named points, each a mapping of every argument name to a number or array.
        sample: `sample(rng) -> point`, a random point inside the function's domain, drawn from
            a `numpy.random.Generator`; None if the case has only named points.
        expected: per point name, recorded derivative values `{param: value}` (e.g. a tutorial's
            printed gradient), checked to `decimals` decimal places.
        decimals: decimal places the expected values are checked to.
        tags: labels for selecting cases (`run --tag T`).
        orders: the derivative orders checked at every point (1 to 4; default only the first).
        expr: a SymPy expression of scalar symbols named as the parameters and data; when given it
            is the exact reference, and `fn` defaults to its `lambdify` to JAX.
        description: one line shown by `diffcheck list`.
    """

    name: str
    fn: Callable | None = None
    wrt: tuple = ()
    points: Mapping[str, Point] = field(default_factory=dict)
    sample: Callable[[np.random.Generator], Point] | None = None
    expected: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    decimals: int = 4
    tags: tuple = ()
    orders: tuple = (1,)
    expr: object = None
    description: str = ""
    source: str = ""  # where the case was defined (file), set by the loader

    def __post_init__(self):
        where = f"case {self.name!r}" + (f" ({self.source})" if self.source else "")
        if not isinstance(self.name, str) or not self.name.replace("-", "_").isidentifier():
            raise CaseError(f"case name {self.name!r} is not valid: use letters, digits, '_' and '-'")
        if self.expr is not None and self.fn is None:
            object.__setattr__(self, "fn", _lambdify(self.expr))
        if not callable(self.fn):
            raise CaseError(f"{where}: fn must be callable, got {type(self.fn).__name__}")
        object.__setattr__(self, "wrt", _names(self.wrt, "wrt", where, "a parameter name"))
        object.__setattr__(self, "tags", _names(self.tags, "tags", where, "a tag"))
        if not isinstance(self.orders, (tuple, list)):
            raise CaseError(
                f"{where}: orders must be a tuple of derivative orders from 1 to 4, e.g. (1, 2), "
                f"got {_got(self.orders)}"
            )
        object.__setattr__(self, "orders", tuple(self.orders))
        _check_fields(self, where)
        if not self.orders or any(not isinstance(k, int) or not 1 <= k <= 4 for k in self.orders):
            raise CaseError(f"{where}: orders must be integers from 1 to 4, got {self.orders}")
        if not self.wrt:
            raise CaseError(f"{where}: wrt names no parameter to differentiate")
        for name in self.wrt:
            if not isinstance(name, str) or not name.isidentifier():
                raise CaseError(f"{where}: parameter name {name!r} is not a Python identifier")
        if not self.points and self.sample is None:
            raise CaseError(f"{where}: give named points, a sampler, or both")
        for point_name, point in self.points.items():
            missing = [p for p in self.wrt if p not in point]
            if missing:
                raise CaseError(f"{where}, point {point_name!r}: no value for parameter(s) {', '.join(missing)}")
        unknown = [p for p in self.expected if p not in self.points]
        if unknown:
            raise CaseError(f"{where}: expected values for unknown point(s) {', '.join(unknown)}")
        for point_name, values in self.expected.items():
            stray = [p for p in values if p not in self.wrt]
            if stray:
                raise CaseError(f"{where}, expected values at {point_name!r}: {', '.join(stray)} not in wrt")
            for param, value in values.items():
                want, have = np.shape(value), np.shape(self.points[point_name][param])
                if want != have:
                    raise CaseError(
                        f"{where}, expected d/d{param} at {point_name!r} has shape {want}, the parameter {have}"
                    )

    def point_checks(self, points: int, order: int | None = None) -> int:
        """How many point checks `check_case(self, points=points, order=order)` makes."""
        count = len(self.points) + (points if self.sample is not None else 0)
        return count * (1 if order is not None else len(self.orders))

    def __repr__(self) -> str:  # short: pytest prints it for every test parametrized over cases
        return f"Case({self.name!r}, wrt={self.wrt!r}" + (f", source={self.source!r})" if self.source else ")")

    @classmethod
    def from_sympy(cls, name: str, expr, wrt=None, **kwargs) -> Case:
        """A case from a SymPy expression; `wrt` defaults to all its free symbols, by name."""
        import sympy

        if not isinstance(expr, sympy.Basic):  # never parse strings: case data is not code
            raise CaseError(f"case {name!r}: expr must be a SymPy expression, got {type(expr).__name__}")
        if wrt is None:
            wrt = tuple(sorted(s.name for s in expr.free_symbols))
        return cls(name=name, wrt=tuple(wrt), expr=expr, **kwargs)

    def draw(self, count: int, seed: int = 0) -> dict[str, Point]:
        """The named points, then `count` random ones, the same for the same seed and case name."""
        points = dict(self.points)
        if self.sample is not None and count > 0:
            rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
            for i in range(count):
                points[f"random-{i}"] = self.sample(rng)
        return points


def _got(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _names(value, field_name: str, where: str, one: str) -> tuple:
    """A name, or a tuple (list, set) of names, as a tuple; a string is one name, never its letters."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (tuple, list, set, frozenset)) or not all(isinstance(v, str) for v in value):
        raise CaseError(f"{where}: {field_name} must be {one} or a tuple of them (strings), got {_got(value)}")
    return tuple(value)


def _check_fields(case: Case, where: str) -> None:
    """The types of a case's fields, so that a malformed case is refused where it is defined."""
    if not isinstance(case.points, Mapping):
        raise CaseError(f"{where}: points must be a dict of point name -> {{argument: value}}, got {_got(case.points)}")
    for point_name, point in case.points.items():
        if not isinstance(point_name, str) or not point_name:
            raise CaseError(f"{where}: point names must be non-empty strings, got {_got(point_name)}")
        if not isinstance(point, Mapping):
            raise CaseError(
                f"{where}, point {point_name!r}: a point must be a dict of argument -> value, got {_got(point)}"
            )
    if case.sample is not None and not callable(case.sample):
        raise CaseError(f"{where}: sample must be a function of a numpy Generator (or None), got {_got(case.sample)}")
    if not isinstance(case.expected, Mapping) or not all(isinstance(v, Mapping) for v in case.expected.values()):
        raise CaseError(
            f"{where}: expected must be a dict of point name -> {{parameter: value}}, got {_got(case.expected)}"
        )
    if not isinstance(case.decimals, int) or isinstance(case.decimals, bool) or not 0 <= case.decimals <= 17:
        raise CaseError(f"{where}: decimals must be a whole number from 0 to 17, got {_got(case.decimals)}")
    if not isinstance(case.description, str):
        raise CaseError(f"{where}: description must be a string, got {_got(case.description)}")


def as_case(
    fn=None,
    /,
    *,
    wrt=None,
    points=None,
    sample=None,
    expected=None,
    decimals: int = 4,
    tags=(),
    orders=(1,),
    name: str | None = None,
    description: str | None = None,
):
    """Decorator: the function it decorates is a case, collected from its file like a `Case`.

        @diffcheck.as_case(points={"tutorial": dict(w=2.2, b=0.0)}, tags=("mine",))
        def neuron_loss(w, b, x=1.1, y=1.0):
            return -jnp.log(jax.nn.sigmoid(x * w + b))

    `wrt` defaults to the parameters without a default value (the others are data, their
    defaults filling any point that leaves them out); `name` to the function's name; `description`
    to the first line of its docstring. The other fields are `Case`'s. The function is returned
    unchanged (still callable); its case is `fn.__diffcheck_case__`.
    """

    def define(fn):
        if not callable(fn):
            raise CaseError(f"@as_case decorates a function, got {type(fn).__name__}")
        params = wrt
        if params is None:
            signature = inspect.signature(fn)
            params = tuple(
                p.name
                for p in signature.parameters.values()
                if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            )
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        fn.__diffcheck_case__ = Case(
            name=name or fn.__name__,
            fn=fn,
            wrt=params,
            points=points or {},
            sample=sample,
            expected=expected or {},
            decimals=decimals,
            tags=tags,
            orders=orders,
            description=doc[0] if description is None and doc else description or "",
        )
        return fn

    return define if fn is None else define(fn)


def _lambdify(expr):
    import sympy

    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    fn = sympy.lambdify(symbols, expr, modules="jax")
    names = [s.name for s in symbols]
    return lambda **point: fn(*(point[n] for n in names))


# --- loading -----------------------------------------------------------------------------------


def load_cases(*paths) -> list[Case]:
    """Cases from case files and folders; no paths: the built-in library.

    Raises `CaseError` naming every file that failed to load (with file and line); use
    `collect_cases` to keep the cases that did load alongside the messages.
    """
    cases, errors = collect_cases(*paths)
    if errors:
        raise CaseError("\n".join(errors))
    return cases


def collect_cases(*paths) -> tuple[list[Case], list[str]]:
    """Cases from files and folders (no paths: the built-in library), and one message per failure.

    A file that fails to import (or exits, `sys.exit`) is reported with its file and line; the
    other files still load.
    """
    cases, errors = [], []
    for source in sources(*paths):
        more, failed = load_source(source)
        cases += more
        errors += failed
    return cases, errors + duplicate_names(cases)


def sources(*paths) -> list[str]:
    """What `collect_cases` imports, in order: the library's module names (no paths), else case files."""
    if not paths:
        import diffcheck.cases as library

        modules = sorted(m.name for m in pkgutil.iter_modules(library.__path__) if not m.name.startswith("_"))
        return [f"diffcheck.cases.{m}" for m in modules]
    return [str(f) for f in _case_files(paths)]


def load_source(source: str) -> tuple[list[Case], list[str]]:
    """The cases of one module name ("diffcheck.cases.…") or case file, and its load error if any."""
    is_module = source.startswith("diffcheck.cases.") and not source.endswith(".py")
    try:
        module = importlib.import_module(source) if is_module else _import_file(Path(source))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a broken case file (even one that exits) must not stop the others
        return [], [_import_error(source, exc)]
    where = getattr(module, "__file__", source)
    cases = []
    for value in vars(module).values():
        if not isinstance(value, Case):
            # a decorated function, where it is defined (not where it is imported)
            own = getattr(value, "__module__", None) == module.__name__
            value = getattr(value, "__diffcheck_case__", None) if own else None
        if isinstance(value, Case):
            cases.append(value if value.source else _with_source(value, where))
    return cases, []


def duplicate_names(cases) -> list[str]:
    """One message per case name defined twice (each has `name` and `source`)."""
    seen, errors = {}, []
    for case in cases:
        if case.name in seen:
            errors.append(f"case name {case.name!r} defined twice: {seen[case.name]} and {case.source}")
        seen.setdefault(case.name, case.source)
    return errors


def _with_source(case: Case, source) -> Case:
    object.__setattr__(case, "source", str(source))
    return case


#: The file names collected from a folder (a file named on the command line is always collected).
CASE_FILES = ("cases.py", "case_*.py", "*_cases.py")


def is_case_file(path: Path) -> bool:
    """Whether a file found in a folder is a case file: named like `CASE_FILES`, not hidden."""
    path = Path(path)
    return not path.name.startswith(("_", ".")) and any(fnmatch.fnmatch(path.name, p) for p in CASE_FILES)


def _case_files(paths) -> list[Path]:
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*.py")):
                hidden = any(part.startswith(("_", ".")) for part in f.relative_to(p).parent.parts)
                if not hidden and is_case_file(f):
                    files.append(f)
        elif p.is_file():
            files.append(p)
        else:
            raise CaseError(f"no such case file or folder: {p}")
    return files


def _import_file(path: Path):
    name = f"diffcheck_user_cases.{path.stem}_{zlib.crc32(str(path.resolve()).encode()):08x}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import_error(where: str, exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"{exc.filename}:{exc.lineno}: syntax error: {exc.msg}"
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    # The deepest frame in the case file itself, else the deepest of all.
    own = [f for f in frames if f.tb_frame.f_code.co_filename == where]
    last = (own or frames or [None])[-1]
    loc = f"{last.tb_frame.f_code.co_filename}:{last.tb_lineno}" if last else where
    if isinstance(exc, CaseError):  # a malformed case: where it is defined, then what is wrong
        return f"{loc}: {exc}"
    if isinstance(exc, SystemExit):
        return f"{loc}: cannot load {where}: it called sys.exit({exc.code!r}) on import; a case file must not exit"
    return f"{loc}: cannot load {where}: {type(exc).__name__}: {exc}"
