"""Collectives on Tensors: ``all_reduce``, ``broadcast``, ``all_gather`` (PyTorch's names).

Each works in place on the Tensor's array (``tensor.data``) and hands MPI the array's
memory as a buffer (mpi4py's upper-case methods: no pickling of array data). Arrays that
are not C-contiguous travel through a contiguous copy. CuPy arrays are staged through
host memory (copy to host, communicate, copy back): correct, and as slow as two PCIe
copies per call; a NCCL path is future work.

Cost model, for ``n`` bytes on ``p`` ranks: MPICH's allreduce moves about ``2·n·(p-1)/p``
bytes per rank (reduce-scatter then allgather) for large messages, and takes about
``log2(p)`` latencies for small ones; broadcast and all_gather move ``n`` and ``n·(p-1)``.
"""
from __future__ import annotations

import enum

from .. import backend
from ..backend import numpy as np
from ..tensor import Tensor
from .process_group import communicator, _mpi

__all__ = ["ReduceOp", "Work", "all_reduce", "broadcast", "all_gather"]


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' values. ``AVG`` is ``SUM`` divided by the
    world size (MPI has no average), so it needs a floating-point tensor."""
    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_tensor(op: str, tensor, *, floating=False) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a tinynet Tensor, got {type(tensor).__name__}")
    kinds = "f" if floating else "fiub"
    if tensor.dtype.kind not in kinds:
        raise TypeError(f"{op}: unsupported dtype {tensor.dtype}"
                        + ("; expected float32 or float64" if floating else ""))


class Work:
    """A started non-blocking collective (``async_op=True``); ``wait()`` finishes it."""

    def __init__(self, request, finish=None):
        self._request, self._finish = request, finish

    def is_completed(self) -> bool:
        if self._request is None:
            return True
        done = self._request.Test()
        if done:
            self._complete()
        return done

    def wait(self) -> None:
        if self._request is not None:
            self._request.Wait()
            self._complete()

    def _complete(self) -> None:
        self._request = None
        if self._finish is not None:
            finish, self._finish = self._finish, None
            finish()


class _HostBuffer:
    """A contiguous host array standing for ``array`` during a collective, and the way
    back: ``commit()`` copies the result into ``array`` unless they are the same memory."""

    def __init__(self, array):
        self.array = array
        if backend.device_of(array).type == "cpu" and array.flags.c_contiguous:
            self.host = array
        else:
            self.host = np.ascontiguousarray(backend.asnumpy(array))

    def commit(self) -> None:
        if self.host is not self.array:
            self.array[...] = backend.to_device(self.host, backend.device_of(self.array))


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, async_op: bool = False):
    """Replaces ``tensor`` on every rank by the reduction of all ranks' tensors (same shape
    and dtype everywhere). With ``async_op=True`` returns a :class:`Work` to ``wait()`` on.

    >>> import tinynet as tn, tinynet.distributed as dist
    >>> dist.init_process_group("mpi")
    >>> t = tn.tensor([1.0, 2.0])
    >>> dist.all_reduce(t)            # one rank here: the sum is the tensor itself
    >>> t.tolist()
    [1.0, 2.0]
    """
    if not isinstance(op, ReduceOp):
        raise TypeError(f"all_reduce: op must be a tinynet.distributed.ReduceOp, got {op!r}")
    _check_tensor("all_reduce", tensor, floating=op is ReduceOp.AVG)
    MPI, comm = _mpi(), communicator()
    buf = _HostBuffer(tensor.data)
    mpi_op = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.MAX: MPI.MAX,
              ReduceOp.MIN: MPI.MIN}[op]
    size = comm.Get_size()

    def finish():
        if op is ReduceOp.AVG:
            buf.host *= buf.host.dtype.type(1.0 / size)
        buf.commit()

    if async_op:
        return Work(comm.Iallreduce(MPI.IN_PLACE, buf.host, op=mpi_op), finish)
    comm.Allreduce(MPI.IN_PLACE, buf.host, op=mpi_op)
    finish()
    return None


def broadcast(tensor: Tensor, src: int = 0, async_op: bool = False):
    """Copies rank ``src``'s ``tensor`` into ``tensor`` on every other rank."""
    _check_tensor("broadcast", tensor)
    comm = communicator()
    if not 0 <= src < comm.Get_size():
        raise ValueError(f"broadcast: src must be a rank in [0, {comm.Get_size()}), got {src}")
    buf = _HostBuffer(tensor.data)
    if async_op:
        return Work(comm.Ibcast(buf.host, root=src), buf.commit)
    comm.Bcast(buf.host, root=src)
    buf.commit()
    return None


def all_gather(tensor_list: list, tensor: Tensor, async_op: bool = False):
    """Fills ``tensor_list[r]`` with rank ``r``'s ``tensor`` (every rank's must have the
    same shape and dtype); ``tensor_list`` holds ``world size`` Tensors of that shape."""
    _check_tensor("all_gather", tensor)
    comm = communicator()
    size = comm.Get_size()
    if not isinstance(tensor_list, list) or len(tensor_list) != size:
        raise ValueError(f"all_gather: tensor_list must be a list of {size} Tensors (one per rank), "
                         f"got {type(tensor_list).__name__} of length {len(tensor_list) if hasattr(tensor_list, '__len__') else '?'}")
    for i, t in enumerate(tensor_list):
        _check_tensor("all_gather", t)
        if tuple(t.shape) != tuple(tensor.shape) or t.dtype != tensor.dtype:
            raise ValueError(f"all_gather: tensor_list[{i}] has shape {tuple(t.shape)} and dtype "
                             f"{t.dtype}, expected {tuple(tensor.shape)} and {tensor.dtype}")
    send = _HostBuffer(tensor.data).host
    recv = np.empty((size,) + tuple(tensor.shape), dtype=send.dtype)

    def finish():
        for t, part in zip(tensor_list, recv):
            t.data[...] = backend.to_device(part, backend.device_of(t.data))

    if async_op:
        return Work(comm.Iallgather(send, recv), finish)
    comm.Allgather(send, recv)
    finish()
    return None
