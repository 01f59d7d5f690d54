"""The LSTM's time-loop steps, compiled: one pass a step for the gate math, each way.

Layout and notation are :mod:`tinynet.kernels.lstm`'s NumPy route (feature-major: a step's
gates are ``(4H, B)``); its GEMMs stay NumPy calls, and these kernels replace the
elementwise calls between them. Shapes::

    acts      (T, 4H, B)      gates of every step, rows [i; f; o; g]
    c_prev    (T, H, B)       cell state entering each step
    tanh_c    (T, H, B)       tanh of the new cell state
    dy        (T, H, B)       gradient of the outputs (an empty array: none)
    keep      (T, B)          1 where a step is valid, 0 where it carries the state (or empty)
    dh, dc    (H, B)          gradients reaching the step's h and c (updated in place)
    d         (4H, B)         this step's gate gradients [i; f; g; o] (PyTorch's order)
    d_gates   (4H, T, B)      every step's, for the weight-gradient GEMM

Forward step (a the pre-activations ``W z_t``, unscaled)::

    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)      g = tanh(a_g)
    c = i g + f c_prev         tanh_c = tanh(c)         h = o tanh_c

float32 only: ``sigmoid`` and ``tanh`` are :mod:`.transcendental`'s, float32 arithmetic
that vectorises (tanh within 1.03 ulp of exact, where NumPy's float32 ``tanh`` is within
1.37; the sigmoid within 2.25, where the NumPy route's ``1 / (1 + exp(-a))`` on AVX2 is
within 3.2). float64 keeps the NumPy route.

Backward step (i, f, o, g the saved gate activations)::

    dc_total = dc + dh o (1 - tanh_c^2)
    da_i = dc_total g i (1 - i)        da_f = dc_total c_prev f (1 - f)
    da_g = dc_total i (1 - g^2)        da_o = dh tanh_c o (1 - o)
    dc  <- dc_total f                  (then the caller: dh <- W_hh^T da)

Why it is faster: the NumPy route does a step's gate math as 8-10 whole-array calls
forward and 13 backward, each a Python call, a dispatch and a pass over a ``(H, B)``
block; here each direction is one loop over ``(j, b)`` that reads each value once and
keeps the intermediates in registers. The forward runs over each ``(H, B)`` block's values
as one flat loop (the blocks are contiguous); the backward, for each row ``j``, along the
contiguous batch axis over one-dimensional row views. Neither loop has a branch in it (the
mask's carries are separate loops or NumPy calls; a select is not a branch), so LLVM
vectorises both.
"""
import numpy as np

from . import kernel
from .transcendental import sigmoid, tanh


@kernel
def forward_step(a, c_prev, c, tanh_c, products, h, first, end):
    """Gate math of one step, after the caller's GEMM ``a = W z_t``: replaces the
    pre-activations ``a`` ``(4H, B)`` (rows [i; f; o; g]) by the gates and fills ``c``,
    ``tanh_c``, ``h`` ``(H, B)`` and ``products`` ``(2H, B)`` = ``[i g; f c_prev]`` (the
    backward's NumPy route reads them); ``c_prev`` ``(H, B)``. Only hidden units
    ``first..end`` (rows ``j`` of each block; all: ``0, H``). float32, C-contiguous."""
    H, B = c.shape
    lo, hi = first * B, end * B
    # each (H, B) block is contiguous: one flat loop over its rows first..end (views of
    # the run, not offsets into the whole block: the loop then indexes from 0 and
    # vectorises)
    i, f = a[first:end].reshape(-1), a[H + first:H + end].reshape(-1)
    o, g = a[2 * H + first:2 * H + end].reshape(-1), a[3 * H + first:3 * H + end].reshape(-1)
    cp, c, tc = c_prev.reshape(-1)[lo:hi], c.reshape(-1)[lo:hi], tanh_c.reshape(-1)[lo:hi]
    hh = h.reshape(-1)[lo:hi]
    ig, fc = products[first:end].reshape(-1), products[H + first:H + end].reshape(-1)
    for k in range(hi - lo):
        i[k] = sigmoid(i[k])
        f[k] = sigmoid(f[k])
        o[k] = sigmoid(o[k])
        g[k] = tanh(g[k])
        ig[k] = i[k] * g[k]
        fc[k] = f[k] * cp[k]
        c[k] = ig[k] + fc[k]
        tc[k] = tanh(c[k])
        hh[k] = o[k] * tc[k]


@kernel
def backward_step(acts, c_prev, tanh_c, dy, keep, dh, dc, d, d_gates, carry, t, first, end):
    """Gate gradients of step ``t``: fills ``d`` and ``d_gates[:, t]`` and updates ``dc``
    to the gradient reaching ``c_{t-1}``; the caller then does ``dh = W_hh^T d`` (plus
    ``carry[0]`` with a mask). ``carry`` ``(2, H, B)``: the parts of ``dh`` and ``dc`` that
    a padded step passes on unchanged. Only hidden units ``first..end`` (rows ``j`` of
    ``dh``, ``dc`` and of each block of ``d``; all: ``0, H``). Shapes: the module docstring."""
    T, G, B = acts.shape
    H = G // 4
    one = acts.dtype.type(1)        # a typed 1: a bare ``1`` would promote float32 to float64
    if keep.shape[0] > 0:
        for j in range(first, end):
            for b in range(B):
                k = keep[t, b]
                carry[0, j, b] = dh[j, b] * (one - k)
                carry[1, j, b] = dc[j, b] * (one - k)
    if dy.shape[0] > 0:
        for j in range(first, end):
            for b in range(B):
                dh[j, b] += dy[t, j, b]
    if keep.shape[0] > 0:
        for j in range(first, end):
            for b in range(B):
                dh[j, b] *= keep[t, b]
                dc[j, b] *= keep[t, b]
    for j in range(first, end):
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
        for j in range(first, end):
            for b in range(B):
                dc[j, b] += carry[1, j, b]
    for block in range(4):
        for r in range(block * H + first, block * H + end):
            for b in range(B):
                d_gates[r, t, b] = d[r, b]
