"""Row-strip convolutions (tinynet/kernels/row_strips.py, tinynet/functional/conv.py):
in bands of one image's rows (a partial last band included), in groups of whole images
(a partial last group included) and on several threads they give the im2col results,
forward, input gradient (a flipped row-strip conv) and weight gradient; forced on drawn
geometries they match PyTorch; gradcheck and gradgradcheck; which convs take them."""
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

import tinynet as tn
import tinynet.functional as F
from tinynet import backend
from tinynet.functional import conv as conv_module
from tinynet.kernels import row_strips as RS
from tinynet.kernels import winograd
from tinynet.testing import gradcheck, gradgradcheck


def conv_and_grads(x0, w0, b0, g0):
    x, w, b = (tn.tensor(a, requires_grad=True) for a in (x0, w0, b0))
    y = F.conv2d(x, w, b, padding=1)
    y.backward(tn.tensor(g0))
    return y.detach().numpy(), x.grad.numpy(), w.grad.numpy()


# float64 strips of a (5, 16, 23, 19) batch: 16·3·19 = 912 elements a grid row, 25 + 2
# rows an image with its zero rows and the 2 rows its row shifts read below
ROW = 912 * 8


@pytest.mark.parametrize("budget, images, band, threads, blas", [
    (3 * ROW, 1, 1, 1, None),       # bands of 1 row
    (7 * ROW, 1, 5, 3, None),       # bands of 5 rows (23 = 4·5 + 3), images on 3 threads:
    (7 * ROW, 1, 5, 3, 1),          # OpenBLAS's workers, or the Python pool with 1-thread BLAS
    (2 * 27 * ROW, 2, 23, 1, None),     # 2 whole images a block, the last block 1
    (2 * 27 * ROW, 2, 23, 3, None),
    (2 * 27 * ROW, 2, 23, 3, 1),
    (1 << 30, 5, 23, 1, None)])     # the whole batch in one block
