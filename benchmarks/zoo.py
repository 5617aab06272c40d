"""The bug zoo (tests/zoo.py) through diffcheck and two anchors, side by side.

    python benchmarks/zoo.py            # prints a Markdown table and the caught / false-alarm counts

Anchors: `jax.test_util.check_grads` (reverse mode, its default tolerances) on every entry, and
`torch.autograd.gradcheck` (default tolerances, float64) on the entries that translate to PyTorch
(the same function with the same wrong rule as a `torch.autograd.Function`). A benchmark, not a
test: the anchors are expected to miss small bugs and to raise false alarms at hard points.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
jax.config.update("jax_enable_x64", True)

from zoo import ZOO  # noqa: E402

import diffcheck  # noqa: E402


def run_diffcheck(entry, dtype="float64") -> bool:
    """True when the check fails (a bug is reported)."""
    return not diffcheck.check_grad(entry.fn, *entry.args, order=entry.order, dtype=dtype).ok


def run_check_grads(entry) -> bool:
    from jax.test_util import check_grads

    try:
        with jax.enable_x64(True):
            check_grads(entry.fn, tuple(np.asarray(a) for a in entry.args), order=entry.order, modes=["rev"])
    except AssertionError:
        return True
    except Exception:  # noqa: BLE001 - e.g. NaN from stepping outside the domain: reported, so "failed"
        return True
    return False


def _torch_entries():
    """name → (function of torch tensors, args) for the entries that translate."""
    import torch

    def rule(forward, backward):
        class Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx, *x):
                ctx.save_for_backward(*x)
                return forward(*x)

            @staticmethod
            def backward(ctx, g):
                return backward(ctx.saved_tensors, g)

        return Fn.apply

    t = torch
    sin_scaled = rule(t.sin, lambda x, g: g * t.cos(x[0]) * (1 + 1e-6))
    x_sin_x = rule(lambda x: x * t.sin(x), lambda x, g: g * x[0] * t.cos(x[0]))
    cube_sign = rule(
        lambda x: (x**3).sum(), lambda x, g: g * 3 * x[0] ** 2 * t.tensor([1.0, -1.0, 1.0], dtype=x[0].dtype)
    )
    sig_pre = rule(t.sigmoid, lambda x, g: g * x[0] * (1 - x[0]))
    small = rule(lambda x: 1e-5 * t.sin(x), lambda x, g: g * (1e-5 * t.cos(x[0]) + 1e-9))
    elu_neg = rule(lambda x: t.where(x > 0, x, t.expm1(x)), lambda x, g: g * t.where(x[0] > 0, 1.0, t.expm1(x[0])))
    log1p = rule(t.log1p, lambda x, g: g / (1 + x[0] + x[0] ** 2 * 1e-3))
    tanh = rule(t.tanh, lambda x, g: g * (1 - t.tanh(x[0]) ** 2) * (1 + 1e-3))
    softplus_sign = rule(torch.nn.functional.softplus, lambda x, g: g * t.sigmoid(-x[0]))
    exp_scaled = rule(t.exp, lambda x, g: g * t.exp(x[0]) * (1 + 1e-3))
    sin_right = rule(t.sin, lambda x, g: g * t.cos(x[0]))
    sp = torch.nn.functional.softplus
    return {
        "scaled_1e-6": lambda x: (sin_scaled(x) ** 2).sum(),
        "missing_product_term": lambda x: x_sin_x(x).sum(),
        "one_sign_flipped": cube_sign,
        "sigmoid_grad_from_preactivation": lambda z: sig_pre(z).sum(),
        "absolute_1e-9_on_1e-5": lambda x: small(x).sum(),
        "wrong_only_for_negative_inputs": lambda x: elu_neg(x).sum(),
        "log1p_rule_extra_term": lambda x: log1p(x).sum(),
        "tanh_rule_1e-3": lambda x: (tanh(x) * x).sum(),
        "softplus_rule_sign": lambda x: softplus_sign(x).sum(),
        "custom_jvp_scaled_1e-3": lambda x: (exp_scaled(x) * x).sum(),
        "pole_1/(x-0.999)_at_1": lambda x: 1 / (x - 0.999),
        "xlogx_at_1e-7": lambda x: x * t.log(x),
        "1e8+sin": lambda x: 1e8 + t.sin(x),
        "softplus_at_40": lambda x: sp(x, threshold=1e9),
        "logsumexp_near_1000": lambda x: t.logsumexp(x, 0),
        "sigmoid_saturated": lambda z: t.sigmoid(z).sum(),
        "relu_at_0_kink": lambda x: t.relu(x).sum(),
        "abs_at_0_kink": lambda x: (t.abs(x) * t.tensor([1.0, 2.0], dtype=x.dtype)).sum(),
        "softplus_at_0": lambda x: sp(x),
        "log_near_0": lambda x: t.log(x).sum(),
        "sqrt_near_0": lambda x: t.sqrt(x).sum(),
        "tanh_saturated": lambda x: (t.tanh(x) ** 2).sum(),
        "exp_at_50": t.exp,
        "custom_vjp_right": lambda x: (sin_right(x) ** 2).sum(),
    }


def run_gradcheck(fn, args) -> bool:
    import torch

    inputs = tuple(torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True) for a in args)
    try:
        return not torch.autograd.gradcheck(fn, inputs, raise_exception=False)
    except Exception:  # noqa: BLE001
        return True


def _cell(entry, failed: bool) -> str:
    if entry.bug:
        return "caught" if failed else "missed"
    return "FALSE ALARM" if failed else "pass"


def main() -> None:
    try:
        torch_entries = _torch_entries()
    except ImportError:
        torch_entries = {}
        print("torch not installed: its column is empty (pip install torch==2.13.0)", file=sys.stderr)
    rows, counts = [], {}
    start = time.perf_counter()
    for entry in ZOO:
        kind = "bug" if entry.bug else "correct"
        results = {
            "diffcheck float64": run_diffcheck(entry),
            "diffcheck float32": run_diffcheck(entry, "float32"),
            "jax check_grads": run_check_grads(entry),
        }
        if entry.name in torch_entries and entry.order == 1:
            results["torch gradcheck"] = run_gradcheck(torch_entries[entry.name], entry.args)
        for tool, failed in results.items():
            c = counts.setdefault(
                tool, {"caught": 0, "bugs": 0, "false alarms": 0, "correct": 0, "f32 caught": 0, "f32 bugs": 0}
            )
            if entry.bug:
                c["bugs"] += 1
                c["caught"] += failed
                if entry.bug >= 1e-3:
                    c["f32 bugs"] += 1
                    c["f32 caught"] += failed
            else:
                c["correct"] += 1
                c["false alarms"] += failed
        tools = ("diffcheck float64", "diffcheck float32", "jax check_grads", "torch gradcheck")
        cells = [_cell(entry, results[t]) if t in results else "–" for t in tools]
        size = f" ({entry.bug:g})" if entry.bug else ""
        rows.append(f"| {entry.name} | {kind}{size} | " + " | ".join(cells) + " |")
    print(
        "| entry | kind (relative size) | diffcheck float64 | diffcheck float32 | jax check_grads | torch gradcheck |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("| tool | bugs caught | bugs ≥ 1e-3 caught | false alarms on correct code |")
    print("|---|---|---|---|")
    for tool, c in counts.items():
        caught, strong = f"{c['caught']}/{c['bugs']}", f"{c['f32 caught']}/{c['f32 bugs']}"
        print(f"| {tool} | {caught} | {strong} | {c['false alarms']}/{c['correct']} |")
    print(f"\n{time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
