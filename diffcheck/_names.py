"""How reports name things: an element of a parameter ("W1[2,3]"), a method pair as JSON
writes it ("symbolic~autodiff"), and where each parameter starts in the flat vector θ."""

from __future__ import annotations

import numpy as np


def pair_key(pair: tuple) -> str:
    """A method pair as JSON writes it: "symbolic~autodiff"."""
    return "~".join(pair)


def format_index(index: tuple) -> str:
    """An element index as report messages write it: "[2,1]", or "" for a scalar."""
    return "[" + ",".join(map(str, index)) + "]" if index else ""


def offsets_of(shapes) -> np.ndarray:
    """Where each parameter's elements start in the flat vector θ (and, last, its length)."""
    return np.cumsum([0] + [int(np.prod(s, dtype=np.int64)) for s in shapes])


def element_names(names, shapes) -> list[str]:
    return [name + format_index(index) for name, shape in zip(names, shapes) for index in np.ndindex(*shape)]
