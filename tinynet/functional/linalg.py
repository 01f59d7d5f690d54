"""Matrix products.

matmul (NumPy semantics, batched and broadcasting):  C = A @ B
    dA = dC @ Bᵀ,  dB = Aᵀ @ dC   (batch dims that were broadcast are summed by the engine)
linear:  y = x @ Wᵀ + b,  x (..., in), W (out, in), b (out,)
    dx = dy @ W,  dW = dyᵀ @ x (over all leading dims),  db = Σ dy
"""
from __future__ import annotations

from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor
from ._operands import check_tensor, check_same_device, binary_operands
from .activation import relu_array, relu_gradient
from .shape import Permute, reshape, transpose, unsqueeze, squeeze
from .reduction import sum as _sum

__all__ = ["matmul", "linear"]


class MatMul(Function):
    """Both operands have at least 2 dims here; 1-D cases are reshaped by ``matmul``."""
    outputs_unread = True

    def forward(self, a, b):
        return a @ b

    def backward(self, g):
        # Straight to the nodes (shapes are valid by construction): this runs once per
        # matmul in every backward, so it skips the public functions' argument checks.
        a, b = self.inputs
        ga = MatMul.apply(g, _swap_last(b)) if self.needs_input_grad[0] else None
        gb = MatMul.apply(_swap_last(a), g) if self.needs_input_grad[1] else None
        return ga, gb


def _swap_last(x: Tensor) -> Tensor:
    """``x`` with its last two dims swapped (x has at least 2 dims)."""
    dims = list(range(x.ndim))
    dims[-2], dims[-1] = dims[-1], dims[-2]
    return Permute.apply(x, dims=tuple(dims))


class Linear(Function):
    """``x @ wᵀ + b``; with ``relu``, ReLU of it in the same node, in place on the product
    (``nn.Sequential`` runs a ``Linear`` followed by a ``ReLU`` this way:
    :func:`linear_relu`); the backward then reads the output y for ReLU's mask [y > 0],
    as ReLU's own node does."""
    outputs_unread = True

    def forward(self, x, w, b=None, *, relu=False):
        y = x @ w.T
        if b is not None:
            y += b
        if relu:            # ReLU's forward in place on the product
            relu_array(y, out=y)
        self.relu, self.y = relu, (y if relu else None)
        return y

    def backward(self, g):
        x, w, b = self.inputs
        if self.y is not None:      # ReLU's backward first, as its node computes it
            g = relu_gradient(g, self.y, x, w)
        if not is_grad_enabled():
            return self._backward_arrays(g.data, x.data, w.data, b is not None)
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = g @ w
        if self.needs_input_grad[1]:
            g2 = reshape(g, -1, g.shape[-1])
            gw = transpose(g2, 0, 1) @ reshape(x, -1, x.shape[-1])
        if b is not None and self.needs_input_grad[2]:
            gb = _sum(g, tuple(range(g.ndim - 1)))
        return gx, gw, gb


    def _backward_arrays(self, g, x, w, has_bias):
        """The same three products on raw arrays: a plain backward (no graph to build) then
        costs three array calls instead of about eight ops (matmul, transpose, reshape, sum)."""
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = Tensor(g @ w)
        if self.needs_input_grad[1]:
            gw = Tensor(g.reshape(-1, g.shape[-1]).T @ x.reshape(-1, x.shape[-1]))
        if has_bias and self.needs_input_grad[2]:
            gb = Tensor(g.reshape(-1, g.shape[-1]).sum(axis=0))
        return gx, gw, gb


def matmul(input, other) -> Tensor:
    """Matrix product with NumPy's rules for 1-D operands and broadcast batch dims."""
    a, b = binary_operands(input, other, "matmul", broadcast=False)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: both arguments need at least 1 dimension, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                         f"multiplied ({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})")
    if a.ndim > 2 and b.ndim > 2:
        for m, n in zip(reversed(a.shape[:-2]), reversed(b.shape[:-2])):
            if m != n and m != 1 and n != 1:
                raise ValueError(f"matmul: batch dimensions of {tuple(a.shape)} and "
                                 f"{tuple(b.shape)} do not broadcast")
    if a.ndim >= 2 and b.ndim >= 2:
        return MatMul.apply(a, b)
    a2 = unsqueeze(a, 0) if a.ndim == 1 else a
    b2 = unsqueeze(b, -1) if b.ndim == 1 else b
    out = MatMul.apply(a2, b2)
    if b.ndim == 1:
        out = squeeze(out, -1)
    if a.ndim == 1:
        out = squeeze(out, -2 if b.ndim > 1 else -1)
    return out


def linear(input, weight, bias=None) -> Tensor:
    """``input @ weight.T + bias``; input (..., in_features), weight (out, in)."""
    return Linear.apply(*_linear_operands(input, weight, bias))


def linear_relu(input, weight, bias=None) -> Tensor:
    """``relu(linear(input, weight, bias))`` as one op: ReLU runs in place on the product
    in the same node, and its mask before the backward's products (the same values and
    gradients as the two ops, bit for bit). What ``nn.Sequential`` runs for a ``Linear``
    followed by a ``ReLU`` (``tinynet/nn/containers.py``); not part of the PyTorch API,
    so not exported by ``tinynet.functional``.

    >>> import tinynet as tn
    >>> from tinynet.functional.linalg import linear_relu
    >>> linear_relu(tn.tensor([[1.0, -2.0]]), tn.tensor([[2.0, 0.0], [0.0, 1.0]])).numpy().tolist()
    [[2.0, 0.0]]
    """
    return Linear.apply(*_linear_operands(input, weight, bias), relu=True)


def _linear_operands(input, weight, bias):
    """``linear``'s checks; returns the operands."""
    check_tensor(input, "linear", "input", floating=True)
    check_tensor(weight, "linear", "weight", ndim=2, floating=True)
    if bias is not None:
        check_tensor(bias, "linear", "bias", ndim=1, floating=True)
    check_same_device("linear", input=input, weight=weight, bias=bias)
    if input.ndim == 0:
        raise ValueError("linear: input must have at least 1 dimension")
    if input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {input.shape[-1]} features (last dim of shape "
                         f"{tuple(input.shape)}) but weight expects {weight.shape[1]} "
                         f"(weight shape {tuple(weight.shape)})")
    if bias is not None and bias.shape[0] != weight.shape[0]:
        raise ValueError(f"linear: bias has {bias.shape[0]} elements but weight has "
                         f"{weight.shape[0]} output features")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"linear: input is {input.dtype} but {name} is {t.dtype}")
    return input, weight, bias
