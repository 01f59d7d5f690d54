"""Row strips' compiled copies and products (tinynet/kernels/compiled/row_strips.py) and
the narrow product (tinynet/kernels/compiled/narrow.py): the strips of a block, the
stacked product's shifted sums, the weight gradients' products (row strips and flat
rows), against the NumPy route, on drawn
geometries (column and row shifts, padding up to "same", dilation, several images a
block, bands of one image), float32 and float64; and a whole stacked row-strip
convolution on both routes. tests/functional/test_conv_row_strip_blocks.py runs the
row-strip convolutions against im2col and PyTorch on whichever route is on."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytest.importorskip("numba")

from tinynet import backend                                 # noqa: E402
from tinynet.functional import conv as conv_module          # noqa: E402
from tinynet.kernels import row_strips as RS                # noqa: E402
from tinynet.kernels.compiled import narrow, row_strips as compiled  # noqa: E402
from tinynet.testing.routes import on_both_routes           # noqa: E402

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)


@pytest.fixture
def spied(monkeypatch):
    """The compiled kernels' calls from Python by name, so a test knows the compiled route
    ran. (Only kernels Python calls: a kernel that compiled code calls must stay the
    compiled function, or its caller cannot compile.)"""
    calls = []
    for name in ("stacked_blocks", "weight_blocks"):
        real = getattr(compiled, name)
        monkeypatch.setattr(compiled, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    before = backend._compiled
    yield calls
    backend._compiled = before


@st.composite
def blocks(draw):
    """A stride-1 geometry row strips apply to, its block plan for a drawn budget, and a
    batch: float32 or float64, C-contiguous or a strided view."""
    kh, kw, dh, dw = (draw(st.integers(1, 3)) for _ in range(4))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, dw * (kw - 1) // 2))
    H = draw(st.integers(max(1, (kh - 1) * dh - 2 * ph + 1), 8))
    W = draw(st.integers(max(1, (kw - 1) * dw - 2 * pw + 1), 8))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = rng.standard_normal((N, C, H, W + 2)).astype(dtype)
    x = x[..., 1:-1] if draw(st.booleans()) else np.ascontiguousarray(x[..., 1:-1])
    budget = C * kw * W * ((kh - 1) * dh + draw(st.sampled_from([1, 2, 5, 1 << 12])))
    blk = RS.blocks(x.shape, (kh, kw), (ph, pw), (dh, dw), budget)
    return x, (kh, kw), (ph, pw), (dh, dw), blk


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blocks())
def test_compiled_strips_equal_the_numpy_route(spied, case):
    spied.clear()                   # one fixture for all of hypothesis's examples
    x, (kh, kw), padding, dilation, blk = case
    N, C, H, W = x.shape

    def every_block():
        out = []
        for n0, k, r0, rows, span in RS.block_plan(N, blk):
            buffer = np.full((C, kw, blk.strip_rows * W + 3), np.nan, x.dtype)     # poisoned
            out.append(RS.strip_block(x[n0:n0 + k], blk, kw, padding, dilation, r0,
                                      span + blk.reach, buffer).copy())
        return out
    real = compiled.strip_block
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(compiled, "strip_block", lambda *a: spied.append("strip_block") or real(*a))
        numpy_strips, compiled_strips = on_both_routes(every_block)
    assert spied.count("strip_block") == len(compiled_strips) > 0
    for a, b in zip(numpy_strips, compiled_strips):
        np.testing.assert_array_equal(b, a)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blocks(), st.integers(1, 4), st.booleans())
def test_stacked_row_strip_conv_on_both_routes(spied, case, c_out, bias):
    """The forward with the kernel rows stacked (strips, one GEMM, the shifted sums and
    the bias; compiled, all of a thread's blocks in one call), the compiled route against
    the NumPy one."""
    spied.clear()
    x, k, padding, dilation, blk = case
    rng = np.random.default_rng(1)
    w = rng.standard_normal((c_out, x.shape[1]) + k).astype(x.dtype)
    b = rng.standard_normal(c_out).astype(x.dtype) if bias else None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv_module, "_row_strips_in_place", lambda c: False)
        mp.setattr(conv_module, "_row_strip_blocks", lambda *a: blk)
        numpy_out, compiled_out = on_both_routes(
            lambda: conv_module._conv2d_row_strips(x, w, b, padding, dilation))
    assert "stacked_blocks" in spied
    tol = dict(rtol=1e-5, atol=1e-5) if x.dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(compiled_out, numpy_out, **tol)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blocks(), st.integers(1, 4))
def test_row_strip_weight_gradient_on_both_routes(spied, case, c_out):
    """The weight gradient (strips, the kh products added into each kernel row's gradient
    by NumPy's GEMM, one compiled call a block), the compiled route against the NumPy one."""
    from tinynet import cblas
    spied.clear()
    x, k, padding, dilation, blk = case
    rng = np.random.default_rng(2)
    Ho = x.shape[2] + 2 * padding[0] - dilation[0] * (k[0] - 1)
    Wo = x.shape[3] + 2 * padding[1] - dilation[1] * (k[1] - 1)
    dy = rng.standard_normal((x.shape[0], c_out, Ho, Wo)).astype(x.dtype)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv_module, "_row_strip_blocks", lambda *a: blk)
        numpy_dw, compiled_dw = on_both_routes(
            lambda: conv_module._conv2d_weight_row_strips(x, dy, (c_out, x.shape[1]) + k, padding,
                                                          dilation))
    if cblas.gemm_address(x.dtype) is not None:
        assert "weight_blocks" in spied
    tol = dict(rtol=1e-5, atol=1e-5) if x.dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(compiled_dw, numpy_dw, **tol)


@pytest.mark.parametrize("c_out", [1, 7, 32, 33, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_gradient_narrow_and_gemm_products(spied, c_out, dtype):
    """Both ways the compiled weight gradient multiplies: the register-blocked narrow
    product up to 32 output channels (and its leftover rows and columns: 7, 1), NumPy's
    GEMM above (33, 40); bands of one image and a group of whole images; against the
    NumPy route."""
    rng = np.random.default_rng(c_out)
    for shape, budget_rows in (((1, 5, 30, 9), 7), ((3, 2, 6, 5), 1 << 12)):
        x = rng.standard_normal(shape).astype(dtype)
        dy = rng.standard_normal((shape[0], c_out) + shape[2:]).astype(dtype)
        blk = RS.blocks(x.shape, (3, 3), (1, 1), (1, 1), shape[1] * 3 * shape[3] * (2 + budget_rows))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(conv_module, "_row_strip_blocks", lambda *a: blk)
            numpy_dw, compiled_dw = on_both_routes(lambda: conv_module._conv2d_weight_row_strips(
                x, dy, (c_out, shape[1], 3, 3), (1, 1), (1, 1)))
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(compiled_dw, numpy_dw, **tol)
    assert spied.count("weight_blocks") >= 2        # a call a thread and case


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 2 * narrow.NARROW_CHUNK + 5),
       st.integers(0, 3), st.integers(0, 3), st.sampled_from([np.float32, np.float64]))
def test_narrow_products_is_the_product(M, N, K, a_offset, b_offset, dtype):
    """``out += a[:, a_offset:+K] @ b[:, b_offset:+K]ᵀ``, every 4x4 block and leftover,
    over one chunk of the inner dimension or several (the last one partial)."""
    rng = np.random.default_rng(M * 100 + N * 10 + K)
    a = rng.standard_normal((M, K + a_offset + 2)).astype(dtype)
    b = rng.standard_normal((N, K + b_offset + 1)).astype(dtype)
    out = rng.standard_normal((M, N)).astype(dtype)
    expected = out.astype(np.float64) + a[:, a_offset:a_offset + K].astype(np.float64) @ \
        b[:, b_offset:b_offset + K].astype(np.float64).T
    narrow.narrow_products(a, a_offset, b, b_offset, K, out)
    tol = dict(rtol=1e-4, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(out, expected, **tol)


@pytest.mark.parametrize("c_out", [5, 32, 33])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_row_weight_gradient_takes_the_narrow_product(c_out, dtype, monkeypatch):
    """The flat-row weight gradient (few input channels, a 64x64 map): one
    ``image_products`` call a chunk up to 32 output channels, the batched GEMMs above;
    against the NumPy route, with chunks of one image."""
    from tinynet.kernels import im2col
    calls = []
    real = narrow.image_products
    monkeypatch.setattr(narrow, "image_products", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(im2col, "batch_chunk", lambda n, nbytes: 1)
    # the Python chunks' route (the native job has its own test below)
    monkeypatch.setattr(conv_module, "_native_image_columns", lambda *a: None)
    rng = np.random.default_rng(c_out)
    x = rng.standard_normal((3, 2, 64, 64)).astype(dtype)
    dy = rng.standard_normal((3, c_out, 64, 64)).astype(dtype)
    assert conv_module._use_flat_rows(x.shape, (c_out, 2, 3, 3), (1, 1), (1, 1), (1, 1), 1, (64, 64))
    numpy_dw, compiled_dw = on_both_routes(lambda: conv_module._conv2d_weight_array(
        x, dy, (c_out, 2, 3, 3), (1, 1), (1, 1), (1, 1), 1))
    assert len(calls) == (3 if c_out <= 32 else 0)
    tol = dict(rtol=1e-4, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(compiled_dw, numpy_dw, **tol)


@pytest.mark.parametrize("shape, budget_rows, padding", [
    ((2, 5, 30, 9), 7, (1, 1)),        # bands of one image's rows, "same"
    ((5, 3, 6, 7), 18, (1, 1)),        # groups of 2 whole images (the last one partial)
    ((3, 4, 11, 9), 4, (1, 0)),        # output rows narrower than the grid's (Wo < W)
])
@pytest.mark.parametrize("c_out", [6, 40])
def test_native_jobs_equal_the_python_chunks(shape, budget_rows, padding, c_out, native_jobs, monkeypatch):
    """float32 forward and weight gradient as native jobs (stacked_piece, weight_piece:
    each of OpenBLAS's threads runs its image groups without the GIL) against the same
    groups as Python chunks; narrow products (6 output channels) and GEMMs (40)."""
    monkeypatch.setattr(conv_module, "_row_strips_in_place", lambda c: False)
    rng = np.random.default_rng(c_out)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((c_out, shape[1], 3, 3)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    blk = RS.blocks(x.shape, (3, 3), padding, (1, 1), shape[1] * 3 * shape[3] * (2 + budget_rows))
    monkeypatch.setattr(conv_module, "_row_strip_blocks", lambda *a: blk)

    def both():
        y = conv_module._conv2d_row_strips(x, w, b, padding, (1, 1))
        dy = np.ascontiguousarray(np.cos(y))
        return y, conv_module._conv2d_weight_row_strips(x, dy, w.shape, padding, (1, 1))
    native = both()
    assert len(native_jobs) == 2 and min(pieces for pieces, *_ in native_jobs) >= 2
    monkeypatch.setattr(conv_module, "_native_strips",
                        lambda piece, *a: None if piece == "weight_piece" else False)
    chunks = both()
    for got, expected in zip(native, chunks):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("c_out, bias", [(6, True), (6, False), (40, True)])
def test_flat_row_native_jobs_equal_the_python_chunks(c_out, bias, native_jobs, monkeypatch):
    """The flat-row forward and weight gradient (few input channels) as native jobs
    (tinynet/kernels/compiled/flat_rows.py: columns, GEMMs or narrow products per image)
    against the same images as Python chunks; 5 images over the pieces, the bias's ones
    row, narrow products (6 output channels) and GEMMs (40)."""
    rng = np.random.default_rng(c_out)
    x = rng.standard_normal((5, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((c_out, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32) if bias else None
    dy = rng.standard_normal((5, c_out, 9, 8)).astype(np.float32)
    assert conv_module._use_flat_rows(x.shape, w.shape, (1, 1), (1, 1), (1, 1), 1, (9, 8))

    def both():
        return (conv_module._conv2d_array(x, w, b, (1, 1), (1, 1), (1, 1), 1, (9, 8)),
                conv_module._conv2d_weight_array(x, dy, w.shape, (1, 1), (1, 1), (1, 1), 1))
    native = both()
    assert len(native_jobs) == 2 and min(pieces for pieces, *_ in native_jobs) >= 2
    monkeypatch.setattr(conv_module, "_native_image_columns",
                        lambda x, a, out, *rest, **kw: None if out is None else False)
    chunks = both()
    for got, expected in zip(native, chunks):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_hand_checkable_strips():
    """One image 1x2x3, kernel 3 wide, padding 1: the shifts -1, 0, +1 of each row, with a
    zero where a shift crosses the row's edge, and zero rows for the padding above and
    below (grid rows 0 and 3)."""
    x = np.arange(1, 7, dtype=np.float64).reshape(1, 1, 2, 3)
    blk = RS.blocks(x.shape, (3, 3), (1, 1), (1, 1), 1 << 20)
    buffer = np.full((1, 3, 4 * 3), np.nan)
    compiled.strip_block(x, buffer, blk.Hp, 1, 1, 1, 0, 4)
    expected = [[0, 0, 0, 0, 1, 2, 0, 4, 5, 0, 0, 0],
                [0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0],
                [0, 0, 0, 2, 3, 0, 5, 6, 0, 0, 0, 0]]
    np.testing.assert_array_equal(buffer[0], expected)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, padding, dilation", [
    ((5, 16, 9, 8), (16, 3, 3, 3), (1, 1), (1, 1)),       # conv2's input gradient: 16 -> 3
    ((3, 4, 7, 10), (4, 6, 3, 5), (2, 2), (2, 1)),        # dilated rows, a 3x5 kernel
])
def test_flat_row_input_gradient_native_job_equals_the_python_chunks(x_shape, w_shape, padding, dilation,
                                                                    bias, native_jobs, monkeypatch):
    """The flat-row transposed conv (the input gradient of a flat-row conv) as a native
    job (flat_rows.input_piece: per image a GEMM with W read transposed, then the
    compiled adjoint of the columns with the bias) against the same images as Python
    chunks and PyTorch; float64 keeps the chunks."""
    size = x_shape[2:]
    assert conv_module._use_flat_rows((x_shape[0], w_shape[1]) + size, (w_shape[1], w_shape[0]) + w_shape[2:],
                                      (1, 1), padding, dilation, 1, size)
    rng = np.random.default_rng(x_shape[1])
    from tinynet.kernels.compiled import flat_rows as compiled_flat
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal(w_shape).astype(dtype)
        b = rng.standard_normal(w_shape[1]).astype(dtype) if bias else None
        native_jobs.clear()
        native = conv_module._conv_transpose2d_array(x, w, b, (1, 1), padding, dilation, 1, size)
        assert [address for _, address, _ in native_jobs] == (
            [compiled_flat.input_piece.address] if dtype == np.float32 else [])
        with monkeypatch.context() as m:
            m.setattr(conv_module, "_native_flat_input_grad", lambda *a: False)
            chunks = conv_module._conv_transpose2d_array(x, w, b, (1, 1), padding, dilation, 1, size)
        np.testing.assert_allclose(native, chunks, rtol=1e-5, atol=1e-4)
        torch = pytest.importorskip("torch")
        expected = torch.nn.functional.conv_transpose2d(
            torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b), padding=padding,
            dilation=dilation)
        np.testing.assert_allclose(native, expected.numpy(), rtol=1e-4, atol=1e-4)
