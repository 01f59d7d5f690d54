"""Scaled dot-product attention as one differentiable op.

The forward and its first-order backward are the array kernels of
``tinynet/kernels/attention.py`` (two GEMMs forward, four backward, derived in
docs/kernels/attention.md)::

    O = (softmax(α·Q Kᵀ + B) ⊙ D) V
    dS = P ⊙ (dP - Σ dP ⊙ P),   dQ = α·dS K,   dK = α·dSᵀ Q,   dV = Aᵀ dO,   dB = dS

When a graph is requested (``backward(create_graph=True)``) the same lines run as tinynet
ops, with P recomputed from Q and K, so that every derivative order flows through the
softmax (the pattern of ``BatchNormTrain``).

Masks follow PyTorch: a boolean ``attn_mask`` is True where a query may attend; a float
``attn_mask`` is added to the scores (and receives the scores' gradient); ``is_causal``
lets query i see keys j <= i (top-left aligned when L != S). A query that may see nothing
outputs zeros.

Grouped-query attention (``enable_gqa=True``): query (..., Hq, L, E) against key
(..., Hk, S, E) and value (..., Hv, S, Ev) with Hk and Hv dividing Hq; each key/value head
serves Hq/Hk consecutive query heads, i.e. key and value are ``repeat_interleave``d along
the head dim (-3) before the attention, as PyTorch (the repeat is an expand and a reshape,
whose gradient sums over each group).
"""
from __future__ import annotations

from numbers import Real

from ..autograd import Function, is_grad_enabled
from .. import backend
from ..backend import numpy as np
from ..kernels import attention as K
from ..random import keep_mask
from ..tensor import Tensor
from ._operands import check_tensor, check_broadcastable
from .activation import softmax
from .elementwise import where
from .linalg import matmul
from .reduction import sum as _sum
from .shape import expand, reshape, transpose, unsqueeze

__all__ = ["scaled_dot_product_attention"]


def _swap(x: Tensor) -> Tensor:
    return transpose(x, -1, -2)


class Attention(Function):
    """forward(q, k, v, bias) -> O, or (O, A) with ``return_weights`` (A = P ⊙ D)."""

    def forward(self, q, k, v, bias, *, scale, dropout_mask, return_weights):
        self.scale, self.dropout_mask = scale, dropout_mask
        out, p = K.attention_forward(q, k, v, bias, scale, dropout_mask)
        self.p = p
        self.dead = None
        if bias is not None:   # rows that may attend to nothing (their weights are all 0)
            dead = (p.sum(axis=-1, keepdims=True) == 0)
            self.dead = dead if dead.any() else None
        if return_weights:
            return out, (p if dropout_mask is None else p * dropout_mask)
        return out

    def backward(self, g_out, g_weights=None):
        q, k, v, bias = self.inputs
        if is_grad_enabled():
            return self._backward_ops(q, k, v, bias, g_out, g_weights)
        dq, dk, dv, ds = K.attention_backward(
            q.data, k.data, v.data, self.p, self.scale, g_out.data, self.dropout_mask,
            None if g_weights is None else g_weights.data)
        need = self.needs_input_grad
        return (Tensor(dq) if need[0] else None, Tensor(dk) if need[1] else None,
                Tensor(dv) if need[2] else None,
                Tensor(ds) if bias is not None and need[3] else None)

    def _backward_ops(self, q, k, v, bias, g_out, g_weights):
        """The kernel's lines as tinynet ops, P recomputed from Q and K (double backward)."""
        scores = matmul(q, _swap(k)) * self.scale
        if bias is not None:
            scores = scores + bias
        dead = None if self.dead is None else Tensor(self.dead)
        if dead is not None:
            scores = where(dead, 0.0, scores)
        p = softmax(scores, -1)
        if dead is not None:
            p = where(dead, 0.0, p)
        drop = None if self.dropout_mask is None else Tensor(self.dropout_mask)
        a = p if drop is None else p * drop
        dv = matmul(_swap(a), g_out)
        dp = matmul(g_out, _swap(v))
        if g_weights is not None:
            dp = dp + g_weights
        if drop is not None:
            dp = dp * drop
        ds = p * (dp - _sum(dp * p, -1, keepdim=True))
        dq = matmul(ds, k) * self.scale
        dk = matmul(_swap(ds), q) * self.scale
        return dq, dk, dv, (ds if bias is not None else None)


