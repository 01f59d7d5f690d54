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


@pytest.mark.parametrize("route", ["numpy", "numpy in chunks", "compiled"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_of_infinities_nan_and_signed_zeros_is_pytorchs(route, dtype, monkeypatch):
    """PyTorch's relu is clamp_min(x, 0): -inf and negatives give +0, -0 stays -0, NaN
    stays NaN (``x * [x > 0]`` gave NaN for -inf and -0 for negatives). The sign of each
    zero is compared on the CPU, where NumPy's maximum keeps its second operand on a tie of
    zeros (the route's stated rule); on a GPU the values."""
    from tinynet import backend
    from tinynet.functional import activation
    if route == "compiled" and not backend.compiled_available():
        pytest.skip("the compiled route needs Numba (the jit extra)")
    monkeypatch.setattr(backend, "_compiled", route == "compiled")
    monkeypatch.setattr(activation, "_RELU_CHUNKED_BYTES", 0 if route == "numpy in chunks" else 1 << 40)
    monkeypatch.setattr(activation, "_COMPILED_MIN_SIZE", 1)
    monkeypatch.setattr(backend, "parallel_grain", 1 << 12)      # chunks of the small array
    x = np.tile(np.array([-np.inf, -3.5, -0.0, 0.0, 2.0, np.inf, np.nan], dtype), 3000)
    y = F.relu(tn.tensor(x)).numpy()
    expected = np.tile(np.array([0.0, 0.0, -0.0, 0.0, 2.0, np.inf, np.nan], dtype), 3000)
    np.testing.assert_array_equal(y, expected)          # NaN where NaN
    if tn.backend.get_default_device().type == "cpu":
        np.testing.assert_array_equal(np.signbit(y), np.signbit(expected))
    torch = pytest.importorskip("torch")
    reference = torch.relu(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(y, reference)
    if tn.backend.get_default_device().type == "cpu":
        np.testing.assert_array_equal(np.signbit(y), np.signbit(reference))


@pytest.mark.skipif(tn.backend.get_default_device().type != "cpu",
                    reason="tracemalloc sees host (NumPy) allocations only")
@pytest.mark.parametrize("route", ["numpy", "numpy in chunks", "compiled"])
def test_relu_keeps_no_memory_beyond_its_output(route, monkeypatch):
    """After the forward, the graph holds y and nothing the size of x besides (the
    backward reads [y > 0]); a kept bool mask would be another quarter of y."""
    import tracemalloc
    from tinynet import backend
    from tinynet.functional import activation
    if route == "compiled" and not backend.compiled_available():
        pytest.skip("the compiled route needs Numba (the jit extra)")
    monkeypatch.setattr(backend, "_compiled", route == "compiled")
    monkeypatch.setattr(activation, "_RELU_CHUNKED_BYTES", 0 if route == "numpy in chunks" else 1 << 40)
    monkeypatch.setattr(backend, "parallel_grain", 1 << 16)      # 1 MB: several chunks
    x = tn.tensor(np.random.default_rng(0).standard_normal((256, 1024)).astype(np.float32),
                  requires_grad=True)
    F.relu(x).backward(tn.ones_like(x))     # first calls: a compiled kernel loads Numba
    x.grad = None
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        y = F.relu(x)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert y.data.nbytes <= kept < 1.05 * y.data.nbytes
    y.backward(tn.ones_like(y))
    np.testing.assert_array_equal(x.grad.numpy(), (x.detach().numpy() > 0).astype(np.float32))


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


def test_float64_sigmoid_is_accurate_relative_to_its_value_in_both_tails():
    """σ(-30) = 9.4e-14 and σ(-700) = 9.9e-305 to a few ulp, and σ(x) + σ(-x) = 1: would
    fail with 0.5·tanh(0.5·x) + 0.5 in float64 (relative error 2e-4 at -30, 0 at -700)."""
    v = np.array([-700.0, -100.0, -30.0, -17.0, -1.0, 0.0, 1.0, 17.0, 30.0, 100.0, 700.0])
    y = F.sigmoid(_x(v, requires_grad=False)).numpy()
    e = np.exp(-np.abs(v))
    exact = np.where(v >= 0, 1.0, e) / (1.0 + e)
    np.testing.assert_allclose(y, exact, rtol=4 * np.finfo(np.float64).eps, atol=0)
    np.testing.assert_allclose(y + y[::-1], 1.0, rtol=4 * np.finfo(np.float64).eps)


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


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_of_a_0d_tensor_checks_dim_and_warns_without_one_as_torch(op):
    # PyTorch: a 0-d input takes dim 0 or -1 only (IndexError otherwise), and dim=None
    # warns that the implicit choice (dim 0) is deprecated
    x = tn.tensor(2.0)
    for dim in (1, -2):
        with pytest.raises(ValueError, match=rf"{op}: dim {dim} is out of range for a tensor with 0 dim"):
            getattr(F, op)(x, dim)
    for dim in (0, -1):
        assert getattr(F, op)(x, dim).item() == (1.0 if op == "softmax" else 0.0)
    with pytest.warns(UserWarning, match="dim=0"):
        assert getattr(F, op)(x).item() == (1.0 if op == "softmax" else 0.0)


def test_non_numeric_parameters_are_type_errors():
    with pytest.raises(TypeError, match="leaky_relu: 'negative_slope' must be a number, got str"):
        F.leaky_relu(tn.ones(2), "0.1")
    with pytest.raises(TypeError, match="elu: 'alpha' must be a number"):
        F.elu(tn.ones(2), alpha=None)


# --------------------------------------------------------------------------------------
# softplus, hardtanh, relu6, selu, celu, mish, hardswish, hardsigmoid, logsigmoid, glu,
# prelu; softmax's dtype. Kinks, stability and errors against PyTorch.

def _torch_pair(values, dtype=np.float64):
    torch = pytest.importorskip("torch")
    values = np.asarray(values, dtype=dtype)
    return _x(values, dtype=dtype), torch.tensor(values, requires_grad=True), torch


def _first_and_second(fn, x):
    """y, dy/dx (create_graph) and d/dx Σ dy/dx, for tinynet or torch alike."""
    y = fn(x)
    autograd = tn.autograd if isinstance(x, tn.Tensor) else __import__("torch").autograd
    (g,) = autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = autograd.grad(g.sum(), x, allow_unused=False) if g.requires_grad else (None,)
    return y, g, gg


def _assert_same(ours, theirs, rtol=1e-12, atol=0.0):
    np.testing.assert_allclose(np.asarray(ours.detach().numpy()), theirs.detach().numpy(),
                               rtol=rtol, atol=atol)


# (name, tinynet call, torch call, points: the kinks and their neighbours)
_KINKS = [
    ("hardtanh", lambda F_, x: F_.hardtanh(x), [-1.0, 1.0, -1.5, 0.0, 1.5]),
    ("hardtanh(-0.5, 2)", lambda F_, x: F_.hardtanh(x, -0.5, 2.0), [-0.5, 2.0, -0.6, 1.9, 2.1]),
    ("hardtanh(0.5, 0.5)", lambda F_, x: F_.hardtanh(x, 0.5, 0.5), [0.5, 0.0, 1.0]),
    ("relu6", lambda F_, x: F_.relu6(x), [0.0, 6.0, -1.0, 3.0, 7.0]),
    ("hardswish", lambda F_, x: F_.hardswish(x), [-3.0, 3.0, -4.0, 0.0, 2.9, 4.0]),
    ("hardsigmoid", lambda F_, x: F_.hardsigmoid(x), [-3.0, 3.0, -4.0, 0.0, 4.0]),
    ("selu", lambda F_, x: F_.selu(x), [0.0, -1.0, 1.0]),
    ("celu", lambda F_, x: F_.celu(x, 2.0), [0.0, -1.0, 1.0]),
    ("celu(-2)", lambda F_, x: F_.celu(x, -2.0), [0.0, -1.0, 1.0]),
    ("softplus at threshold", lambda F_, x: F_.softplus(x, 2.0, 5.0), [2.5, 2.5 + 1e-9, 2.4, -3.0]),
    ("softplus(beta<0)", lambda F_, x: F_.softplus(x, -2.0, 5.0), [-2.5, -2.6, 0.0, 1.0]),
    ("logsigmoid", lambda F_, x: F_.logsigmoid(x), [0.0, -2.0, 2.0]),
    ("mish", lambda F_, x: F_.mish(x), [0.0, -2.0, 2.0, 20.0, 21.0]),
]


@pytest.mark.parametrize("name,call,points", _KINKS, ids=[k[0] for k in _KINKS])
def test_values_and_subgradients_at_kinks_match_torch_first_and_second_order(name, call, points):
    """Would fail if a mask used <= where PyTorch uses < (hardtanh/relu6 at their bounds,
    hardsigmoid at ±3 give 0; hardswish gives 0 at -3 and 1 at 3), if selu/celu took the
    positive branch at 0, or if a second derivative were missing or wrong."""
    x, xt, torch = _torch_pair(points)
    y, g, gg = _first_and_second(lambda v: call(F, v), x)
    if name == "hardsigmoid":   # PyTorch has no derivative of hardsigmoid_backward; it is 0
        yt = call(torch.nn.functional, xt)
        (gt,) = torch.autograd.grad(yt.sum(), xt)
        ggt = torch.zeros_like(xt)
    else:
        yt, gt, ggt = _first_and_second(lambda v: call(torch.nn.functional, v), xt)
    _assert_same(y, yt)
    # hardsigmoid's PyTorch gradient is a float32 1/6 even in float64.
    _assert_same(g, gt, rtol=1e-7 if name == "hardsigmoid" else 1e-12)
    if ggt is None or gg is None:
        assert (gg is None or not gg.numpy().any()) and (ggt is None or not ggt.any())
    else:
        _assert_same(gg, ggt, rtol=1e-12, atol=1e-15)


def test_kink_gradients_by_hand():
    """PyTorch's documented subgradients, written out (no torch needed)."""
    x = _x([-1.0, 1.0, 0.0])
    F.hardtanh(x).sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.0, 1.0]
    x = _x([0.0, 6.0, 3.0])
    F.relu6(x).sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.0, 1.0]
    x = _x([-3.0, 3.0, 0.0, 1.5])
    F.hardswish(x).sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 1.0, 0.5, 1.0]
    x = _x([-3.0, 3.0, 0.0])
    F.hardsigmoid(x).sum().backward()
    assert_close(x.grad, np.array([0.0, 0.0, 1 / 6]), rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["logsigmoid", "softplus", "mish", "softplus(beta=0.5)", "celu", "selu"])
