"""F.lstm_cell / gru_cell / rnn_*_cell and the layer ops: formulas, both backward paths,
double backward through whole sequences, and argument errors. (Registry-driven gradcheck,
gradgradcheck and torch parity live in tests/testing/test_registry.py.)"""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import assert_close, gradcheck, gradgradcheck


def t(a, grad=True):
    return tn.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def lstm_args(rng, T=4, B=2, I=3, H=2, bias=True):
    a = [rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H)),
         rng.standard_normal((4 * H, I)) * 0.6, rng.standard_normal((4 * H, H)) * 0.6]
    a += [rng.standard_normal(4 * H), rng.standard_normal(4 * H)] if bias else [None, None]
    return [None if v is None else t(v) for v in a]


def test_lstm_cell_hand_derived():
    # Zero weights and biases: every gate pre-activation is 0, so i = f = o = 1/2, g = 0:
    # c' = c / 2 and h' = tanh(c / 2) / 2.
    x, h, c = t([[1.0, -2.0]]), t([[0.3]]), t([[2.0]])
    h1, c1 = F.lstm_cell(x, (h, c), t(np.zeros((4, 2))), t(np.zeros((4, 1))))
    assert np.isclose(c1.item(), 1.0) and np.isclose(h1.item(), 0.5 * np.tanh(1.0))
    h1.backward()
    # dh'/dc = o * (1 - tanh(c')^2) * f = 0.5 * (1 - tanh(1)^2) * 0.5
    assert np.isclose(c.grad.item(), 0.25 * (1 - np.tanh(1.0) ** 2))


def test_gru_cell_b_hn_sits_inside_reset_gate():
    # With W = 0 and r = sigmoid(b_ir + b_hr) = sigmoid(-inf-ish) ~ 0, b_hn must not matter.
    H = 1
    b_ih = t([-50.0, 0.0, 0.2])
    b_hh = t([0.0, 0.0, 7.0])
    h_out = F.gru_cell(t([[1.0]]), t([[0.5]]), t(np.zeros((3, 1))), t(np.zeros((3, H))), b_ih, b_hh)
    # z = 1/2, n = tanh(0.2 + r * 7) with r ~ 0 -> tanh(0.2); h' = n + z (h - n)
    n = np.tanh(0.2)
    assert np.isclose(h_out.item(), n + 0.5 * (0.5 - n), atol=1e-12)


def test_rnn_cells_formula():
    x, h = t([[1.0, 2.0]]), t([[0.5]])
    w_ih, w_hh, b = t([[0.1, -0.3]]), t([[2.0]]), t([0.05])
    a = 1 * 0.1 - 2 * 0.3 + 0.5 * 2.0 + 0.05 + 0.05
    assert np.isclose(F.rnn_tanh_cell(x, h, w_ih, w_hh, b, b).item(), np.tanh(a))
    assert np.isclose(F.rnn_relu_cell(x, h, w_ih, w_hh, b, b).item(), max(a, 0))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [4, 2]])
