"""Compiled ReLU, ELU and sigmoid (tinynet/kernels/compiled/activation.py) against the NumPy routes of
tinynet/functional/activation.py and against PyTorch, on drawn shapes (0-d to 4-d, empty),
float32 and float64, drawn alpha, non-contiguous inputs and gradients, NaN and ±0."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("numba")

import tinynet as tn
import tinynet.functional as F
from tinynet import backend
from tinynet.functional import activation

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)

THRESHOLD = activation._COMPILED_MIN_SIZE      # the library's own, before any test changes it
ELU_FORWARD_THRESHOLD = activation._COMPILED_ELU_FORWARD_MIN_SIZE
SIGMOID_FORWARD_THRESHOLD = activation._COMPILED_SIGMOID_FORWARD_MIN_SIZE
from tinynet.testing import assert_close
from tinynet.testing.routes import on_both_routes


@pytest.fixture(scope="module")
def compiled_on():
    """The compiled switch on and the size thresholds at 0, put back afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backend, "_compiled", True)
        mp.setattr(activation, "_COMPILED_MIN_SIZE", 0)
        mp.setattr(activation, "_COMPILED_ELU_FORWARD_MIN_SIZE", 0)
        mp.setattr(activation, "_COMPILED_SIGMOID_FORWARD_MIN_SIZE", 0)
        yield


shapes = st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple)


def _run(op, x, g, transpose):
    """``(y, dx)`` of ``op`` on ``x`` with upstream gradient ``g``, first order; with
    ``transpose``, x and g are non-contiguous views (their last two dims swapped back)."""
    def arrange(a):
        return np.swapaxes(np.swapaxes(a, -1, -2).copy(), -1, -2) if transpose else a
    xt = tn.tensor(arrange(x), requires_grad=True)
    y = op(xt)
    y.backward(tn.tensor(arrange(g)))
    return y.detach().numpy(), xt.grad.numpy()


def _values(rng, shape, dtype):
    """Normal values with NaN, ±0 and ±Inf sprinkled in."""
    x = np.asarray(rng.standard_normal(shape) * 3)
    specials = np.array([np.nan, 0.0, -0.0, np.inf, -np.inf, -30.0])
    mask = np.asarray(rng.random(shape) < 0.1)
    x[mask] = rng.choice(specials, size=int(mask.sum()))
    return x.astype(dtype)


