"""Compiled batch norm (tinynet/kernels/compiled/batch_norm.py) against the NumPy route of
tinynet/functional/normalization.py and against PyTorch: training-mode forward, running
statistics, and the first-order backward, on drawn shapes (batch 1, one channel, (N, C)
inputs), float32 and float64, non-contiguous inputs and NaN."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("numba")

import tinynet as tn
import tinynet.functional as F
from tinynet import backend
from tinynet.testing import assert_close
from tinynet.testing.routes import on_both_routes

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)

shapes = st.one_of(
    st.tuples(st.integers(1, 5), st.integers(1, 6)),
    st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 9)),
    st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6)),
).filter(lambda s: np.prod(s) // s[1] > 1)     # training needs more than one value a channel


@pytest.fixture(scope="module")
def compiled_always():
    """The compiled route on; the switch is put back afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backend, "_compiled", True)
        yield


def _step(x, g, weight, bias, momentum, transpose=False):
    """Forward (training, running statistics updated) and first-order backward; every
    array that comes out, as float64."""
    C = x.shape[1]
    # transpose: the input is a non-contiguous view (N and C swapped back) of a leaf
    xt = tn.tensor(np.swapaxes(x, 0, 1).copy() if transpose else x, requires_grad=True)
    inp = xt.transpose(0, 1) if transpose else xt
    w = None if weight is None else tn.tensor(weight, requires_grad=True)
    b = None if bias is None else tn.tensor(bias, requires_grad=True)
    rm = tn.tensor(np.linspace(-1, 1, C).astype(x.dtype))
    rv = tn.tensor(np.linspace(0.5, 2, C).astype(x.dtype))
    y = F.batch_norm(inp, rm, rv, w, b, training=True, momentum=momentum)
    y.backward(tn.tensor(g))
    dx = xt.grad.numpy()
    out = [y.detach().numpy(), rm.numpy(), rv.numpy(), np.swapaxes(dx, 0, 1) if transpose else dx]
    out += [t.grad.numpy() for t in (w, b) if t is not None]
    return out


