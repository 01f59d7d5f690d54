"""ReLU, ELU and the sigmoid, compiled: each direction in one pass over flat, C-contiguous arrays.

Shapes: every array is 1-D of n values (the caller passes ``reshape(-1)`` views of
C-contiguous tensors), one dtype (float32 or float64).

    relu:  y = 0 (x < 0), x otherwise,            dx = g·[y > 0]      (y kept: [y > 0] = [x > 0])
    elu backward:                                dx = g (y > 0), g·(y + α) (y <= 0)

    elu forward (float32):                       y = x (x >= 0), α·expm1(x) (x < 0)

    sigmoid forward (float32):                   y = 1 / (1 + e^-x)
    sigmoid backward:                            dx = g·y·(1 - y)

ELU's backward reads y = elu(x), not x: for α >= 0, x > 0 exactly where y > 0 (the caller
keeps the NumPy route for α < 0, whose negative branch is positive). ELU's forward takes
:func:`.transcendental.expm1_of_nonpositive` (Numba's own ``expm1`` is a scalar libm call,
~5x slower than the NumPy route's SIMD ``tanh`` form), float32 arithmetic, so float32
arrays only: float64 ones keep the NumPy route's ``expm1``.

Loop structure: one loop over a range ``lo..hi`` of the values, whose body is a select,
so it vectorises. The loop runs over slices from 0 (``x[lo:hi]``), not over ``range(lo,
hi)`` of the whole arrays: an index that might be negative makes Numba test it for
Python's wraparound, which kept the loop scalar (ReLU's forward over 65,536 floats: 74
µs that way, 3.8 µs sliced; NumPy's two passes 16 µs). The caller runs a kernel over ``backend.parallel_for`` chunks (in its own
thread for small arrays, on OpenBLAS's workers for large ones). The NumPy route makes 1
pass for ReLU's forward (a maximum) and 2 for its backward (the comparison, then the
product) and 3-7 for ELU's (a minimum, expm1 or its tanh form, a scale, a maximum; the
factor min(y, 0) + α, a fix-up, the product), each pass reading and writing whole arrays.
"""
from . import kernel
from .transcendental import expm1_of_nonpositive, sigmoid


@kernel
def relu_forward(x, y, lo, hi):
    """``y = 0`` where ``x < 0``, else ``x`` (NaN and -0 kept, -inf to +0, as PyTorch's
    ``clamp_min(x, 0)`` and the NumPy route's ``maximum(0, x)``), on values ``lo..hi``."""
    x, y = x[lo:hi], y[lo:hi]
    zero = x.dtype.type(0)
    for i in range(x.shape[0]):
        y[i] = zero if x[i] < 0 else x[i]


@kernel
def relu_backward(g, y, dx, lo, hi):
    """``dx = g·[y > 0]`` on values ``lo..hi``, ``y`` = relu(x) (y > 0 exactly where x > 0)."""
    g, y, dx = g[lo:hi], y[lo:hi], dx[lo:hi]
    for i in range(g.shape[0]):
        dx[i] = g[i] * (y[i] > 0)


@kernel
def elu_forward(x, alpha, y, lo, hi):
    """``y = elu(x)`` on values ``lo..hi`` of flat float32 ``x`` (``alpha`` a float)."""
    x, y = x[lo:hi], y[lo:hi]
    for i in range(x.shape[0]):
        y[i] = x[i] if x[i] >= 0 else alpha * expm1_of_nonpositive(x[i])   # ±0: itself, as PyTorch


@kernel
def elu_backward(g, y, alpha, dx, lo, hi):
    """dL/dx of ELU for α >= 0 (``alpha`` a scalar of y's dtype) from ``g`` and ``y``, on
    values ``lo..hi``."""
    g, y, dx = g[lo:hi], y[lo:hi], dx[lo:hi]
    for i in range(g.shape[0]):
        dx[i] = g[i] if y[i] > 0 else g[i] * (y[i] + alpha)


@kernel
def sigmoid_forward(x, y, lo, hi):
    """``y = 1 / (1 + e^-x)`` on values ``lo..hi`` of flat float32 ``x``
    (:func:`.transcendental.sigmoid`, within 2.25 ulp)."""
    x, y = x[lo:hi], y[lo:hi]
    for i in range(x.shape[0]):
        y[i] = sigmoid(x[i])


@kernel
def sigmoid_backward(g, y, one, dx, lo, hi):
    """``dx = g·y·(1 - y)`` on values ``lo..hi``, ``y`` = sigmoid(x) (``one`` a 1 of y's
    dtype: a literal 1 would make the float32 arithmetic float64)."""
    g, y, dx = g[lo:hi], y[lo:hi], dx[lo:hi]
    for i in range(g.shape[0]):
        dx[i] = g[i] * y[i] * (one - y[i])
