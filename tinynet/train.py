"""Training loops used by the ``tinynet train`` command, the examples and the tests.

One loop, :func:`fit`, runs epochs of forward / loss / backward / optimizer step, evaluates
after each epoch, writes ``metrics.csv``, ``metrics.json`` and the checkpoint
``last.npz`` to ``out_dir``, and can resume from such a checkpoint. The task-specific
wrappers choose the loss and the metrics:

* :func:`train_classifier` — cross-entropy; loss and accuracy;
* :func:`train_segmentation` — binary cross-entropy on per-pixel masks; IoU and Dice;
* :func:`train_regression` — mean squared error.

Resuming is exact: a checkpoint holds the model, the optimizer, tinynet's random state,
the loader's own generator and — for a run interrupted mid-epoch (Ctrl-C) — that epoch's
sample order and position, so a resumed run ends with weights bit-identical to an
uninterrupted one.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from typing import Callable

from . import backend
from . import functional as F
from .autograd import no_grad
from .backend import numpy as np
from .random import get_rng_state, set_rng_state
from .tensor import Tensor

__all__ = ["fit", "train_classifier", "train_segmentation", "train_regression", "evaluate",
           "classification_metrics", "segmentation_metrics", "regression_metrics",
           "save_checkpoint", "load_checkpoint", "NonFiniteLossError", "TrainingInterrupted", "ResumeError",
           "Recipe", "build_recipe", "plot_history", "plot_segmentation"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run is stopped before the weights are updated."""


class ResumeError(ValueError):
    """The checkpoint given to ``resume`` does not fit this model, optimizer or file format."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fit`; ``checkpoint`` is the path saved before stopping (or None)."""

    def __init__(self, checkpoint):
        super().__init__(f"training interrupted; checkpoint saved to {checkpoint}")
        self.checkpoint = checkpoint


# ---------------------------------------------------------------------------- metrics
def _to(t, device):
    return t if device is None or t.device == device else t.to(device)


def _model_device(model):
    for p in model.parameters():
        return p.device
    return None


def _per_batch_sums(model, loader, device, step_fn):
    """Runs ``step_fn(output, target) -> dict of sums`` over ``loader`` in eval mode."""
    device = _model_device(model) if device is None else backend.Device(device)
    was_training = model.training
    model.eval()
    totals: dict = {}
    try:
        with no_grad():
            for x, y in loader:
                x, y = _to(x, device), _to(y, device)
                for k, v in step_fn(model(x), y).items():
                    totals[k] = totals.get(k, 0.0) + float(v)
    finally:
        model.train(was_training)
    return totals


def classification_metrics(model, loader, device=None) -> dict:
    """Mean cross-entropy and accuracy of a classifier over ``loader``."""
    def sums(logits, y):
        loss = F.cross_entropy(logits, y, reduction="sum").item()
        correct = (logits.argmax(1) == y).sum().item()
        return {"loss": loss, "correct": correct, "n": y.shape[0]}
    t = _per_batch_sums(model, loader, device, sums)
    return {"loss": t["loss"] / t["n"], "accuracy": t["correct"] / t["n"]}


_PROB_EPS = 1e-7   # Keras' epsilon: probabilities are clipped to [eps, 1 - eps] before the log


def _seg_loss(model, out, y, reduction="mean"):
    if getattr(model, "final_activation", "sigmoid") is None:
        return F.binary_cross_entropy_with_logits(out, y, reduction=reduction)
    # As Keras does, so saturated float32 sigmoids (exactly 0 or 1) give finite gradients.
    return F.binary_cross_entropy(out.clamp(_PROB_EPS, 1.0 - _PROB_EPS), y, reduction=reduction)


