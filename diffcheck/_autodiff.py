"""The autodiff method: JAX's own reverse mode (`jacrev`, i.e. `grad`/`vjp`) and forward mode
(`jacfwd`, i.e. `jvp`), each jit-compiled, in the dtype and on the device asked for."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import os
import threading
import warnings

import jax
import numpy as np

from . import _jaxpr_numpy as jaxpr_numpy
from . import _terms
from .errors import Unavailable, UsageError

DTYPES = ("float64", "float32")
DEVICES = ("cpu", "gpu")

_CUDA_HINT = (
    'JAX sees no GPU here. Install JAX with CUDA support, e.g. `pip install -U "jax[cuda12]"` '
    "(see https://docs.jax.dev/en/latest/installation.html), or run with --device cpu."
)


def device(name: str | None):
    """The JAX device for `name` ("cpu" or "gpu"; None: JAX's default)."""
    if name is None:
        return jax.devices()[0]
    if name not in DEVICES:
        raise UsageError(f"unknown device {name!r}; valid devices are {', '.join(DEVICES)}")
    try:
        return jax.devices(name)[0]
    except RuntimeError:
        if name == "gpu":
            raise UsageError(_CUDA_HINT) from None
        raise


def dtype(name) -> np.dtype:
    """The floating dtype for `name` (None: float64)."""
    name = "float64" if name is None else np.dtype(name).name
    if name not in DTYPES:
        raise UsageError(f"unsupported dtype {name!r}; valid dtypes are {', '.join(DTYPES)}")
    return np.dtype(name)


#: The x64 mode a float32 run of the user's function runs in (`users_mode`); off elsewhere.
_FLOAT32_X64 = contextvars.ContextVar("diffcheck_float32_x64", default=False)


@contextlib.contextmanager
def users_mode():
    """Within it, float32 runs keep the x64 mode the user's code runs in now, rather than turning it
    off: a user with x64 on (as JAX's own float32 tests run) closes over int64 index arrays and
    float64 constants that JAX, in the other mode, would refuse to mix with 32-bit values."""
    token = _FLOAT32_X64.set(bool(jax.config.jax_enable_x64))
    try:
        yield
    finally:
        _FLOAT32_X64.reset(token)


def float32_x64() -> bool:
    """Whether a float32 run runs with JAX's x64 mode on (the user's mode, inside `users_mode`)."""
    return _FLOAT32_X64.get()


@contextlib.contextmanager
def precision(dtype):
    """Runs JAX in `dtype`: x64 on for float64; for float32 off, so that every default is float32,
    unless the user's own float32 code runs with it on (`users_mode`). A float64 run's ladder
    (its program lowered to float32, `_lower`) runs with x64 off.

    JAX warns when a program asks for float64 with x64 off; that is the point of a float32 run.
    Matrix products run at full precision: on NVIDIA GPUs JAX's default for float32 is TF32 (10
    bits of mantissa), which would pass for rounding noise in the error model and hide bugs.
    """
    x64 = jax.enable_x64(np.dtype(dtype) == np.float64 or _FLOAT32_X64.get())
    with x64, jax.default_matmul_precision("highest"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Explicitly requested dtype")
        yield


@functools.lru_cache(maxsize=256)
def compiled(F, kind: str):
    """One transform of `F(theta, data)` per F, reused at every point: jit-compiled, or for a
    small problem on the CPU traced to its jaxpr and run by NumPy (`jaxpr_numpy`), which costs
    microseconds where compiling costs 0.1–0.3 s a program."""
    jitted = []  # made on first use: a small problem never compiles

    def call(theta, *rest):
        if not eager(np.size(theta)):
            return program()(theta, *rest)
        if kind == "perturbed_chunks":  # the loop over chunks, in Python: each chunk one run
            where, to, data = rest
            return np.stack([call_eager(F, "perturbed", theta, w, t, data) for w, t in zip(where, to)])
        return call_eager(F, kind, theta, *rest)

    def program():
        if not jitted:
            jitted.append(_Jitted(_transform(F, kind)))
        return jitted[0]

    def ahead(theta, *rest):
        """The program for these arguments' shapes and dtypes, compiled now: it runs only that
        program and never traces (another thread may call it); None where NumPy runs it, or
        where it calls back into Python (pure_callback, io_callback, jax.debug.print: the user's
        code, which runs in the caller's thread)."""
        return None if eager(np.size(theta)) else program().ahead(theta, *rest)

    call.ahead = ahead
    return call


def _transform(F, kind):
    """The transform `kind` of F as a Python function of (theta, *rest)."""
    if kind == "value":
        return F
    if kind in ("perturbed", "perturbed_chunks"):  # θ with element where[i] set to to[i], for each i

        def row(theta, j, v, data):
            # A select, not `.at[j].set`: batched scatters ran 2-4× slower on the CPU (measured).
            return F(jax.numpy.where(jax.numpy.arange(theta.size) == j, v, theta), data)

        rows = jax.vmap(row, in_axes=(None, 0, 0, None))
        if kind == "perturbed":
            return rows
        # Many chunks in one call, a chunk per loop step: the loop runs inside the program, so a
        # large stencil pays one dispatch per group of chunks rather than one per chunk.
        return lambda theta, where, to, data: jax.lax.map(lambda c: rows(theta, *c, data), (where, to))
    if kind == "forward":  # the columns J e_j for the elements j in `cols`: one jvp each, vmapped

        def columns(theta, cols, data):
            def column(j):
                basis = (jax.numpy.arange(theta.size) == j).astype(theta.dtype)
                return jax.jvp(lambda t: F(t, data), (theta,), (basis,))[1]

            return jax.vmap(column)(cols)

        return columns

    if kind == "terms":  # the size of the terms the reverse-mode program adds (`_terms`)

        def terms(theta, data):
            shapes = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), (theta, data))
            closed = jax.make_jaxpr(_transform(F, "reverse"))(*shapes)
            return _terms.largest(closed, theta, *jax.tree_util.tree_leaves(data))

        return terms

    def value_and_jacobian(theta, data):  # the value comes with the reverse pass: no program of its own
        def twice(t):
            out = F(t, data)
            return out, out

        jac, out = jax.jacrev(twice, has_aux=True)(theta)
        return out, jac

    return value_and_jacobian


