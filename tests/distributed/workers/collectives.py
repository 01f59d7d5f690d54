"""Every collective on every rank, against values each rank can derive by hand."""
import numpy as np

import tinynet as tn
import tinynet.distributed as dist
from common import start, close, done

rank, world = start()
ranks = np.arange(world)

for dtype in (np.float32, np.float64):
    base = np.arange(6, dtype=dtype).reshape(2, 3)
    for op, expected in ((dist.ReduceOp.SUM, sum(base + r for r in ranks)),
                         (dist.ReduceOp.AVG, sum(base + r for r in ranks) / world),
                         (dist.ReduceOp.MAX, base + world - 1),
                         (dist.ReduceOp.MIN, base)):
        t = tn.tensor(base + rank)
        dist.all_reduce(t, op=op)
        assert t.dtype == dtype, (op, t.dtype)
        close(t.numpy(), expected, f"all_reduce {op} {np.dtype(dtype).name}", rtol=1e-6)

    # Non-contiguous tensors travel through a copy and land back in place.
    t = tn.tensor(np.ascontiguousarray((base + rank).T).T)
    view = tn.Tensor(t.data[:, ::2])
    dist.all_reduce(view)
    close(view.numpy(), sum((base + r)[:, ::2] for r in ranks), "all_reduce of a strided view")
    close(t.numpy()[:, 1], base[:, 1] + rank, "all_reduce leaves the rest untouched")

    # Non-blocking: the result is there after wait().
    t = tn.tensor(np.full(1000, rank + 1.0, dtype=dtype))
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    assert work.is_completed()
    close(t.numpy(), np.full(1000, sum(ranks + 1.0)), "async all_reduce")

    for src in range(world):
        t = tn.tensor(np.full((2, 2), float(rank), dtype=dtype))
        dist.broadcast(t, src=src)
        close(t.numpy(), np.full((2, 2), float(src)), f"broadcast from {src}")

    parts = [tn.zeros(3, dtype=tn.float64) for _ in range(world)]
    dist.all_gather(parts, tn.tensor(np.arange(3.0) * (rank + 1)))
    for r, p in enumerate(parts):
        close(p.numpy(), np.arange(3.0) * (r + 1), f"all_gather part {r}")

# Integer SUM and MAX work too.
t = tn.tensor(np.array([rank, 2 * rank], dtype=np.int64))
dist.all_reduce(t, op=dist.ReduceOp.MAX)
assert t.tolist() == [world - 1, 2 * (world - 1)]

# The differentiable all-reduce: y = Σ_r x_r, loss_r = Σ (r+1)·y², so on every rank
# d(Σ_r loss_r)/dx = Σ_r 2(r+1)·y.
x = tn.tensor(np.array([1.0, -2.0]) * (rank + 1), requires_grad=True)
y = dist.functional.all_reduce(x)
y_expected = np.array([1.0, -2.0]) * sum(ranks + 1)
close(y.detach().numpy(), y_expected, "differentiable all_reduce forward")
((y * y).sum() * float(rank + 1)).backward()
close(x.grad.numpy(), 2 * y_expected * sum(ranks + 1), "differentiable all_reduce backward")

dist.barrier()
done("collectives")
