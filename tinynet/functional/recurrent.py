"""Recurrent ops: LSTM, GRU and Elman-RNN cells and whole-sequence layers.

Each layer op (``lstm_layer``, ``gru_layer``, ``rnn_layer``) is one ``Function`` for one
layer in one direction over a whole ``(T, B, I)`` sequence. Its forward runs the time loop
on raw arrays (:mod:`tinynet.kernels.lstm`, :mod:`tinynet.kernels.gru`): one GEMM for the
input projection of all steps, one ``h @ W_hh^T`` GEMM and fused gate math per step.

Backward has two paths:

* ``create_graph=False`` (the engine runs backward under ``no_grad``): backward through
  time on raw arrays, with ``dW_ih``, ``dW_hh``, the biases and ``dx`` as single GEMMs after
  the loop.
* ``create_graph=True`` (grad mode on inside backward): the same BPTT equations written
  with tinynet ops, recomputing the forward states with ops, so the returned gradients are
  themselves differentiable (double backward, gradgradcheck). Slower; meant for
  higher-order derivatives, not training.

The cells are the layer ops with one time step, so the registry's gradcheck and
gradgradcheck of the cells exercise both paths.

``bidirectional_layer`` puts both directions of a bidirectional layer in one node: they
read the same input and share nothing else, so its forward runs the two time loops side
by side (``backend.parallel_for``, one core each, every GEMM on one BLAS thread), and so
does its first-order backward. Each loop's small per-step GEMMs use one core about as
well as two (a (512, 193) x (193, 32) product took 26 µs on 2 threads and 42 on 1), so
two loops at once finish sooner than one after the other.
"""
from __future__ import annotations

from .. import backend
from ..autograd import Function, is_grad_enabled, depends_on
from ..tensor import Tensor
from ..kernels import lstm as _lstm
from ..kernels import gru as _gru
from ._operands import check_tensor, check_same_device
from .activation import sigmoid, tanh
from .linalg import linear
from .shape import cat, stack, reshape, transpose
from .reduction import sum as _sum

__all__ = ["lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell",
           "lstm_layer", "gru_layer", "rnn_layer", "bidirectional_layer"]


# ------------------------------------------------------------------ validation
def _check_weights(op, x, h, w_ih, w_hh, b_ih, b_hh, gates, suffix="", w_hr=None):
    """Checks shapes/dtypes/devices of one layer's arguments and returns hidden_size H.

    x ``(..., I)``, w_ih ``(gates*H, I)``, w_hh ``(gates*H, H)``, biases ``(gates*H,)``; ``h``
    maps the states' names to the states (their shapes are the caller's to check). With an
    LSTM projection ``w_hr`` ``(P, H)``, w_hh is ``(gates*H, P)`` (it reads the projected
    state). ``suffix`` follows the weights' names in messages (``"_reverse"``: the reverse
    direction's)."""
    n_ih, n_hh, n_hr = "w_ih" + suffix, "w_hh" + suffix, "w_hr" + suffix
    check_tensor(x, op, "input", floating=True)
    check_tensor(w_ih, op, n_ih, ndim=2, floating=True)
    check_tensor(w_hh, op, n_hh, ndim=2, floating=True)
    if w_hr is None:
        H = w_hh.shape[1]
        if w_hh.shape[0] != gates * H:
            raise ValueError(f"{op}: {n_hh} must have shape ({gates}*hidden_size, hidden_size) = "
                             f"({gates * H}, {H}), got {tuple(w_hh.shape)}")
    else:                   # w_hh (gates*H, P) gives H and P; w_hr must be (P, H)
        check_tensor(w_hr, op, n_hr, ndim=2, floating=True)
        H, P = w_hh.shape[0] // gates, w_hh.shape[1]
        if w_hh.shape[0] % gates or H == 0:
            raise ValueError(f"{op}: {n_hh} must have shape ({gates}*hidden_size, proj_size), "
                             f"got {tuple(w_hh.shape)}")
        if tuple(w_hr.shape) != (P, H):
            raise ValueError(f"{op}: {n_hr} must have shape (proj_size, hidden_size) = ({P}, {H}) "
                             f"({n_hh} is ({gates}*{H}, {P})), got {tuple(w_hr.shape)}")
    if w_ih.shape[0] != gates * H:
        raise ValueError(f"{op}: {n_ih} has {w_ih.shape[0]} rows but {n_hh} implies {gates}*hidden_size "
                         f"= {gates * H}")
    if x.shape[-1] != w_ih.shape[1]:
        raise ValueError(f"{op}: input has {x.shape[-1]} features but {n_ih} expects "
                         f"input_size={w_ih.shape[1]} (input shape {tuple(x.shape)})")
    for name, b in (("b_ih" + suffix, b_ih), ("b_hh" + suffix, b_hh)):
        if b is not None:
            check_tensor(b, op, name, floating=True)
            if tuple(b.shape) != (gates * H,):
                raise ValueError(f"{op}: {name} must have shape ({gates * H},), got {tuple(b.shape)}")
    tensors = {"input": x, n_ih: w_ih, n_hh: w_hh, "b_ih" + suffix: b_ih, "b_hh" + suffix: b_hh}
    if w_hr is not None:
        tensors[n_hr] = w_hr
    for name, t in h.items():
        check_tensor(t, op, name, floating=True)
        tensors[name] = t
    check_same_device(op, **tensors)
    dtypes = {k: t.dtype for k, t in tensors.items() if t is not None}
    if len(set(dtypes.values())) > 1:
        raise TypeError(f"{op}: all arguments must have one dtype, got "
                        + ", ".join(f"{k}={v}" for k, v in dtypes.items()))
    return H


