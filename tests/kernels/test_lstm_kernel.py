"""Raw-array recurrent kernels against a plain reference, finite differences and torch."""
import numpy as np
import pytest

from tinynet import backend
from tinynet.kernels import gru as gk
from tinynet.kernels import lstm as lk


def dev(a):
    """Moves a host array to the test device (cpu, or cuda under TINYNET_TEST_DEVICE=cuda)."""
    return backend.to_device(np.asarray(a), backend.get_default_device())


def host(a):
    return backend.asnumpy(a)


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def reference_lstm(x, h, c, w_ih, w_hh, b, reverse=False, lengths=None):
    """Straightforward per-step LSTM: the formula as written in the paper."""
    T, B, _ = x.shape
    H = h.shape[1]
    ys = np.zeros((T, B, H))
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        a = x[t] @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = (sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]),
                      sigmoid(a[:, 3 * H:]))
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        if lengths is not None:
            m = (t < np.asarray(lengths))[:, None]
            c_new = np.where(m, c_new, c)
            h_new = np.where(m, h_new, h)
            ys[t] = np.where(m, h_new, 0)
        else:
            ys[t] = h_new
        h, c = h_new, c_new
    return ys, h, c


def make(rng, T=5, B=3, I=4, H=6):
    s = 1 / np.sqrt(H)
    return (rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H)),
            rng.uniform(-s, s, (4 * H, I)), rng.uniform(-s, s, (4 * H, H)),
            rng.uniform(-s, s, 4 * H), rng.uniform(-s, s, 4 * H))


def test_activate_gates_matches_sigmoid_and_tanh_without_overflow():
    # Wrong here means the tanh form of sigmoid or the gate order i, f, g, o is off.
    a = np.array([[-1000.0, -3.0, 0.0, 2.0, 1000.0, 0.5, -0.5, 700.0]])
    out = host(lk.activate_gates(dev(a.copy())))
    H = 2
    expect = np.concatenate([sigmoid(a[:, :2 * H]), np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])], 1)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(out, expect, atol=1e-15)
    assert np.all(np.isfinite(out))


def test_cell_forward_backward_hand_derived_case():
    # One unit, all pre-activations zero: i = f = o = 1/2, g = 0, so c' = c/2, h' = tanh(c/2)/2.
    gates = dev(np.zeros((1, 4)))
    c = dev(np.array([[2.0]]))
    h, c_new, tc = lk.lstm_cell_forward(gates, c)
    assert np.isclose(host(c_new)[0, 0], 1.0) and np.isclose(host(h)[0, 0], 0.5 * np.tanh(1.0))
    d_gates, dc_prev = lk.lstm_cell_backward(gates, c, tc, dev(np.ones((1, 1))), dev(np.zeros((1, 1))))
    dct = 0.5 * (1 - np.tanh(1.0) ** 2)
    expect = [dct * 0 * 0.25, dct * 2 * 0.25, dct * 0.5 * 1, np.tanh(1.0) * 0.25]
    np.testing.assert_allclose(host(d_gates)[0], expect, atol=1e-15)
    np.testing.assert_allclose(host(dc_prev)[0, 0], dct * 0.5)


