"""The compiled cross-entropy (tinynet/kernels/compiled/loss.py, taken by
tinynet/functional/loss.py's CrossEntropyIndex for NumPy scores and signed integer
targets): loss and gradient against the NumPy route on drawn shapes, dtypes, reductions
and ignored targets; NaN and Inf rows; the target-value errors; the routes it leaves to
NumPy."""
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytest.importorskip("numba")

import tinynet as tn                                # noqa: E402
import tinynet.functional as F                      # noqa: E402
from tinynet import backend                         # noqa: E402
from tinynet.kernels.compiled import loss as compiled_loss  # noqa: E402
from tinynet.testing.routes import on_both_routes   # noqa: E402

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)


@pytest.fixture
def counted(monkeypatch):
    """Turns the compiled kernels on (also under ``TINYNET_JIT=0``) and counts the compiled
    forward's calls, so a test knows which route ran; puts the switch back after."""
    calls = []
    kernel = compiled_loss.cross_entropy_forward

    def spy(*args):
        calls.append(args[0].shape)
        return kernel(*args)
    monkeypatch.setattr(compiled_loss, "cross_entropy_forward", spy)
    before = backend._compiled
    backend.set_compiled(True)
    yield calls
    backend._compiled = before


@contextmanager
def numpy_route():
    """The NumPy route inside the block; the switch put back after."""
    before = backend._compiled
    backend.set_compiled(False)
    try:
        yield
    finally:
        backend._compiled = before


def _loss_and_grad(x, t, **kwargs):
    tx = tn.tensor(x, requires_grad=True)
    loss = F.cross_entropy(tx, tn.tensor(t), **kwargs)
    loss.backward()
    return loss.detach().numpy(), tx.grad.numpy()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(N=st.integers(0, 20), C=st.integers(1, 12), dtype=st.sampled_from([np.float32, np.float64]),
       target_dtype=st.sampled_from([np.int8, np.int32, np.int64]),
       reduction=st.sampled_from(["mean", "sum"]), ignore_index=st.sampled_from([-100, 0, 2]),
       ignored=st.floats(0, 1), scale=st.sampled_from([1.0, 30.0]), seed=st.integers(0, 2 ** 16))
def test_compiled_route_matches_numpy_route(counted, N, C, dtype, target_dtype, reduction,
                                            ignore_index, ignored, scale, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N, C)) * scale).astype(dtype)
    t = rng.integers(0, C, N)
    t[rng.random(N) < ignored] = ignore_index
    t = t.astype(target_dtype)
    (loss_np, grad_np), (loss_c, grad_c) = on_both_routes(
        lambda: _loss_and_grad(x, t, reduction=reduction, ignore_index=ignore_index))
    assert counted, "the compiled route did not run"
    assert loss_c.dtype == dtype and grad_c.dtype == dtype
    tol = dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(loss_c, loss_np, **tol)
    np.testing.assert_allclose(grad_c, grad_np, **tol)


def test_hand_derived_case_with_an_ignored_row(counted):
    # rows (0, log 3) -> p = (1/4, 3/4); target 1 costs -log(3/4), the ignored row nothing;
    # the mean is over the one kept row, whose gradient is p - onehot
    x = np.array([[0.0, np.log(3.0)], [5.0, -1.0]])
    loss, grad = _loss_and_grad(x, np.array([1, -100]))
    assert counted
    np.testing.assert_allclose(loss, -np.log(0.75), rtol=1e-15)
    np.testing.assert_allclose(grad, [[0.25, -0.25], [0.0, 0.0]], rtol=1e-15, atol=1e-17)


def test_every_target_ignored_gives_nan_loss_and_zero_gradient(counted):
    x = np.random.default_rng(0).standard_normal((3, 4))
    loss, grad = _loss_and_grad(x, np.full(3, -100))
    assert counted and np.isnan(loss)
    assert np.array_equal(grad, np.zeros((3, 4)))
    loss, grad = _loss_and_grad(x, np.full(3, -100), reduction="sum")
    assert loss == 0 and np.array_equal(grad, np.zeros((3, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_rows_as_the_numpy_route(counted, bad):
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    x[1, 3] = bad
    (loss_np, grad_np), (loss_c, grad_c) = on_both_routes(
        lambda: _loss_and_grad(x, np.array([0, 3, 2, 4]), reduction="sum"))
    assert counted
    np.testing.assert_array_equal(np.isnan(grad_c), np.isnan(grad_np))
    np.testing.assert_allclose(loss_c, loss_np, rtol=2e-6)
    np.testing.assert_allclose(grad_c, grad_np, rtol=2e-6, atol=2e-7)


@pytest.mark.parametrize("target, first", [([0, 1, 3, 0], 3), ([0, -1, 2, 5], -1)])
def test_out_of_range_targets_raise_the_numpy_routes_error(counted, target, first):
    x = tn.tensor(np.zeros((4, 3), np.float32))
    message = f"cross_entropy: target contains class {first} but input has 3 classes"
    with numpy_route(), pytest.raises(ValueError, match=message):
        F.cross_entropy(x, tn.tensor(np.array(target)))
    assert not counted
    with pytest.raises(ValueError, match=message):
        F.cross_entropy(x, tn.tensor(np.array(target)))
    assert counted                      # the compiled route found the bad target itself


def test_strided_scores_and_unsigned_targets(counted):
    base = np.random.default_rng(2).standard_normal((6, 10)).astype(np.float32)
    x = base[:, ::2]                                    # not contiguous: copied for the kernel
    t = np.array([0, 4, 1, 1, 2, 3])
    (loss_np, grad_np), (loss_c, grad_c) = on_both_routes(lambda: _loss_and_grad(x, t))
    assert len(counted) == 1
    np.testing.assert_allclose(loss_c, loss_np, rtol=2e-6)
    np.testing.assert_allclose(grad_c, grad_np, rtol=2e-6, atol=2e-7)
    loss_u, grad_u = _loss_and_grad(x, t.astype(np.uint8))     # unsigned: the NumPy route
    assert len(counted) == 1
    np.testing.assert_allclose(loss_u, loss_np, rtol=1e-6)
    np.testing.assert_allclose(grad_u, grad_np, rtol=1e-6, atol=1e-7)


def test_second_derivative_after_the_compiled_forward(counted):
    x = tn.tensor(np.random.default_rng(3).standard_normal((5, 4)), requires_grad=True)
    t = tn.tensor(np.array([0, -100, 3, 1, 2]))
    (g,) = tn.autograd.grad(F.cross_entropy(x, t), x, create_graph=True)
    assert counted
    with numpy_route():
        (g_np,) = tn.autograd.grad(F.cross_entropy(x, t), x, create_graph=True)
        (h_np,) = tn.autograd.grad((g_np * g_np).sum(), x)
    (h,) = tn.autograd.grad((g * g).sum(), x)
    np.testing.assert_allclose(g.detach().numpy(), g_np.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h.numpy(), h_np.numpy(), rtol=1e-12, atol=1e-14)
