"""nn.init: formulas against PyTorch's (gains, fans, bounds) and sample statistics."""
import math

import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
from tinynet.nn import init

try:                      # only the PyTorch comparisons need it
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install tinynet[ref])")


@needs_torch
@pytest.mark.parametrize("nl,param", [("linear", None), ("relu", None), ("tanh", None),
                                      ("leaky_relu", None), ("leaky_relu", 0.2), ("sigmoid", None),
                                      ("selu", None), ("conv2d", None)])
def test_calculate_gain_matches_torch(nl, param):
    assert math.isclose(init.calculate_gain(nl, param), torch.nn.init.calculate_gain(nl, param))


def test_unknown_nonlinearity_is_an_error():
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


def _stats(fn, shape, *args, **kwargs):
    tn.manual_seed(0)
    t = tn.zeros(*shape, dtype=tn.float64)
    out = fn(t, *args, **kwargs)
    assert out is t, "init functions fill in place and return the tensor"
    return t.numpy()


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nl", ["relu", "leaky_relu", "linear"])
def test_kaiming_std_and_bound(mode, nl):
    shape = (64, 32, 3, 3)
    fan = 32 * 9 if mode == "fan_in" else 64 * 9
    std = init.calculate_gain(nl, 0) / math.sqrt(fan)
    a = _stats(init.kaiming_normal_, shape, mode=mode, nonlinearity=nl)
    assert abs(a.std() - std) < 0.02 * std and abs(a.mean()) < 0.02 * std * 3
    u = _stats(init.kaiming_uniform_, shape, mode=mode, nonlinearity=nl)
    bound = math.sqrt(3) * std
    assert np.abs(u).max() <= bound and np.abs(u).max() > 0.99 * bound
    assert abs(u.std() - std) < 0.02 * std


def test_xavier_std_and_bound():
    shape = (100, 50)
    std = math.sqrt(2.0 / 150)
    n = _stats(init.xavier_normal_, shape, gain=2.0)
    assert abs(n.std() - 2 * std) < 0.03 * 2 * std
    u = _stats(init.xavier_uniform_, shape)
    assert np.abs(u).max() <= math.sqrt(3) * std
    assert abs(u.std() - std) < 0.03 * std


def test_simple_fills():
    assert np.all(_stats(init.zeros_, (3, 4)) == 0)
    assert np.all(_stats(init.ones_, (3, 4)) == 1)
    assert np.all(_stats(init.constant_, (3, 4), 2.5) == 2.5)
    u = _stats(init.uniform_, (100, 100), -2.0, 3.0)
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.05
    n = _stats(init.normal_, (100, 100), 1.0, 0.5)
    assert abs(n.mean() - 1) < 0.02 and abs(n.std() - 0.5) < 0.02
    t = _stats(init.trunc_normal_, (100, 100), 0.0, 1.0, -1.0, 1.0)
    assert t.min() >= -1 and t.max() <= 1


def test_init_is_repeatable_under_a_seed_and_keeps_dtype():
    a = _stats(init.kaiming_normal_, (8, 4))
    b = _stats(init.kaiming_normal_, (8, 4))
    assert np.array_equal(a, b)
    t = tn.zeros(3, 3)
    init.xavier_uniform_(t)
    assert t.dtype == np.float32


def test_init_argument_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.kaiming_uniform_(tn.zeros(5))
    with pytest.raises(ValueError, match="mode must be"):
        init.kaiming_normal_(tn.zeros(3, 3), mode="fan_avg")
    with pytest.raises(TypeError, match="floating-point"):
        init.normal_(tn.zeros(3, dtype="int64"))
    with pytest.raises(TypeError, match="expected a Tensor"):
        init.ones_(np.zeros(3))


def test_init_on_a_parameter_does_not_record_a_graph():
    lin = nn.Linear(3, 3)
    init.kaiming_normal_(lin.weight, nonlinearity="relu")
    assert lin.weight.is_leaf and lin.weight.requires_grad
