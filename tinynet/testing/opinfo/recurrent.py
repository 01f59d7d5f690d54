"""Registry entries: recurrent cells and single-layer sequence ops.

Values come from a NumPy generator seeded by hypothesis (hypothesis picks sizes, whether
there are biases, direction, lengths and the seed), so weights are never degenerate (an
all-zero weight matrix is a valid but useless example) and the ReLU cell can be kept away
from its kink by rejecting the rare draw with a pre-activation near zero.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ... import functional as F
from ..registry import OpInfo, Sample, register


def _weights(rng, gates, I, H, bias):
    s = 1.0 / np.sqrt(H)
    w_ih = rng.uniform(-s, s, (gates * H, I)) * 2
    w_hh = rng.uniform(-s, s, (gates * H, H)) * 2
    if not bias:
        return [w_ih, w_hh, None, None]
    return [w_ih, w_hh, rng.uniform(-1, 1, gates * H), rng.uniform(-1, 1, gates * H)]


@st.composite
def _cell_sample(draw, gates, states=1):
    B, I, H = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    bias = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    x = rng.standard_normal((B, I))
    hs = [rng.standard_normal((B, H)) * 0.8 for _ in range(states)]
    w = _weights(rng, gates, I, H, bias)
    return Sample(tuple([x] + hs + w))


def _relu_away_from_kink(sample):
    x, h, w_ih, w_hh, b_ih, b_hh = sample.args
    a = x @ w_ih.T + h @ w_hh.T + (0 if b_ih is None else b_ih + b_hh)
    return np.abs(a).min() > 1e-3


@st.composite
def _layer_sample(draw, gates, states=1):
    T, B = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    I, H = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    bias = draw(st.booleans())
    reverse = draw(st.booleans())
    use_lengths = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    x = rng.standard_normal((T, B, I))
    hs = [rng.standard_normal((B, H)) * 0.8 for _ in range(states)]
    kwargs = {"reverse": reverse}
    if use_lengths:
        kwargs["lengths"] = [int(v) for v in rng.integers(1, T + 1, B)]
    return Sample(tuple([x] + hs + _weights(rng, gates, I, H, bias)), kwargs)


def _relu_layer_ok(sample):
    """Rejects draws where some pre-activation sits within 1e-3 of relu's kink."""
    x, h, w_ih, w_hh, b_ih, b_hh = sample.args
    with np.errstate(all="ignore"):
        _, _, pre = _torch_free_rnn(x, h, w_ih, w_hh, b_ih, b_hh, sample.kwargs)
    return np.abs(pre).min() > 1e-3


def _torch_free_rnn(x, h, w_ih, w_hh, b_ih, b_hh, kwargs):
    T = x.shape[0]
    b = 0 if b_ih is None else b_ih + b_hh
    pres = []
    for t in (range(T - 1, -1, -1) if kwargs.get("reverse") else range(T)):
        a = x[t] @ w_ih.T + h @ w_hh.T + b
        pres.append(a)
        lengths = kwargs.get("lengths")
        keep = np.ones((x.shape[1], 1), bool) if lengths is None else (t < np.array(lengths))[:, None]
        h = np.where(keep, np.maximum(a, 0), h)
    return None, h, np.stack(pres)


def _torch_layer(cell, states):
    """A torch reference for the layer ops: the torch cell per step, with the lengths mask."""
    def run(torch, x, *args, reverse=False, lengths=None):
        hs, (w_ih, w_hh, b_ih, b_hh) = list(args[:states]), args[states:]
        T, B = x.shape[0], x.shape[1]
        lengths = [T] * B if lengths is None else lengths
        ys = [None] * T
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            m = torch.tensor([t < n for n in lengths])[:, None]
            new = cell(torch)(x[t], tuple(hs) if states == 2 else hs[0], w_ih, w_hh, b_ih, b_hh)
            new = list(new) if states == 2 else [new]
            hs = [torch.where(m, a, b) for a, b in zip(new, hs)]
            ys[t] = torch.where(m, hs[0], torch.zeros((), dtype=x.dtype))
        return (torch.stack(ys), *hs)
    return run


def _lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    return F.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)


register(OpInfo(
    "lstm_cell", _lstm_cell, samples=lambda: _cell_sample(4, states=2),
    torch_op=lambda torch, x, h, c, wi, wh, bi=None, bh=None: torch.lstm_cell(x, (h, c), wi, wh, bi, bh),
    max_examples=25, note="op takes (x, h, c, ...) here; F.lstm_cell takes hx=(h, c)"))

