"""The LSTM's time-loop steps, compiled: one pass a step for the gate math.

Layout and notation are :mod:`tinynet.kernels.lstm`'s NumPy route (feature-major: a step's
gates are ``(4H, B)``); its GEMMs stay NumPy calls, and these kernels replace the
elementwise calls between them. Shapes::

    acts      (T, 4H, B)      gates of every step, rows [i; f; o; g]
    c_prev    (T, H, B)       cell state entering each step;  c_out: leaving it
    tanh_c    (T, H, B)       tanh of the new cell state
    products  (T, 2H, B)      [i g; f c_prev], read by the NumPy backward
    zs        (T+1, H+I+1, B) step inputs [h; x; 1] in time order (h_t is written there)
    dy        (T, H, B)       gradient of the outputs (an empty array: none)
    keep      (T, B)          1 where a step is valid, 0 where it carries the state (or empty)
    dh, dc    (H, B)          gradients reaching the step's h and c (updated in place)
    d         (4H, B)         this step's gate gradients [i; f; g; o] (PyTorch's order)
    d_gates   (4H, T, B)      every step's, for the weight-gradient GEMM

Forward step (after ``acts[t] = W z_t``, the i, f, o rows of ``W`` halved)::

    i, f, o = 0.5 tanh(acts) + 0.5     g = tanh(acts)
    c = f c_prev + i g ;   h = o tanh(c)

Backward step::

    dc_total = dc + dh o (1 - tanh_c^2)
    da_i = dc_total g i (1 - i)        da_f = dc_total c_prev f (1 - f)
    da_g = dc_total i (1 - g^2)        da_o = dh tanh_c o (1 - o)
    dc  <- dc_total f                  (then the caller: dh <- W_hh^T da)

Why it is faster: the NumPy route does a step's gate math as 8 (forward) and 13
(backward) whole-array calls, each a Python call, a dispatch and a pass over a ``(H, B)``
block; here it is one loop over ``(j, b)`` that reads each saved value once and keeps the
intermediates in registers. For each row ``j`` the inner loop runs along the contiguous
batch axis over one-dimensional row views, with no branch in it (the mask's carries are
separate loops), so LLVM vectorises it. The forward needs ``tanh``, which compiled code
here can only call from ``libm`` one element at a time (37x slower than ``np.tanh``):
:func:`tanh32` is a rational approximation that vectorises, float32 only, so the float64
forward stays on NumPy (docs/kernels/lstm.md has the figures).
"""
import numpy as np

from . import serial_kernel


@serial_kernel
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


@serial_kernel
def tanh32(x):
    """float32 ``tanh`` as a rational function: Eigen's ``generic_fast_tanh_float``.

    ``tanh(x) ~ x P(x^2) / Q(x^2)`` (P of degree 6, Q of degree 3) on ``|x| <= 7.9988``,
    where float32 ``tanh`` reaches 1; outside, x is clamped there (so ``tanh(+-inf)`` is
    ``+-1``); ``x`` itself below ``4e-4``. Within 5 ulp of the exact tanh where measured
    (4.4 ulp at most on a 2M-point grid of [-12, 12], NumPy's ``np.tanh`` 1.4 there),
    NaN in, NaN out (the comparisons are false for NaN). A polynomial and a division
    vectorise, where a call to ``libm``'s ``tanhf`` per element does not (37x slower
    than ``np.tanh``)."""
    y = x
    if y > np.float32(7.99881172180175781):
        y = np.float32(7.99881172180175781)
    if y < np.float32(-7.99881172180175781):
        y = np.float32(-7.99881172180175781)
    y2 = y * y
    p = np.float32(-2.76076847742355e-16)
    p = p * y2 + np.float32(2.00018790482477e-13)
    p = p * y2 + np.float32(-8.60467152213735e-11)
    p = p * y2 + np.float32(5.12229709037114e-08)
    p = p * y2 + np.float32(1.48572235717979e-05)
    p = p * y2 + np.float32(6.37261928875436e-04)
    p = p * y2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * y2 + np.float32(1.18534705686654e-04)
    q = q * y2 + np.float32(2.26843463243900e-03)
    q = q * y2 + np.float32(4.89352518554385e-03)
    r = y * p / q
    if abs(x) < np.float32(0.0004):
        r = x
    return r


@serial_kernel
def forward_step(acts, c_prev, c_out, tanh_c, products, zs, keep, t, out_slot):
    """float32 forward step ``t`` after the GEMM ``acts[t] = W z_t``: the gates, ``c``,
    ``tanh(c)`` and ``h`` in one pass. ``acts[t]`` holds the pre-activations with the i,
    f, o rows halved (``sigmoid(a) = 0.5 tanh(a/2) + 0.5``) and is overwritten by the
    gates; ``h`` goes to the first ``H`` rows of ``zs[out_slot]`` (the next step's input
    ``[h; x; 1]``), ``[i g; f c_prev]`` to ``products[t]`` (the NumPy backward's). With a
    mask, a padded column keeps ``h`` and ``c`` of ``zs[prev]``/``c_prev[t]``."""
    T, G, B = acts.shape
    H = G // 4
    half = np.float32(0.5)
    prev = out_slot - 1 if out_slot > t else out_slot + 1
    for j in range(H):
        ai, af, ao, ag = acts[t, j], acts[t, H + j], acts[t, 2 * H + j], acts[t, 3 * H + j]
        cp, c, tc, h = c_prev[t, j], c_out[t, j], tanh_c[t, j], zs[out_slot, j]
        ig, fc = products[t, j], products[t, H + j]
        for b in range(B):
            i = half * tanh32(ai[b]) + half
            f = half * tanh32(af[b]) + half
            o = half * tanh32(ao[b]) + half
            g = tanh32(ag[b])
            ai[b], af[b], ao[b], ag[b] = i, f, o, g
            ig[b] = i * g
            fc[b] = f * cp[b]
            c[b] = ig[b] + fc[b]
            tc[b] = tanh32(c[b])
            h[b] = o * tc[b]
    if keep.shape[0] > 0:
        for j in range(H):
            for b in range(B):
                if keep[t, b] == 0:
                    zs[out_slot, j, b] = zs[prev, j, b]
                    c_out[t, j, b] = c_prev[t, j, b]
