"""tinynet.blas_threads: parallel_for's chunks run on OpenBLAS's own worker threads."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinynet as tn
from tinynet import backend, blas_threads, cblas

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

needs_workers = pytest.mark.skipif(not blas_threads.available(),
                                   reason="NumPy's BLAS is not an OpenBLAS whose threads run "
                                          "tinynet's chunks (blas_threads.available() is False)")


@pytest.fixture
def two_threads(monkeypatch, restore_threads):
    monkeypatch.setattr(backend, "parallel_grain", 1)
    tn.set_num_threads(2)


def _thread_names(count=2, **kw):
    """(lo, hi, thread name) of each chunk of a parallel_for whose chunks all run at once."""
    together = threading.Barrier(count, timeout=30)
    seen, lock = [], threading.Lock()

    def work(lo, hi):
        together.wait()
        with lock:
            seen.append((lo, hi, threading.current_thread().name))
    backend.parallel_for(count, work, nbytes=count, **kw)
    return sorted(seen)


def test_numpys_openblas_runs_the_chunks_wherever_tinynet_finds_it():
    """Where tinynet.cblas calls NumPy's OpenBLAS (its wheels), its workers must pass the
    check job; otherwise every test below would be skipped rather than fail."""
    if cblas.library() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS that tinynet.cblas can call")
    assert blas_threads.available()


@needs_workers
def test_chunks_run_on_openblas_workers_not_on_the_python_pool(two_threads, monkeypatch):
    caller = threading.current_thread().name
    (_, _, first), (_, _, second) = _thread_names()
    assert first == caller
    # OpenBLAS's threads were not started by Python: threading names them Dummy-N
    assert second != caller and not second.startswith("tinynet")
    monkeypatch.setattr(backend, "chunks_on_blas_threads", False)
    (_, _, first), (_, _, second) = _thread_names()
    assert first == caller and second.startswith("tinynet")


@needs_workers
def test_more_chunks_than_openblas_threads_go_to_the_python_pool(two_threads):
    tn.set_num_threads(3, blas=2)
    assert blas_threads.threads() == 2
    assert not blas_threads.run(3, 3, lambda lo, hi: None)
    names = [name for _, _, name in _thread_names(3)]
    assert sum(name.startswith("tinynet") for name in names) == 2


@needs_workers
@given(count=st.integers(1, 40), pieces=st.integers(1, 2))
def test_run_covers_the_range_in_chunk_bounds(count, pieces):
    if pieces > blas_threads.threads() or pieces > count:
        assert not blas_threads.run(count, pieces, lambda lo, hi: None)
        return
    seen, lock = [], threading.Lock()

    def work(lo, hi):
        with lock:
            seen.append((lo, hi))
    assert blas_threads.run(count, pieces, work)
    bounds = backend.chunk_bounds(count, pieces)
    assert sorted(seen) == list(zip(bounds[:-1], bounds[1:]))


@given(count=st.integers(1, 10_000), chunks=st.integers(1, 16))
def test_chunk_bounds_cut_the_range_evenly_larger_chunks_first(count, chunks):
    bounds = backend.chunk_bounds(count, chunks)
    sizes = np.diff(bounds)
    assert bounds[0] == 0 and bounds[-1] == count and len(sizes) == chunks
    assert sizes.max() - sizes.min() <= 1 and (np.diff(sizes) <= 0).all()


@needs_workers
def test_a_chunks_error_is_raised_after_all_chunks_finish(two_threads):
    done = []

    def work(lo, hi):
        if lo == 0:
            raise KeyError("first chunk")
        done.append(lo)
    with pytest.raises(KeyError, match="first chunk"):
        blas_threads.run(4, 2, work)
    assert done == [2]


def test_parallel_for_inside_a_chunk_runs_in_place(two_threads):
    inner = []

    def work(lo, hi):
        me = threading.get_ident()
        backend.parallel_for(6, lambda a, b: inner.append((a, b, me == threading.get_ident())),
                             nbytes=6)
    backend.parallel_for(2, work, nbytes=2)
    assert sorted(inner) == [(0, 6, True), (0, 6, True)]


@needs_workers
def test_a_threaded_product_inside_a_chunk_neither_hangs_nor_changes_blas_threads():
    """A product large enough for OpenBLAS's threads, started inside a chunk on its
    workers, would wait for a worker forever: the job sets OpenBLAS to one thread while it
    runs. In a subprocess, so that a hang fails the test instead of the suite."""
    code = """
