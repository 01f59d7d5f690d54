"""nn.LSTM / GRU / RNN and the cells against torch.nn with the same state_dict (float64)."""
import itertools

import numpy as np
import pytest

import tinynet as tn
from tinynet.nn import rnn as nn  # the lead re-exports these from tinynet.nn
from tinynet.testing import assert_close

try:                      # only the PyTorch comparisons need it
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install tinynet[ref])")

KINDS = {      # (tinynet class, name of the torch.nn class, extra arguments)
    "LSTM": (nn.LSTM, "LSTM", {}),
    "GRU": (nn.GRU, "GRU", {}),
    "RNN": (nn.RNN, "RNN", {}),
    "RNN_relu": (nn.RNN, "RNN", {"nonlinearity": "relu"}),
}


def pair(kind, I=3, H=4, **kw):
    ours_cls, theirs_cls, extra = KINDS[kind]
    torch.manual_seed(0)
    theirs = getattr(torch.nn, theirs_cls)(I, H, **extra, **kw).double()
    ours = ours_cls(I, H, **extra, **kw, dtype=tn.float64)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def run_both(ours, theirs, x, hx=None):
    tx = torch.tensor(x, requires_grad=True)
    ox = tn.tensor(x, requires_grad=True)
    if hx is None:
        t_out = theirs(tx)
        o_out = ours(ox)
        return (ox, tx), o_out, t_out, None
    if isinstance(hx, tuple):
        th = tuple(torch.tensor(a, requires_grad=True) for a in hx)
        oh = tuple(tn.tensor(a, requires_grad=True) for a in hx)
    else:
        th, oh = torch.tensor(hx, requires_grad=True), tn.tensor(hx, requires_grad=True)
    return (ox, tx), ours(ox, oh), theirs(tx, th), (oh, th)


def flatten(out):
    o, h = out
    return [o] + (list(h) if isinstance(h, tuple) else [h])


def backprop_same(o_outs, t_outs, seed=0):
    rng = np.random.default_rng(seed)
    lo = lt = 0
    for a, b in zip(o_outs, t_outs):
        v = rng.standard_normal(tuple(b.shape))
        lo = lo + (a * tn.tensor(v)).sum()
        lt = lt + (b * torch.tensor(v)).sum()
    lo.backward()
    lt.backward()


@needs_torch
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("num_layers,bidirectional,batch_first",
                         list(itertools.product([1, 2], [False, True], [False, True])))
def test_matches_torch_forward_and_gradients(kind, num_layers, bidirectional, batch_first):
    # Wrong here means a parameter name/layout, the direction handling or BPTT differs from torch.
    ours, theirs = pair(kind, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    rng = np.random.default_rng(1)
    T, B, D = 5, 3, 2 if bidirectional else 1
    x = rng.standard_normal((B, T, 3) if batch_first else (T, B, 3))
    h = rng.standard_normal((num_layers * D, B, 4))
    hx = (h, rng.standard_normal(h.shape)) if kind == "LSTM" else h
    (ox, tx), o_out, t_out, (oh, th) = run_both(ours, theirs, x, hx)
    o_flat, t_flat = flatten(o_out), flatten(t_out)
    for a, b in zip(o_flat, t_flat):
        assert tuple(a.shape) == tuple(b.shape)
        assert_close(a, b, rtol=1e-10, atol=1e-12)
    backprop_same(o_flat, t_flat)
    assert_close(ox.grad, tx.grad, rtol=1e-9, atol=1e-11)
    for a, b in zip(oh if isinstance(oh, tuple) else [oh], th if isinstance(th, tuple) else [th]):
        assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-11)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tp[name].grad, rtol=1e-9, atol=1e-11, msg=name)


@needs_torch
def test_parameter_names_shapes_and_order_match_torch():
    ours, theirs = pair("LSTM", num_layers=2, bidirectional=True)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert "bias_hh_l1_reverse" in ours.state_dict()
    no_bias, t_no_bias = pair("GRU", bias=False)
    assert list(no_bias.state_dict()) == list(t_no_bias.state_dict()) == ["weight_ih_l0", "weight_hh_l0"]


def test_init_is_uniform_within_one_over_sqrt_hidden():
    tn.manual_seed(0)
    m = nn.LSTM(8, 16)
    w = np.concatenate([p.detach().numpy().ravel() for p in m.parameters()])
    assert w.dtype == np.float32
    assert np.abs(w).max() <= 0.25 and np.abs(w).max() > 0.24
    assert abs(w.mean()) < 0.02


