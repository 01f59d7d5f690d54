"""Data-parallel training over MPI: the process group and its collectives.

``tinynet.distributed`` follows ``torch.distributed``'s names with MPI (mpi4py over MPICH
or Open MPI) as the only backend. Ranks are started by ``mpiexec``; each runs the same
script, joins the group with :func:`init_process_group`, and talks through collectives
that work in place on Tensors::

    mpiexec -n 2 python train.py            # or: tinynet train cnn --nproc 2

    import tinynet.distributed as dist
    dist.init_process_group("mpi")          # a plain `python train.py` is a world of 1
    rank, world = dist.get_rank(), dist.get_world_size()
    dist.all_reduce(t, op=dist.ReduceOp.AVG)

Above it: :class:`tinynet.nn.parallel.DistributedDataParallel` (gradient averaging in
buckets, overlapped with backward), :class:`tinynet.nn.SyncBatchNorm` and
:class:`tinynet.data.DistributedSampler`. The engine never imports this package. See
docs/distributed.md.
"""
from .process_group import (init_process_group, destroy_process_group, is_initialized, is_available,
                            get_rank, get_world_size, barrier, launched_by_mpiexec)
from .collectives import ReduceOp, Work, all_reduce, broadcast, all_gather
from . import functional

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available",
           "get_rank", "get_world_size", "barrier", "launched_by_mpiexec",
           "ReduceOp", "Work", "all_reduce", "broadcast", "all_gather", "functional"]
