"""Columns and GEMMs image by image, or block by block, as a native job: flat rows' and
im2col's convolutions.

A convolution (here: one group, float32) computes, image by image,
``out[n] (C_out, Ho·Wo) = W @ col[n] + b`` with im2col's columns of that image

    col[n, (c, i, j), ho·Wo + wo] = x[n, c, ho·sh - ph + i·dh, wo·sw - pw + j·dw]   (zero outside)

(for a flat-row conv, :mod:`tinynet.kernels.flat_rows`: stride 1, Ho = H, Wo = W). The
NumPy routes build a chunk's columns with a few whole-array calls, or the whole batch's,
and multiply with NumPy, on two threads side by side as Python chunks or in OpenBLAS's
2-thread GEMM; each Python call takes the GIL, and on the twenty-ninth session's Intel
guest a chunk's start and end on a worker cost tens of microseconds. Here each of
OpenBLAS's threads takes its images (``parallel_for``'s split) and builds one image's
columns at a time into its own buffer (:func:`block_columns`, the compiled
:func:`.im2col.im2col` on that image: as fast as, or faster than, a copy written for
flat rows alone, which it replaced), then multiplies them with NumPy's ``cblas_sgemm``
(:func:`.native.gemm`), without the GIL. One thread's products of one image each ran at
that thread's full GEMM rate where OpenBLAS's 2-thread GEMM of the batch did not
(docs/kernels/convolution.md, "Image by image, as a native job"). The weight gradient
likewise sums ``dWᵀ (C·kh·kw, C_out) += col[n] @ dY[n]ᵀ`` over its images into its own
partial sum, as narrow products (:mod:`.narrow`) up to 32 output channels, GEMMs above.

Blocks (``block`` > 1 images per product): on maps a few pixels wide (SimpleCNN's 4x4,
a batch larger than a row) one image's product is a GEMM of 16 columns. There a piece
takes ``block`` images at a time, their columns batch-innermost (``col[(c, i, j), (ho·Wo
+ wo)·B + m]``, :func:`.im2col.im2col_batch_last`) in one product of B·Ho·Wo columns,
then scatters it to NCHW (:func:`.im2col.to_nchw_batch_last`); the weight gradient
first lays dY's block out the same way (:func:`images_to_block`). Each piece's columns,
product and copies stay on its own core, where the NumPy route's single-threaded
copies on either side of a 2-thread GEMM moved the data between cores (N64 16->32 4x4:
forward 141 -> 114 µs, weight gradient 155 -> 105; the col2im route of the input
gradient, :func:`block_input_piece`, 147 -> 103). A plain backward takes both gradients
in one job (:func:`block_backward_piece`): each block of dY laid out once, the column
buffer serving both products (185 -> 135 µs there).

Where ``whole`` (one image per product), the columns are the batch's (N, C·kh·kw,
Ho·Wo), each image's written by the piece that owns it, or already there (``ready``): a
transposed conv's two gradients share dy's columns this way.

The flat-row input gradient (:func:`input_piece`) is the adjoint, image by image:
``col = Wᵀ @ dY[n]``, then :func:`image_col2im` adds each column row back at its shift.
"""
import numba
import numpy as np

from . import kernel, unsigned as _u
from .im2col import col2im_batch_last, im2col, im2col_batch_last, to_nchw_batch_last
from .narrow import narrow_products
from .native import NO_TRANS, TRANS, address_to_pointer, gemm, piece_range, table_piece