def test_stable_and_equal_to_torch_up_to_magnitude_100(name, dtype):
    """|x| up to 100: no inf/nan in value, gradient or second derivative, and PyTorch's
    numbers. Would fail with log(1 + exp(x)) (inf at 100 in float32), log(sigmoid(x))
    (-inf at -100) or a backward that multiplies an overflowed exp by a zero."""
    calls = {"logsigmoid": lambda F_, v: F_.logsigmoid(v), "softplus": lambda F_, v: F_.softplus(v),
             "mish": lambda F_, v: F_.mish(v), "softplus(beta=0.5)": lambda F_, v: F_.softplus(v, 0.5, 30.0),
             "celu": lambda F_, v: F_.celu(v, 0.5), "selu": lambda F_, v: F_.selu(v)}
    points = np.concatenate([-np.geomspace(100, 1e-3, 40), [0.0], np.geomspace(1e-3, 100, 40)])
    x, xt, torch = _torch_pair(points, dtype)
    y, g, gg = _first_and_second(lambda v: calls[name](F, v), x)
    yt, gt, ggt = _first_and_second(lambda v: calls[name](torch.nn.functional, v), xt)
    for ours in (y, g, gg):
        assert np.isfinite(ours.detach().numpy()).all(), f"{name}: non-finite values"
        assert ours.dtype == dtype
    eps = np.finfo(dtype).eps
    # Relative to the value down to 1e-40 (softplus(-100) = 3.7e-44), except where the
    # derivative is a cancellation of O(1) terms (mish near its minimum and for large x) or
    # comes from ELU's y + alpha factor (selu, an absolute error of eps by ELU's design).
    atol = {"mish": 32 * eps, "selu": 4 * eps}.get(name, 1e-40)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=8 * eps, atol=1e-40)
    np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), rtol=16 * eps, atol=atol)
    # PyTorch's own second derivatives of softplus and logsigmoid keep only an absolute
    # error of eps for large x (its σ(x)·(1 - σ(x)) rounds to 0 in float32 at x = 17).
    # PyTorch's float32 mish second derivative is nan at x = 100 (its exp overflows); ours
    # is finite (checked above) and compared where PyTorch's is.
    finite = np.isfinite(ggt.numpy())
    assert finite.sum() >= points.size - 1
    np.testing.assert_allclose(gg.numpy()[finite], ggt.numpy()[finite], rtol=64 * eps, atol=32 * eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_second_derivatives_are_accurate_relative_to_their_value_in_both_tails(dtype):
    """softplus'' = σ(x)·σ(-x) = e/(1 + e)² and logsigmoid'' = -σ(x)·σ(-x), e = exp(-|x|):
    would fail if σ(-x) were taken as 1 - σ(x) (all digits lost for x > 17 in float32) or
    through the tanh form of sigmoid (lost for x < -17)."""
    v = np.array([-100.0, -30.0, -10.0, -1.0, 0.0, 1.0, 10.0, 30.0, 100.0])
    e = np.exp(-np.abs(v))
    exact = e / (1 + e) ** 2
    info = np.finfo(dtype)
    for fn, sign in ((lambda t: F.softplus(t, threshold=200.0), 1.0), (F.logsigmoid, -1.0)):
        x = _x(v, dtype=dtype)
        (g,) = tn.autograd.grad(fn(x).sum(), x, create_graph=True)
        (gg,) = tn.autograd.grad(g.sum(), x)
        # 3.7e-44 is subnormal in float32: its spacing is smallest_subnormal
        np.testing.assert_allclose(gg.numpy(), sign * exact, rtol=32 * info.eps,
                                   atol=8 * info.smallest_subnormal)


def test_softplus_is_finite_where_pytorchs_naive_form_overflows():
    """With a threshold above 88, PyTorch's log1p(exp(β·x)) is inf in float32 at x = 100;
    tinynet's max(z, 0) + log1p(exp(-|z|)) gives the value (a deliberate difference)."""
    x = _x([100.0, -100.0], dtype=np.float32)
    y = F.softplus(x, threshold=200.0)
    assert_close(y, np.array([100.0, np.exp(-100.0)], dtype=np.float32), rtol=1e-6, atol=0)
    y.sum().backward()
    assert_close(x.grad, np.array([1.0, np.exp(-100.0)], dtype=np.float32), rtol=1e-6, atol=0)


def test_logsigmoid_and_softplus_known_values():
    x = _x([0.0, -100.0, 100.0], requires_grad=False)
    assert_close(F.logsigmoid(x), np.array([-np.log(2.0), -100.0, -np.exp(-100.0)]), rtol=1e-15, atol=0)
    assert_close(F.softplus(x), np.array([np.log(2.0), np.exp(-100.0), 100.0]), rtol=1e-15, atol=0)
    # Above the threshold the identity; at and below it log1p(exp(beta·x))/beta.
    assert_close(F.softplus(_x([2.0, 3.0]), beta=2.0, threshold=4.0),
                 np.array([np.log1p(np.exp(4.0)) / 2.0, 3.0]), rtol=1e-15, atol=0)


def test_glu_halves_and_gradient_by_hand():
    v = np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 4.0, -1.0, 0.0]])
    x = _x(v)
    y = F.glu(x, dim=1)
    s = 1 / (1 + np.exp(-v[:, 2:]))
    assert_close(y, v[:, :2] * s, rtol=1e-15)
    y.sum().backward()
    assert_close(x.grad, np.concatenate([s, v[:, :2] * s * (1 - s)], axis=1), rtol=1e-14)
    assert tuple(F.glu(_x(np.ones((4, 3))), dim=0).shape) == (2, 3)


