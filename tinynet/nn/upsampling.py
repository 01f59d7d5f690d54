"""Upsampling layers: ``Upsample`` (any mode of ``F.interpolate``; like PyTorch's, it
takes no ``antialias``) and PyTorch's two fixed variants ``UpsamplingNearest2d`` and
``UpsamplingBilinear2d`` (the latter with ``align_corners=True``). No parameters."""
from __future__ import annotations

from .. import functional as F
from ..functional.interpolate import MODES
from ..tensor import Tensor
from .module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]


class Upsample(Module):
    """Resizes (N, C, *spatial) to ``size`` or by ``scale_factor`` (see ``F.interpolate``).

    Example
    -------
    >>> import tinynet as tn
    >>> tn.nn.Upsample(scale_factor=2, mode="bilinear")(tn.ones(1, 3, 4, 4)).shape
    (1, 3, 8, 8)
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError(f"{type(self).__name__}: give exactly one of size or scale_factor, "
                             f"got size={size!r}, scale_factor={scale_factor!r}")
        if mode not in MODES:
            raise ValueError(f"{type(self).__name__}: mode must be one of "
                             f"{', '.join(map(repr, MODES))}, got {mode!r}")
        self.size = tuple(size) if isinstance(size, list) else size
        self.scale_factor = tuple(float(s) for s in scale_factor) if isinstance(
            scale_factor, (tuple, list)) else (None if scale_factor is None else float(scale_factor))
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """``Upsample(size, scale_factor, mode='nearest')`` for (N, C, H, W)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(size, scale_factor, mode='bilinear', align_corners=True)``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
