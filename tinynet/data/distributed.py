"""``DistributedSampler``: each rank's share of a dataset's indices, PyTorch's rules.

For a dataset of n samples on W ranks (rank r)::

    order  = permutation of range(n) drawn from seed + epoch      (or range(n), shuffle=False)
    drop_last=False:  s = ceil(n / W); pad ``order`` to s·W by repeating it from the start
    drop_last=True:   s = floor(n / W); cut ``order`` to s·W
    rank r reads order[r], order[r + W], order[r + 2W], ...       (s indices)

Every rank draws the same permutation (same seed, same epoch) without communicating, so
the W shares are disjoint and cover the dataset (padding repeats at most W-1 samples).
Call :meth:`set_epoch` before each epoch for a new order; the same seed and epoch give the
same order on a rerun. The permutation comes from NumPy's PCG64, not from torch's
generator, so the orders differ from PyTorch's while the rules are the same.
"""
from __future__ import annotations

import math

from ..backend import numpy as np

__all__ = ["DistributedSampler"]


def _int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"DistributedSampler: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"DistributedSampler: {name} must be >= {minimum}, got {value}")
    return int(value)


class DistributedSampler:
    """Yields this rank's indices of ``dataset``; pass it as ``DataLoader(sampler=...)``.

    ``num_replicas`` and ``rank`` default to the process group's world size and rank.

    >>> s = DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False)
    >>> list(s)                       # 10 padded to 12: indices 1, 4, 7 and 10 -> 0
    [1, 4, 7, 0]
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist
            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: num_replicas and rank default to the process "
                                   "group's; call tinynet.distributed.init_process_group() first or "
                                   "pass both")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        self.num_replicas = _int(num_replicas, "num_replicas", 1)
        self.rank = _int(rank, "rank", 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {self.num_replicas - 1}] "
                             f"(num_replicas={self.num_replicas}), got {self.rank}")
        self.dataset, self.shuffle, self.drop_last = dataset, bool(shuffle), bool(drop_last)
        self.seed = _int(seed, "seed", 0)
        self.epoch = 0
        n = len(dataset)
        self.num_samples = n // self.num_replicas if self.drop_last else math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Chooses the order of the next pass (call it at the start of every epoch)."""
        self.epoch = _int(epoch, "epoch", 0)

    def indices(self):
        """This rank's indices for the current epoch, as an int64 array."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.Generator(np.random.PCG64(self.seed + self.epoch)).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n:      # pad by wrapping around, as often as needed
            order = np.resize(order, self.total_size)
        else:
            order = order[:self.total_size]
        return order[self.rank::self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples
