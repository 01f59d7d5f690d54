"""Flat-row im2col for stride-1 "same" convolutions (tinynet/kernels/flat_rows.py):
against im2col on drawn geometries, the zeroed wrap-around entries, the bias row, and
conv2d forced through it against PyTorch (forward, backward, gradcheck, gradgradcheck)."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinynet as tn
import tinynet.functional as F
from tinynet import backend
from tinynet.functional import conv as conv_module
from tinynet.kernels.flat_rows import applies, flat_im2col
from tinynet.kernels.im2col import im2col
from tinynet.testing import gradcheck, gradgradcheck
from tinynet.testing.routes import on_both_routes


def dev(a):
    return backend.to_device(np.asarray(a), backend.get_default_device())


host = backend.asnumpy


@st.composite
def same_geometry(draw):
    """Kernel, padding and dilation with d(k-1) = 2p per axis (output size = input size)."""
    kernel, padding, dilation = [], [], []
    for _ in range(2):
        d = draw(st.integers(1, 3))
        half = draw(st.integers(0, 2))          # (k-1)·d/2 = p: k odd, or d even
        k = 2 * half + 1 if d % 2 else draw(st.integers(1, 4))
        kernel.append(k), dilation.append(d), padding.append(d * (k - 1) // 2)
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    return (N, C, H, W), tuple(kernel), tuple(padding), tuple(dilation)


@settings(max_examples=150, deadline=None)
@given(same_geometry(), st.booleans(), st.integers(0, 2**31 - 1))
def test_flat_im2col_is_im2col_image_by_image(g, ones, seed):
    # a wrong shift, or a wrap-around entry left non-zero, changes some window; on the
    # NumPy route and on the compiled one (tinynet.kernels.compiled.flat_rows.flat_columns)
    shape, k, p, d = g
    assert applies(shape, k, (1, 1), p, d, shape[2:])
    N, C, H, W = shape
    x = np.random.default_rng(seed).standard_normal(shape)
    rows = C * k[0] * k[1]
    expected = host(im2col(dev(x), k, 1, p, d)).reshape(rows, N, H * W).transpose(1, 0, 2)
    for dtype in (np.float64, np.float32):
        def columns():
            return host(flat_im2col(dev(x.astype(dtype)), k, p, d, ones=ones))
        for col in on_both_routes(columns) if backend.compiled_available() else (columns(),):
            assert col.shape == (N, rows + int(ones), H * W) and col.dtype == dtype
            np.testing.assert_array_equal(col[:, :rows], expected.astype(dtype))
            if ones:
                np.testing.assert_array_equal(col[:, rows], np.ones((N, H * W)))


def test_wrapped_entries_are_zero_padding():
    # 3x3 kernel on a 2x3 image of ones: the offset (1, 0) reads the left neighbour,
    # which for column 0 is padding, not the previous row's last pixel
    col = host(flat_im2col(dev(np.ones((1, 1, 2, 3))), (3, 3), (1, 1), (1, 1)))
    np.testing.assert_array_equal(col[0, 3].reshape(2, 3), [[0, 1, 1], [0, 1, 1]])
    np.testing.assert_array_equal(col[0, 5].reshape(2, 3), [[1, 1, 0], [1, 1, 0]])


@contextlib.contextmanager
def forcing():
    """conv2d takes the flat-row path wherever it applies (any channel count, 1x1 kernels
    included); yields the list of the choices it made."""
    calls = []

    def use(x_shape, w_shape, stride, padding, dilation, groups, output_size):
        ok = groups == 1 and applies(x_shape, tuple(w_shape[2:]), stride, padding, dilation, output_size)
        calls.append(ok)
        return ok
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv_module, "_use_flat_rows", use)
        mp.setattr(conv_module, "_use_pointwise", lambda *args: False)   # 1x1 kernels come first
        yield calls


@settings(max_examples=60, deadline=None)
@given(same_geometry(), st.integers(1, 4), st.booleans(), st.integers(0, 2**31 - 1))
def test_conv2d_through_flat_rows_matches_pytorch(g, c_out, bias, seed):
    torch = pytest.importorskip("torch")
    shape, k, p, d = g
    rng = np.random.default_rng(seed)
    x0, w0 = rng.standard_normal(shape), rng.standard_normal((c_out, shape[1]) + k)
    b0 = rng.standard_normal(c_out) if bias else None
    x, w = tn.tensor(x0, requires_grad=True), tn.tensor(w0, requires_grad=True)
    b = None if b0 is None else tn.tensor(b0, requires_grad=True)
    with forcing() as forced:
        y = F.conv2d(x, w, b, padding=p, dilation=d)
    assert forced[0]
    tx, tw = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    tb = None if b0 is None else torch.tensor(b0, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=p, dilation=d)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    y.backward(tn.tensor(gy))
    ty.backward(torch.tensor(gy))
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        if ours is not None:
            np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_gradcheck_and_gradgradcheck_through_flat_rows():
    rng = np.random.default_rng(6)
    x = tn.tensor(rng.standard_normal((2, 2, 4, 5)), requires_grad=True)
    w = tn.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = tn.tensor(rng.standard_normal(3), requires_grad=True)
    fn = lambda x_, w_, b_: F.conv2d(x_, w_, b_, padding=1)  # noqa: E731
    with forcing() as forced:
        assert gradcheck(fn, (x, w, b))
        assert gradgradcheck(fn, (x, w, b))
    assert forced and forced[0]


def test_auto_mode_takes_flat_rows_for_few_input_channels_or_small_batches():
    def use(x_shape, w_shape, stride, padding, output_size):
        return conv_module._use_flat_rows(x_shape, w_shape, stride, padding, (1, 1), 1, output_size)
    assert use((32, 3, 32, 32), (16, 3, 3, 3), (1, 1), (1, 1), (32, 32))        # an RGB first layer
    assert not use((32, 3, 32, 32), (16, 3, 3, 3), (1, 1), (0, 0), (30, 30))    # "valid": smaller output
    assert not use((32, 3, 32, 32), (16, 3, 3, 3), (2, 2), (1, 1), (16, 16))    # strided
    assert not use((8, 64, 56, 56), (64, 64, 3, 3), (1, 1), (1, 1), (56, 56))   # many channels, N8
    assert not use((1, 1, 3, 3), (1, 1, 3, 3), (1, 1), (1, 1), (2, 3))          # a cropped output
    assert use((2, 128, 16, 16), (128, 128, 3, 3), (1, 1), (1, 1), (16, 16))    # the U-Net's N2
    assert not use((3, 128, 16, 16), (128, 128, 3, 3), (1, 1), (1, 1), (16, 16))


@pytest.mark.parametrize("c_out,flat", [(4, True), (5, False)])
def test_flat_row_weight_gradient_needs_no_more_output_channels_than_pixels(monkeypatch, c_out, flat):
    # per image it writes a whole (C_out, C·kh·kw) partial dW from an inner dimension of
    # H·W; on a 2x2 map (4 pixels) 5 output channels go back to im2col
    torch = pytest.importorskip("torch")
    calls = []
    monkeypatch.setattr(conv_module._flat_rows, "flat_im2col",
                        lambda *a, _f=conv_module._flat_rows.flat_im2col, **k: calls.append(1) or _f(*a, **k))
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((2, 20, 2, 2)), rng.standard_normal((2, c_out, 2, 2))
    dw = host(conv_module._conv2d_weight_array(dev(x), dev(dy), (c_out, 20, 3, 3), (1, 1), (1, 1), (1, 1), 1))
    assert bool(calls) == flat
    expected = torch.ops.aten.convolution_backward(
        torch.tensor(dy), torch.tensor(x), torch.zeros(c_out, 20, 3, 3), None, [1, 1], [1, 1], [1, 1],
        False, [0, 0], 1, [False, True, False])[1].numpy()
    np.testing.assert_allclose(dw, expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=100, deadline=None)
@given(same_geometry(), st.integers(0, 2**31 - 1))
def test_flat_col2im_is_the_adjoint_of_flat_im2col(g, seed):
    # <flat_im2col(x), y> == <x, flat_col2im(y)>: otherwise the input gradient is wrong
    from tinynet.kernels.flat_rows import flat_col2im
    shape, k, p, d = g
    N, C, H, W = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    col = host(flat_im2col(dev(x), k, p, d))                        # (N, C·kh·kw, H·W)
    y = rng.standard_normal(col.shape)
    y_image_major = y.reshape(N, C, k[0], k[1], H * W)
    y_channel_major = y_image_major.transpose(1, 2, 3, 0, 4).copy()
    back = host(flat_col2im(dev(y_channel_major), (H, W), p, d))
    assert back.shape == shape
    np.testing.assert_allclose(np.vdot(col, y), np.vdot(x, back), rtol=1e-10, atol=1e-10)
    # the same columns in the layout of a product batched over images: the same sums
    back_image_major = host(flat_col2im(dev(y_image_major.copy()), (H, W), p, d, image_major=True))
    np.testing.assert_allclose(back_image_major, back, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(same_geometry(), st.integers(1, 4), st.booleans(), st.integers(0, 2**31 - 1))
def test_conv_transpose2d_through_flat_rows_matches_pytorch(g, c_in, bias, seed):
    # a stride-1 "same" transposed conv (the input gradient of a flat-row conv)
    torch = pytest.importorskip("torch")
    shape, k, p, d = g
    c_out = shape[1]
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((shape[0], c_in) + shape[2:])
    w0 = rng.standard_normal((c_in, c_out) + k)
    b0 = rng.standard_normal(c_out) if bias else None
    with forcing() as forced:
        y = F.conv_transpose2d(tn.tensor(x0), tn.tensor(w0), None if b0 is None else tn.tensor(b0),
                               padding=p, dilation=d)
    assert forced and forced[0]
    ty = torch.nn.functional.conv_transpose2d(torch.tensor(x0), torch.tensor(w0),
                                              None if b0 is None else torch.tensor(b0), padding=p, dilation=d)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-10, atol=1e-10)


def test_cropped_output_does_not_take_flat_rows():
    # A "same" geometry asked for a smaller output: the input gradient of a transposed conv
    # with output_padding (x 1x1 -> y 1x2 here; its gradient is a conv of the 1x2 dy back
    # to 1x1). Flat rows write the input's size, so this must take another path.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x0, w0 = rng.standard_normal((1, 1, 1, 1)), rng.standard_normal((1, 1, 2, 2))
    kw = dict(stride=1, padding=1, output_padding=(0, 1), dilation=2)
    x, w = tn.tensor(x0, requires_grad=True), tn.tensor(w0, requires_grad=True)
    y = F.conv_transpose2d(x, w, **kw)
    tx, tw = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, **kw)
    gy = rng.standard_normal(tuple(ty.shape))
    y.backward(tn.tensor(gy))
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)


def test_flat_row_weight_gradient_in_batch_chunks_equals_one_chunk(monkeypatch):
    from tinynet.kernels import im2col as K
    rng = np.random.default_rng(9)
    x, dy = rng.standard_normal((5, 3, 6, 7)), rng.standard_normal((5, 4, 6, 7))
    assert conv_module._use_flat_rows(x.shape, (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, (6, 7))
    whole = F.conv2d_weight(tn.tensor(x), tn.tensor(dy), (4, 3, 3, 3), padding=1).numpy()
    monkeypatch.setattr(K, "workspace_limit", 1)           # one image a chunk
    assert K.batch_chunk(5, 1000) == 1
    chunked = F.conv2d_weight(tn.tensor(x), tn.tensor(dy), (4, 3, 3, 3), padding=1).numpy()
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("on_blas_threads", [True, False])
@pytest.mark.parametrize("image_chunk", [False, True])
def test_flat_rows_in_image_chunks_on_two_threads_equal_one_thread(on_blas_threads, image_chunk,
                                                                   monkeypatch, restore_threads,
                                                                   chunk_counts):
    """Forward, input gradient, weight gradient and a biased transposed conv split over
    the batch on two threads (OpenBLAS's workers or the Python pool), each thread's
    images in workspace chunks or at once, give the one-thread results (the weight
    gradient's partials in image order)."""
    from tinynet.kernels import im2col as K
    rng = np.random.default_rng(11)
    x0, w0, b0 = rng.standard_normal((5, 3, 6, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    g0 = rng.standard_normal((5, 4, 6, 7))
    assert conv_module._use_flat_rows(x0.shape, w0.shape, (1, 1), (1, 1), (1, 1), 1, (6, 7))

    bt = rng.standard_normal(3)

    def conv_and_grads():      # on the CPU whatever the suite's device: CPU threads are the point
        x, w, b = (tn.tensor(a, requires_grad=True, device="cpu") for a in (x0, w0, b0))
        y = F.conv2d(x, w, b, padding=1)
        y.backward(tn.tensor(g0, device="cpu"))
        # and a transposed conv with a bias (the input gradient's path, biased)
        yt = F.conv_transpose2d(*(tn.tensor(a, device="cpu") for a in (g0, w0, bt)), padding=1)
        return [t.numpy() for t in (y.detach(), x.grad, w.grad, b.grad, yt)]
    one = conv_and_grads()
    if image_chunk:
        monkeypatch.setattr(K, "workspace_limit", 1)       # one image a chunk
    monkeypatch.setattr(backend, "parallel_grain", 1)
    monkeypatch.setattr(backend, "chunks_on_blas_threads", on_blas_threads)
    backend.set_num_threads(2)
    del chunk_counts[:]                 # only the two-thread run's calls count
    two = conv_and_grads()
    assert chunk_counts.count(2) >= 4          # forward, input and weight gradients, transposed conv
    for got, expected in zip(two, one):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
