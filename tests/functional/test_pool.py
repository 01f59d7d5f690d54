"""max_pool2d, avg_pool2d, adaptive_avg_pool2d (tinynet/functional/pool.py).

Registry entries cover gradcheck / gradgradcheck / PyTorch parity on drawn arguments;
here: known answers, PyTorch's index convention, second derivatives against PyTorch,
3-D inputs and every argument error.
"""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F


def t(a, requires_grad=False, dtype=np.float64):
    return tn.tensor(np.asarray(a, dtype=dtype), requires_grad=requires_grad)


def arr(x):
    return x.detach().numpy() if x.requires_grad else x.numpy()


X4 = np.array([[1, 5, 2, 0],
               [3, 4, 8, 1],
               [0, 9, 6, 7],
               [2, 7, 6, 3]], dtype=float).reshape(1, 1, 4, 4)


def test_max_pool_4x4_known_values_indices_and_gradient():
    x = t(X4, True)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(arr(y)[0, 0], [[5, 8], [9, 7]])
    np.testing.assert_array_equal(idx.numpy()[0, 0], [[1, 6], [9, 11]])   # h*W + w
    assert idx.dtype == np.int64
    y.sum().backward()
    expected = np.zeros((4, 4))
    expected.flat[[1, 6, 9, 11]] = 1
    np.testing.assert_array_equal(arr(x.grad)[0, 0], expected)


def test_max_pool_3x3_stride_1_padding_1_known_answer():
    x = t(np.arange(9.0).reshape(1, 1, 3, 3))
    y = arr(F.max_pool2d(x, 3, 1, 1))[0, 0]
    np.testing.assert_array_equal(y, [[4, 5, 5], [7, 8, 8], [7, 8, 8]])


def test_avg_pool_4x4_known_answer_and_ceil_mode():
    x = t(X4)
    np.testing.assert_array_equal(arr(F.avg_pool2d(x, 2))[0, 0], [[13 / 4, 11 / 4], [18 / 4, 22 / 4]])
    # 3x3 windows, stride 2, ceil_mode: a second, partial window per axis (clipped divisor)
    y = arr(F.avg_pool2d(x, 3, 2, ceil_mode=True))[0, 0]
    assert y.shape == (2, 2)
    assert y[1, 1] == X4[0, 0, 2:, 2:].mean()


def test_ceil_mode_window_may_hang_past_the_padded_input():
    # PyTorch's rule: with ceil_mode only the output size must be positive, so a 2x2 window
    # on a 1x3 map is one row of two windows, clipped to the input
    x = t([[[[5.0, 7.0, 6.0]]]], True)
    y, idx = F.max_pool2d(x, 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(arr(y), [[[[7, 6]]]])
    np.testing.assert_array_equal(idx.numpy(), [[[[1, 2]]]])
    y.sum().backward()
    np.testing.assert_array_equal(arr(x.grad), [[[[0, 1, 1]]]])
    # avg: the divisor is the window clipped to the padded input, (5 + 7) / 2 and 6 / 1
    np.testing.assert_array_equal(arr(F.avg_pool2d(t([[[[5.0, 7.0, 6.0]]]]), 2, ceil_mode=True)),
                                  [[[[6, 6]]]])


def test_max_pool_window_of_padding_only_is_minus_inf_without_gradient():
    # dilation 3 and padding 1 on a 1x2 map: the window's taps are columns -1 and 2
    x = t([[[[1.0, 2.0]]]], True)
    y, idx = F.max_pool2d(x, (1, 2), stride=1, padding=(0, 1), dilation=(1, 3), return_indices=True)
    assert arr(y).tolist() == [[[[-np.inf]]]]
    assert idx.numpy().tolist() == [[[[-1]]]]       # the first tap's position, outside the plane
    y.backward(t(np.ones((1, 1, 1, 1))))
    np.testing.assert_array_equal(arr(x.grad), np.zeros((1, 1, 1, 2)))


def test_adaptive_avg_pool_1x1_is_the_global_mean():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 7))
    y = arr(F.adaptive_avg_pool2d(t(x), 1))
    np.testing.assert_allclose(y, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)


def test_3d_input_is_one_unbatched_image():
    x = t(X4[0])
    assert F.max_pool2d(x, 2).shape == (1, 2, 2)
    y, i = F.max_pool2d(x, 2, return_indices=True)
    assert i.shape == (1, 2, 2)
    assert F.avg_pool2d(x, 2).shape == (1, 2, 2)
    assert F.adaptive_avg_pool2d(x, (3, 2)).shape == (1, 3, 2)


def test_float32_stays_float32():
    x = t(X4, dtype=np.float32)
    assert F.max_pool2d(x, 2).dtype == np.float32
    assert F.avg_pool2d(x, 2).dtype == np.float32
    assert F.adaptive_avg_pool2d(x, 3).dtype == np.float32


try:                      # only the PyTorch comparisons below need it
    import torch
    TF = torch.nn.functional
except ImportError:
    torch = TF = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install tinynet[ref])")


def _second_derivative_parity(ours_fn, torch_fn, x, seed=0):
    """Gradient of <d(out)/dx · v, u> w.r.t. x and v, against PyTorch."""
    rng = np.random.default_rng(seed)
    xo, xt = t(x, True), torch.tensor(x, requires_grad=True)
    yo, yt = ours_fn(xo), torch_fn(xt)
    v = rng.standard_normal(yt.shape)
    u = rng.standard_normal(x.shape)
    vo, vt = t(v, True), torch.tensor(v, requires_grad=True)
    yo.backward(vo, retain_graph=True, create_graph=True)
    (gt,) = torch.autograd.grad(yt, xt, vt, create_graph=True)
    go = xo.grad
    xo.grad = None
    np.testing.assert_allclose(arr(go), gt.detach().numpy(), rtol=1e-10, atol=1e-12)
    (go * t(u)).sum().backward()
    sx, sv = torch.autograd.grad((gt * torch.tensor(u)).sum(), (xt, vt), allow_unused=True)
    np.testing.assert_allclose(arr(vo.grad), sv.numpy(), rtol=1e-10, atol=1e-12)
    expected_x = np.zeros(x.shape) if sx is None else sx.numpy()
    got_x = np.zeros(x.shape) if xo.grad is None else arr(xo.grad)
    np.testing.assert_allclose(got_x, expected_x, rtol=1e-10, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                dict(kernel_size=(3, 2), stride=(2, 1), dilation=(1, 2), ceil_mode=True)])
def test_max_pool_double_backward_gathers_at_the_argmax(kw):
    x = np.random.default_rng(1).permutation(2 * 3 * 8 * 7).reshape(2, 3, 8, 7) / 10.0
    _second_derivative_parity(lambda a: F.max_pool2d(a, **kw) ** 2,
                              lambda a: TF.max_pool2d(a, **kw) ** 2, x)


@needs_torch
@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1,
                                                          ceil_mode=True, count_include_pad=False)])
def test_avg_pool_double_backward(kw):
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 8))
    _second_derivative_parity(lambda a: F.avg_pool2d(a, **kw) ** 2,
                              lambda a: TF.avg_pool2d(a, **kw) ** 2, x)


@needs_torch
@pytest.mark.parametrize("size", [1, 2, (3, 5), (None, 4), (7, 6), (9, 10)])
def test_adaptive_avg_pool_matches_pytorch(size):
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 6))
    _second_derivative_parity(lambda a: F.adaptive_avg_pool2d(a, size) ** 2,
                              lambda a: TF.adaptive_avg_pool2d(a, size) ** 2, x)


@needs_torch
@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 1, 3), dict(kernel_size=2)),
    ((2, 3, 6, 6), dict(kernel_size=8)),
    ((1, 2, 2, 5), dict(kernel_size=(3, 2), stride=2, padding=(0, 1))),
    ((1, 2, 3, 4), dict(kernel_size=(2, 3), stride=(3, 2), padding=1)),
])
def test_ceil_mode_past_the_padded_input_matches_pytorch(shape, kw):
    x = np.random.default_rng(0).standard_normal(shape)
    for ours, theirs in ((F.max_pool2d, TF.max_pool2d), (F.avg_pool2d, TF.avg_pool2d)):
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt, ceil_mode=True, **kw)
        g = np.random.default_rng(1).standard_normal(tuple(yt.shape))
        yt.backward(torch.tensor(g))
        xo = t(x, True)
        y = ours(xo, ceil_mode=True, **kw)
        y.backward(t(g))
        np.testing.assert_allclose(arr(y), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(arr(xo.grad), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@needs_torch
def test_max_pool_ties_take_the_first_maximum_like_pytorch():
    x = np.random.default_rng(4).integers(0, 3, (2, 2, 6, 8)).astype(np.float64)
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)):
        _, io = F.max_pool2d(t(x), return_indices=True, **kw)
        _, it = TF.max_pool2d(torch.tensor(x), return_indices=True, **kw)
        np.testing.assert_array_equal(io.numpy(), it.numpy())


# ------------------------------------------------------------------- argument errors
X = t(np.ones((2, 3, 6, 6)))


@pytest.mark.parametrize("call,error,match", [
    (lambda: F.max_pool2d(t(np.ones((6, 6))), 2), ValueError, "3-D or 4-D"),
    (lambda: F.max_pool2d(X, 0), ValueError, "kernel_size must be positive"),
    (lambda: F.max_pool2d(X, 2, stride=0), ValueError, "stride must be positive"),
    (lambda: F.max_pool2d(X, 2, dilation=0), ValueError, "dilation must be positive"),
    (lambda: F.max_pool2d(X, 3, padding=-1), ValueError, "non-negative"),
    (lambda: F.max_pool2d(X, 3, padding=2), ValueError, "at most half of kernel_size"),
    (lambda: F.max_pool2d(X, (2, 4), padding=(1, 3)), ValueError, "at most half"),
    (lambda: F.max_pool2d(X, 7), ValueError, "larger than the padded input"),
    (lambda: F.max_pool2d(X, 3, dilation=3), ValueError, "larger than the padded input"),
    (lambda: F.max_pool2d(X, 7, stride=1, ceil_mode=True), ValueError, "output size is not positive"),
    (lambda: F.avg_pool2d(X, 7, stride=1, ceil_mode=True), ValueError, "output size is not positive"),
    (lambda: F.max_pool2d(X, 2.5), TypeError, "kernel_size must be an int"),
    (lambda: F.max_pool2d(np.ones((1, 1, 4, 4)), 2), TypeError, "must be a Tensor"),
    (lambda: F.avg_pool2d(X, 2, padding=2), ValueError, "at most half"),
    (lambda: F.avg_pool2d(X, 0), ValueError, "kernel_size must be positive"),
    (lambda: F.avg_pool2d(X, 2, stride=-1), ValueError, "stride must be positive"),
    (lambda: F.avg_pool2d(X, 8), ValueError, "larger than the padded input"),
    (lambda: F.avg_pool2d(t(np.ones((1, 2, 3, 4, 5))), 2), ValueError, "3-D or 4-D"),
    (lambda: F.adaptive_avg_pool2d(X, -1), ValueError, "adaptive_avg_pool2d: output_size must be non-negative ints"),
    (lambda: F.adaptive_avg_pool2d(X, (1, 2, 3)), ValueError, "pair"),
    (lambda: F.adaptive_avg_pool2d(t(np.ones((6, 6))), 2), ValueError, "3-D or 4-D"),
])
def test_bad_arguments_are_rejected_at_the_op(call, error, match):
    with pytest.raises(error, match=match):
        call()


@needs_torch
@pytest.mark.parametrize("shape, size, out", [
    ((1, 2, 3, 4), 0, (1, 2, 0, 0)), ((1, 2, 6, 4), (0, 2), (1, 2, 0, 2)),
    ((2, 3, 4), (None, 0), (2, 3, 0)), ((1, 0, 3, 4), 2, (1, 0, 2, 2)),
])
def test_adaptive_avg_pool_empty_output_as_in_pytorch(shape, size, out):
    # PyTorch's forward gives the empty output (an empty channel dim too); the input
    # gradient is zeros, where PyTorch's backward refuses an empty grad_output
    x = tn.tensor(np.random.default_rng(4).standard_normal(shape), requires_grad=True)
    y = F.adaptive_avg_pool2d(x, size)
    assert tuple(y.shape) == tuple(TF.adaptive_avg_pool2d(torch.tensor(x.detach().numpy()), size).shape) == out
    (g,) = tn.autograd.grad(y.sum(), [x], create_graph=True)
    assert tuple(g.shape) == shape and not g.detach().numpy().any()
