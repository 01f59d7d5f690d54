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
import signal
import sys
import threading
import time
from typing import Callable

from .. import backend
from ..backend import numpy as np
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


def _rate(per_second: float) -> str:
    """``1234``, ``12.3`` or ``0.42``: whole numbers once they are large enough to read."""
    return f"{per_second:.0f}" if per_second >= 100 else f"{per_second:.3g}"


def _bar_width(stream) -> int | None:
    """The width to draw the progress bar at: None lets tqdm follow the terminal, but a
    terminal that reports 0 columns (some CI consoles, a detached tmux pane) would get an
    empty bar, so it is drawn 80 wide instead."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return None
    return 80 if columns <= 0 else None


def _progress(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, unit="batch", file=sys.stderr, ncols=_bar_width(sys.stderr))


class _DeferredInterrupt:
    """Turns the first Ctrl-C (SIGINT) into a request that the loop honours between steps.

    A KeyboardInterrupt raised by the signal could land anywhere: between BatchNorm's
    update of its running statistics and the optimizer step, or halfway through the
    optimizer's parameter updates. A checkpoint written then would hold a half-applied
    step. So while :func:`fit` runs, the handler only sets ``requested``; the loop checks
    it after each completed step and after each epoch's checkpoint. A second Ctrl-C
    restores the previous handler and raises at once (no checkpoint of that state is
    written). Outside the main thread signals cannot be caught, and nothing is installed.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:          # e.g. an embedded interpreter without signal support
                self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _train_epoch(model, loader, optimizer, loss_fn, device, epoch, epochs, progress, on_step, state,
                 stop_requested):
    """One pass over ``loader``; ``state`` (step, seen, loss_sum, in_step) is updated as it goes.

    ``state["in_step"]`` is True from the fetch of a batch (transforms draw random numbers)
    to the end of its update: an exception raised then leaves a half-applied step.
    """
    bar = _progress(len(loader) - state["step"], f"epoch {epoch + 1}/{epochs}", progress)
    t0 = time.perf_counter()
    try:
        batches = iter(loader)
        while True:
            state["in_step"] = True
            try:
                x, y = next(batches)
            except StopIteration:
                state["in_step"] = False
                break
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
            state["in_step"] = False
            if bar is not None:
                bar.set_postfix(loss=f"{value:.4f}",
                                samples_s=f"{state['seen'] / max(time.perf_counter() - t0, 1e-9):.0f}")
                bar.update(1)
            if on_step is not None:
                on_step(epoch, state["step"], value)
            if stop_requested():
                raise KeyboardInterrupt
    finally:
        if bar is not None:
            bar.close()


def _process_group() -> tuple:
    """(rank, world size) of the process group, (0, 1) without one."""
    dist = sys.modules.get("tinynet.distributed")     # imported only if someone started it
    if dist is None or not dist.is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def _sum_over_ranks(state: dict) -> None:
    """Replaces this rank's ``seen`` and ``loss_sum`` by their sums over all ranks."""
    from .. import distributed as dist
    from ..tensor import Tensor
    t = Tensor(np.array([state["seen"], state["loss_sum"]], dtype=np.float64))
    dist.all_reduce(t)
    state["seen"], state["loss_sum"] = int(t.data[0]), float(t.data[1])


def _any_rank(flag: bool) -> bool:
    from .. import distributed as dist
    from ..tensor import Tensor
    t = Tensor(np.array([1.0 if flag else 0.0]))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.data[0])


