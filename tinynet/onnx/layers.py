"""Converters for layers that ONNX has as one op: ``BatchNorm1d/2d``, ``LSTM``, ``GRU``,
``RNN`` and their cells.

In eval mode tinynet computes batch norm as ``x·scale + shift`` with ``scale`` and
``shift`` folded from the running statistics, and an LSTM as transposes, fused layer ops
and stacks; exporting those ops one by one would be correct but unreadable, so the trace
records these modules whole (``Trace(opaque=...)``) and they become:

* ``BatchNorm*`` -> ``BatchNormalization(X, scale, B, input_mean, input_var, epsilon)``
  with the module's own parameters and buffers as initializers (ones/zeros when
  ``affine=False``).
* ``LSTM`` -> per layer one ``LSTM`` node (``direction`` forward or bidirectional) with
  ``W = [W_ih]``, ``R = [W_hh]``, ``B = [b_ih, b_hh]`` per direction, gate rows reordered
  from tinynet's (PyTorch's) i, f, g, o to ONNX's i, o, f, c. ONNX's ``Y`` is
  ``(T, D, B, H)``: ``Transpose(0, 2, 1, 3)`` and ``Reshape(0, 0, -1)`` give the next
  layer's ``(T, B, D·H)`` input; ``Y_h``/``Y_c`` of the layers are concatenated into
  ``h_n``/``c_n``. ``batch_first`` adds a ``Transpose(1, 0, 2)`` on the way in and out.
  No initial state given means ONNX's zeros (nothing batch-sized is baked in).
* ``GRU`` and ``RNN`` the same way, as ONNX's ``GRU`` (gates r, z, n -> z, r, h, and
  ``linear_before_reset=1``: PyTorch multiplies r into ``h W_hn^T + b_hn``, after the
  product) and ``RNN`` (``activations`` Tanh or Relu).
* ``LSTMCell``, ``GRUCell``, ``RNNCell``: the same op on a sequence of one step (a Python
  loop over a cell is unrolled by the trace into one such node per step).
* ``Embedding`` -> ``Gather(weight, ids, axis=0)`` (tinynet indexes with the ids' raw array,
  which a trace of ops could not connect to the input).
"""
from __future__ import annotations

from .. import backend
from ..backend import numpy as np
from ..nn.normalization import _BatchNorm
from ..nn.linear import Embedding
from ..nn.rnn import RNNBase, RNNCellBase
from .graph import UnsupportedOperatorError

__all__ = ["CONVERTERS"]


def batch_norm(b, call):
    m = call.op
    if m.running_mean is None:
        raise UnsupportedOperatorError(f"tinynet.onnx: {type(m).__name__} without running "
                                       f"statistics (track_running_stats=False, at {call.scope}) "
                                       "has no ONNX export: in eval mode it normalizes with batch "
                                       "statistics, which BatchNormalization does not")
    x = call.args[0]
    dtype = backend.asnumpy(m.running_mean.data).dtype
    scale = b.value(m.weight) if m.weight is not None else b.constant(np.ones(m.num_features, dtype), "scale")
    shift = b.value(m.bias) if m.bias is not None else b.constant(np.zeros(m.num_features, dtype), "shift")
    return b.node("BatchNormalization", [b.value(x), scale, shift, b.value(m.running_mean),
                                         b.value(m.running_var)], epsilon=float(m.eps))


# tinynet's (PyTorch's) gate blocks -> ONNX's, as indices into tinynet's order:
# LSTM i, f, g, o -> i, o, f, c (c is PyTorch's g); GRU r, z, n -> z, r, h; RNN: one block.
_GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN_TANH": (0,), "RNN_RELU": (0,)}


def _onnx_gate_order(w, H, mode):
    return np.concatenate([w[k * H:(k + 1) * H] for k in _GATE_ORDER[mode]], axis=0)


def _op_attributes(m, D):
    direction = "bidirectional" if D == 2 else "forward"
    if m.mode == "LSTM":
        return "LSTM", dict(hidden_size=m.hidden_size, direction=direction)
    if m.mode == "GRU":   # PyTorch applies r after the recurrent product: linear_before_reset
        return "GRU", dict(hidden_size=m.hidden_size, direction=direction, linear_before_reset=1)
    return "RNN", dict(hidden_size=m.hidden_size, direction=direction,
                       activations=["Tanh" if m.mode == "RNN_TANH" else "Relu"] * D)


