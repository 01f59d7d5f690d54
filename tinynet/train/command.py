"""The ``tinynet train MODEL`` command: builds the recipe, trains it with :func:`fit`,
reports the final figure and writes the run's files.

``add_arguments(parser)`` declares the options, ``run(args)`` executes them and returns the
exit status (0 done, 1 failed, 2 bad arguments, data or checkpoint, 130 interrupted).
``add_model_arguments`` holds the options that shape the model and its data, shared with
``tinynet summary`` so that it shows what ``train`` builds with the same flags.

A run directory (``--out``, default ``runs/MODEL``) receives ``metrics.csv``,
``metrics.json``, ``last.npz`` (the checkpoint, which records the model's constructor and
this run's options), ``test_metrics.json`` and, with ``--plot``, PNG figures. A new run
refuses a directory that already holds one unless ``--overwrite`` is given.
``--resume CKPT`` continues the run ``CKPT`` belongs to with its own options: flags given
again must agree with them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .. import argtypes
from .recipes import RECIPES

__all__ = ["add_arguments", "add_model_arguments", "run", "description", "RUN_OPTIONS"]

#: Options that define a run; ``--resume`` restores them and refuses different values.
RUN_OPTIONS = ("epochs", "batch_size", "lr", "seed", "data", "images", "masks", "size", "width", "classes",
               "val_split")
#: Options whose defaults a recipe's one-line ``about`` describes (its data, its model's size).
_DESCRIBED_BY_ABOUT = ("data", "images", "masks", "size", "width", "classes")
_DATA_OPTIONS = _DESCRIBED_BY_ABOUT + ("val_split", "skip_bad")
_RUN_FILES = ("last.npz", "metrics.csv", "metrics.json", "test_metrics.json", "curves.png", "predictions.png",
              "attention.png", "samples.txt", "frames.png")


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (exclusive), got {text}")
    return v


def add_model_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options that choose the data and shape the model (train and summary)."""
    parser.add_argument("--data", metavar="SOURCE",
                        help="cnn, resnet, lstm: mnist:DIR (IDX files), cifar10:DIR (binary batches) or "
                             "folder:DIR (one subfolder per class); default: the built-in 8x8 digits")
    parser.add_argument("--images", metavar="DIR", help="unet: folder of images (PNG, JPEG, ...)")
    parser.add_argument("--masks", metavar="DIR",
                        help="unet: folder of masks, matched to images by file name without extension")
    parser.add_argument("--size", type=argtypes.positive_int, metavar="PIXELS",
                        help="images are resized to PIXELSxPIXELS (unet: default 224 with --images, 32 on "
                             "the built-in shapes; folder:DIR default 32)")
    parser.add_argument("--width", type=argtypes.positive_int,
                        help="filters of the first level (unet: default 16 with --images, 8 built-in; "
                             "resnet: default 8)")
    parser.add_argument("--classes", type=argtypes.positive_int, metavar="K",
                        help="unet: output classes, one sigmoid mask each (default 2 with --images, 1 built-in)")
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``tinynet train``'s arguments to ``parser``."""
    parser.add_argument("model", choices=list(RECIPES))
    parser.add_argument("--epochs", type=argtypes.non_negative_int, help="epochs (default per model)")
    parser.add_argument("--batch-size", type=argtypes.positive_int, help="batch size (default per model)")
    parser.add_argument("--lr", type=argtypes.positive_float,
                        help="Adam learning rate, cosine-annealed over the epochs (default per model)")
    parser.add_argument("--seed", type=argtypes.non_negative_int, help="random seed (default 0)")
    parser.add_argument("--device", type=argtypes.device, default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--threads", type=argtypes.positive_int, metavar="N",
                        help="threads for NumPy's BLAS (needs threadpoolctl; default: BLAS's own choice)")
    add_model_arguments(parser)
    parser.add_argument("--val-split", type=_fraction, metavar="FRACTION",
                        help="share of the training data held out for validation (default 0.1)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out unreadable or mismatched image files, reporting each (default: "
                             "the first bad file is an error)")
    parser.add_argument("--out", metavar="DIR",
                        help="where metrics and checkpoints go (default runs/MODEL; with --resume, the "
                             "checkpoint's folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    parser.add_argument("--resume", metavar="CKPT",
                        help="continue the run of a checkpoint (e.g. runs/cnn/last.npz) with its options")
    parser.add_argument("--plot", action="store_true",
                        help="write loss/metric curves (and U-Net predictions, seq2seq attention maps, convlstm "
                             "frames; charlm samples as text) as PNG (needs matplotlib)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar, one line per epoch")
    parser.add_argument("--nproc", type=argtypes.positive_int, default=1,
                        help="data-parallel ranks on this machine, started with mpiexec (default 1; "
                             "needs the dist extra); --batch-size stays the global batch, split "
                             "across ranks")
    parser.add_argument("--sync-bn", action="store_true",
                        help="with several ranks: BatchNorm statistics over all ranks' batches")
    return parser


