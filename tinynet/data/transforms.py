"""Image transforms on NCHW batches (or single CHW images), vectorised over the batch.

Each transform takes a Tensor (or array) and returns a new Tensor; inputs are never
modified in place. Random choices are drawn on the host from tinynet's generator, so
``tinynet.manual_seed`` makes them repeatable. Transforms are data preparation: they do
not record gradients.

>>> import tinynet as tn
>>> t = Compose([ToFloat(), Normalize([0.5], [0.5])])
>>> t(tn.tensor([[[[0, 255]]]], dtype="uint8")).tolist()
[[[[-1.0, 1.0]]]]
"""
from __future__ import annotations

from typing import Sequence

from .. import backend
from ..backend import numpy as np
from ..random import generator
from ..tensor import Tensor

__all__ = ["Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip", "ToFloat", "Lambda",
           "Resize", "RandomResizedCrop"]


def _array(x, op):
    if isinstance(x, Tensor):
        return x.data
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return x
    raise TypeError(f"{op}: expected a Tensor or an array, got {type(x).__name__}")


def _as_batch(a, op):
    """(C,H,W) -> (1,C,H,W), remembering to squeeze back."""
    if a.ndim == 4:
        return a, False
    if a.ndim == 3:
        return a[None], True
    raise ValueError(f"{op}: expected an image (C, H, W) or a batch (N, C, H, W), got shape {tuple(a.shape)}")


class Compose:
    """Applies transforms in order (image transforms here, or the pair transforms of
    :mod:`tinynet.data.paired_transforms`, which reuse this class)."""

    def __init__(self, transforms: Sequence):
        for t in transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Lambda:
    """Wraps a function as a transform."""

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError("Lambda: fn must be callable")
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)


class ToFloat:
    """Casts to float32 (or ``dtype``) and multiplies by ``scale`` (default 1/255: bytes -> [0, 1])."""

    def __init__(self, scale: float = 1.0 / 255.0, dtype="float32"):
        self.scale = float(scale)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"ToFloat: dtype must be floating-point, got {self.dtype}")

    def __call__(self, x):
        a = _array(x, "ToFloat")
        return Tensor(a.astype(self.dtype) * self.dtype.type(self.scale))

    def __repr__(self) -> str:
        return f"ToFloat(scale={self.scale:g})"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel of a CHW image or NCHW batch."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.size != self.std.size:
            raise ValueError(f"Normalize: mean has {self.mean.size} values but std has {self.std.size}")
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {self.std.tolist()}")

    def __call__(self, x):
        a = _array(x, "Normalize")
        if a.dtype.kind != "f":
            raise TypeError(f"Normalize: expected floating-point input, got {a.dtype} (apply ToFloat first)")
        b, squeeze = _as_batch(a, "Normalize")
        c = b.shape[1]
        if self.mean.size not in (1, c):
            raise ValueError(f"Normalize: {self.mean.size} means given but the input has {c} channels")
        xp = backend.get_array_module(a)
        mean = xp.asarray(self.mean.astype(a.dtype)).reshape(1, -1, 1, 1)
        std = xp.asarray(self.std.astype(a.dtype)).reshape(1, -1, 1, 1)
        out = (b - mean) / std
        return Tensor(out[0] if squeeze else out)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomHorizontalFlip:
    """Mirrors each image left-right with probability ``p`` (independently per image)."""

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, x):
        a = _array(x, "RandomHorizontalFlip")
        b, squeeze = _as_batch(a, "RandomHorizontalFlip")
        xp = backend.get_array_module(a)
        flip = xp.asarray(generator().random(b.shape[0]) < self.p).reshape(-1, 1, 1, 1)
        out = xp.where(flip, b[..., ::-1], b)
        return Tensor(out[0] if squeeze else out)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class RandomCrop:
    """Zero-pads by ``padding`` then crops a random ``size`` window from each image.

    All crops of a batch are gathered in one fancy-index into a sliding-window view of
    the padded batch: ``windows[n, :, dy[n], dx[n]]``.
    """

    def __init__(self, size, padding: int = 0):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if len(self.size) != 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in self.size):
            raise ValueError(f"RandomCrop: size must be a positive int or (h, w), got {size!r}")
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be a non-negative int, got {padding!r}")
        self.padding = int(padding)

    def __call__(self, x):
        a = _array(x, "RandomCrop")
        b, squeeze = _as_batch(a, "RandomCrop")
        xp = backend.get_array_module(a)
        p = self.padding
        if p:
            b = xp.pad(b, ((0, 0), (0, 0), (p, p), (p, p)))
        n, _, hp, wp = b.shape
        h, w = self.size
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the padded image "
                             f"({hp}, {wp})")
        rng = generator()
        dy = xp.asarray(rng.integers(0, hp - h + 1, size=n))
        dx = xp.asarray(rng.integers(0, wp - w + 1, size=n))
        windows = backend.sliding_window_view(b, (h, w), axis=(2, 3))  # (N, C, hp-h+1, wp-w+1, h, w)
        out = windows[xp.arange(n), :, dy, dx]                          # (N, C, h, w)
        return Tensor(out[0] if squeeze else out)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


