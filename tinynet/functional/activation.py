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
from ..tensor import Tensor, as_dtype
from ._operands import check_tensor, check_floating, check_same_device, inplace_ignored, normalize_dim
import math
import warnings

from .elementwise import where, exp, to_dtype
from .reduction import sum as _sum
from .indexing import chunk
from .shape import reshape

__all__ = ["relu", "elu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "silu",
           "softplus", "hardtanh", "relu6", "selu", "celu", "mish", "hardswish", "hardsigmoid",
           "logsigmoid", "glu", "prelu"]


#: Smallest array for which ReLU runs in chunks on several threads. Two cheap passes a
#: chunk: forward + backward on ResNet-18's N16 64x32x32 maps (4 MB) measured 0.67-0.83x
#: the one-thread time, on its 2 MB and 1 MB maps 1.04-1.17x (2-core Zen 5 guest).
_RELU_CHUNKED_BYTES = 4 << 20


def _relu_in_chunks(a) -> bool:
    """Whether ReLU's pass over ``a`` runs in chunks on several threads (the size test
    first: below it, asking the pool would cost more than the pass)."""
    return a.nbytes >= _RELU_CHUNKED_BYTES and backend.parallel_chunks(a.size, a.nbytes, a) > 1


#: Smallest array (values) for which ReLU and ELU take the compiled kernels: ReLU's
#: forward + backward through the graph measured 1.13x NumPy's time at 4K values (20.9
#: against 18.5 µs), 0.97-1.0x at 32K, 0.79x at 64K and 0.69x at 512K (ELU: 1.0, 1.0,
#: 0.98, 0.84x), the call's fixed cost against the passes saved.
_COMPILED_MIN_SIZE = 16384
#: The same for ELU's float32 forward, whose NumPy route makes 3-4 passes with a
#: transcendental: the compiled pass measured 0.59x its time at 1,024 values (11 against
#: 19 µs), 0.38x at 4,096 and 0.25x at 65,536 (no_grad, one thread, Zen 3 guest).
_COMPILED_ELU_FORWARD_MIN_SIZE = 1024
#: The same for the sigmoid's float32 forward (NumPy: a tanh and three passes): the
#: compiled pass measured 1.31x its time at 256 values, 1.02x at 1,024, 0.77x at 4,096 and
#: 0.31x at 65,536 (no_grad, 2 threads, 401 alternated calls, Zen 3 guest); forward +
#: backward, the backward compiled from :data:`_COMPILED_MIN_SIZE`, 0.70x at 16,384
#: and 0.48x at 65,536 (the U-Net's output: 353 -> 169 µs).
_COMPILED_SIGMOID_FORWARD_MIN_SIZE = 4096


def _compiled_route(*arrays, min_size=None) -> bool:
    """Whether ReLU's or ELU's pass over ``arrays`` (one shape, one float dtype) runs
    compiled (:mod:`tinynet.kernels.compiled.activation`): from ``min_size`` values
    (default :data:`_COMPILED_MIN_SIZE`)."""
    a = arrays[0]
    return (backend.use_compiled(*arrays)
            and a.size >= (_COMPILED_MIN_SIZE if min_size is None else min_size)
            and all(b.shape == a.shape and b.flags.c_contiguous for b in arrays[1:]))


def _compiled_pass(name, *args):
    """Runs the compiled kernel ``name`` of :mod:`tinynet.kernels.compiled.activation` (or
    of :mod:`~tinynet.kernels.compiled.elementwise`) over all values of its flat array
    arguments, in ``backend.parallel_for`` chunks: as native pieces where the job runs in
    chunks on OpenBLAS's workers (no GIL; see :mod:`tinynet.kernels.compiled.pieces`)."""
    from ..kernels.compiled import pieces as _pieces
    kernel = _pieces.kernel(name)
    arrays = [a for a in args if hasattr(a, "nbytes") and a.ndim]
    scalars = [float(a) for a in args if not (hasattr(a, "nbytes") and a.ndim)]

    def native():
        from ..kernels.compiled import pieces
        from .. import blas_threads
        return pieces.piece(name, arrays[0].dtype), blas_threads.pointers(arrays), scalars[0] if scalars else 0.0
    backend.parallel_for(arrays[0].size, lambda lo, hi: kernel(*args, lo, hi),
                         nbytes=sum(a.nbytes for a in arrays), like=arrays[0], native=native)


