"""Winograd F(2x2, 3x3) and F(4x4, 3x3) (tinynet/kernels/winograd.py): the transform matrices, the kernel
against a direct float64 reference, its float32 error, and conv2d / conv_transpose2d
forced through it (gradcheck, gradgradcheck, PyTorch parity) and forced away from it; and
the compiled transforms (tinynet/kernels/compiled/winograd.py, the jit extra) against the
NumPy ones (both routes on the same draws), the defining sum and PyTorch, and the
auto-mode rule that takes them."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinynet as tn
import tinynet.functional as F
from tinynet import backend
from tinynet.functional import conv as conv_module
from tinynet.kernels import winograd as W
from tinynet.testing.routes import on_both_routes
from tinynet.testing import gradcheck, gradgradcheck

# the compiled transforms: Numba installed, and the suite on the CPU (they take NumPy arrays)
needs_numba = pytest.mark.skipif(not backend.compiled_available() or backend.get_default_device().type != "cpu",
                                 reason="needs Numba (the jit extra) and NumPy (CPU) arrays")


def direct_conv(x, w, padding):
    """Reference: the defining sum, one kernel offset at a time, in float64."""
    N, C, H, Wd = x.shape
    ph, pw = padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = H + 2 * ph - 2, Wd + 2 * pw - 2
    y = np.zeros((N, w.shape[0], Ho, Wo))
    for i in range(3):
        for j in range(3):
            y += np.einsum("nchw,kc->nkhw", xp[:, :, i:i + Ho, j:j + Wo], w[:, :, i, j].astype(np.float64))
    return y


@pytest.fixture
def winograd_mode():
    before = W.get_winograd_mode()
    yield W.set_winograd_mode
    W.set_winograd_mode(before)


@pytest.fixture
def counted(monkeypatch):
    """Records the calls of the Winograd kernels made by tinynet.functional.conv: the
    input's shape for the convolution, ("transposed", input shape) for a stride-1
    transposed conv (the rotated filters, not copied), ("weight", input shape) for the
    weight gradient."""
    calls = []
    conv, weight = W.conv2d_winograd, W.conv2d_weight_winograd

    def conv_wrapper(*args, **kwargs):
        calls.append(("transposed", args[0].shape) if kwargs.get("transposed") else args[0].shape)
        return conv(*args, **kwargs)

    def weight_wrapper(*args, **kwargs):
        calls.append(("weight", args[0].shape))
        return weight(*args, **kwargs)
    monkeypatch.setattr(conv_module._winograd, "conv2d_winograd", conv_wrapper)
    monkeypatch.setattr(conv_module._winograd, "conv2d_weight_winograd", weight_wrapper)
    return calls


def test_one_dimensional_algorithm_computes_two_correlation_outputs():
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal(4), rng.standard_normal(3)
    bt, gm, at = np.array(W.B_T), np.array(W.G), np.array(W.A_T)
    y = at @ ((gm @ g) * (bt @ d))
    np.testing.assert_allclose(y, [d[0] * g[0] + d[1] * g[1] + d[2] * g[2],
                                   d[1] * g[0] + d[2] * g[1] + d[3] * g[2]], rtol=1e-12)


def test_weight_transform_is_g_g_gt_per_filter():
    w = np.random.default_rng(1).standard_normal((3, 2, 3, 3))
    gm = np.array(W.G)
    u = W.transform_weight(w)
    assert u.shape == (16, 3, 2)
    np.testing.assert_allclose(u[4 * 2 + 1, 2, 1], (gm @ w[2, 1] @ gm.T)[2, 1], rtol=1e-12)


def test_flipped_weight_transform_is_the_transform_of_the_rotated_filters():
    """Rotating a 3x3 filter by 180 degrees reverses its 9 taps; transform_weight(flipped=True)
    reverses kron(G, G)'s columns instead of copying the rotated filters."""
    w = np.random.default_rng(4).standard_normal((3, 2, 3, 3))
    rotated = np.ascontiguousarray(w[:, :, ::-1, ::-1])
    np.testing.assert_allclose(W.transform_weight(w, flipped=True), W.transform_weight(rotated),
                               rtol=1e-12, atol=1e-12)
    gm = np.array(W.G)          # and from the definition, one position of one filter
    np.testing.assert_allclose(W.transform_weight(w, flipped=True)[4 * 3 + 0, 1, 0],
                               (gm @ w[1, 0, ::-1, ::-1] @ gm.T)[3, 0], rtol=1e-12)


@settings(max_examples=20)
@given(n=st.integers(1, 3), c=st.integers(1, 5), k=st.integers(1, 4), h=st.integers(1, 9),
       width=st.integers(1, 9), ph=st.integers(0, 2), pw=st.integers(0, 2), bias=st.booleans())
def test_kernel_matches_the_direct_sum_in_float64(n, c, k, h, width, ph, pw, bias):
    if h + 2 * ph < 3 or width + 2 * pw < 3:
        return   # no 3x3 window fits; conv2d rejects this before any kernel runs
    rng = np.random.default_rng(n * 1000 + c * 100 + h * 10 + width)
    x, w = rng.standard_normal((n, c, h, width)), rng.standard_normal((k, c, 3, 3))
    b = rng.standard_normal(k) if bias else None
    y = W.conv2d_winograd(x, w, b, (ph, pw))
    expected = direct_conv(x, w, (ph, pw)) + (0 if b is None else b[:, None, None])
    assert y.shape == expected.shape and y.dtype == np.float64
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


def direct_weight_grad(x, dy, padding):
    """Reference: dW[k, c, i, j] = Σ dy[n, k, h, w] x_pad[n, c, h + i, w + j], in float64."""
    ph, pw = padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = dy.shape[2:]
    return np.stack([np.stack([np.einsum("nkhw,nchw->kc", dy.astype(np.float64), xp[:, :, i:i + Ho, j:j + Wo])
                               for j in range(3)], axis=-1) for i in range(3)], axis=-2)


@settings(max_examples=20)
@given(n=st.integers(1, 3), c=st.integers(1, 5), k=st.integers(1, 4), h=st.integers(1, 9),
       width=st.integers(1, 9), ph=st.integers(0, 2), pw=st.integers(0, 2))
def test_weight_gradient_kernel_matches_the_direct_sum_in_float64(n, c, k, h, width, ph, pw):
    if h + 2 * ph < 3 or width + 2 * pw < 3:
        return   # no 3x3 window fits
    rng = np.random.default_rng(n * 1000 + c * 100 + h * 10 + width)
    x = rng.standard_normal((n, c, h, width))
    dy = rng.standard_normal((n, k, h + 2 * ph - 2, width + 2 * pw - 2))
    dw = W.conv2d_weight_winograd(x, dy, (ph, pw))
    assert dw.shape == (k, c, 3, 3) and dw.dtype == np.float64
    np.testing.assert_allclose(dw, direct_weight_grad(x, dy, (ph, pw)), rtol=1e-10, atol=1e-10)


def test_float32_error_stays_within_a_small_multiple_of_im2col_error(winograd_mode):
    winograd_mode("never")      # the comparison runs the im2col path
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 64, 12, 12)).astype(np.float32)
    w = (rng.standard_normal((32, 64, 3, 3)) / 24).astype(np.float32)
    exact = direct_conv(x, w, (1, 1))
    scale = direct_conv(np.abs(x), np.abs(w), (1, 1))          # Σ|x||w| per output
    wino = W.conv2d_winograd(x, w, None, (1, 1))
    im2col = conv_module._conv2d_array(x, w, None, (1, 1), (1, 1), (1, 1), 1, (12, 12))
    err_wino = np.max(np.abs(wino - exact) / scale)
    eps = np.finfo(np.float32).eps
    assert err_wino < 64 * eps                 # a few roundings per term, relative to Σ|x||w|
    err_im2col = np.max(np.abs(im2col - exact) / scale)
    assert err_wino < 8 * max(err_im2col, eps)
    # the weight gradient sums over all N·Ho·Wo positions: the same bound per entry
    dy = rng.standard_normal((2, 32, 12, 12)).astype(np.float32)
    exact = direct_weight_grad(x, dy, (1, 1))
    scale = direct_weight_grad(np.abs(x), np.abs(dy), (1, 1))
    wino = W.conv2d_weight_winograd(x, dy, (1, 1))
    im2col = conv_module._conv2d_weight_array(x, dy, w.shape, (1, 1), (1, 1), (1, 1), 1)
    err_wino = np.max(np.abs(wino - exact) / scale)
    assert err_wino < 64 * eps
    assert err_wino < 8 * max(np.max(np.abs(im2col - exact) / scale), eps)


def test_always_mode_routes_conv2d_and_both_its_gradients_through_winograd(winograd_mode, counted):
    winograd_mode("always")
    x = tn.randn(2, 8, 6, 5, requires_grad=True)
    w = tn.randn(4, 8, 3, 3, requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    # forward conv2d, the input gradient (a stride-1 transposed conv = flipped conv, on the
    # unflipped weight) and the weight gradient
    assert sorted(counted, key=str) == sorted([(2, 8, 6, 5), ("transposed", (2, 4, 6, 5)),
                                               ("weight", (2, 8, 6, 5))], key=str)
    counted.clear()
    F.conv2d(x, w, stride=2, padding=1)            # stride 2: not applicable
    F.conv2d(x, tn.randn(4, 8, 2, 2))              # 2x2 kernel: not applicable
    assert counted == []


def test_never_mode_keeps_winograd_out(winograd_mode, counted):
    winograd_mode("never")
    F.conv2d(tn.randn(2, 128, 16, 16), tn.randn(128, 128, 3, 3), padding=1)
    assert counted == []


def test_auto_mode_picks_winograd_for_wide_convs_only(winograd_mode, monkeypatch):
    winograd_mode("auto")
    monkeypatch.setattr(backend, "_compiled", False)    # the NumPy transforms' rule
    use = conv_module._use_winograd
    monkeypatch.setattr(backend, "cpu_has_avx512", lambda: False)
    # on an AVX2-only CPU from 512 tiles: ResNet-18's N16 128-channel 16x16 stage (1024
    # tiles) and N32 256x8x8 (512), not N16 256x8x8 (256) nor N8 256x8x8 (128)
    assert use((16, 128, 16, 16), (128, 128, 3, 3), (1, 1), (1, 1), (1, 1), 1, (16, 16))
    assert use((32, 256, 8, 8), (256, 256, 3, 3), (1, 1), (1, 1), (1, 1), 1, (8, 8))
    assert not use((16, 256, 8, 8), (256, 256, 3, 3), (1, 1), (1, 1), (1, 1), 1, (8, 8))
    assert not use((8, 256, 8, 8), (256, 256, 3, 3), (1, 1), (1, 1), (1, 1), 1, (8, 8))
    assert not use((16, 64, 32, 32), (64, 64, 3, 3), (1, 1), (1, 1), (1, 1), 1, (32, 32))
    # the GPU keeps the AVX-512 rule whatever the host CPU
    assert use((16, 256, 8, 8), (256, 256, 3, 3), (1, 1), (1, 1), (1, 1), 1, (8, 8), on_cpu=False)
    monkeypatch.setattr(backend, "cpu_has_avx512", lambda: True)
    # ResNet-18 CIFAR stages 2 and 3 (N16, 128 channels 16x16, 256 channels 8x8): 1024 and
    # 256 tiles, on any number of threads (the transforms run on all of them)
    for threads in (1, 2):
        monkeypatch.setattr(backend, "get_num_threads", lambda n=threads: n)
        assert use((16, 128, 16, 16), (128, 128, 3, 3), (1, 1), (1, 1), (1, 1), 1, (16, 16))
        assert use((16, 256, 8, 8), (256, 256, 3, 3), (1, 1), (1, 1), (1, 1), 1, (8, 8))
        assert not use((16, 512, 4, 4), (512, 512, 3, 3), (1, 1), (1, 1), (1, 1), 1, (4, 4))
        assert not use((4, 16, 224, 224), (16, 16, 3, 3), (1, 1), (1, 1), (1, 1), 1, (224, 224))
        assert not use((2, 256, 8, 8), (256, 256, 3, 3), (1, 1), (1, 1), (1, 1), 1, (8, 8))
        # the U-Net's N2 128-channel 16x16 level: 128 tiles, 1.2-1.5x slower measured
        assert not use((2, 128, 16, 16), (128, 128, 3, 3), (1, 1), (1, 1), (1, 1), 1, (16, 16))


def test_auto_mode_takes_winograd_from_32_channels_on_wide_maps_with_blas_transposes(
        winograd_mode, monkeypatch):
    """32-127 channels: maps of 32x32 and more, images per thread (at most 4) x channels
    >= 128, on an AVX-512 CPU whose BLAS runs AVX2 kernels and makes the transposes."""
    winograd_mode("auto")
    monkeypatch.setattr(backend, "_compiled", False)    # the NumPy transforms' rule
    use = conv_module._use_winograd
    monkeypatch.setattr(backend, "cpu_has_avx512", lambda: True)
    monkeypatch.setattr(backend, "blas_has_avx512", lambda: False)
    monkeypatch.setattr(backend, "blas_transposes", lambda: True)
    monkeypatch.setattr(backend, "get_num_threads", lambda: 2)

    def wide(n, c, size, on_cpu=True):
        return use((n, c, size, size), (c, c, 3, 3), (1, 1), (1, 1), (1, 1), 1, (size, size), on_cpu=on_cpu)
    # ResNet-18's first stage, the benchmark's conv1, 32 channels on 32x32 maps
    assert wide(16, 64, 32) and wide(8, 64, 56) and wide(16, 32, 32) and wide(4, 64, 32)
    assert not wide(2, 64, 32)          # one image per thread: runs of 64
    assert not wide(2, 32, 64)          # the U-Net's N2 levels
    assert not wide(16, 64, 16)         # 16x16 maps tied
    assert not wide(16, 16, 64)         # 16 channels
    assert not wide(16, 64, 32, on_cpu=False)
    monkeypatch.setattr(backend, "get_num_threads", lambda: 16)
    assert not wide(16, 64, 32)         # one image per thread
    monkeypatch.setattr(backend, "get_num_threads", lambda: 2)
    monkeypatch.setattr(backend, "blas_transposes", lambda: False)
    assert not wide(16, 64, 32)
    monkeypatch.setattr(backend, "blas_transposes", lambda: True)
    monkeypatch.setattr(backend, "blas_has_avx512", lambda: True)       # its GEMMs 1.8x faster
    assert not wide(16, 64, 32)
    assert wide(16, 128, 32)                                            # the 128-channel rule
    monkeypatch.setattr(backend, "blas_has_avx512", lambda: False)
    monkeypatch.setattr(backend, "cpu_has_avx512", lambda: False)
    assert not wide(16, 64, 32)


@pytest.mark.parametrize("shape", [(3, 5, 9, 7), (2, 4, 4, 11), (5, 3, 3, 3)])
@pytest.mark.parametrize("blocks", [None, (2, 1)])
def test_kernel_split_over_threads_matches_the_direct_sum(shape, blocks, monkeypatch):
    """Every pass split into chunks (rows of the padded grid, rows of tiles, images) on two
    threads, with odd sizes so that the chunks are uneven and the last tile is cropped;
    ``blocks``: the image groups and tile-row blocks of both kernels made tiny (2 images,
    one tile row), so that a chunk holds several of each and the last ones are short."""
    n, c, h, width = shape
    rng = np.random.default_rng(sum(shape))
    x, w, b = rng.standard_normal(shape), rng.standard_normal((6, c, 3, 3)), rng.standard_normal(6)
    if blocks is not None:
        monkeypatch.setattr(W, "_BLOCK_IMAGES", blocks[0])
        monkeypatch.setattr(W, "_BLOCK_BYTES", blocks[1])
    monkeypatch.setattr(backend, "parallel_grain", 1)
    before = backend._num_threads
    backend.set_num_threads(2)
    try:
        # poison: free NaN buffers that np.empty may hand back, so an entry a chunk forgets
        # to write shows up
        poison = [np.full(x.size * k, np.nan) for k in (2, 4, 16)]
        del poison
        y = W.conv2d_winograd(x, w, b, (1, 2))
        dy = rng.standard_normal(y.shape)
        dw = W.conv2d_weight_winograd(x, dy, (1, 2))
    finally:
        backend.set_num_threads(before or backend._usable_cores())
        backend._num_threads = before
    expected = direct_conv(x, w, (1, 2)) + b[:, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, direct_weight_grad(x, dy, (1, 2)), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode, dtype, compiled", [
    ("always", np.float32, False), ("never", np.float32, False),
    pytest.param("always", np.float32, True, marks=needs_numba),
    pytest.param("always", np.float64, True, marks=needs_numba)])
