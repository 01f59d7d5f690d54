"""F.interpolate and the Upsample layers: answers worked by hand, PyTorch's forward where
its backward is not the adjoint (see tinynet/testing/opinfo/interpolate.py), the layers
against PyTorch's, and the errors. The registry covers gradcheck, gradgradcheck and
PyTorch parity over drawn shapes, sizes and scale factors."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import nn


def test_bilinear_by_hand_both_corner_conventions():
    """2 -> 4 along W. align_corners=True: source o·(2-1)/(4-1) = 0, 1/3, 2/3, 1.
    align_corners=False: source (o + 0.5)/2 - 0.5 = -0.25 -> 0, 0.25, 0.75, 1.25 -> clamped."""
    x = tn.tensor([[[[0.0, 3.0]]]], dtype=tn.float64)
    y = F.interpolate(x, size=(1, 4), mode="bilinear", align_corners=True).numpy().ravel()
    assert np.allclose(y, [0.0, 1.0, 2.0, 3.0])
    y = F.interpolate(x, size=(1, 4), mode="bilinear", align_corners=False).numpy().ravel()
    assert np.allclose(y, [0.0, 0.75, 2.25, 3.0])


def test_bilinear_backward_is_the_transpose_by_hand():
    """The 2 -> 4 matrix above (align_corners=False) has columns summing to [2, 2]: rows
    [1, 0], [.75, .25], [.25, .75], [0, 1]; a ones gradient must give exactly that."""
    x = tn.tensor([[[[0.0, 3.0]]]], dtype=tn.float64, requires_grad=True)
    F.interpolate(x, size=(1, 4), mode="bilinear").sum().backward()
    assert np.allclose(x.grad.numpy().ravel(), [2.0, 2.0])
    x.grad = None
    weights = tn.tensor(np.array([1.0, 10.0, 100.0, 1000.0]).reshape(1, 1, 1, 4))
    (F.interpolate(x, size=(1, 4), mode="bilinear") * weights).sum().backward()
    assert np.allclose(x.grad.numpy().ravel(), [1 + 7.5 + 25, 2.5 + 75 + 1000])


def test_nearest_upsampling_repeats_and_its_gradient_counts_copies():
    x = tn.tensor([[[1.0, 2.0, 3.0]]], requires_grad=True)
    y = F.interpolate(x, scale_factor=2)
    assert y.detach().numpy().ravel().tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    y.sum().backward()
    assert x.grad.numpy().ravel().tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("shape, scale", [((1, 1, 3), 2.3), ((1, 2, 2), 1.3), ((1, 1, 3, 2, 1), 1.3)])
def test_forward_matches_torch_where_its_backward_is_not_the_adjoint(shape, scale):
    """Those samples are excluded from the registry's parity entry; forward still agrees."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(shape)
    ours = F.interpolate(tn.tensor(x), scale_factor=scale).numpy()
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=scale).numpy()
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("ours, theirs", [
    (lambda: nn.Upsample(scale_factor=2), lambda t: t.nn.Upsample(scale_factor=2)),
    (lambda: nn.Upsample(size=(5, 3), mode="bilinear"), lambda t: t.nn.Upsample(size=(5, 3), mode="bilinear")),
    (lambda: nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True),
     lambda t: t.nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True)),
    (lambda: nn.UpsamplingNearest2d(scale_factor=3), lambda t: t.nn.UpsamplingNearest2d(scale_factor=3)),
    (lambda: nn.UpsamplingBilinear2d(size=7), lambda t: t.nn.UpsamplingBilinear2d(size=7)),
])
def test_layers_match_torch(ours, theirs):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    a = ours()(tn.tensor(x)).numpy()
    b = theirs(torch)(torch.from_numpy(x)).numpy()
    assert a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.interpolate(tn.ones(1, 1, 4)), ValueError, "interpolate: give exactly one of size or scale_factor"),
    (lambda: F.interpolate(tn.ones(1, 1, 4), size=2, scale_factor=2), ValueError, "exactly one"),
    (lambda: F.interpolate(tn.ones(1, 1, 4), scale_factor=2, mode="bicubic"), ValueError, "mode must be"),
    (lambda: F.interpolate(tn.ones(1, 1, 4), scale_factor=2, mode="bilinear"), ValueError, "'bilinear' expects a 4-D input"),
    (lambda: F.interpolate(tn.ones(4, 4), scale_factor=2), ValueError, "'nearest' expects a 3-D, 4-D or 5-D"),
    (lambda: F.interpolate(tn.ones(1, 1, 4), scale_factor=2, align_corners=True), ValueError, "align_corners can only be set"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), size=(2, 0)), ValueError, "size must be positive ints"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), size=(2, 2, 2)), ValueError, "one per spatial dim"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), scale_factor=-1.0), ValueError, "scale_factor must be positive"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), scale_factor=0.1), ValueError, "makes an empty output"),
    (lambda: F.interpolate(tn.tensor([[[1, 2]]]), scale_factor=2), TypeError, "floating-point"),
    (lambda: nn.Upsample(), ValueError, "Upsample: give exactly one"),
    (lambda: nn.Upsample(scale_factor=2, mode="area"), ValueError, "Upsample: mode must be"),
])
def test_errors_name_the_op_and_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
