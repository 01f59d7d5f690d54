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


@pytest.mark.parametrize("shape, scale, kwargs", [
    ((1, 1, 3), 2.3, {}), ((1, 2, 2), 1.3, {}), ((1, 1, 3, 2, 1), 1.3, {}),
    ((1, 1, 3, 4), 1.3, {"mode": "bicubic"}),
    ((1, 1, 3, 2), 1.3, {"mode": "bilinear", "antialias": True}),
    ((1, 1, 2, 3), 1.3, {"mode": "bicubic", "antialias": True})])
def test_forward_matches_torch_where_its_backward_is_not_the_adjoint(shape, scale, kwargs):
    """Those samples are excluded from the registry's parity entries; forward still agrees."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(shape)
    ours = F.interpolate(tn.tensor(x), scale_factor=scale, **kwargs).numpy()
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=scale, **kwargs).numpy()
    assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, mode", [((1, 2, 3), "linear"), ((1, 1, 3, 2, 3), "trilinear"),
                                         ((1, 1, 3, 3), "nearest-exact"), ((1, 1, 3, 2), "area")])
def test_a_size_kept_by_a_scale_factor_follows_torch_forward_and_backward(shape, mode):
    """n = 3, scale 1.3 -> m = 3: PyTorch copies the axis in modes linear, trilinear and area
    but applies r = 1/1.3 in nearest-exact; tinynet must do the same, both directions."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    ours_x = tn.tensor(x, requires_grad=True)
    ours = F.interpolate(ours_x, scale_factor=1.3, mode=mode)
    theirs_x = torch.from_numpy(x).requires_grad_()
    theirs = torch.nn.functional.interpolate(theirs_x, scale_factor=1.3, mode=mode)
    g = rng.standard_normal(tuple(theirs.shape))
    (ours * tn.tensor(g)).sum().backward()
    theirs.backward(torch.from_numpy(g))
    assert np.allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert np.allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_linear_and_trilinear_are_bilinear_along_each_axis():
    """linear on (N, C, W) is bilinear on (N, C, 1, W); trilinear of a tensor constant along
    D and H is linear along W."""
    x = np.random.default_rng(2).standard_normal((2, 3, 5))
    a = F.interpolate(tn.tensor(x), size=7, mode="linear").numpy()
    b = F.interpolate(tn.tensor(x[:, :, None]), size=(1, 7), mode="bilinear").numpy()[:, :, 0]
    assert np.allclose(a, b, rtol=1e-14, atol=1e-14)
    cube = np.broadcast_to(x[:, :, None, None, :], (2, 3, 2, 2, 5))
    c = F.interpolate(tn.tensor(np.ascontiguousarray(cube)), size=(3, 4, 7), mode="trilinear").numpy()
    assert np.allclose(c, np.broadcast_to(a[:, :, None, None], c.shape), rtol=1e-14, atol=1e-14)


def test_bicubic_weights_by_hand():
    """2 -> 4, align_corners=True: s = 0, 1/3, 2/3, 1. At s = 1/3 (t = 1/3, a = -0.75) the four
    taps x[clip(-1)], x[0], x[1], x[clip(2)] weigh W(4/3), W(1/3), W(2/3), W(5/3); with
    x = [0, 1] the answer is W(2/3) + W(5/3) = 10/27 - 1/18 = 17/54."""
    def w(d, a=-0.75):
        d = abs(d)
        return ((a + 2) * d - (a + 3)) * d * d + 1 if d <= 1 else ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    x = tn.tensor([[[[0.0, 1.0]]]], dtype=tn.float64)
    y = F.interpolate(x, size=(1, 4), mode="bicubic", align_corners=True).numpy().ravel()
    assert np.allclose(y, [0.0, w(2 / 3) + w(5 / 3), w(1 / 3) + w(4 / 3), 1.0], rtol=1e-14)
    assert np.isclose(y[1], 17 / 54, rtol=1e-12)


def test_nearest_exact_reads_the_pixel_under_the_centre():
    """3 -> 5: r = 0.6, ⌊(o + 0.5)·0.6⌋ = 0, 0, 1, 2, 2 where nearest's ⌊o·0.6⌋ = 0, 0, 1, 1, 2."""
    x = tn.tensor([[[10.0, 20.0, 30.0]]])
    assert F.interpolate(x, size=5, mode="nearest-exact").numpy().ravel().tolist() == [10, 10, 20, 30, 30]
    assert F.interpolate(x, size=5, mode="nearest").numpy().ravel().tolist() == [10, 10, 20, 20, 30]


