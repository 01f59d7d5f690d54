"""Converters for layers that ONNX has as one op: ``BatchNorm1d/2d`` and ``LSTM``.

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
"""
from __future__ import annotations

from .. import backend
from ..backend import numpy as np
from ..nn.normalization import _BatchNorm
from ..nn.rnn import LSTM
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


def _onnx_gate_order(w, H):
    """Rows i, f, g, o (tinynet, PyTorch) -> i, o, f, c (ONNX); c is PyTorch's g."""
    i, f, g, o = (w[k * H:(k + 1) * H] for k in range(4))
    return np.concatenate([i, o, f, g], axis=0)


def lstm(b, call):
    m = call.op
    x = call.args[0]
    hx = call.args[1] if len(call.args) > 1 else call.kwargs.get("hx")
    if call.kwargs.get("lengths") is not None or len(call.args) > 2:
        raise UnsupportedOperatorError(f"tinynet.onnx: LSTM with lengths (at {call.scope}) has no "
                                       "ONNX export here; export the model on full-length sequences")
    H, D = m.hidden_size, 2 if m.bidirectional else 1
    unbatched = x.ndim == 2
    (seq,) = (b.node("Unsqueeze", [b.value(x), b.ints([1], "axes")]) if unbatched else
              b.node("Transpose", [b.value(x)], perm=[1, 0, 2]) if m.batch_first else [b.value(x)])
    if hx is not None:
        h0, c0 = (b.value(t) for t in hx)
        if unbatched:
            (h0,) = b.node("Unsqueeze", [h0, b.ints([1], "axes")])
            (c0,) = b.node("Unsqueeze", [c0, b.ints([1], "axes")])
    h_finals, c_finals = [], []
    for layer in range(m.num_layers):
        Ws, Rs, Bs = [], [], []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh = (None if t is None else backend.asnumpy(t.data)
                                      for t in m._layer_weights(layer * D + d))
            Ws.append(_onnx_gate_order(w_ih, H))
            Rs.append(_onnx_gate_order(w_hh, H))
            if b_ih is not None:
                Bs.append(np.concatenate([_onnx_gate_order(b_ih, H), _onnx_gate_order(b_hh, H)]))
        prefix = f"{call.scope}.l{layer}"
        inputs = [seq, b.constant(np.stack(Ws), f"{prefix}.W"), b.constant(np.stack(Rs), f"{prefix}.R"),
                  b.constant(np.stack(Bs), f"{prefix}.B") if Bs else "", ""]
        if hx is not None:
            span = [b.ints([layer * D], "starts"), b.ints([(layer + 1) * D], "ends"), b.ints([0], "axes")]
            inputs += [b.node("Slice", [h0] + span)[0], b.node("Slice", [c0] + span)[0]]
        y, y_h, y_c = b.node("LSTM", inputs, outputs=3, hidden_size=H,
                             direction="bidirectional" if D == 2 else "forward")
        (y,) = b.node("Transpose", [y], perm=[0, 2, 1, 3])
        (seq,) = b.node("Reshape", [y, b.ints([0, 0, -1])])
        h_finals.append(y_h)
        c_finals.append(y_c)
    h_n = b.node("Concat", h_finals, axis=0)[0] if len(h_finals) > 1 else h_finals[0]
    c_n = b.node("Concat", c_finals, axis=0)[0] if len(c_finals) > 1 else c_finals[0]
    if unbatched:
        (seq,) = b.node("Squeeze", [seq, b.ints([1], "axes")])
        (h_n,) = b.node("Squeeze", [h_n, b.ints([1], "axes")])
        (c_n,) = b.node("Squeeze", [c_n, b.ints([1], "axes")])
    elif m.batch_first:
        (seq,) = b.node("Transpose", [seq], perm=[1, 0, 2])
    return [seq, h_n, c_n]


CONVERTERS = {
    _BatchNorm: batch_norm,
    LSTM: lstm,
}