@pytest.mark.parametrize("in_place", [True, False], ids=["in-place", "stacked"])
def test_blocked_row_strips_equal_im2col(budget, images, band, threads, blas, in_place, monkeypatch):
    # both ways of summing a "same" conv's kernel rows, whichever this CPU's rule takes
    monkeypatch.setattr(conv_module, "_row_strips_in_place", lambda c_out: in_place)
    rng = np.random.default_rng(0)
    x0, w0, b0 = (rng.standard_normal(s) for s in [(5, 16, 23, 19), (16, 16, 3, 3), (16,)])
    g0 = rng.standard_normal((5, 16, 23, 19))
    monkeypatch.setattr(winograd, "_mode", "never")
    monkeypatch.setattr(conv_module, "_ROW_STRIP_MAX_GRID", 1.5)     # small maps take them too
    assert conv_module._use_row_strips(x0.shape, w0.shape, (1, 1), (1, 1), (1, 1), 1, (23, 19))
    calls = []
    for name in ("_conv2d_row_strips", "_conv2d_weight_row_strips"):
        real = getattr(conv_module, name)
        monkeypatch.setattr(conv_module, name, lambda *a, _real=real, _n=name: calls.append(_n) or _real(*a))
    monkeypatch.setattr(conv_module, "_ROW_STRIP_BYTES", budget)
    blk = conv_module._row_strip_blocks(x0, w0.shape, (1, 1), (1, 1))
    assert (blk.images, blk.band) == (images, band)
    monkeypatch.setattr(backend, "parallel_grain", 1)
    before = backend._num_threads
    backend.set_num_threads(threads, blas=blas)
    try:
        # poison: free NaN buffers of the output's and the strips' sizes, which np.empty
        # may hand back, so an entry the blocks forget to write shows up instead of stale
        # right answers
        poison = [np.full(n + k, np.nan) for n in (5 * 16 * 23 * 19, budget // 8) for k in range(3)]
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


@st.composite
def strip_geometry(draw):
    """Stride-1 geometries row strips apply to: any row padding, column padding up to "same"."""
    kh, kw, dh, dw = (draw(st.integers(1, 3)) for _ in range(4))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, dw * (kw - 1) // 2))
    H = draw(st.integers(max(1, (kh - 1) * dh - 2 * ph + 1), 9))
    W = draw(st.integers(max(1, (kw - 1) * dw - 2 * pw + 1), 9))
    return (draw(st.integers(1, 3)), draw(st.integers(1, 4)), H, W), (kh, kw), (ph, pw), (dh, dw)


def forced_use(taken):
    """A ``_use_row_strips`` that takes row strips wherever they apply (any channel count,
    any map), recording its answers in ``taken``."""
    def use(x_shape, w_shape, stride, padding, dilation, groups, output_size):
        taken.append(groups == 1 and RS.applies(x_shape, tuple(w_shape[2:]), stride, padding, dilation,
                                                output_size))
        return taken[-1]
    return use


@settings(max_examples=60, deadline=None)
@given(strip_geometry(), st.integers(1, 4), st.booleans(), st.sampled_from([1, 2, 5, 1 << 20]),
       st.integers(0, 2**31 - 1), st.booleans())
# a shift past a whole row: W = 1, padding 2, taps at -2, 0, +2 (all but the middle read zeros)
@example(((2, 2, 3, 1), (1, 3), (0, 2), (1, 2)), 2, True, 1, 0, True)
def test_row_strips_match_pytorch_on_drawn_geometries(g, c_out, bias, budget_rows, seed, in_place):
    # blocks from one output row (plus the rows the kernel reaches) to the whole batch
    torch = pytest.importorskip("torch")
    shape, k, p, d = g
    rng = np.random.default_rng(seed)
    x0, w0 = rng.standard_normal(shape), rng.standard_normal((c_out, shape[1]) + k)
    b0 = rng.standard_normal(c_out) if bias else None
    taken = []
    row = shape[1] * k[1] * shape[3] * 8
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv_module, "_use_row_strips", forced_use(taken))
        mp.setattr(conv_module, "_use_pointwise", lambda *a: False)
        mp.setattr(conv_module, "_row_strips_in_place", lambda c: in_place)
        mp.setattr(conv_module, "_ROW_STRIP_BYTES", row * ((k[0] - 1) * d[0] + budget_rows))
        x, w = tn.tensor(x0, requires_grad=True), tn.tensor(w0, requires_grad=True)
        b = None if b0 is None else tn.tensor(b0, requires_grad=True)
        y = F.conv2d(x, w, b, padding=p, dilation=d)
        gy = rng.standard_normal(y.shape)
        y.backward(tn.tensor(gy))
    assert taken[0]
    tx, tw = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    tb = None if b0 is None else torch.tensor(b0, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=p, dilation=d)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        if ours is not None:
            np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("in_place", [True, False], ids=["in-place", "stacked"])
def test_gradcheck_and_gradgradcheck_through_row_strips(in_place, monkeypatch):
    taken = []
    monkeypatch.setattr(conv_module, "_use_row_strips", forced_use(taken))
    monkeypatch.setattr(conv_module, "_row_strips_in_place", lambda c_out: in_place)
    monkeypatch.setattr(conv_module, "_ROW_STRIP_BYTES", 2 * 3 * 4 * 8 * 4)      # bands of 2 rows
    rng = np.random.default_rng(2)
    x = tn.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    w = tn.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = tn.tensor(rng.standard_normal(3), requires_grad=True)
    fn = lambda x_, w_, b_: F.conv2d(x_, w_, b_, padding=1)  # noqa: E731
    assert gradcheck(fn, (x, w, b))
    assert gradgradcheck(fn, (x, w, b))
    assert taken and all(taken)


def test_stacked_kernel_rows_for_up_to_32_channels_with_avx512_gemms_only(monkeypatch):
    """The rule asks which kernels the BLAS runs, not what the CPU has: an AVX-512 CPU
    whose OpenBLAS is held to Haswell kernels takes the AVX2 rule."""
    monkeypatch.setattr(backend, "cpu_has_avx512", lambda: True)
    monkeypatch.setattr(backend, "blas_has_avx512", lambda: True)
    assert [conv_module._row_strips_in_place(c) for c in (3, 16, 32, 33, 64)] == [False] * 3 + [True] * 2
    monkeypatch.setattr(backend, "blas_has_avx512", lambda: False)
    assert all(conv_module._row_strips_in_place(c) for c in (3, 16, 32, 33, 64))


def test_auto_rule_takes_maps_of_29_rows_and_more():
    use = lambda n, c, h, k=3, p=1: conv_module._use_row_strips(  # noqa: E731
        (n, c, h, h), (c, c, k, k), (1, 1), (p, p), (1, 1), 1, (h + 2 * p - k + 1,) * 2)
    assert use(8, 64, 56) and use(4, 16, 224) and use(2, 16, 128) and use(16, 64, 32)
    assert use(1, 16, 32) and use(2, 64, 32) and use(1, 16, 29)     # any batch, any size
    assert not use(1, 16, 28)           # 30 grid rows for 28 output rows: 1.071 > 1.07
    assert not use(16, 128, 16)         # 16x16 maps: 18 grid rows for 16 output rows
    assert not use(16, 256, 8)          # 8x8 maps: 10 grid rows for 8 output rows
    assert not use(8, 64, 56, p=2)      # padded wider than "same"
    assert not use(8, 8, 56)            # few channels: flat rows or im2col


@pytest.mark.parametrize("budget_rows, band", [
    (128, 64),          # room for 126 output rows: two bands of 64, not 126 and a sliver of 2
    (64, 43),           # room for 62: three bands (43, 43, 42), not 62, 62 and 4
    (130, 128),         # the whole image fits in one band
    (3, 1)])            # room for one row: bands of one row
def test_bands_are_evened_out(budget_rows, band):
    per_row = 16 * 3 * 128          # a 16-channel 128-wide image, 3 column shifts
    blk = RS.blocks((2, 16, 128, 128), (3, 3), (1, 1), (1, 1), budget_rows * per_row)
    assert (blk.images, blk.band) == (1, band)
    rows = [r for n0, _, _, r, _ in RS.block_plan(2, blk) if n0 == 0]
    assert sum(rows) == 128 and max(rows) - min(rows) <= 1


@pytest.mark.parametrize("x_shape, budget_rows, span, strip_rows", [
    ((2, 16, 128, 128), 64, 43, 45),        # bands of 43 rows (and 2 rows of reach below)
    ((3, 16, 8, 8), 30, 20, 22),            # two whole 10-row images a block
    ((3, 16, 8, 8), 1000, 30, 32)])         # the whole batch
def test_a_block_spans_its_band_or_its_images(x_shape, budget_rows, span, strip_rows):
    """The strips' buffer and the weight gradient's grid are sized by the block, not by
    whole images: a band needs only its own rows."""
    per_row = x_shape[1] * 3 * x_shape[3]
    blk = RS.blocks(x_shape, (3, 3), (1, 1), (1, 1), budget_rows * per_row)
    assert (blk.span, blk.strip_rows) == (span, strip_rows)
    assert max(s for *_, s in RS.block_plan(x_shape[0], blk)) == blk.span


@pytest.mark.parametrize("which, in_place", [("forward", True), ("forward", False),
                                             ("weight gradient", True)])
def test_row_strip_temporaries_stay_within_the_block_budget(which, in_place, monkeypatch):
    """tracemalloc's peak over one call, less the result: about one block of strips (the
    budget) and a band of the output gradient's grid; the forward's stacked GEMM
    (:func:`tinynet.functional.conv._row_strips_in_place` False, the route of an AVX-512
    BLAS) adds its product, kh output bands, and their sum. Buffers sized for whole images
    (68 grid rows a channel, not 5) took 13-17x the budget here."""
    import tracemalloc
    monkeypatch.setattr(winograd, "_mode", "never")
    monkeypatch.setattr(conv_module, "_row_strips_in_place", lambda C_out: in_place)
    monkeypatch.setattr(conv_module, "_image_columns_first", lambda *a: False)     # row strips
    budget = 64 << 10
    monkeypatch.setattr(conv_module, "_ROW_STRIP_BYTES", budget)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 16, 64, 64)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((1, 16, 64, 64)).astype(np.float32)
    assert conv_module._use_row_strips(x.shape, w.shape, (1, 1), (1, 1), (1, 1), 1, (64, 64))
    geometry = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    if which == "forward":
        call = lambda: conv_module._conv2d_array(x, w, None, output_size=(64, 64), **geometry)
    else:
        call = lambda: conv_module._conv2d_weight_array(x, dy, w.shape, **geometry)
    before = backend._num_threads
    backend.set_num_threads(1)          # one block buffer at a time
    try:
        call()
        tracemalloc.start()
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        backend.set_num_threads(before or backend._usable_cores())
        backend._num_threads = before
    assert peak - result.nbytes <= (2 if in_place else 4) * budget


