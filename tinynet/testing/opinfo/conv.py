"""Registry entries: conv2d, conv_transpose2d, conv2d_weight, conv1d, and the conv, ReLU
and 2x2 max pool of ``nn.Sequential`` in one op (conv2d_relu_max_pool2d).

The strategies draw every argument (groups, non-square kernels and inputs, per-axis
stride / padding / dilation, output_padding, batch 1, bias or none) and pick input sizes
so that every drawn call is valid and has a positive output size. Those sizes come from
:func:`expected_conv_size` and :func:`expected_conv_transpose_size`, written here and not
taken from ``tinynet.kernels.im2col``: a strategy that asked the code under test which
sizes are valid would stop drawing the cases a bug there breaks, instead of failing.
A third of the conv2d / conv_transpose2d inputs are unbatched (C, H, W), which PyTorch
accepts too.
"""
from __future__ import annotations

import numpy as np
from hypothesis import assume, strategies as st

import tinynet.functional as F
from ...functional.conv_pool import conv2d_relu_max_pool2d
from ..registry import OpInfo, Sample, register
from .. import strategies as tst

__all__ = ["expected_conv_size", "expected_conv_transpose_size", "conv_geometry", "conv2d_samples",
           "conv_transpose2d_samples", "conv2d_weight_samples", "direct_conv2d", "conv_relu_pool_samples"]


def expected_conv_size(size, k, s=1, p=0, d=1):
    """PyTorch's convolution output length along one axis, counted window by window:
    window ``o`` covers padded positions ``o·s .. o·s + d·(k-1)``, all of which must lie
    inside the ``size + 2p`` padded input."""
    count = 0
    while count * s + d * (k - 1) <= size + 2 * p - 1:
        count += 1
    return count


def expected_conv_transpose_size(size, k, s=1, p=0, output_padding=0, d=1):
    """PyTorch's transposed-convolution output length along one axis: the input's ``size``
    pixels scattered ``s`` apart, each spreading over a dilated kernel of extent
    ``d·(k-1) + 1``, span ``(size-1)·s + d·(k-1) + 1`` positions; ``padding`` crops ``p``
    from each end and ``output_padding`` adds positions at the far end."""
    full = (size - 1) * s + d * (k - 1) + 1
    return full - 2 * p + output_padding


def _smallest(fits, start=1, limit=64):
    """The smallest size >= start for which ``fits(size)`` holds."""
    size = start
    while not fits(size) and size < limit:
        size += 1
    return size


@st.composite
def conv_geometry(draw, max_kernel=3, max_stride=3, max_padding=2, max_dilation=2, extra=4,
                  min_output=1):
    """(kernel, stride, padding, dilation, groups, spatial input size) with output >=
    ``min_output``."""
    k = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    s = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    p = (draw(st.integers(0, max_padding)), draw(st.integers(0, max_padding)))
    d = (draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation)))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    size = []
    for a in range(2):
        low = _smallest(lambda n: expected_conv_size(n, k[a], s[a], p[a], d[a]) >= min_output)
        size.append(draw(st.integers(low, low + extra)))
    return k, s, p, d, groups, tuple(size)


def _pair_or_int(draw, value):
    """Passes a square pair as an int half of the time (both spellings must work)."""
    return value[0] if value[0] == value[1] and draw(st.booleans()) else value


