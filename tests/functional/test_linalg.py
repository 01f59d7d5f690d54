"""matmul and linear: known products and gradients for every operand rank, broadcast
batch gradients, and the shape/dtype errors. Registry checks run in test_registry.py."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import assert_close


def _x(values, requires_grad=True):
    return tn.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def test_matmul_2d_and_gradients():
    a, b = _x([[1.0, 2.0], [3.0, 4.0]]), _x([[5.0], [6.0]])
    c = a @ b
    assert c.detach().numpy().tolist() == [[17.0], [39.0]]
    c.sum().backward()
    assert a.grad.numpy().tolist() == [[5.0, 6.0], [5.0, 6.0]]   # dC @ Bᵀ
    assert b.grad.numpy().tolist() == [[4.0], [6.0]]             # Aᵀ @ dC


def test_matmul_vector_cases():
    v, m = _x([1.0, 2.0]), _x([[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]])
    assert (v @ v).shape == () and (v @ v).item() == 5.0
    vm = v @ m
    assert vm.shape == (3,) and vm.detach().numpy().tolist() == [1.0, 2.0, 8.0]
    mv = F.matmul(F.transpose(m, 0, 1), v)
    assert mv.shape == (3,)
    vm.sum().backward()
    assert v.grad.numpy().tolist() == [3.0, 4.0]


def test_batched_matmul_with_broadcast_batch_sums_the_gradient():
    a = _x(np.ones((4, 2, 3)))
    b = _x(np.ones((3, 5)))          # broadcast over the batch of 4
    c = a @ b
    assert c.shape == (4, 2, 5)
    c.sum().backward()
    assert b.grad.shape == (3, 5)
    assert_close(b.grad, np.full((3, 5), 8.0))   # 4 batches × 2 rows
    x, y = _x(np.ones((2, 1, 2, 3))), _x(np.ones((5, 3, 1)))
    assert (x @ y).shape == (2, 5, 2, 1)


def test_linear_with_and_without_bias():
    x = _x([[1.0, 2.0]])
    w = _x([[1.0, 1.0], [2.0, -1.0], [0.0, 3.0]])
    b = _x([0.5, 0.0, -1.0])
    y = F.linear(x, w, b)
    assert_close(y, np.array([[3.5, 0.0, 5.0]]))
    y.sum().backward()
    assert_close(x.grad, np.array([[3.0, 3.0]]))                 # Σ_out W
    assert_close(w.grad, np.array([[1.0, 2.0]] * 3))
    assert_close(b.grad, np.ones(3))
    assert F.linear(x, w).shape == (1, 3)


def test_linear_on_1d_and_3d_inputs():
    w = _x(np.ones((4, 3)))
    assert F.linear(_x(np.ones(3)), w).shape == (4,)
    x3 = _x(np.ones((2, 5, 3)))
    y = F.linear(x3, w, _x(np.zeros(4)))
    assert y.shape == (2, 5, 4)
    y.sum().backward()
    assert_close(w.grad, np.full((4, 3), 10.0))


# ----------------------------------------------------------------- errors
def test_matmul_inner_dimension_mismatch():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 2\) cannot be multiplied \(3 != 4\)"):
        F.matmul(tn.ones(2, 3), tn.ones(4, 2))
    with pytest.raises(ValueError, match=r"matmul: shapes \(3,\) and \(2,\) cannot be multiplied"):
        tn.ones(3) @ tn.ones(2)


def test_matmul_batch_mismatch_and_scalars():
    with pytest.raises(ValueError, match=r"matmul: batch dimensions of \(2, 3, 4\) and \(3, 4, 5\) do not broadcast"):
        F.matmul(tn.ones(2, 3, 4), tn.ones(3, 4, 5))
    with pytest.raises(ValueError, match="matmul: both arguments need at least 1 dimension"):
        F.matmul(tn.ones(2), tn.tensor(2.0))


def test_matmul_wrong_type():
    with pytest.raises(TypeError, match="matmul: argument 'other' must be a Tensor or a number, got list"):
        F.matmul(tn.ones(2, 2), [[1.0, 2.0]])


def test_linear_errors_name_the_argument():
    x = tn.ones(2, 3)
    with pytest.raises(ValueError, match=r"linear: input has 3 features .* but weight expects 5"):
        F.linear(x, tn.ones(4, 5))
    with pytest.raises(ValueError, match=r"linear: expected 'weight' to be 2-D, got shape \(3,\)"):
        F.linear(x, tn.ones(3))
    with pytest.raises(ValueError, match="linear: bias has 2 elements but weight has 4 output features"):
        F.linear(x, tn.ones(4, 3), tn.ones(2))
    with pytest.raises(TypeError, match="linear: expected 'input' to be a floating-point tensor, got int64"):
        F.linear(tn.tensor([[1, 2, 3]]), tn.ones(4, 3))
    with pytest.raises(TypeError, match="linear: input is float32 but weight is float64"):
        F.linear(x, tn.tensor(np.ones((4, 3))))
    with pytest.raises(TypeError, match="linear: argument 'weight' must be a Tensor, got str"):
        F.linear(x, "w")
