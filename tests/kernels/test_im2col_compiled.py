"""The compiled im2col / col2im / to-NCHW pass (tinynet/kernels/compiled/im2col.py) against
the NumPy route of tinynet/kernels/im2col.py and conv.py's _to_nchw, and PyTorch."""
import numpy as np
import pytest

pytest.importorskip("numba")

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import tinynet  # noqa: E402
from tinynet import backend  # noqa: E402
from tinynet.functional import conv as conv_module  # noqa: E402
from tinynet.kernels import im2col as im2col_module, phases  # noqa: E402
from tinynet.kernels.compiled import im2col as compiled  # noqa: E402
from tinynet.kernels.im2col import col2im, im2col  # noqa: E402
from tinynet.testing.opinfo import conv as opinfo_conv  # noqa: E402
from tinynet.testing.routes import on_both_routes  # noqa: E402

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)


@pytest.fixture(autouse=True)
def every_size_compiled(monkeypatch):
    """Stride 1 and small products take the compiled route too (the measured thresholds
    are for speed, not correctness)."""
    monkeypatch.setattr(im2col_module, "COMPILED_IM2COL_MIN_STRIDE", 1)
    monkeypatch.setattr(conv_module, "_COMPILED_NCHW_MIN_SIZE", 0)


@pytest.fixture
def calls(monkeypatch):
    """Counts the compiled kernels' calls (a route test that never reached them proves
    nothing); hypothesis tests clear it per example."""
    counts = {}
    for name in ("im2col", "im2col_batch_last", "col2im", "col2im_batch_last", "to_nchw",
                 "to_nchw_batch_last"):
        def spy(*args, _name=name, _fn=getattr(compiled, name)):
            counts[_name] = counts.get(_name, 0) + 1
            return _fn(*args)
        monkeypatch.setattr(compiled, name, spy)
    return counts


@st.composite
def geometry(draw):
    """(x shape, kernel, stride, padding, dilation, output size or None): strides 1-3,
    kernels 1-4, dilations 1-3, padding up to 2, and sometimes a smaller output (the
    gradient of a transposed conv with output_padding reads only the first windows)."""
    k, s, p, d, _, (H, W) = draw(opinfo_conv.conv_geometry(max_kernel=4, max_dilation=3, extra=6))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), H, W)
    out = tuple(im2col_module.conv_output_size(shape[2 + a], k[a], s[a], p[a], d[a]) for a in range(2))
    if draw(st.booleans()):
        out = tuple(draw(st.integers(1, n)) for n in out)
    return shape, k, s, p, d, out


def _array(rng, shape, dtype, layout):
    """A drawn array of ``shape``: C-contiguous, or a non-contiguous view (every other
    element of a wider array, or a transposed copy transposed back)."""
    if layout == "strided":
        return rng.standard_normal(shape[:-1] + (2 * shape[-1],)).astype(dtype)[..., ::2]
    if layout == "transposed":
        return rng.standard_normal(shape[::-1]).astype(dtype).T
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("batch_last", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=geometry(), layout=st.sampled_from(["contiguous", "strided", "transposed"]),
       seed=st.integers(0, 2**31 - 1))
