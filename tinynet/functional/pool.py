"""Max, average, adaptive average and adaptive max pooling, PyTorch semantics,
differentiable to any order.

The array work is in :mod:`tinynet.kernels.pool`. The gradient ops form closed pairs:

    max_pool2d(x):              dx = scatter(dy, argmax)        (MaxPool2dBackward)
    scatter(dy, argmax):    d(dy) = gather(g, argmax)           (MaxPool2dGather)
    gather(v, argmax):         dv = scatter(g, argmax)
    avg_pool2d(x) = A x:        dx = Aᵀ dy                      (AvgPool2dBackward)
    Aᵀ dy:                  d(dy) = A g
    adaptive_max_pool2d(x):     dx = scatter(dy, index)         (AdaptiveMaxPool2dBackward)
    scatter(dy, index):     d(dy) = gather(g, index)            (AdaptiveMaxPool2dGather)

``argmax`` (the window offset of each maximum) and ``index`` (the flat ``h·W + w`` of
each adaptive maximum) are constants of the graph: second derivatives of max pooling
flow through the same positions as the first.
"""
from __future__ import annotations

from .. import backend
from ..autograd import Function, depends_on, anchor, is_grad_enabled
from ..kernels import im2col as K
from ..kernels import pool as P
from ..tensor import Tensor
from ._operands import check_tensor
from .activation import relu_gradient
from .linalg import matmul as _matmul
from .reduction import mean as _mean
from .shape import squeeze as _squeeze, unsqueeze as _unsqueeze

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]


# --------------------------------------------------------------------------- Functions
class MaxPool2d(Function):
    """Max pooling; with ``relu``, ReLU of the pool's output in the same node (and, on the
    compiled 2x2 route, the same passes): ``nn.Sequential`` runs a ``ReLU`` next to a
    ``MaxPool2d`` this way (:func:`max_pool2d_relu`). The backward then reads the output
    y for ReLU's mask [y > 0], as ReLU's own node does."""
    unread_inputs = (0,)      # backward reads the argmax kept (and y, kept, with relu)
    outputs_unread = True

    def forward(self, x, *, geometry, return_indices, relu=False):
        self.geometry, self.input_size = geometry, x.shape[2:]
        y, self.argmax = P.max_pool2d_forward(x, *geometry, relu=relu)
        self.relu, self.y = relu, (y if relu else None)
        if return_indices:
            return y, P.flat_indices(self.argmax, self.input_size, *geometry[:4])
        return y

    def backward(self, gy, *unused_index_grad):
        if not is_grad_enabled():       # a plain backward: the scatter on the arrays, no node
            return Tensor(P.max_pool2d_backward(gy.data, self.argmax, self.input_size, *self.geometry,
                                                relu_output=self.y))
        if self.y is not None:          # ReLU's backward first, as its node builds it
            gy = relu_gradient(gy, self.y, self.inputs[0])
        return depends_on(MaxPool2dBackward.apply(gy, Tensor(self.argmax), input_size=self.input_size,
                                                  geometry=self.geometry), self.inputs[0])


class MaxPool2dBackward(Function):
    """Scatter: ``dy`` written to each window's argmax (summed where windows overlap)."""

    def forward(self, gy, argmax, *, input_size, geometry):
        self.geometry = geometry
        return P.max_pool2d_backward(gy, argmax, input_size, *geometry)

    def backward(self, g):
        return MaxPool2dGather.apply(g, self.inputs[1], geometry=self.geometry), None


class MaxPool2dGather(Function):
    """Gather: values read at each window's argmax; the adjoint of the scatter."""

    def forward(self, values, argmax, *, geometry):
        self.geometry, self.input_size = geometry, values.shape[2:]
        return P.max_pool2d_gather(values, argmax, *geometry)

    def backward(self, g):
        return MaxPool2dBackward.apply(g, self.inputs[1], input_size=self.input_size,
                                       geometry=self.geometry), None


class AvgPool2d(Function):
    unread_inputs = (0,)
    outputs_unread = True

    def forward(self, x, *, geometry):
        self.geometry, self.input_size = geometry, x.shape[2:]
        return P.avg_pool2d_forward(x, *geometry)

    def backward(self, gy):
        return depends_on(AvgPool2dBackward.apply(gy, input_size=self.input_size, geometry=self.geometry),
                          self.inputs[0])


class AvgPool2dBackward(Function):
    def forward(self, gy, *, input_size, geometry):
        self.geometry = geometry
        return P.avg_pool2d_backward(gy, input_size, *geometry)

    def backward(self, g):
        return AvgPool2d.apply(g, geometry=self.geometry)


class AdaptiveMaxPool2d(Function):
    def forward(self, x, *, output_size, return_indices):
        self.input_size = x.shape[2:]
        if 0 in output_size:        # an empty output has no bins to search
            xp = backend.get_array_module(x)
            y = xp.empty(x.shape[:2] + output_size, dtype=x.dtype)
            self.indices = xp.zeros(y.shape, dtype=xp.int64)
        else:
            y, self.indices = P.adaptive_max_pool2d_forward(x, output_size)
        return (y, self.indices) if return_indices else y

    def backward(self, gy, *unused_index_grad):
        return depends_on(AdaptiveMaxPool2dBackward.apply(gy, Tensor(self.indices),
                                                          input_size=self.input_size),
                          self.inputs[0])


