"""The ``tinynet`` command.

::

    tinynet train {cnn,resnet,unet,lstm} [--epochs N] [--batch-size B] [--lr LR] [--seed S]
                  [--device DEV] [--out DIR] [--resume CKPT] [--plot] [--no-progress]
    tinynet summary {cnn,resnet18,unet,lstm} [--input C,H,W]
    tinynet gradcheck [--device DEV] [--ops NAMES] [--examples N]
    tinynet bench [--device DEV] [--quick] [--only NAMES] [--json FILE] [--plot FILE]
    tinynet selfcheck
    tinynet profile {cnn,lstm,resnet18,unet} [--steps N] [--trace FILE] [--device DEV]

``python -m tinynet`` with no arguments runs the self-check. Bad arguments exit with
status 2 (argparse's convention), an interrupted training run with 130 after saving a
checkpoint, and a failed run with 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

__all__ = ["main", "build_parser", "TRAIN_DEFAULTS"]

# Defaults per model: each finishes in about a minute on 2 CPU cores.
TRAIN_DEFAULTS = {
    "cnn": {"epochs": 15, "batch_size": 32, "lr": 3e-3,
            "about": "SimpleCNN on the 8x8 handwritten digits (test accuracy ~98%)"},
    "resnet": {"epochs": 5, "batch_size": 32, "lr": 3e-3,
               "about": "narrow ResNet-18 (CIFAR stem, width 8) on the digits"},
    "unet": {"epochs": 5, "batch_size": 16, "lr": 3e-3,
             "about": "narrow U-Net (width 8, depth 3) on generated 32x32 shapes, IoU and Dice"},
    "lstm": {"epochs": 12, "batch_size": 32, "lr": 1e-2,
             "about": "LSTM classifier (64 units) reading the digits row by row"},
}


# ---------------------------------------------------------------------------- arguments
def _int_at_least(minimum: int, wording: str):
    """An argparse type: an integer >= ``minimum``, else a message using ``wording``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {v}")
        return v
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return v