def _check_state(op, name, t, batch, size, size_name="hidden_size"):
    want = (batch, size)
    if tuple(t.shape) != want:
        raise ValueError(f"{op}: expected {name} of shape {want} (batch, {size_name}), got "
                         f"{tuple(t.shape)}")


def _mask_from_lengths(op, lengths, T, B, x):
    """``(T, B, 1)`` bool mask on x's device, after checking ``lengths``; None for None."""
    if lengths is None:
        return None
    np = backend.numpy
    if isinstance(lengths, Tensor):
        lengths = lengths.data
    arr = np.asarray(backend.asnumpy(lengths) if not isinstance(lengths, (list, tuple)) else lengths)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise ValueError(f"{op}: lengths must be a 1-D sequence of integers, got "
                         f"{arr.dtype} array of shape {arr.shape}")
    if arr.shape[0] != B:
        raise ValueError(f"{op}: lengths has {arr.shape[0]} entries but the batch has {B} sequences")
    if arr.size and (arr.min() < 1 or arr.max() > T):
        raise ValueError(f"{op}: every length must be in [1, {T}] (the padded sequence length), "
                         f"got min {arr.min()} and max {arr.max()}")
    if (arr == T).all():
        return None
    return backend.to_device(_lstm.length_mask(arr, T, np), x.device)


def _data(t):
    return None if t is None else t.data


def _wrap(a):
    return None if a is None else Tensor(a)


