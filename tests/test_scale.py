"""The pieces that make large checks cheap give the same numbers as the plain ones; the benchmark
and GPU scripts run (timings are measured in benchmarks/, never asserted here)."""

import functools
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

import diffcheck
from benchmarks.functions import net_point, simple_net, tanh_net
from diffcheck import _autodiff as autodiff
from diffcheck import _compare as compare
from diffcheck import _finite as finite
from diffcheck import _graph as exact
from diffcheck import _kinks as kinks
from diffcheck import _numeric, _primitives, _probes
from diffcheck import _rows as rows
from diffcheck import _translate as symbolic
from diffcheck._numeric import flat_program as _flat_program
from diffcheck._pipeline import check_point
from diffcheck._primitives import Maximum, to_sympy
from diffcheck._problem import Problem
from diffcheck.errors import Unavailable

ROOT = Path(__file__).resolve().parent.parent
a, b, c = sympy.symbols("a b c", real=True)
STENCIL_EXPRESSIONS = [
    sympy.tanh(a * b) + c**2,
    sympy.Abs(a - b) * sympy.exp(c),
    Maximum(a, b, 2 * c),
    sympy.Piecewise((a * b, sympy.Lt(a, c)), (sympy.sin(b), True)),
    sympy.erf(a) - sympy.log(1 + b**2),
    sympy.Lt(a, b),
]


@pytest.mark.parametrize("expr", STENCIL_EXPRESSIONS, ids=str)
def test_moved_rows_match_dense_evaluation(expr, rng):
    theta = rng.normal(size=3)
    where = np.array([0, 2, 1, 0, 2, 2])
    to = theta[where] + rng.normal(size=where.size)
    dense = np.repeat(theta[None, :], where.size + 1, axis=0)
    dense[1 + np.arange(where.size), where] = to
    want = exact.evaluate_float([expr], [a, b, c], dense)
    at, moved = rows.evaluate([expr], [a, b, c], theta, where, to)
    np.testing.assert_array_equal(at, want[0])
    np.testing.assert_array_equal(moved, want[1:])


@pytest.mark.parametrize("terms", [2, 7, 11, 64])
def test_moved_rows_of_a_dot_product_match_dense_evaluation(terms, rng):
    # A dot product of data with parameters is one linear node: a row moving one term updates
    # the pairwise partial sums on that term's path; rows moving several terms add them all.
    p = sympy.symbols(f"p0:{terms}", real=True)
    c = [to_sympy(v) for v in rng.normal(size=terms)]
    expr = sympy.Add._from_args([sympy.Mul._from_args((ci, pi)) for ci, pi in zip(c, p)])
    e2 = sympy.tanh(expr) + p[0] * p[-1]
    theta = rng.normal(size=terms)
    where = np.concatenate([np.arange(terms), np.arange(terms), [0, terms - 1]])
    to = theta[where] + rng.normal(size=where.size)
    dense = np.repeat(theta[None, :], where.size + 1, axis=0)
    dense[1 + np.arange(where.size), where] = to
    want = exact.evaluate_float([expr, e2], list(p), dense)
    at, moved = rows.evaluate([expr, e2], list(p), theta, where, to)
    np.testing.assert_array_equal(at, want[0])
    np.testing.assert_array_equal(moved, want[1:])


def test_stencil_kinks_match_the_signs_of_the_moved_rows(rng):
    # The kink search folds each argument's rows in as it goes; it must say what comparing the
    # signs of _rows.evaluate's dense rows says, NaN and an argument exactly 0 at θ included.
    p = sympy.symbols("p0:5", real=True)
    args = [p[0] - p[1], p[2], sympy.log(p[3]) + p[4], p[0] * 0 + p[1] - p[1], sympy.sqrt(p[3] - 10)]
    theta = rng.normal(size=5)
    theta[2] = 0.0
    steps = np.full(5, 0.5)
    n = theta.size
    where = np.concatenate([np.arange(n), np.arange(n)])
    g0, g = rows.evaluate(args, list(p), theta, where, np.concatenate([theta + steps, theta - steps]))
    s0, plus, minus = np.sign(g0), np.sign(g[:n]), np.sign(g[n:])
    moves = (plus != s0) | (minus != s0)
    at, crossed = kinks.stencil_kinks(args, list(p), theta, steps)
    np.testing.assert_array_equal(at, (moves & (s0 == 0)[None, :]).any(axis=1))
    np.testing.assert_array_equal(crossed, (moves & (plus != minus)).any(axis=1))
    assert at[2] and crossed.all()  # p2 sits on its kink; sqrt of a negative is NaN everywhere


