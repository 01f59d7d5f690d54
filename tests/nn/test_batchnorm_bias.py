"""BatchNorm1d / BatchNorm2d / SyncBatchNorm take PyTorch 2.13's keyword-only ``bias``: with
``bias=False`` the module keeps its weight, has no ``bias`` parameter or state-dict entry,
and computes PyTorch's result; SyncBatchNorm takes ``process_group`` where PyTorch does."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
from tinynet.testing import assert_close


def _signature(cls):
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()]


@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d", "SyncBatchNorm"])
def test_signature_is_pytorchs(name):
    torch = pytest.importorskip("torch")
    assert _signature(getattr(nn, name)) == _signature(getattr(torch.nn, name))


@pytest.mark.parametrize("make, shape", [
    (lambda lib, dt: lib.nn.BatchNorm2d(3, bias=False, dtype=dt), (4, 3, 2, 5)),
    (lambda lib, dt: lib.nn.BatchNorm2d(3, dtype=dt), (4, 3, 2, 5)),
    (lambda lib, dt: lib.nn.BatchNorm2d(3, affine=False, bias=True, dtype=dt), (4, 3, 2, 5)),
    (lambda lib, dt: lib.nn.BatchNorm1d(3, momentum=None, bias=False, dtype=dt), (6, 3)),
    (lambda lib, dt: lib.nn.SyncBatchNorm(3, bias=False, dtype=dt), (4, 3, 5)),
])
def test_bias_false_matches_torch(make, shape):
    """State-dict keys, repr, outputs, running statistics and gradients equal PyTorch's, in
    training and evaluation."""
    torch = pytest.importorskip("torch")
    theirs, ours = make(torch, torch.float64), make(tn, tn.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert (ours.bias is None) == (theirs.bias is None)
    assert repr(ours) == repr(theirs)
    rng = np.random.default_rng(0)
    if theirs.weight is not None:
        w = rng.uniform(0.5, 2.0, 3)
        theirs.weight.data[...] = torch.tensor(w)
        ours.weight.data[...] = tn.tensor(w).to(ours.weight.device).data
    for training in (True, False):
        theirs.train(training)
        ours.train(training)
        x = rng.standard_normal(shape)
        xt, xo = torch.tensor(x, requires_grad=True), tn.tensor(x, requires_grad=True)
        yt, yo = theirs(xt), ours(xo)
        assert_close(yo, yt.detach().numpy(), atol=1e-12, rtol=1e-10)
        g = rng.standard_normal(shape)
        yt.backward(torch.tensor(g))
        yo.backward(tn.tensor(g))
        assert_close(xo.grad, xt.grad.numpy(), atol=1e-12, rtol=1e-10)
        if theirs.weight is not None:
            assert_close(ours.weight.grad, theirs.weight.grad.numpy(), atol=1e-12, rtol=1e-10)
        assert_close(ours.running_mean, theirs.running_mean.numpy(), atol=1e-12, rtol=1e-10)
        assert_close(ours.running_var, theirs.running_var.numpy(), atol=1e-12, rtol=1e-10)


def test_convert_sync_batchnorm_keeps_bias_false():
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3, bias=False))
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[1], nn.SyncBatchNorm)
    assert converted[1].bias is None and "1.bias" not in converted.state_dict()
    assert converted[1].weight is not None


def test_sync_batchnorm_refuses_a_process_group():
    with pytest.raises(ValueError, match="SyncBatchNorm: tinynet has one process group"):
        nn.SyncBatchNorm(3, process_group=object())
