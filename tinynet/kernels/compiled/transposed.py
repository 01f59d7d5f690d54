"""Transposed convolution's scatter (col2im), fused with the bias and the NCHW layout.

Shapes: col (n, C_out, kh, kw, H, W), the GEMM product ``Wᵀ @ x`` of
:func:`tinynet.functional.conv._conv_transpose2d_array` image by image
(``col[b, o, i, j, h, w] = Σ_c w[c, o, i, j] · x[b, c, h, w]``, one group's rows after
another); bias (C_out,); out (n, C_out, Ho, Wo), Ho = (H-1)·sh - 2·ph + dh·(kh-1) + 1
+ output_padding (likewise Wo). The equation is col2im's:

    out[b, o, sh·h - ph + dh·i, sw·w - pw + dw·j] += col[b, o, i, j, h, w]    (in range)
    out[b, o] += bias[o]

Loop idea. NumPy's col2im (:mod:`tinynet.kernels.im2col`) makes kh·kw passes over the
whole output, each a strided add of one kernel offset's columns (every output pixel is
read and written up to kh·kw times in memory), then a pass for the bias and, on the
batch-major layouts, a transposing copy to NCHW. Here one (image, channel) plane at a
time is built in a small buffer that stays in L1 (a 28x28 plane: 3 kB) and written out
once, with its bias:

* the buffer is phase-major, ``acc[a, c, u, v]`` holds output pixel (sh·u + a, sw·v + c):
  kernel row i lands on row phase a = (dh·i - ph) mod sh, at phase row
  u = h + (dh·i - ph) div sh, so one kernel offset adds a whole input row to a contiguous
  run of the buffer (a vectorised add, where adding straight into the output would write
  every sw-th element);
* at the end each output pixel is read from its phase once, the bias added, and stored.

The column reads are the only memory traffic besides the output: kh·kw·H·W per plane,
read once, in order. Parallel over images by the caller (each chunk on its own thread,
its GEMM and then this scatter while the image's columns are still in cache); this
kernel is serial (:data:`serial_kernel`), so it never nests inside those chunks.
"""
import numpy as np

from . import serial_kernel

__all__ = ["col2im_bias"]


@serial_kernel
def col2im_bias(col, bias, out, sh, sw, ph, pw, dh, dw):
    """out (n, C_out, Ho, Wo) = col2im(col (n, C_out, kh, kw, H, W)) + bias (C_out,).

    Every element of ``out`` is written (no need to zero it). Strides, paddings and
    dilations are Python ints; the arrays C-contiguous and of one dtype."""
    n, C, kh, kw, H, W = col.shape
    Ho, Wo = out.shape[2], out.shape[3]
    Hq, Wq = -(-Ho // sh), -(-Wo // sw)          # phase rows and columns
    acc = np.empty((sh, sw, Hq, Wq), dtype=out.dtype)
    for plane in range(n * C):
        b, o = plane // C, plane % C
        acc[:] = 0
        for i in range(kh):
            qi = dh * i - ph                      # output row of input row 0, tap i
            a, du = qi % sh, qi // sh             # its phase, and its phase row offset
            h0, h1 = max(0, -du), min(H, Hq - du)
            for j in range(kw):
                qj = dw * j - pw
                c, dv = qj % sw, qj // sw
                w0, w1 = max(0, -dv), min(W, Wq - dv)
                for h in range(h0, h1):
                    src = col[b, o, i, j, h]
                    dst = acc[a, c, h + du]
                    for w in range(w0, w1):
                        dst[w + dv] += src[w]
        bias_o = bias[o]
        for y in range(Ho):
            a, u = y % sh, y // sh
            row = out[b, o, y]
            for c in range(sw):                   # columns c, c + sw, ... from phase c
                src = acc[a, c, u]
                for v in range((Wo - c + sw - 1) // sw):
                    row[sw * v + c] = src[v] + bias_o