@settings(max_examples=200)
@given(k=st.integers(1, 4), C=st.integers(1, 2), P=st.integers(1, 6), gap=st.integers(0, 4),
       L=st.integers(1, 40), first=st.integers(-30, 30))
def test_periodic_fill_is_the_window_of_images_and_zeros(k, C, P, gap, L, first):
    """The strips' copy straight from the images: whole periods, a period clipped at
    either end, a window before, after or between the images, each against the
    element-by-element definition (a NaN left anywhere is a column it forgot)."""
    period = P + gap
    images = np.random.default_rng(0).standard_normal((k, C, P))
    expected = np.zeros((C, L))
    for m in range(k):
        for p in range(P):
            if 0 <= first + m * period + p < L:
                expected[:, first + m * period + p] = images[m, :, p]
    strip = np.full((C, L), np.nan)
    RS._periodic_fill(strip, images, first, period)
    np.testing.assert_array_equal(strip, expected)


def test_native_blocks_take_the_smaller_budget(monkeypatch):
    # float32 blocks that run as native jobs plan for 1 MB of strips; float64 (Python
    # chunks) for 3 MB: a 16-channel 128-wide map holds 8x more rows per block at 3 MB
    from tinynet import blas_threads
    monkeypatch.setattr(backend, "_compiled", True)
    shape, w_shape = (2, 16, 128, 128), (16, 16, 3, 3)
    blocks = {dtype: conv_module._row_strip_blocks(np.empty(shape, dtype), w_shape, (1, 1), (1, 1))
              for dtype in (np.float32, np.float64)}
    native = blas_threads.native_gemm(np.empty(1, np.float32)) is not None
    expected32 = RS.blocks(shape, (3, 3), (1, 1), (1, 1), ((1 if native else 3) << 20) // 4)
    assert blocks[np.float32] == expected32
    assert blocks[np.float64] == RS.blocks(shape, (3, 3), (1, 1), (1, 1), (3 << 20) // 8)
    assert RS.blocks(shape, (3, 3), (1, 1), (1, 1), (1 << 20) // 4) != RS.blocks(shape, (3, 3), (1, 1), (1, 1),
                                                                             (3 << 20) // 4)