def test_both_paths_agree_with_pytorch_forward_and_backward(mode, dtype, compiled, winograd_mode,
                                                            monkeypatch):
    """conv2d and its three gradients against PyTorch's, through Winograd (NumPy or
    compiled transforms) and away from it; float64 to 1e-10 on the compiled route."""
    torch = pytest.importorskip("torch")
    winograd_mode(mode)
    monkeypatch.setattr(backend, "_compiled", compiled)
    rng = np.random.default_rng(3)
    x0, w0, b0 = (rng.standard_normal(s).astype(dtype) for s in [(2, 5, 7, 9), (6, 5, 3, 3), (6,)])
    g0 = rng.standard_normal((2, 6, 7, 9)).astype(dtype)
    x, w, b = (tn.tensor(a, requires_grad=True) for a in (x0, w0, b0))
    y = F.conv2d(x, w, b, padding=1)
    y.backward(tn.tensor(g0))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x0, w0, b0))
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
    ty.backward(torch.tensor(g0))
    tol = dict(rtol=1e-4, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **tol)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), **tol)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), **tol)
    # conv_transpose2d at stride 1 (its forward is the flipped conv)
    xt = tn.tensor(x0[:, :, :5, :5], requires_grad=True)
    wt = tn.tensor(np.ascontiguousarray(w0.transpose(1, 0, 2, 3)))
    yt = F.conv_transpose2d(xt, wt, padding=1)
    ref = torch.nn.functional.conv_transpose2d(torch.tensor(x0[:, :, :5, :5]),
                                               torch.tensor(w0.transpose(1, 0, 2, 3).copy()), padding=1)
    np.testing.assert_allclose(yt.detach().numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)


