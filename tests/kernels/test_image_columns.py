"""im2col's convolutions image by image, or on small maps block by block, as native jobs
(tinynet/functional/conv.py's _native_image_columns, _native_block_input_grad and
_native_block_backward, running tinynet/kernels/compiled/flat_rows.py's forward_piece /
weight_piece / block_input_piece / block_backward_piece): against the same convolutions
as Python chunks and PyTorch, over strides, paddings, dilations and non-square kernels;
and the columns a transposed conv's two gradients share."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

pytest.importorskip("numba")

import tinynet as tn                                       # noqa: E402
import tinynet.functional as F                             # noqa: E402
from tinynet.functional import conv as conv_module         # noqa: E402

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)


@pytest.fixture
def jobs(native_jobs, monkeypatch):
    """The native jobs' parameter lists, in order; the route taken on small shapes."""
    monkeypatch.setattr(conv_module, "_IMAGE_COLUMNS_MIN_PIXELS", 1)
    monkeypatch.setattr(conv_module._phases, "_mode", "never")    # small strided maps: im2col's
    return native_jobs


def _pieces():
    from tinynet.kernels.compiled import flat_rows
    return {flat_rows.forward_piece.address: "forward", flat_rows.weight_piece.address: "weight"}


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape, weight, stride, padding, dilation", [
    ((5, 3, 11, 9), (40, 3, 3, 3), (2, 2), (1, 1), (1, 1)),      # GEMM weight products
    ((4, 6, 10, 12), (6, 6, 4, 2), (2, 3), (1, 0), (1, 1)),      # narrow ones, non-square
    ((3, 2, 13, 11), (33, 2, 3, 3), (1, 2), (2, 0), (2, 1)),     # dilated, padded rows only
    ((3, 16, 9, 9), (8, 16, 5, 5), (1, 1), (2, 2), (1, 1)),      # stride 1, a 5x5 kernel
])
def test_native_job_equals_the_python_chunks_and_pytorch(jobs, monkeypatch, bias, shape, weight, stride,
                                                         padding, dilation):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(weight).astype(np.float32)
    b = rng.standard_normal(weight[0]).astype(np.float32) if bias else None
    size = tuple((shape[2 + a] + 2 * padding[a] - dilation[a] * (weight[2 + a] - 1) - 1) // stride[a] + 1
                 for a in range(2))
    dy = rng.standard_normal((shape[0], weight[0]) + size).astype(np.float32)
    geometry = (stride, padding, dilation, 1)

    def both():
        return (conv_module._conv2d_array(x, w, b, *geometry, size),
                conv_module._conv2d_weight_array(x, dy, w.shape, *geometry))
    native = both()
    assert len(jobs) == 2, "both the forward and the weight gradient ran as native jobs"
    assert [_pieces().get(address) for _, address, _ in jobs] == ["forward", "weight"]
    assert [params[-3:-1] for *_, params in jobs] == [[0, 0]] * 2     # per-piece buffers
    with monkeypatch.context() as m:
        m.setattr(conv_module, "_native_image_columns", lambda x, a, out, *rest, **kw: None if out is None else False)
        chunks = both()
    for got, expected in zip(native, chunks):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True, dtype=torch.float64)
    tw = torch.tensor(w, requires_grad=True, dtype=torch.float64)
    y = torch.nn.functional.conv2d(tx, tw, None if b is None else torch.tensor(b, dtype=torch.float64),
                                   stride=stride, padding=padding, dilation=dilation)
    y.backward(torch.tensor(dy, dtype=torch.float64))
    np.testing.assert_allclose(native[0], y.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(native[1], tw.grad.numpy(), rtol=1e-4, atol=1e-3)


def test_float64_groups_and_one_image_keep_the_python_chunks(jobs):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((4, 4, 9, 9)), rng.standard_normal((8, 4, 3, 3))
    conv_module._conv2d_array(x, w, None, (2, 2), (1, 1), (1, 1), 1, (5, 5))
    conv_module._conv2d_array(x.astype(np.float32), w.reshape(16, 2, 3, 3).astype(np.float32), None,
                              (2, 2), (1, 1), (1, 1), 2, (5, 5))
    conv_module._conv2d_array(x[:1].astype(np.float32), w.astype(np.float32), None, (2, 2), (1, 1), (1, 1),
                              1, (5, 5))
    assert jobs == []


def test_transposed_conv_gradients_share_the_columns_of_dy(jobs):
    # its input gradient conv2d(dy, W) builds dy's columns, image by image, into the
    # batch's buffer; its weight gradient conv2d_weight(dy, x) then reads them (ready)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 6, 5, 5)).astype(np.float32)
    w = rng.standard_normal((6, 5, 4, 4)).astype(np.float32)
    dy = rng.standard_normal((4, 5, 10, 10)).astype(np.float32)
    xt, wt = tn.tensor(x, requires_grad=True), tn.tensor(w, requires_grad=True)
    y = F.conv_transpose2d(xt, wt, stride=2, padding=1)
    jobs.clear()
    y.backward(tn.tensor(dy))
    assert [params[-3:-1] for *_, params in jobs] == [[1, 0], [1, 1]]
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True, dtype=torch.float64)
    tw = torch.tensor(w, requires_grad=True, dtype=torch.float64)
    torch.nn.functional.conv_transpose2d(tx, tw, stride=2, padding=1).backward(torch.tensor(dy, dtype=torch.float64))
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(wt.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("size, dtype, image_columns", [
    (32, np.float32, True),             # an image's columns of 0.6 MB: image by image
    (32, np.float64, False),            # no native job in float64: row strips
    (88, np.float32, False),            # 4.5 MB (over 4 MB): row strips
])
def test_small_maps_go_image_by_image_before_row_strips(native_jobs, monkeypatch, size, dtype, image_columns):
    from tinynet.kernels import winograd
    monkeypatch.setattr(winograd, "_mode", "never")
    rng = np.random.default_rng(size)
    x = rng.standard_normal((4, 16, size, size)).astype(dtype)
    w = rng.standard_normal((16, 16, 3, 3)).astype(dtype)
    dy = rng.standard_normal((4, 16, size, size)).astype(dtype)
    assert conv_module._use_row_strips(x.shape, w.shape, (1, 1), (1, 1), (1, 1), 1, (size, size))
    strips = []
    for name in ("_conv2d_row_strips", "_conv2d_weight_row_strips"):
        real = getattr(conv_module, name)
        monkeypatch.setattr(conv_module, name, lambda *a, _real=real: strips.append(1) or _real(*a))
    y = conv_module._conv2d_array(x, w, None, (1, 1), (1, 1), (1, 1), 1, (size, size))
    dw = conv_module._conv2d_weight_array(x, dy, w.shape, (1, 1), (1, 1), (1, 1), 1)
    assert [_pieces().get(address) for _, address, _ in native_jobs] == (
        ["forward", "weight"] if image_columns else [None] * len(native_jobs))
    assert len(strips) == (0 if image_columns else 2)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, padding=1)
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-4, atol=1e-2)