def test_prelu_by_hand_values_and_gradients_to_input_and_weight():
    """One weight per channel (dim 1): would fail if the weight were broadcast along the
    last dim, or if x = 0 took the identity branch (PyTorch gives weight·grad there)."""
    v = np.array([[[-1.0, 2.0], [0.0, -3.0]], [[4.0, -5.0], [-6.0, 0.0]]])   # (N=2, C=2, 2)
    x, w = _x(v), _x([0.1, 0.3])
    y = F.prelu(x, w)
    wb = np.array([0.1, 0.3])[None, :, None]
    assert_close(y, np.where(v > 0, v, wb * v), rtol=1e-15)
    gy = np.arange(8.0).reshape(2, 2, 2)
    y.backward(tn.tensor(gy))
    assert_close(x.grad, np.where(v > 0, gy, wb * gy), rtol=1e-15)
    assert_close(w.grad, np.where(v > 0, 0.0, v * gy).sum(axis=(0, 2)), rtol=1e-15)
    # A single weight (1-D of 1 element or 0-D) keeps a 0-D input 0-D, as PyTorch.
    assert F.prelu(_x(-2.0), _x([0.25])).shape == ()
    assert_close(F.prelu(_x(-2.0), _x(0.25)), np.array(-0.5))


@pytest.mark.parametrize("shape,weight_shape", [((3, 4, 5), (4,)), ((3, 4), (1,)), ((5,), (1,)),
                                                ((2, 3, 2, 2), ()), ((), (1,))])