def _flat(a):
    """A C-contiguous 1-D view (or copy) of ``a``, for the compiled kernels."""
    return (a if a.flags.c_contiguous else a.copy(order="C")).reshape(-1)


class ReLU(Function):
    """y = max(x, 0) as PyTorch's ``clamp_min(x, 0)``: 0 where x < 0, else x (NaN stays
    NaN, -0 stays -0, -inf gives +0), written ``maximum(0, x)`` (NumPy's maximum keeps its
    second operand on a tie of zeros, as PyTorch keeps x); dy/dx = [x > 0] = [y > 0], read
    back from y in the backward (where x is NaN the gradient is 0; PyTorch's passes g).
    y is what the next layer keeps anyway (a convolution's or a linear
    layer's input), so the node holds no memory of its own: a kept bool mask (one byte
    a value) was 8 MB of a ResNet-18 CIFAR step at batch 16 (docs/kernels/selection.md).
    From :data:`_RELU_CHUNKED_BYTES` up, both directions run in chunks on tinynet's
    threads."""
    unread_inputs = (0,)      # backward reads its own output y
    outputs_unread = True

    def forward(self, x):
        self.y = relu_array(x)
        return self.y

    def backward(self, g):
        return relu_gradient(g, self.y, self.inputs[0])


def relu_array(x, out=None):
    """ReLU's forward on an array, ``maximum(0, x)`` (:class:`ReLU`), by its routes:
    compiled from :data:`_COMPILED_MIN_SIZE` values, NumPy's maximum, or in chunks from
    :data:`_RELU_CHUNKED_BYTES`; into ``out`` where given (``x`` itself: in place). The
    nodes that run a ReLU of their own (``Linear`` with ``relu``) call it too."""
    xp = backend.get_array_module(x)
    if _compiled_route(x) and (out is None or out.flags.c_contiguous):
        y = xp.empty(x.shape, x.dtype) if out is None else out
        _compiled_pass("relu_forward", _flat(x), y.reshape(-1))
        return y
    if not _relu_in_chunks(x):
        return xp.maximum(x.dtype.type(0), x, out=out)
    x = x if x.flags.c_contiguous else x.copy(order="C")
    y = xp.empty_like(x) if out is None else out
    x_flat, y_flat = x.reshape(-1), y.reshape(-1)

    def chunk(lo, hi):
        xp.maximum(x.dtype.type(0), x_flat[lo:hi], out=y_flat[lo:hi])
    backend.parallel_for(x.size, chunk, nbytes=x.nbytes, like=x)
    return y