def _eager_limit() -> int:
    text = os.environ.get("DIFFCHECK_EAGER", "4096")
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"DIFFCHECK_EAGER must be a parameter count (an integer), got {text!r}") from None


#: Up to this many parameters, on the CPU, programs run in NumPy from their jaxprs instead of
#: being compiled by XLA (measured: a 9-parameter check spent 90 % of its time compiling).
#: `DIFFCHECK_EAGER=0` compiles every program (read once, at import).
EAGER = _eager_limit()


def eager(size: int) -> bool:
    """Whether a problem of `size` parameters runs its programs in NumPy (see `compiled`)."""
    if size > EAGER:
        return False
    device = jax.config.jax_default_device
    platform = jax.default_backend() if device is None else getattr(device, "platform", device)
    return platform == "cpu"


def call_eager(F, kind, theta, *rest):
    """Transform `kind` of F at (theta, *rest), traced once per argument shape and run by NumPy."""
    leaves, tree = jax.tree_util.tree_flatten((theta, *rest))
    signature = (tree, _signature(leaves), bool(jax.config.jax_enable_x64))
    closed, out_tree = _traced(F, kind, signature)
    # Each argument in the dtype the program was traced for (a Python float is float32 in a float32 run).
    leaves = [np.asarray(x, aval.dtype) for x, aval in zip(leaves, closed.in_avals)]
    return jax.tree_util.tree_unflatten(out_tree, jaxpr_numpy.run(closed, *leaves))


def _signature(leaves) -> tuple:
    """(shape, dtype, weak type) of each leaf: a Python scalar is weakly typed, as jit sees it."""
    out = []
    for x in leaves:
        weak = isinstance(x, (int, float, complex)) or bool(getattr(x, "weak_type", False))
        out.append((tuple(np.shape(x)), np.dtype(getattr(x, "dtype", None) or np.result_type(x)), weak))
    return tuple(out)


def _structs(tree, signature):
    return jax.tree_util.tree_unflatten(tree, [jax.ShapeDtypeStruct(s, d, weak_type=w) for s, d, w in signature])