import numpy as np, tinynet as tn
from tinynet import backend, blas_threads, cblas
tn.set_num_threads(2)
backend.parallel_grain = 1
a = np.random.default_rng(0).standard_normal((300, 300))
out = np.zeros((2, 300, 300))
def work(lo, hi):
    for i in range(lo, hi):
        out[i] = a @ a
backend.parallel_for(2, work, nbytes=2)
assert np.allclose(out[0], a @ a) and np.allclose(out[1], a @ a)
print(blas_threads.threads())
"""
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2"]


@needs_workers
def test_a_mechanism_that_does_not_cover_the_range_is_not_used(monkeypatch):
    """The first use checks the split with one small job: with 4-byte steps (the single
    precision mode) every piece would start at half its index."""
    monkeypatch.setattr(blas_threads, "_binding", None)
    monkeypatch.setattr(blas_threads, "_DOUBLE_REAL", 0x2)
    assert not blas_threads.available()
    assert not blas_threads.run(4, 1, lambda lo, hi: None)


@needs_workers
def test_jobs_from_several_python_threads_at_once_all_finish_correctly():
    """Two Python threads each running many jobs at once (one waits for a worker the other
    holds, or takes the Python pool): every job's result is right and nothing hangs. In a
    subprocess, so that a hang fails the test instead of the suite."""
    code = """
import threading, numpy as np, tinynet as tn
from tinynet import backend, blas_threads
tn.set_num_threads(2)
backend.parallel_grain = 1
errors = []
def worker(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        x = rng.standard_normal(1000)
        out = np.empty_like(x)
        def double(lo, hi):
            np.multiply(x[lo:hi], 2, out=out[lo:hi])
        backend.parallel_for(len(x), double, nbytes=x.nbytes)
        if not np.array_equal(out, 2 * x):
            errors.append(seed)
threads = [threading.Thread(target=worker, args=(s,)) for s in range(3)]
for t in threads: t.start()
for t in threads: t.join()
print(len(errors), blas_threads.threads())
"""
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "2"]


def test_no_cblas_keeps_the_chunks_on_the_python_pool():
    code = """
import threading, tinynet as tn
from tinynet import backend, blas_threads
tn.set_num_threads(2)
backend.parallel_grain = 1
names = []
barrier = threading.Barrier(2, timeout=30)
def work(lo, hi):
    barrier.wait()
    names.append(threading.current_thread().name)
backend.parallel_for(2, work, nbytes=2)
print(blas_threads.available(), sorted(n.startswith("tinynet") for n in names))
"""
    env = dict(os.environ, PYTHONPATH=ROOT, TINYNET_NO_CBLAS="1")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "[False,", "True]"]


def test_a_jobs_pointer_table_holds_each_arrays_data_address():
    """The buffer-protocol address of a writable C-contiguous array, and ``a.ctypes.data``
    for the arrays that lend no writable buffer (read-only, empty, strided): the same
    address either way, in order."""
    base = np.arange(24, dtype=np.float32)
    read_only = np.arange(6, dtype=np.int64)
    read_only.flags.writeable = False
    arrays = [base[4:], base.reshape(4, 6)[:, 1:3], read_only, np.empty(0, np.float32),
              np.zeros((2, 3), np.float64), np.asfortranarray(np.ones((3, 2), np.float32))]
    table = blas_threads.pointers(arrays)
    assert len(table) == len(arrays)
    assert list(table) == [a.ctypes.data for a in arrays]
    assert table[0] == base.ctypes.data + 16
