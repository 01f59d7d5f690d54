"""Activations. Each is stable for large |x|:

* sigmoid(x) = 0.5·tanh(0.5·x) + 0.5      (no exp overflow)
* softmax(x) = exp(x - max x) / Σ exp(x - max x)
* log_softmax(x) = (x - max x) - log Σ exp(x - max x)
* gelu(x) = x·Φ(x), Φ(x) = (1 + erf(x/√2)) / 2;  gelu'(x) = Φ(x) + x·φ(x),
  gelu''(x) = φ(x)·(2 - x²) with φ(x) = exp(-x²/2)/√(2π). The 'tanh' approximation
  0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) and silu(x) = x·σ(x) are compositions.
"""
from __future__ import annotations

from ..autograd import Function, depends_on, is_grad_enabled
from .. import backend
from ..tensor import Tensor
from ._operands import check_tensor, check_floating, normalize_dim
import math
import warnings

from .elementwise import where, exp
from .reduction import sum as _sum

__all__ = ["relu", "elu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "silu"]


#: Smallest array for which ReLU runs in chunks on several threads. Two cheap passes a
#: chunk: forward + backward on ResNet-18's N16 64x32x32 maps (4 MB) measured 0.67-0.83x
#: the one-thread time, on its 2 MB and 1 MB maps 1.04-1.17x (2-core Zen 5 guest).
_RELU_CHUNKED_BYTES = 4 << 20


def _relu_in_chunks(a) -> bool:
    """Whether ReLU's pass over ``a`` runs in chunks on several threads (the size test
    first: below it, asking the pool would cost more than the pass)."""
    return a.nbytes >= _RELU_CHUNKED_BYTES and backend.parallel_chunks(a.size, a.nbytes, a) > 1


class ReLU(Function):
    """y = max(x, 0) as ``x * [x > 0]``; dy/dx = [x > 0], the mask kept from the forward
    (a one-pass ``maximum`` reading the mask back from y measured equal overall: its
    backward paid the comparison the forward saved; docs/kernels/selection.md). From
    :data:`_RELU_CHUNKED_BYTES` up, both directions run in chunks on tinynet's threads."""

    def forward(self, x):
        if not _relu_in_chunks(x):
            self.mask = x > 0
            return x * self.mask
        xp = backend.get_array_module(x)
        x = x if x.flags.c_contiguous else x.copy(order="C")
        self.mask, y = xp.empty(x.shape, dtype=bool), xp.empty_like(x)
        x_flat, mask_flat, y_flat = x.reshape(-1), self.mask.reshape(-1), y.reshape(-1)

        def chunk(lo, hi):
            xp.greater(x_flat[lo:hi], 0, out=mask_flat[lo:hi])
            xp.multiply(x_flat[lo:hi], mask_flat[lo:hi], out=y_flat[lo:hi])
        backend.parallel_for(x.size, chunk, nbytes=x.nbytes, like=x)
        return y

    def backward(self, g):
        gd = g.data
        if (not _relu_in_chunks(gd) or is_grad_enabled() or gd.shape != self.mask.shape
                or not gd.flags.c_contiguous):
            return depends_on(g * Tensor(self.mask.astype(g.dtype)), self.inputs[0])
        xp = backend.get_array_module(gd)
        gx = xp.empty_like(gd)
        g_flat, mask_flat, gx_flat = gd.reshape(-1), self.mask.reshape(-1), gx.reshape(-1)

        def chunk(lo, hi):      # the mask as the gradient's dtype, then the product: two calls
            xp.multiply(g_flat[lo:hi], mask_flat[lo:hi].astype(gx.dtype), out=gx_flat[lo:hi])
        backend.parallel_for(gx.size, chunk, nbytes=gx.nbytes, like=gx)
        return Tensor(gx)


class LeakyReLU(Function):
    def forward(self, x, slope=0.01):
        xp = backend.get_array_module(x)
        self.scale = xp.where(x > 0, x.dtype.type(1), x.dtype.type(slope))
        return x * self.scale

    def backward(self, g):
        return depends_on(g * Tensor(self.scale), self.inputs[0])


class ELU(Function):
    """y = x (x > 0), alpha·(exp(x) - 1) (x <= 0);  dy/dx = 1 (x > 0), y + alpha (x <= 0).

    Forward: ``y = max(x, alpha·expm1(min(x, 0)))``, exact for alpha <= 1 (then
    ``alpha·expm1(x) >= x`` for x <= 0, and the negative branch is 0 < x for x > 0); a larger
    alpha selects by ``x > 0``. ``expm1`` is :func:`tinynet.backend.expm1_of_nonpositive`
    (SIMD tanh instead of NumPy's scalar expm1 loop). The backward needs no saved
    mask: for alpha >= 0, x > 0 exactly where y > 0, and the factor is
    ``min(y, 0) + alpha`` (1 where y > 0 when alpha = 1). Only a negative alpha, whose
    negative branch is positive, keeps the sign of x. Large arrays run in chunks on
    ``tinynet.get_num_threads()`` threads (NumPy releases the GIL in these loops).
    """

    def forward(self, x, alpha=1.0):
        xp = backend.get_array_module(x)
        self.alpha = alpha
        x = x if x.flags.c_contiguous else x.copy(order="C")   # ascontiguousarray makes 0-d 1-d
        self.positive = x > 0 if alpha < 0 else None
        y = xp.empty_like(x)
        x_flat, y_flat = x.reshape(-1), y.reshape(-1)

        def chunk(lo, hi):
            xs, ys = x_flat[lo:hi], y_flat[lo:hi]
            backend.expm1_of_nonpositive(xs, out=ys)
            if alpha != 1.0:
                ys *= alpha
            if alpha <= 1.0:
                xp.maximum(xs, ys, out=ys)
            else:
                xp.copyto(ys, xs, where=xs > 0)
        backend.parallel_for(x.size, chunk, nbytes=2 * x.nbytes, like=x)
        return y

    def _positive(self, y):
        return self.positive if self.positive is not None else y > 0

    def backward(self, g):
        (y,) = self.outputs
        if is_grad_enabled():
            # Written through the output so that the second derivative flows: d(y + alpha) = dy.
            return where(Tensor(self._positive(y.data)), g, g * (y + self.alpha))
        xp = backend.get_array_module(g.data)
        alpha = self.alpha
        factor = xp.empty_like(y.data)     # an array even when y is 0-d (ufuncs return scalars)
        if alpha < 0:
            xp.add(y.data, alpha, out=factor)
        else:
            backend.minimum_scalar(y.data, 0, out=factor)
        factor_flat, g_data = factor.reshape(-1), g.data
        g_flat = g_data.reshape(-1) if g_data.shape == factor.shape and g_data.flags.c_contiguous else None
        positive = self._positive(y.data).reshape(-1) if alpha != 1.0 else None   # alpha = 1: no fix-up

        def chunk(lo, hi):
            f = factor_flat[lo:hi]
            if alpha >= 0:
                f += factor.dtype.type(alpha)
            if positive is not None:
                xp.copyto(f, 1, where=positive[lo:hi])
            if g_flat is not None:
                f *= g_flat[lo:hi]
        backend.parallel_for(factor.size, chunk, nbytes=3 * factor.nbytes, like=factor, calls=2)
        if g_flat is None:
            factor *= g_data        # a broadcast or strided gradient: one pass, unchunked
        return Tensor(factor)


class Sigmoid(Function):
    def forward(self, x):
        xp = backend.get_array_module(x)
        y = xp.tanh(x * 0.5)
        y *= 0.5
        y += 0.5
        return y

    def backward(self, g):
        (y,) = self.outputs
        return g * y * (1.0 - y)


class Tanh(Function):
    def forward(self, x):
        return backend.get_array_module(x).tanh(x)

    def backward(self, g):
        (y,) = self.outputs
        return g * (1.0 - y * y)


class Softmax(Function):
    """dx = y ⊙ (g - Σ_dim g⊙y)."""

    def forward(self, x, dim=-1):
        xp = backend.get_array_module(x)
        self.dim = dim
        if x.size == 0:      # nothing to normalise (and no max of an empty axis)
            return xp.empty_like(x)
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        e /= e.sum(axis=dim, keepdims=True)
        return e

    def backward(self, g):
        (y,) = self.outputs
        return y * (g - _sum(g * y, self.dim, keepdim=True))


class LogSoftmax(Function):
    """dx = g - softmax(x) ⊙ Σ_dim g,  with softmax(x) = exp(y)."""

    def forward(self, x, dim=-1):
        xp = backend.get_array_module(x)
        self.dim = dim
        if x.size == 0:
            return xp.empty_like(x)
        shifted = x - x.max(axis=dim, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))

    def backward(self, g):
        (y,) = self.outputs
        return g - exp(y) * _sum(g, self.dim, keepdim=True)


