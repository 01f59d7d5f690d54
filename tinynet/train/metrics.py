"""Validation and test metrics: ``metrics_fn(model, loader, device=None) -> dict``.

Each runs the model in eval mode under ``no_grad`` over the whole loader and pools sums
over the set (not means of per-batch means), so the figure does not depend on the batch
size.
"""
from __future__ import annotations

from .. import backend
from .. import functional as F
from ..autograd import no_grad
from ..backend import numpy as np
from ._devices import model_device, to_device
from .losses import segmentation_loss

__all__ = ["classification_metrics", "segmentation_metrics", "regression_metrics"]


def batch_sums(model, loader, device, step):
    """Sums the dict ``step(x, y)`` returns for each batch of ``loader`` (moved to the
    model's device), in eval mode and without a graph; the training mode is restored."""
    device = model_device(model) if device is None else backend.Device(device)
    was_training = model.training
    model.eval()
    totals: dict = {}
    try:
        with no_grad():
            for x, y in loader:
                for k, v in step(to_device(x, device), to_device(y, device)).items():
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
    t = batch_sums(model, loader, device, lambda x, y: sums(model(x), y))
    return {"loss": t["loss"] / t["n"], "accuracy": t["correct"] / t["n"]}


def segmentation_metrics(model, loader, device=None, threshold: float = 0.5) -> dict:
    """Binary cross-entropy, IoU and Dice over ``loader``; a pixel is predicted positive for a
    class when that class's probability > ``threshold``.

    For each class (output channel) c, with P the predicted and T the true pixels of c
    pooled over the whole set: ``IoU_c = |P ∩ T| / |P ∪ T|``, ``Dice_c = 2|P ∩ T| / (|P| + |T|)``
    (1 when both are empty). ``iou`` and ``dice`` are the means over classes; with more than
    one class, ``iou_c`` and ``dice_c`` give each.
    """
    logits_out = getattr(model, "final_activation", "sigmoid") is None

    def sums(out, y):
        probs = out.sigmoid() if logits_out else out
        pred = probs.data > threshold
        true = y.data > 0.5
        xp = backend.get_array_module(pred)
        axes = (0, 2, 3)
        inter = xp.logical_and(pred, true).sum(axis=axes)
        p, t = pred.sum(axis=axes), true.sum(axis=axes)
        out_sums = {"loss": segmentation_loss(model, out, y, "sum").item(), "n": y.data.size}
        for c in range(y.shape[1]):
            out_sums[f"inter{c}"] = int(inter[c])
            out_sums[f"pred{c}"] = int(p[c])
            out_sums[f"true{c}"] = int(t[c])
        return out_sums
    t = batch_sums(model, loader, device, lambda x, y: sums(model(x), y))
    classes = sum(1 for k in t if k.startswith("inter"))
    ious, dices = [], []
    for c in range(classes):
        i, p, g = t[f"inter{c}"], t[f"pred{c}"], t[f"true{c}"]
        ious.append(i / (p + g - i) if p + g - i else 1.0)
        dices.append(2 * i / (p + g) if p + g else 1.0)
    result = {"loss": t["loss"] / t["n"], "iou": float(np.mean(ious)), "dice": float(np.mean(dices))}
    if classes > 1:
        result.update({f"iou_{c}": float(v) for c, v in enumerate(ious)})
        result.update({f"dice_{c}": float(v) for c, v in enumerate(dices)})
    return result


def regression_metrics(model, loader, device=None) -> dict:
    """Mean squared error over ``loader``."""
    t = batch_sums(model, loader, device,
                   lambda x, y: {"loss": F.mse_loss(model(x), y, reduction="sum").item(), "n": y.data.size})
    return {"loss": t["loss"] / t["n"]}
