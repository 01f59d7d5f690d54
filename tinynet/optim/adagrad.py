"""Adagrad (Duchi, Hazan & Singer, 2011), PyTorch's update.

With g the gradient, t the step count, λ, ε and the learning-rate decay η_d:

    g ← g + λ·p
    lr_t = lr / (1 + (t - 1)·η_d)
    S ← S + g²                               (``sum``, starting at initial_accumulator_value)
    p ← p - lr_t · g / (sqrt(S) + ε)

As in PyTorch, the state (``step`` = 0, ``sum``) exists from construction, so a
``state_dict()`` taken before the first step already holds it.
"""
from __future__ import annotations

from .. import backend
from .optimizer import Optimizer, check_number

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group) -> dict:
        xp = backend.get_array_module(p.data)
        return self.state.setdefault(id(p), {
            "step": 0,
            "sum": xp.full(p.data.shape, group["initial_accumulator_value"], dtype=p.data.dtype)})

    def _check_group(self, g: dict) -> None:
        check_number(g["lr"], "learning rate", "Adagrad")
        check_number(g["lr_decay"], "lr_decay value", "Adagrad")
        check_number(g["weight_decay"], "weight_decay value", "Adagrad")
        check_number(g["initial_accumulator_value"], "initial_accumulator_value", "Adagrad")
        check_number(g["eps"], "epsilon value", "Adagrad")

    def _update_group(self, group: dict) -> None:
        lr, decay, eps = group["lr"], group["lr_decay"], group["eps"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = backend.get_array_module(p.data)
            g = self._descent_grad(p, group, "Adagrad")
            state = self.state.get(id(p)) or self._init_state(p, group)
            state["step"] += 1
            clr = lr / (1.0 + (state["step"] - 1) * decay)
            total = state["sum"]
            total += g * g
            std = xp.sqrt(total)
            std += eps
            p.data -= clr * (g / std)
