"""tinynet.set_num_threads / get_num_threads, TINYNET_NUM_THREADS, and the chunked pool
(backend.parallel_for, backend.parallel_blocks) that kernels use for NumPy work."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _blas_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    infos = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    if not infos:
        pytest.skip("no BLAS library visible to threadpoolctl")
    return {i["num_threads"] for i in infos}


def test_set_num_threads_sets_the_pool_and_blas(restore_threads):
    tn.set_num_threads(1)
    assert tn.get_num_threads() == 1
    assert _blas_threads() == {1}
    tn.set_num_threads(3)
    assert tn.get_num_threads() == 3
    assert _blas_threads() == {3}


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-2, ValueError), ("2", TypeError),
                                        (True, TypeError), (1.5, TypeError)])
def test_set_num_threads_rejects_non_positive_ints(bad, error, restore_threads):
    with pytest.raises(error, match="set_num_threads: n must be a positive int"):
        tn.set_num_threads(bad)


def test_environment_variable_sets_threads_at_import():
    code = ("import tinynet, threadpoolctl; "
            "print(tinynet.get_num_threads(), sorted({i['num_threads'] for i in "
            "threadpoolctl.threadpool_info() if i['user_api'] == 'blas'}))")
    env = dict(os.environ, TINYNET_NUM_THREADS="1", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "1" and out.stdout.strip().endswith("[1]")
    env["TINYNET_NUM_THREADS"] = "many"
    bad = subprocess.run([sys.executable, "-c", "import tinynet"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0 and "TINYNET_NUM_THREADS must be a positive int" in bad.stderr


def test_parallel_for_covers_every_index_once_on_several_threads(monkeypatch, restore_threads):
    monkeypatch.setattr(backend, "parallel_grain", 1)
    tn.set_num_threads(3)
    seen, threads = np.zeros(10, dtype=int), set()
    lock = threading.Lock()
    all_running = threading.Barrier(3, timeout=30)   # passes only if 3 chunks run at once

    def work(lo, hi):
        all_running.wait()
        with lock:
            threads.add(threading.get_ident())
            seen[lo:hi] += 1
    backend.parallel_for(10, work, nbytes=10)
    assert seen.tolist() == [1] * 10
    assert len(threads) == 3 and threading.get_ident() in threads


def test_parallel_blocks_cover_every_index_once_in_blocks_of_block_bytes(monkeypatch, restore_threads):
    monkeypatch.setattr(backend, "parallel_grain", 1)
    monkeypatch.setattr(backend, "block_bytes", 3 * 8)          # 3 items of 8 bytes a block
    tn.set_num_threads(2)
    seen, blocks, threads = np.zeros(11, dtype=int), [], set()
    lock = threading.Lock()

    def work(lo, hi):
        with lock:
            threads.add(threading.get_ident())
            blocks.append((lo, hi))
            seen[lo:hi] += 1
    backend.parallel_blocks(11, work, item_bytes=8)
    assert seen.tolist() == [1] * 11
    assert sorted(blocks) == [(0, 3), (3, 6), (6, 9), (9, 11)]     # chunks 0-6 and 6-11
    assert len(threads) == 2


def test_parallel_for_runs_small_jobs_in_the_caller(restore_threads):
    tn.set_num_threads(4)
    calls = []
    backend.parallel_for(100, lambda lo, hi: calls.append((lo, hi, threading.get_ident())), nbytes=100)
    assert calls == [(0, 100, threading.get_ident())]


def test_a_native_job_splits_from_its_own_smaller_grain(monkeypatch, restore_threads):
    """native_chunks: parallel_chunks with native_grain (a native piece pays no GIL
    hand-over), so a job of 256 kB per piece splits where parallel_for's would not."""
    tn.set_num_threads(4)
    grain = backend.native_grain
    assert grain < backend.parallel_grain
    assert [backend.native_chunks(8, k * grain) for k in (1, 2, 3, 5)] == [1, 2, 3, 4]
    assert backend.native_chunks(2, 5 * grain) == 2 and backend.parallel_chunks(8, 3 * grain) == 1
    monkeypatch.setattr(backend, "native_grain", 100)
    assert backend.native_chunks(8, 250) == 2


def test_a_chunk_needs_a_grain_per_numpy_call(monkeypatch, restore_threads, chunk_counts):
    tn.set_num_threads(4)
    monkeypatch.setattr(backend, "parallel_grain", 100)
    # 1,000 bytes: ten grains in one call each, five in two calls each, one in ten
    assert [backend.parallel_chunks(8, 1000, calls=c) for c in (1, 2, 5, 10, 11)] == [4, 4, 2, 1, 1]
    seen = []
    backend.parallel_for(8, lambda lo, hi: seen.append((lo, hi)), nbytes=1000, calls=5)
    assert sorted(seen) == [(0, 4), (4, 8)]
    # batch norm's passes (its NumPy route) are short calls: a 1 MB batch stays in the
    # caller, whose forward (5 calls of 3 MB / 2 a chunk) and backward (7 of 4 MB / 2)
    # would otherwise split (the compiled route is one call a chunk)
    monkeypatch.setattr(backend, "_compiled", False)
    monkeypatch.setattr(backend, "parallel_grain", 1 << 20)
    x = tn.randn(16, 256, 8, 8, requires_grad=True, device="cpu")   # 1 MB of float32
    del chunk_counts[:]
    F.batch_norm(x, None, None, training=True).sum().backward()
    assert chunk_counts[:1] + chunk_counts[-1:] == [1, 1]
    x = tn.randn(16, 64, 32, 32, requires_grad=True, device="cpu")  # 4 MB: two chunks each
    del chunk_counts[:]
    F.batch_norm(x, None, None, training=True).sum().backward()
    assert chunk_counts[:1] + chunk_counts[-1:] == [2, 2]