register(OpInfo(
    "gru_cell", F.gru_cell, samples=lambda: _cell_sample(3),
    torch_op=lambda torch, *a: torch.gru_cell(*a), max_examples=25))

register(OpInfo(
    "rnn_tanh_cell", F.rnn_tanh_cell, samples=lambda: _cell_sample(1),
    torch_op=lambda torch, *a: torch.rnn_tanh_cell(*a), max_examples=25))

register(OpInfo(
    "rnn_relu_cell", F.rnn_relu_cell,
    samples=lambda: _cell_sample(1).filter(_relu_away_from_kink),
    torch_op=lambda torch, *a: torch.rnn_relu_cell(*a), max_examples=25))

register(OpInfo(
    "lstm_layer", F.lstm_layer, samples=lambda: _layer_sample(4, states=2),
    torch_op=_torch_layer(lambda torch: torch.lstm_cell, 2), max_examples=15, fast_mode=True,
    note="double backward runs the op-written BPTT path"))

register(OpInfo(
    "gru_layer", F.gru_layer, samples=lambda: _layer_sample(3),
    torch_op=_torch_layer(lambda torch: torch.gru_cell, 1), max_examples=15, fast_mode=True))


def _rnn_layer_relu(x, h, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False, lengths=None):
    return F.rnn_layer(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity="relu", reverse=reverse,
                       lengths=lengths)


register(OpInfo(
    "rnn_layer", F.rnn_layer, samples=lambda: _layer_sample(1),
    torch_op=_torch_layer(lambda torch: torch.rnn_tanh_cell, 1), max_examples=15, fast_mode=True))

register(OpInfo(
    "rnn_layer[relu]", _rnn_layer_relu,
    samples=lambda: _layer_sample(1).filter(_relu_layer_ok),
    torch_op=_torch_layer(lambda torch: torch.rnn_relu_cell, 1), max_examples=15, fast_mode=True))


@st.composite
def _bidirectional_sample(draw, gates, states=1):
    """Both directions' states and weights (each direction its own) for one input."""
    T, B = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    I, H = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    bias = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    args = [rng.standard_normal((T, B, I))]
    for _ in range(2):
        args += [rng.standard_normal((B, H)) * 0.8 for _ in range(states)]
        args += _weights(rng, gates, I, H, bias)
    kwargs = {}
    if draw(st.booleans()):
        kwargs["lengths"] = [int(v) for v in rng.integers(1, T + 1, B)]
    return Sample(tuple(args), kwargs)


def _bidirectional(op, states):
    """``F.bidirectional_layer`` with its arguments flat, as the registry passes them: x,
    then the forward direction's states and 4 weights, then the reverse direction's;
    returns both directions' outputs as one tuple."""
    count = states + 4

    def run(x, *args, lengths=None):
        forward, reverse = F.bidirectional_layer(op, x, args[:states], args[states:count],
                                                 args[count:count + states], args[count + states:],
                                                 lengths=lengths)
        return (*forward, *reverse)
    return run


def _torch_bidirectional(cell, states):
    layer = _torch_layer(cell, states)
    count = states + 4

    def run(torch, x, *args, lengths=None):
        return (*layer(torch, x, *args[:count], lengths=lengths),
                *layer(torch, x, *args[count:], reverse=True, lengths=lengths))
    return run


register(OpInfo(
    "bidirectional_layer", _bidirectional("lstm_layer", 2),
    samples=lambda: _bidirectional_sample(4, states=2),
    torch_op=_torch_bidirectional(lambda torch: torch.lstm_cell, 2), max_examples=10,
    fast_mode=True, note="both directions in one node; double backward runs the op-written BPTT"))

register(OpInfo(
    "bidirectional_layer[gru]", _bidirectional("gru_layer", 1), samples=lambda: _bidirectional_sample(3),
    torch_op=_torch_bidirectional(lambda torch: torch.gru_cell, 1), max_examples=10, fast_mode=True))

register(OpInfo(
    "bidirectional_layer[rnn]", _bidirectional("rnn_layer", 1), samples=lambda: _bidirectional_sample(1),
    torch_op=_torch_bidirectional(lambda torch: torch.rnn_tanh_cell, 1), max_examples=10,
    fast_mode=True))
