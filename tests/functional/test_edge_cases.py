"""PyTorch's own edge cases that tinynet once got wrong (float64, forward and backward):
0-d reductions with a dim, softmax of empty tensors, unbatched conv/pool inputs (functions
and modules), clamp with Tensor bounds, amax/amin, and the target gradient of
binary_cross_entropy_with_logits. Registry-driven checks are in tests/testing/."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
import tinynet.functional as F
from tinynet.testing import assert_close

torch = pytest.importorskip("torch")


def _pair(values, requires_grad=True):
    a = np.asarray(values, dtype=np.float64)
    return (tn.tensor(a, requires_grad=requires_grad),
            torch.from_numpy(a.copy()).requires_grad_(requires_grad))


# ----------------------------------------------------------------- 0-d reductions
@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "std", "var"])
@pytest.mark.parametrize("dim", [0, -1, (0,)])
def test_0d_reduction_with_dim_returns_the_value_like_torch(name, dim):
    """Would fail if a 0-d input with dim 0/-1 raised (an AxisError or IndexError before)."""
    x, xt = _pair(2.5)
    ours, theirs = getattr(F, name)(x, dim), getattr(torch, name)(xt, dim)
    assert ours.shape == tuple(theirs.shape) == ()
    if name in ("std", "var"):     # one element, correction 1: NaN in both
        assert np.isnan(ours.item()) and np.isnan(theirs.item())
    else:
        assert_close(ours, theirs)
        ours.backward()
        theirs.backward()
        assert_close(x.grad, xt.grad)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_0d_argmax_with_dim(name):
    x = tn.tensor(np.float64(4.0))
    assert getattr(F, name)(x, 0).item() == getattr(torch, name)(torch.tensor(4.0), 0).item() == 0


def test_0d_dim_out_of_range_is_still_an_error():
    with pytest.raises(ValueError, match="sum: dim 1 is out of range"):
        F.sum(tn.tensor(1.0), 1)


# ----------------------------------------------------------------- softmax of empty tensors
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", [((0,), 0), ((0, 3), 1), ((2, 0), 1), ((2, 0, 3), 0)])
def test_softmax_of_empty_tensor_is_empty(name, shape, dim):
    x, xt = _pair(np.zeros(shape))
    ours, theirs = getattr(F, name)(x, dim), getattr(torch, name)(xt, dim)
    assert ours.shape == tuple(theirs.shape) == shape
    ours.sum().backward()
    assert x.grad.shape == shape


# ----------------------------------------------------------------- unbatched inputs
RNG = np.random.default_rng(0)


@pytest.mark.parametrize("make", [
    lambda: (nn.Conv2d(2, 3, 3, padding=1, dtype=tn.float64), torch.nn.Conv2d(2, 3, 3, padding=1)),
    lambda: (nn.ConvTranspose2d(2, 3, 3, stride=2, dtype=tn.float64),
             torch.nn.ConvTranspose2d(2, 3, 3, stride=2)),
    lambda: (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
    lambda: (nn.AvgPool2d(3, stride=1, padding=1), torch.nn.AvgPool2d(3, stride=1, padding=1)),
    lambda: (nn.AdaptiveAvgPool2d(3), torch.nn.AdaptiveAvgPool2d(3)),
], ids=["Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"])
def test_unbatched_chw_input_to_modules_matches_torch(make):
    ours, theirs = make()
    theirs = theirs.double()
    if hasattr(theirs, "weight"):
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x, xt = _pair(RNG.standard_normal((2, 6, 5)))
    y, yt = ours(x), theirs(xt)
    assert y.shape == tuple(yt.shape) and y.ndim == 3
    assert_close(y, yt)
    g = RNG.standard_normal(y.shape)
    (y * tn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    assert_close(x.grad, xt.grad)
    if hasattr(theirs, "weight"):
        assert_close(ours.weight.grad, theirs.weight.grad)


def test_unbatched_conv2d_equals_the_batch_of_one():
    x = tn.tensor(RNG.standard_normal((3, 5, 5)))
    w = tn.tensor(RNG.standard_normal((4, 3, 2, 2)))
    assert_close(F.conv2d(x, w, stride=2), F.conv2d(x.unsqueeze(0), w, stride=2)[0])


# ----------------------------------------------------------------- clamp with Tensor bounds
def test_clamp_tensor_bounds_values_and_gradients_by_hand():
    x = tn.tensor([-2.0, 0.5, 3.0, 1.0], requires_grad=True)
    lo = tn.tensor([-1.0, 1.0, 0.0, 2.0], requires_grad=True)
    hi = tn.tensor([2.0, 2.0, 2.0, 0.0], requires_grad=True)     # last: min > max -> max
    y = F.clamp(x, lo, hi)
    assert y.detach().numpy().tolist() == [-1.0, 1.0, 2.0, 0.0]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.0, 0.0, 0.0]
    assert lo.grad.numpy().tolist() == [1.0, 1.0, 0.0, 0.0]
    assert hi.grad.numpy().tolist() == [0.0, 0.0, 1.0, 1.0]


def test_clamp_tensor_bound_broadcasts_and_sums_its_gradient():
    x, xt = _pair(RNG.standard_normal((3, 4)))
    lo, lot = _pair(RNG.standard_normal((4,)) * 0.5)
    y, yt = x.clamp(min=lo), torch.clamp(xt, min=lot)
    assert_close(y, yt)
    y.sum().backward()
    yt.sum().backward()
    assert lo.grad.shape == (4,)
    assert_close(lo.grad, lot.grad)
    assert_close(x.grad, xt.grad)


def test_clamp_bound_errors():
    x = tn.ones(2, 3)
    with pytest.raises(ValueError, match="clamp: shapes"):
        F.clamp(x, tn.zeros(4))
    with pytest.raises(TypeError, match="clamp: 'max' must be a number, a Tensor"):
        F.clamp(x, max="1")


# ----------------------------------------------------------------- amax / amin
def test_amax_splits_gradient_between_ties_unlike_max_along_dim():
    x, xt = _pair([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]])
    y, yt = x.amax(dim=1), torch.amax(xt, dim=1)
    assert_close(y, yt)
    y.sum().backward()
    yt.sum().backward()
    assert x.grad.numpy().tolist() == [[0.0, 0.5, 0.5], [0.5, 0.0, 0.5]]
    assert_close(x.grad, xt.grad)


def test_amin_over_several_dims_and_keepdim():
    a = RNG.standard_normal((2, 3, 4))
    ours = F.amin(tn.tensor(a), (0, 2), keepdim=True)
    assert ours.shape == (1, 3, 1)
    assert_close(ours, torch.amin(torch.from_numpy(a), (0, 2), keepdim=True))
    assert_close(tn.tensor(a).amax(), a.max())


def test_amax_of_an_empty_dim_is_an_error():
    with pytest.raises(ValueError, match="amax: cannot reduce an empty dimension"):
        F.amax(tn.zeros(2, 0), 1)


# ----------------------------------------------------------------- BCE with logits: target gradient
@pytest.mark.parametrize("with_pos_weight", [False, True])
@pytest.mark.parametrize("with_weight", [False, True])
def test_bce_with_logits_target_gradient_matches_torch(with_weight, with_pos_weight):
    x, xt = _pair(RNG.standard_normal((3, 4)) * 3)
    t, tt = _pair(RNG.uniform(0, 1, (3, 4)))
    w = RNG.uniform(0.5, 2, (4,)) if with_weight else None
    pw = RNG.uniform(0.5, 3, (4,)) if with_pos_weight else None
    ours = F.binary_cross_entropy_with_logits(
        x, t, None if w is None else tn.tensor(w), pos_weight=None if pw is None else tn.tensor(pw))
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(
        xt, tt, None if w is None else torch.from_numpy(w),
        pos_weight=None if pw is None else torch.from_numpy(pw))
    assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    assert t.grad is not None, "the target received no gradient"
    assert_close(t.grad, tt.grad)
    assert_close(x.grad, xt.grad)


def test_bce_with_logits_target_gradient_by_hand():
    """dℓ/dt = -x without pos_weight (a 'none' reduction keeps it per element)."""
    x = tn.tensor([2.0, -1.0])
    t = tn.tensor([0.3, 0.9], requires_grad=True)
    F.binary_cross_entropy_with_logits(x, t, reduction="sum").backward()
    assert_close(t.grad, np.array([-2.0, 1.0]))


def test_clamp_tensor_ties_send_the_gradient_to_input_like_torch():
    """At x == min or x == max the input, not the bound, gets the gradient (PyTorch)."""
    x, xt = _pair([1.0, 2.0, 0.5])
    lo, lot = _pair([1.0, 0.0, 0.5])
    hi, hit = _pair([3.0, 2.0, 0.5])
    F.clamp(x, lo, hi).sum().backward()
    torch.clamp(xt, lot, hit).sum().backward()
    for ours, theirs in ((x, xt), (lo, lot), (hi, hit)):
        assert_close(ours.grad, theirs.grad)
    assert x.grad.numpy().tolist() == [1.0, 1.0, 1.0]


def test_mean_with_dtype_casts_first_like_torch():
    assert F.mean(tn.tensor([1, 2]), dtype=tn.float64).item() == 1.5
    assert F.mean(tn.tensor([1, 2]), dtype=tn.float64).dtype == np.float64


@pytest.mark.parametrize("divisor,ceil_mode,padding", [(3, False, 0), (-2, True, 1), (1, True, 0)])
def test_avg_pool2d_divisor_override_matches_torch(divisor, ceil_mode, padding):
    x, xt = _pair(RNG.standard_normal((2, 3, 7, 6)))
    ours = F.avg_pool2d(x, 3, 2, padding, ceil_mode, divisor_override=divisor)
    theirs = torch.nn.functional.avg_pool2d(xt, 3, 2, padding, ceil_mode, divisor_override=divisor)
    assert_close(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    assert_close(x.grad, xt.grad)
    layer = nn.AvgPool2d(3, 2, padding, ceil_mode, divisor_override=divisor)
    assert_close(layer(x), theirs)


def test_pair_arguments_accept_one_element_sequences_like_torch():
    x = RNG.standard_normal((1, 2, 6, 6))
    w = RNG.standard_normal((3, 2, 3, 3))
    assert_close(F.conv2d(tn.tensor(x), tn.tensor(w), padding=(1,), stride=(2,)),
                 torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=(1,), stride=(2,)))
    assert F.max_pool2d(tn.tensor(x), (2,)).shape == (1, 2, 3, 3)


def test_group_norm_of_an_empty_batch_is_empty_like_torch():
    """A (0, C, L) batch used to end in a reshape error that did not name group_norm."""
    x = tn.ones(0, 4, 3, requires_grad=True)
    y = F.group_norm(x, 2, tn.ones(4), tn.zeros(4))
    assert y.shape == tuple(torch.nn.functional.group_norm(torch.ones(0, 4, 3), 2).shape)
    y.sum().backward()
    assert x.grad.shape == (0, 4, 3)


@pytest.mark.parametrize("shape, kernel, stride, transposed", [
    ((0, 3, 8, 8), 3, 1, False),        # flat rows
    ((0, 16, 40, 40), 3, 1, False),     # row strips
    ((0, 8, 8, 8), 1, 1, False),        # a 1x1 conv
    ((0, 8, 9, 9), 3, 2, False),        # the phase grid
    ((0, 8, 4, 4), 2, 2, True),         # a transposed conv
    ((0, 8, 5, 5), 3, 1, True)])
def test_conv_of_an_empty_batch_is_empty_with_zero_weight_gradients_like_torch(shape, kernel, stride,
                                                                                transposed):
    """The weight gradient once summed no products into None, and a transposed conv whose
    batch loop never ran returned None."""
    c = shape[1]
    x, xt = _pair(np.zeros(shape))
    w, wt = _pair(np.ones((c, 4, kernel, kernel) if transposed else (16, c, kernel, kernel)))
    b, bt = _pair(np.ones(4 if transposed else 16))
    if transposed:
        y, yt = (F.conv_transpose2d(x, w, b, stride=stride),
                 torch.nn.functional.conv_transpose2d(xt, wt, bt, stride=stride))
    else:
        y, yt = (F.conv2d(x, w, b, stride=stride, padding=kernel // 2),
                 torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=kernel // 2))
    assert y.shape == tuple(yt.shape)
    y.sum().backward()
    yt.sum().backward()
    for ours, theirs in ((x, xt), (w, wt), (b, bt)):
        assert ours.grad.shape == tuple(theirs.grad.shape)
        assert_close(ours.grad, theirs.grad)
