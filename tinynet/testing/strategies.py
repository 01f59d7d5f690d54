"""Hypothesis strategies for drawing op inputs (requires the ``hypothesis`` package).

    >>> from hypothesis import given
    >>> from tinynet.testing import strategies as tst
    >>> @given(tst.arrays(shape=tst.shapes(min_dims=1)))
    ... def test_something(x): ...

Values are float64 and bounded away from overflow; ``tie_free`` arrays have pairwise
distinct entries separated by at least ``gap`` (max-like ops are not differentiable at
ties, and a finite difference straddling a tie is wrong).
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .registry import Sample

__all__ = ["shapes", "arrays", "tie_free", "broadcastable_shapes", "dims", "positive",
           "away_from", "pooling", "Sample", "samples"]


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4):
    """Array shapes with sides in ``[min_side, max_side]``."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def arrays(shape=None, low: float = -3.0, high: float = 3.0, dtype=np.float64):
    """float64 arrays (finite, in ``[low, high]``) of a given or drawn shape."""
    return hnp.arrays(dtype, shape if shape is not None else shapes(),
                      elements=st.floats(low, high, allow_nan=False, allow_infinity=False,
                                         allow_subnormal=False, width=64))


def positive(shape=None, low: float = 0.2, high: float = 3.0):
    """Arrays bounded away from zero (for log, sqrt, division)."""
    return arrays(shape, low, high)


@st.composite
def away_from(draw, points, shape=None, low: float = -3.0, high: float = 3.0, gap: float = 1e-3):
    """Arrays with no element within ``gap`` of any of ``points`` (kinks of relu, abs...)."""
    x = draw(arrays(shape, low, high))
    for p in points:
        near = np.abs(x - p) < gap
        x = np.where(near, p + np.where(x >= p, 1, -1) * gap * 2, x)
    return x


@st.composite
def tie_free(draw, shape=None, low: float = -3.0, high: float = 3.0, gap: float = 1e-2):
    """Arrays whose elements are all distinct by at least ``gap`` (a shuffled grid)."""
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else \
        (draw(shapes()) if shape is None else shape)
    n = int(np.prod(shape))
    span = high - low
    step = max(gap, span / max(n, 1))
    grid = low + step * np.arange(n)
    perm = draw(st.permutations(range(n))) if n else []
    jitter = draw(hnp.arrays(np.float64, (n,), elements=st.floats(0, step * 0.3)))
    return (grid[list(perm)] + jitter).reshape(shape) if n else np.zeros(shape)


@st.composite
def pooling(draw, special: bool = False, max_side: int = 7):
    """A max-pooling case ``(x, kwargs)``: ``kernel_size`` 1-3, ``stride`` 1-3, ``padding``
    up to half the kernel, ``dilation`` 1-2 and ``ceil_mode`` (or, one case in two, 2x2
    tiles: kernel 2, stride 2, even sides), and an (N, C, H, W) float64 input, N <= 2,
    C <= 3, sides up to ``max_side`` and at least the padded window's reach, of a few
    distinct values: ties between positives, zeros of both signs and negatives in most
    windows, and with ``special`` -inf, inf and NaN among them."""
    k = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.integers(0, k // 2))
    stride = draw(st.integers(1, 3))
    reach = dilation * (k - 1) + 1
    h = draw(st.integers(max(1, reach - 2 * padding), max_side))
    w = draw(st.integers(max(1, reach - 2 * padding), max_side))
    if draw(st.booleans()):
        k, stride, padding, dilation = 2, 2, 0, 1
        h, w = 2 * draw(st.integers(1, max_side // 2)), 2 * draw(st.integers(1, max_side // 2))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    values = [-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0] + ([-np.inf, np.inf, np.nan] if special else [])
    n = int(np.prod(shape))
    x = draw(st.lists(st.sampled_from(values), min_size=n, max_size=n))
    return np.array(x).reshape(shape), dict(kernel_size=k, stride=stride, padding=padding,
                                            dilation=dilation, ceil_mode=draw(st.booleans()))


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3,
                         max_side: int = 4):
    """A tuple of ``num_shapes`` shapes that broadcast together."""
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims,
                                             max_dims=max_dims, max_side=max_side).map(
        lambda r: r.input_shapes)


@st.composite
def dims(draw, ndim: int, multiple: bool = False, allow_none: bool = True):
    """A valid ``dim`` argument for an ``ndim``-dim tensor: an int (maybe negative), a
    tuple of distinct ints (``multiple=True``) or None."""
    if ndim == 0:
        return None
    choices = [st.integers(-ndim, ndim - 1)]
    if multiple:
        choices.append(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)
                       .map(tuple))
    if allow_none:
        choices.append(st.none())
    return draw(st.one_of(*choices))


def samples(*arg_strategies, **kwarg_strategies):
    """A strategy of ``Sample``s from one strategy per positional and keyword argument."""
    return st.tuples(st.tuples(*arg_strategies), st.fixed_dictionaries(kwarg_strategies)).map(
        lambda ak: Sample(ak[0], ak[1]))
