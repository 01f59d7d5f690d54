"""LSTM gate math on raw arrays: a whole layer, forward and backward through time.

(A cell is a layer over one time step; ``tinynet.functional.lstm_cell`` calls it so.)

Notation (PyTorch's, gate order i, f, g, o; weights stacked in blocks of ``H`` rows)::

    a = x @ W_ih^T + b_ih + h @ W_hh^T + b_hh          a: (B, 4H) = [a_i | a_f | a_g | a_o]
    i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
    c' = f * c + i * g
    h' = o * tanh(c')

Sigmoid is computed as ``0.5 * tanh(0.5 * a) + 0.5``: one transcendental for all four
gates and no ``exp`` that could overflow. In the layer kernels the ``0.5`` is folded into
the weights once (rows of the i, f, o blocks are halved), so a step is one GEMM, one
``tanh`` over ``(B, 4H)`` and an affine fix-up ``act = mul * t + add``.

Backward of one step, given ``dh'`` and ``dc'`` (the gradient reaching ``c'`` from the
future)::

    dc_total = dc' + dh' * o * (1 - tanh(c')^2)
    da_i = dc_total * g      * i (1 - i)
    da_f = dc_total * c      * f (1 - f)
    da_g = dc_total * i      * (1 - g^2)
    da_o = dh' * tanh(c')    * o (1 - o)
    dc = dc_total * f ;  dh = da @ W_hh ;  dx = da @ W_ih

Everything that does not depend on the incoming gradient (the activation derivatives and
the factors ``g, c, i, tanh(c')`` they multiply) is computed for all steps at once before
the time loop, so each backward step is a handful of array operations plus one
``(B, 4H) @ (4H, H)`` GEMM. The weight gradients ``dW_hh = sum_t da_t^T h_{t-1}`` and
``dW_ih = sum_t da_t^T x_t`` are single GEMMs over the ``(T*B, 4H)`` matrix of all gate
gradients after the loop.

Variable-length batches use a boolean ``mask`` of shape ``(T, B, 1)``: where it is False
the state is carried unchanged (``h_t = h_{t-1}``), the output is zero, and no gradient
reaches that step's gates.

On CuPy the per-step gate math runs as one compiled elementwise kernel each way (through
``tinynet.backend.elementwise_kernel``); on NumPy the same math is a few in-place ufunc
calls.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import backend

__all__ = [
    "gate_scale", "LSTMSaved", "lstm_layer_forward", "lstm_layer_backward", "length_mask",
]


def gate_scale(hidden: int, dtype, xp, sigmoid_blocks=(0, 1, 3), blocks: int = 4):
    """``(scale, mul, add)`` vectors of length ``blocks * hidden`` for the tanh form of sigmoid.

    For a sigmoid block ``scale = mul = add = 0.5`` (``sigmoid(a) = 0.5 tanh(0.5 a) + 0.5``);
    for a tanh block ``scale = mul = 1, add = 0``.
    """
    scale = xp.ones((blocks, hidden), dtype=dtype)
    add = xp.zeros((blocks, hidden), dtype=dtype)
    for k in sigmoid_blocks:
        scale[k] = 0.5
        add[k] = 0.5
    scale = scale.reshape(-1)
    return scale, scale, add.reshape(-1)


# ------------------------------------------------------------------ fused per-step math
_FWD_OP = """
    const int b = i / H, j = i % H;
    const long base = (long)b * 4 * H + j;
    T ig = 0.5 * tanh(gates[base]) + 0.5;
    T fg = 0.5 * tanh(gates[base + H]) + 0.5;
    T gg = tanh(gates[base + 2 * H]);
    T og = 0.5 * tanh(gates[base + 3 * H]) + 0.5;
    gates[base] = ig; gates[base + H] = fg; gates[base + 2 * H] = gg; gates[base + 3 * H] = og;
    T cn = fg * c_prev + ig * gg;
    T tc = tanh(cn);
    c = cn; tanh_c = tc; h = og * tc;
"""
_BWD_OP = """
    const int b = i / H, j = i % H;
    const long base = (long)b * 4 * H + j;
    T ig = acts[base], fg = acts[base + H], gg = acts[base + 2 * H], og = acts[base + 3 * H];
    T dct = dc + dh * og * (1 - tanh_c * tanh_c);
    d_gates[base] = dct * gg * ig * (1 - ig);
    d_gates[base + H] = dct * c_prev * fg * (1 - fg);
    d_gates[base + 2 * H] = dct * ig * (1 - gg * gg);
    d_gates[base + 3 * H] = dh * tanh_c * og * (1 - og);
    dc_prev = dct * fg;
