"""The LSTM's compiled steps (tinynet.kernels.compiled.lstm) against the NumPy route they
replace and against PyTorch.

The compiled route runs the forward's gate math (float32) and the backward's gate
gradients (float32 and float64); each test would fail if a gate, its gradient, the
cell-state carry or the mask's carry were wrong. A float32 layer without a mask runs its
whole time loop as one native job where OpenBLAS allows (tinynet.kernels.compiled.lstm_loop,
tested on its own in test_lstm_loop.py); the ``loop`` fixture runs these tests both
with it and with the Python-driven loop of compiled steps.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytest.importorskip("numba")

from tinynet import backend  # noqa: E402
from tinynet.kernels import lstm as lk  # noqa: E402
from tinynet.testing.routes import on_both_routes  # noqa: E402

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}


@pytest.fixture(autouse=True)
def restore_switch():
    before = backend._compiled
    yield
    backend._compiled = before


@pytest.fixture(params=["native", "python"])
def loop(request, monkeypatch):
    """Which loop drives the compiled steps: the native job where it can run, or (with the
    native job switched off) the Python loop that calls them step by step."""
    if request.param == "python":
        monkeypatch.setattr(lk, "_native_pieces", lambda *arrays: 0)
    return request.param


@st.composite
def layer_cases(draw):
    """A layer's arrays and arguments: every shape and option the kernels take."""
    T, B = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    I, H = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def arr(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    # x arrives non-contiguous half the time (a transposed batch-first view)
    x = arr(B, T, I).transpose(1, 0, 2) if draw(st.booleans()) else arr(T, B, I)
    given_state = draw(st.booleans())
    h0 = arr(B, H) if given_state else np.zeros((B, H), dtype)
    c0 = arr(B, H) if given_state else np.zeros((B, H), dtype)
    w_ih, w_hh = arr(4 * H, I, scale=0.7), arr(4 * H, H, scale=0.7)
    b_ih, b_hh = (arr(4 * H), arr(4 * H)) if draw(st.booleans()) else (None, None)
    lengths = draw(st.lists(st.integers(1, T), min_size=B, max_size=B)) if draw(st.booleans()) else None
    grads = dict(dy=arr(T, B, H) if draw(st.booleans()) else None,
                 dh_n=arr(B, H) if draw(st.booleans()) else None,
                 dc_n=arr(B, H) if draw(st.booleans()) else None)
    return dict(x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh,
                reverse=draw(st.booleans()), lengths=lengths), grads


def forward(case):
    mask = None if case["lengths"] is None else lk.length_mask(case["lengths"], case["x"].shape[0], np)
    return lk.lstm_layer_forward(case["x"], case["h0"], case["c0"], case["w_ih"], case["w_hh"],
                                 case["b_ih"], case["b_hh"], reverse=case["reverse"], mask=mask)


def forward_and_backward(case, grads):
    y, h_n, c_n, saved = forward(case)
    return (y, h_n, c_n) + lk.lstm_layer_backward(saved, **grads)


def assert_routes_agree(numpy_out, compiled_out, dtype):
    assert len(numpy_out) == len(compiled_out)
    for name, a, b in zip(["y", "h_n", "c_n", "dx", "dh0", "dc0", "dw_ih", "dw_hh", "db"],
                          numpy_out, compiled_out):
        assert b.dtype == dtype, name
        np.testing.assert_allclose(b, a, err_msg=name, **TOL[np.dtype(dtype).type])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layer_cases())
