"""The compiled transposed convolution (tinynet/kernels/compiled/transposed.py, taken by
tinynet/functional/conv.py's _conv_transpose2d_array for strides above 1): the compiled
route against the NumPy route and PyTorch on drawn geometries, a hand-derived case,
non-contiguous inputs, float32 and float64, and NaN propagation."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytest.importorskip("numba")

import tinynet as tn                                       # noqa: E402
import tinynet.functional as F                             # noqa: E402
from tinynet import backend                                # noqa: E402
from tinynet.functional import conv as conv_module         # noqa: E402
from tinynet.kernels.compiled import transposed            # noqa: E402
from tinynet.testing.opinfo.conv import _smallest, expected_conv_transpose_size  # noqa: E402
from tinynet.testing.routes import on_both_routes           # noqa: E402

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)


@pytest.fixture
def counted(monkeypatch):
    """Counts the compiled kernel's calls, so a test knows the compiled route ran; lets
    small tensors take it (no channel or map-size minimum); puts the switch back after."""
    monkeypatch.setattr(conv_module, "_COMPILED_MIN_CHANNELS", 1)
    monkeypatch.setattr(conv_module, "_COMPILED_MIN_PIXELS", 1)
    calls = []
    kernel = transposed.col2im_bias

    def spy(*args):
        calls.append(args[0].shape)
        return kernel(*args)
    monkeypatch.setattr(transposed, "col2im_bias", spy)
    before = backend._compiled
    yield calls
    backend._compiled = before


@st.composite
def geometries(draw):
    """Every argument of conv_transpose2d: stride 2..3 on at least one axis (the compiled
    route, where the kernel is larger than the stride), kernel 1..5, padding, output_padding, dilation 1..3, groups, bias or None."""
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    s = (draw(st.integers(1, 3)), draw(st.integers(2, 3)))
    if draw(st.booleans()):
        s = s[::-1]
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    op = tuple(draw(st.integers(0, max(s[a], d[a]) - 1)) for a in range(2))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    size = []
    for a in range(2):
        low = _smallest(lambda n: expected_conv_transpose_size(n, k[a], s[a], p[a], op[a], d[a]) >= 1)
        size.append(draw(st.integers(low, low + 4)))
    N = draw(st.integers(1, 3))
    C_in, C_out_g = groups * draw(st.integers(1, 3)), draw(st.integers(1, 3))
    bias = draw(st.booleans())
    return (N, C_in, *size), (C_in, C_out_g, *k), bias, dict(stride=s, padding=p, output_padding=op,
                                                             groups=groups, dilation=d)


def _arrays(shapes, dtype, seed, contiguous=True):
    rng = np.random.default_rng(seed)
    (x_shape, w_shape, bias, _) = shapes
    if contiguous:
        x = rng.standard_normal(x_shape).astype(dtype)
    else:       # a view with every second column and swapped H/W strides
        N, C, H, W = x_shape
        x = rng.standard_normal((N, C, W, 2 * H)).astype(dtype)[..., ::2].transpose(0, 1, 3, 2)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1] * shapes[3]["groups"]).astype(dtype) if bias else None
    return x, w, b


def _forward(x, w, b, kwargs):
    return F.conv_transpose2d(tn.tensor(x), tn.tensor(w), None if b is None else tn.tensor(b), **kwargs).numpy()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(geometries(), st.sampled_from([np.float32, np.float64]), st.booleans(), st.integers(0, 2**31 - 1))
def test_compiled_route_matches_numpy_route(counted, g, dtype, contiguous, seed):
    # a wrong phase, shift, bound or bias in the scatter puts a value on the wrong pixel
    x, w, b = _arrays(g, dtype, seed, contiguous)
    counted.clear()
    numpy_out, compiled_out = on_both_routes(lambda: _forward(x, w, b, g[3]))
    pointwise = g[1][2:] == (1, 1) and g[3]["padding"] == (0, 0) and g[3]["groups"] == 1
    overlap = g[1][2] > g[3]["stride"][0] or g[1][3] > g[3]["stride"][1]
    assert bool(counted) == (overlap and not pointwise), "the compiled route ran, or not, against the rule"
    assert compiled_out.dtype == dtype and compiled_out.shape == numpy_out.shape
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(compiled_out, numpy_out, rtol=tol, atol=tol * 10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(geometries(), st.integers(0, 2**31 - 1))
def test_compiled_route_matches_pytorch(counted, g, seed):
    torch = pytest.importorskip("torch")
    x, w, b = _arrays(g, np.float64, seed)
    counted.clear()
    backend.set_compiled(True)
    out = _forward(x, w, b, g[3])
    expected = torch.nn.functional.conv_transpose2d(
        torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b), **g[3]).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_kernel_stamps_overlap_by_hand(counted):
    # x = [[1, 2]], 3x3 kernel of ones, stride 2: the stamps 2 apart overlap in column 2
    backend.set_compiled(True)
    y = _forward(np.array([[[[1.0, 2.0]]]]), np.ones((1, 1, 3, 3)), np.array([0.5]), dict(stride=2))
    assert counted
    np.testing.assert_array_equal(y[0, 0], [[1.5, 1.5, 3.5, 2.5, 2.5]] * 3)


def test_padding_crops_and_output_padding_extends_by_hand(counted):
    # stamps 3 apart, [1 1 1 2 2 2] + 0.5 per row: padding 1 crops one pixel from each end
    # (rows: 3 -> 1), output_padding 2 adds two columns at the far end, the last one
    # beyond every stamp (the bias alone)
    backend.set_compiled(True)
    y = _forward(np.array([[[[1.0, 2.0]]]]), np.ones((1, 1, 3, 3)), np.array([0.5]),
                 dict(stride=(1, 3), padding=1, output_padding=(0, 2)))
    assert counted
    np.testing.assert_array_equal(y[0, 0], [[1.5, 1.5, 2.5, 2.5, 2.5, 0.5]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_propagate_as_on_the_numpy_route(counted, dtype):
    # a NaN input pixel spreads over its kernel stamp; an Inf and a -Inf meeting make NaN
    x, w, _ = _arrays(((2, 3, 5, 4), (3, 2, 4, 4), False, dict(groups=1)), dtype, 7)
    w = np.abs(w)
    x[0, 1, 2, 1] = np.nan
    x[1, 0, 0, 0], x[1, 0, 0, 1] = np.inf, -np.inf
    kwargs = dict(stride=2, padding=1)
    numpy_out, compiled_out = on_both_routes(lambda: _forward(x, w, None, kwargs))
    assert counted
    assert np.isnan(compiled_out).any() and np.isinf(compiled_out).any()
    np.testing.assert_array_equal(np.isnan(compiled_out), np.isnan(numpy_out))
    np.testing.assert_allclose(compiled_out, numpy_out, rtol=1e-5, atol=1e-5)


def test_gradients_match_on_both_routes(counted):
    # the compiled forward also serves conv2d's input gradient (stride 2); both routes agree
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 9, 9))
    w = rng.standard_normal((6, 4, 3, 3))

    def grads():
        xt, wt = tn.tensor(x, requires_grad=True), tn.tensor(w, requires_grad=True)
        F.conv2d(xt, wt, stride=2, padding=1).square().sum().backward()
        return xt.grad.numpy(), wt.grad.numpy()
    (gx0, gw0), (gx1, gw1) = on_both_routes(grads)
    assert counted
    np.testing.assert_allclose(gx1, gx0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw1, gw0, rtol=1e-12, atol=1e-12)


def test_stride_one_keeps_the_numpy_route(counted):
    # stride 1 is a conv with the flipped kernel (Winograd, row strips...): not this kernel
    backend.set_compiled(True)
    _forward(np.ones((1, 2, 5, 5)), np.ones((2, 2, 3, 3)), None, dict(padding=1))
    assert not counted


def test_stamps_that_do_not_overlap_keep_the_numpy_route(counted):
    # kernel == stride (the U-Net's 2x2 up-convolution) on one image: the sub-pixel route
    backend.set_compiled(True)
    _forward(np.ones((1, 2, 4, 4)), np.ones((2, 2, 2, 2)), None, dict(stride=2))
    assert not counted


@pytest.mark.parametrize("shape, weight, stride, taken", [
    ((8, 128, 14, 14), (128, 64, 4, 4), (2, 2), True),      # the decoders' 4x4 stride 2
    ((16, 256, 8, 8), (256, 128, 3, 3), (2, 2), True),      # ResNet's stride-2 input gradient
    ((1, 128, 32, 32), (128, 64, 2, 2), (2, 2), False),     # no overlap, one image: sub-pixel
    ((8, 128, 14, 14), (128, 32, 4, 4), (2, 2), False),     # 32 output channels: short runs
    ((16, 512, 4, 4), (512, 256, 3, 3), (2, 2), False),     # a 4x4 map: 16-row GEMMs
    ((8, 128, 14, 14), (128, 64, 3, 3), (1, 1), False),     # stride 1: a conv
])
def test_route_is_taken_where_it_measured_faster(shape, weight, stride, taken):
    before = backend._compiled
    try:
        backend.set_compiled(True)
        assert conv_module._use_compiled_transposed(np.empty(shape, np.float32), np.empty(weight, np.float32),
                                                    stride) == taken
        backend.set_compiled(False)
        assert not conv_module._use_compiled_transposed(np.empty(shape, np.float32),
                                                        np.empty(weight, np.float32), stride)
    finally:
        backend._compiled = before


def test_default_thresholds_a_resnet_input_gradient_matches_pytorch(monkeypatch):
    # 64 output channels on an 8x8 map: taken with the default thresholds (no patching)
    torch = pytest.importorskip("torch")
    calls = []
    kernel = transposed.col2im_bias
    monkeypatch.setattr(transposed, "col2im_bias", lambda *args: calls.append(1) or kernel(*args))
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 16, 8, 8)), rng.standard_normal((16, 64, 3, 3)), rng.standard_normal(64)
    kwargs = dict(stride=2, padding=1, output_padding=1)
    numpy_out, compiled_out = on_both_routes(lambda: _forward(x, w, b, kwargs))
    assert calls
    expected = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kwargs)
    np.testing.assert_allclose(compiled_out, expected.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(compiled_out, numpy_out, rtol=1e-12, atol=1e-12)


def test_float16_keeps_the_numpy_route_and_matches_float32():
    """A float16 transposed conv of a shape the compiled route takes in float32 runs the
    NumPy route (Numba has no float16; it raised NotImplementedError before)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 8, 8)).astype(np.float16)
    w = (rng.standard_normal((8, 64, 4, 4)) * 0.1).astype(np.float16)
    y = F.conv_transpose2d(tn.tensor(x), tn.tensor(w), stride=2, padding=1)
    ref = F.conv_transpose2d(tn.tensor(x.astype(np.float32)), tn.tensor(w.astype(np.float32)),
                             stride=2, padding=1)
    assert y.numpy().dtype == np.float16
    np.testing.assert_allclose(y.numpy().astype(np.float32), ref.numpy(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape, weight, kwargs", [
    ((5, 6, 7, 6), (6, 9, 4, 4), dict(stride=2, padding=1)),
    ((3, 4, 5, 7), (4, 5, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), dilation=(1, 2))),
])
def test_native_job_equals_the_python_chunks(counted, native_jobs, monkeypatch, bias, shape, weight, kwargs):
    """The float32 images as a native job (one piece a chunk, forward_piece: each image's
    GEMM with x read transposed in place, then its scatter) against the same images as
    Python chunks: equal, for several geometries and an odd batch; float64 and groups > 1
    keep the Python chunks (col2im_bias)."""
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(11)
    for dtype, groups in ((np.float32, 1), (np.float64, 1), (np.float32, 2)):
        x = rng.standard_normal((shape[0], shape[1] * groups) + shape[2:]).astype(dtype)
        w = rng.standard_normal((weight[0] * groups,) + weight[1:]).astype(dtype)
        b = rng.standard_normal(weight[1] * groups).astype(dtype) if bias else None
        native_jobs.clear()
        counted.clear()
        native = _forward(x, w, b, dict(kwargs, groups=groups))
        ran = dtype == np.float32 and groups == 1
        assert len(native_jobs) == ran and all(pieces >= 2 for pieces, *_ in native_jobs)
        assert bool(counted) != ran, "col2im_bias ran exactly where the native job did not"
        with monkeypatch.context() as m:
            m.setattr(conv_module, "_native_transposed", lambda *a: False)
            chunks = _forward(x, w, b, dict(kwargs, groups=groups))
        assert counted
        np.testing.assert_allclose(native, chunks, rtol=1e-6, atol=1e-6)
        if torch is not None:
            expected = torch.nn.functional.conv_transpose2d(
                torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b), groups=groups, **kwargs)
            np.testing.assert_allclose(native, expected.numpy(), rtol=1e-4, atol=1e-4)


