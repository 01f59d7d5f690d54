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
into S, so one GEMM with the kernel rows stacked, ``[W_0; …; W_{kh-1}] @ S``, gives all
the products, and the output is the sum of its kh row blocks, each read shifted by
``i·dh·W`` columns.

Without zero columns, a column shift ``s_j = j·dw - pw`` reads past a row's end into
the next row (or before its start into the previous one) where the padded image would
read zeros: those strip entries (the first ``-s_j`` or last ``s_j`` columns of every
row of shift j) are zeroed after the copy. That is what makes the layout pay: the
grid is ``Hp x W``, not ``Hp x Wp``, so the GEMM computes no padding columns (on a 32x32
map with padding 1, 6% fewer columns), an image's input is one contiguous run per
channel, and a "same" conv's output rows are the grid's rows: the row sums are written
straight into the NCHW output, with no crop and no transposing copy. It needs
``Wo <= W``, a conv padded no more than "same" (``2·pw <= dw·(kw-1)``).

Strips are built one block at a time into a reused buffer of about 3 MB that stays in
cache while the block's GEMM and row sums run: a block is a group of whole images when
an image is small, or a band of output rows of one image when it is large (a whole
224x224 batch's strips would be tens of MB, above glibc's largest mmap threshold, and
page-faulted in afresh on every call). The weight gradient reads the same strips:
``dW_i = dY_grid @ S[:, shifted by i·dh·W]ᵀ``, with ``dY_grid`` the output gradient on the
block's ``Hp x W`` grid (zeros elsewhere; for a "same" conv's band, ``dy`` itself).
"""
from __future__ import annotations

from typing import NamedTuple

from tinynet import backend

__all__ = ["applies", "Blocks", "blocks", "block_plan", "flat_buffer", "fill_images", "strip_block"]


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


def flat_buffer(x, blk: Blocks, kw, padding, dilation):
    """Zeros (C, lead + images·Hp·W + reach·W + tail): the flat layout of one block."""
    xp = backend.get_array_module(x)
    C, W = x.shape[1], x.shape[3]
    (_, pw), (_, dw) = padding, dilation
    tail = max(0, (kw - 1) * dw - pw)
    return xp.zeros((C, pw + (blk.images * blk.Hp + blk.reach) * W + tail), dtype=x.dtype)


def fill_images(flat, xs, blk: Blocks, padding):
    """Copies the images ``xs`` (k, C, H, W) into their rows of ``flat``; the zero rows
    between them stay zero."""
    k, C, H, W = xs.shape
    ph, pw = padding
    grid = flat[:, pw:pw + k * blk.Hp * W].reshape(C, k, blk.Hp, W)
    grid[:, :, ph:ph + H] = xs.transpose(1, 0, 2, 3)


def strip_block(flat, kw, dw, pw, W, row0, rows, buffer):
    """Strips of grid rows ``[row0, row0 + rows)``: an array (C·kw, rows·W) with
    ``S[c·kw + j, t] = flat[c, row0·W + t + j·dw]``, zero where the shift ``j·dw - pw``
    crosses a row's edge, written into ``buffer`` (C, kw, >= rows·W) (reused across
    blocks, so no large allocation per call)."""
    C = flat.shape[0]
    L = rows * W
    block = buffer[:, :, :L]
    for j in range(kw):
        start = row0 * W + j * dw
        block[:, j] = flat[:, start:start + L]
        shift = j * dw - pw
        if shift:
            rows_j = block[:, j].reshape(C, rows, W)
            if shift < 0:
                rows_j[:, :, :-shift] = 0
            else:
                rows_j[:, :, max(W - shift, 0):] = 0
    return block.reshape(C * kw, L)
