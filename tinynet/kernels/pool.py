"""Max and average pooling on raw arrays (no autograd).

Every kernel is a loop over the kh·kw window offsets; offset (i, j) sees the strided
sub-grid ``x_pad[:, :, i·dh :: sh, j·dw :: sw]`` (one element of every window), exactly
as in :mod:`tinynet.kernels.im2col`. No loop touches a pixel.

Max pooling keeps, per output, the window offset ``k = i·kw + j`` of its maximum
(``argmax``, a small integer array). Offsets are visited in row-major order and a later
offset wins only when strictly greater, so ties go to the first maximum, as in PyTorch.
From the offset, :func:`flat_indices` gives PyTorch's ``return_indices`` values,
``h·W + w`` in the unpadded input. The backward (:func:`max_pool2d_backward`) writes
``dy`` into the winning position of each window, and its adjoint
(:func:`max_pool2d_gather`) reads back from the same positions.

Average pooling divides each window sum by the window size: with
``count_include_pad`` the number of window elements inside the zero-padded input
(positions beyond it, which only ``ceil_mode`` creates, never count), otherwise the
number inside the real input. Its backward spreads ``dy / divisor`` back over the
window (the adjoint, col2im-style).

Output sizes come from :func:`tinynet.kernels.im2col.pool_output_size`.

Adaptive max pooling fixes the output size (Ho, Wo) instead of the window: output row i
covers input rows ``[floor(i·H/Ho), ceil((i+1)·H/Ho))`` (PyTorch's bins; they overlap when
Ho does not divide H). The windows differ in size by at most one, so the kernel loops over
the largest window's offsets, clipping each bin's rows/columns to its last one (a repeated
element can neither beat itself nor change the winner). A later element wins when strictly
greater or NaN (PyTorch's rule: ties keep the first, NaN propagates, the last NaN wins).
It keeps the flat index ``h·W + w`` itself (int64, what ``return_indices`` gives), and its
backward is a scatter-add there (bins overlap), its adjoint a gather.

Exact 2x2 tiles (kernel and stride 2, no padding, even H and W: every max pool of the
U-Net and the SimpleCNN) take compiled kernels where Numba is installed
(:mod:`tinynet.kernels.compiled.pool`): the same tournament and the same argmax in one
pass each way, 2-7x faster than the NumPy passes below, which remain the route on CuPy,
without Numba and with ``TINYNET_JIT=0``.

Threads: the N·C planes are independent, so on large inputs the 2x2 max-pool forward and
the max-pool backward run blocks of planes on tinynet's pool
(:func:`tinynet.backend.parallel_blocks`); small maps run in one call.
"""
from __future__ import annotations

from tinynet import backend
from tinynet.kernels.im2col import _padded_channel_major, pair, pool_output_size

__all__ = [
    "pool_geometry", "max_pool2d_forward", "max_pool2d_backward", "max_pool2d_gather",
    "flat_indices", "avg_pool2d_forward", "avg_pool2d_backward", "avg_pool2d_divisor",
    "adaptive_bins", "adaptive_max_pool2d_forward", "adaptive_max_pool2d_backward",
    "adaptive_max_pool2d_gather",
]