def _shape(text: str) -> tuple:
    try:
        dims = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 3,32,32, got {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return dims


def _device(text: str) -> str:
    from . import backend
    try:
        backend.Device(text)
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinynet", description="tinynet: train models, check gradients, benchmark against PyTorch.",
        epilog="With no command, `python -m tinynet` runs the self-check.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"tinynet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser("train", help="train a model on built-in data",
                           description="Train a model on built-in data (no download). Models: "
                           + "; ".join(f"{k}: {v['about']}" for k, v in TRAIN_DEFAULTS.items()))
    train.add_argument("model", choices=sorted(TRAIN_DEFAULTS))
    train.add_argument("--epochs", type=_non_negative_int, help="epochs (default per model)")
    train.add_argument("--batch-size", type=_positive_int, help="batch size (default per model)")
    train.add_argument("--lr", type=_positive_float,
                       help="Adam learning rate, cosine-annealed over the epochs (default per model)")
    train.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    train.add_argument("--device", type=_device, default="cpu", help="cpu or cuda[:N] (default cpu)")
    train.add_argument("--out", metavar="DIR", help="where metrics and checkpoints go (default runs/MODEL)")
    train.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint (e.g. DIR/last.npz)")
    train.add_argument("--plot", action="store_true",
                       help="write loss/metric curves (and U-Net predictions) as PNG (needs matplotlib)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar, one line per epoch")
    train.set_defaults(handler=_cmd_train)

    summary = sub.add_parser("summary", help="print a Keras-style table of a model's layers",
                             description="Print each layer's output shape and parameter count.")
    summary.add_argument("model", choices=["cnn", "resnet18", "unet", "lstm"])
    summary.add_argument("--input", type=_shape, metavar="C,H,W",
                         help="one sample's shape (default: cnn 1,8,8; resnet18 3,224,224; "
                              "unet 3,128,128; lstm T,F = 8,8)")
    summary.set_defaults(handler=_cmd_summary)

    grad = sub.add_parser("gradcheck", help="check every registered op's gradients on this machine",
                          description="Run first- and second-order gradient checks of the op registry "
                                      "on inputs drawn by hypothesis; print a table of ops.")
    grad.add_argument("--device", type=_device, default="cpu", help="cpu or cuda[:N] (default cpu)")
    grad.add_argument("--ops", metavar="NAMES", help="comma-separated op names (default: all)")
    grad.add_argument("--examples", type=_positive_int, default=5, help="samples per op (default 5)")
    grad.set_defaults(handler=_cmd_gradcheck)

    bench = sub.add_parser("bench", help="benchmark tinynet against PyTorch",
                           description="Run the benchmark suite (tinynet vs PyTorch when installed).")
    try:
        from . import bench as _bench
        _bench.add_arguments(bench)
    except ImportError:
        bench.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    bench.set_defaults(handler=_cmd_bench, bench_parser=bench)

    profile = sub.add_parser("profile", help="where a training step's time goes, op by op",
                             description="Profile training steps of a benchmark workload: a table per op type.")
    from .profiler import command as _profile_command
    _profile_command.add_arguments(profile)
    profile.set_defaults(handler=lambda args: _profile_command.run(args))

    selfcheck = sub.add_parser("selfcheck", help="a quick check that this installation works",
                               description="Quick end-to-end check of this installation.")
    selfcheck.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    selfcheck.set_defaults(handler=_cmd_selfcheck)
    return parser


# ---------------------------------------------------------------------------- commands
def _check_device(device: str) -> str | None:
    from . import backend
    if backend.Device(device).type == "cuda":
        return backend.cuda_unavailable_reason()
    return None


def _cmd_train(args) -> int:
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
    from . import optim, train as training
    defaults = TRAIN_DEFAULTS[args.model]
    epochs = defaults["epochs"] if args.epochs is None else args.epochs
    batch_size = args.batch_size or defaults["batch_size"]
    lr = args.lr or defaults["lr"]
    out_dir = args.out or os.path.join("runs", args.model)
    recipe = training.build_recipe(args.model, batch_size=batch_size, seed=args.seed)
    model = recipe.model.to(args.device)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"tinynet train {args.model}: {defaults['about']}")
    print(f"  {n_params:,} parameters, {len(recipe.train_loader.dataset)} training samples, "
          f"epochs {epochs}, batch size {batch_size}, lr {lr:g}, seed {args.seed}, device {args.device}")
    print(f"  metrics and checkpoints in {out_dir}")
    progress = not args.no_progress and sys.stderr.isatty()
    t0 = time.perf_counter()
    try:
        trainer = {"classification": training.train_classifier,
                   "segmentation": training.train_segmentation,
                   "regression": training.train_regression}[recipe.task]
        history = trainer(model, recipe.train_loader, optimizer, epochs, val_loader=recipe.val_loader,
                          scheduler=scheduler, out_dir=out_dir, resume=args.resume, device=args.device,
                          progress=progress, log=lambda m: print("  " + m, flush=True))
    except training.TrainingInterrupted as e:
        print(f"\ninterrupted; checkpoint saved. Resume with:\n  tinynet train {args.model} "
              f"--out {out_dir} --resume {e.checkpoint}" if e.checkpoint else "\ninterrupted", file=sys.stderr)
        return 130
    except training.NonFiniteLossError as e:
        print(f"tinynet train: {e}", file=sys.stderr)
        return 1
    except training.ResumeError as e:
        print(f"tinynet train: --resume: {e}", file=sys.stderr)
        return 2
    test = training.evaluate(model, recipe.test_loader, recipe.task, device=args.device)
    seconds = time.perf_counter() - t0
    if recipe.task == "classification":
        print(f"test accuracy: {test['accuracy']:.4f} (loss {test['loss']:.4f}, {seconds:.1f} s)")
    else:
        print(f"test IoU: {test['iou']:.4f}, Dice: {test['dice']:.4f} (loss {test['loss']:.4f}, {seconds:.1f} s)")
    with open(os.path.join(out_dir, "test_metrics.json"), "w") as f:
        json.dump(dict(test, seconds=seconds), f, indent=1)
    if args.plot and history:
        print("  wrote " + training.plot_history(history, os.path.join(out_dir, "curves.png")))
        if recipe.sample_batch is not None:
            x, m = (t.to(args.device) for t in recipe.sample_batch)
            print("  wrote " + training.plot_segmentation(model, x, m, os.path.join(out_dir, "predictions.png")))
    return 0


