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
"""

import numpy as np

from . import kernel

__all__ = ["col2im_bias"]


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
                            src = col[g, b, h, w, i, j]
                            dst = acc[y, x]
                            for o in range(Cg):
                                dst[o] += src[o]
            for o in range(Cg):                 # to NCHW, each output pixel written once
                bias_o = bias[g * Cg + o]
                plane = out[b, g * Cg + o]
                for y in range(Ho):
                    for x in range(Wo):
                        plane[y, x] = acc[y, x, o] + bias_o
