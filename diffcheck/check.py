"""The data path for one function at one point: trace → three derivatives → compare → records.

`check_grad` checks any function at given arguments; `check_case` checks a library case at its
named and random points. Both end in `check_point`, which never raises because of a mismatch:
a method that cannot run is "unavailable" and the others go on.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import sympy

from . import autodiff, compare, exact, finite, symbolic
from .case import Case
from .errors import BudgetExceeded, PointError, Unavailable, UsageError
from .report import DirectionalTest, DotProductTest, Element, Expectation, PointResult, Report, StepSweep, format_index

#: Random points drawn per case besides its named points, unless told otherwise.
DEFAULT_POINTS = 2


def check_grad(
    fn,
    *args,
    argnums=None,
    order=1,
    dtype=None,
    rtol=None,
    atol=None,
    seed=0,
    device=None,
    timeout=None,
    strict=False,
    reference=None,
) -> Report:
    """Checks fn's derivatives with respect to its arguments at exactly `args`.

    Args:
        fn: a JAX-traceable function; a scalar output gives a gradient, an array output a Jacobian.
        *args: floats, NumPy/JAX arrays, or pytrees of them.
        argnums: the positions differentiated (an int or a tuple); default all of them.
        order: the derivative order, 1 to 4: the gradient/Jacobian, the Hessian, … in full when the
            tensor has at most 2048 entries; else (order 2 of a scalar) Hessian-vector products
            along random directions.
        dtype: "float64" (default) or "float32", the precision autodiff and finite differences run in.
        rtol, atol: when given, replace every method's own error bound: |a − b| ≤ atol + rtol·|truth|.
            Default: None, each method's error model (dtype epsilon, step, truncation estimate,
            measured rounding); the report states which was used.
        seed: seeds the random directions of Hessian-vector products and of the dot-product test.
        device: "cpu" or "gpu" (default: JAX's default device).
        timeout: seconds the symbolic method may take before it is reported as timed out
            (default: no limit); autodiff and finite differences still run.
        strict: when True, a point where the function has a kink fails; by default (False) a kink
            is a warning that reports the one-sided derivatives and autodiff's convention.
        reference: for a torch function (a tensor among `args`, or an `nn.Module`): a JAX function
            of the same arguments whose exact derivative is the symbolic method (`diffcheck.pytorch`).

    Returns a `Report`; it never raises because the derivatives disagree (see `assert_grad`).
    """
    from . import pytorch

    if pytorch.is_torch(fn, args):  # torch autograd is then the autodiff under test
        options = dict(argnums=argnums, order=order, dtype=dtype, rtol=rtol, atol=atol, timeout=timeout)
        return pytorch.check_grad(fn, *args, reference=reference, **options)
    if reference is not None:
        raise UsageError("reference= is for torch functions (pass torch tensors); a JAX function is its own reference")
    if argnums is None:
        argnums = tuple(range(len(args)))
    elif isinstance(argnums, int):
        argnums = (argnums,)
    argnums = tuple(argnums)
    if not args:
        raise UsageError("check_grad needs at least one argument to differentiate in")
    bad = [i for i in argnums if not isinstance(i, int) or not -len(args) <= i < len(args)]
    if bad:
        raise UsageError(f"argnums {bad} out of range for {len(args)} argument(s)")
    argnums = tuple(i % len(args) for i in argnums)

    paths_and_leaves, treedefs = [], []
    for i in argnums:
        flat, treedef = jax.tree_util.tree_flatten_with_path(args[i])
        treedefs.append(treedef)
        paths_and_leaves += [(f"args[{i}]{jax.tree_util.keystr(path)}", leaf) for path, leaf in flat]
    names = [name for name, _ in paths_and_leaves]
    leaves = [_as_float_array(name, leaf) for name, leaf in paths_and_leaves]
    sizes = [treedef.num_leaves for treedef in treedefs]

    def on_leaves(*flat_leaves):
        full, start = [_in_precision(a) for a in args], 0
        for i, treedef, size in zip(argnums, treedefs, sizes):
            full[i] = jax.tree_util.tree_unflatten(treedef, flat_leaves[start : start + size])
            start += size
        return fn(*full)

    name = getattr(fn, "__name__", type(fn).__name__)
    start = time.perf_counter()
    point = check_point(
        name,
        "args",
        on_leaves,
        leaves,
        names,
        dtype=dtype,
        device=device,
        order=order,
        rtol=rtol,
        atol=atol,
        timeout=timeout,
        seed=seed,
        strict=strict,
    )
    return Report((point,), seconds=time.perf_counter() - start)


def assert_grad(fn, *args, **options) -> Report:
    """`check_grad`, raising `AssertionError` when the report is not ok.

    The message names the argument, the element index, each method's value and the odd one out.
    """
    __tracebackhide__ = True  # pytest shows the test's line, not diffcheck's frames
    report = check_grad(fn, *args, **options)
    if not report.ok:
        raise AssertionError(f"diffcheck: derivatives disagree\n{report}")
    return report


def assert_case(case: Case, **options) -> Report:
    """`check_case`, raising `AssertionError` with the report when it is not ok."""
    __tracebackhide__ = True
    report = check_case(case, **options)
    if not report.ok:
        raise AssertionError(f"diffcheck: case {case.name!r}: derivatives disagree\n{report}")
    return report


def check_case(
    case: Case,
    *,
    dtype=None,
    device=None,
    points=None,
    seed=0,
    order=None,
    rtol=None,
    atol=None,
    timeout=None,
    strict=False,
) -> Report:
    """Checks a case at its named points and `points` random ones (default 2) drawn with `seed`.

    `order` (default: each of the case's `orders`) is the derivative order checked; `timeout`
    bounds the symbolic method per point, in seconds; other options as `check_grad`.
    """
    start = time.perf_counter()
    count = DEFAULT_POINTS if points is None else points
    try:
        drawn = case.draw(count, seed)
    except Exception as exc:  # noqa: BLE001 - a broken sampler fails this case only
        message = f"drawing random points failed: {type(exc).__name__}: {exc}"
        return Report((_failed(case.name, "random", dtype, device, message),), seconds=time.perf_counter() - start)
    results, programs = [], {}
    options = dict(dtype=dtype, device=device, rtol=rtol, atol=atol, timeout=timeout, seed=seed, strict=strict)
    for k in case.orders if order is None else (order,):
        for point_name, point in drawn.items():
            results.append(_check_case_point(case, point_name, point, programs, order=k, **options))
    return Report(tuple(results), seconds=time.perf_counter() - start)


def _check_case_point(case, point_name, point, programs, *, dtype, device, **options) -> PointResult:
    if not isinstance(point, Mapping):
        return _failed(
            case.name,
            point_name,
            dtype,
            device,
            f"a point must map argument names to values, got {type(point).__name__}",
        )
    missing = [p for p in case.wrt if p not in point]
    if missing:
        return _failed(case.name, point_name, dtype, device, f"no value for parameter(s) {', '.join(missing)}")
    data = {k: v for k, v in point.items() if k not in case.wrt}
    try:
        leaves = [_as_float_array(p, point[p]) for p in case.wrt]
    except UsageError as exc:
        return _failed(case.name, point_name, dtype, device, str(exc))
    # Float data is an argument of the compiled programs, so that they compile once per case;
    # anything else (ints, strings, None) may steer Python code and stays a constant.
    traced = {k: v for k, v in data.items() if _is_float_data(v)}
    static = {k: v for k, v in data.items() if k not in traced}
    key = (repr(sorted(static.items())), tuple(leaf.shape for leaf in leaves))
    if key not in programs:

        def on_leaves(*values, **floats):
            return case.fn(**static, **floats, **dict(zip(case.wrt, values)))

        programs[key] = on_leaves
    translation = None
    if case.expr is not None:
        translation = _expression_translation(case, data)
    return check_point(
        case.name,
        point_name,
        programs[key],
        leaves,
        list(case.wrt),
        data=traced,
        dtype=dtype,
        device=device,
        translation=translation,
        expected=case.expected.get(point_name, {}),
        decimals=case.decimals,
        **options,
    )


def _expression_translation(case, data):
    import sympy

    # Data symbols become their values (exactly, as binary rationals); parameters become real symbols.
    symbols = {p: sympy.Symbol(symbolic.PREFIX + p, real=True) for p in case.wrt}
    subs = {}
    for s in case.expr.free_symbols:
        if s.name in data:
            subs[s] = symbolic.to_sympy(float(data[s.name]))
        elif s.name in symbols:
            subs[s] = symbols[s.name]
    return symbolic.from_expression(case.expr.xreplace(subs), list(symbols.values()))


def _is_float_data(value) -> bool:
    return isinstance(value, float) or (
        isinstance(value, (np.ndarray, jax.Array, np.floating)) and np.issubdtype(value.dtype, np.floating)
    )


def _in_precision(tree):
    """Data arrays in the precision JAX runs in now, so that a float32 run is float32 throughout."""

    def convert(x):
        if isinstance(x, (np.ndarray, jax.Array)) and np.issubdtype(x.dtype, np.floating):
            return jnp.asarray(x, dtype=jnp.zeros(()).dtype)
        return x

    return jax.tree_util.tree_map(convert, tree)


def _failed(case, point, dtype, device, message) -> PointResult:
    return PointResult(case, point, str(dtype or "float64"), str(device or "default"), {}, error=message)


def _as_float_array(name: str, value) -> np.ndarray:
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


def _symbol_names(names) -> list[str]:
    out = []
    for i, name in enumerate(names):
        clean = re.sub(r"\W+", "_", name).strip("_") or "p"
        out.append(clean if clean.isidentifier() else f"p{i}_{clean}")
    return out


def check_point(
    case,
    point,
    fn,
    leaves,
    names,
    *,
    data=None,
    dtype=None,
    device=None,
    order=1,
    rtol=None,
    atol=None,
    translation=None,
    expected=None,
    decimals=4,
    timeout=None,
    route="graph",
    seed=0,
    strict=False,
) -> PointResult:
    """Checks `fn(*leaves, **data)`'s derivatives in every leaf, three ways, and compares them.

    `data` holds float arrays that are not differentiated; they are arguments of the compiled
    programs, so calls with the same `fn` reuse the compilations. `timeout` bounds the symbolic
    method (seconds). `order` > 1 checks the full derivative tensor when it has at most
    `MAX_TENSOR` entries, else (order 2 of a scalar) Hessian-vector products along `DIRECTIONS`
    random directions drawn with `seed`. A problem with the function at this point becomes the
    point's error; a bug in diffcheck becomes an error that says so. Neither stops the others.
    """
    start = time.perf_counter()
    run_dtype = autodiff.dtype(dtype)
    dev = autodiff.device(device)
    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= MAX_ORDER:
        raise UsageError(f"order must be an integer from 1 to {MAX_ORDER}, got {order!r}")
    data = dict(data or {})
    try:
        _check_finite(names, leaves, data)
        # The point as the run's dtype sees it: every method (and the exact truth) is evaluated there.
        leaves = [np.asarray(leaf, run_dtype).astype(np.float64) for leaf in leaves]
        with jax.default_device(dev):
            numeric = _numeric(fn, leaves, data, run_dtype, order, seed)
        symbolic_part = _symbolic(fn, leaves, names, data, numeric, translation, timeout, route)
    except PointError as exc:
        return _failed(case, point, run_dtype.name, dev.platform, str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken point must not stop the others
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return _failed(
            case, point, run_dtype.name, dev.platform, f"internal error in diffcheck (please report): {message}"
        )
    methods, values, bounds = dict(numeric.methods), dict(numeric.values), dict(numeric.bounds)
    methods[compare.SYMBOLIC], value_sym, exact, kinks = symbolic_part
    if exact is not None:
        values[compare.SYMBOLIC] = exact
        bounds[compare.SYMBOLIC] = compare.symbolic_bound(exact)
    shapes = [leaf.shape for leaf in leaves]
    value = {"jax": float(numeric.f64[0]) if numeric.f64.size else float("nan")}
    if value_sym is not None:
        value["symbolic"] = value_sym
    labels = _labels(names, shapes, numeric.out_shape, numeric.plan)
    elements = _elements(values, bounds, names, shapes, labels, numeric.notes, kinks, rtol, atol, order == 1)
    expectations = _expectations(expected or {}, values, names, shapes, decimals) if order == 1 else []
    order_methods = {m: methods[m] for m in (*compare.METHODS, compare.FORWARD) if m in methods}
    tolerance = "error model" if rtol is None and atol is None else f"rtol={rtol or 0:g}, atol={atol or 0:g}"
    directional = () if numeric.along is None else (_directional_test(numeric.along, values, bounds, run_dtype),)
    sweeps = ()
    if exact is not None and order == 1:
        with jax.default_device(dev):
            sweeps = _sweeps(fn, leaves, data, run_dtype, exact, numeric.steps, elements, kinks)
    return PointResult(
        case,
        point,
        run_dtype.name,
        dev.platform,
        order_methods,
        value,
        tuple(elements),
        tuple(expectations),
        seconds=time.perf_counter() - start,
        order=order,
        checks=numeric.checks,
        dot_product=numeric.dot_product,
        directional=directional,
        sweeps=sweeps,
        tolerance=tolerance,
        strict=strict,
    )


#: Highest derivative order checked.
MAX_ORDER = 4
#: Largest derivative tensor (entries) checked in full; beyond it, order 2 uses directions.
MAX_TENSOR = 2048
#: Random directions v for Hessian-vector products H v, and for the complex step of large N.
DIRECTIONS = 2
#: Above this many parameters the O(N²) extras give way: the complex step runs along DIRECTIONS
#: random directions instead of once per element, and finite differences measure their rounding
#: noise on LADDER_SAMPLE elements' stencils. Symbolic, autodiff and finite differences stay per element.
LARGE = 16_384
LADDER_SAMPLE = 1024


class _Plan(NamedTuple):
    """What is checked: the order, and the directions of Hessian-vector products (or None: in full)."""

    order: int
    directions: np.ndarray | None

    def describe(self) -> str:
        if self.directions is None:
            return "full" if self.order > 1 else "gradient"
        return f"Hessian-vector products along {len(self.directions)} random directions"

    @classmethod
    def choose(cls, order, outputs, params, seed, dtype):
        if order == 1 or outputs * params**order <= MAX_TENSOR:
            return cls(order, None)
        if order == 2 and outputs == 1:
            rng = np.random.default_rng([seed, params])
            return cls(order, rng.standard_normal((DIRECTIONS, params)).astype(dtype).astype(np.float64))
        raise PointError(
            f"order {order} of {outputs} output(s) in {params} parameters has {outputs * params**order:,} entries, "
            f"over the {MAX_TENSOR:,} checked in full; Hessian-vector products cover order 2 of a scalar"
        )


class _Numeric(NamedTuple):
    f64: np.ndarray  # the function's flat output in float64
    f32: np.ndarray  # and in float32: their difference measures cancellation inside the function
    out_shape: tuple
    methods: dict
    values: dict
    bounds: dict
    steps: np.ndarray  # finite-difference steps per parameter element
    notes: dict
    plan: _Plan
    dot_product: DotProductTest | None
    along: tuple | None  # large N: (directions V, complex step's J vᵀ, its measured spread)
    checks: str  # what was checked, as the report states it


def _numeric(fn, leaves, data, run_dtype, order, seed) -> _Numeric:
    """Autodiff (both modes) and finite differences of the order-`order` derivative, with bounds."""
    flat64 = np.concatenate([leaf.reshape(-1) for leaf in leaves])
    F = _flat_program(fn, tuple(leaf.shape for leaf in leaves))
    methods, values, bounds = {}, {}, {}
    # The same autodiff in the other precision measures autodiff's rounding error (a wrong rule
    # is wrong in both, so it cannot widen the bound): float32 for a float64 run, and vice versa.
    ladder_dtype = np.dtype(np.float32 if run_dtype == np.float64 else np.float64)

    def value(dtype):
        """F(θ) in `dtype` and F's reverse-mode Jacobian (or why F has none): one program, which
        order 1 needs anyway for its autodiff and ladder Jacobians."""
        with autodiff.precision(dtype):
            theta = flat64.astype(dtype)
            try:
                return autodiff.value_and_jacobian(F, theta, data)
            except Unavailable as exc:  # the value alone says whether F itself fails
                return autodiff.value(F, theta, data), exc

    try:
        f64, reverse64 = value(np.dtype(np.float64))
        with autodiff.precision(np.float64):
            out_leaves = jax.tree_util.tree_leaves(jax.eval_shape(functools.partial(fn, **data), *leaves))
        out_shape = out_leaves[0].shape if len(out_leaves) == 1 else f64.shape
    except Exception as exc:  # noqa: BLE001 - the user's function failed: say why
        raise PointError(_function_failed(exc)) from None
    _check_output(f64, "float64")
    f64 = f64.astype(np.float64)
    plan = _Plan.choose(order, f64.size, flat64.size, seed, run_dtype)
    f32, reverse32 = value(np.dtype(np.float32))
    if run_dtype != np.float64:  # the float64 output is checked above
        _check_output(f32, run_dtype.name)
    f32 = f32.astype(np.float64)

    # From here on F is the function whose Jacobian is the derivative checked.
    f_run, jac, ladder = (f64, reverse64, reverse32) if run_dtype == np.float64 else (f32, reverse32, reverse64)
    try:
        if order > 1:
            if plan.directions is not None:
                F, data = autodiff.derivative(F, 2, directional=True), (data, plan.directions)
            else:
                F = autodiff.derivative(F, order)
            with autodiff.precision(ladder_dtype):
                _, ladder = autodiff.value_and_jacobian(F, flat64.astype(ladder_dtype), data)
            with autodiff.precision(run_dtype):
                f_run, jac = autodiff.value_and_jacobian(F, flat64.astype(run_dtype), data)
        for result in (jac, ladder):
            if isinstance(result, Unavailable):  # e.g. a while_loop: JAX has no reverse mode for it
                raise result
    except Unavailable as exc:
        raise PointError(f"autodiff failed: {exc}") from None
    values[compare.AUTODIFF] = jac
    bounds[compare.AUTODIFF] = compare.autodiff_bound(jac, run_dtype, ladder, ladder_dtype)
    methods[compare.AUTODIFF] = "ok"
    with autodiff.precision(run_dtype):
        theta = flat64.astype(run_dtype)
        try:
            values[compare.FORWARD] = autodiff.forward_jacobian(F, theta, data)
        except Unavailable as exc:
            methods[compare.FORWARD] = f"unavailable: {exc}"
        else:
            bounds[compare.FORWARD] = compare.autodiff_bound(values[compare.FORWARD], run_dtype, ladder, ladder_dtype)
            methods[compare.FORWARD] = "ok"
        # Above order 1, F's values are autodiff derivatives, as noisy as autodiff's own bound.
        floor = compare.ABSOLUTE_FLOOR if order > 1 else 0.0
        large = flat64.size > LARGE
        sample = LADDER_SAMPLE if large else None
        fd = finite.jacobian(
            F, theta, data, run_dtype, ladder_dtype, noise_floor=floor, ladder_sample=sample, f0=f_run.astype(run_dtype)
        )
    # The same absolute floor as autodiff's: terms of size 1 that cancel (σ(35) − 1) leave float64
    # rounding of 1e-16 in F that neither precision shows.
    values[compare.FINITE], bounds[compare.FINITE] = fd.jac, fd.bound + compare.ABSOLUTE_FLOOR
    dot = _dot_product_test(values, methods, bounds[compare.AUTODIFF], run_dtype, seed)
    methods[compare.FINITE] = "ok"
    checks, along = [plan.describe()], None
    if large and flat64.size > LADDER_SAMPLE:
        checks.append(f"finite-difference noise measured on {LADDER_SAMPLE:,} of {flat64.size:,} elements")
    if plan.order == 1:
        why = finite.not_analytic(F, flat64, data)
        if why:
            methods[compare.COMPLEX] = f"unavailable: not analytic ({why})"
        else:
            try:
                if large:
                    along = _complex_step_along(F, flat64, data, run_dtype, ladder_dtype, seed)
                else:
                    with autodiff.precision(run_dtype):
                        cs = finite.complex_step(F, flat64.astype(run_dtype), data, run_dtype)
                    with autodiff.precision(ladder_dtype):
                        cs_ladder = finite.complex_step(F, flat64.astype(ladder_dtype), data, ladder_dtype)
            except Exception as exc:  # noqa: BLE001 - e.g. a primitive without complex support
                methods[compare.COMPLEX] = f"unavailable: {type(exc).__name__}: {exc}".splitlines()[0]
            else:
                if large:
                    methods[compare.COMPLEX] = f"directional: {DIRECTIONS} random directions"
                    checks.append(f"complex step along {DIRECTIONS} random directions ({flat64.size:,} parameters)")
                else:
                    values[compare.COMPLEX] = cs
                    bounds[compare.COMPLEX] = compare.autodiff_bound(cs, run_dtype, cs_ladder, ladder_dtype)
                    methods[compare.COMPLEX] = "ok"
    return _Numeric(
        f64, f32, out_shape, methods, values, bounds, fd.steps, fd.notes, plan, dot, along, "; ".join(checks)
    )


def _complex_step_along(F, flat64, data, run_dtype, ladder_dtype, seed) -> tuple:
    """(V, J Vᵀ by the complex step, its rounding spread) for DIRECTIONS seeded random directions."""
    rng = np.random.default_rng([seed, flat64.size, 1])
    V = rng.standard_normal((DIRECTIONS, flat64.size)).astype(run_dtype).astype(np.float64)
    with autodiff.precision(run_dtype):
        cs = finite.complex_step_along(F, flat64.astype(run_dtype), data, run_dtype, V)
    with autodiff.precision(ladder_dtype):
        ladder = finite.complex_step_along(F, flat64.astype(ladder_dtype), data, ladder_dtype, V)
    scale = min(1.0, np.finfo(run_dtype).eps / np.finfo(ladder_dtype).eps)
    return V, cs, np.abs(cs - ladder) * scale


def _directional_test(along, values, bounds, dtype) -> DirectionalTest:
    """The complex step's J v against the exact J v (else reverse-mode autodiff's), each direction.

    The bound: the complex step's own (its spread across precisions, rounding of the sum's terms,
    the absolute floor once per term) plus the reference's bound carried through the sum.
    """
    V, cs, spread = along
    reference = compare.SYMBOLIC if compare.SYMBOLIC in values else compare.AUTODIFF
    J = values[reference]
    expected = V @ J.T  # (directions, outputs)
    size = np.abs(V) @ np.abs(J).T
    eps = np.finfo(dtype).eps
    bound = (
        4 * spread
        + 128 * eps * size
        + compare.ABSOLUTE_FLOOR * np.abs(V).sum(axis=1, keepdims=True)
        + np.abs(V) @ bounds[reference].T
    )
    if not (np.all(np.isfinite(cs)) and np.all(np.isfinite(expected)) and np.all(np.isfinite(bound))):
        return DirectionalTest(compare.COMPLEX, "unavailable: a derivative is not finite here", reference, len(V))
    ok = bool(np.all(np.abs(cs - expected) <= bound))
    flat = (tuple(a.reshape(-1).tolist()) for a in (cs, expected, bound))
    return DirectionalTest(compare.COMPLEX, "ok" if ok else "mismatch", reference, len(V), *flat)


#: Elements per point whose finite-difference error is swept over steps 1e-1 … 1e-12.
SWEEP_ELEMENTS = 3


def _sweeps(fn, leaves, data, run_dtype, exact, steps, elements, kinks) -> tuple:
    """The V-shaped error curve of plain central differences for a few elements of output 0: the
    first element of each parameter (up to SWEEP_ELEMENTS), away from kinks."""
    offsets = _offsets([leaf.shape for leaf in leaves])
    chosen = [int(k) for k in offsets[:-1] if k not in kinks.at and k not in kinks.crossed][:SWEEP_ELEMENTS]
    if not chosen:
        return ()
    F = _flat_program(fn, tuple(leaf.shape for leaf in leaves))
    flat = np.concatenate([leaf.reshape(-1) for leaf in leaves]).astype(run_dtype)
    out = []
    with autodiff.precision(run_dtype):
        for k in chosen:
            d = finite.central_differences(F, flat, data, k, finite.SWEEP_STEPS, run_dtype)[:, 0]
            truth = exact[0, k]
            scale = abs(truth) if truth != 0 else max(float(np.abs(exact[0]).max()), 1e-300)
            errors = np.abs(d - truth) / scale
            h = np.asarray(finite.SWEEP_STEPS) * max(abs(float(flat[k])), 1.0)
            best = float(h[np.nanargmin(errors)]) if np.isfinite(errors).any() else float("nan")
            out.append(
                StepSweep(
                    elements[k].name,
                    tuple(h.tolist()),
                    tuple(errors.tolist()),
                    float(steps[k]),
                    best,
                    finite.convergence_order(h, errors),
                )
            )
    return tuple(out)


#: Seeded direction pairs (u, v) of the forward/reverse dot-product test.
DOT_DIRECTIONS = 3


def _dot_product_test(values, methods, bound, dtype, seed) -> DotProductTest:
    """uᵀ(J v) by forward mode against (Jᵀu)ᵀ v by reverse mode for seeded random u, v.

    The forward-mode Jacobian is jvp along each basis vector, the reverse-mode one vjp along each:
    no finite differences, both exact up to rounding, so they must agree to about eps times the
    sizes of the terms — a jvp and a vjp rule that disagree (a transpose rule that forgets to
    transpose, a rule right in one mode only) cannot hide in a truncation error.
    """
    if compare.FORWARD not in values:
        return DotProductTest(methods.get(compare.FORWARD, "unavailable: no forward mode"))
    J_rev, J_fwd = values[compare.AUTODIFF], values[compare.FORWARD]
    rng = np.random.default_rng([seed, *J_rev.shape])
    U = rng.standard_normal((DOT_DIRECTIONS, J_rev.shape[0])).astype(dtype).astype(np.float64)
    V = rng.standard_normal((DOT_DIRECTIONS, J_rev.shape[1])).astype(dtype).astype(np.float64)
    forward = np.einsum("di,ij,dj->d", U, J_fwd, V)
    reverse = np.einsum("di,ij,dj->d", U, J_rev, V)
    if not (np.all(np.isfinite(forward)) and np.all(np.isfinite(reverse)) and np.all(np.isfinite(bound))):
        return DotProductTest("unavailable: a derivative is not finite here")
    # Each of J's entries may be off by its own bound in either mode; the sums round too.
    bounds = tuple(
        2 * float(np.abs(u) @ bound @ np.abs(v)) + compare.dot_product_bound(u, J_rev, v, dtype) for u, v in zip(U, V)
    )
    ok = all(abs(f - r) <= b for f, r, b in zip(forward, reverse, bounds))
    return DotProductTest("ok" if ok else "mismatch", tuple(forward.tolist()), tuple(reverse.tolist()), bounds)


def _symbolic(fn, leaves, names, data, numeric, translation, timeout, route):
    """(status, function value, exact Jacobian or None, kinks) of the symbolic method.

    route "graph" (default) applies the chain rule backwards over the expression graph, each node
    differentiated by SymPy; "expression" differentiates each whole output expression with
    `sympy.diff` per parameter — exact too, but its cost grows with expression size × parameters.
    """
    budget = symbolic.Budget(timeout)
    point = np.concatenate([leaf.reshape(-1) for leaf in leaves])
    try:
        if translation is None:
            translation = symbolic.translate(functools.partial(fn, **data), leaves, _symbol_names(names), budget)
        outputs = [e for out in translation.outputs for e in out.reshape(-1)]
        symbols = [s for sym in translation.symbols for s in sym.reshape(-1)]
        lets = translation.definitions
        f_sym = np.array([float(v) for v in exact.evaluate(outputs, symbols, point, lets, budget=budget)])
        value = float(f_sym[0]) if f_sym.size else None
        mismatch = _value_mismatch(f_sym, numeric.f64, translation.eps, numeric.f32)
        if mismatch:
            # Cancellation of large intermediates (softplus(35) − 35 = 6e-16 exactly, 0 in float64)
            # is invisible in both precisions: allow rounding of the largest value the program computes.
            nodes = exact.topological(outputs, lets)
            inner = np.abs(exact.evaluate_float(nodes, symbols, point[None, :], lets))
            magnitude = float(np.max(inner[np.isfinite(inner)], initial=0.0))
            mismatch = _value_mismatch(f_sym, numeric.f64, translation.eps, numeric.f32, magnitude)
        if mismatch:
            return f"rejected: {mismatch}", value, None, _Kinks.none()
        kinks = _Kinks.find(outputs, symbols, point, numeric.steps, lets, one_sided=numeric.plan.order == 1)
        level = _derivative_expressions(outputs, symbols, numeric.plan, budget, lets)
        if route == "graph":
            jac = exact.jacobian(level, symbols, point, lets, budget=budget)
        else:
            level = symbolic.inline(level, lets)
            jac_exprs = symbolic.jacobian([np.array(level, dtype=object)], translation.symbols, budget)
            jac = np.array([float(v) for v in symbolic.evaluate(jac_exprs, translation.symbols, leaves)])
            jac = jac.reshape(jac_exprs.shape)
        return "ok", value, jac, kinks
    except BudgetExceeded as exc:
        return str(exc), None, None, _Kinks.none()
    except Unavailable as exc:
        return f"unavailable: {exc}", None, None, _Kinks.none()


def _derivative_expressions(outputs, symbols, plan, budget, lets) -> list:
    """The expressions whose Jacobian is the derivative checked (the outputs themselves at order 1)."""
    level = list(outputs)
    if plan.directions is not None:
        gradient = exact.gradient_expressions(level[0], symbols, lets)
        return [
            sympy.Add(*[g * symbolic.to_sympy(v) for g, v in zip(gradient, direction)]) for direction in plan.directions
        ]
    for _ in range(plan.order - 1):
        budget.check()
        level = [g for expr in level for g in exact.gradient_expressions(expr, symbols, lets)]
    return level


class _Kinks(NamedTuple):
    """Where the function is not smooth, per parameter element (flat index)."""

    at: frozenset  # elements where a kink's argument vanishes: the point may be non-differentiable
    crossed: frozenset  # elements whose finite-difference stencil crosses a kink
    sides: dict  # element in `at` → (left, right) one-sided derivatives of every output (exact)

    @classmethod
    def none(cls):
        return cls(frozenset(), frozenset(), {})

    @classmethod
    def find(cls, outputs, symbols, theta, steps, lets, one_sided=True):
        args = symbolic.kink_arguments(outputs, lets)
        if not args:
            return cls.none()
        # Signs at the point and at θ ± hⱼeⱼ for every element j: the ends of each stencil.
        at, crossed = exact.stencil_kinks(args, symbols, theta, steps, lets)
        at = np.flatnonzero(at).tolist()
        sides = _one_sided(outputs, symbols, theta, lets, at[:MAX_KINKS]) if one_sided else {}
        return cls(frozenset(at), frozenset(np.flatnonzero(crossed).tolist()), sides)


#: Kink elements per point whose one-sided derivatives are computed (each costs four evaluations).
MAX_KINKS = 32
#: Digits and relative step of the one-sided differences at a kink: a step of 1e-20 at 60 digits
#: leaves 40 digits after the subtraction, and one extrapolation cancels the O(step) term.
_KINK_DIGITS, _KINK_STEP = 60, 1e-20


def _one_sided(outputs, symbols, theta, lets, elements) -> dict:
    """(left, right) derivatives of every output in each element, from the exact program at 60 digits.

    Where a one-sided quotient does not settle (a jump, not a kink), that side is NaN.
    """
    out = {}
    with mpmath.workdps(_KINK_DIGITS):
        base = [mpmath.mpf(float(v)) for v in theta]
        f0 = exact.evaluate(outputs, symbols, base, lets, digits=_KINK_DIGITS)
        for k in elements:
            t = mpmath.mpf(_KINK_STEP) * max(1, abs(float(theta[k])))
            sides = []
            for sign in (-1, 1):
                quotients = []
                for step in (t, t / 2):
                    moved = list(base)
                    moved[k] = base[k] + sign * step
                    f = exact.evaluate(outputs, symbols, moved, lets, digits=_KINK_DIGITS)
                    quotients.append([(a - b) / (sign * step) for a, b in zip(f, f0)])
                side = []
                for coarse, fine in zip(*quotients):
                    settled = abs(coarse - fine) <= mpmath.mpf(10) ** -8 * (1 + abs(fine))
                    side.append(float(2 * fine - coarse) if settled else math.nan)
                sides.append(np.array(side))
            out[k] = tuple(sides)
    return out


def _check_finite(names, leaves, data):
    for kind, items in (("parameter", zip(names, leaves)), ("data", data.items())):
        for name, value in items:
            value = np.asarray(value)
            if not np.issubdtype(value.dtype, np.number):
                continue
            bad = np.argwhere(~np.isfinite(value))
            if bad.size:
                index = tuple(int(i) for i in bad[0])
                raise PointError(f"{kind} {name}{format_index(index)} is {value[index]}: inputs must be finite")


def _function_failed(exc: Exception) -> str:
    message = f"{type(exc).__name__}: {exc}".splitlines()[0]
    name = type(exc).__name__
    if "Concretization" in name or "TracerBool" in name or "TracerInteger" in name or "TracerArray" in name:
        return (
            f"the function is not traceable by JAX ({message}): Python control flow on a traced value; "
            "use jnp.where or lax.cond instead of if/while on array values"
        )
    return f"the function raised {message}"


@functools.lru_cache(maxsize=64)
def _flat_program(fn, shapes):
    """`fn(*leaves, **data)` as F(θ, data) of one flat vector θ, returning one flat vector.

    Cached on (fn, shapes) so that JAX's compilation caches, keyed on F, hit across points.
    """
    bounds = _offsets(shapes)

    def F(theta, data):
        parts = [theta[a:b].reshape(s) for a, b, s in zip(bounds[:-1], bounds[1:], shapes)]
        outs = jax.tree_util.tree_leaves(fn(*parts, **data))
        return jnp.concatenate([jnp.ravel(o) for o in outs])

    return F


def _check_output(f, dtype_name):
    f = np.asarray(f)
    if not np.issubdtype(f.dtype, np.floating):
        raise PointError(f"the function returned {f.dtype} values; a real floating-point output is needed")
    bad = np.flatnonzero(~np.isfinite(f.reshape(-1)))
    if bad.size:
        raise PointError(
            f"output element {int(bad[0])} is {f.reshape(-1)[bad[0]]} in {dtype_name} at this point "
            "(outside the function's domain, or an overflow)"
        )


def _value_mismatch(f_sym, f_jax, eps, f32=None, magnitude=0.0) -> str:
    """Why the translation's function value differs from JAX's (float64), or '' when it agrees.

    A translation bug is an O(1) error; 1e-9 relative (or 1000 eps of a float the program rounds
    to inside) leaves room for JAX's own rounding in float64. `f32`, the same program in float32,
    measures cancellation inside it (softplus(35) − 35 is 6e-16 exactly, 0 in float64): its
    distance from float64, scaled to float64's epsilon, widens the room by as much. `magnitude`,
    the largest intermediate value, allows 1000 float64 rounding errors of it.
    """
    if f_sym.shape != f_jax.shape:
        return f"the translation has {f_sym.size} outputs, JAX {f_jax.size}"
    scale = np.abs(f_jax).max(initial=0.0)
    tol = max(1e-9, 1e3 * eps) * (np.abs(f_jax) + scale) + 1e-300
    if f32 is not None and f32.shape == f_jax.shape:
        ratio = np.finfo(np.float64).eps / np.finfo(np.float32).eps
        spread = np.abs(f32 - f_jax)
        tol = tol + 1e3 * ratio * np.where(np.isfinite(spread), spread, 0.0)
    tol = tol + 1e3 * np.finfo(np.float64).eps * magnitude
    bad = np.flatnonzero(~(np.abs(f_sym - f_jax) <= tol))
    if bad.size:
        i = int(bad[0])
        return f"its function value {f_sym[i]:.17g} differs from JAX's {f_jax[i]:.17g} (output {i})"
    return ""


def _offsets(shapes) -> np.ndarray:
    """Where each parameter's elements start in the flat vector θ (and, last, its length)."""
    return np.cumsum([0] + [int(np.prod(s, dtype=np.int64)) for s in shapes])