def description() -> str:
    """The command's description for ``--help``: one line per recipe."""
    return ("Train a model on built-in data (no download) or on your own files (--data, --images/--masks). "
            "Models: " + "; ".join(f"{k}: {v.about}" for k, v in RECIPES.items()))


def _check_device(device: str) -> str | None:
    from .. import backend
    if backend.Device(device).type == "cuda":
        return backend.cuda_unavailable_reason()
    return None


class _Refused(Exception):
    """A problem with the command's arguments: printed, exit status 2."""


def _normalise(key, value):
    """Folder options as absolute paths, so a run resumed from another directory agrees."""
    if value is None:
        return None
    if key in ("images", "masks"):
        return os.path.abspath(os.path.expanduser(value))
    if key == "data" and ":" in value:
        kind, path = value.split(":", 1)
        return f"{kind}:{os.path.abspath(os.path.expanduser(path))}"
    return value


def _flag(key) -> str:
    return "--" + key.replace("_", "-")


def _given_options(args) -> dict:
    return {k: _normalise(k, getattr(args, k, None)) for k in RUN_OPTIONS if getattr(args, k, None) is not None}


def _resolve(args, spec) -> tuple:
    """The run's options: the flags, then (resuming) the checkpoint's, then the recipe's defaults."""
    from ..utils import read_config
    given = _given_options(args)
    for key in _DATA_OPTIONS:
        value = getattr(args, key, None)
        if value not in (None, False) and key not in spec.options:
            users = [n for n, s in RECIPES.items() if key in s.options]
            raise _Refused(f"{_flag(key)} does not apply to {spec.name} (it applies to {', '.join(users) or 'none'})")
    saved = {}
    if args.resume:
        if not os.path.isfile(args.resume):
            raise _Refused(f"--resume {args.resume}: no such file")
        try:
            config = read_config(args.resume)
        except ValueError as e:
            if "does not record how to build" not in str(e):
                raise _Refused(f"--resume: {e}") from None
            config = None              # a checkpoint from before configs were recorded: flags decide
        if config is not None:
            run = config.get("run") or {}
            if run.get("recipe") not in (None, spec.name):
                raise _Refused(f"--resume {args.resume} is a checkpoint of `tinynet train {run['recipe']}`, "
                               f"not of {spec.name}")
            saved = run.get("options") or {}
            differ = [k for k in RUN_OPTIONS if k in given and k in saved and given[k] != saved[k]]
            if differ:
                was = ", ".join(f"{_flag(k)} {saved[k]}" for k in differ)
                now = ", ".join(f"{_flag(k)} {given[k]}" for k in differ)
                raise _Refused(f"--resume {args.resume}: the checkpoint's run used {was}; this command gives "
                               f"{now}. Leave these flags out to continue that run, or start a new run "
                               f"with another --out")
    options = {k: None for k in RUN_OPTIONS}
    options.update(saved)
    options.update(given)
    # --skip-bad is not a difference between runs: given once, it holds for the resumed run too
    options["skip_bad"] = bool(getattr(args, "skip_bad", False) or saved.get("skip_bad"))
    options["train_samples"] = saved.get("train_samples")
    for key, default in (("epochs", spec.epochs), ("batch_size", spec.batch_size), ("lr", spec.lr),
                         ("seed", 0), ("val_split", 0.1)):
        if options.get(key) is None:
            options[key] = default
    return options


def _out_dir(args) -> str:
    if args.out:
        return args.out
    if args.resume:
        return os.path.dirname(os.path.abspath(args.resume))
    return os.path.join("runs", args.model)


