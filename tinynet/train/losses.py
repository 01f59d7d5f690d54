"""The loss of each task, as ``loss_fn(model, output, target) -> scalar Tensor``.

The model is an argument because the segmentation loss depends on it: a U-Net that ends
in a sigmoid gives probabilities (binary cross-entropy on clipped probabilities, as Keras
computes it), one with ``final_activation=None`` gives logits (binary cross-entropy with
logits, stabler in float32).
"""
from __future__ import annotations

from .. import functional as F

__all__ = ["classification_loss", "segmentation_loss", "regression_loss", "PROB_EPS"]

PROB_EPS = 1e-7   # Keras' epsilon: probabilities are clipped to [eps, 1 - eps] before the log


def classification_loss(model, out, y):
    """Mean cross-entropy of logits ``out`` (N, K) against class indices ``y`` (N,)."""
    return F.cross_entropy(out, y)


def segmentation_loss(model, out, y, reduction: str = "mean"):
    """Per-pixel binary cross-entropy of ``out`` (N, C, H, W) against masks ``y`` of the same shape."""
    if getattr(model, "final_activation", "sigmoid") is None:
        return F.binary_cross_entropy_with_logits(out, y, reduction=reduction)
    # As Keras does, so saturated float32 sigmoids (exactly 0 or 1) give finite gradients.
    return F.binary_cross_entropy(out.clamp(PROB_EPS, 1.0 - PROB_EPS), y, reduction=reduction)


def regression_loss(model, out, y):
    """Mean squared error."""
    return F.mse_loss(out, y)
