"""Resampling along one axis on raw arrays: nearest, nearest-exact, linear, cubic, area and
anti-aliased taps, and the adjoint. Bilinear (2-D) interpolation is linear interpolation
along H, then along W; every mode of ``F.interpolate`` is one such pass per axis.

**Resampling is a sparse matrix.** Along an axis of size n resampled to size m, each
output position o reads one or two input positions (its *taps*) with fixed weights::

    y[..., o, ...] = Σ_t  w_t[o] · x[..., i_t[o], ...]          t over the taps
    nearest:  one tap,  i[o] = source index,             w = 1
    linear:   two taps, i0[o] = ⌊s(o)⌋, i1[o] = i0 + 1 (clamped), w1 = s(o) - i0, w0 = 1 - w1
    cubic:    four taps, clip(⌊s⌋ - 1 + k, 0, n - 1), Keys' kernel at the distances
    area, antialias:  a window of taps per row (unused slots weigh 0), see each function

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
from .pool import adaptive_bins

__all__ = ["output_size", "nearest_taps", "nearest_exact_taps", "linear_taps", "cubic_taps",
           "area_taps", "antialias_taps", "gather", "scatter", "resample", "resample_adjoint"]


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


def nearest_exact_taps(n: int, m: int, scale_factor=None, xp=np):
    """[(index (m,), None)]: nearest-exact, i(o) = min(⌊(o + 0.5) · r⌋, n - 1) (float32
    arithmetic, as PyTorch): the input pixel whose square holds the output pixel's centre."""
    r = _ratio(n, m, scale_factor, np.dtype(np.float32))
    o = np.arange(m, dtype=np.float32) + np.float32(0.5)
    return [(xp.asarray(np.minimum(np.floor(o * r).astype(np.int64), n - 1)), None)]


def _cubic(x, a):
    """Keys' cubic convolution kernel W(x) with parameter a, for any real x."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1                 # |x| <= 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a           # 1 < |x| < 2
    return np.where(x <= 1, near, np.where(x < 2, far, 0 * x))


def _source(n: int, m: int, align_corners: bool, scale_factor, dtype):
    """s(o) for o < m, unclamped (cubic keeps negative coordinates)."""
    o = np.arange(m, dtype=dtype)
    if align_corners:
        r = dtype.type(n - 1) / dtype.type(m - 1) if m > 1 else dtype.type(0)
        return r * o
    return _ratio(n, m, scale_factor, dtype) * (o + dtype.type(0.5)) - dtype.type(0.5)


def cubic_taps(n: int, m: int, align_corners: bool, scale_factor=None, dtype=np.float64, xp=np):
    """Four taps of bicubic resampling (PyTorch's, a = -0.75): with s = s(o) unclamped,
    i = ⌊s⌋ and t = s - i, tap k ∈ {0, 1, 2, 3} reads x[clip(i - 1 + k, 0, n - 1)] with weight
    W(t + 1), W(t), W(1 - t), W(2 - t)."""
    dtype = np.dtype(dtype)
    src = _source(n, m, align_corners, scale_factor, dtype)
    i = np.floor(src)
    t = (src - i).astype(dtype)
    a = dtype.type(-0.75)
    weights = (_cubic(t + 1, a), _cubic(t, a), _cubic(1 - t, a), _cubic(2 - t, a))
    i = i.astype(np.int64)
    return [(xp.asarray(np.clip(i - 1 + k, 0, n - 1)), xp.asarray(w.astype(dtype)))
            for k, w in enumerate(weights)]


def _window_taps(start, weights, n: int, dtype, xp):
    """Taps of a matrix whose row o holds ``weights[o, k]`` at columns start[o] + k.

    Unused slots (weight 0) point at a clipped column, so every tap's index stays
    non-decreasing in o, as ``scatter`` needs."""
    return [(xp.asarray(np.minimum(start + k, n - 1)), xp.asarray(weights[:, k].astype(dtype)))
            for k in range(weights.shape[1])]


def area_taps(n: int, m: int, dtype=np.float64, xp=np):
    """Area (adaptive average pooling, PyTorch's window rule): output o averages inputs
    start(o) = ⌊o·n/m⌋ .. end(o) - 1 with end(o) = ⌈(o + 1)·n/m⌉, weight 1/(end - start)."""
    start, end = adaptive_bins(n, m, np)
    size = end - start
    k = np.arange(int(size.max()))
    weights = np.where(k < size[:, None], 1.0 / size[:, None], 0.0)
    return _window_taps(start, weights, n, np.dtype(dtype), xp)


def antialias_taps(n: int, m: int, align_corners: bool, scale_factor=None, cubic: bool = False,
                   dtype=np.float64, xp=np):
    """PyTorch's anti-aliased linear (triangle) or cubic (Keys, a = -0.5) taps.

    With r the input step per output step (``align_corners`` as usual) and the filter's
    half-width h = 1 (linear) or 2 (cubic), downsampling (r > 1) stretches the filter by r:
    support σ = h · max(r, 1). Output o is centred at c = r (o + 0.5) and reads the inputs
    j ∈ [xmin, xmax) with xmin = max(trunc(c - σ + 0.5), 0), xmax = min(trunc(c + σ + 0.5), n),
    weighted by f((j + 0.5 - c) / max(r, 1)), normalised to sum to one.
    """
    dtype = np.dtype(dtype)
    if align_corners:
        r = dtype.type(n - 1) / dtype.type(m - 1) if m > 1 else dtype.type(0)
    else:
        r = _ratio(n, m, scale_factor, dtype)
    half = dtype.type(2.0 if cubic else 1.0)
    support = half * r if r >= 1 else half
    stretch = r if r >= 1 else dtype.type(1)
    center = r * (np.arange(m, dtype=dtype) + dtype.type(0.5))
    lo = np.maximum(np.trunc(center - support + dtype.type(0.5)).astype(np.int64), 0)
    hi = np.minimum(np.trunc(center + support + dtype.type(0.5)).astype(np.int64), n)
    width = int(math.ceil(support)) * 2 + 1
    size = np.clip(hi - lo, 0, width)
    j = lo[:, None] + np.arange(width)
    x = (j.astype(dtype) - center[:, None] + dtype.type(0.5)) / stretch
    f = _cubic(x, dtype.type(-0.5)) if cubic else np.maximum(1 - np.abs(x), 0)
    f = np.where(np.arange(width) < size[:, None], f, 0).astype(dtype)
    total = f.sum(axis=1, keepdims=True)
    weights = np.divide(f, total, out=np.zeros_like(f), where=total != 0)
    return _window_taps(lo, weights, n, dtype, xp)


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
