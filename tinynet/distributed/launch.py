"""Starting ranks: the ``mpiexec`` command line for N copies of a Python command.

``tinynet train MODEL --nproc N`` and the tests use this to relaunch themselves::

    mpiexec -n N  <python> -m tinynet train MODEL ...      (each rank: 1 BLAS thread)

The ``mpiexec`` next to the running Python (the mpich wheel installs it there) is preferred
to one on ``PATH``, so the launcher and the MPI library that mpi4py loads match.
"""
from __future__ import annotations

import os
import shutil
import sys

__all__ = ["find_mpiexec", "mpiexec_command", "rank_environment"]


def find_mpiexec() -> str:
    """The path of ``mpiexec``; an error naming the extra to install when there is none."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("mpiexec")
    if found is None:
        raise RuntimeError('tinynet.distributed: no mpiexec found; pip install "tinynet[dist]" '
                           "(mpi4py and the mpich wheel, which brings mpiexec)")
    return found


def mpiexec_command(nproc: int, argv: list, extra_args=()) -> list:
    """``[mpiexec, -n, nproc, *extra_args, *argv]``."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"mpiexec_command: nproc must be a positive int, got {nproc!r}")
    return [find_mpiexec(), "-n", str(nproc), *extra_args, *argv]


def rank_environment(threads: int | None = 1, base=None) -> dict:
    """The environment for ranks: ``threads`` BLAS/OpenMP threads each (None: unchanged)."""
    env = dict(os.environ if base is None else base)
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TINYNET_NUM_THREADS"):
            env[var] = str(threads)
    return env
