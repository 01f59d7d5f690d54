"""Devices, the CUDA-missing errors, device moves and the backend primitives."""
import sys
import types

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinynet as tn
from tinynet import backend

GPU = backend.is_cuda_available()
needs_no_gpu = pytest.mark.skipif(GPU, reason="simulates a machine without CUDA; this one has a GPU")
needs_gpu = pytest.mark.skipif(not GPU, reason=f"needs a GPU: {backend.cuda_unavailable_reason()}")


def test_device_parsing():
    assert str(tn.device("cpu")) == "cpu"
    assert str(tn.device("cuda")) == "cuda:0"
    assert str(tn.device("CUDA:1")) == "cuda:1"
    assert tn.device("cuda:0") == "cuda"
    assert tn.device("cpu") != "cuda"
    assert repr(tn.device("cuda:2")) == "device(type='cuda', index=2)"


@pytest.mark.parametrize("spec", ["tpu", "cuda:x", "cpu:0", "", "cuda:-1"])
def test_unknown_device_string_is_value_error(spec):
    with pytest.raises(ValueError, match="device: unknown device"):
        tn.device(spec)
    with pytest.raises(ValueError, match="unknown device"):
        tn.zeros(2, device=spec)


def test_device_of_wrong_type_is_type_error():
    with pytest.raises(TypeError, match="device: expected a string"):
        tn.device(3)


def test_cpu_tensors_report_cpu():
    t = tn.tensor([1.0], device="cpu")
    assert t.device == "cpu" and t.device.type == "cpu"
    assert t.cpu() is t


@pytest.fixture
def no_cuda_state(monkeypatch):
    """Forgets what the backend learnt about CUDA, so the next request probes again."""
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_error", None)
    return monkeypatch


@needs_no_gpu
def test_cuda_without_cupy_is_runtime_error_naming_cupy(no_cuda_state):
    no_cuda_state.setitem(sys.modules, "cupy", None)     # makes `import cupy` fail
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        tn.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        tn.tensor([1.0]).to("cuda")
    assert not backend.is_cuda_available()
    assert "CuPy is not installed" in backend.cuda_unavailable_reason()


@needs_no_gpu
def test_cuda_with_cupy_but_no_gpu_is_runtime_error_naming_the_driver_error(no_cuda_state):
    class CUDARuntimeError(RuntimeError):
        pass

    def no_driver():
        raise CUDARuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_driver))
    no_cuda_state.setitem(sys.modules, "cupy", fake)
    before = tn.get_default_device()
    with pytest.raises(RuntimeError, match="CuPy found no usable GPU: CUDARuntimeError: cudaErrorInsufficientDriver"):
        tn.set_default_device("cuda")
    assert tn.get_default_device() == before      # a failed switch leaves the default alone


@needs_no_gpu
def test_cuda_with_zero_devices(no_cuda_state):
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 0))
    no_cuda_state.setitem(sys.modules, "cupy", fake)
    with pytest.raises(RuntimeError, match="no usable GPU"):
        tn.ones(1, device="cuda:0")


def test_get_array_module_on_cpu_is_numpy():
    assert backend.get_array_module(np.zeros(1)) is np
    assert backend.get_array_module() is np


def test_scatter_add_accumulates_repeated_indices():
    t = tn.zeros(4, dtype=tn.float64)
    xp = t.xp
    target = t.data
    backend.scatter_add(target, xp.asarray([0, 2, 0]), xp.asarray([1.0, 2.0, 3.0]))
    assert backend.asnumpy(target).tolist() == [4.0, 0.0, 2.0, 0.0]


def test_as_strided_and_sliding_window_view():
    x = np.arange(6.0)
    w = backend.sliding_window_view(x, 3)
    assert w.shape == (4, 3) and w[1].tolist() == [1.0, 2.0, 3.0]
    s = backend.as_strided(x, (3, 2), (16, 8))
    assert s.tolist() == [[0, 1], [2, 3], [4, 5]]
    assert not s.flags.writeable and np.shares_memory(s, x)
    odd = x[1::2]                                   # not contiguous: the general route
    assert backend.as_strided(odd, (2,), (16,)).tolist() == [1.0, 3.0]
    with pytest.raises(ValueError):                 # a contiguous array's view stays inside it
        backend.as_strided(x, (4, 2), (16, 8))
    copy = backend.ElementwiseKernelSource("T x", "T y", "y = x", "copy")
    assert backend.elementwise_kernel(copy, np) is None      # NumPy callers take their fallback


def test_to_device_cpu_roundtrip():
    a = np.arange(3.0)
    assert backend.to_device(a, "cpu") is a
    assert backend.asnumpy(a) is a


