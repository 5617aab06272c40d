"""The plan: what is checked at a point — the order, the whole derivative tensor or Hessian-vector
products along random directions — and the sizes at which the plan changes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._records import element_names
from .errors import PointError

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


#: Bytes a first-order check holds per Jacobian entry at its peak: each method's values and bounds
#: as dense float64 arrays, the finite-difference stencils' outputs and the comparison's temporaries
#: (about 260 measured, benchmarks/hostile.py; 320 reckoned). `_compare` makes Python records for a few only.
BYTES_PER_ENTRY = 320


def dense_fits(outputs: int, params: int) -> bool:
    """Whether the dense check of an outputs × params Jacobian fits the memory budget
    (`_options.memory_budget`: $DIFFCHECK_MAX_MEMORY, --max-memory)."""
    from ._options import memory_budget

    return outputs * params * BYTES_PER_ENTRY <= memory_budget()


def fits(outputs: int, params: int, rows: int | None = None) -> None:
    """Refuses, before any of it is computed, a Jacobian whose dense check would pass the memory
    budget; with `rows`, one whose check of that many output combinations would."""
    from ._options import memory_budget

    budget, entries = memory_budget(), outputs * params
    checked = entries if rows is None else rows * params
    if checked * BYTES_PER_ENTRY > budget:
        what = "checking it needs" if rows is None else f"even the gradients of {rows} random output combinations need"
        raise PointError(
            f"the Jacobian has {entries:,} entries ({outputs:,} outputs × {params:,} parameters): {what} "
            f"about {checked * BYTES_PER_ENTRY / 2**30:.3g} GiB, over the memory budget of "
            f"{budget / 2**30:.3g} GiB (--max-memory, $DIFFCHECK_MAX_MEMORY); check fewer parameters at a time"
            + (", or a slice of the outputs" if rows is None else "")
        )


class Plan(NamedTuple):
    """What is checked: the order, and the directions of Hessian-vector products (or None: in full).

    For a vector output f the rows are wᵢᵀ·∂²f·vᵢ, the Hessian-vector product of the scalar wᵢᵀ·f
    along vᵢ, with random output weights wᵢ (`weights`, None for a scalar output): what
    `jax.test_util.check_grads` checks along random directions, and exact where it is checked.
    At order 1, weights without directions: the rows are the gradients wᵢᵀ·J of random output
    combinations, every parameter element checked, for a Jacobian whose dense check does not fit
    the memory budget (a wrong derivative of any output shows in every combination)."""

    order: int
    directions: np.ndarray | None
    weights: np.ndarray | None = None

    @property
    def full(self) -> bool:
        """Whether the rows are the derivative tensor's own (not combinations or directions)."""
        return self.directions is None and self.weights is None

    def describe(self) -> str:
        if self.directions is None and self.weights is not None:
            return (
                f"gradients of {len(self.weights)} random combinations of the {self.weights.shape[1]:,} outputs "
                "(their dense Jacobian is over the memory budget)"
            )
        if self.directions is None:
            return "full" if self.order > 1 else "gradient"
        if self.weights is not None:
            return (
                f"Hessian-vector products of random output combinations along {len(self.directions)} random directions"
            )
        return f"Hessian-vector products along {len(self.directions)} random directions"

    @classmethod
    def choose(cls, order, outputs, params, seed, dtype):
        if order == 1 and not combined(outputs, params):
            return cls(order, None)
        if order == 1:
            fits(outputs, params, rows=DIRECTIONS)
            rng = np.random.default_rng([seed, outputs, params])
            return cls(1, None, rng.standard_normal((DIRECTIONS, outputs)).astype(dtype).astype(np.float64))
        if outputs * params**order <= MAX_TENSOR:
            return cls(order, None)
        if order == 2:
            rng = np.random.default_rng([seed, params])
            directions = rng.standard_normal((DIRECTIONS, params)).astype(dtype).astype(np.float64)
            weights = (
                None if outputs == 1 else rng.standard_normal((DIRECTIONS, outputs)).astype(dtype).astype(np.float64)
            )
            return cls(order, directions, weights)
        raise PointError(
            f"order {order} of {outputs} output(s) in {params} parameters has {outputs * params**order:,} entries, "
            f"over the {MAX_TENSOR:,} checked in full; Hessian-vector products cover order 2"
        )


def combined(outputs: int, params: int) -> bool:
    """Whether an order-1 check takes random output combinations: the dense Jacobian does not fit."""
    return outputs > DIRECTIONS and not dense_fits(outputs, params)


def labels(names, shapes, out_shape, plan) -> list[tuple]:
    """(output index, earlier differentiations) for each row of the checked Jacobian."""
    params = element_names(names, shapes)
    n_out = int(np.prod(out_shape, dtype=np.int64))
    if plan.directions is None and plan.weights is not None:
        return [((d,), f"wᵀJ{d}: ") for d in range(len(plan.weights))]
    if plan.directions is not None:
        prefix = "H·v" if plan.weights is None else "wᵀH·v"
        return [((d,), f"{prefix}{d}: ") for d in range(len(plan.directions))]
    labels = []
    for m in range(n_out * len(params) ** (plan.order - 1)):
        out, *earlier = np.unravel_index(m, (n_out,) + (len(params),) * (plan.order - 1))
        output = tuple(int(i) for i in np.unravel_index(out, out_shape)) if out_shape else ()
        via = "".join(f"∂/∂{params[j]} " for j in earlier)
        labels.append((output, via))
    return labels