def _prepare_out_dir(out_dir, args, remove: bool = True) -> None:
    """Refuses to overwrite a run without --overwrite; with it, ``remove`` deletes the old
    run's files (with several ranks, only rank 0 does)."""
    if args.resume:
        return
    present = [f for f in ("last.npz", "metrics.json") if os.path.isfile(os.path.join(out_dir, f))]
    if not present:
        return
    if not args.overwrite:
        raise _Refused(f"{out_dir} already holds a run ({', '.join(present)}). Continue it with --resume "
                       f"{os.path.join(out_dir, 'last.npz')}, replace it with --overwrite, or choose "
                       f"another --out")
    if not remove:
        return
    for name in _RUN_FILES:
        path = os.path.join(out_dir, name)
        if os.path.isfile(path):
            os.remove(path)


def _thread_limit(threads):
    import contextlib
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise _Refused("--threads needs threadpoolctl (pip install threadpoolctl)") from None
    return threadpool_limits(limits=threads)


def _headline(task, test: dict) -> str:
    """``accuracy: 0.9805 (loss 0.0712)``, ``IoU: 0.91, Dice: 0.95 (loss ...)``."""
    names = {"accuracy": "accuracy", "iou": "IoU", "dice": "Dice", "loss": "loss"}
    text = ", ".join(f"{names.get(k, k)}: {test[k]:.4f}" for k in task.headline if k in test)
    return text + (f" (loss {test['loss']:.4f})" if "loss" not in task.headline else "")


def _described(spec, recipe, options) -> str:
    """The recipe's one line (its defaults) for a run on them; once the data or the model's
    size is the user's, the model actually built, as its checkpoint records it."""
    config = recipe.model_config
    if config is None or all(options.get(k) is None for k in _DESCRIBED_BY_ABOUT):
        return spec.about
    kwargs = ", ".join(f"{k}={v!r}" for k, v in config.get("kwargs", {}).items())
    return f"{config['name']}({kwargs})"


