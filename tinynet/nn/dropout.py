"""``Dropout`` and ``Dropout2d`` (whole channels): inverted dropout in training mode, the identity in evaluation mode."""
from __future__ import annotations

from .. import functional as F
from ..tensor import Tensor
from .module import Module

__all__ = ["Dropout", "Dropout2d"]


class Dropout(Module):
    """Zeroes each element with probability ``p`` while training and scales the kept ones by
    1/(1 - p), so evaluation needs no rescaling. Masks come from tinynet's generator."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: probability p must be in [0, 1], got {p!r}")
        self.p, self.inplace = p, inplace       # as given: PyTorch's repr prints p=1 for 1

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Zeroes whole channels of an (N, C, H, W) input with probability ``p`` while training
    (each (n, c) plane at once) and scales the kept ones by 1/(1 - p); see ``F.dropout2d``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training)