def _size_pair(size, op):
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(pair) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in pair):
        raise ValueError(f"{op}: size must be a positive int or (height, width), got {size!r}")
    return int(pair[0]), int(pair[1])


class Resize:
    """Resizes a CHW image or NCHW batch to ``size`` (an int: square) by bilinear
    interpolation (PyTorch's ``align_corners=False``, no antialiasing); byte images stay bytes.
    The kernel is :func:`tinynet.data.resize.bilinear`.

    >>> import numpy as np
    >>> Resize(4)(np.zeros((3, 10, 7), dtype="uint8")).shape
    (3, 4, 4)
    """

    def __init__(self, size):
        self.size = _size_pair(size, "Resize")

    def __call__(self, x):
        from .resize import bilinear
        a = _array(x, "Resize")
        b, squeeze = _as_batch(a, "Resize")
        out = bilinear(b, self.size) if tuple(b.shape[2:]) != self.size else b
        return Tensor(out[0] if squeeze else out)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"


class RandomResizedCrop:
    """Crops a random box of each image and resizes it to ``size`` (Inception-style
    augmentation, as ``torchvision``'s transform of the same name).

    The box covers a fraction of the image's area drawn uniformly from ``scale`` and has an
    aspect ratio (width / height) drawn log-uniformly from ``ratio``; a box that does not
    fit is shrunk to fit. Each image of a batch gets its own box; the resampling is one
    vectorised bilinear gather (:func:`tinynet.data.resize.bilinear`).
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        self.size = _size_pair(size, "RandomResizedCrop")
        self.scale = tuple(float(s) for s in scale)
        self.ratio = tuple(float(r) for r in ratio)
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"RandomResizedCrop: scale must be (low, high) with 0 < low <= high <= 1, "
                             f"got {scale!r}")
        if len(self.ratio) != 2 or not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"RandomResizedCrop: ratio must be (low, high) with 0 < low <= high, got {ratio!r}")

    def __call__(self, x):
        from .resize import bilinear
        a = _array(x, "RandomResizedCrop")
        b, squeeze = _as_batch(a, "RandomResizedCrop")
        n, _, h, w = b.shape
        rng = generator()
        area = h * w * rng.uniform(self.scale[0], self.scale[1], size=n)
        aspect = np.exp(rng.uniform(np.log(self.ratio[0]), np.log(self.ratio[1]), size=n))
        bw = np.clip(np.sqrt(area * aspect), 1.0, w)
        bh = np.clip(np.sqrt(area / aspect), 1.0, h)
        top = rng.uniform(0.0, 1.0, size=n) * (h - bh)
        left = rng.uniform(0.0, 1.0, size=n) * (w - bw)
        out = bilinear(b, self.size, boxes=(top, left, bh, bw))
        return Tensor(out[0] if squeeze else out)

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"
