"""Max pooling over exact 2x2 tiles (kernel 2, stride 2, no padding, H and W even),
compiled: the forward in one pass over the input, the backward in one pass over the
input's gradient.

Shapes: ``x`` and ``dx`` are ``(P, H, W)`` (P = N·C planes), ``y``, ``argmax`` and ``g``
are ``(P, H/2, W/2)``, all C-contiguous; ``argmax`` is int8. Per output (p, i, j), with
the tile's four values in row-major order

    a = x[p, 2i, 2j],  b = x[p, 2i, 2j+1],  c = x[p, 2i+1, 2j],  e = x[p, 2i+1, 2j+1]

the result is the NumPy route's pairwise tournament
(:func:`tinynet.kernels.pool._max_pool_2x2_tournament`), compare for compare:

    top    = maximum(a, b),   bottom = maximum(c, e)       (NaN if either is NaN)
    argmax = 2 + [e > c]  if bottom > top  else  [b > a]       (ties keep the first)
    y      = maximum(top, bottom)
    dx[p, 2i + o // 2, 2j + o % 2] = g[p, i, j]·[argmax[p, i, j] == o],  o = 0..3

so y, argmax and dx are the NumPy route's exactly, with NaN in a tile too (``maximum``
is NumPy's, compiled; Python's ``max`` would not propagate NaN, and a select written out
with NaN tests measured 4x slower on SimpleCNN's maps).

Why compiled: the NumPy route makes seven whole-array passes over strided views (three
comparisons, three maxima, a ``where``), on maps 8 wide or less after two transposing
copies that give those passes long runs, and its backward four masked products into
strided views. Here each tile is read once and its compares stay in registers; measured
on this project's 2-core Zen 3 guest (float32, one thread): SimpleCNN's 64x16x8x8 forward
48 against 219 µs, backward 41 against 139; 2x16x128x128 forward 117 against 981,
backward 77 against 544.

Loop structure: a loop over planes ``lo..hi`` (the caller splits them with
``backend.parallel_for``); inside, rows of tiles, each a select-only body over the
tile's columns, so it vectorises.
"""
import numpy as np

from . import kernel


@kernel
def max_pool_2x2_forward(x, y, argmax, lo, hi):
    """Fills ``y`` and ``argmax`` (P, H/2, W/2) from ``x`` (P, H, W) on planes ``lo..hi``."""
    Ho, Wo = y.shape[1], y.shape[2]
    for p in range(lo, hi):
        for i in range(Ho):
            upper, lower = x[p, 2 * i], x[p, 2 * i + 1]
            out, where = y[p, i], argmax[p, i]
            for j in range(Wo):
                a, b = upper[2 * j], upper[2 * j + 1]
                c, e = lower[2 * j], lower[2 * j + 1]
                right_top = b > a
                right_bottom = e > c
                top = np.maximum(a, b)          # NaN if either is NaN
                bottom = np.maximum(c, e)
                take_bottom = bottom > top
                where[j] = np.int8(2 + right_bottom) if take_bottom else np.int8(right_top)
                out[j] = np.maximum(top, bottom)


@kernel
def max_pool_2x2_backward(g, argmax, zero, dx, lo, hi):
    """Fills ``dx`` (P, H, W) from ``g`` and ``argmax`` (P, H/2, W/2) on planes ``lo..hi``:
    each gradient to its tile's argmax, ``g·zero`` elsewhere (``zero`` a 0 of g's dtype:
    a NaN or infinite gradient leaves NaN on the tile's other positions, as the NumPy
    route's product with the mask does). Each row of ``dx`` is written in order, its
    values alternating between a tile's two columns."""
    Ho, Wo = g.shape[1], g.shape[2]
    for p in range(lo, hi):
        for i in range(Ho):
            grad, where = g[p, i], argmax[p, i]
            for r in range(2):              # the tile's upper row (offsets 0, 1), then lower
                row = dx[p, 2 * i + r]
                for j in range(Wo):
                    o = where[j] - 2 * r
                    v = grad[j]
                    other = v * zero
                    row[2 * j] = v if o == 0 else other
                    row[2 * j + 1] = v if o == 1 else other
