"""Pointwise (1x1) convolution (tinynet/kernels/pointwise.py): conv2d, conv_transpose2d
and the weight gradient through it against PyTorch on drawn strides, dilations,
output paddings and sizes (both weight-gradient layouts), gradcheck and gradgradcheck,
and which convs take it."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinynet as tn
import tinynet.functional as F
from tinynet.functional import conv as conv_module
from tinynet.kernels import pointwise
from tinynet.testing import gradcheck, gradgradcheck


@contextlib.contextmanager
def counting():
    """Counts the calls of the three pointwise kernels (by name)."""
    calls = {"conv2d_pointwise": 0, "conv_transpose2d_pointwise": 0, "conv2d_weight_pointwise": 0}
    with pytest.MonkeyPatch.context() as mp:
        for name in calls:
            def spy(*args, _name=name, _fn=getattr(pointwise, name)):
                calls[_name] += 1
                return _fn(*args)
            mp.setattr(pointwise, name, spy)
        yield calls


def _check_against_torch(op, x_shape, w_shape, bias, seed, **kwargs):
    """``op`` (conv2d or conv_transpose2d) forward and backward against PyTorch's, each of
    the three pointwise kernels run once (forward, input gradient, weight gradient)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    c_out = w_shape[0] if op == "conv2d" else w_shape[1]
    arrays = (rng.standard_normal(x_shape), rng.standard_normal(w_shape),
              rng.standard_normal(c_out) if bias else None)
    ours = [None if a is None else tn.tensor(a, requires_grad=True) for a in arrays]
    theirs = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    with counting() as calls:
        y = getattr(F, op)(*ours, **kwargs)
        ty = getattr(torch.nn.functional, op)(*theirs, **kwargs)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
        gy = rng.standard_normal(y.shape)
        y.backward(tn.tensor(gy))
    ty.backward(torch.tensor(gy))
    for o, t in zip(ours, theirs):
        if o is not None:
            np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-9)
    assert calls == {"conv2d_pointwise": 1, "conv_transpose2d_pointwise": 1, "conv2d_weight_pointwise": 1}


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 7), st.integers(1, 7),
       st.tuples(st.integers(1, 3), st.integers(1, 3)), st.tuples(st.integers(1, 2), st.integers(1, 2)),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_conv2d_1x1_matches_pytorch(N, C_in, C_out, H, W, stride, dilation, bias, seed):
    _check_against_torch("conv2d", (N, C_in, H, W), (C_out, C_in, 1, 1), bias, seed,
                         stride=stride, dilation=dilation)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6),
       st.tuples(st.integers(1, 3), st.integers(1, 3)), st.data(), st.booleans(), st.integers(0, 2**31 - 1))
def test_conv_transpose2d_1x1_matches_pytorch(N, C_in, C_out, H, W, stride, data, bias, seed):
    output_padding = tuple(data.draw(st.integers(0, s - 1)) for s in stride)
    _check_against_torch("conv_transpose2d", (N, C_in, H, W), (C_in, C_out, 1, 1), bias, seed,
                         stride=stride, output_padding=output_padding)


@pytest.mark.parametrize("shape, c_out, stride", [
    ((2, 3, 9, 8), 2, (1, 1)),       # few channels, large map: the per-image stack
    ((3, 12, 4, 4), 10, (2, 2)),     # many channels, small map: the batch folded into K
])
def test_weight_gradient_in_both_layouts(shape, c_out, stride):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    Ho, Wo = (shape[2] - 1) // stride[0] + 1, (shape[3] - 1) // stride[1] + 1
    dy = rng.standard_normal((shape[0], c_out, Ho, Wo))
    stack = c_out * shape[1] <= Ho * Wo * (c_out + shape[1])
    assert stack == (shape[1] == 3)            # the two cases really take the two layouts
    dw = pointwise.conv2d_weight_pointwise(x, dy, stride)
    xs = x[:, :, ::stride[0], ::stride[1]]
    expected = np.einsum("nohw,nchw->oc", dy, xs)[:, :, None, None]     # Σ over n, h, w
    np.testing.assert_allclose(dw, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op, stride", [("conv2d", (1, 1)), ("conv2d", (2, 3)),
                                        ("conv_transpose2d", (1, 1)), ("conv_transpose2d", (2, 2))])
def test_gradcheck_and_gradgradcheck_through_pointwise(op, stride):
    rng = np.random.default_rng(8)
    x = tn.tensor(rng.standard_normal((2, 3, 5, 4)), requires_grad=True)
    w_shape = (4, 3, 1, 1) if op == "conv2d" else (3, 4, 1, 1)
    w = tn.tensor(rng.standard_normal(w_shape), requires_grad=True)
    b = tn.tensor(rng.standard_normal(4), requires_grad=True)
    extra = {"output_padding": (1, 1)} if op == "conv_transpose2d" and stride == (2, 2) else {}
    fn = lambda x_, w_, b_: getattr(F, op)(x_, w_, b_, stride=stride, **extra)  # noqa: E731
    with counting() as calls:
        assert gradcheck(fn, (x, w, b))
        assert gradgradcheck(fn, (x, w, b))
    assert all(calls.values())


def test_which_convs_take_the_pointwise_path():
    use = conv_module._use_pointwise
    assert use((128, 64, 1, 1), (0, 0), 1)          # ResNet's shortcut, the U-Net's head
    assert not use((128, 64, 1, 1), (1, 1), 1)      # padded: border outputs see only padding
    assert not use((128, 32, 1, 1), (0, 0), 2)      # grouped
    assert not use((128, 64, 3, 3), (0, 0), 1)


def test_taps_are_the_strided_pixels_cropped_to_the_output():
    x = np.arange(2 * 7 * 8, dtype=float).reshape(1, 2, 7, 8)
    xs = pointwise.taps(x, (3, 2), (2, 3))            # natural size (3, 4), cropped to (2, 3)
    np.testing.assert_array_equal(xs[0, 1], [[56, 58, 60], [80, 82, 84]])
    assert xs.flags.c_contiguous
