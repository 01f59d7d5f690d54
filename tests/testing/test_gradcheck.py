"""gradcheck / gradgradcheck / assert_close: they pass right derivatives, catch wrong ones
(in full and fast mode), and say where and by how much."""
import numpy as np
import pytest

import tinynet as tn
from tinynet.autograd import Function
from tinynet.testing import gradcheck, gradgradcheck, assert_close, GradcheckError


def _x(values, requires_grad=True):
    return tn.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


class WrongSquare(Function):
    """y = x², with a backward that is off by a factor 1.5 on the element at index 2."""

    def forward(self, x):
        return x * x

    def backward(self, g):
        (x,) = self.inputs
        scale = np.ones(x.shape)
        scale.reshape(-1)[2] = 1.5
        return g * 2.0 * x * tn.tensor(scale)


class ConstantBackwardSquare(Function):
    """Right first derivative, but computed from raw arrays: no second derivative."""

    def forward(self, x):
        return x * x

    def backward(self, g):
        (x,) = self.inputs
        return g * tn.Tensor(2.0 * x.data)


def test_gradcheck_passes_a_right_derivative():
    x = _x([0.3, -1.2, 2.0])
    assert gradcheck(lambda t: (t * t * t).sum(), (x,)) is True
    assert gradcheck(lambda t: t.exp() * 2, (x,), fast_mode=True) is True


def test_gradcheck_with_several_inputs_and_outputs():
    a, b = _x([[1.0, 2.0]]), _x([[0.5], [3.0]])
    assert gradcheck(lambda p, q: (p * q, p + q), (a, b))


def test_gradcheck_skips_inputs_that_do_not_require_grad():
    a, b = _x([1.0, 2.0]), _x([3.0, 4.0], requires_grad=False)
    assert gradcheck(lambda p, q: p * q, (a, b))


def test_failure_message_names_input_worst_element_values_and_tolerances():
    x = _x([0.5, -1.0, 2.0, 1.5])
    other = _x([1.0], requires_grad=False)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda c, t: WrongSquare.apply(t) * c, (other, x))
    msg = str(info.value)
    assert "input 1" in msg and "(4,)" in msg
    assert "worst element (2, 2)" in msg            # output 2, input element 2
    assert "analytical 6" in msg and "numerical 4" in msg   # 1.5·2·2 vs 2·2
    assert "atol=1e-05" in msg and "rtol=0.001" in msg


def test_gradcheck_error_is_an_assertion_error():
    with pytest.raises(AssertionError):
        gradcheck(WrongSquare.apply, (_x([1.0, 2.0, 3.0]),))


def test_fast_mode_catches_a_wrong_gradient():
    x = _x(np.linspace(-1, 1, 12).reshape(3, 4))
    with pytest.raises(GradcheckError, match=r"projected Jacobian.*input 0.*analytical .*numerical"):
        gradcheck(WrongSquare.apply, (x,), fast_mode=True)


def test_gradgradcheck_passes_a_differentiable_backward():
    x = _x([0.4, -0.7])
    assert gradgradcheck(lambda t: (t * t * t).sum(), (x,))
    assert gradgradcheck(lambda t: t.tanh(), (x,), fast_mode=True)


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    x = _x([0.4, -0.7, 1.3])
    assert gradcheck(ConstantBackwardSquare.apply, (x,))
    with pytest.raises(GradcheckError, match="gradgradcheck"):
        gradgradcheck(ConstantBackwardSquare.apply, (x,))


def test_float32_inputs_are_refused():
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="gradcheck: input 0 is float32.*float64"):
        gradcheck(lambda t: t * 2, (x,))


def test_nothing_to_check_is_an_error():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda t: t * 2, (_x([1.0], requires_grad=False),))


def test_non_contiguous_input_is_handled():
    base = np.arange(12.0).reshape(3, 4) / 7
    x = tn.tensor(base, requires_grad=True)
    x.data = x.data.T          # a transposed view
    assert gradcheck(lambda t: (t * t).sum(0), (x,))


def test_assert_close_defaults_and_message():
    assert_close(tn.tensor(np.array([1.0, 2.0])), np.array([1.0, 2.0 + 1e-9]))
    with pytest.raises(AssertionError, match=r"1 of 2 elements differ.*worst at \(1,\)"):
        assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.1]))
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_close(np.zeros(2), np.zeros(3))
    assert_close(np.array([1.0], dtype=np.float32), np.array([1.000001]))   # float32 tolerance


def test_assert_close_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    assert_close(tn.tensor(np.array([1.0, 2.0])), torch.tensor([1.0, 2.0], dtype=torch.float64))