# ------------------------------------------------------------------ op-written BPTT
def _steps(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


def _mask_tensor(mask, t, dtype):
    return None if mask is None else Tensor(mask[t].astype(dtype))


def _masked(m, new, old):
    return new if m is None else m * new + (1 - m) * old


def _finish_ops(x, w_ih, d_gx_list, h_prev_list, T, b_ih, b_hh, d_gh_list=None):
    """Input-side gradients from per-step gate gradients, written with ops."""
    d_gx = stack(d_gx_list)                                     # (T, B, G)
    G = d_gx.shape[-1]
    d_gx2 = reshape(d_gx, T * x.shape[1], G)
    d_gh2 = d_gx2 if d_gh_list is None else reshape(stack(d_gh_list), T * x.shape[1], G)
    h_prev2 = reshape(stack(h_prev_list), T * x.shape[1], -1)
    dw_hh = transpose(d_gh2, 0, 1) @ h_prev2
    dw_ih = transpose(d_gx2, 0, 1) @ reshape(x, T * x.shape[1], -1)
    dx = d_gx @ w_ih
    db_ih = None if b_ih is None else _sum(d_gx2, 0)
    db_hh = None if b_hh is None else _sum(d_gh2, 0)
    return dx, dw_ih, dw_hh, db_ih, db_hh


def _lstm_bptt_ops(x, h0, c0, w_ih, w_hh, b_ih, b_hh, dy, dh, dc, reverse, mask):
    T, H = x.shape[0], w_hh.shape[1]
    gx = linear(x, w_ih, b_ih)
    saved = [None] * T
    h, c = h0, c0
    for t in _steps(T, reverse):
        a = gx[t] + h @ transpose(w_hh, 0, 1)
        if b_hh is not None:
            a = a + b_hh
        i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
        g, o = tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
        c_new = f * c + i * g
        tc = tanh(c_new)
        m = _mask_tensor(mask, t, x.dtype)
        saved[t] = (h, c, i, f, g, o, tc, m)
        h, c = _masked(m, o * tc, h), _masked(m, c_new, c)
    d_gates = [None] * T
    for t in _steps(T, not reverse):
        h_prev, c_prev, i, f, g, o, tc, m = saved[t]
        carry_h, carry_c = dh, dc
        if dy is not None:
            dh = dh + dy[t]
        if m is not None:
            dh, dc = dh * m, dc * m
        dct = dc + dh * o * (1 - tc * tc)
        da = cat([dct * g * i * (1 - i), dct * c_prev * f * (1 - f),
                  dct * i * (1 - g * g), dh * tc * o * (1 - o)], 1)
        d_gates[t] = da
        dc, dh = dct * f, da @ w_hh
        if m is not None:
            dh, dc = dh + carry_h * (1 - m), dc + carry_c * (1 - m)
    dx, dw_ih, dw_hh, db_ih, db_hh = _finish_ops(x, w_ih, d_gates, [s[0] for s in saved], T, b_ih, b_hh)
    return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh


def _gru_bptt_ops(x, h0, w_ih, w_hh, b_ih, b_hh, dy, dh, reverse, mask):
    T, H = x.shape[0], w_hh.shape[1]
    gx = linear(x, w_ih, b_ih)
    saved = [None] * T
    h = h0
    for t in _steps(T, reverse):
        gh = linear(h, w_hh, b_hh)
        r = sigmoid(gx[t][:, :H] + gh[:, :H])
        z = sigmoid(gx[t][:, H:2 * H] + gh[:, H:2 * H])
        n = tanh(gx[t][:, 2 * H:] + r * gh[:, 2 * H:])
        m = _mask_tensor(mask, t, x.dtype)
        saved[t] = (h, r, z, n, gh[:, 2 * H:], m)
        h = _masked(m, n + z * (h - n), h)
    d_gx, d_gh = [None] * T, [None] * T
    for t in _steps(T, not reverse):
        h_prev, r, z, n, gh_n, m = saved[t]
        carry = dh
        if dy is not None:
            dh = dh + dy[t]
        if m is not None:
            dh = dh * m
        da_n = dh * (1 - z) * (1 - n * n)
        da_r = da_n * gh_n * r * (1 - r)
        da_z = dh * (h_prev - n) * z * (1 - z)
        d_gx[t] = cat([da_r, da_z, da_n], 1)
        d_gh[t] = cat([da_r, da_z, da_n * r], 1)
        dh = dh * z + d_gh[t] @ w_hh
        if m is not None:
            dh = dh + carry * (1 - m)
    dx, dw_ih, dw_hh, db_ih, db_hh = _finish_ops(x, w_ih, d_gx, [s[0] for s in saved], T, b_ih, b_hh, d_gh)
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


def _rnn_bptt_ops(x, h0, w_ih, w_hh, b_ih, b_hh, dy, dh, relu, reverse, mask):
    T = x.shape[0]
    gx = linear(x, w_ih, b_ih)
    saved = [None] * T
    h = h0
    for t in _steps(T, reverse):
        a = gx[t] + linear(h, w_hh, b_hh)
        if relu:
            # relu' is a constant mask (its own derivative is zero almost everywhere).
            deriv = depends_on(Tensor((a.data > 0).astype(x.dtype)), a)
            h_new = a * deriv
        else:
            h_new = tanh(a)
            deriv = 1 - h_new * h_new
        m = _mask_tensor(mask, t, x.dtype)
        saved[t] = (h, deriv, m)
        h = _masked(m, h_new, h)
    d_a = [None] * T
    for t in _steps(T, not reverse):
        h_prev, deriv, m = saved[t]
        carry = dh
        if dy is not None:
            dh = dh + dy[t]
        if m is not None:
            dh = dh * m
        d_a[t] = dh * deriv
        dh = d_a[t] @ w_hh
        if m is not None:
            dh = dh + carry * (1 - m)
    dx, dw_ih, dw_hh, db_ih, db_hh = _finish_ops(x, w_ih, d_a, [s[0] for s in saved], T, b_ih, b_hh)
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


# ------------------------------------------------------------------ Functions
# With ``cell=True`` a layer Function is one step: x (B, I) or (I,), states (B, H) or (H,),
# and the outputs are the new states only. The reshapes happen on arrays inside the
# Function (not as separate ops) so that the cell's inputs are the caller's tensors.
def _as_sequence(x, states, cell):
    if not cell:
        return x, states
    H = states[0].shape[-1]
    return x.reshape(1, -1, x.shape[-1]), [s.reshape(-1, H) for s in states]


def _sequence_views(x, states, state_grads, cell):
    """The op-built (create_graph) path's view of a cell as a one-step sequence:
    x (1, B, I), states and their gradients (B, H). Layers pass through unchanged."""
    if not cell:
        return x, tuple(states), tuple(state_grads)
    H = states[0].shape[-1]
    return (reshape(x, 1, -1, x.shape[-1]), tuple(reshape(s, -1, H) for s in states),
            tuple(reshape(g, -1, H) for g in state_grads))


def _grads_to_cell(grads, x, states, cell):
    """Reshapes (dx, d_state...) of a one-step sequence back to the cell's shapes."""
    if not cell:
        return grads
    dx, *ds = grads
    dx = None if dx is None else reshape(dx, *x.shape)
    return (dx, *[reshape(d, *s.shape) for d, s in zip(ds, states)])


class LSTMLayer(Function):
    """x (T,B,I), h0, c0 (B,H), w_ih (4H,I), w_hh (4H,H), b_ih, b_hh (4H,) or None."""

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False, mask=None, cell=False):
        x3, (h2, c2) = _as_sequence(x, [h0, c0], cell)
        y, h_n, c_n, self.saved = _lstm.lstm_layer_forward(x3, h2, c2, w_ih, w_hh, b_ih, b_hh,
                                                           reverse=reverse, mask=mask)
        self.reverse, self.mask, self.cell = reverse, mask, cell
        if cell:
            return h_n.reshape(h0.shape), c_n.reshape(c0.shape)
        return y, h_n, c_n

    def backward(self, *grads):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = self.inputs
        dy, dh_n, dc_n = (None,) + grads if self.cell else grads
        if is_grad_enabled():
            x3, (h2, c2), (dh_n, dc_n) = _sequence_views(x, (h0, c0), (dh_n, dc_n), self.cell)
            dx, dh0, dc0, *rest = _lstm_bptt_ops(x3, h2, c2, w_ih, w_hh, b_ih, b_hh, dy, dh_n,
                                                 dc_n, self.reverse, self.mask)
        else:
            H = w_hh.shape[1]
            dx, dh0, dc0, dw_ih, dw_hh, db = _lstm.lstm_layer_backward(
                self.saved, _data(dy), dh_n.data.reshape(-1, H), dc_n.data.reshape(-1, H),
                need_dx=self.needs_input_grad[0])
            db = Tensor(db)
            dx, dh0, dc0 = _wrap(dx), Tensor(dh0), Tensor(dc0)
            rest = (Tensor(dw_ih), Tensor(dw_hh), None if b_ih is None else db,
                    None if b_hh is None else db)
        return (*_grads_to_cell((dx, dh0, dc0), x, (h0, c0), self.cell), *rest)