def fit(model, train_loader, optimizer, epochs: int, loss_fn: Callable, metrics_fn: Callable | None = None,
        val_loader=None, scheduler=None, out_dir=None, resume=None, device=None, progress: bool = False,
        log: Callable | None = None, on_step: Callable | None = None, config: dict | None = None) -> list:
    """Trains ``model`` for ``epochs`` epochs and returns the per-epoch history (list of dicts).

    ``loss_fn(model, output, target)`` gives the scalar loss; ``metrics_fn(model, loader,
    device)`` the validation metrics (prefixed ``val_`` in the history). With ``out_dir``,
    metrics and ``last.npz`` are written after every epoch; Ctrl-C lets the current step
    finish, saves ``last.npz`` at that step and raises :class:`TrainingInterrupted` (a
    second Ctrl-C stops at once and keeps the previous checkpoint). ``resume`` is a
    checkpoint path to continue from: a run resumed after an interrupt ends bit-identical to
    an uninterrupted one. ``on_step(epoch, step, loss)`` is called after each update.
    ``config`` (``{"model": {"name", "kwargs"}, "run": {...}}``) is recorded in every
    checkpoint, for :func:`tinynet.utils.load_model`. A NaN or infinite loss raises
    :class:`NonFiniteLossError` before the update.
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
    history, start_epoch, start_step, order, carried = [], 0, 0, None, None
    if resume is not None:
        try:
            info = load_checkpoint(resume, model, optimizer, train_loader, scheduler)
        except (ValueError, KeyError, TypeError) as e:
            raise ResumeError(f"cannot resume from {resume}: {e}") from e
        history, start_epoch, start_step, order = info["history"], info["epoch"], info["step"], info["order"]
        carried = info.get("epoch_progress")
        saved_batch = (carried or {}).get("batch_size")
        if start_step and saved_batch is not None and saved_batch != train_loader.batch_size:
            raise ResumeError(
                f"cannot resume from {resume}: it stopped after step {start_step} of epoch {start_epoch + 1} "
                f"with batch size {saved_batch}, and this loader's batch size is {train_loader.batch_size}; "
                f"resume with batch size {saved_batch} (the batch size can only change between runs)")
        if start_epoch >= epochs:
            log(f"resumed from {resume}: the run already finished its {start_epoch} epoch"
                f"{'s' if start_epoch != 1 else ''}; nothing left to train")
        else:
            log(f"resumed from {resume} at epoch {start_epoch + 1}"
                + (f", step {start_step}" if start_step else ""))
    ckpt_path = None if out_dir is None else os.path.join(out_dir, "last.npz")
    saved_any = resume is not None and ckpt_path is not None and os.path.isfile(ckpt_path)
    rank, world = _process_group()
    main = rank == 0
    sampler = getattr(train_loader, "sampler", None)
    model.train()
    with _DeferredInterrupt() as stop:
        def stop_requested() -> bool:
            # With several ranks, stop together: every rank learns whether any saw Ctrl-C.
            return _any_rank(stop.requested) if world > 1 else stop.requested

        for epoch in range(start_epoch, epochs):
            if hasattr(sampler, "set_epoch"):
                # The sampler's order follows from its seed and the epoch, on every rank;
                # a checkpoint's saved order is rank 0's and is not needed.
                sampler.set_epoch(epoch)
                order = None
            if order is not None or start_step:
                train_loader.resume_at(order, start_step)
            # What this epoch has done so far; on resume, what the checkpoint carried over.
            carried = carried or {}
            if not main:        # the checkpoint's sums are global; rank 0 alone carries them
                carried = dict(carried, seen=0, loss_sum=0.0)
            progress_state = {"step": start_step, "seen": int(carried.get("seen", 0)),
                              "loss_sum": float(carried.get("loss_sum", 0.0)), "in_step": False,
                              "finished": False, "scheduled": False, "record": None}
            seconds_before = float(carried.get("seconds", 0.0))
            start_step, order, carried = 0, None, None
            t0 = time.perf_counter()
            try:
                _train_epoch(model, train_loader, optimizer, loss_fn, device, epoch, epochs, progress,
                             on_step, progress_state, stop_requested)
                progress_state["finished"] = True
                elapsed = seconds_before + time.perf_counter() - t0
                if world > 1:
                    _sum_over_ranks(progress_state)
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
                    + f" ({_rate(record['samples_per_s'])} samples/s, {elapsed:.1f} s)")
                if out_dir is not None and main:
                    _write_metrics(out_dir, history)
                    save_checkpoint(ckpt_path, model, optimizer, epoch + 1, history, train_loader,
                                    scheduler=scheduler, config=config)
                    saved_any = True
                if stop_requested():
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                if ckpt_path is None:
                    raise TrainingInterrupted(None) from None
                if world > 1 and not progress_state["finished"]:
                    _sum_over_ranks(progress_state)
                if not main:            # rank 0 writes the checkpoint that every rank resumes from
                    raise TrainingInterrupted(ckpt_path) from None
                if progress_state["in_step"]:
                    # A second Ctrl-C inside a step: this state is half-applied, keep the last file.
                    kept = ckpt_path if saved_any else None
                    log(f"stopped in the middle of epoch {epoch + 1}, step {progress_state['step'] + 1}; "
                        + (f"kept the previous checkpoint {ckpt_path}" if kept else "no checkpoint saved"))
                    raise TrainingInterrupted(kept) from None
                if not progress_state["finished"]:
                    epoch_progress = {"seen": progress_state["seen"], "loss_sum": progress_state["loss_sum"],
                                      "seconds": seconds_before + time.perf_counter() - t0,
                                      "batch_size": train_loader.batch_size}
                    save_checkpoint(ckpt_path, model, optimizer, epoch, history, train_loader,
                                    step=progress_state["step"], order=train_loader.epoch_order,
                                    scheduler=scheduler, config=config, epoch_progress=epoch_progress)
                    log(f"interrupted at epoch {epoch + 1}, step {progress_state['step']}: "
                        f"checkpoint saved to {ckpt_path}")
                else:
                    if not progress_state["scheduled"] and scheduler is not None:
                        scheduler.step()
                    record = progress_state["record"]
                    if record is not None and (not history or history[-1] is not record):
                        history.append(record)
                        _write_metrics(out_dir, history)
                    save_checkpoint(ckpt_path, model, optimizer, epoch + 1, history, train_loader,
                                    scheduler=scheduler, config=config)
                    log(f"interrupted after epoch {epoch + 1}: checkpoint saved to {ckpt_path}")
                raise TrainingInterrupted(ckpt_path) from None
    return history
