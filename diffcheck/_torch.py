"""PyTorch functions and modules under test: a front end beside the JAX one, on the same pipeline
(optional extra: `pip install "diffcheck[torch]"`).

A torch function becomes a `Problem` whose numeric methods are torch's own:

* autodiff — torch's reverse mode (`torch.autograd`, what `loss.backward()` runs) and forward mode
  (`torch.func.jacfwd`), in the run's dtype; the same in the other precision, where the function
  runs there unchanged, bounds its rounding.
* finite differences — diffcheck's finite-difference method itself: JAX calls the torch function
  back on the host (`jax.pure_callback`) at every stencil point.
* symbolic — from a JAX program of the same mathematics (`reference=`, or a library case for
  `check_module`), translated from its jaxpr as usual; its value must equal torch's at the point.

Everything after that — kinks, bounds, verdicts, the records — is the pipeline's, as for JAX.
torch is imported on first use, never by `import diffcheck`.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable, Mapping

import jax
import numpy as np

from . import _autodiff as autodiff
from . import _compare as compare
from . import _finite as finite
from ._autodiff import precision
from ._numeric import Numeric, flat_program, ladder_of, term_size
from ._pipeline import check_point as run_pipeline
from ._plan import Plan, fits
from ._probes import dot_product_test
from ._problem import Problem, normalise_argnums
from ._records import OK, Method, PointResult, State, Status, element_names, unavailable
from .errors import PointError, Unavailable, UsageError

DEVICES = ("cpu", "cuda")


def is_torch(fn, args=()) -> bool:
    """Whether `fn` is a torch module or `args` hold a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    return isinstance(fn, torch.nn.Module) or any(isinstance(a, torch.Tensor) for a in args)