class GRULayer(Function):
    """x (T,B,I), h0 (B,H), w_ih (3H,I), w_hh (3H,H), b_ih, b_hh (3H,) or None."""

    def forward(self, x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False, mask=None, cell=False):
        x3, (h2,) = _as_sequence(x, [h0], cell)
        y, h_n, self.saved = _gru.gru_layer_forward(x3, h2, w_ih, w_hh, b_ih, b_hh,
                                                    reverse=reverse, mask=mask)
        self.reverse, self.mask, self.cell = reverse, mask, cell
        return h_n.reshape(h0.shape) if cell else (y, h_n)

    def backward(self, *grads):
        x, h0, w_ih, w_hh, b_ih, b_hh = self.inputs
        dy, dh_n = (None,) + grads if self.cell else grads
        if is_grad_enabled():
            x3, (h2,), (dh_n,) = _sequence_views(x, (h0,), (dh_n,), self.cell)
            dx, dh0, *rest = _gru_bptt_ops(x3, h2, w_ih, w_hh, b_ih, b_hh, dy, dh_n,
                                           self.reverse, self.mask)
        else:
            dx, dh0, dw_ih, dw_hh, db_ih, db_hh = _gru.gru_layer_backward(
                self.saved, _data(dy), dh_n.data.reshape(-1, w_hh.shape[1]),
                need_dx=self.needs_input_grad[0])
            dx, dh0 = _wrap(dx), Tensor(dh0)
            rest = (Tensor(dw_ih), Tensor(dw_hh), None if b_ih is None else Tensor(db_ih),
                    None if b_hh is None else Tensor(db_hh))
        return (*_grads_to_cell((dx, dh0), x, (h0,), self.cell), *rest)