def _activation_input(x, op):
    check_tensor(x, op)
    check_floating(x, op)
    return x


def _number(value, op, arg):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{op}: '{arg}' must be a number, got {type(value).__name__}")
    return float(value)


def relu(input) -> Tensor:
    """max(x, 0); gradient 0 at x == 0 (PyTorch)."""
    return ReLU.apply(_activation_input(input, "relu"))


def leaky_relu(input, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope·x otherwise."""
    return LeakyReLU.apply(_activation_input(input, "leaky_relu"), slope=_number(negative_slope, "leaky_relu", "negative_slope"))


def elu(input, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha·(exp(x) - 1) otherwise."""
    return ELU.apply(_activation_input(input, "elu"), alpha=_number(alpha, "elu", "alpha"))


def sigmoid(input) -> Tensor:
    """1 / (1 + exp(-x)), computed as 0.5·tanh(0.5·x) + 0.5."""
    return Sigmoid.apply(_activation_input(input, "sigmoid"))


def tanh(input) -> Tensor:
    return Tanh.apply(_activation_input(input, "tanh"))


def _softmax_dim(input, dim, op):
    """The normalised axis of ``softmax`` / ``log_softmax``; ``dim=None`` takes PyTorch's
    implicit choice (dim 0 for 0-, 1- and 3-D inputs, else dim 1) and warns, as PyTorch
    does, that the choice is deprecated."""
    _activation_input(input, op)
    if not input.ndim:
        return None
    if dim is None:
        dim = 0 if input.ndim in (1, 3) else 1
        warnings.warn(f"{op}: implicit dimension choice is deprecated (PyTorch's rule took "
                      f"dim={dim} for a {input.ndim}-D input); pass dim explicitly",
                      UserWarning, stacklevel=3)
    return normalize_dim(dim, input.ndim, op)


def softmax(input, dim: int | None = None) -> Tensor:
    """exp(x) / Σ_dim exp(x), shifted by the max for stability. ``dim=None``: PyTorch's
    implicit choice, with its deprecation warning (see :func:`_softmax_dim`)."""
    return Softmax.apply(input, dim=_softmax_dim(input, dim, "softmax"))


def log_softmax(input, dim: int | None = None) -> Tensor:
    """log(softmax(x)) without overflow or log(0). ``dim=None`` as in :func:`softmax`."""
    return LogSoftmax.apply(input, dim=_softmax_dim(input, dim, "log_softmax"))


class GELU(Function):
    """y = x·Φ(x); dy/dx = ``GELUDerivative`` (its own op, so every order follows)."""

    def forward(self, x):
        return 0.5 * x * (1.0 + backend.erf(x * (1.0 / math.sqrt(2.0))))

    def backward(self, g):
        return g * GELUDerivative.apply(self.inputs[0])


class GELUDerivative(Function):
    """d = Φ(x) + x·φ(x);  dd/dx = φ(x)·(2 - x²), written with tinynet ops."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        cdf = 0.5 * (1.0 + backend.erf(x * (1.0 / math.sqrt(2.0))))
        return cdf + x * xp.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))

    def backward(self, g):
        x = self.inputs[0]
        pdf = exp(x * x * -0.5) * (1.0 / math.sqrt(2.0 * math.pi))
        return g * pdf * (2.0 - x * x)


def gelu(input, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit x·Φ(x) (Hendrycks & Gimpel), PyTorch's ``gelu``.

    ``approximate='tanh'``: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> round(F.gelu(tn.tensor(1.0)).item(), 4)
    0.8413
    """
    _activation_input(input, "gelu")
    if approximate == "none":
        return GELU.apply(input)
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2.0 / math.pi)
        return input * 0.5 * (tanh(inner) + 1.0)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input) -> Tensor:
    """x·σ(x) (also called swish), PyTorch's ``silu``.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.silu(tn.tensor([0.0])).numpy().tolist()
    [0.0]
    """
    _activation_input(input, "silu")
    return input * sigmoid(input)