def test_kernel_equal_to_stride_takes_the_native_job_from_1024_batch_pixels(monkeypatch):
    """kernel == stride (no overlapping stamps) takes the compiled route only for its
    native job: one group, 1,024+ input pixels in the batch, bytes for 2+ pieces of it
    (backend.native_chunks), a native job possible (blas_threads.native_gemm); otherwise
    the sub-pixel route."""
    from tinynet import blas_threads
    monkeypatch.setattr(backend, "_compiled", True)
    monkeypatch.setattr(blas_threads, "native_gemm", lambda *a: (1, 0))    # as where it can run

    def taken(shape, c_out=16, groups=1, k=2):
        return conv_module._use_compiled_transposed(
            np.empty(shape, np.float32), np.empty((shape[1], c_out, k, k), np.float32), (k, k), groups)
    assert taken((8, 128, 14, 14)) and taken((2, 64, 32, 32)) and taken((2, 32, 16, 32), c_out=64)
    assert not taken((2, 128, 16, 16)) and not taken((2, 32, 16, 31), c_out=64)    # 512 and 992 pixels
    assert not taken((1, 64, 64, 64)) and not taken((2, 64, 32, 32), groups=2)
    assert not taken((2, 4, 32, 32), c_out=4)                 # 0.2 MB: one native piece's worth
    monkeypatch.setattr(blas_threads, "native_gemm", lambda *a: None)
    assert not taken((8, 128, 14, 14))


@pytest.mark.parametrize("bias", [False, True])
def test_kernel_equal_to_stride_native_job_equals_the_sub_pixel_route(native_jobs, monkeypatch, bias):
    """The U-Net's 2x2 stride-2 up-convolution as the native job (each image's GEMM, then
    its scatter, every output pixel written once) against the sub-pixel route and PyTorch."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 6, 16, 24)).astype(np.float32)
    w = rng.standard_normal((6, 5, 2, 2)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32) if bias else None
    native = _forward(x, w, b, dict(stride=2))
    assert len(native_jobs) == 1 and native_jobs[0][0] >= 2
    with monkeypatch.context() as m:
        m.setattr(conv_module, "_COMPILED_TILES_MIN_PIXELS", 10 ** 9)
        native_jobs.clear()
        sub_pixel = _forward(x, w, b, dict(stride=2))
        assert native_jobs == []
    np.testing.assert_allclose(native, sub_pixel, rtol=1e-5, atol=1e-5)
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w),
                                                    None if b is None else torch.tensor(b), stride=2)
    np.testing.assert_allclose(native, expected.numpy(), rtol=1e-4, atol=1e-4)
