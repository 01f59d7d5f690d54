"""The conv-ReLU-pool op (tinynet.functional.conv_pool.conv2d_relu_max_pool2d:
``max_pool2d(relu(conv2d(x, w, b)), 2)`` in one node), which ``nn.Sequential`` runs for a
Conv2d, a ReLU and a 2x2 MaxPool2d in a row. Its registry entry (tinynet/testing/opinfo/
conv.py) checks first and second derivatives against finite differences and PyTorch over
every conv argument, in float64, on the node's array route; here: the native job of
float32 (a block of images a core, the pool inside it) against the separate ops, where it
runs, over drawn shapes; NaN, infinities, ties and all-negative windows through its
pooling and its gradient routing; the errors; the profiler's count and the ONNX export."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinynet as tn
import tinynet.functional as F
import tinynet.nn as nn
from tinynet import backend, blas_threads
from tinynet.functional import conv_pool
from tinynet.functional.conv_pool import conv2d_relu_max_pool2d
from tinynet.functional.pool import max_pool2d_relu

ON_CPU = backend.get_default_device().type == "cpu"
NATIVE = ON_CPU and backend.use_compiled(np.zeros(1, np.float32)) and blas_threads.available()
native_only = pytest.mark.skipif(not NATIVE, reason="the native job needs the CPU, Numba (the jit "
                                 "extra) and NumPy's OpenBLAS running native pieces")


def _spy(monkeypatch):
    """Records whether each native forward and backward ran (True) or fell back (False)."""
    ran = []
    for name in ("_native_forward", "_native_backward"):
        def spy(*args, _real=getattr(conv_pool, name), _name=name):
            result = _real(*args)
            ran.append((_name, result is not None))
            return result
        monkeypatch.setattr(conv_pool, name, spy)
    return ran


def _run(op, x, w, b, g, padding):
    tx, tw = tn.tensor(x, requires_grad=True), tn.tensor(w, requires_grad=True)
    tb = None if b is None else tn.tensor(b, requires_grad=True)
    z = op(tx, tw, tb, padding)
    z.backward(tn.tensor(g))
    return [z.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()] + ([] if b is None else [tb.grad.numpy()])


def _fused(x, w, b, padding):
    return conv2d_relu_max_pool2d(x, w, b, padding=padding)


def _separate(x, w, b, padding):
    return max_pool2d_relu(F.conv2d(x, w, b, padding=padding), 2)


@native_only
@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 70), C=st.sampled_from([1, 3, 16]), C_out=st.integers(1, 33),
       H=st.integers(2, 9), W=st.integers(2, 9), k=st.sampled_from([1, 3]), bias=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_native_job_gives_the_separate_ops_values_and_gradients(N, C, C_out, H, W, k, bias, seed):
    """float32, stride 1, "same" padding: where both output sides are even the native job
    runs (forward and backward) and its values, input, weight and bias gradients are those
    of conv2d then the pool-and-ReLU, to float32 rounding (the products may be blocked
    differently); with an odd side the node runs the two ops' routines."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((C_out, C, k, k)).astype(np.float32)
    b = rng.standard_normal(C_out).astype(np.float32) if bias else None
    g = rng.standard_normal((N, C_out, H // 2, W // 2)).astype(np.float32)
    with pytest.MonkeyPatch.context() as patch:
        ran = _spy(patch)
        got = _run(_fused, x, w, b, g, k // 2)
    even = H % 2 == 0 and W % 2 == 0
    assert ran == [("_native_forward", even), ("_native_backward", even)]
    for a, r in zip(got, _run(_separate, x, w, b, g, k // 2)):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(r).max()))


@native_only
def test_native_job_in_several_blocks_a_piece_and_without_the_input_gradient(monkeypatch):
    """64 images of 64 channels on 8x8 maps: each piece's images in several blocks (their
    columns pass the 4 MB block size); and an input that needs no gradient (a first layer)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 64, 8, 8)).astype(np.float32)
    w = (rng.standard_normal((8, 64, 3, 3)) / 8).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    g = rng.standard_normal((64, 8, 4, 4)).astype(np.float32)
    job = conv_pool._job(x, w, (8, 8), 0)
    assert job[0] == 2 and job[1] < 32          # two pieces, blocks smaller than a piece
    ran = _spy(monkeypatch)
    got = _run(_fused, x, w, b, g, 1)
    assert ran == [("_native_forward", True), ("_native_backward", True)]
    monkeypatch.undo()
    for a, r in zip(got, _run(_separate, x, w, b, g, 1)):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4)
    tw = tn.tensor(w, requires_grad=True)
    z = conv2d_relu_max_pool2d(tn.tensor(x), tw, None, padding=1)
    z.backward(tn.tensor(g))
    tw_ref = tn.tensor(w, requires_grad=True)
    _separate(tn.tensor(x), tw_ref, None, 1).backward(tn.tensor(g))
    np.testing.assert_allclose(tw.grad.numpy(), tw_ref.grad.numpy(), rtol=1e-4, atol=1e-4)


@native_only
def test_native_job_only_where_it_pays_and_applies():
    """Maps up to 16x16 with even sides and up to 2^18 weights; not a larger map (the
    conv's own routes win there), an odd side, too many weights, float64."""
    x, w = np.zeros((2, 4, 16, 16), np.float32), np.zeros((8, 4, 3, 3), np.float32)
    assert conv_pool._job(x, w, (16, 16), 0) is not None
    assert conv_pool._job(x, w, (18, 16), 0) is None and conv_pool._job(x, w, (16, 15), 0) is None
    assert conv_pool._job(x, np.zeros((512, 4, 16, 16), np.float32), (2, 2), 0) is None
    assert conv_pool._job(x.astype(np.float64), w.astype(np.float64), (16, 16), 0) is None


@native_only
@pytest.mark.parametrize("bias", [None, 0.0])
def test_native_pooling_and_routing_of_special_values(monkeypatch, bias):
    """A 1x1 convolution with weight 1 passes x through unchanged (every product is 1·x), so
    the job's pool must give the pool's own values and argmax on x, NaN, infinities, ties
    and all-negative windows included, and its backward route a gradient holding NaN and
    infinities as the pool's backward does (v·0 beside the argmax: NaN there too)."""
    rng = np.random.default_rng(5)
    x = rng.choice(np.array([-2.0, -1.0, -0.0, 0.0, 1.0, 2.0, np.inf, -np.inf, np.nan], np.float32),
                   size=(64, 1, 8, 8))
    x[:8] = rng.standard_normal((8, 1, 8, 8)).astype(np.float32) - 3.0     # windows all negative
    g = rng.standard_normal((64, 1, 4, 4)).astype(np.float32)
    g[10, 0, :2, :2] = [[np.nan, np.inf], [-np.inf, 1.0]]
    w = np.ones((1, 1, 1, 1), np.float32)
    b = None if bias is None else np.array([bias], np.float32)
    ran = _spy(monkeypatch)
    tx = tn.tensor(x, requires_grad=True)
    z = conv2d_relu_max_pool2d(tx, tn.tensor(w, requires_grad=True),
                               None if b is None else tn.tensor(b, requires_grad=True), padding=0)
    z.backward(tn.tensor(g))
    assert ran == [("_native_forward", True), ("_native_backward", True)]
    monkeypatch.undo()
    ref_x = tn.tensor(x, requires_grad=True)
    ref = max_pool2d_relu(ref_x, 2)
    ref.backward(tn.tensor(g))
    np.testing.assert_array_equal(z.detach().numpy(), ref.detach().numpy())
    np.testing.assert_array_equal(tx.grad.numpy(), ref_x.grad.numpy())
    assert np.isnan(tx.grad.numpy()).any() and (tx.grad.numpy() == 0).any()


def test_known_values_and_gradient_by_hand():
    """x = [[1, -2], [3, -4]], a 1x1 weight 2 and bias -1: conv [[1, -5], [5, -9]], one 2x2
    window, its maximum 5 (the lower left, argmax 2), ReLU 5. A gradient 7 goes to that
    pixel through the weight: dx = 7·2 there, dw = 7·3, db = 7."""
    x = tn.tensor(np.array([[[[1.0, -2.0], [3.0, -4.0]]]], np.float32), requires_grad=True)
    w = tn.tensor(np.array([[[[2.0]]]], np.float32), requires_grad=True)
    b = tn.tensor(np.array([-1.0], np.float32), requires_grad=True)
    z = conv2d_relu_max_pool2d(x, w, b)
    assert z.detach().numpy().tolist() == [[[[5.0]]]]
    z.backward(tn.tensor(np.array([[[[7.0]]]], np.float32)))
    assert x.grad.numpy().tolist() == [[[[0.0, 0.0], [14.0, 0.0]]]]
    assert w.grad.numpy().item() == 21.0 and b.grad.numpy().item() == 7.0


def test_unbatched_input_and_the_second_derivative_of_a_graph():
    """A (C, H, W) input gives a (C_out, Ho/2, Wo/2) output, as conv2d; a gradient of a
    gradient through the node (backward with create_graph) equals the separate ops'."""
    rng = np.random.default_rng(2)
    x0, w0 = rng.standard_normal((2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    assert conv2d_relu_max_pool2d(tn.tensor(x0), tn.tensor(w0), padding=1).shape == (3, 3, 3)
    results = []
    for op in (conv2d_relu_max_pool2d, lambda x, w, padding: F.max_pool2d(F.relu(F.conv2d(x, w, padding=padding)), 2)):
        x, w = tn.tensor(x0[None], requires_grad=True), tn.tensor(w0, requires_grad=True)
        (gx,) = tn.autograd.grad((op(x, w, padding=1) ** 2).sum(), x, create_graph=True)
        (gw,) = tn.autograd.grad((gx * tn.tensor(x0[None])).sum(), w)
        results.append((gx.detach().numpy(), gw.numpy()))
    for a, r in zip(*results):
        np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-12)


def test_errors_name_the_op_and_the_argument():
    x, w = tn.randn(1, 2, 4, 4), tn.randn(3, 2, 3, 3)
    with pytest.raises(ValueError, match="conv2d: weight has 2 input channels per group but input has 3"):
        conv2d_relu_max_pool2d(tn.randn(1, 3, 4, 4), w)
    with pytest.raises(ValueError, match="conv2d: kernel size .* is larger than the padded input"):
        conv2d_relu_max_pool2d(tn.randn(1, 2, 2, 2), w)
    with pytest.raises(ValueError, match=r"max_pool2d: kernel_size \(2, 2\) .* is larger than the padded input 1x3"):
        conv2d_relu_max_pool2d(tn.randn(1, 2, 3, 5), w)          # a 1x3 conv output: no 2x2 window
    with pytest.raises(TypeError, match="conv2d: input has dtype float32 but weight has dtype float64"):
        conv2d_relu_max_pool2d(x, tn.tensor(np.ones((3, 2, 3, 3))))
    with pytest.raises(ValueError, match="conv2d: padding must be an int, a pair, 'valid' or 'same'"):
        conv2d_relu_max_pool2d(x, w, padding="full")


def test_profiler_counts_the_convolutions_products():
    """Its flops are the convolution's, from the conv's output size (not the pooled one)."""
    from tinynet import profiler
    x, w = tn.randn(2, 3, 6, 8), tn.randn(4, 3, 3, 3)
    with profiler.profile() as prof:
        conv2d_relu_max_pool2d(x, w, padding=1)
    assert prof.row("Conv2dReluPool")["flops"] == 2 * 2 * 4 * 6 * 8 * 3 * 3 * 3


def test_sequential_exports_conv_max_pool_and_relu(tmp_path):
    """A traced export of the three modules writes the node that ran as Conv, MaxPool and
    Relu, and ONNX Runtime (when installed) computes tinynet's output."""
    onnx = pytest.importorskip("onnx")
    from tinynet.onnx import export
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    x = tn.tensor(np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32))
    path = tmp_path / "m.onnx"
    export(model, x, str(path))
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert [op for op in ops if op != "Identity"] == ["Conv", "MaxPool", "Relu"]     # (output naming)
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(out, model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
