"""Embedding lookup: rows of a weight table picked by integer indices.

    out[i₁, …, iₖ, :] = weight[input[i₁, …, iₖ], :]          input (*), weight (V, D) -> (*, D)

The backward is the adjoint of the gather, a scatter-add of the output gradient into a
(V, D) table of zeros (an index that appears twice receives both gradients):

    dweight[v, :] = Σ_{positions p with input[p] = v} dout[p, :]

with the row ``padding_idx`` (when given) left at zero, so a padding token never learns.
Both directions are ``getitem`` and its adjoint ``IndexAdd``, so every derivative order
follows from theirs.
"""
from __future__ import annotations

from ..tensor import Tensor
from ._operands import check_tensor
from .elementwise import where
from .shape import getitem

__all__ = ["embedding"]


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Looks up ``weight[input]``: integer indices of any shape (*) -> (*, D).

    Parameters
    ----------
    input : integer Tensor of indices in ``[0, V)``.
    weight : floating Tensor (V, D).
    padding_idx : a row in ``[-V, V)`` whose gradient stays zero (PyTorch's meaning: the
        lookup still returns the row's current value).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> w = tn.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    >>> F.embedding(tn.tensor([[2, 0]]), w).numpy().tolist()
    [[[4.0, 5.0], [0.0, 1.0]]]
    """
    return lookup(input, weight, padding_idx, "embedding")


def lookup(input: Tensor, weight: Tensor, padding_idx: int | None, op: str) -> Tensor:
    """``embedding`` with errors naming ``op`` (``nn.Embedding`` passes its own name)."""
    if not isinstance(input, Tensor) or input.dtype.kind not in "iu":
        got = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise TypeError(f"{op}: expected an integer tensor of indices as 'input', got {got}")
    check_tensor(weight, op, "weight", ndim=2, floating=True)
    if input.device != weight.device:
        raise ValueError(f"{op}: 'input' is on {input.device} but 'weight' is on {weight.device}; "
                         "move them to one device first")
    V = weight.shape[0]
    idx = input.data
    if idx.size:
        low, high = int(idx.min()), int(idx.max())
        if low < 0 or high >= V:
            bad = low if low < 0 else high
            raise ValueError(f"{op}: index {bad} is out of range for a weight of {V} rows "
                             f"(expected indices in [0, {V - 1}])")
    if padding_idx is not None:
        if isinstance(padding_idx, bool) or not isinstance(padding_idx, int):
            raise TypeError(f"{op}: padding_idx must be an int or None, got "
                            f"{type(padding_idx).__name__}")
        if not -V <= padding_idx < V:
            raise ValueError(f"{op}: padding_idx must be in [{-V}, {V - 1}] for a weight of {V} "
                             f"rows, got {padding_idx}")
        padding_idx %= V
    out = getitem(weight, idx)
    if padding_idx is not None:
        is_pad = Tensor((idx == padding_idx)[..., None])
        out = where(is_pad, Tensor(out.data), out)   # padding positions pass no gradient
    return out
