"""Data-parallel ``tinynet train``: ``--nproc N``, and what changes on each rank.

``tinynet train MODEL --nproc N ...`` starts ``mpiexec -n N python -m tinynet train MODEL
...`` (without ``--nproc``) and waits for it; ``mpiexec -n N tinynet train MODEL ...``
does the same by hand. Each rank then:

* joins the process group (:func:`setup`), with 1 BLAS thread unless ``--threads`` says
  otherwise (``--nproc`` sets the ranks' environment);
* builds the same model and data from the same seed, wraps the model in
  ``DistributedDataParallel`` (``--sync-bn`` first turns BatchNorm into SyncBatchNorm);
* reads its share of each epoch through a ``DistributedSampler`` seeded with ``--seed``,
  in batches of ``--batch-size / N`` (the global batch stays ``--batch-size``);
* trains in lockstep: every step ends with the same averaged gradient on every rank.

Only rank 0 prints, writes metrics, plots and checkpoints; every rank reads the checkpoint
on ``--resume``. All ranks hold the same weights, optimizer state and random state (same
seed, same draws), so rank 0's checkpoint resumes all of them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

__all__ = ["relaunch", "setup", "shard_loader", "wrap_model"]


def _without_nproc(argv: list) -> list:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def relaunch(argv: list, nproc: int, threads: int | None) -> int:
    """Runs ``python -m tinynet <argv without --nproc>`` on ``nproc`` ranks; returns the exit
    status of ``mpiexec`` (non-zero if any rank failed). Ctrl-C reaches every rank (the
    ranks share the terminal's process group, and mpiexec forwards it as well); this
    process only waits."""
    from ..distributed.launch import mpiexec_command, rank_environment
    try:
        cmd = mpiexec_command(nproc, [sys.executable, "-m", "tinynet", *_without_nproc(argv)])
    except RuntimeError as e:
        print(f"tinynet train: --nproc {nproc}: {e}", file=sys.stderr)
        return 2
    env = rank_environment(1 if threads is None else threads)
    proc = subprocess.Popen(cmd, env=env)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)   # the ranks decide what Ctrl-C does
    try:
        return proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def setup() -> tuple:
    """``(rank, world size)``: joins the process group when started by ``mpiexec``."""
    from .. import distributed as dist
    if not dist.launched_by_mpiexec():
        return 0, 1
    dist.init_process_group("mpi")
    return dist.get_rank(), dist.get_world_size()


def shard_loader(loader, rank: int, world: int, seed: int):
    """A loader over this rank's share of ``loader``'s dataset: batches of
    ``loader.batch_size / world`` drawn through a DistributedSampler seeded with ``seed``."""
    from ..data import DataLoader, DistributedSampler
    if loader.batch_size % world:
        raise ValueError(f"--batch-size {loader.batch_size} is not divisible by the {world} ranks; "
                         f"the global batch is split evenly across ranks")
    sampler = DistributedSampler(loader.dataset, num_replicas=world, rank=rank, shuffle=loader.shuffle,
                                 seed=seed, drop_last=loader.drop_last)
    return DataLoader(loader.dataset, batch_size=loader.batch_size // world, drop_last=loader.drop_last,
                      transform=loader.transform, collate_fn=loader.collate_fn, sampler=sampler)


def wrap_model(model, sync_bn: bool = False):
    """``model`` in DistributedDataParallel (after SyncBatchNorm conversion if asked)."""
    from .. import nn
    from ..nn.parallel import DistributedDataParallel
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return DistributedDataParallel(model)


def silence_other_ranks(rank: int) -> None:
    """Sends the standard output of ranks other than 0 to the void (errors still show)."""
    if rank != 0:
        sys.stdout = open(os.devnull, "w")
