"""LSTM gate math on raw arrays: a whole layer, forward and backward through time.

(A cell is a layer over one time step; ``tinynet.functional.lstm_cell`` calls it so.)

Notation (PyTorch's, gate order i, f, g, o; weights stacked in blocks of ``H`` rows)::

    a = x @ W_ih^T + b_ih + h @ W_hh^T + b_hh          a: (B, 4H) = [a_i | a_f | a_g | a_o]
    i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
    c' = f * c + i * g
    h' = o * tanh(c')

Layout: every per-step array is batch-major, ``(B, 4H)`` gates and ``(B, H)`` states, and
the whole-sequence arrays stack them over time, ``(T, B, 4H)`` and ``(T, B, H)``: a step is
one contiguous block, and all steps together are the ``(T*B, .)`` matrices that the
input projection and the weight gradients multiply in single GEMMs.

One transcendental pass gives all four gates. The pre-activation is pre-scaled once per
call by folding a row scale into ``W_ih``, ``W_hh`` and the bias (never per step):

* NumPy (the CPU): scale ``-1`` on the i, f, o rows and ``-2`` on the g rows, then
  ``e = exp(z)`` and ``act = n / (1 + e)`` with ``n = 1`` on i, f, o and ``n = 2`` on g,
  since ``sigmoid(a) = 1 / (1 + exp(-a))`` and ``tanh(a) = 2 / (1 + exp(-2a)) - 1``
  (the ``- 1`` is one small ``(B, H)`` subtraction). NumPy's ``exp`` costs half its
  ``tanh`` here, and ``exp`` overflowing to ``inf`` gives the exact limits 0 (and -1).
* CuPy: scale ``0.5`` on the i, f, o rows, and the compiled step kernel computes
  ``sigmoid(a) = 0.5 * tanh(0.5 a) + 0.5`` (one ``tanh`` per gate, no overflow).

The bias is folded into the input projection too: ``[x | 1] @ [W_ih | b]^T`` is one GEMM
with one more column, instead of a GEMM and a pass over the ``(T, B, 4H)`` result (here a
pass over an array that size costs as much as the GEMM). The backward gets
``[dW_ih | db]`` from the same ``[x | 1]`` matrix in one GEMM.

Backward of one step, given ``dh'`` and ``dc'`` (the gradient reaching ``c'`` from the
future)::

    dc_total = dc' + dh' * o * (1 - tanh(c')^2)
    da_i = dc_total * g      * i (1 - i)
    da_f = dc_total * c      * f (1 - f)
    da_g = dc_total * i      * (1 - g^2)
    da_o = dh' * tanh(c')    * o (1 - o)
    dc = dc_total * f ;  dh = da @ W_hh ;  dx = da @ W_ih

On the CPU the factors that do not depend on the incoming gradient (``i(1-i) * g`` and
the others) are computed inside the time loop, step by step, while the step's ``(B, 4H)``
block is in cache: computed for all steps at once before the loop they cost ~3x more,
because every pass then streams a ``(T, B, 4H)`` array through memory. The weight
gradients ``dW_hh = sum_t da_t^T h_{t-1}`` and ``dW_ih = sum_t da_t^T x_t`` are single
GEMMs over the ``(T*B, 4H)`` matrix of all gate gradients after the loop.

Variable-length batches use a boolean ``mask`` of shape ``(T, B, 1)``: where it is False
the state is carried unchanged (``h_t = h_{t-1}``), the output is zero, and no gradient
reaches that step's gates.

On CuPy the per-step gate math runs as one compiled elementwise kernel each way (through
``tinynet.backend.elementwise_kernel``); on NumPy the same math is a few in-place ufunc
calls on preallocated buffers (counted in docs/kernels/lstm.md).
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
    x_ones: object      # (T*B, I) input flattened over time and batch; [x | 1] (T*B, I+1) with a bias
    w_ih: object        # (4H, I)
    w_hh: object        # (4H, H)
    acts: object        # (T, B, 4H) gate activations [i|f|g|o]
    h_prev: object      # (T, B, H) state entering each step (time-indexed)
    c_prev: object      # (T, B, H)
    tanh_c: object      # (T, B, H) tanh of the new cell state
    mask: object        # (T, B, 1) bool or None
    reverse: bool
    bias: bool          # x_ones carries the column of ones


def length_mask(lengths, steps: int, xp):
    """``(T, B, 1)`` bool mask, True where step ``t < lengths[b]``."""
    return (xp.arange(steps)[:, None] < xp.asarray(lengths)[None, :])[:, :, None]


def _pre_activation_scale(H: int, dtype, xp, exp_form: bool):
    """``(4H,)`` row scale folded into the weights and bias (see the module docstring):
    ``[-1, -1, -2, -1]`` per gate block for the exp form, ``[0.5, 0.5, 1, 0.5]`` for the
    tanh form of the compiled kernel."""
    if not exp_form:
        return gate_scale(H, dtype, xp)[0]
    scale = xp.full((4, H), -1, dtype=dtype)
    scale[2] = -2
    return scale.reshape(-1)


def _input_projection(x2, w_ih, bias, scale, xp):
    """``(scale * ([x | 1] @ [W_ih | b]^T))`` for all steps in one GEMM.

    x2 ``(T*B, I)``, w_ih ``(4H, I)``, bias ``(4H,)`` or None, scale ``(4H,)``. Returns the
    ``(T*B, 4H)`` scaled pre-activations of the input side and the ``[x | 1]`` matrix
    (just ``x2`` without a bias) that the backward multiplies for ``[dW_ih | db]``.
    """
    rows, I = x2.shape
    if bias is None:
        return x2 @ (w_ih * scale[:, None]).T, x2
    x_ones = xp.empty((rows, I + 1), dtype=x2.dtype)
    x_ones[:, :I] = x2
    x_ones[:, I] = 1
    w = xp.empty((w_ih.shape[0], I + 1), dtype=x2.dtype)
    xp.multiply(w_ih, scale[:, None], out=w[:, :I])
    xp.multiply(bias, scale, out=w[:, I])
    return x_ones @ w.T, x_ones


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
    step_kernel = backend.elementwise_kernel(FORWARD_KERNEL, xp)
    scale = _pre_activation_scale(H, x.dtype, xp, exp_form=step_kernel is None)
    bias = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih + b_hh)
    gates, x_ones = _input_projection(x.reshape(T * B, I), w_ih, bias, scale, xp)
    gates = gates.reshape(T, B, 4 * H)
    w_hh_t = (w_hh * scale[:, None]).T          # (H, 4H), the same rows scaled

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
    if step_kernel is None:
        _forward_steps(xp, gates, w_hh_t, h_prev, h_out, c_prev, c_out, tanh_c, buf, steps, mask)
    else:
        for t in steps:
            xp.matmul(h_prev[t], w_hh_t, out=buf)
            gates[t] += buf
            step_kernel(c_prev[t], H, c_out[t], h_out[t], tanh_c[t], gates[t])
            if mask is not None:
                _carry_masked(xp, mask[t], h_out[t], h_prev[t], c_out[t], c_prev[t])
    h_n, c_n = (hs[0], cs[0]) if reverse else (hs[T], cs[T])
    y = h_out if mask is None else xp.where(mask, h_out, 0).astype(x.dtype, copy=False)
    saved = LSTMSaved(x_ones, w_ih, w_hh, gates, h_prev, c_prev, tanh_c, mask, reverse,
                      bias is not None)
    return y, h_n.copy(), c_n.copy(), saved


def _carry_masked(xp, mask_t, h_out, h_prev, c_out, c_prev):
    """Padded sequences (mask False) keep the state they entered the step with."""
    keep = ~mask_t
    xp.copyto(h_out, h_prev, where=keep)
    xp.copyto(c_out, c_prev, where=keep)


def _forward_steps(xp, gates, w_hh_t, h_prev, h_out, c_prev, c_out, tanh_c, buf, steps, mask):
    """The NumPy time loop: 11 calls a step on preallocated buffers, gates in place.

    ``gates`` holds the exp-form pre-activations of the input side; each step adds
    ``h @ W_hh^T``, turns its ``(B, 4H)`` block into ``[i | f | g | o]`` with one ``exp``
    and updates the states.
    """
    H = h_prev.shape[-1]
    numerator = xp.ones((4, H), dtype=gates.dtype)
    numerator[2] = 2                              # 2 / (1 + exp(-2a)) = 1 + tanh(a)
    numerator = numerator.reshape(-1)
    i_all, f_all, g_all, o_all = (gates[..., k * H:(k + 1) * H] for k in range(4))
    ig = buf[:, :H]
    # exp(-a) overflows to inf for a < -88 (float32): 1 / (1 + inf) = 0 is the exact limit
    with xp.errstate(over="ignore"):
        for t in steps:
            a = gates[t]
            xp.matmul(h_prev[t], w_hh_t, out=buf)
            a += buf
            xp.exp(a, out=a)
            a += 1
            xp.divide(numerator, a, out=a)        # i, f, o; and 1 + g
            g = g_all[t]
            g -= 1
            c = c_out[t]
            xp.multiply(f_all[t], c_prev[t], out=c)
            xp.multiply(i_all[t], g, out=ig)
            c += ig
            tc = tanh_c[t]
            xp.tanh(c, out=tc)
            xp.multiply(o_all[t], tc, out=h_out[t])
            if mask is not None:
                _carry_masked(xp, mask[t], h_out[t], h_prev[t], c, c_prev[t])


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
    step_kernel = backend.elementwise_kernel(BACKWARD_KERNEL, xp)
    d_gates = xp.empty_like(acts)
    dh = xp.zeros((B, H), dtype=acts.dtype) if dh_n is None else dh_n.astype(acts.dtype, copy=True)
    dc = xp.zeros((B, H), dtype=acts.dtype) if dc_n is None else dc_n.astype(acts.dtype, copy=True)
    if dy is not None and step_kernel is None and not dy.any():
        dy = None       # the engine's zeros for an unused output: skip T additions
    steps = range(T) if saved.reverse else range(T - 1, -1, -1)
    if step_kernel is None:
        _backward_steps(xp, saved, d_gates, dy, dh, dc, steps)
    else:
        dct = xp.empty_like(dh)
        for t in steps:
            carry = _enter_backward_step(xp, mask, t, dy, dh, dc)
            step_kernel(acts[t], c_prev[t], tanh_c[t], dh, dc, H, dct, d_gates[t])
            dc, dct = dct, dc
            xp.matmul(d_gates[t], saved.w_hh, out=dh)
            if carry is not None:
                dh += carry[0]
                dc += carry[1]

    dg2 = d_gates.reshape(T * B, G)
    dw_hh = dg2.T @ h_prev.reshape(T * B, H)     # all steps' recurrent gradient in one GEMM
    dw_x = dg2.T @ saved.x_ones                  # [dW_ih | db] with a bias, else dW_ih
    I = saved.w_ih.shape[1]
    if saved.bias:
        dw_ih, db = xp.ascontiguousarray(dw_x[:, :I]), xp.ascontiguousarray(dw_x[:, I])
    else:
        dw_ih, db = dw_x, dg2.sum(axis=0)
    dx = (dg2 @ saved.w_ih).reshape(T, B, -1) if need_dx else None
    return dx, dh, dc, dw_ih, dw_hh, db


def _enter_backward_step(xp, mask, t, dy, dh, dc):
    """Adds the output gradient ``dy[t]`` into ``dh`` and, for a masked step, sets aside
    the gradient that passes a padded sequence by (returned, added back after the step)."""
    if mask is None:
        if dy is not None:
            dh += dy[t]
        return None
    keep = ~mask[t]
    carry = dh * keep, dc * keep
    if dy is not None:
        dh += dy[t]
    dh *= mask[t]
    dc *= mask[t]
    return carry


def _backward_steps(xp, saved, d_gates, dy, dh, dc, steps):
    """The NumPy backward time loop: 16 calls and one GEMM a step, all on ``(B, 4H)`` and
    ``(B, H)`` blocks that stay in cache; ``dh`` and ``dc`` are updated in place."""
    acts, c_prev, tanh_c, w_hh = saved.acts, saved.c_prev, saved.tanh_c, saved.w_hh
    T, B, G = acts.shape
    H = G // 4
    i_all, f_all, g_all, o_all = (acts[..., k * H:(k + 1) * H] for k in range(4))
    d_gates4 = d_gates.reshape(T, B, 4, H)
    factor = xp.empty((B, 4 * H), dtype=acts.dtype)
    factor4 = factor.reshape(B, 4, H)
    f_i, f_f, f_g, f_o = (factor4[:, k] for k in range(4))
    dct = xp.empty_like(dh)
    dct3 = dct[:, None, :]
    for t in steps:
        carry = _enter_backward_step(xp, saved.mask, t, dy, dh, dc)
        a, i, g, o, tc = acts[t], i_all[t], g_all[t], o_all[t], tanh_c[t]
        # factor = [g i(1-i), c f(1-f), i (1-g^2), tanh_c o(1-o)]
        xp.multiply(a, a, out=factor)
        xp.subtract(a, factor, out=factor)        # s (1 - s), every block (g's is replaced)
        xp.multiply(g, g, out=f_g)
        xp.subtract(1, f_g, out=f_g)
        f_i *= g
        f_f *= c_prev[t]
        f_g *= i
        f_o *= tc
        # dc_total = dc + dh o (1 - tanh_c^2)
        xp.multiply(tc, tc, out=dct)
        xp.subtract(1, dct, out=dct)
        dct *= o
        dct *= dh
        dct += dc
        d4 = d_gates4[t]
        xp.multiply(factor4[:, :3], dct3, out=d4[:, :3])
        xp.multiply(f_o, dh, out=d4[:, 3])
        xp.multiply(dct, f_all[t], out=dc)
        xp.matmul(d_gates[t], w_hh, out=dh)
        if carry is not None:
            dh += carry[0]
            dc += carry[1]
