"""Built-in data that needs no download.

* :func:`load_digits` — scikit-learn's copy of the UCI handwritten digits (8x8, 1797
  images), split into train and test.
* :func:`make_shapes` — generated images of circles, rectangles and triangles with their
  segmentation masks (for the U-Net).
* :func:`make_sine` and :func:`make_adding_problem` — generated sequence tasks.

Everything generated is deterministic given ``seed`` (a private NumPy generator, so the
global tinynet generator is left untouched).
"""
from __future__ import annotations

from ..backend import numpy as np
from .dataset import TensorDataset

__all__ = ["load_digits", "make_shapes", "make_sine", "make_adding_problem", "SHAPE_KINDS"]

SHAPE_KINDS = ("circle", "rectangle", "triangle")


def _split(n: int, test_fraction: float, seed: int):
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    n_test = int(round(n * test_fraction))
    return perm[n_test:], perm[:n_test]


def load_digits(test_fraction: float = 0.2, seed: int = 0, flatten: bool = False,
                as_arrays: bool = False):
    """The 8x8 handwritten digits (10 classes), shuffled and split into train and test.

    Needs scikit-learn (``pip install tinynet[examples]``); the data ships with it.

    Parameters
    ----------
    test_fraction : float
        Share of the 1797 images held out for testing (default 0.2 -> 359 test images).
    seed : int
        Seed of the shuffle before the split.
    flatten : bool
        Images as (N, 64) rows instead of (N, 1, 8, 8).
    as_arrays : bool
        Return ``((x_train, y_train), (x_test, y_test))`` NumPy arrays instead of
        :class:`TensorDataset`\\ s.

    Images are float32 scaled to [0, 1] (the raw values are 0..16); labels are int64.

    >>> train, test = load_digits()
    >>> len(train), len(test), train[0][0].shape
    (1438, 359, (1, 8, 8))
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError:
        raise ImportError("load_digits needs scikit-learn, which ships the digits data: "
                          "pip install scikit-learn  (or: pip install 'tinynet[examples]')") from None
    bunch = _sk_load_digits()
    x = (bunch.images.astype(np.float32) / np.float32(16.0))
    x = x.reshape(len(x), 64) if flatten else x.reshape(len(x), 1, 8, 8)
    y = bunch.target.astype(np.int64)
    train_idx, test_idx = _split(len(x), test_fraction, seed)
    train = (np.ascontiguousarray(x[train_idx]), y[train_idx])
    test = (np.ascontiguousarray(x[test_idx]), y[test_idx])
    if as_arrays:
        return train, test
    return TensorDataset(*train), TensorDataset(*test)


def _shape_masks(kind: str, rng, n: int, size: int, yy, xx):
    """Boolean masks (n, size, size) of one random shape of ``kind`` per image."""
    lo, hi = size * 0.10, size * 0.22
    if kind == "circle":
        r = rng.uniform(lo, hi, size=(n, 1, 1))
        cy = rng.uniform(r[:, 0, 0], size - r[:, 0, 0]).reshape(n, 1, 1)
        cx = rng.uniform(r[:, 0, 0], size - r[:, 0, 0]).reshape(n, 1, 1)
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
    if kind == "rectangle":
        hh = rng.uniform(lo, hi, size=(n, 1, 1))
        hw = rng.uniform(lo, hi, size=(n, 1, 1))
        cy = rng.uniform(hh[:, 0, 0], size - hh[:, 0, 0]).reshape(n, 1, 1)
        cx = rng.uniform(hw[:, 0, 0], size - hw[:, 0, 0]).reshape(n, 1, 1)
        return (np.abs(yy - cy) <= hh) & (np.abs(xx - cx) <= hw)
    if kind == "triangle":
        # Three vertices at random angles around a centre; a point is inside when the three
        # edge functions have the sign of the triangle's orientation.
        r = rng.uniform(lo * 1.3, hi * 1.3, size=(n, 1))
        cy = rng.uniform(r[:, 0], size - r[:, 0]).reshape(n, 1)
        cx = rng.uniform(r[:, 0], size - r[:, 0]).reshape(n, 1)
        base = rng.uniform(0, 2 * np.pi, size=(n, 1))
        angles = base + np.array([0.0, 2.1, 4.2]) + rng.uniform(-0.3, 0.3, size=(n, 3))
        vy = (cy + r * np.sin(angles))[:, :, None, None]      # (n, 3, 1, 1)
        vx = (cx + r * np.cos(angles))[:, :, None, None]
        inside = np.ones((n, size, size), dtype=bool)
        for a, b in ((0, 1), (1, 2), (2, 0)):
            edge = (vx[:, b] - vx[:, a]) * (yy - vy[:, a]) - (vy[:, b] - vy[:, a]) * (xx - vx[:, a])
            inside &= edge >= 0                                  # angles increase: same orientation
        return inside
    raise ValueError(f"make_shapes: unknown shape kind {kind!r}; choose from {SHAPE_KINDS}")


def make_shapes(n: int, size: int = 64, channels: int = 3, num_classes: int = 1,
                max_shapes: int = 3, noise: float = 8.0, seed: int = 0,
                kinds=SHAPE_KINDS, as_dataset: bool = False):
    """Generated segmentation data: coloured shapes on a noisy background, with masks.

    Each image holds 1..``max_shapes`` shapes of random kind (circle, rectangle,
    triangle), colour, size and place; later shapes are drawn over earlier ones.

    Returns
    -------
    images : float32 array (n, channels, size, size), values in [0, 255] (like image bytes;
        the default U-Net scales by 1/255).
    masks : float32 array (n, num_classes, size, size) of 0/1. With ``num_classes=1`` the
        mask is "any shape" (foreground); with ``num_classes=k > 1`` channel ``c`` marks
        the visible pixels of shapes of kind ``kinds[c]`` (only the first k kinds are drawn).

    ``as_dataset=True`` returns a :class:`TensorDataset` of the two instead.

    >>> x, m = make_shapes(4, size=32, seed=1)
    >>> x.shape, m.shape, sorted(set(m.ravel().tolist()))
    ((4, 3, 32, 32), (4, 1, 32, 32), [0.0, 1.0])
    """
    for name, v, least in (("n", n, 1), ("size", size, 8), ("channels", channels, 1),
                           ("num_classes", num_classes, 1), ("max_shapes", max_shapes, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise ValueError(f"make_shapes: {name} must be an int >= {least}, got {v!r}")
    kinds = tuple(kinds)
    for k in kinds:
        if k not in SHAPE_KINDS:
            raise ValueError(f"make_shapes: unknown shape kind {k!r}; choose from {SHAPE_KINDS}")
    if num_classes > 1:
        if num_classes > len(kinds):
            raise ValueError(f"make_shapes: num_classes={num_classes} but only {len(kinds)} kinds "
                             f"{kinds} are available")
        kinds = kinds[:num_classes]
    rng = np.random.Generator(np.random.PCG64(seed))
    yy, xx = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    background = rng.uniform(0, 90, size=(n, channels, 1, 1))
    images = background + rng.normal(0, noise, size=(n, channels, size, size))
    label = np.full((n, size, size), -1, dtype=np.int64)      # kind index of the top shape, -1 none
    count = rng.integers(1, max_shapes + 1, size=n)
    for slot in range(max_shapes):
        present = (slot < count)[:, None, None]
        kind_of = rng.integers(0, len(kinds), size=n)
        colour = rng.uniform(120, 255, size=(n, channels, 1, 1))
        for k, kind in enumerate(kinds):
            mask = _shape_masks(kind, rng, n, size, yy, xx) & present & (kind_of == k)[:, None, None]
            images = np.where(mask[:, None], colour + rng.normal(0, noise, size=(n, channels, 1, 1)), images)
            label[mask] = k
    images = np.clip(images, 0, 255).astype(np.float32)
    if num_classes == 1:
        masks = (label >= 0)[:, None].astype(np.float32)
    else:
        masks = (label[:, None] == np.arange(num_classes)[None, :, None, None]).astype(np.float32)
    if as_dataset:
        return TensorDataset(images, masks)
    return images, masks


def make_sine(n: int, seq_len: int = 50, horizon: int = 1, noise: float = 0.0, seed: int = 0,
              as_dataset: bool = False):
    """Sine continuation: given ``seq_len`` samples of a random sine wave, predict the next ``horizon``.

    Each sequence has a random frequency (0.02..0.08 cycles per step), phase and
    amplitude (0.5..1), plus optional Gaussian ``noise``. Returns ``x`` float32 (n, seq_len, 1) and ``y``
    float32 (n, horizon).

    >>> x, y = make_sine(3, seq_len=10, horizon=2)
    >>> x.shape, y.shape
    ((3, 10, 1), (3, 2))
    """
    if n < 1 or seq_len < 1 or horizon < 1:
        raise ValueError(f"make_sine: n, seq_len and horizon must be >= 1, got {n}, {seq_len}, {horizon}")
    rng = np.random.Generator(np.random.PCG64(seed))
    freq = rng.uniform(0.02, 0.08, size=(n, 1))           # cycles per step
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    amp = rng.uniform(0.5, 1.0, size=(n, 1))
    t = np.arange(seq_len + horizon)[None, :]
    wave = amp * np.sin(2 * np.pi * freq * t + phase)
    if noise:
        wave = wave + rng.normal(0, noise, size=wave.shape)
    x = wave[:, :seq_len, None].astype(np.float32)
    y = wave[:, seq_len:].astype(np.float32)
    return TensorDataset(x, y) if as_dataset else (x, y)


def make_adding_problem(n: int, seq_len: int = 50, seed: int = 0, as_dataset: bool = False):
    """The adding problem (Hochreiter & Schmidhuber, 1997).

    Input (n, seq_len, 2): channel 0 is uniform noise on [0, 1], channel 1 marks exactly
    two positions with 1 (one in each half). Target (n, 1): the sum of the two marked
    values. Predicting 1.0 always gives MSE ~0.167, the baseline to beat.

    >>> x, y = make_adding_problem(2, seq_len=6)
    >>> x.shape, y.shape, x[:, :, 1].sum(axis=1).tolist()
    ((2, 6, 2), (2, 1), [2.0, 2.0])
    """
    if n < 1 or seq_len < 2:
        raise ValueError(f"make_adding_problem: need n >= 1 and seq_len >= 2, got {n}, {seq_len}")
    rng = np.random.Generator(np.random.PCG64(seed))
    values = rng.random((n, seq_len))
    half = seq_len // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, seq_len, size=n)
    markers = np.zeros((n, seq_len))
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values * markers).sum(axis=1, keepdims=True).astype(np.float32)
    return TensorDataset(x, y) if as_dataset else (x, y)
