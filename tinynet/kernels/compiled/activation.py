"""ReLU and ELU, compiled: each direction in one pass over flat, C-contiguous arrays.

Shapes: every array is 1-D of n values (the caller passes ``reshape(-1)`` views of
C-contiguous tensors), one dtype (float32 or float64); ReLU's mask is bool.

    relu:  y = x·[x > 0],                         dx = g·[x > 0]      (the mask kept)
    elu backward:                                dx = g (y > 0), g·(y + α) (y <= 0)

ELU's backward reads y = elu(x), not x: for α >= 0, x > 0 exactly where y > 0 (the caller
keeps the NumPy route for α < 0, whose negative branch is positive). ELU's forward stays
on its NumPy route: Numba's ``expm1`` is a scalar libm call (no SVML here), ~5x slower
than the NumPy route's SIMD ``tanh`` form.

Loop structure: one loop over a range of values (``_*_range``), whose body is a select,
so it vectorises. Each op has two entries: a serial one, and ``*_threads``, whose
``prange`` runs the range loop over blocks of :data:`BLOCK` values on Numba's threads. A
parallel region wakes the other threads each call (microseconds, and much more while other
processes hold the cores), worth paying only on large arrays: the caller picks (and for now never picks them: in a
ResNet-18 step, libgomp's workers spinning after each region cost more than they saved;
see ``_COMPILED_THREADS_MIN_SIZE`` in :mod:`tinynet.functional.activation`). The NumPy route makes 2
passes for each ReLU direction (the comparison, then the product; the mask cast, then the
product) and 3-7 for ELU's (a minimum, expm1 or its tanh form, a scale, a maximum; the
factor min(y, 0) + α, a fix-up, the product), each pass reading and writing whole arrays.
"""
import numpy as np

from . import kernel, serial_kernel, prange

#: Values per block of the threaded entries (256 KB of float32).
BLOCK = 1 << 16


@serial_kernel
def _relu_forward_range(x, y, mask, lo, hi):
    for i in range(lo, hi):
        positive = x[i] > 0
        mask[i] = positive
        y[i] = x[i] * positive          # NaN·0 stays NaN and -x·0 is -0, as NumPy's x * (x > 0)


@serial_kernel
def _relu_backward_range(g, mask, dx, lo, hi):
    for i in range(lo, hi):
        dx[i] = g[i] * mask[i]


@serial_kernel
def _elu_backward_range(g, y, alpha, dx, lo, hi):
    for i in range(lo, hi):
        dx[i] = g[i] if y[i] > 0 else g[i] * (y[i] + alpha)


@serial_kernel
def relu_forward(x):
    """``(y, mask)`` for flat ``x``: ``mask = x > 0``, ``y = x·mask``."""
    y, mask = np.empty_like(x), np.empty(x.shape[0], dtype=np.bool_)
    _relu_forward_range(x, y, mask, 0, x.shape[0])
    return y, mask


@kernel
def relu_forward_threads(x):
    """:func:`relu_forward` on Numba's threads."""
    n = x.shape[0]
    y, mask = np.empty_like(x), np.empty(n, dtype=np.bool_)
    for b in prange((n + BLOCK - 1) // BLOCK):
        _relu_forward_range(x, y, mask, b * BLOCK, min(n, (b + 1) * BLOCK))
    return y, mask


@serial_kernel
def relu_backward(g, mask):
    """``g·mask`` for flat ``g`` and bool ``mask``."""
    dx = np.empty_like(g)
    _relu_backward_range(g, mask, dx, 0, g.shape[0])
    return dx


@kernel
def relu_backward_threads(g, mask):
    """:func:`relu_backward` on Numba's threads."""
    n = g.shape[0]
    dx = np.empty_like(g)
    for b in prange((n + BLOCK - 1) // BLOCK):
        _relu_backward_range(g, mask, dx, b * BLOCK, min(n, (b + 1) * BLOCK))
    return dx


@serial_kernel
def elu_backward(g, y, alpha):
    """dL/dx of ELU for α >= 0 (``alpha`` a scalar of y's dtype) from flat ``g`` and ``y``."""
    dx = np.empty_like(g)
    _elu_backward_range(g, y, alpha, dx, 0, g.shape[0])
    return dx


@kernel
def elu_backward_threads(g, y, alpha):
    """:func:`elu_backward` on Numba's threads."""
    n = g.shape[0]
    dx = np.empty_like(g)
    for b in prange((n + BLOCK - 1) // BLOCK):
        _elu_backward_range(g, y, alpha, dx, b * BLOCK, min(n, (b + 1) * BLOCK))
    return dx