def recurrent(b, call):
    """LSTM, GRU and RNN (see the module docstring); outputs (output, h_n[, c_n])."""
    m = call.op
    kind = type(m).__name__
    x = call.args[0]
    hx = call.args[1] if len(call.args) > 1 else call.kwargs.get("hx")
    if call.kwargs.get("lengths") is not None or len(call.args) > 2:
        raise UnsupportedOperatorError(f"tinynet.onnx: {kind} with lengths (at {call.scope}) has no "
                                       "ONNX export here; export the model on full-length sequences")
    if getattr(m, "proj_size", 0):
        raise UnsupportedOperatorError(f"tinynet.onnx: LSTM with proj_size={m.proj_size} (at {call.scope}) "
                                       "has no ONNX export: ONNX's LSTM has no projection")
    H, D = m.hidden_size, 2 if m.bidirectional else 1
    n_states = 2 if m.mode == "LSTM" else 1
    unbatched = x.ndim == 2
    (seq,) = (b.node("Unsqueeze", [b.value(x), b.ints([1], "axes")]) if unbatched else
              b.node("Transpose", [b.value(x)], perm=[1, 0, 2]) if m.batch_first else [b.value(x)])
    states = []
    if hx is not None:
        for t in (hx if n_states == 2 else (hx,)):
            (name,) = b.node("Unsqueeze", [b.value(t), b.ints([1], "axes")]) if unbatched else [b.value(t)]
            states.append(name)
    op_type, attributes = _op_attributes(m, D)
    finals = [[] for _ in range(n_states)]
    for layer in range(m.num_layers):
        Ws, Rs, Bs = [], [], []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh = (None if t is None else backend.asnumpy(t.data)
                                      for t in m._layer_weights(layer * D + d))
            Ws.append(_onnx_gate_order(w_ih, H, m.mode))
            Rs.append(_onnx_gate_order(w_hh, H, m.mode))
            if b_ih is not None:
                Bs.append(np.concatenate([_onnx_gate_order(b_ih, H, m.mode),
                                          _onnx_gate_order(b_hh, H, m.mode)]))
        prefix = f"{call.scope}.l{layer}"
        inputs = [seq, b.constant(np.stack(Ws), f"{prefix}.W"), b.constant(np.stack(Rs), f"{prefix}.R"),
                  b.constant(np.stack(Bs), f"{prefix}.B") if Bs else "", ""]
        if states:
            span = [b.ints([layer * D], "starts"), b.ints([(layer + 1) * D], "ends"), b.ints([0], "axes")]
            inputs += [b.node("Slice", [s] + span)[0] for s in states]
        y, *last = b.node(op_type, inputs, outputs=1 + n_states, **attributes)
        (y,) = b.node("Transpose", [y], perm=[0, 2, 1, 3])     # (T, D, B, H) -> (T, B, D, H)
        (seq,) = b.node("Reshape", [y, b.ints([0, 0, -1])])    # -> (T, B, D·H)
        for acc, name in zip(finals, last):
            acc.append(name)
    finals = [b.node("Concat", f, axis=0)[0] if len(f) > 1 else f[0] for f in finals]
    if unbatched:
        seq, *finals = (b.node("Squeeze", [v, b.ints([1], "axes")])[0] for v in [seq] + finals)
    elif m.batch_first:
        (seq,) = b.node("Transpose", [seq], perm=[1, 0, 2])
    return [seq] + finals


