"""Compiled kernels as native OpenBLAS pieces (tinynet/kernels/compiled/pieces.py,
tinynet.blas_threads.run_native): the same values as the kernel run over the whole
range, in every layout and dtype, on drawn lengths and piece counts; parallel_for takes
them only where they can run, and the activations' chunked passes and the large sums
(Add) use them."""
import ctypes

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("numba")

import tinynet as tn
import tinynet.functional as F
from tinynet import backend, blas_threads
from tinynet.functional import activation
from tinynet.functional import elementwise
from tinynet.kernels.compiled import pieces

pytestmark = [pytest.mark.compiled_kernels,
              pytest.mark.skipif(not blas_threads.available(),
                                 reason="NumPy's BLAS is not an OpenBLAS whose threads run "
                                        "tinynet's chunks (blas_threads.available() is False)")]


def _operands(name, dtype, n, scalar, rng):
    """The kernel's operands in its layout: arrays (NaN and ±0 among the values), boolean
    masks, and the scalar as the callers pass it (float64 in "asa", the arrays' dtype in
    "aasa" and "absa")."""
    layout = pieces.LAYOUTS[name]
    arrays, operands = [], []
    for kind in layout:
        if kind == "a":
            a = (rng.standard_normal(n) * 3).astype(dtype)
            a[rng.random(n) < 0.05] = np.nan
            a[rng.random(n) < 0.05] = -0.0
            arrays.append(a)
            operands.append(a)
        elif kind == "b":
            mask = rng.random(n) < 0.7
            arrays.append(mask)
            operands.append(mask)
        else:
            operands.append(scalar if layout == "asa" else np.dtype(dtype).type(scalar))
    return arrays, operands


@settings(deadline=None, max_examples=60)
@given(name=st.sampled_from(sorted(pieces.LAYOUTS)), dtype=st.sampled_from(["float32", "float64"]),
       n=st.integers(2, 5000), count=st.integers(1, 2), scalar=st.sampled_from([1.0, 0.5, 2.0, 0.0]),
       seed=st.integers(0, 2 ** 16))
def test_native_pieces_give_the_kernels_values(name, dtype, n, count, scalar, seed):
    rng = np.random.default_rng(seed)
    arrays, operands = _operands(name, dtype, n, scalar, rng)
    expected = [a.copy() for a in arrays]
    by_kernel = iter(expected)
    pieces.kernel(name)(*[next(by_kernel) if hasattr(o, "ndim") and o.ndim else o
                          for o in operands], 0, n)
    pointers = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
    assert blas_threads.run_native(n, min(count, blas_threads.threads()), pieces.piece(name, dtype),
                                   pointers, float(scalar))
    for got, want in zip(arrays, expected):
        np.testing.assert_array_equal(got, want)


def test_run_native_refuses_what_it_cannot_run():
    """More pieces than values, than OpenBLAS's threads, or none: nothing runs."""
    x = np.ones(4, np.float32)
    pointers = (ctypes.c_void_p * 2)(x.ctypes.data, x.ctypes.data)
    address = pieces.piece("relu_forward", "float32")
    assert not blas_threads.run_native(1, 2, address, pointers)
    assert not blas_threads.run_native(4, blas_threads.threads() + 1, address, pointers)
    assert not blas_threads.run_native(4, 0, address, pointers)


@pytest.fixture
def chunked(monkeypatch, restore_threads):
    """Every parallel_for job in two chunks, compiled passes from the first value."""
    monkeypatch.setattr(backend, "parallel_grain", 1)
    monkeypatch.setattr(backend, "_compiled", True)
    monkeypatch.setattr(activation, "_COMPILED_MIN_SIZE", 0)
    monkeypatch.setattr(activation, "_COMPILED_ELU_FORWARD_MIN_SIZE", 0)
    monkeypatch.setattr(activation, "_COMPILED_SIGMOID_FORWARD_MIN_SIZE", 0)
    monkeypatch.setattr(elementwise, "_ADD_COMPILED_MIN_SIZE", 0)
    tn.set_num_threads(2)


def _spy(monkeypatch):
    calls = []
    real = blas_threads.run_native

    def run_native(*args):
        calls.append(args[:2])
        return real(*args)
    monkeypatch.setattr(blas_threads, "run_native", run_native)
    return calls


@pytest.mark.parametrize("op", ["relu", "elu", "sigmoid"])
def test_chunked_activations_run_as_native_pieces_with_the_one_thread_values(op, chunked, monkeypatch):
    if blas_threads.threads() < 2:
        pytest.skip("OpenBLAS runs on one thread here: no job has a second piece")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 7, 11)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)

    def run():
        xt = tn.tensor(x, requires_grad=True)
        y = getattr(F, op)(xt)
        y.backward(tn.tensor(g))
        return y.detach().numpy(), xt.grad.numpy()
    calls = _spy(monkeypatch)
    y, dx = run()
    assert calls and all(pieces == 2 for _, pieces in calls), calls
    monkeypatch.setattr(blas_threads, "run_native", lambda *a: False)     # Python pieces
    y_py, dx_py = run()
    tn.set_num_threads(1)
    y_one, dx_one = run()
    for a, b in [(y, y_one), (dx, dx_one), (y_py, y_one), (dx_py, dx_one)]:
        np.testing.assert_array_equal(a, b)


