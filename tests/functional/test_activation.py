"""Activations: known values and derivatives, kink conventions, stability at |x| = 1000,
argument errors. Registry checks run in tests/testing/test_registry.py."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import assert_close


def _x(values, requires_grad=True, dtype=np.float64):
    return tn.tensor(np.asarray(values, dtype=dtype), requires_grad=requires_grad)


def test_relu_value_and_zero_gradient_at_zero():
    x = _x([-1.0, 0.0, 2.0])
    y = F.relu(x)
    assert y.detach().numpy().tolist() == [0.0, 0.0, 2.0]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.0, 1.0]


def test_leaky_relu():
    x = _x([-2.0, 3.0])
    y = F.leaky_relu(x, 0.1)
    assert_close(y, np.array([-0.2, 3.0]))
    y.sum().backward()
    assert_close(x.grad, np.array([0.1, 1.0]))


def test_elu_value_and_gradient():
    x = _x([-1.0, 2.0])
    y = F.elu(x, alpha=2.0)
    assert_close(y, np.array([2.0 * (np.exp(-1.0) - 1.0), 2.0]))
    y.sum().backward()
    assert_close(x.grad, np.array([2.0 * np.exp(-1.0), 1.0]))


# Every float32 range the fast expm1 route treats differently: tiny (where exp(x) - 1 alone
# loses every digit), moderate, below the -20 clamp, and the non-finite values.
_ELU_POINTS = np.concatenate([-np.logspace(-12, 1.5, 400), np.linspace(-3, 3, 61),
                              [-100.0, -np.inf, np.inf, 0.0]])


@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0, 0.0, -0.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elu_matches_torch_over_every_range(alpha, dtype):
    """Would fail if the float32 route dropped its log correction (tiny |x|), if the
    max() selection were used for alpha > 1, or if the mask-free backward read the sign
    of x from y for a negative alpha (y > 0 there for x < 0)."""
    torch = pytest.importorskip("torch")
    values = _ELU_POINTS.astype(dtype)
    grad = np.linspace(-2, 2, values.size).astype(dtype)
    x = _x(values, dtype=dtype)
    y = F.elu(x, alpha=alpha)
    y.backward(tn.tensor(grad))
    tx = torch.tensor(values, requires_grad=True)
    ty = torch.nn.functional.elu(tx, alpha)
    ty.backward(torch.tensor(grad))
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=rtol, atol=0)
    # The backward factor is y + alpha (PyTorch's own form for an in-place ELU): where
    # alpha·exp(x) is below the resolution of y (x < -16 in float32, -37 in float64), it
    # rounds to 0 where PyTorch's alpha·exp(x) does not: an absolute difference < eps·|grad|.
    atol = np.finfo(dtype).eps * np.abs(grad).max()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=atol)


def test_sigmoid_and_tanh_derivatives():
    x = _x([0.0, 1.0])
    s = F.sigmoid(x)
    assert_close(s, 1 / (1 + np.exp(-np.array([0.0, 1.0]))), rtol=1e-12)
    s.sum().backward()
    sv = 1 / (1 + np.exp(-np.array([0.0, 1.0])))
    assert_close(x.grad, sv * (1 - sv), rtol=1e-12)
    x.grad = None
    F.tanh(x).sum().backward()
    assert_close(x.grad, 1 - np.tanh([0.0, 1.0]) ** 2, rtol=1e-12)


def test_softmax_rows_sum_to_one_and_match_formula():
    v = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = F.softmax(_x(v, requires_grad=False), dim=1)
    e = np.exp(v)
    assert_close(y, e / e.sum(1, keepdims=True), rtol=1e-12)
    y0 = F.softmax(_x(v, requires_grad=False), dim=0)
    assert_close(y0.sum(0), np.ones(3), rtol=1e-12)


@pytest.mark.parametrize("shape,implicit", [((4,), 0), ((2, 3), 1), ((2, 3, 4), 0), ((2, 3, 4, 5), 1)])
def test_softmax_without_dim_takes_pytorchs_implicit_dim_and_warns(shape, implicit):
    x = _x(np.random.default_rng(0).standard_normal(shape), requires_grad=False)
    for f, module in ((F.softmax, tn.nn.Softmax()), (F.log_softmax, tn.nn.LogSoftmax())):
        with pytest.warns(UserWarning, match=f"dim={implicit}"):
            y = f(x)
        assert_close(y, f(x, implicit).numpy(), rtol=0, atol=0)
        with pytest.warns(UserWarning, match="implicit dimension"):
            assert_close(module(x), y.numpy(), rtol=0, atol=0)


def test_softmax_gradient_of_one_component():
    # d softmax_0 / dx_j = y0 (δ0j - y_j)
    x = _x([0.5, -0.5, 1.0])
    y = F.softmax(x, dim=0)
    y[0].backward()
    yv = y.detach().numpy()
    assert_close(x.grad, yv[0] * (np.eye(3)[0] - yv), rtol=1e-12)


def test_log_softmax_gradient():
    # d Σ_i log_softmax_i / dx = 1 - n·softmax
    x = _x([0.5, -0.5, 1.0])
    F.log_softmax(x, dim=0).sum().backward()
    p = np.exp([0.5, -0.5, 1.0])
    p /= p.sum()
    assert_close(x.grad, 1 - 3 * p, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_inputs_of_magnitude_1000(dtype):
    x = _x([-1000.0, 0.0, 1000.0], dtype=dtype)
    s = F.sigmoid(x)
    assert_close(s, np.array([0.0, 0.5, 1.0], dtype=dtype))
    sm = F.softmax(x, dim=0)
    assert_close(sm, np.array([0.0, 0.0, 1.0], dtype=dtype))
    ls = F.log_softmax(x, dim=0)
    assert np.isfinite(ls.detach().numpy()).all()
    assert_close(ls, np.array([-2000.0, -1000.0, 0.0], dtype=dtype))
    (s.sum() + sm[2] + ls[0]).backward()
    assert np.isfinite(x.grad.numpy()).all()
    assert_close(F.tanh(x), np.array([-1.0, 0.0, 1.0], dtype=dtype))


def test_activation_of_integer_tensor_is_type_error():
    for name in ("relu", "elu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax"):
        with pytest.raises(TypeError, match=rf"{name}: expected 'input' to be a floating-point tensor, got int64"):
            getattr(F, name)(tn.tensor([1, 2]))


def test_activation_needs_a_tensor():
    with pytest.raises(TypeError, match="relu: argument 'input' must be a Tensor, got list"):
        F.relu([1.0])


def test_bad_dim_names_the_op():
    with pytest.raises(ValueError, match=r"softmax: dim 2 is out of range for a tensor with 2 dimensions"):
        F.softmax(tn.ones(2, 3), dim=2)
    with pytest.raises(ValueError, match=r"log_softmax: dim -3 is out of range"):
        F.log_softmax(tn.ones(2, 3), dim=-3)
    with pytest.raises(TypeError, match="softmax: dim must be an int"):
        F.softmax(tn.ones(2, 3), dim=1.0)


def test_non_numeric_parameters_are_type_errors():
    with pytest.raises(TypeError, match="leaky_relu: 'negative_slope' must be a number, got str"):
        F.leaky_relu(tn.ones(2), "0.1")
    with pytest.raises(TypeError, match="elu: 'alpha' must be a number"):
        F.elu(tn.ones(2), alpha=None)