"""


# ``gates`` and ``d_gates`` are written through, so they are (raw) outputs: CuPy declares
# every input parameter const.
FORWARD_KERNEL = backend.define_elementwise_kernel(
    "T c_prev, int32 H", "T c, T h, T tanh_c, raw T gates", _FWD_OP, "tinynet_lstm_fwd")
BACKWARD_KERNEL = backend.define_elementwise_kernel(
    "raw T acts, T c_prev, T tanh_c, T dh, T dc, int32 H", "T dc_prev, raw T d_gates",
    _BWD_OP, "tinynet_lstm_bwd")


# ------------------------------------------------------------------ whole layer
class LSTMSaved(NamedTuple):
    """What :func:`lstm_layer_backward` needs from :func:`lstm_layer_forward`."""
    x2: object          # (T*B, I) input, flattened over time and batch
    w_ih: object        # (4H, I)
    w_hh: object        # (4H, H)
    acts: object        # (T, B, 4H) gate activations [i|f|g|o]
    h_prev: object      # (T, B, H) state entering each step (time-indexed)
    c_prev: object      # (T, B, H)
    tanh_c: object      # (T, B, H) tanh of the new cell state
    mask: object        # (T, B, 1) bool or None
    reverse: bool


def length_mask(lengths, steps: int, xp):
    """``(T, B, 1)`` bool mask, True where step ``t < lengths[b]``."""
    return (xp.arange(steps)[:, None] < xp.asarray(lengths)[None, :])[:, :, None]


def lstm_layer_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, reverse: bool = False,
                       mask=None):
    """One LSTM layer in one direction over a whole sequence.

    x ``(T, B, I)``, h0/c0 ``(B, H)``, w_ih ``(4H, I)``, w_hh ``(4H, H)``, biases ``(4H,)``.
    ``reverse=True`` runs from ``t = T-1`` down to 0 (the backward half of a bidirectional
    layer; with a mask, each sequence starts at its own last valid step).

    Returns ``y (T, B, H)`` (time-indexed outputs, zero at masked steps), ``h_n``, ``c_n``
    ``(B, H)`` and the :class:`LSTMSaved` record for the backward pass.
    """
    xp = backend.get_array_module(x, w_ih, w_hh)
    T, B, I = x.shape
    H = w_hh.shape[1]
    scale, mul, add = gate_scale(H, x.dtype, xp)
    # One GEMM projects the inputs of every step; the sigmoid's 0.5 is folded into the rows.
    x2 = x.reshape(T * B, I)
    gates = (x2 @ (w_ih * scale[:, None]).T).reshape(T, B, 4 * H)
    bias = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih + b_hh)
    if bias is not None:
        gates += bias * scale
    w_hh_t = (w_hh * scale[:, None]).T          # (H, 4H), rows of i, f, o halved

    # hs[k]/cs[k] are states in time order; the state entering step t is hs[t] going
    # forward and hs[t + 1] going backward, so h_prev and h_out are two views of one buffer.
    hs = xp.empty((T + 1, B, H), dtype=x.dtype)
    cs = xp.empty((T + 1, B, H), dtype=x.dtype)
    tanh_c = xp.empty((T, B, H), dtype=x.dtype)
    first, steps = (T, range(T - 1, -1, -1)) if reverse else (0, range(T))
    hs[first] = h0
    cs[first] = c0
    h_out, h_prev = (hs[:T], hs[1:]) if reverse else (hs[1:], hs[:T])
    c_out, c_prev = (cs[:T], cs[1:]) if reverse else (cs[1:], cs[:T])
    buf = xp.empty((B, 4 * H), dtype=x.dtype)
    buf_h = buf[:, :H]
    fwd = backend.elementwise_kernel(FORWARD_KERNEL, xp)
    for t in steps:
        g = gates[t]
        xp.matmul(h_prev[t], w_hh_t, out=buf)
        g += buf
        if fwd is not None:
            fwd(c_prev[t], H, c_out[t], h_out[t], tanh_c[t], g)
        else:
            xp.tanh(g, out=g)
            g *= mul
            g += add
            xp.multiply(g[:, H:2 * H], c_prev[t], out=c_out[t])
            xp.multiply(g[:, :H], g[:, 2 * H:3 * H], out=buf_h)
            c_out[t] += buf_h
            xp.tanh(c_out[t], out=tanh_c[t])
            xp.multiply(g[:, 3 * H:], tanh_c[t], out=h_out[t])
        if mask is not None:
            keep = ~mask[t]
            xp.copyto(h_out[t], h_prev[t], where=keep)
            xp.copyto(c_out[t], c_prev[t], where=keep)
    h_n, c_n = (hs[0], cs[0]) if reverse else (hs[T], cs[T])
    y = h_out if mask is None else xp.where(mask, h_out, 0).astype(x.dtype, copy=False)
    saved = LSTMSaved(x2, w_ih, w_hh, gates, h_prev, c_prev, tanh_c, mask, reverse)
    return y, h_n.copy(), c_n.copy(), saved


def _backward_factors(acts, c_prev, tanh_c):
    """Gradient-independent factors of every step, computed at once before the time loop.

    ``d_gates = [dct, dct, dct, dh] * factor`` with
    ``factor = [g i(1-i), c f(1-f), i (1-g^2), tanh_c o(1-o)]``, and
    ``dct = dc + dh * out_factor`` with ``out_factor = o (1 - tanh_c^2)``.
    """
    T, B, G = acts.shape
    H = G // 4
    i, g, o = acts[..., :H], acts[..., 2 * H:3 * H], acts[..., 3 * H:]
    factor = 1 - acts
    factor *= acts
    factor[..., 2 * H:3 * H] = 1 - g * g
    factor[..., :H] *= g
    factor[..., H:2 * H] *= c_prev
    factor[..., 2 * H:3 * H] *= i
    factor[..., 3 * H:] *= tanh_c
    out_factor = 1 - tanh_c * tanh_c
    out_factor *= o
    return factor.reshape(T, B, 4, H), out_factor


def lstm_layer_backward(saved: LSTMSaved, dy=None, dh_n=None, dc_n=None, need_dx: bool = True):
    """Backward through time for :func:`lstm_layer_forward`.

    dy ``(T, B, H)``, dh_n/dc_n ``(B, H)`` (any may be None = zero). Returns
    ``dx (T, B, I), dh0, dc0 (B, H), dw_ih (4H, I), dw_hh (4H, H), db (4H,)``; ``db`` is the
    gradient of both ``b_ih`` and ``b_hh`` (they enter the gates as a sum). With
    ``need_dx=False`` the input-gradient GEMM is skipped and ``dx`` is None.
    """
    acts, h_prev, c_prev, tanh_c, mask = saved.acts, saved.h_prev, saved.c_prev, saved.tanh_c, saved.mask
    xp = backend.get_array_module(acts)
    T, B, G = acts.shape
    H = G // 4
    f = acts[..., H:2 * H]
    bwd = backend.elementwise_kernel(BACKWARD_KERNEL, xp)
    if bwd is None:
        factor4, out_factor = _backward_factors(acts, c_prev, tanh_c)
    d_gates = xp.empty_like(acts)
    d_gates4 = d_gates.reshape(T, B, 4, H)
    dh = xp.zeros((B, H), dtype=acts.dtype) if dh_n is None else dh_n.astype(acts.dtype, copy=True)
    dc = xp.zeros((B, H), dtype=acts.dtype) if dc_n is None else dc_n.astype(acts.dtype, copy=True)
    dct = xp.empty_like(dh)
    w_hh = saved.w_hh
    steps = range(T) if saved.reverse else range(T - 1, -1, -1)
    for t in steps:
        if mask is not None:
            keep = ~mask[t]
            carry_h, carry_c = dh * keep, dc * keep
            if dy is not None:
                dh += dy[t]
            dh *= mask[t]
            dc *= mask[t]
        elif dy is not None:
            dh += dy[t]
        if bwd is not None:
            bwd(acts[t], c_prev[t], tanh_c[t], dh, dc, H, dct, d_gates[t])
            dc, dct = dct, dc
        else:
            xp.multiply(dh, out_factor[t], out=dct)
            dct += dc
            xp.multiply(factor4[t, :, :3], dct[:, None, :], out=d_gates4[t, :, :3])
            xp.multiply(factor4[t, :, 3], dh, out=d_gates4[t, :, 3])
            xp.multiply(dct, f[t], out=dc)
        xp.matmul(d_gates[t], w_hh, out=dh)
        if mask is not None:
            dh += carry_h
            dc += carry_c

    dg2 = d_gates.reshape(T * B, G)
    dw_hh = dg2.T @ h_prev.reshape(T * B, H)     # all steps' recurrent gradient in one GEMM
    dw_ih = dg2.T @ saved.x2
    db = dg2.sum(axis=0)
    dx = (dg2 @ saved.w_ih).reshape(T, B, -1) if need_dx else None
    return dx, dh, dc, dw_ih, dw_hh, db
