"""Inverted dropout: y = x · m / (1 - p) with m ~ Bernoulli(1 - p), drawn from tinynet's
one generator (``tinynet.manual_seed`` makes it repeatable; a resumed run draws the same
masks). The gradient is g · m / (1 - p), the same constant mask."""
from __future__ import annotations

from ..autograd import Function
from .. import backend
from ..backend import numpy as np
from ..random import generator
from ..tensor import Tensor
from ._operands import check_tensor

__all__ = ["dropout", "dropout2d"]


class Dropout(Function):
    def forward(self, x, scaled_mask=None):
        self.scaled_mask = scaled_mask
        return x * scaled_mask

    def backward(self, g):
        return g * Tensor(self.scaled_mask)


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zeroes each element with probability ``p`` and scales the rest by 1/(1 - p).

    The identity when ``training`` is False or ``p`` is 0; all zeros when ``p`` is 1.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.dropout(tn.ones(4), p=0.5, training=False).numpy().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    check_tensor(input, "dropout", "input", floating=True)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be a number in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return input
    dtype = input.dtype
    if p == 1.0:
        mask = input.xp.zeros(input.shape, dtype=dtype)
    else:
        # Drawn on the host so that a seed gives the same mask on every device.
        # (float32 draws: half the work of float64, and 2^-24 resolution is plenty for p).
        keep = generator().random(input.shape, dtype=np.float32) >= p
        mask = keep.astype(dtype)
        mask *= 1.0 / (1.0 - p)
        mask = backend.to_device(mask, input.device)
    return Dropout.apply(input, scaled_mask=mask)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zeroes whole channels: each (n, c) plane of an (N, C, H, W) input is dropped with
    probability ``p`` and the kept ones are scaled by 1/(1 - p) (PyTorch's ``dropout2d``).

    As in PyTorch, a 3-D input is taken as (N, C, L) and its (n, c) rows are dropped.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.dropout2d(tn.ones(1, 2, 2, 2), p=0.5, training=False).shape
    (1, 2, 2, 2)
    """
    check_tensor(input, "dropout2d", "input", ndim=(3, 4), floating=True)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: probability p must be a number in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return input
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    if p == 1.0:
        mask = np.zeros(shape, dtype=input.dtype)
    else:
        keep = generator().random(shape, dtype=np.float32) >= p
        mask = keep.astype(input.dtype)
        mask *= 1.0 / (1.0 - p)
    return Dropout.apply(input, scaled_mask=backend.to_device(mask, input.device))
