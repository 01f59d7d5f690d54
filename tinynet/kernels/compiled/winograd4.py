"""Compiled transforms of Winograd F(4x4, 3x3) (:mod:`tinynet.kernels.winograd`, "F(4x4,
3x3)"): the per-tile linear maps around its 36 GEMMs. They mirror F(2x2, 3x3)'s
(:mod:`.winograd`) with a 6x6 input tile every 4 pixels and a 4x4 output tile.

Shapes (one block: ``n`` images from ``n0``, ``tb`` tile rows from ``t0``, all ``tw``
tile columns; tile (t, s) covers input rows 4t - ph .. 4t - ph + 5 and columns
4s - pw .. 4s - pw + 5, output rows 4t .. 4t + 3 and columns 4s .. 4s + 3):

* :func:`input_tiles`: x (N, C, H, W) -> v (36, C, n, tb, tw), ``V = Bᵀ d B`` per 6x6
  tile d (values outside the image read as zero: the padding);
* :func:`output_tiles`: m (36, C_out, n, tb, tw) -> out (N, C_out, Ho, Wo),
  ``Y = Aᵀ M A + b`` per tile, the rows and columns past Ho, Wo left out;
* :func:`output_tiles_adjoint`: dy (N, C_out, Ho, Wo) -> dm (36, C_out, n, tb, tw),
  ``dM = A dY Aᵀ`` per tile, dY zero past Ho, Wo (the weight gradient).

Position ``k = 6ξ + ν`` of the transformed tile comes first, so ``v[k]`` is the (C, P)
operand of ``M[k] = U[k] (C_out, C) @ V[k] (C, P)`` and ``m[k]`` its (C_out, P) result.

The matrices (interpolation points 0, 1, -1, 1/2, -2 and ∞; the module
:mod:`tinynet.kernels.winograd` derives them), as the loops below apply them to one
column d_0..d_5 of a tile and to one column m_0..m_5 of M:

    Bᵀ d:  d_0 - 3/2 d_1 - 2 d_2 + 3/2 d_3 + d_4        Aᵀ m:  m_0 + m_1 + m_2 + m_3 + m_4
           -d_1 + 1/2 d_2 + 5/2 d_3 + d_4                      m_1 - m_2 + 1/2 m_3 - 2 m_4
           d_1 - 5/2 d_2 + 1/2 d_3 + d_4                       m_1 + m_2 + 1/4 m_3 + 4 m_4
           -2 d_1 - d_2 + 2 d_3 + d_4                          m_1 - m_2 + 1/8 m_3 - 8 m_4 + m_5
           1/2 d_1 - d_2 - 1/2 d_3 + d_4
           d_1 - 3/2 d_2 - 2 d_3 + 3/2 d_4 + d_5

and A, for the weight gradient, maps a column (d_0..d_3) of dY to (d_0, d_0 + d_1 + d_2 +
d_3, d_0 - d_1 + d_2 - d_3, d_0 + d_1/2 + d_2/4 + d_3/8, d_0 - 2 d_1 + 4 d_2 - 8 d_3, d_3).
Every coefficient is a power of two or a sum of two (exact in floating point). The loops
are those of :mod:`.winograd`: the six input rows of one tile row are read once from NCHW
into a small zero-padded row buffer, Bᵀ's rows combine them there, and the column
combinations are written once into V's 36 planes; the output transform reads the 36
planes of one tile, combines them in registers and writes its up to 16 outputs (plus
bias) in NCHW.
"""
import numpy as np

from . import kernel, unsigned as _u


@kernel
def load_rows(image, top, pw, rows):
    """rows[r, pw:pw + W] = image[top + r] for each row r of ``rows``, zeros for the rows
    outside the image (H, W); the columns outside stay as they are (zero: the padding).
    The tile rows' loader of both Winograd variants (:mod:`.winograd` imports it). Its
    indices are unsigned (``_u``): with ``pw + col`` signed, the copy did not vectorise,
    and both input transforms took 1.15-1.3x their time (U-Net shapes, one thread)."""
    H, W = image.shape
    for r in range(rows.shape[0]):
        y = top + r
        if 0 <= y < H:
            for col in range(W):
                rows[r, _u(pw + col)] = image[_u(y), col]
        else:
            for col in range(W):
                rows[r, _u(pw + col)] = 0


