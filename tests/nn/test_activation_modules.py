"""Softplus, Hardtanh, ReLU6, SELU, CELU, Mish, Hardswish, Hardsigmoid, LogSigmoid, GLU and
PReLU against PyTorch's modules: constructor signatures, reprs, forward and backward in
float64 (PReLU's weight moved by state_dict), and constructor errors."""
import inspect

import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
from tinynet.testing import assert_close

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(11)
NAMES = ["Softplus", "Hardtanh", "ReLU6", "SELU", "CELU", "Mish", "Hardswish", "Hardsigmoid",
         "LogSigmoid", "GLU", "PReLU"]


@pytest.mark.parametrize("name", [n for n in NAMES if n != "LogSigmoid"])
def test_constructor_signature_is_pytorchs(name):
    ours = inspect.signature(getattr(nn, name).__init__).parameters
    theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
    assert [(p.name, p.default) for p in ours.values()] == \
           [(p.name, p.default) for p in theirs.values()]


# (name, constructor arguments, input shape); values reach every branch (|x| up to 6).
CASES = [
    ("Softplus", (), (3, 4)), ("Softplus", (2.0, 3.0), (3, 4)), ("Softplus", (-1.5, 1.0), (5,)),
    ("Hardtanh", (), (3, 4)), ("Hardtanh", (-0.5, 2.0, True), (2, 3, 2)), ("ReLU6", (), (4, 5)),
    ("ReLU6", (True,), (4,)), ("SELU", (), (3, 4)), ("SELU", (True,), (2, 2)), ("CELU", (), (3, 4)),
    ("CELU", (0.5, True), (6,)), ("CELU", (-2.0,), (6,)), ("Mish", (), (3, 4)),
    ("Hardswish", (), (3, 4)), ("Hardswish", (True,), (8,)), ("Hardsigmoid", (), (3, 4)),
    ("Hardsigmoid", (True,), (8,)), ("LogSigmoid", (), (3, 4)), ("GLU", (), (3, 4)),
    ("GLU", (0,), (4, 3)), ("GLU", (1,), (2, 6, 3)), ("PReLU", (), (3, 4)), ("PReLU", (4,), (2, 4, 3)),
    ("PReLU", (3, -0.5), (2, 3)), ("PReLU", (1, 2.0), ()),
]


@pytest.mark.parametrize("name,args,shape", CASES, ids=[f"{c[0]}{c[1]}" for c in CASES])
def test_module_matches_torch_forward_backward_and_repr(name, args, shape):
    kwargs = {"dtype": tn.float64} if name == "PReLU" else {}
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args).double()
    assert repr(ours) == repr(theirs)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    if name == "PReLU":
        # PyTorch's init and shape, then a drawn weight moved by state_dict.
        assert tuple(ours.weight.shape) == tuple(theirs.weight.shape)
        assert_close(ours.weight, theirs.weight.detach().numpy(), rtol=0, atol=0)
        w = RNG.standard_normal(tuple(theirs.weight.shape))
        theirs.weight.data = torch.from_numpy(w)
        ours.load_state_dict({"weight": w})
    v = RNG.uniform(-6, 6, shape)
    x, xt = tn.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    y, yt = ours(x), theirs(xt.clone())     # a clone: PyTorch's inplace=True writes into it
    assert y.shape == tuple(yt.shape)
    assert_close(y, yt, rtol=1e-12, atol=1e-15)
    g = RNG.standard_normal(y.shape)
    (y * tn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    assert_close(x.grad, xt.grad, rtol=1e-7 if name == "Hardsigmoid" else 1e-12, atol=1e-15)
    if name == "PReLU":
        assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-12)


def test_prelu_parameters_init_and_state_dict_round_trip_with_torch():
    ours, theirs = nn.PReLU(3, init=0.1, dtype=tn.float64), torch.nn.PReLU(3, init=0.1).double()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] == ["weight"]
    assert ours.weight.requires_grad and ours.weight.dtype == np.float64
    assert ours.num_parameters == 3 and ours.init == 0.1
    assert_close(ours.weight, np.full(3, 0.1), rtol=0, atol=0)
    theirs.load_state_dict({k: torch.from_numpy(np.asarray(v.detach().numpy()) * 2)
                            for k, v in ours.state_dict().items()})
    assert_close(theirs.weight.detach(), np.full(3, 0.2), rtol=0, atol=0)


def test_hardtanh_deprecated_keywords_warn_as_pytorch():
    with pytest.warns(FutureWarning, match="`min_value` is deprecated and renamed to `min_val`"):
        layer = nn.Hardtanh(min_value=-2.0)
    assert (layer.min_val, layer.max_val) == (-2.0, 1.0)
    with pytest.warns(FutureWarning, match="`max_value` is deprecated and renamed to `max_val`"):
        assert nn.Hardtanh(max_value=3.0).max_val == 3.0


@pytest.mark.parametrize("make,match", [
    (lambda: nn.Hardtanh(2.0, -2.0), r"Hardtanh: max_val \(-2.0\) must be greater than min_val \(2.0\)"),
    (lambda: nn.Hardtanh(1.0, 1.0), r"Hardtanh: max_val \(1.0\) must be greater than min_val \(1.0\)"),
    (lambda: nn.PReLU(0), "PReLU: num_parameters must be a positive int, got 0"),
    (lambda: nn.PReLU(2.5), "PReLU: num_parameters must be an int, got float"),
    (lambda: nn.PReLU(2, init="0.25"), "PReLU: init must be a number, got str"),
    (lambda: nn.Softplus(beta="1"), "Softplus: beta must be a number, got str"),
    (lambda: nn.CELU(None), "CELU: alpha must be a number, got NoneType"),
])
def test_constructor_errors_name_the_layer(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_forward_errors_name_the_op():
    with pytest.raises(ValueError, match=r"prelu: mismatch of parameter numbers and input channel size"):
        nn.PReLU(4)(tn.ones(2, 3))
    with pytest.raises(ValueError, match=r"glu: halving dimension must be even"):
        nn.GLU()(tn.ones(2, 3))
    with pytest.raises(ValueError, match="celu: alpha cannot be 0"):
        nn.CELU(0.0)(tn.ones(2))


@pytest.mark.parametrize("name,args", [
    ("ReLU", ()), ("ReLU", (True,)), ("ELU", (2.0, True)), ("LeakyReLU", (0.1, True)),
    ("SiLU", (True,)), ("Dropout", (0.3, True)), ("Dropout2d", (0.2, True)),
])
def test_inplace_shows_in_the_repr_and_attribute_as_torch(name, args):
    """The older modules that accept (and ignore) inplace= show it as PyTorch's do."""
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    assert ours.inplace is theirs.inplace
