"""Phase-grid im2col / col2im: every window copy one contiguous slice (raw arrays).

:func:`tinynet.kernels.im2col.im2col` copies, for each kernel offset, a strided slice of
the padded input: a 2-D slice whose rows are ``Wo`` elements long (read with stride
``sw``). NumPy pays a fixed cost per such row, and on small maps or with a stride that
cost, not the bytes, is the time. This file lays the input out so that every kernel
offset is ONE contiguous run per channel.

Polyphase split. With stride s (per axis), padded input row ``s·q + d·i`` (output row q,
kernel row i, dilation d) lies in *phase* ``a = (d·i) mod s`` of the padded input, at
phase row ``q + ⌊d·i / s⌋``::

    x_pad[s·q + d·i] = phase[(d·i) mod s][q + ⌊d·i / s⌋]

so in every phase a kernel offset is a stride-1 shift. Flatten each phase of the whole
batch onto one axis of length ``T = N·Hq·Wq`` (a grid of Hq x Wq per image, one grid
row per output row and a few spare columns); shift (u, v) is then the contiguous slice
starting at ``u·Wq + v``::

    grid[a, b, c, (n·Hq + h)·Wq + w] = x_pad[n, c, s_h·h + a, s_w·w + b]
    col[c, i, j, t] = grid[(d_h·i) mod s_h, (d_w·j) mod s_w, c, t + ⌊d_h·i/s_h⌋·Wq + ⌊d_w·j/s_w⌋]

Column t = (n·Hq + q)·Wq + r of ``col`` is the window of output (n, q, r) when q < Ho and
r < Wo; the other columns (q >= Ho or r >= Wo, a ``Hq·Wq / (Ho·Wo)`` overhead) read
neighbouring values and are cropped by the caller (conv2d) or multiplied by zeros
(conv2d_weight, conv_transpose2d: see :func:`to_grid`). Sizes: Hp = max((Ho-1)·s +
d·(k-1) + 1, p + H) padded rows, Hq = ⌈Hp / s⌉, and each phase carries a tail of
``⌊d_h(kh-1)/s_h⌋·Wq + ⌊d_w(kw-1)/s_w⌋`` zeros so that the last shifts stay inside.

:func:`phase_col2im` is the exact adjoint of :func:`phase_im2col` (the same slices,
``+=`` instead of a copy, then the phases interleaved back), so
``<phase_im2col(x), y> == <x, phase_col2im(y)>``. A stride-s transposed convolution
``col2im(Wᵀ X)`` computed this way writes every output pixel's sum inside its own phase
with contiguous adds: the *sub-pixel* form of the transposed convolution, where output
phase (a, b) receives only the kernel taps i ≡ a + p (mod s).

Cost: the phase split is s_h·s_w strided copies of the input (one pass over it); each
of the kh·kw offsets is then C contiguous copies (or adds) of T elements. Memory: the
grid (about the padded input) plus the C·kh·kw·T column buffer.
"""
from __future__ import annotations

from tinynet import backend

from . import im2col as _im2col

__all__ = ["phase_grid_size", "phase_im2col", "phase_col2im", "to_grid",
           "set_phase_mode", "get_phase_mode"]

_mode = "auto"


def set_phase_mode(mode: str) -> None:
    """``"auto"`` (the default: the convolution ops choose the phase grid by shape),
    ``"always"`` (wherever it applies: tests use this to force it) or ``"never"``."""
    global _mode
    if mode not in ("auto", "always", "never"):
        raise ValueError(f"set_phase_mode: mode must be 'auto', 'always' or 'never', got {mode!r}")
    _mode = mode


def get_phase_mode() -> str:
    return _mode


def phase_grid_size(input_size, kernel_size, stride, padding, dilation, output_size):
    """(Hq, Wq): the per-image phase grid, ``Hq = ⌈max((Ho-1)·s + d(k-1) + 1, p + H) / s⌉``
    per axis."""
    return tuple(-(-max((output_size[a] - 1) * stride[a] + dilation[a] * (kernel_size[a] - 1) + 1,
                        padding[a] + input_size[a]) // stride[a])
                 for a in range(2))


def _tail(kernel_size, stride, dilation, grid):
    """Zeros after each flat phase, so that the largest shift's slice stays inside."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    return (dh * (kh - 1) // sh) * grid[1] + dw * (kw - 1) // sw


def _phase_blocks(size, stride, padding, grid_size):
    """Per phase a: (first grid row u0, first source row r0, count) such that source rows
    r0, r0 + s, … (count of them) sit at grid rows u0, u0 + 1, … of phase a, where padded
    row s·u + a holds source row s·u + a - p."""
    blocks = []
    for a in range(stride):
        u0 = max(0, -(-(padding - a) // stride))
        r0 = stride * u0 + a - padding
        count = len(range(r0, size, stride)) if r0 < size else 0
        blocks.append((u0, r0, min(count, grid_size - u0)))
    return blocks


def _taps(kernel_size, stride, dilation, grid):
    """(i, j, a, b, shift) for every kernel offset: phase (a, b), flat shift."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    return [(i, j, dh * i % sh, dw * j % sw, (dh * i // sh) * grid[1] + dw * j // sw)
            for i in range(kh) for j in range(kw)]