class RNNLayer(Function):
    """x (T,B,I), h0 (B,H), w_ih (H,I), w_hh (H,H), b_ih, b_hh (H,) or None."""

    def forward(self, x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", reverse=False,
                mask=None, cell=False):
        x3, (h2,) = _as_sequence(x, [h0], cell)
        y, h_n, self.saved = _gru.rnn_layer_forward(x3, h2, w_ih, w_hh, b_ih, b_hh, nonlinearity,
                                                    reverse=reverse, mask=mask)
        self.relu, self.reverse, self.mask, self.cell = nonlinearity == "relu", reverse, mask, cell
        return h_n.reshape(h0.shape) if cell else (y, h_n)

    def backward(self, *grads):
        x, h0, w_ih, w_hh, b_ih, b_hh = self.inputs
        dy, dh_n = (None,) + grads if self.cell else grads
        if is_grad_enabled():
            x3, (h2,), (dh_n,) = _sequence_views(x, (h0,), (dh_n,), self.cell)
            dx, dh0, *rest = _rnn_bptt_ops(x3, h2, w_ih, w_hh, b_ih, b_hh, dy, dh_n, self.relu,
                                           self.reverse, self.mask)
        else:
            dx, dh0, dw_ih, dw_hh, db = _gru.rnn_layer_backward(
                self.saved, _data(dy), dh_n.data.reshape(-1, w_hh.shape[1]),
                need_dx=self.needs_input_grad[0])
            db = Tensor(db)
            dx, dh0 = _wrap(dx), Tensor(dh0)
            rest = (Tensor(dw_ih), Tensor(dw_hh), None if b_ih is None else db,
                    None if b_hh is None else db)
        return (*_grads_to_cell((dx, dh0), x, (h0,), self.cell), *rest)


class BidirectionalLayer(Function):
    """Both directions of one layer: ``layer`` (LSTMLayer, GRULayer or RNNLayer) forward and
    reverse over the same x, side by side.

    forward(x, *forward_args, *reverse_args): each direction's ``count`` states and weights
    as ``layer`` takes them after x. Returns the forward direction's outputs, then the
    reverse direction's. The two directions are two ``layer`` nodes kept inside this one;
    backward hands each its own inputs and output gradients, and x's gradient is the sum
    of theirs.
    """

    def forward(self, x, *args, layer=None, count=0, mask=None, **options):
        self.directions, self.count = (layer(), layer()), count
        self.work = _work_bytes(x, args[count - 3])      # args[count - 3]: the forward w_hh
        outputs = [None, None]

        def run(lo, hi):        # independent: each direction writes only its own outputs
            for d in range(lo, hi):
                outputs[d] = self.directions[d].forward(x, *args[d * count:(d + 1) * count],
                                                        reverse=bool(d), mask=mask, **options)
        backend.parallel_for(2, run, nbytes=self.work, like=x)
        return (*outputs[0], *outputs[1])

    def backward(self, *grads):
        x, count, half = self.inputs[0], self.count, len(grads) // 2
        for d, node in enumerate(self.directions):
            span = slice(1 + d * count, 1 + (d + 1) * count)
            node.inputs = (x,) + tuple(self.inputs[span])
            node.needs_input_grad = (self.needs_input_grad[0],) + tuple(self.needs_input_grad[span])
        results = [None, None]

        def run(lo, hi):
            for d in range(lo, hi):
                results[d] = self.directions[d].backward(*grads[d * half:(d + 1) * half])
        if is_grad_enabled():   # the op-written path records a graph: one direction at a time
            run(0, 2)
        else:
            backend.parallel_for(2, run, nbytes=self.work, like=x.data)
        (dx, *rest), (dx_reverse, *rest_reverse) = results
        if dx is None or dx_reverse is None:
            dx = dx if dx_reverse is None else dx_reverse
        else:
            dx = dx + dx_reverse
        return (dx, *rest, *rest_reverse)