_SUMMARY_INPUTS = {"cnn": (1, 8, 8), "resnet18": (3, 224, 224), "unet": (3, 128, 128), "lstm": (8, 8)}


def _cmd_summary(args) -> int:
    from . import models, utils
    shape = args.input or _SUMMARY_INPUTS[args.model]
    expected = 2 if args.model == "lstm" else 3
    if len(shape) != expected:
        what = "T,F (steps, features)" if args.model == "lstm" else "C,H,W"
        print(f"tinynet summary: --input for {args.model} must be {what}, got {','.join(map(str, shape))}",
              file=sys.stderr)
        return 2
    if args.model == "cnn":
        model = models.SimpleCNN(in_channels=shape[0], input_size=(shape[1], shape[2]))
    elif args.model == "resnet18":
        model = models.resnet18(in_channels=shape[0])
    elif args.model == "unet":
        model = models.UNet(in_channels=shape[0])
    else:
        model = models.LSTMClassifier(input_size=shape[1], hidden_size=64, num_classes=10)
    try:
        table = utils.summary(model, shape)
    except ValueError as e:
        print(f"tinynet summary: {e}", file=sys.stderr)
        return 2
    if table is not None:
        print(table)
    return 0


def _cmd_gradcheck(args) -> int:
    reason = _check_device(args.device)
    if reason:
        print(f"tinynet gradcheck: device {args.device} is not usable: {reason}", file=sys.stderr)
        return 1
    from . import backend
    from .testing import all_ops
    ops = all_ops()
    if args.ops:
        wanted = [n.strip() for n in args.ops.split(",") if n.strip()]
        known = {o.name for o in ops}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            print(f"tinynet gradcheck: unknown op(s) {', '.join(unknown)}; registered: "
                  f"{', '.join(sorted(known))}", file=sys.stderr)
            return 2
        ops = [o for o in ops if o.name in wanted]
    backend.set_default_device(args.device)
    print(f"gradient checks on {args.device}, {args.examples} sample(s) per op, float64")
    print(f"{'op':<34}{'grad':>6}{'gradgrad':>10}{'worst abs error':>18}{'seconds':>9}")
    failures = 0
    for info in ops:
        t0 = time.perf_counter()
        result = _check_op(info, args.examples)
        failures += result["failed"]
        print(f"{info.name:<34}{result['grad']:>6}{result['gradgrad']:>10}"
              f"{result['worst']:>18.2e}{time.perf_counter() - t0:>9.2f}")
        for msg in result["messages"][:1]:
            print("    " + msg.splitlines()[0][:200])
    print(f"{len(ops) - failures} of {len(ops)} ops passed")
    return 1 if failures else 0


