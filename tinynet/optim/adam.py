"""Adam and AdamW (PyTorch's update, including amsgrad).

With g the gradient, t the step count, β1, β2, ε, λ:

    Adam:   g ← g + λ·p                 (L2 penalty through the gradient)
    AdamW:  p ← p·(1 - lr·λ)            (decoupled weight decay)
    m ← β1·m + (1 - β1)·g,   v ← β2·v + (1 - β2)·g²
    v̂ ← max(v̂, v) with amsgrad, else v
    p ← p - lr/(1 - β1^t) · m / (sqrt(v̂)/sqrt(1 - β2^t) + ε)
"""
from __future__ import annotations

import math

from .. import backend
from .optimizer import Optimizer, check_number

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    _decoupled = False

    """``foreach`` (default on) updates each parameter group through one flat buffer
    (see ``_flat.py``), chunk by chunk, each chunk in one compiled pass where compiled
    kernels are on (:func:`tinynet.kernels.compiled.optim.adam_update`; 2.5x faster than
    the NumPy route's passes on 2 M float32 parameters); ``foreach=False`` loops over the
    parameters. Same results, to rounding."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False,
                 foreach: bool | None = None):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def _check_group(self, g: dict) -> None:
        name = type(self).__name__
        check_number(g["lr"], "learning rate", name)
        check_number(g["eps"], "epsilon value", name)
        betas = g["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair, got {betas!r}")
        check_number(betas[0], "beta parameter at index 0", name, 0.0, 1.0, high_open=True)
        check_number(betas[1], "beta parameter at index 1", name, 0.0, 1.0, high_open=True)
        check_number(g["weight_decay"], "weight_decay value", name)

    def _update_group(self, group: dict) -> None:
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        wd, amsgrad = group["weight_decay"], group["amsgrad"]
        name = type(self).__name__
        for p in group["params"]:
            if p.grad is None:
                continue
            xp = backend.get_array_module(p.data)
            g = self._grad_array(p, name)
            if group["maximize"]:
                g = -g
            state = self.state.setdefault(id(p), {})
            if not state:
                state["step"] = 0
                state["exp_avg"] = xp.zeros_like(p.data)
                state["exp_avg_sq"] = xp.zeros_like(p.data)
                if amsgrad:
                    state["max_exp_avg_sq"] = xp.zeros_like(p.data)
            state["step"] += 1
            t = state["step"]
            if wd:
                if self._decoupled:
                    p.data *= 1.0 - lr * wd
                else:
                    g = g + wd * p.data
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            if amsgrad:
                vmax = state.setdefault("max_exp_avg_sq", xp.zeros_like(p.data))
                xp.maximum(vmax, v, out=vmax)
                v = vmax
            step_size = lr / (1.0 - b1 ** t)
            denom = xp.sqrt(v)
            denom /= math.sqrt(1.0 - b2 ** t)
            denom += eps
            xp.divide(m, denom, out=denom)
            denom *= step_size
            p.data -= denom

    def _update_flat(self, group: dict, fg) -> bool:
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        wd, amsgrad = group["weight_decay"], group["amsgrad"]
        states = [self.state.setdefault(id(p), {}) for p in fg.params]
        steps = {s.get("step", 0) for s in states}
        if len(steps) != 1:
            return False              # parameters at different step counts: loop instead
        t = steps.pop() + 1
        xp = fg.xp
        m = fg.state_buffer(states, "exp_avg")
        v = fg.state_buffer(states, "exp_avg_sq")
        vmax = fg.state_buffer(states, "max_exp_avg_sq") if amsgrad else None
        decay = 1.0 - lr * wd if wd and self._decoupled else None
        step_size = lr / (1.0 - b1 ** t)
        root_bc2 = math.sqrt(1.0 - b2 ** t)

        compiled = backend.use_compiled(fg.param, m, v)
        if compiled:
            from ..kernels.compiled.optim import adam_update
            no_vmax = xp.empty(0, dtype=fg.dtype)

        def update(lo, hi, g):     # g: the chunk's gradients; a fresh array unless compiled
            p_c, m_c, v_c = fg.param[lo:hi], m[lo:hi], v[lo:hi]
            if compiled:           # one pass (tinynet/kernels/compiled/optim.py); g read only
                adam_update(p_c, g, m_c, v_c, no_vmax if vmax is None else vmax[lo:hi], b1, b2,
                            eps, step_size, root_bc2, 0.0 if decay is not None else wd,
                            1.0 if decay is None else decay, group["maximize"])
                return
            if group["maximize"]:
                xp.negative(g, out=g)
            if decay is not None:
                p_c *= decay
            elif wd:
                g += wd * p_c
            scratch = xp.multiply(g, 1.0 - b1)
            m_c *= b1
            m_c += scratch
            v_c *= b2
            xp.multiply(g, g, out=scratch)
            scratch *= 1.0 - b2
            v_c += scratch
            if amsgrad:
                xp.maximum(vmax[lo:hi], v_c, out=vmax[lo:hi])
                v_c = vmax[lo:hi]
            xp.sqrt(v_c, out=scratch)
            scratch /= root_bc2
            scratch += eps
            xp.divide(m_c, scratch, out=scratch)
            scratch *= step_size
            p_c -= scratch
        fg.for_each_chunk(update, copy=not compiled)
        for s in states:
            s["step"] = t
        return True


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01), as ``torch.optim.AdamW``."""
    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False,
                 foreach: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize, foreach)
