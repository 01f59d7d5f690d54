"""The LSTM's time loop as one native job (tinynet.kernels.compiled.lstm_loop) and the
pieces it is built from (tinynet.kernels.compiled.native).

The job must give what the Python-driven loop of the same compiled steps gives, for every
number of pieces (threads) from one to OpenBLAS's thread count, including more pieces
than some of them have hidden units to own; the barrier must hold every piece at a step
until all have finished it; a BLAS call from compiled code must be the product NumPy
computes. test_lstm_compiled.py compares both loops with the NumPy route and PyTorch.
"""
import ctypes

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytest.importorskip("numba")

from tinynet import backend, blas_threads, cblas  # noqa: E402
from tinynet.kernels import lstm as lk  # noqa: E402

pytestmark = [pytest.mark.compiled_kernels,     # CPU only (tests/conftest.py)
              pytest.mark.skipif(not (blas_threads.available() and cblas.gemm_address(np.float32)),
                                 reason="NumPy's OpenBLAS cannot run native pieces here")]


@pytest.fixture(autouse=True)
def compiled_route():
    before = backend._compiled
    backend.set_compiled(True)
    yield
    backend._compiled = before


@pytest.fixture
def jobs(monkeypatch):
    """The piece counts of the native jobs that ran."""
    ran = []
    run_native = blas_threads.run_native

    def spy(count, pieces, *rest):
        ok = run_native(count, pieces, *rest)
        if ok:
            ran.append(pieces)
        return ok
    monkeypatch.setattr(blas_threads, "run_native", spy)
    return ran


@st.composite
def layers(draw):
    """A float32 layer without a mask (its x C-contiguous or strided), its incoming
    gradients, and a piece count."""
    T, B = draw(st.integers(1, 7)), draw(st.integers(1, 6))
    I, H = draw(st.integers(1, 6)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def arr(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    state = draw(st.booleans())
    bias = draw(st.booleans())
    x = arr(T, B, I)
    if draw(st.booleans()):     # a strided x (batch-first data): the job makes no layouts
        x = np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2)
    case = dict(x=x, h0=arr(B, H) if state else np.zeros((B, H), np.float32),
                c0=arr(B, H) if state else np.zeros((B, H), np.float32),
                w_ih=arr(4 * H, I, scale=0.7), w_hh=arr(4 * H, H, scale=0.7),
                b_ih=arr(4 * H) if bias else None, b_hh=arr(4 * H) if bias else None,
                reverse=draw(st.booleans()))
    grads = dict(dy=arr(T, B, H) if draw(st.booleans()) else None,
                 dh_n=arr(B, H) if draw(st.booleans()) else None,
                 dc_n=arr(B, H) if draw(st.booleans()) else None)
    return case, grads, draw(st.integers(1, max(1, blas_threads.threads())))


def layer(case, grads):
    y, h_n, c_n, saved = lk.lstm_layer_forward(**case)
    return (y, h_n, c_n) + lk.lstm_layer_backward(saved, **grads)


NAMES = ["y", "h_n", "c_n", "dx", "dh0", "dc0", "dw_ih", "dw_hh", "db"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers())
def test_native_loop_matches_the_python_loop(jobs, monkeypatch, case_grads_pieces):
    """Every output and gradient, the native job (in ``pieces`` pieces, at most one a
    hidden unit) against the Python loop of the same compiled steps."""
    case, grads, pieces = case_grads_pieces
    H = case["w_hh"].shape[1]
    jobs.clear()
    found = lk._native_pieces
    expected_pieces = min(pieces, found(H, np.ascontiguousarray(case["x"])))   # one a hidden unit, a core at most
    # the job first: its buffers must not be the Python loop's, freed and handed back
    # with the same values in them
    with monkeypatch.context() as m:
        m.setattr(lk, "_native_pieces", lambda H, *arrays: min(pieces, found(H, *arrays)))
        got = layer(case, grads)
    assert jobs == [expected_pieces] * 2                # the forward's job and the backward's
    with monkeypatch.context() as m:
        m.setattr(lk, "_native_pieces", lambda H, *arrays: 0)
        expected = layer(case, grads)
    for name, a, b in zip(NAMES, expected, got):
        assert b.dtype == np.float32 and b.shape == a.shape, name
        np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-6, err_msg=name)


def test_every_piece_count_up_to_the_threads_on_one_layer(jobs):
    """The benchmark's layer (B32, 64->128, 12 steps), one native job a direction for each
    piece count it may take, all equal to the Python loop's results."""
    rng = np.random.default_rng(5)
    T, B, I, H = 12, 32, 64, 128
    case = dict(x=rng.standard_normal((T, B, I)).astype(np.float32),
                h0=np.zeros((B, H), np.float32), c0=np.zeros((B, H), np.float32),
                w_ih=(0.1 * rng.standard_normal((4 * H, I))).astype(np.float32),
                w_hh=(0.1 * rng.standard_normal((4 * H, H))).astype(np.float32),
                b_ih=(0.1 * rng.standard_normal(4 * H)).astype(np.float32), b_hh=None,
                reverse=False)
    grads = dict(dy=rng.standard_normal((T, B, H)).astype(np.float32), dh_n=None, dc_n=None)
    native = lk._native_pieces
    lk._native_pieces = lambda H, *arrays: 0
    try:
        expected = layer(case, grads)
        for pieces in range(1, native(H, case["x"]) + 1):
            lk._native_pieces = lambda H, *arrays: min(pieces, native(H, *arrays))
            jobs.clear()
            got = layer(case, grads)
            assert jobs == [pieces, pieces]
            for name, a, b in zip(NAMES, expected, got):
                np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-6, err_msg=f"{pieces}: {name}")
    finally:
        lk._native_pieces = native