def test_moved_rows_through_let_bound_symbols(rng):
    # A node's value changes only in the rows that move a symbol it depends on, via its lets.
    net = functools.partial(tanh_net, jnp, x=rng.normal(size=3), y=1.0)
    point = net_point(3, 2)
    leaves = [point[k] for k in ("W1", "b1", "W2", "b2")]
    tr = symbolic.translate(net, leaves, ["W1", "b1", "W2", "b2"])
    symbols = [s for sym in tr.symbols for s in sym.reshape(-1)]
    outputs = [e for out in tr.outputs for e in out.reshape(-1)]
    theta = np.concatenate([leaf.reshape(-1) for leaf in leaves])
    where = np.concatenate([np.arange(theta.size)] * 2)
    to = np.concatenate([theta + 1e-3, theta - 1e-3])
    at, moved = rows.evaluate(outputs, symbols, theta, where, to, tr.definitions)
    dense = np.repeat(theta[None, :], where.size, axis=0)
    dense[np.arange(where.size), where] = to
    np.testing.assert_allclose(moved, exact.evaluate_float(outputs, symbols, dense, tr.definitions), rtol=1e-15)
    exact_value = [float(v) for v in exact.evaluate(outputs, symbols, theta, tr.definitions)]
    np.testing.assert_allclose(at, exact_value, rtol=1e-14)


def test_fast_dot_products_equal_sympys(rng):
    syms = sympy.symbols("p0:6", real=True)
    numbers = [to_sympy(v) for v in (0.0, 1.0, -1.0, 0.1, 3.0)]
    for _ in range(300):
        k = int(rng.integers(1, 6))
        pool = list(syms) + numbers
        lhs = [pool[i] for i in rng.integers(0, len(pool), k)]
        rhs = [pool[i] for i in rng.integers(0, len(pool), k)]
        got = _primitives.sum_of_products(np.array(lhs, object), np.array(rhs, object))
        assert sympy.expand(got - sympy.Add(*[x * y for x, y in zip(lhs, rhs)])) == 0


@pytest.mark.parametrize("block", [1, 7, 10**6])
def test_forward_mode_in_blocks_equals_jacfwd(block, monkeypatch):
    monkeypatch.setattr(autodiff, "FORWARD_BLOCK", block * 5)  # 5 parameters: `block` columns a call
    F = _flat_program(lambda x, y: jnp.stack([jnp.sum(jnp.sin(x)) * jnp.sum(y**2), jnp.prod(x)]), ((3,), (2,)))
    theta = np.array([0.3, -1.2, 2.0, 0.7, 1.5])
    with autodiff.precision(np.float64):
        got = autodiff.forward_jacobian(F, theta, {})
        want = np.asarray(jax.jacfwd(F)(theta, {}))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matrix_products_run_at_full_precision(dtype):
    # On NVIDIA GPUs JAX's default float32 matmul is TF32; diffcheck's programs ask for HIGHEST.
    with autodiff.precision(dtype):
        text = jax.jit(lambda a: a @ a).lower(np.ones((2, 2), dtype)).as_text()
    assert "precision = [HIGHEST, HIGHEST]" in text


def test_forward_mode_of_a_custom_vjp_is_unavailable():
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * jnp.cos(x),))
    F = _flat_program(lambda x: f(x), ((2,),))
    with autodiff.precision(np.float64), pytest.raises(Unavailable, match="forward mode"):
        autodiff.forward_jacobian(F, np.ones(2), {})


