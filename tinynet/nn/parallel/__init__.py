"""Parallel wrappers (``tinynet.nn.parallel``): :class:`DistributedDataParallel` over MPI."""
from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
