"""nn.LayerNorm(bias=...) and nn.GroupNorm(..., *, bias=...): without a bias the module keeps
its weight, has no ``bias`` parameter or state-dict entry, and computes PyTorch's result."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
from tinynet.testing import assert_close


def _signature(cls):
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()]


@pytest.mark.parametrize("name", ["LayerNorm", "GroupNorm"])
def test_signature_is_pytorchs(name):
    """Argument names, order, keyword-only markers and defaults equal PyTorch's."""
    torch = pytest.importorskip("torch")
    assert _signature(getattr(nn, name)) == _signature(getattr(torch.nn, name))


@pytest.mark.parametrize("make", [
    lambda lib, dt: lib.nn.LayerNorm((3, 4), bias=False, dtype=dt),
    lambda lib, dt: lib.nn.LayerNorm((3, 4), elementwise_affine=False, dtype=dt),
    lambda lib, dt: lib.nn.LayerNorm(4, elementwise_affine=False, bias=False, dtype=dt),
    lambda lib, dt: lib.nn.GroupNorm(2, 4, bias=False, dtype=dt),
    lambda lib, dt: lib.nn.GroupNorm(2, 4, affine=False, bias=True, dtype=dt),
])
def test_without_bias_matches_torch(make):
    """State-dict keys, repr, outputs and gradients equal PyTorch's for every affine/bias mix."""
    torch = pytest.importorskip("torch")
    theirs, ours = make(torch, torch.float64), make(tn, tn.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert (ours.bias is None) == (theirs.bias is None)
    assert repr(ours) == repr(theirs)
    if theirs.weight is not None:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 2.0)
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((2, 4, 3, 4))
    a, b = tn.tensor(x, requires_grad=True), torch.from_numpy(x).requires_grad_(True)
    out_o, out_t = ours(a), theirs(b)
    assert_close(out_o, out_t, rtol=1e-9, atol=1e-12)
    v = np.sin(np.arange(x.size)).reshape(x.shape)
    (out_o * tn.tensor(v)).sum().backward()
    (out_t * torch.from_numpy(v)).sum().backward()
    assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-11)
    if theirs.weight is not None:
        assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-8, atol=1e-11)


def test_bias_false_keeps_the_weight():
    """bias=False drops only the bias: the weight stays a trainable parameter."""
    assert [n for n, _ in nn.LayerNorm(3, bias=False).named_parameters()] == ["weight"]
    assert [n for n, _ in nn.GroupNorm(1, 3, bias=False).named_parameters()] == ["weight"]
    with pytest.raises(TypeError):
        nn.GroupNorm(1, 3, 1e-5, True, None, None, False)   # bias is keyword-only, as in PyTorch
