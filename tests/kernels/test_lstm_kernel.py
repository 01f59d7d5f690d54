"""Raw-array recurrent kernels against a plain reference, finite differences and torch.

These are the kernels the layers run: ``lstm_layer_forward``/``lstm_layer_backward`` (the
NumPy time loops on the CPU, in both gate forms whichever this CPU takes, the compiled
step kernels on a GPU) and the GRU/RNN layer kernels. Only the PyTorch comparisons need
torch.
"""
import numpy as np
import pytest

from tinynet import backend
from tinynet.kernels import gru as gk
from tinynet.kernels import lstm as lk


@pytest.fixture(autouse=True, params=["exp gates", "tanh gates"])
def gate_form(request, monkeypatch):
    """Every test runs the NumPy time loop's exp form and its tanh form (lk.tanh_gates)."""
    monkeypatch.setattr(lk, "tanh_gates", lambda: request.param == "tanh gates")
    return request.param


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


def test_one_step_hand_derived_forward_and_backward():
    # One unit, zero weights and biases: every pre-activation is 0, so i = f = o = 1/2,
    # g = 0, c' = c/2, h' = tanh(c/2)/2. With dh' = 1, dc' = 0 (c = 2, x = 1):
    #   dc_total = o (1 - tanh(1)^2),  da = [dct g i(1-i), dct c f(1-f), dct i (1-g^2), tanh(1) o(1-o)]
    zeros = np.zeros((4, 1))
    y, h, c, saved = lk.lstm_layer_forward(dev(np.ones((1, 1, 1))), dev(np.zeros((1, 1))),
                                           dev(np.array([[2.0]])), dev(zeros), dev(zeros))
    assert np.isclose(host(c)[0, 0], 1.0) and np.isclose(host(h)[0, 0], 0.5 * np.tanh(1.0))
    np.testing.assert_array_equal(host(y)[0], host(h))
    dx, dh0, dc0, dw_ih, dw_hh, db = map(host, lk.lstm_layer_backward(saved, dev(np.ones((1, 1, 1)))))
    dct = 0.5 * (1 - np.tanh(1.0) ** 2)
    d_gates = [dct * 0 * 0.25, dct * 2 * 0.25, dct * 0.5 * 1, np.tanh(1.0) * 0.25]
    np.testing.assert_allclose(db, d_gates, atol=1e-15)
    np.testing.assert_allclose(dw_ih[:, 0], d_gates, atol=1e-15)       # x = 1
    np.testing.assert_array_equal(dw_hh, np.zeros((4, 1)))             # h0 = 0
    np.testing.assert_allclose(dc0[0, 0], dct * 0.5)
    np.testing.assert_array_equal(dx, np.zeros((1, 1, 1)))             # zero W_ih
    np.testing.assert_array_equal(dh0, np.zeros((1, 1)))               # zero W_hh


def test_saturated_gates_stay_finite():
    # the tanh form of sigmoid has no exp to overflow: pre-activations of +-1000 give
    # exactly saturated gates, i = f = o = 1 and g = 1 (or all 0 and g = -1)
    for sign in (1.0, -1.0):
        x = dev(np.full((1, 2, 1), 1000.0 * sign))
        y, h, c, saved = lk.lstm_layer_forward(x, dev(np.zeros((2, 1))), dev(np.full((2, 1), 0.5)),
                                               dev(np.ones((4, 1))), dev(np.zeros((4, 1))))
        acts = host(saved.acts)
        if saved.feature_major:                  # NumPy keeps a step's gates as (4H, B)
            acts = acts.transpose(0, 2, 1)[..., np.argsort(lk.NUMPY_BLOCKS)]   # rows [i; f; o; g]
        assert np.all(np.isfinite(acts)) and np.all(np.isfinite(host(h)))
        expect = [1, 1, 1, 1] if sign > 0 else [0, 0, -1, 0]
        np.testing.assert_array_equal(acts[0], [expect, expect])
        np.testing.assert_allclose(host(c), [[1.5], [1.5]] if sign > 0 else [[0.0], [0.0]])


@pytest.mark.parametrize("reverse", [False, True])
def test_layer_backward_matches_finite_differences(reverse):
    # torch-free: <y, dy> + <h_n, dh> + <c_n, dc> differentiated numerically in every input
    rng = np.random.default_rng(8)
    args = list(make(rng, T=3, B=2, I=2, H=3))
    lengths = np.array([3, 2])
    mask = lk.length_mask(lengths, 3, np)
    dy, dh, dc = rng.standard_normal((3, 2, 3)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))

    def loss(a):
        y, h, c, _ = lk.lstm_layer_forward(*map(dev, a), reverse=reverse, mask=dev(mask))
        return float((host(y) * dy).sum() + (host(h) * dh).sum() + (host(c) * dc).sum())

    *_, saved = lk.lstm_layer_forward(*map(dev, args), reverse=reverse, mask=dev(mask))
    dx, dh0, dc0, dw_ih, dw_hh, db = map(host, lk.lstm_layer_backward(saved, dev(dy), dev(dh), dev(dc)))
    eps = 1e-6
    for k, grad in enumerate((dx, dh0, dc0, dw_ih, dw_hh, db, db)):
        num = np.zeros_like(args[k])
        for idx in np.ndindex(args[k].shape):
            plus, minus = [a.copy() for a in args], [a.copy() for a in args]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            num[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8, err_msg=f"argument {k}")