@settings(max_examples=8)
@given(n=st.integers(1, 2), c=st.integers(1, 3), k=st.integers(1, 3), h=st.integers(3, 6),
       width=st.integers(3, 6), padding=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_gradcheck_and_gradgradcheck_through_winograd(n, c, k, h, width, padding, seed):
    previous = W.get_winograd_mode()
    W.set_winograd_mode("always")
    try:
        rng = np.random.default_rng(seed)
        x = tn.tensor(rng.standard_normal((n, c, h, width)), requires_grad=True)
        w = tn.tensor(rng.standard_normal((k, c, 3, 3)), requires_grad=True)
        b = tn.tensor(rng.standard_normal(k), requires_grad=True)
        fn = lambda a, b_, c_: F.conv2d(a, b_, c_, padding=padding)  # noqa: E731
        assert gradcheck(fn, (x, w, b))
        assert gradgradcheck(fn, (x, w, b))
        wt = tn.tensor(rng.standard_normal((c, k, 3, 3)), requires_grad=True)
        fnt = lambda a, b_: F.conv_transpose2d(a, b_, padding=min(padding, 2))  # noqa: E731
        assert gradcheck(fnt, (x, wt))
        assert gradgradcheck(fnt, (x, wt))
    finally:
        W.set_winograd_mode(previous)


def test_set_winograd_mode_rejects_unknown_modes():
    with pytest.raises(ValueError, match="set_winograd_mode: mode must be 'auto', 'always' or 'never'"):
        W.set_winograd_mode("sometimes")


# ---------------------------------------------------------------- compiled transforms


def tolerance(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@st.composite
def conv_cases(draw):
    """Odd and even sizes, so the last tile row / column overhangs the output; padding 0-2
    per axis (2 is the input gradient of an unpadded conv); a map no larger than a tile."""
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, 3 - 2 * ph), 11))
    w = draw(st.integers(max(1, 3 - 2 * pw), 11))
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 5)), k=draw(st.integers(1, 5)),
                h=h, w=w, padding=(ph, pw), dtype=draw(st.sampled_from([np.float32, np.float64])),
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


def arrays(case):
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(dt)
    w = rng.standard_normal((case["k"], case["c"], 3, 3)).astype(dt)
    b = rng.standard_normal(case["k"]).astype(dt) if case["bias"] else None
    Ho, Wo = case["h"] + 2 * case["padding"][0] - 2, case["w"] + 2 * case["padding"][1] - 2
    dy = rng.standard_normal((case["n"], case["k"], Ho, Wo)).astype(dt)
    return x, w, b, dy


@needs_numba
@settings(max_examples=25, deadline=None)
@given(case=conv_cases())
def test_compiled_transforms_match_the_numpy_route_and_the_direct_sum(case):
    x, w, b, dy = arrays(case)
    p = case["padding"]
    y_numpy, y_compiled = on_both_routes(lambda: W.conv2d_winograd(x, w, b, p))
    dw_numpy, dw_compiled = on_both_routes(lambda: W.conv2d_weight_winograd(x, dy, p))
    assert y_compiled.dtype == x.dtype and dw_compiled.dtype == x.dtype
    np.testing.assert_allclose(y_compiled, y_numpy, **tolerance(case["dtype"]))
    np.testing.assert_allclose(dw_compiled, dw_numpy, **tolerance(case["dtype"]))
    expected = direct_conv(x, w, p) + (0 if b is None else b[:, None, None].astype(np.float64))
    np.testing.assert_allclose(y_compiled, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw_compiled, direct_weight_grad(x, dy, p), rtol=1e-4, atol=1e-3)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_weight_products_call_the_blas_once_a_block(dtype, monkeypatch):
    """The compiled route's 16 products a block are one compiled call of NumPy's GEMM
    (``add_products``), equal to the 16 Python-side GEMMs it replaces, over blocks of
    several images and several threads."""
    from tinynet import cblas
    from tinynet.kernels.compiled import winograd as compiled
    if cblas.gemm_address(dtype) is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS that tinynet can call")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 6, 13, 10)).astype(dtype)
    dy = rng.standard_normal((5, 7, 13, 10)).astype(dtype)
    monkeypatch.setattr(W, "_COMPILED_BLOCK_IMAGES", 2)
    monkeypatch.setattr(backend, "_compiled", True)
    monkeypatch.setattr(W, "_native_weight", lambda *a: None)       # the Python chunks' products
    calls = []
    real = compiled.add_products
    monkeypatch.setattr(compiled, "add_products", lambda *a: calls.append(1) or real(*a))
    dw = W.conv2d_weight_winograd(x, dy, (1, 1))
    compiled_calls = len(calls)
    assert compiled_calls >= 3                  # blocks of at most 2 of the 5 images
    monkeypatch.setattr(cblas, "gemm_address", lambda dtype: None)     # the Python loop
    np.testing.assert_allclose(dw, W.conv2d_weight_winograd(x, dy, (1, 1)), **tolerance(dtype))
    assert len(calls) == compiled_calls
    np.testing.assert_allclose(dw, direct_weight_grad(x, dy, (1, 1)), rtol=1e-4, atol=1e-3)


def _jobs_of(native_jobs, piece):
    """The native jobs (``native_jobs`` fixture) that ran ``piece`` of
    :mod:`tinynet.kernels.compiled.winograd` (the filter transforms run jobs of their own)."""
    from tinynet.kernels.compiled import winograd as compiled
    return [job for job in native_jobs if job[1] == getattr(compiled, piece).address]