def test_im2col_compiled_equals_numpy_route(calls, batch_last, dtype, g, layout, seed):
    # a copy: the compiled columns must be the NumPy route's, bit for bit
    calls.clear()               # (one fixture for all drawn examples)
    shape, k, s, p, d, out = g
    x = _array(np.random.default_rng(seed), shape, dtype, layout)
    if layout == "strided" and shape[-1] > 1:     # a last axis of one is contiguous either way
        assert not x.flags.c_contiguous
    expected, got = on_both_routes(lambda: im2col(x, k, s, p, d, out, batch_last=batch_last))
    assert calls.get("im2col_batch_last" if batch_last else "im2col") == 1
    assert got.dtype == dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("batch_last", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=geometry(), strided=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_col2im_compiled_equals_numpy_route(calls, batch_last, dtype, g, strided, seed):
    # the scatter-add: each pixel sums the same entries in the same (i, j) order
    calls.clear()
    shape, k, s, p, d, (Ho, Wo) = g
    N, C, H, W = shape
    col_shape = (C,) + k + ((Ho, Wo, N) if batch_last else (N, Ho, Wo))
    col = _array(np.random.default_rng(seed), col_shape, dtype, "strided" if strided else "contiguous")
    expected, got = on_both_routes(lambda: col2im(col, (H, W), s, p, d, batch_last=batch_last))
    assert calls.get("col2im_batch_last" if batch_last else "col2im") == 1
    assert got.dtype == dtype and got.shape == shape and got.flags.c_contiguous
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@settings(max_examples=40, deadline=None)
@given(g=geometry(), seed=st.integers(0, 2**31 - 1))
def test_compiled_route_matches_pytorch_unfold_and_fold(g, seed):
    torch = pytest.importorskip("torch")
    shape, k, s, p, d, _ = g
    N, C, H, W = shape
    x = np.random.default_rng(seed).standard_normal(shape)
    col = im2col(x, k, s, p, d)
    _, kh, kw, _, Ho, Wo = col.shape
    unfolded = torch.nn.functional.unfold(torch.tensor(x), k, d, p, s).numpy()
    np.testing.assert_array_equal(col.reshape(C * kh * kw, N, Ho * Wo).transpose(1, 0, 2), unfolded)
    folded = torch.nn.functional.fold(torch.tensor(unfolded), (H, W), k, d, p, s).numpy()
    np.testing.assert_allclose(col2im(col, (H, W), s, p, d), folded, rtol=1e-12, atol=1e-12)


def test_im2col_known_columns_with_padding_stride_and_dilation():
    # x = 0..15 on 4x4; 2x2 kernel, dilation 2, stride 2, padding 1: output 2x2 (columns
    # -1 and 1, rows -1 and 1), offsets reach x rows/cols {-1, 1} and {1, 3}
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    col = im2col(x, 2, stride=2, padding=1, dilation=2)
    assert col.shape == (1, 2, 2, 1, 2, 2)
    np.testing.assert_array_equal(col[0, 0, 0, 0], [[0, 0], [0, 5]])      # x[-1|1, -1|1]
    np.testing.assert_array_equal(col[0, 1, 1, 0], [[5, 7], [13, 15]])    # x[1|3, 1|3]
    # col2im of ones counts the reads of each pixel: odd rows/cols only, row 1 by both
    # window rows (offsets 1 and 0), row 3 by the second only
    counts = col2im(np.ones_like(col), (4, 4), 2, 1, 2)[0, 0]
    np.testing.assert_array_equal(counts, [[0, 0, 0, 0], [0, 4, 0, 2], [0, 0, 0, 0], [0, 2, 0, 1]])


@pytest.mark.parametrize("batch_last", [False, True])
def test_nan_and_inf_propagate_as_in_numpy(batch_last):
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 6))
    x[1, 2, 3, 4], x[0, 1, 0, 0] = np.nan, -np.inf
    numpy_col, compiled_col = on_both_routes(lambda: im2col(x, 3, 2, 1, batch_last=batch_last))
    np.testing.assert_array_equal(compiled_col, numpy_col)      # NaN where NumPy has NaN
    assert np.isnan(compiled_col).sum() > 0 and np.isinf(compiled_col).sum() > 0
    numpy_x, compiled_x = on_both_routes(lambda: col2im(numpy_col, (5, 6), 2, 1, batch_last=batch_last))
    np.testing.assert_array_equal(np.isnan(compiled_x), np.isnan(numpy_x))
    assert np.isnan(compiled_x).sum() > 0


@pytest.mark.parametrize("batch_last", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [False, True])
def test_to_nchw_compiled_equals_numpy_route(calls, batch_last, dtype, with_bias):
    # the GEMM product (C, n, Ho, Wo), or batch-last (C, Ho, Wo, n), into NCHW plus bias
    rng = np.random.default_rng(3)
    C, n, Ho, Wo = 5, 3, 4, 6
    product = rng.standard_normal((C, Ho, Wo, n) if batch_last else (C, n, Ho, Wo)).astype(dtype)
    product.flat[::7] = -0.0        # without a bias, a copy: -0.0 stays -0.0
    y = product.transpose(0, 3, 1, 2) if batch_last else product
    bias = rng.standard_normal(C).astype(dtype) if with_bias else None

    def run():
        out = np.full((n, C, Ho, Wo), np.nan, dtype)
        conv_module._to_nchw(y, out, bias)
        return out
    expected, got = on_both_routes(run)
    assert calls.get("to_nchw_batch_last" if batch_last else "to_nchw") == 1
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
    reference = y.transpose(1, 0, 2, 3) + (0 if bias is None else bias.reshape(-1, 1, 1))
    np.testing.assert_allclose(got, reference, rtol=1e-6)


def test_to_nchw_other_strides_stay_on_numpy_route(calls):
    # the phase grid's cropped product is neither layout: NumPy's copy takes it
    y = np.random.default_rng(4).standard_normal((2, 3, 5, 5))[:, :, :4, :4]
    out = np.empty((3, 2, 4, 4))
    conv_module._to_nchw(y, out, np.ones(2))
    assert not calls
    np.testing.assert_array_equal(out, y.transpose(1, 0, 2, 3) + 1)


def test_other_dtypes_stay_on_numpy_route(calls):
    x = np.arange(2 * 2 * 5 * 5, dtype=np.int64).reshape(2, 2, 5, 5)
    col = im2col(x, 3, 2, 1)
    assert not calls and col.dtype == np.int64
    assert col2im(col, (5, 5), 2, 1).dtype == np.int64 and not calls


