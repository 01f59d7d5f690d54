"""Image-by-image columns and GEMMs as a native job: flat rows' and im2col's convolutions.

A convolution (here: one group, float32) computes, image by image,
``out[n] (C_out, Ho·Wo) = [W | b] @ [col[n]; 1]`` with im2col's columns of that image

    col[n, (c, i, j), ho·Wo + wo] = x[n, c, ho·sh - ph + i·dh, wo·sw - pw + j·dw]   (zero outside)

(for a flat-row conv, :mod:`tinynet.kernels.flat_rows`: stride 1, Ho = H, Wo = W). The
NumPy routes build a chunk's columns with a few whole-array calls, or the whole batch's,
and multiply with NumPy, on two threads side by side as Python chunks or in OpenBLAS's
2-thread GEMM; each Python call takes the GIL, and on the twenty-ninth session's Intel
guest a chunk's start and end on a worker cost tens of microseconds. Here each of
OpenBLAS's threads takes its images (``parallel_for``'s split) and builds one image's
columns at a time into its own buffer (:func:`image_columns`, the compiled
:func:`.im2col.im2col` on that image: as fast as, or faster than, a copy written for
flat rows alone, which it replaced), then multiplies them with NumPy's ``cblas_sgemm``
(:func:`.native.gemm`), without the GIL. One thread's products of one image each ran at
that thread's full GEMM rate where OpenBLAS's 2-thread GEMM of the batch did not
(docs/kernels/convolution.md, "Image by image, as a native job"). The weight gradient
likewise sums ``dWᵀ (C·kh·kw, C_out) += col[n] @ dY[n]ᵀ`` over its images into its own
partial sum, as narrow products (:mod:`.narrow`) up to 32 output channels, GEMMs above.

Where ``whole``, the columns are the batch's (N, C·kh·kw, Ho·Wo), each image's written
by the piece that owns it, or already there (``ready``): a transposed conv's two
gradients share dy's columns this way.

The flat-row input gradient (:func:`input_piece`) is the adjoint, image by image:
``col = Wᵀ @ dY[n]``, then :func:`image_col2im` adds each column row back at its shift.
"""
import numba
import numpy as np

from . import kernel
from .im2col import im2col
from .narrow import narrow_products
from .native import NO_TRANS, TRANS, address_to_pointer, gemm, piece_range, table_piece