def _check_qkv(query, key, value, op):
    for name, t in (("query", query), ("key", key), ("value", value)):
        check_tensor(t, op, name, floating=True)
        if t.ndim < 2:
            raise ValueError(f"{op}: expected '{name}' to have at least 2 dims (..., length, "
                             f"features), got shape {tuple(t.shape)}")
    for name, t in (("key", key), ("value", value)):
        if t.device != query.device:
            raise ValueError(f"{op}: 'query' is on {query.device} but '{name}' is on {t.device}; "
                             "move them to one device first")
        if t.dtype != query.dtype:
            raise TypeError(f"{op}: 'query' has dtype {query.dtype} but '{name}' has dtype {t.dtype}")
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(f"{op}: 'key' has {key.shape[-1]} features but 'query' has "
                         f"{query.shape[-1]}; query (..., L, E) and key (..., S, E) must agree on E")
    if value.shape[-2] != key.shape[-2]:
        raise ValueError(f"{op}: 'value' has {value.shape[-2]} positions but 'key' has "
                         f"{key.shape[-2]}; key (..., S, E) and value (..., S, Ev) must agree on S")
    try:
        return tuple(np.broadcast_shapes(*(tuple(t.shape[:-2]) for t in (query, key, value))))
    except ValueError:
        raise ValueError(f"{op}: the batch dims of query {tuple(query.shape[:-2])}, key "
                         f"{tuple(key.shape[:-2])} and value {tuple(value.shape[:-2])} do not "
                         "broadcast") from None


def mask_to_bias(attn_mask, query: Tensor, scores_shape: tuple, op: str, allowed_when=True):
    """The additive bias for ``attn_mask``: a float mask as a Tensor of query's dtype (it
    stays differentiable), a boolean mask as 0 / -inf (``allowed_when`` is the boolean
    value that means "may attend": True for SDPA, False for MultiheadAttention's masks)."""
    if attn_mask is None:
        return None
    if not isinstance(attn_mask, Tensor):
        raise TypeError(f"{op}: attn_mask must be a Tensor or None, got {type(attn_mask).__name__}")
    check_broadcastable(attn_mask.shape, scores_shape, op)
    if tuple(np.broadcast_shapes(tuple(attn_mask.shape), scores_shape)) != tuple(scores_shape):
        raise ValueError(f"{op}: attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to "
                         f"the attention scores' shape {tuple(scores_shape)}")
    if attn_mask.device != query.device:
        raise ValueError(f"{op}: attn_mask is on {attn_mask.device} but 'query' is on {query.device}")
    if attn_mask.dtype.kind == "b":
        xp = query.xp
        allowed = attn_mask.data if allowed_when else ~attn_mask.data
        return Tensor(xp.where(allowed, query.dtype.type(0), query.dtype.type(-np.inf)))
    if attn_mask.dtype.kind != "f":
        raise TypeError(f"{op}: attn_mask must be a bool or floating-point tensor, got "
                        f"{attn_mask.dtype}")
    return attn_mask if attn_mask.dtype == query.dtype else attn_mask.to(query.dtype)


def causal_bias(L: int, S: int, like: Tensor) -> Tensor:
    """(L, S): 0 where key j <= query i, -inf above the diagonal (PyTorch's top-left rule)."""
    xp = like.xp
    upper = xp.triu(xp.ones((L, S), dtype=bool), k=1)
    return Tensor(xp.where(upper, like.dtype.type(-np.inf), like.dtype.type(0)))


def dropout_mask(shape: tuple, p: float, like: Tensor):
    """A Bernoulli(1 - p) keep mask scaled by 1/(1 - p), drawn from tinynet's generator on the
    host (a seed gives the same mask on every device), or None when p == 0."""
    if p == 0.0:
        return None
    if p == 1.0:
        return like.xp.zeros(shape, dtype=like.dtype)
    keep = keep_mask(shape, p)
    mask = keep.astype(like.dtype)
    mask *= 1.0 / (1.0 - p)
    return backend.to_device(mask, like.device)