def _element_names(names, shapes) -> list[str]:
    return [name + format_index(index) for name, shape in zip(names, shapes) for index in np.ndindex(*shape)]


def _labels(names, shapes, out_shape, plan) -> list[tuple]:
    """(output index, earlier differentiations) for each row of the checked Jacobian."""
    params = _element_names(names, shapes)
    n_out = int(np.prod(out_shape, dtype=np.int64))
    if plan.directions is not None:
        return [((d,), f"H·v{d}: ") for d in range(len(plan.directions))]
    labels = []
    for m in range(n_out * len(params) ** (plan.order - 1)):
        out, *earlier = np.unravel_index(m, (n_out,) + (len(params),) * (plan.order - 1))
        output = tuple(int(i) for i in np.unravel_index(out, out_shape)) if out_shape else ()
        via = "".join(f"∂/∂{params[j]} " for j in earlier)
        labels.append((output, via))
    return labels


def _elements(values, bounds, names, shapes, labels, notes, kinks, rtol, atol, independent) -> list[Element]:
    offsets = _offsets(shapes)
    exact_values = values.get(compare.SYMBOLIC)
    row_scale = np.abs(exact_values).max(axis=1) if exact_values is not None else None
    explicit = rtol is not None or atol is not None
    elements = []
    for m, (output, via) in enumerate(labels):
        for leaf, (name, shape) in enumerate(zip(names, shapes)):
            for k in range(offsets[leaf], offsets[leaf + 1]):
                index = tuple(int(i) for i in np.unravel_index(k - offsets[leaf], shape)) if shape else ()
                vals = {meth: float(v[m, k]) for meth, v in values.items()}
                bnds = {meth: float(b[m, k]) for meth, b in bounds.items()}
                note = notes.get(k, "")
                compared = vals
                if k in kinks.at or k in kinks.crossed:
                    # Finite differences and complex step need a smooth function along the stencil.
                    compared = {meth: v for meth, v in vals.items() if meth not in (compare.FINITE, compare.COMPLEX)}
                    note = "finite differences not compared: the stencil crosses a kink"
                if k in kinks.at:
                    sides = kinks.sides.get(k)
                    left, right = (sides[0][m], sides[1][m]) if sides else (math.nan, math.nan)
                    if _same_side(left, right):
                        # The kinks cancel (softplus as max(x, 0) + log1p(exp(−|x|)) at 0): differentiable.
                        compared[compare.SYMBOLIC] = vals[compare.SYMBOLIC] = (left + right) / 2
                        note = "kinks cancel here: equal one-sided derivatives; finite differences not compared"
                    else:
                        elements.append(_kink_element(name, index, output, vals, bnds, left, right, via))
                        continue
                verdict, odd, errors, tols = compare.verdict(compared, bnds, rtol, atol, independent)
                digits = {}
                if exact_values is not None and compare.SYMBOLIC in vals:
                    exact = vals[compare.SYMBOLIC]
                    digits = {
                        meth: compare.digits(v, exact, float(row_scale[m]))
                        for meth, v in compared.items()  # not a method left out at a kink
                        if meth != compare.SYMBOLIC
                    }
                kept = {} if explicit else bnds
                elements.append(Element(name, index, output, vals, errors, tols, verdict, odd, note, via, kept, digits))
    return elements


