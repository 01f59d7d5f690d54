"""The TensorFlow ``dynamic_rnn`` LSTM regressor, ported to tinynet.

The original (a common TensorFlow 1.x example) feeds a placeholder of shape
``(batch, 10 steps, 5 features)`` through ``tf.nn.dynamic_rnn`` with a 10-unit
``BasicLSTMCell``, takes the output of the last step, applies a dense layer and a sigmoid,
and fits targets in (0, 1) with a mean-squared-error loss. In tinynet the same network
is ``tinynet.models.LSTMRegressor()`` (its defaults are these sizes); the loop below is the
session's feed-and-run loop written as plain Python.

The data is generated: each target depends on the whole sequence, the most on recent
steps, so the LSTM has to carry information through time:
``y = sigmoid(sum_t w_t * (x[t, 0] - x[t, 1]))`` with weights ``w_t`` growing towards the
last step.

    python examples/lstm_regressor.py              # 4096 sequences, 30 epochs (about 30 s on 2 cores)
    python examples/lstm_regressor.py --tiny       # seconds: what CI runs
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tinynet as tn  # noqa: E402
import tinynet.functional as F  # noqa: E402
from tinynet import optim  # noqa: E402
from tinynet.data import DataLoader, TensorDataset  # noqa: E402
from tinynet.models import LSTMRegressor  # noqa: E402

STEPS, FEATURES, HIDDEN = 10, 5, 10        # the original's sizes


def make_data(n: int, seed: int):
    """Sequences ``(n, 10, 5)`` uniform in [0, 1] and targets ``(n, 1)`` in (0, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(n, STEPS, FEATURES)).astype(np.float32)
    weights = np.linspace(0.2, 1.0, STEPS)                 # later steps matter more
    signal = ((x[:, :, 0] - x[:, :, 1]) * weights).sum(axis=1, keepdims=True)
    y = 1.0 / (1.0 + np.exp(-signal))
    return x, y.astype(np.float32)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-size", type=int, default=4096)
    p.add_argument("--test-size", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tiny", action="store_true", help="256 sequences, 3 epochs: a quick check")
    args = p.parse_args(argv)
    if args.tiny:
        args.train_size, args.test_size, args.epochs = 256, 128, 3
    return args


def mse(model, x, y, device) -> float:
    model.eval()
    with tn.no_grad():
        prediction = model(tn.tensor(x, device=device))
        return F.mse_loss(prediction, tn.tensor(y, device=device)).item()


def main(argv=None) -> int:
    args = parse_args(argv)
    tn.manual_seed(args.seed)
    x_train, y_train = make_data(args.train_size, args.seed)
    x_test, y_test = make_data(args.test_size, args.seed + 1)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True)

    # sequence -> LSTM(10) -> last step -> dense(1) -> sigmoid
    model = LSTMRegressor(input_size=FEATURES, hidden_size=HIDDEN, output_size=1).to(args.device)
    tn.utils.summary(model, (STEPS, FEATURES))
    optimizer = optim.Adam(model.parameters(), lr=args.lr)

    baseline = float(((y_test - y_train.mean()) ** 2).mean())
    print(f"test MSE of always predicting the training mean: {baseline:.5f}")
    for epoch in range(1, args.epochs + 1):
        model.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        for xb, yb in loader:
            xb, yb = xb.to(args.device), yb.to(args.device)
            loss = F.mse_loss(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
            seen += len(xb)
        print(f"epoch {epoch:3d}: train MSE {total / seen:.5f}, test MSE "
              f"{mse(model, x_test, y_test, args.device):.5f} ({time.perf_counter() - start:.2f} s)")

    final = mse(model, x_test, y_test, args.device)
    print(f"final test MSE {final:.5f} ({final / baseline:.1%} of the baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