@functools.lru_cache(maxsize=1024)
def _traced(F, kind, signature):
    """(ClosedJaxpr, output tree) of transform `kind` of F at the argument shapes `signature`.

    F is traced once to its own jaxpr and the transform applied to that jaxpr's evaluation: the
    same program (custom rules included, as primitives of the jaxpr), without running F's Python
    under every transform again. A function checked again (a new Python object, the same
    program) finds its transforms by that jaxpr (`program_key`).
    """
    tree, leaves, x64 = signature
    theta, *rest = _structs(tree, leaves)
    data_leaves, data_tree = jax.tree_util.tree_flatten(rest[-1])
    base, key = _base(F, _signature([theta])[0], data_tree, _signature(data_leaves), x64)
    if key is not None and (key, kind, signature) in _BY_PROGRAM:
        return _BY_PROGRAM[key, kind, signature]

    def G(t, d):
        return jax.core.eval_jaxpr(base.jaxpr, base.consts, t, *jax.tree_util.tree_leaves(d))[0]

    program = _transform(G, kind)
    if kind == "terms":  # the analysis of the reverse-mode program, as traced for autodiff itself

        def program(t, *rest):
            reverse, _ = _traced(F, "reverse", signature)
            return _terms.largest(reverse, t, *jax.tree_util.tree_leaves(rest))

    closed, shapes = jax.make_jaxpr(program, return_shape=True)(theta, *rest)
    out = closed, jax.tree_util.tree_structure(shapes)
    if key is not None:
        while len(_BY_PROGRAM) >= _PROGRAMS_KEPT:  # the oldest first
            _BY_PROGRAM.pop(next(iter(_BY_PROGRAM)))
        _BY_PROGRAM[key, kind, signature] = out
    return out


#: Transformed programs by (program key, kind, argument shapes); at most _PROGRAMS_KEPT.
_BY_PROGRAM: dict = {}
_PROGRAMS_KEPT = 512


def program_key(closed) -> tuple | None:
    """What identifies the program `closed` (a ClosedJaxpr) for reuse: its text, its constants,
    and the program of each custom JVP rule it calls (the text names a rule, not what it
    computes). None where a part cannot be pinned down (a custom VJP rule, whose backward pass
    is Python): such a program is traced afresh each time."""
    rules = []
    try:
        for eqn in _equations(closed.jaxpr):
            name = eqn.primitive.name
            if name == "custom_jvp_call":
                zeros = [False] * len(eqn.invars)
                jvp, consts, _ = eqn.params["jvp_jaxpr_fun"].call_wrapped(*zeros)
                rules.append((_text(jvp), _fingerprint(consts)))
            elif name.startswith("custom_vjp") or name.startswith("custom_lin") or "callback" in name:
                return None
        return (_text(closed.jaxpr), _fingerprint(closed.consts), tuple(rules))
    except Exception:  # noqa: BLE001 - a JAX internal that moved: no reuse, never a wrong reuse
        return None


def _text(jaxpr) -> tuple:
    """What the jaxpr's printed text says, as a nested tuple built without printing it (the
    printer's layout cost 28 ms of a 91 ms warm check): its variables numbered in order of
    appearance with their types, each equation's primitive, parameters and effects, the outputs.
    A parameter that is a program is taken apart the same way; one without a stable repr (an
    object's address) only makes the key miss, never match wrongly."""
    numbers = {}

    def var(v):
        if type(v).__name__ == "Literal":
            return ("literal", repr(v.val), _type(v.aval))
        if v not in numbers:
            numbers[v] = (len(numbers), _type(v.aval))
        return numbers[v]

    head = (tuple(map(var, jaxpr.constvars)), tuple(map(var, jaxpr.invars)), repr(jaxpr.effects))
    eqns = tuple(
        (
            eqn.primitive.name,
            tuple(map(var, eqn.invars)),
            tuple((k, _param(v, eqn.primitive.name == "custom_jvp_call")) for k, v in sorted(eqn.params.items())),
            tuple(map(var, eqn.outvars)),
            repr(eqn.effects),
        )
        for eqn in jaxpr.eqns
    )
    return head, eqns, tuple(map(var, jaxpr.outvars))


def _type(aval):
    shape = getattr(aval, "shape", None)
    if shape is None:
        return repr(aval)
    return (tuple(shape), str(aval.dtype), bool(getattr(aval, "weak_type", False)), type(aval).__name__)


def _param(value, rule=False):
    """A parameter as a key. A Python function is its repr (its address: the same object only),
    but a custom JVP rule's, whose program `program_key` traces and keys apart, by its name."""
    if hasattr(value, "eqns"):  # a Jaxpr
        return _text(value)
    if hasattr(value, "jaxpr") and hasattr(value, "consts"):  # a ClosedJaxpr
        return _text(value.jaxpr), _fingerprint(value.consts)
    if isinstance(value, (tuple, list)):
        return type(value).__name__, tuple(_param(v, rule) for v in value)
    if isinstance(value, (np.ndarray, jax.Array)):
        return _fingerprint([value])
    if rule and callable(value) and not isinstance(value, type):
        return "rule", getattr(value, "__qualname__", None) or repr(value)
    return repr(value)


