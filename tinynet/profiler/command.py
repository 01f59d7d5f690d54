"""``tinynet profile MODEL``: where one training step's time goes.

Builds one of the benchmark workloads (random data of the benchmark's shape, so nothing is
downloaded), runs ``--warmup`` untimed steps, then ``--steps`` training steps (forward,
loss, backward, Adam) inside :func:`tinynet.profiler.profile`, and prints the per-op table
with per-step figures. ``--trace FILE`` also writes a Chrome/Perfetto trace.

    model     input (batch, sample)       loss
    unet      2 x 3x128x128               binary cross-entropy against random masks
    resnet18  16 x 3x32x32 (CIFAR stem)   cross-entropy, 10 classes
    cnn       64 x 1x8x8 (SimpleCNN)      cross-entropy, 10 classes
    lstm      32 x 50 steps x 64 features LSTM(64 -> 128) classifier, cross-entropy
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["MODELS", "add_arguments", "run", "build_step"]

#: name -> (default batch, one sample's shape, what it is)
MODELS = {
    "unet": (2, (3, 128, 128), "the Keras U-Net (1,941,122 parameters)"),
    "resnet18": (16, (3, 32, 32), "ResNet-18 with the CIFAR stem"),
    "cnn": (64, (1, 8, 8), "SimpleCNN on digit-sized images"),
    "lstm": (32, (50, 64), "LSTM classifier, 64 -> 128 units"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..argtypes import device as _device, non_negative_int as _non_negative_int, positive_int as _positive_int
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--batch-size", type=_positive_int,
                        help="batch size (default: " + ", ".join(f"{k} {v[0]}" for k, v in MODELS.items()) + ")")
    parser.add_argument("--steps", type=_positive_int, default=3, help="profiled training steps (default 3)")
    parser.add_argument("--warmup", type=_non_negative_int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--rows", type=_positive_int, help="show only the N rows with most self time")
    parser.add_argument("--trace", metavar="FILE", help="also write a Chrome/Perfetto trace (JSON)")
    parser.add_argument("--device", type=_device, default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")


def build_step(name: str, batch_size: int | None = None, device: str = "cpu", seed: int = 0):
    """``(step, description)``: ``step()`` runs one training step of the workload ``name``."""
    import numpy as np   # data generation for the driver; the step itself is tinynet's
    import tinynet as tn
    import tinynet.functional as F
    from tinynet import models, optim
    from . import record_function
    default_batch, sample, about = MODELS[name]
    n = batch_size or default_batch
    tn.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = tn.tensor(rng.standard_normal((n,) + sample).astype(np.float32), device=device)
    if name == "unet":
        model = models.UNet(3, 2)
        x = tn.tensor(rng.uniform(0, 255, (n,) + sample).astype(np.float32), device=device)
        target = tn.tensor((rng.random((n, 2) + sample[1:]) > 0.5).astype(np.float32), device=device)
        loss_fn = F.binary_cross_entropy
    else:
        target = tn.tensor(rng.integers(0, 10, n), device=device)
        loss_fn = F.cross_entropy
        if name == "resnet18":
            model = models.resnet18(num_classes=10, stem="cifar")
        elif name == "cnn":
            model = models.SimpleCNN()
        else:
            model = models.LSTMClassifier(input_size=sample[1], hidden_size=128, num_classes=10)
    model = model.to(device)
    model.train()
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        with record_function("optimizer.step"):
            opt.step()

    params = sum(p.numel() for p in model.parameters())
    return step, f"{name}: {about}, {params:,} parameters, batch {n}, input {'x'.join(map(str, sample))}"


def run(args) -> int:
    from .. import backend
    from . import profile
    if backend.Device(args.device).type == "cuda" and not backend.is_cuda_available():
        print(f"tinynet profile: device {args.device} is not usable: "
              f"{backend.cuda_unavailable_reason()}", file=sys.stderr)
        return 1
    step, about = build_step(args.model, args.batch_size, args.device, args.seed)
    for _ in range(args.warmup):
        step()
    with profile() as prof:
        for _ in range(args.steps):
            step()
    print(f"tinynet profile {about}, device {args.device}")
    print(f"{args.steps} step(s) after {args.warmup} warm-up; figures per step\n")
    print(prof.table(steps=args.steps, row_limit=args.rows))
    if args.trace:
        try:
            prof.export_chrome_trace(args.trace)
        except OSError as e:
            print(f"tinynet profile: --trace {args.trace}: {e.strerror or e}", file=sys.stderr)
            return 1
        print(f"\nwrote {args.trace} (open it in https://ui.perfetto.dev or chrome://tracing)")
    return 0
