"""PyTorch functions and modules under test: torch autograd against finite differences and, given a
JAX reference, the exact value (optional extra: `pip install "diffcheck[torch]"`).

The three methods are the same as for JAX:

* autodiff — torch's own: reverse mode (`torch.autograd`, what `loss.backward()` runs) and forward
  mode (`torch.func.jacfwd`), in the run's dtype; the same in the other precision bounds its rounding.
* finite differences — diffcheck's finite-difference method itself, unchanged: JAX calls the torch
  function back on the host (`jax.pure_callback`) at every stencil point.
* symbolic — SymPy has no view into a torch program, so the exact value comes from a reference
  written in JAX (a case from the library, or a function with the same signature), translated
  from its jaxpr as usual. The torch program and the reference are separate programs; the check
  says whether torch computes the derivative of the same mathematics.

torch is imported on first use, never by `import diffcheck`.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from collections.abc import Callable, Mapping

import numpy as np

from . import compare
from .case import Case
from .errors import UsageError
from .report import Element, PointResult, Report


def is_torch(fn, args=()) -> bool:
    """Whether `fn` is a torch module or `args` hold a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    return isinstance(fn, torch.nn.Module) or any(isinstance(a, torch.Tensor) for a in args)


def check_grad(
    fn, *args, argnums=None, order=1, dtype=None, rtol=None, atol=None, reference=None, timeout=None
) -> Report:
    """Checks a torch function's gradient (or Jacobian) in `args[argnums]` at exactly `args`.

    Args:
        fn: a function of torch tensors (floats are taken as 0-d tensors) returning a tensor.
        *args: tensors or floats; the differentiated ones must be floating point.
        argnums: the positions differentiated (an int or a tuple); default all of them.
        dtype: "float64" (default) or "float32", the precision torch runs in.
        rtol, atol: when given, replace every method's own error bound (see `diffcheck.check_grad`).
        reference: a JAX function taking the same arguments (as arrays of the same shapes) and
            computing the same mathematics; its exact derivative is the symbolic method. Without
            it, torch autograd is checked against finite differences only.
        timeout: seconds the symbolic method may take (default: no limit).

    Returns a `Report` with one point.
    """
    torch = _torch()
    if order != 1:
        raise UsageError(f"torch functions are checked at order 1 (the gradient or Jacobian), got order={order!r}")
    if not args:
        raise UsageError("check_grad needs at least one argument to differentiate in")
    argnums = _argnums(argnums, len(args))
    arrays = [_as_array(a) for a in args]
    names = [f"args[{i}]" for i in argnums]
    for name, i in zip(names, argnums):
        if not np.issubdtype(arrays[i].dtype, np.floating):
            raise UsageError(f"parameter {name}: {arrays[i].dtype} values cannot be differentiated; pass floats")
    shapes = [arrays[i].shape for i in argnums]

    def on_theta(parts, run):
        full = [torch.tensor(_in(a, run)) for a in arrays]
        for i, part in zip(argnums, parts):
            full[i] = part
        return fn(*full)

    exact = None
    if reference is not None:
        from .check import check_grad as check_jax

        ref_args = [np.asarray(a, np.float64) if np.issubdtype(a.dtype, np.floating) else a for a in arrays]
        exact = check_jax(reference, *ref_args, argnums=argnums, timeout=timeout)
    leaves = [arrays[i].astype(np.float64) for i in argnums]
    name = getattr(fn, "__name__", type(fn).__name__)
    return _check(name, "args", on_theta, names, leaves, shapes, dtype, rtol, atol, exact)


