"""Reductions: known values, the max/min tie rules, var/std corrections, sum_to, errors.
Registry checks run in tests/testing/test_registry.py."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import assert_close


def _x(values, requires_grad=True):
    return tn.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


M = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def test_sum_and_mean_values_and_keepdim():
    x = _x(M, requires_grad=False)
    assert F.sum(x).item() == 21.0
    assert F.sum(x, 0).numpy().tolist() == [5.0, 7.0, 9.0]
    assert F.sum(x, (0, 1), keepdim=True).shape == (1, 1)
    assert F.sum(x, -1, keepdim=True).shape == (2, 1)
    assert F.mean(x, 1).numpy().tolist() == [2.0, 5.0]


def test_sum_of_ints_is_int64_and_dtype_argument():
    assert F.sum(tn.tensor([1, 2])).dtype == np.int64
    assert F.sum(tn.tensor([True, True])).item() == 2
    assert F.sum(tn.tensor([1, 2]), dtype=tn.float64).dtype == np.float64


def test_mean_gradient_is_one_over_count():
    x = _x(M)
    F.mean(x, 0).sum().backward()
    assert_close(x.grad, np.full((2, 3), 0.5))


def test_max_min_values_and_indices_along_dim():
    x = _x(M, requires_grad=False)
    v, i = F.max(x, 1)
    assert v.numpy().tolist() == [3.0, 6.0] and i.numpy().tolist() == [2, 2]
    v, i = F.min(x, 0, keepdim=True)
    assert v.shape == (1, 3) and i.numpy().tolist() == [[0, 0, 0]]
    assert F.max(x).item() == 6.0 and F.min(x).item() == 1.0
    r = F.max(x, 0)
    assert r.values.shape == (3,) and r.indices.dtype == np.int64


def test_max_full_reduction_splits_ties_equally():
    # As PyTorch: the gradient of max() over all elements is shared by every maximum.
    x = _x([1.0, 3.0, 3.0, 2.0, 3.0])
    F.max(x).backward()
    assert_close(x.grad, np.array([0.0, 1 / 3, 1 / 3, 0.0, 1 / 3]))
    y = _x([-1.0, -1.0, 5.0])
    F.min(y).backward()
    assert_close(y.grad, np.array([0.5, 0.5, 0.0]))


def test_max_along_dim_gives_first_index_and_whole_gradient_there():
    # As PyTorch: max(dim) returns the first maximal index and routes the gradient to it.
    x = _x([[3.0, 1.0, 3.0], [2.0, 2.0, 0.0]])
    v, i = F.max(x, 1)
    assert i.numpy().tolist() == [0, 0]
    v.sum().backward()
    assert x.grad.numpy().tolist() == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    y = _x([[0.0, 0.0], [1.0, 1.0]])
    v, i = F.min(y, 0)
    assert i.numpy().tolist() == [0, 0]


def test_max_ties_match_pytorch():
    torch = pytest.importorskip("torch")
    data = np.array([[2.0, 5.0, 5.0], [5.0, 1.0, 5.0]])
    ours, theirs = _x(data), torch.tensor(data, requires_grad=True)
    F.max(ours).backward()
    torch.max(theirs).backward()
    assert_close(ours.grad, theirs.grad)
    ours.grad = None
    theirs.grad = None
    F.max(ours, 1)[0].sum().backward()
    torch.max(theirs, 1)[0].sum().backward()
    assert_close(ours.grad, theirs.grad)


def test_max_without_grad_still_returns_indices():
    x = _x(M, requires_grad=False)
    _, i = F.max(x, 0, keepdim=True)
    assert i.shape == (1, 3) and i.numpy().tolist() == [[1, 1, 1]]


def test_argmax_argmin():
    x = _x(M, requires_grad=False)
    assert F.argmax(x).item() == 5
    assert F.argmin(x, 1).numpy().tolist() == [0, 0]
    assert F.argmax(x, 0, keepdim=True).shape == (1, 3)


def test_var_and_std_corrections():
    x = _x([1.0, 2.0, 3.0, 4.0], requires_grad=False)
    assert F.var(x).item() == pytest.approx(5 / 3)
    assert F.var(x, correction=0).item() == pytest.approx(1.25)
    assert F.var(x, unbiased=False).item() == pytest.approx(1.25)
    assert F.std(x).item() == pytest.approx(np.sqrt(5 / 3))


def test_var_gradient():
    # d var / dx_i = 2(x_i - mean)/(N - 1)
    x = _x([1.0, 2.0, 6.0])
    F.var(x).backward()
    assert_close(x.grad, 2 * (np.array([1.0, 2.0, 6.0]) - 3.0) / 2)


def test_sum_to_reduces_broadcast_dims():
    x = _x(np.ones((2, 3, 4)))
    y = F.sum_to(x, (3, 1))
    assert y.shape == (3, 1) and y.detach().numpy().ravel().tolist() == [8.0, 8.0, 8.0]
    y.sum().backward()
    assert_close(x.grad, np.ones((2, 3, 4)))


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "std", "argmax", "argmin"])
def test_bad_dim_names_the_op(name):
    fn = getattr(F, name)
    with pytest.raises(ValueError, match=rf"{name}: dim 2 is out of range for a tensor with 2 dimensions"):
        fn(tn.ones(2, 3), 2)


def test_dim_of_wrong_type_and_repeated_dim():
    with pytest.raises(TypeError, match="sum: dim must be an int, a tuple of ints or None, got float"):
        F.sum(tn.ones(2, 3), 0.5)
    with pytest.raises(ValueError, match=r"mean: dim \(1, -1\) names a dimension twice"):
        F.mean(tn.ones(2, 3), (1, -1))


def test_mean_of_integers_is_type_error():
    with pytest.raises(TypeError, match="mean: input must be floating-point, got int64"):
        F.mean(tn.tensor([1, 2]))


def test_max_of_empty_tensor():
    with pytest.raises(ValueError, match=r"max: cannot reduce an empty tensor of shape \(0,\)"):
        F.max(tn.zeros(0))


def test_reduction_needs_a_tensor():
    with pytest.raises(TypeError, match="sum: argument 'input' must be a Tensor, got list"):
        F.sum([1.0, 2.0])


def test_sum_to_incompatible_shape():
    with pytest.raises(ValueError, match=r"sum_to: shape \(2, 3\) cannot be summed to \(4,\)"):
        F.sum_to(tn.ones(2, 3), (4,))
