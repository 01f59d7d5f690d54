"""Issue 11's speed targets, read off one or more benchmark runs' JSON (``run.py --json``).

    python benchmarks/run.py --only kernels,recurrent,training --json bench.json
    python benchmarks/targets.py bench.json [--markdown]
    python benchmarks/targets.py run1.json run2.json run3.json [--markdown]

Prints each row the issue's table names (forward + backward, time / PyTorch time) beside
its target, whether it is met, the geometric mean of those ratios against its own target
(<= 1.0), and each training step's peak memory against PyTorch's (target <= 1.0; the
training suite measures it in fresh processes). It only reads figures; the timing method
is ``common.py``'s.

Given several runs, it prints one column per run (headed by the time the run ended) and
their median, and judges each target on the median: on a shared machine whose speed
drifts for minutes at a time, one run's ratio can move by 0.2-0.3 with no change to the
code (docs/benchmarks.md), and the median of runs spread over time is the fairer figure.
The median column's geometric mean is that of the rows' medians. A last line gives the
share of CPU time the hypervisor took during each run (``steal``, as ``run.py`` records
it), which tells a slow phase of the host from a slow run of the code.

A last column, ``floor``, gives for each row with a flop count PyTorch's GFLOP/s over
NumPy's square-matrix float32 GEMM rate measured in the same run (the median over the
runs): the ratio tinynet would read if every one of the row's nominal flops ran at
that rate and nothing else took time. A target below its floor cannot be met by a
GEMM-based kernel through that BLAS; only fewer flops can.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
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


def _complete_geomean(ratios):
    """The geometric mean of one ratio per target row; None when any row lacks one."""
    if len(ratios) != len(TARGETS) or any(r is None for r in ratios):
        return None
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def table(rows) -> tuple[list[tuple], float | None]:
    """``[(workload, ratio or None, target, met or None)]`` and the geometric mean."""
    out = []
    for workload, target in TARGETS:
        row = _backward_row(rows, workload)
        ratio = None if row is None else row.get("ratio")
        out.append((workload, ratio, target, None if ratio is None else ratio <= target))
    return out, _complete_geomean([ratio for _, ratio, _, _ in out])


def floor(row) -> float | None:
    """PyTorch's GFLOP/s over the run's GEMM roofline for one row (None without a flop
    count or without PyTorch); rows written before ``torch_roofline_fraction`` existed give
    it through tinynet's figures (``gflops / roofline_fraction`` is the roofline)."""
    if row is None:
        return None
    if row.get("torch_roofline_fraction") is not None:
        return row["torch_roofline_fraction"]
    if row.get("torch_gflops") and row.get("gflops") and row.get("roofline_fraction"):
        return row["torch_gflops"] * row["roofline_fraction"] / row["gflops"]
    return None


def floors(runs) -> list:
    """Per target row, the median of :func:`floor` over the runs that have one (or None)."""
    out = []
    for workload, _ in TARGETS:
        values = [f for f in (floor(_backward_row(rows, workload)) for rows in runs) if f is not None]
        out.append(statistics.median(values) if values else None)
    return out


def memory(rows) -> list[tuple]:
    """``[(workload, tinynet MB, torch MB, ratio, met)]`` for the rows with peak memory."""
    return [(r["workload"], r["tinynet_peak_mb"], r["torch_peak_mb"], r["memory_ratio"],
             r["memory_ratio"] <= MEMORY_TARGET) for r in rows if r.get("memory_ratio")]


def runs_table(runs) -> tuple[list[tuple], list, float | None]:
    """Several runs' rows: ``[(workload, [ratio or None per run], median or None, target,
    met or None)]`` with the median over the runs that have the row, each run's geometric
    mean (None where a row is missing), and the geometric mean of the medians."""
    per_run = [table(rows) for rows in runs]
    out = []
    for k, (workload, target) in enumerate(TARGETS):
        ratios = [t[0][k][1] for t in per_run]
        present = [r for r in ratios if r is not None]
        median = statistics.median(present) if present else None
        out.append((workload, ratios, median, target, None if median is None else median <= target))
    return out, [t[1] for t in per_run], _complete_geomean([m for _, _, m, _, _ in out])


def runs_memory(runs) -> list[tuple]:
    """``[(workload, [ratio or None per run], median, met)]`` for the steps with peak memory."""
    per_run = [{w: ratio for w, _, _, ratio, _ in memory(rows)} for rows in runs]
    names = list(dict.fromkeys(w for figures in per_run for w in figures))
    out = []
    for workload in names:
        ratios = [figures.get(workload) for figures in per_run]
        median = statistics.median(r for r in ratios if r is not None)
        out.append((workload, ratios, median, median <= MEMORY_TARGET))
    return out


