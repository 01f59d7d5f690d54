"""Rebuilding a model from a training checkpoint alone: :func:`load_model`.

A checkpoint written by ``tinynet train`` (or by :func:`tinynet.train.fit` with
``config=``) records, besides the weights, the :mod:`tinynet.models` constructor that built
the model and its keyword arguments (``{"model": {"name": "resnet18", "kwargs": {...}},
"run": {...}}``). :func:`load_model` calls that constructor, loads the weights (strictly:
every key, every shape) and returns the model in eval mode. Only names exported by
:mod:`tinynet.models` can be called, and the file is read without pickle, so a checkpoint
cannot run code.
"""
from __future__ import annotations

import json
import os

from .checkpoint import load

__all__ = ["load_model", "read_config"]


def _load_state(path, caller: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{caller}: no such file: {path}")
    state = load(path)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{caller}: {path} is not a tinynet training checkpoint (no 'model' entry)")
    if "config" not in state:
        raise ValueError(f"{caller}: {path} does not record how to build its model (it holds weights only; "
                         "checkpoints written by `tinynet train` record it). Build the model yourself and "
                         "load the weights with tinynet.train.load_checkpoint(path, model)")
    return state


def read_config(path) -> dict:
    """The configuration a checkpoint records: ``{"model": {"name", "kwargs"}, "run": {...}}``."""
    return json.loads(str(_load_state(path, "read_config")["config"]))


def load_model(path, device=None):
    """The model saved in the training checkpoint ``path``, rebuilt, with its weights, in eval mode.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint written by ``tinynet train`` (``runs/MODEL/last.npz``) or by
        :func:`tinynet.train.fit` given ``config``.
    device : str, optional
        Where to put the model (``"cpu"``, ``"cuda"``, ``"cuda:N"``); default: the CPU.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a checkpoint, records no model configuration, names a model that
        :mod:`tinynet.models` does not export, or its weights do not fit the model.

    Examples
    --------
    >>> import os, tempfile
    >>> from tinynet import optim
    >>> from tinynet.models import SimpleCNN
    >>> from tinynet.train import save_checkpoint
    >>> from tinynet.utils import load_model
    >>> model = SimpleCNN(num_classes=3)
    >>> path = os.path.join(tempfile.mkdtemp(), "last.npz")
    >>> _ = save_checkpoint(path, model, optim.SGD(model.parameters(), lr=0.1), 1, [],
    ...                     config={"model": {"name": "SimpleCNN", "kwargs": {"num_classes": 3}}})
    >>> rebuilt = load_model(path)
    >>> type(rebuilt).__name__, rebuilt.training
    ('SimpleCNN', False)
    """
    from .. import models
    state = _load_state(path, "load_model")
    config = json.loads(str(state["config"]))
    spec = config.get("model") if isinstance(config, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"load_model: {path} records no model constructor (config has no model name)")
    name, kwargs = spec["name"], spec.get("kwargs") or {}
    if name not in models.__all__:
        raise ValueError(f"load_model: {path} names the model {name!r}, which tinynet.models does not "
                         f"export (known: {', '.join(models.__all__)})")
    try:
        model = getattr(models, name)(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"load_model: cannot build {name}(**{kwargs!r}) recorded in {path}: {e}") from e
    try:
        model.load_state_dict(state["model"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"load_model: the weights in {path} do not fit {name}: {e}") from e
    if device is not None:
        model.to(device)
    return model.eval()
