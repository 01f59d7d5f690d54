"""A convolution, its ReLU and a 2x2 max pool in one native job: forward and backward.

The op (:class:`tinynet.functional.conv_pool.Conv2dReluPool`) is

    y = conv2d(x, W, b)          (N, C_out, Ho, Wo), stride 1, one group, Ho and Wo even
    z = relu(max_pool2d(y, 2))   (N, C_out, Ho/2, Wo/2), with each tile's argmax

and its backward, with ``g`` the gradient of z,

    dY[n, c, 2i + o // 2, 2j + o % 2] = g[n, c, i, j]·[z > 0]·[argmax == o]     (o = 0..3)
    dW = Σ dY @ colsᵀ,   db = Σ dY over (n, h, w),   dX = col2im(Wᵀ @ dY).

As separate ops, y (four times z's size) is written to memory by the convolution's job,
read back by the pool, and dY written by the pool's backward and read back by the
convolution's, the pool's passes on one core (in SimpleCNN's training step on the
thirty-eighth session's 2-core Intel guest, its two pools' kernels took 41 µs forward and
73 backward of a 1,240 µs step, and their nodes as much again). Here each piece of the
job takes a block of images, as the small-map convolutions' pieces do (:mod:`.flat_rows`:
columns batch-innermost, ``col[(c, i, j), (h·Wo + w)·B + m]``), and

* forward: multiplies the block's columns into its product (C_out, Ho, Wo, B), then pools
  it while it is in the core's cache (:func:`pool_block`): the product is never written
  out;
* backward: lays dY's block out from g and the argmax (:func:`pooled_grad_block`),
  batch-innermost as the products want it, adds its row sums to the bias gradient, then
  runs the small-map convolution's backward on it (weight gradient, and input gradient
  where asked).

From the same products, the pool's values and argmax, and dY, are the separate ops' bit
for bit: the bias is added before the compares (as the convolution's output holds it),
the tournament is :mod:`.pool`'s, compare for compare (NaN and ties alike), and the
gradient ``v = g·[z > 0]`` goes to the argmax and ``v·0`` elsewhere, as :mod:`.pool`'s
backward routes it. The loops run over the block's images innermost, contiguous in the
product and in dY's block, so they vectorise.

Measured there (forward + backward of the layer against the two ops, medians of 7
alternated runs): SimpleCNN's N64 1->16 8x8 layer 270 -> 190 µs, its N64 16->32 4x4 layer
503 -> 385 µs, the training step 1,232 -> 992 µs; on larger maps the convolution's own
routes win, hence :data:`tinynet.functional.conv_pool.MAX_PIXELS`.
"""
import numba
import numpy as np

from . import kernel
from .flat_rows import block_col2im, block_columns, weight_partial
from .native import address_to_pointer, gemm, NO_TRANS, piece_range, table_piece
from .pool import relu_gradient_if, relu_if, tile_max


