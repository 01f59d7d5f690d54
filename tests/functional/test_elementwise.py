"""Elementwise ops: hand-derived values and gradients, tie and boundary rules, promotion,
and the errors (non-broadcastable shapes, wrong types) naming op and argument.
Registry checks (gradcheck, torch parity...) run in tests/testing/test_registry.py."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import assert_close


def _x(values, requires_grad=True):
    return tn.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def test_div_gradients():
    a, b = _x([6.0]), _x([2.0])
    F.div(a, b).sum().backward()
    assert_close(a.grad, np.array([0.5]))        # 1/b
    assert_close(b.grad, np.array([-1.5]))       # -a/b²


def test_pow_gradients_including_zero_base():
    a, b = _x([2.0, 0.0]), _x([3.0, 2.0])
    F.pow(a, b).sum().backward()
    assert_close(a.grad, np.array([12.0, 0.0]))                   # b·a^(b-1)
    assert_close(b.grad, np.array([8.0 * np.log(2.0), 0.0]))      # y·log a, 0 at a = 0


def test_pow_with_scalar_exponent_and_scalar_base():
    x = _x([3.0])
    (x ** 2).sum().backward()
    assert_close(x.grad, np.array([6.0]))
    x.grad = None
    (2.0 ** x).sum().backward()
    assert_close(x.grad, np.array([8.0 * np.log(2.0)]))


def test_exp_log_sqrt_abs():
    x = _x([4.0])
    (F.exp(x) + F.log(x) + F.sqrt(x)).sum().backward()
    assert_close(x.grad, np.array([np.exp(4.0) + 0.25 + 0.25]))
    y = _x([-2.0, 0.0, 3.0])
    F.abs(y).sum().backward()
    assert_close(y.grad, np.array([-1.0, 0.0, 1.0]))   # sign, 0 at 0 (PyTorch)


def test_clamp_passes_gradient_at_the_bounds():
    x = _x([-2.0, -1.0, 0.0, 1.0, 2.0])
    y = F.clamp(x, min=-1.0, max=1.0)
    assert y.detach().numpy().tolist() == [-1.0, -1.0, 0.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_maximum_and_minimum_split_ties_equally():
    a, b = _x([1.0, 2.0, 3.0]), _x([3.0, 2.0, 1.0])
    F.maximum(a, b).sum().backward()
    assert a.grad.numpy().tolist() == [0.0, 0.5, 1.0]
    assert b.grad.numpy().tolist() == [1.0, 0.5, 0.0]
    a.grad = b.grad = None
    F.minimum(a, b).sum().backward()
    assert a.grad.numpy().tolist() == [1.0, 0.5, 0.0]


def test_where_routes_gradients():
    a, b = _x([1.0, 2.0]), _x([10.0, 20.0])
    cond = tn.tensor([True, False])
    out = F.where(cond, a, b)
    assert out.detach().numpy().tolist() == [1.0, 20.0]
    out.sum().backward()
    assert a.grad.numpy().tolist() == [1.0, 0.0] and b.grad.numpy().tolist() == [0.0, 1.0]
    assert tn.where(cond, 1.0, b).dtype == np.float64


def test_add_sub_alpha():
    a, b = _x([1.0]), _x([2.0])
    F.sub(a, b, alpha=3).sum().backward()
    assert_close(b.grad, np.array([-3.0]))
    assert F.add(a, b, alpha=2).item() == 5.0


def test_comparisons_have_no_gradient():
    a = _x([1.0, 2.0])
    for r in (a > 1, a >= 1, a < 1, a <= 1, a == 1, a != 1):
        assert r.dtype == np.bool_ and not r.requires_grad


def test_integer_inputs_to_float_functions_become_float32():
    assert F.exp(tn.tensor([0, 1])).dtype == np.float32
    assert F.sqrt(tn.tensor([4])).numpy().tolist() == [2.0]


def test_square_and_neg():
    x = _x([3.0])
    (F.square(x) - F.neg(x)).sum().backward()
    assert_close(x.grad, np.array([7.0]))


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_non_broadcastable_shapes_name_the_op(name):
    fn = getattr(F, name)
    with pytest.raises(ValueError, match=rf"^{name}: shapes \(2, 3\) and \(4,\) do not broadcast"):
        fn(tn.ones(2, 3), tn.ones(4))


def test_operator_broadcast_error_comes_from_tinynet():
    with pytest.raises(ValueError, match=r"mul: shapes \(3,\) and \(2, 2\) do not broadcast"):
        tn.ones(3) * tn.ones(2, 2)


def test_where_condition_must_broadcast():
    with pytest.raises(ValueError, match="where: shapes"):
        F.where(tn.ones(5) > 0, tn.ones(3), tn.ones(3))


@pytest.mark.parametrize("name", ["add", "mul", "sub", "div", "maximum"])
def test_string_operand_is_type_error_naming_op_and_argument(name):
    with pytest.raises(TypeError, match=rf"{name}: argument 'other' must be a Tensor or a number, got str"):
        getattr(F, name)(tn.ones(2), "2")
    with pytest.raises(TypeError, match=rf"{name}: argument 'input' must be a Tensor or a number"):
        getattr(F, name)("2", tn.ones(2))


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "abs", "neg", "sign"])
def test_unary_ops_need_a_tensor(name):
    with pytest.raises(TypeError, match=rf"{name}: argument 'input' must be a Tensor, got list"):
        getattr(F, name)([1.0])


def test_where_needs_a_bool_condition():
    with pytest.raises(TypeError, match="where: 'condition' must be a bool tensor, got float32"):
        F.where(tn.ones(2), tn.ones(2), tn.ones(2))


def test_clamp_arguments():
    with pytest.raises(ValueError, match="clamp: at least one of 'min' and 'max'"):
        F.clamp(tn.ones(2))
    with pytest.raises(TypeError, match="clamp: 'min' must be a number"):
        F.clamp(tn.ones(2), min="0")


def test_to_dtype_errors():
    with pytest.raises(TypeError, match="to: unknown dtype"):
        F.to_dtype(tn.ones(2), "float77")


def test_to_device_passes_the_gradient_back_to_the_source():
    # .to(device) is documented as differentiable; the same-device call returns the input,
    # and the ToDevice node (used across devices) must hand dy back unchanged
    from tinynet.functional.elementwise import ToDevice
    from tinynet.testing import gradcheck, gradgradcheck
    x = tn.tensor(np.array([[1.0, -2.0], [3.0, 0.5]]), requires_grad=True)
    w = np.array([[2.0, 3.0], [5.0, 7.0]])
    (x.to("cpu") * tn.tensor(w, device="cpu")).sum().backward()   # crosses devices on a GPU run
    np.testing.assert_array_equal(x.grad.numpy(), w)
    x.grad = None
    y = ToDevice.apply(x, device=tn.backend.Device("cpu"))
    assert y._ctx is not None and x.grad is None
    (y * tn.tensor(w, device="cpu")).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), w)
    node = lambda a: ToDevice.apply(a, device=tn.backend.Device("cpu"))  # noqa: E731
    assert gradcheck(lambda a: node(a) ** 2, [x.detach().requires_grad_(True)])
    assert gradgradcheck(lambda a: node(a) ** 2, [x.detach().requires_grad_(True)])