def test_prelu_matches_torch_first_and_second_order(shape, weight_shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    v, wv = rng.standard_normal(shape), rng.standard_normal(weight_shape)
    x, w = _x(v), _x(wv)
    xt, wt = torch.tensor(v, requires_grad=True), torch.tensor(wv, requires_grad=True)
    y, yt = F.prelu(x, w), torch.nn.functional.prelu(xt, wt)
    _assert_same(y, yt)
    gx, gw = tn.autograd.grad((y * y).sum(), [x, w], create_graph=True)
    gxt, gwt = torch.autograd.grad((yt * yt).sum(), [xt, wt], create_graph=True)
    _assert_same(gx, gxt)
    _assert_same(gw, gwt)
    (gw.sum() + gx.sum()).backward()
    (gwt.sum() + gxt.sum()).backward()
    _assert_same(x.grad, xt.grad)
    _assert_same(w.grad, wt.grad)


def test_signatures_are_pytorchs():
    """Argument names, order and defaults of every new functional op and of softmax."""
    import inspect
    torch = pytest.importorskip("torch")
    for name in ("hardtanh", "relu6", "selu", "celu", "mish", "hardswish", "hardsigmoid", "glu",
                 "softmax", "log_softmax"):
        ours = inspect.signature(getattr(F, name)).parameters
        theirs = inspect.signature(getattr(torch.nn.functional, name)).parameters
        assert [(p.name, p.default) for p in ours.values()] == \
               [(p.name, p.default) for p in theirs.values()], name
    # torch's builtins have no inspectable signature; their docstrings state it.
    assert [(p.name, p.default) for p in inspect.signature(F.softplus).parameters.values()] == \
           [("input", inspect.Parameter.empty), ("beta", 1.0), ("threshold", 20.0)]
    assert list(inspect.signature(F.prelu).parameters) == ["input", "weight"]
    assert list(inspect.signature(F.logsigmoid).parameters) == ["input"]


@pytest.mark.parametrize("op", ["softplus", "hardtanh", "relu6", "selu", "celu", "mish",
                                "hardswish", "hardsigmoid", "logsigmoid", "glu"])
def test_new_activations_of_integer_tensor_are_type_errors(op):
    with pytest.raises(TypeError, match=rf"{op}: expected 'input' to be a floating-point tensor, got int64"):
        getattr(F, op)(tn.tensor([1, 2]))
    with pytest.raises(TypeError, match=rf"{op}: argument 'input' must be a Tensor, got list"):
        getattr(F, op)([1.0, 2.0])


def test_new_activation_argument_errors_name_op_and_argument():
    x = tn.ones(2, 3)
    with pytest.raises(ValueError, match=r"hardtanh: min_val cannot be greater than max_val, got min_val=2.0 and max_val=-2.0"):
        F.hardtanh(x, 2.0, -2.0)
    with pytest.raises(TypeError, match="hardtanh: 'max_val' must be a number, got str"):
        F.hardtanh(x, -1.0, "1")
    with pytest.raises(ValueError, match="celu: alpha cannot be 0"):
        F.celu(x, 0.0)
    with pytest.raises(TypeError, match="softplus: 'beta' must be a number, got NoneType"):
        F.softplus(x, beta=None)
    with pytest.raises(TypeError, match="softplus: 'threshold' must be a number"):
        F.softplus(x, threshold="20")
    for op in ("hardtanh", "relu6", "selu", "celu", "mish", "hardswish", "hardsigmoid"):
        with pytest.raises(TypeError, match=rf"{op}: 'inplace' must be a bool, got int"):
            getattr(F, op)(x, inplace=1)
    assert_close(F.relu6(x, inplace=True), F.relu6(x).numpy(), rtol=0, atol=0)   # accepted, ignored


def test_glu_errors_are_pytorchs_as_value_errors():
    with pytest.raises(ValueError, match=r"glu: halving dimension must be even, but dimension 1 of 'input' is size 5"):
        F.glu(tn.ones(3, 5))
    with pytest.raises(ValueError, match=r"glu: halving dimension must be even, but dimension 0 of 'input' is size 3"):
        F.glu(tn.ones(3, 4), dim=0)
    with pytest.raises(ValueError, match="glu: does not support scalars"):
        F.glu(tn.tensor(1.0))
    with pytest.raises(ValueError, match=r"glu: dim 2 is out of range"):
        F.glu(tn.ones(4, 2), dim=2)


def test_prelu_mixed_second_derivatives_at_zero_match_torch():
    """At x = 0 PyTorch's gradient to x takes the weight, but neither mixed second
    derivative (d(dx)/dw, d(dw)/dx) counts the point: would fail if the mask were <= 0."""
    torch = pytest.importorskip("torch")
    values, weight, g = np.array([0.0, -1.5, 2.0, 0.0]), np.array([-0.7]), np.array([1.3, -0.4, 2.0, 0.9])
    ours, theirs = [], []
    for lib, make, grad in ((tn, lambda a: tn.tensor(a, requires_grad=True), tn.autograd.grad),
                            (torch, lambda a: torch.tensor(a, requires_grad=True), torch.autograd.grad)):
        x, w = make(values), make(weight)
        y = (F if lib is tn else torch.nn.functional).prelu(x, w)
        gx, gw = grad((y * lib.tensor(g)).sum(), (x, w), create_graph=True)
        second = grad((gx * lib.tensor(values + 2.0)).sum() + 3.0 * gw.sum(), (x, w))
        (ours if lib is tn else theirs).extend(
            [gx.detach().numpy(), gw.detach().numpy(), second[0].numpy(), second[1].numpy()])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)


