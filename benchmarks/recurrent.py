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

Both libraries run in this one process with the same thread count (2 by default), after a
warm-up, in interleaved rounds with an idle gap between libraries (``common.compare``);
medians with spread, the ratio tinynet / PyTorch, achieved GEMM GFLOP/s and the fraction
of the float32 GEMM roofline. Targets (forward + backward): 1-layer LSTM <= 1.5x PyTorch,
2-layer bidirectional <= 1.7x (``target``, ``pass_target`` in the rows).

    python benchmarks/recurrent.py                 # full run (~1 minute)
    python benchmarks/recurrent.py --quick         # smoke run, figures not meaningful
    python benchmarks/recurrent.py --json out.json --threads 2 [--device cuda]

``run(quick=False, device=None) -> list[dict]`` is what ``benchmarks/run.py`` calls.
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))

import numpy as np  # noqa: E402  (benchmark driver, not a kernel)

import common  # noqa: E402
import tinynet as tn  # noqa: E402
import tinynet.functional as F  # noqa: E402
from tinynet.nn.rnn import GRU, LSTM  # noqa: E402

B, T, I, H = 32, 50, 64, 128
TARGETS = {"LSTM 1 layer": 1.5, "LSTM 2 layers bidirectional": 1.7}   # vs PyTorch, fwd+bwd
COMPOSED_TARGET = 0.2   # fused / per-gate composed tinynet LSTM, fwd+bwd
VERDICT = {True: "PASS", False: "MISS", None: "not judged (--quick, or no PyTorch)"}


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


def _torch_model(torch, kind, layers, bidirectional, ours, device):
    """torch.nn's layer with tinynet's initial weights, on ``device``."""
    cls = torch.nn.LSTM if kind == "LSTM" else torch.nn.GRU
    m = cls(I, H, num_layers=layers, bidirectional=bidirectional)
    m.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    return m.to(device)


def roofline(quick: bool, device: str) -> float:
    """The float32 GEMM roofline on the sizes the runner measures (quick: 1024; CPU: 1024
    and 2048; GPU: 2048 and 4096), so that ``common.gemm_gflops``'s cached figure from the
    runner is reused rather than measured again."""
    sizes = (1024,) if quick else (2048, 4096) if device.startswith("cuda") else (1024, 2048)
    return common.gemm_gflops(sizes, device=device)


def _last_h(out):
    """The last hidden state of ``(output, h_n)`` or ``(output, (h_n, c_n))``."""
    return out[1][0] if isinstance(out[1], tuple) else out[1]


def _verdict(ratio, target, quick):
    """Met the target? None without a ratio (no PyTorch) or in a smoke run (no result)."""
    return None if quick or ratio is None else ratio <= target


def run(quick: bool = False, device: str | None = None) -> list[dict]:
    """One row per (layer, pass), then the fused / composed tinynet LSTM row. Rows with a
    target carry ``target`` and ``pass_target`` (None when ``quick`` or without PyTorch).

    Uses the thread count and smoke mode already in force (``main`` and the runner set
    them); ``device`` defaults to the runner's.
    """
    device = device or common.get_device()
    torch = common.torch_or_none()
    rounds, reps = (2, 1) if quick else (7, 5)
    steps = 8 if quick else T
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((steps, B, I)).astype(np.float32)
    x = tn.tensor(x_np, device=device)
    tx = torch.tensor(x_np, device=common.torch_device(device)) if torch is not None else None
    gemm = roofline(quick, device)
    rows = []

    for label, kind, layers, bidir, passes in (
            ("LSTM 1 layer", "LSTM", 1, False, ("fwd", "fwd+bwd")),
            ("LSTM 2 layers bidirectional", "LSTM", 2, True, ("fwd+bwd",)),
            ("GRU 1 layer", "GRU", 1, False, ("fwd+bwd",))):
        ours = _tinynet_model(kind, layers, bidir)
        theirs = (_torch_model(torch, kind, layers, bidir, ours, common.torch_device(device))
                  if torch is not None else None)
        ours.to(device)
        for p in passes:
            backward = p == "fwd+bwd"

            def tn_step(m=ours, backward=backward):
                if not backward:
                    with tn.no_grad():
                        return m(x)
                m.zero_grad()
                _last_h(m(x)).sum().backward()

            def pt_step(m=theirs, backward=backward):
                if not backward:
                    with torch.no_grad():
                        return m(tx)
                m.zero_grad()
                _last_h(m(tx)).sum().backward()

            fns = {"tinynet": tn_step}
            if theirs is not None:
                fns["torch"] = pt_step
            timing = common.compare(fns, rounds=rounds, reps=reps, device=device)
            flops = _lstm_flops(steps, B, I, H, layers, 2 if bidir else 1, backward)
            if kind == "GRU":
                flops = flops * 3 // 4
            row = common.make_row(f"{label} B{B} T{steps} {I}->{H}", timing, flops=flops,
                                  roofline=gemm, **{"pass": p})
            target = TARGETS.get(label) if backward else None
            if target is not None:
                row["target"] = target
                row["pass_target"] = _verdict(row["ratio"], target, quick)
            rows.append(row)

    # Fused vs composed (both tinynet): the fused layer op against a per-gate graph. No
    # PyTorch here: torch_ms and ratio stay empty; the figure is fused_over_composed.
    ours = _tinynet_model("LSTM", 1, False).to(device)
    w = [ours.weight_ih_l0, ours.weight_hh_l0, ours.bias_ih_l0, ours.bias_hh_l0]
    zeros = tn.zeros(B, H, device=device)

    def fused():
        ours.zero_grad()
        _last_h(ours(x)).sum().backward()

    def composed():
        ours.zero_grad()
        _composed_lstm(x, zeros, zeros, *w).sum().backward()

    timing = common.compare({"tinynet": fused, "composed": composed}, rounds=rounds, reps=reps,
                            device=device)
    row = common.make_row(f"LSTM 1 layer B{B} T{steps} {I}->{H}: fused / composed tinynet",
                          timing, flops=_lstm_flops(steps, B, I, H, backward=True),
                          roofline=gemm, **{"pass": "fwd+bwd"})
    comp_ms = timing["composed"]["median_s"] * 1e3
    row.update(composed_ms=comp_ms, composed_spread_ms=timing["composed"]["spread_s"] * 1e3,
               fused_over_composed=row["tinynet_ms"] / comp_ms, target=COMPOSED_TARGET,
               notes=f"composed per-gate tinynet LSTM: {comp_ms:.2f} ms; target is "
                     f"fused / composed <= {COMPOSED_TARGET}")
    row["pass_target"] = _verdict(row["fused_over_composed"], COMPOSED_TARGET, quick)
    rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = common.standalone_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    info, threads = common.start_standalone(args)
    rows = run(quick=args.quick, device=common.get_device())
    print(common.format_table(rows))
    print(f"float32 GEMM roofline: {roofline(args.quick, common.get_device()):.1f} GFLOP/s")
    for r in rows:
        if "fused_over_composed" in r:
            print(f"fused / composed tinynet LSTM fwd+bwd: {r['tinynet_ms']:.2f} / "
                  f"{r['composed_ms']:.2f} ms = {r['fused_over_composed']:.3f} "
                  f"(target <= {r['target']}) {VERDICT[r['pass_target']]}")
        elif r.get("target") is not None:
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
            print(f"{r['workload']} [{r['pass']}]: ratio {ratio} (target <= {r['target']}) "
                  f"{VERDICT[r['pass_target']]}")
    common.write_json(args.json, info, threads, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