@kernel
def _b_t(d0, d1, d2, d3, d4, d5, half, two, one_half, two_half):
    """Bᵀ applied to one column (d_0..d_5): its six values."""
    return (d0 - one_half * d1 - two * d2 + one_half * d3 + d4,
            half * d2 - d1 + two_half * d3 + d4,
            d1 - two_half * d2 + half * d3 + d4,
            two * (d3 - d1) - d2 + d4,
            half * (d1 - d3) - d2 + d4,
            d1 - one_half * d2 - two * d3 + one_half * d4 + d5)


@kernel
def input_tiles(x, n0, t0, ph, pw, v):
    """v[6ξ + ν, c, i, tl, s] = (Bᵀ d B)[ξ, ν] for the tile d of image n0 + i, channel c,
    tile row t0 + tl, tile column s; x (N, C, H, W), v (36, C, n, tb, tw)."""
    C = x.shape[1]
    n, tb, tw = v.shape[2], v.shape[3], v.shape[4]
    t = x.dtype.type
    half, two, one_half, two_half = t(0.5), t(2), t(1.5), t(2.5)
    wp = 4 * tw + 2                               # columns the tiles read, padding included
    rows = np.zeros((6, wp), dtype=x.dtype)       # d_0..d_5 of one tile row, zero outside
    comb = np.empty((6, wp), dtype=x.dtype)       # Bᵀ's rows applied: Bᵀ d
    for c in range(C):
        for i in range(n):
            image = x[n0 + i, c]
            for tl in range(tb):
                load_rows(image, 4 * (t0 + tl) - ph, pw, rows)
                for col in range(wp):
                    comb[0, col], comb[1, col], comb[2, col], comb[3, col], comb[4, col], comb[5, col] = _b_t(
                        rows[0, col], rows[1, col], rows[2, col], rows[3, col], rows[4, col], rows[5, col],
                        half, two, one_half, two_half)
                for a in range(6):
                    for s in range(tw):
                        q = 4 * s
                        _put(v, a, c, i, tl, s, *_b_t(comb[a, q], comb[a, q + 1], comb[a, q + 2], comb[a, q + 3],
                                                      comb[a, q + 4], comb[a, q + 5], half, two, one_half, two_half))
    return v


@kernel
def _put(planes, a, c, i, tl, s, e0, e1, e2, e3, e4, e5):
    """planes[6a + b, c, i, tl, s] = e_b for b = 0..5: one row ξ = a of a transformed tile."""
    planes[6 * a, c, i, tl, s] = e0
    planes[6 * a + 1, c, i, tl, s] = e1
    planes[6 * a + 2, c, i, tl, s] = e2
    planes[6 * a + 3, c, i, tl, s] = e3
    planes[6 * a + 4, c, i, tl, s] = e4
    planes[6 * a + 5, c, i, tl, s] = e5


@kernel
def _a_t(m0, m1, m2, m3, m4, m5, half, quarter, eighth, two, four, eight):
    """Aᵀ applied to one column (m_0..m_5): its four values."""
    plus, minus = m1 + m2, m1 - m2
    return (m0 + plus + m3 + m4,
            minus + half * m3 - two * m4,
            plus + quarter * m3 + four * m4,
            minus + eighth * m3 - eight * m4 + m5)


