"""GRU and plain (Elman) RNN layers on raw arrays, forward and backward through time.

GRU, PyTorch's gate order r, z, n (weights stacked in blocks of ``H`` rows)::

    gx = x @ W_ih^T + b_ih              gh = h @ W_hh^T + b_hh          (B, 3H) each
    r = sigmoid(gx_r + gh_r)            z = sigmoid(gx_z + gh_z)
    n = tanh(gx_n + r * gh_n)           # b_hn sits inside r * (...), as in PyTorch
    h' = (1 - z) * n + z * h  =  n + z * (h - n)

Backward of one step given ``dh'``::

    da_n = dh' (1 - z) (1 - n^2)
    da_r = da_n * gh_n * r (1 - r)       da_z = dh' (h - n) z (1 - z)
    d gx = [da_r, da_z, da_n]            d gh = [da_r, da_z, da_n * r]
    dh = dh' * z + d gh @ W_hh

Elman RNN: ``h' = act(x @ W_ih^T + b_ih + h @ W_hh^T + b_hh)`` with act = tanh or relu;
``da = dh' * act'(.)``, ``dh = da @ W_hh``.

One GEMM projects all inputs, one GEMM per step runs the recurrence, the factors that do
not depend on the gradient are computed for all steps before the backward loop, and the
weight gradients are single GEMMs after it. The ``mask`` convention (``(T, B, 1)`` bool,
False = padded step that carries the state) is :mod:`tinynet.kernels.lstm`'s.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import backend
from .lstm import gate_scale

__all__ = ["GRUSaved", "gru_layer_forward", "gru_layer_backward",
           "RNNSaved", "rnn_layer_forward", "rnn_layer_backward"]


def _order(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


def _state_views(xp, T, B, H, dtype, h0, reverse):
    hs = xp.empty((T + 1, B, H), dtype=dtype)
    hs[T if reverse else 0] = h0
    h_out, h_prev = (hs[:T], hs[1:]) if reverse else (hs[1:], hs[:T])
    return hs, h_out, h_prev


class GRUSaved(NamedTuple):
    x2: object      # (T*B, I)
    w_ih: object    # (3H, I)
    w_hh: object    # (3H, H)
    acts: object    # (T, B, 3H) [r | z | n]
    gh: object      # (T, B, 3H) h @ W_hh^T + b_hh (only the n block is used: gh_n)
    h_prev: object  # (T, B, H)
    mask: object
    reverse: bool


def gru_layer_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False, mask=None):
    """One GRU layer, one direction. x ``(T, B, I)``, h0 ``(B, H)``; returns y, h_n, saved."""
    xp = backend.get_array_module(x, w_ih, w_hh)
    T, B, I = x.shape
    H = w_hh.shape[1]
    scale = gate_scale(H, x.dtype, xp, sigmoid_blocks=(0, 1), blocks=3)
    x2 = x.reshape(T * B, I)
    gx = (x2 @ (w_ih * scale[:, None]).T).reshape(T, B, 3 * H)
    if b_ih is not None:
        gx += b_ih * scale
    w_hh_t = (w_hh * scale[:, None]).T
    b_hh_s = None if b_hh is None else b_hh * scale
    acts = xp.empty((T, B, 3 * H), dtype=x.dtype)
    gh = xp.empty((T, B, 3 * H), dtype=x.dtype)
    hs, h_out, h_prev = _state_views(xp, T, B, H, x.dtype, h0, reverse)
    for t in _order(T, reverse):
        xp.matmul(h_prev[t], w_hh_t, out=gh[t])
        if b_hh_s is not None:
            gh[t] += b_hh_s
        a = acts[t]
        rz = a[:, :2 * H]
        xp.add(gx[t, :, :2 * H], gh[t, :, :2 * H], out=rz)
        xp.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        xp.multiply(r, gh[t, :, 2 * H:], out=n)
        n += gx[t, :, 2 * H:]
        xp.tanh(n, out=n)
        ht = h_out[t]
        xp.subtract(h_prev[t], n, out=ht)
        ht *= z
        ht += n
        if mask is not None:
            xp.copyto(ht, h_prev[t], where=~mask[t])
    h_n = hs[0] if reverse else hs[T]
    y = h_out if mask is None else xp.where(mask, h_out, 0).astype(x.dtype, copy=False)
    return y, h_n.copy(), GRUSaved(x2, w_ih, w_hh, acts, gh, h_prev, mask, reverse)


def gru_layer_backward(saved: GRUSaved, dy=None, dh_n=None, need_dx: bool = True):
    """Returns ``dx (T, B, I), dh0 (B, H), dw_ih, dw_hh, db_ih, db_hh``."""
    acts, h_prev, mask = saved.acts, saved.h_prev, saved.mask
    xp = backend.get_array_module(acts)
    T, B, G = acts.shape
    H = G // 3
    r, z, n = acts[..., :H], acts[..., H:2 * H], acts[..., 2 * H:]
    gh_n = saved.gh[..., 2 * H:]
    f_n = (1 - z) * (1 - n * n)                 # da_n = dh * f_n
    f_r = (1 - r) * r * gh_n                    # da_r = da_n * f_r
    f_z = (1 - z) * z * (h_prev - n)            # da_z = dh * f_z
    d_gx = xp.empty_like(acts)
    d_gh = xp.empty_like(acts)
    dh = xp.zeros((B, H), dtype=acts.dtype) if dh_n is None else dh_n.astype(acts.dtype, copy=True)
    tmp = xp.empty_like(dh)
    w_hh = saved.w_hh
    for t in _order(T, not saved.reverse):
        if mask is not None:
            carry = dh * ~mask[t]
            if dy is not None:
                dh += dy[t]
            dh *= mask[t]
        elif dy is not None:
            dh += dy[t]
        dgx, dgh = d_gx[t], d_gh[t]
        da_n = dgx[:, 2 * H:]
        xp.multiply(dh, f_n[t], out=da_n)
        xp.multiply(da_n, f_r[t], out=dgx[:, :H])
        xp.multiply(dh, f_z[t], out=dgx[:, H:2 * H])
        dgh[:, :2 * H] = dgx[:, :2 * H]
        xp.multiply(da_n, r[t], out=dgh[:, 2 * H:])
        xp.multiply(dh, z[t], out=tmp)
        xp.matmul(dgh, w_hh, out=dh)
        dh += tmp
        if mask is not None:
            dh += carry
    gx2, gh2 = d_gx.reshape(T * B, G), d_gh.reshape(T * B, G)
    dw_hh = gh2.T @ h_prev.reshape(T * B, H)
    dw_ih = gx2.T @ saved.x2
    dx = (gx2 @ saved.w_ih).reshape(T, B, -1) if need_dx else None
    return dx, dh, dw_ih, dw_hh, gx2.sum(axis=0), gh2.sum(axis=0)


class RNNSaved(NamedTuple):
    x2: object
    w_ih: object
    w_hh: object
    h_out: object   # (T, B, H) new states before masking decisions (the activations)
    h_prev: object
    mask: object
    reverse: bool
    relu: bool


def rnn_layer_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh",
                      reverse=False, mask=None):
    """One Elman RNN layer, one direction; returns y, h_n, saved."""
    xp = backend.get_array_module(x, w_ih, w_hh)
    T, B, I = x.shape
    H = w_hh.shape[1]
    x2 = x.reshape(T * B, I)
    gx = (x2 @ w_ih.T).reshape(T, B, H)
    for b in (b_ih, b_hh):
        if b is not None:
            gx += b
    w_hh_t = w_hh.T
    relu = nonlinearity == "relu"
    act = xp.empty((T, B, H), dtype=x.dtype)
    hs, h_out, h_prev = _state_views(xp, T, B, H, x.dtype, h0, reverse)
    for t in _order(T, reverse):
        a = act[t]
        xp.matmul(h_prev[t], w_hh_t, out=a)
        a += gx[t]
        if relu:
            xp.maximum(a, 0, out=a)
        else:
            xp.tanh(a, out=a)
        if mask is None:
            h_out[t] = a
        else:
            xp.copyto(h_out[t], xp.where(mask[t], a, h_prev[t]))
    h_n = hs[0] if reverse else hs[T]
    y = h_out if mask is None else xp.where(mask, act, 0).astype(x.dtype, copy=False)
    return y, h_n.copy(), RNNSaved(x2, w_ih, w_hh, act, h_prev, mask, reverse, relu)


def rnn_layer_backward(saved: RNNSaved, dy=None, dh_n=None, need_dx: bool = True):
    """Returns ``dx, dh0, dw_ih, dw_hh, db`` (db is the gradient of both biases)."""
    act, h_prev, mask = saved.h_out, saved.h_prev, saved.mask
    xp = backend.get_array_module(act)
    T, B, H = act.shape
    deriv = (act > 0).astype(act.dtype) if saved.relu else 1 - act * act
    d_a = xp.empty_like(act)
    dh = xp.zeros((B, H), dtype=act.dtype) if dh_n is None else dh_n.astype(act.dtype, copy=True)
    for t in _order(T, not saved.reverse):
        if mask is not None:
            carry = dh * ~mask[t]
            if dy is not None:
                dh += dy[t]
            dh *= mask[t]
        elif dy is not None:
            dh += dy[t]
        xp.multiply(dh, deriv[t], out=d_a[t])
        xp.matmul(d_a[t], saved.w_hh, out=dh)
        if mask is not None:
            dh += carry
    a2 = d_a.reshape(T * B, H)
    dw_hh = a2.T @ h_prev.reshape(T * B, H)
    dw_ih = a2.T @ saved.x2
    dx = (a2 @ saved.w_ih).reshape(T, B, -1) if need_dx else None
    return dx, dh, dw_ih, dw_hh, a2.sum(axis=0)
