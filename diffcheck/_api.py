"""The public checks: `check_grad` on a function and its arguments, `check_case` on a library case,
and their `assert_*` twins. Each turns what it was given into problems (`_problem`, `_torch`) and
runs them through the one pipeline (`_pipeline.check_point`)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from . import _options, _torch
from ._exact import expression_translation
from ._pipeline import check_point
from ._problem import from_arguments, from_case_point
from ._records import PointResult, Report
from .case import Case
from .errors import PointError, UsageError

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
    precision="warn",
    reference=None,
    loss=None,
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
        precision: "warn" (default) or "strict". Where autodiff agrees with the exact value within
            its error model but has lost more than 10³ times the digits the problem allows (its
            condition number at the point times eps: a cancelling formula such as σ′ = ans·(1 − ans)
            at large x), "warn" reports it, naming the operation that lost them; "strict" fails the point.
        reference: for a torch function (a tensor among `args`): a JAX function of the same
            arguments whose exact derivative is the symbolic method; default: the torch program
            itself, captured by torch.export.
        loss: for an `nn.Module` `fn`: maps its output to what is differentiated; the module is
            then differentiated in its parameters, `args` are its inputs (`diffcheck.check_module`).

    Returns a `Report`; it never raises because the derivatives disagree (see `assert_grad`).
    """
    options = dict(
        order=order, dtype=dtype, rtol=rtol, atol=atol, seed=seed, device=device, timeout=timeout, strict=strict,
        precision=precision,
    )  # fmt: skip
    start = time.perf_counter()
    module = _torch.is_module(fn)
    # One owner validates every option; torch's devices ("cuda") are its front end's to check.
    checked = {k: v for k, v in options.items() if k != "strict"}
    if module or _torch.is_torch(fn, args):
        checked["device"] = None
    _options.check_grad((fn,) if module else args, argnums=None if module else argnums, **checked)
    if module:  # a module as users hold it: differentiated in its parameters
        if argnums is not None or order != 1:
            raise UsageError("a torch module is differentiated in its parameters at order 1: drop argnums= and order=")
        del options["order"]
        return _torch.check_module(fn, loss, *args, reference=reference, **options)
    if loss is not None:
        raise UsageError("loss= is for a torch.nn.Module; for a function, compute the loss inside it")
    if _torch.is_torch(fn, args):  # torch autograd is then the autodiff under test
        point = _torch.check_point(fn, args, argnums=argnums, reference=reference, **options)
        return Report((point,), seconds=time.perf_counter() - start)
    if reference is not None:
        raise UsageError("reference= is for torch functions (pass torch tensors); a JAX function is its own reference")
    point = check_point(from_arguments(fn, args, argnums), **options)
    return Report((point,), seconds=time.perf_counter() - start)


def assert_grad(fn, *args, **options) -> Report:
    """`check_grad`, raising `AssertionError` when the report is not ok.

    The message names the argument, the element index, each method's value and the odd one out.
    """
    __tracebackhide__ = True  # pytest shows the test's line, not diffcheck's frames
    report = check_grad(fn, *args, **options)
    if not report.ok:
        raise AssertionError(f"diffcheck: {_heading(report)}\n{report}")
    return report


def assert_case(case: Case, **options) -> Report:
    """`check_case`, raising `AssertionError` with the report when it is not ok."""
    __tracebackhide__ = True
    report = check_case(case, **options)
    if not report.ok:
        raise AssertionError(f"diffcheck: case {case.name!r}: {_heading(report)}\n{report}")
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
    precision="warn",
) -> Report:
    """Checks a case at its named points and `points` random ones (default 2) drawn with `seed`.

    `order` (default: each of the case's `orders`) is the derivative order checked; `timeout`
    bounds the symbolic method per point, in seconds; other options as `check_grad`.
    """
    _options.check_case(
        case, dtype=dtype, device=device, points=points, seed=seed, order=order, rtol=rtol, atol=atol, timeout=timeout,
        precision=precision,
    )  # fmt: skip
    start = time.perf_counter()
    count = DEFAULT_POINTS if points is None else points
    try:
        drawn = case.draw(count, seed)
    except Exception as exc:  # noqa: BLE001 - a broken sampler fails this case only
        message = f"drawing random points failed: {type(exc).__name__}: {exc}"
        return Report((_failed(case.name, "random", dtype, device, message),), seconds=time.perf_counter() - start)
    results, programs = [], {}
    options = dict(
        dtype=dtype, device=device, rtol=rtol, atol=atol, timeout=timeout, seed=seed, strict=strict, precision=precision
    )
    for k in case.orders if order is None else (order,):
        for point_name, point in drawn.items():
            results.append(_check_case_point(case, point_name, point, programs, order=k, **options))
    return Report(tuple(results), seconds=time.perf_counter() - start)


def _check_case_point(case, point_name, point, programs, *, dtype, device, **options) -> PointResult:
    try:
        translation = None
        if case.expr is not None and isinstance(point, Mapping):
            translation = expression_translation(case, {k: v for k, v in point.items() if k not in case.wrt})
        problem = from_case_point(case, point_name, point, programs, translation)
    except PointError as exc:
        return _failed(case.name, point_name, dtype, device, str(exc))
    return check_point(problem, dtype=dtype, device=device, **options)


def _heading(report: Report) -> str:
    """What went wrong, in a few words: an error is never reported as a disagreement."""
    if any(p.error for p in report.points) or report.errors:
        internal = any(p.error and "internal error in diffcheck" in p.error for p in report.points)
        return "internal error in diffcheck (please report)" if internal else "the check could not run"
    return "derivatives disagree"


def _failed(case, point, dtype, device, message) -> PointResult:
    return PointResult(case, point, str(dtype or "float64"), str(device or "default"), {}, error=message)
