"""Row strips: a stride-1 convolution as GEMMs over column shifts of the flattened input.

Flatten each zero-padded image of ``x`` (N, C, H, W) onto one axis and lay the batch end
to end, channel-major::

    flat[c, (n·Hp + h)·Wp + w] = x_pad[n, c, h, w]          Hp = H + 2·ph, Wp = W + 2·pw

On that axis kernel offset (i, j) is a plain shift by ``i·dh·Wp + j·dw``: a stride-1
convolution's output at grid position ``t = (n·Hp + h)·Wp + w`` is

    y[:, t] = Σ_i Σ_j W[:, :, i, j] @ flat[:, t + i·dh·Wp + j·dw]
            = Σ_i W_i @ S[:, t + i·dh·Wp]          W_i = W[:, :, i, :] as (C_out, C·kw)

where the *strips* ``S[c·kw + j, t] = flat[c, t + j·dw]`` hold only the kw column shifts
(kw times the input, where im2col holds kh·kw times). The kh row shifts are column
offsets into S. Grid columns ``w >= Wo`` and rows ``h >= Ho`` are computed and cropped.

Strips are built one block of grid columns at a time (:func:`strip_block`): a block of
width L, plus the ``reach·Wp`` columns its row shifts read (``reach = (kh-1)·dh``), is
copied from ``flat`` into a small buffer that stays in cache while its GEMMs run. Whole
strips of a 224x224 batch would be tens of MB, above glibc's largest mmap threshold
(32 MiB), so every call would page-fault them in afresh (measured: 12.7 ms to build the
strips of a 4x16x224x224 batch, ten times the cost of copying the input once).

The weight gradient reads the same strips: ``dW_i = dY_grid @ S[:, shifted by i·dh·Wp]ᵀ``,
with ``dY_grid`` the output gradient placed on the (Hp, Wp) grid (zeros elsewhere).
"""
from __future__ import annotations

from tinynet import backend

from .im2col import pair

__all__ = ["padded_flat", "strip_block"]


def padded_flat(x, kw, padding=0, dilation=1, rows_below=0):
    """The zero-padded batch, one long row per channel.

    Parameters
    ----------
    x : array (N, C, H, W)
    kw : kernel width (the last ``(kw-1)·dw`` zero columns let the widest shift read past
        the final grid position)
    rows_below : extra zero rows appended, so that a row shift of up to ``rows_below``
        rows stays inside the buffer.

    Returns
    -------
    flat : array (C, N·Hp·Wp + rows_below·Wp + (kw-1)·dw)
    (Hp, Wp) : the padded image size.
    """
    xp = backend.get_array_module(x)
    (ph, pw), (_, dw) = pair(padding), pair(dilation)
    N, C, H, W = x.shape
    Hp, Wp = H + 2 * ph, W + 2 * pw
    flat = xp.zeros((C, N * Hp * Wp + rows_below * Wp + (kw - 1) * dw), dtype=x.dtype)
    flat[:, :N * Hp * Wp].reshape(C, N, Hp, Wp)[:, :, ph:ph + H, pw:pw + W] = x.transpose(1, 0, 2, 3)
    return flat, (Hp, Wp)


def strip_block(flat, kw, dw, start, width, buffer):
    """Strips of grid columns ``[start, start + width)``: an array (C·kw, width) with
    ``S[c·kw + j, t] = flat[c, start + t + j·dw]``, written into ``buffer`` (C, kw, >= width)
    (reused across blocks, so no large allocation per call)."""
    C = flat.shape[0]
    block = buffer[:, :, :width]
    for j in range(kw):
        block[:, j] = flat[:, start + j * dw:start + j * dw + width]
    return block.reshape(C * kw, width)
