"""A torch program, translated exactly: `torch.export` (core ATen) → a pure JAX function.

The torch function or module is captured with `torch.export.export(...)` and lowered to the core
ATen opset with `.run_decompositions()`; the FX graph that comes back is interpreted with one
record per ATen op (`_RECORDS`), each mapping the op onto `jax.numpy` / `jax.lax`. The result is
an ordinary JAX function, so diffcheck's jaxpr → SymPy translation gives its exact derivative. Only
the forward graph is read: torch's derivative rules are never used, so the reference stays
independent of the autograd it checks.

Why torch.export and not torch.fx's symbolic tracing: `torch.fx.symbolic_trace` records calls at
the level the user wrote them (`F.cross_entropy`, `nn.MultiheadAttention.forward`, `Tensor.view`
methods, Python control flow on proxies fails), so a translator would need a record for every
Python-level function and method torch has, each with its many keyword forms. `torch.export` with
`run_decompositions()` lowers all of that to the ~180 ops of core ATen with normalised arguments,
specialises Python numbers and shapes into the graph, lifts parameters, buffers and captured
tensors into named inputs (the graph signature says which is which), turns train-mode BatchNorm
into its functional form, records every node's output dtype and shape (`node.meta["val"]`, which
each record's result is checked against), and refuses what cannot be one static program
(data-dependent guards) with an error of its own. The cost is a slower capture (seconds) and ops
that stay non-core after decomposition; those are refused by name.

torch is imported on first use only.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import operator
import sys
import warnings
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .errors import Unavailable

__all__ = ["AtenProgram", "Reason", "Refused", "to_jax"]

_HIGHEST = lax.Precision.HIGHEST


class Reason(enum.StrEnum):
    """Why a torch program has no exact translation."""

    CAPTURE = "capture"  # torch.export (or its decomposition) failed
    DATA_DEPENDENT = "data-dependent"  # a guard, shape or value that depends on the data
    RANDOM = "random"  # a random op (dropout, bernoulli, rrelu, ...)
    NO_RECORD = "no-record"  # an ATen op without a record in the table
    SPARSE = "sparse"  # a sparse tensor
    UNSUPPORTED = "unsupported"  # complex tensors, in-place mutation of an input, ...
    RECORD_MISMATCH = "record-mismatch"  # a record's result has another shape than torch's


class Refused(Unavailable):
    """`Unavailable` with its `reason` (a `Reason`) and, for `NO_RECORD`, the ops without one."""

    def __init__(self, reason: Reason, message: str, ops: tuple[str, ...] = ()):
        super().__init__(message)
        self.reason, self.ops = reason, ops


@dataclasses.dataclass(frozen=True)
class AtenProgram:
    """A captured torch program as a JAX function.

    fn: `fn(params, *inputs)`: `params` maps parameter (and optionally buffer) names to arrays;
        names left out take their captured values. `inputs` are the tensors of `args` then of
        `kwargs`, in order, as arrays of the same shapes. Returns one array, or a flat tuple
        when the torch program returns several tensors (nested outputs flattened in order);
        in-place updates of inputs and buffers are not part of it. Floating-point values keep
        the dtype they are given: the capture's float dtype stands for "the inexact dtype of the
        arrays passed" (float32, float64, or complex for diffcheck's complex step).
    parameters: the module's parameters that require grad, by their torch names (`"fc1.weight"`).
    buffers: data that is never differentiated: buffers (BatchNorm running statistics) and
        parameters with `requires_grad=False`.
    ops: the distinct ATen ops of the captured graph, sorted.
    """

    fn: Callable
    parameters: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    ops: tuple[str, ...]


# Ops torch.export keeps whose value is a random draw: no static translation can reproduce them.
_RANDOM = (
    "native_dropout",
    "dropout",
    "bernoulli",
    "rrelu_with_noise",
    "rand",
    "randn",
    "randint",
    "randperm",
    "rand_like",
    "randn_like",
    "randint_like",
    "normal",
    "uniform",
    "exponential",
    "geometric",
    "cauchy",
    "log_normal",
    "multinomial",
    "random",
    "poisson",
    "_standard_gamma",
    "_sample_dirichlet",
)


def to_jax(fn, args: tuple, kwargs: dict | None = None, *, loss: Callable | None = None) -> AtenProgram:
    """Captures `fn(*args, **kwargs)` with torch.export (core ATen) and translates it to JAX.

    Args:
        fn: a function of torch tensors, or a `torch.nn.Module` (its parameters and buffers are
            captured too; `.train()`/`.eval()` as it is).
        args, kwargs: the example call. Tensors become the inputs of `AtenProgram.fn`, in order;
            ints, floats, bools and lists of them are baked into the capture as constants, and so
            are tensors `fn` closes over.
        loss: for a module, maps its output to what is translated (e.g. `lambda out:
            nn.BCELoss()(out, labels)`); the parameters keep the module's own names.

    Raises `Unavailable` naming the reason when no exact translation can be had: an ATen op
    without a record, a capture failure (a data-dependent guard, ...), a random op, a sparse
    tensor.
    """
    torch = _torch()
    kwargs = dict(kwargs or {})
    leaves = _tree_leaves(torch, (args, kwargs))
    module = fn if isinstance(fn, torch.nn.Module) else None
    named = list(module.named_parameters()) + list(module.named_buffers()) if module is not None else []
    for where, t in [("an argument", t) for t in leaves] + [(repr(n), t) for n, t in named]:
        if isinstance(t, torch.Tensor) and t.layout != torch.strided:
            raise Refused(
                Reason.SPARSE,
                f"sparse tensors cannot be translated: {where} has layout {t.layout}; pass it dense (.to_dense())",
            )
    if loss is not None and module is None:
        raise TypeError("loss= applies to a torch.nn.Module; for a function, call the loss inside it")
    # Only tensors go to torch.export, as fresh copies (it takes a tensor passed twice, or also
    # closed over, for one input); everything else (numbers, dtypes, option objects) is baked in.
    from torch.utils import _pytree

    flat, spec = _pytree.tree_flatten((tuple(args), kwargs))
    where = [k for k, leaf in enumerate(flat) if isinstance(leaf, torch.Tensor)]
    tensors = tuple(_fresh(flat[k]) for k in where)
    call = module if loss is None else (lambda *a, **k: loss(module(*a, **k)))
    call = call if module is not None else fn

    def on_tensors(*ts):
        full = list(flat)
        for k, t in zip(where, ts):
            full[k] = t
        a, k = _pytree.tree_unflatten(full, spec)
        return call(*a, **k)

    ep = _export(torch, _Wrapped.make(torch, on_tensors, module), tensors, {})
    random = [node for node in ep.graph.nodes if node.op == "call_function" and _is_random(node.target)]
    drawn = _draws(torch, ep, on_tensors, tensors, module, random) if random else {}
    return _program(torch, ep, module, "inner.", drawn)


# --- capture ----------------------------------------------------------------------------------


class _Wrapped:
    """A plain function as the module torch.export needs (made lazily: torch is imported late)."""

    _cls = None

    @classmethod
    def make(cls, torch, fn, inner=None):
        if cls._cls is None:

            class Function(torch.nn.Module):
                def __init__(self, f, inner):
                    super().__init__()
                    self.f = f
                    if inner is not None:
                        self.inner = inner  # its parameters are named "inner.<its own name>"

                def forward(self, *args, **kwargs):
                    return self.f(*args, **kwargs)

            cls._cls = Function
        return cls._cls(fn, inner)


def _export(torch, module, args, kwargs):
    # tracing runs the function: a torch.manual_seed in it would reseed the caller's generator
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # torch.export's deprecation and tracing chatter
        try:
            ep = torch.export.export(module, tuple(args), kwargs)
        except Exception as exc:  # noqa: BLE001 - every capture failure becomes the reason
            raise Refused(*_capture_reason(exc)) from None
        try:
            ep = ep.run_decompositions()
        except Exception as exc:  # noqa: BLE001
            raise Refused(
                Reason.CAPTURE, f"torch.export's decomposition to core ATen failed: {_first_line(exc)}"
            ) from None
    return ep


def _capture_reason(exc) -> tuple[Reason, str]:
    name = type(exc).__name__
    text = _first_line(exc)
    if "DataDependent" in name or "data-dependent" in text or "data dependent" in text:
        why = "torch.export cannot capture a data-dependent guard (control flow or shapes that depend on values)"
        return Reason.DATA_DEPENDENT, f"{why}: {text}"
    return Reason.CAPTURE, f"torch.export failed: {name}: {text}"


def _first_line(exc) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def _packet(target) -> str:
    """ "native_dropout" for aten.native_dropout.default; a Python function's own name."""
    schema = getattr(target, "_schema", None)
    return schema.name.split("::")[-1] if schema is not None else getattr(target, "__name__", str(target))


def _fresh(t):
    return t.detach().clone().requires_grad_(t.requires_grad)


def _tree_leaves(torch, tree):
    from torch.utils import _pytree

    return _pytree.tree_leaves(tree)


# --- random draws -----------------------------------------------------------------------------
#
# A random op's value is a draw, not a function of its inputs, so no static program reproduces
# it: unless the function draws the same numbers on every call (it seeds torch's generator itself,
# as OpInfo's samples do). Then the draws are data of the point, like a tensor the function closes
# over: the captured program is run once from the generator's state at the function's first draw,
# each random op's draw is kept, and the part of its value that depends on its inputs stays a
# function of them (dropout's x·mask/(1−p), normal's mean + std·z, rrelu's x·slope). The captured
# program's output must then equal the function's own: a decomposition that draws in another order
# than the eager kernels is refused, never trusted.


def _is_random(target) -> bool:
    # an eager kernel draws in place (bernoulli_, normal_); a captured graph's form may be functional
    return _packet(target).removesuffix("_").removesuffix("_functional") in _RANDOM


def _draws(torch, ep, call, tensors, module, random) -> dict:
    """{random node: its record at the point}, or `Refused` saying why the draws cannot be had."""
    first = random[0].target
    (state, out), (again, _) = _first_draws(torch, call, tensors, module)
    if state is None:
        raise Refused(Reason.RANDOM, f"random op '{first}': the function's own call made no random draw")
    if state[0] is not None:
        raise Refused(Reason.RANDOM, f"random op '{first}': it draws on {state[0]}; only the CPU's draws are replayed")
    if again is None or not torch.equal(state[1], again[1]):
        raise Refused(
            Reason.RANDOM,
            f"random op '{first}': the function draws new numbers on every call; seed torch's generator "
            "inside it (torch.manual_seed) or call module.eval()",
        )
    generator = random[0].kwargs.get("generator")
    gen = ep.constants[_lifted(ep, generator)] if generator is not None else None
    values = _run_from(torch, ep, tensors, state[1], gen, set(random))
    mine, theirs = [t for t in _tree_leaves(torch, out) if isinstance(t, torch.Tensor)], values.pop("output")
    if len(mine) != len(theirs) or not all(_same(torch, a, b) for a, b in zip(theirs, mine)):
        raise Refused(
            Reason.RANDOM,
            f"random op '{first}': the captured program draws other numbers than the function does "
            "(its decomposition draws in another way than the eager kernel)",
        )
    return {node: _replay(torch, node, *values[node]) for node in random}


def _first_draws(torch, call, tensors, module):
    """Two calls of the function, one after the other, each as ((device or None, generator state)
    at its first random draw, or None; its output). A function that seeds its generator starts
    both from the same state; one that does not, from the state the first call left. Afterwards
    every generator it drew from and the module's buffers are as they were."""
    from torch.utils._python_dispatch import TorchDispatchMode

    before = {}

    class FirstDraw(TorchDispatchMode):
        first = None

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if _is_random(func):
                generator = kwargs.get("generator")
                state = generator.get_state() if generator is not None else torch.get_rng_state()
                if generator is not None:
                    before.setdefault(id(generator), (generator, state))
                if self.first is None:
                    device = next((a.device for a in args if isinstance(a, torch.Tensor)), kwargs.get("device"))
                    other = None if device is None or torch.device(device).type == "cpu" else str(device)
                    self.first = (other, state)
            return func(*args, **kwargs)

    buffers = [(b, b.detach().clone()) for b in module.buffers()] if module is not None else []
    results = []
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            for _ in range(2):
                with FirstDraw() as mode:
                    out = call(*tensors)
                results.append((mode.first, out))
    finally:
        with torch.no_grad():
            for b, kept in buffers:
                b.copy_(kept)
        for generator, state in before.values():
            generator.set_state(state)
    return results


def _lifted(ep, node) -> str:
    """The constant's name a lifted placeholder (a torch.Generator) stands for."""
    for spec in ep.graph_signature.input_specs:
        if spec.arg.name == node.name:
            return spec.target
    raise Refused(Reason.RANDOM, f"random draws from generator '{node.name}', which the capture does not name")


def _run_from(torch, ep, tensors, state, generator, wanted) -> dict:
    """The captured graph run in torch from the generator's `state`: {node: (value, args, kwargs)}
    for the `wanted` nodes, and "output": the user outputs."""
    from torch.export.graph_signature import InputKind, OutputKind

    inputs, given = [], iter(tensors)
    for spec in ep.graph_signature.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            inputs.append(spec.arg.value if hasattr(spec.arg, "value") else next(given))
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            inputs.append(ep.state_dict[spec.target] if spec.target in ep.state_dict else ep.constants[spec.target])
        elif spec.kind in (InputKind.CONSTANT_TENSOR, InputKind.CUSTOM_OBJ):
            inputs.append(ep.constants[spec.target])
        else:  # a token orders side effects
            inputs.append(torch.tensor([]))
    seen = {}

    class Recording(torch.fx.Interpreter):
        def run_node(self, node):
            value = super().run_node(node)
            if node in wanted:
                args, kwargs = self.fetch_args_kwargs_from_env(node)
                seen[node] = (value, args, kwargs)
            return value

    kept = generator.get_state() if generator is not None else None
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            (generator.set_state if generator is not None else torch.set_rng_state)(state)
            flat = Recording(ep.graph_module).run(*inputs)
    finally:
        if generator is not None:
            generator.set_state(kept)
    specs = ep.graph_signature.output_specs
    seen["output"] = [flat[i] for i, spec in enumerate(specs) if spec.kind == OutputKind.USER_OUTPUT]
    return seen


def _same(torch, a, b) -> bool:
    """Equal values (a decomposition may round differently; a different draw is far apart)."""
    if a.shape != b.shape:
        return False
    if not a.is_floating_point():
        return torch.equal(a, b)
    a, b = a.double(), b.double()
    if not torch.equal(torch.isnan(a), torch.isnan(b)):
        return False
    a, b = torch.nan_to_num(a), torch.nan_to_num(b)
    scale = float(b.abs().max()) if b.numel() else 0.0
    return bool(torch.all((a - b).abs() <= 1e-9 * (b.abs() + scale)))


