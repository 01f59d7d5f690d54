"""Data-parallel training speed: tinynet on 1 process x 2 threads (and x 1 thread), on 2 MPI
ranks x 1 thread, and PyTorch on 1 process x 2 threads; MPI allreduce bandwidth; a scaling model.

    python benchmarks/distributed.py [--quick] [--rounds R] [--steps S] [--json FILE]

Every configuration runs in a fresh process (the ranks under ``mpiexec``), so the three
are measured in rounds, one after another (A, B, C, A, B, C, ...), with a 0.5 s pause
between them; a configuration's result is the median step time over all its timed steps
after 2 warm-up steps. The global batch is the same everywhere: with 2 ranks each rank
steps on half of it, and DistributedDataParallel averages the gradients.

For the 2-rank runs, rank 0 also reports how long each step waited at the end of backward
for the allreduces to finish (``exposed``: communication that backward did not hide).

The scaling model (docs/distributed.md) is fitted to these figures:

    step(N) = compute / N + exposed(N)
    compute     = 2 · (2-rank step - 2-rank exposed)          (one 1-thread rank, whole batch)
    allreduce(n bytes, N ranks) = 2(N-1)·α + 2(N-1)/N · n·β    (ring; α, β fitted on 2 ranks)
    exposed(N)  = allreduce(gradient bytes, N) · h,  h = exposed / allreduce at N = 2

and its predicted efficiency ``step(1) / (N · step(N))`` is printed for 8 and 64 ranks.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

WORKLOADS = {   # name: (label, global batch shape)
    "unet": ("U-Net step N4 3x128x128", (4, 3, 128, 128)),
    "resnet18": ("ResNet-18 CIFAR step N32 3x32x32", (32, 3, 32, 32)),
}
QUICK = {"unet": ((2, 3, 32, 32), 4), "resnet18": ((4, 3, 32, 32), 8)}   # shape, width
CONFIGS = ("tinynet 1x2", "tinynet 1x1", "tinynet 2x1", "torch 1x2")
SIZES = [2 ** k for k in range(10, 27, 2)]          # allreduce message sizes in bytes


# ------------------------------------------------------------------------- children
def _child_steps(library, name, shape, width, steps, distributed):
    """Times ``steps`` training steps after 2 warm-up steps; returns a dict of seconds."""
    import training
    if library == "torch":
        import torch
        _, step = training.torch_step_fn(torch, name, shape, width=width)
        exposed = None
    else:
        import tinynet as tn
        import tinynet.functional as F
        from tinynet import optim
        model = training.tinynet_model(name, width)
        rank, world = 0, 1
        if distributed:
            import tinynet.distributed as dist
            from tinynet.nn.parallel import DistributedDataParallel
            dist.init_process_group("mpi")
            rank, world = dist.get_rank(), dist.get_world_size()
            model = DistributedDataParallel(model)
        x, y = training.make_data(name, shape)
        part = slice(rank * shape[0] // world, (rank + 1) * shape[0] // world)
        tx, ty = tn.tensor(x[part]), tn.tensor(y[part])
        opt = optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = F.binary_cross_entropy if name == "unet" else F.cross_entropy
        exposed = [] if distributed else None

        def step():
            loss = loss_fn(model(tx), ty)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if exposed is not None:
                exposed.append(sum(e[3] - e[2] for e in model.comm_events if e[0] == "wait"))
            return loss.item()
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    out = {"times": times}
    if exposed is not None:
        out["exposed"] = exposed[2:]
        out["grad_bytes"] = int(sum(p.data.nbytes for p in model.parameters()))
    return out


def _child_allreduce(reps):
    import numpy as np
    import tinynet as tn
    import tinynet.distributed as dist
    dist.init_process_group("mpi")
    result = {}
    for size in SIZES:
        t = tn.tensor(np.ones(size // 4, dtype=np.float32))
        dist.all_reduce(t)                          # warm-up (buffers, connections)
        times = []
        for _ in range(reps):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            times.append(time.perf_counter() - t0)
        result[size] = statistics.median(times)
    return result


# ------------------------------------------------------------------------- driver
def _run_child(args, nproc=1, threads=2, timeout=900):
    from tinynet.distributed.launch import mpiexec_command, rank_environment
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    if nproc > 1:
        cmd = mpiexec_command(nproc, cmd)
    env = rank_environment(threads)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(HERE), env.get("PYTHONPATH", "")])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[0])


def measure(quick=False, rounds=3, steps=5):
    """Rows of samples/s per workload and configuration, and the allreduce curve."""
    try:
        import torch  # noqa: F401
        configs = CONFIGS
    except ImportError:
        configs = CONFIGS[:3]
    rows = []
    for name, (label, shape) in WORKLOADS.items():
        width = None
        if quick:
            shape, width = QUICK[name]
            label += f" (quick: {'x'.join(map(str, shape))}, width {width})"
        results = {c: {"times": [], "exposed": []} for c in configs}
        for _ in range(rounds):
            for config in configs:
                library, layout = config.split()
                nproc, threads = (int(v) for v in layout.split("x"))
                child = ["--child", library, name, ",".join(map(str, shape)), str(width or 0), str(steps)]
                got = _run_child(child, nproc=nproc, threads=threads)
                results[config]["times"] += got["times"]
                results[config]["exposed"] += got.get("exposed", [])
                results[config]["grad_bytes"] = got.get("grad_bytes")
                time.sleep(0.5)
        row = {"workload": label, "global_batch": shape[0]}
        for config in configs:
            med = statistics.median(results[config]["times"])
            row[f"{config} ms"] = 1e3 * med
            row[f"{config} samples/s"] = shape[0] / med
        ddp = results["tinynet 2x1"]
        row["exposed ms"] = 1e3 * statistics.median(ddp["exposed"])
        row["exposed share"] = row["exposed ms"] / row["tinynet 2x1 ms"]
        row["grad_bytes"] = ddp["grad_bytes"]
        row["2 ranks / 1 process"] = row["tinynet 2x1 samples/s"] / row["tinynet 1x2 samples/s"]
        if "torch 1x2" in configs:
            row["2 ranks / torch"] = row["tinynet 2x1 samples/s"] / row["torch 1x2 samples/s"]
        rows.append(row)
    curve = _run_child(["--child-allreduce", str(5 if quick else 20)], nproc=2, threads=1)
    curve = {int(k): v for k, v in curve.items()}
    return rows, curve


def fit_allreduce(curve):
    """Least-squares α (s) and β (s/byte) of t = 2(N-1)α + 2(N-1)/N·n·β at N = 2: t = 2α + nβ."""
    import numpy as np
    n = np.array(sorted(curve), dtype=float)
    t = np.array([curve[k] for k in sorted(curve)])
    # Relative errors: small messages (latency) count as much as large ones (bandwidth).
    A = np.stack([2 * np.ones_like(n), n], axis=1) / t[:, None]
    (alpha, beta), *_ = np.linalg.lstsq(A, np.ones_like(t), rcond=None)
    return max(alpha, 0.0), max(beta, 1e-15)


def scaling_model(row, alpha, beta, ranks=(2, 8, 64)):
    """Predicted step time and efficiency at each rank count (see the module docstring)."""
    step2, exposed2 = row["tinynet 2x1 ms"] / 1e3, row["exposed ms"] / 1e3
    compute = 2 * (step2 - exposed2)
    n = row["grad_bytes"]

    def allreduce(N):
        return 2 * (N - 1) * alpha + 2 * (N - 1) / N * n * beta
    hidden = exposed2 / allreduce(2)
    out = {}
    for N in ranks:
        step = compute / N + hidden * allreduce(N)
        out[N] = {"step_ms": 1e3 * step, "efficiency": compute / (N * step)}
    return {"compute_ms": 1e3 * compute, "exposed_fraction": hidden, "predicted": out}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run on small shapes (figures mean nothing)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the configurations (default 3)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per process and round (default 5)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--child-allreduce", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        library, name, shape, width, steps = args.child
        distributed = "PMI_RANK" in os.environ or "PMI_SIZE" in os.environ
        got = _child_steps(library, name, tuple(int(s) for s in shape.split(",")), int(width) or None,
                           int(steps), distributed)
        if not distributed or int(os.environ.get("PMI_RANK", 0)) == 0:
            print(json.dumps(got))
        return 0
    if args.child_allreduce:
        got = _child_allreduce(args.child_allreduce)
        if int(os.environ.get("PMI_RANK", 0)) == 0:
            print(json.dumps(got))
        return 0
    import common
    info = common.machine_info("cpu")
    print(" | ".join(f"{k}: {v}" for k, v in info.items()))
    rows, curve = measure(args.quick, max(args.rounds, 1), max(args.steps, 1))
    alpha, beta = fit_allreduce(curve)
    print(f"\n{'workload':36s} {'tinynet 1x2':>12s} {'tinynet 1x1':>12s} {'tinynet 2x1':>12s} "
          f"{'torch 1x2':>10s}  {'2r/1p':>6s} {'2r/torch':>8s} {'exposed':>8s}   (samples/s)")
    for r in rows:
        torch_sps = r.get("torch 1x2 samples/s")
        print(f"{r['workload']:36s} {r['tinynet 1x2 samples/s']:12.1f} {r['tinynet 1x1 samples/s']:12.1f} "
              f"{r['tinynet 2x1 samples/s']:12.1f} {(torch_sps or float('nan')):10.1f}  "
              f"{r['2 ranks / 1 process']:6.2f} {r.get('2 ranks / torch', float('nan')):8.2f} "
              f"{100 * r['exposed share']:7.1f}%")
    print("\nallreduce between 2 ranks (float32, in place):")
    for size, t in sorted(curve.items()):
        print(f"  {size / 2 ** 20:9.3f} MiB  {1e3 * t:8.3f} ms  {size / t / 1e9:6.2f} GB/s")
    print(f"fitted: latency α = {1e6 * alpha:.1f} µs, bandwidth 1/β = {1 / beta / 1e9:.2f} GB/s")
    models = {}
    for r in rows:
        m = scaling_model(r, alpha, beta)
        models[r["workload"]] = m
        pred = ", ".join(f"{N} ranks {p['efficiency']:.0%}" for N, p in m["predicted"].items())
        print(f"scaling model, {r['workload']}: compute {m['compute_ms']:.0f} ms on one 1-thread rank, "
              f"{m['exposed_fraction']:.0%} of the allreduce exposed; efficiency {pred}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "rows": rows, "allreduce_s": curve, "alpha_s": alpha,
                       "beta_s_per_byte": beta, "scaling": models}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
