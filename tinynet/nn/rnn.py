"""Recurrent layers: ``LSTMCell``, ``GRUCell``, ``RNNCell``, ``LSTM``, ``GRU``, ``RNN``.

Shapes, argument names, parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``...) and
initialisation (every weight and bias uniform in ``±1/sqrt(hidden_size)``) are PyTorch's,
so a PyTorch ``state_dict`` loads by name and gives the same results.

Each layer and direction is one fused op (:func:`tinynet.functional.lstm_layer` and
friends): the input projection of all steps is one GEMM, each step one recurrent GEMM
plus fused gate math, and backward through time ends with single weight-gradient GEMMs.
A bidirectional layer's two directions are one node
(:func:`tinynet.functional.bidirectional_layer`), whose time loops run side by side.

Variable-length batches: pass ``lengths`` (one int per sequence, each in ``[1, T]``) with a
padded batch. Steps at or after a sequence's length are padding: they leave its state
unchanged (so ``h_n``/``c_n`` are the states after its last real step, and the reverse
direction starts at that step), their outputs are zero (as ``pad_packed_sequence`` gives)
and they receive no gradient. This is the equivalent of PyTorch's ``PackedSequence``.

LSTM projections (``proj_size=P``, ``0 < P < hidden_size``, as PyTorch): each step's
hidden state is projected, ``h_t = W_hr (o_t ⊙ tanh(c_t))`` with ``W_hr`` ``(P, H)``
(``weight_hr_l{k}``, after the biases of its layer and direction), so ``weight_hh_l{k}`` is
``(4H, P)``, layer ``k > 0`` reads ``D·P`` features, output and ``h_n`` have ``P`` (``D·P``)
features while ``c_n`` keeps ``H``. That path is composed of tinynet ops, one step at a time
(:func:`_projected_lstm_direction`): the input projection of all steps is still one GEMM,
but the gate math is not fused and the two directions run one after the other. Every
derivative order comes from the ops. ``proj_size=0`` runs the fused layer ops above. Its
arguments are checked by the fused ops' checker (``_check_weights`` given ``w_hr``), so its
errors read as theirs, under the name ``LSTM``.
"""
from __future__ import annotations

import math
import warnings

from .. import backend
from .. import functional as F
from ..functional.recurrent import _checked_layer
from ..random import generator
from ..tensor import Tensor, DEFAULT_FLOAT, as_dtype
from .module import Module, Parameter

