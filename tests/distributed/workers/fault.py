"""Rank 1 raises while rank 0 waits in a collective: the whole job must end, not hang."""
import tinynet as tn
import tinynet.distributed as dist
from common import start

rank, world = start()
if rank == 1:
    raise RuntimeError("planted failure on rank 1")
dist.all_reduce(tn.ones(4))     # would wait forever for rank 1 without the abort hook
print(f"rank {rank}: unreachable", flush=True)