def check_module(
    module,
    loss: Callable,
    *inputs,
    reference: Case,
    parameters: Mapping[str, str],
    data: Mapping[str, object],
    point: str = "torch",
    dtype=None,
    rtol=None,
    atol=None,
    timeout=None,
) -> Report:
    """Checks the gradient of `loss(module(*inputs))` in the module's parameters at their values,
    against the exact gradient of the JAX `reference` case at the same parameters.

    Args:
        module: a `torch.nn.Module`; its parameters' current values are the point.
        loss: maps the module's output to a scalar tensor (e.g. `lambda out: nn.BCELoss()(out, labels)`).
        *inputs: the module's inputs.
        reference: the case computing the same mathematics in JAX.
        parameters: torch parameter name → the reference's parameter name, e.g.
            `{"fc1.weight": "W1", ...}`; shapes must match. Every parameter in the case's `wrt` is
            mapped; module parameters left out are held fixed.
        data: the reference's other arguments (its data) at this point, e.g. `{"x": …, "y": 1.0}`.
        point: the point's name in the report.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"check_module checks a torch.nn.Module, got {type(module).__name__}")
    named = dict(module.named_parameters())
    unknown = [p for p in parameters if p not in named]
    if unknown:
        raise UsageError(f"no parameter {', '.join(unknown)} in the module; it has {', '.join(named)}")
    by_case = {case_name: torch_name for torch_name, case_name in parameters.items()}
    missing = [p for p in reference.wrt if p not in by_case]
    if missing:
        raise UsageError(f"case {reference.name!r} parameter(s) {', '.join(missing)} mapped to no module parameter")
    order = [by_case[p] for p in reference.wrt]  # θ in the reference's order, so elements line up
    values = {p: named[t].detach().cpu().numpy().astype(np.float64) for p, t in zip(reference.wrt, order)}
    for p, t in zip(reference.wrt, order):
        if values[p].shape != tuple(named[t].shape):
            raise UsageError(f"{t} has shape {tuple(named[t].shape)}, the case's {p} {values[p].shape}")
    fixed = {n: p.detach() for n, p in named.items() if n not in order}
    fixed.update(module.named_buffers())
    arrays = [_as_array(x) for x in inputs]  # once: inside torch.func's transforms .numpy() fails

    def on_theta(parts, run):
        state = {n: t.to(parts[0].dtype) if t.is_floating_point() else t for n, t in fixed.items()}
        state.update(zip(order, parts))
        cast = [torch.tensor(_in(a, run)) for a in arrays]
        return loss(torch.func.functional_call(module, state, tuple(cast)))

    at = {**{k: np.asarray(v, np.float64) if _is_float(v) else v for k, v in data.items()}, **values}
    exact = _check_case_at(reference, at, point, timeout)
    leaves = [values[p] for p in reference.wrt]
    shapes = [v.shape for v in leaves]
    name = f"{type(module).__name__} (torch)"
    return _check(name, point, on_theta, order, leaves, shapes, dtype, rtol, atol, exact)


# --- the three methods for a torch function of a flat vector ------------------------------------


def _check(case, point, on_theta, names, leaves, shapes, dtype, rtol, atol, exact: Report | None) -> Report:
    from . import autodiff, finite

    start = time.perf_counter()
    run = autodiff.dtype(dtype)
    ladder = np.dtype(np.float32 if run == np.float64 else np.float64)
    theta = np.concatenate([leaf.reshape(-1) for leaf in leaves]).astype(run).astype(np.float64)
    flat = _flat(on_theta, shapes)
    try:
        f0 = flat(theta, run)
    except Exception as exc:  # noqa: BLE001 - the user's function failed: say why
        return _failed(case, point, run, f"the function raised {type(exc).__name__}: {exc}".splitlines()[0], start)
    if not np.all(np.isfinite(f0)):
        bad = int(np.flatnonzero(~np.isfinite(f0))[0])
        return _failed(case, point, run, f"output element {bad} is {f0[bad]} in {run.name} at this point", start)
    methods, values, bounds = {}, {}, {}
    ladder_jac = _torch_jacobian(on_theta, shapes, theta, ladder, "reverse")
    for method, mode in ((compare.AUTODIFF, "reverse"), (compare.FORWARD, "forward")):
        try:
            values[method] = _torch_jacobian(on_theta, shapes, theta, run, mode)
        except Exception as exc:  # noqa: BLE001 - e.g. an operation without a forward-mode rule
            if method == compare.AUTODIFF:
                return _failed(case, point, run, f"torch autograd failed: {type(exc).__name__}: {exc}", start)
            methods[method] = f"unavailable: {type(exc).__name__}: {exc}".splitlines()[0]
            continue
        bounds[method] = compare.autodiff_bound(values[method], run, ladder_jac, ladder)
        methods[method] = "ok"
    with autodiff.precision(run):
        fd = finite.jacobian(_on_host(flat, f0.size), theta.astype(run), None, run, ladder)
    values[compare.FINITE], bounds[compare.FINITE] = fd.jac, fd.bound
    methods[compare.FINITE] = "ok"
    methods[compare.SYMBOLIC], reference = _reference(exact, values[compare.AUTODIFF].size)
    if reference is not None:
        values[compare.SYMBOLIC] = np.array([e.values[compare.SYMBOLIC] for e in reference]).reshape(fd.jac.shape)
        bounds[compare.SYMBOLIC] = compare.symbolic_bound(values[compare.SYMBOLIC])
    elements = _elements(values, bounds, names, shapes, f0.size, fd.notes, reference, rtol, atol)
    order = (compare.SYMBOLIC, compare.AUTODIFF, compare.FORWARD, compare.FINITE)
    result = PointResult(
        case,
        point,
        run.name,
        "cpu",
        {m: methods[m] for m in order if m in methods},
        {"torch": float(f0[0])},
        tuple(elements),
        seconds=time.perf_counter() - start,
    )
    return Report((result,), seconds=result.seconds)


def _reference(exact: Report | None, size: int):
    """(status of the symbolic method, the reference's elements with exact values, or None)."""
    if exact is None:
        return "unavailable: no JAX reference given (reference=…)", None
    [ref] = exact.points
    if ref.error:
        return f"unavailable: the JAX reference failed: {ref.error}", None
    status = ref.methods.get(compare.SYMBOLIC, "unavailable")
    if status != "ok":
        return status, None
    if len(ref.elements) != size:
        return f"unavailable: the JAX reference has {len(ref.elements)} derivative elements, torch {size}", None
    return "ok", ref.elements


def _elements(values, bounds, names, shapes, n_out, notes, reference, rtol, atol) -> list[Element]:
    out, m_k = [], [(m, k) for m in range(n_out) for k in range(values[compare.AUTODIFF].shape[1])]
    labels = [(name, index) for name, shape in zip(names, shapes) for index in np.ndindex(*shape)]
    for e, (m, k) in enumerate(m_k):
        name, index = labels[k]
        ref = reference[e] if reference is not None else None
        output = ref.output if ref is not None else ((m,) if n_out > 1 else ())
        vals = {meth: float(v[m, k]) for meth, v in values.items()}
        bnds = {meth: float(b[m, k]) for meth, b in bounds.items()}
        note = notes.get(k, "")
        compared = vals
        if ref is not None and ref.verdict == compare.KINK:
            out.append(Element(name, index, output, vals, {}, {}, compare.KINK, None, ref.note, ""))
            continue
        if ref is not None and ref.note.startswith("finite differences not compared"):
            compared = {meth: v for meth, v in vals.items() if meth != compare.FINITE}
            note = ref.note
        verdict, odd, errors, tols = compare.verdict(compared, bnds, rtol, atol)
        out.append(Element(name, index, output, vals, errors, tols, verdict, odd, note, ""))
    return out


def _check_case_at(case: Case, at: Mapping, point: str, timeout) -> Report:
    """The reference case checked at one point (its own three methods; its exact value is used)."""
    from .check import check_case

    single = dataclasses.replace(case, points={point: at}, sample=None, expected={}, orders=(1,))
    return check_case(single, points=0, timeout=timeout)


def _flat(on_theta, shapes):
    """θ (a flat NumPy vector) ↦ the torch function's flat output as NumPy, in dtype `run`."""
    torch = _torch()
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]

    def flat(theta, run):
        t = torch.tensor(np.array(theta, run))
        with torch.no_grad():
            out = on_theta(_split(t, sizes, shapes), run)
        return _numpy(out, run)

    return flat