@pytest.mark.parametrize("group", [64, 3])
def test_finite_differences_are_the_same_in_any_chunk_size(group, monkeypatch):
    F = _flat_program(lambda w: jnp.sum(jnp.tanh(w) ** 3), ((11,),))
    theta = np.linspace(-1, 1, 11)
    with autodiff.precision(np.float64):
        whole = finite.jacobian(F, theta, {}, np.float64, np.float32)
        monkeypatch.setattr(finite, "CHUNK", 5)  # 66 rows in 14 chunks, the last one padded
        monkeypatch.setattr(finite, "GROUP", group)  # 3: four calls of 3 chunks (in-program loop), then 2 single
        chunked = finite.jacobian(F, theta, {}, np.float64, np.float32)
    np.testing.assert_array_equal(whole.jac, chunked.jac)
    np.testing.assert_array_equal(whole.bound, chunked.bound)


@pytest.fixture
def large(monkeypatch):
    """Parameter counts above 8 count as large; the noise sample is 4 elements."""
    monkeypatch.setattr(_numeric, "LARGE", 8)
    monkeypatch.setattr(_numeric, "LADDER_SAMPLE", 4)


def test_large_parameter_counts_check_the_complex_step_along_directions(large):
    x = np.linspace(-1, 2, 12)
    (point,) = diffcheck.check_grad(lambda x: jnp.sum(jnp.sin(x) * x), x).points
    assert point.ok, str(point.problems())
    assert point.methods["complex_step"] == "directional: 2 random directions"
    assert "measured on 4 of 12 elements" in point.checks and "complex step along 2 random directions" in point.checks
    assert all("complex_step" not in e.values and "finite_difference" in e.values for e in point.elements)
    (test,) = point.directional
    assert (test.method, test.status, test.reference, test.directions) == ("complex_step", "ok", "symbolic", 2)
    rng = np.random.default_rng([0, 12, 1])  # the check's seeded directions
    V = rng.standard_normal((2, 12))
    np.testing.assert_allclose(test.expected, V @ (np.sin(x) + x * np.cos(x)), rtol=1e-14)
    np.testing.assert_allclose(test.values, test.expected, rtol=1e-14)
    assert point.to_dict()["directional"][0]["status"] == "ok"


def test_a_directional_complex_step_that_disagrees_fails_the_point(large):
    x = np.linspace(-1, 2, 12)
    F = _flat_program(lambda x: jnp.sum(jnp.sin(x) * x), ((12,),))
    V, cs, spread = _numeric._complex_step_along(F, x, {}, np.dtype(np.float64), np.dtype(np.float32), 0)
    exact_jac = (np.sin(x) + x * np.cos(x))[None, :]
    values, bounds = {compare.SYMBOLIC: exact_jac}, {compare.SYMBOLIC: compare.symbolic_bound(exact_jac)}
    floor = compare.rounding_floor(0.0, exact_jac)
    assert _probes.directional_test((V, cs, spread), values, bounds, np.float64, floor).status == "ok"
    wrong = _probes.directional_test((V, cs + 1e-9, spread), values, bounds, np.float64, floor)
    assert wrong.status == "mismatch" and "complex_step along 2 random directions mismatch" in wrong.describe()


def test_sampled_noise_still_covers_cancellation(large):
    # (1e4 + sin x) − 1e4 loses 4 digits in every value (the barrier stops XLA from simplifying):
    # only the measured noise (the stencil in float32 too) explains the finite differences' error;
    # a sample of 4 elements measures it for all 12.
    fn = lambda x: jnp.sum(jax.lax.optimization_barrier(1e4 + jnp.sin(x)) - 1e4)  # noqa: E731
    x = np.linspace(-1, 2, 12)
    (point,) = diffcheck.check_grad(fn, x).points
    assert point.ok, str(point.problems())
    F = _flat_program(fn, ((12,),))
    with autodiff.precision(np.float64):
        unmeasured = finite.jacobian(F, x, {}, np.float64)  # no ladder: the bound misses the noise
    assert np.any(np.abs(unmeasured.jac[0] - np.cos(x)) > unmeasured.bound[0])