def test_cell_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    B, H = 3, 4
    a0, c0 = rng.standard_normal((B, 4 * H)), rng.standard_normal((B, H))
    dh, dc = rng.standard_normal((B, H)), rng.standard_normal((B, H))

    def loss(a, c):
        h, cn, _ = lk.lstm_cell_forward(dev(a.copy()), dev(c))
        return float((host(h) * dh).sum() + (host(cn) * dc).sum())

    acts = dev(a0.copy())
    _, _, tc = lk.lstm_cell_forward(acts, dev(c0))
    d_gates, dc_prev = map(host, lk.lstm_cell_backward(acts, dev(c0), tc, dev(dh), dev(dc)))
    eps = 1e-6
    for arr, grad in ((a0, d_gates), (c0, dc_prev)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += eps
            minus[idx] -= eps
            args = (plus, c0) if arr is a0 else (a0, plus)
            args_m = (minus, c0) if arr is a0 else (a0, minus)
            num[idx] = (loss(*args) - loss(*args_m)) / (2 * eps)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_layer_forward_matches_reference(reverse, with_lengths):
    rng = np.random.default_rng(1)
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = make(rng)
    lengths = np.array([5, 2, 3]) if with_lengths else None
    mask = dev(lk.length_mask(lengths, 5, np)) if with_lengths else None
    if mask is not None:
        mask = dev(host(mask))
    y, h_n, c_n, _ = lk.lstm_layer_forward(*map(dev, (x, h0, c0, w_ih, w_hh, b_ih, b_hh)),
                                           reverse=reverse, mask=mask)
    ry, rh, rc = reference_lstm(x, h0, c0, w_ih, w_hh, b_ih + b_hh, reverse, lengths)
    np.testing.assert_allclose(host(y), ry, atol=1e-12)
    np.testing.assert_allclose(host(h_n), rh, atol=1e-12)
    np.testing.assert_allclose(host(c_n), rc, atol=1e-12)


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_layer_backward_matches_torch_autograd(reverse, with_lengths):
    # Wrong here means a BPTT term (carry through c, the recurrent GEMM, masking) is off.
    rng = np.random.default_rng(2)
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = make(rng)
    lengths = np.array([5, 1, 3]) if with_lengths else None
    dy, dh_n, dc_n = rng.standard_normal((5, 3, 6)), rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    mask = dev(lk.length_mask(lengths, 5, np)) if with_lengths else None
    y, h_n, c_n, saved = lk.lstm_layer_forward(*map(dev, (x, h0, c0, w_ih, w_hh, b_ih, b_hh)),
                                               reverse=reverse, mask=mask)
    grads = [host(g) for g in lk.lstm_layer_backward(saved, dev(dy), dev(dh_n), dev(dc_n))]

    tx, th, tc, twi, twh, tbi, tbh = [torch.tensor(a, requires_grad=True)
                                      for a in (x, h0, c0, w_ih, w_hh, b_ih, b_hh)]
    H = 6
    h, c = th, tc
    ys = [None] * 5
    for t in (range(4, -1, -1) if reverse else range(5)):
        a = tx[t] @ twi.T + tbi + h @ twh.T + tbh
        i, f, g, o = a[:, :H].sigmoid(), a[:, H:2 * H].sigmoid(), a[:, 2 * H:3 * H].tanh(), a[:, 3 * H:].sigmoid()
        cn = f * c + i * g
        hn = o * cn.tanh()
        if lengths is not None:
            m = torch.tensor(t < lengths)[:, None]
            cn, hn = torch.where(m, cn, c), torch.where(m, hn, h)
            ys[t] = torch.where(m, hn, torch.zeros(()).double())
        else:
            ys[t] = hn
        h, c = hn, cn
    loss = (torch.stack(ys) * torch.tensor(dy)).sum() + (h * torch.tensor(dh_n)).sum() + (c * torch.tensor(dc_n)).sum()
    loss.backward()
    dx, dh0, dc0, dw_ih, dw_hh, db = grads
    for mine, ref in ((dx, tx), (dh0, th), (dc0, tc), (dw_ih, twi), (dw_hh, twh), (db, tbi), (db, tbh)):
        np.testing.assert_allclose(mine, ref.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_gru_layer_matches_torch(reverse, with_lengths):
    rng = np.random.default_rng(3)
    T, B, I, H = 4, 3, 5, 4
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, H))
    w_ih, w_hh = rng.standard_normal((3 * H, I)) * 0.5, rng.standard_normal((3 * H, H)) * 0.5
    b_ih, b_hh = rng.standard_normal(3 * H), rng.standard_normal(3 * H)
    lengths = np.array([4, 2, 1]) if with_lengths else None
    mask = dev(lk.length_mask(lengths, T, np)) if with_lengths else None
    dy, dh_n = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    y, h_n, saved = gk.gru_layer_forward(*map(dev, (x, h0, w_ih, w_hh, b_ih, b_hh)), reverse=reverse, mask=mask)
    grads = [host(g) for g in gk.gru_layer_backward(saved, dev(dy), dev(dh_n))]

    tx, th, twi, twh, tbi, tbh = [torch.tensor(a, requires_grad=True) for a in (x, h0, w_ih, w_hh, b_ih, b_hh)]
    h, ys = th, [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        hn = torch.gru_cell(tx[t], h, twi, twh, tbi, tbh)
        if lengths is not None:
            m = torch.tensor(t < lengths)[:, None]
            hn = torch.where(m, hn, h)
            ys[t] = torch.where(m, hn, torch.zeros(()).double())
        else:
            ys[t] = hn
        h = hn
    np.testing.assert_allclose(host(y), torch.stack(ys).detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(host(h_n), h.detach().numpy(), atol=1e-12)
    ((torch.stack(ys) * torch.tensor(dy)).sum() + (h * torch.tensor(dh_n)).sum()).backward()
    for mine, ref in zip(grads, (tx, th, twi, twh, tbi, tbh)):
        np.testing.assert_allclose(mine, ref.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_layer_matches_torch(nonlinearity, reverse):
    rng = np.random.default_rng(4)
    T, B, I, H = 4, 3, 5, 4
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, H))
    w_ih, w_hh = rng.standard_normal((H, I)) * 0.5, rng.standard_normal((H, H)) * 0.5
    b_ih, b_hh = rng.standard_normal(H), rng.standard_normal(H)
    lengths = np.array([4, 3, 1])
    mask = dev(lk.length_mask(lengths, T, np))
    dy, dh_n = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    y, h_n, saved = gk.rnn_layer_forward(*map(dev, (x, h0, w_ih, w_hh, b_ih, b_hh)), nonlinearity,
                                         reverse=reverse, mask=mask)
    dx, dh0, dwi, dwh, db = [host(g) for g in gk.rnn_layer_backward(saved, dev(dy), dev(dh_n))]
    cell = torch.rnn_tanh_cell if nonlinearity == "tanh" else torch.rnn_relu_cell
    tx, th, twi, twh, tbi, tbh = [torch.tensor(a, requires_grad=True) for a in (x, h0, w_ih, w_hh, b_ih, b_hh)]
    h, ys = th, [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        m = torch.tensor(t < lengths)[:, None]
        hn = torch.where(m, cell(tx[t], h, twi, twh, tbi, tbh), h)
        ys[t] = torch.where(m, hn, torch.zeros(()).double())
        h = hn
    np.testing.assert_allclose(host(y), torch.stack(ys).detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(host(h_n), h.detach().numpy(), atol=1e-12)
    ((torch.stack(ys) * torch.tensor(dy)).sum() + (h * torch.tensor(dh_n)).sum()).backward()
    for mine, ref in zip((dx, dh0, dwi, dwh, db, db), (tx, th, twi, twh, tbi, tbh)):
        np.testing.assert_allclose(mine, ref.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_float32_layer_close_to_float64():
    rng = np.random.default_rng(5)
    args = make(rng, T=20, B=4, I=8, H=16)
    y64, *_ = lk.lstm_layer_forward(*map(dev, args))
    y32, *_ = lk.lstm_layer_forward(*[dev(a.astype(np.float32)) for a in args])
    assert y32.dtype == np.float32
    np.testing.assert_allclose(host(y32), host(y64), atol=1e-5)