def _equations(jaxpr):
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


def _fingerprint(consts) -> tuple:
    out = []
    for c in consts:
        a = np.asarray(c)
        out.append((a.shape, a.dtype.str, hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=16).digest()))
    return tuple(out)


def key_of(F, theta, data) -> tuple | None:
    """The key F's program is found again by at θ's and data's shapes (`program_key`), in the
    x64 mode in force; None where it cannot be pinned down."""
    data_leaves, data_tree = jax.tree_util.tree_flatten(data)
    x64 = bool(jax.config.jax_enable_x64)
    key = _base(F, _signature([theta])[0], data_tree, _signature(data_leaves), x64)[1]
    values = _fingerprint_of(data)
    return None if key is None or values is None else (key, values)


def _fingerprint_of(tree) -> tuple | None:
    """The values of a tree of arrays and numbers, as shapes, dtypes and digests; None where a leaf
    is not numbers (an object's bytes would be its address)."""
    leaves, structure = jax.tree_util.tree_flatten(tree)
    arrays = [np.asarray(leaf) for leaf in leaves]
    if any(a.dtype.kind not in "biufc" for a in arrays):
        return None
    return str(structure), _fingerprint(arrays)


@functools.lru_cache(maxsize=1024)
def _base(F, theta_signature, data_tree, data_signature, x64):
    """F's own jaxpr at θ and data of these shapes (its output: one flat vector), and its key; traced
    in the x64 mode it runs in (`x64`, part of the key: the same F traces differently in the other)."""
    (theta,) = _structs(jax.tree_util.tree_structure([0]), (theta_signature,))
    closed = jax.make_jaxpr(F)(theta, _structs(data_tree, data_signature))
    return closed, program_key(closed)


#: Up to this many parameters a program's compilation costs more than all its runs: XLA's backend
#: optimization is off there (measured: simple_net's 10 programs compile in 1.35 s instead of
#: 1.75 s; the transformer cases run 9.6 s instead of 12.1 s). Above, the stencil's N evaluations
#: of an O(N) function need it (10,201 parameters: 10.5 s unoptimized, 5.5 s optimized).
QUICK_COMPILE = 4096


class _Jitted:
    """f jit-compiled, quickly (backend optimization off) where θ, its first argument, is small."""

    def __init__(self, f):
        self.quick = jax.jit(f, compiler_options={"xla_backend_optimization_level": 0})
        self.tuned = jax.jit(f)

    def __call__(self, theta, *rest):
        return self._for(theta)(theta, *rest)

    def ahead(self, theta, *rest):
        """Compiled for these arguments now (`jax.stages.Compiled`); None for a program with a
        host callback (its custom call names one: a name containing "callback" is taken for one)."""
        lowered = self._for(theta).lower(theta, *rest)
        return None if "callback" in lowered.as_text() else lowered.compile()

    def _for(self, theta):
        return self.quick if np.size(theta) <= QUICK_COMPILE else self.tuned


@functools.lru_cache(maxsize=256)
def derivative(F, order: int, directional: bool = False):
    """The function whose Jacobian is the order-`order` derivative of `F(θ, data)`.

    order 1: F itself. Higher orders: the (order − 1)-th reverse-mode derivative, flattened, so
    that the checked Jacobian (by `jacrev` and by `jacfwd`, i.e. `jax.hessian` at order 2) is the
    next one. `directional` (order 2 only): θ, (data, V) ↦ V ∇F(θ), whose Jacobian is the
    Hessian-vector products H vᵢ for the rows vᵢ of V — for parameter counts where the full Hessian
    is too large; with output weights W after V (a vector F: data is (data, V, W)),
    θ ↦ (vᵢ·(wᵢᵀ ∇F(θ)))ᵢ, whose Jacobian is the Hessian-vector products of the scalars wᵢᵀF.
    """
    if directional:

        def hvp(theta, data_and_directions):
            data, directions, *weights = data_and_directions
            jac = jax.jacrev(F)(theta, data)
            if not weights:
                return directions @ jac[0]
            return jax.numpy.sum(directions * (weights[0] @ jac), axis=1)

        return hvp
    if order == 1:
        return F

    def nested(theta, data):
        f = F
        for _ in range(order - 1):
            f = jax.jacrev(f)
        return f(theta, data).reshape(-1)

    return nested