@pytest.mark.parametrize(
    "fn, point",
    [
        (tanh_net, net_point(4, 3)),
        (simple_net, net_point(4, 3)),  # ReLU: kinks, select_n
    ],
    ids=["tanh_net", "relu_net"],
)
def test_graph_and_expression_routes_agree_on_nets(fn, point):
    names = ["W1", "b1", "W2", "b2"]
    leaves = [point[k] for k in names]
    data = dict(x=point["x"], y=point["y"])
    f = functools.partial(fn, jnp)
    graph = check_point(Problem("net", "p", f, tuple(leaves), tuple(names), data=data, route="graph"))
    whole = check_point(Problem("net", "p", f, tuple(leaves), tuple(names), data=data, route="expression"))
    assert graph.ok and whole.ok and graph.methods["symbolic"] == "ok"
    g = np.array([e.values["symbolic"] for e in graph.elements])
    w = np.array([e.values["symbolic"] for e in whole.elements])
    np.testing.assert_allclose(g, w, rtol=1e-15, atol=1e-300)


def _run(*argv, **env):
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=600, check=False
    )


def test_benchmark_functions_load_as_a_case_file():
    done = _run(sys.executable, "-m", "diffcheck", "run", "benchmarks/functions.py", "--case", "tanh_net_100")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tanh_net_100" in done.stdout and "OK:" in done.stdout


def test_benchmark_smoke(tmp_path):
    # The side-by-side command on one tiny net; a tool that is not installed is skipped with a note.
    out = tmp_path / "bench.json"
    done = _run(
        sys.executable, "-m", "benchmarks.run", "--widths", "2", "--only", "tanh_net_9", "--repeat", "1",
        "--json", str(out), "--no-plot",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| tanh_net_9 | 9 | diffcheck |" in done.stdout and "| tanh_net_9 | 9 | jax.check_grads |" in done.stdout
    for tool, package in (("torch.gradcheck", "torch"), ("numdifftools", "numdifftools")):
        installed = importlib.util.find_spec(package) is not None
        assert (f"| {tool} |" in done.stdout) == installed
        if not installed:
            assert f"skipping {tool}: {package} is not installed" in done.stderr
    assert out.exists()


@pytest.mark.skipif(any(d.platform == "gpu" for d in jax.devices()), reason="a GPU is visible")
def test_gpu_script_says_there_is_no_gpu_and_fails():
    done = _run("bash", "benchmarks/gpu_check.sh", PYTHON=sys.executable)
    assert done.returncode != 0
    assert "no GPU" in done.stdout + done.stderr


def test_gpu_script_runs_where_only_jax_sympy_and_numpy_are(tmp_path):
    # Dry run (the CPU stands in for the GPU), with rich and platformdirs made unimportable, as on
    # a bare CUDA machine: the check goes through the library API and both reports compare.
    for package in ("rich", "platformdirs"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("raise ImportError('not on this machine')")
    done = _run(
        "bash", "benchmarks/gpu_check.sh", PYTHON=sys.executable, PYTHONPATH=str(tmp_path),
        GPU_CHECK_DRY_RUN="1", GPU_CHECK_QUICK="1", OUT=str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"gpu_check: tutorial: \d+ points, gpu ok=True, cpu ok=True", done.stdout)
    assert "symbolic 0.0e+00" in done.stdout


def test_import_diffcheck_loads_neither_jax_nor_sympy():
    code = "import sys, diffcheck; print(sorted({'jax', 'sympy'} & set(sys.modules)))"
    done = _run(sys.executable, "-c", code)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_cache_dir_keeps_compiled_programs(tmp_path):
    cache = tmp_path / "xla"
    argv = ("run", "--case", "sigmoid_bce", "--points", "0", "--cache-dir", str(cache))
    # A problem this small runs its programs in NumPy and compiles none: compiled, as a large one
    done = _run(sys.executable, "-m", "diffcheck", *argv, DIFFCHECK_EAGER="0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(cache.iterdir())) > 5  # one entry per compiled program