def _replay(torch, node, value, args, kwargs):
    """The random node's record at the point, from its draw."""
    packet = _packet(node.target).removesuffix("_functional")
    drawn = tuple(_numpy(v) for v in value) if isinstance(value, (tuple, list)) else _numpy(value)
    if packet == "native_dropout":
        mask = drawn[1]

        def dropout(out, x, p, train, **_):
            scale = (0.0 if p == 1 else 1 / (1 - p)) if train else 1.0
            return x * mask * scale, mask

        return dropout
    if packet == "rrelu_with_noise":
        # the slopes it drew (1 where x ≥ 0): the functional form returns them, the other mutates `noise`
        slopes = drawn[1] if isinstance(drawn, tuple) else _numpy(args[1])

        def rrelu(out, x, noise, lower=1 / 8, upper=1 / 3, training=False, **_):
            y = x * slopes if training else jnp.where(x >= 0, x, x * ((lower + upper) / 2))
            return (y, slopes) if isinstance(drawn, tuple) else y

        return rrelu
    if packet == "normal" and any(isinstance(a, torch.Tensor) for a in args[:2]):
        mean, std = (np.asarray(_numpy(a) if isinstance(a, torch.Tensor) else a, np.float64) for a in args[:2])
        if np.any(std == 0):
            raise Refused(Reason.RANDOM, f"random op '{node.target}' with std 0 at the point: its draw is lost")
        z = (np.asarray(drawn, np.float64) - mean) / std  # the standard normal draw

        def normal(out, mean, std=1.0, *_, **__):
            return mean + std * z

        return normal
    if packet in ("_standard_gamma", "_sample_dirichlet"):
        raise Refused(
            Reason.RANDOM,
            f"random op '{node.target}': its derivative in the concentration is the draw's implicit "
            "reparametrization, which is not translated",
        )
    # rand, randn, bernoulli, randint, ...: the value does not vary with the inputs (a Bernoulli draw
    # is a step in p whose derivative is 0 almost everywhere, as torch's own rule says)
    return lambda out, *_, **__: drawn


# --- the program ------------------------------------------------------------------------------


def _program(torch, ep, module, prefix: str, drawn: Mapping) -> AtenProgram:
    from torch.export.graph_signature import InputKind, OutputKind

    sig = ep.graph_signature
    state = ep.state_dict
    frozen = {n for n, p in module.named_parameters() if not p.requires_grad} if module is not None else set()
    parameters, buffers, constants = {}, {}, {}
    sources = []  # per placeholder: ("param", name) | ("const", name) | ("input", i) | ("literal", value)
    n_inputs = 0
    for spec in sig.input_specs:
        own = spec.target[len(prefix) :] if spec.target and spec.target.startswith(prefix) else spec.target
        if spec.kind == InputKind.PARAMETER:
            (buffers if own in frozen else parameters)[own] = _numpy(state[spec.target])
            sources.append(("param", own))
        elif spec.kind == InputKind.BUFFER:
            value = state[spec.target] if spec.target in state else ep.constants[spec.target]
            buffers[own] = _numpy(value)
            sources.append(("param", own))
        elif spec.kind in (InputKind.CONSTANT_TENSOR, InputKind.CUSTOM_OBJ):
            value = ep.constants[spec.target]
            if isinstance(value, torch.Generator):  # read by random ops only, whose draws are data
                sources.append(("literal", None))
                continue
            if not isinstance(value, torch.Tensor):
                raise Refused(
                    Reason.UNSUPPORTED, f"a captured constant of type {type(value).__name__} cannot be translated"
                )
            if value.layout != torch.strided:
                raise Refused(
                    Reason.SPARSE, f"sparse tensors cannot be translated: a captured constant has layout {value.layout}"
                )
            constants[spec.target] = _numpy(value)
            sources.append(("const", spec.target))
        elif spec.kind == InputKind.TOKEN:  # orders side effects (error checks); carries no value
            sources.append(("literal", None))
        elif spec.kind == InputKind.USER_INPUT:
            if hasattr(spec.arg, "value"):  # a ConstantArgument: a Python number baked into the graph
                sources.append(("literal", spec.arg.value))
            else:
                sources.append(("input", n_inputs))
                n_inputs += 1
        else:
            raise Refused(Reason.UNSUPPORTED, f"torch.export input of kind {spec.kind.name} cannot be translated")
    outputs = [i for i, spec in enumerate(sig.output_specs) if spec.kind == OutputKind.USER_OUTPUT]
    # In-place updates of inputs and buffers (BatchNorm's running statistics in train mode) are
    # extra outputs of the functional graph torch.export gives; they are not part of the result.
    graph = ep.graph
    nodes = list(graph.nodes)
    ops = set()
    capture_float = _capture_float(torch, nodes)
    for node in nodes:
        if node.op == "call_function" and not _is_python_op(node.target):
            ops.add(str(node.target))
            _check_static(torch, node)
    replayed = {str(node.target) for node in drawn}
    missing = sorted(
        op for op in ops if op not in _RECORDS and op.rsplit(".", 1)[0] not in _RECORDS and op not in replayed
    )
    if missing:
        more = f" (and {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise Refused(Reason.NO_RECORD, f"no exact translation for ATen op '{missing[0]}'{more}", tuple(missing))
    names = set(parameters) | set(buffers)
    defaults = {**parameters, **buffers}
    metas = {node: _meta(torch, node.meta.get("val")) for node in nodes}

    def run(params: Mapping[str, jax.Array] | None = None, *inputs):
        params = dict(params or {})
        unknown = sorted(set(params) - names)
        if unknown:
            raise ValueError(
                f"no parameter or buffer {', '.join(unknown)}; the program has {', '.join(sorted(names)) or 'none'}"
            )
        if len(inputs) != n_inputs:
            raise TypeError(f"the program takes {n_inputs} input array(s), got {len(inputs)}")
        given = [jnp.asarray(x) for x in list(params.values()) + list(inputs)]
        # complex too: diffcheck's complex step runs the program on complex inputs
        floats = [x.dtype for x in given if jnp.issubdtype(x.dtype, jnp.inexact)]
        run_float = jnp.result_type(*floats) if floats else None
        dt = _Dtypes(torch, capture_float, run_float)
        env = {}
        placeholders = [n for n in nodes if n.op == "placeholder"]
        for node, (kind, key) in zip(placeholders, sources):
            if kind == "param":
                value = params[key] if key in params else defaults[key]
                env[node] = _as(value, dt.of_numpy(defaults[key].dtype))
            elif kind == "const":
                env[node] = _as(constants[key], dt.of_numpy(constants[key].dtype))
            elif kind == "input":
                env[node] = jnp.asarray(inputs[key])
            else:
                env[node] = key
        result = None
        for node in nodes:
            if node.op == "call_function":
                env[node] = _call(node, env, metas[node], dt, drawn.get(node))
            elif node.op == "output":
                flat = node.args[0]
                result = [_lookup(flat[i], env) for i in outputs]
            elif node.op == "get_attr":
                raise Refused(
                    Reason.UNSUPPORTED,
                    f"a graph attribute '{node.target}' (a submodule or constant) cannot be translated",
                )
        return result[0] if len(result) == 1 else tuple(result)

    return AtenProgram(fn=run, parameters=parameters, buffers=buffers, ops=tuple(sorted(ops)))


def _numpy(t) -> np.ndarray:
    t = t.detach().cpu().resolve_conj().resolve_neg()
    if t.dtype == sys.modules["torch"].bfloat16:  # NumPy has no bfloat16: via float32
        return t.float().numpy().astype(jnp.bfloat16)
    return t.numpy().copy()


def _as(value, dtype):
    value = jnp.asarray(value)
    return value if dtype is None or value.dtype == dtype else value.astype(dtype)


def _is_python_op(target) -> bool:
    return getattr(target, "__module__", None) in ("_operator", "operator", "builtins") or target in _PY


_PY = {operator.getitem}


def _capture_float(torch, nodes):
    """The float dtype the program was captured in (that of its first float placeholder)."""
    for node in nodes:
        val = node.meta.get("val")
        if node.op == "placeholder" and isinstance(val, torch.Tensor) and val.is_floating_point():
            return val.dtype
    return torch.get_default_dtype()


def _check_static(torch, node):
    packet = _packet(node.target)
    if packet in (
        "item",
        "_local_scalar_dense",
        "nonzero",
        "masked_select",
        "unique",
        "_unique2",
        "unique_consecutive",
    ):
        raise Refused(
            Reason.DATA_DEPENDENT, f"'{node.target}' has a data-dependent result: no static program computes it"
        )
    vals = node.meta.get("val")
    for val in vals if isinstance(vals, (tuple, list)) else [vals]:
        if isinstance(val, torch.Tensor) and not all(isinstance(s, int) for s in val.shape):
            raise Refused(
                Reason.DATA_DEPENDENT, f"'{node.target}' has a data-dependent output shape {tuple(val.shape)}"
            )
        if isinstance(val, torch.Tensor) and val.layout != torch.strided:
            raise Refused(
                Reason.SPARSE, f"sparse tensors cannot be translated: '{node.target}' gives layout {val.layout}"
            )
        if isinstance(val, torch.Tensor) and val.is_complex():
            raise Refused(Reason.UNSUPPORTED, f"complex tensors are not translated: '{node.target}' gives {val.dtype}")


def _meta(torch, val):
    """(shape, torch dtype) of a node's output, a list of them for several outputs, or None."""
    if isinstance(val, torch.Tensor):
        return (tuple(int(s) for s in val.shape), val.dtype)
    if isinstance(val, (tuple, list)):
        return [_meta(torch, v) for v in val]
    return None


class _Dtypes:
    """torch dtypes → JAX dtypes at run time: the capture's float dtype means the run's."""

    def __init__(self, torch, capture_float, run_float):
        self.torch, self.capture_float, self.run_float = torch, capture_float, run_float

    def __call__(self, torch_dtype):
        if torch_dtype is None:
            return None
        if torch_dtype == self.capture_float and self.run_float is not None:
            return self.run_float
        return jax.dtypes.canonicalize_dtype(_TORCH_TO_NUMPY(self.torch)[torch_dtype])

    def of_numpy(self, np_dtype):
        np_dtype = np.dtype(np_dtype)
        if np.issubdtype(np_dtype, np.floating):
            capture = _TORCH_TO_NUMPY(self.torch)[self.capture_float]
            if np_dtype == capture and self.run_float is not None:
                return self.run_float
        return jax.dtypes.canonicalize_dtype(np_dtype)


_DTYPE_TABLE = None


def _TORCH_TO_NUMPY(torch):  # noqa: N802 - a table, built once torch is imported
    global _DTYPE_TABLE
    if _DTYPE_TABLE is None:
        _DTYPE_TABLE = {
            torch.float64: np.float64,
            torch.float32: np.float32,
            torch.float16: np.float16,
            torch.bfloat16: jnp.bfloat16,
            torch.int64: np.int64,
            torch.int32: np.int32,
            torch.int16: np.int16,
            torch.int8: np.int8,
            torch.uint8: np.uint8,
            torch.bool: np.bool_,
            torch.complex64: np.complex64,
            torch.complex128: np.complex128,
        }
    return _DTYPE_TABLE


def _lookup(arg, env):
    torch = sys.modules["torch"]
    if isinstance(arg, torch.fx.Node):
        return env[arg]
    if isinstance(arg, tuple):
        return tuple(_lookup(a, env) for a in arg)
    if isinstance(arg, list):
        return [_lookup(a, env) for a in arg]
    if isinstance(arg, dict):  # keyword arguments that are tensors (linalg_pinv's atol=)
        return {k: _lookup(a, env) for k, a in arg.items()}
    return arg


# keyword arguments that say where or how a tensor is stored, not what it holds
_STORAGE = ("device", "layout", "pin_memory", "memory_format", "non_blocking", "requires_grad")


@dataclasses.dataclass(frozen=True)
class _Out:
    """What torch says a node gives: its shape and (run-time) dtype; `many` for several outputs."""

    shape: tuple | None
    dtype: object
    many: list | None
    dt: _Dtypes
    used: frozenset | None = None  # of several outputs, those the graph reads (None: all)

    def wants(self, k: int) -> bool:
        """Whether output k is read: an unread index output (argmax) is never computed, so a
        max over a window stays a max for the exact translation."""
        return self.used is None or k in self.used


def _call(node, env, meta, dt: _Dtypes, record=None):
    torch = sys.modules["torch"]
    args = _lookup(node.args, env)
    kwargs = {k: v for k, v in _lookup(dict(node.kwargs), env).items() if k not in _STORAGE}
    target = node.target
    if _is_python_op(target):
        return target(*args, **kwargs)
    name = str(target)
    record = record or _RECORDS.get(name) or _RECORDS[name.rsplit(".", 1)[0]]
    single = meta if isinstance(meta, tuple) else None
    many = meta if isinstance(meta, list) else None
    used = None
    if many is not None and all(u.target is operator.getitem for u in node.users):
        used = frozenset(u.args[1] for u in node.users)
    out = _Out(single[0] if single else None, dt(single[1]) if single else None, many, dt, used)
    kwargs = {k: (dt(v) if isinstance(v, torch.dtype) else v) for k, v in kwargs.items()}
    args = tuple(dt(a) if isinstance(a, torch.dtype) else a for a in args)
    result = record(out, *args, **kwargs)
    if single is not None:
        return _conform(name, result, single, dt)
    if many is not None and isinstance(result, (tuple, list)):
        return tuple(_conform(name, r, m, dt) if m is not None and r is not None else r for r, m in zip(result, many))
    return result


def _conform(name, value, meta, dt):
    """The record's value in torch's dtype; a shape other than torch's is a translation error."""
    shape, torch_dtype = meta
    value = jnp.asarray(value)
    if value.shape != shape:
        raise Refused(
            Reason.RECORD_MISMATCH, f"the record for '{name}' gave shape {value.shape} where torch gives {shape}"
        )
    dtype = dt(torch_dtype)
    return value if value.dtype == dtype else value.astype(dtype)


# --- the records: ATen op → JAX ----------------------------------------------------------------

_RECORDS: dict[str, Callable] = {}


def _op(*names):
    def register(impl):
        for name in names:
            if name in _RECORDS:
                raise RuntimeError(f"two records for {name}")
            _RECORDS[name] = impl
        return impl

    return register


def _float_in(out: _Out, *xs):
    """Operands in the output's dtype where it is floating and they are not (int ∘ float = float)."""
    res = []
    for x in xs:
        if (
            isinstance(x, jax.Array | np.ndarray)
            and out.dtype is not None
            and jnp.issubdtype(out.dtype, jnp.inexact)
            and not jnp.issubdtype(x.dtype, jnp.inexact)
        ):
            x = x.astype(out.dtype)
        elif isinstance(x, bool) and out.dtype is not None and not jnp.issubdtype(out.dtype, jnp.bool_):
            x = int(x)
        res.append(x)
    return res


def _unary(f):
    def impl(out, x, **kw):
        (x,) = _float_in(out, jnp.asarray(x))
        return f(x, **kw)

    return impl


def _binary(f):
    def impl(out, a, b, **kw):
        a, b = _float_in(out, a, b)
        return f(_scalar_like(a, b), _scalar_like(b, a), **kw)

    return impl


def _scalar_like(x, other):
    """A Python number against a tensor takes the tensor's dtype (torch's rule for scalars)."""
    if isinstance(x, bool | int | float) and isinstance(other, jax.Array | np.ndarray):
        other_dtype = jnp.asarray(other).dtype
        if isinstance(x, float) and not jnp.issubdtype(other_dtype, jnp.inexact):
            return x
        if isinstance(x, int) and not isinstance(x, bool) and jnp.issubdtype(other_dtype, jnp.bool_):
            return x
        return jnp.asarray(x, other_dtype)
    return x


def _dims(x, dim):
    """Reduction axes: None or [] means all of them (torch's convention); negatives wrap."""
    ndim = jnp.ndim(x)
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = [dim]
    if len(dim) == 0:
        return tuple(range(ndim))
    if ndim == 0:
        return ()
    return tuple(sorted({d % ndim for d in dim}))


