"""Optimizers (``SGD``, ``Adam``, ``AdamW``) and learning-rate schedules
(``tinynet.optim.lr_scheduler``), with PyTorch's update rules and state dicts."""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from . import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
