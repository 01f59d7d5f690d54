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
from . import kernel
from .native import NO_TRANS, TRANS, gemm


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


#: Most output channels for which the weight gradient's products run as
#: :func:`narrow_products` rather than BLAS GEMMs (see there).
NARROW_MAX_OUT = 32
#: Columns (pixels) of the products' inner dimension per pass of :func:`narrow_products`:
#: 4 + 32 rows of 4 kB stay in L1.
NARROW_CHUNK = 1024


@kernel
def narrow_products(a, a_offset, b, b_offset, K, out):
    """``out (M, N) += a[:, a_offset:a_offset+K] @ b[:, b_offset:b_offset+K]ᵀ`` for
    C-contiguous ``a`` (M, ·) and ``b`` (N, ·): a product with a long inner dimension and
    a small output (M = C·kw strip rows, N = C_out <= 32, K a block's pixels), as 4x4
    blocks of dot products. Each block keeps its 16 sums in registers while it streams
    four rows of each operand (8 loads for 16 multiply-adds, vectorised along the pixels),
    over chunks of :data:`NARROW_CHUNK` pixels that stay in L1. OpenBLAS packs such a
    product's long operands for a tiny output: one thread measured 64-77 GFLOP/s on
    (48 x K)(K x 16) and (48 x K)(K x 32) where this runs 92-101 (twenty-ninth session's
    Intel guest; 111 against 113 at N = 64, so it stops at 32)."""
    M, N = a.shape[0], b.shape[0]
    zero = out.dtype.type(0)
    M4, N4 = M - M % 4, N - N % 4
    for k0 in range(0, K, NARROW_CHUNK):
        n = min(K, k0 + NARROW_CHUNK) - k0
        lo_a, lo_b = a_offset + k0, b_offset + k0
        for i in range(0, M4, 4):
            a0, a1 = a[i, lo_a:lo_a + n], a[i + 1, lo_a:lo_a + n]
            a2, a3 = a[i + 2, lo_a:lo_a + n], a[i + 3, lo_a:lo_a + n]
            for j in range(0, N4, 4):
                b0, b1 = b[j, lo_b:lo_b + n], b[j + 1, lo_b:lo_b + n]
                b2, b3 = b[j + 2, lo_b:lo_b + n], b[j + 3, lo_b:lo_b + n]
                s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
                s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
                for p in range(n):
                    x0, x1, x2, x3 = a0[p], a1[p], a2[p], a3[p]
                    y0, y1, y2, y3 = b0[p], b1[p], b2[p], b3[p]
                    s00 += x0 * y0
                    s01 += x0 * y1
                    s02 += x0 * y2
                    s03 += x0 * y3
                    s10 += x1 * y0
                    s11 += x1 * y1
                    s12 += x1 * y2
                    s13 += x1 * y3
                    s20 += x2 * y0
                    s21 += x2 * y1
                    s22 += x2 * y2
                    s23 += x2 * y3
                    s30 += x3 * y0
                    s31 += x3 * y1
                    s32 += x3 * y2
                    s33 += x3 * y3
                out[i, j] += s00
                out[i, j + 1] += s01
                out[i, j + 2] += s02
                out[i, j + 3] += s03
                out[i + 1, j] += s10
                out[i + 1, j + 1] += s11
                out[i + 1, j + 2] += s12
                out[i + 1, j + 3] += s13
                out[i + 2, j] += s20
                out[i + 2, j + 1] += s21
                out[i + 2, j + 2] += s22
                out[i + 2, j + 3] += s23
                out[i + 3, j] += s30
                out[i + 3, j + 1] += s31
                out[i + 3, j + 2] += s32
                out[i + 3, j + 3] += s33
        # the rows and columns past the last whole 4x4 block: one dot product each
        for i in range(M):
            for j in range(N4 if i < M4 else 0, N):
                x, y = a[i, lo_a:lo_a + n], b[j, lo_b:lo_b + n]
                s = zero
                for p in range(n):
                    s += x[p] * y[p]
                out[i, j] += s


@kernel
def weight_products(function, ilp64, strips, g, g_offset, P, dw_t, step, narrow_max_out):
    """``dw_t[i] += S_(i) @ gᵀ`` for the kernel rows i (the weight gradient's products of
    a block): ``S_(i)`` = ``strips[:, i·step : i·step + P]``, the strips (C·kw, ·) read
    from column ``i·step`` on; ``g[:, g_offset : g_offset + P]`` the block's output
    gradient on its grid (C_out, ·); ``dw_t`` (kh, C·kw, C_out); all C-contiguous. With
    at most ``narrow_max_out`` output channels (the caller passes :data:`NARROW_MAX_OUT`)
    each product is
    :func:`narrow_products`; otherwise a GEMM of NumPy's BLAS that adds into ``dw_t[i]``
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
