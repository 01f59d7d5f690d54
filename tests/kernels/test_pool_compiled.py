"""Compiled 2x2 max pooling (tinynet/kernels/compiled/pool.py) against the NumPy route of
tinynet/kernels/pool.py, against PyTorch and against a hand-worked tile: values, argmax
(``return_indices``), the gradient and the gradient's gradient, on drawn shapes (one
plane, wide and narrow maps, several thread chunks), float32 and float64, non-contiguous
inputs, ties, NaN and infinities."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("numba")

import tinynet as tn
import tinynet.functional as F
from tinynet import backend
from tinynet.kernels import pool as P
from tinynet.testing.routes import on_both_routes

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)


def _values(rng, shape, dtype, specials):
    """Small integers (so ties are common), with NaN and ±Inf sprinkled in when asked."""
    x = rng.integers(-3, 4, shape).astype(np.float64)
    if specials:
        mask = rng.random(shape) < 0.08
        x[mask] = rng.choice([np.nan, np.inf, -np.inf], size=int(mask.sum()))
    return x.astype(dtype)


def _pool(x, g, transpose):
    """``(y, indices, dx, ddy)`` of a 2x2 max pool through the graph: first order with
    upstream ``g``, then the gradient of ``sum(dx·x)`` with respect to the upstream
    gradient (the max-pool backward's own backward, a gather at the argmax)."""
    xt = tn.tensor(np.swapaxes(x, 2, 3).copy() if transpose else x, requires_grad=True)
    inp = xt.transpose(2, 3) if transpose else xt
    y, indices = F.max_pool2d(inp, 2, return_indices=True)
    gt = tn.tensor(g, requires_grad=True)
    (dx,) = tn.autograd.grad(y, inp, gt, create_graph=True)
    (ddy,) = tn.autograd.grad((dx * tn.tensor(x)).sum(), gt)
    return y.detach().numpy(), indices.numpy(), dx.detach().numpy(), ddy.numpy()


@settings(deadline=None, max_examples=40)
@given(n=st.integers(1, 3), c=st.integers(1, 70), h=st.integers(1, 5),
       w=st.one_of(st.integers(1, 9), st.sampled_from([31, 32])),
       dtype=st.sampled_from([np.float32, np.float64]), specials=st.booleans(),
       transpose=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_compiled_2x2_max_pool_matches_the_numpy_route(n, c, h, w, dtype, specials, transpose, seed):
    """Same values (NaN where NaN), same argmax, same gradients, on every drawn input;
    c up to 70 with n up to 3 gives up to 210 planes, so large draws split over threads.
    The widths reach each loop of the kernel: output rows 2 wide, 4 wide, other widths
    below TWO_PASS_MAX_WIDTH (31; blocks of rows, several where the draw is large), and
    from it up (32)."""
    rng = np.random.default_rng(seed)
    shape = (n, c, 2 * h, 2 * w)
    x = _values(rng, shape, dtype, specials)
    g = _values(rng, (n, c, h, w), dtype, specials)
    numpy_out, compiled_out = on_both_routes(lambda: _pool(x, g, transpose))
    for a, b in zip(numpy_out, compiled_out):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(b, a)      # NaN in the same places; +0 == -0


def test_compiled_2x2_max_pool_hand_worked_tile(monkeypatch):
    """One tile per case, worked by hand: the maximum and its row-major offset, the first
    of tied maxima, NaN anywhere makes the value NaN, and the gradient goes to the argmax
    only (g·0 elsewhere, so an infinite gradient leaves NaN beside it)."""
    tiles = np.array([[[1, 5], [3, 2]],       # max 5 at offset 1
                      [[4, 4], [4, 4]],       # all tied: offset 0
                      [[0, 1], [7, 7]],       # bottom row tied: offset 2
                      [[1, 2], [np.nan, 0]],  # NaN: value NaN; tournament argmax 1
                      [[-np.inf, -np.inf], [-np.inf, -1]]], dtype=np.float32)
    x = tiles[None]                           # (1, 5, 2, 2)
    monkeypatch.setattr(backend, "_compiled", True)
    y, argmax = P.max_pool2d_forward(x, 2)
    dx = P.max_pool2d_backward(np.array([[[[1.0]], [[2.0]], [[3.0]], [[np.inf]], [[-4.0]]]],
                                        dtype=np.float32), argmax, (2, 2), 2)
    np.testing.assert_array_equal(y.ravel(), [5, 4, 7, np.nan, -1])
    assert argmax.ravel().tolist() == [1, 0, 2, 1, 3]
    expected = np.zeros((5, 2, 2), np.float32)
    expected[0, 0, 1], expected[1, 0, 0], expected[2, 1, 0], expected[4, 1, 1] = 1, 2, 3, -4
    expected[3] = [[np.nan, np.inf], [np.nan, np.nan]]          # inf·0 = NaN beside the argmax
    np.testing.assert_array_equal(dx[0], expected)


@pytest.mark.parametrize("shape", [(64, 16, 8, 8), (64, 32, 4, 4), (2, 16, 128, 128), (1, 1, 2, 2),
                                   (3, 5, 6, 10), (2, 3, 6, 62), (2, 3, 4, 64)])
def test_compiled_2x2_max_pool_matches_pytorch(shape, monkeypatch):
    """Values, indices and the input gradient equal PyTorch's (float32, distinct values),
    through each of the kernel's loops: output rows 4 wide (SimpleCNN's first pool, in
    several blocks of rows), 2 wide (its second), 1, 5 and 31 wide (two passes), 32 and 64
    wide (the row loop)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float32) / 7
    g = rng.standard_normal((shape[0], shape[1], shape[2] // 2, shape[3] // 2)).astype(np.float32)
    monkeypatch.setattr(backend, "_compiled", True)
    y, indices, dx, _ = _pool(x, g, transpose=False)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = torch.nn.functional.max_pool2d(xt, 2, return_indices=True)
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(indices, it.numpy())
    np.testing.assert_array_equal(dx, xt.grad.numpy())
