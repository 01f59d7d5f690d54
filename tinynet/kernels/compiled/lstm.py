"""The LSTM's backward time-loop step, compiled: one pass a step for the gate math.

Layout and notation are :mod:`tinynet.kernels.lstm`'s NumPy route (feature-major: a step's
gates are ``(4H, B)``); its GEMMs stay NumPy calls, and this kernel replaces the
backward's elementwise calls between them. Shapes::

    acts      (T, 4H, B)      gates of every step, rows [i; f; o; g]
    c_prev    (T, H, B)       cell state entering each step
    tanh_c    (T, H, B)       tanh of the new cell state
    dy        (T, H, B)       gradient of the outputs (an empty array: none)
    keep      (T, B)          1 where a step is valid, 0 where it carries the state (or empty)
    dh, dc    (H, B)          gradients reaching the step's h and c (updated in place)
    d         (4H, B)         this step's gate gradients [i; f; g; o] (PyTorch's order)
    d_gates   (4H, T, B)      every step's, for the weight-gradient GEMM

Backward step (i, f, o, g the saved gate activations)::

    dc_total = dc + dh o (1 - tanh_c^2)
    da_i = dc_total g i (1 - i)        da_f = dc_total c_prev f (1 - f)
    da_g = dc_total i (1 - g^2)        da_o = dh tanh_c o (1 - o)
    dc  <- dc_total f                  (then the caller: dh <- W_hh^T da)

Why it is faster: the NumPy route does a step's backward gate math as 13 whole-array calls, each a Python call, a dispatch and a pass over a ``(H, B)``
block; here it is one loop over ``(j, b)`` that reads each saved value once and keeps the
intermediates in registers. For each row ``j`` the inner loop runs along the contiguous
batch axis over one-dimensional row views, with no branch in it (the mask's carries are
separate loops), so LLVM vectorises it. The forward stays on NumPy: it needs ``tanh``,
which compiled code here can only call from ``libm`` one element at a time (37x slower
than ``np.tanh``), and a vectorising approximation of our own would give up NumPy's
accuracy (docs/kernels/lstm.md).
"""
import numpy as np

from . import kernel


@kernel
def backward_step(acts, c_prev, tanh_c, dy, keep, dh, dc, d, d_gates, carry, t):
    """Gate gradients of step ``t``: fills ``d`` and ``d_gates[:, t]`` and updates ``dc``
    to the gradient reaching ``c_{t-1}``; the caller then does ``dh = W_hh^T d`` (plus
    ``carry[0]`` with a mask). ``carry`` ``(2, H, B)``: the parts of ``dh`` and ``dc`` that
    a padded step passes on unchanged. Shapes: the module docstring."""
    T, G, B = acts.shape
    H = G // 4
    one = acts.dtype.type(1)        # a typed 1: a bare ``1`` would promote float32 to float64
    if keep.shape[0] > 0:
        for j in range(H):
            for b in range(B):
                k = keep[t, b]
                carry[0, j, b] = dh[j, b] * (one - k)
                carry[1, j, b] = dc[j, b] * (one - k)
    if dy.shape[0] > 0:
        for j in range(H):
            for b in range(B):
                dh[j, b] += dy[t, j, b]
    if keep.shape[0] > 0:
        for j in range(H):
            for b in range(B):
                dh[j, b] *= keep[t, b]
                dc[j, b] *= keep[t, b]
    for j in range(H):
        # one row of each block: the inner loop runs along the contiguous batch axis
        i, f, o, g = acts[t, j], acts[t, H + j], acts[t, 2 * H + j], acts[t, 3 * H + j]
        tc, cp, dhj, dcj = tanh_c[t, j], c_prev[t, j], dh[j], dc[j]
        d_i, d_f, d_g, d_o = d[j], d[H + j], d[2 * H + j], d[3 * H + j]
        for b in range(B):
            dct = dcj[b] + dhj[b] * o[b] * (one - tc[b] * tc[b])
            d_i[b] = dct * g[b] * i[b] * (one - i[b])
            d_f[b] = dct * cp[b] * f[b] * (one - f[b])
            d_g[b] = dct * i[b] * (one - g[b] * g[b])
            d_o[b] = dhj[b] * tc[b] * o[b] * (one - o[b])
            dcj[b] = dct * f[b]
    if keep.shape[0] > 0:
        for j in range(H):
            for b in range(B):
                dc[j, b] += carry[1, j, b]
    for r in range(G):
        for b in range(B):
            d_gates[r, t, b] = d[r, b]
