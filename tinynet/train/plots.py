"""Figures of a run, as PNG files (needs matplotlib): the loss and metric curves, and a
U-Net's predicted masks beside the true ones."""
from __future__ import annotations

import os

from .. import backend
from ..autograd import no_grad

__all__ = ["plot_history", "plot_segmentation", "pyplot", "save_figure"]


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, dpi: int = 80) -> str:
    """Lays out ``fig``, writes it to ``path`` as PNG, frees it; returns the path."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return os.fspath(path)


def plot_history(history: list, path) -> str:
    """Loss curves and the validation metric per epoch, as a PNG (needs matplotlib)."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    epochs = [r["epoch"] for r in history]
    # the headline metrics; per-class ones (val_iou_0, ...) stay in metrics.csv
    metrics = [k for k in (history[0] if history else {})
               if k.startswith("val_") and k != "val_loss" and not k[-1].isdigit()]
    fig, axes = plt.subplots(1, 1 + bool(metrics), figsize=(5 * (1 + bool(metrics)), 3.5), squeeze=False)
    axes[0, 0].plot(epochs, [r["train_loss"] for r in history], label="train")
    if history and "val_loss" in history[0]:
        axes[0, 0].plot(epochs, [r["val_loss"] for r in history], label="validation")
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="loss")
    for a in axes[0]:                      # epochs are whole numbers: no 1.5 ticks
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend()
    for k in metrics:
        axes[0, 1].plot(epochs, [r[k] for r in history], label=k[4:])
    if metrics:
        axes[0, 1].set(xlabel="epoch", title="validation metrics")
        axes[0, 1].legend()
    return save_figure(fig, path, dpi=100)


def _label_map(masks):
    """(C, H, W) 0/1 masks -> (H, W): the mask itself for one class, else the last class
    marked at each pixel (so with background + foreground, the foreground)."""
    if masks.shape[0] == 1:
        return masks[0]
    return (masks.astype(bool) * backend.numpy.arange(masks.shape[0])[:, None, None]).max(axis=0)


def plot_segmentation(model, images, masks, path, threshold: float = 0.5) -> str:
    """Inputs, true masks and predicted masks side by side, one row per image (PNG)."""
    plt = pyplot()
    model.eval()
    with no_grad():
        out = model(images)
        probs = out.sigmoid() if getattr(model, "final_activation", "sigmoid") is None else out
    model.train()
    x = backend.asnumpy(images.data)
    t, p = backend.asnumpy(masks.data), backend.asnumpy(probs.data) > threshold
    n = x.shape[0]
    cmap, vmax = ("gray", 1) if t.shape[1] <= 2 else ("tab10", 9)
    fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n), squeeze=False)
    for i in range(n):
        img = x[i].transpose(1, 2, 0)
        img = img / 255.0 if img.max() > 1.5 else img
        axes[i, 0].imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None)
        axes[i, 1].imshow(_label_map(t[i]), cmap=cmap, vmin=0, vmax=vmax)
        axes[i, 2].imshow(_label_map(p[i]), cmap=cmap, vmin=0, vmax=vmax)
        for a in axes[i]:
            a.axis("off")
    for a, title in zip(axes[0], ("input", "true mask", "predicted")):
        a.set_title(title)
    return save_figure(fig, path)
