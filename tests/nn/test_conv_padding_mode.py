"""Conv2d / Conv1d ``padding_mode`` 'reflect', 'replicate' and 'circular': the input padded
by ``F.pad`` in that mode, then a conv without padding, as PyTorch; ConvTranspose2d keeps
'zeros' only, as PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
from tinynet.testing import assert_close

MODES = ("reflect", "replicate", "circular")


def _pair(torch, make, x_shape, seed=0):
    """The same layer in both libraries (torch's weights loaded into tinynet) and an input."""
    theirs = make(torch.nn).double()
    ours = make(nn)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ours.to(tn.float64)
    x = np.random.default_rng(seed).standard_normal(x_shape)
    return theirs, ours, x


def _check_against_torch(torch, theirs, ours, x):
    xt = torch.tensor(x, requires_grad=True)
    xo = tn.tensor(x, requires_grad=True)
    yt, yo = theirs(xt), ours(xo)
    assert tuple(yo.shape) == tuple(yt.shape)
    assert_close(yo, yt.detach().numpy(), atol=1e-12, rtol=1e-10)
    g = np.random.default_rng(1).standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    yo.backward(tn.tensor(g))
    assert_close(xo.grad, xt.grad.numpy(), atol=1e-12, rtol=1e-10)
    assert_close(ours.weight.grad, theirs.weight.grad.numpy(), atol=1e-12, rtol=1e-10)
    assert_close(ours.bias.grad, theirs.bias.grad.numpy(), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kw, x_shape", [
    (dict(kernel_size=3, padding=1), (2, 2, 5, 6)),
    (dict(kernel_size=(3, 2), padding=(2, 1), stride=2), (1, 2, 6, 5)),
    (dict(kernel_size=3, padding=1, dilation=2, groups=2), (2, 2, 6, 6)),
    (dict(kernel_size=(3, 4), padding="same", dilation=(1, 2)), (1, 2, 5, 9)),
    (dict(kernel_size=4, padding="same"), (1, 2, 6, 7)),                          # odd split
    (dict(kernel_size=3, padding="valid"), (1, 2, 5, 5)),
    (dict(kernel_size=3, padding=1), (2, 5, 6)),                                  # unbatched
])
def test_conv2d_padding_modes_match_torch(mode, kw, x_shape):
    """Outputs and the input, weight and bias gradients equal PyTorch's, float64."""
    torch = pytest.importorskip("torch")
    theirs, ours, x = _pair(torch, lambda lib: lib.Conv2d(2, 4, padding_mode=mode, **kw), x_shape)
    _check_against_torch(torch, theirs, ours, x)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kw, x_shape", [
    (dict(kernel_size=3, padding=1), (2, 2, 7)),
    (dict(kernel_size=4, padding="same", dilation=2), (1, 2, 9)),
    (dict(kernel_size=3, padding=2, stride=2), (2, 6)),                           # unbatched
])
def test_conv1d_padding_modes_match_torch(mode, kw, x_shape):
    torch = pytest.importorskip("torch")
    theirs, ours, x = _pair(torch, lambda lib: lib.Conv1d(2, 3, padding_mode=mode, **kw), x_shape)
    _check_against_torch(torch, theirs, ours, x)


def test_reflect_padding_by_hand():
    """A 1x1 kernel of weight 1 returns the padded input itself: reflect of [[1, 2, 3]]
    by one column is [[2, 1, 2, 3, 2]] (the edge is not repeated)."""
    conv = nn.Conv2d(1, 1, (1, 3), padding=(0, 1), bias=False, padding_mode="reflect")
    conv.weight.data[...] = 0
    conv.weight.data[0, 0, 0, 1] = 1          # the centre tap: y[w] = x_pad[w + 1]
    x = tn.tensor([[[[1.0, 2.0, 3.0]]]])
    assert conv(x).detach().numpy().tolist() == [[[[1.0, 2.0, 3.0]]]]
    conv.weight.data[0, 0, 0] = [1.0, 0.0, 0.0]  # the left tap: y[w] = x_pad[w] = 2, 1, 2
    assert conv(x).detach().numpy().tolist() == [[[[2.0, 1.0, 2.0]]]]
    conv.padding_mode = "circular"               # x_pad = 3, 1, 2, 3, 1
    assert conv(x).detach().numpy().tolist() == [[[[3.0, 1.0, 2.0]]]]
    conv.padding_mode = "replicate"              # x_pad = 1, 1, 2, 3, 3
    assert conv(x).detach().numpy().tolist() == [[[[1.0, 1.0, 2.0]]]]


@pytest.mark.parametrize("make", [
    lambda lib: lib.Conv2d(2, 3, 3, padding=1, padding_mode="circular"),
    lambda lib: lib.Conv2d(2, 3, 3, padding_mode="reflect"),
    lambda lib: lib.Conv1d(2, 3, 3, padding=1, padding_mode="replicate"),
])
def test_repr_names_the_mode_as_torch(make):
    torch = pytest.importorskip("torch")
    assert repr(make(nn)) == repr(make(torch.nn))


@pytest.mark.parametrize("make, match", [
    (lambda: nn.Conv2d(2, 3, 3, padding_mode="mirror"), "Conv2d: padding_mode must be one of"),
    (lambda: nn.Conv1d(2, 3, 3, padding_mode="zero"), "Conv1d: padding_mode must be one of"),
    (lambda: nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect"),
     r"ConvTranspose2d: padding_mode must be one of \('zeros',\)"),
])
def test_bad_padding_modes_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_reflect_padding_larger_than_the_input_is_refused_by_pad():
    """PyTorch's rule for reflect: the padding must be smaller than the dim."""
    conv = nn.Conv2d(1, 1, 3, padding=2, padding_mode="reflect")
    with pytest.raises(ValueError, match="pad"):
        conv(tn.randn(1, 1, 2, 2))
