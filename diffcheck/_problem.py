"""The front ends: what the user gave (a JAX function and its arguments, a case at a point) as one
neutral `Problem` — the differentiated parameters, their names, the data, the program the numeric
methods run and the one the exact method translates. The torch front end (`_torch`) builds the
same record; the pipeline (`_pipeline.check_point`) takes nothing else."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .errors import PointError, UsageError


@dataclass(frozen=True)
class Problem:
    """One function at one point, as every method sees it."""

    case: str  # the case's (or function's) name, as reports show it
    point: str  # the point's name
    fn: Callable  # fn(*leaves, **data): the program the numeric methods run
    leaves: tuple  # the differentiated parameters, float64 arrays
    names: tuple  # their names, e.g. "W1" or "args[0]['w']"
    data: dict = field(default_factory=dict)  # float arrays fn takes as keyword arguments, not differentiated
    # The exact method's program, when it is not fn: a JAX function of the same leaves and data (a
    # torch function's JAX twin). A prebuilt `translation` (a SymPy case) takes precedence over both.
    reference: Callable | None = None
    translation: object | None = None
    no_reference: str = ""  # why there is no exact program at all (the exact method is then unavailable)
    backend: object | None = None  # the numeric methods (None: JAX's, `_numeric.JAX`)
    expected: Mapping = field(default_factory=dict)  # parameter → values its derivative must match
    decimals: int = 4  # to so many decimal places
    route: str = "graph"  # the exact method's route: "graph" or "expression"

    def check_finite(self) -> None:
        """Refuses non-finite parameters and data: every method would meet NaN there."""
        for kind, items in (("parameter", zip(self.names, self.leaves, strict=True)), ("data", self.data.items())):
            for name, value in items:
                value = np.asarray(value)
                if not np.issubdtype(value.dtype, np.number):
                    continue
                bad = np.flatnonzero(~np.isfinite(value.reshape(-1)))  # 0-d values too
                if bad.size:
                    index = tuple(int(i) for i in np.unravel_index(bad[0], value.shape))
                    where = "[" + ",".join(map(str, index)) + "]" if index else ""
                    raise PointError(f"{kind} {name}{where} is {value[index]}: inputs must be finite")


def from_arguments(fn, args, argnums) -> Problem:
    """`check_grad(fn, *args)`: the floats, arrays and pytrees at `args[argnums]` are the parameters."""
    if not args:
        raise UsageError("check_grad needs at least one argument to differentiate in")
    argnums = normalise_argnums(argnums, len(args))
    paths_and_leaves, treedefs = [], []
    for i in argnums:
        flat, treedef = jax.tree_util.tree_flatten_with_path(args[i])
        treedefs.append(treedef)
        paths_and_leaves += [(f"args[{i}]{jax.tree_util.keystr(path)}", leaf) for path, leaf in flat]
    if not paths_and_leaves:
        raise UsageError(f"the differentiated arguments {list(argnums)} hold no arrays or floats (an empty pytree)")
    names = tuple(name for name, _ in paths_and_leaves)
    leaves = tuple(as_float_array(name, leaf) for name, leaf in paths_and_leaves)
    sizes = [treedef.num_leaves for treedef in treedefs]

    def on_leaves(*flat_leaves):
        full, start = [in_precision(a) for a in args], 0
        for i, treedef, size in zip(argnums, treedefs, sizes, strict=True):
            full[i] = jax.tree_util.tree_unflatten(treedef, flat_leaves[start : start + size])
            start += size
        return fn(*full)

    return Problem(getattr(fn, "__name__", type(fn).__name__), "args", on_leaves, leaves, names)


def from_case_point(case, point_name, point, programs: dict, translation=None) -> Problem:
    """A case at one of its points. `programs` caches the case's program per static data and
    shapes, so that the compiled programs are reused at every point."""
    if not isinstance(point, Mapping):
        raise PointError(f"a point must map argument names to values, got {type(point).__name__}")
    missing = [p for p in case.wrt if p not in point]
    if missing:
        raise PointError(f"no value for parameter(s) {', '.join(missing)}")
    data = {k: v for k, v in point.items() if k not in case.wrt}
    try:
        leaves = tuple(as_float_array(p, point[p]) for p in case.wrt)
    except UsageError as exc:
        raise PointError(str(exc)) from None
    # Float data is an argument of the compiled programs, so that they compile once per case;
    # anything else (ints, strings, None) may steer Python code and stays a constant.
    traced = {k: v for k, v in data.items() if _is_float_data(v)}
    static = {k: v for k, v in data.items() if k not in traced}
    key = (repr(sorted(static.items())), tuple(leaf.shape for leaf in leaves))
    if key not in programs:

        def on_leaves(*values, **floats):
            return case.fn(**static, **floats, **dict(zip(case.wrt, values, strict=True)))

        programs[key] = on_leaves
    return Problem(
        case.name,
        point_name,
        programs[key],
        leaves,
        tuple(case.wrt),
        data=traced,
        translation=translation,
        expected=case.expected.get(point_name, {}),
        decimals=case.decimals,
    )


def normalise_argnums(argnums, count: int) -> tuple:
    """argnums as a tuple of non-negative positions (default: every argument)."""
    if argnums is None:
        return tuple(range(count))
    if isinstance(argnums, bool) or not isinstance(argnums, int | tuple | list):
        raise UsageError(f"argnums must be an int or a tuple of ints, got {argnums!r}")
    argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not argnums:
        raise UsageError("argnums=() differentiates in nothing; give at least one argument position")
    bad = [i for i in argnums if isinstance(i, bool) or not isinstance(i, int) or not -count <= i < count]
    if bad:
        raise UsageError(f"argnums {bad} out of range for {count} argument(s): valid positions are 0 to {count - 1}")
    return tuple(i % count for i in argnums)


def _is_float_data(value) -> bool:
    return isinstance(value, float) or (
        isinstance(value, np.ndarray | jax.Array | np.floating) and np.issubdtype(value.dtype, np.floating)
    )


def in_precision(tree):
    """Data arrays in the precision JAX runs in now, so that a float32 run is float32 throughout."""

    def convert(x):
        if isinstance(x, np.ndarray | jax.Array) and np.issubdtype(x.dtype, np.floating):
            return jnp.asarray(x, dtype=jnp.zeros(()).dtype)
        return x

    return jax.tree_util.tree_map(convert, tree)


def as_float_array(name: str, value) -> np.ndarray:
    """A differentiated input as float64; a plain Python int counts as the float it names."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float64)
    kind = (
        "integer"
        if np.issubdtype(array.dtype, np.integer)
        else "complex"
        if np.iscomplexobj(array)
        else str(array.dtype)
    )
    raise UsageError(
        f"parameter {name}: {kind} values (dtype {array.dtype}) cannot be differentiated; "
        "pass real floats (e.g. x.astype(float)) or leave it out of the differentiated arguments"
    )