@settings(deadline=None, max_examples=40)
@given(shape=shapes, dtype=st.sampled_from([np.float32, np.float64]),
       op=st.sampled_from(["relu", "elu", "sigmoid"]), alpha=st.sampled_from([1.0, 0.5, 2.0, 0.0, -0.7]),
       transpose=st.booleans(), threads=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_compiled_activation_matches_the_numpy_route(compiled_on, shape, dtype, op, alpha,
                                                     transpose, threads, seed):
    """Outputs and gradients equal on both routes, NaN where NaN, the sign of a zero
    output kept. Would fail if a kernel missed values, took the wrong branch at 0 or for
    NaN, or the ELU gradient used x's branch test on y wrongly; with ``threads``, the
    kernels run in parallel_for chunks whatever the size."""
    rng = np.random.default_rng(seed)
    x, g = _values(rng, shape, dtype), np.asarray(rng.standard_normal(shape)).astype(dtype)
    transpose = transpose and len(shape) >= 2
    fn = {"relu": F.relu, "elu": lambda t: F.elu(t, alpha), "sigmoid": F.sigmoid}[op]
    with pytest.MonkeyPatch.context() as mp:
        if threads:
            mp.setattr(backend, "parallel_grain", 64)
        (ny, ndx), (cy, cdx) = on_both_routes(lambda: _run(fn, x, g, transpose))
    assert cy.dtype == ny.dtype == dtype and cdx.dtype == dtype
    # ELU's float32 NumPy expm1 is its tanh form, the sigmoid's NumPy route 0.5·tanh(x/2) + 0.5
    tol = 5e-7 if dtype == np.float32 else 1e-15
    assert_close(cy, ny, rtol=tol, atol=tol)
    assert_close(cdx, ndx, rtol=tol, atol=tol)
    assert np.array_equal(np.signbit(cy[cy == 0]), np.signbit(ny[ny == 0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_relu_and_elu_small_cases_by_hand(compiled_on, dtype):
    """relu([-2, 0, 3]) = [0, 0, 3], gradient [0, 0, 1]·g; elu with α = 2 at [-1, 0, 3] =
    [2(e⁻¹ - 1), 0, 3], gradient [2e⁻¹, 2, 1]·g (PyTorch's slope at 0 is y + α)."""
    g = np.array([5.0, 7.0, 11.0], dtype)
    y, dx = _run(F.relu, np.array([-2.0, 0.0, 3.0], dtype), g, False)
    assert_close(y, np.array([0.0, 0.0, 3.0], dtype))
    assert_close(dx, np.array([0.0, 0.0, 11.0], dtype))
    y, dx = _run(lambda t: F.elu(t, 2.0), np.array([-1.0, 0.0, 3.0], dtype), g, False)
    assert_close(y, np.array([2 * (np.exp(-1) - 1), 0.0, 3.0], dtype))
    assert_close(dx, np.array([5 * 2 * np.exp(-1), 7 * 2.0, 11.0], dtype))
    # sigmoid([-inf, 0, ln 3, inf]) = [0, 1/2, 3/4, 1], gradient y(1 - y)·g = [0, g/4, 3g/16, 0]
    g = np.array([5.0, 7.0, 11.0, 13.0], dtype)
    y, dx = _run(F.sigmoid, np.array([-np.inf, 0.0, np.log(3.0), np.inf], dtype), g, False)
    assert_close(y, np.array([0.0, 0.5, 0.75, 1.0], dtype))
    assert_close(dx, np.array([0.0, 7 / 4, 11 * 3 / 16, 0.0], dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0, 0.0, -0.7])
def test_elu_of_a_signed_zero_is_itself(compiled_on, dtype, alpha):
    """elu(-0) = -0 and elu(+0) = +0 for every alpha on both routes, as PyTorch gives (the
    NumPy route's max(x, α·expm1(min(x, 0))) gave +0 for -0 until its tie went to x)."""
    x = np.zeros(4, dtype)
    x[::2] = -0.0
    for y in on_both_routes(lambda: F.elu(tn.tensor(x), alpha).numpy()):
        assert np.array_equal(np.signbit(y), np.signbit(x)) and not y.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5])
def test_compiled_elu_and_relu_match_torch(compiled_on, dtype, alpha):
    """Against PyTorch, on a U-Net-like map (values down to -20, where expm1 saturates)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((2, 3, 8, 8)) * 6).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    for ours_fn, theirs_fn in ((lambda t: F.elu(t, alpha), lambda t: torch.nn.functional.elu(t, alpha)),
                               (F.relu, torch.relu), (F.sigmoid, torch.sigmoid)):
        y, dx = _run(ours_fn, x, g, False)
        tx = torch.tensor(x, requires_grad=True)
        ty = theirs_fn(tx)
        ty.backward(torch.tensor(g))
        tol = 2e-6 if dtype == np.float32 else 1e-12
        assert_close(y, ty.detach().numpy(), rtol=tol, atol=tol)
        assert_close(dx, tx.grad.numpy(), rtol=tol, atol=tol)


def test_second_order_keeps_the_differentiable_path(compiled_on):
    """With create_graph the backward is written in tinynet ops (the compiled first-order
    kernels are not used), so ELU's second derivative α·eˣ still flows."""
    x = tn.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    (d,) = tn.autograd.grad(F.elu(x, 0.5).sum(), [x], create_graph=True)
    (dd,) = tn.autograd.grad(d.sum(), [x])
    assert_close(dd.numpy(), np.array([0.5 * np.exp(-1.0), 0.0]))


def test_sigmoid_second_order_keeps_the_differentiable_path(compiled_on):
    """With create_graph the sigmoid's backward is tinynet ops, not the compiled pass:
    d²σ/dx² = σ(1 - σ)(1 - 2σ) flows (0 at x = 0)."""
    x = tn.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    (d,) = tn.autograd.grad(F.sigmoid(x).sum(), [x], create_graph=True)
    (dd,) = tn.autograd.grad(d.sum(), [x])
    s = 1 / (1 + np.exp(-x.detach().numpy()))
    assert_close(dd.numpy(), s * (1 - s) * (1 - 2 * s))


@pytest.mark.parametrize("op", ["relu", "elu", "sigmoid"])
def test_chunks_cover_every_value(compiled_on, monkeypatch, restore_threads, chunk_counts, op):
    """An odd size split over 3 parallel_for chunks: equal to the NumPy route everywhere,
    so no value is missed or written twice at a chunk's edge."""
    monkeypatch.setattr(backend, "parallel_grain", 1024)
    backend.set_num_threads(3)
    rng = np.random.default_rng(5)
    x = _values(rng, (3 * 4099 + 7,), np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    fn = {"relu": F.relu, "elu": F.elu, "sigmoid": F.sigmoid}[op]
    (ny, ndx), (cy, cdx) = on_both_routes(lambda: _run(fn, x, g, False))
    assert 3 in chunk_counts
    assert_close(cy, ny, rtol=5e-7, atol=5e-7)
    assert_close(cdx, ndx, rtol=5e-7, atol=5e-7)


def test_small_arrays_stay_on_the_numpy_route(monkeypatch):
    """Below _COMPILED_MIN_SIZE values the NumPy route runs (a compiled call costs more
    than the pass there): the kernels are not called."""
    from tinynet.kernels.compiled import activation as kernels
    monkeypatch.setattr(backend, "_compiled", True)
    monkeypatch.setattr(activation, "_COMPILED_MIN_SIZE", THRESHOLD)
    called = []
    monkeypatch.setattr(kernels, "relu_forward", lambda *args: called.append(args))
    F.relu(tn.tensor(np.ones(THRESHOLD - 1, np.float32)))
    assert not called
    F.relu(tn.tensor(np.ones(THRESHOLD, np.float32)))
    assert len(called) == 1             # the compiled route was taken (one chunk)


def test_elu_forward_takes_the_compiled_pass_from_its_own_smaller_threshold(monkeypatch):
    """ELU's float32 forward (3-4 NumPy passes with a transcendental) turns compiled at
    _COMPILED_ELU_FORWARD_MIN_SIZE values, below the backward's threshold."""
    from tinynet.kernels.compiled import activation as kernels
    monkeypatch.setattr(backend, "_compiled", True)
    monkeypatch.setattr(activation, "_COMPILED_MIN_SIZE", THRESHOLD)
    monkeypatch.setattr(activation, "_COMPILED_ELU_FORWARD_MIN_SIZE", ELU_FORWARD_THRESHOLD)
    assert ELU_FORWARD_THRESHOLD < THRESHOLD
    called = []
    monkeypatch.setattr(kernels, "elu_forward", lambda *args: called.append(args))
    F.elu(tn.tensor(np.ones(ELU_FORWARD_THRESHOLD - 1, np.float32)))
    assert not called
    F.elu(tn.tensor(np.ones(ELU_FORWARD_THRESHOLD, np.float32)))
    assert len(called) == 1


def test_sigmoid_forward_takes_the_compiled_pass_from_its_own_threshold(monkeypatch):
    """The sigmoid's float32 forward turns compiled at _COMPILED_SIGMOID_FORWARD_MIN_SIZE
    values (float64 keeps the NumPy route at any size: the kernel is float32 arithmetic)."""
    from tinynet.kernels.compiled import activation as kernels
    threshold = SIGMOID_FORWARD_THRESHOLD
    monkeypatch.setattr(backend, "_compiled", True)
    monkeypatch.setattr(activation, "_COMPILED_SIGMOID_FORWARD_MIN_SIZE", threshold)
    called = []
    monkeypatch.setattr(kernels, "sigmoid_forward", lambda *args: called.append(args))
    F.sigmoid(tn.tensor(np.ones(threshold - 1, np.float32)))
    F.sigmoid(tn.tensor(np.ones(threshold, np.float64)))
    assert not called
    F.sigmoid(tn.tensor(np.ones(threshold, np.float32)))
    assert len(called) == 1


def test_sigmoid_keeps_relative_accuracy_where_the_tanh_form_gives_zero(compiled_on):
    """Below x = -17, 0.5·tanh(x/2) + 0.5 rounds to 0 in float32; the compiled pass gives
    e^x / (1 + e^x) to within a few ulp (down to float32's subnormals)."""
    x = np.array([-20.0, -50.0, -87.0], np.float32)
    y = F.sigmoid(tn.tensor(x)).numpy()
    exact = np.exp(x.astype(np.float64)) / (1 + np.exp(x.astype(np.float64)))
    np.testing.assert_allclose(y, exact, rtol=1e-6)
