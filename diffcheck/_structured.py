"""Structured primitives as explicit sums of exact terms: window reductions, convolutions and
scatters (duplicate indices included), each output element the expression JAX's own op would
compute, its terms exact. One rule per primitive family, named by `_primitives.PRIMITIVES`."""

from __future__ import annotations

import numpy as np
import sympy

from ._rules import as_objects, attach_all, is_symbolic, sum_of_products
from .errors import Unavailable

# --- windows and convolutions ------------------------------------------------------------------


def _dilate_pad(x, axes, dilation, padding, fill):
    """x with (d − 1) fills between elements along `axes` and (lo, hi) fills at the ends (negative: cut)."""
    shape = list(x.shape)
    for axis, d in zip(axes, dilation):
        shape[axis] = (x.shape[axis] - 1) * d + 1 if x.shape[axis] else 0
    dilated = np.full(shape, fill, dtype=object)
    dilated[tuple(slice(None, None, dilation[axes.index(a)]) if a in axes else slice(None) for a in range(x.ndim))] = x
    widths = [(0, 0)] * x.ndim
    for axis, (lo, hi) in zip(axes, padding):
        widths[axis] = (max(lo, 0), max(hi, 0))
    padded = np.pad(dilated, widths, constant_values=fill) if any(map(any, widths)) else dilated
    cut = [slice(None)] * x.ndim
    for axis, (lo, hi) in zip(axes, padding):
        cut[axis] = slice(max(-lo, 0), padded.shape[axis] - max(-hi, 0))
    return padded[tuple(cut)]


def _windows(shape, window, strides, dilation):
    """(output index, the window's slices) over an array of `shape`."""
    span = [(w - 1) * d + 1 for w, d in zip(window, dilation)]
    for out in np.ndindex(*_window_shape(shape, window, strides, dilation)):
        yield out, tuple(slice(o * st, o * st + s, d) for o, st, s, d in zip(out, strides, span, dilation))


def reduce_window(op, fill):
    def rule(x, *, window_dimensions, window_strides, padding, base_dilation, window_dilation, **_):
        x = as_objects(x)
        axes = list(range(x.ndim))
        padded = _dilate_pad(x, axes, base_dilation, padding, fill)
        out = np.empty(_window_shape(padded.shape, window_dimensions, window_strides, window_dilation), dtype=object)
        for index, where in _windows(padded.shape, window_dimensions, window_strides, window_dilation):
            out[index] = op(*padded[where].reshape(-1))
        return out

    return rule


def _window_shape(shape, window, strides, dilation):
    span = [(w - 1) * d + 1 for w, d in zip(window, dilation)]
    return tuple(max((n - s) // st + 1, 0) for n, s, st in zip(shape, span, strides))


def conv_general_dilated(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                         feature_group_count, batch_group_count, **_):  # fmt: skip
    """Cross-correlation as explicit sums, in the canonical layout (batch, feature, spatial…)."""
    if batch_group_count != 1:
        raise Unavailable("conv_general_dilated with batch_group_count > 1 is not translated")
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    lhs = np.transpose(as_objects(lhs), lhs_spec)
    rhs = np.transpose(as_objects(rhs), rhs_spec)
    spatial = list(range(2, lhs.ndim))
    lhs = _dilate_pad(lhs, spatial, lhs_dilation, padding, sympy.S.Zero)
    n_in, per_group = rhs.shape[1], rhs.shape[0] // feature_group_count
    out_spatial = _window_shape(lhs.shape[2:], rhs.shape[2:], window_strides, rhs_dilation)
    out = np.empty((lhs.shape[0], rhs.shape[0]) + out_spatial, dtype=object)
    windows = list(_windows(lhs.shape[2:], rhs.shape[2:], window_strides, rhs_dilation))
    for b in range(lhs.shape[0]):
        for o in range(rhs.shape[0]):
            g = o // per_group
            kernel = rhs[o].reshape(-1)
            for index, where in windows:
                patch = lhs[(b, slice(g * n_in, (g + 1) * n_in)) + where]
                out[(b, o) + index] = sum_of_products(patch.reshape(-1), kernel)
    return np.transpose(out, np.argsort(out_spec))


# --- scatters ----------------------------------------------------------------------------------


def scatter(combine):
    """scatter-add/-mul/-min/-max/-sub (`combine(operand element, *updates landing there)`), or
    plain scatter (`combine` None: the update JAX writes last wins). Where each update lands is
    found by JAX itself, scattering one-hot updates: duplicate indices and dropped ones included."""

    def rule(point, operand, indices, updates, *, dimension_numbers, mode, indices_are_sorted=False,
             unique_indices=False, **_):  # fmt: skip
        import jax
        from jax import lax

        guards = point.guards(indices.reshape(-1)) if is_symbolic(indices) else []
        indices = point.concrete(indices, np.int64) if is_symbolic(indices) else np.asarray(indices)
        operand, updates = as_objects(operand), as_objects(updates)
        flags = dict(mode=mode, indices_are_sorted=indices_are_sorted, unique_indices=unique_indices)
        with jax.enable_x64(True):
            if combine is None:
                codes = np.arange(updates.size, dtype=np.float64).reshape(updates.shape)
                won = np.asarray(lax.scatter(np.full(operand.shape, -1.0), indices, codes, dimension_numbers, **flags))
            else:
                onehot = np.eye(updates.size).reshape((updates.size,) + updates.shape)
                zeros = np.zeros(operand.shape)
                land = jax.vmap(lambda u: lax.scatter_add(zeros, indices, u, dimension_numbers, mode=mode))(onehot)
                land = np.asarray(land).reshape(updates.size, -1)
        flat, ups = operand.reshape(-1).copy(), updates.reshape(-1)
        for j in range(flat.size):
            if combine is None:
                if won.reshape(-1)[j] >= 0:
                    flat[j] = ups[int(won.reshape(-1)[j])]
            else:
                arriving = [ups[u] for u in np.flatnonzero(land[:, j])]
                if arriving:
                    flat[j] = combine(flat[j], *arriving)
        return attach_all(flat.reshape(operand.shape), guards, point)

    return rule
