"""Per-op overhead: tiny ops where Python bookkeeping, not arithmetic, sets the time.

For each workload both libraries run ``z = op(x, y); z.backward(g)`` on leaves that
require grad (and, separately, the forward alone under ``no_grad``), in one process, on
the same number of threads, after a warm-up, in interleaved rounds with an idle gap between
libraries. Each row reports the median time per call in microseconds and the ratio
tinynet / PyTorch. The target for tinynet's engine is a ratio within 3x.

    python benchmarks/overhead.py            # full run (~1 minute)
    python benchmarks/overhead.py --quick    # smoke run (~5 s)
    python benchmarks/overhead.py --json out.json

``run(quick=False) -> list[dict]`` is the entry point for other benchmark runners.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402  (benchmark driver, not a kernel)

import tinynet as tn  # noqa: E402
import tinynet.functional as F  # noqa: E402

THREADS = 2
IDLE_GAP_S = 0.15   # pause before each library's batch: lets BLAS threads stop spinning

# (name, op, shape of x, shape of y)
WORKLOADS = [
    ("add 4x4", "add", (4, 4), (4, 4)),
    ("add 16x16", "add", (16, 16), (16, 16)),
    ("add 16x16 + 16 (broadcast)", "add", (16, 16), (16,)),
    ("mul 4x4", "mul", (4, 4), (4, 4)),
    ("mul 16x16", "mul", (16, 16), (16, 16)),
    ("matmul 4x4", "matmul", (4, 4), (4, 4)),
    ("matmul 16x16", "matmul", (16, 16), (16, 16)),
]


_limiter = None


def set_threads(n: int = THREADS) -> None:
    """Sets PyTorch and NumPy's BLAS (threadpoolctl) to ``n`` threads."""
    global _limiter, THREADS
    import torch
    THREADS = n
    torch.set_num_threads(n)
    try:
        import threadpoolctl
        _limiter = threadpoolctl.threadpool_limits(n)   # kept: the limit lasts while it lives
    except ImportError:
        pass


def machine_info() -> dict:
    import torch
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": THREADS,
            "torch_threads": torch.get_num_threads(), "numpy": np.__version__,
            "torch": torch.__version__, "python": platform.python_version()}


def _cases(op, shape_x, shape_y):
    """Four zero-argument callables: tinynet/torch x forward+backward/forward only."""
    import torch
    rng = np.random.default_rng(0)
    xv = rng.standard_normal(shape_x).astype(np.float32)
    yv = rng.standard_normal(shape_y).astype(np.float32)
    out_shape = (np.asarray(xv) @ yv).shape if op == "matmul" else np.broadcast_shapes(shape_x, shape_y)
    gv = np.ones(out_shape, dtype=np.float32)

    tx, ty = tn.tensor(xv, requires_grad=True), tn.tensor(yv, requires_grad=True)
    tg = tn.tensor(gv)
    t_fn = {"add": F.add, "mul": F.mul, "matmul": F.matmul}[op]
    px = torch.from_numpy(xv.copy()).requires_grad_(True)
    py = torch.from_numpy(yv.copy()).requires_grad_(True)
    pg = torch.from_numpy(gv.copy())
    p_fn = {"add": torch.add, "mul": torch.mul, "matmul": torch.matmul}[op]

    def tinynet_fwd_bwd():
        tx.grad = ty.grad = None
        t_fn(tx, ty).backward(tg)

    def torch_fwd_bwd():
        px.grad = py.grad = None
        p_fn(px, py).backward(pg)

    def tinynet_fwd():
        with tn.no_grad():
            t_fn(tx, ty)

    def torch_fwd():
        with torch.no_grad():
            p_fn(px, py)

    return {("tinynet", "fwd+bwd"): tinynet_fwd_bwd, ("torch", "fwd+bwd"): torch_fwd_bwd,
            ("tinynet", "fwd"): tinynet_fwd, ("torch", "fwd"): torch_fwd}


def _time_per_call(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def run(quick: bool = False) -> list:
    """One dict per (workload, mode): medians per call (``tinynet_us``/``torch_us`` and the
    runner's ``tinynet_ms``/``torch_ms``), the ratio, and ``pass`` (fwd or fwd+bwd).

    Uses the thread count already in force (``main`` and the benchmark runner set it).
    """
    calls, rounds, gap = (200, 3, 0.0) if quick else (1000, 9, IDLE_GAP_S)
    rows = []
    for name, op, sx, sy in WORKLOADS:
        cases = _cases(op, sx, sy)
        for fn in cases.values():         # warm-up
            _time_per_call(fn, calls // 4)
        for mode in ("fwd+bwd", "fwd"):
            samples = {"tinynet": [], "torch": []}
            for _ in range(rounds):       # interleave the libraries
                for lib in ("tinynet", "torch"):
                    if gap:
                        time.sleep(gap)
                    samples[lib].append(_time_per_call(cases[(lib, mode)], calls))
            ours = statistics.median(samples["tinynet"]) * 1e6
            theirs = statistics.median(samples["torch"]) * 1e6
            rows.append({"workload": name, "pass": mode, "mode": mode,
                         "tinynet_us": round(ours, 2), "torch_us": round(theirs, 2),
                         "tinynet_ms": ours / 1e3, "torch_ms": theirs / 1e3,
                         "ratio": round(ours / theirs, 2)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds (smoke run)")
    parser.add_argument("--json", help="also write the rows (and machine info) to this file")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads for both libraries")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    rows = run(quick=args.quick)
    info = machine_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    header = f"{'workload':28s} {'mode':8s} {'tinynet us':>11s} {'torch us':>9s} {'ratio':>6s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['workload']:28s} {r['mode']:8s} {r['tinynet_us']:11.2f} {r['torch_us']:9.2f} "
              f"{r['ratio']:5.2f}x")
    worst = max(r["ratio"] for r in rows)
    print(f"worst ratio {worst:.2f}x (target: within 3x of PyTorch's eager overhead)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