class AdaptiveMaxPool2dBackward(Function):
    """Scatter-add: ``dy`` written to each bin's maximum (summed where bins share one)."""

    def forward(self, gy, indices, *, input_size):
        return P.adaptive_max_pool2d_backward(gy, indices, input_size)

    def backward(self, g):
        return AdaptiveMaxPool2dGather.apply(g, self.inputs[1]), None


class AdaptiveMaxPool2dGather(Function):
    """Gather: values read at each bin's maximum; the adjoint of the scatter."""

    def forward(self, values, indices):
        self.input_size = values.shape[2:]
        return P.adaptive_max_pool2d_gather(values, indices)

    def backward(self, g):
        return AdaptiveMaxPool2dBackward.apply(g, self.inputs[1], input_size=self.input_size), None


# --------------------------------------------------------------------------- checks
def _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Validates and normalises; returns (batched 4-D input, was_3d, geometry tuple)."""
    check_tensor(x, op, "input", ndim=(3, 4), floating=True)
    k = K.pair(kernel_size, "kernel_size", op)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else K.pair(stride, "stride", op)
    p, d = K.pair(padding, "padding", op), K.pair(dilation, "dilation", op)
    for name, value in (("kernel_size", k), ("stride", s), ("dilation", d)):
        if min(value) <= 0:
            raise ValueError(f"{op}: {name} must be positive, got {value}")
    if min(p) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {p}")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding {p} must be at most half of kernel_size {k}")
    was_3d = x.ndim == 3
    H, W = x.shape[-2:]
    for a, size in enumerate((H, W)):
        # with ceil_mode a window may hang past the padded input, as in PyTorch: only a
        # window that would start past it (no output) is an error
        if not ceil_mode and size + 2 * p[a] < d[a] * (k[a] - 1) + 1:
            raise ValueError(f"{op}: kernel_size {k} (dilation {d}) is larger than the padded "
                             f"input {H + 2 * p[0]}x{W + 2 * p[1]}")
        if K.pool_output_size(size, k[a], s[a], p[a], d[a], ceil_mode) <= 0:
            raise ValueError(f"{op}: output size is not positive for input {(H, W)}")
    return (_unsqueeze(x, 0) if was_3d else x), was_3d, (k, s, p, d, bool(ceil_mode))


# --------------------------------------------------------------------------- public ops
def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max over each (dilated) window, ``-inf`` padding; PyTorch's ``max_pool2d``.

    ``Ho = floor_or_ceil((H + 2p - d(k-1) - 1) / s) + 1`` (see ``pool_output_size``).
    With ``return_indices`` also returns int64 indices ``h·W + w`` into each input plane.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> x = tn.tensor([[[[1., 2.], [4., 3.]]]])
    >>> y, i = F.max_pool2d(x, 2, return_indices=True)
    >>> y.item(), i.item()
    (4.0, 2)
    """
    x, was_3d, geometry = _pool_args("max_pool2d", input, kernel_size, stride, padding,
                                     dilation, ceil_mode)
    out = MaxPool2d.apply(x, geometry=geometry, return_indices=bool(return_indices))
    if was_3d:
        out = tuple(_squeeze(t, 0) for t in out) if return_indices else _squeeze(out, 0)
    return out