def _print_runs(runs, labels, markdown: bool, steals=None) -> None:
    out, geomeans, median_geomean = runs_table(runs)
    fmt = lambda r: "-" if r is None else f"{r:.2f}x"  # noqa: E731
    verdict = lambda met: "-" if met is None else ("yes" if met else "no")  # noqa: E731
    lines = [("workload (forward + backward)", "target", *labels, "median", "met", "floor")]
    for (workload, ratios, median, target, met), low in zip(out, floors(runs)):
        lines.append((workload, f"<= {target}x", *map(fmt, ratios), fmt(median), verdict(met), fmt(low)))
    lines.append((f"geometric mean ({len(TARGETS)} rows)", f"<= {GEOMEAN_TARGET}x", *map(fmt, geomeans),
                  fmt(median_geomean),
                  verdict(None if median_geomean is None else median_geomean <= GEOMEAN_TARGET), ""))
    for workload, ratios, median, met in runs_memory(runs):
        lines.append((f"peak memory, {workload}", f"<= {MEMORY_TARGET}x", *map(fmt, ratios), fmt(median),
                      verdict(met), ""))
    if steals is not None:
        shown = [s for s in steals if s is not None]
        percent = lambda s: "-" if s is None else f"{s:.1%}"  # noqa: E731
        lines.append(("hypervisor steal during the run", "", *map(percent, steals),
                      percent(statistics.median(shown) if shown else None), "", ""))
    if markdown:
        print("| " + " | ".join(lines[0]) + " |")
        print("|---|" + "---:|" * (len(lines[0]) - 3) + "---|---:|")
        for line in lines[1:]:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(line[k]) for line in lines) for k in range(len(lines[0]))]
        for line in lines:
            print("  ".join(cell.ljust(w) if k == 0 else cell.rjust(w)
                            for k, (cell, w) in enumerate(zip(line, widths))))


def _label(result: dict, index: int) -> str:
    """A run's column heading: the time it ended (``created``, as ``run.py`` writes it),
    else its number."""
    created = str(result.get("created", ""))
    parts = created.split()
    return parts[1][:5] if len(parts) >= 2 else f"run {index + 1}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+",
                        help="run.py --json files with the kernels, recurrent and training suites; "
                             "several: one column each, and their median")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    results = []
    for path in args.json:
        with open(path) as f:
            results.append(json.load(f))
    if len(results) > 1:
        _print_runs([r["rows"] for r in results], [_label(r, k) for k, r in enumerate(results)],
                    args.markdown, steals=[r.get("steal") for r in results])
        return 0
    rows, steal = results[0]["rows"], results[0].get("steal")
    out, geomean = table(rows)
    lows = floors([rows])
    fmt = lambda r: f"{r:.2f}x"  # noqa: E731
    if args.markdown:
        print("| workload (forward + backward) | ratio | target | met | floor |\n|---|---:|---:|---|---:|")
        for (workload, ratio, target, met), low in zip(out, lows):
            print(f"| {workload} | {'-' if ratio is None else fmt(ratio)} | <= {target}x | "
                  f"{'-' if met is None else ('yes' if met else 'no')} | {'-' if low is None else fmt(low)} |")
        g = "-" if geomean is None else fmt(geomean)
        print(f"| geometric mean ({len(TARGETS)} rows) | {g} | <= {GEOMEAN_TARGET}x | "
              f"{'-' if geomean is None else ('yes' if geomean <= GEOMEAN_TARGET else 'no')} | |")
        for workload, ours, theirs, ratio, met in memory(rows):
            print(f"| peak memory, {workload} ({ours:.0f} / {theirs:.0f} MB) | {fmt(ratio)} | "
                  f"<= {MEMORY_TARGET}x | {'yes' if met else 'no'} | |")
        if steal is not None:
            print(f"| hypervisor steal during the run | {steal:.1%} | | | |")
    else:
        for (workload, ratio, target, met), low in zip(out, lows):
            shown = "missing" if ratio is None else fmt(ratio)
            verdict = "" if met is None else ("met" if met else "missed")
            print((f"{workload:40s} {shown:>8s}  target <= {target}x  {verdict:6s}"
                   + ("" if low is None else f"  floor {fmt(low)}")).rstrip())
        print(f"{'geometric mean':40s} {'-' if geomean is None else fmt(geomean):>8s}  target <= {GEOMEAN_TARGET}x")
        for workload, ours, theirs, ratio, met in memory(rows):
            print(f"{'peak memory, ' + workload:48s} {fmt(ratio):>8s}  target <= {MEMORY_TARGET}x  "
                  f"{'met' if met else 'missed'} ({ours:.0f} / {theirs:.0f} MB)")
        if steal is not None:
            print(f"{'hypervisor steal during the run':40s} {steal:>8.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
