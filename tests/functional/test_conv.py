"""conv2d, conv_transpose2d, conv2d_weight (tinynet/functional/conv.py).

The registry (tests/testing/test_registry.py) checks gradients, second derivatives and
PyTorch parity on drawn arguments; here: small cases with known answers, the special
paths (non-overlapping transposed conv, batch chunking, padding='same'), second
derivatives against PyTorch, and every argument error.
"""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import backend
from tinynet.kernels import im2col as K


def t(a, requires_grad=False, dtype=np.float64):
    return tn.tensor(np.asarray(a, dtype=dtype), requires_grad=requires_grad)


def arr(x):
    return x.detach().numpy() if x.requires_grad else x.numpy()


def test_conv2d_3x3_input_2x2_kernel_known_answer():
    x = t(np.arange(9.0).reshape(1, 1, 3, 3))          # [[0 1 2] [3 4 5] [6 7 8]]
    w = t([[[[1.0, 0.0], [0.0, -1.0]]]])               # x[h, w] - x[h+1, w+1]
    y = F.conv2d(x, w, t([10.0]))
    np.testing.assert_array_equal(arr(y), np.full((1, 1, 2, 2), 10.0 - 4.0))


def test_conv2d_4x4_stride_2_padding_1_known_answer():
    x = t(np.ones((1, 1, 4, 4)))
    y = F.conv2d(x, t(np.ones((1, 1, 3, 3))), stride=2, padding=1)
    # window sums of ones: corners of the padded map see 4 real pixels, inner ones 6 or 9
    np.testing.assert_array_equal(arr(y)[0, 0], [[4, 6], [6, 9]])


def test_conv2d_groups_keep_channels_apart():
    x = t(np.stack([np.ones((3, 3)), 2 * np.ones((3, 3))])[None])
    y = F.conv2d(x, t(np.ones((2, 1, 3, 3))), groups=2)   # depthwise: each channel alone
    np.testing.assert_array_equal(arr(y).ravel(), [9.0, 18.0])


def test_conv_transpose2d_2x2_stride_2_is_a_tiling():
    # the U-Net up-convolution: every input pixel stamps a scaled copy of the kernel
    x = t([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = t([[[[1.0, 10.0], [100.0, 1000.0]]]])
    y = arr(F.conv_transpose2d(x, w, stride=2))[0, 0]
    np.testing.assert_array_equal(y[:2, :2], [[1, 10], [100, 1000]])
    np.testing.assert_array_equal(y[2:, 2:], 4 * np.array([[1, 10], [100, 1000]]))


def test_conv_transpose2d_output_padding_adds_bottom_right_rows():
    x = t(np.ones((1, 1, 3, 3)))
    w = t(np.ones((1, 1, 3, 3)))
    y = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    assert y.shape == (1, 1, 6, 6)     # (3-1)*2 - 2 + 3 + 1 = 6; without it 5
    assert F.conv_transpose2d(x, w, stride=2, padding=1).shape == (1, 1, 5, 5)


try:                      # only the PyTorch comparisons below need it
    import torch
    TF = torch.nn.functional
except ImportError:
    torch = TF = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install tinynet[ref])")


def _torch_double_backward(fn_ours, fn_torch, arrays, seed=0):
    """Compares d/d(inputs) of <d(out)/d(inputs) · v, u> between tinynet and PyTorch."""
    rng = np.random.default_rng(seed)
    ours = [t(a, True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    yo, yt = fn_ours(*ours), fn_torch(*theirs)
    v = rng.standard_normal(yt.shape)
    vo, vt = t(v, True), torch.tensor(v, requires_grad=True)
    go = yo.backward(vo, retain_graph=True, create_graph=True)
    grads_o = [a.grad for a in ours]
    grads_t = torch.autograd.grad(yt, theirs, vt, create_graph=True)
    total_o = sum((g * t(rng.standard_normal(g.shape))).sum() for g in grads_o)
    rng = np.random.default_rng(seed)
    rng.standard_normal(yt.shape)
    total_t = sum((g * torch.tensor(rng.standard_normal(g.shape))).sum() for g in grads_t)
    for a in ours:
        a.grad = None
    total_o.backward()
    second_t = torch.autograd.grad(total_t, theirs + [vt], allow_unused=True)
    for a, b in zip(ours + [vo], second_t):
        expected = np.zeros(a.shape) if b is None else b.numpy()
        got = np.zeros(a.shape) if a.grad is None else arr(a.grad)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    assert go is None


@pytest.mark.parametrize("kw", [
    dict(stride=2, padding=1), dict(stride=(1, 2), padding=(0, 1), dilation=(2, 1)),
    dict(groups=2, padding=1), dict(stride=3)])
@needs_torch
def test_conv2d_second_derivatives_match_pytorch(kw):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 4 // kw.get("groups", 1), 3, 2)), rng.standard_normal(6)
    _torch_double_backward(lambda x, w, b: F.conv2d(x, w, b, **kw) ** 2,
                           lambda x, w, b: TF.conv2d(x, w, b, **kw) ** 2, [x, w, b])


@pytest.mark.parametrize("kw", [
    dict(stride=2, padding=1, output_padding=1), dict(stride=2),
    dict(stride=1, dilation=2, output_padding=1), dict(groups=2, stride=(2, 1))])
@needs_torch
def test_conv_transpose2d_second_derivatives_match_pytorch(kw):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 4, 5, 4)), rng.standard_normal((4, 3, 2, 3)), rng.standard_normal(3 * kw.get("groups", 1))
    _torch_double_backward(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw) ** 2,
                           lambda x, w, b: TF.conv_transpose2d(x, w, b, **kw) ** 2, [x, w, b])


