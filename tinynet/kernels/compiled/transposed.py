"""Transposed convolution's scatter (col2im) in channels-last order, fused with the bias
and the NCHW layout.

Shapes: col (G, n, H, W, kh, kw, C_g), the GEMM product ``xᵀ @ W`` of
:func:`tinynet.functional.conv._conv_transpose2d_array` for a few images, group by group
(``col[g, b, h, w, i, j, o] = Σ_c x[b, g·C_in/G + c, h, w] · w[g·C_in/G + c, o, i, j]``,
C_g = C_out/G output channels innermost); bias (C_out,); out (n, C_out, Ho, Wo),
Ho = (H-1)·sh - 2·ph + dh·(kh-1) + 1 + output_padding (likewise Wo). The equation is
col2im's:

    out[b, g·C_g + o, sh·h - ph + dh·i, sw·w - pw + dw·j] += col[g, b, h, w, i, j, o]  (in range)
    out[b, g·C_g + o] += bias[g·C_g + o]

Loop idea. With the output channels innermost, one kernel offset of one input pixel adds
a contiguous run of C_g values to one output pixel's run of C_g in a channels-last buffer
``acc`` (Ho, Wo, C_g): a vectorised add of whole registers, with the pixel's bounds
checked once per run, not per element. NumPy's col2im instead adds one kernel offset at a
time over the whole (strided) output plane, kh·kw passes through memory, then adds the
bias and transposes in passes of their own; the sub-pixel route
(:mod:`tinynet.kernels.subpixel`) avoids the adds but multiplies a grid with a spare row
and column (4x4 stride 2 on 14x14: 15% more GEMM flops) built from shifted copies of the
input. Here the GEMM has exactly the transposed conv's flops, and per image one buffer of
Ho·Wo·C_g values (28x28x64 floats: 200 kB, in L2) takes every add and is read once, by
the transposing write into NCHW that adds the bias: every output pixel is written once.

Serial (:data:`~tinynet.kernels.compiled.kernel`): the caller runs it a few images at a time (about 1 MB of
``col``) in :func:`tinynet.backend.parallel_for` chunks, right after their GEMM, while
the product is still in cache.

Native job (:func:`forward_piece`, float32, one group): each of OpenBLAS's threads takes
its images (``parallel_for``'s split) and, image by image, multiplies ``x[n]ᵀ @ W``
(``x[n]`` read in place as the transposed operand: no channels-last copy) with NumPy's
``cblas_sgemm`` (:func:`.native.gemm`) into its own column buffer, then scatters it
(:func:`image_col2im`), without the GIL, whose hand-overs around each Python chunk's
GEMM cost tens of microseconds on the thirtieth session's Intel guest.
"""

import numba
import numpy as np

from . import kernel
from .native import NO_TRANS, TRANS, address_to_pointer, gemm, piece_range, table_piece

__all__ = ["col2im_bias", "image_col2im", "forward_piece"]


@kernel
def image_col2im(col, bias, out, acc, sh, sw, ph, pw, dh, dw):
    """One image and group: ``out (C_g, Ho, Wo) = col2im(col (H, W, kh, kw, C_g)) + bias
    (C_g,)``, summed in ``acc`` (Ho, Wo, C_g), any contents, then written to ``out``
    once per element."""
    H, W, kh, kw, Cg = col.shape
    Ho, Wo = out.shape[1], out.shape[2]
    acc[:] = 0
    for h in range(H):
        for i in range(kh):
            y = sh * h - ph + dh * i
            if y < 0 or y >= Ho:
                continue
            for w in range(W):
                for j in range(kw):
                    x = sw * w - pw + dw * j
                    if x < 0 or x >= Wo:
                        continue
                    src = col[h, w, i, j]
                    dst = acc[y, x]
                    for o in range(Cg):
                        dst[o] += src[o]
    for o in range(Cg):                 # to NCHW, each output pixel written once
        bias_o = bias[o]
        plane = out[o]
        for y in range(Ho):
            for x in range(Wo):
                plane[y, x] = acc[y, x, o] + bias_o


@kernel
def col2im_bias(col, bias, out, sh, sw, ph, pw, dh, dw):
    """out (n, C_out, Ho, Wo) = col2im(col (G, n, H, W, kh, kw, C_out/G)) + bias (C_out,).

    Every element of ``out`` is written (no need to zero it). Strides, paddings and
    dilations are Python ints; the arrays C-contiguous and of one dtype."""
    G, n, H, W, kh, kw, Cg = col.shape
    Ho, Wo = out.shape[2], out.shape[3]
    acc = np.empty((Ho, Wo, Cg), dtype=out.dtype)
    for b in range(n):
        for g in range(G):
            image_col2im(col[g, b], bias[g * Cg:(g + 1) * Cg], out[b, g * Cg:(g + 1) * Cg], acc,
                         sh, sw, ph, pw, dh, dw)


@table_piece
def forward_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces``: its images' products and scatters. Table ``b``:
    the integer parameters ``N, C_in, H, W, C_out, kh, kw, Ho, Wo, sh, sw, ph, pw, dh,
    dw, gemm, ilp64``, then x (N, C_in, H, W), W channels last (C_in, kh·kw·C_out), bias
    (C_out,), out (N, C_out, Ho, Wo) and the pieces' buffers: columns (pieces, H·W,
    kh·kw·C_out) and sums (pieces, Ho·Wo·C_out)."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (17,))
    N, C_in, H, W, C_out, kh, kw, Ho, Wo = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
    sh, sw, ph, pw, dh, dw, function, ilp64 = p[9], p[10], p[11], p[12], p[13], p[14], p[15], p[16]
    bias = numba.carray(address_to_pointer(b[3], numba.float32), (C_out,))
    out = numba.carray(address_to_pointer(b[4], numba.float32), (N, C_out, Ho, Wo))
    col = numba.carray(address_to_pointer(b[5], numba.float32), (pieces, H, W, kh, kw, C_out))[k]
    acc = numba.carray(address_to_pointer(b[6], numba.float32), (pieces, Ho, Wo, C_out))[k]
    lo, hi = piece_range(k, pieces, N)
    for n in range(lo, hi):
        gemm(function, ilp64, TRANS, NO_TRANS, H * W, kh * kw * C_out, C_in, np.float32(1),
             b[1] + 4 * n * C_in * H * W, H * W, b[2], kh * kw * C_out, np.float32(0),
             col.ctypes.data, kh * kw * C_out)
        image_col2im(col, bias, out[n], acc, sh, sw, ph, pw, dh, dw)