def test_a_job_inside_a_chunk_runs_in_place_not_as_native_pieces(chunked, monkeypatch):
    """A pass started from inside a parallel_for chunk runs in that chunk's thread: the
    workers are busy with the outer job, so it must not start another."""
    calls = _spy(monkeypatch)
    x = np.random.default_rng(1).standard_normal(64).astype(np.float32)
    out = np.empty_like(x)

    def outer(lo, hi):
        if lo == 0:
            activation._compiled_pass("relu_forward", x, out)
    backend.parallel_for(2, outer, nbytes=2)
    assert calls == []
    np.testing.assert_array_equal(out, np.where(x > 0, x, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_sum_of_two_arrays_runs_as_native_pieces_with_numpys_values(dtype, chunked, monkeypatch):
    """Add of two float arrays of one shape: the compiled pass in two native pieces, the
    values of NumPy's a + b bit for bit (NaN, ±0 and ±inf among them); a broadcast, an
    integer dtype or a non-contiguous operand keep NumPy's a + b."""
    if blas_threads.threads() < 2:
        pytest.skip("OpenBLAS runs on one thread here: no job has a second piece")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 5, 7, 11)).astype(dtype)
    b = rng.standard_normal(a.shape).astype(dtype)
    a.flat[:4] = [np.nan, -0.0, np.inf, np.inf]
    b.flat[:4] = [1.0, -0.0, -np.inf, 1.0]
    calls = _spy(monkeypatch)
    y = (tn.tensor(a) + tn.tensor(b)).numpy()
    assert calls == [(a.size, 2)]
    np.testing.assert_array_equal(y, a + b)
    assert np.signbit(y.flat[1])
    calls.clear()
    for x, z in [(a, b[0]), (a.astype(np.int64), b.astype(np.int64))]:
        np.testing.assert_array_equal((tn.tensor(x) + tn.tensor(z)).numpy(), x + z)
    turned = tn.tensor(a).permute(3, 2, 1, 0)
    assert not turned.data.flags.c_contiguous
    np.testing.assert_array_equal((turned + tn.tensor(b).permute(3, 2, 1, 0)).numpy(),
                                  a.transpose(3, 2, 1, 0) + b.transpose(3, 2, 1, 0))
    assert calls == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_runs_as_native_pieces_with_numpys_values(dtype, chunked, monkeypatch):
    """Dropout's forward and backward with a mask of the input's shape: the compiled pass
    in two native pieces, the values of NumPy's x * keep * scale bit for bit (NaN, ±inf,
    -0 among the dropped and the kept); a broadcast mask (dropout2d) keeps NumPy's route."""
    if blas_threads.threads() < 2:
        pytest.skip("OpenBLAS runs on one thread here: no job has a second piece")
    from tinynet.functional.dropout import Dropout
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 7, 11)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    keep = rng.random(x.shape) < 0.6
    x.flat[:6] = [np.nan, np.inf, -1.0, np.nan, -np.inf, -1.0]
    keep.flat[:6] = [False, False, False, True, True, True]
    scale = 1 / 0.6
    calls = _spy(monkeypatch)
    xt = tn.tensor(x, requires_grad=True)
    y = Dropout.apply(xt, keep=keep, scale=scale)
    y.backward(tn.tensor(g))
    assert calls == [(x.size, 2), (x.size, 2)]
    for got, source in [(y.detach().numpy(), x), (xt.grad.numpy(), g)]:
        want = source * keep
        want *= dtype(scale)
        np.testing.assert_array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))
    calls.clear()
    plane = rng.random((3, 5, 1, 1)) < 0.5
    z = Dropout.apply(tn.tensor(x), keep=plane, scale=scale).numpy()
    want = x * plane
    want *= dtype(scale)
    np.testing.assert_array_equal(z, want)
    assert calls == []


def test_small_sums_stay_on_numpys_route(monkeypatch):
    """Below _ADD_COMPILED_MIN_SIZE values Add is NumPy's a + b (no compiled pass)."""
    monkeypatch.setattr(backend, "_compiled", True)
    passes = []
    monkeypatch.setattr(activation, "_compiled_pass", lambda *a: passes.append(a[0]))
    small = np.ones(elementwise._ADD_COMPILED_MIN_SIZE - 1, np.float32)
    np.testing.assert_array_equal((tn.tensor(small) + tn.tensor(small)).numpy(), small * 2)
    assert passes == []
    large = np.ones(elementwise._ADD_COMPILED_MIN_SIZE, np.float32)
    tn.tensor(large) + tn.tensor(large)
    assert passes == ["add_forward"]