def pool_geometry(input_size, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    """Normalised (kernel, stride, padding, dilation, output_size, padded_size) pairs."""
    H, W = input_size
    k, s, p, d = pair(kernel_size), pair(stride), pair(padding), pair(dilation)
    out = (pool_output_size(H, k[0], s[0], p[0], d[0], ceil_mode),
           pool_output_size(W, k[1], s[1], p[1], d[1], ceil_mode))
    padded = (max((out[0] - 1) * s[0] + (k[0] - 1) * d[0] + 1, p[0] + H),
              max((out[1] - 1) * s[1] + (k[1] - 1) * d[1] + 1, p[1] + W))
    return k, s, p, d, out, padded


def _sub_grid(buf, i, j, out_hw, stride, dilation):
    (Ho, Wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return buf[:, :, i * dh:i * dh + (Ho - 1) * sh + 1:sh, j * dw:j * dw + (Wo - 1) * sw + 1:sw]


def _padded(x, out, k, s, p, d, fill):
    """``x`` padded (with ``fill``) so that every window lies inside; no copy if none needed."""
    # _padded_channel_major swaps the first two axes; handing it the swapped view keeps NCHW.
    return _padded_channel_major(x.transpose(1, 0, 2, 3), out, k, s, p, d, fill)


def _tiles_exactly(input_size, k, s, p, d, out):
    """True when the windows tile the input: no overlap, no gap, no padding."""
    return (k == s and d == (1, 1) and p == (0, 0)
            and (out[0] * k[0], out[1] * k[1]) == tuple(input_size))


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                       relu=False):
    """Max pooling with argmax.

    Parameters
    ----------
    x : array (N, C, H, W)
    relu : bool
        Apply ReLU to the output, ``y = 0 if y < 0 else y`` (as
        :func:`tinynet.functional.relu`): the pool, then ReLU on its output, in the same
        pass on the compiled 2x2 route (a ``maximum`` pass over ``y`` on the others).

    Returns
    -------
    y : array (N, C, Ho, Wo), ``y = max over (i, j) of x_pad[n, c, ho·sh + i·dh, wo·sw + j·dw]``
        with ``-inf`` padding.
    argmax : int8/int32 array (N, C, Ho, Wo), the row-major window offset ``i·kw + j`` of
        the first maximum.
    """
    xp = backend.get_array_module(x)
    k, s, p, d, out, _ = pool_geometry(x.shape[2:], kernel_size, stride or kernel_size,
                                       padding, dilation, ceil_mode)
    tiles_2x2 = k == (2, 2) and _tiles_exactly(x.shape[2:], k, s, p, d, out)
    if tiles_2x2 and backend.use_compiled(x):
        return _max_pool_2x2_compiled(xp, x, out, relu)
    y, argmax = _max_pool_numpy(xp, x, k, s, p, d, out, tiles_2x2)
    if relu:
        xp.maximum(y.dtype.type(0), y, out=y)
    return y, argmax


def _max_pool_numpy(xp, x, k, s, p, d, out, tiles_2x2):
    """:func:`max_pool2d_forward`'s NumPy routes (also CuPy's)."""
    buf = _padded(x, out, k, s, p, d, -xp.inf)
    index_dtype = xp.int8 if k[0] * k[1] <= 127 else xp.int32
    if tiles_2x2:
        # 2x2 tiles: a pairwise tournament over the four sub-grids (3 compares, 3 maxima).
        # The test is on the kernel's shape, not its size: (1, 4) and (4, 1) windows also
        # have four offsets but are not 2x2 tiles.
        N, C, H, W = x.shape
        if W <= 8 and N * C >= 64:
            # Tiny maps: NumPy's cost per contiguous run dominates (a run is Wo <= 4
            # elements), so pool an (H, W, N, C) copy, whose runs are N·C long.
            y, argmax = _max_pool_2x2_tournament(xp, backend.ascontiguous(x.transpose(2, 3, 0, 1)),
                                                 spatial_first=True)
            return (backend.ascontiguous(y.transpose(2, 3, 0, 1)),
                    xp.ascontiguousarray(argmax.transpose(2, 3, 0, 1)))
        y = xp.empty((N * C, 1) + out, dtype=x.dtype)
        argmax = xp.empty((N * C, 1) + out, dtype=xp.int8)
        planes = buf.reshape(N * C, 1, H, W)

        def pool_planes(b0, b1):
            y[b0:b1], argmax[b0:b1] = _max_pool_2x2_tournament(xp, planes[b0:b1], spatial_first=False)
        # planes (image channels) in L2-sized blocks: the tournament's strided sweeps and
        # temporaries stay cached (8x64x112x112: 20 -> 9.4 ms; docs/kernels/pooling.md)
        backend.parallel_blocks(N * C, pool_planes, H * W * x.itemsize, like=x)
        return y.reshape((N, C) + out), argmax.reshape((N, C) + out)
    return _max_pool_offset_loop(xp, buf, k, s, d, out, index_dtype)


def _max_pool_2x2_compiled(xp, x, out, relu=False):
    """The 2x2 tiles' max (ReLU of it where ``relu``) and argmax by the compiled kernel
    (:mod:`tinynet.kernels.compiled.pool`), planes split over tinynet's threads."""
    from .compiled import pool as _compiled
    N, C, H, W = x.shape
    planes = backend.ascontiguous(x).reshape(N * C, H, W)
    y = xp.empty((N * C,) + out, dtype=x.dtype)
    argmax = xp.empty((N * C,) + out, dtype=xp.int8)
    backend.parallel_for(N * C,
                         lambda lo, hi: _compiled.max_pool_2x2_forward(planes, y, argmax, lo, hi, relu),
                         nbytes=x.nbytes + y.nbytes + argmax.nbytes, like=x)
    return y.reshape((N, C) + out), argmax.reshape((N, C) + out)


def _max_pool_offset_loop(xp, buf, k, s, d, out, index_dtype):
    """The general path: max and argmax of a padded (N, C, Hp, Wp) ``buf`` by a loop over
    the kh·kw window offsets in row-major order (a later offset wins only when strictly
    greater, so ties keep the first)."""
    y = xp.array(_sub_grid(buf, 0, 0, out, s, d))
    argmax = xp.zeros(y.shape, dtype=index_dtype)
    for offset in range(1, k[0] * k[1]):
        window = _sub_grid(buf, offset // k[1], offset % k[1], out, s, d)
        better = window > y
        xp.maximum(y, window, out=y)
        argmax[better] = offset
    return y, argmax


def _max_pool_2x2_tournament(xp, x, spatial_first):
    """Max and argmax over exact 2x2 tiles of ``x`` (N, C, H, W), or (H, W, N, C) when
    ``spatial_first``; results in the same layout."""
    if spatial_first:
        a, b, c, e = (x[i::2, j::2] for i in range(2) for j in range(2))
    else:
        a, b, c, e = (x[:, :, i::2, j::2] for i in range(2) for j in range(2))
    top_right = b > a                     # strict: ties keep the earlier offset
    bottom_right = e > c
    top = xp.maximum(a, b)
    bottom = xp.maximum(c, e)
    take_bottom = bottom > top
    y = xp.maximum(top, bottom, out=top)
    # bool arrays are one byte: viewed as int8 they are the offsets 0/1 (and 2/3)
    argmax = xp.where(take_bottom, bottom_right.view(xp.int8) + 2, top_right.view(xp.int8))
    return y, argmax


def flat_indices(argmax, input_size, kernel_size, stride=None, padding=0, dilation=1):
    """PyTorch's ``return_indices``: the argmax as ``h·W + w`` in the unpadded input (int64)."""
    xp = backend.get_array_module(argmax)
    k, s, p, d = pair(kernel_size), pair(stride or kernel_size), pair(padding), pair(dilation)
    Ho, Wo = argmax.shape[2:]
    W = input_size[1]
    offset = argmax.astype(xp.int64)
    i, j = offset // k[1], offset % k[1]
    h = xp.arange(Ho, dtype=xp.int64)[:, None] * s[0] - p[0] + i * d[0]
    w = xp.arange(Wo, dtype=xp.int64)[None, :] * s[1] - p[1] + j * d[1]
    return h * W + w


def max_pool2d_backward(grad, argmax, input_size, kernel_size, stride=None, padding=0,
                        dilation=1, ceil_mode=False, relu_output=None):
    """Routes ``grad`` (N, C, Ho, Wo) to each window's argmax; returns (N, C, H, W).

    Windows that do not overlap write their sub-grid by assignment; overlapping windows
    (stride smaller than the dilated kernel) may share a winner, so they accumulate.
    Routing is ``grad * (argmax == offset)`` (one pass), so a NaN or infinite gradient
    also turns the window's other positions into NaN. With ``relu_output`` (the output of
    ``max_pool2d_forward(..., relu=True)``), ``grad`` is first ReLU's gradient
    ``grad·[y > 0]``: in the same pass on the compiled 2x2 route.
    """
    xp = backend.get_array_module(grad)
    N, C = grad.shape[:2]
    k, s, p, d, out, padded = pool_geometry(input_size, kernel_size, stride or kernel_size,
                                            padding, dilation, ceil_mode)
    overlapping = s[0] < (k[0] - 1) * d[0] + 1 or s[1] < (k[1] - 1) * d[1] + 1
    covered = _tiles_exactly(input_size, k, s, p, d, out)
    if (k == (2, 2) and covered and argmax.dtype == xp.int8 and backend.use_compiled(grad)
            and (relu_output is None or backend.use_compiled(grad, relu_output))):
        return _max_pool_2x2_backward_compiled(xp, grad, argmax, input_size, relu_output)
    if relu_output is not None:
        grad = grad * (relu_output > 0)
    buf = (xp.empty if covered else xp.zeros)((N * C, 1) + padded, dtype=grad.dtype)
    grad = grad.reshape(N * C, 1, *out)
    argmax = argmax.reshape(N * C, 1, *out)

    def route_planes(b0, b1):      # planes are independent
        for offset in range(k[0] * k[1]):
            window = _sub_grid(buf[b0:b1], offset // k[1], offset % k[1], out, s, d)
            if overlapping:
                window += grad[b0:b1] * (argmax[b0:b1] == offset)
            else:
                # one pass: dy where this offset won, 0 elsewhere, into the sub-grid
                xp.multiply(grad[b0:b1], argmax[b0:b1] == offset, out=window)
    # planes in L2-sized blocks: the kh·kw strided writes of a block move its cache lines
    # once (8x64x112x112: 12.5 -> 5.2 ms; docs/kernels/pooling.md)
    backend.parallel_blocks(N * C, route_planes, buf[0].nbytes, like=grad)
    H, W = input_size
    buf = buf.reshape((N, C) + padded)
    if buf.shape[2:] == (H, W):
        return buf
    return backend.ascontiguous(buf[:, :, p[0]:p[0] + H, p[1]:p[1] + W])


def _max_pool_2x2_backward_compiled(xp, grad, argmax, input_size, relu_output=None):
    """:func:`max_pool2d_backward` over 2x2 tiles by the compiled kernel."""
    from .compiled import pool as _compiled
    N, C, Ho, Wo = grad.shape
    g = backend.ascontiguous(grad).reshape(N * C, Ho, Wo)
    where = xp.ascontiguousarray(argmax).reshape(N * C, Ho, Wo)
    relu = relu_output is not None
    y = backend.ascontiguous(relu_output).reshape(N * C, Ho, Wo) if relu else g
    dx = xp.empty((N, C) + tuple(input_size), dtype=grad.dtype)
    planes, zero = dx.reshape(N * C, *input_size), grad.dtype.type(0)
    backend.parallel_for(N * C,
                         lambda lo, hi: _compiled.max_pool_2x2_backward(g, where, zero, planes, lo, hi, y, relu),
                         nbytes=dx.nbytes + g.nbytes + where.nbytes, like=grad)
    return dx


def max_pool2d_gather(values, argmax, kernel_size, stride=None, padding=0, dilation=1,
                      ceil_mode=False):
    """Adjoint of :func:`max_pool2d_backward`: ``values`` (N, C, H, W) read at each
    window's argmax, giving (N, C, Ho, Wo)."""
    xp = backend.get_array_module(values)
    k, s, p, d, out, _ = pool_geometry(values.shape[2:], kernel_size, stride or kernel_size,
                                       padding, dilation, ceil_mode)
    buf = _padded(values, out, k, s, p, d, 0)
    result = xp.zeros(argmax.shape, dtype=values.dtype)
    for offset in range(k[0] * k[1]):
        window = _sub_grid(buf, offset // k[1], offset % k[1], out, s, d)
        xp.copyto(result, window, where=argmax == offset)
    return result


def avg_pool2d_divisor(input_size, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, dtype=None, xp=None):
    """The (Ho, Wo) array of window sizes that :func:`avg_pool2d_forward` divides by."""
    xp = xp or backend.numpy
    k, s, p, _, out, _ = pool_geometry(input_size, kernel_size, stride or kernel_size,
                                       padding, 1, ceil_mode)
    counts = []
    for axis in range(2):
        start = xp.arange(out[axis]) * s[axis] - p[axis]
        end = xp.minimum(start + k[axis], input_size[axis] + p[axis])
        if not count_include_pad:
            start, end = xp.maximum(start, 0), xp.minimum(end, input_size[axis])
        counts.append(end - start)
    return (counts[0][:, None] * counts[1][None, :]).astype(dtype or xp.float64)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True):
    """Average pooling: window sums over the zero-padded input divided by
    :func:`avg_pool2d_divisor`. (N, C, H, W) -> (N, C, Ho, Wo)."""
    xp = backend.get_array_module(x)
    k, s, p, d, out, _ = pool_geometry(x.shape[2:], kernel_size, stride or kernel_size,
                                       padding, 1, ceil_mode)
    buf = _padded(x, out, k, s, p, d, 0)
    y = xp.array(_sub_grid(buf, 0, 0, out, s, d))
    for offset in range(1, k[0] * k[1]):
        y += _sub_grid(buf, offset // k[1], offset % k[1], out, s, d)
    y /= avg_pool2d_divisor(x.shape[2:], k, s, p, ceil_mode, count_include_pad, x.dtype, xp)
    return y


def avg_pool2d_backward(grad, input_size, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True):
    """Adjoint of :func:`avg_pool2d_forward`: ``grad / divisor`` added over every window."""
    xp = backend.get_array_module(grad)
    N, C = grad.shape[:2]
    k, s, p, d, out, padded = pool_geometry(input_size, kernel_size, stride or kernel_size,
                                            padding, 1, ceil_mode)
    share = grad / avg_pool2d_divisor(input_size, k, s, p, ceil_mode, count_include_pad,
                                      grad.dtype, xp)
    buf = xp.zeros((N, C) + padded, dtype=grad.dtype)
    for offset in range(k[0] * k[1]):
        window = _sub_grid(buf, offset // k[1], offset % k[1], out, s, d)
        window += share
    H, W = input_size
    return backend.ascontiguous(buf[:, :, p[0]:p[0] + H, p[1]:p[1] + W])


def adaptive_bins(size, out, xp):
    """PyTorch's adaptive bins along one axis: ``start[i] = floor(i·size/out)``,
    ``end[i] = ceil((i+1)·size/out)`` (int64 arrays of length ``out``)."""
    i = xp.arange(out, dtype=xp.int64)
    return (i * size) // out, -((-(i + 1) * size) // out)


def adaptive_max_pool2d_forward(x, output_size):
    """Adaptive max pooling with indices.

    Parameters
    ----------
    x : array (N, C, H, W);  output_size : (Ho, Wo)

    Returns
    -------
    y : array (N, C, Ho, Wo), ``y[n, c, i, j] = max of x[n, c, hs_i:he_i, ws_j:we_j]``
        over the bins of :func:`adaptive_bins`.
    indices : int64 array (N, C, Ho, Wo), ``h·W + w`` of the maximum in its plane (the
        first of equal maxima; the last NaN if any).
    """
    xp = backend.get_array_module(x)
    H, W = x.shape[2:]
    (h_start, h_end), (w_start, w_end) = adaptive_bins(H, output_size[0], xp), adaptive_bins(W, output_size[1], xp)
    y, indices = None, None
    for i in range(int((h_end - h_start).max())):          # offsets of the largest window
        h = xp.minimum(h_start + i, h_end - 1)[:, None]
        for j in range(int((w_end - w_start).max())):
            w = xp.minimum(w_start + j, w_end - 1)[None, :]
            window = x[:, :, h, w]                         # (N, C, Ho, Wo), one element per bin
            flat = h * W + w
            if y is None:
                y, indices = window, xp.broadcast_to(flat, window.shape).copy()
                continue
            better = (window > y) | xp.isnan(window)
            y = xp.where(better, window, y)
            indices = xp.where(better, flat, indices)
    return y, indices


def adaptive_max_pool2d_backward(grad, indices, input_size):
    """``grad`` (N, C, Ho, Wo) added into a zero (N, C, H, W) at each output's index (bins
    may overlap and share a winner, so it accumulates)."""
    xp = backend.get_array_module(grad)
    N, C, Ho, Wo = grad.shape
    H, W = input_size
    out = xp.zeros((N * C, H * W), dtype=grad.dtype)
    plane = xp.arange(N * C, dtype=xp.int64)[:, None] * (H * W)
    backend.scatter_add(out.reshape(-1), (plane + indices.reshape(N * C, Ho * Wo)).reshape(-1),
                        grad.reshape(-1))
    return out.reshape(N, C, H, W)


def adaptive_max_pool2d_gather(values, indices):
    """Adjoint of :func:`adaptive_max_pool2d_backward`: ``values`` (N, C, H, W) read at
    ``indices`` (N, C, Ho, Wo)."""
    xp = backend.get_array_module(values)
    N, C, H, W = values.shape
    Ho, Wo = indices.shape[2:]
    flat = values.reshape(N, C, H * W)          # explicit sizes: N = 0 has no -1 to infer
    return xp.take_along_axis(flat, indices.reshape(N, C, Ho * Wo), axis=2).reshape(indices.shape)