@needs_torch
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_default_initial_state_and_unbatched_input(kind):
    ours, theirs = pair(kind, num_layers=2, bidirectional=True)
    x = np.random.default_rng(2).standard_normal((6, 3))      # unbatched (T, I)
    (ox, tx), o_out, t_out, _ = run_both(ours, theirs, x)
    for a, b in zip(flatten(o_out), flatten(t_out)):
        assert tuple(a.shape) == tuple(b.shape)
        assert_close(a, b, rtol=1e-10, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lengths_match_per_sequence_runs(kind, bidirectional):
    # Padded steps must not change final states, must output zeros and get zero gradient.
    ours, _ = pair(kind, num_layers=2, bidirectional=bidirectional, batch_first=True)
    rng = np.random.default_rng(3)
    lengths = [5, 2, 4]
    x = rng.standard_normal((3, 5, 3))
    xt = tn.tensor(x, requires_grad=True)
    out, h = ours(xt, lengths=lengths)
    finals = list(h) if isinstance(h, tuple) else [h]
    (out.sum() + sum(f.sum() for f in finals)).backward()
    for b, n in enumerate(lengths):
        xb = tn.tensor(x[b:b + 1, :n], requires_grad=True)
        ob, hb = ours(xb)
        fb = list(hb) if isinstance(hb, tuple) else [hb]
        assert_close(out[b:b + 1, :n], ob, rtol=1e-10, atol=1e-12)
        assert np.all(out.detach().numpy()[b, n:] == 0)
        for f, g in zip(finals, fb):
            assert_close(f[:, b:b + 1], g, rtol=1e-10, atol=1e-12)
        (ob.sum() + sum(f.sum() for f in fb)).backward()
        assert_close(xt.grad[b:b + 1, :n], xb.grad, rtol=1e-9, atol=1e-11)
        assert np.all(xt.grad.numpy()[b, n:] == 0)


@needs_torch
def test_lengths_match_torch_packed_sequence():
    ours, theirs = pair("LSTM", num_layers=2, bidirectional=True, batch_first=True)
    x = np.random.default_rng(4).standard_normal((3, 6, 3))
    lengths = [6, 3, 1]
    out, (h, c) = ours(tn.tensor(x), lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), lengths, batch_first=True,
                                                     enforce_sorted=False)
    t_out, (th, tc) = theirs(packed)
    t_out, _ = torch.nn.utils.rnn.pad_packed_sequence(t_out, batch_first=True, total_length=6)
    assert_close(out, t_out.detach(), rtol=1e-10, atol=1e-12)
    assert_close(h, th.detach(), rtol=1e-10, atol=1e-12)
    assert_close(c, tc.detach(), rtol=1e-10, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("cell,tcell,extra", [(nn.LSTMCell, "LSTMCell", {}),
                                              (nn.GRUCell, "GRUCell", {}),
                                              (nn.RNNCell, "RNNCell", {"nonlinearity": "relu"}),
                                              (nn.RNNCell, "RNNCell", {})])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_torch(cell, tcell, extra, batched):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, tcell)(3, 4, **extra).double()
    ours = cell(3, 4, **extra, dtype=tn.float64)
    ours.load_state_dict(theirs.state_dict())
    rng = np.random.default_rng(5)
    shape = (2,) if batched else ()
    x, h = rng.standard_normal(shape + (3,)), rng.standard_normal(shape + (4,))
    hx = (h, rng.standard_normal(h.shape)) if cell is nn.LSTMCell else h
    (ox, tx), o_out, t_out, (oh, th) = run_both(ours, theirs, x, hx)
    o_l = list(o_out) if isinstance(o_out, tuple) else [o_out]
    t_l = list(t_out) if isinstance(t_out, tuple) else [t_out]
    for a, b in zip(o_l, t_l):
        assert tuple(a.shape) == tuple(b.shape)
        assert_close(a, b, rtol=1e-10, atol=1e-12)
    backprop_same(o_l, t_l)
    assert_close(ox.grad, tx.grad, rtol=1e-9, atol=1e-11)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tp[name].grad, rtol=1e-9, atol=1e-11, msg=name)
    # hx omitted means zeros, as in torch
    assert_close(ours(tn.tensor(x))[0] if cell is nn.LSTMCell else ours(tn.tensor(x)),
                 (theirs(torch.tensor(x))[0] if cell is nn.LSTMCell else theirs(torch.tensor(x))).detach(),
                 rtol=1e-10, atol=1e-12)


