"""Does tinynet's thread pool help? Three settings, interleaved rounds, medians (issue 11).

    all1         tinynet.set_num_threads(1): pool and BLAS on one thread
    pool2_blas1  tinynet's pool on 2 threads, BLAS on 1 (threadpoolctl)
    all2         tinynet.set_num_threads(2): both on 2 threads

on work that uses the pool (im2col copies and col2im sums of small-channel convs, ELU)
and on a GEMM-heavy conv. Run: ``python benchmarks/threads.py`` (needs threadpoolctl).
Never a test: speed is measured here, not asserted.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402  (benchmark driver)
from threadpoolctl import threadpool_limits  # noqa: E402

import tinynet as tn  # noqa: E402
import tinynet.functional as F  # noqa: E402
from tinynet import backend  # noqa: E402

cases = {
  "conv 3->16 32x32 N32": (tn.randn(32, 3, 32, 32, requires_grad=True), tn.randn(16, 3, 3, 3, requires_grad=True)),
  "conv 128->256 28x28 s2 N8": (tn.randn(8, 128, 28, 28, requires_grad=True), tn.randn(256, 128, 3, 3, requires_grad=True)),
  "elu N2 C16 128x128": (tn.randn(2, 16, 128, 128, requires_grad=True), None),
}
def run(x, w):
    if w is None: F.elu(x).sum().backward()
    else: F.conv2d(x, w, padding=1, stride=2 if x.shape[1] == 128 else 1).sum().backward()
configs = [("all1", 1, 1), ("pool2_blas1", 2, 1), ("all2", 2, 2)]
for name, (x, w) in cases.items():
    res = {c[0]: [] for c in configs}
    for r in range(7):
        for cname, pool, blas in configs:
            backend.set_num_threads(pool)
            limiter = threadpool_limits(blas, user_api="blas")  # noqa: F841 (kept while timing)
            run(x, w); time.sleep(0.15)
            t0 = time.perf_counter()
            for _ in range(5): run(x, w)
            res[cname].append((time.perf_counter() - t0) / 5)
    m = {k: np.median(v) * 1e3 for k, v in res.items()}
    print(f"{name}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in m.items()),
          f"| pool2/all1 {m['pool2_blas1']/m['all1']:.2f} all2/all1 {m['all2']/m['all1']:.2f}")
