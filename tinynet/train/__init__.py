"""Training: the loop used by the ``tinynet train`` command, the examples and the tests.

One file per idea:

* :mod:`~tinynet.train.loop` — :func:`fit`, the loop (epochs, validation, ``metrics.csv``
  and ``metrics.json``, the checkpoint ``last.npz``, exact resume, Ctrl-C);
* :mod:`~tinynet.train.checkpoint` — :func:`save_checkpoint` / :func:`load_checkpoint`;
* :mod:`~tinynet.train.losses` and :mod:`~tinynet.train.metrics` — per task;
* :mod:`~tinynet.train.tasks` — loss and metrics paired per task, :func:`evaluate`, and
  :func:`train_classifier` (cross-entropy; loss and accuracy), :func:`train_segmentation`
  (binary cross-entropy on per-pixel masks; IoU and Dice), :func:`train_regression` (MSE);
* :mod:`~tinynet.train.recipes` — the models and data ``tinynet train NAME`` builds;
* :mod:`~tinynet.train.plots` — curves and predicted masks as PNG;
* :mod:`~tinynet.train.command` — the ``tinynet train`` command itself.
"""
from .errors import NonFiniteLossError, ResumeError, TrainingInterrupted
from .checkpoint import save_checkpoint, load_checkpoint
from .losses import classification_loss, segmentation_loss, regression_loss
from .metrics import classification_metrics, segmentation_metrics, regression_metrics
from .loop import fit
from .tasks import Task, TASKS, evaluate, train_classifier, train_segmentation, train_regression
from .recipes import Recipe, RECIPES, build_recipe, register
from .plots import plot_history, plot_segmentation

__all__ = ["fit", "train_classifier", "train_segmentation", "train_regression", "evaluate",
           "classification_metrics", "segmentation_metrics", "regression_metrics",
           "classification_loss", "segmentation_loss", "regression_loss", "Task", "TASKS",
           "save_checkpoint", "load_checkpoint", "NonFiniteLossError", "TrainingInterrupted", "ResumeError",
           "Recipe", "RECIPES", "build_recipe", "register", "plot_history", "plot_segmentation"]
