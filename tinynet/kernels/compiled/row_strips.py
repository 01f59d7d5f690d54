"""Row strips' copies and products, compiled: one call a block for each step.

Layout and notation are :mod:`tinynet.kernels.row_strips`'s. The NumPy route builds a
block's strips with a dozen or more slice copies and zero fills (a few per column shift
``j``) and sums the stacked product's ``kh`` shifted row blocks with ``kh`` additions on
strided views. Each of those calls takes and releases the GIL, and the row-strip
convolutions run their blocks on two threads side by side: on the twenty-ninth
session's Intel guest, where a GIL hand-over between cores costs tens of microseconds,
one image's strips took 61 µs alone and ~280 µs with the other thread's block running,
and two single-image forwards (N2 16->16 128x128) in two threads took longer than one
after the other. Compiled, each is one call that releases the GIL for its whole pass.

``strip_block(xs, buffer, Hp, ph, pw, dw, row0, rows)``, for the images ``xs`` (k, C, H,
W) of a block::

    buffer[c, j, r·W + w] = xs[m, c, h, w + j·dw - pw]   where row0 + r = m·Hp + ph + h,
                                                          0 <= h < H, 0 <= w + j·dw - pw < W
                          = 0                           elsewhere (padding rows, the rows
                                                          past the last image, and the
                                                          columns a shift moves across a
                                                          row's edge)

``strip_sums(z, out, n0, k, r0, rows, per_image, dh, W, bias)``, for the stacked product ``z
= [W_0; …; W_{kh-1}] @ S`` ``(kh·C_out, L)``, adds the kh row blocks, block ``i`` read
``i·dh`` grid rows further on, into ``out[n0 + m, :, r0 + r, :]`` ``(Wo values)``::

    out[n0 + m, o, r0 + r, w] = Σ_i z[i·C_out + o, (m·per_image + r + i·dh)·W + w] + bias[o]

for the block's ``k`` images and ``rows`` output rows (``per_image``: the grid rows from
one image's first output row to the next's, ``Hp``; for a band of one image, unused).
"""
import numba

from . import kernel
from .narrow import narrow_products
from .native import NO_TRANS, TRANS, address_to_pointer, gemm, piece_range, table_piece


@kernel
def strip_block(xs, buffer, Hp, ph, pw, dw, row0, rows):
    """Fills ``buffer[:, :, :rows·W]`` (C, kw, >= rows·W) with the strips of grid rows
    ``row0 .. row0 + rows`` of the images ``xs`` (see the module docstring)."""
    k, C, H, W = xs.shape
    kw = buffer.shape[1]
    for c in range(C):
        for j in range(kw):
            shift = j * dw - pw
            lo, hi = max(0, -shift), min(W, W - shift)      # columns that read a pixel
            for r in range(rows):
                g = row0 + r
                m = g // Hp
                h = g - m * Hp - ph
                row = buffer[c, j, r * W:(r + 1) * W]
                if m < k and 0 <= h < H:
                    source = xs[m, c, h]
                    for w in range(lo):
                        row[w] = 0
                    inner = row[lo:hi]
                    shifted = source[lo + shift:hi + shift]
                    for w in range(hi - lo):
                        inner[w] = shifted[w]
                    for w in range(hi, W):
                        row[w] = 0
                else:
                    for w in range(W):
                        row[w] = 0


@kernel
def strip_sums(z, out, n0, k, r0, rows, per_image, dh, W, bias):
    """``out[n0:n0+k, :, r0:r0+rows, :]`` := the sum of ``z``'s kh shifted row blocks
    plus ``bias`` ``(C_out,)``; see the module docstring."""
    C_out, Wo = out.shape[1], out.shape[3]
    kh = z.shape[0] // C_out
    for m in range(k):
        for o in range(C_out):
            for r in range(rows):
                target = out[n0 + m, o, r0 + r]
                start = (m * per_image + r) * W
                first = z[o, start:start + Wo]
                b = bias[o]
                for w in range(Wo):
                    target[w] = first[w] + b
                for i in range(1, kh):
                    part = z[i * C_out + o, start + i * dh * W:start + i * dh * W + Wo]
                    for w in range(Wo):
                        target[w] += part[w]


