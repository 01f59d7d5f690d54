"""The compiled Winograd transforms (tinynet/kernels/compiled/winograd.py) against the NumPy
transforms of tinynet/kernels/winograd.py (both routes on the same draws), against the
defining sum and PyTorch, and the auto-mode rule that takes them."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("numba")

import tinynet as tn  # noqa: E402
import tinynet.functional as F  # noqa: E402
from tinynet import backend  # noqa: E402
from tinynet.functional import conv as conv_module  # noqa: E402
from tinynet.kernels import winograd as W  # noqa: E402
from tinynet.testing.routes import on_both_routes  # noqa: E402



def direct_conv(x, w, padding):
    """Reference: the defining sum, one kernel offset at a time, in float64."""
    ph, pw = padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = xp.shape[2] - 2, xp.shape[3] - 2
    return sum(np.einsum("nchw,kc->nkhw", xp[:, :, i:i + Ho, j:j + Wo], w[:, :, i, j].astype(np.float64))
               for i in range(3) for j in range(3))


def direct_weight_grad(x, dy, padding):
    """Reference: dW[k, c, i, j] = Σ dy[n, k, h, w] x_pad[n, c, h + i, w + j], in float64."""
    ph, pw = padding
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = dy.shape[2:]
    return np.stack([np.stack([np.einsum("nkhw,nchw->kc", dy.astype(np.float64), xp[:, :, i:i + Ho, j:j + Wo])
                               for j in range(3)], axis=-1) for i in range(3)], axis=-2)


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


def test_conv2d_and_its_gradients_through_the_compiled_transforms_match_pytorch(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(backend, "_compiled", True)
    before = W.get_winograd_mode()
    W.set_winograd_mode("always")
    try:
        rng = np.random.default_rng(5)
        x0, w0, b0 = (rng.standard_normal(s) for s in [(2, 5, 7, 9), (6, 5, 3, 3), (6,)])
        g0 = rng.standard_normal((2, 6, 7, 9))
        x, w, b = (tn.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        y = F.conv2d(x, w, b, padding=1)
        y.backward(tn.tensor(g0))
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        ty = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
        ty.backward(torch.tensor(g0))
    finally:
        W.set_winograd_mode(before)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-10, atol=1e-10)


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
        assert not wide(2, 256, 8)                      # 32 tiles
        assert not wide(16, 512, 4)                     # 64 tiles
        assert not wide(2, 16, 128)                     # 16 channels
        assert not wide(2, 64, 16)                      # 16x16 maps below 128 channels
        assert not wide(2, 64, 32, on_cpu=False)
        monkeypatch.setattr(backend, "blas_has_avx512", lambda: True)   # not measured there
        assert not wide(2, 64, 32) and not wide(2, 128, 16)
        monkeypatch.setattr(backend, "blas_has_avx512", lambda: False)
        monkeypatch.setattr(backend, "_compiled", False)                # the NumPy transforms
        assert not wide(2, 64, 32) and not wide(2, 128, 16)
    finally:
        W.set_winograd_mode(before)