def test_prelu_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"prelu: mismatch of parameter numbers and input channel size: 'weight' has 2 elements and 'input' has 3 channels"):
        F.prelu(tn.ones(2, 3), tn.ones(2))
    with pytest.raises(ValueError, match=r"'weight' has 3 elements and 'input' has 1 channels"):
        F.prelu(tn.ones(3), tn.ones(3))
    with pytest.raises(ValueError, match=r"prelu: expected 'weight' to be a scalar or 1-D tensor, got shape \(1, 3\)"):
        F.prelu(tn.ones(2, 3), tn.ones(1, 3))
    with pytest.raises(TypeError, match="prelu: 'weight' has dtype float64 but 'input' has dtype float32"):
        F.prelu(tn.ones(2, 3), tn.ones(3, dtype=tn.float64))
    with pytest.raises(TypeError, match="prelu: argument 'weight' must be a Tensor, got float"):
        F.prelu(tn.ones(2, 3), 0.25)
    with pytest.raises(TypeError, match="prelu: expected 'input' to be a floating-point tensor"):
        F.prelu(tn.tensor([1, 2]), tn.ones(1))


# ------------------------------------------------------------------ softmax's dtype

@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("src,dst", [(np.float32, np.float64), (np.float64, np.float32),
                                     (np.float64, np.float64), (np.int64, np.float32)])
