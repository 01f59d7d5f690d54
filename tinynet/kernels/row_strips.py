"""Row strips: a stride-1 convolution as GEMMs over column shifts of the flattened input.

Lay each image's rows end to end with ``ph`` zero rows above and below it but **no zero
columns**, and the images of a block one after another, channel-major::

    flat[c, lead + (k·Hp + ph + h)·W + w] = x[n0 + k, c, h, w]      Hp = H + 2·ph, lead = pw

On that axis kernel offset (i, j) is a plain shift: a stride-1 convolution's output at
grid position ``t = (k·Hp + h)·W + w`` is

    y[:, t] = Σ_i Σ_j W[:, :, i, j] @ flat[:, t + i·dh·W + j·dw]      (read from ``lead`` on)
            = Σ_i W_i @ S[:, t + i·dh·W]          W_i = W[:, :, i, :] as (C_out, C·kw)

where the *strips* ``S[c·kw + j, t] = flat[c, t + j·dw]`` hold only the kw column shifts
(kw times the input, where im2col holds kh·kw times). The kh row shifts are column offsets
into S: the output is the sum of kh products ``W_i @ S``, each read ``i·dh·W`` columns
further along. Where the output rows are the grid's (a "same" conv), each product is
added into the output rows where they lie (``backend.matmul_into``, a GEMM with β = 1;
the bias rides in the first product, as one more column of ``W_0`` against a row of ones
under the strips); otherwise one GEMM with the kernel rows stacked,
``[W_0; …; W_{kh-1}] @ S``, gives all the products, and its kh row blocks, each read
shifted, are summed into the output.

Without zero columns, a column shift ``s_j = j·dw - pw`` reads past a row's end into
the next row (or before its start into the previous one) where the padded image would
read zeros: those strip entries (the first ``-s_j`` or last ``s_j`` columns of every
row of shift j) are zeroed after the copy. That is what makes the layout pay: the
grid is ``Hp x W``, not ``Hp x Wp``, so the GEMM computes no padding columns (on a 32x32
map with padding 1, 6% fewer columns), an image's input is one contiguous run per
channel, and a "same" conv's output rows are the grid's rows: the products are written
straight into the NCHW output, with no crop and no transposing copy. It needs
``Wo <= W``, a conv padded no more than "same" (``2·pw <= dw·(kw-1)``).

Strips are built one block at a time into a reused buffer of about 3 MB that stays in
cache while the block's GEMMs run: a block is a group of whole images when
an image is small, or a band of output rows of one image when it is large (a whole
224x224 batch's strips would be tens of MB, above glibc's largest mmap threshold, and
page-faulted in afresh on every call). The flat layout itself is never stored: on it an
image is one contiguous run per channel, so each strip row is copied from the images
where they lie, with zeros written only for the padding rows between them (one pass over
the input fewer than filling a zero-padded flat buffer first and copying the strips from
it). The weight gradient reads the same strips:
``dW_i = dY_grid @ S[:, shifted by i·dh·W]ᵀ``, with ``dY_grid`` the output gradient on the
block's ``Hp x W`` grid (zeros elsewhere; for a "same" conv's band, ``dy`` itself), added
up over the blocks as its transpose, ``S[:, shifted] @ dY_gridᵀ`` (the faster orientation
for the BLAS).
"""
from __future__ import annotations

from typing import NamedTuple

from tinynet import backend

from .flat_rows import zero_wrapped

__all__ = ["applies", "Blocks", "blocks", "block_plan", "strip_block"]


def applies(x_shape, kernel_size, stride, padding, dilation, output_size) -> bool:
    """Stride 1, the natural output size, and an output row no wider than the input's
    (``2·pw <= dw·(kw-1)``: padded no more than "same" along the width)."""
    (kh, kw), (ph, pw), (dh, dw) = kernel_size, padding, dilation
    H, W = x_shape[2:]
    Ho, Wo = H + 2 * ph - (kh - 1) * dh, W + 2 * pw - (kw - 1) * dw
    return tuple(stride) == (1, 1) and (Ho, Wo) == tuple(output_size) and Ho > 0 and 0 < Wo <= W


class Blocks(NamedTuple):
    """How a batch is cut into strip blocks: ``images`` per block and, for one image per
    block, ``band`` output rows per block (``band == Ho``: whole images)."""
    images: int
    band: int
    Hp: int
    Ho: int
    Wo: int
    reach: int          # (kh-1)·dh: the rows below a block that its row shifts read

    @property
    def span(self) -> int:
        """Most grid rows one block's output lies on: ``images·Hp`` for whole images, the
        ``band`` for bands (:func:`block_plan`'s largest ``span``)."""
        return self.images * self.Hp if self.band == self.Ho else self.band

    @property
    def strip_rows(self) -> int:
        """Most grid rows one block's strips cover, its span and the reach below: the
        rows of the buffer that :func:`strip_block` fills, sized once for every block."""
        return self.span + self.reach