@kernel
def weight_products(function, ilp64, strips, g, g_offset, P, dw_t, step, narrow_max_out):
    """``dw_t[i] += S_(i) @ gᵀ`` for the kernel rows i (the weight gradient's products of
    a block): ``S_(i)`` = ``strips[:, i·step : i·step + P]``, the strips (C·kw, ·) read
    from column ``i·step`` on; ``g[:, g_offset : g_offset + P]`` the block's output
    gradient on its grid (C_out, ·); ``dw_t`` (kh, C·kw, C_out); all C-contiguous. With
    at most ``narrow_max_out`` output channels (the caller passes
    :data:`.narrow.NARROW_MAX_OUT`) each product is :func:`.narrow.narrow_products`;
    otherwise a GEMM of NumPy's BLAS that adds into ``dw_t[i]``
    itself (β = 1), called through the address ``function`` (:func:`.native.gemm`). The
    block's kh products in one call, without the GIL."""
    rows, C_out = strips.shape[0], g.shape[0]
    size = strips.itemsize
    one = dw_t.dtype.type(1)
    for i in range(dw_t.shape[0]):
        if C_out <= narrow_max_out:
            narrow_products(strips, i * step, g, g_offset, P, dw_t[i])
        else:
            gemm(function, ilp64, NO_TRANS, TRANS, rows, C_out, P, one,
                 strips.ctypes.data + i * step * size, strips.shape[1],
                 g.ctypes.data + g_offset * size, g.shape[1], one, dw_t[i].ctypes.data, C_out)


@kernel
def stacked_blocks(function, ilp64, x, w_rows, out, bias, first, last, images, band, Hp, reach,
                   ph, pw, dh, dw, buffer, z):
    """The stacked forward of the image groups ``first..last`` (a thread's share), every
    block in one call: its strips (:func:`strip_block` into ``buffer`` (C, kw, ·)), ``Z =
    [W_0; …; W_{kh-1}] @ S`` (``w_rows`` (kh·C_out, C·kw), one GEMM of NumPy's BLAS through
    ``function``, :func:`.native.gemm`, into the flat scratch ``z``) and the shifted sums
    with the bias into ``out`` (:func:`strip_sums`). The blocks are
    :func:`tinynet.kernels.row_strips.block_plan`'s: ``images`` whole images a block, or
    bands of ``band`` output rows of one image. The thread holds no GIL between blocks."""
    N, W = x.shape[0], x.shape[3]
    Ho = out.shape[2]
    M, K = w_rows.shape
    one, zero = w_rows.dtype.type(1), w_rows.dtype.type(0)
    for n0 in range(first * images, min(N, last * images), images):
        k = min(images, N - n0)
        for r0 in range(0, Ho, band):
            rows = min(band, Ho - r0)
            span = k * Hp if k > 1 or rows == Ho else rows
            L = (span + reach) * W
            strip_block(x[n0:n0 + k], buffer, Hp, ph, pw, dw, r0, span + reach)
            product = z[:M * L].reshape(M, L)
            gemm(function, ilp64, NO_TRANS, NO_TRANS, M, L, K, one, w_rows.ctypes.data, K,
                 buffer.ctypes.data, buffer.shape[2], zero, product.ctypes.data, L)
            strip_sums(product, out, n0, k, r0, rows, span // k, dh, W, bias)


@kernel
def weight_blocks(function, ilp64, x, dy, dw_t, first, last, images, band, Hp, reach, ph, pw,
                  dh, dw, buffer, grid, narrow_max_out):
    """The weight gradient of the image groups ``first..last`` (a thread's share), every
    block in one call: its strips (:func:`strip_block` into ``buffer`` (C, kw, ·)), the
    block's output gradient on its grid (for a band of one "same" image, ``dy``'s rows
    where they lie; otherwise copied into the flat scratch ``grid`` with zeros around
    it), and the kh products added into ``dw_t`` (kh, C·kw, C_out) by
    :func:`weight_products`. ``dy`` C-contiguous; blocks as in :func:`stacked_blocks`."""
    N, W = x.shape[0], x.shape[3]
    C_out, Ho, Wo = dy.shape[1], dy.shape[2], dy.shape[3]
    strips = buffer.reshape(buffer.shape[0] * buffer.shape[1], buffer.shape[2])
    zero = dy.dtype.type(0)
    for n0 in range(first * images, min(N, last * images), images):
        k = min(images, N - n0)
        for r0 in range(0, Ho, band):
            rows = min(band, Ho - r0)
            span = k * Hp if k > 1 or rows == Ho else rows
            strip_block(x[n0:n0 + k], buffer, Hp, ph, pw, dw, r0, span + reach)
            if k == 1 and Wo == W:          # a band of one image's rows: dy is its own grid
                weight_products(function, ilp64, strips, dy[n0].reshape(C_out, Ho * W), r0 * W,
                                rows * W, dw_t, dh * W, narrow_max_out)
                continue
            per = span // k                 # grid rows a image
            g = grid[:C_out * span * W].reshape(C_out, span * W)
            for o in range(C_out):
                for m in range(k):
                    for r in range(per):
                        row = g[o, (m * per + r) * W:(m * per + r + 1) * W]
                        if r < rows:
                            source = dy[n0 + m, o, r0 + r]
                            for w in range(Wo):
                                row[w] = source[w]
                            for w in range(Wo, W):
                                row[w] = zero
                        else:
                            for w in range(W):
                                row[w] = zero
            weight_products(function, ilp64, strips, g, 0, span * W, dw_t, dh * W, narrow_max_out)


@table_piece
def stacked_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of a float32 stacked forward as a native job: its image groups'
    :func:`stacked_blocks`, without the GIL. Table ``b``: the integer parameters ``N, C, H,
    W, C_out, Ho, Wo, kh, kw, groups, images, band, Hp, reach, ph, pw, dh, dw, strip_rows,
    gemm, ilp64``, then x (N, C, H, W), w_rows (kh·C_out, C·kw), out, bias (C_out,), and
    each piece's strip buffer and product scratch."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (21,))
    N, C, H, W, C_out, Ho, Wo, kh, kw = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
    groups, images, band, Hp, reach = p[9], p[10], p[11], p[12], p[13]
    ph, pw, dh, dw, strip_rows, function, ilp64 = p[14], p[15], p[16], p[17], p[18], p[19], p[20]
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C, H, W))
    w_rows = numba.carray(address_to_pointer(b[2], numba.float32), (kh * C_out, C * kw))
    out = numba.carray(address_to_pointer(b[3], numba.float32), (N, C_out, Ho, Wo))
    bias = numba.carray(address_to_pointer(b[4], numba.float32), (C_out,))
    buffer = numba.carray(address_to_pointer(b[5], numba.float32), (pieces, C, kw, strip_rows * W))[k]
    z = numba.carray(address_to_pointer(b[6], numba.float32), (pieces, kh * C_out * strip_rows * W))[k]
    first, last = piece_range(k, pieces, groups)
    stacked_blocks(function, ilp64, x, w_rows, out, bias, first, last, images, band, Hp, reach,
                   ph, pw, dh, dw, buffer, z)


