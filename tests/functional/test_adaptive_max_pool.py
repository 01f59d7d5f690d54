"""F.adaptive_max_pool2d / nn.AdaptiveMaxPool2d: PyTorch's bins by hand, values and indices
against PyTorch (ties, NaN, -inf, overlapping bins, None sizes, 3-D input), the gradient's
scatter-add and the second derivative's gather by hand, and the errors. The registry covers
gradcheck, gradgradcheck and PyTorch parity over drawn shapes and output sizes."""
import inspect

import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import nn
from tinynet.testing import assert_close


def test_bins_by_hand():
    """H=5, Ho=3: rows [0,2), [1,4), [3,5); W=3, Wo=2: columns [0,2), [1,3)."""
    x = np.arange(15.0).reshape(1, 1, 5, 3)
    x[0, 0, 1, 1] = 100.0          # in row bins 0 and 1, column bins 0 and 1
    y, i = F.adaptive_max_pool2d(tn.tensor(x), (3, 2), return_indices=True)
    assert y.numpy()[0, 0].tolist() == [[100.0, 100.0], [100.0, 100.0], [13.0, 14.0]]
    assert i.numpy()[0, 0].tolist() == [[4, 4], [4, 4], [13, 14]]
    assert i.dtype == tn.int64


def test_gradient_accumulates_where_bins_share_a_maximum_and_second_order_gathers():
    """The shared maximum receives all four output gradients; d(dx)/d(dy) reads g there."""
    x = np.arange(15.0).reshape(1, 1, 5, 3)
    x[0, 0, 1, 1] = 100.0
    a = tn.tensor(x, requires_grad=True)
    y = F.adaptive_max_pool2d(a, (3, 2))
    gy = tn.tensor(np.array([[[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]]), requires_grad=True)
    (gx,) = tn.autograd.grad(y, a, gy, create_graph=True)
    expected = np.zeros((5, 3))
    expected[1, 1], expected[4, 1], expected[4, 2] = 10.0, 5.0, 6.0
    assert gx.detach().numpy()[0, 0].tolist() == expected.tolist()
    weights = np.arange(15.0).reshape(1, 1, 5, 3)
    (ggy,) = tn.autograd.grad((gx * tn.tensor(weights)).sum(), gy)
    assert ggy.numpy()[0, 0].tolist() == [[4.0, 4.0], [4.0, 4.0], [13.0, 14.0]]


def test_empty_batch_has_empty_gradients_of_every_order():
    """N = 0 (PyTorch allows it): the backward and its gather keep the (0, C, ...) shapes."""
    a = tn.tensor(np.zeros((0, 3, 5, 2)), requires_grad=True)
    y = F.adaptive_max_pool2d(a, (1, 3))
    assert y.shape == (0, 3, 1, 3)
    gy = tn.tensor(np.zeros((0, 3, 1, 3)), requires_grad=True)
    (gx,) = tn.autograd.grad(y, a, gy, create_graph=True)
    assert gx.shape == (0, 3, 5, 2)
    (ggy,) = tn.autograd.grad(gx.sum(), gy)
    assert ggy.shape == (0, 3, 1, 3)


@pytest.mark.parametrize("shape, output_size", [
    ((2, 3, 5, 7), (3, 2)), ((2, 3, 4, 4), (6, 5)), ((3, 7, 3), (7, None)), ((1, 2, 1, 1), (2, 3)),
    ((2, 2, 6, 6), 4), ((2, 5, 4), (None, None)), ((1, 1, 9, 2), (4, 1)),
])
def test_values_indices_and_gradients_match_torch_with_ties_nan_and_inf(shape, output_size):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, shape).astype(np.float64)        # many ties
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, size=max(1, flat.size // 6), replace=False)] = np.nan
    flat[rng.choice(flat.size, size=max(1, flat.size // 6), replace=False)] = -np.inf
    a, b = tn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ya, ia = F.adaptive_max_pool2d(a, output_size, True)
    yb, ib = torch.nn.functional.adaptive_max_pool2d(b, output_size, True)
    assert np.array_equal(ya.detach().numpy(), yb.detach().numpy(), equal_nan=True)
    assert np.array_equal(ia.numpy(), ib.numpy())
    v = rng.standard_normal(ya.shape)
    (ya * tn.tensor(v)).sum().backward()
    (yb * torch.tensor(v)).sum().backward()
    assert_close(a.grad, b.grad, rtol=0, atol=1e-15)


def test_all_minus_inf_bin_takes_its_first_index():
    x = tn.tensor(np.full((1, 1, 2, 2), -np.inf))
    y, i = F.adaptive_max_pool2d(x, 1, return_indices=True)
    assert y.item() == -np.inf and i.item() == 0


def test_module_and_signatures_match_torch():
    torch = pytest.importorskip("torch")
    # torch's F.adaptive_max_pool2d is a dispatch wrapper (*args, **kwargs); its documented
    # signature is adaptive_max_pool2d(input, output_size, return_indices=False)
    assert [(p.name, p.default) for p in inspect.signature(F.adaptive_max_pool2d).parameters.values()] \
        == [("input", inspect.Parameter.empty), ("output_size", inspect.Parameter.empty),
            ("return_indices", False)]
    assert [p for p in inspect.signature(nn.AdaptiveMaxPool2d.__init__).parameters] == \
        [p for p in inspect.signature(torch.nn.AdaptiveMaxPool2d.__init__).parameters]
    assert repr(nn.AdaptiveMaxPool2d((2, None))) == repr(torch.nn.AdaptiveMaxPool2d((2, None)))
    x = np.random.default_rng(0).standard_normal((3, 5, 4))
    y, i = nn.AdaptiveMaxPool2d((2, 3), return_indices=True)(tn.tensor(x))
    yt, it = torch.nn.AdaptiveMaxPool2d((2, 3), return_indices=True)(torch.tensor(x))
    assert np.array_equal(y.numpy(), yt.numpy()) and np.array_equal(i.numpy(), it.numpy())
    assert nn.AdaptiveMaxPool2d(2)(tn.tensor(x)).shape == (3, 2, 2)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.adaptive_max_pool2d(tn.randn(2, 3), 2), ValueError, "adaptive_max_pool2d: expected 'input' to be 3-D or 4-D"),
    (lambda: F.adaptive_max_pool2d(tn.ones(1, 2, 2, dtype=tn.int64), 1), TypeError, "adaptive_max_pool2d: expected 'input' to be a floating"),
    (lambda: F.adaptive_max_pool2d(tn.randn(1, 3, 3), -1), ValueError, "adaptive_max_pool2d: output_size must be non-negative ints"),
    (lambda: F.adaptive_max_pool2d(tn.randn(1, 0, 3, 3), 2), ValueError, r"adaptive_max_pool2d: input has no channels \(shape \(1, 0, 3, 3\)\)"),
    (lambda: F.adaptive_max_pool2d(tn.randn(1, 3, 3), (1, 2, 3)), ValueError, "adaptive_max_pool2d: output_size must be an int or a pair"),
    (lambda: F.adaptive_max_pool2d(tn.randn(1, 0, 3), 1), ValueError, "adaptive_max_pool2d: input has an empty spatial size"),
    (lambda: nn.AdaptiveMaxPool2d((2, -1)), ValueError, "AdaptiveMaxPool2d: output_size must be a non-negative int"),
])
def test_errors_name_the_op_and_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("shape, size, out", [
    ((1, 2, 3, 4), 0, (1, 2, 0, 0)), ((1, 2, 3, 4), (0, 2), (1, 2, 0, 2)),
    ((1, 2, 3, 4), (None, 0), (1, 2, 3, 0)), ((2, 3, 4), (2, 0), (2, 2, 0)),
    ((0, 2, 3, 4), 0, (0, 2, 0, 0)),
])
def test_output_size_zero_is_an_empty_output_as_in_pytorch(shape, size, out):
    # PyTorch's forward gives the empty output (its backward refuses an empty grad_output;
    # ours is the zero gradient: no input is read); the second derivative is empty too
    torch = pytest.importorskip("torch")
    x = tn.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    y, i = F.adaptive_max_pool2d(x, size, return_indices=True)
    yt, it = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x.detach().numpy()), size,
                                                     return_indices=True)
    assert tuple(y.shape) == tuple(i.shape) == tuple(yt.shape) == tuple(it.shape) == out
    assert i.dtype == tn.int64 and y.dtype == tn.float64
    (g,) = tn.autograd.grad(y.sum(), [x], create_graph=True)
    assert tuple(g.shape) == shape and not g.detach().numpy().any()
    assert nn.AdaptiveMaxPool2d(size)(x).shape == out


def test_an_empty_channel_dim_is_refused_like_pytorch():
    # PyTorch: "Expected input to have non-zero size for non-batch dimensions"
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="non-zero size for non-batch dimensions"):
        torch.nn.functional.adaptive_max_pool2d(torch.ones(1, 0, 3, 4), 2)
    with pytest.raises(ValueError, match="adaptive_max_pool2d: input has no channels"):
        F.adaptive_max_pool2d(tn.ones(1, 0, 3, 4), 2)
    assert F.adaptive_max_pool2d(tn.ones(0, 3, 4), 2).shape == (0, 2, 2)     # 3-D: as PyTorch
    assert torch.nn.functional.adaptive_max_pool2d(torch.ones(0, 3, 4), 2).shape == (0, 2, 2)
