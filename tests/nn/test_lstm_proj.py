"""nn.LSTM(proj_size=P): h_t = W_hr (o_t ⊙ tanh(c_t)), against torch.nn.LSTM with the same
state_dict (float64), finite differences, and PyTorch's argument errors."""
import itertools
import warnings

import numpy as np
import pytest

import tinynet as tn
from tinynet.nn import rnn as nn
from tinynet.testing import assert_close, gradcheck, gradgradcheck

try:                      # only the PyTorch comparisons need it
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install tinynet[ref])")


def pair(I=3, H=5, P=2, **kw):
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(I, H, proj_size=P, **kw).double()
    ours = nn.LSTM(I, H, proj_size=P, **kw, dtype=tn.float64)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def torch_run(theirs, *args):
    with warnings.catch_warnings():       # "LSTM with projections is not supported with oneDNN"
        warnings.simplefilter("ignore", UserWarning)
        return theirs(*args)


def tensors(*arrays):
    return [tn.tensor(a, requires_grad=True) for a in arrays], \
        [torch.tensor(a, requires_grad=True) for a in arrays]


CONFIGS = list(itertools.product([1, 2], [False, True], [False, True], [True, False], [(4, 1), (5, 3)]))


@needs_torch
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias,sizes", CONFIGS)
def test_matches_torch_outputs_states_and_every_gradient(num_layers, bidirectional, batch_first, bias, sizes):
    # Wrong here means the projection, W_hh's (4H, P) use, layer k>0's D·P input or a
    # state's feature count differs from torch.
    H, P = sizes
    ours, theirs = pair(H=H, P=P, num_layers=num_layers, bidirectional=bidirectional,
                        batch_first=batch_first, bias=bias)
    rng = np.random.default_rng(num_layers * 8 + bidirectional * 4 + batch_first * 2 + bias)
    T, B, D = 4, 3, 2 if bidirectional else 1
    x = rng.standard_normal((B, T, 3) if batch_first else (T, B, 3))
    h0, c0 = rng.standard_normal((num_layers * D, B, P)), rng.standard_normal((num_layers * D, B, H))
    (ox, oh0, oc0), (tx, th0, tc0) = tensors(x, h0, c0)
    o_out, (o_h, o_c) = ours(ox, (oh0, oc0))
    t_out, (t_h, t_c) = torch_run(theirs, tx, (th0, tc0))
    for a, b in zip((o_out, o_h, o_c), (t_out, t_h, t_c)):
        assert tuple(a.shape) == tuple(b.shape)
        assert_close(a, b.detach(), rtol=1e-10, atol=1e-12)
    assert o_out.shape[-1] == D * P and o_h.shape[-1] == P and o_c.shape[-1] == H
    vs = [rng.standard_normal(tuple(t.shape)) for t in (t_out, t_h, t_c)]
    sum(((a * tn.tensor(v)).sum() for a, v in zip((o_out, o_h, o_c), vs)), tn.tensor(0.0)).backward()
    sum((b * torch.tensor(v)).sum() for b, v in zip((t_out, t_h, t_c), vs)).backward()
    for a, b in ((ox, tx), (oh0, th0), (oc0, tc0)):
        assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-11)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tp[name].grad, rtol=1e-9, atol=1e-11, msg=name)


@needs_torch
def test_state_dict_names_shapes_order_repr_and_round_trip_match_torch():
    ours, theirs = pair(H=6, P=4, num_layers=2, bidirectional=True)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    assert tuple(ours.weight_hr_l1_reverse.shape) == (4, 6) and tuple(ours.weight_ih_l1.shape) == (24, 8)
    assert repr(ours) == repr(theirs) == "LSTM(3, 6, proj_size=4, num_layers=2, bidirectional=True)"
    # and back: tinynet's state loads into torch by name and gives torch tinynet's numbers
    tn.manual_seed(3)
    fresh = nn.LSTM(3, 6, proj_size=4, num_layers=2, bidirectional=True, dtype=tn.float64)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in fresh.state_dict().items()})
    x = np.random.default_rng(7).standard_normal((5, 2, 3))
    o_out, (o_h, o_c) = fresh(tn.tensor(x))
    t_out, (t_h, t_c) = torch_run(theirs, torch.tensor(x))
    for a, b in zip((o_out, o_h, o_c), (t_out, t_h, t_c)):
        assert_close(a, b.detach(), rtol=1e-10, atol=1e-12)


