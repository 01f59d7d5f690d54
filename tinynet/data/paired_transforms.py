"""Transforms for segmentation: each takes an ``(image, mask)`` pair and returns one, applying
the same geometry to both.

``image`` is (C, H, W) (bytes or floats), ``mask`` is (H, W) class indices. Geometric
transforms (resize, crop, flips, rotation by 90°) move image and mask together: the image
is resampled bilinearly, the mask by nearest neighbour, so it keeps exact class indices.
``Normalize`` and ``ToFloat`` change the image only; ``OneHot`` turns the mask into the
(K, H, W) float target a U-Net with K sigmoid outputs is trained against. Random choices
come from tinynet's generator (``tinynet.manual_seed`` makes them repeatable). These work
per sample, as :class:`~tinynet.data.SegmentationFolder` applies them, before batching.

>>> import numpy as np
>>> t = Compose([Resize(4), RandomHorizontalFlip(), OneHot(2)])
>>> image, mask = t((np.zeros((3, 8, 8), "uint8"), np.ones((8, 8), "int64")))
>>> image.shape, mask.shape, float(mask[1].min())
((3, 4, 4), (2, 4, 4), 1.0)
"""
from __future__ import annotations

from typing import Sequence

from .. import backend
from ..backend import numpy as np
from ..random import generator
from ..tensor import Tensor
from .transforms import Compose, _size_pair   # Compose applies any callables in order

__all__ = ["Compose", "Resize", "RandomCrop", "RandomHorizontalFlip", "RandomVerticalFlip",
           "RandomRotation90", "ToFloat", "Normalize", "OneHot"]


def _pair(sample, op):
    if not isinstance(sample, (tuple, list)) or len(sample) != 2:
        raise TypeError(f"{op}: expected an (image, mask) pair, got {type(sample).__name__}")
    image, mask = (s.data if isinstance(s, Tensor) else s for s in sample)
    if image.ndim != 3:
        raise ValueError(f"{op}: image must be (C, H, W), got shape {tuple(image.shape)}")
    if mask.ndim not in (2, 3) or tuple(mask.shape[-2:]) != tuple(image.shape[1:]):
        raise ValueError(f"{op}: mask must be (H, W) or (K, H, W) of the image's size "
                         f"{tuple(image.shape[1:])}, got shape {tuple(mask.shape)}")
    return image, mask


class Resize:
    """Resizes image (bilinear) and mask (nearest) to ``size``."""

    def __init__(self, size):
        self.size = _size_pair(size, "Resize")

    def __call__(self, sample):
        from .resize import bilinear, nearest
        image, mask = _pair(sample, "Resize")
        if tuple(image.shape[1:]) == self.size:
            return image, mask
        return bilinear(image[None], self.size)[0], nearest(mask[None], self.size)[0]

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"


class RandomCrop:
    """Crops the same random ``size`` window from image and mask."""

    def __init__(self, size):
        self.size = _size_pair(size, "RandomCrop")

    def __call__(self, sample):
        image, mask = _pair(sample, "RandomCrop")
        h, w = image.shape[1:]
        ch, cw = self.size
        if ch > h or cw > w:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the image ({h}, {w})")
        rng = generator()
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        return image[:, top:top + ch, left:left + cw], mask[..., top:top + ch, left:left + cw]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size})"


class _RandomFlip:
    axis = -1

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, sample):
        image, mask = _pair(sample, type(self).__name__)
        if generator().random() < self.p:
            xp = backend.get_array_module(image)
            return xp.flip(image, axis=self.axis), xp.flip(mask, axis=self.axis)
        return image, mask

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomHorizontalFlip(_RandomFlip):
    """Mirrors image and mask left-right with probability ``p``."""
    axis = -1


class RandomVerticalFlip(_RandomFlip):
    """Mirrors image and mask top-bottom with probability ``p``."""
    axis = -2


class RandomRotation90:
    """Rotates image and mask by k·90° with k drawn uniformly from {0, 1, 2, 3}
    (exact: no resampling; a non-square image swaps its height and width for odd k)."""

    def __call__(self, sample):
        image, mask = _pair(sample, "RandomRotation90")
        k = int(generator().integers(0, 4))
        xp = backend.get_array_module(image)
        return xp.rot90(image, k, axes=(-2, -1)), xp.rot90(mask, k, axes=(-2, -1))

    def __repr__(self) -> str:
        return "RandomRotation90()"


class ToFloat:
    """Image to float32 times ``scale`` (default 1: the U-Net scales bytes by 1/255 itself)."""

    def __init__(self, scale: float = 1.0):
        self.scale = float(scale)

    def __call__(self, sample):
        image, mask = _pair(sample, "ToFloat")
        return image.astype(np.float32) * np.float32(self.scale), mask

    def __repr__(self) -> str:
        return f"ToFloat(scale={self.scale:g})"


class Normalize:
    """``(image - mean[c]) / std[c]`` per channel; the mask is unchanged."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        from .transforms import Normalize as _Normalize
        self._normalize = _Normalize(mean, std)

    def __call__(self, sample):
        image, mask = _pair(sample, "Normalize")
        return self._normalize(image).data, mask

    def __repr__(self) -> str:
        return f"Normalize(mean={self._normalize.mean.tolist()}, std={self._normalize.std.tolist()})"


class OneHot:
    """Mask of class indices (H, W) -> float32 target (K, H, W), channel k = (mask == k).

    ``num_classes=1`` gives the single foreground channel ``mask == 1`` of a binary mask
    (for a U-Net with one sigmoid output).
    """

    def __init__(self, num_classes: int):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"OneHot: num_classes must be a positive int, got {num_classes!r}")
        self.num_classes = int(num_classes)

    def __call__(self, sample):
        image, mask = _pair(sample, "OneHot")
        if mask.ndim != 2:
            raise ValueError(f"OneHot: mask must be (H, W) class indices, got shape {tuple(mask.shape)}")
        xp = backend.get_array_module(mask)
        if self.num_classes == 1:
            return image, (mask == 1)[None].astype(xp.float32)
        classes = xp.arange(self.num_classes).reshape(-1, 1, 1)
        return image, (mask[None] == classes).astype(xp.float32)

    def __repr__(self) -> str:
        return f"OneHot(num_classes={self.num_classes})"
