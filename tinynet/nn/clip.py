"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_`` (PyTorch semantics).

Recurrent networks need them: backpropagation through many steps can multiply a gradient
by the recurrent Jacobian again and again, and one exploding step ruins the weights.
"""
from __future__ import annotations

import math
from typing import Iterable

from .. import backend
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _with_grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: "Iterable[Tensor] | Tensor", max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scales all gradients in place so that their joint norm is at most ``max_norm``.

    The norm is taken over all gradients as if concatenated into one vector
    (``norm_type`` p >= 1 or ``inf``). Returns the total norm before clipping, as a
    0-d Tensor. Gradients are multiplied by ``min(1, max_norm / (total + 1e-6))``. A NaN or
    infinite total raises ``RuntimeError`` when ``error_if_nonfinite`` is set.

    >>> import tinynet as tn
    >>> w = tn.tensor([3.0, 4.0], requires_grad=True); (w * w).sum().backward()
    >>> round(clip_grad_norm_([w], 1.0).item(), 4), [round(v, 3) for v in w.grad.tolist()]
    (10.0, [0.6, 0.8])
    """
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not (norm_type == math.inf or norm_type > 0):
        raise ValueError(f"clip_grad_norm_: norm_type must be positive or inf, got {norm_type}")
    params = _with_grads(parameters)
    if not params:
        return Tensor(backend.get_default_device().xp.zeros((), dtype="float32"))
    xp = params[0].grad.xp
    grads = [p.grad.data for p in params]
    if norm_type == math.inf:
        norms = [xp.abs(g).max() if g.size else xp.zeros((), g.dtype) for g in grads]
        total = xp.stack([xp.asarray(n, dtype=grads[0].dtype) for n in norms]).max()
    else:
        per = [xp.sum(xp.abs(g.astype(grads[0].dtype, copy=False)) ** norm_type) for g in grads] \
            if norm_type != 2.0 else [xp.vdot(g.ravel(), g.ravel()) for g in grads]
        total = xp.sum(xp.stack(per)) ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                           "non-finite, so it cannot be clipped; pass error_if_nonfinite=False to "
                           "clip anyway")
    coef = max_norm / (float(total) + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return Tensor(xp.asarray(total))


def clip_grad_value_(parameters: "Iterable[Tensor] | Tensor", clip_value: float) -> None:
    """Clamps every gradient element into ``[-clip_value, clip_value]``, in place."""
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be non-negative, got {clip_value}")
    for p in _with_grads(parameters):
        xp = p.grad.xp
        xp.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)
