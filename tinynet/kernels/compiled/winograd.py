"""Compiled transforms of Winograd F(2x2, 3x3) (:mod:`tinynet.kernels.winograd`): the
per-tile linear maps around the 16 GEMMs, each one pass over memory. The GEMMs stay in
BLAS; these kernels only feed them and read them back.

Shapes (one block: ``n`` images from ``n0``, ``tb`` tile rows from ``t0``, all ``tw``
tile columns; tile (t, s) covers input rows 2t - ph .. 2t - ph + 3 and columns
2s - pw .. 2s - pw + 3, output rows 2t, 2t + 1 and columns 2s, 2s + 1):

* :func:`input_tiles`: x (N, C, H, W) -> v (16, C, n, tb, tw), ``V = Bᵀ d B`` per 4x4
  tile d (values outside the image read as zero: the padding);
* :func:`output_tiles`: m (16, C_out, n, tb, tw) -> out (N, C_out, Ho, Wo),
  ``Y = Aᵀ M A + b`` per tile, the rows and columns past Ho, Wo left out;
* :func:`output_tiles_adjoint`: dy (N, C_out, Ho, Wo) -> dm (16, C_out, n, tb, tw),
  ``dM = A dY Aᵀ`` per tile, dY zero past Ho, Wo (the weight gradient).

Position ``k = 4ξ + ν`` of the transformed tile comes first, so ``v[k]`` is the (C, P)
operand of ``M[k] = U[k] (C_out, C) @ V[k] (C, P)``, P = n·tb·tw, and ``m[k]`` the
(C_out, P) result, both C-contiguous: no copy between a transform and its GEMM. The
input gradient is a convolution too (flipped filters, padding 2 - p) and uses the first
two.

Why this is faster than the NumPy route. There a transform is a chain of whole-array
passes: a transposing copy of the images into a zero-padded channels-last grid, four
row combinations, sixteen column combinations into V, and on the way back two partial
sums, four column combinations, a transposing copy into NCHW and the bias (the last two
fused on BLAS). Each pass reads and writes an array the size of V or M (4x the images,
4x the output), so on a 64-channel layer the transforms and copies took about half the
thread time. Here the loops run per (channel, image, tile row): the four input rows of
one tile row are read once, straight from NCHW (rows outside the image and the side
padding are zeros of a small row buffer, so no padded copy exists), their Bᵀ row
combinations stay in that L1-sized buffer, and the column combinations are written
once into V's 16 planes; the output transform reads the 16 planes of one tile row,
combines in registers and writes the two output rows (plus bias) once, in NCHW.

The kernels are serial: the caller runs groups of images side by side on tinynet's
threads (one group's transform, GEMMs and output transform while its block is in cache).
"""
import numba
import numpy as np

from . import kernel, winograd4
from .winograd4 import load_rows
from .native import NO_TRANS, TRANS, address_to_pointer, gemm, piece_range, table_piece


@kernel
def input_tiles(x, n0, t0, ph, pw, v):
    """v[4ξ + ν, c, i, tl, s] = (Bᵀ d B)[ξ, ν] for the tile d of image n0 + i, channel c,
    tile row t0 + tl, tile column s; x (N, C, H, W), v (16, C, n, tb, tw)."""
    C = x.shape[1]
    n, tb, tw = v.shape[2], v.shape[3], v.shape[4]
    wp = 2 * tw + 2                               # columns the tiles read, padding included
    rows = np.zeros((4, wp), dtype=x.dtype)       # d_0..d_3 of one tile row, zero outside
    comb = np.empty((4, wp), dtype=x.dtype)       # Bᵀ's rows applied: Bᵀ d
    for c in range(C):
        for i in range(n):
            image = x[n0 + i, c]
            for tl in range(tb):
                load_rows(image, 2 * (t0 + tl) - ph, pw, rows)
                for col in range(wp):
                    d0, d1, d2, d3 = rows[0, col], rows[1, col], rows[2, col], rows[3, col]
                    comb[0, col] = d0 - d2
                    comb[1, col] = d1 + d2
                    comb[2, col] = d2 - d1
                    comb[3, col] = d1 - d3
                for a in range(4):
                    for s in range(tw):
                        e0, e1 = comb[a, 2 * s], comb[a, 2 * s + 1]
                        e2, e3 = comb[a, 2 * s + 2], comb[a, 2 * s + 3]
                        v[4 * a, c, i, tl, s] = e0 - e2
                        v[4 * a + 1, c, i, tl, s] = e1 + e2
                        v[4 * a + 2, c, i, tl, s] = e2 - e1
                        v[4 * a + 3, c, i, tl, s] = e1 - e3
    return v


