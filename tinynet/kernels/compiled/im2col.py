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

Threads: every kernel does the channels ``first_channel <= c < end_channel`` into an
output its caller allocated, and is serial (:data:`~tinynet.kernels.compiled.kernel`, the GIL released): the
caller splits the channels over tinynet's pool (:func:`tinynet.backend.parallel_for`),
the threads the GEMMs run on. A ``prange`` would start Numba's own OpenMP team, whose
threads spin after each loop while OpenBLAS's threads want the same cores: on 2 cores
that made conv3's forward + backward 2x slower end to end although each piece was faster.

Loops: im2col's outer loop runs over (c, i) pairs (every pair writes its own
block of columns); for each output row the in-image column range ``wo_lo..wo_hi`` is
computed once, so the inner loop is a branch-free strided read (a contiguous copy when
the stride is 1), and the padding is a few stores at the row ends. col2im's loop
runs over (c, n) planes: each thread zeroes its own output plane and adds every column
entry that lands in it, in the NumPy route's (i, j) order, so each output pixel is
summed by one thread (no races; the result does not depend on the thread count).
Batch-last, both go through an (H, W, N) buffer (one per call, refilled per channel with
unsigned flat indices; one allocated per channel and filled with 4-D indices took
1.3-2.8x the time on N64 4x4 maps), so that their inner loops run over N contiguous
values on both sides. to_nchw's loop runs over output
channels; each plane is a contiguous copy plus the bias (or, batch-last, a gather from
stride-N reads).