def test_parallel_for_raises_a_chunks_error_after_all_finish(monkeypatch, restore_threads):
    monkeypatch.setattr(backend, "parallel_grain", 1)
    tn.set_num_threads(2)
    done = []

    def work(lo, hi):
        if lo > 0:
            raise KeyError("second chunk")
        done.append(lo)
    with pytest.raises(KeyError, match="second chunk"):
        backend.parallel_for(4, work, nbytes=4)
    assert done == [0]


def test_threaded_elu_matches_one_thread(monkeypatch, restore_threads):
    x = tn.tensor(np.random.default_rng(0).standard_normal((3, 5, 7, 11)).astype(np.float32),
                  requires_grad=True)
    g = tn.tensor(np.random.default_rng(1).standard_normal((3, 5, 7, 11)).astype(np.float32))
    tn.set_num_threads(1)
    y1 = F.elu(x, 0.5)
    y1.backward(g)
    gx1, x.grad = x.grad.numpy(), None
    monkeypatch.setattr(backend, "parallel_grain", 64)
    tn.set_num_threads(3)
    y3 = F.elu(x, 0.5)
    y3.backward(g)
    np.testing.assert_array_equal(y1.detach().numpy(), y3.detach().numpy())
    np.testing.assert_array_equal(gx1, x.grad.numpy())


def test_threaded_relu_matches_one_thread(monkeypatch, restore_threads, chunk_counts):
    from tinynet.functional import activation
    rng = np.random.default_rng(2)
    data = rng.standard_normal((3, 5, 7, 11)).astype(np.float32)
    data[0, 0, 0, :3] = 0.0                                        # ties at the kink: gradient 0
    x = tn.tensor(data, requires_grad=True, device="cpu")
    g = tn.tensor(rng.standard_normal((3, 5, 7, 11)).astype(np.float32), device="cpu")
    tn.set_num_threads(1)
    y1 = F.relu(x)
    y1.backward(g)
    gx1, x.grad = x.grad.numpy(), None
    monkeypatch.setattr(backend, "parallel_grain", 64)
    monkeypatch.setattr(activation, "_RELU_CHUNKED_BYTES", 64)
    tn.set_num_threads(3)
    del chunk_counts[:]
    y3 = F.relu(x)
    y3.backward(g)
    assert chunk_counts == [3, 3]                                   # both directions in chunks
    np.testing.assert_array_equal(y1.detach().numpy(), y3.detach().numpy())
    np.testing.assert_array_equal(gx1, x.grad.numpy())
    np.testing.assert_array_equal(gx1, g.numpy() * (data > 0))
    # a graph for a second derivative: the op-written backward, whatever the size
    x.grad = None
    (gx,) = tn.autograd.grad(F.relu(x), x, g, create_graph=True)
    np.testing.assert_array_equal(gx.detach().numpy(), gx1)


@pytest.mark.parametrize("shape", [(8, 200, 3000), (300, 50, 300), (10, 30000, 20)])
def test_split_matmul_equals_one_gemm(shape, monkeypatch, restore_threads):
    """Column, row and inner-dimension splits (wide, tall, long-K products) on the pool."""
    M, K, L = shape
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((M, K)), rng.standard_normal((K, L))
    expected = a @ b
    tn.set_num_threads(2, blas=1)
    used = []
    original = backend.parallel_for
    monkeypatch.setattr(backend, "parallel_for", lambda *args, **kw: used.append(args[0]) or original(*args, **kw))
    out = backend.matmul(a, b)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-10)
    assert used, "the product was not split"
    used.clear()
    tn.set_num_threads(2)            # BLAS on 2 threads too: no split
    np.testing.assert_allclose(backend.matmul(a, b), expected, rtol=1e-12, atol=1e-10)
    assert used == []


def test_set_num_threads_rejects_a_bad_blas_count(restore_threads):
    with pytest.raises(ValueError, match="set_num_threads: blas must be a positive int"):
        tn.set_num_threads(2, blas=0)


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 1)])
def test_threaded_max_pool_matches_one_thread(kernel, stride, monkeypatch, restore_threads):
    """2x2 tiles (the tournament, batch chunks) and overlapping windows (accumulating backward)."""
    x0 = np.random.default_rng(4).standard_normal((5, 3, 12, 10))
    g0 = np.random.default_rng(5).standard_normal(
        F.max_pool2d(tn.tensor(x0), kernel, stride).shape)

    def run():
        x = tn.tensor(x0, requires_grad=True)
        y = F.max_pool2d(x, kernel, stride)
        y.backward(tn.tensor(g0))
        return y.detach().numpy(), x.grad.numpy()
    tn.set_num_threads(1)
    y1, gx1 = run()
    monkeypatch.setattr(backend, "parallel_grain", 64)
    tn.set_num_threads(3)
    assert backend.parallel_chunks(5, 2 * x0.nbytes) == 3
    y3, gx3 = run()
    np.testing.assert_array_equal(y1, y3)
    np.testing.assert_array_equal(gx1, gx3)
