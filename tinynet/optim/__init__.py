"""Optimizers (``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``) and learning-rate schedules
(``tinynet.optim.lr_scheduler``), with PyTorch's update rules and state dicts."""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from . import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
from .rmsprop import RMSprop      # noqa: E402
from .adagrad import Adagrad      # noqa: E402

__all__ += ["RMSprop", "Adagrad"]