@needs_torch
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel,dilation", [((3, 3), 1), ((2, 4), 1), ((3, 2), 2)])
def test_conv2d_string_padding_matches_pytorch(padding, kernel, dilation):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 2, 6, 7)), rng.standard_normal((3, 2) + kernel)
    xo, wo = t(x, True), t(w, True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yo = F.conv2d(xo, wo, padding=padding, dilation=dilation)
    yt = TF.conv2d(xt, wt, padding=padding, dilation=dilation)
    np.testing.assert_allclose(arr(yo), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    yo.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(arr(xo.grad), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


@needs_torch
def test_conv2d_weight_matches_pytorch_grad_helper():
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((2, 4, 7, 7)), rng.standard_normal((2, 6, 4, 4))
    ours = F.conv2d_weight(t(x), t(dy), (6, 2, 3, 3), stride=2, padding=1, groups=2)
    theirs = torch.nn.grad.conv2d_weight(torch.tensor(x), (6, 2, 3, 3), torch.tensor(dy),
                                         stride=2, padding=1, groups=2)
    np.testing.assert_allclose(arr(ours), theirs.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_chunked_workspace_equals_unchunked(op):
    # a workspace limit of one byte forces one sample per chunk through every path
    rng = np.random.default_rng(5)
    x, b = rng.standard_normal((5, 4, 9, 8)), rng.standard_normal(6)
    if op == "conv2d":
        w = rng.standard_normal((6, 2, 3, 3))
        call = lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2)  # noqa: E731
    else:
        w = rng.standard_normal((4, 3, 3, 3))
        call = lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, groups=2)  # noqa: E731

    def run():
        ts = [t(a, True) for a in (x, w, b)]
        y = call(*ts)
        (y * y).sum().backward()
        return [arr(y)] + [arr(a.grad) for a in ts]

    full = run()
    old = K.get_workspace_limit()
    try:
        K.set_workspace_limit(1)
        chunked = run()
    finally:
        K.set_workspace_limit(old)
    for a, c in zip(full, chunked):
        np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12)


def test_float32_stays_float32():
    y = F.conv2d(t(np.ones((1, 2, 5, 5)), dtype=np.float32), t(np.ones((3, 2, 3, 3)), dtype=np.float32),
                 t(np.ones(3), dtype=np.float32), padding=1)
    assert y.dtype == np.float32


# ------------------------------------------------------------------- argument errors
X = np.ones((2, 4, 6, 6))
W = np.ones((6, 4, 3, 3))


@pytest.mark.parametrize("call,error,match", [
    (lambda: F.conv2d(t(np.ones((6, 6))), t(W)), ValueError, "input.*3-D or 4-D"),
    (lambda: F.conv2d(t(X), t(np.ones((6, 4, 3)))), ValueError, "weight.*4-D"),
    (lambda: F.conv2d(t(X), t(np.ones((6, 3, 3, 3)))), ValueError, "3 input channels per group but input has 4"),
    (lambda: F.conv2d(t(X), t(np.ones((6, 1, 3, 3))), groups=3), ValueError, "input channels per group"),
    (lambda: F.conv2d(t(X), t(np.ones((5, 2, 3, 3))), groups=2), ValueError, "not divisible by groups"),
    (lambda: F.conv2d(t(X), t(W), groups=0), ValueError, "groups must be a positive"),
    (lambda: F.conv2d(t(X), t(W), t(np.ones(5))), ValueError, "bias has 5"),
    (lambda: F.conv2d(t(X), t(W), t(np.ones((6, 1)))), ValueError, "bias.*1-D"),
    (lambda: F.conv2d(t(X), t(W), stride=0), ValueError, "stride must be positive"),
    (lambda: F.conv2d(t(X), t(W), stride=(1, -1)), ValueError, "stride must be positive"),
    (lambda: F.conv2d(t(X), t(W), dilation=0), ValueError, "dilation must be positive"),
    (lambda: F.conv2d(t(X), t(W), padding=-1), ValueError, "padding must be non-negative"),
    (lambda: F.conv2d(t(X), t(W), padding="full"), ValueError, "padding must be"),
    (lambda: F.conv2d(t(X), t(W), stride=2, padding="same"), ValueError, "same"),
    (lambda: F.conv2d(t(X), t(W), stride=1.5), TypeError, "stride must be an int"),
    (lambda: F.conv2d(t(X), t(W), stride=(1, 2, 3)), ValueError, "pair"),
    (lambda: F.conv2d(t(X), t(np.ones((6, 4, 0, 3)))), ValueError, "kernel size must be positive"),
    (lambda: F.conv2d(t(X), t(np.ones((6, 4, 7, 3)))), ValueError, "larger than the padded input"),
    (lambda: F.conv2d(t(X), t(W), dilation=4), ValueError, "larger than the padded input"),
    (lambda: F.conv2d(t(X), t(W, dtype=np.float32)), TypeError, "dtype"),
    (lambda: F.conv2d(t(X), t(W), t(np.ones(6), dtype=np.float32)), TypeError, "bias has dtype"),
    (lambda: F.conv2d(X, t(W)), TypeError, "must be a Tensor"),
    (lambda: F.conv2d(t(X.astype(np.int64), dtype=np.int64), t(W)), TypeError, "floating"),
    (lambda: F.conv_transpose2d(t(X), t(np.ones((3, 2, 3, 3)))), ValueError, "weight has 3 input channels"),
    (lambda: F.conv_transpose2d(t(X), t(np.ones((4, 2, 3, 3))), groups=3), ValueError, "not divisible by groups"),
    (lambda: F.conv_transpose2d(t(X), t(np.ones((4, 2, 3, 3))), stride=2, output_padding=2), ValueError,
     "output_padding .* smaller than either stride"),
    (lambda: F.conv_transpose2d(t(X), t(np.ones((4, 2, 3, 3))), output_padding=1), ValueError,
     "output_padding"),
    (lambda: F.conv_transpose2d(t(X), t(np.ones((4, 2, 3, 3))), padding=5), ValueError, "not positive"),
    (lambda: F.conv_transpose2d(t(X), t(np.ones((4, 2, 3, 3))), stride=0), ValueError, "stride must be positive"),
    (lambda: F.conv_transpose2d(t(X), t(np.ones((4, 2, 3, 3))), padding=-1), ValueError, "non-negative"),
    (lambda: F.conv_transpose2d(t(X), t(np.ones((4, 2, 3, 3)), dtype=np.float32)), TypeError, "dtype"),
    (lambda: F.conv2d_weight(t(X), t(np.ones((2, 6, 9, 9))), (6, 4, 3, 3)), ValueError, "does not fit"),
    (lambda: F.conv2d_weight(t(X), t(np.ones((2, 5, 4, 4))), (6, 4, 3, 3)), ValueError, "does not fit"),
])
def test_bad_arguments_are_rejected_at_the_op(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_device_mismatch_is_a_value_error():
    from tinynet import backend
    if not backend.is_cuda_available():
        pytest.skip("needs a GPU to hold a tensor on another device")
    x = tn.tensor(X).to("cpu")
    w = tn.tensor(W).to("cuda")
    with pytest.raises(ValueError, match="device"):
        F.conv2d(x, w)


@pytest.mark.parametrize("shape,kernel,padding,dilation", [
    ((2, 16, 20, 22), (3, 3), 1, 1), ((1, 18, 40, 30), (3, 2), (1, 0), (1, 2)),
    ((3, 16, 21, 19), (2, 3), (0, 1), (2, 1)), ((2, 16, 60, 41), (3, 3), (1, 1), (1, 2))])
def test_row_strip_path_equals_im2col_path(monkeypatch, shape, kernel, padding, dilation):
    # stride-1 convs with >= 16 channels on large maps take the row-strip GEMMs (forward,
    # input gradient through the flipped-kernel conv, weight gradient); same numbers as im2col
    from tinynet.functional import conv as conv_module
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((17, shape[1]) + kernel), rng.standard_normal(17)
    pad, dil = K.pair(padding), K.pair(dilation)
    size = tuple(shape[2 + a] + 2 * pad[a] - dil[a] * (kernel[a] - 1) for a in range(2))   # stride 1
    monkeypatch.setattr(conv_module, "_ROW_STRIP_MAX_GRID", 1.5)     # small maps take them too
    assert conv_module._use_row_strips(shape, w.shape, (1, 1), pad, dil, 1, size)

    def run():
        ts = [t(a, True) for a in (x, w, b)]
        y = F.conv2d(*ts, padding=padding, dilation=dilation)
        (y * y).sum().backward()
        return [arr(y)] + [arr(a.grad) for a in ts]

    strips = run()
    monkeypatch.setattr(conv_module, "_use_row_strips", lambda *args: False)
    reference = run()
    for a, c in zip(reference, strips):
        np.testing.assert_allclose(c, a, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("groups,kernel,padding,dilation,output_padding", [
    (1, (3, 3), (1, 1), (1, 1), 0), (2, (3, 2), (0, 1), (2, 1), 0), (4, (2, 3), (1, 0), (1, 2), 0),
    (2, (3, 3), (2, 0), (2, 2), 1), (2, (1, 1), (0, 0), (1, 1), 0)])  # 1x1 with one group: tests/kernels/test_pointwise.py
@pytest.mark.parametrize("large_weight", [False, True])
def test_stride_1_transposed_conv_through_the_flipped_conv_matches_torch(
        monkeypatch, groups, kernel, padding, dilation, output_padding, large_weight):
    """A stride-1 transposed conv with >= 8 output channels runs as conv2d with the flipped,
    per-group transposed kernel and padding d(k-1) - p. Would fail if the flip, the
    per-group transpose or the padding were wrong; output_padding (a larger output than
    that conv gives) and a flipped weight at least as large as the columns it would
    multiply (C_out >= N·H·W: one image of 2x2 here) must take the col2im path."""
    torch = pytest.importorskip("torch")
    from tinynet.functional import conv as conv_module
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 4 * groups, 2, 2) if large_weight else (2, 4 * groups, 7, 6))
    w = rng.standard_normal((4 * groups, 12 // groups) + kernel)
    b = rng.standard_normal(12)
    calls = []
    real = conv_module._conv2d_array
    monkeypatch.setattr(conv_module, "_conv2d_array", lambda *a: calls.append(a[1].shape) or real(*a))
    ts = [t(a, True) for a in (x, w, b)]
    y = F.conv_transpose2d(*ts, padding=padding, dilation=dilation, groups=groups,
                           output_padding=output_padding)
    g = rng.standard_normal(arr(y).shape)
    y.backward(t(g))
    assert (calls[:1] == [(12, 4, *kernel)]) == (output_padding == 0 and not large_weight)
    tt = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    ty = torch.nn.functional.conv_transpose2d(*tt, padding=padding, dilation=dilation, groups=groups,
                                              output_padding=output_padding)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(arr(y), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for ours, theirs in zip(ts, tt):
        np.testing.assert_allclose(arr(ours.grad), theirs.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("size,col2im", [((4, 4), True), ((8, 7), True), ((9, 8), False), ((4, 11), False)])
def test_stride_1_transposed_conv_on_small_maps_takes_col2im_with_compiled_kernels(
        monkeypatch, compiled, size, col2im):
    """With compiled kernels, a stride-1 transposed conv on maps of at most 8x8 with a batch
    larger than the width (SimpleCNN's input gradients) runs as the GEMM then col2im, not as
    the flipped conv; larger maps, a batch no larger than the width, or compiled kernels
    off (or a GPU array) keep the flipped conv. Both routes match PyTorch, forward and
    backward."""
    torch = pytest.importorskip("torch")
    if compiled:
        pytest.importorskip("numba")
    from tinynet.functional import conv as conv_module
    monkeypatch.setattr(backend, "_compiled", compiled)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((11, 5) + size)
    w, b = rng.standard_normal((5, 12, 3, 3)), rng.standard_normal(12)
    calls = []
    real = conv_module._conv2d_array
    monkeypatch.setattr(conv_module, "_conv2d_array", lambda *a: calls.append(a[1].shape) or real(*a))
    ts = [t(a, True) for a in (x, w, b)]
    y = F.conv_transpose2d(*ts, padding=1)
    # compiled kernels run on NumPy arrays only: on a GPU the flipped conv stays
    assert (calls == [(12, 5, 3, 3)]) == (not (col2im and backend.use_compiled(ts[0].data)))
    g = rng.standard_normal(arr(y).shape)
    y.backward(t(g))
    tt = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    ty = torch.nn.functional.conv_transpose2d(*tt, padding=1)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(arr(y), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for ours, theirs in zip(ts, tt):
        np.testing.assert_allclose(arr(ours.grad), theirs.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("winograd", [True, False])
def test_small_map_col2im_leaves_a_winograd_flipped_conv_alone(monkeypatch, winograd):
    """Where the flipped conv would take Winograd (measured faster there: N16 256->256
    8x8), the small-map rule keeps it; the flipped conv's own shapes are what is asked."""
    pytest.importorskip("numba")
    from tinynet.functional import conv as conv_module
    monkeypatch.setattr(backend, "_compiled", True)
    asked = []
    monkeypatch.setattr(conv_module, "_use_winograd", lambda *a, **k: asked.append(a[:2]) or winograd)
    x = np.zeros((16, 256, 8, 8), np.float32)
    assert conv_module._small_map_col2im(x, (128, 256, 3, 3), (1, 1), (1, 1), 1) == (not winograd)
    assert asked == [((16, 256, 8, 8), (128, 256, 3, 3))]


@pytest.mark.parametrize("case", ["winograd", "winograd-cropped", "batch-innermost", "col2im"])
def test_transposing_copies_give_the_same_conv_with_and_without_blas(case, monkeypatch):
    """The copies that became BLAS transposes (Winograd's output with its bias, the
    batch-innermost product's return to NCHW with its bias, col2im's batch-innermost crop)
    keep NumPy's fused add / single copy where BLAS's transpose is absent: both routes
    give the same bits, and match a float64 reference. Copies of any size may take BLAS
    here, so that these small convolutions reach it."""
    from tinynet import cblas
    from tinynet.kernels import winograd as W
    rng = np.random.default_rng(7)
    # winograd: 16 channels on 18x18 maps (one transpose back to NCHW), 18x17 (odd: a
    # cropped last tile); batch-innermost: 16 images of 4x4 (more images than columns);
    # col2im: as many input channels as pixels in the batch, so that the input gradient
    # scatters batch-innermost columns (padding 1: a cropped buffer) instead of running
    # as a conv
    shape = {"winograd": (2, 16, 18, 18), "winograd-cropped": (2, 16, 18, 17),
             "batch-innermost": (16, 24, 4, 4), "col2im": (16, 256, 4, 4)}[case]
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((20, shape[1], 3, 3)) * 0.2).astype(np.float32)
    b = rng.standard_normal(20).astype(np.float32)
    gy = rng.standard_normal((shape[0], 20) + shape[2:]).astype(np.float32)
    monkeypatch.setattr(backend, "_MIN_TRANSPOSE_BYTES", 1)
    monkeypatch.setattr(backend, "_compiled", False)    # the NumPy routes' copies, not compiled ones
    calls = []
    real_transpose, real_can = cblas.transpose, cblas.can_transpose
    monkeypatch.setattr(cblas, "transpose", lambda *a: calls.append(a) or real_transpose(*a))
    before = W.get_winograd_mode()
    W.set_winograd_mode("always" if case.startswith("winograd") else "never")
    results, transposes = [], []
    try:
        for blas in (True, False):
            monkeypatch.setattr(cblas, "can_transpose", lambda dtype, blas=blas: blas and real_can(dtype))
            calls.clear()
            tx, tw, tb = (tn.tensor(a, requires_grad=True) for a in (x, w, b))
            y = F.conv2d(tx, tw, tb, padding=1)
            y.backward(tn.tensor(gy))
            results.append([y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()])
            transposes.append(len(calls))
            on_numpy = type(tx.data) is np.ndarray      # not the CUDA stand-in's arrays
    finally:
        W.set_winograd_mode(before)
    assert transposes[1] == 0 and (transposes[0] > 0) == (on_numpy and real_can(np.float32))
    for with_blas, without in zip(*results):
        np.testing.assert_array_equal(with_blas, without)
    torch = pytest.importorskip("torch")
    ty = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                                    torch.tensor(b, dtype=torch.float64), padding=1)
    np.testing.assert_allclose(results[0][0], ty.numpy(), rtol=1e-4, atol=1e-4)