@table_piece
def weight_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of a float32 weight gradient as a native job: its image groups'
    :func:`weight_blocks` into its own partial ``dw_t``, without the GIL. Table ``b``: the
    integer parameters ``N, C, H, W, C_out, Ho, Wo, kh, kw, groups, images, band, Hp,
    reach, ph, pw, dh, dw, strip_rows, span, gemm, ilp64, narrow_max_out``, then x, dy
    (N, C_out, Ho, Wo), the pieces' partials (pieces, kh, C·kw, C_out) (zeros), strip
    buffers and grids."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (23,))
    N, C, H, W, C_out, Ho, Wo, kh, kw = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
    groups, images, band, Hp, reach = p[9], p[10], p[11], p[12], p[13]
    ph, pw, dh, dw, strip_rows, span = p[14], p[15], p[16], p[17], p[18], p[19]
    function, ilp64, narrow_max_out = p[20], p[21], p[22]
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C, H, W))
    dy = numba.carray(address_to_pointer(b[2], numba.float32), (N, C_out, Ho, Wo))
    dw_t = numba.carray(address_to_pointer(b[3], numba.float32), (pieces, kh, C * kw, C_out))
    buffer = numba.carray(address_to_pointer(b[4], numba.float32), (pieces, C, kw, strip_rows * W))[k]
    grid = numba.carray(address_to_pointer(b[5], numba.float32), (pieces, C_out * span * W))[k]
    first, last = piece_range(k, pieces, groups)
    weight_blocks(function, ilp64, x, dy, dw_t[k], first, last, images, band, Hp, reach, ph, pw,
                  dh, dw, buffer, grid, narrow_max_out)
