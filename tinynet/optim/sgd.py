"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

PyTorch's formulation (g = gradient, μ = momentum, τ = dampening, λ = weight_decay):

    g ← g + λ·p
    b ← g                       (first step)      b ← μ·b + (1 - τ)·g   (later steps)
    g ← g + μ·b   (nesterov)    g ← b             (otherwise)
    p ← p - lr·g
"""
from __future__ import annotations

from .optimizer import Optimizer, check_number

__all__ = ["SGD"]


class SGD(Optimizer):
    """``foreach`` (default on) updates each parameter group through one flat buffer
    (see ``_flat.py``); ``foreach=False`` loops over the parameters. Same results."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False,
                 foreach: bool | None = None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def _check_group(self, g: dict) -> None:
        check_number(g["lr"], "learning rate", "SGD")
        check_number(g["momentum"], "momentum value", "SGD")
        check_number(g["dampening"], "dampening value", "SGD")
        check_number(g["weight_decay"], "weight_decay value", "SGD")
        if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")

    def _update_group(self, group: dict) -> None:
        lr, mu, tau = group["lr"], group["momentum"], group["dampening"]
        nesterov = group["nesterov"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._descent_grad(p, group, "SGD")
            if mu:
                state = self.state.setdefault(id(p), {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.copy()
                else:
                    buf *= mu
                    buf += (1.0 - tau) * g
                g = g + mu * buf if nesterov else buf
            p.data -= lr * g

    def _update_flat(self, group: dict, fg) -> bool:
        lr, mu, tau = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov = group["weight_decay"], group["nesterov"]
        states = [self.state.setdefault(id(p), {}) for p in fg.params]
        if mu:
            has = [s.get("momentum_buffer") is not None for s in states]
            if any(has) and not all(has):
                return False          # some parameters skipped earlier steps: loop instead
        buf = fg.state_buffer(states, "momentum_buffer") if mu else None
        first = mu and not all(has)

        def update(lo, hi, g):     # g: a fresh chunk, ours to overwrite
            p_c = fg.param[lo:hi]
            if group["maximize"]:
                fg.xp.negative(g, out=g)
            if wd:
                g += wd * p_c
            if mu:
                b_c = buf[lo:hi]
                if first:
                    b_c[...] = g
                else:
                    b_c *= mu
                    b_c += (1.0 - tau) * g
                if nesterov:
                    g += mu * b_c
                else:
                    p_c -= lr * b_c
                    return
            g *= lr
            p_c -= g
        fg.for_each_chunk(update)
        return True