@needs_numba
@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape, block_images", [((2, 16, 12, 10), None), ((5, 3, 9, 7), 2)])
def test_native_forward_job_equals_the_python_chunks(tile, transposed, bias, shape, block_images,
                                                     native_jobs, monkeypatch):
    """The float32 forward's image groups as a native job (one piece a chunk,
    forward_piece: tiles, 16 or 36 GEMMs, output transform), against the same groups as
    Python chunks: equal, for F(2x2) and F(4x4), the conv and the transposed conv, blocks
    of one or several images, a last partial block; float64 keeps the Python chunks."""
    monkeypatch.setattr(W, "_COMPILED_BLOCK_IMAGES", block_images)
    rng = np.random.default_rng(7)
    C_out = 11
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(shape).astype(dtype)
        w = rng.standard_normal((shape[1], C_out, 3, 3) if transposed else (C_out, shape[1], 3, 3)).astype(dtype)
        b = rng.standard_normal(C_out).astype(dtype) if bias else None
        native_jobs.clear()
        native = W.conv2d_winograd(x, w, b, (1, 1), transposed=transposed, tile=tile)
        jobs = _jobs_of(native_jobs, "forward_piece")
        assert len(jobs) == (dtype == np.float32) and all(pieces >= 2 for pieces, *_ in jobs)
        assert all(params[-1] == tile for *_, params in jobs)
        with monkeypatch.context() as m:
            m.setattr(W, "_native_forward", lambda *a: False)
            chunks = W.conv2d_winograd(x, w, b, (1, 1), transposed=transposed, tile=tile)
        np.testing.assert_allclose(native, chunks, rtol=1e-6, atol=1e-5)
        rotated = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)) if transposed else w
        expected = direct_conv(x, rotated, (1, 1)) + (0 if b is None else b[:, None, None].astype(np.float64))
        np.testing.assert_allclose(native, expected, rtol=1e-4, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(case=conv_cases())
def test_transposed_kernel_is_the_conv_with_the_rotated_filters_on_both_routes(case):
    """conv2d_winograd(x, w, transposed=True) with w (C_in, C_out, 3, 3): the stride-1
    transposed conv, i.e. the conv with w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), against
    the defining sum on that copy (and the two CPU routes against each other)."""
    rng, dt, p = np.random.default_rng(case["seed"]), case["dtype"], case["padding"]
    x = rng.standard_normal((case["n"], case["k"], case["h"], case["w"])).astype(dt)
    w = rng.standard_normal((case["k"], case["c"], 3, 3)).astype(dt)     # (C_in, C_out, 3, 3)
    b = rng.standard_normal(case["c"]).astype(dt) if case["bias"] else None
    rotated = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    expected = direct_conv(x, rotated, p) + (0 if b is None else b[:, None, None].astype(np.float64))
    run = lambda: W.conv2d_winograd(x, w, b, p, transposed=True)  # noqa: E731
    on_cpu = backend.compiled_available() and backend.get_default_device().type == "cpu"
    tol = dict(rtol=1e-4, atol=1e-4) if dt == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for y in (on_both_routes(run) if on_cpu else (run(),)):
        assert y.shape == expected.shape and y.dtype == dt
        np.testing.assert_allclose(y, expected, **tol)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_inputs_take_the_compiled_route_and_agree(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 7)).astype(dtype).transpose(0, 1, 3, 2)   # (2, 3, 7, 9) view
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)[::2]
    dy = rng.standard_normal((2, 4, 9, 7)).astype(dtype).transpose(0, 1, 3, 2)
    y_numpy, y_compiled = on_both_routes(lambda: W.conv2d_winograd(x, w, b, (1, 1)))
    dw_numpy, dw_compiled = on_both_routes(lambda: W.conv2d_weight_winograd(x, dy, (1, 1)))
    np.testing.assert_allclose(y_compiled, y_numpy, **tolerance(dtype))
    np.testing.assert_allclose(dw_compiled, dw_numpy, **tolerance(dtype))


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_reach_the_same_outputs_on_both_routes(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 9, 8)).astype(dtype)
    x[0, 1, 4, 3] = np.nan
    x[1, 0, 8, 7] = np.inf              # the last tile, overhanging the output
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    dy = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    dy[1, 2, 8, 7] = np.nan             # an odd output row / column: the cropped tile
    y_numpy, y_compiled = on_both_routes(lambda: W.conv2d_winograd(x, w, None, (1, 1)))
    dw_numpy, dw_compiled = on_both_routes(lambda: W.conv2d_weight_winograd(x, dy, (1, 1)))
    assert np.isnan(y_numpy).any() and np.isnan(dw_numpy).any()
    np.testing.assert_array_equal(np.isfinite(y_compiled), np.isfinite(y_numpy))
    np.testing.assert_array_equal(np.isfinite(dw_compiled), np.isfinite(dw_numpy))
    finite = np.isfinite(y_numpy)
    np.testing.assert_allclose(y_compiled[finite], y_numpy[finite], **tolerance(dtype))


@needs_numba
@pytest.mark.parametrize("block_bytes", [1, 3000])
def test_blocks_of_tile_rows_and_images_split_over_threads_match_the_direct_sum(block_bytes, monkeypatch):
    """One tile row (1 byte) or a few per block, several images per group (3000 bytes of
    tiles hold two 2x2-tile images of 5 float64 channels), images on two threads."""
    monkeypatch.setattr(W, "_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(backend, "parallel_grain", 1)
    monkeypatch.setattr(backend, "_num_threads", backend._num_threads)
    backend.set_num_threads(2)
    rng = np.random.default_rng(4)
    for shape in [(3, 5, 9, 7), (5, 5, 3, 4)]:
        x = rng.standard_normal(shape)
        w = rng.standard_normal((4, shape[1], 3, 3))
        b = rng.standard_normal(4)
        dy = rng.standard_normal((shape[0], 4, shape[2], shape[3]))
        _, y = on_both_routes(lambda: W.conv2d_winograd(x, w, b, (1, 1)))
        _, dw = on_both_routes(lambda: W.conv2d_weight_winograd(x, dy, (1, 1)))
        np.testing.assert_allclose(y, direct_conv(x, w, (1, 1)) + b[:, None, None], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(dw, direct_weight_grad(x, dy, (1, 1)), rtol=1e-10, atol=1e-10)


@needs_numba
@pytest.mark.parametrize("which", ["forward", "weight gradient"])
def test_compiled_blocks_reuse_one_pair_of_tile_buffers(which, monkeypatch):
    """tracemalloc's peak over one call on one thread, less the result: one block's tiles
    (V and M, or V and dM: 2 MB each here, two 1 MB images a block) and the partial dU,
    not a fresh pair for each of the 8 blocks (the next block's V was allocated while
    the last pair was alive: 6 MB)."""
    import tracemalloc
    monkeypatch.setattr(backend, "_compiled", True)
    before = backend._num_threads
    backend.set_num_threads(1)          # (BLAS's too: put back at the end)
    try:
        _one_thread_peak(which)
    finally:
        backend.set_num_threads(before or backend._usable_cores())
        backend._num_threads = before


def _one_thread_peak(which):
    import tracemalloc
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 64, 32, 32)).astype(np.float32)   # 16x16 tiles, 1 MB of V an image
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((16, 64, 32, 32)).astype(np.float32)
    if which == "forward":
        call = lambda: W.conv2d_winograd(x, w, None, (1, 1))
    else:
        call = lambda: W.conv2d_weight_winograd(x, dy, (1, 1))
    call()
    tracemalloc.start()
    try:
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - result.nbytes <= 4.5 * 2 ** 20


