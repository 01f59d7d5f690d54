"""im2col / col2im and the output-size helpers (tinynet/kernels/im2col.py)."""
import numpy as np
import pytest
from hypothesis import assume, example, given, settings, strategies as st

from tinynet import backend
from tinynet.kernels import im2col as im2col_module
from tinynet.kernels.im2col import (batch_chunk, col2im, conv_output_size,
                                    conv_transpose_output_size, get_workspace_limit, im2col,
                                    pool_output_size, set_workspace_limit)
from tinynet.testing.opinfo import conv as opinfo_conv


def dev(a):
    """A host array moved to the test device (TINYNET_TEST_DEVICE)."""
    return backend.to_device(np.asarray(a), backend.get_default_device())


host = backend.asnumpy


def test_im2col_3x3_kernel_2_known_columns():
    # x = [[0 1 2], [3 4 5], [6 7 8]]; the four 2x2 windows, one per column.
    x = dev(np.arange(9.0).reshape(1, 1, 3, 3))
    col = host(im2col(x, 2)).reshape(4, 4)
    expected = np.array([[0, 1, 3, 4],      # offset (0, 0) of windows at (0,0) (0,1) (1,0) (1,1)
                         [1, 2, 4, 5],      # offset (0, 1)
                         [3, 4, 6, 7],      # offset (1, 0)
                         [4, 5, 7, 8]],     # offset (1, 1)
                        dtype=float)
    np.testing.assert_array_equal(col, expected)


def test_im2col_4x4_stride_2_padding_1_known_columns():
    x = dev(np.arange(16.0).reshape(1, 1, 4, 4))
    col = host(im2col(x, 3, stride=2, padding=1))
    assert col.shape == (1, 3, 3, 1, 2, 2)
    # the window of output (0, 0) covers padded rows/cols -1..1: zeros on its top-left border
    np.testing.assert_array_equal(col[0, :, :, 0, 0, 0], [[0, 0, 0], [0, 0, 1], [0, 4, 5]])
    # output (1, 1) starts at padded (2, 2) = x[1, 1]: rows and columns 1..3, no padding
    np.testing.assert_array_equal(col[0, :, :, 0, 1, 1], [[5, 6, 7], [9, 10, 11], [13, 14, 15]])


def test_col2im_counts_how_often_each_pixel_is_read():
    # col2im of all ones = number of windows covering each pixel (3x3 kernel on 4x4, pad 1)
    counts = host(col2im(dev(np.ones((1, 3, 3, 1, 4, 4))), (4, 4), 1, 1))[0, 0]
    np.testing.assert_array_equal(counts, [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]])


def test_output_size_formulas_known_values():
    assert conv_output_size(32, 3, 1, 1) == 32
    assert conv_output_size(28, 3, 2, 1) == 14
    assert conv_output_size(7, 3, 1, 0, 2) == 3
    assert conv_transpose_output_size(14, 2, 2) == 28
    assert conv_transpose_output_size(14, 4, 2, 1) == 28
    assert conv_transpose_output_size(7, 3, 2, 1, output_padding=1) == 14
    assert pool_output_size(112, 2, 2) == 56
    assert pool_output_size(5, 2, 2, ceil_mode=False) == 2
    assert pool_output_size(5, 2, 2, ceil_mode=True) == 3
    # ceil_mode: the window that would start in the right padding (at 6 >= 5 + 1) is dropped
    assert pool_output_size(5, 2, 2, padding=1, ceil_mode=True) == 3