def is_module(fn) -> bool:
    """Whether `fn` is a torch.nn.Module (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(fn, torch.nn.Module)


def check_point(
    fn, args, *, argnums=None, reference=None, order=1, dtype=None, rtol=None, atol=None, seed=0, device=None,
    timeout=None, strict=False, precision="warn",
) -> PointResult:  # fmt: skip
    """Checks a torch function's gradient (or Jacobian) in `args[argnums]` at exactly `args`.

    `reference`: a JAX function taking the same arguments (as arrays of the same shapes) and
    computing the same mathematics; its exact derivative is the symbolic method. Without it,
    torch autograd is checked against finite differences. `device`: "cpu" (default) or "cuda",
    where torch runs. Other options as `diffcheck.check_grad`.
    """
    torch = _torch()
    if order not in (1, 2):
        raise UsageError(
            f"torch functions are checked at order 1 (the gradient or Jacobian) or 2 (by double backward), "
            f"got order={order!r}"
        )
    if not args:
        raise UsageError("check_grad needs at least one argument to differentiate in")
    argnums = normalise_argnums(argnums, len(args))
    arrays = [_as_array(a, f"args[{i}]") for i, a in enumerate(args)]
    names = tuple(f"args[{i}]" for i in argnums)
    for name, i in zip(names, argnums, strict=True):
        if not np.issubdtype(arrays[i].dtype, np.floating):
            raise UsageError(f"parameter {name}: {arrays[i].dtype} values cannot be differentiated; pass floats")
    backend = _TorchBackend(device)

    def on_theta(parts, run):
        full = [torch.tensor(_in(a, run), device=backend.torch_device) for a in arrays]
        for i, part in zip(argnums, parts, strict=True):
            full[i] = part
        return fn(*full)

    backend.on_theta = on_theta
    leaves = tuple(arrays[i].astype(np.float64) for i in argnums)
    ref_args = [np.asarray(a, np.float64) if np.issubdtype(a.dtype, np.floating) else a for a in arrays]
    no_reference = ""
    if reference is None:  # the exact program is the torch program itself, captured by torch.export
        reference, no_reference = _captured(fn, arrays)
        backend.captured = reference is not None

    def twin(*values):
        full = list(ref_args)
        for i, v in zip(argnums, values, strict=True):
            full[i] = v
        return reference(*full)

    name = getattr(fn, "__name__", type(fn).__name__)
    problem = Problem(
        name,
        "args",
        fn,
        leaves,
        names,
        reference=twin if reference else None,
        no_reference=no_reference,
        backend=backend,
    )
    options = dict(
        dtype=dtype, order=order, rtol=rtol, atol=atol, seed=seed, timeout=timeout, strict=strict, precision=precision
    )
    return run_pipeline(problem, device=device, **options)


def check_module(
    module,
    loss: Callable | None,
    *inputs,
    reference=None,
    parameters: Mapping[str, str] | None = None,
    data: Mapping[str, object] | None = None,
    point: str = "torch",
    dtype=None,
    rtol=None,
    atol=None,
    timeout=None,
    seed=0,
    device=None,
    strict=False,
    precision="warn",
):
    """Checks the gradient of `loss(module(*inputs))` in the module's parameters at their values.

    Args:
        module: a `torch.nn.Module`; its parameters' current values are the point, its buffers
            (BatchNorm's running statistics) and inputs are data, `.train()`/`.eval()` as it is.
        loss: maps the module's output to what is differentiated (e.g. `lambda out:
            nn.BCELoss()(out, labels)`); None: the output itself (a Jacobian).
        *inputs: the module's inputs.
        reference: None (default): the exact reference is the module's own program, captured by
            torch.export. Or a `diffcheck.Case` computing the same mathematics in JAX, with
            `parameters` (torch parameter name → the case's, e.g. `{"fc1.weight": "W1"}`; module
            parameters left out are held fixed) and `data` (the case's other arguments).
        point: the point's name in the report.
        dtype: "float32" or "float64"; default: the dtype of the module's parameters.

    Returns a `Report` with one point; its elements are named after the module's parameters.
    """
    from ._records import Report

    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"check_module checks a torch.nn.Module, got {type(module).__name__}")
    loss = loss if loss is not None else (lambda out: out)
    named = dict(module.named_parameters())
    if dtype is None:
        dtypes = {str(p.dtype).removeprefix("torch.") for p in named.values()}
        dtype = "float32" if dtypes == {"float32"} else None
    if reference is None:
        order = [n for n, p in named.items() if p.requires_grad]
        twin, no_reference = _captured_module(module, loss, inputs, order)
    else:
        order, twin = _case_reference(reference, parameters or {}, data or {}, named)
        no_reference = ""
    if not order:
        raise UsageError(f"{type(module).__name__} has no parameter that requires grad: nothing to differentiate")
    leaves = tuple(named[n].detach().cpu().numpy().astype(np.float64) for n in order)
    fixed = {n: p.detach() for n, p in named.items() if n not in order}
    fixed.update(module.named_buffers())
    arrays = [_as_array(x, f"input {k}") for k, x in enumerate(inputs)]  # once: .numpy() fails inside torch.func
    backend = _TorchBackend(device)
    backend.captured = reference is None and twin is not None

    def on_theta(parts, run):
        state = {n: t.to(parts[0].dtype) if t.is_floating_point() else t for n, t in fixed.items()}
        state.update(zip(order, parts, strict=True))
        cast = [torch.tensor(_in(a, run), device=backend.torch_device) for a in arrays]
        return loss(torch.func.functional_call(module, state, tuple(cast)))

    backend.on_theta = on_theta
    name = f"{type(module).__name__} (torch)"
    problem = Problem(
        name, point, module, leaves, tuple(order), reference=twin, no_reference=no_reference, backend=backend
    )
    options = dict(
        dtype=dtype, order=1, rtol=rtol, atol=atol, seed=seed, timeout=timeout, strict=strict, precision=precision
    )
    result = run_pipeline(problem, device=device, **options)
    return Report((result,), seconds=result.seconds)


def _case_reference(reference, parameters, data, named):
    """(the parameters in the case's order, the case as a JAX function of them) for a JAX twin."""
    unknown = [p for p in parameters if p not in named]
    if unknown:
        raise UsageError(f"no parameter {', '.join(unknown)} in the module; it has {', '.join(named)}")
    by_case = {case_name: torch_name for torch_name, case_name in parameters.items()}
    missing = [p for p in reference.wrt if p not in by_case]
    if missing:
        raise UsageError(f"case {reference.name!r} parameter(s) {', '.join(missing)} mapped to no module parameter")
    order = [by_case[p] for p in reference.wrt]  # θ in the reference's order, so elements line up
    at = {k: np.asarray(v, np.float64) if _is_float(v) else v for k, v in data.items()}

    def twin(*leaves):
        return reference.fn(**at, **dict(zip(reference.wrt, leaves, strict=True)))

    return order, twin


def _captured_module(module, loss, inputs, order):
    """(the module's program as a JAX function of its parameters, "") — or (None, why not)."""
    from . import _aten as aten  # imported with torch, never by a check of a JAX function

    torch = _torch()
    tensors = tuple(x if isinstance(x, torch.Tensor) else torch.tensor(np.asarray(x)) for x in inputs)
    try:
        program = aten.to_jax(module, tensors, loss=loss)
    except Unavailable as exc:
        return None, f"no exact translation of the torch module: {exc}"
    arrays = [np.asarray(t.detach().cpu().numpy()) for t in tensors]
    arrays = [a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a for a in arrays]
    return (lambda *leaves: program.fn(dict(zip(order, leaves, strict=True)), *arrays)), ""


def _captured(fn, arrays):
    """(the torch program as a JAX function of all its arguments, "") — or (None, why not)."""
    from . import _aten as aten  # imported with torch, never by a check of a JAX function

    torch = _torch()
    try:
        program = aten.to_jax(fn, tuple(torch.tensor(np.asarray(a)) for a in arrays))
    except Unavailable as exc:
        return None, f"no exact translation of the torch program: {exc}"
    return (lambda *values: program.fn({}, *values)), ""


class _TorchBackend:
    """The numeric methods of a torch function: torch autograd, finite differences through JAX."""

    name = "torch"

    def __init__(self, device):
        torch = _torch()
        if device is None:
            device = "cpu"
        if device not in DEVICES:
            raise UsageError(f"unknown device {device!r} for a torch function; valid devices are {', '.join(DEVICES)}")
        if device == "cuda" and not torch.cuda.is_available():
            raise UsageError("torch sees no CUDA device here (torch.cuda.is_available() is False); use device='cpu'")
        self.torch_device = torch.device(device)
        self.on_theta = None
        self.captured = False  # whether problem.reference is the torch program itself, captured

    def device(self, name):
        """(a context for JAX's part of the run, the platform's name): JAX's stencil stays on the CPU."""
        return jax.default_device(jax.devices("cpu")[0]), self.torch_device.type

    def _terms(self, problem, shapes, theta, order, f, jac) -> float:
        """The largest term the captured program adds (`_terms`, on JAX's reverse mode of its
        translation: the torch program's own operations), for the rounding floor; 1 where the
        exact program is not the torch program itself (a `reference=` written apart)."""
        if not self.captured:
            return 1.0
        F = autodiff.derivative(flat_program(problem.reference, shapes), order)
        return term_size(F, theta.astype(np.float64), {}, np.dtype(np.float64), f, jac)

    def methods(self, problem, leaves, run_dtype, order, seed) -> Numeric:
        shapes = tuple(leaf.shape for leaf in leaves)
        theta = np.concatenate([leaf.reshape(-1) for leaf in leaves])
        flat = _flat(self.on_theta, shapes, self.torch_device)
        value_eps = float(np.finfo(np.float64).eps)
        try:
            if run_dtype == np.float64:
                f64 = f_run = flat(theta, run_dtype).astype(np.float64)
            else:  # the program as it runs; in float64 too where it can (float32 data it closes over)
                f_run = flat(theta, run_dtype).astype(np.float64)
                try:
                    f64 = flat(theta, np.dtype(np.float64)).astype(np.float64)
                except Exception:  # noqa: BLE001 - it runs in float32 only: its value is float32's
                    f64, value_eps = f_run, float(np.finfo(run_dtype).eps)
            f_again = flat(theta, run_dtype).astype(np.float64)
        except UsageError as exc:
            raise PointError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the user's function failed: say why
            why = f"the function raised {type(exc).__name__}: {exc}".splitlines()[0]
            if isinstance(exc, Warning):  # torch's own warnings too ("index_reduce() is in beta")
                why += " (a warning, raised as an error by the warnings filter in force: filterwarnings=error?)"
            raise PointError(why) from None
        _deterministic(f_run, f_again, run_dtype)
        if theta.size == 0 or f_run.size == 0:
            empty = "the parameters have" if theta.size == 0 else "the function's output has"
            raise PointError(f"{empty} no elements at this point: there is no derivative to check")
        bad = np.flatnonzero(~np.isfinite(f_run))
        if bad.size:
            raise PointError(f"output element {int(bad[0])} is {f_run[bad[0]]} in {run_dtype.name} at this point")
        # Refused before torch computes a derivative tensor that cannot fit the memory budget.
        fits(f_run.size * theta.size ** (order - 1), theta.size)
        ladder_dtype = ladder_of(run_dtype)
        ladder, checks = self._ladder(shapes, theta, ladder_dtype, order), ["gradient" if order == 1 else "full"]
        if ladder is None:
            checks.append(f"autodiff's rounding not measured: the function does not run in {ladder_dtype.name}")
        jacobian = functools.partial(_torch_jacobian, self.on_theta, shapes, theta, run_dtype, device=self.torch_device)
        if order > 1:  # what is differentiated: torch's own first derivative (its backward), flat
            try:
                f_run = jacobian("reverse").reshape(-1)
            except Exception as exc:  # noqa: BLE001
                raise PointError(f"torch autograd failed: {type(exc).__name__}: {exc}".splitlines()[0]) from None
        methods, values, bounds = {}, {}, {}
        for method, mode in ((Method.AUTODIFF, "reverse"), (Method.FORWARD, "forward")):
            try:
                values[method] = jacobian(mode, order=order)
            except Exception as exc:  # noqa: BLE001 - e.g. an operation without a forward-mode rule
                if method == Method.AUTODIFF:
                    why = f"torch autograd failed: {type(exc).__name__}: {exc}".splitlines()[0]
                    if order > 1:
                        why += " (order 2 needs the backward to be differentiable: double backward)"
                    raise PointError(why) from None
                methods[method] = unavailable(f"{type(exc).__name__}: {exc}".splitlines()[0])
                continue
            if method == Method.AUTODIFF:
                floor = compare.rounding_floor(
                    f_run, values[method], self._terms(problem, shapes, theta, order, f_run, values[method])
                )
            bounds[method] = compare.autodiff_bound(values[method], run_dtype, ladder, ladder_dtype, floor=floor)
            methods[method] = OK
        again = jacobian("reverse", order=order)  # gradcheck's nondeterminism check: backward twice
        names = element_names(problem.names, shapes)
        methods[Method.AUTODIFF], note = _determinism(values[Method.AUTODIFF], again, bounds[Method.AUTODIFF], names)
        checks += [note] if note else []
        if order == 1:
            F = _on_host(flat, f_run.size)
        else:
            F = _on_host(_flat_derivative(self.on_theta, shapes, self.torch_device), f_run.size)
        try:
            with precision(run_dtype):
                fd = finite.jacobian(
                    F, theta.astype(run_dtype), {}, run_dtype, ladder_dtype if ladder is not None else None,
                    noise_floor=floor if order > 1 else 0.0,
                )  # fmt: skip
        finally:
            F.interrupted()
        values[Method.FINITE], bounds[Method.FINITE] = fd.jac, fd.bound + floor
        methods[Method.FINITE] = OK
        dot = dot_product_test(values, methods, bounds[Method.AUTODIFF], run_dtype, seed, floor)
        if methods[Method.AUTODIFF].state == State.NONDETERMINISTIC:  # its values judge nothing
            del values[Method.AUTODIFF], bounds[Method.AUTODIFF]
        plan = Plan(order, None)
        out_shape = (f64.size,) if f64.size > 1 else ()
        F1 = _on_host(flat, f64.size) if order > 1 else F
        return Numeric(
            f64, f64, out_shape, methods, values, bounds, fd.steps, fd.notes, plan,
            dot, None, "; ".join(checks), F1, {}, floor, value_eps,
        )  # fmt: skip

    def _ladder(self, shapes, theta, ladder_dtype, order):
        """torch's reverse-mode derivative in the other precision, where the function really runs in
        it (float64 data it closes over would promote it back, or refuse the other dtype): else None."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                probe = _flat(self.on_theta, shapes, self.torch_device, cast=False)(theta, ladder_dtype)
                if probe.dtype != ladder_dtype:
                    return None
                return _torch_jacobian(
                    self.on_theta, shapes, theta, ladder_dtype, "reverse", device=self.torch_device, order=order
                )
        except Exception:  # noqa: BLE001 - the function does not run in that dtype: no ladder
            return None


def _flat(on_theta, shapes, device, cast=True):
    """θ (a flat NumPy vector) ↦ the torch function's flat output as NumPy, in dtype `run`
    (with `cast=False`, in the dtype torch computed it in)."""
    torch = _torch()
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]

    def flat(theta, run):
        t = torch.tensor(np.array(theta, run), device=device)
        with torch.no_grad():
            out = on_theta(_split(t, sizes, shapes), run)
        return _numpy(out, run if cast else None)

    return flat


def _flat_derivative(on_theta, shapes, device):
    """θ ↦ torch's first derivative (reverse mode: the function's backward), flat, in dtype `run`:
    the function whose Jacobian is the second derivative."""

    def flat(theta, run):
        return _torch_jacobian(on_theta, shapes, np.asarray(theta), run, "reverse", device=device).reshape(-1)

    return flat


def _deterministic(first, second, run) -> None:
    """A function whose value changes from call to call at the same input (unseeded dropout or
    torch.rand) has no derivative to check: the point's error, not a verdict on its autodiff."""
    apart = np.abs(first - second)
    scale = float(np.max(np.abs(first), initial=0.0)) if first.size else 0.0
    if first.shape == second.shape and not np.any(apart > 1024 * np.finfo(run).eps * scale):
        return
    k = int(np.argmax(apart)) if first.shape == second.shape else 0
    raise PointError(
        f"the function is not deterministic: two calls at the same input give output element {k} = "
        f"{first.reshape(-1)[k]:.6g} and {second.reshape(-1)[k]:.6g}; if it draws random numbers (dropout, "
        "torch.rand), seed torch's generator inside it (torch.manual_seed) or call module.eval()"
    )


def _determinism(first, second, bound, names) -> tuple:
    """(autodiff's status, a note) from two backward passes at the same input, as gradcheck's
    nondeterminism check: bitwise equal is deterministic; apart within autodiff's rounding bound is
    a note (a GPU's atomic scatter-adds sum in any order); farther apart, autodiff is not
    deterministic, which no comparison of its values can then judge."""
    diff = np.abs(first - second)
    if not np.any(diff > 0):
        return OK, ""
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    where = f"{names[worst[1]]}" + (f", row {worst[0]}" if diff.shape[0] > 1 else "")
    if np.all(diff <= bound):
        return OK, f"autodiff not bitwise deterministic: two backward passes differ by {diff[worst]:.2g} (rounding)"
    return (
        Status(
            State.NONDETERMINISTIC,
            f"two backward passes at the same input differ by {diff[worst]:.2g} "
            f"(∂/∂{where}), over its rounding bound {bound[worst]:.2g}",
        ),
        "",
    )


def _on_host(flat, n_out):
    """F(θ, data) for diffcheck's finite differences: JAX calls the torch function back on the
    host, once per stencil point (a batch of points arrives with a leading axis).

    XLA runs the callback on a thread of its own, where JAX's thread-local x64 mode of the caller
    does not hold: JAX would canonicalise a float64 result to float32 there. So the dtype is fixed
    when F is traced, and the values cross as their bytes (uint8, which no mode changes), cast back
    bit for bit.

    No exception may cross XLA: it would arrive as an untyped "CpuCallback error", an internal
    error. The function raising at a stencil point (torch's Cholesky of a matrix no longer positive
    definite) is the function undefined there, NaN as in JAX, and the finite differences step
    around it. An interruption (the watchdog's `Preempted` past the point's deadline, Ctrl-C) is
    held: every later stencil point is NaN at once, and `F.interrupted()` raises it once XLA has
    returned.
    """
    held = []

    def F(theta, data):
        dtype = np.dtype(theta.dtype)
        width = dtype.itemsize

        def host(values):
            values = (
                np.asarray(values).view(dtype) if np.asarray(values).dtype == np.uint8 else np.asarray(values, dtype)
            )
            rows = values.reshape(-1, values.shape[-1])
            out = np.stack([_at(row, dtype) for row in rows]).astype(dtype)
            out = out.reshape(values.shape[:-1] + (n_out,))
            return np.ascontiguousarray(out).view(np.uint8)

        raw = jax.lax.bitcast_convert_type(theta, jax.numpy.uint8).reshape(theta.shape[:-1] + (-1,))
        shape = jax.ShapeDtypeStruct((n_out * width,), np.uint8)
        out = jax.pure_callback(host, shape, raw, vmap_method="expand_dims")
        return jax.lax.bitcast_convert_type(out.reshape(out.shape[:-1] + (n_out, width)), dtype)

    def _at(row, dtype):
        if held:
            return np.full(n_out, np.nan, dtype)
        try:
            return flat(row, dtype)
        except Exception:  # noqa: BLE001 - undefined at this stencil point
            return np.full(n_out, np.nan, dtype)
        except BaseException as exc:  # noqa: BLE001 - re-raised by `interrupted`, outside XLA
            held.append(exc)
            return np.full(n_out, np.nan, dtype)

    def interrupted():
        if held:
            exc = held.pop()
            held.clear()
            raise exc

    F.interrupted = interrupted
    return F


def _torch_jacobian(on_theta, shapes, theta, run, mode, *, device, order=1) -> np.ndarray:
    """d output / dθ (outputs × parameters) by torch autograd in `run`'s precision; at order 2 the
    Jacobian of that Jacobian (rows: output, then the first parameter), by double backward."""
    torch = _torch()
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    t = torch.tensor(np.array(theta, run), device=device)

    def f(t):
        return on_theta(_split(t, sizes, shapes), run).reshape(-1)

    if mode == "reverse":
        if order == 1:
            jac = torch.autograd.functional.jacobian(f, t)
        else:
            jac = torch.autograd.functional.jacobian(
                lambda t: torch.autograd.functional.jacobian(f, t, create_graph=True).reshape(-1), t
            )
    else:
        with warnings.catch_warnings():
            # torch's forward mode loads its own decompositions with torch.jit.script, which warns
            warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=DeprecationWarning)
            # "same": the tangents share the primal's draws (a seeded dropout draws once, as in eager)
            forward = functools.partial(torch.func.jacfwd, randomness="same")
            jac = forward(f)(t) if order == 1 else forward(torch.func.jacrev(f))(t)
    return jac.detach().cpu().numpy().astype(np.float64).reshape(-1, theta.size)


def _split(t, sizes, shapes):
    return [part.reshape(shape) for part, shape in zip(t.split(sizes), shapes)]


def _numpy(out, run) -> np.ndarray:
    torch = _torch()
    if not isinstance(out, torch.Tensor):
        raise UsageError(f"the function must return a torch tensor, got {type(out).__name__}")
    if not out.is_floating_point():
        raise UsageError(f"the function returned {out.dtype} values; a real floating-point output is needed")
    if out.dtype in (torch.bfloat16, torch.float16):  # NumPy has no bfloat16: exactly, via float32
        out = out.float()
    out = out.detach().cpu().numpy().reshape(-1)
    return out if run is None else out.astype(run)


def _in(array: np.ndarray, run) -> np.ndarray:
    """Float data in the run's precision (torch does not promote a 0-d float64 against float32)."""
    return array.astype(run) if np.issubdtype(array.dtype, np.floating) else array


def _is_float(value) -> bool:
    return np.issubdtype(np.asarray(value).dtype, np.floating)


def _as_array(value, name="an input") -> np.ndarray:
    torch = _torch()
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:  # its elements are not an array diffcheck can perturb
            raise UsageError(
                f"{name} is a sparse tensor (layout {value.layout}): pass it dense (.to_dense()), "
                "and make it sparse inside the function if the op needs it"
            )
        return value.detach().cpu().numpy()
    if isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return np.asarray(value)


def _torch():
    try:
        import torch
    except ImportError:
        raise UsageError(
            'PyTorch is not installed: pip install "diffcheck[torch]" (the CPU build: torch==2.13.0)'
        ) from None
    return torch
