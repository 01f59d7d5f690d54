"""im2col / col2im: convolution as one matrix product (raw arrays, no autograd).

A 2-D convolution of ``x`` (N, C, H, W) with a kernel (C_out, C, kh, kw) reads, for every
output pixel, the C·kh·kw input values under the kernel. :func:`im2col` copies those
values into the columns of one matrix,

    col[c, i, j, n, ho, wo] = x_pad[n, c, ho·sh + i·dh, wo·sw + j·dw]

laid out channel-major as (C·kh·kw, N·Ho·Wo), so the whole batch's convolution is one
GEMM: ``W.reshape(C_out, C·kh·kw) @ col``. The copy is a loop over the kh·kw kernel
offsets, each a strided slice of the padded input; there is no loop over pixels.

:func:`col2im` is the adjoint (transpose) of im2col: it adds every column entry back to
the input position it was read from, again one strided slice per kernel offset. Because
it is the exact adjoint, ``<im2col(x), y> == <x, col2im(y)>`` for all x, y; this is what
makes conv2d's input gradient ``col2im(W.T @ dY)``, i.e. a transposed convolution.

Output sizes (per spatial axis, PyTorch's formulas)::

    conv:            out = floor((in + 2p - d(k-1) - 1) / s) + 1
    transposed conv: out = (in - 1)s - 2p + d(k-1) + output_padding + 1
    pooling:         out = floor_or_ceil((in + 2p - d(k-1) - 1) / s) + 1,
                     and with ceil_mode a last window starting at or past in + p
                     (entirely in the right padding) is dropped.

On small maps (rows shorter than the batch), ``batch_last=True`` orders the columns
(Ho, Wo, N) instead of (N, Ho, Wo): the same matrix with its columns permuted, whose
strided copies run over contiguous runs of N elements rather than Wo (NumPy pays a fixed
cost per run, which dominates on 4x4 maps). The copies go through
:func:`tinynet.backend.copy`, which moves runs of up to 64 floats as single elements of
one inner loop (0.4-0.7x the time); batch-last still measured faster on the maps where
it is taken.

Stride-1 convolutions with many channels on large maps avoid most of this copy with
row strips (:mod:`tinynet.kernels.row_strips`).

Threads: the copies of :func:`im2col` and the sums of :func:`col2im` are independent per
channel, so large ones run as channel chunks on tinynet's pool
(:func:`tinynet.backend.parallel_for`; NumPy releases the GIL inside each copy).

Compiled route: where Numba is installed (the ``jit`` extra), strided :func:`im2col`,
batch-last :func:`im2col` from N16, and every :func:`col2im` of float32/float64 NumPy
arrays run as one compiled pass each (:mod:`tinynet.kernels.compiled.im2col`: no padded
buffer, each output pixel of col2im summed by one thread; channel chunks on the pool),
measured 0.2-0.9x the time of the copies below; see :data:`COMPILED_IM2COL_MIN_STRIDE`
and :data:`COMPILED_IM2COL_BATCH_LAST_MIN_BATCH`.

Sharing: inside :func:`sharing`, the columns of one array with one geometry are built
once (:func:`shared`): a transposed conv's backward reads the columns of dy twice, for
its input gradient ``conv2d(dy, W)`` and its weight gradient ``conv2d_weight(dy, x)``.

Memory: the im2col buffer holds C·kh·kw·N·Ho·Wo elements (kh·kw times the input for a
stride-1 "same" convolution). When that exceeds :data:`workspace_limit` bytes, callers
process the batch in chunks of :func:`batch_chunk` samples.
"""
from __future__ import annotations

import contextlib
import threading

from tinynet import backend

__all__ = [
    "conv_output_size", "conv_transpose_output_size", "pool_output_size",
    "im2col", "col2im", "workspace_limit", "set_workspace_limit", "get_workspace_limit",
    "batch_chunk", "pair",
]

#: Largest im2col buffer, in bytes, built in one piece; larger batches are chunked.
#: 256 MiB keeps a 224x224, 16-channel 3x3 layer (29 MB of columns per sample in
#: float32) to at most 8 samples per chunk.
workspace_limit = 256 * 1024 * 1024


def set_workspace_limit(nbytes: int) -> None:
    """Sets the largest im2col workspace in bytes (at least one sample is always taken)."""
    global workspace_limit
    if int(nbytes) <= 0:
        raise ValueError(f"set_workspace_limit: nbytes must be positive, got {nbytes}")
    workspace_limit = int(nbytes)


