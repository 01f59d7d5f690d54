"""Shared by the rank scripts: start the group, compare arrays across ranks, report."""
import sys

import numpy as np

import tinynet as tn
import tinynet.distributed as dist


def start():
    dist.init_process_group("mpi")
    return dist.get_rank(), dist.get_world_size()


def same_on_every_rank(array, what):
    """Asserts ``array`` is bit-identical on all ranks."""
    t = tn.tensor(np.ascontiguousarray(array))
    parts = [tn.zeros_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t)
    for r, p in enumerate(parts):
        if not np.array_equal(p.numpy(), parts[0].numpy()):
            raise AssertionError(f"{what}: rank {r} differs from rank 0")


def close(a, b, what, rtol=1e-10, atol=1e-12):
    a, b = np.asarray(a), np.asarray(b)
    if not np.allclose(a, b, rtol=rtol, atol=atol):
        err = np.max(np.abs(a - b))
        raise AssertionError(f"{what}: max abs difference {err:.3g} (rtol {rtol})")


def done(name):
    print(f"rank {dist.get_rank()}/{dist.get_world_size()}: {name} OK", flush=True)
    sys.stdout.flush()