def segmentation_metrics(model, loader, device=None, threshold: float = 0.5) -> dict:
    """Binary cross-entropy, IoU and Dice over ``loader`` (pixels pooled over the set,
    averaged over classes); a pixel is predicted positive when its probability > threshold."""
    logits_out = getattr(model, "final_activation", "sigmoid") is None

    def sums(out, y):
        probs = out.sigmoid() if logits_out else out
        pred = probs.data > threshold
        true = y.data > 0.5
        xp = backend.get_array_module(pred)
        axes = (0, 2, 3)
        inter = xp.logical_and(pred, true).sum(axis=axes)
        p, t = pred.sum(axis=axes), true.sum(axis=axes)
        out_sums = {"loss": _seg_loss(model, out, y, "sum").item(), "n": y.data.size}
        for c in range(y.shape[1]):
            out_sums[f"inter{c}"] = int(inter[c])
            out_sums[f"pred{c}"] = int(p[c])
            out_sums[f"true{c}"] = int(t[c])
        return out_sums
    t = _per_batch_sums(model, loader, device, sums)
    classes = sum(1 for k in t if k.startswith("inter"))
    ious, dices = [], []
    for c in range(classes):
        i, p, g = t[f"inter{c}"], t[f"pred{c}"], t[f"true{c}"]
        ious.append(i / (p + g - i) if p + g - i else 1.0)
        dices.append(2 * i / (p + g) if p + g else 1.0)
    return {"loss": t["loss"] / t["n"], "iou": float(np.mean(ious)), "dice": float(np.mean(dices))}


def regression_metrics(model, loader, device=None) -> dict:
    """Mean squared error over ``loader``."""
    t = _per_batch_sums(model, loader, device,
                        lambda out, y: {"loss": F.mse_loss(out, y, reduction="sum").item(), "n": y.data.size})
    return {"loss": t["loss"] / t["n"]}


def evaluate(model, loader, task: str = "classification", device=None) -> dict:
    """Metrics of ``model`` on ``loader`` for ``task`` (classification, segmentation, regression)."""
    if task not in _TASKS:
        raise ValueError(f"evaluate: unknown task {task!r}; choose from {', '.join(_TASKS)}")
    return _TASKS[task][1](model, loader, device)


# ---------------------------------------------------------------------------- checkpoints
def _rng_to_strings(state: dict) -> dict:
    # PCG64 state and increment are 128-bit ints; strings keep them exact in any format.
    return {"bit_generator": state["bit_generator"],
            "state": {k: str(v) for k, v in state["state"].items()},
            "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}


def save_checkpoint(path, model, optimizer, epoch: int, history: list, loader=None, step: int = 0,
                    order=None, scheduler=None, extra: dict | None = None) -> str:
    """Writes model, optimizer, scheduler, RNG and progress to ``path`` (atomic, no pickle)."""
    from . import utils
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": _rng_to_strings(get_rng_state()), "epoch": int(epoch), "step": int(step),
             "history": json.dumps(history)}
    if loader is not None and loader.state_dict():
        state["loader"] = {"rng": json.dumps(_rng_to_strings(loader.state_dict()["rng"]))}
    if scheduler is not None and hasattr(scheduler, "state_dict"):
        state["scheduler"] = json.dumps(scheduler.state_dict())
    if order is not None:
        state["order"] = backend.asnumpy(np.asarray(order))
    if extra:
        state["extra"] = extra
    utils.save(state, path)
    return os.fspath(path)


def load_checkpoint(path, model, optimizer=None, loader=None, scheduler=None) -> dict:
    """Restores what :func:`save_checkpoint` wrote; returns ``{"epoch", "step", "order", "history"}``."""
    from . import utils
    state = utils.load(path)
    for key in ("model", "rng", "epoch"):
        if key not in state:
            raise ValueError(f"load_checkpoint: {path} is not a tinynet training checkpoint "
                             f"(no {key!r} entry)")
    model.load_state_dict(state["model"])
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(json.loads(str(state["scheduler"])))
    set_rng_state(state["rng"])
    if loader is not None and "loader" in state and loader.state_dict():
        rng = json.loads(str(state["loader"]["rng"]))
        loader.load_state_dict({"rng": {"bit_generator": rng["bit_generator"],
                                        "state": {k: int(v) for k, v in rng["state"].items()},
                                        "has_uint32": rng["has_uint32"], "uinteger": rng["uinteger"]}})
    order = state.get("order")
    return {"epoch": int(state["epoch"]), "step": int(state.get("step", 0)),
            "order": None if order is None else backend.asnumpy(order.data if isinstance(order, Tensor) else order),
            "history": json.loads(str(state.get("history", "[]")))}