@functools.lru_cache(maxsize=256)
def combinations(F):
    """θ, (data, W) ↦ W·F(θ, data): random combinations of F's outputs (the rows of W), whose
    gradients are checked where F's dense Jacobian does not fit (`_plan.Plan`)."""

    def combined(theta, data_and_weights):
        data, weights = data_and_weights
        return weights.astype(theta.dtype) @ F(theta, data)

    return combined


def value(F, theta, data) -> np.ndarray:
    return np.asarray(compiled(F, "value")(theta, data))


def value_and_jacobian(F, theta, data) -> tuple[np.ndarray, np.ndarray]:
    """F(θ) (in θ's dtype) and dF/dθ (outputs × parameters, float64) from one reverse-mode program."""
    try:
        out, jac = compiled(F, "reverse")(theta, data)
    except _NO_SUCH_MODE as exc:
        raise Unavailable(f"reverse mode: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    return np.asarray(out), np.asarray(jac, np.float64).reshape(-1, theta.size)


#: JAX's word that a function has no such mode: forward mode of a custom_vjp (TypeError), reverse
#: mode of a while_loop (ValueError), a primitive without the rule (NotImplementedError).
_NO_SUCH_MODE = (TypeError, ValueError, NotImplementedError)

#: Tangent values per forward-mode call (columns × parameters): bounds memory for large
#: parameter counts, where `jacfwd`'s N × N identity basis alone would take N² floats.
FORWARD_BLOCK = 1 << 19


def largest_term(F, theta, data) -> float:
    """The largest term that F's reverse-mode program adds, value and Jacobian (`_terms`)."""
    return float(compiled(F, "terms")(theta, data))


def forward_jacobian(F, theta, data) -> np.ndarray:
    """dF/dθ (outputs × parameters) of `F(θ, data)` by forward mode (reverse mode:
    `value_and_jacobian`).

    A block of basis vectors at a time, every block the same shape (padded) so that it compiles once.
    """
    try:
        return _forward_blocks(compiled(F, "forward"), theta, data)
    except _NO_SUCH_MODE as exc:
        raise Unavailable(f"forward mode: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def start_forward(F, theta, data) -> Pending:
    """`forward_jacobian` beside the caller's next steps, as `_finite.start` runs finite
    differences: its program compiled here (a program forward mode cannot make raises
    `Unavailable` here), then run in a thread; computed here where NumPy runs it or it calls
    back into Python. Call it inside `precision(theta.dtype)`."""
    n = theta.size
    try:
        program = compiled(F, "forward").ahead(theta, np.zeros(_forward_width(n), np.int64), data)
    except _NO_SUCH_MODE as exc:
        raise Unavailable(f"forward mode: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if program is None:
        return Pending.done(forward_jacobian(F, theta, data))
    cancelled, dtype = threading.Event(), theta.dtype

    def run(theta, cols, data):
        if cancelled.is_set():
            raise Cancelled()
        with precision(dtype):
            return program(theta, cols, data)

    return Pending(functools.partial(_forward_blocks, run, theta, data), cancelled)


def _forward_width(n: int) -> int:
    return max(1, min(n, FORWARD_BLOCK // max(1, n)))


def _forward_blocks(program, theta, data) -> np.ndarray:
    n = theta.size
    width, blocks = _forward_width(n), []
    for start in range(0, n, width):
        cols = np.minimum(np.arange(start, start + width), n - 1)  # the last block padded
        blocks.append(np.asarray(program(theta, cols, data), np.float64)[: n - start])
    return np.concatenate(blocks).reshape(n, -1).T


class Cancelled(Exception):
    """Work stopped in its thread (`Pending`): the check it was for has ended."""


class Pending:
    """A method's result computed in a thread of its own (`_finite.start`, `start_forward`):
    `result()` waits for it (raising what it raised), `cancel()` sets `cancelled`, which the work
    checks before each program call."""

    def __init__(self, work, cancelled: threading.Event):
        self._result, self._error, self._cancelled = None, None, cancelled
        context = contextvars.copy_context()  # NumPy's error state, the float32 run's x64 mode
        self._thread = threading.Thread(target=self._run, args=(context, work), name="diffcheck-method", daemon=True)
        self._thread.start()

    @classmethod
    def done(cls, result) -> Pending:
        pending = cls.__new__(cls)
        pending._result, pending._error, pending._cancelled, pending._thread = result, None, threading.Event(), None
        return pending

    def _run(self, context, work):
        try:
            self._result = context.run(work)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread, by result()
            self._error = exc

    def result(self):
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.05)  # Python runs between the waits: a preemption reaches the caller
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self) -> None:
        self._cancelled.set()