def check_dropout_p(p, op: str) -> float:
    if isinstance(p, bool) or not isinstance(p, Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be a number in [0, 1], got {p!r}")
    return float(p)


def attention(query, key, value, bias, scale: float, dropout_p: float, return_weights: bool):
    """The op itself, for callers that validated already (``nn.MultiheadAttention``)."""
    batch = np.broadcast_shapes(tuple(query.shape[:-2]), tuple(key.shape[:-2]), tuple(value.shape[:-2]))
    drop = dropout_mask(tuple(batch) + (query.shape[-2], key.shape[-2]), dropout_p, query)
    return Attention.apply(query, key, value, bias, scale=scale, dropout_mask=drop,
                           return_weights=return_weights)


def repeat_heads(x: Tensor, repeats: int) -> Tensor:
    """(..., H, S, E) -> (..., H·repeats, S, E), head h copied to heads h·r .. h·r + r - 1
    (``repeat_interleave`` along dim -3); an expand and a reshape, so differentiable."""
    if repeats == 1:
        return x
    *lead, H, S, E = x.shape
    wide = expand(unsqueeze(x, -3), *lead, H, repeats, S, E)
    return reshape(wide, *lead, H * repeats, S, E)


def _group_query_heads(query, key, value, op):
    """enable_gqa: key and value repeated so that their head dim (-3) equals query's."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        check_tensor(t, op, name)
        if t.ndim < 3:
            raise ValueError(f"{op}: enable_gqa=True needs '{name}' with a head dim (..., heads, "
                             f"length, features), at least 3-D, got shape {tuple(t.shape)}")
    Hq = query.shape[-3]
    for name, t in (("key", key), ("value", value)):
        if Hq % t.shape[-3]:
            raise ValueError(f"{op}: enable_gqa=True needs the number of heads of '{name}' "
                             f"({t.shape[-3]}) to divide the number of heads of 'query' ({Hq})")
    return repeat_heads(key, Hq // key.shape[-3]), repeat_heads(value, Hq // value.shape[-3])


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(scale·Q Kᵀ + mask) V, PyTorch's ``scaled_dot_product_attention``.

    Parameters
    ----------
    query : (..., L, E);  key : (..., S, E);  value : (..., S, Ev); the batch dims (...)
        broadcast against each other, as in PyTorch.
    attn_mask : bool (True = may attend) or float (added to the scores), broadcastable
        to (..., L, S); None for no mask.
    dropout_p : dropout on the attention weights (applied whenever > 0, as in PyTorch:
        pass 0.0 in evaluation).
    is_causal : query i attends to keys j <= i; not combined with ``attn_mask``.
    scale : α, default 1/√E.
    enable_gqa : grouped-query attention: query (..., Hq, L, E), key (..., Hk, S, E) and
        value (..., Hv, S, Ev) with Hk and Hv dividing Hq; key and value heads are repeated
        (``repeat_interleave`` along dim -3) to Hq. Without it the head dims broadcast as
        any batch dim.

    Returns (..., L, Ev) with the broadcast batch dims.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> q = tn.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> v = tn.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    >>> F.scaled_dot_product_attention(q, q, v, is_causal=True).numpy()[0, 0].tolist()
    [1.0, 2.0]
    """
    op = "scaled_dot_product_attention"
    if enable_gqa:
        key, value = _group_query_heads(query, key, value, op)
    batch = _check_qkv(query, key, value, op)
    L, S, E = query.shape[-2], key.shape[-2], query.shape[-1]
    scores_shape = batch + (L, S)
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: give either attn_mask or is_causal=True, not both")
    if scale is None:
        scale = 1.0 / float(np.sqrt(E)) if E else 1.0
    elif isinstance(scale, bool) or not isinstance(scale, Real):
        raise TypeError(f"{op}: scale must be a number or None, got {type(scale).__name__}")
    p = check_dropout_p(dropout_p, op)
    bias = causal_bias(L, S, query) if is_causal else mask_to_bias(attn_mask, query, scores_shape, op)
    return attention(query, key, value, bias, float(scale), p, return_weights=False)
