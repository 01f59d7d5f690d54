"""Cross-entropy over class scores with class-index targets, compiled: one pass per row.

Shapes: ``x`` (N, C) scores of one float dtype, ``t`` (N,) integer class indices,
``softmax`` (N, C) and ``keep`` (N,) outputs of x's dtype. Per row n, with
``k_n = [t_n != ignore_index]`` (:class:`tinynet.functional.loss.CrossEntropyIndex`'s
equations)::

    m_n = max_c x[n, c],   s_n = Σ_c exp(x[n, c] - m_n)
    softmax[n, c] = exp(x[n, c] - m_n) / s_n
    loss_n = k_n · (log s_n - (x[n, t_n] - m_n))        (logsumexp(x_n) - x[n, t_n])

The forward returns ``(Σ_n loss_n, Σ_n k_n, first)``: the sum in float64, and ``first``
the first row whose target is neither ``ignore_index`` nor in ``0..C-1`` (-1 when there
is none; the caller raises, and the sums are then meaningless). The backward writes
``dx = (softmax - onehot(t)) · scale`` with ``scale[n] = g·k_n / D`` from the caller.

Why it is faster: the NumPy route is about fifteen calls (a max, a subtraction, an exp,
a sum, a log, a gather, the target checks...), each a few microseconds on a classifier's
(64, 10) scores, where the whole work is a few hundred exponentials.
"""
import numpy as np

from . import kernel


@kernel
def cross_entropy_forward(x, t, ignore_index, softmax, keep):
    """Fills ``softmax`` and ``keep`` (1 or 0 per row); returns (loss sum, kept rows,
    first bad row or -1) (see the module docstring)."""
    N, C = x.shape
    total = 0.0
    kept = 0
    zero, one = x.dtype.type(0), x.dtype.type(1)
    for n in range(N):
        target = t[n]
        ignored = target == ignore_index
        if not ignored and (target < 0 or target >= C):
            return total, kept, n
        row, p = x[n], softmax[n]
        m = row[0]      # a NaN anywhere in the row makes s_n NaN, as in NumPy's route
        for c in range(1, C):
            if row[c] > m:
                m = row[c]
        s = zero
        for c in range(C):
            e = np.exp(row[c] - m)
            p[c] = e
            s += e
        for c in range(C):
            p[c] /= s
        if ignored:
            keep[n] = zero
        else:
            keep[n] = one
            total += np.float64(np.log(s) - (row[target] - m))
            kept += 1
    return total, kept, -1


@kernel
def cross_entropy_backward(softmax, t, ignore_index, scale, dx):
    """``dx[n] = (softmax[n] - onehot(t_n)) · scale[n]`` (ignored rows: scale 0)."""
    N, C = softmax.shape
    for n in range(N):
        k = scale[n]
        p, out = softmax[n], dx[n]
        for c in range(C):
            out[c] = p[c] * k
        if t[n] != ignore_index:
            out[t[n]] = (p[t[n]] - softmax.dtype.type(1)) * k