def cell(b, call):
    """One step of LSTMCell/GRUCell/RNNCell: the layer's ONNX op on a sequence of length 1.

    x ``(B, I)`` and the states ``(B, H)`` get a leading axis of 1 (unbatched ``(I,)`` two);
    ``Y_h`` (and ``Y_c``) lose them again. Outputs ``(h', c')`` for LSTMCell, else ``h'``.
    """
    m = call.op
    x = call.args[0]
    hx = call.args[1] if len(call.args) > 1 else call.kwargs.get("hx")
    H, n_states = m.hidden_size, 2 if m.mode == "LSTM" else 1
    lead = [0] if x.ndim == 2 else [0, 1]
    (seq,) = b.node("Unsqueeze", [b.value(x), b.ints(lead, "axes")])
    states = []
    if hx is not None:
        for t in (hx if n_states == 2 else (hx,)):
            states.append(b.node("Unsqueeze", [b.value(t), b.ints(lead, "axes")])[0])
    weights = [None if t is None else backend.asnumpy(t.data) for t in m._weights()]
    W, R = (_onnx_gate_order(w, H, m.mode)[None] for w in weights[:2])
    inputs = [seq, b.constant(W, f"{call.scope}.W"), b.constant(R, f"{call.scope}.R")]
    if weights[2] is not None:
        inputs.append(b.constant(np.concatenate([_onnx_gate_order(weights[2], H, m.mode),
                                                 _onnx_gate_order(weights[3], H, m.mode)])[None],
                                 f"{call.scope}.B"))
    else:
        inputs.append("")
    inputs += [""] + states
    op_type, attributes = _op_attributes(m, 1)
    _, *last = b.node(op_type, inputs, outputs=1 + n_states, **attributes)
    return [b.node("Squeeze", [v, b.ints(lead, "axes")])[0] for v in last]


def embedding(b, call):
    """``Gather(weight, ids, axis=0)``: rows of the table. (In eval mode ``padding_idx``
    changes nothing in the values, only which rows receive gradients.)

    ``max_norm``: tinynet (like PyTorch) rescales the looked-up rows of ``weight`` in place,
    a weight update a graph cannot make. As PyTorch's exporter (``embedding_renorm``), the
    graph instead rescales the gathered rows: ``row · s`` with ``s = max_norm / (‖row‖_p +
    1e-7)`` where ``‖row‖_p > max_norm``, else 1, the same numbers the model returns. The
    table exported is the model's at export time, which the traced forward has already
    renormalized for the example's ids (renormalizing a row twice changes nothing)."""
    m = call.op
    ids = call.args[0]
    (rows,) = b.node("Gather", [b.value(m.weight), b.value(ids)], axis=0)
    if m.max_norm is None:
        return [rows]
    dtype = np.dtype(m.weight.dtype)
    p = float(m.norm_type)
    axes = b.ints([-1], "axes")
    if p == 2:
        (norm,) = b.node("ReduceL2", [rows, axes] if b.opset >= 18 else [rows], keepdims=1,
                         axes=None if b.opset >= 18 else [-1])
    elif p == 1:
        (norm,) = b.node("ReduceL1", [rows, axes] if b.opset >= 18 else [rows], keepdims=1,
                         axes=None if b.opset >= 18 else [-1])
    elif p == float("inf"):
        (norm,) = b.node("ReduceMax", [b.node("Abs", [rows])[0]] + ([axes] if b.opset >= 18 else []),
                         keepdims=1, axes=None if b.opset >= 18 else [-1])
    else:
        power = b.constant(np.asarray(p, dtype), "norm_type")
        (norm,) = b.node("Pow", [b.node("Abs", [rows])[0], power])
        (norm,) = b.node("ReduceSum", [norm, axes], keepdims=1)
        (norm,) = b.node("Pow", [norm, b.constant(np.asarray(1 / p, dtype), "norm_type")])
    max_norm = b.constant(np.asarray(m.max_norm, dtype), "max_norm")
    (over,) = b.node("Greater", [norm, max_norm])
    (scale,) = b.node("Div", [max_norm, b.node("Add", [norm, b.constant(np.asarray(1e-7, dtype),
                                                                        "eps")])[0]])
    (scale,) = b.node("Where", [over, scale, b.constant(np.asarray(1, dtype), "one")])
    return b.node("Mul", [rows, scale])


NAMES = "BatchNorm1d, BatchNorm2d, LSTM, GRU, RNN, LSTMCell, GRUCell, RNNCell, Embedding"

CONVERTERS = {
    _BatchNorm: batch_norm,
    RNNBase: recurrent,
    RNNCellBase: cell,
    Embedding: embedding,
}