@needs_numba
def test_auto_mode_on_avx2_with_compiled_transforms(monkeypatch):
    """On an AVX2-only CPU with the compiled transforms: 32+ channels on maps of at most
    32x32 from 128 tiles (the U-Net's N2 32-256 channel levels at 32x32 and 16x16,
    ResNet-18's N16 64->128 and 256-channel stages), not on 64x64 maps, not with 16
    channels, not from fewer tiles, not on sides below 8 nor where channels x side is
    below 1024; without the compiled transforms, the NumPy rule."""
    before = W.get_winograd_mode()
    W.set_winograd_mode("auto")
    monkeypatch.setattr(backend, "cpu_has_avx512", lambda: False)

    def conv(n, c_in, c_out, size, on_cpu=True):
        return conv_module._use_winograd((n, c_in, size, size), (c_out, c_in, 3, 3), (1, 1), (1, 1),
                                         (1, 1), 1, (size, size), on_cpu=on_cpu)
    try:
        monkeypatch.setattr(backend, "_compiled", True)
        assert conv(2, 32, 64, 32) and conv(2, 64, 64, 32) and conv(2, 128, 64, 32)
        assert conv(2, 256, 128, 16) and conv(16, 64, 128, 16) and conv(16, 256, 256, 8)
        assert not conv(2, 32, 32, 64) and not conv(2, 64, 32, 64)     # 64x64 maps
        assert not conv(8, 64, 64, 56)                                  # 56x56
        assert not conv(2, 16, 32, 64) and not conv(2, 32, 16, 32)      # 16 channels
        assert not conv(16, 512, 512, 4) and not conv(2, 256, 256, 8)   # 64 and 32 tiles
        assert conv(32, 256, 256, 8)                                    # the NumPy rule's own
        # 128+ tiles, but narrow maps with few channels (side < 8, or channels x side < 1024)
        assert not conv(32, 512, 512, 4) and not conv(128, 256, 256, 4) and not conv(64, 32, 32, 4)
        assert not conv(64, 32, 32, 8) and not conv(16, 64, 128, 8) and not conv(32, 32, 32, 16)
        assert conv(32, 128, 128, 8) and conv(16, 64, 64, 16) and conv(2, 32, 32, 32)
        monkeypatch.setattr(backend, "_compiled", False)
        assert not conv(2, 64, 64, 32) and not conv(16, 256, 256, 8)
        assert conv(32, 256, 256, 8)
    finally:
        W.set_winograd_mode(before)


@needs_numba
def test_weight_gradient_leaves_small_batches_to_the_next_route_on_avx2(monkeypatch):
    """On an AVX2-only CPU with the compiled transforms, the weight gradient of a conv that
    Winograd would take goes to the next route (row strips or flat rows) where flat rows
    apply (N <= 2, C_out <= H·W) and the input has no more channels than the output (the
    U-Net's N2 32->64 and 64->128 levels);
    with more input channels, from N4, without the compiled transforms or in mode
    "always", it follows :func:`_use_winograd` (the forward always does)."""
    before = W.get_winograd_mode()
    W.set_winograd_mode("auto")
    monkeypatch.setattr(backend, "cpu_has_avx512", lambda: False)
    monkeypatch.setattr(backend, "_compiled", True)

    def shapes(n, c_in, c_out, size):
        return (n, c_in, size, size), (c_out, c_in, 3, 3), (1, 1), (1, 1), (1, 1), 1, (size, size)

    def grad(*args):
        return conv_module._use_winograd_weight_grad(*shapes(*args))
    try:
        for small in [(2, 32, 64, 32), (2, 64, 64, 32), (2, 64, 128, 16), (2, 128, 128, 16), (1, 32, 32, 32)]:
            assert conv_module._use_winograd(*shapes(*small)) and not grad(*small), small
        assert grad(2, 256, 128, 16) and grad(2, 128, 64, 32)          # more input channels
        assert grad(4, 64, 64, 32) and grad(16, 64, 128, 16)           # from N4: not flat rows
        assert not grad(2, 32, 32, 64)                                  # Winograd's own rule
        W.set_winograd_mode("always")
        assert grad(2, 32, 64, 32)
        W.set_winograd_mode("auto")
        monkeypatch.setattr(backend, "_compiled", False)
        assert not grad(2, 32, 64, 32) and not conv_module._use_winograd(*shapes(2, 32, 64, 32))
    finally:
        W.set_winograd_mode(before)


@needs_numba
def test_auto_mode_with_avx512_blas_and_compiled_transforms(monkeypatch):
    """Where the BLAS runs AVX-512 kernels and the transforms are compiled, the forward and
    the input gradient take Winograd from 32 channels on maps of 32x32 and more, and on
    16x16 maps with 128+ input channels, whatever the batch; not on 8x8 maps. The weight
    gradient keeps the rule without that branch (128+ channels from 256 tiles). All
    three take Winograd where F(4x4, 3x3) applies (8x8 maps and more, 128+ tiles of 4x4)
    from 8 input and 4 output channels; below 32 input channels only on maps of 48x48
    and more (the weight gradient 96x96). Without the compiled transforms, nothing
    changes."""
    before = W.get_winograd_mode()
    W.set_winograd_mode("auto")
    monkeypatch.setattr(backend, "cpu_has_avx512", lambda: True)
    monkeypatch.setattr(backend, "blas_has_avx512", lambda: True)

    def shapes(n, c_in, c_out, size):
        return (n, c_in, size, size), (c_out, c_in, 3, 3), (1, 1), (1, 1), (1, 1), 1, (size, size)

    def conv(*args, on_cpu=True):
        return conv_module._use_winograd(*shapes(*args), on_cpu=on_cpu)

    def grad(*args):
        return conv_module._use_winograd_weight_grad(*shapes(*args))
    try:
        monkeypatch.setattr(backend, "_compiled", True)
        assert conv(2, 64, 64, 32) and conv(2, 128, 64, 32) and conv(2, 32, 64, 32)
        assert conv(2, 64, 32, 64) and conv(2, 32, 32, 64) and conv(16, 64, 64, 32)
        assert conv(8, 64, 64, 56) and conv(1, 32, 32, 32)
        assert conv(2, 128, 128, 16) and conv(2, 256, 128, 16) and conv(2, 128, 64, 16)
        assert conv(1, 128, 128, 16)                                    # 64 tiles
        assert not conv(2, 64, 128, 16) and not conv(1, 32, 32, 31)    # < 128 inputs, < 32x32
        assert not conv(2, 128, 256, 8) and not conv(2, 256, 256, 8)   # 8x8 maps
        # where F(4x4, 3x3) applies: from 32 input and 4 output channels, any map size
        assert conv(2, 32, 16, 128) and conv(2, 32, 4, 64) and conv(2, 32, 32, 31)
        assert not conv(2, 32, 3, 64) and not conv(1, 32, 16, 40)      # 3 outputs, 100 tiles
        # ... from 8 input channels on maps of 48x48 and more (the weight gradient 96x96)
        assert conv(2, 16, 32, 64) and conv(2, 16, 16, 128) and conv(4, 16, 16, 224)
        assert conv(2, 8, 8, 48) and not conv(2, 8, 8, 47) and not conv(8, 16, 8, 32)
        assert not conv(2, 7, 16, 128) and not conv(32, 3, 16, 32)     # 7 and 3 inputs
        assert grad(2, 32, 16, 64) and grad(2, 16, 16, 96) and grad(4, 8, 8, 224)
        assert not grad(2, 16, 32, 64) and not grad(2, 16, 16, 95) and not grad(2, 7, 16, 128)
        assert not conv(2, 64, 64, 32, on_cpu=False)
        assert conv(16, 256, 256, 8) and conv(16, 128, 128, 16)       # the rule for 128+ channels
        assert not grad(2, 128, 128, 16) and not grad(1, 64, 64, 32)   # 32 and 64 tiles of 4x4
        assert grad(16, 256, 256, 8) and grad(16, 128, 128, 16)
        # ... and its own branch: 32+ channels with 128+ tiles of 4x4 (maps of 8x8 and more)
        assert grad(2, 64, 64, 32) and grad(16, 64, 64, 32) and grad(2, 32, 32, 64)
        assert grad(1, 64, 64, 56) and grad(1, 64, 128, 60) and grad(32, 256, 256, 8)
        assert grad(8, 32, 64, 56) and grad(4, 32, 32, 112)
        monkeypatch.setattr(backend, "_compiled", False)
        assert not conv(2, 64, 64, 32) and not conv(16, 64, 64, 32) and not conv(2, 128, 128, 16)
        assert not grad(8, 64, 64, 56)
        assert conv(16, 256, 256, 8)
    finally:
        W.set_winograd_mode(before)


