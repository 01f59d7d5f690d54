"""Ranks that built different models get the mismatch error, on every rank."""
from tinynet import nn
from tinynet.nn.parallel import DistributedDataParallel as DDP
from common import start, done

rank, world = start()
width = 8 if rank == 0 else 9       # rank 1 builds a wider hidden layer
model = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))
try:
    DDP(model)
except ValueError as e:
    print(f"rank {rank}: {e}", flush=True)
    assert "parameter '0.weight' of shape (8, 4)" in str(e) and "(9, 4)" in str(e) and "rank 1" in str(e)
    done("mismatch")
else:
    raise AssertionError("different models must be refused")