@kernel
def any_input_tiles(tile, x, n0, t0, ph, pw, v):
    """:func:`input_tiles` (``tile`` 2) or F(4x4, 3x3)'s (``tile`` 4, v with 36 planes), for
    the native pieces below, which take the tile as a parameter."""
    if tile == 4:
        return winograd4.input_tiles(x, n0, t0, ph, pw, v)
    return input_tiles(x, n0, t0, ph, pw, v)


@kernel
def output_tiles(m, bias, has_bias, n0, t0, out):
    """out[n0 + i, o, 2(t0 + tl) + α, 2s + β] = (Aᵀ M A)[α, β] + bias[o] for every tile of
    m (16, C_out, n, tb, tw) (bias (C_out,) not read unless ``has_bias``; without, any
    array of the dtype), inside out (N, C_out, Ho, Wo)."""
    C_out, n, tb, tw = m.shape[1], m.shape[2], m.shape[3], m.shape[4]
    Ho, Wo = out.shape[2], out.shape[3]
    pairs = Wo // 2                               # tiles whose two columns are both inside
    for o in range(C_out):
        b = bias[o] if has_bias else bias[0]
        for i in range(n):
            image = out[n0 + i, o]
            for tl in range(tb):
                y = 2 * (t0 + tl)
                for s in range(tw):
                    # Aᵀ's rows over ξ: s0 = M[0] + M[1] + M[2], s1 = M[1] - M[2] - M[3]
                    p0 = m[0, o, i, tl, s] + m[4, o, i, tl, s] + m[8, o, i, tl, s]
                    p1 = m[1, o, i, tl, s] + m[5, o, i, tl, s] + m[9, o, i, tl, s]
                    p2 = m[2, o, i, tl, s] + m[6, o, i, tl, s] + m[10, o, i, tl, s]
                    p3 = m[3, o, i, tl, s] + m[7, o, i, tl, s] + m[11, o, i, tl, s]
                    q0 = m[4, o, i, tl, s] - m[8, o, i, tl, s] - m[12, o, i, tl, s]
                    q1 = m[5, o, i, tl, s] - m[9, o, i, tl, s] - m[13, o, i, tl, s]
                    q2 = m[6, o, i, tl, s] - m[10, o, i, tl, s] - m[14, o, i, tl, s]
                    q3 = m[7, o, i, tl, s] - m[11, o, i, tl, s] - m[15, o, i, tl, s]
                    # ... then over ν
                    y00, y01 = p0 + p1 + p2, p1 - p2 - p3
                    y10, y11 = q0 + q1 + q2, q1 - q2 - q3
                    x0 = 2 * s
                    if has_bias:
                        y00, y01, y10, y11 = y00 + b, y01 + b, y10 + b, y11 + b
                    if s < pairs:
                        image[y, x0], image[y, x0 + 1] = y00, y01
                        if y + 1 < Ho:
                            image[y + 1, x0], image[y + 1, x0 + 1] = y10, y11
                    else:                         # odd Wo: the last tile's right column is cropped
                        image[y, x0] = y00
                        if y + 1 < Ho:
                            image[y + 1, x0] = y10
    return out


