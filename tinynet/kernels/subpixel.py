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

As GEMMs, on the flat grid of :mod:`tinynet.kernels.phases` (x placed at rows < H and
columns < W of an Hq x Wq grid per image, zeros elsewhere, T = N·Hq·Wq columns; a
shift by (t, v) taps is a shift by ``t·Wq + v`` columns):

* column taps go into K: ``strips[v] = x_grid`` shifted right by v columns (v < ⌈kw/sw⌉),
  so one GEMM per column phase b covers all its column taps j = b + sw·v;
* row taps go into M: ``Z_b = W_b @ strips``, ``W_b[(i, o), (v, c)] = w[c, o, i, b + sw·v]``,
  shape (kh·C_out, ⌈kw/sw⌉·C_in) @ (⌈kw/sw⌉·C_in, T);
* phase (a, b) of the output is the sum over its row taps i = a + sh·t of the block
  ``Z_b[i]`` read t grid rows (t·Wq columns) back: one ``np.add`` of two (for k = 2s)
  shifted views, written straight into the strided output view ``y[:, :, a'::sh, b'::sw]``.

The bias rides in the GEMM: a row of ones heads the strips, and the first row tap of
each phase carries the bias in that column. Cost: the GEMM flops of the transposed conv
times ``Hq·Wq / (H·W)`` (the grid's spare row and column), one extra copy of the input
per column tap, and one pass over the output per row tap.
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
    Hq, Wq = phase_grid_size(output_size, (kh, kw), stride, padding, (1, 1), (H, W))
    T = N * Hq * Wq
    head = ((kh - 1) // sh) * Wq + (kw - 1) // sw     # zeros read by the largest shifts
    taps_w = -(-kw // sw)                              # column taps of phase 0 (the most)
    ones = 0 if b is None else 1
    strips = xp.zeros((ones + taps_w * C_in, head + T), dtype=x.dtype)
    if ones:
        strips[0] = 1
    grid = strips[ones:ones + C_in, head:].reshape(C_in, N, Hq, Wq)

    def place_channels(lo, hi):         # strips[v][t] = x_grid[t - v]
        grid[lo:hi, :, :H, :W] = x[:, lo:hi].transpose(1, 0, 2, 3)
        for v in range(1, taps_w):
            strips[ones + v * C_in + lo:ones + v * C_in + hi, head:] = \
                strips[ones + lo:ones + hi, head - v:head - v + T]
    backend.parallel_for(C_in, place_channels, nbytes=(1 + taps_w) * x.nbytes, like=x)
    out = xp.empty((N, C_out, Ho, Wo), dtype=x.dtype)
    rows, cols = _phase_blocks(Ho, sh, padding[0], Hq), _phase_blocks(Wo, sw, padding[1], Wq)
    # Column phases with as many taps share the strips: one GEMM for all of them (all
    # phases when sw divides kw), with M = phases·kh·C_out.
    for phase_set in ([list(range(sw))] if kw % sw == 0 else [[b_] for b_ in range(sw)]):
        taps = len(range(phase_set[0], kw, sw))
        # Wᵀ rows (bias, (v, c)), columns (b, i, o): w[c, o, i, b + sw·v]. Built transposed,
        # as w's own (c, o, i, j) order reads it in cache-sized blocks (10x the (i, o, v, c)
        # copy, measured), and handed to the BLAS as a transposed operand.
        w_t = xp.zeros((ones + taps * C_in, len(phase_set), kh, C_out), dtype=x.dtype)
        for k, b_ in enumerate(phase_set):
            w_t[ones:, k] = w[:, :, :, b_::sw].transpose(3, 0, 2, 1).reshape(taps * C_in, kh, C_out)
            if ones:
                w_t[0, k, :sh] = b                 # the first row tap of each phase
        z = w_t.reshape(ones + taps * C_in, -1).T @ strips[:ones + taps * C_in]
        z = z.reshape(len(phase_set), kh, C_out, head + T)   # rows (b, i, o)
        for k, b_ in enumerate(phase_set):
            v0, c0, nv = cols[b_]
            if nv <= 0:
                continue
            # row tap i = a + sh·t of phase a is read t grid rows (t·Wq columns) back
            blocks = [z[k, i, :, head - (i // sh) * Wq:head - (i // sh) * Wq + T]
                      .reshape(C_out, N, Hq, Wq).transpose(1, 0, 2, 3) for i in range(kh)]

            def sum_images(lo, hi, c0=c0, v0=v0, nv=nv, blocks=blocks):
                for a, (u0, r0, nu) in enumerate(rows):
                    if nu <= 0:
                        continue
                    target = out[lo:hi, :, r0:r0 + (nu - 1) * sh + 1:sh, c0:c0 + (nv - 1) * sw + 1:sw]
                    terms = [blocks[i][lo:hi, :, u0:u0 + nu, v0:v0 + nv] for i in range(a, kh, sh)]
                    if len(terms) == 1:
                        target[...] = terms[0]
                    else:
                        xp.add(terms[0], terms[1], out=target)
                        for term in terms[2:]:
                            target += term
            backend.parallel_for(N, sum_images, nbytes=3 * out.nbytes // sw, like=x)
    return out