def test_area_is_adaptive_average_pooling_and_its_gradient_spreads_evenly():
    """5 -> 3: windows [0, 2), [1, 4), [3, 5) (⌊o·5/3⌋ to ⌈(o+1)·5/3⌉, overlapping)."""
    x = tn.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]], dtype=tn.float64, requires_grad=True)
    y = F.interpolate(x, size=3, mode="area")
    assert np.allclose(y.detach().numpy().ravel(), [1.5, 3.0, 4.5])
    y.sum().backward()
    assert np.allclose(x.grad.numpy().ravel(), [0.5, 0.5 + 1 / 3, 1 / 3, 1 / 3 + 0.5, 0.5])


def test_antialias_averages_every_input_when_downsampling():
    """4 -> 2 with the triangle filter stretched by r = 2: output 0 is centred at 1 and reads
    inputs 0..2 with f((j + 0.5 - 1)/2) = 0.75, 0.75, 0.25 -> normalised 3/7, 3/7, 1/7 (without
    antialias it is the mean of inputs 0 and 1)."""
    x = tn.tensor([[[[0.0, 7.0, 14.0, 21.0]]]], dtype=tn.float64)
    y = F.interpolate(x, size=(1, 2), mode="bilinear", antialias=True).numpy().ravel()
    assert np.allclose(y[0], (3 * 0 + 3 * 7 + 1 * 14) / 7, rtol=1e-14)
    assert np.allclose(F.interpolate(x, size=(1, 2), mode="bilinear").numpy().ravel(), [3.5, 17.5])