@kernel
def output_tiles_adjoint(dy, n0, t0, dm):
    """dm[4ξ + ν, o, i, tl, s] = (A dY Aᵀ)[ξ, ν] for the 2x2 tile dY of dy (N, C_out, Ho, Wo)
    at image n0 + i, channel o, rows 2(t0 + tl) + (0, 1), columns 2s + (0, 1), zero past
    Ho, Wo; dm (16, C_out, n, tb, tw). ``A`` maps a pair (d_0, d_1) to
    (d_0, d_0 + d_1, d_0 - d_1, -d_1), first along the rows, then the columns."""
    _, C_out, Ho, Wo = dy.shape
    n, tb, tw = dm.shape[2], dm.shape[3], dm.shape[4]
    rows = np.zeros((2, 2 * tw), dtype=dy.dtype)  # the two dY rows of one tile row, zero past Wo
    comb = np.empty((4, 2 * tw), dtype=dy.dtype)  # A applied along the rows
    for o in range(C_out):
        for i in range(n):
            image = dy[n0 + i, o]
            for tl in range(tb):
                y = 2 * (t0 + tl)
                for col in range(Wo):
                    rows[0, col] = image[y, col]
                if y + 1 < Ho:
                    for col in range(Wo):
                        rows[1, col] = image[y + 1, col]
                else:
                    for col in range(Wo):
                        rows[1, col] = 0
                for col in range(2 * tw):
                    d0, d1 = rows[0, col], rows[1, col]
                    comb[0, col] = d0
                    comb[1, col] = d0 + d1
                    comb[2, col] = d0 - d1
                    comb[3, col] = -d1
                for a in range(4):
                    for s in range(tw):
                        p, q = comb[a, 2 * s], comb[a, 2 * s + 1]
                        dm[4 * a, o, i, tl, s] = p
                        dm[4 * a + 1, o, i, tl, s] = p + q
                        dm[4 * a + 2, o, i, tl, s] = p - q
                        dm[4 * a + 3, o, i, tl, s] = -q
    return dm


@kernel
def add_products(function, ilp64, du, dm, v):
    """``du[k] += dm[k] @ v[k]ᵀ`` for the positions k (16, or 36 for F(4x4, 3x3); the weight
    gradient's products, ``dm`` (positions, C_out, P), ``v`` (positions, C, P), ``du``
    (positions, C_out, C), all C-contiguous), each
    a GEMM of NumPy's BLAS that adds its product in (β = 1), called through the address
    ``function`` (:func:`tinynet.kernels.compiled.native.gemm`): one call, and the GIL
    released, for all 16 (from Python they were 16 calls, each taking the GIL back while
    the other thread's block wanted it)."""
    C_out, P = dm.shape[1], dm.shape[2]
    C = v.shape[1]
    one = du.dtype.type(1)
    for k in range(dm.shape[0]):
        gemm(function, ilp64, NO_TRANS, TRANS, C_out, C, P, one, dm[k].ctypes.data, P,
             v[k].ctypes.data, P, one, du[k].ctypes.data, C)