def _axis(x, dim):
    ndim = max(jnp.ndim(x), 1)
    return dim % ndim


# elementwise, one operand
for _name, _f in {
    "abs": jnp.abs,
    "neg": jnp.negative,
    "exp": jnp.exp,
    "exp2": jnp.exp2,
    "expm1": jnp.expm1,
    "log": jnp.log,
    "log2": jnp.log2,
    "log10": jnp.log10,
    "log1p": jnp.log1p,
    "sqrt": jnp.sqrt,
    "rsqrt": lax.rsqrt,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "tan": jnp.tan,
    "asin": jnp.arcsin,
    "acos": jnp.arccos,
    "atan": jnp.arctan,
    "sinh": jnp.sinh,
    "cosh": jnp.cosh,
    "tanh": jnp.tanh,
    "asinh": jnp.arcsinh,
    "acosh": jnp.arccosh,
    "atanh": jnp.arctanh,
    "sigmoid": jax.nn.sigmoid,
    "erf": jax.scipy.special.erf,
    "erfc": jax.scipy.special.erfc,
    "erfinv": jax.scipy.special.erfinv,
    "lgamma": jax.scipy.special.gammaln,
    "digamma": jax.scipy.special.digamma,
    "sign": jnp.sign,
    "sgn": jnp.sign,
    "floor": jnp.floor,
    "ceil": jnp.ceil,
    "trunc": jnp.trunc,
    "fix": jnp.trunc,
    "frac": lambda x: x - jnp.trunc(x),
    "reciprocal": lambda x: 1 / x,
    "relu": lambda x: jnp.maximum(x, jnp.zeros((), x.dtype)),
    "square": jnp.square,
    "logical_not": jnp.logical_not,
    "isnan": jnp.isnan,
    "isinf": jnp.isinf,
    "isfinite": jnp.isfinite,
    "isposinf": jnp.isposinf,
    "isneginf": jnp.isneginf,
    "signbit": jnp.signbit,
    "i0": jax.scipy.special.i0,
    "special_i0e": jax.scipy.special.i0e,
    "special_i1": jax.scipy.special.i1,
    "special_i1e": jax.scipy.special.i1e,
    "special_erfcx": jax.scipy.special.erfcx if hasattr(jax.scipy.special, "erfcx") else None,
    "special_ndtri": jax.scipy.special.ndtri,
    "special_ndtr": jax.scipy.special.ndtr,
    "special_log_ndtr": jax.scipy.special.log_ndtr,
    "special_entr": jax.scipy.special.entr,
    "deg2rad": jnp.deg2rad,
    "rad2deg": jnp.rad2deg,
    "sinc": jnp.sinc,
    "logit": jax.scipy.special.logit,
}.items():
    if _f is not None:
        _op(f"aten.{_name}")(_unary(_f))


@_op("aten.bitwise_not")
def _bitwise_not(out, x):
    return jnp.logical_not(x) if x.dtype == jnp.bool_ else jnp.invert(x)


@_op("aten.round.default")
def _round(out, x):
    return jnp.round(x)


@_op("aten.round.decimals")
def _round_decimals(out, x, *, decimals=0):
    # torch: nearbyint(x * 10^d) / 10^d, or for d < 0 nearbyint(x / 10^-d) * 10^-d
    if decimals >= 0:
        ten = jnp.asarray(10.0**decimals, x.dtype)
        return jnp.round(x * ten) / ten
    ten = jnp.asarray(10.0 ** (-decimals), x.dtype)
    return jnp.round(x / ten) * ten


@_op("aten.gelu")
def _gelu(out, x, approximate="none"):
    if approximate == "tanh":  # torch's kernel: kBeta = √2 · 2/√π · ½, kKappa = 0.044715
        beta = math.sqrt(2.0) * (2.0 / math.sqrt(math.pi)) * 0.5
        return 0.5 * x * (1 + jnp.tanh(beta * (x + 0.044715 * x * x * x)))
    return x * 0.5 * (1 + jax.scipy.special.erf(x * (1 / math.sqrt(2.0))))


@_op("aten.hardtanh")
def _hardtanh(out, x, min_val=-1.0, max_val=1.0):
    return jnp.clip(x, min_val, max_val)


@_op("aten.elu")
def _elu(out, x, alpha=1.0, scale=1.0, input_scale=1.0):
    return jnp.where(x > 0, scale * x, scale * alpha * jnp.expm1(x * input_scale))


@_op("aten.leaky_relu")
def _leaky_relu(out, x, negative_slope=0.01):
    return jnp.where(x > 0, x, x * negative_slope)


@_op("aten.softplus")
def _softplus(out, x, beta=1.0, threshold=20.0):
    return jnp.where(x * beta > threshold, x, jnp.log1p(jnp.exp(x * beta)) / beta)


@_op("aten.nan_to_num")
def _nan_to_num(out, x, nan=None, posinf=None, neginf=None):
    return jnp.nan_to_num(x, nan=0.0 if nan is None else nan, posinf=posinf, neginf=neginf)


@_op("aten.logit.default")
def _logit(out, x, eps=None):
    if eps is not None:
        x = jnp.clip(x, eps, 1 - eps)
    return jnp.log(x / (1 - x))


# elementwise, two operands
def _alpha(f):
    def impl(out, a, b, *, alpha=1):
        a, b = _float_in(out, a, b)
        a, b = _scalar_like(a, b), _scalar_like(b, a)
        if alpha != 1:
            b = b * _scalar_like(alpha, b) if isinstance(b, jax.Array) else b * alpha
        return f(a, b)

    return impl


_op("aten.add.Tensor", "aten.add.Scalar")(_alpha(jnp.add))
_op("aten.sub.Tensor", "aten.sub.Scalar")(_alpha(jnp.subtract))


@_op("aten.rsub.Tensor", "aten.rsub.Scalar")
def _rsub(out, a, b, *, alpha=1):
    return _alpha(jnp.subtract)(out, b, a, alpha=alpha)


@_op("aten.div.Tensor", "aten.div.Scalar")
def _div(out, a, b):
    a, b = _float_in(out, a, b)
    return jnp.true_divide(_scalar_like(a, b), _scalar_like(b, a))


@_op("aten.div.Tensor_mode", "aten.div.Scalar_mode")
def _div_mode(out, a, b, *, rounding_mode=None):
    a, b = _float_in(out, a, b)
    a, b = _scalar_like(a, b), _scalar_like(b, a)
    if rounding_mode is None:
        return jnp.true_divide(a, b)
    if rounding_mode == "floor":
        return jnp.floor_divide(a, b)
    if jnp.issubdtype(jnp.result_type(a, b), jnp.integer):
        a, b = jnp.broadcast_arrays(jnp.asarray(a, out.dtype), jnp.asarray(b, out.dtype))
        return lax.div(a, b)  # XLA's integer division truncates toward zero
    return jnp.trunc(jnp.true_divide(a, b))


def _copysign(a, b):
    # |a| with b's sign, in arithmetic the exact method reads (jnp.copysign moves bits, which it
    # does not): b's sign bit is b < 0, or b = −0 (1/b = −inf); a NaN b counts as positive
    negative = (b < 0) | ((b == 0) & (1 / jnp.where(b == 0, b, 1) < 0))
    return jnp.where(negative, -jnp.abs(a), jnp.abs(a))


for _name, _f in {
    "mul": jnp.multiply,
    "maximum": jnp.maximum,
    "minimum": jnp.minimum,
    "fmax": jnp.fmax,
    "fmin": jnp.fmin,
    "atan2": jnp.arctan2,
    "arctan2": jnp.arctan2,
    "remainder": jnp.remainder,
    "fmod": jnp.fmod,
    "hypot": jnp.hypot,
    "copysign": lambda a, b: _copysign(a, b),
    "nextafter": jnp.nextafter,
    "xlogy": jax.scipy.special.xlogy,
    "special_xlog1py": jax.scipy.special.xlog1py,
    "logaddexp": jnp.logaddexp,
    "logaddexp2": jnp.logaddexp2,
    "eq": jnp.equal,
    "ne": jnp.not_equal,
    "lt": jnp.less,
    "le": jnp.less_equal,
    "gt": jnp.greater,
    "ge": jnp.greater_equal,
    "logical_and": jnp.logical_and,
    "logical_or": jnp.logical_or,
    "logical_xor": lambda a, b: jnp.not_equal(jnp.asarray(a).astype(bool), jnp.asarray(b).astype(bool)),
    "bitwise_and": jnp.bitwise_and,
    "bitwise_or": jnp.bitwise_or,
    "bitwise_xor": lambda a, b: jnp.not_equal(a, b) if jnp.result_type(a, b) == jnp.bool_ else jnp.bitwise_xor(a, b),
    "bitwise_left_shift": jnp.left_shift,
    "bitwise_right_shift": jnp.right_shift,
    "floor_divide": jnp.floor_divide,
    "heaviside": jnp.heaviside,
    "igamma": jax.scipy.special.gammainc,
    "igammac": jax.scipy.special.gammaincc,
    "special_zeta": jax.scipy.special.zeta,
}.items():
    if _f is not None:
        _op(f"aten.{_name}")(_binary(_f))


@_op("aten.pow.Tensor_Scalar")
def _pow_scalar(out, x, exponent):
    (x,) = _float_in(out, x)
    if isinstance(exponent, bool):
        exponent = int(exponent)
    if isinstance(exponent, float) and exponent.is_integer() and abs(exponent) <= 2**31:
        exponent = int(exponent)  # the same value as the float power, as integer_pow
    if isinstance(exponent, int):
        if jnp.issubdtype(x.dtype, jnp.integer) and exponent < 0:
            return jnp.power(x, exponent)
        return lax.integer_pow(x, exponent) if exponent != 0 else jnp.ones_like(x)
    return jnp.power(x, jnp.asarray(exponent, x.dtype))


@_op("aten.pow.Tensor_Tensor")
def _pow_tensor(out, a, b):
    a, b = _float_in(out, a, b)
    return jnp.power(a, b)


@_op("aten.pow.Scalar")
def _pow_base(out, base, x):
    (x,) = _float_in(out, x)
    return jnp.power(_scalar_like(base, x), x)


@_op("aten.where.self", "aten.where.ScalarSelf", "aten.where.ScalarOther", "aten.where.Scalar")
def _where(out, cond, a, b):
    a, b = _float_in(out, a, b)
    return jnp.where(cond, _scalar_like(a, b), _scalar_like(b, a))


@_op("aten.clamp.default", "aten.clamp.Tensor")
def _clamp(out, x, min=None, max=None):  # noqa: A002 - torch's names
    (x,) = _float_in(out, x)
    if min is not None:
        x = jnp.maximum(x, _scalar_like(min, x))
    if max is not None:
        x = jnp.minimum(x, _scalar_like(max, x))
    return x


@_op("aten.clamp_min.default", "aten.clamp_min.Tensor")
def _clamp_min(out, x, min):  # noqa: A002
    return _clamp(out, x, min=min)


@_op("aten.clamp_max.default", "aten.clamp_max.Tensor")
def _clamp_max(out, x, max):  # noqa: A002
    return _clamp(out, x, max=max)


@_op("aten.lerp.Scalar", "aten.lerp.Tensor")
def _lerp(out, a, b, weight):
    return a + weight * (b - a)


@_op("aten.addcmul.default")
def _addcmul(out, x, a, b, *, value=1):
    return x + value * a * b


@_op("aten.addcdiv.default")
def _addcdiv(out, x, a, b, *, value=1):
    return x + value * a / b


# reductions
def _reduction(f):
    def impl(out, x, dim=None, keepdim=False, *, dtype=None):
        (x,) = _float_in(out, jnp.asarray(x))
        if dtype is not None:
            x = x.astype(dtype)
        elif out.dtype is not None and x.dtype != out.dtype and not jnp.issubdtype(out.dtype, jnp.bool_):
            x = x.astype(out.dtype)  # torch sums bools and small ints in int64
        return f(x, axis=_dims(x, dim), keepdims=keepdim)

    return impl


_op("aten.sum.dim_IntList", "aten.sum.default")(_reduction(jnp.sum))
_op("aten.mean.dim", "aten.mean.default")(_reduction(jnp.mean))
_op("aten.amax", "aten.max.default")(_reduction(jnp.max))
_op("aten.amin", "aten.min.default")(_reduction(jnp.min))


def _fold(f):
    """any/all as a chain of elementwise or/and over the reduced axes (the exact translation has
    rules for those, not for reduce_or/reduce_and)."""

    def reduce(x, axis, keepdims):
        x = x if x.dtype == jnp.bool_ else x != 0
        kept = [d for d in range(x.ndim) if d not in axis]
        moved = jnp.reshape(jnp.transpose(x, kept + list(axis)), [x.shape[d] for d in kept] + [-1])
        if moved.shape[-1] == 0:
            r = jnp.full(moved.shape[:-1], f is jnp.logical_and)
        else:
            r = moved[..., 0]
            for k in range(1, moved.shape[-1]):
                r = f(r, moved[..., k])
        if keepdims:
            r = jnp.reshape(r, [1 if d in axis else n for d, n in enumerate(x.shape)])
        return r

    return reduce


_op("aten.any.dim", "aten.any.dims", "aten.any.default")(_reduction(_fold(jnp.logical_or)))
_op("aten.all.dim", "aten.all.dims", "aten.all.default")(_reduction(_fold(jnp.logical_and)))


@_op("aten.prod.default")
def _prod_all(out, x, *, dtype=None):
    return _reduction(jnp.prod)(out, x, None, False, dtype=dtype)


@_op("aten.prod.dim_int")
def _prod_dim(out, x, dim, keepdim=False, *, dtype=None):
    return _reduction(jnp.prod)(out, x, dim, keepdim, dtype=dtype)


def _variance(x, dim, correction, keepdim):
    axes = _dims(x, dim)
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    mean = jnp.sum(x, axis=axes, keepdims=True) / n
    c = 1 if correction is None else correction
    var = jnp.sum(jnp.square(x - mean), axis=axes, keepdims=keepdim) / (n - c)
    return var, (mean if keepdim else jnp.squeeze(mean, axes))


@_op("aten.var.correction")
def _var(out, x, dim=None, *, correction=None, keepdim=False):
    return _variance(x, dim, correction, keepdim)[0]


@_op("aten.var_mean.correction")
def _var_mean(out, x, dim=None, *, correction=None, keepdim=False):
    return _variance(x, dim, correction, keepdim)


@_op("aten.std.correction")
def _std(out, x, dim=None, *, correction=None, keepdim=False):
    return jnp.sqrt(_variance(x, dim, correction, keepdim)[0])


def _arg_reduce(f):
    def impl(out, x, dim=None, keepdim=False):
        if dim is None:
            r = f(jnp.ravel(x))
            return jnp.reshape(r, (1,) * jnp.ndim(x)) if keepdim else r
        axis = _axis(x, dim)
        if jnp.ndim(x) == 0:
            return jnp.zeros((), jnp.int32)
        return f(x, axis=axis, keepdims=keepdim)

    return impl


_op("aten.argmax")(_arg_reduce(jnp.argmax))
_op("aten.argmin")(_arg_reduce(jnp.argmin))


