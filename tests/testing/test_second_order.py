"""Second-order semantics of every registered op against PyTorch (float64).

After ``grad(out, inputs, create_graph=True)`` each first-order gradient must require grad
exactly when PyTorch's does: PyTorch's gradient of a piecewise-linear op (relu, max_pool2d,
avg_pool2d, a conv bias, ...) reads the saved input, so it requires grad and a second
backward through it gives zeros rather than "does not require grad". Then the second-order
gradients themselves must equal PyTorch's (zeros included).
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings, HealthCheck

import tinynet as tn
from tinynet.autograd import grad as tn_grad
from tinynet.testing import all_ops, assert_close

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install tinynet[ref])")

OPS = [o for o in all_ops() if o.torch_op is not None]

# Points where PyTorch's formula is a convention, not the derivative: at an exponent of
# exactly 0 it takes d(a^b)/da as the constant 0, so its mixed second derivative there is
# 0, while the true one (and tinynet's, checked by gradgradcheck) is 1/a.
_CONVENTION_POINTS = {"pow": lambda sample: np.any(np.asarray(sample.args[1]) == 0)}

# Ops whose PyTorch gradient has no derivative ("derivative for aten::hardsigmoid_backward
# is not implemented"): their first gradient must still require grad as PyTorch's does, and
# tinynet's second-order gradient is the true one, zero (piecewise linear).
_ZERO_SECOND_ORDER_UNIMPLEMENTED_IN_TORCH = {"hardsigmoid"}


def _pair(sample):
    """The sample's arguments as tinynet and torch leaves (float arrays require grad)."""
    ours, theirs = [], []
    for i, a in enumerate(sample.args):
        if isinstance(a, (np.ndarray, np.generic)):
            a = np.array(a)
            grad = a.dtype.kind == "f" and i not in sample.no_grad
            ours.append(tn.tensor(a, requires_grad=grad))
            theirs.append(torch.from_numpy(a.copy()).requires_grad_(grad))
        else:
            ours.append(a)
            theirs.append(a)
    return ours, theirs


def _weighted_sum(outs, rng, lib):
    total = None
    for o in outs:
        if o.requires_grad:
            v = rng.standard_normal(tuple(o.shape))
            term = (o * (tn.tensor(v, device=o.device) if lib is tn else torch.from_numpy(v))).sum()
            total = term if total is None else total + term
    return total


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


@pytest.mark.parametrize("info", OPS, ids=lambda o: o.name)
def test_second_order_matches_torch(info):
    """A first gradient that requires grad when PyTorch's does not (or the reverse), or a
    second-order gradient that differs from PyTorch's, fails here."""
    cap = max(3, settings.default.max_examples // 3)

    @settings(max_examples=min(cap, info.max_examples or cap),
              suppress_health_check=list(HealthCheck))
    @given(info.samples())
    def check(sample):
        assume(not _CONVENTION_POINTS.get(info.name, lambda s: False)(sample))
        ours_in, theirs_in = _pair(sample)
        leaves = [i for i, a in enumerate(ours_in) if isinstance(a, tn.Tensor) and a.requires_grad]
        if not leaves:
            return
        ours = _weighted_sum(_as_list(info.op(*ours_in, **sample.kwargs)), np.random.default_rng(1), tn)
        theirs = _weighted_sum(_as_list(info.torch_op(torch, *theirs_in, **sample.kwargs)),
                               np.random.default_rng(1), torch)
        if ours is None or theirs is None:
            assert ours is None and theirs is None, f"{info.name}: output requires_grad differs"
            return
        g_ours = tn_grad(ours, [ours_in[i] for i in leaves], create_graph=True, allow_unused=True)
        g_theirs = torch.autograd.grad(theirs, [theirs_in[i] for i in leaves], create_graph=True,
                                       allow_unused=True)
        for i, a, b in zip(leaves, g_ours, g_theirs):
            ra = a is not None and a.requires_grad
            rb = b is not None and b.requires_grad
            assert ra == rb, (f"{info.name}: the gradient of argument {i} requires_grad={ra} "
                              f"after create_graph=True, PyTorch's requires_grad={rb}")
        rng = np.random.default_rng(2)
        second_ours = second_theirs = None
        for a, b in zip(g_ours, g_theirs):
            if a is not None and a.requires_grad:
                u = rng.standard_normal(tuple(a.shape))
                ta, tb = (a * tn.tensor(u)).sum(), (b * torch.from_numpy(u)).sum()
                second_ours = ta if second_ours is None else second_ours + ta
                second_theirs = tb if second_theirs is None else second_theirs + tb
        if second_ours is None:
            return
        gg_ours = tn_grad(second_ours, [ours_in[i] for i in leaves], allow_unused=True)
        if info.name in _ZERO_SECOND_ORDER_UNIMPLEMENTED_IN_TORCH:
            with pytest.raises(RuntimeError, match="not implemented"):
                torch.autograd.grad(second_theirs, [theirs_in[i] for i in leaves], allow_unused=True)
            for a in gg_ours:
                assert a is None or not np.any(a.numpy()), f"{info.name}: nonzero second order"
            return
        gg_theirs = torch.autograd.grad(second_theirs, [theirs_in[i] for i in leaves],
                                        allow_unused=True)
        for i, a, b in zip(leaves, gg_ours, gg_theirs):
            a = np.zeros(ours_in[i].shape) if a is None else a.numpy()
            b = np.zeros(tuple(theirs_in[i].shape)) if b is None else b.detach().numpy(force=True)
            assert_close(a, b, rtol=max(info.rtol, 1e-6), atol=max(info.atol, 1e-8),
                         msg=f"{info.name}: second-order gradient of argument {i}")
    check()


def test_second_backward_through_relu_gives_zeros():
    """The reported case: x.grad after create_graph=True through relu supports a backward."""
    x = tn.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    tn.functional.relu(x).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    g = x.grad
    x.grad = None
    g.sum().backward()
    assert x.grad is not None and np.array_equal(x.grad.numpy(), np.zeros(3))


def test_no_graph_is_built_without_create_graph():
    """depends_on must add nothing when no graph is requested."""
    x = tn.tensor([-1.0, 2.0], requires_grad=True)
    tn.functional.max_pool2d(x.reshape(1, 1, 1, 2), (1, 2)).sum().backward()
    assert not x.grad.requires_grad
