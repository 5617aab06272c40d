"""The benchmarked functions, each written once against an array namespace `xp` (jax.numpy,
torch or numpy), so that every tool checks the same mathematics; and their points.

Loaded as a case file too (`python -m diffcheck run benchmarks/functions.py`): the cases at the
bottom bind `xp` to jax.numpy. Importing this module imports NumPy only, so that a torch or numpy
benchmark process does not pay for importing JAX.
"""

import functools

import numpy as np

from diffcheck import Case

WRT = ("W1", "b1", "W2", "b2")


def sigmoid_bce(xp, w, b, x, y):
    """The tutorial's sigmoid neuron: BCE(σ(x·w + b), y)."""
    p = 1 / (1 + xp.exp(-(x * w + b)))
    return -(y * xp.log(p) + (1 - y) * xp.log1p(-p))


def simple_net(xp, W1, b1, W2, b2, x, y):
    """The tutorial's SimpleNet: Linear(10→5) → ReLU → Linear(5→1) → sigmoid → BCE."""
    a = W1 @ x + b1
    h = xp.where(a > 0, a, 0 * a)
    p = 1 / (1 + xp.exp(-(W2 @ h + b2)[0]))
    return -(y * xp.log(p) + (1 - y) * xp.log1p(-p))


def tanh_net(xp, W1, b1, W2, b2, x, y):
    """One hidden layer of tanh units, one output, logistic loss log(1 + exp(−y·z)) for a label ±1."""
    z = (W2 @ xp.tanh(W1 @ x + b1) + b2)[0]
    return xp.log1p(xp.exp(-y * z))


def in_jax(fn, **arguments):
    """fn with xp = jax.numpy."""
    import jax.numpy as jnp

    return fn(jnp, **arguments)


def linear_init(rng, fan_in, fan_out):
    """torch.nn.Linear's initialisation: uniform on ±1/√fan_in."""
    bound = 1 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, (fan_out, fan_in)), rng.uniform(-bound, bound, fan_out)


def net_point(inputs, hidden, seed=0):
    rng = np.random.default_rng([seed, inputs, hidden])
    W1, b1 = linear_init(rng, inputs, hidden)
    W2, b2 = linear_init(rng, hidden, 1)
    return dict(W1=W1, b1=b1, W2=W2, b2=b2, x=rng.standard_normal(inputs), y=1.0)


def tanh_net_params(width: int) -> int:
    """Parameters of a width → width tanh → 1 net: width² + 2·width + 1."""
    return width * width + 2 * width + 1


class Benchmark:
    """A function, the names of its differentiated arguments, and its point (NumPy float64)."""

    def __init__(self, name, fn, wrt, point):
        self.name, self.fn, self.wrt, self.point = name, fn, tuple(wrt), point

    @property
    def params(self) -> int:
        return sum(np.size(self.point[k]) for k in self.wrt)

    def data(self) -> dict:
        return {k: v for k, v in self.point.items() if k not in self.wrt}

    def case(self) -> Case:
        """The function in JAX as a diffcheck case; a new function object at each call."""
        tags = ("benchmark", "scale") if self.params > 1000 else ("benchmark",)
        return Case(
            name=self.name,
            fn=functools.partial(in_jax, self.fn),
            wrt=self.wrt,
            points={"bench": self.point},
            tags=tags,
            description=f"{self.fn.__doc__.splitlines()[0]} ({self.params:,} parameters)",
        )


def _simple_net_point():
    rng = np.random.default_rng(0)
    W1, b1 = linear_init(rng, 10, 5)
    W2, b2 = linear_init(rng, 5, 1)
    return dict(W1=W1, b1=b1, W2=W2, b2=b2, x=rng.standard_normal(10), y=1.0)


#: Net widths of the scaling series: 100, 961, 2,601, 10,201 (and 40,401) parameters.
WIDTHS = (9, 30, 50, 100, 200)


def benchmarks(widths=WIDTHS[:-1]) -> list[Benchmark]:
    """The tutorial's functions, then tanh nets of growing width."""
    out = [
        Benchmark("sigmoid_bce", sigmoid_bce, ("w", "b"), dict(w=2.2, b=0.0, x=1.1, y=1.0)),
        Benchmark("simple_net", simple_net, WRT, _simple_net_point()),
    ]
    out += [Benchmark(f"tanh_net_{tanh_net_params(w)}", tanh_net, WRT, net_point(w, w)) for w in widths]
    return out


# As diffcheck cases, e.g. `python -m diffcheck run benchmarks/functions.py --case tanh_net_10201 --points 0`.
tanh_net_100, tanh_net_961, tanh_net_2601, tanh_net_10201 = (b.case() for b in benchmarks()[2:])
