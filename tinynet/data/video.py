"""Generated video: moving digits (a small Moving-MNIST built from the built-in 8x8 digits).

Each sequence places ``digits`` images from :func:`load_digits` (values in [0, 1]) in a
``size x size`` frame, gives each a random velocity (1 to ``max_speed`` pixels per frame
along each axis) and lets them bounce off the borders; where digits overlap the frame
holds the brighter pixel. ``split="train"`` draws digit images from the digits' training
part and ``split="test"`` from its test part, so test sequences show unseen handwriting.

Shapes: ``(n, frames, 1, size, size)`` float32; the next-frame task reads the first
``frames_in`` frames and predicts the rest.
"""
from __future__ import annotations

from ..backend import numpy as np
from .datasets import load_digits

__all__ = ["make_moving_digits"]


def _bounce(start, velocity, frames: int, limit: int):
    """Positions ``(n, frames)`` of a point moving in [0, limit] and reflecting at the ends."""
    raw = start[:, None] + velocity[:, None] * np.arange(frames)[None, :]
    period = 2 * limit
    folded = np.mod(raw, period)
    return np.where(folded > limit, period - folded, folded)


def make_moving_digits(n: int, frames: int = 20, size: int = 32, digits: int = 2,
                       max_speed: int = 2, split: str = "train", seed: int = 0):
    """``n`` sequences of ``digits`` bouncing 8x8 digits: float32 ``(n, frames, 1, size, size)``.

    >>> video = make_moving_digits(2, frames=5, size=16)
    >>> video.shape, float(video.max()) <= 1.0
    ((2, 5, 1, 16, 16), True)
    """
    for name, value, least in (("n", n, 1), ("frames", frames, 1), ("size", size, 8),
                               ("digits", digits, 1), ("max_speed", max_speed, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"make_moving_digits: {name} must be an int >= {least}, got {value!r}")
    if split not in ("train", "test"):
        raise ValueError(f"make_moving_digits: split must be 'train' or 'test', got {split!r}")
    (train_x, _), (test_x, _) = load_digits(as_arrays=True)
    images = (train_x if split == "train" else test_x)[:, 0]          # (M, 8, 8)
    rng = np.random.Generator(np.random.PCG64(seed))
    limit = size - 8
    video = np.zeros((n, frames, size, size), dtype=np.float32)
    rows = np.arange(n)[:, None, None, None]
    offsets = np.arange(8)
    for _ in range(digits):
        picked = images[rng.integers(0, len(images), size=n)]          # (n, 8, 8)
        pos = []
        for _axis in range(2):
            start = rng.integers(0, limit + 1, size=n)
            speed = rng.integers(1, max_speed + 1, size=n) * rng.choice([-1, 1], size=n)
            pos.append(_bounce(start, speed, frames, limit).astype(np.int64))   # (n, frames)
        y = pos[0][:, :, None, None] + offsets[None, None, :, None]         # (n, frames, 8, 1)
        x = pos[1][:, :, None, None] + offsets[None, None, None, :]         # (n, frames, 1, 8)
        t = np.arange(frames)[None, :, None, None]
        patch = np.broadcast_to(picked[:, None], (n, frames, 8, 8))
        video[rows, t, y, x] = np.maximum(video[rows, t, y, x], patch)
    return video[:, :, None]
