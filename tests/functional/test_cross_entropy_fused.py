"""The fused cross-entropy op (scores (N, C), class indices, no weight, no smoothing):
it is what cross_entropy uses there, and it equals the general composition
log_softmax + nll_loss in value, gradient and second derivative."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import profiler
from tinynet.testing import gradcheck, gradgradcheck


def scores(seed=0, shape=(6, 5)):
    return tn.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


TARGET = np.array([0, 4, 1, 1, 2, 3])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_fused_op_equals_the_composition(reduction, ignore_index):
    x, t = scores(), tn.tensor(TARGET)
    with profiler.profile() as prof:
        fused = F.cross_entropy(x, t, reduction=reduction, ignore_index=ignore_index)
    assert prof.row("CrossEntropyIndex")["calls"] == 1
    fused.backward()
    g_fused, x.grad = x.grad.numpy(), None
    # the general path: an all-ones class weight changes nothing but the route taken
    general = F.cross_entropy(x, t, weight=tn.ones(5, dtype=tn.float64), reduction=reduction,
                              ignore_index=ignore_index)
    general.backward()
    np.testing.assert_allclose(fused.item(), general.item(), rtol=1e-12)
    np.testing.assert_allclose(g_fused, x.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_known_value_two_classes():
    # scores (0, log 3) for target 1: p = 3/4, loss = -log(3/4); gradient p - onehot
    x = tn.tensor(np.array([[0.0, np.log(3.0)]]), requires_grad=True)
    loss = F.cross_entropy(x, tn.tensor([1]))
    loss.backward()
    np.testing.assert_allclose(loss.item(), -np.log(0.75), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), [[0.25, -0.25]], rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_first_and_second_derivatives(reduction):
    x, t = scores(1), tn.tensor(TARGET)
    fn = lambda a: F.cross_entropy(a, t, reduction=reduction, ignore_index=4)  # noqa: E731
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))
    # the gradient built for double backward has the same values as the plain one
    (g_graph,) = tn.autograd.grad(fn(x), x, create_graph=True)
    (g_plain,) = tn.autograd.grad(fn(x), x)
    np.testing.assert_allclose(g_graph.detach().numpy(), g_plain.numpy(), rtol=1e-12, atol=1e-15)


def test_float32_stays_float32_and_matches_pytorch():
    torch = pytest.importorskip("torch")
    x0 = np.random.default_rng(2).standard_normal((64, 10)).astype(np.float32) * 5
    t0 = np.random.default_rng(3).integers(0, 10, 64)
    x = tn.tensor(x0, requires_grad=True)
    loss = F.cross_entropy(x, tn.tensor(t0))
    loss.backward()
    tx = torch.tensor(x0, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(t0))
    tloss.backward()
    assert loss.dtype == tn.float32 and x.grad.dtype == tn.float32
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-7)