@needs_numba
def test_auto_mode_with_compiled_transforms_takes_the_measured_shapes(monkeypatch):
    """On an AVX-512 CPU whose BLAS runs AVX2 kernels and makes the transposes: 32-127
    channels on 32x32 maps and more at any batch, 128+ channels from 128 tiles."""
    before = W.get_winograd_mode()
    W.set_winograd_mode("auto")
    monkeypatch.setattr(backend, "cpu_has_avx512", lambda: True)
    monkeypatch.setattr(backend, "blas_has_avx512", lambda: False)
    monkeypatch.setattr(backend, "blas_transposes", lambda: True)
    monkeypatch.setattr(backend, "get_num_threads", lambda: 2)

    def wide(n, c, size, on_cpu=True):
        return conv_module._use_winograd((n, c, size, size), (c, c, 3, 3), (1, 1), (1, 1), (1, 1), 1,
                                         (size, size), on_cpu=on_cpu)
    try:
        monkeypatch.setattr(backend, "_compiled", True)
        assert wide(8, 64, 56) and wide(16, 64, 32) and wide(16, 128, 16)
        assert wide(2, 64, 32) and wide(2, 32, 64)      # the U-Net's N2 levels: one image per thread
        assert wide(2, 128, 16)                         # 128 tiles
        assert not wide(2, 256, 8) and not wide(1, 128, 16)    # 32 and 64 tiles
        assert not wide(16, 512, 4)                     # 64 tiles
        assert not wide(2, 16, 128)                     # 16 channels
        assert not wide(2, 64, 16)                      # 16x16 maps below 128 channels
        assert not wide(2, 64, 32, on_cpu=False)
        monkeypatch.setattr(backend, "blas_has_avx512", lambda: False)
        monkeypatch.setattr(backend, "_compiled", False)                # the NumPy transforms
        assert not wide(2, 64, 32) and not wide(2, 128, 16)
    finally:
        W.set_winograd_mode(before)


