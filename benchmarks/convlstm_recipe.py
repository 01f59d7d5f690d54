"""The ``tinynet train convlstm`` recipe written in PyTorch: the done-when reference (issue 12).

Builds the recipe exactly as ``tinynet train convlstm --seed S`` does (same generated
sequences, same initial weights, same batches in the same order from tinynet's loader),
copies the weights into a PyTorch ConvLSTM forecaster (the one of ``benchmarks/convlstm.py``)
and trains it the same way: Adam, cosine-annealed learning rate stepped per epoch, MSE
over all 19 predictions. Prints the test MSE of the 10-frame forecast, the copy-last-frame
baseline and the training time; compare with the ``test mse`` line of the tinynet run.

    python benchmarks/convlstm_recipe.py [--epochs 10] [--seed 0] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))

import numpy as np  # noqa: E402

from convlstm import _torch_forecaster  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch
    from tinynet.train.recipes import RECIPES, build_recipe
    torch.set_num_threads(args.threads)
    spec = RECIPES["convlstm"]
    epochs = spec.epochs if args.epochs is None else args.epochs
    recipe = build_recipe("convlstm", batch_size=spec.batch_size, seed=args.seed)
    model = recipe.model
    K, P, T_out = model.convlstm.hidden_channels[0], model.patch_size, model.frames_out
    params = [torch.tensor(p.detach().numpy().copy(), requires_grad=True) for p in model.parameters()]
    opt = torch.optim.Adam(params, lr=spec.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    t0 = time.perf_counter()
    for epoch in range(epochs):
        total, n = 0.0, 0
        for x, y in recipe.train_loader:
            out = _torch_forecaster(torch, torch.tensor(x.numpy()), *params, K, T_out, P)
            loss = torch.nn.functional.mse_loss(out, torch.tensor(y.numpy()))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + loss.item() * x.shape[0], n + x.shape[0]
        sched.step()
        print(f"epoch {epoch + 1}/{epochs}: train_loss {total / n:.5f} ({time.perf_counter() - t0:.1f} s)",
              flush=True)
    seconds = time.perf_counter() - t0
    sq, copy, count = 0.0, 0.0, 0
    with torch.no_grad():
        for x, y in recipe.test_loader:
            x, y = x.numpy(), y.numpy()
            out = _torch_forecaster(torch, torch.tensor(x), *params, K, T_out, P).numpy()
            future = slice(x.shape[1] - 1, None)
            sq += float(((out[:, future] - y[:, future]) ** 2).sum())
            copy += float(((y[:, future] - x[:, -1:]) ** 2).sum())
            count += y[:, future].size
    print(f"PyTorch convlstm recipe: test mse {sq / count:.5f}, copy_last_mse {copy / count:.5f} "
          f"(ratio {sq / copy:.3f}); training {seconds:.1f} s, {epochs} epochs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