@kernel
def image_columns(x, n, col, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Image ``n``'s columns into the first ``C·kh·kw`` rows of ``col`` (·, Ho·Wo):
    :func:`.im2col.im2col` on the one image (see the module docstring)."""
    C = x.shape[1]
    im2col(x[n:n + 1], col[:C * kh * kw].reshape((C, kh, kw, 1, Ho, Wo)), 0, C, sh, sw, ph, pw, dh, dw)


@table_piece
def forward_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces``: its images' columns and products. Table ``b``: the
    integer parameters ``N, C, H, W, C_out, kh, kw, ph, pw, dh, dw, K, ones, gemm,
    ilp64, sh, sw, Ho, Wo, whole, ready`` (``K`` the columns' rows, with the
    ones row where ``ones``), then x (N, C, H, W), w (C_out, K), out (N, C_out, Ho, Wo)
    and the columns: the pieces' buffers (pieces, K, Ho·Wo), or where ``whole`` the
    batch's (N, K, Ho·Wo), already built where ``ready``."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (21,))
    N, C, H, W, C_out, kh, kw = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    ph, pw, dh, dw, K, ones, function, ilp64 = p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]
    sh, sw, Ho, Wo, whole, ready = p[15], p[16], p[17], p[18], p[19], p[20]
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C, H, W))
    cols = numba.carray(address_to_pointer(b[4], numba.float32), (N if whole else pieces, K, Ho * Wo))
    if ones:                # (per-piece buffers only: the caller never shares a ones row)
        cols[k, K - 1] = 1
    lo, hi = piece_range(k, pieces, N)
    for n in range(lo, hi):
        col = cols[n] if whole else cols[k]
        if not ready:
            image_columns(x, n, col, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
        gemm(function, ilp64, NO_TRANS, NO_TRANS, C_out, Ho * Wo, K, np.float32(1), b[2], K,
             col.ctypes.data, Ho * Wo, np.float32(0), b[3] + 4 * n * C_out * Ho * Wo, Ho * Wo)


@table_piece
def weight_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of the weight gradient: ``partial[k] (K, C_out) +=
    Σ_n col[n] @ dY[n]ᵀ`` over its images. Table ``b``: the integer parameters ``N, C, H,
    W, C_out, kh, kw, ph, pw, dh, dw, K, gemm, ilp64, narrow_max_out, sh, sw, Ho, Wo,
    whole, ready``, then x (N, C, H, W), dy (N, C_out, Ho, Wo), the pieces'
    partials (pieces, K, C_out) (zeros) and the columns (as :func:`forward_piece`'s)."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (21,))
    N, C, H, W, C_out, kh, kw = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    ph, pw, dh, dw, K, function, ilp64, narrow_max_out = p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]
    sh, sw, Ho, Wo, whole, ready = p[15], p[16], p[17], p[18], p[19], p[20]
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C, H, W))
    dy = numba.carray(address_to_pointer(b[2], numba.float32), (N, C_out, Ho * Wo))
    part = numba.carray(address_to_pointer(b[3], numba.float32), (pieces, K, C_out))[k]
    cols = numba.carray(address_to_pointer(b[4], numba.float32), (N if whole else pieces, K, Ho * Wo))
    lo, hi = piece_range(k, pieces, N)
    one = np.float32(1)
    for n in range(lo, hi):
        col = cols[n] if whole else cols[k]
        if not ready:
            image_columns(x, n, col, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
        if C_out <= narrow_max_out:
            narrow_products(col, 0, dy[n], 0, Ho * Wo, part)
        else:
            gemm(function, ilp64, NO_TRANS, TRANS, K, C_out, Ho * Wo, one, col.ctypes.data, Ho * Wo,
                 dy[n].ctypes.data, Ho * Wo, one, part.ctypes.data, C_out)


@kernel
def image_col2im(col, out, bias, kh, kw, ph, pw, dh, dw):
    """The adjoint of a flat-row conv's :func:`image_columns` for one image, plus a bias: ``out`` (C, H, W) =
    ``bias[c]`` + the sum, over the offsets (i, j), of ``col[(c, i, j), h·W + w]`` added at
    pixel ``(h + i·dh - ph, w + j·dw - pw)`` where that lies in the image."""
    C, H, W = out.shape
    for c in range(C):
        plane = out[c]
        for h in range(H):
            for w in range(W):
                plane[h, w] = bias[c]
        for i in range(kh):
            for j in range(kw):
                source = col[(c * kh + i) * kw + j]
                shift = j * dw - pw
                lo, hi = max(0, -shift), min(W, W - shift)
                for h in range(H):
                    y = h + i * dh - ph
                    if 0 <= y < H:
                        row = plane[y, lo + shift:hi + shift]
                        part = source[h * W + lo:h * W + hi]
                        for w in range(hi - lo):
                            row[w] += part[w]


@table_piece
def input_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of the input gradient (the flat-row transposed
    conv): per image, ``col (K, H·W) = Wᵀ @ dY[n]`` (W (C_out, K) read transposed), then
    :func:`image_col2im` into ``dX[n]`` with the bias. Table ``b``: the integer
    parameters ``N, C, H, W, C_out, kh, kw, ph, pw, dh, dw, K, gemm, ilp64``, then dy
    (N, C_out, H, W), w (C_out, K), bias (C,), dx (N, C, H, W) and the pieces' column
    buffers (pieces, K, H·W)."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (14,))
    N, C, H, W, C_out, kh, kw = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    ph, pw, dh, dw, K, function, ilp64 = p[7], p[8], p[9], p[10], p[11], p[12], p[13]
    bias = numba.carray(address_to_pointer(b[3], numba.float32), (C,))
    dx = numba.carray(address_to_pointer(b[4], numba.float32), (N, C, H, W))
    col = numba.carray(address_to_pointer(b[5], numba.float32), (pieces, K, H * W))[k]
    lo, hi = piece_range(k, pieces, N)
    for n in range(lo, hi):
        gemm(function, ilp64, TRANS, NO_TRANS, K, H * W, C_out, np.float32(1), b[2], K,
             b[1] + 4 * n * C_out * H * W, H * W, np.float32(0), col.ctypes.data, H * W)
        image_col2im(col, dx[n], bias, kh, kw, ph, pw, dh, dw)
