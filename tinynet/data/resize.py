"""Resampling kernels for the resize transforms: bilinear for images, nearest for masks.

Both read a batch ``a`` of shape (N, C, H, W) at per-image source coordinates and write
(N, C, H_out, W_out); a plain resize is the case where every image uses the same
coordinates, a random resized crop the case where each has its own box.

For an output row ``i`` of a box starting at ``top`` with height ``h`` (in source pixels)
the source coordinate is PyTorch's half-pixel rule (``align_corners=False``)::

    y = top + (i + 1/2) * h / H_out - 1/2,   clamped to [0, H - 1]

bilinear:  out = (1-wy)(1-wx) a[y0, x0] + (1-wy) wx a[y0, x1] + wy (1-wx) a[y1, x0] + wy wx a[y1, x1]
           with y0 = floor(y), y1 = min(y0 + 1, H - 1), wy = y - y0 (and the same along x);
nearest:   out = a[top + floor(i * h / H_out), ...]   (PyTorch's ``mode="nearest"``).

With ``top = 0, h = H`` these are ``F.interpolate(..., mode="bilinear",
align_corners=False)`` and ``mode="nearest"``. Cost: four gathers of N·C·H_out·W_out
values; no Python loop over images or pixels.
"""
from __future__ import annotations

from .. import backend

__all__ = ["bilinear", "nearest"]


def _grid(xp, start, length, size_in, size_out):
    """(N, size_out) source coordinates of the half-pixel rule for boxes ``start``/``length`` (N,)."""
    i = xp.arange(size_out, dtype=xp.float64)[None, :]
    y = start[:, None] + (i + 0.5) * (length[:, None] / size_out) - 0.5
    return xp.clip(y, 0.0, size_in - 1)


def _boxes(xp, n, size, boxes):
    if boxes is None:
        z = xp.zeros(n, dtype=xp.float64)
        return z, z, xp.full(n, float(size[0])), xp.full(n, float(size[1]))
    top, left, height, width = (xp.asarray(b, dtype=xp.float64) for b in boxes)
    return top, left, height, width


def bilinear(a, out_size, boxes=None):
    """Bilinear resampling of ``a`` (N, C, H, W) to ``out_size`` (H_out, W_out).

    ``boxes`` is None (the whole image) or ``(top, left, height, width)``, each (N,),
    the source region of each image. Integer inputs are computed in float32 and rounded
    back to their dtype (uint8 images stay uint8).
    """
    xp = backend.get_array_module(a)
    n, _, h_in, w_in = a.shape
    ho, wo = out_size
    top, left, height, width = _boxes(xp, n, (h_in, w_in), boxes)
    ys, xs = _grid(xp, top, height, h_in, ho), _grid(xp, left, width, w_in, wo)
    y0 = xp.floor(ys).astype(xp.int64)
    x0 = xp.floor(xs).astype(xp.int64)
    y1, x1 = xp.minimum(y0 + 1, h_in - 1), xp.minimum(x0 + 1, w_in - 1)
    ftype = a.dtype if a.dtype.kind == "f" else xp.float32
    wy = (ys - y0).astype(ftype)[:, None, :, None]        # (N, 1, Ho, 1)
    wx = (xs - x0).astype(ftype)[:, None, None, :]        # (N, 1, 1, Wo)
    idx = xp.arange(n)[:, None, None]

    def gather(yy, xx):                                    # (N, C, Ho, Wo)
        return a[idx, :, yy[:, :, None], xx[:, None, :]].transpose(0, 3, 1, 2).astype(ftype)
    top_row = gather(y0, x0) * (1 - wx) + gather(y0, x1) * wx
    bottom_row = gather(y1, x0) * (1 - wx) + gather(y1, x1) * wx
    out = top_row * (1 - wy) + bottom_row * wy
    if a.dtype.kind != "f":
        info = xp.iinfo(a.dtype) if a.dtype.kind in "iu" else None
        out = xp.rint(out)
        if info is not None:
            out = xp.clip(out, info.min, info.max)
        out = out.astype(a.dtype)
    return out


def nearest(a, out_size, boxes=None):
    """Nearest-neighbour resampling of ``a`` (N, C, H, W) or (N, H, W); keeps the dtype
    (class indices stay class indices). ``boxes`` as in :func:`bilinear`."""
    xp = backend.get_array_module(a)
    squeeze = a.ndim == 3
    b = a[:, None] if squeeze else a
    n, _, h_in, w_in = b.shape
    ho, wo = out_size
    top, left, height, width = _boxes(xp, n, (h_in, w_in), boxes)
    iy = xp.arange(ho, dtype=xp.float64)[None, :]
    ix = xp.arange(wo, dtype=xp.float64)[None, :]
    yy = xp.clip(xp.floor(top[:, None] + iy * (height[:, None] / ho)).astype(xp.int64), 0, h_in - 1)
    xx = xp.clip(xp.floor(left[:, None] + ix * (width[:, None] / wo)).astype(xp.int64), 0, w_in - 1)
    out = b[xp.arange(n)[:, None, None], :, yy[:, :, None], xx[:, None, :]].transpose(0, 3, 1, 2)
    return out[:, 0] if squeeze else out
