"""``DataLoader``: batches of stacked Tensors from a dataset, optionally shuffled.

For a :class:`TensorDataset` (or a ``Subset`` of one) a batch is one fancy-index per
array — no Python loop over samples. Other datasets are read sample by sample and
collated by stacking each field.
"""
from __future__ import annotations

import math
from typing import Callable

from .. import backend
from ..backend import numpy as np
from ..random import generator
from ..tensor import Tensor

__all__ = ["DataLoader", "default_collate"]


def default_collate(samples: list):
    """Stacks a list of samples field by field: tuples of Tensors/arrays/numbers -> tuple of Tensors."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return tuple(default_collate([s[i] for s in samples]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, Tensor):
        xp = backend.get_array_module(first.data)
        return Tensor(xp.stack([s.data for s in samples]))
    if hasattr(first, "shape") and hasattr(first, "dtype"):
        xp = backend.get_array_module(first)
        return Tensor(xp.stack(samples))
    if isinstance(first, (bool, int, float, np.number)):
        arr = np.asarray(samples)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        elif arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
        return Tensor(backend.to_device(arr, backend.get_default_device()))
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}")


class DataLoader:
    """Iterates over ``dataset`` in batches.

    Parameters
    ----------
    dataset : Dataset
    batch_size : int
    shuffle : bool
        Draw a new order each epoch, from tinynet's global generator (so
        ``tinynet.manual_seed`` and ``get_rng_state`` cover it) or, if ``seed`` is given,
        from the loader's own generator.
    drop_last : bool
        Drop the last batch if it is smaller than ``batch_size``.
    seed : int, optional
    transform : callable, optional
        Applied to the first field of each batch (the inputs), e.g. a
        :class:`~tinynet.data.transforms.Compose` of batch transforms.
    collate_fn : callable, optional
        Used for datasets without a vectorised ``take`` (default :func:`default_collate`).
    sampler : iterable of int, optional
        Gives the indices of each epoch instead of ``range(len(dataset))`` or a shuffle
        (e.g. a :class:`~tinynet.data.DistributedSampler`); excludes ``shuffle``.

    >>> import numpy as np
    >>> from tinynet.data import TensorDataset
    >>> loader = DataLoader(TensorDataset(np.arange(10.0), np.arange(10)), batch_size=4)
    >>> [tuple(x.shape) for x, y in loader]
    [(4,), (4,), (2,)]
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, transform: Callable | None = None,
                 collate_fn: Callable | None = None, sampler=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"DataLoader: seed must be an int or None, got {type(seed).__name__}")
        if transform is not None and not callable(transform):
            raise TypeError("DataLoader: transform must be callable")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True are mutually exclusive "
                             "(the sampler decides the order; e.g. DistributedSampler(shuffle=True))")
        if sampler is not None and not hasattr(sampler, "__iter__"):
            raise TypeError(f"DataLoader: sampler must be an iterable of indices, got {type(sampler).__name__}")
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.collate_fn = collate_fn or default_collate
        self._rng = None if seed is None else np.random.Generator(np.random.PCG64(seed))
        self.epoch_order = None      # the sample order of the current (or last) epoch
        self._resume = None          # (order, first batch) for the next epoch, see resume_at

    def _epoch_size(self) -> int:
        return len(self.sampler) if self.sampler is not None else len(self.dataset)

    def __len__(self) -> int:
        n = self._epoch_size()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    # The private generator's state, for checkpoints (None when the global one is used).
    def state_dict(self) -> dict:
        return {} if self._rng is None else {"rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        if self._rng is not None and state.get("rng") is not None:
            self._rng.bit_generator.state = state["rng"]

    def resume_at(self, order, batch: int) -> None:
        """Makes the next epoch use ``order`` (from ``epoch_order``; None if not shuffled)
        and start at batch index ``batch``, drawing nothing from any generator: how a
        training run interrupted mid-epoch continues exactly."""
        if order is not None:
            order = np.asarray(order, dtype=np.int64)
            if order.shape != (self._epoch_size(),):
                raise ValueError(f"DataLoader.resume_at: order has shape {order.shape}, expected "
                                 f"({self._epoch_size()},) for this dataset and sampler")
        if not 0 <= batch <= len(self):
            raise ValueError(f"DataLoader.resume_at: batch must be in [0, {len(self)}], got {batch}")
        self._resume = (order, int(batch))

    def _order(self, n: int):
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), dtype=np.int64, count=n)
        if not self.shuffle:
            return None
        rng = self._rng if self._rng is not None else generator()
        return rng.permutation(n)

    def __iter__(self):
        n = self._epoch_size()
        first = 0
        if self._resume is not None:
            (order, first), self._resume = self._resume, None
            if order is None and self.sampler is not None:   # the sampler knows its own order
                order = self._order(n)
        else:
            order = self._order(n)
        self.epoch_order = order
        fast = hasattr(self.dataset, "take")
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        for start in range(first * self.batch_size, stop, self.batch_size):
            end = min(start + self.batch_size, n)
            if order is None:
                idx = slice(start, end) if fast else range(start, end)
            else:
                idx = order[start:end]
            if fast:
                batch = self.dataset.take(idx)
            else:
                batch = self.collate_fn([self.dataset[int(i)] for i in idx])
            if self.transform is not None:
                if isinstance(batch, tuple):
                    batch = (self.transform(batch[0]),) + tuple(batch[1:])
                else:
                    batch = self.transform(batch)
            yield batch