@kernel
def output_tiles(m, bias, has_bias, n0, t0, out):
    """out[n0 + i, o, 4(t0 + tl) + α, 4s + β] = (Aᵀ M A)[α, β] + bias[o] for every tile of
    m (36, C_out, n, tb, tw) (bias (C_out,) not read unless ``has_bias``; without, any
    array of the dtype), inside out (N, C_out, Ho, Wo)."""
    C_out, n, tb, tw = m.shape[1], m.shape[2], m.shape[3], m.shape[4]
    Ho, Wo = out.shape[2], out.shape[3]
    t = m.dtype.type
    half, quarter, eighth, two, four, eight = t(0.5), t(0.25), t(0.125), t(2), t(4), t(8)
    q = np.empty((4, 6, tw), dtype=m.dtype)      # Aᵀ M of one tile row: Aᵀ's rows over ξ
    whole = Wo // 4                               # tiles whose four columns are all inside
    for o in range(C_out):
        b = bias[o] if has_bias else t(0)
        for i in range(n):
            image = out[n0 + i, o]
            for tl in range(tb):
                y = 4 * (t0 + tl)
                for nu in range(6):
                    for s in range(tw):
                        q[0, nu, s], q[1, nu, s], q[2, nu, s], q[3, nu, s] = _a_t(
                            m[nu, o, i, tl, s], m[6 + nu, o, i, tl, s], m[12 + nu, o, i, tl, s],
                            m[18 + nu, o, i, tl, s], m[24 + nu, o, i, tl, s], m[30 + nu, o, i, tl, s],
                            half, quarter, eighth, two, four, eight)
                for a in range(min(4, Ho - y)):       # the last tile row may be cropped
                    row = image[y + a]
                    for s in range(whole):
                        r0, r1, r2, r3 = _a_t(q[a, 0, s], q[a, 1, s], q[a, 2, s], q[a, 3, s], q[a, 4, s],
                                              q[a, 5, s], half, quarter, eighth, two, four, eight)
                        x0 = 4 * s
                        row[x0], row[x0 + 1], row[x0 + 2], row[x0 + 3] = r0 + b, r1 + b, r2 + b, r3 + b
                    if whole < tw:                    # ... and the last tile column
                        s = whole
                        r0, r1, r2, r3 = _a_t(q[a, 0, s], q[a, 1, s], q[a, 2, s], q[a, 3, s], q[a, 4, s],
                                              q[a, 5, s], half, quarter, eighth, two, four, eight)
                        x0 = 4 * s
                        row[x0] = r0 + b
                        if x0 + 1 < Wo:
                            row[x0 + 1] = r1 + b
                        if x0 + 2 < Wo:
                            row[x0 + 2] = r2 + b
    return out


@kernel
def _a(d0, d1, d2, d3, half, quarter, eighth, two, four, eight):
    """A = Aᵀᵀ applied to one column (d_0..d_3) of an output tile: its six values."""
    even, odd = d0 + d2, d1 + d3
    return (d0, even + odd, even - odd, d0 + half * d1 + quarter * d2 + eighth * d3,
            d0 - two * d1 + four * d2 - eight * d3, d3)


@kernel
def output_tiles_adjoint(dy, n0, t0, dm):
    """dm[6ξ + ν, o, i, tl, s] = (A dY Aᵀ)[ξ, ν] for the 4x4 tile dY of dy (N, C_out, Ho, Wo)
    at image n0 + i, channel o, rows 4(t0 + tl) + (0..3), columns 4s + (0..3), zero past
    Ho, Wo; dm (36, C_out, n, tb, tw). A first along the rows, then the columns."""
    _, C_out, Ho, Wo = dy.shape
    n, tb, tw = dm.shape[2], dm.shape[3], dm.shape[4]
    t = dy.dtype.type
    half, quarter, eighth, two, four, eight = t(0.5), t(0.25), t(0.125), t(2), t(4), t(8)
    rows = np.zeros((4, 4 * tw), dtype=dy.dtype)  # the four dY rows of one tile row, zero past Wo
    comb = np.empty((6, 4 * tw), dtype=dy.dtype)  # A applied along the rows
    for o in range(C_out):
        for i in range(n):
            image = dy[n0 + i, o]
            for tl in range(tb):
                y = 4 * (t0 + tl)
                for r in range(4):
                    if y + r < Ho:
                        for col in range(Wo):
                            rows[r, col] = image[y + r, col]
                    else:
                        for col in range(Wo):
                            rows[r, col] = 0
                for col in range(4 * tw):
                    comb[0, col], comb[1, col], comb[2, col], comb[3, col], comb[4, col], comb[5, col] = _a(
                        rows[0, col], rows[1, col], rows[2, col], rows[3, col],
                        half, quarter, eighth, two, four, eight)
                for a in range(6):
                    for s in range(tw):
                        q = 4 * s
                        _put(dm, a, o, i, tl, s, *_a(comb[a, q], comb[a, q + 1], comb[a, q + 2], comb[a, q + 3],
                                                     half, quarter, eighth, two, four, eight))
    return dm
