"""The row-strip forward in column blocks (tinynet/functional/conv.py): any block size,
a partial last block, and blocks run on several threads give the im2col result."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import backend
from tinynet.functional import conv as conv_module
from tinynet.kernels import winograd


@pytest.mark.parametrize("block, threads", [(1000, 1), (777, 3), (1 << 20, 1)])
def test_blocked_row_strips_equal_im2col(block, threads, monkeypatch):
    rng = np.random.default_rng(0)
    x = tn.tensor(rng.standard_normal((2, 16, 23, 19)))
    w = tn.tensor(rng.standard_normal((16, 16, 3, 3)))
    b = tn.tensor(rng.standard_normal(16))
    monkeypatch.setattr(winograd, "_mode", "never")
    assert conv_module._use_row_strips(x.shape, w.shape, (1, 1), (1, 1), (1, 1), 1, (23, 19))
    calls = []
    real = conv_module._conv2d_row_strips
    monkeypatch.setattr(conv_module, "_conv2d_row_strips", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(conv_module, "_ROW_STRIP_BLOCK", block)
    monkeypatch.setattr(backend, "parallel_grain", 1)
    before = backend._num_threads
    backend.set_num_threads(threads, blas=1)    # blocks on the pool only with 1-thread BLAS
    try:
        # poison: free a NaN buffer of the output grid's size, which np.empty may hand back,
        # so a column the blocks forget to write shows up instead of stale right answers
        poison = np.full((16, 2 * 25 * 21), np.nan)
        del poison
        blocked = F.conv2d(x, w, b, padding=1).numpy()
    finally:
        backend.set_num_threads(before or backend._usable_cores())
        backend._num_threads = before
    assert calls == [1]
    monkeypatch.setattr(conv_module, "_use_row_strips", lambda *a: False)
    reference = F.conv2d(x, w, b, padding=1).numpy()
    np.testing.assert_allclose(blocked, reference, rtol=1e-12, atol=1e-12)