def test_antialias_with_output_width_one_equals_torch_on_the_transposed_input():
    """PyTorch 2.13's CPU anti-aliased kernel copies the first row to every output row when
    the output width is 1 and the height changes (kept out of the registry's parity);
    resampling is separable, so tinynet's answer is PyTorch's on the transposed input."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 5))
    for mode in ("bilinear", "bicubic"):
        ours = F.interpolate(tn.tensor(x), size=(3, 1), mode=mode, antialias=True).numpy()
        theirs = torch.nn.functional.interpolate(torch.from_numpy(x).transpose(2, 3), size=(1, 3),
                                                 mode=mode, antialias=True).transpose(2, 3).numpy()
        assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ours, theirs", [
    (lambda: nn.Upsample(scale_factor=2), lambda t: t.nn.Upsample(scale_factor=2)),
    (lambda: nn.Upsample(size=(5, 3), mode="bilinear"), lambda t: t.nn.Upsample(size=(5, 3), mode="bilinear")),
    (lambda: nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True),
     lambda t: t.nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True)),
    (lambda: nn.UpsamplingNearest2d(scale_factor=3), lambda t: t.nn.UpsamplingNearest2d(scale_factor=3)),
    (lambda: nn.UpsamplingBilinear2d(size=7), lambda t: t.nn.UpsamplingBilinear2d(size=7)),
    (lambda: nn.Upsample(scale_factor=0.6, mode="area"), lambda t: t.nn.Upsample(scale_factor=0.6, mode="area")),
    (lambda: nn.Upsample(size=(6, 4), mode="bicubic", align_corners=True),
     lambda t: t.nn.Upsample(size=(6, 4), mode="bicubic", align_corners=True)),
    (lambda: nn.Upsample(scale_factor=1.7, mode="nearest-exact"), lambda t: t.nn.Upsample(scale_factor=1.7, mode="nearest-exact")),
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
    (lambda: F.interpolate(tn.ones(1, 1, 4), scale_factor=2, mode="lanczos"), ValueError, "mode must be one of 'nearest', 'linear'"),
    (lambda: F.interpolate(tn.ones(1, 1, 4), scale_factor=2, mode="bicubic"), ValueError, "'bicubic' expects a 4-D input"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), scale_factor=2, mode="linear"), ValueError, "'linear' expects a 3-D input"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), scale_factor=2, mode="trilinear"), ValueError, "'trilinear' expects a 5-D input"),
    (lambda: F.interpolate(tn.ones(4, 4), scale_factor=2, mode="area"), ValueError, "'area' expects a 3-D or 4-D or 5-D"),
    (lambda: F.interpolate(tn.ones(1, 1, 4), scale_factor=2, mode="area", align_corners=False), ValueError, "align_corners can only be set with the interpolating modes"),
    (lambda: F.interpolate(tn.ones(1, 1, 4), scale_factor=2, mode="nearest-exact", align_corners=True), ValueError, "got align_corners=True with mode='nearest-exact'"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), scale_factor=2, mode="bicubic", align_corners=1), TypeError, "align_corners must be a bool"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), scale_factor=2, mode="nearest", antialias=True), ValueError, "antialias=True needs mode 'bilinear' or 'bicubic'"),
    (lambda: F.interpolate(tn.ones(1, 1, 4), scale_factor=2, mode="linear", antialias=True), ValueError, "antialias=True needs mode"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), scale_factor=2, mode="bilinear", antialias=1), TypeError, "antialias must be a bool"),
    (lambda: F.interpolate(tn.ones(1, 1, 4), scale_factor=2, mode="bilinear"), ValueError, "'bilinear' expects a 4-D input"),
    (lambda: F.interpolate(tn.ones(4, 4), scale_factor=2), ValueError, "'nearest' expects a 3-D or 4-D or 5-D"),
    (lambda: F.interpolate(tn.ones(1, 1, 4), scale_factor=2, align_corners=True), ValueError, "align_corners can only be set"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), size=(2, 0)), ValueError, "size must be positive ints with mode 'nearest'"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), size=(2, 0), mode="bilinear"), ValueError, "size must be positive ints with mode 'bilinear'"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), size=(2, -1), mode="area"), ValueError, "size must be non-negative ints with mode 'area'"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), scale_factor=0.1, mode="nearest-exact"), ValueError, "makes an empty output .* only mode 'area' allows one"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), size=(2, 2, 2)), ValueError, "one per spatial dim"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), scale_factor=-1.0), ValueError, "scale_factor must be positive"),
    (lambda: F.interpolate(tn.ones(1, 1, 4, 4), scale_factor=0.1), ValueError, "makes an empty output"),
    (lambda: F.interpolate(tn.tensor([[[1, 2]]]), scale_factor=2), TypeError, "floating-point"),
    (lambda: nn.Upsample(), ValueError, "Upsample: give exactly one"),
    (lambda: nn.Upsample(scale_factor=2, mode="lanczos"), ValueError, "Upsample: mode must be one of"),
])
def test_errors_name_the_op_and_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("shape, kwargs, out", [
    ((1, 2, 3, 4), {"size": (0, 2)}, (1, 2, 0, 2)),
    ((1, 2, 3, 4), {"size": 0}, (1, 2, 0, 0)),
    ((1, 2, 3), {"size": 0}, (1, 2, 0)),
    ((1, 2, 3, 3, 3), {"size": (0, 1, 2)}, (1, 2, 0, 1, 2)),
    ((1, 2, 3, 4), {"scale_factor": 0.1}, (1, 2, 0, 0)),
    ((1, 2, 3, 4), {"scale_factor": (1.0, 0.2)}, (1, 2, 3, 0)),
])
def test_area_to_an_empty_size_as_in_pytorch(shape, kwargs, out):
    # PyTorch's 'area' (adaptive average pooling) gives the empty output; its backward
    # refuses an empty grad_output, ours is the zero gradient (no input is read)
    torch = pytest.importorskip("torch")
    x = tn.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    y = F.interpolate(x, mode="area", **kwargs)
    yt = torch.nn.functional.interpolate(torch.tensor(x.detach().numpy()), mode="area", **kwargs)
    assert tuple(y.shape) == tuple(yt.shape) == out and y.dtype == tn.float64
    (g,) = tn.autograd.grad(y.sum(), [x], create_graph=True)
    assert tuple(g.shape) == shape and not g.detach().numpy().any()


def test_other_modes_refuse_an_empty_size_like_pytorch():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="output sizes should be greater than 0"):
        torch.nn.functional.interpolate(torch.ones(1, 1, 3, 4), size=(0, 2), mode="bilinear")
    with pytest.raises(ValueError, match="interpolate: size must be positive ints with mode 'bilinear'"):
        F.interpolate(tn.ones(1, 1, 3, 4), size=(0, 2), mode="bilinear")