def _check_op(info, examples: int) -> dict:
    """gradcheck / gradgradcheck on ``examples`` drawn samples, plus the worst error of a
    random directional derivative (backward vs central difference)."""
    from hypothesis import HealthCheck, given, seed, settings
    from .testing import gradcheck, gradgradcheck
    state = {"grad": "pass" if info.gradcheck else "-", "gradgrad": "pass" if info.gradgradcheck else "-",
             "worst": 0.0, "messages": [], "failed": 0}

    @seed(20240611)                       # random but repeatable samples
    @settings(max_examples=examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(info.samples())
    def check(sample):
        inputs = _sample_tensors(sample)
        fn = (lambda *a: info.op(*a, **sample.kwargs))
        try:
            state["worst"] = max(state["worst"], _directional_error(fn, inputs))
        except Exception as e:  # noqa: BLE001 - reported in the table
            state["messages"].append(f"error: {type(e).__name__}: {e}")
        for key, checker, enabled in (("grad", gradcheck, info.gradcheck),
                                      ("gradgrad", gradgradcheck, info.gradgradcheck)):
            if not enabled or state[key] == "FAIL":
                continue
            try:
                checker(fn, inputs, fast_mode=info.fast_mode)
            except Exception as e:  # noqa: BLE001
                state[key] = "FAIL"
                state["messages"].append(f"{key}: {type(e).__name__}: {e}")
    try:
        check()
    except Exception as e:  # noqa: BLE001 - e.g. a strategy that cannot draw
        state["messages"].append(f"sampling: {type(e).__name__}: {e}")
        state["grad"] = "FAIL"
    state["failed"] = int("FAIL" in (state["grad"], state["gradgrad"]))
    return state


def _sample_tensors(sample):
    import numpy
    from . import tensor as make
    out = []
    for i, a in enumerate(sample.args):
        if isinstance(a, (numpy.ndarray, numpy.generic)):
            a = numpy.asarray(a)
            floating = a.dtype.kind == "f"
            out.append(make(a.astype(numpy.float64) if floating else a,
                            requires_grad=floating and i not in sample.no_grad))
        else:
            out.append(a)
    return out


def _directional_error(fn, inputs, eps: float = 1e-6) -> float:
    """|v·J·u (backward) - v·(f(x+eps·u) - f(x-eps·u))/(2eps)| for random u, v."""
    import numpy
    from . import Tensor, backend, no_grad
    rng = numpy.random.default_rng(0)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        return 0.0

    def outputs(args):
        out = fn(*args)
        out = out if isinstance(out, (tuple, list)) else (out,)
        return [o for o in out if isinstance(o, Tensor) and o.dtype.kind == "f"]

    outs = outputs(inputs)
    vs = [rng.standard_normal(o.shape) for o in outs]
    total = None
    for o, v in zip(outs, vs):
        term = (o * Tensor(backend.to_device(v, o.device))).sum()
        total = term if total is None else total + term
    for i in checked:
        inputs[i].grad = None
    if total is None or not total.requires_grad:
        return 0.0
    total.backward()
    us = {i: rng.standard_normal(inputs[i].shape) for i in checked}
    analytic = sum(float((backend.asnumpy(inputs[i].grad.data) * us[i]).sum())
                   for i in checked if inputs[i].grad is not None)

    def shifted(sign):
        args = list(inputs)
        for i in checked:
            args[i] = Tensor(inputs[i].data + sign * eps * backend.to_device(us[i], inputs[i].device))
        with no_grad():
            return sum(float((backend.asnumpy(o.data) * v).sum()) for o, v in zip(outputs(args), vs))
    numeric = (shifted(1) - shifted(-1)) / (2 * eps)
    return abs(analytic - numeric)


def _cmd_bench(args) -> int:
    try:
        from . import bench
    except ImportError:
        print("tinynet bench: the benchmark runner (tinynet/bench.py) is not part of this installation; "
              "run from a source checkout: python benchmarks/run.py", file=sys.stderr)
        return 1
    return bench.run_from_args(args, args.bench_parser)


def _cmd_selfcheck(args) -> int:
    try:
        from . import selfcheck
    except ImportError:
        print("tinynet selfcheck: the self-check (tinynet/selfcheck.py) is not available in this "
              "installation; try `tinynet gradcheck --examples 1` instead", file=sys.stderr)
        return 1
    argv = [a for a in getattr(args, "rest", []) if a != "--"]
    try:
        return int(selfcheck.main(argv) or 0)
    except TypeError:
        return int(selfcheck.main() or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tinynet`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
