"""Multi-head attention, PyTorch's ``nn.MultiheadAttention`` (same parameter names, shapes,
masks and outputs, so a PyTorch ``state_dict`` loads as is).

With E = embed_dim, H = num_heads, Dh = E / H, inputs (L, N, E) (or (N, L, E) with
``batch_first``, or unbatched (L, E)) and keys/values of length S::

    Q = query Wqᵀ + bq,  K = key Wkᵀ + bk,  V = value Wvᵀ + bv      [Wq; Wk; Wv] = in_proj_weight (3E, E)
    split each into H heads of Dh features:                        (N, H, L, Dh), (N, H, S, Dh)
    headₕ = softmax(Qₕ Kₕᵀ / √Dh + mask) Vₕ                         F.scaled_dot_product_attention's op
    out = concat(head₁ … head_H) Woᵀ + bo                           out_proj (Linear E -> E)

Masks (PyTorch's MultiheadAttention convention, the opposite of SDPA's for booleans):
``attn_mask`` (L, S), (1, L, S) or (N·H, L, S) and ``key_padding_mask`` (N, S) are True where
attention is *not* allowed, or floats added to the scores; both are summed into one bias.
The returned weights are the softmax after dropout, averaged over heads unless
``average_attn_weights=False``.
"""
from __future__ import annotations

import math

from .. import functional as F
from ..creation import empty
from ..functional.attention import attention, mask_to_bias
from ..tensor import Tensor
from . import init
from ._validate import positive_int
from .linear import Linear
from .module import Module, Parameter

__all__ = ["MultiheadAttention"]

_OP = "MultiheadAttention"


class NonDynamicallyQuantizableLinear(Linear):
    """A ``Linear`` under PyTorch's name for ``MultiheadAttention.out_proj`` (PyTorch's
    name only keeps its quantizer away), so the two print the same repr."""


