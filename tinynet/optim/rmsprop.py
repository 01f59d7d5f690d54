"""RMSprop (Hinton's lecture 6e; PyTorch's variant with momentum and centering).

With g the gradient, α the smoothing constant, ε, λ, μ (momentum):

    g ← g + λ·p
    s ← α·s + (1 - α)·g²                        (square_avg)
    centered:  ḡ ← ḡ + (1 - α)·(g - ḡ),  d ← sqrt(s - ḡ²) + ε     (grad_avg)
    otherwise: d ← sqrt(s) + ε
    momentum:  b ← μ·b + g / d,  p ← p - lr·b                    (momentum_buffer)
    otherwise: p ← p - lr·g / d

State per parameter (PyTorch's names): ``step``, ``square_avg``, and ``momentum_buffer``
(momentum > 0) and ``grad_avg`` (centered) when used.
"""
from __future__ import annotations

from .. import backend
from .optimizer import Optimizer, check_number

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False, foreach: bool | None = None):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def _check_group(self, g: dict) -> None:
        check_number(g["lr"], "learning rate", "RMSprop")
        check_number(g["eps"], "epsilon value", "RMSprop")
        check_number(g["momentum"], "momentum value", "RMSprop")
        check_number(g["weight_decay"], "weight_decay value", "RMSprop")
        check_number(g["alpha"], "alpha value", "RMSprop")

    def _update_group(self, group: dict) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        mu, centered = group["momentum"], group["centered"]
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = backend.get_array_module(p.data)
            g = self._descent_grad(p, group, "RMSprop")
            state = self.state.setdefault(id(p), {})
            if not state:
                state["step"] = 0
                state["square_avg"] = xp.zeros_like(p.data)
                if mu > 0:
                    state["momentum_buffer"] = xp.zeros_like(p.data)
                if centered:
                    state["grad_avg"] = xp.zeros_like(p.data)
            state["step"] += 1
            s = state["square_avg"]
            s *= alpha
            s += (1.0 - alpha) * (g * g)
            if centered:
                ga = state.setdefault("grad_avg", xp.zeros_like(p.data))
                ga += (1.0 - alpha) * (g - ga)
                denom = xp.sqrt(s - ga * ga)
            else:
                denom = xp.sqrt(s)
            denom += eps
            if mu > 0:
                buf = state.setdefault("momentum_buffer", xp.zeros_like(p.data))
                buf *= mu
                buf += g / denom
                p.data -= lr * buf
            else:
                p.data -= lr * (g / denom)
