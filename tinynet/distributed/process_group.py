"""The process group: one MPI communicator shared by every collective.

Lifecycle (PyTorch's names, MPI underneath)::

    init_process_group("mpi")      # MPI_Init through mpi4py (once per process), dup COMM_WORLD,
                                   # install the abort-on-exception hook (world size > 1)
    get_rank(), get_world_size()   # from the communicator
    ... collectives ...
    destroy_process_group()        # free the duplicate; MPI itself stays up until exit

A plain ``python script.py`` (no ``mpiexec``) is a world of one rank: MPI starts as a
singleton, every collective is then the identity. ``mpi4py`` is imported only here and only
when a group is made, so ``import tinynet.distributed`` works without it; without it,
``init_process_group`` says which extra to install.

Failure behaviour. MPI has no fault tolerance: if one rank dies while the others wait in a
collective, they wait forever. So ``init_process_group`` replaces ``sys.excepthook`` (and
``threading.excepthook``): an uncaught exception on any rank prints its traceback with the
rank's number, then calls ``MPI_Abort`` on the world, which makes ``mpiexec`` kill every
rank and exit non-zero. Before aborting, the rank waits (at most a second) until the
launcher has read the traceback out of its stderr pipe: ``mpiexec`` tears the job down as
soon as the abort reaches it, and text still in the pipe then is lost. Ctrl-C on
``mpiexec`` is forwarded to every rank as SIGINT, raises ``KeyboardInterrupt`` there, and
ends the same way.
"""
from __future__ import annotations

import os
import stat
import sys
import threading
import time
import traceback

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available",
           "get_rank", "get_world_size", "barrier", "launched_by_mpiexec"]

_INSTALL_HINT = 'pip install "tinynet[dist]"'
_state = {"comm": None, "hooks": None}


def _mpi():
    """The ``mpi4py.MPI`` module (imported on first use; starts MPI)."""
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"tinynet.distributed needs mpi4py and an MPI library: "
                          f"{_INSTALL_HINT} (mpi4py + the mpich wheel); {exc}") from exc
    return MPI


def is_available() -> bool:
    """Whether mpi4py can be imported (without starting MPI)."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


def launched_by_mpiexec() -> bool:
    """Whether this process is one rank of an ``mpiexec`` launch (MPICH's Hydra or Open MPI)."""
    return any(k in os.environ for k in ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE"))


def init_process_group(backend: str = "mpi", **unsupported) -> None:
    """Joins the process group of this ``mpiexec`` launch (idempotent).

    Only ``backend="mpi"`` exists: the ranks, their number and their hosts come from
    ``mpiexec``, so PyTorch's ``init_method``, ``world_size`` and ``rank`` arguments are
    refused rather than ignored.
    """
    if backend != "mpi":
        raise ValueError(f"init_process_group: backend must be 'mpi' (the only one tinynet has), "
                         f"got {backend!r}")
    if unsupported:
        raise TypeError(f"init_process_group: got {', '.join(sorted(unsupported))}; with MPI, "
                        f"ranks and world size come from mpiexec (e.g. mpiexec -n 2 python train.py)")
    if _state["comm"] is not None:
        return
    MPI = _mpi()
    comm = MPI.COMM_WORLD.Dup()
    _state["comm"] = comm
    if comm.Get_size() > 1 and _state["hooks"] is None:
        _install_abort_hooks(MPI, comm.Get_rank())


def destroy_process_group() -> None:
    """Leaves the group (frees its communicator). MPI itself stays initialised until the
    process exits (MPI cannot be restarted), so a later ``init_process_group`` works."""
    comm = _state["comm"]
    if comm is None:
        return
    _state["comm"] = None
    comm.Free()


def is_initialized() -> bool:
    return _state["comm"] is not None


def communicator():
    """The group's MPI communicator; an error that says what to call when there is none."""
    comm = _state["comm"]
    if comm is None:
        raise RuntimeError("tinynet.distributed: the default process group is not initialized; "
                           "call tinynet.distributed.init_process_group('mpi') first")
    return comm


def get_rank() -> int:
    """This process's rank in ``[0, world size)``."""
    return communicator().Get_rank()


def get_world_size() -> int:
    return communicator().Get_size()


def barrier() -> None:
    """Returns once every rank has called it."""
    communicator().Barrier()


def _unread_bytes(stream) -> int:
    """Bytes written to the pipe or socket under ``stream`` that its reader has not read yet
    (0 for anything else, or where the platform cannot tell)."""
    try:
        import fcntl
        import struct
        import termios
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            return 0
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except (ImportError, AttributeError, OSError, ValueError):
        return 0


def _wait_until_read(stream, limit: float = 1.0) -> bool:
    """Waits until the reader of ``stream``'s pipe has taken everything written to it, or
    ``limit`` seconds pass; True when it was drained."""
    deadline = time.monotonic() + limit
    while _unread_bytes(stream) > 0:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)
    return True


def _install_abort_hooks(MPI, rank: int) -> None:
    previous = sys.excepthook, threading.excepthook

    def abort(exc_type, exc, tb):
        # Print first: MPI_Abort ends the process without running Python's own handler.
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        sys.stderr.write(f"[tinynet.distributed] rank {rank} raised an uncaught exception; "
                         f"aborting all ranks\n{text}")
        sys.stderr.flush()
        sys.stdout.flush()
        # mpiexec tears the job down when the abort reaches it: let it read the text first
        _wait_until_read(sys.stderr)
        _wait_until_read(sys.stdout)
        code = 130 if issubclass(exc_type, KeyboardInterrupt) else 1
        MPI.COMM_WORLD.Abort(code)

    sys.excepthook = abort
    threading.excepthook = lambda args: abort(args.exc_type, args.exc_value, args.exc_traceback)
    _state["hooks"] = previous
