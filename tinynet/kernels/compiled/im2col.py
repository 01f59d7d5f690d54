"""Compiled im2col, col2im and the GEMM-result-to-NCHW pass (the generic conv route).

The NumPy route (:mod:`tinynet.kernels.im2col`) builds the columns in two passes (a
zeroed, padded copy of the input, then one strided copy of all windows) and col2im in
three (a zeroed padded buffer, kh·kw strided adds, a transposing crop). Here each is one
pass that reads the input and writes the output once, with the padding decided per row
and per run instead of stored:

    im2col  col[c, i, j, n, ho, wo] = x[n, c, ho·sh - ph + i·dh, wo·sw - pw + j·dw]
            (0 outside the image); ``batch_last``: col[c, i, j, ho, wo, n], same values
    col2im  x[n, c, h, w] = Σ col[c, i, j, n, ho, wo] over ho·sh - ph + i·dh == h,
            wo·sw - pw + j·dw == w (the adjoint of im2col)
    to_nchw out[n, c, ho, wo] = y[c, n, ho, wo] + b[c]   (``y`` the GEMM's product;
            ``batch_last``: y[c, ho, wo, n])

Shapes: x (N, C, H, W); col (C, kh, kw, N, Ho, Wo) or (C, kh, kw, Ho, Wo, N); y
(C_out, N, Ho, Wo) or (C_out, Ho, Wo, N); out (N, C_out, Ho, Wo). All arrays C-contiguous
and of one dtype (float32 or float64), so each kernel compiles once per dtype.

Loops: im2col's outer ``prange`` runs over (c, i) pairs (every pair writes its own
block of columns); for each output row the in-image column range ``wo_lo..wo_hi`` is
computed once, so the inner loop is a branch-free strided read (a contiguous copy when
the stride is 1), and the padding is a few stores at the row ends. col2im's ``prange``
runs over (n, c) planes: each thread zeroes its own output plane and adds every column
entry that lands in it, so each output pixel is summed by one thread (no races, and the
result does not depend on the thread count). to_nchw's ``prange`` runs over output
channels; each plane is a contiguous copy plus the bias (or, batch-last, a gather
from stride-N reads).
"""
import numpy as np

from . import kernel, prange


@kernel
def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """x (N, C, H, W) -> col (C, kh, kw, N, Ho, Wo)."""
    N, C, H, W = x.shape
    col = np.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    for ci in prange(C * kh):
        c, i = ci // kh, ci % kh
        for j in range(kw):
            # columns wo with 0 <= wo·sw - pw + j·dw < W: wo_lo <= wo < wo_hi
            first = j * dw - pw
            wo_lo = min(Wo, max(0, (-first + sw - 1) // sw))
            wo_hi = min(Wo, max(wo_lo, (W - first + sw - 1) // sw))
            for n in range(N):
                for ho in range(Ho):
                    h = ho * sh - ph + i * dh
                    row = col[c, i, j, n, ho]
                    if h < 0 or h >= H:
                        row[:] = 0
                        continue
                    src = x[n, c, h]
                    for wo in range(wo_lo):
                        row[wo] = 0
                    for wo in range(wo_lo, wo_hi):
                        row[wo] = src[wo * sw + first]
                    for wo in range(wo_hi, Wo):
                        row[wo] = 0
    return col


@kernel
def im2col_batch_last(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """x (N, C, H, W) -> col (C, kh, kw, Ho, Wo, N)."""
    N, C, H, W = x.shape
    col = np.empty((C, kh, kw, Ho, Wo, N), dtype=x.dtype)
    for ci in prange(C * kh):
        c, i = ci // kh, ci % kh
        for j in range(kw):
            for ho in range(Ho):
                h = ho * sh - ph + i * dh
                for wo in range(Wo):
                    w = wo * sw - pw + j * dw
                    run = col[c, i, j, ho, wo]
                    if h < 0 or h >= H or w < 0 or w >= W:
                        run[:] = 0
                    else:
                        for n in range(N):
                            run[n] = x[n, c, h, w]
    return col


@kernel
def col2im(col, H, W, sh, sw, ph, pw, dh, dw):
    """col (C, kh, kw, N, Ho, Wo) -> x (N, C, H, W)."""
    C, kh, kw, N, Ho, Wo = col.shape
    x = np.empty((N, C, H, W), dtype=col.dtype)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        plane = x[n, c]
        plane[:] = 0
        for i in range(kh):
            for j in range(kw):
                first = j * dw - pw
                wo_lo = min(Wo, max(0, (-first + sw - 1) // sw))
                wo_hi = min(Wo, max(wo_lo, (W - first + sw - 1) // sw))
                for ho in range(Ho):
                    h = ho * sh - ph + i * dh
                    if h < 0 or h >= H:
                        continue
                    src = col[c, i, j, n, ho]
                    dst = plane[h]
                    for wo in range(wo_lo, wo_hi):
                        dst[wo * sw + first] += src[wo]
    return x


@kernel
def col2im_batch_last(col, H, W, sh, sw, ph, pw, dh, dw):
    """col (C, kh, kw, Ho, Wo, N) -> x (N, C, H, W)."""
    C, kh, kw, Ho, Wo, N = col.shape
    x = np.empty((N, C, H, W), dtype=col.dtype)
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        plane = x[n, c]
        plane[:] = 0
        for i in range(kh):
            for j in range(kw):
                for ho in range(Ho):
                    h = ho * sh - ph + i * dh
                    if h < 0 or h >= H:
                        continue
                    for wo in range(Wo):
                        w = wo * sw - pw + j * dw
                        if 0 <= w < W:
                            plane[h, w] += col[c, i, j, ho, wo, n]
    return x


@kernel
def to_nchw(y, out, bias, has_bias):
    """y (C, N, Ho, Wo) -> out (N, C, Ho, Wo) += bias[c] where ``has_bias``."""
    C, N, Ho, Wo = y.shape
    for c in prange(C):
        for n in range(N):
            src = y[c, n]
            dst = out[n, c]
            if has_bias:        # without one, a plain copy (adding 0 would turn -0.0 into 0.0)
                b = bias[c]
                for h in range(Ho):
                    for w in range(Wo):
                        dst[h, w] = src[h, w] + b
            else:
                dst[:] = src


@kernel
def to_nchw_batch_last(y, out, bias, has_bias):
    """y (C, Ho, Wo, N) -> out (N, C, Ho, Wo) += bias[c] where ``has_bias``."""
    C, Ho, Wo, N = y.shape
    for c in prange(C):
        src = y[c]
        for n in range(N):
            dst = out[n, c]
            if has_bias:
                b = bias[c]
                for h in range(Ho):
                    for w in range(Wo):
                        dst[h, w] = src[h, w, n] + b
            else:
                for h in range(Ho):
                    for w in range(Wo):
                        dst[h, w] = src[h, w, n]