@table_piece
def forward_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of a float32 forward (:func:`tinynet.kernels.winograd.
    _conv2d_compiled`) as a native job (:mod:`tinynet.blas_threads`): the images
    ``parallel_for`` would give it (consecutive ranges, the larger first), block by block
    V = Bᵀ d B, the GEMMs ``M[k] = U[k] @ V[k]`` (NumPy's BLAS through ``gemm``) and
    ``Y = Aᵀ M A + b``, without the GIL; F(2x2, 3x3) (16 positions) or, with ``tile`` 4,
    F(4x4, 3x3) (36, :mod:`.winograd4`). Table ``b``: the integer parameters ``N, C, H, W,
    C_out, Ho, Wo, th, tw, images, rows, ph, pw, has_bias, gemm, ilp64, u_transposed,
    tile``, then x (N, C, H, W), u (positions, C_out, C) or, with ``u_transposed``,
    (positions, C, C_out), out (N, C_out, Ho, Wo), bias, and each piece's V and M
    buffers."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (18,))
    N, C, H, W, C_out, Ho, Wo = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    th, tw, images, rows, ph, pw = p[7], p[8], p[9], p[10], p[11], p[12]
    has_bias, function, ilp64, u_transposed, tile = p[13], p[14], p[15], p[16], p[17]
    positions = (tile + 2) * (tile + 2)
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C, H, W))
    out = numba.carray(address_to_pointer(b[3], numba.float32), (N, C_out, Ho, Wo))
    bias = numba.carray(address_to_pointer(b[4], numba.float32), (max(C_out, 1),))
    tiles = images * min(rows, th) * tw
    v_mine = numba.carray(address_to_pointer(b[5], numba.float32), (pieces, positions * C * tiles))[k]
    m_mine = numba.carray(address_to_pointer(b[6], numba.float32), (pieces, positions * C_out * tiles))[k]
    lo, hi = piece_range(k, pieces, N)
    one, zero = np.float32(1), np.float32(0)
    for n0 in range(lo, hi, images):
        n = min(hi, n0 + images) - n0
        for t0 in range(0, th, rows):
            tb = min(rows, th - t0)
            P = n * tb * tw
            v = any_input_tiles(tile, x, n0, t0, ph, pw, v_mine[:positions * C * P].reshape(positions, C, n, tb, tw))
            m = m_mine[:positions * C_out * P].reshape(positions, C_out, P)
            for j in range(positions):     # M[j] (C_out, P) = U[j] (C_out, C) @ V[j] (C, P)
                if u_transposed:
                    gemm(function, ilp64, TRANS, NO_TRANS, C_out, P, C, one,
                         b[2] + 4 * j * C * C_out, C_out, v[j].ctypes.data, P, zero,
                         m[j].ctypes.data, P)
                else:
                    gemm(function, ilp64, NO_TRANS, NO_TRANS, C_out, P, C, one,
                         b[2] + 4 * j * C * C_out, C, v[j].ctypes.data, P, zero,
                         m[j].ctypes.data, P)
            if tile == 4:
                winograd4.output_tiles(m.reshape(positions, C_out, n, tb, tw), bias, has_bias, n0, t0, out)
            else:
                output_tiles(m.reshape(positions, C_out, n, tb, tw), bias, has_bias, n0, t0, out)


@table_piece
def weight_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of a float32 weight gradient
    (:func:`tinynet.kernels.winograd._weight_partials_compiled`) as a native job: the
    images ``parallel_for`` would give it, block by block V = Bᵀ d B, dM = A dY Aᵀ and
    ``dU[k] += dM[k] @ V[k]ᵀ`` into its own partial dU, without the GIL; F(2x2, 3x3) or,
    with ``tile`` 4, F(4x4, 3x3). Table ``b``: the integer parameters ``N, C, H, W, C_out,
    Ho, Wo, th, tw, images, rows, ph, pw, gemm, ilp64, tile``, then x (N, C, H, W), dy (N,
    C_out, Ho, Wo), the pieces' partials (pieces, positions, C_out, C) (zeros), and each
    piece's V and dM buffers."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (16,))
    N, C, H, W, C_out, Ho, Wo = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    th, tw, images, rows, ph, pw, function, ilp64 = p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]
    tile = p[15]
    positions = (tile + 2) * (tile + 2)
    x = numba.carray(address_to_pointer(b[1], numba.float32), (N, C, H, W))
    dy = numba.carray(address_to_pointer(b[2], numba.float32), (N, C_out, Ho, Wo))
    du = numba.carray(address_to_pointer(b[3], numba.float32), (pieces, positions, C_out, C))[k]
    tiles = images * min(rows, th) * tw
    v_mine = numba.carray(address_to_pointer(b[4], numba.float32), (pieces, positions * C * tiles))[k]
    dm_mine = numba.carray(address_to_pointer(b[5], numba.float32), (pieces, positions * C_out * tiles))[k]
    lo, hi = piece_range(k, pieces, N)
    for n0 in range(lo, hi, images):
        n = min(hi, n0 + images) - n0
        for t0 in range(0, th, rows):
            tb = min(rows, th - t0)
            P = n * tb * tw
            v = any_input_tiles(tile, x, n0, t0, ph, pw, v_mine[:positions * C * P].reshape(positions, C, n, tb, tw))
            dm = dm_mine[:positions * C_out * P].reshape(positions, C_out, n, tb, tw)
            if tile == 4:
                winograd4.output_tiles_adjoint(dy, n0, t0, dm)
            else:
                output_tiles_adjoint(dy, n0, t0, dm)
            add_products(function, ilp64, du, dm.reshape(positions, C_out, P), v.reshape(positions, C, P))