def _work_bytes(x, w_hh):
    """Bytes of both directions' gates over the sequence (T·B·G·H values each): what
    decides whether the two run side by side (:func:`tinynet.backend.parallel_for`'s grain)."""
    return 2 * x.shape[0] * x.shape[1] * w_hh.shape[0] * x.itemsize


# ------------------------------------------------------------------ public layer ops
def _check_sequence(op, input):
    check_tensor(input, op, "input", floating=True)
    if input.ndim != 3:
        raise ValueError(f"{op}: expected input of shape (seq_len, batch, input_size), got shape "
                         f"{tuple(input.shape)}")
    if input.shape[0] < 1 or input.shape[1] < 1:
        raise ValueError(f"{op}: input must have at least one step and one sequence, got shape "
                         f"{tuple(input.shape)}")
    return input.shape[0], input.shape[1]


#: op name -> (its Function, the names of its states, gate blocks per hidden unit)
_LAYERS = {"lstm_layer": (LSTMLayer, ("h0", "c0"), 4), "gru_layer": (GRULayer, ("h0",), 3),
           "rnn_layer": (RNNLayer, ("h0",), 1)}


def _checked_layer(op, input, states, weights, lengths, name=None, suffix="", w_hr=None):
    """Checks one direction's arguments as the layer op ``op`` does, in messages that
    start with ``name`` (default ``op``) and name the states and weights with ``suffix``;
    returns the mask of ``lengths`` (None when every sequence is full). ``w_hr``: an LSTM
    projection ``(P, H)`` (``nn.LSTM(proj_size=P)``'s composed path): h0 is then ``(B, P)``."""
    _, names, gates = _LAYERS[op]
    name, names = name or op, [n + suffix for n in names]
    T, B = _check_sequence(name, input)
    H = _check_weights(name, input, dict(zip(names, states)), *weights, gates, suffix=suffix,
                       w_hr=w_hr)
    sizes = [("hidden_size", H)] * len(states)
    if w_hr is not None:                # the projected h0 has P features, c0 keeps H
        sizes[0] = ("proj_size", w_hr.shape[0])
    for state_name, state, (size_name, size) in zip(names, states, sizes):
        _check_state(name, state_name, state, B, size, size_name)
    return _mask_from_lengths(name, lengths, T, B, input)


def _check_nonlinearity(op, nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"{op}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def lstm_layer(input: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor,
               b_ih: Tensor | None = None, b_hh: Tensor | None = None, reverse: bool = False,
               lengths=None):
    """One LSTM layer, one direction, over a whole sequence (time-major).

    input ``(T, B, I)``, h0/c0 ``(B, H)``, w_ih ``(4H, I)``, w_hh ``(4H, H)``, biases
    ``(4H,)``. ``lengths`` (B ints in ``[1, T]``): steps ``t >= lengths[b]`` are padding;
    they carry the state, output zeros and get no gradient. ``reverse=True`` runs each
    sequence from its last valid step to step 0. Returns ``(output (T, B, H), h_n, c_n)``.

    >>> import tinynet as tn, tinynet.functional as F
    >>> x = tn.randn(7, 2, 3); h = tn.zeros(2, 4)
    >>> y, h_n, c_n = F.lstm_layer(x, h, h, tn.randn(16, 3), tn.randn(16, 4))
    >>> tuple(y.shape), tuple(h_n.shape)
    ((7, 2, 4), (2, 4))
    """
    mask = _checked_layer("lstm_layer", input, (h0, c0), (w_ih, w_hh, b_ih, b_hh), lengths)
    return LSTMLayer.apply(input, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=bool(reverse), mask=mask)