def max_pool2d_relu(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                    ceil_mode: bool = False) -> Tensor:
    """``relu(max_pool2d(input, ...))`` as one op: the pool's output goes through ReLU in
    the same node, on the compiled 2x2 route in the same pass, forward and backward (the
    same values and gradients as the two ops, bit for bit). What ``nn.Sequential`` runs
    for a ``ReLU`` and a ``MaxPool2d`` next to each other (``tinynet/nn/containers.py``);
    not part of the PyTorch API, so not exported by ``tinynet.functional``.

    Example
    -------
    >>> import tinynet as tn
    >>> from tinynet.functional.pool import max_pool2d_relu
    >>> max_pool2d_relu(tn.tensor([[[[-1., -2.], [-4., -3.]]]]), 2).item()
    0.0
    """
    x, was_3d, geometry = _pool_args("max_pool2d", input, kernel_size, stride, padding,
                                     dilation, ceil_mode)
    out = MaxPool2d.apply(x, geometry=geometry, return_indices=False, relu=True)
    return _squeeze(out, 0) if was_3d else out


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over each window with zero padding; PyTorch's ``avg_pool2d``.

    The divisor is the window's size clipped to the padded input (``count_include_pad``)
    or to the real input (``count_include_pad=False``); ``ceil_mode`` windows that hang
    past the padding are clipped in both cases. ``divisor_override`` (a non-zero int)
    replaces the divisor: the output is the window sum divided by it.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.avg_pool2d(tn.tensor([[[[1., 2.], [4., 3.]]]]), 2).item()
    2.5
    """
    x, was_3d, (k, s, p, _, ceil_mode) = _pool_args("avg_pool2d", input, kernel_size, stride,
                                                    padding, 1, ceil_mode)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, int) \
                or divisor_override == 0:
            raise ValueError(f"avg_pool2d: divisor_override must be a non-zero int, got "
                             f"{divisor_override!r}")
        count_include_pad = True
    out = AvgPool2d.apply(x, geometry=(k, s, p, ceil_mode, bool(count_include_pad)))
    if divisor_override is not None:
        # window sum / divisor = mean · (window size clipped to the padded input) / divisor
        sizes = P.avg_pool2d_divisor(x.shape[2:], k, s, p, ceil_mode, count_include_pad=True,
                                     dtype=x.dtype, xp=x.xp)
        out = out * Tensor(sizes / divisor_override)
    return _squeeze(out, 0) if was_3d else out


def _adaptive_output_size(op, input, output_size):
    """Checks ``input`` (3-D or 4-D, floating, non-empty planes) and returns (Ho, Wo), a
    ``None`` in ``output_size`` standing for that input size. A size may be 0 (an empty
    output, as PyTorch's forward gives; its input gradient is zeros, where PyTorch's
    backward refuses an empty ``grad_output``)."""
    check_tensor(input, op, "input", ndim=(3, 4), floating=True)
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
        sizes = list(output_size)
    else:
        sizes = [output_size, output_size]
    H, W = input.shape[-2:]
    sizes = [(H, W)[a] if sizes[a] is None else sizes[a] for a in range(2)]
    for v in sizes:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{op}: output_size must be non-negative ints (or None), got "
                             f"{output_size!r}")
    if min(H, W) <= 0:
        raise ValueError(f"{op}: input has an empty spatial size {(H, W)}")
    return tuple(sizes)


def _adaptive_bins(size, out, xp, dtype):
    """(out, size) averaging matrix of PyTorch's bins [floor(i·size/out), ceil((i+1)·size/out))."""
    start, end = P.adaptive_bins(size, out, xp)
    pos = xp.arange(size)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size (bins as PyTorch: start = floor(i·H/Ho),
    end = ceil((i+1)·H/Ho)); ``None`` in ``output_size`` keeps that input size, a 0 gives
    an empty output (zero input gradient).

    Divisible sizes (including ResNet's 1x1 head) use a plain mean/average pool;
    other sizes are two small matrix products ``Ph @ x @ Pwᵀ``.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.adaptive_avg_pool2d(tn.ones(2, 3, 7, 7), 1).shape
    (2, 3, 1, 1)
    """
    Ho, Wo = _adaptive_output_size("adaptive_avg_pool2d", input, output_size)
    H, W = input.shape[-2:]
    if (Ho, Wo) == (1, 1):
        return _mean(input, (-2, -1), keepdim=True)
    # Beyond a global mean, PyTorch's backward reads the input: its gradient requires grad
    # after backward(create_graph=True), and a second backward gives zeros.
    input = anchor(input)
    if Ho and Wo and H % Ho == 0 and W % Wo == 0:
        return avg_pool2d(input, (H // Ho, W // Wo))
    xp, dtype = input.xp, input.dtype
    rows = Tensor(_adaptive_bins(H, Ho, xp, dtype))                # (Ho, H)
    cols = Tensor(_adaptive_bins(W, Wo, xp, dtype).T.copy())       # (W, Wo)
    return _matmul(_matmul(rows, input), cols)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling to a fixed output size; PyTorch's ``adaptive_max_pool2d``.

    Input (N, C, H, W) or (C, H, W) -> (N, C, Ho, Wo) or (C, Ho, Wo). Output (i, j) is the
    maximum over rows ``[floor(i·H/Ho), ceil((i+1)·H/Ho))`` and columns
    ``[floor(j·W/Wo), ceil((j+1)·W/Wo))``; ``None`` in ``output_size`` keeps that input
    size; a 0 gives an empty output (zero input gradient). Ties keep the first maximum
    (row-major) and NaN propagates, as in PyTorch. With
    ``return_indices`` also returns int64 indices ``h·W + w`` into each input plane. The
    gradient goes to each bin's maximum (summed where bins overlap); the second derivative
    gathers at the same positions.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> x = tn.tensor([[[1., 5., 2.], [4., 3., 0.]]])
    >>> y, i = F.adaptive_max_pool2d(x, (1, 2), return_indices=True)
    >>> y.numpy().tolist(), i.numpy().tolist()
    ([[[5.0, 5.0]]], [[[1, 1]]])
    """
    output_size = _adaptive_output_size("adaptive_max_pool2d", input, output_size)
    if input.ndim == 4 and input.shape[1] == 0:       # PyTorch's rule (the batch may be empty)
        raise ValueError(f"adaptive_max_pool2d: input has no channels (shape "
                         f"{tuple(input.shape)}); expected (N, C, H, W) with C >= 1")
    was_3d = input.ndim == 3
    x = _unsqueeze(input, 0) if was_3d else input
    out = AdaptiveMaxPool2d.apply(x, output_size=output_size, return_indices=bool(return_indices))
    if was_3d:
        out = tuple(_squeeze(t, 0) for t in out) if return_indices else _squeeze(out, 0)
    return out
