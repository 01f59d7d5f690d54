"""The compiled direct convolution (tinynet/kernels/compiled/direct_conv.py): forward and
weight gradient against PyTorch and against tinynet's NumPy route, on hypothesis-drawn
shapes (kh != kw, padding 0..k-1, dilation, 1-20 input channels, channel counts that
leave a partial block of four), float32 and float64, views, and NaN propagation."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

pytest.importorskip("numba")

from tinynet import backend     # noqa: E402
from tinynet.functional import conv as conv_module  # noqa: E402
from tinynet.kernels.compiled import direct_conv as D   # noqa: E402


@st.composite
def geometry(draw):
    """(x, w, b, dy, padding, dilation) of a stride-1 conv whose output is non-empty."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    H = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 12))
    W = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 20))
    N, C, O = draw(st.integers(1, 3)), draw(st.integers(1, 20)), draw(st.integers(1, 9))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    Ho, Wo = H + 2 * ph - dh * (kh - 1), W + 2 * pw - dw * (kw - 1)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((O, C, kh, kw)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    dy = rng.standard_normal((N, O, Ho, Wo)).astype(dtype)
    return x, w, b, dy, (ph, pw), (dh, dw)


def tolerance(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


def numpy_route(fn):
    before = backend._compiled
    backend.set_compiled(False)
    try:
        return fn()
    finally:
        backend._compiled = before


@given(geometry())
def test_forward_matches_pytorch_and_the_numpy_route(case):
    torch = pytest.importorskip("torch")
    x, w, b, dy, padding, dilation = case
    y = D.conv2d(x, w, b, padding, dilation)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                          padding=padding, dilation=dilation).numpy()
    assert y.dtype == x.dtype
    np.testing.assert_allclose(y, expected, **tolerance(x.dtype))
    numpy_y = numpy_route(lambda: conv_module._conv2d_array(x, w, b, (1, 1), padding, dilation, 1,
                                                            dy.shape[2:]))
    np.testing.assert_allclose(y, numpy_y, **tolerance(x.dtype))


@given(geometry())
def test_weight_gradient_matches_pytorch_and_the_numpy_route(case):
    torch = pytest.importorskip("torch")
    x, w, _, dy, padding, dilation = case
    dw = D.conv2d_weight(x, dy, w.shape, padding, dilation)
    expected = torch.nn.grad.conv2d_weight(torch.from_numpy(x), w.shape, torch.from_numpy(dy),
                                           padding=padding, dilation=dilation).numpy()
    assert dw.dtype == x.dtype and dw.shape == w.shape
    np.testing.assert_allclose(dw, expected, **tolerance(x.dtype))
    numpy_dw = numpy_route(lambda: conv_module._conv2d_weight_array(x, dy, w.shape, (1, 1), padding,
                                                                    dilation, 1))
    np.testing.assert_allclose(dw, numpy_dw, **tolerance(x.dtype))


def test_a_hand_computed_3x3_case():
    """A 3x3 input of 1..9, a kernel of ones, padding 1: each output is the sum of its
    neighbourhood (corners 4 values, edges 6, centre 9), plus the bias."""
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y = D.conv2d(x, np.ones((1, 1, 3, 3)), np.array([0.5]), (1, 1), (1, 1))
    expected = [[12, 21, 16], [27, 45, 33], [24, 39, 28]]
    np.testing.assert_array_equal(y[0, 0], np.array(expected) + 0.5)
    # dw[0, 0, i, j] = Σ_{r,q} dy[r, q] · x[r + i - 1, q + j - 1]; with dy = ones: the sum
    # of the x values the tap reaches (the centre tap all 45, tap (0, 0) the top-left
    # 2x2 block 1 + 2 + 4 + 5 = 12): the same table as y
    dw = D.conv2d_weight(x, np.ones((1, 1, 3, 3)), (1, 1, 3, 3), (1, 1), (1, 1))
    np.testing.assert_array_equal(dw[0, 0], expected)


def test_views_give_the_same_result_as_their_copies():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 9, 11)).astype(np.float32)[:, ::2, :, ::-1]    # a strided view
    w = rng.standard_normal((3, 5, 3, 3)).astype(np.float32).transpose(1, 0, 2, 3)   # (5, 3, 3, 3)
    dy = rng.standard_normal((9, 2, 9, 11)).astype(np.float32).transpose(1, 0, 2, 3)[:, :5]
    np.testing.assert_array_equal(D.conv2d(x, w, None, (1, 1), (1, 1)),
                                  D.conv2d(x.copy(), w.copy(), None, (1, 1), (1, 1)))
    np.testing.assert_array_equal(D.conv2d_weight(x, dy, (5, 3, 3, 3), (1, 1), (1, 1)),
                                  D.conv2d_weight(x.copy(), dy.copy(), (5, 3, 3, 3), (1, 1), (1, 1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_propagate_to_the_outputs_their_window_reaches(dtype):
    """A NaN at (row 4, col 4) of channel 0 reaches the 3x3 outputs around it in every
    output channel and every weight-gradient entry; the rest stays finite."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 9, 9)).astype(dtype)
    x[0, 0, 4, 4] = np.nan
    w = rng.standard_normal((6, 2, 3, 3)).astype(dtype)
    y = D.conv2d(x, w, None, (1, 1), (1, 1))
    reached = np.zeros((9, 9), bool)
    reached[3:6, 3:6] = True
    assert np.isnan(y[0][:, reached]).all() and np.isfinite(y[0][:, ~reached]).all()
    dw = D.conv2d_weight(x, np.ones_like(y), w.shape, (1, 1), (1, 1))
    assert np.isnan(dw[:, 0]).all() and np.isfinite(dw[:, 1]).all()
    x[0, 0, 4, 4] = np.inf
    y = D.conv2d(x, np.ones((1, 2, 3, 3), dtype), None, (1, 1), (1, 1))
    assert np.isposinf(y[0, 0][reached]).all()
