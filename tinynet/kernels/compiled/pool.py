"""Max pooling over exact 2x2 tiles (kernel 2, stride 2, no padding, H and W even),
compiled: the forward reads each input value once, the backward writes each value of the
input's gradient once.

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

and, with the ``relu`` flag (a ReLU after the pool, run in the same op:
:func:`tinynet.functional.pool.max_pool2d_relu`), ``y = 0 if y < 0 else y`` before it is
stored and each gradient ``g·[y > 0]`` before it is routed, as ReLU's own kernels compute
them;

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

Loop structure: the caller splits planes ``lo..hi`` over threads
(``backend.parallel_for``); a kernel runs them as rows of tiles, by the loop that suits
the width ``Wo`` of an output row. LLVM vectorises a loop only where one iteration's
loads form a group of at most 8 (or the loop itself is long), so a row of a few tiles,
run tile by tile, stays scalar (SimpleCNN's first pool, Wo = 4: 41 µs for 16,384 tiles on
this project's Intel guest):

* ``Wo = 2``: one literal-width loop over rows; a row's two tiles are 8 consecutive
  values, so LLVM vectorises across rows (forward 29 -> 5.5 µs on SimpleCNN's 64x32x4x4,
  backward 26 -> 3.8 µs).
* other widths below ``TWO_PASS_MAX_WIDTH`` (32): two passes over blocks of rows,
  first the maximum of each horizontal pair (one long stride-2 sweep), then per tile its
  upper and lower pair (a loop of ``Wo`` per row, given as a literal where ``Wo = 4``):
  the same tournament, its first round done for a block at once (64x16x8x8 41 -> 15 µs,
  64x16x16x16 150 -> 86, 16x64x32x32 596 -> 203).
* wider rows: planes, rows of tiles, tiles; the loop over a row's tiles is long enough to
  vectorise (the two passes measured slower there: 2x16x128x128 78 -> 108 µs).

The backward writes each row of ``dx`` in order, alternating between a tile's two
columns, with ``Wo = 2`` as one literal-width loop over rows too (for other widths a
flat loop over rows measured 0.85-1.2x the plane loop's time: not taken).
"""
import numpy as np

from . import kernel, unsigned


#: Output rows narrower than this take the two-pass forward (:func:`_forward_two_pass`);
#: wider ones the row loop, whose inner loop over a row's tiles vectorises by itself.
TWO_PASS_MAX_WIDTH = 32
#: Half-tile values (two per tile) a block of the two-pass forward keeps in its temporaries:
#: 32 kB of maxima and 8 kB of flags, in L1 between the two passes.
_TWO_PASS_BLOCK = 8192


@kernel
def tile_max(a, b, c, e):
    """``(maximum, argmax)`` of one tile, ``a, b`` its upper row and ``c, e`` its lower, by
    the tournament of the module docstring (also :mod:`.conv_pool`'s)."""
    top, bottom = np.maximum(a, b), np.maximum(c, e)       # NaN if either is NaN
    where = np.int8(2 + (e > c)) if bottom > top else np.int8(b > a)
    return np.maximum(top, bottom), where


@kernel
def relu_if(v, relu, zero):
    """``v``, or where ``relu`` ReLU's ``0 if v < 0 else v`` (PyTorch's clamp_min: NaN and
    -0 kept; :func:`tinynet.kernels.compiled.activation.relu_forward`'s select); ``zero``
    a 0 of v's dtype."""
    return zero if relu and v < 0 else v


@kernel
def relu_gradient_if(g, y, relu):
    """``g``, or where ``relu`` ReLU's gradient ``g·[y > 0]`` from its output ``y``
    (:func:`tinynet.kernels.compiled.activation.relu_backward`'s product)."""
    return g * (y > 0) if relu else g


@kernel
def max_pool_2x2_forward(x, y, argmax, lo, hi, relu):
    """Fills ``y`` and ``argmax`` (P, H/2, W/2) from ``x`` (P, H, W) on planes ``lo..hi``,
    by the loop that suits the width of an output row (see the module docstring); where
    ``relu``, ``y`` is ReLU of the maximum (the pool, then ReLU on its output, in one
    pass; the argmax is the pool's)."""
    Ho, Wo = y.shape[1], y.shape[2]
    if Wo >= TWO_PASS_MAX_WIDTH:
        _forward_rows(x, y, argmax, lo, hi, relu)
        return
    flat_x, flat_y, flat_argmax = x.reshape(x.size), y.reshape(y.size), argmax.reshape(argmax.size)
    # a literal width lets LLVM unroll a row and vectorise across rows
    if Wo == 2:
        _forward_width_2(flat_x, flat_y, flat_argmax, lo * Ho, hi * Ho, relu)
    elif Wo == 4:
        _forward_two_pass(flat_x, flat_y, flat_argmax, 4, lo * Ho, hi * Ho, relu)
    else:
        _forward_two_pass(flat_x, flat_y, flat_argmax, Wo, lo * Ho, hi * Ho, relu)