@pytest.mark.parametrize("kind", ["mask", "float64"])
def test_masked_or_float64_layers_keep_the_python_loop(kind, jobs):
    """A padded batch (the mask's carries) and float64 (the forward's gate math is
    float32) run no native job."""
    dtype = np.float64 if kind == "float64" else np.float32
    rng = np.random.default_rng(0)
    T, B, I, H = 4, 3, 2, 5
    mask = lk.length_mask([4, 2, 1], T, np) if kind == "mask" else None
    y, h_n, c_n, saved = lk.lstm_layer_forward(
        rng.standard_normal((T, B, I)).astype(dtype), np.zeros((B, H), dtype),
        np.zeros((B, H), dtype), rng.standard_normal((4 * H, I)).astype(dtype),
        rng.standard_normal((4 * H, H)).astype(dtype), mask=mask)
    lk.lstm_layer_backward(saved, np.ones_like(y))
    assert jobs == []


def test_no_more_pieces_than_usable_cores(monkeypatch):
    """Pieces wait for each other at every step, so all must be running: at most one a
    core this process may use, whatever OpenBLAS's thread count."""
    a = np.zeros((4, 3), np.float32)
    monkeypatch.setattr(backend, "_cores", 1)
    assert lk._native_pieces(64, a) == 1


def test_native_pieces_asks_for_float32_contiguous_arrays():
    a = np.zeros((4, 3), np.float32)
    assert lk._native_pieces(7, a, a) == min(blas_threads.threads(), 7, backend._usable_cores())
    assert lk._native_pieces(1, a) == 1                     # no more pieces than hidden units
    assert lk._native_pieces(7, a, a.astype(np.float64)) == 0
    assert lk._native_pieces(7, a, np.zeros((3, 4), np.float32).T) == 0


# --- the native building blocks -------------------------------------------------------

def _barrier_job():
    """A native job: each piece runs ``steps`` steps; in step s it first works for a while
    (piece k longer on steps where s % pieces == k, so the pieces drift apart), then
    publishes s in its slot, passes the barrier and reads every slot: each must hold s or
    s + 1 (a piece cannot pass the next barrier before this one publishes s + 1). Wrong
    reads are counted per piece."""
    import numba
    from numba import types
    from tinynet.kernels.compiled.native import address_to_pointer, barrier

    signature = types.void(types.intp, types.intp, types.intp, types.float64, types.uintp,
                           types.intp, types.CPointer(types.intp), types.intp, types.voidptr,
                           types.intp, types.voidptr)

    @numba.cfunc(signature, nopython=True, nogil=True)
    def piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
        k = a // 8
        p = numba.carray(address_to_pointer(b[0], numba.int64), (2,))
        steps, yield_function = p[0], p[1]
        slots = numba.carray(address_to_pointer(b[1], numba.int64), (pieces,))
        wrong = numba.carray(address_to_pointer(b[2], numba.int64), (pieces,))
        work = numba.carray(address_to_pointer(b[3], numba.float64), (pieces,))
        flags = address_to_pointer(b[4], numba.int64)
        for s in range(1, steps + 1):
            spin = 20000 if s % pieces == k else 10
            for i in range(spin):
                work[k] += 1e-9 * i
            slots[k] = s
            barrier(flags, pieces, k, s, yield_function)
            for m in range(pieces):
                v = slots[m]
                if v < s or v > s + 1:
                    wrong[k] += 1
    return piece


def run_barrier_job(pieces, steps=300):
    from tinynet.kernels.compiled import native
    piece = _barrier_job()
    params = np.array([steps, native.yield_address()], np.int64)
    slots, wrong = np.zeros(pieces, np.int64), np.zeros(pieces, np.int64)
    work, flags = np.zeros(pieces), native.new_flags(pieces)
    arrays = [params, slots, wrong, work, flags]
    table = (ctypes.c_ssize_t * len(arrays))(*[a.ctypes.data for a in arrays])
    assert blas_threads.run_native(pieces, pieces, piece.address, table)
    return slots, wrong


def test_barrier_holds_every_piece_at_each_step():
    pieces = blas_threads.threads()
    if pieces < 2:
        pytest.skip("OpenBLAS runs one thread here: a barrier of one piece waits for nobody")
    slots, wrong = run_barrier_job(pieces)
    np.testing.assert_array_equal(slots, 300)
    np.testing.assert_array_equal(wrong, 0)


def test_gemm_from_compiled_code_is_numpys_product():
    """``lstm_loop._gemm`` through the BLAS's address, on sub-blocks with leading
    dimensions wider than the block (as the loop passes them), against NumPy."""
    from tinynet.kernels.compiled.lstm_loop import _gemm
    address, bits = cblas.gemm_address(np.float32)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((9, 11)).astype(np.float32)
    b = rng.standard_normal((7, 6)).astype(np.float32)
    c = np.full((8, 10), 7.0, np.float32)
    # C[1:6, 2:6] = A[2:7, 3:10] @ B[0:7, 1:5]
    m, n, k = 5, 4, 7
    _gemm(address, bits == 64, m, n, k, a.ctypes.data + 4 * (2 * 11 + 3), 11,
          b.ctypes.data + 4 * 1, 6, c.ctypes.data + 4 * (1 * 10 + 2), 10)
    expected = np.full((8, 10), 7.0, np.float32)
    expected[1:6, 2:6] = a[2:7, 3:10] @ b[0:7, 1:5]
    np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-6)