__all__ = ["RNNCellBase", "LSTMCell", "GRUCell", "RNNCell", "RNNBase", "LSTM", "GRU", "RNN"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _uniform_parameter(shape, bound, dtype, device):
    arr = generator().uniform(-bound, bound, shape).astype(dtype)
    dev = backend.Device(device) if device is not None else backend.get_default_device()
    return Parameter(backend.to_device(arr, dev))


def _check_size(name, value, op, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise ValueError(f"{op}: {name} must be a positive integer, got {value!r}")


def _check_proj_size(op, mode, proj_size, hidden_size):
    """PyTorch's rules: an int, 0 (no projection) or in [1, hidden_size), LSTM only."""
    if isinstance(proj_size, bool) or not isinstance(proj_size, int):
        raise TypeError(f"{op}: proj_size must be an int, got {type(proj_size).__name__} {proj_size!r}")
    if proj_size < 0:
        raise ValueError(f"{op}: proj_size must be a positive integer or zero to disable "
                         f"projections, got {proj_size}")
    if proj_size and mode != "LSTM":
        _refuse_proj_size(op, proj_size)
    if proj_size >= hidden_size:
        raise ValueError(f"{op}: proj_size must be smaller than hidden_size, got "
                         f"proj_size={proj_size} and hidden_size={hidden_size}")


def _refuse_proj_size(op, proj_size):
    """GRU and RNN take the keyword only to refuse it, any value (0 too), as PyTorch's do."""
    raise ValueError(f"{op}: proj_size is only supported for LSTM, not RNN or GRU (expected no "
                     f"proj_size argument), got proj_size={proj_size!r}")


def _projected_lstm_direction(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, mask):
    """One LSTM layer in one direction with a projection, composed of tinynet ops.

    x ``(T, B, I)``, h0 ``(B, P)``, c0 ``(B, H)``, w_ih ``(4H, I)``, w_hh ``(4H, P)``, biases
    ``(4H,)`` or None, w_hr ``(P, H)``; ``mask`` the ``(T, B, 1)`` bool array of real steps or
    None. Per step, with gates in PyTorch's order i, f, g, o::

        [i|f|g|o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
        c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
        h_t = (σ(o) ⊙ tanh(c_t)) W_hr^T

    Padded steps (mask False) keep the state and output zeros. Returns
    ``(output (T, B, P), h_n (B, P), c_n (B, H))``.
    """
    T, H = x.shape[0], w_hr.shape[1]
    gx = F.linear(x, w_ih, b_ih)                # (T, B, 4H): every step's input side, one GEMM
    h, c, outputs = h0, c0, [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        a = gx[t] + F.linear(h, w_hh, b_hh)
        i, f = F.sigmoid(a[:, :H]), F.sigmoid(a[:, H:2 * H])
        g, o = F.tanh(a[:, 2 * H:3 * H]), F.sigmoid(a[:, 3 * H:])
        c_new = f * c + i * g
        h_new = F.linear(o * F.tanh(c_new), w_hr)
        if mask is None:
            h, c, outputs[t] = h_new, c_new, h_new
        else:
            m = Tensor(mask[t].astype(x.dtype))
            h, c, outputs[t] = m * h_new + (1 - m) * h, m * c_new + (1 - m) * c, m * h_new
    return F.stack(outputs, 0), h, c


# ------------------------------------------------------------------ cells
class RNNCellBase(Module):
    def __init__(self, mode, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        op = type(self).__name__
        _check_size("input_size", input_size, op)
        _check_size("hidden_size", hidden_size, op)
        self.mode, self.input_size, self.hidden_size, self.bias = mode, input_size, hidden_size, bool(bias)
        dtype = as_dtype(dtype or DEFAULT_FLOAT, op)
        G, k = _GATES[mode] * hidden_size, 1.0 / math.sqrt(hidden_size)
        self.weight_ih = _uniform_parameter((G, input_size), k, dtype, device)
        self.weight_hh = _uniform_parameter((G, hidden_size), k, dtype, device)
        if bias:
            self.bias_ih = _uniform_parameter((G,), k, dtype, device)
            self.bias_hh = _uniform_parameter((G,), k, dtype, device)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        if getattr(self, "nonlinearity", "tanh") != "tanh":      # RNNCell's, as PyTorch prints it
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _weights(self):
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh


class LSTMCell(RNNCellBase):
    """One LSTM step: ``(h', c') = cell(input, (h, c))``; input ``(B, I)`` or ``(I,)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx=None):
        return F.lstm_cell(input, hx, *self._weights())


class GRUCell(RNNCellBase):
    """One GRU step: ``h' = cell(input, h)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return F.gru_cell(input, hx, *self._weights())


class RNNCell(RNNCellBase):
    """One Elman step ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``, act tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_" + nonlinearity.upper(), input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        fn = F.rnn_tanh_cell if self.nonlinearity == "tanh" else F.rnn_relu_cell
        return fn(input, hx, *self._weights())


# ------------------------------------------------------------------ multi-layer
class RNNBase(Module):
    """Stacked, optionally bidirectional recurrent layers (the shared part of LSTM/GRU/RNN).

    input: ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``) or unbatched ``(T, I)``.
    hx: ``(L*D, B, H)`` (``(L*D, H)`` unbatched); a tuple ``(h0, c0)`` for LSTM; None = zeros.
    Returns ``(output (T, B, D*H), h_n)`` (LSTM: ``(output, (h_n, c_n))``). With an LSTM's
    ``proj_size=P > 0``, h0, h_n and the output have P features instead of H (c0, c_n keep H).
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        op = type(self).__name__
        _check_size("input_size", input_size, op)
        _check_size("hidden_size", hidden_size, op)
        _check_size("num_layers", num_layers, op)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"{op}: dropout must be a number in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:     # PyTorch's warning: it would never apply
            warnings.warn(f"{op}: dropout option adds dropout after all but last recurrent layer, "
                          f"so non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", UserWarning, stacklevel=3)
        _check_proj_size(op, mode, proj_size, hidden_size)
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.proj_size = proj_size
        self.num_layers, self.bias, self.batch_first = num_layers, bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        dtype = as_dtype(dtype or DEFAULT_FLOAT, op)
        G, k = _GATES[mode] * hidden_size, 1.0 / math.sqrt(hidden_size)
        D = 2 if bidirectional else 1
        real_hidden = proj_size or hidden_size        # the features of h, as PyTorch names it
        self._flat_names = []                         # per layer and direction, PyTorch's order
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else D * real_hidden
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                names = [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                setattr(self, names[0], _uniform_parameter((G, layer_in), k, dtype, device))
                setattr(self, names[1], _uniform_parameter((G, real_hidden), k, dtype, device))
                if bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                    setattr(self, names[2], _uniform_parameter((G,), k, dtype, device))
                    setattr(self, names[3], _uniform_parameter((G,), k, dtype, device))
                if proj_size:
                    names.append(f"weight_hr{sfx}")
                    setattr(self, names[-1], _uniform_parameter((proj_size, hidden_size), k, dtype,
                                                                device))
                self._flat_names.append(names)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def _layer_weights(self, index):
        """``[w_ih, w_hh, b_ih, b_hh]`` of entry ``index`` = layer * D + direction (biases
        None without bias); the projection ``weight_hr`` is not among them."""
        w = [getattr(self, n) for n in self._flat_names[index][:4 if self.bias else 2]]
        return w if self.bias else w + [None, None]

    def _projection(self, index):
        """``weight_hr`` of entry ``index`` (LSTM with ``proj_size > 0`` only)."""
        return getattr(self, self._flat_names[index][-1])

    # ---------------------------------------------------------------- checks
    def _prepare(self, input, hx, op):
        if not isinstance(input, Tensor):
            raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ValueError(f"{op}: expected input to be 3-D (seq_len, batch, input_size) "
                             f"{'[batch_first: (batch, seq_len, input_size)] ' if self.batch_first else ''}"
                             f"or 2-D unbatched (seq_len, input_size), got shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{op}: input has {input.shape[-1]} features (last dim of shape "
                             f"{tuple(input.shape)}) but input_size={self.input_size}")
        unbatched = input.ndim == 2
        if unbatched:
            x = F.unsqueeze(input, 1)
        elif self.batch_first:
            x = F.transpose(input, 0, 1)
        else:
            x = input
        T, B = x.shape[0], x.shape[1]
        if T < 1 or B < 1:
            raise ValueError(f"{op}: input needs at least one step and one sequence, got shape "
                             f"{tuple(input.shape)}")
        LD = self.num_layers * (2 if self.bidirectional else 1)
        names = ("h0", "c0") if self.mode == "LSTM" else ("hx",)
        # the features of each state: h0 has proj_size with a projection, c0 hidden_size
        h_size = ("proj_size", self.proj_size) if self.proj_size else ("hidden_size", self.hidden_size)
        sizes = (h_size, ("hidden_size", self.hidden_size))[:len(names)]
        if hx is None:      # one zeros array where the states have one shape
            zeros = {n: Tensor(x.xp.zeros((LD, B, n), dtype=input.dtype)) for _, n in sizes}
            return x, [zeros[n] for _, n in sizes], unbatched
        if self.mode == "LSTM":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{op}: hx must be a tuple (h0, c0), got {type(hx).__name__}")
            states = list(hx)
        else:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{op}: hx must be a Tensor (not a tuple) for {op}")
            states = [hx]
        out = []
        for name, s, (size_name, size) in zip(names, states, sizes):
            if not isinstance(s, Tensor):
                raise TypeError(f"{op}: {name} must be a Tensor, got {type(s).__name__}")
            want = (LD, size) if unbatched else (LD, B, size)
            if tuple(s.shape) != want:
                raise ValueError(f"{op}: expected {name} of shape {want} (num_layers * num_directions, "
                                 f"{'' if unbatched else 'batch, '}{size_name}), got {tuple(s.shape)}")
            out.append(F.unsqueeze(s, 1) if unbatched else s)
        return x, out, unbatched

    # ---------------------------------------------------------------- forward
    def forward(self, input: Tensor, hx=None, lengths=None):
        op = type(self).__name__
        x, states, unbatched = self._prepare(input, hx, op)
        D = 2 if self.bidirectional else 1
        finals = [[] for _ in states]
        layer_input = x
        op = {"LSTM": "lstm_layer", "GRU": "gru_layer"}.get(self.mode, "rnn_layer")
        options = ({"nonlinearity": "relu" if self.mode == "RNN_RELU" else "tanh"}
                   if op == "rnn_layer" else {})
        for layer in range(self.num_layers):
            inits = [[s[layer * D + d] for s in states] for d in range(D)]
            weights = [self._layer_weights(layer * D + d) for d in range(D)]
            if self.proj_size:      # checked as the fused layer ops check theirs
                projections = [self._projection(layer * D + d) for d in range(D)]
                masks = [_checked_layer(op, layer_input, inits[d], weights[d], lengths, name="LSTM",
                                        suffix="_reverse" if d else "", w_hr=projections[d])
                         for d in range(D)]
                directions = [_projected_lstm_direction(layer_input, *inits[d], *weights[d],
                                                        projections[d], reverse=bool(d),
                                                        mask=masks[d]) for d in range(D)]
            elif D == 2:    # one node, the two directions side by side
                directions = F.bidirectional_layer(op, layer_input, inits[0], weights[0], inits[1],
                                                   weights[1], lengths=lengths, **options)
            else:
                directions = [getattr(F, op)(layer_input, *inits[0], *weights[0], lengths=lengths,
                                             **options)]
            outputs = []
            for y, *res in directions:
                outputs.append(y)
                for acc, r in zip(finals, res):
                    acc.append(r)
            layer_input = outputs[0] if D == 1 else F.cat(outputs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        output = layer_input
        finals = [F.stack(f, 0) for f in finals]
        if unbatched:
            output = F.squeeze(output, 1)
            finals = [F.squeeze(f, 1) for f in finals]
        elif self.batch_first:
            output = F.transpose(output, 0, 1)
        if self.mode == "LSTM":
            return output, (finals[0], finals[1])
        return output, finals[0]


class LSTM(RNNBase):
    """Multi-layer LSTM with PyTorch's arguments, shapes and parameter names.

    >>> import tinynet as tn
    >>> lstm = tn.nn.LSTM(5, 10, num_layers=2, bidirectional=True, batch_first=True)
    >>> out, (h, c) = lstm(tn.randn(3, 7, 5))
    >>> tuple(out.shape), tuple(h.shape)
    ((3, 7, 20), (4, 3, 10))

    With ``proj_size=P`` (``0 < P < hidden_size``) each ``h_t = W_hr (o_t ⊙ tanh(c_t))``:

    >>> lstm = tn.nn.LSTM(5, 10, proj_size=3, bidirectional=True)
    >>> out, (h, c) = lstm(tn.randn(7, 2, 5))
    >>> tuple(out.shape), tuple(h.shape), tuple(c.shape), tuple(lstm.weight_hr_l0.shape)
    ((7, 2, 6), (2, 2, 3), (2, 2, 10), (3, 10))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    """Multi-layer GRU (PyTorch's gates r, z, n and parameter names). ``proj_size`` (any
    value) is a ValueError, as in PyTorch: projections are LSTM-only."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, proj_size=None):
        if proj_size is not None:
            _refuse_proj_size("GRU", proj_size)
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)


class RNN(RNNBase):
    """Multi-layer Elman RNN, ``nonlinearity`` 'tanh' (default) or 'relu'. ``proj_size`` (any
    value) is a ValueError, as in PyTorch: projections are LSTM-only."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None, *,
                 proj_size=None):
        if proj_size is not None:
            _refuse_proj_size("RNN", proj_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_" + nonlinearity.upper(), input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, 0, device, dtype)
        self.nonlinearity = nonlinearity