def test_softmax_dtype_casts_the_input_first_as_torch(op, src, dst):
    """Would fail if dtype cast the output instead of the input (float32 digits in a
    float64 result), or if the gradient came back in the target dtype."""
    torch = pytest.importorskip("torch")
    v = np.array([[1.0, 2.0, 30.0], [-1.0, 0.5, 0.25]]) * (17.123 if src != np.int64 else 1)
    v = v.astype(src)
    floating = np.dtype(src).kind == "f"
    x = tn.tensor(v, requires_grad=floating)
    xt = torch.tensor(v, requires_grad=floating)
    tdst = getattr(torch, np.dtype(dst).name)
    y = getattr(F, op)(x, 1, dtype=dst)
    yt = getattr(torch.nn.functional, op)(xt, 1, dtype=tdst)
    assert y.dtype == dst
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(),
                               rtol=4 * np.finfo(dst).eps, atol=4 * np.finfo(dst).eps)
    if floating:
        gy = np.array([[0.5, -1.0, 2.0], [1.0, 3.0, -0.5]])
        y.backward(tn.tensor(gy.astype(dst)))
        yt.backward(torch.tensor(gy.astype(dst)))
        assert x.grad.dtype == src
        tol = 8 * np.finfo(np.float32).eps if np.float32 in (src, dst) else 1e-14
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol)
    # the method takes dtype second by position, as torch.Tensor.softmax
    assert_close(getattr(x, op)(1, dst), y.detach().numpy(), rtol=0, atol=0)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_dtype_other_than_float32_or_float64_is_type_error(op):
    for bad, shown in ((tn.int64, "int64"), ("float16", "float16"), (np.bool_, "bool")):
        with pytest.raises(TypeError, match=rf"{op}: 'dtype' must be tinynet.float32 or tinynet.float64 \(or None\), got {shown}"):
            getattr(F, op)(tn.ones(2, 3), 1, dtype=bad)
    with pytest.raises(TypeError, match=rf"{op}: unknown dtype"):
        getattr(F, op)(tn.ones(2, 3), 1, dtype=object())
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'dim'"):
        getattr(tn.ones(2, 3), op)()


