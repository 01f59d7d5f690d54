"""Scaled dot-product attention on raw arrays: forward, and backward through the softmax.

Shapes: queries Q (..., L, E), keys K (..., S, E), values V (..., S, Ev) (batch dims
broadcast, as in matmul; the gradients come back at the broadcast shape and the caller
sums them down); an additive bias
B broadcastable to (..., L, S) (a boolean mask arrives here as 0 where allowed and -inf
where not); an optional dropout mask D (..., L, S) already scaled by 1/(1 - p)::

    S_ = α · Q Kᵀ + B                          scores        (..., L, S),  α = scale
    P  = softmax(S_) along the last axis        weights       (..., L, S)
    A  = P ⊙ D                                  dropped weights (A = P without dropout)
    O  = A V                                    output        (..., L, Ev)

A row whose scores are all -inf (a query that may attend to nothing) gets P = 0 and
O = 0, PyTorch's rule, instead of the 0/0 = NaN of a plain softmax.

Backward, given dO (and dA when the weights are an output too). With the softmax
Jacobian ∂P_ij/∂S_ik = P_ij (δ_jk - P_ik), row by row::

    dV  = Aᵀ dO                                 (..., S, Ev)
    dA ← dA + dO Vᵀ                             (..., L, S)
    dP  = dA ⊙ D
    dS_ = P ⊙ (dP - Σ_k dP_k P_k)               the Jacobian-vector product, O(L·S) per row
    dQ  = α · dS_ K,   dK = α · dS_ᵀ Q,   dB = dS_ (summed over broadcast dims by the caller)

Cost: two GEMMs forward (Q Kᵀ and P V), four backward (dO Vᵀ, Aᵀ dO, dS_ K, dS_ᵀ Q), and
the (..., L, S) score matrix is held for backward: memory grows as L·S per head, which is
why long sequences need blocked ("flash") kernels that recompute it; here L·S is small.
The docs page docs/kernels/attention.md derives these lines step by step.
"""
from __future__ import annotations

from .. import backend

__all__ = ["safe_softmax", "attention_forward", "attention_backward"]


def _swap(x):
    """The last two axes swapped, as a contiguous copy: NumPy's batched matmul hands
    contiguous stacks to BLAS but loops more slowly over transposed views (a copy of an
    (L, E) operand costs far less than the GEMM it speeds up, ~4x here)."""
    return backend.get_array_module(x).ascontiguousarray(x.swapaxes(-1, -2))


def safe_softmax(scores):
    """softmax along the last axis; rows that are all -inf give zeros (not NaN). In place."""
    xp = backend.get_array_module(scores)
    top = scores.max(axis=-1, keepdims=True)
    dead = top == -xp.inf
    if dead.any():
        top = xp.where(dead, 0, top)
    scores -= top
    xp.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    if dead.any():
        total = xp.where(dead, 1, total)   # the row is all zeros already: 0 / 1 = 0
    scores /= total
    return scores


def attention_forward(q, k, v, bias, scale: float, dropout_mask=None):
    """(O, P): output (..., L, Ev) and softmax weights P (..., L, S), before dropout."""
    xp = backend.get_array_module(q)
    q, v = xp.ascontiguousarray(q), xp.ascontiguousarray(v)   # heads split by a permute
    scores = q @ _swap(k)
    scores *= scale
    if bias is not None:
        scores = scores + bias          # may broadcast to a larger shape
    p = safe_softmax(scores)
    a = p if dropout_mask is None else p * dropout_mask
    return a @ v, p


def attention_backward(q, k, v, p, scale: float, g_out, dropout_mask=None, g_weights=None):
    """(dQ, dK, dV, dS) from the saved weights P and dO (and dA when weights were returned).

    dS is the gradient of the scores, which is also the additive bias's gradient.
    """
    xp = backend.get_array_module(q)
    q, k, g_out = xp.ascontiguousarray(q), xp.ascontiguousarray(k), xp.ascontiguousarray(g_out)
    a = p if dropout_mask is None else p * dropout_mask
    dv = _swap(a) @ g_out
    dp = g_out @ _swap(v)
    if g_weights is not None:
        dp += g_weights
    if dropout_mask is not None:
        dp *= dropout_mask
    # dS = P ⊙ (dP - rowsum(dP ⊙ P)), in place in dP
    dp -= (dp * p).sum(axis=-1, keepdims=True)
    dp *= p
    ds = dp
    dq = ds @ k
    dq *= scale
    dk = _swap(ds) @ q
    dk *= scale
    return dq, dk, dv, ds