# ----------------------------------------------------------------- with a GPU
@needs_gpu
def test_move_to_gpu_and_back_is_differentiable():
    x = tn.tensor(np.array([1.0, 2.0]), device="cpu", requires_grad=True)
    y = x.cuda()
    assert y.device == "cuda:0"
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    assert x.grad.numpy().tolist() == [2.0, 4.0]


@needs_gpu
def test_mixing_devices_in_one_op_is_value_error_naming_op_and_devices():
    a = tn.ones(2, device="cpu")
    b = tn.ones(2, device="cuda")
    with pytest.raises(ValueError, match=r"add: .*cpu.*cuda:0|add: .*cuda:0.*cpu"):
        a + b
    with pytest.raises(ValueError, match=r"linear: 'input' is on cpu but 'weight' is on cuda:0"):
        tn.functional.linear(tn.ones(2, 3, device="cpu"), tn.ones(4, 3, device="cuda"))


@pytest.mark.parametrize("simd_expm1", [False, True], ids=["tanh-form", "numpy-expm1"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_expm1_of_nonpositive_is_within_4_ulp(dtype, simd_expm1, monkeypatch):
    """Both routes, whichever this CPU takes: would fail if the half-angle form lost a
    factor (2t / (1 - t)), if a route skipped the clamp to x <= 0 (3.0 gives 0), or
    if either wrote a NaN input as a number."""
    monkeypatch.setattr(backend, "numpy_has_simd_loop", lambda name, dtype: simd_expm1)
    x = np.concatenate([-np.logspace(-12, 2, 20001), [0.0, -np.inf, 3.0]]).astype(dtype)
    got = backend.asnumpy(backend.expm1_of_nonpositive(tn.tensor(x).data))
    exact = np.expm1(np.minimum(x.astype(np.float64), 0.0))
    ulp = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    assert got.dtype == dtype
    assert np.all(np.abs(got - exact) <= 4 * ulp), np.max(np.abs(got - exact) / ulp)
    nan = backend.expm1_of_nonpositive(tn.tensor(np.array([np.nan], dtype)).data)
    assert np.isnan(backend.asnumpy(nan)).all()


@pytest.mark.parametrize("simd_log1p", [False, True], ids=["goldberg", "numpy-log1p"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log1p_is_within_4_5_ulp(dtype, simd_log1p, monkeypatch):
    """Both routes: would fail if Goldberg's form dropped its scale x / d (1 + x rounded:
    up to 2^24 ulp off for tiny x), if it lost x where 1 + x rounds to 1 (0 / 0), if it
    overflowed on large x (the product before the division), or mishandled -1, +inf, NaN
    or the sign of -0."""
    monkeypatch.setattr(backend, "numpy_has_simd_loop", lambda name, dtype: simd_log1p)
    rng = np.random.default_rng(0)
    magnitudes = np.logspace(-30, 0, 20001)
    x = np.concatenate([rng.uniform(-1, 1, 20001), magnitudes, -magnitudes[:-1], [3e38, 1e20, 7.5]])
    x = x.astype(dtype)
    got = backend.asnumpy(backend.log1p(tn.tensor(x).data))
    exact = np.log1p(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    assert got.dtype == dtype
    assert np.all(np.abs(got - exact) <= 4.5 * ulp), np.max(np.abs(got - exact) / ulp)
    specials = np.array([-1.0, -0.0, np.inf, np.nan, -2.0], dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        got = backend.asnumpy(backend.log1p(tn.tensor(specials).data))
    np.testing.assert_array_equal(got, [-np.inf, -0.0, np.inf, np.nan, np.nan])
    assert np.signbit(got[1])
    zero_d = backend.asnumpy(backend.log1p(tn.tensor(np.array(0.5, dtype)).data))  # a 0-d array
    assert zero_d.shape == () and abs(zero_d - np.log1p(0.5)) <= 4.5 * np.spacing(dtype(np.log1p(0.5)))


def test_numpy_has_simd_loop_answers_false_where_it_cannot_tell():
    assert backend.numpy_has_simd_loop("no_such_ufunc", np.float32) is False


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 1024 * 5 + 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_minimum_scalar_is_numpys(size, dtype):
    """The row-against-constant-row route (large contiguous float arrays) and its
    remainder give NumPy's values, NaN and infinities included, with or without ``out``;
    strided and integer inputs take NumPy's own call."""
    rng = np.random.default_rng(size)
    x = (rng.standard_normal(size) * 5).astype(dtype)
    if dtype != np.int64 and size > 3:
        x[[0, size // 2, -1]] = [np.nan, np.inf, -np.inf]
    for value in ((0, -1, 2) if dtype == np.int64 else (0, -1.5, 2)):
        expected = np.minimum(x, value)
        np.testing.assert_array_equal(backend.minimum_scalar(x, value), expected)
        out = np.full_like(expected, 7)
        assert backend.minimum_scalar(x, value, out=out) is out
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(backend.minimum_scalar(x[::2], value), expected[::2])


@st.composite
def strided_views(draw, shape, dtype):
    """A view of ``shape`` into a fresh array: axes permuted, each sliced from a drawn
    start with step 1, 2 or -1, whole or not, so that innermost runs are short or long,
    contiguous or not, and merge across axes or not."""
    ndim = len(shape)
    perm = draw(st.permutations(range(ndim)))       # view axis a is base axis perm[a]
    steps = [draw(st.sampled_from([1, 1, 2, -1])) for _ in range(ndim)]
    starts = [draw(st.integers(0, 2)) for _ in range(ndim)]
    spare = [draw(st.sampled_from([0, 2])) for _ in range(ndim)]   # 0: a whole axis (runs merge)
    base_shape = [0] * ndim
    for a in range(ndim):
        base_shape[perm[a]] = starts[a] + abs(steps[a]) * shape[a] + spare[a]
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    base = (rng.standard_normal(base_shape) * 100).astype(dtype)
    index = [None] * ndim
    for a in range(ndim):
        first, n, step = starts[a], shape[a], steps[a]
        index[perm[a]] = (slice(first, first + step * n, step) if step > 0
                          else slice(first + n - 1, first - 1 if first else None, -1))
    return base[tuple(index)].transpose(perm)


@st.composite
def copy_pairs(draw):
    ndim = draw(st.integers(2, 4))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int16]))
    dst = draw(strided_views(shape, dtype))
    if draw(st.booleans()):
        return dst, draw(strided_views(shape, dtype))
    return dst, dst[::-1]                             # overlapping: one buffer, reversed


@given(copy_pairs())
def test_copy_is_numpys_assignment(pair):
    """``backend.copy`` writes exactly what ``dst[...] = src`` writes, for views with
    short or long, contiguous or strided innermost runs, overlapping ones included
    (would fail if a run view took the wrong length or the wrong axes)."""
    dst, src = pair
    assert dst.shape == src.shape
    expected = dst.copy()
    expected[...] = src.copy()
    # the run route and the BLAS transposes for small arrays too
    limits = backend._MIN_RUNS, backend._MIN_TRANSPOSE_BYTES, backend._MIN_TRANSPOSE_RUN
    backend._MIN_RUNS = backend._MIN_TRANSPOSE_BYTES = backend._MIN_TRANSPOSE_RUN = 1
    try:
        assert backend.copy(dst, src) is dst
    finally:
        backend._MIN_RUNS, backend._MIN_TRANSPOSE_BYTES, backend._MIN_TRANSPOSE_RUN = limits
    np.testing.assert_array_equal(dst, expected)


needs_blas_transposes = pytest.mark.skipif(
    not backend.blas_transposes(), reason="no OpenBLAS found for tinynet.cblas: copies stay NumPy's")


@needs_blas_transposes
def test_transposing_copies_go_to_blas_where_it_wins(monkeypatch):
    """Which copies become BLAS transposes, and how many calls each makes: one for a whole
    transpose (NCHW -> HWNC is (N·C, H·W) -> (H·W, N·C)); one more, into a staging array,
    for the inside of a padded buffer; none for small copies, short source rows, other
    dtypes or overlapping arrays; a few from a cropped source outside a parallel chunk and
    none inside one. The values are always NumPy's."""
    from tinynet import cblas
    calls = []
    real = cblas.transpose
    monkeypatch.setattr(cblas, "transpose", lambda *a: calls.append(a[1:3]) or real(*a))

    def check(dst, src, expected_calls):
        calls.clear()
        expected = np.empty_like(dst)
        expected[...] = src
        backend.copy(dst, src)
        np.testing.assert_array_equal(dst, expected)
        assert len(calls) == expected_calls, calls

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16, 16, 16)).astype(np.float32)            # 128 kB
    check(np.empty((16, 16, 8, 16), np.float32), x.transpose(2, 3, 0, 1), 1)
    assert calls == [(128, 256)]                                            # rows N·C, columns H·W
    check(np.empty((16, 16, 16, 8), np.float32), x.transpose(1, 2, 3, 0), 1)
    padded = np.zeros((18, 18, 8, 16), np.float32)
    check(padded[1:17, 1:17], x.transpose(2, 3, 0, 1), 1)                   # staged
    assert not padded[0].any() and not padded[:, 17].any()
    check(np.empty((16, 8, 16, 16), np.float32), x.transpose(1, 0, 2, 3), 0)  # rows stay rows
    check(np.empty((16, 16, 2, 16), np.float32), x[:2].transpose(2, 3, 0, 1), 0)  # 32 kB
    short = rng.standard_normal((64, 128, 8)).astype(np.float32)            # source rows of 8
    check(np.empty((8, 64, 128), np.float32), short.transpose(2, 0, 1), 0)
    check(np.empty((16, 16, 8, 16), np.float64), x.astype(np.float64).transpose(2, 3, 0, 1), 1)
    check(np.empty((16, 16, 8, 16), np.int32), x.astype(np.int32).transpose(2, 3, 0, 1), 0)
    square = rng.standard_normal((256, 256)).astype(np.float32)
    check(square, square.T, 0)                                              # overlapping: NumPy's
    raw = np.zeros(x.nbytes + 1, np.uint8)                                  # float32s off by a byte
    unaligned = raw[1:].view(np.float32).reshape(x.shape)
    unaligned[...] = x
    assert not unaligned.flags.aligned
    check(np.empty((16, 16, 8, 16), np.float32), unaligned.transpose(2, 3, 0, 1), 0)
    wide = rng.standard_normal((8, 16, 8, 40)).astype(np.float32)
    cropped = wide[..., :36].transpose(2, 3, 0, 1)                          # 8 matrices, 128 x 36
    check(np.empty(cropped.shape, np.float32), cropped, 8)
    assert calls == [(128, 36)] * 8
    monkeypatch.setattr(backend._in_chunk, "active", True, raising=False)
    check(np.empty(cropped.shape, np.float32), cropped, 0)
    # asked about an array, only NumPy's take the route (CuPy's copies are CuPy's)
    assert backend.blas_transposes(x) and not backend.blas_transposes(object())


@needs_blas_transposes
def test_a_large_transpose_is_split_by_rows_over_the_threads(monkeypatch):
    from tinynet import cblas
    calls = []
    real = cblas.transpose
    monkeypatch.setattr(cblas, "transpose", lambda *a: calls.append(a[1:3]) or real(*a))
    x = np.random.default_rng(1).standard_normal((1024, 1100)).astype(np.float32)   # 4.3 MB
    monkeypatch.setattr(backend, "_num_threads", 2)
    out = backend.ascontiguous(x.T)
    np.testing.assert_array_equal(out, x.T)
    assert sorted(calls) == [(512, 1100), (512, 1100)]
    calls.clear()
    monkeypatch.setattr(backend, "_num_threads", 1)
    np.testing.assert_array_equal(backend.ascontiguous(x.T), x.T)
    assert calls == [(1024, 1100)]


def test_copy_moves_short_runs_as_void_elements(monkeypatch):
    """The short-run route is taken (im2col's windows of a 16x16 map) and not for long
    runs or a strided innermost axis; either way the values are NumPy's."""
    kinds = []
    real = np.copyto
    monkeypatch.setattr(backend.numpy, "copyto", lambda d, s, **k: kinds.append(d.dtype.kind) or real(d, s, **k))
    buf = np.arange(4 * 8 * 18 * 18, dtype=np.float32).reshape(4, 8, 18, 18)
    window = buf[:, :, 1:17, 2:18]                                  # runs of 16 floats
    out = np.empty((4, 8, 16, 16), np.float32)
    backend.copy(out, window)
    np.testing.assert_array_equal(out, window)
    assert kinds == ["V"]
    kinds.clear()
    backend.copy(np.empty((8, 4, 18, 18), np.float32), buf.transpose(1, 0, 2, 3))  # runs of 324
    backend.copy(np.empty((4, 8, 16, 9), np.float32), buf[:, :, 1:17, ::2])        # strided
    assert kinds == []
    # runs merge across the source's inner axes but not the destination's: rows of 4
    kinds.clear()
    src = np.arange(8 * 16 * 16 * 4, dtype=np.float32).reshape(8, 16, 16, 4)[::2]
    dst = np.zeros((4, 16, 16, 6), np.float32)[..., 1:5]
    backend.copy(dst, src)
    np.testing.assert_array_equal(dst, src)
    assert kinds == ["V"]
    contiguous = backend.ascontiguous(window.transpose(1, 0, 2, 3))
    assert contiguous.flags.c_contiguous and kinds == ["V", "V"]
    np.testing.assert_array_equal(contiguous, window.transpose(1, 0, 2, 3))
