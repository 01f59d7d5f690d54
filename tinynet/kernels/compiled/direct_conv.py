"""Direct 2-D convolution, compiled: forward and weight gradient, stride 1.

Shapes: x (N, C, H, W), w (C_out, C, kh, kw), b (C_out,), stride 1, padding (ph, pw),
dilation (dh, dw); ``Ho = H + 2·ph - dh·(kh-1)``, ``Wo = W + 2·pw - dw·(kw-1)``::

    forward        y[n, o, r, q]  = b[o] + Σ_{c,i,j} w[o, c, i, j] · x[n, c, r + i·dh - ph, q + j·dw - pw]
    weight grad   dw[o, c, i, j]  = Σ_{n,r,q} dy[n, o, r, q] · x[n, c, r + i·dh - ph, q + j·dw - pw]

(x read as zero outside its H x W map). The input gradient is a forward with the flipped
kernel (see tinynet/functional/conv.py), so it runs :func:`conv2d` too.

The idea (why it could beat im2col on thin convs): im2col copies x kh·kw times into a
column matrix (C·kh·kw, N·Ho·Wo), then a GEMM only C_out (16-32) rows tall runs far
below the BLAS peak, then a transposing copy restores NCHW. Here nothing is copied. The
forward runs one job per output row (n, r); per block of ``_BLOCK`` = 4 output channels
it keeps their four rows in one accumulator array (four separate rows would need more
runtime alias checks than LLVM makes, and the loop would not vectorise), and for each
input channel and kernel row reads the input row once and adds it, times the weights,
into all four (:func:`_three_taps` for kw = 3: twelve weights in registers, each
accumulator element loaded and stored once per twelve multiply-adds). Padding is the
loops' bounds: tap j touches the output columns q with ``0 <= q + j·dw - pw < W`` only.
Inner loops index slices from 0, so Numba emits no negative-index checks there.
The weight gradient is a reduction: per input channel c and block of four output
channels, four dot products of dy's rows with one shifted x row per load; jobs over
(c, block) write disjoint parts of dw, so no sum depends on the thread count.

Measured, it loses to the routes conv2d takes (row strips, flat rows, im2col) on every
benchmark shape (1.4-8.8x slower, docs/kernels/convolution.md, "Compiled direct
convolution"), so tinynet/functional/conv.py does not call it.
"""
import numpy as np

from . import kernel, prange, serial_kernel

#: Output channels updated per input-row load.
_BLOCK = 4


@serial_kernel
def _add_tap(acc, xr, w, o0, c, i, j, q, shift):
    """One tap at one column (a padding edge): acc[k, q] += w[o0 + k, c, i, j]·xr[q + shift]."""
    v = xr[q + shift]
    for k in range(4):
        acc[k, q] += w[o0 + k, c, i, j] * v


@serial_kernel
def _three_taps(acc, xr, w, o0, c, i, pw, dw, W, Wo):
    """acc[k, q] += Σ_j w[o0 + k, c, i, j] · xr[q + j·dw - pw] for k < 4, j < 3: the
    twelve weights stay in registers and each acc element is loaded and stored once
    for twelve multiply-adds (per tap, it would be once per four). The columns that
    not all three taps reach (padding) are added tap by tap."""
    lo = max(0, pw)                         # columns every tap reaches: [lo, hi)
    hi = min(Wo, W + pw - 2 * dw)
    for j in range(3):
        shift = j * dw - pw
        first = max(0, -shift)
        last = min(Wo, W - shift)
        for q in range(first, min(lo, last)):
            _add_tap(acc, xr, w, o0, c, i, j, q, shift)
        for q in range(max(hi, first), last):
            _add_tap(acc, xr, w, o0, c, i, j, q, shift)
    if hi <= lo:
        return
    a = w[o0, c, i, 0]
    b = w[o0, c, i, 1]
    d = w[o0, c, i, 2]
    e = w[o0 + 1, c, i, 0]
    f = w[o0 + 1, c, i, 1]
    g = w[o0 + 1, c, i, 2]
    h = w[o0 + 2, c, i, 0]
    l = w[o0 + 2, c, i, 1]
    m = w[o0 + 2, c, i, 2]
    s = w[o0 + 3, c, i, 0]
    t = w[o0 + 3, c, i, 1]
    u = w[o0 + 3, c, i, 2]
    x0 = xr[lo - pw:hi - pw]                # the three taps' inputs, from index 0
    x1 = xr[lo - pw + dw:hi - pw + dw]
    x2 = xr[lo - pw + 2 * dw:hi - pw + 2 * dw]
    for q in range(hi - lo):
        v0 = x0[q]
        v1 = x1[q]
        v2 = x2[q]
        acc[0, lo + q] += a * v0 + b * v1 + d * v2
        acc[1, lo + q] += e * v0 + f * v1 + g * v2
        acc[2, lo + q] += h * v0 + l * v1 + m * v2
        acc[3, lo + q] += s * v0 + t * v1 + u * v2