def test_cuda_step_kernels_match_the_numpy_path():
    # On a GPU the per-step gate math runs as compiled kernels (_FWD_OP, _BWD_OP), which no
    # CPU run executes: the same layer on both devices must agree.
    reason = backend.cuda_unavailable_reason()
    if reason is not None:
        pytest.skip(f"needs a GPU: {reason}")
    rng = np.random.default_rng(9)
    args = make(rng)
    mask = lk.length_mask(np.array([5, 2, 3]), 5, np)
    dy, dh, dc = rng.standard_normal((5, 3, 6)), rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    results = []
    for device in ("cpu", "cuda"):
        to = lambda a: backend.to_device(np.asarray(a), backend.Device(device))  # noqa: E731
        y, h, c, saved = lk.lstm_layer_forward(*map(to, args), mask=to(mask))
        assert (device == "cuda") == (backend.get_array_module(y) is not np)
        grads = lk.lstm_layer_backward(saved, to(dy), to(dh), to(dc))
        results.append([backend.asnumpy(a) for a in (y, h, c) + tuple(grads)])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


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


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_layer_backward_matches_torch_autograd(reverse, with_lengths):
    torch = pytest.importorskip("torch")
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
    torch = pytest.importorskip("torch")
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
    torch = pytest.importorskip("torch")
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


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stacked_step_input_matches_torch_lstm(reverse, dtype):
    # The CPU layer multiplies [W_hh | W_ih | b] by the stacked step input [h; x; 1], and
    # gets [dW_hh | dW_ih | db] from one GEMM. Wrong here means an x placed in the wrong
    # slot (reverse runs read x_t from the slot after theirs), a ones row present without
    # a bias, or the weight gradient split at the wrong column. Against torch's own LSTM
    # (its C++ kernel, not a per-step autograd graph), with and without biases and lengths.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    T, B, I, H = 6, 3, 5, 7
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = make(rng, T, B, I, H)
    dy, dh_n, dc_n = rng.standard_normal((T, B, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    for bias in (True, False):
        biases = (b_ih, b_hh) if bias else (None, None)
        args = [None if a is None else dev(a.astype(dtype)) for a in (x, h0, c0, w_ih, w_hh) + biases]
        y, h_n, c_n, saved = lk.lstm_layer_forward(*args, reverse=reverse)
        grads = [host(g) for g in lk.lstm_layer_backward(
            saved, *(dev(a.astype(dtype)) for a in (dy, dh_n, dc_n)))]
        layer = torch.nn.LSTM(I, H, bias=bias).to(torch.float64)
        with torch.no_grad():
            layer.weight_ih_l0.copy_(torch.tensor(w_ih))
            layer.weight_hh_l0.copy_(torch.tensor(w_hh))
            if bias:
                layer.bias_ih_l0.copy_(torch.tensor(b_ih))
                layer.bias_hh_l0.copy_(torch.tensor(b_hh))
        tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
        flip = (lambda a: torch.flip(a, [0])) if reverse else (lambda a: a)
        ty, (thn, tcn) = layer(flip(tx), (th[None], tc[None]))
        ty = flip(ty)
        np.testing.assert_allclose(host(y), ty.detach().numpy(), **tol)
        np.testing.assert_allclose(host(h_n), thn[0].detach().numpy(), **tol)
        np.testing.assert_allclose(host(c_n), tcn[0].detach().numpy(), **tol)
        ((ty * torch.tensor(dy)).sum() + (thn[0] * torch.tensor(dh_n)).sum()
         + (tcn[0] * torch.tensor(dc_n)).sum()).backward()
        dx, dh0, dc0, dw_ih, dw_hh, db = grads
        refs = [(dx, tx.grad), (dh0, th.grad), (dc0, tc.grad), (dw_ih, layer.weight_ih_l0.grad),
                (dw_hh, layer.weight_hh_l0.grad)]
        if bias:
            refs += [(db, layer.bias_ih_l0.grad), (db, layer.bias_hh_l0.grad)]
        for mine, ref in refs:
            assert mine.dtype == dtype
            np.testing.assert_allclose(mine, ref.numpy(), **tol)
