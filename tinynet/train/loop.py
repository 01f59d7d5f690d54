"""The training loop: :func:`fit`.

Per epoch: forward, loss, backward and optimizer step over the training loader, then the
scheduler step and the validation metrics; with ``out_dir``, ``metrics.csv``,
``metrics.json`` and the checkpoint ``last.npz`` are written after every epoch.

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

from .. import backend
from ._devices import model_device, to_device
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import NonFiniteLossError, ResumeError, TrainingInterrupted

__all__ = ["fit"]


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
            x, y = to_device(x, device), to_device(y, device)
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
        device = model_device(model)
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