def _block_pieces():
    from tinynet.kernels.compiled import flat_rows
    return {flat_rows.forward_piece.address: "forward", flat_rows.weight_piece.address: "weight",
            flat_rows.block_input_piece.address: "input"}


def _python_route(monkeypatch, fn):
    """``fn()`` with the image-block jobs off: the NumPy batch-last route."""
    with monkeypatch.context() as m:
        m.setattr(conv_module, "_use_image_blocks", lambda *args: False)
        return fn()


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(9, 40), channels=st.integers(16, 20), out_channels=st.integers(1, 9),
       size=st.integers(2, 6), kernel=st.sampled_from([(3, 3), (2, 3), (1, 3)]),
       stride=st.sampled_from([(1, 1), (2, 1)]), padding=st.sampled_from([(1, 1), (0, 1), (2, 0)]),
       dilation=st.sampled_from([(1, 1), (1, 2)]), bias=st.booleans(), block_bytes=st.sampled_from([4 << 20, 1]))
def test_small_maps_go_block_by_block_like_the_python_route(
        native_jobs, monkeypatch, batch, channels, out_channels, size, kernel, stride, padding, dilation,
        bias, block_bytes):
    # batch-last convolutions (a batch larger than the map's width, more column rows
    # than output channels; 16+ input channels, else flat rows take stride-1 "same"
    # convs): blocks of images per product, as many as a piece has or, with block_bytes
    # 1, one image per product; the batch not a multiple of either
    size_hw = (size, size + 1)
    out_size = tuple((size_hw[a] + 2 * padding[a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
                     for a in range(2))
    assume(min(out_size) >= 1 and batch > out_size[1])
    monkeypatch.setattr(conv_module, "_IMAGE_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(conv_module._phases, "_mode", "never")
    rng = np.random.default_rng(batch * size)
    x = rng.standard_normal((batch, channels) + size_hw).astype(np.float32)
    w = rng.standard_normal((out_channels, channels) + kernel).astype(np.float32)
    b = rng.standard_normal(out_channels).astype(np.float32) if bias else None
    dy = rng.standard_normal((batch, out_channels) + out_size).astype(np.float32)
    geometry = (stride, padding, dilation, 1)
    assert conv_module._use_image_blocks(batch, out_size[1], channels * kernel[0] * kernel[1], out_channels, 1)

    def forward_and_weight():
        return (conv_module._conv2d_array(x, w, b, *geometry, out_size),
                conv_module._conv2d_weight_array(x, dy, w.shape, *geometry))
    native_jobs.clear()
    native = forward_and_weight()
    assert [_block_pieces().get(address) for _, address, _ in native_jobs] == ["forward", "weight"]
    per_piece = -(-batch // native_jobs[0][0])
    assert [params[-1] for *_, params in native_jobs] == [1 if block_bytes == 1 else per_piece] * 2
    for got, expected in zip(native, _python_route(monkeypatch, forward_and_weight)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True, dtype=torch.float64)
    tw = torch.tensor(w, requires_grad=True, dtype=torch.float64)
    tb = None if b is None else torch.tensor(b, dtype=torch.float64)
    y = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding, dilation=dilation)
    y.backward(torch.tensor(dy, dtype=torch.float64))
    np.testing.assert_allclose(native[0], y.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(native[1], tw.grad.numpy(), rtol=1e-4, atol=1e-3)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(9, 40), channels=st.integers(1, 9), out_channels=st.integers(16, 18),
       size=st.integers(2, 6), stride=st.sampled_from([(1, 1), (2, 2), (1, 2)]),
       padding=st.sampled_from([(0, 0), (1, 1), (1, 0)]), dilation=st.sampled_from([(1, 1), (2, 1)]),
       bias=st.booleans(), block_bytes=st.sampled_from([4 << 20, 1]))
def test_transposed_conv_on_small_maps_goes_block_by_block(native_jobs, monkeypatch, batch, channels,
                                                           out_channels, size, stride, padding, dilation,
                                                           bias, block_bytes):
    # a transposed conv whose columns (C_out·kh·kw rows) outnumber its input channels
    # (16+ output channels, else flat rows take stride-1 "same" ones): an input block,
    # Wᵀ @ block, the batch-last col2im, the bias
    kernel = (3, 3)
    monkeypatch.setattr(conv_module, "_IMAGE_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(conv_module._phases, "_mode", "never")
    monkeypatch.setattr(conv_module, "_small_map_col2im", lambda *a: True)    # not the flipped conv
    rng = np.random.default_rng(batch + size)
    x = rng.standard_normal((batch, channels, size, size + 1)).astype(np.float32)
    w = rng.standard_normal((channels, out_channels) + kernel).astype(np.float32)
    b = rng.standard_normal(out_channels).astype(np.float32) if bias else None
    out_size = tuple(((size, size + 1)[a] - 1) * stride[a] - 2 * padding[a] + dilation[a] * 2 + 1 for a in range(2))
    assume(min(out_size) >= 1)

    def transposed():
        return conv_module._conv_transpose2d_array(x, w, b, stride, padding, dilation, 1, out_size)
    native_jobs.clear()
    got = transposed()
    assert [_block_pieces().get(address) for _, address, _ in native_jobs] == ["input"]
    per_piece = -(-batch // native_jobs[0][0])
    assert native_jobs[0][2][-2:] == [1 if block_bytes == 1 else per_piece, int(bias)]
    np.testing.assert_allclose(got, _python_route(monkeypatch, transposed), rtol=1e-5, atol=1e-4)
    torch = pytest.importorskip("torch")
    y = torch.nn.functional.conv_transpose2d(
        torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
        None if b is None else torch.tensor(b, dtype=torch.float64), stride=stride, padding=padding,
        dilation=dilation)
    np.testing.assert_allclose(got, y.numpy(), rtol=1e-4, atol=1e-4)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(9, 40), channels=st.integers(14, 24), out_channels=st.integers(1, 40),
       size=st.integers(2, 7), kernel=st.sampled_from([(3, 3), (1, 3), (5, 3)]),
       dilation=st.sampled_from([(1, 1), (2, 1)]), block_bytes=st.sampled_from([4 << 20, 1]))
def test_a_small_map_convs_backward_runs_as_one_job_like_the_two(
        native_jobs, monkeypatch, batch, channels, out_channels, size, kernel, dilation, block_bytes):
    """Where _use_block_backward holds, each gradient alone takes its block job (the rule's
    claim), and the one job gives both gradients as the two do, and as PyTorch's; its
    blocks of images as the two jobs' (a piece's images, or one image a product)."""
    padding = tuple(dilation[a] * (kernel[a] - 1) // 2 for a in range(2))
    size_hw = (size, size + 1)
    monkeypatch.setattr(conv_module, "_IMAGE_BLOCK_BYTES", block_bytes)
    x_shape, w_shape = (batch, channels) + size_hw, (out_channels, channels) + kernel
    geometry = ((1, 1), padding, dilation, 1)
    rng = np.random.default_rng(batch * size + channels)
    dy = rng.standard_normal((batch, out_channels) + size_hw).astype(np.float32)
    assume(conv_module._use_block_backward(x_shape, w_shape, *geometry, dy))
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    native_jobs.clear()
    dx = conv_module._conv_transpose2d_array(dy, w, None, *geometry, size_hw)
    dw = conv_module._conv2d_weight_array(x, dy, w_shape, *geometry)
    assert [_block_pieces().get(address) for _, address, _ in native_jobs] == ["input", "weight"]
    native_jobs.clear()
    both = conv_module._native_block_backward(x, w, dy, padding, dilation)
    assert [address for _, address, _ in native_jobs] == [_backward_piece()]
    assert native_jobs[0][2][-1] == (1 if block_bytes == 1 else -(-batch // native_jobs[0][0]))
    np.testing.assert_allclose(both[0], dx, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(both[1], dw, rtol=1e-5, atol=1e-3)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.conv2d(tx, tw, padding=padding, dilation=dilation).backward(
        torch.tensor(dy, dtype=torch.float64))
    np.testing.assert_allclose(both[0], tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(both[1], tw.grad.numpy(), rtol=1e-4, atol=1e-3)


def _backward_piece():
    from tinynet.kernels.compiled import flat_rows
    return flat_rows.block_backward_piece.address


def test_a_plain_backward_takes_the_one_job_and_a_graph_building_one_the_ops(native_jobs):
    """SimpleCNN's second conv (N64 16->32 4x4): ``loss.backward()`` runs the one job for
    its input and weight gradients, with the bias gradient beside it; under
    ``create_graph=True`` the gradients are ops of the graph (the two jobs), equal."""
    rng = np.random.default_rng(3)
    x = tn.tensor(rng.standard_normal((64, 16, 4, 4)).astype(np.float32), requires_grad=True)
    w = tn.tensor(rng.standard_normal((32, 16, 3, 3)).astype(np.float32), requires_grad=True)
    b = tn.tensor(rng.standard_normal(32).astype(np.float32), requires_grad=True)
    g = tn.tensor(rng.standard_normal((64, 32, 4, 4)).astype(np.float32))
    grads = []
    for create_graph in (False, True):
        x.grad = w.grad = b.grad = None
        native_jobs.clear()
        F.conv2d(x, w, b, padding=1).backward(g, create_graph=create_graph)
        addresses = [address for _, address, _ in native_jobs]
        assert (_backward_piece() in addresses) == (not create_graph)
        gradients = [_block_pieces().get(a) for a in addresses if _block_pieces().get(a) != "forward"]
        assert sorted(filter(None, gradients)) == (["input", "weight"] if create_graph else [])
        grads.append([t.grad.detach().numpy().copy() for t in (x, w, b)])
    for one, two in zip(*grads):
        np.testing.assert_allclose(one, two, rtol=1e-5, atol=1e-4)


def test_a_strided_transposed_conv_on_the_phase_grid_keeps_it(native_jobs):
    """Where the phase grid takes a strided transposed conv (each output phase's columns
    contiguous, no col2im scatter), the block job does not take it first: the same
    shape goes block by block only with the grid off."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((24, 4, 4, 5)).astype(np.float32)
    w = rng.standard_normal((4, 16, 3, 3)).astype(np.float32)
    out_size = (7, 9)                   # (H - 1)·2 - 2·1 + 3
    geometry = ((2, 2), (1, 1), (1, 1), 1)
    assert conv_module._use_phases((24, 16) + out_size, w.shape, *geometry, (4, 5), gather=False)
    got = conv_module._conv_transpose2d_array(x, w, None, *geometry, out_size)
    assert "input" not in [_block_pieces().get(address) for _, address, _ in native_jobs]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(conv_module._phases, "_mode", "never")
        native_jobs.clear()
        blocks = conv_module._conv_transpose2d_array(x, w, None, *geometry, out_size)
        assert [_block_pieces().get(address) for _, address, _ in native_jobs] == ["input"]
    np.testing.assert_allclose(got, blocks, rtol=1e-5, atol=1e-4)
    torch = pytest.importorskip("torch")
    y = torch.nn.functional.conv_transpose2d(torch.tensor(x, dtype=torch.float64),
                                             torch.tensor(w, dtype=torch.float64), stride=2, padding=1)
    np.testing.assert_allclose(got, y.numpy(), rtol=1e-4, atol=1e-4)


def test_large_weights_and_groups_keep_the_batched_gemm(native_jobs):
    # ResNet-18's 4x4 and 8x8 stages (256-512 channels): OpenBLAS's two-thread product of
    # the whole batch measured as fast or faster; grouped convs have no block job
    assert not conv_module._use_image_blocks(16, 4, 512 * 9, 512, 1)
    assert not conv_module._use_image_blocks(16, 8, 256 * 9, 256, 1)
    assert not conv_module._use_image_blocks(64, 4, 16 * 9, 32, 2)
    assert conv_module._use_image_blocks(64, 4, 16 * 9, 32, 1)          # SimpleCNN's second conv
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12, 4, 4, 4)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    conv_module._conv2d_array(x, w, None, (1, 1), (1, 1), (1, 1), 2, (4, 4))
    assert native_jobs == []


@pytest.mark.parametrize("batch, pieces, most, block", [
    (64, 2, 1000, 32),      # a piece's 32 images in one product
    (64, 2, 28, 16),        # two equal blocks of 16, not 28 + 4
    (66, 2, 10, 9),         # 33 images a piece: four blocks of at most 9 (9, 9, 9, 6)
    (64, 2, 1, 1),          # image by image
    (5, 2, 1000, 3),        # the larger piece's 3
])
def test_image_blocks_are_equal_and_within_the_byte_limit(monkeypatch, batch, pieces, most, block):
    rows, pixels, itemsize = 145, 16, 4
    monkeypatch.setattr(conv_module, "_IMAGE_BLOCK_BYTES", most * rows * pixels * itemsize + 7)
    assert conv_module._image_block(batch, pieces, rows, pixels, itemsize) == block
