"""Registry entries: max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d.

Strategies draw kernel, stride (or None), padding (at most half the kernel), dilation,
ceil_mode, count_include_pad, return_indices and non-square inputs; max pooling gets
tie-free inputs (a finite difference across a tie is meaningless and PyTorch's choice at a
tie is a convention). A third of the inputs are unbatched (C, H, W), as PyTorch accepts.

Which input sizes are valid is decided by :func:`expected_pool_size`, written here by
enumerating windows, not by the library's ``pool_output_size``: a strategy that asked the
code under test which cases are valid would quietly stop drawing the cases a bug in that
helper breaks, instead of failing on them.
"""
from __future__ import annotations

from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst
from .conv import _smallest

__all__ = ["expected_pool_size", "pool_geometry", "windows_see_input", "max_pool2d_samples", "avg_pool2d_samples",
           "adaptive_avg_pool2d_samples", "adaptive_max_pool2d_samples"]


def expected_pool_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooled length along one axis, counted window by window.

    Window ``o`` starts at ``o·s`` in the padded input and its last element sits
    ``d·(k-1)`` further on. Without ``ceil_mode`` a window is kept while it lies entirely
    inside the padded input; with ``ceil_mode`` a partial window at the end is kept too
    (every window whose predecessor had not yet reached the last full position), unless
    it would start past the input, in the right padding.
    """
    last_full_start = size + 2 * p - d * (k - 1) - 1
    count = 0
    while True:
        start = count * s
        if ceil_mode:
            keep = start - s < last_full_start and start < size + p
        else:
            keep = start <= last_full_start
        if not keep:
            return count
        count += 1


def windows_see_input(size, k, s, p, d, ceil_mode):
    """True when every window covers at least one real (non-padding) element; with dilation,
    a window can otherwise fall entirely on padding (its max is -inf)."""
    out = expected_pool_size(size, k, s, p, d, ceil_mode)
    return out >= 1 and all(any(0 <= o * s - p + j * d < size for j in range(k)) for o in range(out))


def _batch(draw):
    """(N,) for a batched input, () for an unbatched (C, H, W) one (a third of the time)."""
    return (draw(st.integers(1, 2)),) if draw(st.sampled_from([True, True, False])) else ()


@st.composite
def pool_geometry(draw, max_kernel=3, dilation=True, extra=4):
    """(kernel, stride or None, padding, dilation, ceil_mode, input size), all valid."""
    k = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    s = stride or k
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    size = []
    for a in range(2):
        reach = d[a] * (k[a] - 1) + 1
        fits = lambda n: (n + 2 * p[a] >= reach  # noqa: E731
                          and windows_see_input(n, k[a], s[a], p[a], d[a], ceil_mode))
        low = _smallest(fits)
        size.append(draw(st.integers(low, low + extra).filter(fits)))
    return k, stride, p, d, ceil_mode, tuple(size)


@st.composite
def max_pool2d_samples(draw):
    k, stride, p, d, ceil_mode, (H, W) = draw(pool_geometry())
    shape = _batch(draw) + (draw(st.integers(1, 3)), H, W)
    x = draw(tst.tie_free(shape))
    return Sample((x,), dict(kernel_size=k, stride=stride, padding=p, dilation=d,
                             ceil_mode=ceil_mode, return_indices=draw(st.booleans())))


@st.composite
def avg_pool2d_samples(draw):
    k, stride, p, _, ceil_mode, (H, W) = draw(pool_geometry(dilation=False))
    shape = _batch(draw) + (draw(st.integers(1, 3)), H, W)
    x = draw(tst.arrays(shape, -2, 2))
    return Sample((x,), dict(kernel_size=k, stride=stride, padding=p, ceil_mode=ceil_mode,
                             count_include_pad=draw(st.booleans()),
                             divisor_override=draw(st.sampled_from([None, None, 3, -2]))))


@st.composite
def adaptive_avg_pool2d_samples(draw):
    H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    x = draw(tst.arrays(_batch(draw) + (draw(st.integers(1, 3)), H, W), -2, 2))
    Ho = draw(st.integers(1, H + 2))          # larger than the input is allowed (bins overlap)
    Wo = draw(st.none() | st.integers(1, W + 2))
    size = Ho if Wo == Ho and draw(st.booleans()) else (Ho, Wo)
    return Sample((x,), dict(output_size=size))


@st.composite
def adaptive_max_pool2d_samples(draw):
    """Tie-free inputs (3-D or 4-D), output sizes up to two past the input (overlapping bins,
    shared maxima), None entries, return_indices."""
    H, W = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    x = draw(tst.tie_free(_batch(draw) + (draw(st.integers(1, 3)), H, W)))
    Ho, Wo = draw(st.none() | st.integers(1, H + 2)), draw(st.none() | st.integers(1, W + 2))
    size = Ho if Wo == Ho and Ho is not None and draw(st.booleans()) else (Ho, Wo)
    return Sample((x,), dict(output_size=size, return_indices=draw(st.booleans())))


register(OpInfo(
    "max_pool2d", F.max_pool2d, lambda: max_pool2d_samples(),
    lambda torch, x, **kw: torch.nn.functional.max_pool2d(x, **kw), max_examples=40))
register(OpInfo(
    "avg_pool2d", F.avg_pool2d, lambda: avg_pool2d_samples(),
    lambda torch, x, **kw: torch.nn.functional.avg_pool2d(x, **kw), max_examples=40))
register(OpInfo(
    "adaptive_avg_pool2d", F.adaptive_avg_pool2d, lambda: adaptive_avg_pool2d_samples(),
    lambda torch, x, **kw: torch.nn.functional.adaptive_avg_pool2d(x, **kw), max_examples=40))
register(OpInfo(
    "adaptive_max_pool2d", F.adaptive_max_pool2d, lambda: adaptive_max_pool2d_samples(),
    lambda torch, x, **kw: torch.nn.functional.adaptive_max_pool2d(x, **kw), max_examples=40))
