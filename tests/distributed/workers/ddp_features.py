"""no_sync gradient accumulation, overlap of communication with backward, unused parameters."""
import time

import numpy as np

import tinynet as tn
import tinynet.functional as F
from tinynet import nn, optim
from tinynet.nn.parallel import DistributedDataParallel as DDP
from common import start, close, done

rank, world = start()
B = 2


def mlp():
    tn.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 3)).double()


# --- no_sync over two micro-batches == one step on both --------------------------------
data = np.random.default_rng(3)
xa, xb = data.standard_normal((2, world * B, 5))
ya, yb = data.integers(0, 3, (2, world * B))
mine = slice(rank * B, (rank + 1) * B)
model = mlp()
ddp = DDP(model)
opt = optim.SGD(ddp.parameters(), lr=0.5)
with ddp.no_sync():
    F.cross_entropy(ddp(tn.tensor(xa[mine])), tn.tensor(ya[mine])).backward()
assert ddp.comm_events == [], "no_sync must not communicate"
local_only = [p.grad.numpy().copy() for p in model.parameters()]
F.cross_entropy(ddp(tn.tensor(xb[mine])), tn.tensor(yb[mine])).backward()
opt.step()
reference = mlp()
ref_opt = optim.SGD(reference.parameters(), lr=0.5)
(F.cross_entropy(reference(tn.tensor(xa)), tn.tensor(ya))
 + F.cross_entropy(reference(tn.tensor(xb)), tn.tensor(yb))).backward()
ref_opt.step()
for p, q in zip(model.parameters(), reference.parameters()):
    close(p.numpy() if not p.requires_grad else p.detach().numpy(), q.detach().numpy(), "no_sync accumulation")
if world > 1:   # the accumulated local gradient was really local
    assert any(not np.allclose(g, q.grad.numpy()) for g, q in zip(local_only, reference.parameters()))
done("no_sync")

# --- overlap: an early bucket's allreduce starts before backward has finished --------
model = mlp()
ddp = DDP(model, bucket_cap_mb=300 * 8 / 2 ** 20)  # ~300 float64 values: one layer or two per bucket
assert len(ddp._buckets) >= 3, len(ddp._buckets)
x = tn.tensor(data.standard_normal((B, 5)), requires_grad=True)
times = {}
x.register_hook(lambda g: times.setdefault("input grad", time.perf_counter()) and None)
F.cross_entropy(ddp(x), tn.tensor(np.arange(B) % 3)).backward()
launches = [(b, t) for e, b, t, *rest in ddp.comm_events if e == "launch"]
waits = [(b, t) for e, b, t, *rest in ddp.comm_events if e == "wait"]
assert [b for b, _ in launches] == list(range(len(ddp._buckets))), launches
assert launches[0][1] < times["input grad"], "bucket 0's allreduce started only after backward ended"
assert all(t > times["input grad"] for _, t in waits), "waits belong to the end of backward"
done("overlap")

# --- a second backward after one forward is refused, not left un-averaged -------------
model = mlp()
ddp = DDP(model)
loss = F.cross_entropy(ddp(tn.tensor(xa[mine])), tn.tensor(ya[mine]))
loss.backward(retain_graph=True)
try:
    loss.backward()
except RuntimeError as e:
    assert "second backward after one forward" in str(e), str(e)
else:
    raise AssertionError("a second backward after one forward must be refused")
F.cross_entropy(ddp(tn.tensor(xa[mine])), tn.tensor(ya[mine])).backward()   # a new forward: fine
done("second backward")

# --- unused parameters ------------------------------------------------------------------
class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        tn.manual_seed(1)
        self.body = nn.Linear(4, 4).double()
        self.head_a = nn.Linear(4, 2).double()
        self.head_b = nn.Linear(4, 2).double()     # used only when asked
        self.never = nn.Linear(4, 2).double()      # never used

    def forward(self, x, use_b):
        h = self.body(x).tanh()
        out = self.head_a(h)
        return out + self.head_b(h) if use_b else out


x = tn.tensor(np.ones((B, 4)) * (rank + 1))
strict = DDP(TwoHeads())
try:
    strict(x, use_b=True).sum().backward()
except RuntimeError as e:
    assert "received no gradient" in str(e) and "never.weight" in str(e), str(e)
    assert "find_unused_parameters=True" in str(e)
else:
    raise AssertionError("an unused parameter must be an error without find_unused_parameters")

model = TwoHeads()
loose = DDP(model, find_unused_parameters=True)
loose(x, use_b=(rank == 0)).sum().backward()       # head_b used on rank 0 only
assert model.never.weight.grad is None, "a parameter used on no rank keeps grad None"
# head_b's gradient on rank 0 alone, averaged with zeros from the others: computed by hand.
h = np.tanh(np.ones((B, 4)) @ model.body.weight.detach().numpy().T + model.body.bias.detach().numpy())
close(model.head_b.bias.grad.numpy(), np.full(2, B / world), "partly-used bias gradient")
close(model.head_b.weight.grad.numpy(), np.tile(h.sum(0), (2, 1)) / world, "partly-used weight gradient")
done("unused parameters")
