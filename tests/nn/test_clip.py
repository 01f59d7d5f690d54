"""clip_grad_norm_ / clip_grad_value_ against torch.nn.utils."""
import math

import numpy as np
import pytest

import tinynet as tn
from tinynet.nn.clip import clip_grad_norm_, clip_grad_value_

try:                      # only the PyTorch comparisons need it
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install tinynet[ref])")


def grads_pair(seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) * scale for s in [(3, 4), (5,), (2, 2, 2)]]
    ours, theirs = [], []
    for a in arrays:
        p = tn.tensor(np.zeros_like(a), requires_grad=True)
        p.grad = tn.tensor(a.copy())
        q = torch.zeros(a.shape, dtype=torch.float64, requires_grad=True)
        q.grad = torch.tensor(a.copy())
        ours.append(p)
        theirs.append(q)
    return ours, theirs


@needs_torch
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    # Wrong here means the joint norm, the 1e-6 guard or the no-op-when-small rule differs.
    ours, theirs = grads_pair()
    t1 = clip_grad_norm_(ours, max_norm, norm_type)
    t2 = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert np.isclose(t1.item(), t2.item(), rtol=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_single_tensor_and_no_grads():
    w = tn.tensor([3.0, 4.0], requires_grad=True)
    (w * w).sum().backward()             # grad = (6, 8), norm 10
    assert np.isclose(clip_grad_norm_(w, 5.0).item(), 10.0)
    np.testing.assert_allclose(w.grad.numpy(), [3.0, 4.0], rtol=1e-5)
    assert clip_grad_norm_([tn.zeros(3, requires_grad=True)], 1.0).item() == 0.0


def test_clip_grad_norm_nonfinite():
    p = tn.tensor(np.zeros(2), requires_grad=True)
    p.grad = tn.tensor(np.array([np.inf, 1.0]))
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert math.isinf(clip_grad_norm_([p], 1.0).item())
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_([p], 1.0, norm_type=-1)


@needs_torch
def test_clip_grad_value_matches_torch():
    ours, theirs = grads_pair(1)
    clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    with pytest.raises(ValueError, match="non-negative"):
        clip_grad_value_(ours, -1)