Indexing: the arrays are walked as flat vectors with offsets cast to unsigned
(``_u``, :data:`tinynet.kernels.compiled.unsigned`). Numba checks every signed index
for a negative (Python's wraparound), and that branch keeps LLVM from vectorising the
row copies: the same loops with signed
indices measured 2.3-3.5x slower (single thread, N16 128-channel 16x16 stride 1 and
N8 128-channel 28x28 stride 2).
"""
import numpy as np

from . import kernel, unsigned as _u


@kernel
def im2col(x, col, first_channel, end_channel, sh, sw, ph, pw, dh, dw):
    """x (N, C, H, W) -> col (C, kh, kw, N, Ho, Wo), channels first..end-1."""
    N, C, H, W = x.shape
    kh, kw, Ho, Wo = col.shape[1], col.shape[2], col.shape[4], col.shape[5]
    xf, colf = x.reshape(-1), col.reshape(-1)
    M = N * Ho * Wo
    for ci in range(first_channel * kh, end_channel * kh):
        c, i = ci // kh, ci % kh
        for j in range(kw):
            # columns wo with 0 <= wo·sw - pw + j·dw < W: wo_lo <= wo < wo_hi
            first = j * dw - pw
            wo_lo = min(Wo, max(0, (-first + sw - 1) // sw))
            wo_hi = min(Wo, max(wo_lo, (W - first + sw - 1) // sw))
            o = (ci * kw + j) * M           # row (c, i, j, n=0, ho=0) of the columns
            for n in range(N):
                for ho in range(Ho):
                    h = ho * sh - ph + i * dh
                    if h < 0 or h >= H:
                        for wo in range(Wo):
                            colf[_u(o + wo)] = 0
                    else:
                        for wo in range(wo_lo):
                            colf[_u(o + wo)] = 0
                        dst = _u(o + wo_lo)
                        src = _u(((n * C + c) * H + h) * W + first + wo_lo * sw)
                        for k in range(_u(wo_hi - wo_lo)):
                            colf[dst + k] = xf[src + k * _u(sw)]
                        for wo in range(wo_hi, Wo):
                            colf[_u(o + wo)] = 0
                    o += Wo


@kernel
def im2col_batch_last(x, col, first_channel, end_channel, sh, sw, ph, pw, dh, dw):
    """x (N, C, H, W) -> col (C, kh, kw, Ho, Wo, N), channels first..end-1."""
    N, C, H, W = x.shape
    kh, kw, Ho, Wo = col.shape[1], col.shape[2], col.shape[3], col.shape[4]
    xf, colf = x.reshape(-1), col.reshape(-1)
    P = H * W
    pf = np.empty(P * N, dtype=x.dtype)         # x[:, c] batch-innermost, one per call
    for c in range(first_channel, end_channel):
        for n in range(N):
            src = _u((n * C + c) * P)
            for k in range(_u(P)):
                pf[k * _u(N) + _u(n)] = xf[src + k]
        o = c * kh * kw * Ho * Wo * N
        for i in range(kh):
            for j in range(kw):
                for ho in range(Ho):
                    h = ho * sh - ph + i * dh
                    for wo in range(Wo):
                        w = wo * sw - pw + j * dw
                        dst = _u(o)
                        if h < 0 or h >= H or w < 0 or w >= W:
                            for n in range(_u(N)):
                                colf[dst + n] = 0
                        else:
                            src = _u((h * W + w) * N)
                            for n in range(_u(N)):
                                colf[dst + n] = pf[src + n]
                        o += N


@kernel
def col2im(col, x, first_channel, end_channel, sh, sw, ph, pw, dh, dw):
    """col (C, kh, kw, N, Ho, Wo) -> x (N, C, H, W), channels first..end-1."""
    C, kh, kw, N, Ho, Wo = col.shape
    H, W = x.shape[2], x.shape[3]
    colf, xf = col.reshape(-1), x.reshape(-1)
    for cn in range(first_channel * N, end_channel * N):
        c, n = cn // N, cn % N      # neighbouring planes read neighbouring columns
        plane = (n * C + c) * H * W
        for k in range(_u(H * W)):
            xf[_u(plane) + k] = 0
        for i in range(kh):
            for j in range(kw):
                first = j * dw - pw
                wo_lo = min(Wo, max(0, (-first + sw - 1) // sw))
                wo_hi = min(Wo, max(wo_lo, (W - first + sw - 1) // sw))
                row = ((((c * kh + i) * kw + j) * N + n) * Ho) * Wo
                for ho in range(Ho):
                    h = ho * sh - ph + i * dh
                    if 0 <= h < H:
                        src = _u(row + ho * Wo + wo_lo)
                        dst = _u(plane + h * W + first + wo_lo * sw)
                        for k in range(_u(wo_hi - wo_lo)):
                            xf[dst + k * _u(sw)] += colf[src + k]


@kernel
def col2im_batch_last(col, x, first_channel, end_channel, sh, sw, ph, pw, dh, dw):
    """col (C, kh, kw, Ho, Wo, N) -> x (N, C, H, W), channels first..end-1."""
    C, kh, kw, Ho, Wo, N = col.shape
    H, W = x.shape[2], x.shape[3]
    colf, xf = col.reshape(-1), x.reshape(-1)
    P = H * W
    plane = np.empty(P * N, dtype=col.dtype)    # x[:, c] batch-innermost, one per call
    for c in range(first_channel, end_channel):
        plane[:] = 0
        o = c * kh * kw * Ho * Wo * N
        for i in range(kh):
            for j in range(kw):
                for ho in range(Ho):
                    h = ho * sh - ph + i * dh
                    for wo in range(Wo):
                        w = wo * sw - pw + j * dw
                        if 0 <= h < H and 0 <= w < W:
                            src, dst = _u(o), _u((h * W + w) * N)
                            for n in range(_u(N)):
                                plane[dst + n] += colf[src + n]
                        o += N
        for n in range(N):
            dst = _u((n * C + c) * P)
            for k in range(_u(P)):
                xf[dst + k] = plane[k * _u(N) + _u(n)]


@kernel
def to_nchw(y, out, bias, has_bias, first_channel, end_channel):
    """y (C, N, Ho, Wo) -> out (N, C, Ho, Wo) (+ bias[c] where ``has_bias``), channels
    first..end-1."""
    C, N, Ho, Wo = y.shape
    yf, of = y.reshape(-1), out.reshape(-1)
    P = Ho * Wo
    for c in range(first_channel, end_channel):
        for n in range(N):
            src, dst = _u((c * N + n) * P), _u((n * C + c) * P)
            if has_bias:        # without one, a plain copy (adding 0 would turn -0.0 into 0.0)
                b = bias[c]
                for k in range(_u(P)):
                    of[dst + k] = yf[src + k] + b
            else:
                for k in range(_u(P)):
                    of[dst + k] = yf[src + k]


@kernel
def to_nchw_batch_last(y, out, bias, has_bias, first_channel, end_channel):
    """y (C, Ho, Wo, N) -> out (N, C, Ho, Wo) (+ bias[c] where ``has_bias``), channels
    first..end-1."""
    C, Ho, Wo, N = y.shape
    yf, of = y.reshape(-1), out.reshape(-1)
    P = Ho * Wo
    for c in range(first_channel, end_channel):
        for n in range(N):
            src, dst = _u(c * P * N + n), _u((n * C + c) * P)
            if has_bias:
                b = bias[c]
                for k in range(_u(P)):
                    of[dst + k] = yf[src + k * _u(N)] + b
            else:
                for k in range(_u(P)):
                    of[dst + k] = yf[src + k * _u(N)]