@kernel
def pool_block(y, bias, has_bias, z, argmax, n0):
    """``y`` (C_out, Ho, Wo, B): a block's product, batch-innermost, without its bias;
    writes images n0..n0+B of ``z`` and ``argmax`` (N, C_out, Ho/2, Wo/2): ReLU of each
    2x2 tile's maximum of ``y + bias`` and the tile's argmax (0..3, row-major), by
    :mod:`.pool`'s tournament (:func:`.pool.tile_max`)."""
    C_out, Ho, Wo, B = y.shape
    zero = y.dtype.type(0)
    for c in range(C_out):
        b = bias[c]
        for i in range(Ho // 2):
            for j in range(Wo // 2):
                ra, rb = y[c, 2 * i, 2 * j], y[c, 2 * i, 2 * j + 1]
                rc, re = y[c, 2 * i + 1, 2 * j], y[c, 2 * i + 1, 2 * j + 1]
                out, where = z[n0:n0 + B, c, i, j], argmax[n0:n0 + B, c, i, j]
                for m in range(B):
                    if has_bias:        # (without one the values as they are: + 0 makes -0 +0)
                        v, where[m] = tile_max(ra[m] + b, rb[m] + b, rc[m] + b, re[m] + b)
                    else:
                        v, where[m] = tile_max(ra[m], rb[m], rc[m], re[m])
                    out[m] = relu_if(v, True, zero)


@kernel
def pooled_grad_block(g, z, argmax, n0, dy):
    """dY's block, batch-innermost: ``dy`` (C_out, Ho, Wo, B) from the pooled gradient
    ``g``, output ``z`` and ``argmax`` (N, C_out, Ho/2, Wo/2) of images n0..n0+B: each
    tile's ``v = g·[z > 0]`` at its argmax, ``v·0`` at its other three values."""
    C_out, Ho, Wo, B = dy.shape
    zero = dy.dtype.type(0)
    for c in range(C_out):
        for i in range(Ho // 2):
            for j in range(Wo // 2):
                gs, zs, where = g[n0:n0 + B, c, i, j], z[n0:n0 + B, c, i, j], argmax[n0:n0 + B, c, i, j]
                for r in range(2):
                    for s in range(2):
                        row, o = dy[c, 2 * i + r, 2 * j + s], np.int8(2 * r + s)
                        for m in range(B):
                            v = relu_gradient_if(gs[m], zs[m], True)
                            row[m] = v if where[m] == o else v * zero


@table_piece
def forward_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces``: its images ``block`` at a time, their columns, the
    product and :func:`pool_block`. Table ``b``: the integer parameters ``N, C, H, W,
    C_out, kh, kw, ph, pw, dh, dw, K, has_bias, gemm, ilp64, Ho, Wo, block`` (K = C·kh·kw),
    then x (N, C, H, W), w (C_out, K), the bias (C_out,), z (N, C_out, Ho/2, Wo/2),
    argmax (int8, as z), the pieces' columns (pieces, K·block·Ho·Wo) and products
    (pieces, C_out·block·Ho·Wo)."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (18,))
    N, C, H, W, C_out, kh, kw = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    ph, pw, dh, dw, K, has_bias, function, ilp64 = p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]
    Ho, Wo, block = p[15], p[16], p[17]
    P = Ho * Wo
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C, H, W))
    bias = numba.carray(address_to_pointer(b[3], numba.float32), (C_out,))
    z = numba.carray(address_to_pointer(b[4], numba.float32), (N, C_out, Ho // 2, Wo // 2))
    argmax = numba.carray(address_to_pointer(b[5], numba.int8), (N, C_out, Ho // 2, Wo // 2))
    cols = numba.carray(address_to_pointer(b[6], numba.float32), (pieces, K * block * P))[k]
    ys = numba.carray(address_to_pointer(b[7], numba.float32), (pieces, C_out * block * P))[k]
    lo, hi = piece_range(k, pieces, N)
    for n0 in range(lo, hi, block):
        n1 = min(hi, n0 + block)
        M = (n1 - n0) * P
        col = cols[:K * M].reshape((K, M))
        block_columns(x, n0, n1, col, kh, kw, 1, 1, ph, pw, dh, dw, Ho, Wo)
        gemm(function, ilp64, NO_TRANS, NO_TRANS, C_out, M, K, np.float32(1), b[2], K,
             col.ctypes.data, M, np.float32(0), ys.ctypes.data, M)
        pool_block(ys[:C_out * M].reshape((C_out, Ho, Wo, n1 - n0)), bias, has_bias != 0, z, argmax, n0)


@table_piece
def backward_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of the backward, ``block`` images at a time: dY's
    block (:func:`pooled_grad_block`), its row sums into the piece's bias partial, the
    block's columns of x and the weight gradient's partial ``partial[k] (K, C_out) += col
    @ dY blockᵀ``, then, where ``input_grad``, ``col = Wᵀ @ dY block`` in the same buffer
    and its col2im into the block's dx. Table ``b``: the integer parameters ``N, C, H, W,
    C_out, kh, kw, ph, pw, dh, dw, K, gemm, ilp64, narrow_max_out, Ho, Wo, block,
    input_grad``, then x (N, C, H, W), g, z (N, C_out, Ho/2, Wo/2), argmax (int8, as z),
    w (C_out, K), the pieces' weight partials (pieces, K, C_out) and bias partials
    (pieces, C_out) (zeros), dx (N, C, H, W; read only where ``input_grad``) and the
    pieces' buffers for the columns (pieces, K·block·Ho·Wo) and the dY blocks (pieces,
    C_out·block·Ho·Wo)."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (19,))
    N, C, H, W, C_out, kh, kw = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    ph, pw, dh, dw, K, function, ilp64, narrow_max_out = p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]
    Ho, Wo, block, input_grad = p[15], p[16], p[17], p[18]
    P = Ho * Wo
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C, H, W))
    g = numba.carray(address_to_pointer(b[2], numba.float32), (N, C_out, Ho // 2, Wo // 2))
    z = numba.carray(address_to_pointer(b[3], numba.float32), (N, C_out, Ho // 2, Wo // 2))
    argmax = numba.carray(address_to_pointer(b[4], numba.int8), (N, C_out, Ho // 2, Wo // 2))
    part = numba.carray(address_to_pointer(b[6], numba.float32), (pieces, K, C_out))[k]
    bias_part = numba.carray(address_to_pointer(b[7], numba.float32), (pieces, C_out))[k]
    dx = numba.carray(address_to_pointer(b[8], numba.float32), (N, C, H, W))
    cols = numba.carray(address_to_pointer(b[9], numba.float32), (pieces, K * block * P))[k]
    gs = numba.carray(address_to_pointer(b[10], numba.float32), (pieces, C_out * block * P))[k]
    lo, hi = piece_range(k, pieces, N)
    for n0 in range(lo, hi, block):
        n1 = min(hi, n0 + block)
        M = (n1 - n0) * P
        dy = gs[:C_out * M].reshape((C_out, M))
        pooled_grad_block(g, z, argmax, n0, dy.reshape((C_out, Ho, Wo, n1 - n0)))
        for c in range(C_out):
            s = bias_part.dtype.type(0)
            for q in range(M):
                s += dy[c, q]
            bias_part[c] += s
        col = cols[:K * M].reshape((K, M))
        block_columns(x, n0, n1, col, kh, kw, 1, 1, ph, pw, dh, dw, Ho, Wo)
        weight_partial(col, dy, part, narrow_max_out, function, ilp64)
        if input_grad:
            block_col2im(b[5], dy, col, dx[n0:n1], kh, kw, Ho, Wo, 1, 1, ph, pw, dh, dw, function, ilp64)