def test_softmax_implicit_dim_warning_points_at_the_caller():
    """``_stacklevel`` is PyTorch's: the default names the line that called softmax."""
    with pytest.warns(UserWarning, match="implicit dimension") as record:
        F.softmax(tn.ones(2, 3))
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="implicit dimension") as record:
        F.log_softmax(tn.ones(2, 3), None, 1)
    assert record[0].filename.endswith("activation.py")


@pytest.mark.parametrize("op, kwargs, x", [
    ("celu", {"alpha": -1.0}, [-95.0, -1.0, 2.0]),       # exp(95) overflows: -inf, as PyTorch
    ("softplus", {"beta": 0.0}, [-1.0, 0.0, 2.0]),       # log(2)/0: inf, as PyTorch
])
def test_infinite_results_match_torch_without_numpy_warnings(op, kwargs, x):
    """Where PyTorch's result is infinite it says nothing; tinynet's NumPy passes must not
    warn either (a RuntimeWarning here fails the test), and values and gradients agree."""
    torch = pytest.importorskip("torch")
    import warnings
    ours = tn.tensor(np.array(x, dtype=np.float32), requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = getattr(F, op)(ours, **kwargs)
        y.sum().backward()
    t = getattr(torch.nn.functional, op)(theirs, **kwargs)
    t.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), t.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6)
