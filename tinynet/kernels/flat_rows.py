"""im2col for stride-1 "same" convolutions on flattened images: one contiguous run per
kernel offset and image channel, and columns already in NCHW order (raw arrays).

Shapes: x (N, C, H, W), kernel (kh, kw), padding (ph, pw), dilation (dh, dw), stride 1,
with an output as large as the input: ``dh(kh-1) = 2ph`` and ``dw(kw-1) = 2pw``.

Flatten each image with its ph zero rows above and below, and no column padding, onto
one axis: pixel (h, w) sits at ``f = pw + (h + ph)·W + w`` (pw zeros lead the row). For
kernel offset (i, j), output (h, w) reads pixel (h + i·dh - ph, w + j·dw - pw), at

    f = (h·W + w) + i·dh·W + j·dw

so every offset is one contiguous slice of the flat image, ``H·W`` long:

    col[n, c, i, j, h·W + w] = flat[n, c, h·W + w + i·dh·W + j·dw]

Reading a column past the left or right edge (``w + j·dw - pw`` outside [0, W)) lands
on the neighbouring row instead of on padding: those entries, the first ``pw - j·dw``
or last ``j·dw - pw`` columns of each row of that offset, are set to zero after the copy.

Why it is faster than :func:`tinynet.kernels.im2col.im2col` on few-channel maps: that
copy walks one run of Wo elements per (channel, offset, image, row), N·C·kh·kw·Ho runs
(27,648 for 32 RGB images of 32x32 and a 3x3 kernel), and NumPy's cost per run
dominates; here there are N·C·kh·kw runs of H·W. And because the columns are laid out
image by image, ``W2 @ col[n]`` (the GEMM batched over images) is already the NCHW
output: no transposing copy after the product. A row of ones appended to the columns
carries the bias through the same product.

:func:`flat_col2im` is the adjoint (the stride-1 transposed convolution's scatter): zero
the wrapped entries of the columns, add every offset's slice back into the flat image,
and crop the padding rows. The convolutions' input gradient gives it image-major columns
(N, C, kh, kw, H·W), one product per image (``image_major=True``, written into the
caller's ``out``); it also takes channel-major columns (C, kh, kw, N, H·W), as one GEMM
``Wᵀ @ X`` over the batch produces them.
"""
from __future__ import annotations

from tinynet import backend

__all__ = ["applies", "flat_im2col", "flat_col2im", "zero_wrapped"]


def applies(x_shape, kernel_size, stride, padding, dilation, output_size) -> bool:
    """Stride 1 and an output the size of the input (per axis ``d(k-1) = 2p``), asked for
    at that size: the columns cover the whole input, so they never give a cropped output
    (as the input gradient of a transposed conv with ``output_padding`` asks)."""
    return (stride == (1, 1) and tuple(output_size) == tuple(x_shape[2:])
            and all(dilation[a] * (kernel_size[a] - 1) == 2 * padding[a] for a in range(2)))


def zero_wrapped(rows, shift):
    """Zeros the entries of ``rows`` (..., W), a copy of flat rows read ``shift`` columns
    to the right (``j·dw - pw``), that crossed a row's edge: the first ``-shift`` of
    every row for a left shift, the last ``shift`` for a right one. On a zero-padded
    image they would have read padding; without zero columns they read the neighbouring
    row. Shared with :mod:`tinynet.kernels.row_strips`."""
    W = rows.shape[-1]
    if shift < 0:
        rows[..., :-shift] = 0
    elif shift > 0:
        rows[..., max(0, W - shift):] = 0


def flat_im2col(x, kernel_size, padding, dilation, ones=False):
    """Columns of all windows, image by image.

    Parameters
    ----------
    x : array (N, C, H, W)
    ones : append one row of ones (the bias row of the GEMM)

    Returns
    -------
    col : array (N, C·kh·kw (+1), H·W), ``col[n, (c, i, j), h·W + w] =
        x_pad[n, c, h + i·dh, w + j·dw]`` (zero padding).

    Example
    -------
    >>> import numpy as np
    >>> col = flat_im2col(np.arange(9.).reshape(1, 1, 3, 3), (3, 3), (1, 1), (1, 1))
    >>> col[0, :, 4].tolist() == list(range(9))          # the centre pixel's window
    True
    >>> col[0, :, 0].reshape(3, 3).tolist()              # the corner's, zero-padded
    [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 3.0, 4.0]]
    """
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    (kh, kw), (ph, pw), (dh, dw) = kernel_size, padding, dilation
    L = H * W
    rows = C * kh * kw
    if backend.use_compiled(x):     # one pass (tinynet.kernels.compiled.flat_rows)
        from .compiled import flat_rows as _compiled
        col = xp.empty((N, rows + int(ones), L), dtype=x.dtype)
        _compiled.flat_columns(backend.ascontiguous(x), col, kh, kw, ph, pw, dh, dw, ones)
        return col
    flat = xp.zeros((N, C, (H + 2 * ph) * W + 2 * pw), dtype=x.dtype)
    flat[:, :, pw + ph * W:pw + (ph + H) * W] = x.reshape(N, C, L)
    col = xp.empty((N, rows + int(ones), L), dtype=x.dtype)
    if ones:
        col[:, rows] = 1
    taps = col[:, :rows].reshape(N, C, kh, kw, L)
    # offset (i, j) starts i·dh·W + j·dw into the flat image: a sum of strides, so all
    # kh·kw slices are one strided view and one copy (NumPy pays its per-call cost once)
    sn, sc, sf = flat.strides
    backend.copy(taps, backend.as_strided(flat, taps.shape, (sn, sc, dh * W * sf, dw * sf, sf)))
    for j in range(kw):     # entries that wrapped onto the neighbouring row are padding
        zero_wrapped(taps[:, :, :, j].reshape(N, C, kh, H, W), j * dw - pw)
    return col


def flat_col2im(col, input_size, padding, dilation, image_major=False, out=None):
    """Adjoint of :func:`flat_im2col`.

    Parameters
    ----------
    col : array (C, kh, kw, N, H·W), or (N, C, kh, kw, H·W) with ``image_major`` (the
        layout of a product batched over images); its wrapped entries are overwritten
        with zeros
    input_size : (H, W)
    out : array (N, C, H, W), optional; written instead of a new array

    Returns
    -------
    x : array (N, C, H, W), ``x[n, c, h, w] = sum of col[c, i, j, n, h'·W + w']`` over
        the windows (h', w') whose offset (i, j) reads pixel (h, w).
    """
    xp = backend.get_array_module(col)
    if image_major:
        col = col.transpose(1, 2, 3, 0, 4)       # a view: the sums below run on either layout
    C, kh, kw, N, L = col.shape
    (H, W), (ph, pw), (dh, dw) = input_size, padding, dilation
    shape = (N, C) if image_major else (C, N)    # image-major: no transposing copy at the end
    flat = xp.zeros(shape + ((H + 2 * ph) * W + 2 * pw,), dtype=col.dtype)
    if image_major:
        flat = flat.transpose(1, 0, 2)
    for i in range(kh):
        for j in range(kw):
            zero_wrapped(col[:, i, j].reshape(C, N, H, W), j * dw - pw)
            start = i * dh * W + j * dw
            window = flat[:, :, start:start + L]
            window += col[:, i, j]
    x = flat[:, :, pw + ph * W:pw + (ph + H) * W].transpose(1, 0, 2)
    if out is None:
        return xp.ascontiguousarray(x).reshape(N, C, H, W)
    backend.copy(out, x.reshape(N, C, H, W))
    return out
