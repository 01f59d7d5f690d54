"""Tasks: the loss and the metrics that go together, and :func:`fit` wrapped for each.

========================  =======================  ==========================  ==============
task                      loss                     metrics                     test headline
========================  =======================  ==========================  ==============
``classification``        cross-entropy            loss, accuracy              accuracy
``segmentation``          per-pixel binary CE      loss, IoU, Dice             IoU, Dice
``regression``            mean squared error       loss                        loss
``translation``           token cross-entropy      loss, exact match           exact match
``language_model``        next-char cross-entropy  loss, bits/char, accuracy   bits/char, acc
``video``                 MSE of all predictions   loss, MSE, copy-last MSE    MSE, copy MSE
========================  =======================  ==========================  ==============

A new kind of model adds one :class:`Task` to :data:`TASKS`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from .loop import fit
from .losses import classification_loss, regression_loss, segmentation_loss
from .metrics import classification_metrics, regression_metrics, segmentation_metrics
from .sequences import (language_model_loss, language_model_metrics, translation_loss, translation_metrics,
                        video_loss, video_metrics)

__all__ = ["Task", "TASKS", "evaluate", "train_classifier", "train_segmentation", "train_regression"]


class Task(NamedTuple):
    """``loss(model, output, target)``, ``metrics(model, loader, device)`` and the keys
    of the metrics printed as the run's final test figure."""
    loss: Callable
    metrics: Callable
    headline: tuple


TASKS = {
    "classification": Task(classification_loss, classification_metrics, ("accuracy",)),
    "segmentation": Task(segmentation_loss, segmentation_metrics, ("iou", "dice")),
    "regression": Task(regression_loss, regression_metrics, ("loss",)),
    "translation": Task(translation_loss, translation_metrics, ("exact_match",)),
    "language_model": Task(language_model_loss, language_model_metrics, ("bits_per_char", "completion_accuracy")),
    "video": Task(video_loss, video_metrics, ("mse", "copy_last_mse")),
}


def evaluate(model, loader, task: str = "classification", device=None) -> dict:
    """Metrics of ``model`` on ``loader`` for ``task`` (classification, segmentation, regression)."""
    if task not in TASKS:
        raise ValueError(f"evaluate: unknown task {task!r}; choose from {', '.join(TASKS)}")
    return TASKS[task].metrics(model, loader, device)


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
    task = TASKS["classification"]
    return fit(model, train_loader, optimizer, epochs, task.loss, task.metrics, val_loader=val_loader, **kwargs)


def train_segmentation(model, train_loader, optimizer, epochs: int, val_loader=None, **kwargs) -> list:
    """:func:`fit` with per-pixel binary cross-entropy; validation ``val_iou`` and ``val_dice``."""
    task = TASKS["segmentation"]
    return fit(model, train_loader, optimizer, epochs, task.loss, task.metrics, val_loader=val_loader, **kwargs)


def train_regression(model, train_loader, optimizer, epochs: int, val_loader=None, **kwargs) -> list:
    """:func:`fit` with mean squared error; validation ``val_loss``."""
    task = TASKS["regression"]
    return fit(model, train_loader, optimizer, epochs, task.loss, task.metrics, val_loader=val_loader, **kwargs)