# ---------------------------------------------------------------------------- the loop
def _write_metrics(out_dir, history: list) -> None:
    keys = []
    for rec in history:
        keys += [k for k in rec if k not in keys]
    with open(os.path.join(out_dir, "metrics.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(history, f, indent=1)


def _progress(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, unit="batch", file=sys.stderr)


def _train_epoch(model, loader, optimizer, loss_fn, device, epoch, epochs, progress, on_step, state):
    """One pass over ``loader``; ``state`` (step, seen, loss_sum) is updated as it goes."""
    bar = _progress(len(loader) - state["step"], f"epoch {epoch + 1}/{epochs}", progress)
    t0 = time.perf_counter()
    try:
        for x, y in loader:
            x, y = _to(x, device), _to(y, device)
            loss = loss_fn(model, model(x), y)
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"training stopped: the loss became {value} at epoch {epoch + 1}, step {state['step'] + 1} "
                    f"(this step was not applied). Lower the learning rate or check the data.")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            state["step"] += 1
            state["seen"] += x.shape[0]
            state["loss_sum"] += value * x.shape[0]
            if bar is not None:
                bar.set_postfix(loss=f"{value:.4f}",
                                samples_s=f"{state['seen'] / max(time.perf_counter() - t0, 1e-9):.0f}")
                bar.update(1)
            if on_step is not None:
                on_step(epoch, state["step"], value)
    finally:
        if bar is not None:
            bar.close()


def fit(model, train_loader, optimizer, epochs: int, loss_fn: Callable, metrics_fn: Callable | None = None,
        val_loader=None, scheduler=None, out_dir=None, resume=None, device=None, progress: bool = False,
        log: Callable | None = None, on_step: Callable | None = None) -> list:
    """Trains ``model`` for ``epochs`` epochs and returns the per-epoch history (list of dicts).

    ``loss_fn(model, output, target)`` gives the scalar loss; ``metrics_fn(model, loader,
    device)`` the validation metrics (prefixed ``val_`` in the history). With ``out_dir``,
    metrics and ``last.npz`` are written after every epoch; Ctrl-C saves ``last.npz`` at
    the current step and raises :class:`TrainingInterrupted`. ``resume`` is a checkpoint
    path to continue from. ``on_step(epoch, step, loss)`` is called after each update.
    A NaN or infinite loss raises :class:`NonFiniteLossError` before the update.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    log = log or (lambda msg: None)
    if device is not None:
        device = backend.Device(device)
        model.to(device)
    else:                      # batches follow the model (data is usually built on the host)
        device = _model_device(model)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    history, start_epoch, start_step, order = [], 0, 0, None
    if resume is not None:
        try:
            info = load_checkpoint(resume, model, optimizer, train_loader, scheduler)
        except (ValueError, KeyError, TypeError) as e:
            raise ResumeError(f"cannot resume from {resume}: {e}") from e
        history, start_epoch, start_step, order = info["history"], info["epoch"], info["step"], info["order"]
        log(f"resumed from {resume} at epoch {start_epoch + 1}" + (f", step {start_step}" if start_step else ""))
    ckpt_path = None if out_dir is None else os.path.join(out_dir, "last.npz")
    model.train()
    for epoch in range(start_epoch, epochs):
        if order is not None or start_step:
            train_loader.resume_at(order, start_step)
        # Ctrl-C anywhere in the epoch saves a checkpoint: mid-training at the current step
        # (with this epoch's sample order), afterwards as a completed epoch.
        progress_state = {"step": start_step, "seen": 0, "loss_sum": 0.0, "finished": False,
                          "scheduled": False, "record": None}
        start_step, order = 0, None
        t0 = time.perf_counter()
        try:
            _train_epoch(model, train_loader, optimizer, loss_fn, device, epoch, epochs, progress,
                         on_step, progress_state)
            progress_state["finished"] = True
            elapsed = time.perf_counter() - t0
            seen = progress_state["seen"]
            record = {"epoch": epoch + 1, "train_loss": progress_state["loss_sum"] / max(seen, 1),
                      "samples_per_s": seen / max(elapsed, 1e-9), "seconds": elapsed}
            progress_state["record"] = record
            if scheduler is not None:
                scheduler.step()
            progress_state["scheduled"] = True
            if val_loader is not None and metrics_fn is not None:
                record.update({f"val_{k}": v for k, v in metrics_fn(model, val_loader, device).items()})
            history.append(record)
            log(f"epoch {epoch + 1}/{epochs}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "samples_per_s", "seconds"))
                + f" ({record['samples_per_s']:.0f} samples/s, {elapsed:.1f} s)")
            if out_dir is not None:
                _write_metrics(out_dir, history)
                save_checkpoint(ckpt_path, model, optimizer, epoch + 1, history, train_loader,
                                scheduler=scheduler)
        except KeyboardInterrupt:
            if ckpt_path is None:
                raise TrainingInterrupted(None) from None
            if not progress_state["finished"]:
                save_checkpoint(ckpt_path, model, optimizer, epoch, history, train_loader,
                                step=progress_state["step"], order=train_loader.epoch_order,
                                scheduler=scheduler)
                log(f"interrupted at epoch {epoch + 1}, step {progress_state['step']}: "
                    f"checkpoint saved to {ckpt_path}")
            else:
                if not progress_state["scheduled"] and scheduler is not None:
                    scheduler.step()
                record = progress_state["record"]
                if record is not None and (not history or history[-1] is not record):
                    history.append(record)
                save_checkpoint(ckpt_path, model, optimizer, epoch + 1, history, train_loader,
                                scheduler=scheduler)
                log(f"interrupted after epoch {epoch + 1}: checkpoint saved to {ckpt_path}")
            raise TrainingInterrupted(ckpt_path) from None
    return history


def _classification_loss(model, out, y):
    return F.cross_entropy(out, y)


def _regression_loss(model, out, y):
    return F.mse_loss(out, y)


_TASKS = {"classification": (_classification_loss, classification_metrics),
          "segmentation": (lambda model, out, y: _seg_loss(model, out, y), segmentation_metrics),
          "regression": (_regression_loss, regression_metrics)}


def train_classifier(model, train_loader, optimizer, epochs: int, val_loader=None, **kwargs) -> list:
    """:func:`fit` with cross-entropy; validation ``val_loss`` and ``val_accuracy``.

    >>> import numpy as np
    >>> from tinynet import optim
    >>> from tinynet.data import DataLoader, TensorDataset
    >>> from tinynet.models import SimpleCNN
    >>> x = np.random.default_rng(0).random((32, 1, 8, 8)).astype("float32")
    >>> y = (x.mean(axis=(1, 2, 3)) > 0.5).astype("int64")
    >>> data = TensorDataset(x, y)
    >>> model = SimpleCNN(num_classes=2)
    >>> history = train_classifier(model, DataLoader(data, batch_size=8, shuffle=True),
    ...                            optim.Adam(model.parameters()), epochs=2,
    ...                            val_loader=DataLoader(data, batch_size=32))
    >>> len(history), sorted(history[-1])
    (2, ['epoch', 'samples_per_s', 'seconds', 'train_loss', 'val_accuracy', 'val_loss'])
    """
    return fit(model, train_loader, optimizer, epochs, _classification_loss, classification_metrics,
               val_loader=val_loader, **kwargs)


def train_segmentation(model, train_loader, optimizer, epochs: int, val_loader=None, **kwargs) -> list:
    """:func:`fit` with per-pixel binary cross-entropy; validation ``val_iou`` and ``val_dice``."""
    return fit(model, train_loader, optimizer, epochs, _TASKS["segmentation"][0], segmentation_metrics,
               val_loader=val_loader, **kwargs)


def train_regression(model, train_loader, optimizer, epochs: int, val_loader=None, **kwargs) -> list:
    """:func:`fit` with mean squared error; validation ``val_loss``."""
    return fit(model, train_loader, optimizer, epochs, _regression_loss, regression_metrics,
               val_loader=val_loader, **kwargs)


# ---------------------------------------------------------------------------- built-in recipes
class Recipe:
    """A model with its built-in data: what ``tinynet train NAME`` runs."""

    def __init__(self, name, task, model, train_loader, val_loader, test_loader, sample_batch=None):
        self.name, self.task, self.model = name, task, model
        self.train_loader, self.val_loader, self.test_loader = train_loader, val_loader, test_loader
        self.sample_batch = sample_batch


def build_recipe(name: str, batch_size: int = 32, seed: int = 0) -> Recipe:
    """``cnn``, ``resnet``, ``lstm`` (digits) or ``unet`` (generated shapes), with loaders.

    The digits' training part is split 90/10 into train and validation; the test part
    is only used for the final figure.
    """
    from . import manual_seed
    from .data import DataLoader, TensorDataset, load_digits, make_shapes, random_split
    from . import models
    manual_seed(seed)
    if name in ("cnn", "resnet", "lstm"):
        (xtr, ytr), (xte, yte) = load_digits(as_arrays=True, seed=seed)
        if name == "lstm":            # each image is a sequence of 8 rows of 8 pixels
            xtr, xte = xtr.reshape(-1, 8, 8), xte.reshape(-1, 8, 8)
        train_set, val_set = random_split(TensorDataset(xtr, ytr), [0.9, 0.1], seed=seed)
        test_set = TensorDataset(xte, yte)
        if name == "cnn":
            model = models.SimpleCNN()
        elif name == "resnet":
            model = models.resnet18(num_classes=10, in_channels=1, stem="cifar", width=8)
        else:
            model = models.LSTMClassifier(input_size=8, hidden_size=64, num_classes=10)
        task, sample = "classification", None
    elif name == "unet":
        size = 32
        train_set = make_shapes(384, size=size, seed=seed, as_dataset=True)
        val_set = make_shapes(64, size=size, seed=seed + 1_000_001, as_dataset=True)
        test_set = make_shapes(128, size=size, seed=seed + 2_000_003, as_dataset=True)
        # Logits out, BCE-with-logits loss: stabler than sigmoid + BCE in float32.
        model = models.UNet(in_channels=3, num_classes=1, base_width=8, depth=3,
                            dropout=(0.0, 0.0, 0.1, 0.1), final_activation=None)
        task, sample = "segmentation", test_set.take(slice(0, 6))
    else:
        raise ValueError(f"build_recipe: unknown model {name!r}; choose from cnn, resnet, unet, lstm")
    return Recipe(name, task, model,
                  DataLoader(train_set, batch_size=batch_size, shuffle=True),
                  DataLoader(val_set, batch_size=256), DataLoader(test_set, batch_size=256), sample)


# ---------------------------------------------------------------------------- plots
def plot_history(history: list, path) -> str:
    """Loss curves and the validation metric per epoch, as a PNG (needs matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [r["epoch"] for r in history]
    metrics = [k for k in (history[0] if history else {}) if k.startswith("val_") and k != "val_loss"]
    fig, axes = plt.subplots(1, 1 + bool(metrics), figsize=(5 * (1 + bool(metrics)), 3.5), squeeze=False)
    axes[0, 0].plot(epochs, [r["train_loss"] for r in history], label="train")
    if history and "val_loss" in history[0]:
        axes[0, 0].plot(epochs, [r["val_loss"] for r in history], label="validation")
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[0, 0].legend()
    for k in metrics:
        axes[0, 1].plot(epochs, [r[k] for r in history], label=k[4:])
    if metrics:
        axes[0, 1].set(xlabel="epoch", title="validation metrics")
        axes[0, 1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.fspath(path)


def plot_segmentation(model, images, masks, path, threshold: float = 0.5) -> str:
    """Inputs, true masks and predicted masks side by side, one row per image (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    model.eval()
    with no_grad():
        out = model(images)
        probs = out.sigmoid() if getattr(model, "final_activation", "sigmoid") is None else out
    model.train()
    x = backend.asnumpy(images.data)
    t, p = backend.asnumpy(masks.data), backend.asnumpy(probs.data) > threshold
    n = x.shape[0]
    fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n), squeeze=False)
    for i in range(n):
        img = x[i].transpose(1, 2, 0)
        img = img / 255.0 if img.max() > 1.5 else img
        axes[i, 0].imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None)
        axes[i, 1].imshow(t[i].max(axis=0), cmap="gray", vmin=0, vmax=1)
        axes[i, 2].imshow(p[i].max(axis=0), cmap="gray", vmin=0, vmax=1)
        for a in axes[i]:
            a.axis("off")
    for a, title in zip(axes[0], ("input", "true mask", "predicted")):
        a.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return os.fspath(path)
