"""The pool-then-ReLU op (tinynet.functional.pool.max_pool2d_relu: ``relu(max_pool2d(x))``
in one node, one pass on the compiled 2x2 route), which ``nn.Sequential`` runs for a ReLU
next to a MaxPool2d: bit for bit the two ops' values and gradients on every route, over
every pooling argument, with ties, signed zeros, infinities and NaN in the windows;
differentiable twice; exported to ONNX as MaxPool then Relu."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinynet as tn
import tinynet.functional as F
import tinynet.nn as nn
from tinynet import backend
from tinynet.functional.pool import max_pool2d_relu
from tinynet.testing import gradcheck, gradgradcheck
from tinynet.testing import strategies as tst
from tinynet.testing.routes import on_both_routes

ON_CPU = backend.get_default_device().type == "cpu"


def _values_and_gradient(op, x, g):
    t = tn.tensor(x, requires_grad=True)
    y = op(t)
    y.backward(tn.tensor(g))
    return y.detach().numpy(), t.grad.numpy()


@settings(max_examples=80, deadline=None)
@given(case=tst.pooling(special=True), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2 ** 16))
def test_equals_relu_of_max_pool_bit_for_bit_on_both_routes(case, dtype, seed):
    """Values (the sign of every zero and NaN where NaN included) and plain-backward input
    gradients bit for bit those of F.relu(F.max_pool2d(x)), on the NumPy route and on the
    compiled one; a wrong mask, a missed ReLU or a mask read from the wrong value changes
    some entry."""
    values, kw = case
    x = values.astype(dtype)
    shape = F.max_pool2d(tn.tensor(x), **kw).shape
    g = np.random.default_rng(seed).standard_normal(shape).astype(dtype)

    def both():
        return (_values_and_gradient(lambda t: max_pool2d_relu(t, **kw), x, g),
                _values_and_gradient(lambda t: F.relu(F.max_pool2d(t, **kw)), x, g))
    routes = on_both_routes(both) if backend.compiled_available() else (both(),)
    for (y, dx), (y_ref, dx_ref) in routes:
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(dx, dx_ref)
        if ON_CPU:      # the sign of a zero: NumPy's and the kernels' rule (F.relu's test)
            np.testing.assert_array_equal(np.signbit(y), np.signbit(y_ref))
            np.testing.assert_array_equal(np.signbit(dx), np.signbit(dx_ref))


def test_known_values_and_gradient_by_hand():
    """2x2 windows of [[-1, 3], [2, -4]] and [[-1, -2], [-4, -3]]: relu of the maxima 3 and
    0; the gradient 5 goes to the 3, and none through the all-negative window (ReLU's
    derivative 0 there, though the pool's argmax is the -1)."""
    x = tn.tensor(np.array([[[[-1.0, 3.0, -1.0, -2.0], [2.0, -4.0, -4.0, -3.0]]]]), requires_grad=True)
    y = max_pool2d_relu(x, 2)
    assert y.detach().numpy().tolist() == [[[[3.0, 0.0]]]]
    y.backward(tn.tensor(np.array([[[[5.0, 7.0]]]])))
    assert x.grad.numpy().tolist() == [[[[0.0, 5.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]]


@settings(max_examples=25, deadline=None)
@given(case=tst.pooling(), seed=st.integers(0, 2 ** 16))
def test_gradcheck_and_gradgradcheck(case, seed):
    """First and second derivatives against finite differences (float64), on distinct
    values away from 0 (no ties, no kink inside the difference step)."""
    values, kw = case
    rng = np.random.default_rng(seed)
    magnitudes = rng.permutation(values.size).reshape(values.shape) * 0.1 + 0.05
    x = tn.tensor(magnitudes * rng.choice([-1.0, 1.0], values.shape), requires_grad=True)
    assert gradcheck(lambda t: max_pool2d_relu(t, **kw), (x,))
    assert gradgradcheck(lambda t: max_pool2d_relu(t, **kw), (x,))


def test_a_graph_for_second_order_gradients_matches_the_two_ops():
    """backward(create_graph=True), then a gradient of the gradient: the same as through
    F.relu(F.max_pool2d(x)) (the differentiable form of the node's backward)."""
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((2, 3, 4, 6)) - 1.0    # windows all negative: ReLU's mask 0
    w = tn.tensor(rng.standard_normal((2, 3, 2, 3)))
    results = []
    for op in (lambda t: max_pool2d_relu(t, 2), lambda t: F.relu(F.max_pool2d(t, 2))):
        x = tn.tensor(x0, requires_grad=True)
        (gx,) = tn.autograd.grad((op(x) ** 2 + op(x) * w).sum(), x, create_graph=True)
        (ggx,) = tn.autograd.grad((gx * tn.tensor(x0)).sum(), x)
        results.append((gx.detach().numpy(), ggx.numpy()))
    assert (x0.reshape(2, 3, 2, 2, 3, 2).max(axis=(3, 5)) < 0).sum() >= 5    # (the case above)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_sequential_exports_max_pool_then_relu(tmp_path):
    """A traced export records the op that ran, MaxPool with the ReLU in it: the graph gets
    both nodes, and ONNX Runtime (when installed) computes tinynet's output."""
    onnx = pytest.importorskip("onnx")
    from tinynet.onnx import export
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, stride=1))
    x = tn.tensor(np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32))
    path = tmp_path / "m.onnx"
    export(model, x, str(path))
    proto = onnx.load(str(path))
    ops = [n.op_type for n in proto.graph.node]
    assert [op for op in ops if op != "Identity"] == ["Conv", "MaxPool", "Relu"]     # (output naming)
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(out, model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