@needs_numba
@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("shape, block_images", [((2, 16, 12, 10), None), ((5, 3, 9, 7), 2)])
def test_native_weight_job_equals_the_python_chunks(tile, shape, block_images, native_jobs, monkeypatch):
    """The float32 weight gradient's image groups as a native job (one piece a chunk,
    weight_piece: V, dM, the 16 or 36 products into each piece's partial dU), against the
    same groups as Python chunks and direct sums: equal, for F(2x2) and F(4x4), blocks of
    one or several images and a last partial block; float64 keeps the Python chunks."""
    monkeypatch.setattr(W, "_COMPILED_BLOCK_IMAGES", block_images)
    rng = np.random.default_rng(8)
    C_out = 11
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(shape).astype(dtype)
        dy = rng.standard_normal((shape[0], C_out) + shape[2:]).astype(dtype)
        native_jobs.clear()
        native = W.conv2d_weight_winograd(x, dy, (1, 1), tile=tile)
        jobs = _jobs_of(native_jobs, "weight_piece")
        assert len(jobs) == (dtype == np.float32) and all(pieces >= 2 for pieces, *_ in jobs)
        assert all(params[-1] == tile for *_, params in jobs)
        with monkeypatch.context() as m:
            m.setattr(W, "_native_weight", lambda *a: None)
            chunks = W.conv2d_weight_winograd(x, dy, (1, 1), tile=tile)
        np.testing.assert_allclose(native, chunks, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(native, direct_weight_grad(x, dy, (1, 1)), rtol=1e-4, atol=1e-3)


@needs_numba
@pytest.mark.parametrize("tile, channels, block_bytes", [
    (2, 32, 3 << 18), (2, 64, 3 << 18), (2, 128, 1 << 20), (2, 256, 2 << 20), (2, 512, 2 << 20),
    (4, 32, 3 << 18), (4, 64, 128 * 36 * 64 * 4), (4, 128, 2 << 20)])
def test_compiled_forward_blocks_hold_768_kb_of_tiles_but_128_tiles_at_least(tile, channels, block_bytes,
                                                                             monkeypatch):
    """The compiled forward plans its blocks for 768 kB of V, at least 128 tiles of the
    input's channels (16 or 36 positions x 4 bytes each), at most the 2 MB of the other
    routes."""
    monkeypatch.setattr(backend, "_compiled", True)
    plans = []
    real = W._block_plan
    monkeypatch.setattr(W, "_block_plan", lambda *a: plans.append(a[5:]) or real(*a))
    x = np.zeros((1, channels, 8, 8), np.float32)
    W.conv2d_winograd(x, np.zeros((4, channels, 3, 3), np.float32), None, (1, 1), tile=tile)
    assert plans == [(block_bytes, (tile + 2) ** 2)]


# ------------------------------------------------------------------------ F(4x4, 3x3)
@contextlib.contextmanager
def compiled_route():
    """The compiled kernels on (F(4x4, 3x3) runs there only), under TINYNET_JIT=0 too."""
    before = backend._compiled
    backend.set_compiled(True)
    try:
        yield
    finally:
        backend._compiled = before

def test_f4_matrices_are_the_toom_cook_matrices_of_their_points():
    """A_T4 and G4 from the formulas (points 0, 1, -1, 1/2, -2 and ∞): Aᵀ[i, j] = p_j^i,
    G[j, k] = p_j^k / Π_{l≠j}(p_j - p_l); with B_T4 they give a 3-tap correlation's four
    outputs from six samples."""
    points = [0, 1, -1, 0.5, -2]
    a_t = np.array([[p ** i for p in points] + [float(i == 3)] for i in range(4)])
    g = np.array([[p ** k / np.prod([p - q for q in points if q != p]) for k in range(3)]
                  for p in points] + [[0, 0, 1]])
    np.testing.assert_array_equal(np.array(W.A_T4), a_t)
    np.testing.assert_allclose(np.array(W.G4), g, rtol=1e-15, atol=0)
    rng = np.random.default_rng(5)
    for _ in range(3):
        d, taps = rng.standard_normal(6), rng.standard_normal(3)
        y = a_t @ ((g @ taps) * (np.array(W.B_T4) @ d))
        np.testing.assert_allclose(y, [d[i:i + 3] @ taps for i in range(4)], rtol=1e-12, atol=1e-14)


def test_f4_weight_transform_is_g4_g_g4t_per_filter():
    w = np.random.default_rng(1).standard_normal((3, 2, 3, 3))
    g = np.array(W.G4)
    u = W.transform_weight(w, tile=4)
    assert u.shape == (36, 3, 2)
    np.testing.assert_allclose(u[6 * 4 + 1, 2, 1], (g @ w[2, 1] @ g.T)[4, 1], rtol=1e-12)
    np.testing.assert_allclose(W.transform_weight(w, flipped=True, tile=4),
                               W.transform_weight(np.ascontiguousarray(w[:, :, ::-1, ::-1]), tile=4),
                               rtol=1e-12, atol=1e-12)


@needs_numba
@settings(max_examples=25, deadline=None)
@given(case=conv_cases(), transposed=st.booleans())
def test_f4_kernels_match_the_direct_sums(case, transposed):
    """F(4x4, 3x3)'s forward (the conv, and the stride-1 transposed conv) and weight
    gradient on the compiled route against the defining sums: odd and even sizes (the last
    tile row and column overhang the output by 1-3), padding 0-2, one tile or several."""
    x, w, b, dy = arrays(case)
    p = case["padding"]
    if transposed:      # w (k, c, 3, 3) read as a transposed conv's (C_in, C_out, 3, 3)
        x = np.random.default_rng(case["seed"]).standard_normal(
            (case["n"], case["k"], case["h"], case["w"])).astype(case["dtype"])
        b = None if b is None else np.random.default_rng(case["seed"]).standard_normal(case["c"]).astype(case["dtype"])
        weight = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    else:
        weight = w
    with compiled_route():
        y = W.conv2d_winograd(x, w, b, p, transposed=transposed, tile=4)
        dw = None if transposed else W.conv2d_weight_winograd(x, dy, p, tile=4)
    expected = direct_conv(x, weight, p) + (0 if b is None else b[:, None, None].astype(np.float64))
    tol = dict(rtol=1e-4, atol=1e-4) if case["dtype"] == np.float32 else dict(rtol=1e-10, atol=1e-10)
    assert y.shape == expected.shape and y.dtype == case["dtype"]
    np.testing.assert_allclose(y, expected, **tol)
    if not transposed:
        assert dw.shape == w.shape and dw.dtype == case["dtype"]
        np.testing.assert_allclose(dw, direct_weight_grad(x, dy, p),
                                   **(dict(rtol=1e-4, atol=1e-3) if case["dtype"] == np.float32 else tol))


@needs_numba
@pytest.mark.parametrize("n, c, k, size", [(2, 64, 32, 12), (2, 64, 64, 16), (1, 256, 32, 8), (4, 16, 16, 20)])
def test_f4_float32_error_stays_within_32_eps_of_the_scale(n, c, k, size):
    """F(4x4, 3x3) rounds more than F(2x2, 3x3) (powers of the points up to 8, thirds and
    fifteenths in G4): measured 2-11 ε of each output's scale Σ|x||w| (F(2x2) about 1 ε);
    the bound, 32 ε, for the forward and the weight gradient, and both F(4x4)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    w = (rng.standard_normal((k, c, 3, 3)) / 24).astype(np.float32)
    dy = rng.standard_normal((n, k, size, size)).astype(np.float32)
    with compiled_route():
        y, dw = W.conv2d_winograd(x, w, None, (1, 1), tile=4), W.conv2d_weight_winograd(x, dy, (1, 1), tile=4)
    eps = np.finfo(np.float32).eps
    scale = direct_conv(np.abs(x), np.abs(w), (1, 1))
    assert np.max(np.abs(y - direct_conv(x, w, (1, 1))) / scale) < 32 * eps
    scale = direct_weight_grad(np.abs(x), np.abs(dy), (1, 1))
    assert np.max(np.abs(dw - direct_weight_grad(x, dy, (1, 1))) / scale) < 32 * eps


def test_default_tile_takes_f4_on_the_compiled_route_from_8x8_maps_and_128_tiles():
    assert W.default_tile((2, 64, 32, 32), (1, 1)) == 4                      # 2 x 8 x 8 tiles
    assert W.default_tile((8, 256, 8, 8), (1, 1)) == 2                       # 32 tiles
    assert W.default_tile((32, 256, 8, 8), (1, 1)) == 4                      # 128 tiles
    assert W.default_tile((128, 512, 4, 4), (1, 1)) == 2                     # 4x4 maps
    assert W.default_tile((1, 8, 9, 2000), (0, 0)) == 2                      # 7 output rows
    assert W.default_tile((1, 8, 10, 1000), (0, 0)) == 4                     # 8 x 998 outputs
    assert W.default_tile((2, 64, 32, 32), (1, 1), compiled=False) == 2


def test_f4_needs_the_compiled_route_and_other_tiles_are_refused(monkeypatch):
    x, w = np.zeros((1, 2, 8, 8)), np.zeros((3, 2, 3, 3))
    with pytest.raises(ValueError, match="conv2d_winograd: tile must be 2, or 4"):
        W.conv2d_winograd(x, w, None, (1, 1), tile=3)
    with pytest.raises(ValueError, match="conv2d_weight_winograd: tile must be 2, or 4"):
        W.conv2d_weight_winograd(x, np.zeros((1, 3, 8, 8)), (1, 1), tile=8)
    monkeypatch.setattr(backend, "_compiled", False)
    with pytest.raises(ValueError, match="got 4"):
        W.conv2d_winograd(x, w, None, (1, 1), tile=4)
    assert W.conv2d_winograd(x, w, None, (1, 1)).shape == (1, 3, 8, 8)      # None: F(2x2) there
