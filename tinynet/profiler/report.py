"""Turning recorded events into a table per op type and a Chrome trace.

Rows (one per op type, plus one per named region and one for the backward engine):

    calls, forward total/self ms   the op's forward calls, wherever they ran
    bwd calls, backward total/self its node's backward calls
    self %                         (forward self + backward self) / wall time of the profile
    GFLOP/s                        flops of the forward calls / their time (ops with a count)
    MB out                         bytes of the arrays the calls returned (for a backward,
                                   the gradients it made itself, not through child ops)

An op called by another op's backward (conv2d's backward calls conv_transpose2d and
conv2d_weight) is counted in its own row's forward columns, and excluded from the
caller's backward *self* time. The phase split (forward pass / backward pass) is printed
under the table, with the time outside any event ("untracked": Python between ops,
data loading, anything the profile saw that is not an op or a region).
"""
from __future__ import annotations

import json
import os

__all__ = ["aggregate", "phase_totals", "format_table", "chrome_trace"]

_MS = 1e-6


def aggregate(events) -> list[dict]:
    """One dict per name: calls, times (ns), flops and bytes, split by forward/backward."""
    rows: dict[str, dict] = {}
    for e in events:
        row = rows.get(e.name)
        if row is None:
            row = rows[e.name] = dict(name=e.name, kind="op", calls=0, total_ns=0, self_ns=0,
                                      backward_calls=0, backward_total_ns=0, backward_self_ns=0,
                                      flops=0, flop_ns=0, nbytes=0)
        if e.kind in ("backward",):
            row["backward_calls"] += 1
            row["backward_total_ns"] += e.total_ns
            row["backward_self_ns"] += e.self_ns
        else:
            if e.kind != "op":
                row["kind"] = e.kind
            row["calls"] += 1
            row["total_ns"] += e.total_ns
            row["self_ns"] += e.self_ns
            if e.flops:
                row["flops"] += e.flops
                row["flop_ns"] += e.total_ns
        row["nbytes"] += e.nbytes
    for row in rows.values():
        row["all_self_ns"] = row["self_ns"] + row["backward_self_ns"]
        row["gflops"] = row["flops"] / row["flop_ns"] if row["flop_ns"] else None
    return sorted(rows.values(), key=lambda r: -r["all_self_ns"])


def phase_totals(events, wall_ns: int, overhead_ns: int) -> dict:
    """Where the wall time went: self time of forward-phase and backward-phase events,
    of the backward engine, of regions, the profiler's own bookkeeping, and the rest."""
    out = dict(wall_ns=wall_ns, forward_ns=0, backward_ns=0, engine_ns=0, region_ns=0,
               overhead_ns=overhead_ns)
    top = 0
    for e in events:
        if e.depth == 0:
            top += e.total_ns
        if e.kind == "engine":
            out["engine_ns"] += e.self_ns
        elif e.kind == "region":
            out["region_ns"] += e.self_ns
        elif e.phase == "backward":
            out["backward_ns"] += e.self_ns
        else:
            out["forward_ns"] += e.self_ns
    # overhead charged inside top-level events is already excluded from their self times
    out["untracked_ns"] = max(0, wall_ns - top)
    return out


def _ms(ns, steps):
    return f"{ns * _MS / steps:.3f}" if ns else "-"


def format_table(rows, phases, steps: int = 1, row_limit: int | None = None) -> str:
    """The rows as aligned text; times are per step when ``steps`` > 1."""
    wall = phases["wall_ns"] or 1
    head = ["op", "calls", "fwd total ms", "fwd self ms", "bwd calls", "bwd total ms",
            "bwd self ms", "self %", "GFLOP/s", "MB out"]
    lines = []
    shown = rows if row_limit is None else rows[:row_limit]
    for r in shown:
        name = r["name"] if r["kind"] == "op" else f"[{r['name']}]"
        calls = r["calls"] / steps
        bcalls = r["backward_calls"] / steps
        lines.append([
            name, f"{calls:g}" if r["calls"] else "-",
            _ms(r["total_ns"], steps), _ms(r["self_ns"], steps),
            f"{bcalls:g}" if r["backward_calls"] else "-",
            _ms(r["backward_total_ns"], steps), _ms(r["backward_self_ns"], steps),
            f"{100 * r['all_self_ns'] / wall:.1f}",
            f"{r['gflops']:.1f}" if r["gflops"] is not None else "-",
            f"{r['nbytes'] / steps / 1e6:.2f}" if r["nbytes"] else "-",
        ])
    widths = [max(len(head[i]), *(len(l[i]) for l in lines)) if lines else len(head[i])
              for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])  # noqa: E731
                                  for i, c in enumerate(cells))
    text = [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(l) for l in lines]
    if row_limit is not None and len(rows) > row_limit:
        text.append(f"... {len(rows) - row_limit} more rows")
    per = " per step" if steps > 1 else ""
    share = lambda key: f"{phases[key] * _MS / steps:.2f} ms ({100 * phases[key] / wall:.1f}%)"  # noqa: E731
    text.append("")
    text.append(f"wall {phases['wall_ns'] * _MS / steps:.2f} ms{per}: forward ops {share('forward_ns')}, "
                f"backward ops {share('backward_ns')}, autograd engine {share('engine_ns')}, "
                f"regions {share('region_ns')}, untracked {share('untracked_ns')}, "
                f"profiler overhead {share('overhead_ns')}")
    return "\n".join(text)


def chrome_trace(events, origin_ns: int, pid: int | None = None, tid: int = 0) -> dict:
    """The Trace Event Format (JSON object form) read by Perfetto and chrome://tracing:
    one complete ("X") event per call, microsecond timestamps from the profile's start."""
    pid = os.getpid() if pid is None else pid
    trace = []
    for e in sorted(events, key=lambda e: (e.start, -e.end)):
        args = {"phase": e.phase, "self_us": e.self_ns / 1e3}
        if e.flops:
            args["flops"] = e.flops
        if e.nbytes:
            args["bytes"] = e.nbytes
        if e.shapes is not None:
            args["input_shapes"] = [list(s) if s is not None else None for s in e.shapes]
        trace.append({"name": e.name if e.kind != "backward" else e.name + ".backward",
                      "cat": e.kind, "ph": "X", "ts": (e.start - origin_ns) / 1e3,
                      "dur": e.total_ns / 1e3, "pid": pid, "tid": tid, "args": args})
    return {"traceEvents": trace, "displayTimeUnit": "ms"}


def write_json(obj, path: str) -> None:
    with open(path, "w") as f:
        json.dump(obj, f)
