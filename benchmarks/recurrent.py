"""Recurrent layers: tinynet against torch.nn.LSTM / GRU, side by side (issue 5).

Workload (the issue's): batch 32, 50 steps, input 64, hidden 128, float32.

* LSTM 1 layer, forward only and forward + backward through time (loss = sum of the last
  hidden state);
* LSTM 2 layers bidirectional, forward + backward;
* GRU 1 layer, forward + backward;
* a second tinynet row, "composed": the same 1-layer LSTM built per step from elementwise
  tinynet ops (matmul, slicing, sigmoid, tanh, mul, add) — what a framework without a
  fused cell does; its ratio column is tinynet-fused / composed, so the fused kernel's
  gain is visible (target <= 0.2).

Both libraries run in this one process with the same thread count (2), after a warm-up,
in interleaved rounds with an idle gap between libraries (see ``common.py``); medians.

    python benchmarks/recurrent.py            # full run (~1 minute)
    python benchmarks/recurrent.py --quick    # smoke run, figures not meaningful
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/recurrent.py

``run(quick=False) -> list[dict]`` is the entry point for ``benchmarks/run.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))

import numpy as np  # noqa: E402  (benchmark driver, not a kernel)

import tinynet as tn  # noqa: E402
import tinynet.functional as F  # noqa: E402
from tinynet.nn.rnn import GRU, LSTM  # noqa: E402
from common import (compare, format_table, gemm_gflops, machine_info, make_row,  # noqa: E402
                    set_threads, torch_or_none, _threads)

B, T, I, H = 32, 50, 64, 128
TARGETS = {"LSTM 1 layer": 1.5, "LSTM 2 layers bidirectional": 1.7}


def _lstm_flops(T, B, I, H, layers=1, directions=1, backward=False):
    """GEMM flops: input projection + recurrence (x3 with backward: dx, dW_ih, dW_hh, dh)."""
    total, layer_in = 0, I
    for _ in range(layers):
        total += directions * 2 * T * B * 4 * H * (layer_in + H)
        layer_in = directions * H
    return total * (3 if backward else 1)


def _composed_lstm(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """The per-gate composition: one graph node per elementwise op per step."""
    Hs = w_hh.shape[1]
    gx = F.linear(x, w_ih, b_ih)
    for t in range(x.shape[0]):
        a = gx[t] + F.linear(h, w_hh, b_hh)
        i, f = F.sigmoid(a[:, :Hs]), F.sigmoid(a[:, Hs:2 * Hs])
        g, o = F.tanh(a[:, 2 * Hs:3 * Hs]), F.sigmoid(a[:, 3 * Hs:])
        c = f * c + i * g
        h = o * F.tanh(c)
    return h


def _tinynet_model(kind, layers, bidirectional):
    tn.manual_seed(0)
    cls = LSTM if kind == "LSTM" else GRU
    return cls(I, H, num_layers=layers, bidirectional=bidirectional)


def _torch_model(torch, kind, layers, bidirectional, ours):
    cls = torch.nn.LSTM if kind == "LSTM" else torch.nn.GRU
    m = cls(I, H, num_layers=layers, bidirectional=bidirectional)
    m.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    return m


def run(quick: bool = False) -> list[dict]:
    torch = torch_or_none()
    rounds, reps = (2, 1) if quick else (7, 5)
    steps = 8 if quick else T
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((steps, B, I)).astype(np.float32)
    x = tn.tensor(x_np)
    tx = torch.from_numpy(x_np.copy()) if torch is not None else None
    roofline = None if quick else gemm_gflops()
    rows = []

    def last_h(out):
        h = out[1][0] if isinstance(out[1], tuple) else out[1]
        return h

    for label, kind, layers, bidir, passes in (
            ("LSTM 1 layer", "LSTM", 1, False, ("fwd", "fwd+bwd")),
            ("LSTM 2 layers bidirectional", "LSTM", 2, True, ("fwd+bwd",)),
            ("GRU 1 layer", "GRU", 1, False, ("fwd+bwd",))):
        ours = _tinynet_model(kind, layers, bidir)
        theirs = _torch_model(torch, kind, layers, bidir, ours) if torch is not None else None
        for p in passes:
            backward = p == "fwd+bwd"

            def tn_step(m=ours, backward=backward):
                if not backward:
                    with tn.no_grad():
                        return m(x)
                m.zero_grad()
                last_h(m(x)).sum().backward()

            def pt_step(m=theirs, backward=backward):
                if not backward:
                    with torch.no_grad():
                        return m(tx)
                m.zero_grad()
                last_h(m(tx)).sum().backward()

            fns = {"tinynet": tn_step}
            if theirs is not None:
                fns["torch"] = pt_step
            timing = compare(fns, rounds=rounds, reps=reps)
            flops = _lstm_flops(steps, B, I, H, layers, 2 if bidir else 1, backward)
            if kind == "GRU":
                flops = flops * 3 // 4
            row = make_row(f"{label} B{B} T{steps} {I}->{H}", timing, flops=flops,
                           roofline=roofline, **{"pass": p})
            target = TARGETS.get(label) if backward else None
            if target is not None and row["ratio"] is not None:
                row["target"] = target
                row["pass_target"] = row["ratio"] <= target
            rows.append(row)

    # Fused vs composed (both tinynet): the fused layer op against a per-gate graph.
    ours = _tinynet_model("LSTM", 1, False)
    w = [ours.weight_ih_l0, ours.weight_hh_l0, ours.bias_ih_l0, ours.bias_hh_l0]
    zeros = tn.zeros(B, H)

    def fused():
        ours.zero_grad()
        ours(x)[1][0].sum().backward()

    def composed():
        ours.zero_grad()
        _composed_lstm(x, zeros, zeros, *w).sum().backward()

    timing = compare({"tinynet": fused, "composed": composed}, rounds=rounds, reps=reps)
    fused_ms, comp_ms = timing["tinynet"]["median_s"] * 1e3, timing["composed"]["median_s"] * 1e3
    rows.append({"workload": f"LSTM 1 layer B{B} T{steps} {I}->{H}: fused / composed tinynet",
                 "pass": "fwd+bwd", "tinynet_ms": fused_ms, "torch_ms": None,
                 "composed_ms": comp_ms, "ratio": None, "fused_over_composed": fused_ms / comp_ms,
                 "target": 0.2, "pass_target": fused_ms / comp_ms <= 0.2,
                 "notes": f"composed per-gate tinynet LSTM: {comp_ms:.2f} ms"})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (few steps and rounds)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    info = machine_info()
    print(f"machine: {info['cpu']} | {info['usable_cores']} usable cores | numpy {info['numpy']} | "
          f"BLAS {'; '.join(info['blas'])} | torch {info['torch']} ({info['torch_threads']} threads)")
    print(f"threads: {threads}")
    rows = run(args.quick)
    print(format_table(rows))
    for r in rows:
        if "fused_over_composed" in r:
            print(f"fused / composed tinynet LSTM fwd+bwd: {r['tinynet_ms']:.2f} / {r['composed_ms']:.2f} ms"
                  f" = {r['fused_over_composed']:.3f} (target <= 0.2)")
        elif "target" in r:
            print(f"{r['workload']} [{r['pass']}]: ratio {r['ratio']:.2f} (target <= {r['target']}) "
                  f"{'PASS' if r['pass_target'] else 'MISS'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "rows": rows}, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