@kernel
def block_columns(x, n0, n1, col, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """Columns of images ``n0..n1`` into the first ``C·kh·kw`` rows of ``col``
    (·, Ho·Wo·B), B = n1 - n0: one image's (:func:`.im2col.im2col`) where B is 1, else
    batch-innermost (:func:`.im2col.im2col_batch_last`, ``col[(c, i, j), (ho·Wo + wo)·B
    + m]``: on maps a few pixels wide its inner loops run over the block's images, not
    over a row's few pixels)."""
    C = x.shape[1]
    B = n1 - n0
    if B == 1:
        im2col(x[n0:n1], col[:C * kh * kw].reshape((C, kh, kw, 1, Ho, Wo)), 0, C, sh, sw, ph, pw, dh, dw)
    else:
        im2col_batch_last(x[n0:n1], col[:C * kh * kw].reshape((C, kh, kw, Ho, Wo, B)), 0, C,
                          sh, sw, ph, pw, dh, dw)


@kernel
def flat_columns(x, col, kh, kw, ph, pw, dh, dw, ones):
    """:func:`tinynet.kernels.flat_rows.flat_im2col` in one pass: ``col`` (N, C·kh·kw
    (+1), H·W) from x (N, C, H, W), stride 1, output the input's size. Per image plane,
    the flat padded image (``ph`` zero rows above and below, ``pw`` zeros at both ends) in
    a buffer whose padding stays zero, then per offset (i, j) one contiguous copy of H·W
    values from ``i·dh·W + j·dw``, and the entries that wrapped onto the neighbouring row
    (the first ``pw - j·dw``, or the last ``j·dw - pw``, of each row) zeroed; a last row
    of ones where ``ones``. The NumPy route makes six whole-array calls and two strided
    copies; here each value is written once (thirty-seventh session, one thread: 64x1x8x8
    with ones 17.3 -> 11.1 µs, 32x3x32x32 306 -> 218, 2x16x16x16 20.6 -> 12.4)."""
    N, C, H, W = x.shape
    L = H * W
    R = col.shape[1]
    start = pw + ph * W
    flat = np.zeros((H + 2 * ph) * W + 2 * pw, dtype=x.dtype)
    xf, colf = x.reshape(-1), col.reshape(-1)
    for n in range(N):
        for c in range(C):
            src = _u((n * C + c) * L)
            for p in range(_u(L)):
                flat[_u(start) + p] = xf[src + p]
            for i in range(kh):
                for j in range(kw):
                    dst = _u((n * R + (c * kh + i) * kw + j) * L)
                    off = _u(i * dh * W + j * dw)
                    for p in range(_u(L)):
                        colf[dst + p] = flat[off + p]
                    shift = j * dw - pw
                    lo, hi = (0, min(-shift, W)) if shift < 0 else (max(0, W - shift), W)
                    if shift != 0:
                        for h in range(H):
                            for w in range(lo, hi):
                                colf[dst + _u(h * W + w)] = 0
        if ones:
            dst = _u((n * R + R - 1) * L)
            for p in range(_u(L)):
                colf[dst + p] = 1


@kernel
def images_to_block(dy, n0, n1, out):
    """``out[o, p·B + m] = dy[n0 + m, o, p]`` for m < B = n1 - n0: the images' planes of
    ``dy`` (N, C_out, P) as one batch-innermost (C_out, P·B) operand, the layout of
    :func:`block_columns`' columns."""
    C_out, P = dy.shape[1], dy.shape[2]
    df, of = dy.reshape(-1), out.reshape(-1)
    B = n1 - n0
    for o in range(C_out):
        for m in range(B):
            src = _u(((n0 + m) * C_out + o) * P)
            dst = _u(o * P * B + m)
            for q in range(_u(P)):
                of[dst + q * _u(B)] = df[src + q]


@kernel
def weight_partial(col, g, part, narrow_max_out, function, ilp64):
    """``part (K, C_out) += col (K, M) @ gᵀ`` for a block's columns and its dY block ``g``
    (C_out, M): narrow products (:mod:`.narrow`) up to ``narrow_max_out`` output
    channels, NumPy's ``cblas_sgemm`` above."""
    K, M = col.shape
    C_out = g.shape[0]
    if C_out <= narrow_max_out:
        narrow_products(col, 0, g, 0, M, part)
    else:
        one = np.float32(1)
        gemm(function, ilp64, NO_TRANS, TRANS, K, C_out, M, one, col.ctypes.data, M,
             g.ctypes.data, M, one, part.ctypes.data, C_out)


@kernel
def block_col2im(w, g, col, out, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw, function, ilp64):
    """A block's input gradient: ``col (R, M) = Wᵀ @ g``, with W (C_g, R) at the address
    ``w`` read transposed and ``g`` (C_g, M) the block batch-innermost (M = Ho·Wo·B), then
    the batch-last col2im of ``col`` as (C, kh, kw, Ho, Wo, B), R = C·kh·kw, into ``out``
    (B, C, H, W)."""
    C_g, M = g.shape
    B, C = out.shape[0], out.shape[1]
    R = C * kh * kw
    gemm(function, ilp64, TRANS, NO_TRANS, R, M, C_g, np.float32(1), w, R,
         g.ctypes.data, M, np.float32(0), col.ctypes.data, M)
    col2im_batch_last(col.reshape((C, kh, kw, Ho, Wo, B)), out, 0, C, sh, sw, ph, pw, dh, dw)


@table_piece
def forward_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces``: its images' columns and products, ``block`` images
    at a time, plus the bias. Table ``b``: the integer parameters ``N, C, H, W, C_out,
    kh, kw, ph, pw, dh, dw, K, has_bias, gemm, ilp64, sh, sw, Ho, Wo, whole, ready,
    block`` (``K`` = C·kh·kw, the columns' rows), then x (N, C, H, W), w (C_out, K), out
    (N, C_out, Ho, Wo), the columns: the pieces' buffers (pieces, K·block·Ho·Wo), or where
    ``whole`` (block 1) the batch's (N, K, Ho·Wo), already built where ``ready``; where
    ``block`` > 1 the pieces' products (pieces, C_out·block·Ho·Wo); and the bias (C_out,)
    (read where ``has_bias``). One image's product goes straight into its output planes,
    filled with the bias first (the GEMM adds to them: ``beta`` 1)."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (22,))
    N, C, H, W, C_out, kh, kw = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    ph, pw, dh, dw, K, has_bias, function, ilp64 = p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]
    sh, sw, Ho, Wo, whole, ready, block = p[15], p[16], p[17], p[18], p[19], p[20], p[21]
    P = Ho * Wo
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C, H, W))
    out = numba.carray(address_to_pointer(b[3], numba.float32), (N, C_out, P))
    cols = numba.carray(address_to_pointer(b[4], numba.float32), (N if whole else pieces, K * block * P))
    bias = numba.carray(address_to_pointer(b[6], numba.float32), (C_out,))
    beta = np.float32(1 if has_bias else 0)
    lo, hi = piece_range(k, pieces, N)
    for n0 in range(lo, hi, block):
        n1 = min(hi, n0 + block)
        M = (n1 - n0) * P
        col = (cols[n0] if whole else cols[k])[:K * M].reshape((K, M))
        if not ready:
            block_columns(x, n0, n1, col, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
        if n1 - n0 == 1:    # the product is the image's output planes
            if has_bias:
                for c in range(C_out):
                    out[n0, c, :] = bias[c]
            gemm(function, ilp64, NO_TRANS, NO_TRANS, C_out, P, K, np.float32(1), b[2], K,
                 col.ctypes.data, P, beta, b[3] + 4 * n0 * C_out * P, P)
        else:
            y = numba.carray(address_to_pointer(b[5], numba.float32), (pieces, C_out * block * P))[k]
            gemm(function, ilp64, NO_TRANS, NO_TRANS, C_out, M, K, np.float32(1), b[2], K,
                 col.ctypes.data, M, np.float32(0), y.ctypes.data, M)
            to_nchw_batch_last(y[:C_out * M].reshape((C_out, Ho, Wo, n1 - n0)),
                               out[n0:n1].reshape((n1 - n0, C_out, Ho, Wo)), bias, has_bias != 0, 0, C_out)


@table_piece
def weight_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of the weight gradient: ``partial[k] (K, C_out) +=
    Σ col @ dYᵀ`` over its images, ``block`` at a time. Table ``b``: the integer
    parameters ``N, C, H, W, C_out, kh, kw, ph, pw, dh, dw, K, gemm, ilp64,
    narrow_max_out, sh, sw, Ho, Wo, whole, ready, block``, then x (N, C, H, W), dy (N,
    C_out, Ho, Wo), the pieces' partials (pieces, K, C_out) (zeros), the columns (as
    :func:`forward_piece`'s) and where ``block`` > 1 the pieces' dY blocks (pieces,
    C_out·block·Ho·Wo)."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (22,))
    N, C, H, W, C_out, kh, kw = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    ph, pw, dh, dw, K, function, ilp64, narrow_max_out = p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]
    sh, sw, Ho, Wo, whole, ready, block = p[15], p[16], p[17], p[18], p[19], p[20], p[21]
    P = Ho * Wo
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C, H, W))
    dy = numba.carray(address_to_pointer(b[2], numba.float32), (N, C_out, P))
    part = numba.carray(address_to_pointer(b[3], numba.float32), (pieces, K, C_out))[k]
    cols = numba.carray(address_to_pointer(b[4], numba.float32), (N if whole else pieces, K * block * P))
    lo, hi = piece_range(k, pieces, N)
    for n0 in range(lo, hi, block):
        n1 = min(hi, n0 + block)
        M = (n1 - n0) * P
        col = (cols[n0] if whole else cols[k])[:K * M].reshape((K, M))
        if not ready:
            block_columns(x, n0, n1, col, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
        if n1 - n0 == 1:
            g = dy[n0]
        else:
            g = numba.carray(address_to_pointer(b[5], numba.float32), (pieces, C_out * block * P))[k]
            g = g[:C_out * M].reshape((C_out, M))
            images_to_block(dy, n0, n1, g)
        weight_partial(col, g, part, narrow_max_out, function, ilp64)


@kernel
def image_col2im(col, out, bias, kh, kw, ph, pw, dh, dw):
    """The adjoint of a flat-row conv's :func:`block_columns` for one image, plus a bias: ``out`` (C, H, W) =
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


@table_piece
def block_input_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of a transposed conv (a conv's input gradient) on
    small maps, ``block`` images at a time: the block's input batch-innermost
    (:func:`images_to_block`), ``col (C_out·kh·kw, H·W·B) = Wᵀ @ block`` (W (C_in,
    C_out·kh·kw) read transposed), then :func:`.im2col.col2im_batch_last` into the
    block's output images, plus the bias. Table ``b``: the integer parameters ``N, C_in,
    H, W, C_out, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, gemm, ilp64, block, has_bias``,
    then x (N, C_in, H, W), w (C_in, C_out·kh·kw), bias (C_out,), out (N, C_out, Ho, Wo)
    and the pieces' buffers for the input blocks (pieces, C_in·block·H·W) and the
    columns (pieces, C_out·kh·kw·block·H·W)."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (19,))
    N, C_in, H, W, C_out, kh, kw = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    sh, sw, ph, pw, dh, dw, Ho, Wo = p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]
    function, ilp64, block, has_bias = p[15], p[16], p[17], p[18]
    P, R = H * W, C_out * kh * kw
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C_in, P))
    bias = numba.carray(address_to_pointer(b[3], numba.float32), (C_out,))
    out = numba.carray(address_to_pointer(b[4], numba.float32), (N, C_out, Ho, Wo))
    xb = numba.carray(address_to_pointer(b[5], numba.float32), (pieces, C_in * block * P))[k]
    cols = numba.carray(address_to_pointer(b[6], numba.float32), (pieces, R * block * P))[k]
    lo, hi = piece_range(k, pieces, N)
    for n0 in range(lo, hi, block):
        n1 = min(hi, n0 + block)
        M = (n1 - n0) * P
        g = xb[:C_in * M].reshape((C_in, M))
        images_to_block(x, n0, n1, g)
        col = cols[:R * M]
        dst = out[n0:n1]
        block_col2im(b[2], g, col, dst, kh, kw, H, W, sh, sw, ph, pw, dh, dw, function, ilp64)
        if has_bias:
            for m in range(n1 - n0):
                for c in range(C_out):
                    dst[m, c] += bias[c]


@table_piece
def block_backward_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of a small-map convolution's whole backward, ``block``
    images at a time: the block of dY laid out batch-innermost once (:func:`images_to_block`),
    then the weight gradient's partial ``partial[k] (K, C_out) += col @ dY blockᵀ`` on the
    block's columns of x (:func:`block_columns`), then, in the same buffer, the input
    gradient's ``col = Wᵀ @ dY block`` and its batch-last col2im into the block's ``dx``:
    what :func:`weight_piece` and :func:`block_input_piece` do as two jobs, with one layout
    of dY and one hand-over between the cores. Table ``b``: the integer parameters ``N, C,
    H, W, C_out, kh, kw, ph, pw, dh, dw, K, gemm, ilp64, narrow_max_out, sh, sw, Ho, Wo,
    block``, then x (N, C, H, W), dy (N, C_out, Ho, Wo), w (C_out, K), the pieces' partials
    (pieces, K, C_out) (zeros), dx (N, C, H, W) and the pieces' buffers for the columns
    (pieces, K·block·Ho·Wo) and the dY blocks (pieces, C_out·block·Ho·Wo)."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (20,))
    N, C, H, W, C_out, kh, kw = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    ph, pw, dh, dw, K, function, ilp64, narrow_max_out = p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]
    sh, sw, Ho, Wo, block = p[15], p[16], p[17], p[18], p[19]
    P = Ho * Wo
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C, H, W))
    dy = numba.carray(address_to_pointer(b[2], numba.float32), (N, C_out, P))
    part = numba.carray(address_to_pointer(b[4], numba.float32), (pieces, K, C_out))[k]
    dx = numba.carray(address_to_pointer(b[5], numba.float32), (N, C, H, W))
    cols = numba.carray(address_to_pointer(b[6], numba.float32), (pieces, K * block * P))[k]
    gs = numba.carray(address_to_pointer(b[7], numba.float32), (pieces, C_out * block * P))[k]
    lo, hi = piece_range(k, pieces, N)
    for n0 in range(lo, hi, block):
        n1 = min(hi, n0 + block)
        M = (n1 - n0) * P
        g = gs[:C_out * M].reshape((C_out, M))
        images_to_block(dy, n0, n1, g)
        col = cols[:K * M].reshape((K, M))
        block_columns(x, n0, n1, col, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
        weight_partial(col, g, part, narrow_max_out, function, ilp64)
        # the columns are read: the same buffer takes Wᵀ @ dY block (K rows again)
        block_col2im(b[3], g, col, dx[n0:n1], kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw, function, ilp64)
