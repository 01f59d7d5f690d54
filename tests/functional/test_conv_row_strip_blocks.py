"""The row-strip convolution in column blocks (tinynet/functional/conv.py): any block
size, a partial last block, and blocks run on several threads give the im2col results,
forward, input gradient (a flipped row-strip conv) and weight gradient."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import backend
from tinynet.functional import conv as conv_module
from tinynet.kernels import winograd


def conv_and_grads(x0, w0, b0, g0):
    x, w, b = (tn.tensor(a, requires_grad=True) for a in (x0, w0, b0))
    y = F.conv2d(x, w, b, padding=1)
    y.backward(tn.tensor(g0))
    return y.detach().numpy(), x.grad.numpy(), w.grad.numpy()


@pytest.mark.parametrize("block, threads", [(1000, 1), (777, 3), (1 << 20, 1)])
def test_blocked_row_strips_equal_im2col(block, threads, monkeypatch):
    rng = np.random.default_rng(0)
    x0, w0, b0 = (rng.standard_normal(s) for s in [(2, 16, 23, 19), (16, 16, 3, 3), (16,)])
    g0 = rng.standard_normal((2, 16, 23, 19))
    monkeypatch.setattr(winograd, "_mode", "never")
    assert conv_module._use_row_strips(x0.shape, w0.shape, (1, 1), (1, 1), (1, 1), 1, (23, 19))
    calls = []
    for name in ("_conv2d_row_strips", "_conv2d_weight_row_strips"):
        real = getattr(conv_module, name)
        monkeypatch.setattr(conv_module, name, lambda *a, _real=real, _n=name: calls.append(_n) or _real(*a))
    monkeypatch.setattr(conv_module, "_row_strip_columns", lambda *a: block)
    monkeypatch.setattr(backend, "parallel_grain", 1)
    before = backend._num_threads
    backend.set_num_threads(threads, blas=1)    # blocks on the pool only with 1-thread BLAS
    try:
        # poison: free NaN buffers of the grid's size, which np.empty may hand back, so a
        # column the blocks forget to write shows up instead of stale right answers
        poison = [np.full((16, 2 * 25 * 21 + k), np.nan) for k in range(3)]
        del poison
        blocked = conv_and_grads(x0, w0, b0, g0)
    finally:
        backend.set_num_threads(before or backend._usable_cores())
        backend._num_threads = before
    assert sorted(calls) == ["_conv2d_row_strips", "_conv2d_row_strips", "_conv2d_weight_row_strips"]
    monkeypatch.setattr(conv_module, "_use_row_strips", lambda *a: False)
    reference = conv_and_grads(x0, w0, b0, g0)
    for got, expected in zip(blocked, reference):
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-11)
