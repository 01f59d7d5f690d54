"""The phase grid (tinynet/kernels/phases.py) and the sub-pixel transposed convolution
(tinynet/kernels/subpixel.py): phase im2col against im2col, the adjoint identity, and
the sub-pixel kernel against PyTorch's conv_transpose2d, on drawn geometries."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinynet import backend
from tinynet.kernels import phases as P
from tinynet.kernels.im2col import conv_output_size, conv_transpose_output_size, im2col
from tinynet.kernels.subpixel import conv_transpose2d_subpixel
from tinynet.testing.opinfo import conv as opinfo_conv


def dev(a):
    """A host array moved to the test device (TINYNET_TEST_DEVICE)."""
    return backend.to_device(np.asarray(a), backend.get_default_device())


host = backend.asnumpy


@st.composite
def conv_geometry(draw):
    """(x shape, kernel, stride, padding, dilation, output size): any conv geometry, with
    sometimes a smaller output size than the natural one (a transposed conv's gradient
    with output_padding reads only the first windows)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), _, (H, W) = draw(
        opinfo_conv.conv_geometry(max_kernel=4, max_dilation=3, extra=6))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    Ho, Wo = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    Ho -= draw(st.integers(0, Ho - 1))
    return (N, C, H, W), (kh, kw), (sh, sw), (ph, pw), (dh, dw), (Ho, Wo)


def test_phase_im2col_2x2_stride_2_known_columns():
    # x = 0..15 on 4x4; output (0, 1) reads the window x[0:2, 2:4] = [[2, 3], [6, 7]]
    col, grid = P.phase_im2col(dev(np.arange(16.0).reshape(1, 1, 4, 4)), (2, 2), (2, 2),
                               (0, 0), (1, 1), (2, 2))
    assert grid == (2, 2)
    np.testing.assert_array_equal(host(col)[0, :, :, 1], [[2, 3], [6, 7]])


@settings(max_examples=150, deadline=None)
@given(conv_geometry(), st.integers(0, 2**31 - 1))
def test_phase_im2col_cropped_to_the_output_is_im2col(g, seed):
    # a wrong phase, shift or grid size puts another pixel (or a zero) into some window
    shape, k, s, p, d, out = g
    x = np.random.default_rng(seed).standard_normal(shape)
    col, (Hq, Wq) = P.phase_im2col(dev(x), k, s, p, d, out)
    N, C = shape[:2]
    assert col.shape == (C, k[0], k[1], N * Hq * Wq)
    windows = host(col).reshape(C, k[0], k[1], N, Hq, Wq)[..., :out[0], :out[1]]
    np.testing.assert_array_equal(windows, host(im2col(dev(x), k, s, p, d, out)))


@settings(max_examples=100, deadline=None)
@given(conv_geometry(), st.integers(0, 2**31 - 1))
def test_phase_col2im_is_the_adjoint_of_phase_im2col(g, seed):
    # <phase_im2col(x), y> == <x, phase_col2im(y)>: otherwise the transposed conv is wrong
    shape, k, s, p, d, out = g
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    col, grid = P.phase_im2col(dev(x), k, s, p, d, out)
    y = rng.standard_normal(col.shape)
    back = host(P.phase_col2im(dev(y), shape[2:], k, s, p, d, grid))
    assert back.shape == shape
    np.testing.assert_allclose(np.vdot(host(col), y), np.vdot(x, back), rtol=1e-10, atol=1e-10)


def test_phase_col2im_adds_the_bias_to_every_pixel():
    col = dev(np.zeros((2, 3, 3, 1 * 4 * 4)))
    grid = P.phase_grid_size((5, 5), (3, 3), (2, 2), (1, 1), (1, 1), (3, 3))
    x = host(P.phase_col2im(col, (5, 5), (3, 3), (2, 2), (1, 1), (1, 1), grid, dev([1.0, -2.0])))
    np.testing.assert_array_equal(x[0, 0], np.ones((5, 5)))
    np.testing.assert_array_equal(x[0, 1], -2 * np.ones((5, 5)))


def test_to_grid_puts_zeros_on_the_spare_rows_and_columns():
    y = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    g = host(P.to_grid(dev(y), (3, 3))).reshape(3, 3)
    np.testing.assert_array_equal(g, [[1, 2, 0], [3, 4, 0], [0, 0, 0]])


@st.composite
def subpixel_geometry(draw):
    """A transposed conv the sub-pixel kernel takes: stride >= 1, kernel >= stride."""
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(sh, sh + 4)), draw(st.integers(sw, sw + 4))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    oph, opw = draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1))
    H, W = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    N, C_in, C_out = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    out = (conv_transpose_output_size(H, kh, sh, ph, oph), conv_transpose_output_size(W, kw, sw, pw, opw))
    return (N, C_in, H, W), (C_in, C_out, kh, kw), (sh, sw), (ph, pw), (oph, opw), out


@settings(max_examples=150, deadline=None)
@given(subpixel_geometry(), st.booleans(), st.integers(0, 2**31 - 1))
def test_subpixel_transposed_conv_matches_pytorch(g, bias, seed):
    torch = pytest.importorskip("torch")
    x_shape, w_shape, s, p, op, out = g
    if min(out) <= 0:
        return          # conv_transpose2d rejects this before any kernel runs
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[1]) if bias else None
    y = host(conv_transpose2d_subpixel(dev(x), dev(w), None if b is None else dev(b), s, p, out))
    expected = torch.nn.functional.conv_transpose2d(
        torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b), s, p, op).numpy()
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


def test_subpixel_4x4_stride_2_known_answer():
    # one pixel of value 1 stamps the 4x4 kernel at rows/cols -1..2: the kernel's inner 3x3
    w = np.arange(16.0).reshape(1, 1, 4, 4)
    y = host(conv_transpose2d_subpixel(dev(np.ones((1, 1, 1, 1))), dev(w), None, (2, 2), (1, 1), (2, 2)))
    np.testing.assert_array_equal(y[0, 0], w[0, 0, 1:3, 1:3])


def test_set_phase_mode_rejects_unknown_modes():
    with pytest.raises(ValueError, match="set_phase_mode: mode must be 'auto', 'always' or 'never'"):
        P.set_phase_mode("sometimes")
