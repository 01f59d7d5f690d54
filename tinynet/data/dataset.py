"""Datasets: anything with ``__len__`` and ``__getitem__``, plus arrays held in memory.

``TensorDataset`` keeps whole arrays so that :class:`~tinynet.data.DataLoader` can cut a
batch with one fancy-index per array instead of a Python loop over samples.
"""
from __future__ import annotations

from typing import Sequence

from .. import backend
from ..backend import numpy as np
from ..random import generator
from ..tensor import Tensor, tensor as _to_tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split"]


class Dataset:
    """Base class: override ``__getitem__(i)`` (one sample) and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} does not define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} does not define __len__")


class TensorDataset(Dataset):
    """Samples are rows of equally long tensors: ``ds[i] == (t0[i], t1[i], ...)``.

    Accepts tinynet Tensors or NumPy/CuPy arrays (arrays are wrapped without copying).

    >>> import numpy as np
    >>> ds = TensorDataset(np.zeros((5, 3)), np.arange(5))
    >>> len(ds), ds[2][1].item()
    (5, 2)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        wrapped = []
        for i, t in enumerate(tensors):
            if isinstance(t, Tensor):
                wrapped.append(t.detach())
            elif hasattr(t, "shape") and hasattr(t, "dtype"):
                wrapped.append(Tensor(t))
            else:
                wrapped.append(_to_tensor(t))
            if wrapped[-1].ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-d; every tensor needs a first "
                                 f"(sample) dimension")
        sizes = [t.shape[0] for t in wrapped]
        if len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: all tensors must have the same first dimension, "
                             f"got sizes {sizes}")
        self.tensors = tuple(wrapped)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(Tensor(t.data[index]) for t in self.tensors)

    def take(self, indices) -> tuple:
        """Rows ``indices`` (an integer array or a slice) of every tensor, as Tensors."""
        out = []
        for t in self.tensors:
            idx = indices
            if not isinstance(indices, slice):
                idx = backend.to_device(indices, t.device)
            out.append(Tensor(t.data[idx]))
        return tuple(out)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (in that order)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if self.indices.size and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset: indices must lie in [0, {n}) for a dataset of length {n}")

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Subset(self.dataset, self.indices[index])
        return self.dataset[int(self.indices[index])]

    @property
    def take(self):
        """Vectorised rows ``take(indices)``, present only when the underlying dataset has
        ``take`` (a Subset of an image folder is read item by item)."""
        inner = self.dataset.take          # AttributeError here makes hasattr(subset, "take") False
        return lambda indices: inner(self.indices[indices])


def _lengths(lengths: Sequence, n: int) -> list:
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths is empty")
    if all(isinstance(v, float) for v in lengths):
        if any(v < 0 for v in lengths) or abs(sum(lengths) - 1.0) > 1e-6:
            raise ValueError(f"random_split: fractions must be non-negative and sum to 1, got {lengths}")
        counts = [int(np.floor(v * n)) for v in lengths]
        for i in range(n - sum(counts)):  # hand out the remainder round-robin, as PyTorch does
            counts[i % len(counts)] += 1
        return counts
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: lengths sum to {sum(lengths)} but the dataset has {n} samples")
    return [int(v) for v in lengths]


def random_split(dataset, lengths: Sequence, seed: int | None = None) -> list:
    """Splits ``dataset`` into non-overlapping random :class:`Subset`\\ s.

    ``lengths`` are counts summing to ``len(dataset)`` or fractions summing to 1. The
    permutation comes from tinynet's generator, or from a private one if ``seed`` is given.

    >>> import numpy as np
    >>> a, b = random_split(TensorDataset(np.arange(10)), [0.8, 0.2], seed=0)
    >>> len(a), len(b)
    (8, 2)
    """
    n = len(dataset)
    counts = _lengths(lengths, n)
    rng = generator() if seed is None else np.random.Generator(np.random.PCG64(seed))
    perm = rng.permutation(n)
    out, start = [], 0
    for c in counts:
        out.append(Subset(dataset, perm[start:start + c]))
        start += c
    return out