def _value_index(f, arg):
    def impl(out, x, dim, keepdim=False):
        if jnp.ndim(x) == 0:
            return x, jnp.zeros((), jnp.int32)
        axis = _axis(x, dim)
        index = arg(x, axis=axis, keepdims=keepdim) if out.wants(1) else None
        return f(x, axis=axis, keepdims=keepdim), index

    return impl


_op("aten.max.dim")(_value_index(jnp.max, jnp.argmax))
_op("aten.min.dim")(_value_index(jnp.min, jnp.argmin))


@_op("aten.cumsum")
def _cumsum(out, x, dim, *, dtype=None):
    x = x.astype(out.dtype)
    return x if jnp.ndim(x) == 0 else jnp.cumsum(x, axis=_axis(x, dim))


@_op("aten.cumprod")
def _cumprod(out, x, dim, *, dtype=None):
    x = x.astype(out.dtype)
    return x if jnp.ndim(x) == 0 else jnp.cumprod(x, axis=_axis(x, dim))


@_op("aten.logsumexp")
def _logsumexp(out, x, dim, keepdim=False):
    (x,) = _float_in(out, x)
    axes = _dims(x, dim)
    m = lax.stop_gradient(jnp.max(x, axis=axes, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    r = jnp.log(jnp.sum(jnp.exp(x - m), axis=axes, keepdims=True)) + m
    return r if keepdim else jnp.squeeze(r, axes)


@_op("aten.sort.default")
def _sort(out, x, dim=-1, descending=False):
    return _sort_stable(out, x, stable=False, dim=dim, descending=descending)


@_op("aten.sort.stable")
def _sort_stable(out, x, *, stable=False, dim=-1, descending=False):
    if jnp.ndim(x) == 0:
        return x, jnp.zeros((), jnp.int32)
    axis = _axis(x, dim)
    idx = jnp.argsort(x, axis=axis, stable=True, descending=descending)
    return jnp.take_along_axis(x, idx, axis=axis), idx


@_op("aten.topk")
def _topk(out, x, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    if jnp.ndim(x) == 0:
        return x, jnp.zeros((), jnp.int32)
    axis = _axis(x, dim)
    idx = jnp.argsort(x, axis=axis, stable=True, descending=largest)
    idx = lax.slice_in_dim(idx, 0, k, axis=axis)
    return jnp.take_along_axis(x, idx, axis=axis), idx


# shapes and layout
@_op("aten.view.default", "aten._unsafe_view.default", "aten.reshape.default", "aten.view_copy.default")
def _view(out, x, size):
    return jnp.reshape(x, out.shape)


@_op("aten.permute.default", "aten.permute_copy.default")
def _permute(out, x, dims):
    return jnp.transpose(x, [d % max(jnp.ndim(x), 1) for d in dims]) if jnp.ndim(x) else x


@_op("aten.t.default")
def _t(out, x):
    return x.T


@_op("aten.transpose.int")
def _transpose(out, x, dim0, dim1):
    return jnp.swapaxes(x, dim0, dim1) if jnp.ndim(x) else x


@_op("aten.expand.default", "aten.expand_copy.default")
def _expand(out, x, size, *, implicit=False):
    return jnp.broadcast_to(x, out.shape)


@_op("aten.squeeze.default", "aten.squeeze.dim", "aten.squeeze.dims", "aten.squeeze_copy.dims")
def _squeeze(out, x, dim=None):
    return jnp.reshape(x, out.shape)


@_op("aten.unsqueeze.default", "aten.unsqueeze_copy.default")
def _unsqueeze(out, x, dim):
    return jnp.expand_dims(x, dim % (jnp.ndim(x) + 1))


@_op(
    "aten.clone.default",
    "aten.alias.default",
    "aten.alias_copy.default",
    "aten.detach.default",
    "aten.detach_copy.default",
    "aten.lift_fresh_copy.default",
    "aten.contiguous.default",
    "aten.positive.default",
    "aten.conj_physical.default",
    "aten.resolve_conj.default",
    "aten.resolve_neg.default",
)
def _identity(out, x, **_):
    return x


@_op("aten._to_copy.default", "aten.to.dtype", "aten._to_dim_order_copy.default")
def _to_copy(out, x, *args, **_):
    return jnp.asarray(x).astype(out.dtype)


@_op("aten.copy.default")
def _copy(out, dst, src, non_blocking=False):
    return jnp.broadcast_to(jnp.asarray(src).astype(out.dtype), out.shape)


@_op("aten._assert_tensor_metadata.default", "aten._assert_scalar.default", "aten.sym_constrain_range_for_size.default")
def _no_op(out, *args, **kwargs):
    return None


@_op("aten.slice.Tensor", "aten.slice_copy.Tensor")
def _slice(out, x, dim=0, start=None, end=None, step=1):
    index = [slice(None)] * jnp.ndim(x)
    index[_axis(x, dim)] = slice(start, end, step)
    return x[tuple(index)]


@_op("aten.slice_scatter.default")
def _slice_scatter(out, x, src, dim=0, start=None, end=None, step=1):
    index = [slice(None)] * jnp.ndim(x)
    index[_axis(x, dim)] = slice(start, end, step)
    return x.at[tuple(index)].set(src.astype(x.dtype))


@_op("aten.select.int", "aten.select_copy.int")
def _select(out, x, dim, index):
    axis = _axis(x, dim)
    return lax.index_in_dim(x, index % x.shape[axis], axis, keepdims=False)


@_op("aten.select_scatter.default")
def _select_scatter(out, x, src, dim, index):
    axis = _axis(x, dim)
    where = [slice(None)] * jnp.ndim(x)
    where[axis] = index % x.shape[axis]
    return x.at[tuple(where)].set(src.astype(x.dtype))


@_op("aten.cat.default", "aten.concat.default")
def _cat(out, tensors, dim=0):
    tensors = [t for t in tensors if not (jnp.ndim(t) == 1 and t.shape[0] == 0)] or list(tensors[:1])
    tensors = [jnp.asarray(t).astype(out.dtype) for t in tensors]
    return jnp.concatenate(tensors, axis=_axis(tensors[0], dim))


@_op("aten.stack.default")
def _stack(out, tensors, dim=0):
    tensors = [jnp.asarray(t).astype(out.dtype) for t in tensors]
    return jnp.stack(tensors, axis=dim % (jnp.ndim(tensors[0]) + 1))


@_op("aten.split_with_sizes.default", "aten.split_with_sizes_copy.default")
def _split_with_sizes(out, x, sizes, dim=0):
    axis = _axis(x, dim)
    starts = np.cumsum([0, *sizes])
    return [lax.slice_in_dim(x, int(a), int(b), axis=axis) for a, b in zip(starts[:-1], starts[1:])]


@_op("aten.split.Tensor", "aten.split_copy.Tensor")
def _split(out, x, size, dim=0):
    axis = _axis(x, dim)
    n = x.shape[axis]
    return [lax.slice_in_dim(x, a, min(a + size, n), axis=axis) for a in range(0, max(n, 1), size)]


@_op("aten.unbind.int", "aten.unbind_copy.int")
def _unbind(out, x, dim=0):
    axis = _axis(x, dim)
    return [lax.index_in_dim(x, i, axis, keepdims=False) for i in range(x.shape[axis])]


@_op("aten.flip.default")
def _flip(out, x, dims):
    return jnp.flip(x, _dims(x, dims)) if len(dims) else x


@_op("aten.roll.default")
def _roll(out, x, shifts, dims=()):
    if not dims:
        return jnp.reshape(jnp.roll(jnp.ravel(x), shifts[0]), x.shape)
    return jnp.roll(x, tuple(shifts), tuple(dims))


@_op("aten.repeat.default")
def _repeat(out, x, repeats):
    # each dimension d becomes (r, d), broadcast, then merged (jnp.tile's primitive has no SymPy rule)
    x = jnp.reshape(x, (1,) * (len(repeats) - jnp.ndim(x)) + x.shape)
    spread = jnp.reshape(x, tuple(v for n in x.shape for v in (1, n)))
    spread = jnp.broadcast_to(spread, tuple(v for r, n in zip(repeats, x.shape) for v in (r, n)))
    return jnp.reshape(spread, out.shape)


@_op("aten.constant_pad_nd.default")
def _constant_pad_nd(out, x, pad, value=0):
    config = [(0, 0, 0)] * jnp.ndim(x)
    for i in range(len(pad) // 2):
        config[jnp.ndim(x) - 1 - i] = (pad[2 * i], pad[2 * i + 1], 0)
    return lax.pad(x, jnp.asarray(value, x.dtype), config)  # a negative pad crops, as in torch


@_op("aten.diagonal.default", "aten.diagonal_copy.default")
def _diagonal(out, x, offset=0, dim1=0, dim2=1):
    return jnp.diagonal(x, offset, _axis(x, dim1), _axis(x, dim2))


@_op("aten.tril.default")
def _tril(out, x, diagonal=0):
    return jnp.tril(x, diagonal)


@_op("aten.triu.default")
def _triu(out, x, diagonal=0):
    return jnp.triu(x, diagonal)


@_op("aten.as_strided.default", "aten.as_strided_copy.default")
def _as_strided(out, x, size, stride, storage_offset=None):
    # the element at storage position p of a contiguous x is x.ravel()[p]
    offset = storage_offset or 0
    idx = np.full(tuple(size), offset, dtype=np.int64)
    for d, (n, s) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[d] = n
        idx = idx + np.arange(n, dtype=np.int64).reshape(shape) * s
    return jnp.ravel(x)[idx]


# indexing
@_op("aten.index.Tensor", "aten._unsafe_index.Tensor")
def _index(out, x, indices):
    for i in indices:
        if i is not None and jnp.asarray(i).dtype == jnp.bool_:
            raise Refused(Reason.DATA_DEPENDENT, "indexing with a boolean mask has a data-dependent shape")
    where = tuple(slice(None) if i is None else i for i in indices)
    return x[where]


@_op("aten.index_put.default", "aten._unsafe_index_put.default")
def _index_put(out, x, indices, values, accumulate=False):
    where = tuple(slice(None) if i is None else i for i in indices)
    values = jnp.asarray(values).astype(x.dtype)
    return x.at[where].add(values) if accumulate else x.at[where].set(values)


@_op("aten.index_select.default")
def _index_select(out, x, dim, index):
    if jnp.ndim(x) == 0:
        return jnp.reshape(x, out.shape)
    return jnp.take(x, jnp.reshape(index, (-1,)), axis=_axis(x, dim))


@_op("aten.embedding.default")
def _embedding(out, weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return jnp.take(weight, indices, axis=0)


@_op("aten.gather.default")
def _gather(out, x, dim, index, *, sparse_grad=False):
    if jnp.ndim(x) == 0:
        return jnp.reshape(x, out.shape)
    axis = _axis(x, dim)
    # torch's index may be smaller than x in the other dimensions: the corner x[:i.shape] is read
    corner = tuple(slice(None) if d == axis else slice(0, index.shape[d]) for d in range(jnp.ndim(x)))
    return jnp.take_along_axis(x[corner], index, axis=axis)


def _scatter_where(x, dim, index):
    axis = _axis(x, dim)
    grids = jnp.meshgrid(*[jnp.arange(n) for n in index.shape], indexing="ij")
    grids[axis] = index
    return tuple(grids), axis


def _src_corner(src, index):
    if not isinstance(src, jax.Array | np.ndarray) or jnp.ndim(src) == 0:
        return src
    return src[tuple(slice(0, n) for n in index.shape)]


@_op("aten.scatter.src", "aten.scatter.value")
def _scatter(out, x, dim, index, src, *, reduce=None):
    if jnp.ndim(x) == 0:
        return jnp.reshape(jnp.asarray(src, x.dtype), ()) if index.size else x
    where, _ = _scatter_where(x, dim, index)
    src = jnp.asarray(_src_corner(src, index)).astype(x.dtype)
    if reduce == "add":
        return x.at[where].add(src)
    if reduce == "multiply":
        return x.at[where].multiply(src)
    return x.at[where].set(src)


@_op("aten.scatter_add.default")
def _scatter_add(out, x, dim, index, src):
    if jnp.ndim(x) == 0:
        return x + jnp.sum(src) if index.size else x
    where, _ = _scatter_where(x, dim, index)
    return x.at[where].add(_src_corner(src, index).astype(x.dtype))


@_op("aten.scatter_reduce.two")
def _scatter_reduce(out, x, dim, index, src, reduce, *, include_self=True):
    if jnp.ndim(x) == 0:
        x, index, src = x[None], jnp.reshape(index, (-1,)), jnp.reshape(src, (-1,))
        return jnp.reshape(_scatter_reduce(out, x, 0, index, src, reduce, include_self=include_self), ())
    where, _ = _scatter_where(x, dim, index)
    src = _src_corner(src, index).astype(x.dtype)
    identity = {"sum": 0, "mean": 0, "prod": 1, "amax": -jnp.inf, "amin": jnp.inf}[reduce]
    if reduce in ("amax", "amin") and not jnp.issubdtype(x.dtype, jnp.inexact):
        info = jnp.iinfo(x.dtype)
        identity = info.min if reduce == "amax" else info.max
    base = x if include_self else x.at[where].set(jnp.asarray(identity, x.dtype))
    if reduce in ("sum", "mean"):
        total = base.at[where].add(src)
        if reduce == "sum":
            return total
        count = jnp.ones_like(x) if include_self else jnp.ones_like(x).at[where].set(0)
        count = count.at[where].add(jnp.ones_like(src))
        count = jnp.maximum(count, jnp.ones_like(count))
        return total / count if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.floor_divide(total, count)
    if reduce == "prod":
        return base.at[where].multiply(src)
    return base.at[where].max(src) if reduce == "amax" else base.at[where].min(src)


@_op("aten.index_add.default")
def _index_add(out, x, dim, index, source, *, alpha=1):
    axis = _axis(x, dim)
    where = [slice(None)] * jnp.ndim(x)
    where[axis] = index
    src = jnp.moveaxis(source, axis, 0) if jnp.ndim(source) else source
    moved = jnp.moveaxis(x, axis, 0) if jnp.ndim(x) else x
    moved = moved.at[index].add((alpha * src).astype(x.dtype))
    return jnp.moveaxis(moved, 0, axis) if jnp.ndim(x) else moved


@_op("aten.masked_fill.Scalar", "aten.masked_fill.Tensor")
def _masked_fill(out, x, mask, value):
    return jnp.where(mask, jnp.asarray(value, x.dtype), x)


# creation: the values come from the arguments, the dtype and shape from torch's record of the node
@_op("aten.full.default", "aten.new_full.default")
def _full(out, *args, **_):
    fill = args[-1]
    return jnp.full(out.shape, fill, out.dtype)


@_op("aten.full_like.default")
def _full_like(out, x, fill_value, **_):
    return jnp.full(out.shape, fill_value, out.dtype)


@_op(
    "aten.zeros.default",
    "aten.zeros_like.default",
    "aten.new_zeros.default",
    "aten.empty.memory_format",
    "aten.empty_like.default",
    "aten.new_empty.default",
    "aten.empty_strided.default",
    "aten.empty_permuted.default",
    "aten.new_empty_strided.default",
)
def _zeros(out, *args, **_):
    return jnp.zeros(out.shape, out.dtype)


@_op("aten.ones.default", "aten.ones_like.default", "aten.new_ones.default")
def _ones(out, *args, **_):
    return jnp.ones(out.shape, out.dtype)


@_op("aten.scalar_tensor.default")
def _scalar_tensor(out, s, **_):
    return jnp.asarray(s, out.dtype)


@_op("aten.arange.start_step", "aten.arange.start", "aten.arange.default")
def _arange(out, *args, **kwargs):
    start, end, step = (0, args[0], 1) if len(args) == 1 else (args + (1,))[:3]
    step = kwargs.get("step", step)
    exact = np.arange(start, end, step, dtype=np.float64 if jnp.issubdtype(out.dtype, jnp.inexact) else np.int64)
    return jnp.asarray(exact, out.dtype)  # a constant: its values never depend on the inputs


@_op("aten.linspace.default")
def _linspace(out, start, end, steps, **_):
    return jnp.asarray(np.linspace(start, end, steps), out.dtype)


# linear algebra
def _mm(a, b):
    return jnp.matmul(a, b, precision=_HIGHEST)


@_op("aten.mm.default", "aten.bmm.default", "aten.matmul.default")
def _matmul(out, a, b):
    return _mm(a, b)


@_op("aten.mv.default")
def _mv(out, a, v):
    return _mm(a, v)


@_op("aten.dot.default", "aten.vdot.default")
def _dot(out, a, b):
    return jnp.dot(a, b, precision=_HIGHEST)


@_op("aten.addmm.default", "aten.addmv.default", "aten.baddbmm.default", "aten.addbmm.default")
def _addmm(out, bias, a, b, *, beta=1, alpha=1):
    prod = _mm(a, b)
    if prod.ndim == 3 and out.shape is not None and len(out.shape) == 2:
        prod = jnp.sum(prod, axis=0)  # addbmm sums the batch
    prod = prod if alpha == 1 else alpha * prod
    if beta == 0:
        return jnp.broadcast_to(prod, out.shape)
    return (bias if beta == 1 else beta * bias) + prod


@_op("aten.addr.default")
def _addr(out, x, a, b, *, beta=1, alpha=1):
    return beta * x + alpha * jnp.outer(a, b)


@_op("aten.convolution.default")
def _convolution(out, x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    n = w.ndim - 2
    unbatched = x.ndim == n + 1
    if unbatched:
        x = x[None]
    stride, padding, dilation = _expand_list(stride, n), _expand_list(padding, n), _expand_list(dilation, n)
    if not transposed:
        y = _conv(x, w, stride, [(p, p) for p in padding], dilation, groups)
    else:
        # the transpose of a convolution: the input dilated by the stride, the kernel flipped with
        # its in/out channels swapped (per group), padded by dilation·(k−1) − padding (+ output_padding)
        output_padding = _expand_list(output_padding, n)
        cin, cout_g = w.shape[0], w.shape[1]
        k = w.shape[2:]
        wt = jnp.reshape(w, (groups, cin // groups, cout_g) + k)
        wt = jnp.swapaxes(wt, 1, 2)
        wt = jnp.reshape(wt, (groups * cout_g, cin // groups) + k)
        wt = jnp.flip(wt, tuple(range(2, 2 + n)))
        pads = [(d * (kk - 1) - p, d * (kk - 1) - p + op) for d, kk, p, op in zip(dilation, k, padding, output_padding)]
        spread = [(0, 0, 0)] * 2 + [(0, 0, s - 1) for s in stride]
        x = lax.pad(x, jnp.zeros((), x.dtype), spread)
        y = _conv(x, wt, (1,) * n, pads, dilation, groups)
    if bias is not None:
        y = y + jnp.reshape(bias, (1, -1) + (1,) * n)
    return y[0] if unbatched else y


def _conv(x, w, stride, pads, dilation, groups):
    """A convolution (cross-correlation) as patches and one matrix product: each kernel offset's
    strided slice of the padded input, stacked, contracted with the kernel over (channels, offsets).
    The same sum as lax.conv_general_dilated, from primitives the jaxpr → SymPy translation reads."""
    n = w.ndim - 2
    x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0)] * 2 + [(lo, hi, 0) for lo, hi in pads])
    batch, cin = x.shape[:2]
    cout, k = w.shape[0], w.shape[2:]
    cg, og = cin // groups, cout // groups
    outs = [(size - d * (kk - 1) - 1) // s + 1 for size, kk, s, d in zip(x.shape[2:], k, stride, dilation)]
    xg = jnp.reshape(x, (batch, groups, cg) + x.shape[2:])
    patches = []
    for offset in np.ndindex(*k):
        start = [0, 0, 0] + [i * d for i, d in zip(offset, dilation)]
        limit = [batch, groups, cg] + [st + (o - 1) * s + 1 for st, o, s in zip(start[3:], outs, stride)]
        patches.append(lax.slice(xg, start, limit, [1, 1, 1] + list(stride)))
    stacked = jnp.stack(patches, axis=-1)  # (N, g, Cg, *out, K)
    wg = jnp.reshape(w, (groups, og, cg, -1))  # (g, Og, Cg, K)
    y = lax.dot_general(stacked, wg, (((2, stacked.ndim - 1), (2, 3)), ((1,), (0,))), precision=_HIGHEST)
    # (g, N, *out, Og) → (N, g·Og, *out)
    y = jnp.transpose(y, (1, 0, n + 2) + tuple(range(2, n + 2)))
    return jnp.reshape(y, (batch, cout) + tuple(outs))


def _expand_list(v, n):
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return tuple(v * n if len(v) == 1 else v)


# normalisation, softmax, losses
@_op("aten._softmax.default", "aten.softmax.int")
def _softmax(out, x, dim, half_to_float=False):
    (x,) = _float_in(out, x)
    if jnp.ndim(x) == 0:
        return jnp.ones_like(x)
    axis = _axis(x, dim)
    # softmax does not change when a constant is subtracted: the max is only there to avoid overflow
    m = lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    e = jnp.exp(x - m)
    return e / jnp.sum(e, axis=axis, keepdims=True)


@_op("aten._log_softmax.default", "aten.log_softmax.int")
def _log_softmax(out, x, dim, half_to_float=False):
    (x,) = _float_in(out, x)
    if jnp.ndim(x) == 0:
        return jnp.zeros_like(x)
    axis = _axis(x, dim)
    m = lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    shifted = x - m
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


@_op("aten.native_layer_norm.default")
def _native_layer_norm(out, x, normalized_shape, weight, bias, eps):
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    n = int(np.prod(normalized_shape, dtype=np.int64))
    mean = jnp.sum(x, axis=axes, keepdims=True) / n
    var = jnp.sum(jnp.square(x - mean), axis=axes, keepdims=True) / n
    rstd = lax.rsqrt(var + eps)
    y = (x - mean) * rstd
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y, mean, rstd


@_op("aten.native_group_norm.default")
def _native_group_norm(out, x, weight, bias, N, C, HxW, group, eps):  # noqa: N803 - torch's names
    g = jnp.reshape(x, (N, group, -1))
    n = g.shape[-1]
    mean = jnp.sum(g, axis=-1, keepdims=True) / n
    var = jnp.sum(jnp.square(g - mean), axis=-1, keepdims=True) / n
    rstd = lax.rsqrt(var + eps)
    y = jnp.reshape((g - mean) * rstd, x.shape)
    shape = (1, C) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * jnp.reshape(weight, shape)
    if bias is not None:
        y = y + jnp.reshape(bias, shape)
    return y, jnp.reshape(mean, (N, group)), jnp.reshape(rstd, (N, group))


def _batch_norm(x, weight, bias, mean, var, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - jnp.reshape(mean, shape)) * jnp.reshape(lax.rsqrt(var + eps), shape)
    if weight is not None:
        y = y * jnp.reshape(weight, shape)
    if bias is not None:
        y = y + jnp.reshape(bias, shape)
    return y


def _batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    mean = jnp.sum(x, axis=axes) / n
    shape = (1, -1) + (1,) * (x.ndim - 2)
    var = jnp.sum(jnp.square(x - jnp.reshape(mean, shape)), axis=axes) / n
    return mean, var, n


@_op("aten._native_batch_norm_legit_no_training.default")
def _batch_norm_eval(out, x, weight, bias, running_mean, running_var, momentum, eps):
    y = _batch_norm(x, weight, bias, running_mean, running_var, eps)
    return (y, *(jnp.zeros(s, d) for s, d in ((m[0], out.dt(m[1])) for m in out.many[1:])))


@_op("aten._native_batch_norm_legit_functional.default")
def _batch_norm_functional(out, x, weight, bias, running_mean, running_var, training, momentum, eps):
    if not training:
        y = _batch_norm(x, weight, bias, running_mean, running_var, eps)
        empty = [jnp.zeros(m[0], out.dt(m[1])) for m in out.many[1:3]]
        return (y, *empty, running_mean, running_var)
    mean, var, n = _batch_stats(x)
    y = _batch_norm(x, weight, bias, mean, var, eps)
    # the running statistics torch would store (the unbiased variance); not part of the output
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var * (n / max(n - 1, 1))
    return y, mean, lax.rsqrt(var + eps), new_mean, new_var


@_op("aten._native_batch_norm_legit.no_stats")
def _batch_norm_no_stats(out, x, weight, bias, training, momentum, eps):
    mean, var, _ = _batch_stats(x)
    return _batch_norm(x, weight, bias, mean, var, eps), mean, lax.rsqrt(var + eps)


@_op("aten._native_batch_norm_legit.default", "aten.native_batch_norm.default")
def _batch_norm_inplace(out, x, weight, bias, running_mean, running_var, training, momentum, eps):
    if training:
        raise Refused(
            Reason.UNSUPPORTED,
            "BatchNorm in train mode updates its running statistics in place and torch.export gave no functional "
            "form; call module.eval()",
        )
    y = _batch_norm(x, weight, bias, running_mean, running_var, eps)
    return (y, *(jnp.zeros(m[0], out.dt(m[1])) for m in out.many[1:]))


def _reduce_loss(loss, reduction):
    # torch's Reduction enum: 0 none, 1 mean, 2 sum
    if reduction == 1:
        return jnp.mean(loss)
    if reduction == 2:
        return jnp.sum(loss)
    return loss


@_op("aten.nll_loss_forward.default", "aten.nll_loss2d_forward.default")
def _nll_loss(out, x, target, weight, reduction, ignore_index):
    class_axis = 0 if x.ndim == 1 else 1
    keep = target != ignore_index
    safe = jnp.where(keep, target, jnp.zeros_like(target))
    picked = jnp.squeeze(jnp.take_along_axis(x, jnp.expand_dims(safe, class_axis), axis=class_axis), class_axis)
    w = jnp.ones_like(picked) if weight is None else jnp.take(weight, safe)
    w = jnp.where(keep, w, jnp.zeros_like(w))
    loss = -picked * w
    total = jnp.sum(w)
    if reduction == 1:
        return jnp.sum(loss) / total, total
    if reduction == 2:
        return jnp.sum(loss), total
    return loss, jnp.zeros(out.many[1][0], out.dt(out.many[1][1]))


@_op("aten.mse_loss.default")
def _mse_loss(out, x, y, reduction=1):
    return _reduce_loss(jnp.square(x - y), reduction)


@_op("aten.binary_cross_entropy.default")
def _binary_cross_entropy(out, x, y, weight=None, reduction=1):
    # torch clamps each log at −100 so that a probability of exactly 0 or 1 gives a finite loss
    log_p = jnp.maximum(jnp.log(x), -100.0)
    log_q = jnp.maximum(jnp.log1p(-x), -100.0)
    loss = -(y * log_p + (1 - y) * log_q)
    if weight is not None:
        loss = loss * weight
    return _reduce_loss(loss, reduction)


@_op("aten.binary_cross_entropy_with_logits.default")
def _bce_with_logits(out, x, y, weight=None, pos_weight=None, reduction=1):
    # (1 − y)·x + (1 + (p − 1)·y)·softplus(−x), softplus(−x) = log1p(exp(−|x|)) + max(−x, 0)
    sp = jnp.log1p(jnp.exp(-jnp.abs(x))) + jnp.maximum(-x, 0)
    if pos_weight is not None:
        loss = (1 - y) * x + (1 + (pos_weight - 1) * y) * sp
    else:
        loss = (1 - y) * x + sp
    if weight is not None:
        loss = loss * weight
    return _reduce_loss(loss, reduction)


# pooling and resampling, from strided slices, sums and maxima (no reduce_window: each window
# element is one slice, which the jaxpr → SymPy translation reads element by element)
def _pool_geometry(x, n, kernel, stride, padding, dilation, ceil_mode):
    kernel = _expand_list(kernel, n)
    stride = _expand_list(stride, n) if stride else kernel
    padding, dilation = _expand_list(padding, n), _expand_list(dilation, n)
    sizes = x.shape[-n:]
    outs = []
    for size, k, s, p, d in zip(sizes, kernel, stride, padding, dilation):
        span = size + 2 * p - d * (k - 1) - 1
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= size + p:
            o -= 1  # torch: the last window must start inside the input or its left padding
        outs.append(o)
    return kernel, stride, padding, dilation, tuple(outs)


def _windows(x, n, kernel, stride, padding, dilation, outs, fill):
    """Every window offset's strided slice of x padded with `fill`: (offsets, slices)."""
    sizes = x.shape[-n:]
    config = [(0, 0, 0)] * (x.ndim - n)
    for size, k, s, p, d, o in zip(sizes, kernel, stride, padding, dilation, outs):
        config.append((p, max((o - 1) * s + d * (k - 1) + 1 - size - p, 0), 0))
    padded = lax.pad(x, jnp.asarray(fill, x.dtype), config)
    offsets, slices = [], []
    for offset in np.ndindex(*kernel):
        start = [0] * (x.ndim - n) + [i * d for i, d in zip(offset, dilation)]
        limit = list(x.shape[:-n]) + [st + (o - 1) * s + 1 for st, o, s in zip(start[-n:], outs, stride)]
        strides = [1] * (x.ndim - n) + list(stride)
        offsets.append(offset)
        slices.append(lax.slice(padded, start, limit, strides))
    return offsets, slices


def _avg_pool(n):
    def impl(out, x, kernel, stride=(), padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
        kernel, stride, padding, dilation, outs = _pool_geometry(x, n, kernel, stride, padding, 1, ceil_mode)
        _, slices = _windows(x, n, kernel, stride, padding, dilation, outs, 0)
        total = slices[0]
        for part in slices[1:]:
            total = total + part
        if divisor_override:
            return total / divisor_override
        # torch's divisor per output position: the window clipped to the padded input, or to the
        # input itself when count_include_pad is False
        divisor = np.ones((), np.float64)
        for size, k, s, p, o in zip(x.shape[-n:], kernel, stride, padding, outs):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, size + p)
            count = end - start
            if not count_include_pad:
                count = np.minimum(end, size) - np.maximum(start, 0)
            divisor = np.multiply.outer(divisor, count)
        return total / jnp.asarray(divisor, x.dtype)

    return impl


_op("aten.avg_pool1d.default")(_avg_pool(1))
_op("aten.avg_pool2d.default")(_avg_pool(2))
_op("aten.avg_pool3d.default")(_avg_pool(3))


def _max_pool(n):
    def impl(out, x, kernel, stride=(), padding=0, dilation=1, ceil_mode=False):
        kernel, stride, padding, dilation, outs = _pool_geometry(x, n, kernel, stride, padding, dilation, ceil_mode)
        offsets, slices = _windows(x, n, kernel, stride, padding, dilation, outs, -jnp.inf)
        stacked = jnp.stack(slices, axis=-1)
        values = jnp.max(stacked, axis=-1)
        if not out.wants(1):
            return values, None
        which = jnp.argmax(stacked, axis=-1)  # the first maximum, as torch's kernel keeps
        # the flat index into the input's spatial dimensions of each window offset at each position
        flat = np.zeros(outs + (len(offsets),), np.int64)
        sizes = x.shape[-n:]
        for j, offset in enumerate(offsets):
            index = np.zeros(outs, np.int64)
            for axis, (i, d, s, p, size) in enumerate(zip(offset, dilation, stride, padding, sizes)):
                pos = np.arange(outs[axis]) * s - p + i * d
                shape = [1] * n
                shape[axis] = outs[axis]
                index = index * size + pos.reshape(shape)
            flat[..., j] = index
        table = jnp.asarray(flat)
        idx = jnp.take_along_axis(jnp.broadcast_to(table, which.shape + (len(offsets),)), which[..., None], axis=-1)
        return values, idx[..., 0]

    return impl


_op("aten.max_pool1d_with_indices.default")(_max_pool(1))
_op("aten.max_pool2d_with_indices.default")(_max_pool(2))
_op("aten.max_pool3d_with_indices.default")(_max_pool(3))


@_op("aten.max_pool1d.default", "aten.max_pool2d.default", "aten.max_pool3d.default")
def _max_pool_values(out, x, kernel, stride=(), padding=0, dilation=1, ceil_mode=False):
    n = len(kernel) if isinstance(kernel, (list, tuple)) else 1
    values_only = dataclasses.replace(out, used=frozenset({0}))
    return _max_pool(n)(values_only, x, kernel, stride, padding, dilation, ceil_mode)[0]


@_op("aten.fractional_max_pool2d.default", "aten.fractional_max_pool3d.default")
def _fractional_max_pool(out, x, kernel, output_size, samples):
    # torch's kernel: each plane's window starts along a dimension are ⌊(i + u)·α⌋ − ⌊u·α⌋ with
    # α = (in − pool)/(out − 1) in the samples' dtype, the last window flush with the end; a 2-d
    # plane reads its samples as (width, height), a 3-d one as (time, height, width)
    n = len(kernel)
    batched = x.ndim == n + 2
    xb = x if batched else x[None]
    lead, sizes = xb.shape[:2], xb.shape[2:]
    u = jnp.reshape(jnp.real(samples), lead + (n,))  # (1, C, n) for an unbatched input too
    which = (1, 0) if n == 2 else tuple(range(n))
    grid = lead + tuple(output_size) + tuple(kernel)
    flat = jnp.zeros(grid, int)  # JAX's default integer: int64 with x64 on
    for k in range(n):
        size, pool, o = sizes[k], kernel[k], output_size[k]
        uk = u[..., which.index(k)]
        last = jnp.full(lead + (1,), size - pool, flat.dtype)
        if o > 1:
            alpha = jnp.asarray(size - pool, uk.dtype) / jnp.asarray(o - 1, uk.dtype)
            i = jnp.arange(o - 1, dtype=uk.dtype)
            starts = ((i + uk[..., None]) * alpha).astype(flat.dtype) - (uk * alpha).astype(flat.dtype)[..., None]
            starts = jnp.concatenate([starts, last], axis=-1)
        else:
            starts = last
        pos = starts[..., :, None] + jnp.arange(pool, dtype=flat.dtype)  # (N, C, out_k, pool_k)
        shape = [1] * (2 * n)
        shape[k], shape[n + k] = o, pool
        stride = int(np.prod(sizes[k + 1 :], dtype=np.int64))
        flat = flat + jnp.reshape(pos, lead + tuple(shape)) * stride
    positions = jnp.reshape(flat, lead + (-1, int(np.prod(kernel))))
    plane = jnp.reshape(xb, lead + (-1,))
    windows = jnp.take_along_axis(plane, jnp.reshape(positions, lead + (-1,)), axis=-1)
    windows = jnp.reshape(windows, positions.shape)
    shape = xb.shape[:2] + tuple(output_size)
    values = jnp.reshape(jnp.max(windows, axis=-1), shape)
    index = None
    if out.wants(1):  # the first maximum in the window's order, as torch's kernel keeps
        first = jnp.argmax(windows, axis=-1)
        index = jnp.reshape(jnp.take_along_axis(positions, first[..., None], axis=-1), shape)
    if not batched:
        values, index = values[0], (None if index is None else index[0])
    return values, index


def _adaptive_bounds(size, o):
    start = (np.arange(o) * size) // o
    end = -((-(np.arange(o) + 1) * size) // o)
    return start, end


def _adaptive_avg(n):
    def impl(out, x, output_size):
        # separable: one averaging matrix per spatial dimension, applied by a matrix product
        output_size = _expand_list(output_size, n)
        y = x
        for axis, (size, o) in enumerate(zip(x.shape[-n:], output_size)):
            start, end = _adaptive_bounds(size, o)
            a = np.zeros((o, size))
            for r, (b, e) in enumerate(zip(start, end)):
                a[r, b:e] = 1.0 / (e - b)
            ax = x.ndim - n + axis
            y = jnp.moveaxis(jnp.tensordot(y, jnp.asarray(a, x.dtype), axes=([ax], [1]), precision=_HIGHEST), -1, ax)
        return y

    return impl


_op("aten._adaptive_avg_pool1d.default", "aten.adaptive_avg_pool1d.default")(_adaptive_avg(1))
_op("aten._adaptive_avg_pool2d.default")(_adaptive_avg(2))
_op("aten._adaptive_avg_pool3d.default")(_adaptive_avg(3))


def _adaptive_max(n):
    def impl(out, x, output_size):
        output_size = _expand_list(output_size, n)
        sizes = x.shape[-n:]
        bounds = [_adaptive_bounds(size, o) for size, o in zip(sizes, output_size)]
        values, indices = [], []
        lead = x.shape[:-n]
        for pos in np.ndindex(*output_size):
            window = x[(...,) + tuple(slice(int(b[0][p]), int(b[1][p])) for b, p in zip(bounds, pos))]
            flat = jnp.reshape(window, lead + (-1,))
            which = jnp.argmax(flat, axis=-1) if out.wants(1) else None
            shape = tuple(int(b[1][p] - b[0][p]) for b, p in zip(bounds, pos))
            table = np.zeros(shape, np.int64)
            for local in np.ndindex(*shape):
                index = 0
                for d in range(n):
                    index = index * sizes[d] + int(bounds[d][0][pos[d]]) + local[d]
                table[local] = index
            values.append(jnp.max(flat, axis=-1))
            indices.append(jnp.take(jnp.asarray(table.reshape(-1)), which) if out.wants(1) else None)
        shape = lead + tuple(output_size)
        index = jnp.reshape(jnp.stack(indices, -1), shape) if out.wants(1) else None
        return jnp.reshape(jnp.stack(values, -1), shape), index

    return impl


_op("aten.adaptive_max_pool1d.default")(_adaptive_max(1))
_op("aten.adaptive_max_pool2d.default")(_adaptive_max(2))
_op("aten.adaptive_max_pool3d.default")(_adaptive_max(3))


def _upsample_scale(size, o, align_corners, factor):
    if align_corners:
        return (size - 1) / (o - 1) if o > 1 else 0.0
    return 1.0 / factor if factor else size / o


def _upsample(n, linear):
    def impl(out, x, output_size, *args):
        if linear:
            align_corners, scale_factors = args[0], (args[1] if len(args) > 1 else None)
        else:
            align_corners, scale_factors = False, (args[0] if args else None)
        outs = out.shape[-n:]
        factors = _expand_list(scale_factors, n) if scale_factors else (None,) * n
        y = x
        for axis, (size, o, factor) in enumerate(zip(x.shape[-n:], outs, factors)):
            scale = _upsample_scale(size, o, align_corners, factor)
            dst = np.arange(o, dtype=np.float64)
            a = np.zeros((o, size))
            if not linear:  # nearest: floor(dst · scale)
                src = np.minimum(np.floor(dst * scale).astype(np.int64), size - 1)
                a[np.arange(o), src] = 1.0
            else:
                src = dst * scale if align_corners else np.maximum((dst + 0.5) * scale - 0.5, 0.0)
                i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
                i1 = np.minimum(i0 + 1, size - 1)
                lam = src - i0
                np.add.at(a, (np.arange(o), i0), 1 - lam)
                np.add.at(a, (np.arange(o), i1), lam)
            ax = x.ndim - n + axis
            y = jnp.moveaxis(jnp.tensordot(y, jnp.asarray(a, x.dtype), axes=([ax], [1]), precision=_HIGHEST), -1, ax)
        return y

    return impl


_op("aten.upsample_nearest1d.vec", "aten.upsample_nearest1d.default")(_upsample(1, False))
_op("aten.upsample_nearest2d.vec", "aten.upsample_nearest2d.default")(_upsample(2, False))
_op("aten.upsample_nearest3d.vec", "aten.upsample_nearest3d.default")(_upsample(3, False))
_op("aten.upsample_linear1d.vec", "aten.upsample_linear1d.default")(_upsample(1, True))
_op("aten.upsample_bilinear2d.vec", "aten.upsample_bilinear2d.default")(_upsample(2, True))
_op("aten.upsample_trilinear3d.vec", "aten.upsample_trilinear3d.default")(_upsample(3, True))


def _antialiased_weights(size, o, align_corners, factor) -> np.ndarray:
    """(o, size): torch's antialiased linear interpolation (`_compute_weights_aa`): a triangle
    filter widened by the scale when downsampling, its weights at each output normalised."""
    scale = _upsample_scale(size, o, align_corners, factor)
    support = scale if scale >= 1.0 else 1.0  # interp_size / 2 = 1, times the scale when shrinking
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    a = np.zeros((o, size))
    for i in range(o):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), size)
        j = np.arange(lo, hi)
        w = np.maximum(0.0, 1.0 - np.abs((j - center + 0.5) * invscale))
        if w.sum() != 0:
            a[i, lo:hi] = w / w.sum()
    return a


@_op("aten._upsample_bilinear2d_aa.default", "aten._upsample_bilinear2d_aa.vec")
def _upsample_bilinear2d_aa(out, x, output_size, align_corners, *scales):
    if len(scales) == 1:  # .vec: scale_factors, a list or None
        factors = _expand_list(scales[0], 2) if scales[0] else (None, None)
    else:
        factors = tuple(scales) + (None,) * (2 - len(scales))
    y = x
    for axis, (size, o, factor) in enumerate(zip(x.shape[-2:], out.shape[-2:], factors)):
        a = _antialiased_weights(size, o, align_corners, factor)
        ax = x.ndim - 2 + axis
        y = jnp.moveaxis(jnp.tensordot(y, jnp.asarray(a, x.dtype), axes=([ax], [1]), precision=_HIGHEST), -1, ax)
    return y


@_op("aten.linalg_vector_norm.default")
def _vector_norm(out, x, ord=2, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    (x,) = _float_in(out, x)
    axes = _dims(x, dim)
    if ord == 2:
        return jnp.sqrt(jnp.sum(x * x, axis=axes, keepdims=keepdim))
    a = jnp.abs(x)
    if ord == math.inf:
        return jnp.max(a, axis=axes, keepdims=keepdim)
    if ord == -math.inf:
        return jnp.min(a, axis=axes, keepdims=keepdim)
    if ord == 0:
        return jnp.sum((x != 0).astype(x.dtype), axis=axes, keepdims=keepdim)
    if ord == 1:
        return jnp.sum(a, axis=axes, keepdims=keepdim)
    return jnp.sum(a**ord, axis=axes, keepdims=keepdim) ** (1.0 / ord)


@_op("aten.dist.default")
def _dist(out, a, b, p=2):
    return _vector_norm(out, a - b, p)


@_op("aten._cdist_forward.default")
def _cdist(out, x1, x2, p, compute_mode=None):
    d = x1[..., :, None, :] - x2[..., None, :, :]
    if p == 2:
        return jnp.sqrt(jnp.sum(d * d, axis=-1))
    return _vector_norm(out, d, p, [-1])


def _cumulative_extreme(running, is_max):
    def impl(out, x, dim):
        if jnp.ndim(x) == 0:
            return x, jnp.zeros((), out.dt(out.many[1][1]))
        axis = _axis(x, dim)
        values = running(x, axis=axis)
        # torch keeps the last position that reaches the running extreme (ties move the index)
        iota = lax.broadcasted_iota(jnp.int32, x.shape, axis)
        hit = x == values
        return values, lax.cummax(jnp.where(hit, iota, jnp.zeros_like(iota)), axis=axis)

    return impl


_op("aten.cummax.default")(_cumulative_extreme(lax.cummax, True))
_op("aten.cummin.default")(_cumulative_extreme(lax.cummin, False))


@_op("aten.kthvalue.default")
def _kthvalue(out, x, k, dim=-1, keepdim=False):
    if jnp.ndim(x) == 0:
        return x, jnp.zeros((), jnp.int32)
    axis = _axis(x, dim)
    idx = lax.index_in_dim(jnp.argsort(x, axis=axis, stable=True), k - 1, axis, keepdims=True)
    values = jnp.take_along_axis(x, idx, axis=axis)
    if not keepdim:
        values, idx = jnp.squeeze(values, axis), jnp.squeeze(idx, axis)
    return values, idx


@_op("aten.mode.default")
def _mode(out, x, dim=-1, keepdim=False):
    # torch's mode: the smallest of the most frequent values along dim, and the last index it is at
    if jnp.ndim(x) == 0:
        return x, jnp.zeros((), out.dt(out.many[1][1]))
    axis = _axis(x, dim)
    v = jnp.moveaxis(x, axis, -1)
    counts = jnp.sum((v[..., :, None] == v[..., None, :]).astype(jnp.int32), axis=-1)
    most = counts == jnp.max(counts, axis=-1, keepdims=True)
    value = jnp.min(jnp.where(most, v, jnp.inf), axis=-1, keepdims=True)
    position = jnp.arange(v.shape[-1])
    index = jnp.max(jnp.where(most & (v == value), position, -1), axis=-1, keepdims=True)
    value = jnp.take_along_axis(v, index, axis=-1)  # the element itself, so its derivative is 1 there
    if keepdim:
        value, index = jnp.moveaxis(value, -1, axis), jnp.moveaxis(index, -1, axis)
    else:
        value, index = value[..., 0], index[..., 0]
    return value, index.astype(out.dt(out.many[1][1]))


@_op("aten.median.default")
def _median(out, x):
    flat = jnp.sort(jnp.ravel(x))
    return flat[(flat.shape[0] - 1) // 2]  # torch's median is the lower of the two middle values


@_op("aten.median.dim")
def _median_dim(out, x, dim=-1, keepdim=False):
    n = x.shape[_axis(x, dim)] if jnp.ndim(x) else 1
    return _kthvalue(out, x, (n - 1) // 2 + 1, dim, keepdim)


@_op("aten.unfold.default")
def _unfold(out, x, dim, size, step):
    if jnp.ndim(x) == 0:
        return jnp.reshape(x, (1,))
    axis = _axis(x, dim)
    n = (x.shape[axis] - size) // step + 1
    parts = [lax.slice_in_dim(x, i, i + step * (n - 1) + 1, step, axis) for i in range(size)]
    return jnp.stack(parts, axis=-1)


@_op("aten.narrow_copy.default", "aten.narrow.default")
def _narrow(out, x, dim, start, length):
    axis = _axis(x, dim)
    start = start % x.shape[axis] if start < 0 else start
    return lax.slice_in_dim(x, start, start + length, axis=axis)


@_op("aten.diagonal_scatter.default")
def _diagonal_scatter(out, x, src, offset=0, dim1=0, dim2=1):
    a1, a2 = _axis(x, dim1), _axis(x, dim2)
    moved = jnp.moveaxis(x, (a1, a2), (-2, -1))
    n = src.shape[-1]
    rows = np.arange(n) + max(-offset, 0)
    cols = np.arange(n) + max(offset, 0)
    moved = moved.at[..., rows, cols].set(src.astype(x.dtype))
    return jnp.moveaxis(moved, (-2, -1), (a1, a2))


@_op("aten.masked_scatter.default")
def _masked_scatter(out, x, mask, source):
    # the k-th True of the mask (in row-major order) takes the k-th element of source
    mask = jnp.broadcast_to(mask, out.shape)
    x = jnp.broadcast_to(x, out.shape)
    k = jnp.cumsum(jnp.ravel(mask).astype(jnp.int32)) - 1
    picked = jnp.take(jnp.ravel(source).astype(x.dtype), jnp.maximum(k, 0))
    return jnp.where(mask, jnp.reshape(picked, out.shape), x)


@_op("aten.ldexp.Tensor")
def _ldexp(out, x, other):
    x, other = _float_in(out, x, other)
    return x * jnp.exp2(other)


@_op("aten._batch_norm_with_update_functional.default")
def _batch_norm_with_update(out, x, weight, bias, running_mean, running_var, momentum, eps):
    y, mean, rstd, new_mean, new_var = _batch_norm_functional(
        out, x, weight, bias, running_mean, running_var, True, momentum, eps
    )
    reserve = jnp.zeros(out.many[3][0], out.dt(out.many[3][1]))
    return y, mean, rstd, reserve, new_mean, new_var


#: polygamma(n, x) = polygamma(n, x + K) − (−1)ⁿ n! Σₖ₌₀^{K−1} (x + k)^−(n+1): JAX's own polygamma
#: (its Hurwitz zeta) is wrong by orders of magnitude at negative x (1e69 relative at x = −8.3,
#: OpInfo's sample), right at x ≥ 1; K shifts bring x > −K there, within 1e-13 of mpmath.
_POLYGAMMA_SHIFT = 16


@_op("aten.polygamma.default")
def _polygamma(out, n, x):
    # The recurrence is an identity, so the exact method differentiates the same function: SymPy's
    # polygamma at x + K and the rational terms.
    (x,) = _float_in(out, x)
    if n == 0:
        return jax.scipy.special.digamma(x)
    k = jnp.arange(_POLYGAMMA_SHIFT, dtype=x.dtype)
    terms = (x[..., None] + k) ** -(n + 1)
    return jax.scipy.special.polygamma(n, x + _POLYGAMMA_SHIFT) - (-1) ** n * math.factorial(n) * terms.sum(-1)


def _times_power_of_two(v, k):
    """v·2ᵏ for integer k (int32), exactly: multiplications by powers of two only, each finite in
    v's dtype and all on the same side of 1 (XLA's exp2 is not exact: 1.7e-6 off in float32)."""
    top = int(math.log2(jnp.finfo(v.dtype).maxexp)) - 1  # 2^(2^top) is finite: 6 in float32, 9 in float64
    n, up = jnp.abs(k), k >= 0

    def times(v, exponent, where):
        return v * jnp.where(where, jnp.where(up, 2.0**exponent, 2.0**-exponent), 1.0).astype(v.dtype)

    for b in range(top):
        v = times(v, 2**b, (n >> b) & 1 == 1)
    for q in range(3):  # what is left, at most 2·2^top in either dtype's exponent range
        v = times(v, 2**top, (n >> top) > q)
    return v


@_op("aten.frexp.Tensor")
def _frexp(out, x):
    # x = m·2ᵉ with ½ ≤ |m| < 1 (m = e = 0 at zero; ±inf and NaN keep m = x, e = 0): e from log2|x|,
    # corrected where log2 rounded across a power of two, then m by exact scaling. XLA on the CPU
    # flushes subnormal inputs to zero (m = x, e = 0 there), where torch does not: the value check
    # rejects such a point.
    finite = jnp.isfinite(x) & (x != 0)
    a = jnp.where(finite, jnp.abs(x), 1.0)
    e = (jnp.floor(jnp.log2(a)) + 1).astype(jnp.int32)
    e = jnp.where(_times_power_of_two(a, -e) >= 1, e + 1, e)
    e = jnp.where(_times_power_of_two(a, -e) < 0.5, e - 1, e)
    e = jnp.where(finite, e, 0)
    return jnp.where(finite, _times_power_of_two(x, -e), x), e.astype(out.dt(out.many[1][1]))


def _segments(starts, ends, length):
    """member[..., s, p]: position p of the reduced axis lies in segment s."""
    p = jnp.arange(length)
    return (starts[..., :, None] <= p) & (p < ends[..., :, None])


@_op("aten.segment_reduce.default")
def _segment_reduce(out, data, reduce, *, lengths=None, indices=None, offsets=None, axis=0, unsafe=False, initial=None):
    if indices is not None or (lengths is None) == (offsets is None):
        raise Refused(Reason.UNSUPPORTED, "segment_reduce is translated with lengths= or offsets= (not indices=)")
    axis = _axis(data, axis)
    if lengths is not None:
        ends = jnp.cumsum(lengths, axis=-1)
        starts, count = ends - lengths, lengths
    else:
        starts, ends = offsets[..., :-1], offsets[..., 1:]
        count = ends - starts
    member = _segments(starts, ends, data.shape[axis])  # data.shape[:axis] + (S, L)
    rest = data.ndim - axis - 1
    member = member.reshape(member.shape + (1,) * rest)
    x = jnp.expand_dims(data, axis)  # data.shape[:axis] + (1, L) + rest
    count = count.reshape(count.shape + (1,) * rest).astype(data.dtype)
    reduced = axis + 1
    if reduce in ("sum", "mean"):
        total = jnp.sum(jnp.where(member, x, 0), axis=reduced) + (0 if initial is None else initial)
        if reduce == "sum":
            return total
        mean = total / jnp.where(count == 0, 1, count)
        return jnp.where(count == 0, jnp.nan if initial is None else initial, mean)
    if reduce == "prod":
        return jnp.prod(jnp.where(member, x, 1), axis=reduced) * (1 if initial is None else initial)
    if reduce in ("max", "amax", "min", "amin"):
        big = reduce in ("max", "amax")
        fill = -jnp.inf if big else jnp.inf
        extreme = (jnp.max if big else jnp.min)(jnp.where(member, x, fill), axis=reduced)
        if initial is not None:
            extreme = (jnp.maximum if big else jnp.minimum)(extreme, initial)
        return extreme
    raise Refused(Reason.UNSUPPORTED, f"segment_reduce with reduce={reduce!r} has no exact translation")


@_op("aten._embedding_bag.default", "aten._embedding_bag_forward_only.default")
def _embedding_bag(
    out, weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False, per_sample_weights=None,
    include_last_offset=False, padding_idx=-1,
):  # fmt: skip
    if any(out.wants(k) for k in (1, 2, 3)):
        raise Refused(Reason.UNSUPPORTED, "embedding_bag's index outputs (offset2bag, bag_size, max_indices)")
    n = indices.shape[0]
    if include_last_offset:
        starts, ends = offsets[:-1], offsets[1:]
    else:
        starts, ends = offsets, jnp.concatenate([offsets[1:], jnp.full((1,), n, offsets.dtype)])
    member = _segments(starts, ends, n) & (indices != padding_idx)[None, :]  # (bags, n)
    rows = jnp.take(weight, indices, axis=0)  # (n, D)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights[:, None]
    inside = member[:, :, None]
    count = jnp.sum(member, axis=1)[:, None]
    if mode == 2:  # max; an empty bag is zeros
        best = jnp.max(jnp.where(inside, rows[None], -jnp.inf), axis=1)
        result = jnp.where(count == 0, 0, best)
    else:
        total = jnp.sum(jnp.where(inside, rows[None], 0), axis=1)
        result = total if mode == 0 else jnp.where(count == 0, 0, total / jnp.where(count == 0, 1, count))
    return result, None, None, None


def _grid_coordinate(g, size, padding, align_corners):
    """A grid coordinate in [−1, 1] as a position on an axis of `size` samples, as torch's
    grid_sampler_compute_source_index: unnormalised, then clipped (border) or reflected (reflection)."""
    x = (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2
    if padding == 0:  # zeros: positions outside read zeros
        return x
    if padding == 2:  # reflection about the edges (the centres of the edge samples, or their outer sides)
        low, span = (0.0, size - 1.0) if align_corners else (-0.5, float(size))
        if span <= 0:
            return jnp.zeros_like(x)
        d = jnp.abs(x - low)
        flips = jnp.floor(d / span)
        extra = d - flips * span  # fmod(d, span), d ≥ 0
        x = jnp.where(jnp.remainder(flips, 2) == 0, extra + low, span - extra + low)
    return jnp.clip(x, 0, size - 1)


def _grid_sampler(out, image, grid, interpolation_mode, padding_mode, align_corners):
    # image (N, C, *spatial); grid (N, *out, d) with grid[..., 0] the last (width) axis; bilinear
    # (0) or nearest (1). The corners' indices are integers at the point, their weights the
    # fractional parts: the exact method's pieces are the cells the grid points lie in.
    if interpolation_mode not in (0, 1):
        raise Refused(Reason.UNSUPPORTED, "grid_sampler's bicubic mode has no exact translation yet")
    n, c, *spatial = image.shape
    d = len(spatial)
    where = grid.shape[1:-1]
    coords = [_grid_coordinate(grid[..., d - 1 - a], spatial[a], padding_mode, align_corners) for a in range(d)]
    flat = image.reshape(n, c, -1)
    strides = [int(np.prod(spatial[a + 1 :], dtype=np.int64)) for a in range(d)]

    def read(index, weight):  # weight·image[n, :, index] where the index is inside, else 0
        inside, offset = True, 0
        for a in range(d):
            inside = inside & (index[a] >= 0) & (index[a] < spatial[a])
            offset = offset + jnp.clip(index[a], 0, spatial[a] - 1) * strides[a]
        picked = jnp.take_along_axis(flat, offset.reshape(n, 1, -1), axis=2).reshape(n, c, *where)
        return jnp.where(inside[:, None], picked * weight[:, None], 0)

    if interpolation_mode == 1:  # nearest: half to even, as nearbyint
        return read([jnp.round(x).astype(jnp.int32) for x in coords], jnp.ones_like(coords[0]))
    low = [jnp.floor(x) for x in coords]
    total = 0
    for corner in range(2**d):
        up = [(corner >> (d - 1 - a)) & 1 for a in range(d)]
        weight = 1
        for a in range(d):
            fraction = coords[a] - low[a]
            weight = weight * (fraction if up[a] else 1 - fraction)
        total = total + read([(low[a] + up[a]).astype(jnp.int32) for a in range(d)], weight)
    return total


_op("aten.grid_sampler_2d.default")(_grid_sampler)
_op("aten.grid_sampler_3d.default")(_grid_sampler)


def _linear_cross_entropy(x, linear_weight, target, linear_bias, weight, reduction, ignore_index, smoothing):
    """F.cross_entropy(x @ linear_weightᵀ + linear_bias, target): what torch's chunked op computes
    chunk by chunk (the chunks change its rounding only)."""
    logits = jnp.matmul(x, linear_weight.T, precision=_HIGHEST)
    if linear_bias is not None:
        logits = logits + linear_bias
    logp = jax.nn.log_softmax(logits, axis=-1)
    classes = logits.shape[-1]
    valid = target != ignore_index
    t = jnp.where(valid, target, 0)
    w = jnp.ones(classes, logp.dtype) if weight is None else weight
    w_t = jnp.where(valid, w[t], 0)
    loss = -w_t * jnp.take_along_axis(logp, t[..., None], axis=-1)[..., 0]
    if smoothing:
        smooth = -jnp.where(valid, jnp.sum(logp * w, axis=-1), 0)
        loss = (1 - smoothing) * loss + smoothing / classes * smooth
    if reduction == "none":
        return loss
    return jnp.sum(loss) if reduction == "sum" else jnp.sum(loss) / jnp.sum(w_t)


@_op("torch_nn._linear_cross_entropy_batch_chunked.default")
def _linear_cross_entropy_chunked(
    out, x, linear_weight, target, linear_bias, weight, reduction, ignore_index, label_smoothing, *options
):  # fmt: skip
    if any(out.wants(k) for k in (1, 2, 3)):  # the gradients it precomputes in its forward
        raise Refused(Reason.UNSUPPORTED, "linear_cross_entropy's precomputed gradient outputs")
    loss = _linear_cross_entropy(
        x, linear_weight, target, linear_bias, weight, reduction, ignore_index, label_smoothing
    )
    return loss, None, None, None


@_op("torch_nn._linear_cross_entropy_batch_chunked_no_reduction.default")
def _linear_cross_entropy_chunked_none(out, x, linear_weight, target, linear_bias, weight, ignore_index, *options):
    return _linear_cross_entropy(x, linear_weight, target, linear_bias, weight, "none", ignore_index, 0.0)


@_op("aten.angle.default")
def _angle(out, x):
    (x,) = _float_in(out, x)
    # torch, for real x: π where x < 0, else 0; NaN stays NaN
    return jnp.where(jnp.isnan(x), x, jnp.where(x < 0, jnp.asarray(math.pi, x.dtype), jnp.zeros_like(x)))


@_op("aten.put.default")
def _put(out, x, index, source, accumulate=False):
    flat = jnp.ravel(x)
    index = jnp.ravel(index)
    source = jnp.ravel(source).astype(x.dtype)
    flat = flat.at[index].add(source) if accumulate else flat.at[index].set(source)
    return jnp.reshape(flat, x.shape)


@_op("aten.index_reduce.default")
def _index_reduce(out, x, dim, index, source, reduce, *, include_self=True):
    axis = _axis(x, dim)
    moved = jnp.moveaxis(x, axis, 0) if jnp.ndim(x) else x[None]
    src = (jnp.moveaxis(source, axis, 0) if jnp.ndim(source) else source[None]).astype(x.dtype)
    index = jnp.ravel(index)
    identity = {"prod": 1, "mean": 0, "amax": -jnp.inf, "amin": jnp.inf}[reduce]
    base = moved if include_self else moved.at[index].set(jnp.asarray(identity, x.dtype))
    if reduce == "prod":
        r = base.at[index].multiply(src)
    elif reduce == "amax":
        r = base.at[index].max(src)
    elif reduce == "amin":
        r = base.at[index].min(src)
    else:
        count = jnp.ones_like(moved) if include_self else jnp.ones_like(moved).at[index].set(0)
        count = jnp.maximum(count.at[index].add(jnp.ones_like(src)), jnp.ones_like(count))
        total = base.at[index].add(src)
        r = total / count if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.floor_divide(total, count)
    return jnp.moveaxis(r, 0, axis) if jnp.ndim(x) else r[0]


# linear algebra that stays whole after decomposition: values only (no SymPy rules for these)
@_op("aten.cholesky.default")
def _cholesky(out, x, upper=False):
    lower = jnp.linalg.cholesky(x)
    return jnp.swapaxes(lower, -1, -2) if upper else lower


@_op("aten.cholesky_solve.default")
def _cholesky_solve(out, b, factor, upper=False):
    lower = jnp.swapaxes(factor, -1, -2) if upper else factor
    y = jax.scipy.linalg.solve_triangular(lower, b, lower=True)
    return jax.scipy.linalg.solve_triangular(jnp.swapaxes(lower, -1, -2), y, lower=False)


@_op("aten.cholesky_inverse.default")
def _cholesky_inverse(out, factor, upper=False):
    eye = jnp.broadcast_to(jnp.eye(factor.shape[-1], dtype=factor.dtype), factor.shape)
    return _cholesky_solve(out, eye, factor, upper)


@_op("aten.triangular_solve.default")
def _triangular_solve(out, b, a, upper=True, transpose=False, unitriangular=False):
    x = jax.scipy.linalg.solve_triangular(
        a, b, trans=1 if transpose else 0, lower=not upper, unit_diagonal=unitriangular
    )
    return x, jnp.broadcast_to(a, out.many[1][0]) if out.many else a


@_op("aten.linalg_matrix_exp.default")
def _matrix_exp(out, x):
    return jax.scipy.linalg.expm(x)


@_op("aten.linalg_cholesky_ex.default")
def _cholesky_ex(out, x, *, upper=False, check_errors=False):
    return _cholesky(out, x, upper), jnp.zeros(out.many[1][0], out.dt(out.many[1][1]))


@_op("with_effects")
def _with_effects(out, token, op, *args, **kwargs):
    # torch.export threads a token through ops with side effects; an error check has no value
    if "_linalg_check_errors" in str(op):
        return (None,)
    raise Refused(Reason.UNSUPPORTED, f"an op with side effects ('{op}') cannot be translated")


@_op("aten.logcumsumexp.default")
def _logcumsumexp(out, x, dim):
    if jnp.ndim(x) == 0:
        return x
    axis = _axis(x, dim)
    m = lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    return jnp.log(jnp.cumsum(jnp.exp(x - m), axis=axis)) + m


@_op("aten.linalg_solve_triangular.default")
def _solve_triangular(out, a, b, *, upper, left=True, unitriangular=False):
    if left:
        return jax.scipy.linalg.solve_triangular(a, b, lower=not upper, unit_diagonal=unitriangular)
    # X·A = B ⇔ Aᵀ·Xᵀ = Bᵀ
    xt = jax.scipy.linalg.solve_triangular(
        jnp.swapaxes(a, -1, -2), jnp.swapaxes(b, -1, -2), lower=upper, unit_diagonal=unitriangular
    )
    return jnp.swapaxes(xt, -1, -2)


@_op("aten.linalg_inv_ex.default")
def _inv_ex(out, a, *, check_errors=False):
    return jnp.linalg.inv(a), jnp.zeros(out.many[1][0], out.dt(out.many[1][1]))


@_op("aten._linalg_det.default")
def _det(out, a):
    lu, pivots = jax.scipy.linalg.lu_factor(a)
    return jnp.linalg.det(a), lu, (pivots + 1).astype(out.dt(out.many[2][1]))


# linear algebra that stays whole after decomposition: factorisations and solves, onto jnp.linalg
# and jax.scipy.linalg (their exact rules are `_rules`'; LAPACK's pivots are 1-based in torch)
def _unused(out, k):
    """A zero of output k's shape and dtype, for an output the graph never reads."""
    return jnp.zeros(out.many[k][0], out.dt(out.many[k][1]))


def _lu_factor(out, a, k_lu, k_pivots):
    if not (out.wants(k_lu) or out.wants(k_pivots)):
        return _unused(out, k_lu), _unused(out, k_pivots)
    lu, pivots = jax.scipy.linalg.lu_factor(a)
    return lu, (pivots + 1).astype(out.dt(out.many[k_pivots][1]))


def _is_vector_rhs(a, b):
    # torch: B is a batch of vectors when it has one dimension fewer than A (and broadcasts as such)
    return jnp.ndim(b) == 1 or (jnp.ndim(b) == jnp.ndim(a) - 1 and b.shape == a.shape[:-1])


@_op("aten._linalg_solve_ex.default")
def _solve_ex(out, a, b, *, left=True, check_errors=False):
    vector = _is_vector_rhs(a, b)
    rhs = b[..., None] if vector else b
    if left:
        x = jnp.linalg.solve(a, rhs)
    else:  # X·A = B ⇔ Aᵀ·Xᵀ = Bᵀ
        x = jnp.swapaxes(jnp.linalg.solve(jnp.swapaxes(a, -1, -2), jnp.swapaxes(rhs, -1, -2)), -1, -2)
    x = x[..., 0] if vector else x
    lu, pivots = _lu_factor(out, a, 1, 2)
    return x, lu, pivots, _unused(out, 3)


@_op("aten.linalg_lu_factor_ex.default")
def _lu_factor_ex(out, a, *, pivot=True, check_errors=False):
    if not pivot:
        raise Refused(Reason.UNSUPPORTED, "an LU factorisation without pivoting (pivot=False) is not translated")
    lu, pivots = _lu_factor(out, a, 0, 1)
    return lu, pivots, _unused(out, 2)


def _permutation(pivots, m):
    """The row order that LAPACK's swaps (row i ↔ row pivots[i], 1-based) give, as indices."""
    perm = jnp.arange(m)
    for i in range(pivots.shape[-1]):
        j = pivots[..., i] - 1
        pi, pj = perm[..., i], jnp.take_along_axis(perm, j[..., None], axis=-1)[..., 0]
        perm = perm.at[..., i].set(pj)
        perm = jnp.where(jnp.arange(m) == j[..., None], pi[..., None], perm)
    return perm


@_op("aten.lu_unpack.default")
def _lu_unpack(out, lu, pivots, unpack_data=True, unpack_pivots=True):
    m, n = lu.shape[-2:]
    k = min(m, n)
    if unpack_data:
        lower = jnp.tril(lu[..., :, :k], -1) + jnp.eye(m, k, dtype=lu.dtype)
        upper = jnp.triu(lu[..., :k, :])
    else:
        lower, upper = _unused(out, 1), _unused(out, 2)
    if unpack_pivots:
        # A = P·L·U: row i of L·U is row perm[i] of A, so P[perm[i], i] = 1
        perm = jnp.broadcast_to(_permutation(pivots, m), lu.shape[:-2] + (m,))
        p = jnp.swapaxes(jax.nn.one_hot(perm, m, dtype=lu.dtype), -1, -2)
    else:
        p = _unused(out, 0)
    return p, lower, upper


@_op("aten.linalg_lu.default")
def _linalg_lu(out, a, *, pivot=True):
    if not pivot:
        raise Refused(Reason.UNSUPPORTED, "an LU factorisation without pivoting (pivot=False) is not translated")
    return tuple(jax.scipy.linalg.lu(a))


@_op("aten.linalg_lu_solve.default")
def _lu_solve(out, lu, pivots, b, *, left=True, adjoint=False):
    piv = pivots.astype(jnp.int32) - 1
    if left:  # A·X = B, or Aᴴ·X = B
        return jax.scipy.linalg.lu_solve((lu, piv), b, trans=1 if adjoint else 0)
    # X·A = B ⇔ Aᵀ·Xᵀ = Bᵀ; X·Aᴴ = B ⇔ A·Xᵀ = Bᵀ (real)
    bt = jnp.swapaxes(b, -1, -2)
    return jnp.swapaxes(jax.scipy.linalg.lu_solve((lu, piv), bt, trans=0 if adjoint else 1), -1, -2)


@_op("aten._linalg_slogdet.default")
def _slogdet(out, a):
    sign, logabsdet = jnp.linalg.slogdet(a)
    lu, pivots = _lu_factor(out, a, 2, 3)
    return sign, logabsdet, lu, pivots


@_op("aten._linalg_svd.default")
def _svd(out, a, full_matrices=False, compute_uv=True, *, driver=None):
    if not compute_uv:
        return _unused(out, 0), jnp.linalg.svd(a, compute_uv=False), _unused(out, 2)
    u, s, vh = jnp.linalg.svd(a, full_matrices=full_matrices)
    return u, s, vh


@_op("aten._linalg_eigh.default")
def _eigh(out, a, UPLO="L", compute_v=True):  # noqa: N803 - torch's name
    if not compute_v:
        return jnp.linalg.eigvalsh(a, UPLO=UPLO), _unused(out, 1)
    # each eigenvector's sign is LAPACK's choice, which torch and JAX make differently: a program
    # that depends on it has no translation the value check accepts
    w, v = jnp.linalg.eigh(a, UPLO=UPLO, symmetrize_input=False)
    return w, v


@_op("aten.linalg_qr.default")
def _qr(out, a, mode="reduced"):
    if mode == "r":
        return _unused(out, 0), jnp.linalg.qr(a, mode="r")
    q, r = jnp.linalg.qr(a, mode=mode)
    return q, r


@_op("aten.linalg_pinv.atol_rtol_tensor", "aten.linalg_pinv.atol_rtol_float")
def _pinv(out, a, *, atol=None, rtol=None, hermitian=False):
    # torch: singular values at most max(atol, rtol·σ_max) count as zero; rtol defaults to
    # eps·max(m, n) when neither is given, and to 0 when only atol is
    m, n = a.shape[-2:]
    if rtol is None:
        rtol = float(np.finfo(np.dtype(a.dtype)).eps) * max(m, n) if atol is None else 0.0
    u, s, vh = jnp.linalg.svd(a, full_matrices=False)
    cutoff = jnp.asarray(rtol, a.dtype)[..., None] * s[..., :1]
    if atol is not None:
        cutoff = jnp.maximum(cutoff, jnp.asarray(atol, a.dtype)[..., None])
    keep = s > cutoff
    s_inv = jnp.where(keep, 1 / jnp.where(keep, s, jnp.ones_like(s)), jnp.zeros_like(s))
    return _mm(jnp.swapaxes(vh, -1, -2) * s_inv[..., None, :], jnp.swapaxes(u, -1, -2))


def _householder(v, tau, m, columns):
    """H₁·H₂·…·H_k applied to the first `columns` columns of the identity; Hᵢ = I − τᵢ vᵢ vᵢᵀ with
    vᵢ column i of v below the diagonal and 1 on it (LAPACK's elementary reflectors)."""
    q = jnp.broadcast_to(jnp.eye(m, columns, dtype=v.dtype), v.shape[:-2] + (m, columns))
    rows = np.arange(m)
    for i in reversed(range(tau.shape[-1])):
        vi = jnp.where(rows > i, v[..., :, i], jnp.where(rows == i, jnp.ones((), v.dtype), jnp.zeros((), v.dtype)))
        w = jnp.sum(vi[..., :, None] * q, axis=-2)  # vᵢᵀ·Q
        q = q - tau[..., i, None, None] * vi[..., :, None] * w[..., None, :]
    return q


@_op("aten.linalg_householder_product.default")
def _householder_product(out, v, tau):
    return _householder(v, tau, v.shape[-2], v.shape[-1])


@_op("aten.ormqr.default")
def _ormqr(out, v, tau, c, left=True, transpose=False):
    m = v.shape[-2]
    q = _householder(v, tau, m, m)
    q = jnp.swapaxes(q, -1, -2) if transpose else q
    return _mm(q, c) if left else _mm(c, q)


# reductions and scatters that stay whole after decomposition
@_op("aten.nanmedian.default")
def _nanmedian(out, x):
    return _nanmedian_dim(out, jnp.ravel(x), 0)[0] if jnp.ndim(x) else x


@_op("aten.nanmedian.dim")
def _nanmedian_dim(out, x, dim=-1, keepdim=False):
    # the lower middle of the values that are not NaN (NaN sorts last); all NaN: NaN, as torch
    if jnp.ndim(x) == 0:
        return x, jnp.zeros((), jnp.int32)
    axis = _axis(x, dim)
    idx = jnp.argsort(x, axis=axis, stable=True)
    n = jnp.sum(~jnp.isnan(x), axis=axis, keepdims=True)
    k = jnp.maximum((n - 1) // 2, 0)
    which = jnp.take_along_axis(idx, k, axis=axis)
    values = jnp.take_along_axis(x, which, axis=axis)
    if not keepdim:
        values, which = jnp.squeeze(values, axis), jnp.squeeze(which, axis)
    return values, which


@_op("aten.as_strided_scatter.default")
def _as_strided_scatter(out, x, src, size, stride, storage_offset=None):
    offset = storage_offset or 0
    idx = np.full(tuple(size), offset, dtype=np.int64)
    for d, (n, s) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[d] = n
        idx = idx + np.arange(n, dtype=np.int64).reshape(shape) * s
    return jnp.reshape(jnp.ravel(x).at[idx.reshape(-1)].set(jnp.ravel(src).astype(x.dtype)), x.shape)


@_op("aten._pdist_forward.default")
def _pdist(out, x, p=2.0):
    i, j = np.triu_indices(x.shape[0], 1)
    d = x[i] - x[j]
    if p == 2:
        return jnp.sqrt(jnp.sum(d * d, axis=-1))
    return _vector_norm(out, d, p, [-1])


@_op("aten._trilinear.default")
def _trilinear(out, i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim=1):
    # each operand unsqueezed at its expand dimensions, the three multiplied, summed over sumdim
    def spread(t, dims):
        for d in sorted(dims):
            t = jnp.expand_dims(t, d)
        return t

    prod = spread(i1, expand1) * spread(i2, expand2) * spread(i3, expand3)
    return jnp.sum(prod, axis=tuple(sumdim)) if sumdim else prod


@_op("aten.max_pool2d_with_indices_backward.default")
def _max_pool2d_backward(out, grad, x, kernel, stride, padding, dilation, ceil_mode, indices):
    # each output gradient lands on the input position its window's maximum came from
    lead, spatial = x.shape[:-2], x.shape[-2:]
    flat_grad = jnp.reshape(grad, lead + (-1,))
    flat_idx = jnp.reshape(indices, lead + (-1,))
    base = jnp.zeros(lead + (spatial[0] * spatial[1],), grad.dtype)
    lead_idx = jnp.meshgrid(*[jnp.arange(s) for s in flat_idx.shape], indexing="ij")[:-1]
    total = base.at[(*lead_idx, flat_idx)].add(flat_grad)
    return jnp.reshape(total, x.shape)


# attention, in case a graph keeps it whole
@_op("aten.scaled_dot_product_attention.default")
def _sdpa(out, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, *, scale=None, enable_gqa=False):
    if dropout_p:
        raise Refused(
            Reason.RANDOM,
            "random op 'scaled_dot_product_attention' with dropout_p > 0: seed it or call module.eval()",
        )
    s = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = _mm(q, jnp.swapaxes(k, -1, -2)) * s
    if is_causal:
        L, S = q.shape[-2], k.shape[-2]  # noqa: N806
        scores = jnp.where(jnp.tril(jnp.ones((L, S), bool)), scores, -jnp.inf)
    if attn_mask is not None:
        scores = jnp.where(attn_mask, scores, -jnp.inf) if attn_mask.dtype == jnp.bool_ else scores + attn_mask
    m = lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True))
    e = jnp.exp(scores - m)
    return _mm(e / jnp.sum(e, axis=-1, keepdims=True), v)


def _torch():
    try:
        import torch
    except ImportError:
        raise Unavailable('PyTorch is not installed: pip install "diffcheck[torch]"') from None
    return torch