def test_init_is_uniform_within_one_over_sqrt_hidden_size_for_the_projection_too():
    tn.manual_seed(0)
    m = nn.LSTM(8, 16, proj_size=4)
    w = m.weight_hr_l0.detach().numpy()
    assert w.shape == (4, 16) and w.dtype == np.float32
    assert np.abs(w).max() <= 0.25 and np.abs(w).max() > 0.2        # 1/sqrt(16), not 1/sqrt(4)
    assert tuple(m.weight_hh_l0.shape) == (64, 4)
    every = np.concatenate([p.detach().numpy().ravel() for p in m.parameters()])
    assert np.abs(every).max() <= 0.25 and np.abs(every).max() > 0.249


@needs_torch
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input_and_default_states_match_torch(batch_first):
    ours, theirs = pair(H=5, P=3, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = np.random.default_rng(2).standard_normal((6, 3))                 # unbatched (T, I)
    o_out, (o_h, o_c) = ours(tn.tensor(x))
    t_out, (t_h, t_c) = torch_run(theirs, torch.tensor(x))
    assert tuple(o_out.shape) == (6, 6) and tuple(o_h.shape) == (4, 3) and tuple(o_c.shape) == (4, 5)
    for a, b in zip((o_out, o_h, o_c), (t_out, t_h, t_c)):
        assert_close(a, b.detach(), rtol=1e-10, atol=1e-12)
    h0, c0 = np.random.default_rng(3).standard_normal((4, 3)), np.random.default_rng(4).standard_normal((4, 5))
    o_out, (o_h, o_c) = ours(tn.tensor(x), (tn.tensor(h0), tn.tensor(c0)))
    t_out, (t_h, t_c) = torch_run(theirs, torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    for a, b in zip((o_out, o_h, o_c), (t_out, t_h, t_c)):
        assert_close(a, b.detach(), rtol=1e-10, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lengths_match_torch_packed_sequence_with_gradients(bidirectional):
    # Padded steps must carry the state, output zeros and get no gradient, as packing does.
    ours, theirs = pair(H=5, P=2, num_layers=2, bidirectional=bidirectional, batch_first=True)
    x = np.random.default_rng(4).standard_normal((3, 6, 3))
    lengths = [6, 3, 1]
    (ox,), (tx,) = tensors(x)
    out, (h, c) = ours(ox, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, batch_first=True, enforce_sorted=False)
    t_out, (th, tc) = torch_run(theirs, packed)
    t_out, _ = torch.nn.utils.rnn.pad_packed_sequence(t_out, batch_first=True, total_length=6)
    for a, b in zip((out, h, c), (t_out, th, tc)):
        assert_close(a, b.detach(), rtol=1e-10, atol=1e-12)
    (out.sum() + (h * h).sum() + c.sum()).backward()
    (t_out.sum() + (th * th).sum() + tc.sum()).backward()
    assert_close(ox.grad, tx.grad, rtol=1e-9, atol=1e-11)
    assert np.all(ox.grad.numpy()[2, 1:] == 0)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tp[name].grad, rtol=1e-9, atol=1e-11, msg=name)


@needs_torch
def test_dropout_between_layers_only_in_training():
    ours, theirs = pair(H=5, P=2, num_layers=2, dropout=0.5)
    x = tn.tensor(np.random.default_rng(5).standard_normal((5, 2, 3)))
    ours.eval()
    a, _ = ours(x)
    assert_close(a, torch_run(theirs.eval(), torch.tensor(x.numpy()))[0].detach(), rtol=1e-10, atol=1e-12)
    ours.train()
    tn.manual_seed(1)
    b, (h, c) = ours(x)
    assert not np.allclose(b.detach().numpy(), a.detach().numpy())
    # the last layer's output is not dropped: with a one-layer LSTM training changes nothing
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        one = nn.LSTM(3, 5, proj_size=2, dropout=0.5, dtype=tn.float64)
    assert_close(one.train()(x)[0], one.eval()(x)[0], rtol=0, atol=0)


def test_gradcheck_and_gradgradcheck_through_the_module():
    # x, h0, c0 and every parameter (the projection included), bidirectional, with padding
    tn.manual_seed(0)
    m = nn.LSTM(2, 3, num_layers=2, bidirectional=True, proj_size=2, dtype=tn.float64)
    rng = np.random.default_rng(6)
    x = tn.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    h0 = tn.tensor(rng.standard_normal((4, 2, 2)), requires_grad=True)
    c0 = tn.tensor(rng.standard_normal((4, 2, 3)), requires_grad=True)
    params = list(m.parameters())

    def fn(x, h0, c0, *_):
        out, (h, c) = m(x, (h0, c0), lengths=[3, 2])
        return out, h, c
    assert gradcheck(fn, [x, h0, c0] + params)
    assert gradgradcheck(fn, [x, h0, c0] + params[:5] + params[-5:], fast_mode=True)


def test_gradgradcheck_one_layer_every_input():
    tn.manual_seed(1)
    m = nn.LSTM(2, 3, proj_size=1, dtype=tn.float64)
    rng = np.random.default_rng(8)
    x = tn.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    h0 = tn.tensor(rng.standard_normal((1, 2, 1)), requires_grad=True)
    c0 = tn.tensor(rng.standard_normal((1, 2, 3)), requires_grad=True)

    def fn(x, h0, c0, *_):
        out, (h, c) = m(x, (h0, c0))
        return out, h, c
    assert gradgradcheck(fn, [x, h0, c0] + list(m.parameters()))


def test_proj_size_zero_runs_the_fused_layer_ops(monkeypatch):
    # proj_size=0 must stay on the benchmarked fused path, never the composed one
    def composed(*args, **kwargs):
        raise AssertionError("the composed projection path ran for proj_size=0")
    monkeypatch.setattr(nn, "_projected_lstm_direction", composed)
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=0)
    out, (h, c) = m(tn.randn(5, 2, 3))
    assert tuple(out.shape) == (5, 2, 8) and tuple(h.shape) == tuple(c.shape) == (4, 2, 4)
    assert "weight_hr_l0" not in m.state_dict() and repr(m) == "LSTM(3, 4, num_layers=2, bidirectional=True)"


def test_proj_size_comes_after_bidirectional_positionally_like_pytorch():
    # PyTorch's order: (..., dropout, bidirectional, proj_size, device, dtype)
    m = nn.LSTM(3, 5, 1, True, False, 0.0, False, 2, "cpu", tn.float64)
    assert m.proj_size == 2 and tuple(m.weight_hr_l0.shape) == (2, 5) and m.weight_hr_l0.dtype == tn.float64
    if torch is not None:
        assert torch.nn.LSTM(3, 5, 1, True, False, 0.0, False, 2).proj_size == 2


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("proj_size,error,match", [
    (-1, ValueError, "LSTM: proj_size must be a positive integer or zero"),
    (4, ValueError, r"LSTM: proj_size must be smaller than hidden_size, got proj_size=4 and hidden_size=4"),
    (7, ValueError, "smaller than hidden_size"),
    (2.0, TypeError, "LSTM: proj_size must be an int, got float"),
    (True, TypeError, "LSTM: proj_size must be an int, got bool"),
    ("2", TypeError, "LSTM: proj_size must be an int, got str"),
    (None, TypeError, "LSTM: proj_size must be an int, got NoneType"),
])
def test_bad_proj_size(proj_size, error, match):
    with pytest.raises(error, match=match):
        nn.LSTM(3, 4, proj_size=proj_size)


@needs_torch
@pytest.mark.parametrize("proj_size", [-1, 4, 7])
def test_torch_refuses_the_same_proj_sizes(proj_size):
    with pytest.raises(ValueError):
        torch.nn.LSTM(3, 4, proj_size=proj_size)


@pytest.mark.parametrize("call,match", [
    (lambda m: m(tn.randn(5, 2, 3), (tn.zeros(4, 2, 4), tn.zeros(4, 2, 4))),
     r"expected h0 of shape \(4, 2, 2\) \(num_layers \* num_directions, batch, proj_size\), got \(4, 2, 4\)"),
    (lambda m: m(tn.randn(5, 2, 3), (tn.zeros(4, 2, 2), tn.zeros(4, 2, 2))),
     r"expected c0 of shape \(4, 2, 4\) \(num_layers \* num_directions, batch, hidden_size\), got \(4, 2, 2\)"),
    (lambda m: m(tn.randn(5, 3), (tn.zeros(4, 4), tn.zeros(4, 4))), r"expected h0 of shape \(4, 2\) "),
    (lambda m: m(tn.randn(5, 2, 3), lengths=[6, 2]), r"LSTM: every length must be in \[1, 5\]"),
    (lambda m: m(tn.randn(5, 2, 4)), "input has 4 features"),
])
def test_wrong_states_and_input_with_projection(call, match):
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    with pytest.raises(ValueError, match=match):
        call(m)


def test_wrong_dtypes_with_projection_name_the_lstm():
    # the projected path is checked by the fused ops' _check_weights: the same messages
    m = nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(TypeError, match="LSTM: all arguments must have one dtype, got input=float64, "
                                        "w_ih=float32, w_hh=float32, b_ih=float32, b_hh=float32, "
                                        "w_hr=float32, h0=float64, c0=float64"):
        m(tn.randn(5, 2, 3, dtype=tn.float64))
    with pytest.raises(TypeError, match="LSTM: .*one dtype, got .*w_hr=float32, h0=float64, c0=float32"):
        m(tn.randn(5, 2, 3), (tn.zeros(1, 2, 2, dtype=tn.float64), tn.zeros(1, 2, 4)))
    with pytest.raises(TypeError, match="LSTM: expected 'input' to be a floating-point tensor, got int64"):
        m(tn.tensor(np.ones((5, 2, 3), dtype=np.int64)))
    with pytest.raises(TypeError, match="LSTM: c0 must be a Tensor"):
        m(tn.randn(5, 2, 3), (tn.zeros(1, 2, 2), np.zeros((1, 2, 4))))


def test_projection_and_fused_paths_give_the_same_messages():
    # one checker: the same text after the op's name, with w_hr listed only where there is one
    x = tn.randn(5, 2, 3, dtype=tn.float64)
    fused = nn.LSTM(3, 4)
    projected = nn.LSTM(3, 4, proj_size=2)
    messages = []
    for m in (fused, projected):
        with pytest.raises(TypeError) as info:
            m(x)
        messages.append(str(info.value).replace(", w_hr=float32", ""))
    assert messages[0] == messages[1].replace("LSTM:", "lstm_layer:", 1)


@pytest.mark.parametrize("name,shape,match", [
    ("weight_hr_l0", (3, 4), r"LSTM: w_hr must have shape \(proj_size, hidden_size\) = \(2, 4\) "
                             r"\(w_hh is \(4\*4, 2\)\), got \(3, 4\)"),
    ("weight_hr_l0_reverse", (2, 5), r"LSTM: w_hr_reverse must have shape \(proj_size, hidden_size\) "
                                     r"= \(2, 4\) \(w_hh_reverse is \(4\*4, 2\)\), got \(2, 5\)"),
    ("weight_hh_l0", (16, 3), r"LSTM: w_hr must have shape \(proj_size, hidden_size\) = \(3, 4\)"),
    ("weight_hh_l0", (15, 2), r"LSTM: w_hh must have shape \(4\*hidden_size, proj_size\), got \(15, 2\)"),
    ("weight_ih_l0", (12, 3), r"LSTM: w_ih has 12 rows but w_hh implies 4\*hidden_size = 16"),
    ("bias_ih_l0", (12,), r"LSTM: b_ih must have shape \(16,\), got \(12,\)"),
])
def test_mis_shaped_projection_weights(name, shape, match):
    # _check_weights takes the projection: w_hh (4H, P) and w_hr (P, H) must agree
    m = nn.LSTM(3, 4, proj_size=2, bidirectional=True)
    getattr(m, name).data = np.zeros(shape, dtype=np.float32)
    with pytest.raises(ValueError, match=match):
        m(tn.randn(5, 2, 3))


def test_input_on_another_device_names_the_lstm(monkeypatch):
    from tinynet import backend
    from tinynet.testing import fakecuda
    monkeypatch.setattr(backend, "_stand_in", backend._stand_in)     # restored after the test
    fakecuda.install()
    m = nn.LSTM(3, 4, proj_size=2, device="cpu")
    with pytest.raises(ValueError, match="LSTM: 'input' is on fakecuda:0 but 'w_ih' is on cpu"):
        m(tn.randn(5, 2, 3, device="fakecuda"))


@pytest.mark.parametrize("cls", ["GRU", "RNN"])
@pytest.mark.parametrize("proj_size", [2, 0])
def test_gru_and_rnn_refuse_proj_size_like_pytorch(cls, proj_size):
    # PyTorch refuses the keyword itself (0 too) with a ValueError, not Python's TypeError
    match = (f"{cls}: proj_size is only supported for LSTM, not RNN or GRU "
             rf"\(expected no proj_size argument\), got proj_size={proj_size}")
    with pytest.raises(ValueError, match=match):
        getattr(nn, cls)(3, 4, proj_size=proj_size)
    if torch is not None:
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
            getattr(torch.nn, cls)(3, 4, proj_size=proj_size)


def test_rnn_base_refuses_a_projection_for_gru():
    with pytest.raises(ValueError, match="RNNBase: proj_size is only supported for LSTM"):
        nn.RNNBase("GRU", 3, 4, proj_size=2)
    assert nn.RNNBase("GRU", 3, 4).proj_size == 0


def test_onnx_export_refuses_a_projection(tmp_path):
    pytest.importorskip("onnx", reason="the optional 'onnx' package is not installed (pip install tinynet[onnx])")
    from tinynet.onnx import UnsupportedOperatorError, export

    class Projected(tn.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, proj_size=2)

        def forward(self, x):
            return self.lstm(x)[0]
    with pytest.raises(UnsupportedOperatorError, match="LSTM with proj_size=2 .* has no ONNX export"):
        export(Projected(), tn.ones(2, 1, 3), tmp_path / "p.onnx")
    assert not (tmp_path / "p.onnx").exists()
