"""The ``tinynet train MODEL`` command: builds the recipe, trains it with :func:`fit`,
reports the test figure and writes the run's files.

``add_arguments(parser)`` declares the options, ``run(args)`` executes them and returns the
exit status (0 done, 1 failed, 2 bad arguments or checkpoint, 130 interrupted).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .. import argtypes
from .recipes import RECIPES

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``tinynet train``'s arguments to ``parser``."""
    parser.add_argument("model", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=argtypes.non_negative_int, help="epochs (default per model)")
    parser.add_argument("--batch-size", type=argtypes.positive_int, help="batch size (default per model)")
    parser.add_argument("--lr", type=argtypes.positive_float,
                        help="Adam learning rate, cosine-annealed over the epochs (default per model)")
    parser.add_argument("--seed", type=argtypes.non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", type=argtypes.device, default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--out", metavar="DIR", help="where metrics and checkpoints go (default runs/MODEL)")
    parser.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint (e.g. DIR/last.npz)")
    parser.add_argument("--plot", action="store_true",
                        help="write loss/metric curves (and U-Net predictions) as PNG (needs matplotlib)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar, one line per epoch")
    return parser


def description() -> str:
    """The command's description for ``--help``: one line per recipe."""
    return ("Train a model on built-in data (no download). Models: "
            + "; ".join(f"{k}: {v.about}" for k, v in RECIPES.items()))


def _check_device(device: str) -> str | None:
    from .. import backend
    if backend.Device(device).type == "cuda":
        return backend.cuda_unavailable_reason()
    return None


def run(args) -> int:
    """Runs ``tinynet train`` with parsed ``args``; returns the exit status."""
    reason = _check_device(args.device)
    if reason:
        print(f"tinynet train: device {args.device} is not usable: {reason}", file=sys.stderr)
        return 1
    if args.resume and not os.path.isfile(args.resume):
        print(f"tinynet train: --resume {args.resume}: no such file", file=sys.stderr)
        return 2
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("tinynet train: --plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
            return 2
    from .. import optim
    from .errors import NonFiniteLossError, ResumeError, TrainingInterrupted
    from .loop import fit
    from .plots import plot_history
    from .recipes import build_recipe
    from .tasks import TASKS, evaluate
    spec = RECIPES[args.model]
    epochs = spec.epochs if args.epochs is None else args.epochs
    batch_size = args.batch_size or spec.batch_size
    lr = args.lr or spec.lr
    out_dir = args.out or os.path.join("runs", args.model)
    recipe = build_recipe(args.model, batch_size=batch_size, seed=args.seed)
    task = TASKS[recipe.task]
    model = recipe.model.to(args.device)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"tinynet train {args.model}: {spec.about}")
    print(f"  {n_params:,} parameters, {len(recipe.train_loader.dataset)} training samples, "
          f"epochs {epochs}, batch size {batch_size}, lr {lr:g}, seed {args.seed}, device {args.device}")
    print(f"  metrics and checkpoints in {out_dir}")
    progress = not args.no_progress and sys.stderr.isatty()
    t0 = time.perf_counter()
    try:
        history = fit(model, recipe.train_loader, optimizer, epochs, task.loss, task.metrics,
                      val_loader=recipe.val_loader, scheduler=scheduler, out_dir=out_dir, resume=args.resume,
                      device=args.device, progress=progress, log=lambda m: print("  " + m, flush=True))
    except TrainingInterrupted as e:
        print(f"\ninterrupted; checkpoint saved. Resume with:\n  tinynet train {args.model} "
              f"--out {out_dir} --resume {e.checkpoint}" if e.checkpoint else "\ninterrupted", file=sys.stderr)
        return 130
    except NonFiniteLossError as e:
        print(f"tinynet train: {e}", file=sys.stderr)
        return 1
    except ResumeError as e:
        print(f"tinynet train: --resume: {e}", file=sys.stderr)
        return 2
    test = evaluate(model, recipe.test_loader, recipe.task, device=args.device)
    seconds = time.perf_counter() - t0
    if recipe.task == "classification":
        print(f"test accuracy: {test['accuracy']:.4f} (loss {test['loss']:.4f}, {seconds:.1f} s)")
    else:
        print(f"test IoU: {test['iou']:.4f}, Dice: {test['dice']:.4f} (loss {test['loss']:.4f}, {seconds:.1f} s)")
    with open(os.path.join(out_dir, "test_metrics.json"), "w") as f:
        json.dump(dict(test, seconds=seconds), f, indent=1)
    if args.plot and history:
        print("  wrote " + plot_history(history, os.path.join(out_dir, "curves.png")))
        if recipe.plot is not None:
            for path in recipe.plot(model, out_dir, args.device):
                print("  wrote " + path)
    return 0