def relu_gradient(g, y, *anchors):
    """ReLU's backward ``g·[y > 0]`` from its output ``y`` (:class:`ReLU`): in a graph
    (create_graph) the differentiable product, recorded as depending on ``anchors``
    (PyTorch's formula reads the input); otherwise on the arrays, by the forward's routes.
    The nodes that run a ReLU of their own (``Linear`` and ``MaxPool2d`` with ``relu``)
    call it too."""
    gd = g.data
    if is_grad_enabled():
        return depends_on(g * Tensor((y > 0).astype(g.dtype)), *anchors)
    if gd.shape == y.shape and _compiled_route(gd, y):
        dx = backend.get_array_module(gd).empty(gd.shape, gd.dtype)
        _compiled_pass("relu_backward", _flat(gd), y.reshape(-1), dx.reshape(-1))
        return Tensor(dx)
    if not _relu_in_chunks(gd) or gd.shape != y.shape or not gd.flags.c_contiguous:
        return Tensor(gd * (y > 0))     # the same products as the graph's g·[y > 0]
    xp = backend.get_array_module(gd)
    gx = xp.empty_like(gd)
    g_flat, y_flat, gx_flat = gd.reshape(-1), y.reshape(-1), gx.reshape(-1)

    def chunk(lo, hi):      # the mask as the gradient's dtype, then the product
        xp.multiply(g_flat[lo:hi], (y_flat[lo:hi] > 0).astype(gx.dtype), out=gx_flat[lo:hi])
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
    (SIMD tanh instead of NumPy's scalar expm1 loop); with compiled kernels on, a float32
    forward is one compiled pass instead
    (:func:`tinynet.kernels.compiled.activation.elu_forward`). The backward needs no saved
    mask: for alpha >= 0, x > 0 exactly where y > 0, and the factor is
    ``min(y, 0) + alpha`` (1 where y > 0 when alpha = 1). Only a negative alpha, whose
    negative branch is positive, keeps the sign of x. Large arrays run in chunks on
    ``tinynet.get_num_threads()`` threads (NumPy releases the GIL in these loops).
    """
    unread_inputs = (0,)      # backward reads the output (self.outputs), not x

    def forward(self, x, alpha=1.0):
        xp = backend.get_array_module(x)
        self.alpha = alpha
        x = x if x.flags.c_contiguous else x.copy(order="C")   # ascontiguousarray makes 0-d 1-d
        self.positive = x > 0 if alpha < 0 else None
        y = xp.empty_like(x)
        if x.dtype == "float32" and _compiled_route(x, min_size=_COMPILED_ELU_FORWARD_MIN_SIZE):
            _compiled_pass("elu_forward", x.reshape(-1), float(alpha), y.reshape(-1))
            return y
        x_flat, y_flat = x.reshape(-1), y.reshape(-1)

        def chunk(lo, hi):
            xs, ys = x_flat[lo:hi], y_flat[lo:hi]
            backend.expm1_of_nonpositive(xs, out=ys)
            if alpha != 1.0:
                ys *= alpha
            if alpha <= 1.0:
                xp.maximum(ys, xs, out=ys)              # a tie (x = ±0) gives x, as PyTorch
            else:
                xp.copyto(ys, xs, where=xs >= 0)
        backend.parallel_for(x.size, chunk, nbytes=2 * x.nbytes, like=x)
        return y

    def _positive(self, y):
        return self.positive if self.positive is not None else y > 0

    def backward(self, g):
        (y,) = self.outputs
        if is_grad_enabled():
            # Written through the output so that the second derivative flows: d(y + alpha) = dy;
            # y is cut from the graph where it is 0 (x = 0): PyTorch's second derivative
            # is 0 there (its mask is x < 0), though its first takes the negative branch.
            slope = where(Tensor(y.data != 0), y, 0.0) + self.alpha
            return where(Tensor(self._positive(y.data)), g, g * slope)
        alpha = self.alpha
        if alpha >= 0 and _compiled_route(g.data, y.data):
            gx = backend.get_array_module(g.data).empty(y.shape, y.dtype)
            _compiled_pass("elu_backward", _flat(g.data), y.data.reshape(-1), y.data.dtype.type(alpha),
                           gx.reshape(-1))
            return Tensor(gx)
        xp = backend.get_array_module(g.data)
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


def _sigmoid_both_tails(x):
    """σ(x) accurate relative to its value in both tails: with e = exp(-|x|) <= 1 (no
    overflow), 1/(1 + e) for x >= 0 and e/(1 + e) below."""
    xp = backend.get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, x.dtype.type(1), e) / (1 + e)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x); dy/dx = y·(1 - y).

    float32: ``0.5·tanh(0.5·x) + 0.5`` (NumPy's SIMD tanh; four passes), whose error is
    absolute (below x = -17 it gives 0); with compiled kernels on, from
    :data:`_COMPILED_SIGMOID_FORWARD_MIN_SIZE` values one compiled pass instead
    (:func:`tinynet.kernels.compiled.activation.sigmoid_forward`, accurate relative to its
    value). Other dtypes: :func:`_sigmoid_both_tails`, whose error is relative (the tanh
    form's at x = -30 was 2e-4 in float64, and 1 below -37); float64 on the AVX2 guest
    (NumPy's ``tanh`` and ``exp`` both scalar loops there), 301 alternated calls: 0.66x
    the tanh form's time at 4,096 values, 0.91x at 65,536, 1.7x at 16 (12 against 7 µs:
    three more calls). A plain backward from :data:`_COMPILED_MIN_SIZE` values is one
    compiled pass (three passes and two temporaries fewer)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        if x.dtype != "float32":
            return _sigmoid_both_tails(x)
        if _compiled_route(x, min_size=_COMPILED_SIGMOID_FORWARD_MIN_SIZE):
            y = xp.empty(x.shape, x.dtype)
            _compiled_pass("sigmoid_forward", _flat(x), y.reshape(-1))
            return y
        y = xp.tanh(x * 0.5)
        y *= 0.5
        y += 0.5
        return y

    def backward(self, g):
        (y,) = self.outputs
        if not is_grad_enabled() and g.shape == y.shape and _compiled_route(g.data, y.data):
            dx = backend.get_array_module(g.data).empty(y.shape, y.dtype)
            _compiled_pass("sigmoid_backward", _flat(g.data), y.data.reshape(-1), y.data.dtype.type(1),
                           dx.reshape(-1))
            return Tensor(dx)
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


def relu(input, inplace: bool = False) -> Tensor:
    """max(x, 0); gradient 0 at x == 0 (PyTorch). ``inplace`` is accepted and ignored."""
    inplace_ignored(inplace, "relu")
    return ReLU.apply(_activation_input(input, "relu"))


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope·x otherwise. ``inplace`` is accepted and ignored."""
    inplace_ignored(inplace, "leaky_relu")
    return LeakyReLU.apply(_activation_input(input, "leaky_relu"), slope=_number(negative_slope, "leaky_relu", "negative_slope"))


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha·(exp(x) - 1) otherwise. ``inplace`` is accepted and ignored."""
    inplace_ignored(inplace, "elu")
    return ELU.apply(_activation_input(input, "elu"), alpha=_number(alpha, "elu", "alpha"))


def sigmoid(input) -> Tensor:
    """1 / (1 + exp(-x)) (routes by dtype and size: :class:`Sigmoid`)."""
    return Sigmoid.apply(_activation_input(input, "sigmoid"))


def tanh(input) -> Tensor:
    return Tanh.apply(_activation_input(input, "tanh"))


def _softmax_dim(input, dim, op, stacklevel=3):
    """The normalised axis of ``softmax`` / ``log_softmax``; ``dim=None`` takes PyTorch's
    implicit choice (dim 0 for 0-, 1- and 3-D inputs, else dim 1) and warns, as PyTorch
    does, that the choice is deprecated (``stacklevel`` counted from this function, as
    PyTorch's ``_stacklevel``)."""
    _activation_input(input, op)
    if dim is None:
        dim = 0 if input.ndim in (0, 1, 3) else 1
        warnings.warn(f"{op}: implicit dimension choice is deprecated (PyTorch's rule took "
                      f"dim={dim} for a {input.ndim}-D input); pass dim explicitly",
                      UserWarning, stacklevel=stacklevel)
    dim = normalize_dim(dim, input.ndim, op)   # a 0-d input takes 0 or -1, as PyTorch
    return dim if input.ndim else None


def _softmax_input(input, dtype, op):
    """``input`` cast to ``dtype`` first (PyTorch's ``dtype=``: the op then runs in that
    dtype, and the gradient flows back in the input's dtype). tinynet has two float dtypes."""
    if dtype is None:
        return input                  # checked with the dim (_softmax_dim)
    check_tensor(input, op)
    target = as_dtype(dtype, op)
    if target.kind != "f" or target.itemsize not in (4, 8):
        raise TypeError(f"{op}: 'dtype' must be tinynet.float32 or tinynet.float64 (or None), "
                        f"got {target}")
    return to_dtype(input, target)


def softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """exp(x) / Σ_dim exp(x), shifted by the max for stability; same shape as ``input``.

    ``dim=None``: PyTorch's implicit choice, with its deprecation warning (see
    :func:`_softmax_dim`). ``dtype`` (float32 or float64): ``input`` is cast to it before the
    op, as PyTorch's ``dtype=`` (an integer input is then accepted too).
    """
    input = _softmax_input(input, dtype, "softmax")
    return Softmax.apply(input, dim=_softmax_dim(input, dim, "softmax", _stacklevel))


def log_softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """log(softmax(x)) without overflow or log(0). ``dim`` and ``dtype`` as in :func:`softmax`."""
    input = _softmax_input(input, dtype, "log_softmax")
    return LogSoftmax.apply(input, dim=_softmax_dim(input, dim, "log_softmax", _stacklevel))


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


def silu(input, inplace: bool = False) -> Tensor:
    """x·σ(x) (also called swish), PyTorch's ``silu``. ``inplace`` is accepted and ignored.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.silu(tn.tensor([0.0])).numpy().tolist()
    [0.0]
    """
    _activation_input(input, "silu")
    inplace_ignored(inplace, "silu")
    return input * sigmoid(input)


# ---------------------------------------------------------------------------------------
# PyTorch's other activations. Each kink takes PyTorch's subgradient (stated per op); an
# op whose first derivative is piecewise constant builds its gradient from a mask kept
# from the forward (second derivative zero), the others write their backward with
# tinynet ops so that every order follows.


class TailSigmoid(Function):
    """σ(x) accurate to a few ulps relative to its value in both tails, for the derivatives
    of softplus, logsigmoid, mish and glu (PyTorch's numbers down to σ(-100) = 3.7e-44).

    :func:`sigmoid`'s float32 NumPy route, 0.5·tanh(0.5·x) + 0.5, is faster but keeps only
    an absolute error of eps (0 below x = -17). Here :func:`_sigmoid_both_tails` on every
    dtype, and dσ/dx = σ(x)·σ(-x), with σ(-x) from this op again, so every order follows.
    """

    def forward(self, x):
        return _sigmoid_both_tails(x)

    def backward(self, g):
        (y,) = self.outputs
        return g * y * TailSigmoid.apply(-self.inputs[0])


class Softplus(Function):
    """y = log(1 + exp(β·x))/β where β·x <= threshold, else x (PyTorch's linear region).

    Forward as (max(z, 0) + log1p(exp(-|z|)))/β with z = β·x: no overflow for any x.
    dy/dx = σ(β·x) where β·x <= threshold, else 1; the backward calls :class:`TailSigmoid`,
    so the second derivative β·σ(z)·σ(-z) follows.
    """

    def forward(self, x, beta=1.0, threshold=20.0):
        xp = backend.get_array_module(x)
        self.beta = beta
        z = x * x.dtype.type(beta)
        self.linear, self.curved = z > threshold, z < threshold
        y = xp.maximum(z, 0) + backend.log1p(xp.exp(-xp.abs(z)))
        with backend.numpy.errstate(divide="ignore", invalid="ignore"):   # beta = 0: inf, as PyTorch
            y /= x.dtype.type(beta)
        return xp.where(self.linear, x, y)

    def backward(self, g):
        x = self.inputs[0]
        # PyTorch's second derivative is 0 from β·x = threshold on (there its first is σ(z)):
        # x enters σ cut from the graph where the curved piece is not strictly taken.
        curved = where(Tensor(self.curved), x, x.detach())
        return g * where(Tensor(self.linear), 1.0, TailSigmoid.apply(curved * self.beta))


class Hardtanh(Function):
    """y = min(max(x, min_val), max_val); dy/dx = 1 on the open interval (min_val, max_val),
    0 elsewhere, 0 at both ends too (PyTorch's ``hardtanh_backward``)."""

    def forward(self, x, min_val=-1.0, max_val=1.0):
        xp = backend.get_array_module(x)
        self.inside = (x > min_val) & (x < max_val)
        return xp.clip(x, x.dtype.type(min_val), x.dtype.type(max_val))

    def backward(self, g):
        return depends_on(g * Tensor(self.inside.astype(g.dtype)), self.inputs[0])


class Hardsigmoid(Function):
    """y = min(max(x + 3, 0), 6) / 6; dy/dx = 1/6 on (-3, 3), 0 elsewhere, 0 at ±3 (PyTorch)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.inside = (x > -3) & (x < 3)
        return xp.clip(x + 3, 0, 6) / x.dtype.type(6)

    def backward(self, g):
        return depends_on(g * Tensor(self.inside.astype(g.dtype) / 6), self.inputs[0])


class Hardswish(Function):
    """y = x·min(max(x + 3, 0), 6) / 6.

    dy/dx = 0 for x <= -3, x/3 + 1/2 for -3 < x < 3, 1 for x >= 3 (PyTorch's values at
    ±3); the middle piece is written with tinynet ops, so d²y/dx² = 1/3 on (-3, 3).
    """

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.middle = (x > -3) & (x < 3)
        self.upper = x >= 3
        return x * xp.clip(x + 3, 0, 6) / x.dtype.type(6)

    def backward(self, g):
        x = self.inputs[0]
        middle, upper = Tensor(self.middle.astype(g.dtype)), Tensor(self.upper.astype(g.dtype))
        return g * (middle * (x / 3.0 + 0.5) + upper)


class LogSigmoid(Function):
    """y = log σ(x) = min(x, 0) - log1p(exp(-|x|)) (no overflow, no log(0));
    dy/dx = σ(-x), through :class:`TailSigmoid`, so every order follows."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.minimum(x, 0) - backend.log1p(xp.exp(-xp.abs(x)))

    def backward(self, g):
        return g * TailSigmoid.apply(-self.inputs[0])


class CELU(Function):
    """y = x (x > 0), α·(exp(x/α) - 1) (x <= 0);  dy/dx = 1 (x > 0), exp(x/α) (x <= 0).

    PyTorch's ``elu(x, α, scale=1, input_scale=1/α)``, so a negative α keeps the identity
    for x > 0.
    """

    def forward(self, x, alpha=1.0):
        xp = backend.get_array_module(x)
        self.alpha = alpha
        self.positive = x > 0
        alpha = x.dtype.type(alpha)
        negative = xp.where(self.positive, 0, x)     # no overflow in the branch not taken
        with backend.numpy.errstate(over="ignore"):   # alpha < 0: -inf far out, as PyTorch
            return xp.where(self.positive, x, xp.expm1(negative / alpha) * alpha)

    def backward(self, g):
        x = self.inputs[0]
        # exp reads x only where x < 0 (0 elsewhere): no untaken branch overflows, and the
        # second derivative at x = 0 is 0, as PyTorch's (its mask is strict there).
        negative = where(Tensor(x.data < 0), x, 0.0)
        with backend.numpy.errstate(over="ignore"):   # alpha < 0: an infinite slope far out
            return where(Tensor(self.positive), g, g * exp(negative / self.alpha))


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """Softplus log(1 + exp(β·x))/β, and x itself where β·x > threshold (as PyTorch).

    Same shape as ``input``. Stable for every x (see :class:`Softplus`).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> round(F.softplus(tn.tensor(0.0)).item(), 4)
    0.6931
    """
    _activation_input(input, "softplus")
    return Softplus.apply(input, beta=_number(beta, "softplus", "beta"),
                          threshold=_number(threshold, "softplus", "threshold"))


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """min(max(x, min_val), max_val); gradient 1 strictly inside, 0 at and beyond the ends.

    ``min_val > max_val`` is a ValueError, as in PyTorch (equal bounds are allowed).
    ``inplace`` is accepted for PyTorch compatibility and ignored.
    """
    _activation_input(input, "hardtanh")
    inplace_ignored(inplace, "hardtanh")
    lo, hi = _number(min_val, "hardtanh", "min_val"), _number(max_val, "hardtanh", "max_val")
    if lo > hi:
        raise ValueError(f"hardtanh: min_val cannot be greater than max_val, got min_val={lo} "
                         f"and max_val={hi}")
    return Hardtanh.apply(input, min_val=lo, max_val=hi)


def relu6(input, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6) = ``hardtanh(x, 0, 6)``: gradient 0 at 0 and at 6 (PyTorch).
    ``inplace`` is accepted for PyTorch compatibility and ignored."""
    _activation_input(input, "relu6")
    inplace_ignored(inplace, "relu6")
    return Hardtanh.apply(input, min_val=0.0, max_val=6.0)


#: SELU's constants (Klambauer et al. 2017), PyTorch's values.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace: bool = False) -> Tensor:
    """scale·elu(x, alpha) with PyTorch's ``alpha`` = 1.6732632423543772 and ``scale`` =
    1.0507009873554805: scale·x (x > 0), scale·alpha·(exp(x) - 1) (x <= 0). Gradient at 0:
    scale·alpha, from the negative branch (PyTorch). ``inplace`` is accepted and ignored."""
    _activation_input(input, "selu")
    inplace_ignored(inplace, "selu")
    return ELU.apply(input, alpha=SELU_ALPHA) * SELU_SCALE


def celu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha·(exp(x/alpha) - 1)); gradient 1 at 0. ``alpha = 0`` is a
    ValueError (PyTorch: "alpha cannot be 0 for CELU"). ``inplace`` is accepted and ignored."""
    _activation_input(input, "celu")
    inplace_ignored(inplace, "celu")
    alpha = _number(alpha, "celu", "alpha")
    if alpha == 0:
        raise ValueError("celu: alpha cannot be 0")
    return CELU.apply(input, alpha=alpha)


def mish(input, inplace: bool = False) -> Tensor:
    """x·tanh(softplus(x)) (Misra 2019), a composition of :func:`softplus` and :func:`tanh`,
    stable for every x. ``inplace`` is accepted for PyTorch compatibility and ignored."""
    _activation_input(input, "mish")
    inplace_ignored(inplace, "mish")
    return input * tanh(softplus(input))


def hardswish(input, inplace: bool = False) -> Tensor:
    """x·relu6(x + 3)/6 (Howard et al. 2019); gradient 0 at -3 and 1 at 3 (PyTorch).
    ``inplace`` is accepted for PyTorch compatibility and ignored."""
    _activation_input(input, "hardswish")
    inplace_ignored(inplace, "hardswish")
    return Hardswish.apply(input)


def hardsigmoid(input, inplace: bool = False) -> Tensor:
    """relu6(x + 3)/6; gradient 1/6 strictly inside (-3, 3), 0 at ±3 (PyTorch).
    ``inplace`` is accepted for PyTorch compatibility and ignored."""
    _activation_input(input, "hardsigmoid")
    inplace_ignored(inplace, "hardsigmoid")
    return Hardsigmoid.apply(input)


def logsigmoid(input) -> Tensor:
    """log(1 / (1 + exp(-x))), stable for every x (see :class:`LogSigmoid`)."""
    return LogSigmoid.apply(_activation_input(input, "logsigmoid"))


def glu(input, dim: int = -1) -> Tensor:
    """Gated linear unit a·σ(b), where a and b are the two halves of ``input`` along ``dim``.

    ``input`` of shape (*, 2n, *) gives (*, n, *); an odd size along ``dim`` is a ValueError
    (PyTorch: "Halving dimension must be even").

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.glu(tn.tensor([[1.0, 2.0, 0.0, 0.0]])).numpy().tolist()
    [[0.5, 1.0]]
    """
    _activation_input(input, "glu")
    if input.ndim == 0:
        raise ValueError("glu: does not support scalars because halving size must be even")
    d = normalize_dim(dim, input.ndim, "glu")
    if input.shape[d] % 2:
        raise ValueError(f"glu: halving dimension must be even, but dimension {d} of 'input' "
                         f"is size {input.shape[d]}")
    first, second = chunk(input, 2, d)
    return first * TailSigmoid.apply(second)


def prelu(input, weight) -> Tensor:
    """x (x > 0), weight·x (x <= 0), one weight per channel (dim 1) or one for all.

    ``weight`` is 0-D or 1-D with 1 element, or C = ``input.shape[1]`` elements (inputs of
    fewer than 2 dims have one channel); same dtype as ``input``. Gradient at 0: weight
    (PyTorch). Gradients flow to ``input`` and ``weight``.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.prelu(tn.tensor([-2.0, 3.0]), tn.tensor([0.25])).numpy().tolist()
    [-0.5, 3.0]
    """
    _activation_input(input, "prelu")
    check_tensor(weight, "prelu", "weight")
    check_same_device("prelu", input=input, weight=weight)
    if weight.ndim > 1:
        raise ValueError(f"prelu: expected 'weight' to be a scalar or 1-D tensor, got shape "
                         f"{tuple(weight.shape)}")
    if weight.dtype != input.dtype:
        raise TypeError(f"prelu: 'weight' has dtype {weight.dtype} but 'input' has dtype "
                        f"{input.dtype}; type promotion is not supported (as in PyTorch)")
    channels = input.shape[1] if input.ndim >= 2 else 1
    count = weight.data.size
    if count != 1 and count != channels:
        raise ValueError(f"prelu: mismatch of parameter numbers and input channel size: 'weight' "
                         f"has {count} elements and 'input' has {channels} channels "
                         f"(shape {tuple(input.shape)}, channel dim 1)")
    if count == 1:
        per_channel = reshape(weight, ())
    else:
        per_channel = reshape(weight, (1, channels) + (1,) * (input.ndim - 2))
    # At x = 0 the gradient to x is the weight (PyTorch), but through a detached weight:
    # PyTorch's mixed second derivatives d(dx)/dw and d(dw)/dx do not count the point.
    at_zero = where(Tensor(input.data == 0), per_channel.detach() * input, per_channel * input)
    return where(Tensor(input.data > 0), input, at_zero)