def test_measured_thresholds_pick_the_routes(calls, monkeypatch):
    monkeypatch.setattr(backend, "_compiled", True)     # whatever TINYNET_JIT says
    monkeypatch.setattr(im2col_module, "COMPILED_IM2COL_MIN_STRIDE", 2)
    monkeypatch.setattr(conv_module, "_COMPILED_NCHW_MIN_SIZE", 100)
    x = np.ones((1, 2, 6, 6), np.float32)
    im2col(x, 3, 1, 1)
    assert not calls                                    # stride 1: NumPy's row copies
    im2col(x, 3, (1, 2), 1)
    assert calls == {"im2col": 1}                       # strided along one axis
    im2col(np.ones((15, 2, 4, 4), np.float32), 3, 1, 1, batch_last=True)
    assert "im2col_batch_last" not in calls             # batch-last below N16: NumPy's
    im2col(np.ones((16, 2, 4, 4), np.float32), 3, 1, 1, batch_last=True)
    assert calls["im2col_batch_last"] == 1              # from N16, compiled at stride 1
    im2col(np.ones((16, 2, 4, 4), np.float32), 3, 1, 1)
    assert calls["im2col"] == 1                         # channel-major stride 1: NumPy's
    col2im(np.ones((2, 3, 3, 1, 6, 6), np.float32), (6, 6), 1, 1)
    assert calls["col2im"] == 1                         # col2im at any stride
    conv_module._to_nchw(np.ones((2, 1, 7, 7)), np.empty((1, 2, 7, 7)), None)
    assert "to_nchw" not in calls                       # 98 values: NumPy's copy
    conv_module._to_nchw(np.ones((2, 1, 8, 8)), np.empty((1, 2, 8, 8)), None)
    assert calls["to_nchw"] == 1


@pytest.mark.parametrize("stride,width", [(2, 9), (1, 3)])   # batch 4 > width 3: batch-last
def test_conv2d_and_its_gradients_agree_on_both_routes(calls, monkeypatch, stride, width):
    # the generic im2col route of conv2d end to end: forward, input and weight gradients
    # (16 -> 5 channels, batch 4: not flat rows, row strips, Winograd; no phase grid)
    monkeypatch.setattr(phases, "_mode", "never")
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((4, 16, 9, width)), rng.standard_normal((5, 16, 3, 3)), rng.standard_normal(5)
    dy_shape = (4, 5, (9 + 2 - 3) // stride + 1, (width + 2 - 3) // stride + 1)
    dy = rng.standard_normal(dy_shape)

    def run():
        xt, wt, bt = (tinynet.tensor(a, requires_grad=True) for a in (x, w, b))
        y = tinynet.functional.conv2d(xt, wt, bt, stride=stride, padding=1)
        y.backward(tinynet.tensor(dy))
        return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()
    numpy_route, compiled_route = on_both_routes(run)
    layout = "" if stride == 2 else "_batch_last"
    assert calls["im2col" + layout] >= 2 and calls["to_nchw" + layout] >= 1    # forward and dW
    if stride == 2:                 # (a stride-1 input gradient is a conv: im2col again)
        assert calls["col2im"] == 1
    for got, expected in zip(compiled_route, numpy_route):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch_last", [False, True])
def test_channel_chunks_on_the_pool_cover_every_channel(calls, monkeypatch, restore_threads,
                                                       chunk_counts, batch_last):
    # the kernels do a channel range each; split over two threads, every channel (and
    # every output channel of to_nchw) must be done once: compare with the NumPy route
    backend.set_num_threads(2)
    monkeypatch.setattr(backend, "parallel_grain", 1)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 5, 7, 6))
    numpy_col, compiled_col = on_both_routes(lambda: im2col(x, 3, 2, 1, batch_last=batch_last))
    np.testing.assert_array_equal(compiled_col, numpy_col)
    numpy_x, compiled_x = on_both_routes(lambda: col2im(numpy_col, (7, 6), 2, 1, batch_last=batch_last))
    np.testing.assert_allclose(compiled_x, numpy_x, rtol=1e-13, atol=1e-13)
    product = rng.standard_normal((5, 4, 3, 3) if batch_last else (5, 3, 4, 3))
    y = product.transpose(0, 3, 1, 2) if batch_last else product
    bias = rng.standard_normal(5)

    def run():
        out = np.full((3, 5, 4, 3), np.nan)
        conv_module._to_nchw(y, out, bias)
        return out
    expected, got = on_both_routes(run)
    np.testing.assert_array_equal(got, expected)
    assert len(calls) == 3 and 2 in chunk_counts       # all compiled, and in two chunks