@st.composite
def pool_geometry(draw):
    """(size, kernel, stride, padding, dilation) PyTorch accepts: padding at most half the
    kernel, and the dilated window fits the padded input."""
    k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    p = draw(st.integers(0, k // 2))
    low = max(1, d * (k - 1) + 1 - 2 * p)
    return draw(st.integers(low, low + 11)), k, s, p, d


@settings(max_examples=200, deadline=None)
@given(pool_geometry(), st.booleans())
@example((5, 2, 2, 1, 1), True)      # the last ceil_mode window would start at in + p: dropped
@example((4, 3, 2, 1, 1), True)      # ... and at in + p - 1: kept
def test_pool_output_size_matches_pytorch(g, ceil_mode):
    torch = pytest.importorskip("torch")
    size, k, s, p, d = g
    assume(2 * p <= k and size + 2 * p >= d * (k - 1) + 1)    # PyTorch rejects the others
    x = torch.zeros(1, 1, size, size)
    expected = torch.nn.functional.max_pool2d(x, k, s, p, d, ceil_mode).shape[-1]
    assert pool_output_size(size, k, s, p, d, ceil_mode) == expected


@st.composite
def conv_geometry(draw):
    """(x shape, kernel, stride, padding, dilation): any geometry with an output."""
    k, s, p, d, _, (H, W) = draw(opinfo_conv.conv_geometry(max_kernel=4, max_dilation=3, extra=6))
    return (draw(st.integers(1, 3)), draw(st.integers(1, 3)), H, W), k, s, p, d


@pytest.mark.parametrize("batch_last", [False, True])
@settings(max_examples=100, deadline=None)
@given(conv_geometry(), st.integers(0, 2**31 - 1))
def test_col2im_is_the_adjoint_of_im2col(batch_last, g, seed):
    # <im2col(x), y> == <x, col2im(y)>: otherwise conv2d's input gradient is wrong. The
    # (C, kh, kw, Ho, Wo, N) order of small maps holds the default order's entries
    # (checked against unfold below), reordered.
    shape, k, s, p, d = g
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    col = host(im2col(dev(x), k, s, p, d, batch_last=batch_last))
    if batch_last:
        default = host(im2col(dev(x), k, s, p, d))
        np.testing.assert_array_equal(col, default.transpose(0, 1, 2, 4, 5, 3))
    y = rng.standard_normal(col.shape)
    back = host(col2im(dev(y), shape[2:], s, p, d, batch_last=batch_last))
    assert back.shape == shape
    np.testing.assert_allclose(np.vdot(col, y), np.vdot(x, back), rtol=1e-10, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(conv_geometry(), st.integers(0, 2**31 - 1))
def test_im2col_and_col2im_match_pytorch_unfold_and_fold(g, seed):
    torch = pytest.importorskip("torch")
    shape, k, s, p, d = g
    N, C, H, W = shape
    x = np.random.default_rng(seed).standard_normal(shape)
    col = host(im2col(dev(x), k, s, p, d))
    _, kh, kw, _, Ho, Wo = col.shape
    unfolded = torch.nn.functional.unfold(torch.tensor(x), k, d, p, s).numpy()
    np.testing.assert_array_equal(col.reshape(C * kh * kw, N, Ho * Wo).transpose(1, 0, 2), unfolded)
    folded = torch.nn.functional.fold(torch.tensor(unfolded), (H, W), k, d, p, s).numpy()
    np.testing.assert_allclose(host(col2im(dev(col), (H, W), s, p, d)), folded, rtol=1e-12, atol=1e-12)


def reference_im2col(x, k, s, p, d, out_hw):
    """col[c, i, j, n, ho, wo] = x_pad[n, c, ho·sh + i·dh, wo·sw + j·dw], element by element."""
    N, C, H, W = x.shape
    col = np.zeros((C, k[0], k[1], N) + tuple(out_hw))
    for i, j, ho, wo in np.ndindex(k[0], k[1], *out_hw):
        h, w = ho * s[0] - p[0] + i * d[0], wo * s[1] - p[1] + j * d[1]
        if 0 <= h < H and 0 <= w < W:
            col[:, i, j, :, ho, wo] = x[:, :, h, w].T
    return col


TILINGS = [((2, 3, 6, 8), (2, 2)), ((1, 2, 7, 5), (2, 2)), ((2, 1, 9, 9), (3, 2)),
           ((2, 2, 8, 8), (1, 4)), ((1, 3, 5, 4), (4, 1))]


@pytest.mark.parametrize("shape,k", TILINGS)
def test_tiling_fast_path_and_strided_loop_each_match_the_index_formula(shape, k):
    # kernel == stride, no padding: both the transposing copy and the per-offset loop are
    # called directly, so each is checked against the formula (not against the other)
    x = np.random.default_rng(0).standard_normal(shape)
    one = (1, 1)
    out_hw = tuple((shape[2 + a] - k[a]) // k[a] + 1 for a in range(2))
    expected = reference_im2col(x, k, k, (0, 0), one, out_hw)
    assert im2col_module._is_tiling(k, k, (0, 0), one)
    fast = host(im2col_module._im2col_tiles(dev(x), dev(np.empty(expected.shape))))
    loop = host(im2col_module._im2col_windows(dev(x), dev(np.empty(expected.shape)), k, (0, 0), one))
    public = host(im2col(dev(x), k, stride=k))
    for got in (fast, loop, public):
        np.testing.assert_array_equal(got, expected)
    # col2im, both paths: the adjoint, <im2col(x), y> == <x, col2im(y)>
    y = np.random.default_rng(1).standard_normal(expected.shape)
    for back in (im2col_module._col2im_tiles(dev(y), shape[2:]),
                 im2col_module._col2im_windows(dev(y), shape[2:], k, (0, 0), one),
                 col2im(dev(y), shape[2:], k)):
        back = host(back)
        assert back.shape == shape
        np.testing.assert_allclose(np.vdot(expected, y), np.vdot(x, back), rtol=1e-12)
        # pixels past the last whole tile are read by no window
        assert not back[:, :, out_hw[0] * k[0]:].any() and not back[:, :, :, out_hw[1] * k[1]:].any()


@pytest.mark.parametrize("k,s,p,d", [((2, 2), (2, 2), (1, 1), (1, 1)), ((2, 2), (2, 2), (0, 0), (2, 1)),
                                     ((2, 3), (3, 2), (0, 0), (1, 1)), ((2, 2), (2, 1), (0, 0), (1, 1))])
def test_near_tilings_do_not_take_the_fast_path(k, s, p, d):
    # the fast path is only right for kernel == stride, unpadded, undilated; one step off
    # any of these must give the generic result
    assert not im2col_module._is_tiling(k, s, p, d)
    x = np.random.default_rng(2).standard_normal((2, 2, 7, 8))
    out_hw = tuple((x.shape[2 + a] + 2 * p[a] - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in range(2))
    np.testing.assert_array_equal(host(im2col(dev(x), k, s, p, d)), reference_im2col(x, k, s, p, d, out_hw))


def test_workspace_limit_bounds_the_chunk():
    old = get_workspace_limit()
    try:
        set_workspace_limit(1000)
        assert batch_chunk(8, 300) == 3
        assert batch_chunk(8, 5000) == 1      # at least one sample per chunk
        assert batch_chunk(2, 10) == 2
        with pytest.raises(ValueError, match="positive"):
            set_workspace_limit(0)
    finally:
        set_workspace_limit(old)
