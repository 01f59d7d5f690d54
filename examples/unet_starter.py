"""The classic Keras U-Net starter, ported to tinynet.

The original (a popular starter for the 2018 Data Science Bowl nuclei segmentation) builds
a U-Net in Keras — inputs scaled by 1/255, 16-32-64-128-256 filters, ELU, He-normal,
dropout, 2x2 transposed convolutions and concatenated skips, a 1x1 sigmoid head — prints
``model.summary()``, trains it with Adam on binary cross-entropy with a 10% validation
split, early stopping and a best-model checkpoint, then thresholds the predicted masks at
0.5 and writes them run-length encoded. Here the microscope images are replaced by
generated shapes (``tinynet.data.make_shapes``), so the program needs no download.

    python examples/unet_starter.py                 # 128x128 like the original (slow on CPU)
    python examples/unet_starter.py --size 64 --epochs 5
    python examples/unet_starter.py --tiny          # seconds: what CI runs

Outputs in ``--out``: ``best.npz`` (the checkpoint with the lowest validation loss) and
``predictions.csv`` (one run-length-encoded mask per test image, the competition format).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tinynet as tn  # noqa: E402
from tinynet import nn, optim  # noqa: E402
from tinynet.data import DataLoader, TensorDataset, make_shapes  # noqa: E402
from tinynet.models import UNet  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128, help="image height and width (multiple of 16)")
    p.add_argument("--train-images", type=int, default=256, help="generated training images")
    p.add_argument("--test-images", type=int, default=32, help="generated test images")
    p.add_argument("--epochs", type=int, default=50, help="maximum epochs (early stopping may end sooner)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (Keras' default)")
    p.add_argument("--patience", type=int, default=5, help="early stopping: epochs without improvement")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="runs/unet_starter", help="checkpoint and predictions go here")
    p.add_argument("--tiny", action="store_true",
                   help="32x32 images, 18 of them, 2 epochs: a quick check that everything runs")
    args = p.parse_args(argv)
    if args.tiny:
        args.size, args.train_images, args.test_images = 32, 18, 4
        args.epochs, args.batch_size = 2, 8
    if args.size % 16:
        p.error(f"--size must be a multiple of 16 (four 2x2 poolings), got {args.size}")
    return args


def mean_iou(probabilities: np.ndarray, masks: np.ndarray) -> float:
    """IoU of the thresholded prediction, averaged over thresholds 0.5, 0.55, ..., 0.95.

    The original tracked a mean IoU over the same range of thresholds as its metric.
    """
    true = masks > 0.5
    scores = []
    for t in np.arange(0.5, 1.0, 0.05):
        pred = probabilities > t
        union = np.logical_or(pred, true).sum()
        scores.append(np.logical_and(pred, true).sum() / union if union else 1.0)
    return float(np.mean(scores))


def rle_encode(mask: np.ndarray) -> str:
    """Run-length encoding of a 2-D 0/1 mask: "start length start length ...".

    Pixels are numbered from 1, top to bottom and then left to right (column-major), as
    the competition's submission format asked.
    """
    pixels = np.concatenate([[0], mask.T.ravel().astype(np.int8), [0]])
    changes = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1     # 1-based starts and ends
    starts, ends = changes[0::2], changes[1::2]
    return " ".join(f"{s} {e - s}" for s, e in zip(starts, ends))


def evaluate(model, loader, loss_fn, device):
    """Mean loss and mean IoU over ``loader``, without building a graph."""
    model.eval()
    losses, probs, masks = [], [], []
    with tn.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            p = model(x)
            losses.append(loss_fn(p, y).item() * len(x))
            probs.append(p.numpy())
            masks.append(y.numpy())
    probs, masks = np.concatenate(probs), np.concatenate(masks)
    return sum(losses) / len(probs), mean_iou(probs, masks)


def main(argv=None) -> int:
    args = parse_args(argv)
    tn.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    # Data: images (N, 3, H, W) in [0, 255] and one "any nucleus" mask per image.
    images, masks = make_shapes(args.train_images, size=args.size, seed=args.seed)
    test_images, _ = make_shapes(args.test_images, size=args.size, seed=args.seed + 1)
    split = max(1, int(round(0.1 * len(images))))               # validation_split=0.1
    train = TensorDataset(images[:-split], masks[:-split])
    val = TensorDataset(images[-split:], masks[-split:])
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(val, batch_size=args.batch_size)
    print(f"{len(train)} training and {len(val)} validation images of "
          f"{args.size}x{args.size}, {masks.mean():.0%} foreground pixels")

    # The model: tinynet's UNet defaults are the starter's network; one output mask.
    model = UNet(in_channels=3, num_classes=1).to(args.device)
    tn.utils.summary(model, (3, args.size, args.size), batch_size=1)

    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.BCELoss()
    best_path = os.path.join(args.out, "best.npz")
    best_loss, stale = float("inf"), 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        for x, y in train_loader:
            x, y = x.to(args.device), y.to(args.device)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
            seen += len(x)
        val_loss, val_iou = evaluate(model, val_loader, loss_fn, args.device)
        line = (f"epoch {epoch}/{args.epochs}: loss {total / seen:.4f} - val_loss {val_loss:.4f}"
                f" - val_mean_iou {val_iou:.4f} ({time.perf_counter() - start:.1f} s)")
        if val_loss < best_loss:                                  # ModelCheckpoint(save_best_only)
            best_loss, stale = val_loss, 0
            tn.utils.save({"model": model.state_dict(), "epoch": epoch, "val_loss": val_loss},
                          best_path)
            line += f" - val_loss improved, saved {best_path}"
        else:                                                     # EarlyStopping(patience)
            stale += 1
            if stale >= args.patience:
                print(line + f"\nno improvement for {args.patience} epochs: stopping early")
                break
        print(line)

    # Predict with the best weights, threshold at 0.5, write run-length-encoded masks.
    model.load_state_dict(tn.utils.load(best_path)["model"])
    model.eval()
    with tn.no_grad():
        probabilities = model(tn.tensor(test_images, device=args.device)).numpy()
    predicted = probabilities[:, 0] > 0.5
    csv_path = os.path.join(args.out, "predictions.csv")
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "EncodedPixels"])
        for i, mask in enumerate(predicted):
            writer.writerow([f"shapes_{i:04d}", rle_encode(mask)])
    print(f"best val_loss {best_loss:.4f}; {len(predicted)} test masks "
          f"({predicted.mean():.0%} foreground) written to {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