@st.composite
def conv2d_samples(draw):
    k, s, p, d, groups, (H, W) = draw(conv_geometry())
    N = draw(st.integers(1, 2))
    C_in, C_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    batch = (N,) if draw(st.sampled_from([True, True, False])) else ()   # () = unbatched
    x = draw(tst.arrays(batch + (C_in, H, W), -2, 2))
    w = draw(tst.arrays((C_out, C_in // groups) + k, -1, 1))
    b = draw(st.none() | tst.arrays((C_out,), -1, 1))
    return Sample((x, w, b), dict(stride=_pair_or_int(draw, s), padding=_pair_or_int(draw, p),
                                  dilation=_pair_or_int(draw, d), groups=groups))


@st.composite
def conv_transpose2d_samples(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    # output_padding must be smaller than stride or dilation (PyTorch's rule)
    op = tuple(draw(st.integers(0, max(s[a], d[a]) - 1)) for a in range(2))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    size = []
    for a in range(2):
        low = _smallest(lambda n: expected_conv_transpose_size(n, k[a], s[a], p[a], op[a], d[a]) >= 1)
        size.append(draw(st.integers(low, low + 3)))
    N = draw(st.integers(1, 2))
    C_in, C_out_g = groups * draw(st.integers(1, 2)), draw(st.integers(1, 2))
    batch = (N,) if draw(st.sampled_from([True, True, False])) else ()   # () = unbatched
    x = draw(tst.arrays(batch + (C_in,) + tuple(size), -2, 2))
    w = draw(tst.arrays((C_in, C_out_g) + k, -1, 1))
    b = draw(st.none() | tst.arrays((C_out_g * groups,), -1, 1))
    return Sample((x, w, b), dict(stride=s, padding=p, output_padding=op, groups=groups,
                                  dilation=d))


@st.composite
def conv2d_weight_samples(draw):
    k, s, p, d, groups, (H, W) = draw(conv_geometry())
    N = draw(st.integers(1, 2))
    C_in, C_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    Ho, Wo = expected_conv_size(H, k[0], s[0], p[0], d[0]), expected_conv_size(W, k[1], s[1], p[1], d[1])
    x = draw(tst.arrays((N, C_in, H, W), -2, 2))
    dy = draw(tst.arrays((N, C_out, Ho, Wo), -2, 2))
    return Sample((x, dy, (C_out, C_in // groups) + k),
                  dict(stride=s, padding=p, dilation=d, groups=groups))


register(OpInfo(
    "conv2d", F.conv2d, lambda: conv2d_samples(),
    lambda torch, x, w, b, **kw: torch.nn.functional.conv2d(x, w, b, **kw), max_examples=40))
register(OpInfo(
    "conv_transpose2d", F.conv_transpose2d, lambda: conv_transpose2d_samples(),
    lambda torch, x, w, b, **kw: torch.nn.functional.conv_transpose2d(x, w, b, **kw),
    max_examples=40))
register(OpInfo(
    "conv2d_weight", F.conv2d_weight, lambda: conv2d_weight_samples(),
    lambda torch, x, dy, shape, **kw: torch.nn.grad.conv2d_weight(x, shape, dy, **kw),
    max_examples=30))


def direct_conv2d(x, w, b, s, p, d, groups):
    """conv2d by its definition (float64 NumPy, a batched x): per output channel and kernel
    offset, the strided, dilated window of the zero-padded input times that weight."""
    N, C, H, W = x.shape
    C_out, C_g, kh, kw = w.shape
    Ho, Wo = expected_conv_size(H, kh, s[0], p[0], d[0]), expected_conv_size(W, kw, s[1], p[1], d[1])
    padded = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    y = np.zeros((N, C_out, Ho, Wo))
    for o in range(C_out):
        c0 = o // (C_out // groups) * C_g
        for i in range(kh):
            for j in range(kw):
                window = padded[:, c0:c0 + C_g, i * d[0]:i * d[0] + s[0] * (Ho - 1) + 1:s[0],
                                j * d[1]:j * d[1] + s[1] * (Wo - 1) + 1:s[1]]
                y[:, o] += np.tensordot(w[o, :, i, j], window, axes=([0], [1]))
        if b is not None:
            y[:, o] += b[o]
    return y


@st.composite
def conv_relu_pool_samples(draw, gap=1e-3):
    """conv2d's samples with a convolution output of at least 2x2 (odd sizes too: the pool
    drops the last row or column), kept only where every output the pool reads lies
    ``gap`` away from ReLU's kink and from the other values of its 2x2 window (a finite
    difference across a kink or a tie is meaningless), as :func:`direct_conv2d` computes it."""
    k, s, p, d, groups, (H, W) = draw(conv_geometry(min_output=2))
    C_in, C_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    batch = (draw(st.integers(1, 2)),) if draw(st.sampled_from([True, True, False])) else ()
    x = draw(tst.arrays(batch + (C_in, H, W), -2, 2))
    w = draw(tst.arrays((C_out, C_in // groups) + k, -1, 1))
    b = draw(st.none() | tst.arrays((C_out,), -1, 1))
    y = direct_conv2d(x.reshape((-1, C_in, H, W)), w, b, s, p, d, groups)
    Ho, Wo = y.shape[2] // 2 * 2, y.shape[3] // 2 * 2
    tiles = y[:, :, :Ho, :Wo].reshape(y.shape[0], C_out, Ho // 2, 2, Wo // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    tiles = tiles.reshape(-1, 4)
    apart = np.abs(tiles[:, :, None] - tiles[:, None, :]) + np.eye(4) * gap
    assume(np.abs(tiles).min() > gap and apart.min() >= gap)
    return Sample((x, w, b), dict(stride=_pair_or_int(draw, s), padding=_pair_or_int(draw, p),
                                  dilation=_pair_or_int(draw, d), groups=groups))


register(OpInfo(
    "conv2d_relu_max_pool2d", conv2d_relu_max_pool2d, lambda: conv_relu_pool_samples(),
    lambda torch, x, w, b, **kw: torch.nn.functional.max_pool2d(
        torch.relu(torch.nn.functional.conv2d(x, w, b, **kw)), 2),
    max_examples=40, note="nn.Sequential's Conv2d, ReLU, MaxPool2d(2) in one op; not exported"))


@st.composite
def conv1d_samples(draw):
    """conv2d's geometry on one axis: (N, C_in, L) or unbatched (C_in, L) inputs."""
    k, s, p, d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(0, 2)),
                  draw(st.integers(1, 2)))
    groups = draw(st.sampled_from([1, 1, 2]))
    low = _smallest(lambda n: expected_conv_size(n, k, s, p, d) >= 1)
    L = draw(st.integers(low, low + 4))
    C_in, C_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    batch = (draw(st.integers(1, 2)),) if draw(st.sampled_from([True, True, False])) else ()
    x = draw(tst.arrays(batch + (C_in, L), -2, 2))
    w = draw(tst.arrays((C_out, C_in // groups, k), -1, 1))
    b = draw(st.none() | tst.arrays((C_out,), -1, 1))
    return Sample((x, w, b), dict(stride=s, padding=draw(st.sampled_from([p, (p,)])),
                                  dilation=d, groups=groups))


register(OpInfo(
    "conv1d", F.conv1d, lambda: conv1d_samples(),
    lambda torch, x, w, b, **kw: torch.nn.functional.conv1d(x, w, b, **kw), max_examples=30))
