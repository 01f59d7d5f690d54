"""The linear-then-ReLU op (tinynet.functional.linalg.linear_relu: ``relu(linear(x))`` in
one node, ReLU in place on the product), which ``nn.Sequential`` runs for a Linear
followed by a ReLU: bit for bit the two ops' values and gradients, differentiable twice,
exported to ONNX as the layer then Relu; the rewrite happens, and not where a hook or a
subclass could tell."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinynet as tn
import tinynet.functional as F
import tinynet.nn as nn
from tinynet import backend
from tinynet.functional.linalg import linear_relu
from tinynet.testing import gradcheck, gradgradcheck

ON_CPU = backend.get_default_device().type == "cpu"


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(st.integers(1, 4), min_size=0, max_size=2), n_in=st.integers(1, 6),
       n_out=st.integers(1, 6), bias=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2 ** 16))
def test_equals_relu_of_linear_bit_for_bit(batch, n_in, n_out, bias, dtype, seed):
    """Values (the sign of every zero, NaN where NaN) and input, weight and bias gradients
    bit for bit those of F.relu(F.linear(...)), with zeros, -inf and NaN among the inputs;
    a missed ReLU, a mask read with >= or from the wrong array changes some entry."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-2.0, -1.0, -0.0, 0.0, 0.5, 1.5, -np.inf, np.nan], (*batch, n_in)).astype(dtype)
    w = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], (n_out, n_in)).astype(dtype)
    b = rng.choice([-1.0, 0.0, 1.0], n_out).astype(dtype) if bias else None
    g = rng.standard_normal((*batch, n_out)).astype(dtype)
    results = []
    for op in (linear_relu, lambda *a: F.relu(F.linear(*a))):
        ts = [tn.tensor(a, requires_grad=True) for a in (x, w) + ((b,) if bias else ())]
        y = op(*ts) if bias else op(*ts, None)
        y.backward(tn.tensor(g))
        results.append([y.detach().numpy()] + [t.grad.numpy() for t in ts])
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)
        if ON_CPU:
            np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))


def test_known_values_and_gradients_by_hand():
    """x = [1, -2], W = [[2, 0], [0, 1]], b = [0.5, 1]: products 2.5 and -1, ReLU 2.5 and 0;
    with g = [3, 5] only the first output passes: dx = 3·W[0], dW[0] = 3·x, db = [3, 0]."""
    x = tn.tensor(np.array([[1.0, -2.0]]), requires_grad=True)
    w = tn.tensor(np.array([[2.0, 0.0], [0.0, 1.0]]), requires_grad=True)
    b = tn.tensor(np.array([0.5, 1.0]), requires_grad=True)
    y = linear_relu(x, w, b)
    assert y.detach().numpy().tolist() == [[2.5, 0.0]]
    y.backward(tn.tensor(np.array([[3.0, 5.0]])))
    assert x.grad.numpy().tolist() == [[6.0, 0.0]]
    assert w.grad.numpy().tolist() == [[3.0, -6.0], [0.0, 0.0]]
    assert b.grad.numpy().tolist() == [3.0, 0.0]
    # a negative product gives +0, as PyTorch's clamp_min (x·[x > 0] gave -0); a product is
    # never -0 (the BLAS sums from +0), so the order of maximum's operands cannot show here
    y = linear_relu(tn.tensor(np.array([[-3.0]])), tn.tensor(np.array([[1.0]])))
    assert y.numpy().tolist() == [[0.0]]
    if ON_CPU:
        assert not np.signbit(y.numpy()).any()


@settings(max_examples=20, deadline=None)
@given(n_in=st.integers(1, 4), n_out=st.integers(1, 4), seed=st.integers(0, 2 ** 16))
def test_gradcheck_and_gradgradcheck(n_in, n_out, seed):
    """First and second derivatives against finite differences (float64), away from the
    kink (products bounded away from 0)."""
    rng = np.random.default_rng(seed)
    x = tn.tensor(rng.standard_normal((3, n_in)), requires_grad=True)
    w = tn.tensor(rng.standard_normal((n_out, n_in)), requires_grad=True)
    products = x.detach().numpy() @ w.detach().numpy().T
    b = tn.tensor(np.where(np.abs(products) < 0.1, 0.3, 0.0).max(axis=0), requires_grad=True)
    if np.abs(products + b.detach().numpy()).min() < 0.05:
        return      # a product at the kink: finite differences straddle it
    assert gradcheck(linear_relu, (x, w, b))
    assert gradgradcheck(linear_relu, (x, w, b))


def test_a_graph_for_second_order_gradients_matches_the_two_ops():
    """backward(create_graph=True), then a gradient of the gradient, with outputs whose
    ReLU mask is 0: the same as through F.relu(F.linear(...))."""
    rng = np.random.default_rng(5)
    x0, w0, b0 = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5) - 0.5
    c = tn.tensor(rng.standard_normal((4, 5)))
    results = []
    for op in (linear_relu, lambda *a: F.relu(F.linear(*a))):
        x, w, b = (tn.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        y = op(x, w, b)
        gx, gw = tn.autograd.grad((y ** 2 + y * c).sum(), (x, w), create_graph=True)
        (ggw,) = tn.autograd.grad((gx * tn.tensor(x0)).sum() + (gw ** 2).sum(), (w,))
        results.append((gx.detach().numpy(), gw.detach().numpy(), ggw.numpy()))
    assert ((x0 @ w0.T + b0) < 0).sum() >= 3        # (outputs ReLU stops)
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)


def test_sequential_runs_it_and_exports_the_layer_then_relu(monkeypatch, tmp_path):
    """Sequential(Linear, ReLU) calls the one op and no ReLU; a hook on either module or a
    ReLU subclass keeps the written order; a traced export writes Gemm then Relu."""
    from tinynet.nn import linear as nn_linear
    calls = {"fused": 0, "relu": 0}
    op, relu = nn_linear.linear_relu, F.relu
    monkeypatch.setattr(nn_linear, "linear_relu", lambda *a: calls.__setitem__("fused", calls["fused"] + 1) or op(*a))
    monkeypatch.setattr(F, "relu", lambda t: calls.__setitem__("relu", calls["relu"] + 1) or relu(t))
    x = tn.tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    model(x)
    assert calls == {"fused": 1, "relu": 0}
    model[1].register_forward_hook(lambda m, args, out: None)
    model(x)
    assert calls == {"fused": 1, "relu": 1}

    class Shifted(nn.ReLU):
        def forward(self, input):
            return relu(input - 1.0)
    shifted = nn.Sequential(nn.Linear(3, 4), Shifted())
    np.testing.assert_array_equal(shifted(x).detach().numpy(),
                                  shifted[1](shifted[0](x)).detach().numpy())
    monkeypatch.setattr(F, "relu", relu)
    onnx = pytest.importorskip("onnx")
    from tinynet.onnx import export
    path = tmp_path / "m.onnx"
    export(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), x, str(path))
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert [op for op in ops if op != "Identity"] == ["Gemm", "Relu"]