@settings(deadline=None, max_examples=40)
@given(shape=shapes, dtype=st.sampled_from([np.float32, np.float64]), affine=st.booleans(),
       momentum=st.floats(0.0, 1.0), offset=st.sampled_from([0.0, 50.0]),
       transpose=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_compiled_batch_norm_matches_the_numpy_route(compiled_always, shape, dtype, affine,
                                                     momentum, offset, transpose, seed):
    """y, running_mean, running_var (unbiased), dx, dγ, dβ on both routes. Would fail if a
    channel's sums mixed channels or missed a row, if the variance lost its two-pass form
    (offset 50), if running_var took the biased variance, or if a coefficient of dx were
    wrong."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + offset).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    C = shape[1]
    weight, bias = (rng.standard_normal(C).astype(dtype) for _ in range(2))
    if not affine:
        weight = bias = None
    numpy_out, compiled_out = on_both_routes(lambda: _step(x, g, weight, bias, momentum, transpose))
    rtol, atol = (2e-4, 2e-4) if dtype == np.float32 else (1e-9, 1e-9)
    for name, c, n in zip(("y", "running_mean", "running_var", "dx", "dweight", "dbias"),
                          compiled_out, numpy_out):
        assert c.dtype == n.dtype == dtype, name
        assert_close(c, n, rtol=rtol, atol=atol, msg=name)


def test_compiled_batch_norm_small_case_by_hand(compiled_always):
    """One channel of [1, 3] and one of [0, 0, 0, 4] written out: μ = 2, σ² = 1 → y = [-1, 1]
    (γ = 2, β = 1: [-1, 3]); the second channel's constant part."""
    x = tn.tensor(np.array([[1.0, 0.0], [3.0, 4.0]]), requires_grad=True)
    w = tn.tensor(np.array([2.0, 1.0]), requires_grad=True)
    b = tn.tensor(np.array([1.0, 0.0]), requires_grad=True)
    y = F.batch_norm(x, None, None, w, b, training=True, eps=1e-12)
    assert_close(y.detach().numpy()[:, 0], np.array([-1.0, 3.0]))
    assert_close(y.detach().numpy()[:, 1], np.array([-1.0, 1.0]))
    y.backward(tn.tensor(np.array([[1.0, 0.0], [0.0, 0.0]])))
    # dβ = Σg = [1, 0]; dγ = Σg·x̂ = [-1, 0]; dx of channel 0: γ·invstd·(g - 1/2 - x̂·(-1)/2)
    assert_close(b.grad.numpy(), np.array([1.0, 0.0]))
    assert_close(w.grad.numpy(), np.array([-1.0, 0.0]))
    assert_close(x.grad.numpy()[:, 0], 2.0 * (np.array([1.0, 0.0]) - 0.5 - np.array([-1.0, 1.0]) * -0.5))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_batch_norm_propagates_nan_to_its_channel_only(compiled_always, dtype):
    """A NaN poisons its own channel's statistics, output and gradients, as on the NumPy
    route, and no other channel (a fast-math no-NaN assumption would hide it)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    x[1, 2, 3] = np.nan
    g = rng.standard_normal(x.shape).astype(dtype)
    numpy_out, compiled_out = on_both_routes(lambda: _step(x, g, np.ones(4, dtype), np.zeros(4, dtype), 0.1))
    for c, n in zip(compiled_out, numpy_out):
        assert_close(c, n, rtol=2e-4, atol=2e-4)
    y, dx = compiled_out[0], compiled_out[3]
    assert np.isnan(y[:, 2]).all() and np.isnan(dx[:, 2]).all()
    assert not np.isnan(np.delete(y, 2, axis=1)).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_batch_norm_matches_torch(compiled_always, dtype):
    """Forward, running statistics and gradients against PyTorch on a ResNet-like map."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 8, 6, 6)).astype(dtype) + 2
    g = rng.standard_normal(x.shape).astype(dtype)
    w, b = (rng.standard_normal(8).astype(dtype) for _ in range(2))
    ours = _step(x, g, w, b, 0.3)
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    rm = torch.tensor(np.linspace(-1, 1, 8).astype(dtype))
    rv = torch.tensor(np.linspace(0.5, 2, 8).astype(dtype))
    y = torch.nn.functional.batch_norm(ts[0], rm, rv, ts[1], ts[2], training=True, momentum=0.3)
    y.backward(torch.tensor(g))
    theirs = [y.detach().numpy(), rm.numpy(), rv.numpy()] + [t.grad.numpy() for t in ts]
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for o, t in zip(ours, theirs):
        assert_close(o, t, rtol=tol, atol=tol)


def test_weight_gradient_alone_skips_dx(compiled_always):
    """With x not requiring a gradient, only dγ and dβ come back (the kernel's want_x)."""
    rng = np.random.default_rng(2)
    x = tn.tensor(rng.standard_normal((3, 2, 4)))
    w = tn.tensor(np.ones(2), requires_grad=True)
    F.batch_norm(x, None, None, w, None, training=True).sum().backward()
    assert x.grad is None
    assert_close(w.grad.numpy(), np.zeros(2), atol=1e-12)   # Σx̂ = 0 per channel


def test_channel_chunks_cover_every_channel(compiled_always, monkeypatch, restore_threads, chunk_counts):
    """7 channels split over 3 parallel_for chunks: both directions equal the NumPy route
    on every channel, so no chunk edge drops or repeats a channel."""
    monkeypatch.setattr(backend, "parallel_grain", 256)
    backend.set_num_threads(3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 7, 5, 6)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    weight, bias = (rng.standard_normal(7).astype(np.float32) for _ in range(2))
    numpy_out, compiled_out = on_both_routes(lambda: _step(x, g, weight, bias, 0.1))
    assert 3 in chunk_counts
    for name, c, n in zip(("y", "running_mean", "running_var", "dx", "dweight", "dbias"),
                          compiled_out, numpy_out):
        assert_close(c, n, rtol=2e-4, atol=2e-4, msg=name)


@pytest.mark.parametrize("want_x", [True, False])
def test_float32_channels_run_as_native_jobs_with_the_python_chunks_values(native_jobs, monkeypatch, want_x):
    """In float32 both directions' channel chunks run as native jobs (forward_piece,
    backward_piece: the kernels on OpenBLAS's workers without the GIL), with the values
    the same kernels give as Python chunks, bit for bit; float64 keeps the Python chunks."""
    from tinynet import blas_threads
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((4, 7, 5, 6)).astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        weight, bias = (rng.standard_normal(7).astype(dtype) for _ in range(2))

        def step():
            xt = tn.tensor(x, requires_grad=want_x)
            w, b = tn.tensor(weight, requires_grad=True), tn.tensor(bias, requires_grad=True)
            y = F.batch_norm(xt, None, None, w, b, training=True)
            y.backward(tn.tensor(g))
            return [y.detach().numpy(), w.grad.numpy(), b.grad.numpy()] + ([xt.grad.numpy()] if want_x else [])
        native_jobs.clear()
        native = step()
        assert len(native_jobs) == (2 if dtype == np.float32 else 0)
        assert all(pieces >= 2 and params[:3] == [4, 7, 30] for pieces, _, params in native_jobs)
        with monkeypatch.context() as m:
            m.setattr(blas_threads, "run_float32_job", lambda *a: False)
            chunks = step()
        for a, b in zip(native, chunks):
            np.testing.assert_array_equal(a, b)
