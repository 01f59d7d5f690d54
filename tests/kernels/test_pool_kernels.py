"""Max/avg pooling kernels with argmax (tinynet/kernels/pool.py)."""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from tinynet import backend
from tinynet.kernels.im2col import pool_output_size
from tinynet.testing.opinfo.pool import windows_see_input
from tinynet.kernels.pool import (avg_pool2d_backward, avg_pool2d_divisor, avg_pool2d_forward,
                                  flat_indices, max_pool2d_backward, max_pool2d_forward,
                                  max_pool2d_gather)


def dev(a):
    return backend.to_device(np.asarray(a), backend.get_default_device())


host = backend.asnumpy


def test_max_pool_4x4_2x2_known_answer_and_indices():
    x = np.array([[1, 5, 2, 0],
                  [3, 4, 8, 1],
                  [0, 9, 6, 6],
                  [2, 7, 6, 3]], dtype=float).reshape(1, 1, 4, 4)
    y, argmax = max_pool2d_forward(dev(x), 2)
    np.testing.assert_array_equal(host(y)[0, 0], [[5, 8], [9, 6]])
    # window offsets (row-major i*2+j); the 6-6-6 tie in the last window keeps the first
    np.testing.assert_array_equal(host(argmax)[0, 0], [[1, 2], [1, 0]])
    np.testing.assert_array_equal(host(flat_indices(argmax, (4, 4), 2))[0, 0], [[1, 6], [9, 10]])
    dx = host(max_pool2d_backward(dev(np.ones((1, 1, 2, 2))), argmax, (4, 4), 2))[0, 0]
    np.testing.assert_array_equal(dx, [[0, 1, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]])


def test_max_pool_3x3_stride_1_overlapping_windows_accumulate():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0            # the centre is the max of all four 2x2 windows
    y, argmax = max_pool2d_forward(dev(x), 2, 1)
    dx = host(max_pool2d_backward(dev(np.ones((1, 1, 2, 2))), argmax, (3, 3), 2, 1))
    assert dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0


def test_max_pool_padding_is_minus_infinity():
    x = -np.ones((1, 1, 2, 2))     # all negative: zero padding would win, -inf must not
    y, argmax = max_pool2d_forward(dev(x), 2, 2, 1)
    np.testing.assert_array_equal(host(y), -np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(host(flat_indices(argmax, (2, 2), 2, 2, 1))[0, 0], [[0, 1], [2, 3]])


def test_avg_pool_3x3_padding_divisors():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    y = host(avg_pool2d_forward(dev(x), 2, 1, 1, count_include_pad=True))
    assert y.shape == (1, 1, 4, 4)
    assert y[0, 0, 0, 0] == 0 / 4 and y[0, 0, 1, 1] == (0 + 1 + 3 + 4) / 4
    y = host(avg_pool2d_forward(dev(x), 2, 1, 1, count_include_pad=False))
    assert y[0, 0, 0, 0] == 0.0 and y[0, 0, 0, 1] == (0 + 1) / 2 and y[0, 0, 3, 3] == 8.0
    # ceil_mode: positions past the right padding never count, even with count_include_pad
    d = avg_pool2d_divisor((5, 5), 2, 2, 0, ceil_mode=True, count_include_pad=True)
    np.testing.assert_array_equal(d[-1], [2, 2, 1])


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ceil_mode = draw(st.booleans())
    low_h, low_w = max(1, dh * (kh - 1) + 1 - 2 * ph), max(1, dw * (kw - 1) + 1 - 2 * pw)
    H, W = draw(st.integers(low_h, low_h + 6)), draw(st.integers(low_w, low_w + 6))
    # with dilation a window can fall entirely on padding (max -inf): not a useful case
    assume(windows_see_input(H, kh, sh, ph, dh, ceil_mode)
           and windows_see_input(W, kw, sw, pw, dw, ceil_mode))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W)
    # a permutation: distinct values, so the argmax is unambiguous
    seed = draw(st.integers(0, 2**31 - 1))
    x = np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape) / 7.0
    return x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode


@settings(max_examples=150, deadline=None)
@given(pool_cases(), st.integers(0, 2**31 - 1))
def test_max_pool_kernels_match_pytorch(case, seed):
    torch = pytest.importorskip("torch")
    x, k, s, p, d, ceil_mode = case
    xt = torch.tensor(x, requires_grad=True)
    yt, it = torch.nn.functional.max_pool2d(xt, k, s, p, d, ceil_mode, return_indices=True)
    y, argmax = max_pool2d_forward(dev(x), k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(host(y), yt.detach().numpy())
    np.testing.assert_array_equal(host(flat_indices(argmax, x.shape[2:], k, s, p, d)), it.numpy())
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    dx = host(max_pool2d_backward(dev(g), argmax, x.shape[2:], k, s, p, d, ceil_mode))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    # gather is the adjoint of the scatter: <scatter(g), v> == <g, gather(v)>
    v = rng.standard_normal(x.shape)
    gathered = host(max_pool2d_gather(dev(v), argmax, k, s, p, d, ceil_mode))
    np.testing.assert_allclose(np.vdot(dx, v), np.vdot(g, gathered), rtol=1e-10, atol=1e-10)


@settings(max_examples=150, deadline=None)
@given(pool_cases(), st.booleans(), st.integers(0, 2**31 - 1))
def test_avg_pool_kernels_match_pytorch(case, count_include_pad, seed):
    torch = pytest.importorskip("torch")
    x, k, s, p, _, ceil_mode = case
    if any(x.shape[2 + a] + 2 * p[a] < k[a] for a in range(2)):
        return
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.avg_pool2d(xt, k, s, p, ceil_mode, count_include_pad)
    y = host(avg_pool2d_forward(dev(x), k, s, p, ceil_mode, count_include_pad))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    dx = host(avg_pool2d_backward(dev(g), x.shape[2:], k, s, p, ceil_mode, count_include_pad))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_2x2_fast_path_matches_generic_loop_with_ties():
    # integer-valued input has many ties: both paths must keep the first maximum
    x = np.random.default_rng(1).integers(0, 3, (2, 3, 8, 6)).astype(np.float32)
    y, argmax = max_pool2d_forward(dev(x), 2)                   # tournament fast path
    y2, argmax2 = max_pool2d_forward(dev(x), 2, 2, 0, (1, 1), ceil_mode=True)  # same windows
    np.testing.assert_array_equal(host(y), host(y2))
    # generic loop reference, computed independently with argmax over the window axis
    windows = x.reshape(2, 3, 4, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 4, 3, 4)
    np.testing.assert_array_equal(host(argmax), windows.argmax(-1))
    assert pool_output_size(8, 2, 2) == 4