def blocks(x_shape, kernel_size, padding, dilation, budget) -> Blocks:
    """The block shape for strips of at most about ``budget`` elements."""
    N, C, H, W = x_shape
    (kh, kw), (ph, pw), (dh, dw) = kernel_size, padding, dilation
    Hp, reach = H + 2 * ph, (kh - 1) * dh
    Ho, Wo = Hp - reach, W + 2 * pw - (kw - 1) * dw
    per_row = C * kw * W
    images = min(N, budget // (per_row * (Hp + reach)))
    if images >= 1:
        return Blocks(images, Ho, Hp, Ho, Wo, reach)
    band = max(1, min(Ho, budget // per_row - reach))
    band = -(-Ho // -(-Ho // band))         # as many bands, evened out: no sliver of a last band
    return Blocks(1, band, Hp, Ho, Wo, reach)


def block_plan(N, blk: Blocks, first=0, last=None):
    """The blocks of image groups ``[first, last)``: ``(n0, k, r0, rows, span)`` for ``k``
    images from ``n0`` and output rows ``[r0, r0 + rows)``, whose output lies on ``span``
    grid rows from grid row ``r0`` (``k·Hp`` for whole images, ``rows`` for a band; the
    strips also cover the ``reach`` rows below)."""
    groups = -(-N // blk.images) if last is None else last
    for n0 in range(first * blk.images, min(N, groups * blk.images), blk.images):
        k = min(blk.images, N - n0)
        for r0 in range(0, blk.Ho, blk.band):
            rows = min(blk.band, blk.Ho - r0)
            yield n0, k, r0, rows, (k * blk.Hp if k > 1 or rows == blk.Ho else rows)


def strip_block(xs, blk: Blocks, kw, padding, dilation, row0, rows, buffer):
    """Strips of grid rows ``[row0, row0 + rows)`` of the images ``xs`` (k, C, H, W): an
    array (C·kw, rows·W) with ``S[c·kw + j, t] = flat[c, row0·W + t + j·dw]``, zero where
    the shift ``j·dw - pw`` crosses a row's edge, written into ``buffer`` (C, kw,
    >= rows·W) (reused across blocks, so no large allocation per call).

    The flat layout is never built: on it, image m's pixels are one contiguous run per
    channel, ``Hp·W`` after image m-1's, so each strip row is a window onto a periodic
    sequence (H·W pixels, then (Hp - H)·W zeros) and is written with a few calls whatever
    the number of images (see :func:`_periodic_fill`)."""
    k, C, H, W = xs.shape
    (ph, pw), dw = padding, dilation[1]
    L = rows * W
    block = buffer[:, :, :L]
    if backend.use_compiled(xs, buffer):        # one call, without the GIL throughout
        from .compiled import row_strips as _compiled
        _compiled.strip_block(xs, buffer, blk.Hp, ph, pw, dw, row0, rows)
        return block.reshape(C * kw, L)
    images = xs.reshape(k, C, H * W)
    for j in range(kw):
        strip = block[:, j]
        # strip column t holds flat position row0·W + t + j·dw - pw (from the grid's start),
        # and image 0's first pixel sits at ph·W
        _periodic_fill(strip, images, ph * W - (row0 * W + j * dw - pw), blk.Hp * W)
        zero_wrapped(strip.reshape(C, rows, W), j * dw - pw)
    return block.reshape(C * kw, L)


def _periodic_fill(strip, images, first, period):
    """``strip`` (C, L) := columns ``[0, L)`` of the sequence that holds ``images[m]``
    (C, P) at columns ``[first + m·period, first + m·period + P)`` (m < k) and zeros
    everywhere else. The periods wholly inside the window take one strided copy and one
    strided zero fill; a clipped period at either end, and the zeros beyond the images,
    a few plain slices."""
    k, C, P = images.shape
    L = strip.shape[1]

    def piece(m, lo, hi):
        """Columns [lo, hi) lie in period m (or before/after all images: zeros)."""
        start = first + m * period
        a, b = (max(lo, start), min(hi, start + P)) if 0 <= m < k else (hi, hi)
        if a < b:
            strip[:, a:b] = images[m, :, a - start:b - start]
            strip[:, lo:a] = 0
            strip[:, b:hi] = 0
        else:
            strip[:, lo:hi] = 0

    m0 = min(k, max(0, -(first // period)))     # first period starting at column >= 0
    m1 = max(m0, min(k, (L - first) // period))   # periods [m0, m1) end within the window
    lo = min(L, max(0, first + m0 * period))
    hi = max(lo, min(L, first + m1 * period))
    if m1 > m0:
        whole = strip[:, lo:hi].reshape(C, m1 - m0, period)
        whole[:, :, :P] = images[m0:m1].transpose(1, 0, 2)
        whole[:, :, P:] = 0
    if lo > 0:
        piece(m0 - 1, 0, lo)      # the end of period m0 - 1, or the zeros before image 0
    if hi < L:
        piece(m1, hi, L)          # the start of period m1, or the zeros after the images
