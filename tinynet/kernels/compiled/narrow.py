"""The narrow product: ``out (M, N) += A (M, K) @ Bᵀ (K, N)`` for a long K and a small output.

A convolution's weight gradient with few output channels is such a product: the
gradient of a 16-channel 3x3 layer is 144 x 16 values, each a sum over every pixel of the
batch (tens of thousands). A BLAS is built for the other case, a large output and a
short inner dimension: it packs both operands into panels and runs a micro-kernel over
output tiles, and with 768 outputs and 12,544 pixels it spends its time packing what it
reads once. OpenBLAS ran (48 x K)(K x 16) at 64 GFLOP/s on one thread of the twenty-ninth
session's Intel guest, a third of its square-product rate.

:func:`narrow_products` computes the output in 4x4 blocks of dot products: for each
block it streams four rows of A and four rows of B along K, and its 16 running sums stay
in registers (LLVM vectorises the loop along K, each sum a vector of partial sums),
8 loads for 16 multiply-adds; K runs in chunks of :data:`NARROW_CHUNK`, so that the rows a
chunk reads stay in cache across the blocks. The leftover rows and columns (M or N not a
multiple of 4) run in 1x4 and 4x1 blocks, the corner one dot product at a time. :func:`image_products` sums such products over
a batch of images in one call.
"""
from . import kernel

#: Most output channels (N) for which the weight gradients' products run as
#: :func:`narrow_products` rather than BLAS GEMMs (see there).
NARROW_MAX_OUT = 32
#: Columns (pixels) of the products' inner dimension per pass of :func:`narrow_products`
#: (4 kB rows; 1,024 measured faster than 256 or 512, 91 against 81 and 86 GFLOP/s on
#: (48 x K)(K x 16): the sums' reduction after each pass costs more than the reads from L2).
NARROW_CHUNK = 1024


@kernel
def _four_dots(x, y0, y1, y2, y3):
    """The dot products of ``x`` with ``y0`` .. ``y3`` (1-D, one length): 4 sums, 5 loads."""
    s0 = s1 = s2 = s3 = x.dtype.type(0)
    for p in range(x.shape[0]):
        s0 += x[p] * y0[p]
        s1 += x[p] * y1[p]
        s2 += x[p] * y2[p]
        s3 += x[p] * y3[p]
    return s0, s1, s2, s3


@kernel
def narrow_products(a, a_offset, b, b_offset, K, out):
    """``out (M, N) += a[:, a_offset:a_offset+K] @ b[:, b_offset:b_offset+K]ᵀ`` for
    C-contiguous ``a`` (M, ·) and ``b`` (N, ·): a product with a long inner dimension and
    a small output (a weight gradient's: M = C·kw strip rows or C·kh·kw columns' rows,
    N = C_out <= 32, K pixels), as 4x4 blocks of dot products. Each block keeps its 16 sums in registers while it streams
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
        # the rows past the last whole 4x4 block, in 1x4 blocks (4 sums, 5 loads)
        for i in range(M4, M):
            x = a[i, lo_a:lo_a + n]
            for j in range(0, N4, 4):
                s0, s1, s2, s3 = _four_dots(x, b[j, lo_b:lo_b + n], b[j + 1, lo_b:lo_b + n],
                                            b[j + 2, lo_b:lo_b + n], b[j + 3, lo_b:lo_b + n])
                out[i, j] += s0
                out[i, j + 1] += s1
                out[i, j + 2] += s2
                out[i, j + 3] += s3
        # the columns past it, in 4x1 blocks, and the corner one dot product at a time
        for j in range(N4, N):
            y = b[j, lo_b:lo_b + n]
            for i in range(0, M4, 4):
                s0, s1, s2, s3 = _four_dots(y, a[i, lo_a:lo_a + n], a[i + 1, lo_a:lo_a + n],
                                            a[i + 2, lo_a:lo_a + n], a[i + 3, lo_a:lo_a + n])
                out[i, j] += s0
                out[i + 1, j] += s1
                out[i + 2, j] += s2
                out[i + 3, j] += s3
            for i in range(M4, M):
                x = a[i, lo_a:lo_a + n]
                s = zero
                for p in range(n):
                    s += x[p] * y[p]
                out[i, j] += s


@kernel
def image_products(a, b, out):
    """``out (M, N) += Σ_m a[m] (M, K) @ b[m]ᵀ (K, N)`` over the images m of ``a`` (n, M, K)
    and ``b`` (n, N, K), both C-contiguous: a flat-row weight gradient's products
    (:mod:`tinynet.kernels.flat_rows`), summed in one call."""
    for m in range(a.shape[0]):
        narrow_products(a[m], 0, b[m], 0, a.shape[2], out)
