"""Inverted dropout: y = x · m / (1 - p) with m ~ Bernoulli(1 - p), drawn from tinynet's
one generator (``tinynet.manual_seed`` makes it repeatable; a resumed run draws the same
masks). The gradient is g · m / (1 - p), the same constant mask: the op is linear in x,
so its backward is the op itself, and every derivative order follows. The graph keeps m
as booleans (1 byte per element, as PyTorch does, where a float mask took 4: 6 MB of a
U-Net step's peak memory)."""
from __future__ import annotations

from ..autograd import Function
from .. import backend
from ..backend import numpy as np
from ..random import keep_mask
from ..tensor import Tensor
from ._operands import check_tensor, inplace_ignored
from .activation import _compiled_pass, _compiled_route

__all__ = ["dropout", "dropout2d"]


class Dropout(Function):
    """y = x · keep · scale, keep a boolean mask broadcastable to x. A mask of x's shape
    on a large C-contiguous x takes one compiled pass on every core
    (:func:`tinynet.kernels.compiled.elementwise.dropout_forward`; the NumPy route's two
    passes on one thread took 5 ms of a U-Net training step, its 18 dropouts' forward and
    backward), with the same values."""
    unread_inputs = (0,)      # backward reads the mask kept
    outputs_unread = True

    def forward(self, x, keep=None, scale=1.0):
        self.keep, self.scale = keep, scale
        if _compiled_route(x) and keep.shape == x.shape and keep.flags.c_contiguous:
            y = backend.get_array_module(x).empty(x.shape, x.dtype)
            _compiled_pass("dropout_forward", x.reshape(-1), keep.reshape(-1), x.dtype.type(scale), y.reshape(-1))
            return y
        y = x * keep                     # bool promotes to x's dtype
        y *= x.dtype.type(scale)
        return y

    def backward(self, g):
        return Dropout.apply(g, keep=self.keep, scale=self.scale)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zeroes each element with probability ``p`` and scales the rest by 1/(1 - p).

    The identity when ``training`` is False or ``p`` is 0; all zeros when ``p`` is 1.
    ``inplace`` is accepted for PyTorch compatibility and ignored (the result is a new
    tensor; ``input`` is not modified).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.dropout(tn.ones(4), p=0.5, training=False).numpy().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    check_tensor(input, "dropout", "input", floating=True)
    inplace_ignored(inplace, "dropout")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be a number in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return Dropout.apply(input, keep=input.xp.zeros(input.shape, dtype=bool), scale=0.0)
    # Drawn on the host so that a seed gives the same mask on every device: float32
    # uniforms u >= p (2^-24 resolution is plenty for p), tested on the raw draws.
    keep = keep_mask(input.shape, p)
    return Dropout.apply(input, keep=backend.to_device(keep, input.device), scale=1.0 / (1.0 - p))


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
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
    inplace_ignored(inplace, "dropout2d")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: probability p must be a number in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return input
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    if p == 1.0:
        keep, scale = np.zeros(shape, dtype=bool), 0.0
    else:
        keep, scale = keep_mask(shape, p), 1.0 / (1.0 - p)
    return Dropout.apply(input, keep=backend.to_device(keep, input.device), scale=scale)