@kernel
def _forward(x, w, b, out, ph, pw, dh, dw):
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    for job in prange(N * Ho):
        n = job // Ho
        r = job % Ho
        acc = np.empty((_BLOCK, Wo), dtype=out.dtype)
        for o0 in range(0, O, _BLOCK):
            m = min(_BLOCK, O - o0)
            for k in range(m):
                acc[k, :] = b[o0 + k]
            for c in range(C):
                for i in range(kh):
                    row = r + i * dh - ph
                    if row < 0 or row >= H:
                        continue
                    xr = x[n, c, row]
                    if kw == 3 and m == _BLOCK:
                        _three_taps(acc, xr, w, o0, c, i, pw, dw, W, Wo)
                        continue
                    for j in range(kw):
                        shift = j * dw - pw
                        lo = max(0, -shift)     # padding: only the columns the tap reaches
                        hi = min(Wo, W - shift)
                        xs = xr[lo + shift:hi + shift]   # indices from 0: no negative-index checks
                        for k in range(m):
                            wv = w[o0 + k, c, i, j]
                            for q in range(hi - lo):
                                acc[k, lo + q] += wv * xs[q]
            for k in range(m):
                out[n, o0 + k, r, :] = acc[k]


def conv2d(x, w, b, padding, dilation):
    """y (N, C_out, Ho, Wo) of a stride-1, one-group conv of x (N, C, H, W) with w
    (C_out, C, kh, kw) and bias b (C_out,) or None; padding and dilation are (h, w)
    pairs of ints. x, w, b of one dtype (float32 or float64); views are copied."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    Ho = H + 2 * padding[0] - dilation[0] * (kh - 1)
    Wo = W + 2 * padding[1] - dilation[1] * (kw - 1)
    out = np.empty((N, O, Ho, Wo), dtype=x.dtype)
    b = np.zeros(O, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    _forward(x, w, b, out, padding[0], padding[1], dilation[0], dilation[1])
    return out


@kernel
def _weight(x, dy, dwt, ph, pw, dh, dw):
    N, C, H, W = x.shape
    O, Ho, Wo = dy.shape[1], dy.shape[2], dy.shape[3]
    kh, kw = dwt.shape[2], dwt.shape[3]
    blocks = (O + _BLOCK - 1) // _BLOCK
    for job in prange(C * blocks):
        c = job // blocks
        o0 = (job % blocks) * _BLOCK
        o1 = min(O, o0 + _BLOCK)
        for o in range(o0, o1):
            for i in range(kh):
                for j in range(kw):
                    dwt[o, c, i, j] = 0
        for n in range(N):
            for r in range(Ho):
                for i in range(kh):
                    row = r + i * dh - ph
                    if row < 0 or row >= H:
                        continue
                    xr = x[n, c, row]
                    for j in range(kw):
                        shift = j * dw - pw
                        lo = max(0, -shift)
                        hi = min(Wo, W - shift)
                        xs = xr[lo + shift:hi + shift]
                        if o1 - o0 == _BLOCK:
                            g0 = dy[n, o0, r, lo:hi]
                            g1 = dy[n, o0 + 1, r, lo:hi]
                            g2 = dy[n, o0 + 2, r, lo:hi]
                            g3 = dy[n, o0 + 3, r, lo:hi]
                            s0 = s1 = s2 = s3 = x.dtype.type(0)
                            for q in range(hi - lo):
                                v = xs[q]
                                s0 += g0[q] * v
                                s1 += g1[q] * v
                                s2 += g2[q] * v
                                s3 += g3[q] * v
                            dwt[o0, c, i, j] += s0
                            dwt[o0 + 1, c, i, j] += s1
                            dwt[o0 + 2, c, i, j] += s2
                            dwt[o0 + 3, c, i, j] += s3
                        else:
                            for o in range(o0, o1):
                                g = dy[n, o, r, lo:hi]
                                s = x.dtype.type(0)
                                for q in range(hi - lo):
                                    s += g[q] * xs[q]
                                dwt[o, c, i, j] += s


def conv2d_weight(x, dy, weight_shape, padding, dilation):
    """dw (C_out, C, kh, kw) of a stride-1, one-group conv of x (N, C, H, W) whose output
    gradient is dy (N, C_out, Ho, Wo); x, dy of one dtype; views are copied."""
    x, dy = np.ascontiguousarray(x), np.ascontiguousarray(dy)
    dwt = np.empty(weight_shape, dtype=x.dtype)
    _weight(x, dy, dwt, padding[0], padding[1], dilation[0], dilation[1])
    return dwt