def phase_im2col(x, kernel_size, stride, padding, dilation, output_size):
    """Columns of all convolution windows on the phase grid.

    Parameters
    ----------
    x : array (N, C, H, W)
    kernel_size, stride, padding, dilation, output_size : (int, int) pairs

    Returns
    -------
    col : array (C, kh, kw, T), T = N·Hq·Wq, with ``col.reshape(C·kh·kw, T)`` free and
        ``col[c, i, j, (n·Hq + q)·Wq + r] = x_pad[n, c, q·sh + i·dh, r·sw + j·dw]`` for
        q < Ho, r < Wo.
    (Hq, Wq) : the grid (:func:`phase_grid_size`).

    Example
    -------
    >>> import numpy as np
    >>> col, grid = phase_im2col(np.arange(16.).reshape(1, 1, 4, 4), (2, 2), (2, 2),
    ...                          (0, 0), (1, 1), (2, 2))
    >>> grid, col[0, :, :, 0].tolist()          # output (0, 0) reads x[0:2, 0:2]
    ((2, 2), [[0.0, 1.0], [4.0, 5.0]])
    """
    geometry = tuple(tuple(v) for v in (kernel_size, stride, padding, dilation, output_size))
    return _im2col.shared("phase_im2col", x, geometry, _phase_im2col)


def _phase_im2col(x, kernel_size, stride, padding, dilation, output_size):
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw) = kernel_size, stride
    grid = phase_grid_size((H, W), kernel_size, stride, padding, dilation, output_size)
    Hq, Wq = grid
    T = N * Hq * Wq
    phases = xp.zeros((sh, sw, C, T + _tail(kernel_size, stride, dilation, grid)), dtype=x.dtype)
    images = phases[:, :, :, :T].reshape(sh, sw, C, N, Hq, Wq)
    for a, (u0, r0, nu) in enumerate(_phase_blocks(H, sh, padding[0], Hq)):
        for b, (v0, c0, nv) in enumerate(_phase_blocks(W, sw, padding[1], Wq)):
            if nu > 0 and nv > 0:
                images[a, b, :, :, u0:u0 + nu, v0:v0 + nv] = \
                    x[:, :, r0:r0 + (nu - 1) * sh + 1:sh, c0:c0 + (nv - 1) * sw + 1:sw].transpose(1, 0, 2, 3)
    col = xp.empty((C, kh, kw, T), dtype=x.dtype)
    taps = _taps(kernel_size, stride, dilation, grid)

    def copy_channels(lo, hi):      # channels are independent: chunks run on the pool
        for i, j, a, b, shift in taps:
            col[lo:hi, i, j] = phases[a, b, lo:hi, shift:shift + T]
    backend.parallel_for(C, copy_channels, nbytes=2 * col.nbytes, like=x, calls=len(taps))
    return col, grid


def phase_col2im(col, input_size, kernel_size, stride, padding, dilation, grid, bias=None):
    """Adjoint of :func:`phase_im2col`: sums every column entry into the pixel it came from.

    Parameters
    ----------
    col : array (C, kh, kw, T), T = N·Hq·Wq over the ``grid`` (Hq, Wq)
    input_size : (H, W) of the image to rebuild
    bias : array (C,), optional, added to every pixel in the interleaving pass

    Returns
    -------
    x : array (N, C, H, W), C-contiguous, ``x[n, c, h, w] = bias[c] + sum of
        col[c, i, j, t]`` over the (i, j, t) that :func:`phase_im2col` reads from (n, c, h, w).
    """
    xp = backend.get_array_module(col)
    C, kh, kw, T = col.shape
    (H, W), (sh, sw) = input_size, stride
    Hq, Wq = grid
    N = T // (Hq * Wq)
    phases = xp.zeros((sh, sw, C, T + _tail(kernel_size, stride, dilation, grid)), dtype=col.dtype)
    taps = _taps(kernel_size, stride, dilation, grid)

    def add_channels(lo, hi):       # channels are independent: chunks run on the pool
        for i, j, a, b, shift in taps:
            window = phases[a, b, lo:hi, shift:shift + T]
            window += col[lo:hi, i, j]
    backend.parallel_for(C, add_channels, nbytes=2 * col.nbytes, like=col, calls=len(taps))
    images = phases[:, :, :, :T].reshape(sh, sw, C, N, Hq, Wq)
    x = xp.empty((N, C, H, W), dtype=col.dtype)
    for a, (u0, r0, nu) in enumerate(_phase_blocks(H, sh, padding[0], Hq)):
        for b, (v0, c0, nv) in enumerate(_phase_blocks(W, sw, padding[1], Wq)):
            if nu > 0 and nv > 0:
                target = x[:, :, r0:r0 + (nu - 1) * sh + 1:sh, c0:c0 + (nv - 1) * sw + 1:sw]
                source = images[a, b, :, :, u0:u0 + nu, v0:v0 + nv].transpose(1, 0, 2, 3)
                if bias is None:
                    target[...] = source
                else:
                    xp.add(source, bias.reshape(-1, 1, 1), out=target)
    return x


def to_grid(y, grid):
    """y (N, C, Ho, Wo) -> (C, N·Hq·Wq): y at grid rows < Ho and columns < Wo, zeros on the
    rest, so that products with phase columns ignore the spare grid columns."""
    xp = backend.get_array_module(y)
    N, C, Ho, Wo = y.shape
    Hq, Wq = grid
    if (Ho, Wo) == (Hq, Wq):
        return backend.ascontiguous(y.transpose(1, 0, 2, 3)).reshape(C, N * Hq * Wq)
    out = xp.zeros((C, N, Hq, Wq), dtype=y.dtype)
    backend.copy(out[:, :, :Ho, :Wo], y.transpose(1, 0, 2, 3))
    return out.reshape(C, N * Hq * Wq)
