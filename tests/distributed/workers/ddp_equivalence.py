"""W ranks with per-rank batch b end with the weights of one process trained on the W·b
concatenated batch (float64, rtol 1e-10), for SGD with momentum and for Adam.

usage: ddp_equivalence.py MODEL [MODEL ...]   (cnn, lstm, resnet-syncbn)
"""
import sys

import numpy as np

import tinynet as tn
import tinynet.functional as F
from tinynet import nn, optim
from tinynet.models import SimpleCNN, LSTMClassifier, resnet18
from tinynet.nn.parallel import DistributedDataParallel as DDP
from common import start, close, same_on_every_rank, done

rank, world = start()
PER_RANK, STEPS = 3, 4


def build(name):
    if name == "cnn":
        return SimpleCNN(channels=(4, 6), hidden=8), (1, 8, 8)
    if name == "lstm":
        return LSTMClassifier(input_size=8, hidden_size=6, num_classes=10), (8, 8)
    if name == "resnet-syncbn":
        return resnet18(num_classes=10, in_channels=1, stem="cifar", width=2), (1, 8, 8)
    raise SystemExit(f"unknown model {name}")


def run(name, make_optimizer, label):
    tn.manual_seed(100 + rank)                     # different on every rank: DDP must broadcast
    model, shape = build(name)
    model = model.double()
    if name == "resnet-syncbn":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = DDP(model, bucket_cap_mb=0.001)          # tiny buckets: many of them, all in flight
    reference, _ = build(name)                     # plain BatchNorm, one process, whole batch
    reference = reference.double()
    reference.load_state_dict({k[len("module."):]: v for k, v in ddp.state_dict().items()})
    opt, ref_opt = make_optimizer(ddp.parameters()), make_optimizer(reference.parameters())
    data = np.random.default_rng(7)
    for step in range(STEPS):
        x = data.standard_normal((world * PER_RANK,) + shape)
        y = data.integers(0, 10, world * PER_RANK)
        mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        opt.zero_grad()
        F.cross_entropy(ddp(tn.tensor(x[mine])), tn.tensor(y[mine])).backward()
        opt.step()
        ref_opt.zero_grad()
        F.cross_entropy(reference(tn.tensor(x)), tn.tensor(y)).backward()
        ref_opt.step()
    ours = model.state_dict()
    for key, value in reference.state_dict().items():
        close(ours[key].numpy(), value.numpy(), f"{name} {label}: {key} after {STEPS} steps")
        same_on_every_rank(ours[key].numpy(), f"{name} {label}: {key}")


for name in sys.argv[1:]:
    run(name, lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), "SGD")
    run(name, lambda ps: optim.Adam(ps, lr=0.01), "Adam")
    done(f"ddp equivalence {name}")
