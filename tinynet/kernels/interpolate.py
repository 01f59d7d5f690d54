"""Resampling along one axis on raw arrays: nearest and linear interpolation, and their
adjoints. Bilinear (2-D) interpolation is linear interpolation along H, then along W.

**Resampling is a sparse matrix.** Along an axis of size n resampled to size m, each
output position o reads one or two input positions (its *taps*) with fixed weights::

    y[..., o, ...] = Σ_t  w_t[o] · x[..., i_t[o], ...]          t over the taps
    nearest:  one tap,  i[o] = source index,             w = 1
    linear:   two taps, i0[o] = ⌊s(o)⌋, i1[o] = i0 + 1 (clamped), w1 = s(o) - i0, w0 = 1 - w1

that is ``y = A x`` along the axis with A an (m, n) matrix of one or two non-zeros per row.
The source coordinate s(o) follows PyTorch (``align_corners``)::

    align_corners=True:   s(o) = o · (n - 1) / (m - 1)                (0 when m == 1)
    align_corners=False:  s(o) = max((o + 0.5) · r - 0.5, 0),   r = 1/scale_factor or n/m
    nearest:              i(o) = min(⌊o · r⌋, n - 1)   (float32 arithmetic, as PyTorch)

PyTorch's 2-D kernels (4-D inputs) also treat an axis with m == n as the identity and,
for nearest, m == 2n as i(o) = o // 2, whatever the scale factor; ``interpolate`` follows.

**The backward is the adjoint** ``dx = Aᵀ dy``: every output sends its gradient back to
its taps, weighted the same way, ``dx[i_t[o]] += w_t[o] · dy[o]``. Several outputs can
share a tap (upsampling), so this is a scatter-add; it is written without ``add.at``:
i_t is non-decreasing in o, so the outputs reading input i form one run
``start[i] .. start[i] + count[i] - 1``, and a loop over the position r in the run (at
most ⌈m/n⌉ + 1 steps) adds ``dy[start[i] + r]`` into distinct inputs i at once, the
col2im pattern (a loop over offsets, never over pixels). The adjoint of the scatter is the
gather again, so every derivative order is a gather or a scatter.

Cost: forward and backward read each output once per tap, O(m · taps) per row; the run
plan is O(n + m) and computed once per call. docs/kernels/interpolation.md derives the
weights and the adjoint with a worked example.
"""
from __future__ import annotations

import math

from .. import backend
from ..backend import numpy as np

__all__ = ["output_size", "nearest_taps", "linear_taps", "gather", "scatter", "resample",
           "resample_adjoint"]


def output_size(n: int, scale_factor: float) -> int:
    """⌊n · scale_factor⌋, PyTorch's output size for a scale factor."""
    return int(math.floor(float(n) * scale_factor))


def _ratio(n: int, m: int, scale_factor, dtype):
    """r = 1/scale_factor when one is used, else n/m, in ``dtype`` arithmetic."""
    if scale_factor is not None and scale_factor > 0:
        return dtype.type(1.0 / scale_factor)
    return dtype.type(n) / dtype.type(m)


def nearest_taps(n: int, m: int, scale_factor=None, xp=np, halving: bool = False):
    """[(index (m,), None)]: the one tap of nearest resampling from n to m positions.

    ``halving``: m == 2n reads o // 2 whatever the scale factor (PyTorch's 2-D kernel does
    this; its 1-D and 3-D kernels use the formula).
    """
    if halving and m == 2 * n:
        return [(xp.arange(m) // 2, None)]
    r = _ratio(n, m, scale_factor, np.dtype(np.float32))
    o = np.arange(m, dtype=np.float32)
    return [(xp.asarray(np.minimum(np.floor(o * r).astype(np.int64), n - 1)), None)]


def linear_taps(n: int, m: int, align_corners: bool, scale_factor=None, dtype=np.float64, xp=np):
    """[(i0, w0), (i1, w1)], each (m,): the two taps of linear resampling, weights in
    ``dtype`` (coordinates computed in ``dtype`` too, as PyTorch does)."""
    dtype = np.dtype(dtype)
    o = np.arange(m, dtype=dtype)
    if align_corners:
        r = dtype.type(n - 1) / dtype.type(m - 1) if m > 1 else dtype.type(0)
        src = r * o
    else:
        r = _ratio(n, m, scale_factor, dtype)
        src = np.maximum(r * (o + dtype.type(0.5)) - dtype.type(0.5), dtype.type(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    w1 = np.clip(src - i0, 0, 1).astype(dtype)
    i1 = i0 + (i0 < n - 1)
    w0 = (1 - w1).astype(dtype)
    return [(xp.asarray(i0), xp.asarray(w0)), (xp.asarray(i1), xp.asarray(w1))]


def _along(axis: int, ndim: int, index) -> tuple:
    return (slice(None),) * (axis % ndim) + (index,)


def _weight_shape(w, axis: int, ndim: int):
    """w (m,) shaped to broadcast along ``axis`` of an ndim-dim array."""
    shape = [1] * ndim
    shape[axis % ndim] = w.shape[0]
    return w.reshape(shape)


def gather(x, index, axis: int):
    """x[..., index, ...] along ``axis``: y = A x for a one-tap A with unit weights."""
    return x[_along(axis, x.ndim, index)]


def scatter(g, index, axis: int, n: int):
    """The adjoint of ``gather``: zeros of size n along ``axis`` with g[o] added at index[o].

    index is non-decreasing, so the outputs of input i are the run start[i] + r,
    r < count[i]; step r adds one output into each input that has one (distinct inputs, a
    plain indexed add).
    """
    xp = backend.get_array_module(g)
    shape = list(g.shape)
    shape[axis % g.ndim] = n
    out = xp.zeros(shape, dtype=g.dtype)
    index_host = backend.asnumpy(index)
    count = np.bincount(index_host, minlength=n)
    start = np.cumsum(count) - count
    for r in range(int(count.max()) if count.size else 0):
        inputs = np.flatnonzero(count > r)
        outputs = start[inputs] + r
        out[_along(axis, g.ndim, xp.asarray(inputs))] += g[_along(axis, g.ndim, xp.asarray(outputs))]
    return out


def resample(x, taps, axis: int):
    """y = A x along ``axis``: Σ_t w_t ⊙ x[..., i_t, ...]."""
    y = None
    for index, w in taps:
        term = gather(x, index, axis)
        if w is not None:
            term = term * _weight_shape(w, axis, x.ndim)
        y = term if y is None else y + term
    return y


def resample_adjoint(g, taps, axis: int, n: int):
    """dx = Aᵀ g along ``axis``: Σ_t scatter(w_t ⊙ g, i_t)."""
    dx = None
    for index, w in taps:
        weighted = g if w is None else g * _weight_shape(w, axis, g.ndim)
        term = scatter(weighted, index, axis, n)
        dx = term if dx is None else dx + term
    return dx