def _on_host(flat, n_out):
    """F(θ, data) for diffcheck's finite differences: JAX calls the torch function back on the
    host, once per stencil point (a batch of points arrives with a leading axis)."""
    import jax

    def host(theta):
        theta = np.asarray(theta)
        rows = theta.reshape(-1, theta.shape[-1])
        out = np.stack([flat(row, theta.dtype) for row in rows])
        return out.reshape(theta.shape[:-1] + (n_out,)).astype(theta.dtype)

    def F(theta, data):
        shape = jax.ShapeDtypeStruct((n_out,), theta.dtype)
        return jax.pure_callback(host, shape, theta, vmap_method="expand_dims")

    return F


def _torch_jacobian(on_theta, shapes, theta, run, mode) -> np.ndarray:
    """d output / dθ (outputs × parameters) by torch autograd in `run`'s precision."""
    torch = _torch()
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    t = torch.tensor(np.array(theta, run))

    def f(t):
        return on_theta(_split(t, sizes, shapes), run).reshape(-1)

    if mode == "reverse":
        jac = torch.autograd.functional.jacobian(f, t)
    else:
        with warnings.catch_warnings():
            # torch's forward mode loads its own decompositions with torch.jit.script, which warns
            warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=DeprecationWarning)
            jac = torch.func.jacfwd(f)(t)
    return jac.detach().cpu().numpy().astype(np.float64).reshape(-1, theta.size)


def _split(t, sizes, shapes):
    return [part.reshape(shape) for part, shape in zip(t.split(sizes), shapes)]


def _numpy(out, run) -> np.ndarray:
    torch = _torch()
    if not isinstance(out, torch.Tensor):
        raise UsageError(f"the function must return a torch tensor, got {type(out).__name__}")
    if not out.is_floating_point():
        raise UsageError(f"the function returned {out.dtype} values; a real floating-point output is needed")
    return out.detach().cpu().numpy().astype(run).reshape(-1)


def _failed(case, point, run, message, start) -> Report:
    result = PointResult(case, point, run.name, "cpu", {}, error=message, seconds=time.perf_counter() - start)
    return Report((result,), seconds=result.seconds)


def _in(array: np.ndarray, run) -> np.ndarray:
    """Float data in the run's precision (torch does not promote a 0-d float64 against float32)."""
    return array.astype(run) if np.issubdtype(array.dtype, np.floating) else array


def _is_float(value) -> bool:
    return np.issubdtype(np.asarray(value).dtype, np.floating)


def _as_array(value) -> np.ndarray:
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return np.asarray(value)


def _argnums(argnums, n) -> tuple:
    if argnums is None:
        return tuple(range(n))
    argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    bad = [i for i in argnums if not isinstance(i, int) or not -n <= i < n]
    if bad:
        raise UsageError(f"argnums {bad} out of range for {n} argument(s)")
    return tuple(i % n for i in argnums)


def _torch():
    try:
        import torch
    except ImportError:
        raise UsageError(
            'PyTorch is not installed: pip install "diffcheck[torch]" (the CPU build: torch==2.13.0)'
        ) from None
    return torch
