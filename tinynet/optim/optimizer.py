"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad`` and state dicts.

Updates work on the raw arrays (``p.data``, ``p.grad.data``) in place, so a step builds no
graph and the Parameter objects a model holds stay the same. ``state_dict()`` follows
PyTorch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``
with parameters numbered in group order, so it can be saved with ``tinynet.utils.save``.

By default (``foreach`` not False) SGD and Adam update a parameter group through one flat
buffer (``_flat.py``): on the first step each ``p.data`` is re-pointed at a slice of that
buffer (same values, same Parameter objects; a ``state_dict()`` taken *before* that step
holds the old arrays). Moving or casting the model afterwards is detected and handled.
"""
from __future__ import annotations

import math

from .. import backend
from ..tensor import Tensor
from ._flat import flat_group_for

__all__ = ["Optimizer"]


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


def check_number(value, name: str, op: str, low: float = 0.0, high: float | None = None,
                 high_open: bool = False) -> None:
    """ValueError unless ``low <= value`` (and ``value < high`` or ``<= high``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{op}: invalid {name}: {value!r} (expected a number)")
    if value < low or (high is not None and (value >= high if high_open else value > high)):
        bound = f"[{low}, {high})" if high_open else (f"[{low}, {high}]" if high is not None else f">= {low}")
        raise ValueError(f"{op}: invalid {name}: {value} (expected {bound})")


class Optimizer:
    """Base class: subclasses implement ``_update_group(group)`` and ``_check_group``."""

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        self.defaults = dict(defaults)
        self.state: dict = {}            # id(param) -> {name: xp array or number}
        self.param_groups: list = []
        self._flat: dict = {}            # group index -> FlatGroup (see _flat.py)
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors or of dicts, got a "
                            "single Tensor (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        name = type(self).__name__
        if not isinstance(group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got {type(group).__name__}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{name}: a parameter group has an empty parameter list")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: optimizer can only optimize Tensors, got {type(p).__name__}")
            if p.dtype.kind != "f":
                raise TypeError(f"{name}: can only optimize floating-point tensors, got {p.dtype}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group "
                             "(or twice in one)")
        full = dict(group, params=params)
        for k, v in self.defaults.items():
            if v is required and k not in full:
                raise ValueError(f"{name}: parameter group didn't specify a value of required "
                                 f"optimization parameter {k}")
            full.setdefault(k, v)
        self._check_group(full)
        self.param_groups.append(full)

    def _check_group(self, group: dict) -> None:
        pass

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure() if given."""
        loss = None
        if closure is not None:
            from ..autograd import enable_grad
            with enable_grad():
                loss = closure()
        for i, group in enumerate(self.param_groups):
            params = group["params"]
            with_grad = [p for p in params if p.grad is not None]
            if not with_grad:
                continue
            fg = None
            if group.get("foreach", True) is not False and len(with_grad) == len(params):
                fg = flat_group_for(self._flat, i, params)
            if fg is None or not self._update_flat(group, fg):
                self._update_group(group)
        return loss

    def _update_group(self, group: dict) -> None:
        """The reference update: a loop over the group's parameters."""
        raise NotImplementedError

    def _update_flat(self, group: dict, fg) -> bool:
        """The same update on a group's flat buffers; returns False to fall back to the
        loop (e.g. when parameters are at different step counts)."""
        return False

    @staticmethod
    def _grad_array(p, op: str):
        g = p.grad.data
        if g.shape != p.data.shape:
            raise ValueError(f"{op}: gradient shape {g.shape} does not match parameter shape {p.data.shape}")
        return g if g.dtype == p.data.dtype else g.astype(p.data.dtype)

    def _descent_grad(self, p, group: dict, op: str):
        """The gradient an update descends: negated for ``maximize``, plus the L2 term
        ``weight_decay · p`` (PyTorch's coupled weight decay). A new array; ``p.grad`` is
        left as it is."""
        g = self._grad_array(p, op)
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        return g

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict:
        """``{"state": {i: {...}}, "param_groups": [...]}``; arrays come back as Tensors
        sharing memory with the optimizer's state (save them, don't mutate them)."""
        index, groups = {}, []
        for g in self.param_groups:
            entry = {k: v for k, v in g.items() if k != "params"}
            entry["params"] = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                entry["params"].append(index[id(p)])
            groups.append(entry)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                s = self.state.get(id(p))
                if s:
                    state[index[id(p)]] = {k: (Tensor(v) if hasattr(v, "dtype") and hasattr(v, "shape")
                                               and not isinstance(v, (int, float)) else v)
                                           for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores state from ``state_dict()`` (Tensors, NumPy arrays or torch tensors);
        values are copied onto each parameter's device and dtype."""
        name = type(self).__name__
        try:
            groups, state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             "'param_groups'") from None
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: loaded state dict has {len(groups)} parameter "
                             f"groups but the optimizer has {len(self.param_groups)}")
        by_index = {}
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {i} has "
                                 f"{len(saved['params'])} parameters in the state dict but "
                                 f"{len(own['params'])} in the optimizer")
            for k, p in zip(saved["params"], own["params"]):
                by_index[int(k)] = p
        new_state = {}
        for k, s in state.items():
            k = int(k)
            if k not in by_index:
                raise ValueError(f"{name}.load_state_dict: state for parameter {k}, which no group holds")
            p = by_index[k]
            entry = {}
            for key, v in s.items():
                arr = _array_of(v)
                if arr is None:
                    entry[key] = v.item() if hasattr(v, "item") and not isinstance(v, (int, float)) else v
                    continue
                if arr.ndim == 0 and key == "step":
                    entry[key] = float(arr) if arr.dtype.kind == "f" else int(arr)
                    continue
                if tuple(arr.shape) != tuple(p.shape):
                    raise ValueError(f"{name}.load_state_dict: state {key!r} of parameter {k} has "
                                     f"shape {tuple(arr.shape)} but the parameter has {tuple(p.shape)}")
                entry[key] = backend.to_device(arr, p.device).astype(p.dtype, copy=True)
            new_state[id(p)] = entry
        self.state = new_state
        for saved, own in zip(groups, self.param_groups):
            for key, v in saved.items():
                if key != "params":
                    own[key] = tuple(v) if isinstance(v, list) and key == "betas" else v

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


def _array_of(v):
    if isinstance(v, Tensor):
        return v.data
    if hasattr(v, "detach") and hasattr(v, "numpy"):     # a torch tensor
        return v.detach().cpu().numpy()
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return v
    return None
