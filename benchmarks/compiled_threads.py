"""Which threads should a compiled kernel run on? Measured right after a matrix product.

A direct 3x3 convolution (16->16 channels, 224x224, batch 4, float32) written as a Numba
loop (the kind of kernel ``tinynet/kernels/compiled/`` holds), run three ways, each timed
right after a 512x512 product as in a training step, in shuffled order, medians:

    openmp2      Numba's own parallel loop (``prange``, OpenMP threads), 2 threads
    serial       one thread
    chunks2      the serial kernel over 2 ``backend.parallel_for`` chunks, which run on
                 OpenBLAS's worker threads (awake: they spin for ~0.1 s after a product)

and PyTorch's conv2d on the same input, for scale. The answer decided how tinynet's compiled
kernels use threads (``tinynet/kernels/compiled/__init__.py``). Needs numba (the ``jit``
extra); PyTorch is optional. Run: ``python benchmarks/compiled_threads.py``.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402  (benchmark driver)
from numba import njit, prange  # noqa: E402

import tinynet as tn  # noqa: E402
from tinynet import backend  # noqa: E402

FLAGS = dict(fastmath={"contract", "reassoc"}, nogil=True)


def _rows(xp, w, out, lo, hi):
    """Output rows lo..hi of (batch, row) pairs: 4 output channels x one row in registers."""
    C, Hp = xp.shape[1], xp.shape[2]
    O, H, W = w.shape[0], Hp - 2, xp.shape[3] - 2
    acc = np.empty((4, W), xp.dtype)
    for job in range(lo, hi):
        n, y = job // H, job % H
        for c0 in range(0, O, 4):
            acc[:] = 0
            for ci in range(C):
                for ky in range(3):
                    xr = xp[n, ci, y + ky]
                    for kx in range(3):
                        w0, w1 = w[c0, ci, ky, kx], w[c0 + 1, ci, ky, kx]
                        w2, w3 = w[c0 + 2, ci, ky, kx], w[c0 + 3, ci, ky, kx]
                        for x in range(W):
                            v = xr[x + kx]
                            acc[0, x] += w0 * v
                            acc[1, x] += w1 * v
                            acc[2, x] += w2 * v
                            acc[3, x] += w3 * v
            out[n, c0:c0 + 4, y] = acc


serial = njit(**FLAGS)(_rows)


@njit(parallel=True, **FLAGS)
def openmp(xp, w, out, threads):
    total = xp.shape[0] * (xp.shape[2] - 2)
    for t in prange(threads):
        serial(xp, w, out, t * total // threads, (t + 1) * total // threads)


def main():
    tn.set_num_threads(2)
    N, C, O, H = 4, 16, 16, 224
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    w = rng.standard_normal((O, C, 3, 3), dtype=np.float32)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.empty((N, O, H, H), np.float32)
    a = rng.standard_normal((512, 512), dtype=np.float32)
    ways = {
        "openmp2": lambda: openmp(xp, w, out, 2),
        "serial": lambda: serial(xp, w, out, 0, N * H),
        "chunks2": lambda: backend.parallel_for(N * H, lambda lo, hi: serial(xp, w, out, lo, hi),
                                                nbytes=1 << 30),
    }
    try:
        import torch
        torch.set_num_threads(2)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        ways["pytorch"] = lambda: torch.nn.functional.conv2d(tx, tw, padding=1)
        ways["pytorch"]()
        ref = ways["pytorch"]().numpy()
    except ImportError:
        ref = None
        print("PyTorch not installed: its row is left out")
    for fn in ways.values():
        fn()
    if ref is not None:
        assert np.allclose(out, ref, atol=1e-3), "the Numba kernel disagrees with PyTorch"
    times = {name: [] for name in ways}
    order = list(ways)
    random.seed(0)
    for _ in range(15):
        random.shuffle(order)
        for name in order:
            a @ a
            t0 = time.perf_counter()
            ways[name]()
            times[name].append((time.perf_counter() - t0) * 1e3)
    flops = 2 * N * O * C * 9 * H * H
    base = np.median(times["pytorch"]) if "pytorch" in times else None
    print(f"{'way':10s} {'median ms':>10s} {'IQR ms':>14s} {'GFLOP/s':>8s} {'/ PyTorch':>9s}")
    for name, ts in times.items():
        m = np.median(ts)
        ratio = f"{m / base:9.2f}" if base else ""
        print(f"{name:10s} {m:10.2f} {np.percentile(ts, 25):6.1f}-{np.percentile(ts, 75):6.1f} "
              f"{flops / m / 1e6:8.0f} {ratio}")


if __name__ == "__main__":
    main()