def _same_side(left: float, right: float) -> bool:
    return math.isfinite(left) and math.isfinite(right) and abs(left - right) <= 1e-12 * max(abs(left), abs(right))


def _kink_element(name, index, output, vals, bnds, left, right, via) -> Element:
    """A non-differentiable point: a warning, unless autodiff lies outside the one-sided derivatives."""
    note = "the point is at a kink"
    if not (math.isfinite(left) and math.isfinite(right)):
        note = "the point is at a jump or a kink whose one-sided derivatives are unknown"
        return Element(name, index, output, vals, {}, {}, compare.KINK, None, note, via, kink={})
    kink = {"left": left, "right": right}
    inside, conventions = True, []
    for method in (compare.AUTODIFF, compare.FORWARD):
        if method not in vals:
            continue
        v = vals[method]
        slack = bnds.get(method, 0.0) + 1e-12 * max(abs(left), abs(right))
        kink[method] = float(v)
        inside = inside and bool(min(left, right) - slack <= v <= max(left, right) + slack)
        conventions.append(_convention(v, left, right, slack))
    kink["subgradient"] = inside
    kink["convention"] = conventions[0] if len(set(conventions)) == 1 else " / ".join(conventions)
    if inside:
        return Element(name, index, output, vals, {}, {}, compare.KINK, None, note, via, kink=kink)
    note = f"at a kink, autodiff is not a subgradient: outside [{min(left, right):.17g}, {max(left, right):.17g}]"
    return Element(name, index, output, vals, {}, {}, compare.MISMATCH, compare.AUTODIFF, note, via, kink=kink)


def _convention(value, left, right, slack) -> str:
    if abs(value - left) <= slack:
        return "left derivative"
    if abs(value - right) <= slack:
        return "right derivative"
    if abs(value - (left + right) / 2) <= slack:
        return "mean of both sides"
    if value == 0:
        return "zero"
    return "between the sides" if min(left, right) <= value <= max(left, right) else "outside the sides"


def _expectations(expected, values, names, shapes, decimals) -> list[Expectation]:
    offsets = dict(zip(names, _offsets(shapes)))
    shape_of = dict(zip(names, shapes))
    out = []
    for name, want in expected.items():
        want = np.asarray(want, np.float64)
        for index in np.ndindex(*want.shape):
            k = offsets[name] + (int(np.ravel_multi_index(index, shape_of[name])) if index else 0)
            got = {m: float(values[m][0, k]) for m in (compare.SYMBOLIC, compare.AUTODIFF) if m in values}
            ok = all(abs(v - want[index]) <= 0.5 * 10.0**-decimals for v in got.values())
            out.append(Expectation(name, index, float(want[index]), decimals, got, ok))
    return out