class MultiheadAttention(Module):
    """Multi-head attention with PyTorch's parameters: ``in_proj_weight`` (3E, E) and
    ``in_proj_bias`` (3E,) (or ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim),
    ``v_proj_weight`` (E, vdim) when ``kdim``/``vdim`` differ from E), ``out_proj.weight``
    (E, E), ``out_proj.bias`` (E,). Initialised as PyTorch: Xavier-uniform projections,
    zero biases.

    Example
    -------
    >>> import tinynet as tn
    >>> mha = tn.nn.MultiheadAttention(8, 2, batch_first=True)
    >>> x = tn.randn(3, 5, 8)
    >>> out, weights = mha(x, x, x)
    >>> out.shape, weights.shape
    ((3, 5, 8), (3, 5, 5))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None):
        super().__init__()
        self.embed_dim = positive_int(embed_dim, "embed_dim", _OP)
        self.num_heads = positive_int(num_heads, "num_heads", _OP)
        if embed_dim % num_heads:
            raise ValueError(f"{_OP}: embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"{_OP}: dropout must be a number in [0, 1], got {dropout!r}")
        if add_bias_kv or add_zero_attn:
            raise ValueError(f"{_OP}: add_bias_kv and add_zero_attn are not supported by tinynet")
        self.kdim = embed_dim if kdim is None else positive_int(kdim, "kdim", _OP)
        self.vdim = embed_dim if vdim is None else positive_int(vdim, "vdim", _OP)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        self.head_dim = embed_dim // num_heads
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * E, E, device=device, dtype=dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(empty(E, E, device=device, dtype=dtype))
            self.k_proj_weight = Parameter(empty(E, self.kdim, device=device, dtype=dtype))
            self.v_proj_weight = Parameter(empty(E, self.vdim, device=device, dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * E, device=device, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(E, E, bias=bias, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _projection(self, i: int):
        """(weight, bias) of projection i (0: query, 1: key, 2: value), as views that pass
        their gradients back into the stacked parameters."""
        E = self.embed_dim
        rows = slice(i * E, (i + 1) * E)
        if self._qkv_same_embed_dim:
            w = F.getitem(self.in_proj_weight, rows)
        else:
            w = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i]
        b = None if self.in_proj_bias is None else F.getitem(self.in_proj_bias, rows)
        return w, b

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False):
        """Returns ``(output, weights)``: output shaped like ``query`` (last dim E); weights
        (N, L, S), or (N, H, L, S) without averaging, or None unless ``need_weights``."""
        q_in, k_in, v_in = self._inputs(query, key, value)
        batched = query.ndim == 3
        N, L, S = q_in.shape[0], q_in.shape[1], k_in.shape[1]
        H, Dh = self.num_heads, self.head_dim
        if is_causal and attn_mask is None:
            raise ValueError(f"{_OP}: is_causal=True is a hint that attn_mask is the causal "
                             "mask; pass the mask as attn_mask too (as PyTorch requires)")
        bias = self._bias(attn_mask, key_padding_mask, query, N, L, S, batched)
        q, k, v = (F.linear(x, *self._projection(i)) for i, x in enumerate((q_in, k_in, v_in)))
        q = F.permute(F.reshape(q, N, L, H, Dh), 0, 2, 1, 3)        # (N, H, L, Dh)
        k = F.permute(F.reshape(k, N, S, H, Dh), 0, 2, 1, 3)        # (N, H, S, Dh)
        v = F.permute(F.reshape(v, N, S, H, Dh), 0, 2, 1, 3)
        p = self.dropout if self.training else 0.0
        result = attention(q, k, v, bias, 1.0 / math.sqrt(Dh), p, return_weights=bool(need_weights))
        heads, weights = result if need_weights else (result, None)
        out = F.reshape(F.permute(heads, 0, 2, 1, 3), N, L, self.embed_dim)
        out = self.out_proj(out)
        if weights is not None and average_attn_weights:
            weights = F.mean(weights, 1)
        if not batched:
            out = F.squeeze(out, 0)
            weights = None if weights is None else F.squeeze(weights, 0)
        elif not self.batch_first:
            out = F.transpose(out, 0, 1)
        return out, weights

    def _inputs(self, query, key, value):
        """(N, L, E), (N, S, kdim), (N, S, vdim) views of the inputs, after the checks."""
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{_OP}: expected '{name}' to be a Tensor, got {type(t).__name__}")
            if t.ndim not in (2, 3) or t.ndim != query.ndim:
                raise ValueError(f"{_OP}: expected query, key and value to be all 3-D (batched) or "
                                 f"all 2-D (unbatched); got '{name}' of shape {tuple(t.shape)} "
                                 f"with query of shape {tuple(query.shape)}")
        for name, t, dim in (("query", query, self.embed_dim), ("key", key, self.kdim),
                             ("value", value, self.vdim)):
            if t.shape[-1] != dim:
                raise ValueError(f"{_OP}: expected '{name}' to have {dim} features in its last dim, "
                                 f"got shape {tuple(t.shape)}")
        if query.ndim == 2:
            tensors = [F.unsqueeze(t, 0) for t in (query, key, value)]
        elif self.batch_first:
            tensors = [query, key, value]
        else:
            tensors = [F.transpose(t, 0, 1) for t in (query, key, value)]
        q, k, v = tensors
        if k.shape[:2] != v.shape[:2] or k.shape[0] != q.shape[0]:
            raise ValueError(f"{_OP}: key {tuple(key.shape)} and value {tuple(value.shape)} must "
                             f"have the same length and batch size as each other and the batch "
                             f"size of query {tuple(query.shape)}")
        return q, k, v

    def _bias(self, attn_mask, key_padding_mask, query, N, L, S, batched):
        """attn_mask and key_padding_mask as one additive bias, broadcastable to (N, H, L, S)."""
        H = self.num_heads
        bias = None
        if attn_mask is not None:
            if not isinstance(attn_mask, Tensor):
                raise TypeError(f"{_OP}: attn_mask must be a Tensor or None, got "
                                f"{type(attn_mask).__name__}")
            shapes = [(L, S), (1, L, S), (N * H, L, S)]
            if tuple(attn_mask.shape) not in shapes:
                raise ValueError(f"{_OP}: attn_mask must have shape (L, S) = {(L, S)} or "
                                 f"(N·num_heads, L, S) = {(N * H, L, S)}, got {tuple(attn_mask.shape)}")
            if attn_mask.ndim == 3:
                attn_mask = F.reshape(attn_mask, -1, H if attn_mask.shape[0] > 1 else 1, L, S)
            bias = mask_to_bias(attn_mask, query, (N, H, L, S), _OP, allowed_when=False)
        if key_padding_mask is not None:
            if not isinstance(key_padding_mask, Tensor):
                raise TypeError(f"{_OP}: key_padding_mask must be a Tensor or None, got "
                                f"{type(key_padding_mask).__name__}")
            want = (N, S) if batched else (S,)
            if tuple(key_padding_mask.shape) != want:
                raise ValueError(f"{_OP}: key_padding_mask must have shape {want} (batch, source "
                                 f"length), got {tuple(key_padding_mask.shape)}")
            kpm = F.reshape(key_padding_mask, N, 1, 1, S)
            kpm = mask_to_bias(kpm, query, (N, H, L, S), _OP, allowed_when=False)
            bias = kpm if bias is None else bias + kpm
        return bias