def test_fast_and_op_written_backward_agree(reverse, lengths):
    # create_graph=True takes the op-written BPTT path; both must give the same gradients.
    rng = np.random.default_rng(0)
    grads = []
    for create_graph in (False, True):
        args = lstm_args(np.random.default_rng(0))
        y, h, c = F.lstm_layer(*args, reverse=reverse, lengths=lengths)
        v = rng.standard_normal(y.shape)
        rng = np.random.default_rng(0)
        ((y * t(v, False)).sum() + (h * h).sum() + c.sum()).backward(create_graph=create_graph)
        grads.append([a.grad.detach() for a in args])
    for g0, g1 in zip(*grads):
        assert_close(g0, g1, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
def test_layer_ops_double_backward_over_sequences(op):
    rng = np.random.default_rng(1)
    if op == "lstm":
        args = lstm_args(rng, T=3, B=2, I=2, H=2)
        fn = lambda *a: F.lstm_layer(*a, reverse=True, lengths=[3, 2])  # noqa: E731
    else:
        G = 3 if op == "gru" else 1
        args = [t(rng.standard_normal(s)) for s in [(3, 2, 2), (2, 2), (G * 2, 2), (G * 2, 2), (G * 2,), (G * 2,)]]
        layer = F.gru_layer if op == "gru" else F.rnn_layer
        fn = lambda *a: layer(*a, lengths=[1, 3])  # noqa: E731
    assert gradcheck(fn, args)
    assert gradgradcheck(fn, args, fast_mode=True)   # a random projection of the Hessian


def test_cells_unbatched_and_default_state():
    rng = np.random.default_rng(2)
    w_ih, w_hh = t(rng.standard_normal((8, 3))), t(rng.standard_normal((8, 2)))
    x = t(rng.standard_normal(3))
    h, c = F.lstm_cell(x, None, w_ih, w_hh)
    assert h.shape == (2,) and c.shape == (2,)
    h2, c2 = F.lstm_cell(F.reshape(x, 1, 3), (tn.zeros(1, 2, dtype=tn.float64),) * 2, w_ih, w_hh)
    assert_close(h, h2[0])
    assert gradcheck(lambda x, a, b: F.lstm_cell(x, (a, b), w_ih, w_hh),
                     [x, t(rng.standard_normal(2)), t(rng.standard_normal(2))])


def test_long_sequence_layer_op_backward():
    rng = np.random.default_rng(3)
    args = lstm_args(rng, T=2000, B=2, I=2, H=3)
    y, h, c = F.lstm_layer(*args)
    (y.sum() + h.sum()).backward()
    assert np.isfinite(args[0].grad.numpy()).all()


@pytest.mark.parametrize("call,err,match", [
    (lambda a: F.lstm_layer(a[0][0], *a[1:]), ValueError, r"expected input of shape \(seq_len, batch, input_size\)"),
    (lambda a: F.lstm_layer(F.reshape(a[0], 4, 2, 3)[:, :, :2], *a[1:]), ValueError, "input has 2 features but w_ih expects input_size=3"),
    (lambda a: F.lstm_layer(a[0], a[1][:1], *a[2:]), ValueError, r"expected h0 of shape \(2, 2\)"),
    (lambda a: F.lstm_layer(a[0], a[1], a[2][:, :1], *a[3:]), ValueError, r"expected c0 of shape"),
    (lambda a: F.lstm_layer(*a[:4], a[4][:4], *a[5:]), ValueError, r"w_hh must have shape"),
    (lambda a: F.lstm_layer(*a[:5], a[5][:3], a[6]), ValueError, r"b_ih must have shape \(8,\)"),
    (lambda a: F.lstm_layer(*a, lengths=[1, 2, 3]), ValueError, "lengths has 3 entries"),
    (lambda a: F.lstm_layer(*a, lengths=[0, 2]), ValueError, r"in \[1, 4\]"),
    (lambda a: F.lstm_layer(*a, lengths=[5, 2]), ValueError, r"in \[1, 4\]"),
    (lambda a: F.lstm_layer(a[0].to(tn.float32), *a[1:]), TypeError, "one dtype"),
    (lambda a: F.lstm_layer(a[0].numpy() if False else a[0].detach().numpy(), *a[1:]), TypeError, "must be a Tensor"),
    (lambda a: F.lstm_cell(a[0][0], a[1], *a[3:]), TypeError, r"hx must be a tuple \(h, c\)"),
    (lambda a: F.lstm_cell(a[0][0], (a[1], a[2][:1]), *a[3:]), ValueError, r"expected c of shape \(2, 2\)"),
    (lambda a: F.lstm_cell(a[0], (a[1], a[2]), *a[3:]), ValueError, "1-D .* or 2-D"),
    (lambda a: F.rnn_layer(a[0], a[1], a[3][:2], a[4][:2, :], nonlinearity="gelu"), ValueError, "nonlinearity"),
])
def test_bad_arguments(call, err, match):
    args = lstm_args(np.random.default_rng(4))
    with pytest.raises(err, match=match):
        call(args)


def _direction_args(rng, op, I=3, H=2, B=2):
    gates, states = {"lstm_layer": (4, 2), "gru_layer": (3, 1), "rnn_layer": (1, 1)}[op]
    st = [t(rng.standard_normal((B, H))) for _ in range(states)]
    w = [t(rng.standard_normal((gates * H, I)) * 0.6), t(rng.standard_normal((gates * H, H)) * 0.6),
         t(rng.standard_normal(gates * H)), t(rng.standard_normal(gates * H))]
    return st, w


@pytest.mark.parametrize("op", ["lstm_layer", "gru_layer", "rnn_layer"])
@pytest.mark.parametrize("lengths", [None, [5, 3]])
def test_bidirectional_layer_side_by_side_equals_two_single_direction_calls(op, lengths, monkeypatch):
    """The two directions run as two chunks of parallel_for (forced here on a tiny layer by
    a 1-byte grain; on a GPU one chunk: the device is already parallel): outputs and every
    input's gradient equal two calls of the single-direction op (forward, then reverse),
    and the float64 gradients pass gradcheck on that path."""
    from tinynet import backend
    on_cpu = tn.get_default_device().type == "cpu"
    if on_cpu and backend.get_num_threads() < 2:
        pytest.skip("one thread: parallel_for runs the two directions one after the other")
    side_by_side = 2 if on_cpu else 1
    chunks = []
    parallel_for = backend.parallel_for

    def counting(count, fn, nbytes=0, like=None, calls=1):
        chunks.append(backend.parallel_chunks(count, nbytes, like, calls))
        return parallel_for(count, fn, nbytes, like, calls)
    monkeypatch.setattr(backend, "parallel_grain", 1)
    monkeypatch.setattr(backend, "parallel_for", counting)
    rng = np.random.default_rng(3)
    x = t(rng.standard_normal((5, 2, 3)))
    (st_f, w_f), (st_r, w_r) = _direction_args(rng, op), _direction_args(rng, op)
    single = getattr(F, op)
    both = F.bidirectional_layer(op, x, st_f, w_f, st_r, w_r, lengths=lengths)
    assert chunks[:1] == [side_by_side], "the two directions did not run as two chunks"
    expected = (single(x, *st_f, *w_f, lengths=lengths), single(x, *st_r, *w_r, reverse=True, lengths=lengths))
    leaves = [x, *st_f, *w_f, *st_r, *w_r]
    grads = []
    for outputs in (both, expected):
        for leaf in leaves:
            leaf.grad = None
        loss = sum(((k + 1) * o).sum() for k, o in enumerate(outputs[0] + outputs[1]))
        loss.backward()
        grads.append([leaf.grad.numpy() for leaf in leaves])
    for got, want in zip(both[0] + both[1], expected[0] + expected[1]):
        assert_close(got.detach(), want.detach(), rtol=1e-12, atol=1e-12)
    for got, want in zip(*grads):
        assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert chunks.count(side_by_side) >= 2, "backward did not run the directions as two chunks"
    fn = lambda x_, *a: sum(F.bidirectional_layer(op, x_, a[:len(st_f)], a[len(st_f):len(st_f) + 4],  # noqa: E731
                                                  a[len(st_f) + 4:2 * len(st_f) + 4], a[2 * len(st_f) + 4:],
                                                  lengths=lengths), ())
    assert gradcheck(fn, tuple(leaves))


def test_bidirectional_layer_errors():
    rng = np.random.default_rng(0)
    x = t(rng.standard_normal((4, 2, 3)))
    st, w = _direction_args(rng, "lstm_layer")
    with pytest.raises(ValueError, match="op must be one of 'lstm_layer', 'gru_layer', 'rnn_layer'"):
        F.bidirectional_layer("lstm", x, st, w, st, w)
    with pytest.raises(ValueError, match="lstm_layer takes 2 states and 4 weights .* got 1 states_reverse"):
        F.bidirectional_layer("lstm_layer", x, st, w, st[:1], w)
    with pytest.raises(ValueError, match=r"bidirectional_layer: expected c0_reverse of shape \(2, 2\)"):
        F.bidirectional_layer("lstm_layer", x, st, w, [st[0], st[1][:1]], w)
    with pytest.raises(ValueError, match=r"bidirectional_layer: w_hh_reverse must have shape"):
        F.bidirectional_layer("lstm_layer", x, st, w, st, [w[0], w[1][:4], w[2], w[3]])
    with pytest.raises(ValueError, match=r"bidirectional_layer: b_ih must have shape \(8,\)"):
        F.bidirectional_layer("lstm_layer", x, st, [w[0], w[1], w[2][:3], w[3]], st, w)
    with pytest.raises(ValueError, match="bidirectional_layer: lengths has 3 entries"):
        F.bidirectional_layer("lstm_layer", x, st, w, st, w, lengths=[1, 2, 3])
    st1, w1 = _direction_args(rng, "rnn_layer")
    with pytest.raises(ValueError, match="bidirectional_layer: nonlinearity must be 'tanh' or 'relu'"):
        F.bidirectional_layer("rnn_layer", x, st1, w1, st1, w1, nonlinearity="gelu")
