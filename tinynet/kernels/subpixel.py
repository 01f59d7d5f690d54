"""Sub-pixel transposed convolution: each output phase is a small stride-1 correlation.

Shapes: x (N, C_in, H, W), w (C_in, C_out, kh, kw) (one group, dilation 1), stride
(sh, sw), padding (ph, pw) -> y (N, C_out, Ho, Wo), Ho = (H-1)·sh - 2ph + kh + output_padding.

A transposed convolution stamps the kernel, scaled by x[n, c, h, w], onto the output at
rows ``sh·h - ph + i``. Output row ``o`` therefore receives only the kernel rows
``i ≡ o + ph (mod sh)``: split the padded output rows by their phase
``a = (o + ph) mod sh``, and in phase a, at phase row u = (o + ph) div sh,

    y_pad[sh·u + a] = sum over i = a + sh·t < kh of w[i] · x[u - t]

(likewise for columns with phase b). Each of the sh·sw output phases is a stride-1
correlation of the input with a ⌈kh/sh⌉ x ⌈kw/sw⌉ sub-kernel, and every output pixel is
written once: no overlapping col2im scatter-add. For the decoders' 4x4 stride-2 kernel,
each phase is a 2x2 correlation.

As one GEMM, on the flat grid of :mod:`tinynet.kernels.phases` (x placed at rows < H and
columns < W of an Hq x Wq grid per image, zeros elsewhere, T = N·Hq·Wq columns; a
shift by (t, v) taps is a shift by ``t·Wq + v`` columns). Write the kernel's taps as
i = a + sh·t, j = b + sw·v (a < sh, b < sw, t < ⌈kh/sh⌉, v < ⌈kw/sw⌉; a kernel that is
not a multiple of the stride is padded with zero taps):

* every tap goes into K: ``strips[t, v] = x_grid`` shifted by t rows and v columns, so
  the GEMM's rows ``(t, v, c)`` hold all the inputs that any phase reads;
* every phase goes into M: ``Z = Wᵀ @ strips``, ``Wᵀ[(a, b, o), (t, v, c)] =
  w[c, o, a + sh·t, b + sw·v]``, shape (sh·sw·C_out, ⌈kh/sh⌉·⌈kw/sw⌉·C_in) @ (…, T);
* so ``Z[a, b]`` *is* output phase (a, b) on the grid, summed over its taps inside the
  GEMM: one strided copy writes it to ``y[:, :, a'::sh, b'::sw]``.

The bias rides in the GEMM: a row of ones heads the strips, and every phase's column of
``Wᵀ`` carries the bias in that row. Cost: the GEMM flops of the transposed conv times
``Hq·Wq / (H·W)`` (the grid's spare row and column), one copy of the input per tap (an
input sh·sw times smaller than the output), and one pass over the output. With
row taps in M instead (a GEMM per column phase, then an add of the row taps' shifted
blocks), the 4x4 stride-2 kernel of N8 128->64 14x14 took 1.1-1.3x as long: that form
writes a product twice the size and reads it back for the sums.
"""
from __future__ import annotations

from tinynet import backend

from .phases import _phase_blocks, phase_grid_size

__all__ = ["conv_transpose2d_subpixel"]


def conv_transpose2d_subpixel(x, w, b, stride, padding, output_size):
    """x (N, C_in, H, W), w (C_in, C_out, kh, kw), b (C_out,) or None -> y (N, C_out, Ho, Wo).

    One group, dilation 1, a kernel at least as large as the stride (kh >= sh, kw >= sw:
    every phase has a tap); ``output_size`` (Ho, Wo) carries the output padding.

    Example
    -------
    >>> import numpy as np
    >>> y = conv_transpose2d_subpixel(np.ones((1, 1, 2, 2)), np.ones((1, 1, 4, 4)), None,
    ...                               (2, 2), (1, 1), (4, 4))
    >>> y[0, 0].tolist()[0]           # the top row is reached by 2 and 4 kernel stamps
    [1.0, 2.0, 2.0, 1.0]
    """
    xp = backend.get_array_module(x)
    N, C_in, H, W = x.shape
    _, C_out, kh, kw = w.shape
    (sh, sw), (Ho, Wo) = stride, output_size
    th, tw = -(-kh // sh), -(-kw // sw)              # taps per phase along each axis
    if (kh, kw) != (th * sh, tw * sw):               # zero taps: every phase has th x tw
        padded = xp.zeros((C_in, C_out, th * sh, tw * sw), dtype=w.dtype)
        padded[:, :, :kh, :kw] = w
        w = padded
    Hq, Wq = phase_grid_size(output_size, (th * sh, tw * sw), stride, padding, (1, 1), (H, W))
    T = N * Hq * Wq
    head = (th - 1) * Wq + (tw - 1)                 # zeros read by the largest shift
    ones = 0 if b is None else 1
    K = ones + th * tw * C_in
    strips = xp.zeros((K, head + T), dtype=x.dtype)
    if ones:
        strips[0] = 1
    grid = strips[ones:ones + C_in, head:].reshape(C_in, N, Hq, Wq)

    def place_channels(lo, hi):         # strips[t, v][col] = x_grid[col - t·Wq - v]
        backend.copy(grid[lo:hi, :, :H, :W], x[:, lo:hi].transpose(1, 0, 2, 3))
        for k in range(1, th * tw):
            shift = (k // tw) * Wq + k % tw
            strips[ones + k * C_in + lo:ones + k * C_in + hi, head:] = \
                strips[ones + lo:ones + hi, head - shift:head - shift + T]
    backend.parallel_for(C_in, place_channels, nbytes=th * tw * x.nbytes, like=x)
    # Wᵀ built as its transpose, rows (t, v, c) and columns (a, b, o), and handed to the
    # BLAS as a transposed operand
    w_t = xp.empty((K, sh * sw * C_out), dtype=x.dtype)
    w_t[ones:] = w.reshape(C_in, C_out, th, sh, tw, sw).transpose(2, 4, 0, 3, 5, 1).reshape(K - ones, -1)
    if ones:
        w_t[0] = xp.tile(b, sh * sw)
    z = (w_t.T @ strips[:, head:]).reshape(sh, sw, C_out, N, Hq, Wq)
    out = xp.empty((N, C_out, Ho, Wo), dtype=x.dtype)
    rows, cols = _phase_blocks(Ho, sh, padding[0], Hq), _phase_blocks(Wo, sw, padding[1], Wq)

    def write_images(lo, hi):
        for a, (u0, r0, nu) in enumerate(rows):
            for b_, (v0, c0, nv) in enumerate(cols):
                if nu > 0 and nv > 0:
                    out[lo:hi, :, r0:r0 + (nu - 1) * sh + 1:sh, c0:c0 + (nv - 1) * sw + 1:sw] = \
                        z[a, b_, :, lo:hi, u0:u0 + nu, v0:v0 + nv].transpose(1, 0, 2, 3)
    backend.parallel_for(N, write_images, nbytes=2 * out.nbytes, like=x)
    return out