def gru_layer(input: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
              b_hh: Tensor | None = None, reverse: bool = False, lengths=None):
    """One GRU layer, one direction (see :func:`lstm_layer`); returns ``(output, h_n)``."""
    mask = _checked_layer("gru_layer", input, (h0,), (w_ih, w_hh, b_ih, b_hh), lengths)
    return GRULayer.apply(input, h0, w_ih, w_hh, b_ih, b_hh, reverse=bool(reverse), mask=mask)


def rnn_layer(input: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
              b_hh: Tensor | None = None, nonlinearity: str = "tanh", reverse: bool = False,
              lengths=None):
    """One Elman RNN layer, one direction (see :func:`lstm_layer`); returns ``(output, h_n)``."""
    _check_nonlinearity("rnn_layer", nonlinearity)
    mask = _checked_layer("rnn_layer", input, (h0,), (w_ih, w_hh, b_ih, b_hh), lengths)
    return RNNLayer.apply(input, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity=nonlinearity,
                          reverse=bool(reverse), mask=mask)


def bidirectional_layer(op: str, input: Tensor, states, weights, states_reverse, weights_reverse,
                        lengths=None, nonlinearity: str = "tanh"):
    """Both directions of one bidirectional layer, as one node whose two time loops run
    side by side (tinynet-specific; ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` use it with
    ``bidirectional=True``).

    ``op`` is ``"lstm_layer"``, ``"gru_layer"`` or ``"rnn_layer"``; ``states`` the initial
    states (``(h0, c0)`` or ``(h0,)``) and ``weights`` ``(w_ih, w_hh, b_ih, b_hh)`` of the
    forward direction, ``states_reverse`` and ``weights_reverse`` those of the reverse one;
    ``lengths`` and ``nonlinearity`` as for the single-direction ops. Returns
    ``(forward, reverse)``: what ``op`` returns for ``reverse=False`` and for
    ``reverse=True`` on the same input, equal to two calls of it (up to the rounding of
    GEMMs run on one thread instead of two).

    >>> import tinynet as tn, tinynet.functional as F
    >>> x, h = tn.randn(7, 2, 3), tn.zeros(2, 4)
    >>> w = [tn.randn(16, 3), tn.randn(16, 4), None, None]
    >>> (y, h_n, c_n), (y_r, h_r, c_r) = F.bidirectional_layer("lstm_layer", x, (h, h), w, (h, h), w)
    >>> tuple(y.shape), tuple(y_r.shape)
    ((7, 2, 4), (7, 2, 4))
    """
    if op not in _LAYERS:
        raise ValueError(f"bidirectional_layer: op must be one of {', '.join(map(repr, _LAYERS))}, "
                         f"got {op!r}")
    options = {}
    if op == "rnn_layer":
        _check_nonlinearity("bidirectional_layer", nonlinearity)
        options["nonlinearity"] = nonlinearity
    layer, names, _ = _LAYERS[op]
    states, states_reverse = tuple(states), tuple(states_reverse)
    weights, weights_reverse = tuple(weights), tuple(weights_reverse)
    for which, st, w in (("states", states, weights), ("states_reverse", states_reverse, weights_reverse)):
        if len(st) != len(names) or len(w) != 4:
            raise ValueError(f"bidirectional_layer: {op} takes {len(names)} states and 4 weights "
                             f"(w_ih, w_hh, b_ih, b_hh; biases may be None) per direction, got "
                             f"{len(st)} {which} and {len(w)} weights")
    mask = _checked_layer(op, input, states, weights, lengths, name="bidirectional_layer")
    _checked_layer(op, input, states_reverse, weights_reverse, None, name="bidirectional_layer",
                   suffix="_reverse")
    outputs = BidirectionalLayer.apply(input, *states, *weights, *states_reverse, *weights_reverse,
                                       layer=layer, count=len(states) + 4, mask=mask, **options)
    half = len(outputs) // 2
    return outputs[:half], outputs[half:]


