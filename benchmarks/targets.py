"""Issue 11's speed targets, read off a benchmark run's JSON (``run.py --json``).

    python benchmarks/run.py --only kernels,recurrent,training --json bench.json
    python benchmarks/targets.py bench.json [--markdown]

Prints each row the issue's table names (forward + backward, time / PyTorch time) beside
its target, whether it is met, the geometric mean of those ratios against its own target
(<= 1.0), and each training step's peak memory against PyTorch's (target <= 1.0; the
training suite measures it in fresh processes). It only reads figures; the timing method
is ``common.py``'s.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

# (workload as the suites name it, target ratio) -- the rows of the table
TARGETS = [
    ("conv1 N8 64->64 56x56 3x3 p1", 1.3),
    ("conv2 N32 3->16 32x32 3x3 p1", 1.3),
    ("conv3 N8 128->256 28x28 3x3 s2 p1", 1.3),
    ("conv4 N4 16->16 224x224 3x3 p1", 1.8),
    ("convT N8 128->64 14x14 k2 s2", 1.3),
    ("convT N8 128->64 14x14 k4 s2 p1", 1.3),
    ("maxpool N8 C64 112x112 2x2 s2", 1.3),
    ("LSTM 1 layer B32 T50 64->128", 1.2),
    ("U-Net step N2 3x128x128", 1.0),
    ("ResNet-18 CIFAR step N16 3x32x32", 1.0),
    ("SimpleCNN step N64 1x8x8", 0.5),
]
GEOMEAN_TARGET = 1.0
MEMORY_TARGET = 1.0      # peak memory of each training step <= PyTorch's


def _backward_row(rows, workload):
    for row in rows:
        if row["workload"] == workload and row.get("pass") in ("fwd+bwd", "fwd+bwd+adam"):
            return row
    return None


def table(rows) -> tuple[list[tuple], float | None]:
    """``[(workload, ratio or None, target, met or None)]`` and the geometric mean."""
    out, logs = [], []
    for workload, target in TARGETS:
        row = _backward_row(rows, workload)
        ratio = None if row is None else row.get("ratio")
        out.append((workload, ratio, target, None if ratio is None else ratio <= target))
        if ratio:
            logs.append(math.log(ratio))
    geomean = math.exp(sum(logs) / len(logs)) if len(logs) == len(TARGETS) else None
    return out, geomean


def memory(rows) -> list[tuple]:
    """``[(workload, tinynet MB, torch MB, ratio, met)]`` for the rows with peak memory."""
    return [(r["workload"], r["tinynet_peak_mb"], r["torch_peak_mb"], r["memory_ratio"],
             r["memory_ratio"] <= MEMORY_TARGET) for r in rows if r.get("memory_ratio")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="a run.py --json file with the kernels, recurrent and training suites")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    with open(args.json) as f:
        rows = json.load(f)["rows"]
    out, geomean = table(rows)
    fmt = lambda r: f"{r:.2f}x"  # noqa: E731
    if args.markdown:
        print("| workload (forward + backward) | ratio | target | met |\n|---|---:|---:|---|")
        for workload, ratio, target, met in out:
            print(f"| {workload} | {'-' if ratio is None else fmt(ratio)} | <= {target}x | "
                  f"{'-' if met is None else ('yes' if met else 'no')} |")
        g = "-" if geomean is None else fmt(geomean)
        print(f"| geometric mean ({len(TARGETS)} rows) | {g} | <= {GEOMEAN_TARGET}x | "
              f"{'-' if geomean is None else ('yes' if geomean <= GEOMEAN_TARGET else 'no')} |")
        for workload, ours, theirs, ratio, met in memory(rows):
            print(f"| peak memory, {workload} ({ours:.0f} / {theirs:.0f} MB) | {fmt(ratio)} | "
                  f"<= {MEMORY_TARGET}x | {'yes' if met else 'no'} |")
    else:
        for workload, ratio, target, met in out:
            shown = "missing" if ratio is None else fmt(ratio)
            print(f"{workload:40s} {shown:>8s}  target <= {target}x  {'' if met is None else ('met' if met else 'missed')}")
        print(f"{'geometric mean':40s} {'-' if geomean is None else fmt(geomean):>8s}  target <= {GEOMEAN_TARGET}x")
        for workload, ours, theirs, ratio, met in memory(rows):
            print(f"{'peak memory, ' + workload:48s} {fmt(ratio):>8s}  target <= {MEMORY_TARGET}x  "
                  f"{'met' if met else 'missed'} ({ours:.0f} / {theirs:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