def test_compiled_layer_matches_numpy_route(loop, case_and_grads):
    """Forward outputs and every gradient, the compiled route against the NumPy one."""
    case, grads = case_and_grads
    numpy_out, compiled_out = on_both_routes(lambda: forward_and_backward(case, grads))
    assert_routes_agree(numpy_out, compiled_out, case["x"].dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_compiled_forward_step_runs_on_float32_only(loop, dtype, monkeypatch):
    """The route comparison above compares something only if the compiled forward is taken:
    for float32 (so the float32 cases test it) once a step from Python, or as one native
    job of both directions where ``loop`` is "native" (and OpenBLAS can run it); never
    for float64 (its functions are float32-accurate)."""
    from tinynet.kernels.compiled import lstm as compiled_lstm
    calls, jobs = [], []
    step = compiled_lstm.forward_step
    monkeypatch.setattr(compiled_lstm, "forward_step", lambda *a: calls.append(1) or step(*a))
    run_native = lk._run_native
    monkeypatch.setattr(lk, "_run_native", lambda *a: jobs.append(a[0]) or run_native(*a))
    rng = np.random.default_rng(0)
    T, B, I, H = 4, 3, 2, 5
    case = dict(x=rng.standard_normal((T, B, I)).astype(dtype), h0=np.zeros((B, H), dtype),
                c0=np.zeros((B, H), dtype), w_ih=rng.standard_normal((4 * H, I)).astype(dtype),
                w_hh=rng.standard_normal((4 * H, H)).astype(dtype), b_ih=None, b_hh=None,
                reverse=False, lengths=None)
    on_both_routes(lambda: forward(case))
    native = loop == "native" and dtype == np.float32 and lk._native_pieces(H, case["x"]) > 0
    assert len(jobs) == native
    assert len(calls) == (T if dtype == np.float32 and not native else 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
def test_nan_propagates_as_on_the_numpy_route(loop, dtype, reverse):
    """A NaN in one input step of one sequence: NaN in that sequence from that step on
    (and in the weight gradients), the other sequences finite, on both routes alike."""
    rng = np.random.default_rng(3)
    T, B, I, H = 4, 3, 2, 5
    case = dict(x=rng.standard_normal((T, B, I)).astype(dtype), h0=np.zeros((B, H), dtype),
                c0=np.zeros((B, H), dtype),
                w_ih=rng.standard_normal((4 * H, I)).astype(dtype),
                w_hh=rng.standard_normal((4 * H, H)).astype(dtype), b_ih=None, b_hh=None,
                reverse=reverse, lengths=None)
    case["x"][1, 0, 0] = np.nan
    grads = dict(dy=np.ones((T, B, H), dtype), dh_n=None, dc_n=None)
    numpy_out, compiled_out = on_both_routes(lambda: forward_and_backward(case, grads))
    assert_routes_agree(numpy_out, compiled_out, dtype)     # NaN where NaN, equal elsewhere
    y = compiled_out[0]
    later = slice(1, None) if not reverse else slice(0, 2)
    assert np.isnan(y[later, 0]).all() and np.isfinite(y[:, 1:]).all()
    assert np.isnan(compiled_out[6]).any()                  # dw_ih


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_steps_carry_the_state_and_the_gradient(dtype):
    """Hand-checkable: a sequence of length 1 in a batch of length-3 ones keeps h_1 and
    c_1 to the end, and its dh_n reaches step 0 unchanged through the padded steps."""
    rng = np.random.default_rng(0)
    T, B, I, H = 3, 2, 2, 3
    case = dict(x=rng.standard_normal((T, B, I)).astype(dtype), h0=np.zeros((B, H), dtype),
                c0=np.zeros((B, H), dtype), w_ih=rng.standard_normal((4 * H, I)).astype(dtype),
                w_hh=np.zeros((4 * H, H), dtype), b_ih=None, b_hh=None, reverse=False,
                lengths=[3, 1])
    backend.set_compiled(True)
    y, h_n, c_n, saved = forward(case)
    np.testing.assert_array_equal(y[1:, 1], 0)
    np.testing.assert_array_equal(h_n[1], y[0, 1])          # carried, not recomputed
    dh_n = np.zeros((B, H), dtype)
    dh_n[1] = 1
    dx = lk.lstm_layer_backward(saved, None, dh_n, None)[0]
    # with W_hh = 0, only step 0 of sequence 1 sees dh_n, and only through its own gates
    np.testing.assert_array_equal(dx[1:, 1], 0)
    assert np.abs(dx[0, 1]).max() > 0


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_module_on_the_compiled_route_matches_torch(loop, batch_first):
    """nn.LSTM, 2 layers, bidirectional, given h0/c0, float32: outputs and gradients of
    input, states and every weight against torch.nn.LSTM."""
    torch = pytest.importorskip("torch")
    import tinynet
    from tinynet.nn.rnn import LSTM
    backend.set_compiled(True)
    T, B, I, H = 5, 3, 4, 6
    tinynet.manual_seed(0)
    ours = LSTM(I, H, num_layers=2, bidirectional=True, batch_first=batch_first)
    theirs = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=batch_first)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                            for k, v in ours.state_dict().items()})
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(np.float32)
    h0, c0 = (rng.standard_normal((4, B, H)).astype(np.float32) for _ in range(2))
    xs = [tinynet.tensor(a, requires_grad=True) for a in (x, h0, c0)]
    ts = [torch.tensor(a, requires_grad=True) for a in (x, h0, c0)]
    y, (h_n, c_n) = ours(xs[0], (xs[1], xs[2]))
    ty, (th_n, tc_n) = theirs(ts[0], (ts[1], ts[2]))
    weights = rng.standard_normal(y.shape).astype(np.float32)
    ((y * tinynet.tensor(weights)).sum() + h_n.sum() + (c_n * c_n).sum()).backward()
    ((ty * torch.from_numpy(weights)).sum() + th_n.sum() + (tc_n * tc_n).sum()).backward()
    for a, b in [(y, ty), (h_n, th_n), (c_n, tc_n)] + [(u.grad, v.grad) for u, v in zip(xs, ts)]:
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)