# ------------------------------------------------------------------ cells
def _cell_input(op, input, states, w_ih, w_hh, b_ih, b_hh, gates):
    """Checks a cell's arguments: input (B, I) with states (B, H), or unbatched (I,), (H,)."""
    check_tensor(input, op, "input", floating=True)
    if input.ndim not in (1, 2):
        raise ValueError(f"{op}: expected input to be 1-D (input_size,) or 2-D (batch, "
                         f"input_size), got shape {tuple(input.shape)}")
    H = _check_weights(op, input, states, w_ih, w_hh, b_ih, b_hh, gates)
    want = (H,) if input.ndim == 1 else (input.shape[0], H)
    for name, s in states.items():
        if tuple(s.shape) != want:
            raise ValueError(f"{op}: expected {name} of shape {want}, got {tuple(s.shape)}")


def _cell_state(op, hx, input, w_hh, names):
    check_tensor(input, op, "input", floating=True)
    if hx is None:
        B = () if input.ndim == 1 else (input.shape[0],)
        z = Tensor(input.xp.zeros(B + (w_hh.shape[1],), dtype=input.dtype))
        return [z for _ in names]
    if len(names) == 1:
        return [hx]
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError(f"{op}: hx must be a tuple (h, c) of two Tensors, got {type(hx).__name__}")
    return list(hx)


def lstm_cell(input: Tensor, hx, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
              b_hh: Tensor | None = None):
    """One LSTM step: ``(h', c')`` from input ``(B, I)`` (or ``(I,)``) and ``hx = (h, c)``.

    Gates ``[i|f|g|o] = x W_ih^T + b_ih + h W_hh^T + b_hh``; ``c' = σ(f) c + σ(i) tanh(g)``,
    ``h' = σ(o) tanh(c')``. ``hx=None`` means zeros.

    >>> import tinynet as tn, tinynet.functional as F
    >>> h, c = F.lstm_cell(tn.randn(2, 3), (tn.zeros(2, 4), tn.zeros(2, 4)), tn.randn(16, 3), tn.randn(16, 4))
    >>> tuple(h.shape)
    (2, 4)
    """
    h, c = _cell_state("lstm_cell", hx, input, w_hh, ("h", "c"))
    _cell_input("lstm_cell", input, {"h": h, "c": c}, w_ih, w_hh, b_ih, b_hh, 4)
    return LSTMLayer.apply(input, h, c, w_ih, w_hh, b_ih, b_hh, cell=True)


def gru_cell(input: Tensor, hx: Tensor | None, w_ih: Tensor, w_hh: Tensor,
             b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> Tensor:
    """One GRU step (PyTorch's r, z, n; ``b_hn`` inside ``r * (W_hn h + b_hn)``)."""
    (h,) = _cell_state("gru_cell", hx, input, w_hh, ("h",))
    _cell_input("gru_cell", input, {"hx": h}, w_ih, w_hh, b_ih, b_hh, 3)
    return GRULayer.apply(input, h, w_ih, w_hh, b_ih, b_hh, cell=True)


def _rnn_cell(op, nonlinearity, input, hx, w_ih, w_hh, b_ih, b_hh):
    (h,) = _cell_state(op, hx, input, w_hh, ("h",))
    _cell_input(op, input, {"hx": h}, w_ih, w_hh, b_ih, b_hh, 1)
    return RNNLayer.apply(input, h, w_ih, w_hh, b_ih, b_hh, nonlinearity=nonlinearity, cell=True)


def rnn_tanh_cell(input: Tensor, hx: Tensor | None, w_ih: Tensor, w_hh: Tensor,
                  b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> Tensor:
    """One Elman step ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return _rnn_cell("rnn_tanh_cell", "tanh", input, hx, w_ih, w_hh, b_ih, b_hh)


def rnn_relu_cell(input: Tensor, hx: Tensor | None, w_ih: Tensor, w_hh: Tensor,
                  b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> Tensor:
    """One Elman step with ReLU: ``h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return _rnn_cell("rnn_relu_cell", "relu", input, hx, w_ih, w_hh, b_ih, b_hh)