def run(args) -> int:
    """Runs ``tinynet train`` with parsed ``args``; returns the exit status."""
    from . import distributed
    from ..distributed import launched_by_mpiexec
    if args.nproc > 1 and not launched_by_mpiexec():
        return distributed.relaunch(getattr(args, "argv", None) or sys.argv[1:], args.nproc,
                                    getattr(args, "threads", None))
    rank, world = distributed.setup()
    distributed.silence_other_ranks(rank)
    reason = _check_device(args.device)
    if reason:
        print(f"tinynet train: device {args.device} is not usable: {reason}", file=sys.stderr)
        return 1
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("tinynet train: --plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
            return 2
    spec = RECIPES[args.model]
    out_dir = _out_dir(args)
    try:
        options = _resolve(args, spec)
        _prepare_out_dir(out_dir, args, remove=rank == 0)
        with _thread_limit(args.threads):
            return _train(args, spec, options, out_dir, rank, world)
    except _Refused as e:
        print(f"tinynet train: {e}", file=sys.stderr)
        return 2


def _train(args, spec, options, out_dir, rank=0, world=1) -> int:
    from .. import optim
    from . import distributed
    from ..data import BadImageError
    from .errors import NonFiniteLossError, ResumeError, TrainingInterrupted
    from .loop import fit
    from .plots import plot_history
    from .recipes import build_recipe
    from .tasks import TASKS, evaluate
    build_options = {k: options[k] for k in RUN_OPTIONS if k not in ("epochs", "batch_size", "seed", "lr")}
    build_options["skip_bad"] = options["skip_bad"]
    build_options["report"] = lambda message: print(f"  skipped {message}", flush=True)
    try:
        recipe = build_recipe(args.model, batch_size=options["batch_size"], seed=options["seed"], **build_options)
    except ImportError as e:
        raise _Refused(str(e)) from None
    except (BadImageError, ValueError, FileNotFoundError) as e:
        raise _Refused(str(e)) from None
    n_train = len(recipe.train_loader.dataset)
    if args.resume and options.get("train_samples") not in (None, n_train):
        raise _Refused(f"--resume {args.resume}: the run trained on {options['train_samples']} samples, "
                       f"and the data now gives {n_train}; a resumed run needs the same data")
    options["train_samples"] = n_train
    epochs, lr = options["epochs"], options["lr"]
    task = TASKS[recipe.task]
    model = recipe.model.to(args.device)
    train_loader = recipe.train_loader
    if world > 1:
        try:
            train_loader = distributed.shard_loader(train_loader, rank, world, options["seed"])
        except ValueError as e:
            print(f"tinynet train: {e}", file=sys.stderr)
            return 2
        model = distributed.wrap_model(model, sync_bn=args.sync_bn)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    n_params = sum(p.numel() for p in model.parameters())
    run_config = {"recipe": args.model, "task": recipe.task, "options": options,
                  "input_shape": None if recipe.input_shape is None else list(recipe.input_shape),
                  "class_names": recipe.class_names, "preprocess": recipe.preprocess, "test_name": recipe.test_name}
    config = {"model": recipe.model_config, "run": run_config}
    source = options.get("data") or (f"{options['images']} + {options['masks']}" if options.get("images")
                                     else "built-in data")
    print(f"tinynet train {args.model}: {_described(spec, recipe, options)}")
    print(f"  {n_params:,} parameters; {source}: {n_train} training, "
          f"{len(recipe.val_loader.dataset)} validation samples")
    print(f"  epochs {epochs}, batch size {options['batch_size']}, lr {lr:g}, seed {options['seed']}, "
          f"device {args.device}" + (f", {args.threads} BLAS threads" if args.threads else "")
          + (f", {world} ranks x {options['batch_size'] // world}" if world > 1 else ""))
    print(f"  metrics and checkpoints in {out_dir}")
    progress = not args.no_progress and sys.stderr.isatty() and rank == 0
    t0 = time.perf_counter()
    try:
        history = fit(model, train_loader, optimizer, epochs, task.loss, task.metrics,
                      val_loader=recipe.val_loader, scheduler=scheduler, out_dir=out_dir, resume=args.resume,
                      device=args.device, progress=progress, log=lambda m: print("  " + m, flush=True),
                      config=config)
    except TrainingInterrupted as e:
        if rank != 0:
            return 130
        if e.checkpoint:
            out = "" if os.path.dirname(os.path.abspath(e.checkpoint)) == os.path.abspath(out_dir) else \
                f" --out {out_dir}"
            print(f"\ninterrupted; checkpoint saved. Resume with:\n  tinynet train {args.model} "
                  + (f"--nproc {world} " if world > 1 else "") + ("--sync-bn " if args.sync_bn else "")
                  + f"--resume {e.checkpoint}{out}", file=sys.stderr)
        else:
            print("\ninterrupted", file=sys.stderr)
        return 130
    except NonFiniteLossError as e:
        print(f"tinynet train: {e}", file=sys.stderr)
        return 1
    except ResumeError as e:
        print(f"tinynet train: --resume: {e}", file=sys.stderr)
        return 2
    except BadImageError as e:
        print(f"tinynet train: {e} (--skip-bad leaves such files out)", file=sys.stderr)
        return 1
    train_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    try:
        test = evaluate(model, recipe.test_loader, recipe.task, device=args.device)
    except KeyboardInterrupt:
        # fit() has returned: every epoch ran and its checkpoint is complete, so there is
        # nothing to resume; say so rather than a bare "interrupted"
        if rank == 0:
            print(f"\ninterrupted during the {recipe.test_name} pass; training had finished "
                  f"(checkpoint {os.path.join(out_dir, 'last.npz')})", file=sys.stderr)
        return 130
    test_seconds = time.perf_counter() - t1
    if rank != 0:       # rank 0 reports and writes the run's files
        return 0
    print(f"{recipe.test_name} {_headline(task, test)}")
    trained = sum(r.get("seconds", 0.0) for r in history)
    print(f"  training {trained:.1f} s over {len(history)} epoch{'s' if len(history) != 1 else ''} "
          f"(this command: {train_seconds:.1f} s with validation and checkpoints); "
          f"{recipe.test_name} pass {test_seconds:.1f} s")
    with open(os.path.join(out_dir, "test_metrics.json"), "w") as f:
        json.dump(dict(test, split=recipe.test_name, seconds=test_seconds), f, indent=1)
    if args.plot and history:
        print("  wrote " + plot_history(history, os.path.join(out_dir, "curves.png")))
        if recipe.plot is not None:
            for path in recipe.plot(getattr(model, "module", model), out_dir, args.device):
                print("  wrote " + path)
    return 0
