"""Embedding lookup: rows of a weight table picked by integer indices.

    out[i₁, …, iₖ, :] = weight[input[i₁, …, iₖ], :]          input (*), weight (V, D) -> (*, D)

The backward is the adjoint of the gather, a scatter-add of the output gradient into a
(V, D) table of zeros (an index that appears twice receives both gradients):

    dweight[v, :] = Σ_{positions p with input[p] = v} dout[p, :]

with the row ``padding_idx`` (when given) left at zero, so a padding token never learns.
Both directions are ``getitem`` and its adjoint ``IndexAdd``, so every derivative order
follows from theirs.

Two PyTorch options change this:

- ``max_norm``: before the lookup, every row ``v`` that ``input`` refers to and whose
  ``norm_type``-norm exceeds ``max_norm`` is rescaled IN PLACE in ``weight`` (PyTorch's
  ``embedding_renorm_``, outside autograd: no gradient flows through the rescaling)::

      weight[v, :] *= max_norm / (‖weight[v, :]‖_p + 1e-7)      if ‖weight[v, :]‖_p > max_norm

- ``scale_grad_by_freq``: the gradient of row ``v`` is divided by ``count(v)``, the number
  of times ``v`` occurs in ``input`` (a per-position factor ``1 / count(input[p])`` on the
  output gradient, so the backward stays a scatter-add and stays differentiable). Its
  second derivative (with respect to the output gradient) keeps the ``1 / count`` factor;
  PyTorch's double backward drops it, so second-order results differ from PyTorch's there.

``sparse=True`` (a sparse weight gradient) is not supported: tinynet has no sparse tensors.
"""
from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from ._operands import check_tensor
from .elementwise import where
from .shape import getitem

__all__ = ["embedding"]


class ScaleGradient(Function):
    """Identity forward; the backward multiplies the gradient by a constant array ``scale``
    (broadcast against it), so ``d(out)/d(x) = scale`` as far as autograd knows."""

    def forward(self, x, *, scale):
        self.scale = scale
        return x     # the fresh result of a gather, read by nothing else

    def backward(self, g):
        return g * Tensor(self.scale)


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Looks up ``weight[input]``: integer indices of any shape (*) -> (*, D).

    Parameters
    ----------
    input : integer Tensor of indices in ``[0, V)``.
    weight : floating Tensor (V, D).
    padding_idx : a row in ``[-V, V)`` whose gradient stays zero (PyTorch's meaning: the
        lookup still returns the row's current value).
    max_norm : when given, rows referenced by ``input`` whose ``norm_type``-norm exceeds it
        are rescaled in place in ``weight`` to norm ``max_norm`` (up to the 1e-7 PyTorch adds
        to the norm) before the lookup; the rescaling records no gradient.
    norm_type : the p of the p-norm for ``max_norm`` (``inf`` allowed).
    scale_grad_by_freq : divide each row's gradient by its number of occurrences in ``input``.
    sparse : must be False; tinynet has no sparse gradients (a ValueError otherwise).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> w = tn.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    >>> F.embedding(tn.tensor([[2, 0]]), w).numpy().tolist()
    [[[4.0, 5.0], [0.0, 1.0]]]
    """
    return lookup(input, weight, padding_idx, "embedding", max_norm, norm_type,
                  scale_grad_by_freq, sparse)


def check_options(op: str, max_norm, norm_type, sparse) -> None:
    """The argument checks ``nn.Embedding`` also runs at construction."""
    if max_norm is not None and (isinstance(max_norm, bool) or not isinstance(max_norm, (int, float))):
        raise TypeError(f"{op}: max_norm must be a number or None, got {type(max_norm).__name__}")
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)):
        raise TypeError(f"{op}: norm_type must be a number, got {type(norm_type).__name__}")
    if sparse:
        raise ValueError(f"{op}: sparse=True is not supported (tinynet has no sparse tensors; "
                         f"use sparse=False for a dense weight gradient)")


def renorm_rows_(weight, idx, max_norm: float, norm_type: float) -> None:
    """PyTorch's ``embedding_renorm_`` on arrays: the rows of ``weight`` (V, D) named in
    ``idx`` whose p-norm exceeds ``max_norm`` are multiplied, in place, by
    ``max_norm / (norm + 1e-7)``."""
    xp = get_array_module(weight)
    rows = xp.unique(idx.reshape(-1))
    norms = xp.linalg.norm(weight[rows], ord=float(norm_type), axis=1).astype(xp.float64)
    over = norms > max_norm
    rows, norms = rows[over], norms[over]
    weight[rows] *= (max_norm / (norms + 1e-7)).astype(weight.dtype)[:, None]


def lookup(input: Tensor, weight: Tensor, padding_idx: int | None, op: str,
           max_norm: float | None = None, norm_type: float = 2.0,
           scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
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
    check_options(op, max_norm, norm_type, sparse)
    if max_norm is not None and idx.size:
        renorm_rows_(weight.data, idx, float(max_norm), norm_type)
    out = getitem(weight, idx)
    if padding_idx is not None:
        is_pad = Tensor((idx == padding_idx)[..., None])
        out = where(is_pad, Tensor(out.data), out)   # padding positions pass no gradient
    if scale_grad_by_freq and idx.size:
        xp = weight.xp
        counts = xp.bincount(idx.reshape(-1), minlength=V)
        out = ScaleGradient.apply(out, scale=(1.0 / counts[idx]).astype(weight.dtype)[..., None])
    return out