def test_thousand_step_backprop_has_no_recursion_limit():
    m = nn.LSTM(2, 3, dtype=tn.float64)
    x = tn.tensor(np.random.default_rng(6).standard_normal((1500, 2, 2)), requires_grad=True)
    out, (h, c) = m(x)
    h.sum().backward()
    assert x.grad.shape == (1500, 2, 2) and np.isfinite(x.grad.numpy()).all()
    cell = nn.GRUCell(2, 3, dtype=tn.float64)
    hh = None
    for t in range(1200):            # a 1,200-node chain of cell ops through the engine
        hh = cell(x[t], hh)
    hh.sum().backward()
    assert np.isfinite(cell.weight_hh.grad.numpy()).all()


def test_dropout_between_layers_only_in_training():
    m = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = tn.randn(5, 2, 3)
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    assert_close(a, b)
    m.train()
    tn.manual_seed(1)
    c, _ = m(x)
    assert not np.allclose(c.numpy() if not c.requires_grad else c.detach().numpy(), a.detach().numpy())


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
def test_dropout_with_one_layer_warns_as_torch(cls, recwarn):
    """Dropout acts between layers only, so with one layer it never applies: PyTorch warns
    at construction; more layers, or no dropout, construct silently."""
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1, "
                                         "but got dropout=0.5 and num_layers=1"):
        getattr(nn, cls)(3, 4, dropout=0.5)
    getattr(nn, cls)(3, 4, num_layers=2, dropout=0.5)
    getattr(nn, cls)(3, 4)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call,match", [
    (lambda m: m(tn.randn(5, 2, 4)), "input has 4 features"),
    (lambda m: m(tn.randn(5)), "3-D"),
    (lambda m: m(tn.randn(1, 5, 2, 3)), "3-D"),
    (lambda m: m(tn.randn(5, 2, 3), (tn.zeros(1, 2, 4), tn.zeros(1, 2, 4))), r"expected h0 of shape \(2, 2, 4\)"),
    (lambda m: m(tn.randn(5, 2, 3), (tn.zeros(2, 2, 4), tn.zeros(2, 3, 4))), r"expected c0 of shape"),
    (lambda m: m(tn.randn(5, 2, 3), (tn.zeros(2, 2, 5), tn.zeros(2, 2, 5))), r"expected h0"),
    (lambda m: m(tn.randn(5, 3), (tn.zeros(2, 1, 4), tn.zeros(2, 1, 4))), r"expected h0 of shape \(2, 4\)"),
    (lambda m: m(tn.randn(5, 2, 3), lengths=[5]), "lengths has 1 entries but the batch has 2"),
    (lambda m: m(tn.randn(5, 2, 3), lengths=[5, 0]), r"in \[1, 5\]"),
    (lambda m: m(tn.randn(5, 2, 3), lengths=[6, 2]), r"in \[1, 5\]"),
    (lambda m: m(tn.randn(5, 2, 3), lengths=[[1, 2]]), "1-D sequence of integers"),
    (lambda m: m(tn.randn(5, 2, 3), lengths=[1.5, 2.0]), "1-D sequence of integers"),
])
def test_lstm_bad_input_errors(call, match):
    m = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=match):
        call(m)


def test_bad_types_and_constructor_arguments():
    m = nn.LSTM(3, 4)
    with pytest.raises(TypeError, match="hx must be a tuple"):
        m(tn.randn(5, 2, 3), tn.zeros(1, 2, 4))
    with pytest.raises(TypeError, match="not a tuple"):
        nn.GRU(3, 4)(tn.randn(5, 2, 3), (tn.zeros(1, 2, 4),))
    with pytest.raises(TypeError, match="dtype"):
        m(tn.randn(5, 2, 3, dtype=tn.float64))
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"expected h of shape \(2, 4\)"):
        nn.LSTMCell(3, 4)(tn.randn(2, 3), (tn.zeros(3, 4), tn.zeros(2, 4)))
    with pytest.raises(ValueError, match="input has 5 features"):
        nn.GRUCell(3, 4)(tn.randn(2, 5))
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        nn.RNNCell(3, 4)(tn.randn(1, 2, 3))


@pytest.mark.parametrize("cell", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cells_take_device_then_dtype_positionally_like_pytorch(cell):
    # PyTorch's order: (input_size, hidden_size, bias, device, dtype)
    extra = ("tanh",) if cell == "RNNCell" else ()
    m = getattr(nn, cell)(3, 4, True, *extra, "cpu", tn.float64)
    assert m.weight_ih.dtype == tn.float64 and m.weight_ih.device.type == "cpu"
