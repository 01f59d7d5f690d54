"""Training checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is one ``.npz`` written by :func:`tinynet.utils.save` (atomic, no pickle)
holding the model and optimizer state dicts, tinynet's random state, the loader's own
generator, the scheduler, the epoch and step reached, the history so far and — for a run
interrupted mid-epoch — that epoch's sample order.

With ``config`` it also records ``{"model": {"name", "kwargs"}, "run": {...}}``: the
:mod:`tinynet.models` constructor with its arguments and the run's configuration (recipe,
options, data, task, class names, input shape), as JSON. That is what lets
:func:`tinynet.utils.load_model` rebuild the model from the file alone and ``--resume``
restore the run's options.
"""
from __future__ import annotations

import json
import os

from .. import backend
from ..backend import numpy as np
from ..random import get_rng_state, set_rng_state
from ..tensor import Tensor

__all__ = ["save_checkpoint", "load_checkpoint"]


def _rng_to_strings(state: dict) -> dict:
    # PCG64 state and increment are 128-bit ints; strings keep them exact in any format.
    return {"bit_generator": state["bit_generator"],
            "state": {k: str(v) for k, v in state["state"].items()},
            "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}


def _unwrap(model):
    """The model inside a DistributedDataParallel wrapper: a checkpoint holds the model's
    own keys, so runs on any number of ranks (and ``load_model``) read the same file."""
    from ..nn.parallel import DistributedDataParallel
    return model.module if isinstance(model, DistributedDataParallel) else model


def save_checkpoint(path, model, optimizer, epoch: int, history: list, loader=None, step: int = 0,
                    order=None, scheduler=None, extra: dict | None = None, config: dict | None = None,
                    epoch_progress: dict | None = None) -> str:
    """Writes model, optimizer, scheduler, RNG and progress to ``path`` (atomic, no pickle)."""
    from .. import utils
    model = _unwrap(model)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": _rng_to_strings(get_rng_state()), "epoch": int(epoch), "step": int(step),
             "history": json.dumps(history)}
    if loader is not None and loader.state_dict():
        state["loader"] = {"rng": json.dumps(_rng_to_strings(loader.state_dict()["rng"]))}
    if scheduler is not None and hasattr(scheduler, "state_dict"):
        state["scheduler"] = json.dumps(scheduler.state_dict())
    if order is not None:
        state["order"] = backend.asnumpy(np.asarray(order))
    if extra:
        state["extra"] = extra
    if config is not None:
        state["config"] = json.dumps(config)
    if epoch_progress is not None:       # the interrupted epoch's sums so far, and its batch size
        state["epoch_progress"] = json.dumps(epoch_progress)
    utils.save(state, path)
    return os.fspath(path)


def _listing(keys, limit: int = 3) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _check_model_keys(path, model, state) -> None:
    """A short error for weights of another model (not every key name on one line)."""
    own, saved = set(model.state_dict()), set(state["model"])
    if own == saved:
        return
    writer = ""
    if "config" in state:
        config = json.loads(str(state["config"]))
        recipe = (config.get("run") or {}).get("recipe")
        name = (config.get("model") or {}).get("name")
        writer = f" It holds a {name}" + (f" written by `tinynet train {recipe}`" if recipe else "") + "."
    raise ValueError(f"the weights in {path} belong to a different model: {len(saved - own)} of its "
                     f"{len(saved)} entries are not in this {type(model).__name__} (e.g. {_listing(saved - own)}) "
                     f"and {len(own - saved)} of this model's {len(own)} are missing (e.g. "
                     f"{_listing(own - saved)}).{writer}")


def load_checkpoint(path, model, optimizer=None, loader=None, scheduler=None) -> dict:
    """Restores what :func:`save_checkpoint` wrote; returns ``{"epoch", "step", "order",
    "history", "config", "epoch_progress"}`` (the last two None when the checkpoint has none)."""
    from .. import utils
    state = utils.load(path)
    for key in ("model", "rng", "epoch"):
        if key not in state:
            raise ValueError(f"load_checkpoint: {path} is not a tinynet training checkpoint "
                             f"(no {key!r} entry)")
    _check_model_keys(path, _unwrap(model), state)
    _unwrap(model).load_state_dict(state["model"])
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(json.loads(str(state["scheduler"])))
    set_rng_state(state["rng"])
    if loader is not None and "loader" in state and loader.state_dict():
        rng = json.loads(str(state["loader"]["rng"]))
        loader.load_state_dict({"rng": {"bit_generator": rng["bit_generator"],
                                        "state": {k: int(v) for k, v in rng["state"].items()},
                                        "has_uint32": rng["has_uint32"], "uinteger": rng["uinteger"]}})
    order = state.get("order")
    return {"epoch": int(state["epoch"]), "step": int(state.get("step", 0)),
            "order": None if order is None else backend.asnumpy(order.data if isinstance(order, Tensor) else order),
            "history": json.loads(str(state.get("history", "[]"))),
            "config": json.loads(str(state["config"])) if "config" in state else None,
            "epoch_progress": json.loads(str(state["epoch_progress"])) if "epoch_progress" in state else None}