def get_workspace_limit() -> int:
    return workspace_limit


def batch_chunk(batch: int, bytes_per_sample: int) -> int:
    """Samples per chunk so that a chunk's workspace stays within :data:`workspace_limit`."""
    return max(1, min(batch, workspace_limit // max(1, bytes_per_sample)))


def pair(value, name: str = "argument", op: str = "conv2d") -> tuple[int, int]:
    """``3 -> (3, 3)`` and ``(3,) -> (3, 3)``; a 2-sequence of ints passes through. Anything
    else is a TypeError (or a ValueError for a sequence of another length)."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        return value                        # already normalised (the common, hot case)
    if type(value) is int:
        return value, value
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, 2):
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
        a, b = value if len(value) == 2 else (value[0], value[0])   # (k,) as PyTorch expands it
    else:
        a = b = value
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, int) and not hasattr(v, "__index__"):
            raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return int(a), int(b)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """``floor((size + 2·padding - dilation·(kernel-1) - 1) / stride) + 1`` (may be <= 0)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """``(size-1)·stride - 2·padding + dilation·(kernel-1) + output_padding + 1``."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def pool_output_size(size: int, kernel: int, stride: int, padding: int = 0,
                     dilation: int = 1, ceil_mode: bool = False) -> int:
    """Pooling output size; with ``ceil_mode`` a partial last window is kept, unless it
    would start inside the right padding (PyTorch drops that one)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = span // stride + 1
    return out


def _padded_channel_major(x, out_hw, kernel_size, stride, padding, dilation, fill=0):
    """``x`` (N, C, H, W) as a (C, N, Hp, Wp) array holding every window (zero or ``fill``
    padding), where Hp covers ``padding`` rows above and all rows the windows reach."""
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    (Ho, Wo), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = out_hw, kernel_size, stride, padding, dilation
    Hp = max((Ho - 1) * sh + (kh - 1) * dh + 1, ph + H)
    Wp = max((Wo - 1) * sw + (kw - 1) * dw + 1, pw + W)
    if ph == pw == 0 and Hp == H and Wp == W:
        return x.transpose(1, 0, 2, 3)      # a view: the slices below do the copying
    buf = xp.full((C, N, Hp, Wp), fill, dtype=x.dtype) if fill else xp.zeros((C, N, Hp, Wp), x.dtype)
    backend.copy(buf[:, :, ph:ph + H, pw:pw + W], x.transpose(1, 0, 2, 3))
    return buf


def _padded_batch_last(x, out_hw, kernel_size, stride, padding, dilation):
    """``x`` (N, C, H, W) as a zero-padded (C, Hp, Wp, N) array (batch innermost)."""
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    (Ho, Wo), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = out_hw, kernel_size, stride, padding, dilation
    Hp = max((Ho - 1) * sh + (kh - 1) * dh + 1, ph + H)
    Wp = max((Wo - 1) * sw + (kw - 1) * dw + 1, pw + W)
    buf = xp.zeros((C, Hp, Wp, N), x.dtype)
    backend.copy(buf[:, ph:ph + H, pw:pw + W], x.transpose(1, 2, 3, 0))
    return buf


def _window_batch_last(buf, i, j, out_hw, stride, dilation):
    """The strided slice of a (C, Hp, Wp, N) buffer read by kernel offset (i, j)."""
    (Ho, Wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return buf[:, i * dh:i * dh + (Ho - 1) * sh + 1:sh, j * dw:j * dw + (Wo - 1) * sw + 1:sw]


def _window(buf, i, j, out_hw, stride, dilation):
    """The strided slice of a (…, Hp, Wp) buffer read by kernel offset (i, j)."""
    (Ho, Wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return buf[..., i * dh:i * dh + (Ho - 1) * sh + 1:sh, j * dw:j * dw + (Wo - 1) * sw + 1:sw]


def _all_windows(buf, kernel_size, out_hw, stride, dilation, batch_last=False):
    """Every window of a padded buffer as one strided view (no copy): ``(C, kh, kw, N, Ho,
    Wo)`` of a ``(C, N, Hp, Wp)`` buffer, or ``(C, kh, kw, Ho, Wo, N)`` of a ``(C, Hp, Wp,
    N)`` one with ``batch_last``. Offset (i, j) of window (ho, wo) reads buffer row
    ``ho·sh + i·dh`` and column ``wo·sw + j·dw``: both are sums of strides, so one view
    holds all kh·kw slices and im2col is a single copy out of it (NumPy's copy then
    pays its fixed per-call cost once instead of kh·kw times: 0.5x the time on ResNet-18's
    4x4 and 8x8 maps)."""
    (kh, kw), (Ho, Wo), (sh, sw), (dh, dw) = kernel_size, out_hw, stride, dilation
    if batch_last:
        C, _, _, N = buf.shape
        sc, sr, sp, sn = buf.strides
        shape, strides = (C, kh, kw, Ho, Wo, N), (sc, sr * dh, sp * dw, sr * sh, sp * sw, sn)
    else:
        C, N = buf.shape[:2]
        sc, sn, sr, sp = buf.strides
        shape, strides = (C, kh, kw, N, Ho, Wo), (sc, sr * dh, sp * dw, sn, sr * sh, sp * sw)
    return backend.as_strided(buf, shape, strides)


_local = threading.local()     # .shared: {key: (x, columns)} inside sharing(), else absent


@contextlib.contextmanager
def sharing():
    """Inside the block, :func:`shared` builds the columns of one array (same memory,
    shape, strides and dtype) with one geometry once. The two gradients of a transposed
    conv, ``conv2d(dy, W)`` and ``conv2d_weight(dy, x)``, read the same columns of dy;
    their backward runs both inside this block, where dy cannot change. Outside it
    nothing is cached (an array may be overwritten in place between two calls)."""
    outer = getattr(_local, "shared", None)
    _local.shared = {} if outer is None else outer
    try:
        yield
    finally:
        _local.shared = outer


def sharing_active() -> bool:
    """Whether :func:`shared` keeps what it builds (inside :func:`sharing`)."""
    return getattr(_local, "shared", None) is not None


def _address(x):
    """(data address, dtype, shape, strides) of a NumPy or CuPy array, or None if unknown."""
    interface = getattr(x, "__array_interface__", None)         # NumPy
    address = interface["data"][0] if interface else getattr(getattr(x, "data", None), "ptr", None)
    if address is None:                                            # CuPy: x.data.ptr
        return None
    return address, str(x.dtype), x.shape, x.strides


def shared(name, x, geometry, build):
    """``build(x, *geometry)`` (columns, or a tuple whose first item is the columns),
    computed once per (``name``, x, geometry) inside :func:`sharing`, where x's memory is
    held so that no other array reuses it. The columns kept stay within
    :data:`workspace_limit` bytes in all (a chunked batch keeps its first chunk's);
    outside the block, or for an array without a readable address, built each call."""
    cache = getattr(_local, "shared", None)
    key = None if cache is None else _address(x)
    if key is None:
        return build(x, *geometry)
    key = (name,) + key + tuple(geometry)
    if key in cache:
        return cache[key][1]
    value = build(x, *geometry)
    held = sum((v[0] if isinstance(v, tuple) else v).nbytes for _, v in cache.values())
    if held + (value[0] if isinstance(value, tuple) else value).nbytes <= workspace_limit:
        cache[key] = (x, value)
    return value


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, output_size=None, batch_last=False):
    """Columns of all convolution windows, channel-major.

    Parameters
    ----------
    x : array (N, C, H, W)
    kernel_size, stride, padding, dilation : int or (int, int)
    output_size : (Ho, Wo), optional
        Defaults to the convolution output size; a smaller size reads only the first
        windows (used by the gradient of a transposed conv with ``output_padding``).
    batch_last : bool
        Order the columns (Ho, Wo, N) instead of (N, Ho, Wo). Same values, another
        column order: on small maps (Wo < N) every strided copy then runs over
        contiguous rows of N elements instead of rows of Wo, which is what NumPy's
        per-row overhead cares about.

    Returns
    -------
    col : array (C, kh, kw, N, Ho, Wo), or (C, kh, kw, Ho, Wo, N) with ``batch_last``;
        ``col.reshape(C*kh*kw, -1)`` is free.

    Example
    -------
    >>> import numpy as np
    >>> im2col(np.arange(9.).reshape(1, 1, 3, 3), 2).reshape(4, 4)[:, 0]
    array([0., 1., 3., 4.])
    """
    geometry = (pair(kernel_size), pair(stride), pair(padding), pair(dilation),
                None if output_size is None else tuple(output_size), batch_last)
    return shared("im2col", x, geometry, _im2col)


def _im2col(x, kernel_size, stride, padding, dilation, output_size, batch_last):
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    if output_size is None:
        output_size = (conv_output_size(H, kh, sh, ph, dilation[0]),
                       conv_output_size(W, kw, sw, pw, dilation[1]))
    Ho, Wo = output_size
    if backend.use_compiled(x) and _compiled_wins(stride, batch_last, N):
        from .compiled import im2col as _compiled
        fn = _compiled.im2col_batch_last if batch_last else _compiled.im2col
        x = backend.ascontiguous(x)
        col = xp.empty((C, kh, kw) + ((Ho, Wo, N) if batch_last else (N, Ho, Wo)), dtype=x.dtype)
        backend.parallel_for(C, lambda lo, hi: fn(x, col, lo, hi, sh, sw, ph, pw, *dilation),
                             nbytes=x.nbytes + col.nbytes, like=x)
        return col
    if batch_last:
        out = xp.empty((C, kh, kw, Ho, Wo, N), dtype=x.dtype)
        buf = _padded_batch_last(x, output_size, kernel_size, stride, padding, dilation)
        return backend.copy(out, _all_windows(buf, kernel_size, output_size, stride, dilation,
                                              batch_last=True))
    out = xp.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    if _is_tiling(kernel_size, stride, padding, dilation):
        return _im2col_tiles(x, out)
    return _im2col_windows(x, out, stride, padding, dilation)


#: Smallest stride (the larger of the two axes) for which :func:`im2col` takes the
#: compiled kernel (:mod:`tinynet.kernels.compiled.im2col`) where Numba is on. Measured
#: against the NumPy route, alternated in one process (minimum of 31 calls, float32,
#: N1-N16, 4-512 channels, maps 4x4 to 32x32): strided, 0.50-0.89x the time at 1 and 2
#: threads; stride 1, 0.9-1.4x (NumPy's whole-row copies of :func:`tinynet.backend.copy`
#: already move each contiguous row as one element), so stride 1 stays NumPy's.
#: :func:`col2im` takes the compiled kernel at every size: 0.17-0.44x.
COMPILED_IM2COL_MIN_STRIDE = 2

#: Smallest batch for which a stride-1 *batch-last* :func:`im2col` takes the compiled
#: kernel. There NumPy's copies run over rows of only N elements, and the compiled
#: kernel's one pass (a batch-innermost copy of each channel, then runs of N per window
#: position) measured 0.34-0.87x NumPy's time from N16 to N64 (1-512 channels, maps
#: 2x2-8x8; median of 380 alternated calls, 2 threads); at N8, 1.23x.
COMPILED_IM2COL_BATCH_LAST_MIN_BATCH = 16


def _compiled_wins(stride=None, batch_last=False, batch=0) -> bool:
    """The compiled im2col (given its ``stride``, column order and ``batch``) or col2im
    (``stride=None``) is measured faster than the NumPy route (see
    :data:`COMPILED_IM2COL_MIN_STRIDE` and :data:`COMPILED_IM2COL_BATCH_LAST_MIN_BATCH`)."""
    return (stride is None or max(stride) >= COMPILED_IM2COL_MIN_STRIDE
            or (batch_last and batch >= COMPILED_IM2COL_BATCH_LAST_MIN_BATCH))


def _is_tiling(kernel_size, stride, padding, dilation) -> bool:
    """Windows that neither overlap nor leave gaps (kernel == stride, per axis), unpadded
    and undilated: im2col is then a reshape and one transposing copy."""
    return kernel_size == stride and dilation == (1, 1) and padding == (0, 0)


def _im2col_tiles(x, out):
    """im2col for :func:`_is_tiling` geometries, into ``out`` (C, kh, kw, N, Ho, Wo)."""
    N, C = x.shape[:2]
    _, kh, kw, _, Ho, Wo = out.shape
    tiles = x[:, :, :Ho * kh, :Wo * kw].reshape(N, C, Ho, kh, Wo, kw)
    backend.copy(out, tiles.transpose(1, 3, 5, 0, 2, 4))
    return out


def _im2col_windows(x, out, stride, padding, dilation):
    """General im2col into ``out`` (C, kh, kw, N, Ho, Wo): one copy of all the windows."""
    C, kh, kw, _, Ho, Wo = out.shape
    buf = _padded_channel_major(x, (Ho, Wo), (kh, kw), stride, padding, dilation)

    def copy_channels(lo, hi):     # channels are independent: chunks run on the pool
        backend.copy(out[lo:hi], _all_windows(buf[lo:hi], (kh, kw), (Ho, Wo), stride, dilation))
    backend.parallel_for(C, copy_channels, nbytes=2 * out.nbytes, like=x)
    return out


def col2im(col, input_size, stride=1, padding=0, dilation=1, batch_last=False):
    """Adjoint of :func:`im2col`: sums every column entry into the pixel it came from.

    Parameters
    ----------
    col : array (C, kh, kw, N, Ho, Wo), or (C, kh, kw, Ho, Wo, N) with ``batch_last``
    input_size : (H, W) of the image to rebuild

    Returns
    -------
    x : array (N, C, H, W), C-contiguous, with
        ``x[n, c, h, w] = sum over (i, j, ho, wo) with ho·sh - ph + i·dh == h and
        wo·sw - pw + j·dw == w of col[c, i, j, n, ho, wo]``.
    """
    xp = backend.get_array_module(col)
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    H, W = input_size
    (sh, sw), (ph, pw) = stride, padding
    if backend.use_compiled(col) and _compiled_wins():
        from .compiled import im2col as _compiled
        fn = _compiled.col2im_batch_last if batch_last else _compiled.col2im
        col = backend.ascontiguous(col)
        N = col.shape[5] if batch_last else col.shape[3]
        x = xp.empty((N, col.shape[0], H, W), dtype=col.dtype)
        backend.parallel_for(col.shape[0], lambda lo, hi: fn(col, x, lo, hi, sh, sw, ph, pw, *dilation),
                             nbytes=x.nbytes + col.nbytes, like=col)
        return x
    if batch_last:
        C, kh, kw, Ho, Wo, N = col.shape
        Hp = max((Ho - 1) * sh + (kh - 1) * dilation[0] + 1, ph + H)
        Wp = max((Wo - 1) * sw + (kw - 1) * dilation[1] + 1, pw + W)
        buf = xp.zeros((C, Hp, Wp, N), dtype=col.dtype)
        for i in range(kh):
            for j in range(kw):
                window = _window_batch_last(buf, i, j, (Ho, Wo), stride, dilation)
                window += col[:, i, j]
        inside = buf[:, ph:ph + H, pw:pw + W].transpose(3, 0, 1, 2)
        if (Hp, Wp) == (H, W) or not backend.blas_transposes(buf):
            return backend.ascontiguous(inside)
        # BLAS transposes the whole buffer, one matrix, then the crop copies rows: 0.31-0.68x
        # the time of NumPy's transposing crop on ResNet-18's 4x4-16x16 maps (without the
        # BLAS transpose, 1.2-1.9x: hence the test)
        return backend.ascontiguous(backend.ascontiguous(buf.transpose(3, 0, 1, 2))[:, :, ph:ph + H, pw:pw + W])
    if _is_tiling(col.shape[1:3], stride, padding, dilation):
        return _col2im_tiles(col, input_size)
    return _col2im_windows(col, input_size, stride, padding, dilation)


def _col2im_tiles(col, input_size):
    """col2im for :func:`_is_tiling` geometries (e.g. a 2x2 stride-2 up-convolution): each
    pixel is read by at most one window, so the adjoint is a transposing copy."""
    xp = backend.get_array_module(col)
    H, W = input_size
    C, kh, kw, N, Ho, Wo = col.shape
    tiles = col.transpose(3, 0, 4, 1, 5, 2).reshape(N, C, Ho * kh, Wo * kw)
    if (Ho * kh, Wo * kw) == (H, W):
        return backend.ascontiguous(tiles)
    x = xp.zeros((N, C, H, W), dtype=col.dtype)
    backend.copy(x[:, :, :Ho * kh, :Wo * kw], tiles)
    return x


def _col2im_windows(col, input_size, stride, padding, dilation):
    """General col2im of (C, kh, kw, N, Ho, Wo) columns: one strided add per offset."""
    xp = backend.get_array_module(col)
    H, W = input_size
    (sh, sw), (ph, pw) = stride, padding
    C, kh, kw, N, Ho, Wo = col.shape
    Hp = max((Ho - 1) * sh + (kh - 1) * dilation[0] + 1, ph + H)
    Wp = max((Wo - 1) * sw + (kw - 1) * dilation[1] + 1, pw + W)
    buf = xp.zeros((C, N, Hp, Wp), dtype=col.dtype)

    def add_channels(lo, hi):      # channels are independent: chunks run on the pool
        for i in range(kh):
            for j in range(kw):
                window = _window(buf[lo:hi], i, j, (Ho, Wo), stride, dilation)
                window += col[lo:hi, i, j]
    backend.parallel_for(C, add_channels, nbytes=2 * col.nbytes, like=col)
    return backend.ascontiguous(buf[:, :, ph:ph + H, pw:pw + W].transpose(1, 0, 2, 3))