@kernel
def _forward_rows(x, y, argmax, lo, hi, relu):
    """The tile loop for wide rows: planes, rows of tiles, tiles."""
    zero = y.dtype.type(0)
    Ho, Wo = y.shape[1], y.shape[2]
    for p in range(lo, hi):
        for i in range(Ho):
            upper, lower = x[p, 2 * i], x[p, 2 * i + 1]
            out, where = y[p, i], argmax[p, i]
            for j in range(Wo):
                m, where[j] = tile_max(upper[2 * j], upper[2 * j + 1], lower[2 * j], lower[2 * j + 1])
                out[j] = relu_if(m, relu, zero)


@kernel
def _forward_width_2(x, y, argmax, r0, r1, relu):
    """Rows ``r0..r1`` of tiles two wide (flat arrays): a row's two tiles are 8 consecutive
    values of ``x`` (its upper input row, then its lower), so the loop over rows is one
    stride-8 sweep that LLVM vectorises across rows."""
    zero = y.dtype.type(0)
    for r in range(r0, r1):
        for j in range(2):
            m, argmax[unsigned(2 * r + j)] = tile_max(
                x[unsigned(8 * r + 2 * j)], x[unsigned(8 * r + 2 * j + 1)],
                x[unsigned(8 * r + 4 + 2 * j)], x[unsigned(8 * r + 5 + 2 * j)])
            y[unsigned(2 * r + j)] = relu_if(m, relu, zero)


@kernel
def _forward_two_pass(x, y, argmax, Wo, r0, r1, relu):
    """Rows ``r0..r1`` of tiles ``Wo`` wide (flat arrays), in blocks of rows, each in two
    passes: first every horizontal pair of the block's two input rows per tile row,
    ``half[s] = maximum(x[2s], x[2s + 1])`` and ``right[s] = [x[2s + 1] > x[2s]]`` (one
    long stride-2 sweep), then per tile the upper and lower halves, ``Wo`` apart:
    the tournament of the module docstring, its first round done for all tiles at once."""
    zero = y.dtype.type(0)
    rows = max(1, _TWO_PASS_BLOCK // (2 * Wo))
    half = np.empty(rows * 2 * Wo, x.dtype)
    right = np.empty(rows * 2 * Wo, np.int8)
    for b0 in range(r0, r1, rows):
        n = min(r1 - b0, rows)
        s0 = b0 * 2 * Wo
        for s in range(n * 2 * Wo):
            a, b = x[unsigned(2 * (s0 + s))], x[unsigned(2 * (s0 + s) + 1)]
            right[unsigned(s)] = np.int8(b > a)
            half[unsigned(s)] = np.maximum(a, b)
        for r in range(n):
            for j in range(Wo):
                upper, lower = unsigned(2 * Wo * r + j), unsigned(2 * Wo * r + Wo + j)
                top, bottom = half[upper], half[lower]
                take = np.int8(bottom > top)            # arithmetic, not a branch: vectorises
                first = right[upper]
                out = unsigned((b0 + r) * Wo + j)
                argmax[out] = first + take * (np.int8(2) + right[lower] - first)
                y[out] = relu_if(np.maximum(top, bottom), relu, zero)


@kernel
def max_pool_2x2_backward(g, argmax, zero, dx, lo, hi, y, relu):
    """Fills ``dx`` (P, H, W) from ``g`` and ``argmax`` (P, H/2, W/2) on planes ``lo..hi``:
    each gradient to its tile's argmax, ``g·zero`` elsewhere (``zero`` a 0 of g's dtype:
    a NaN or infinite gradient leaves NaN on the tile's other positions, as the NumPy
    route's product with the mask does). Where ``relu``, ``g`` is first ReLU's gradient
    ``g·[y > 0]`` with ``y`` (P, H/2, W/2) the pool-then-ReLU output, as
    :func:`tinynet.kernels.compiled.activation.relu_backward` computes it (``y`` is not
    read otherwise). Each row of ``dx`` is written in order, its values alternating
    between a tile's two columns."""
    Ho, Wo = g.shape[1], g.shape[2]
    if Wo == 2:     # a literal width: LLVM unrolls a row and vectorises across rows
        _backward_width_2(g.reshape(g.size), argmax.reshape(argmax.size), zero,
                          dx.reshape(dx.size), lo * Ho, hi * Ho, y.reshape(y.size), relu)
        return
    for p in range(lo, hi):
        for i in range(Ho):
            grad, where = g[p, i], argmax[p, i]
            for r in range(2):              # the tile's upper row (offsets 0, 1), then lower
                row = dx[p, 2 * i + r]
                for j in range(Wo):
                    o = where[j] - 2 * r
                    v = relu_gradient_if(grad[j], y[p, i, j], relu)
                    other = v * zero
                    row[2 * j] = v if o == 0 else other
                    row[2 * j + 1] = v if o == 1 else other


@kernel
def _backward_width_2(g, argmax, zero, dx, r0, r1, y, relu):
    """Rows ``r0..r1`` of tiles two wide (flat arrays): a row's tiles write 8 consecutive
    values of ``dx``."""
    for r in range(r0, r1):
        for i in range(2):              # the tiles' upper input row, then their lower
            for j in range(2):
                t = unsigned(2 * r + j)
                o = argmax[t] - np.int8(2 * i)
                v = relu_gradient_if(g[t], y[t], relu)
                other = v * zero
                dx[unsigned(8 * r + 4 * i + 2 * j)] = v if o == 0 else other
                dx[unsigned(8 * r + 4 * i + 2 * j + 1)] = v if o == 1 else other
