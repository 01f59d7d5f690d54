"""Attention benchmark: ``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention``
against PyTorch, forward and forward+backward.

Workloads (float32):

* ``sdpa``: queries, keys and values (N, heads, L, E) with no mask, and with
  ``is_causal=True``; forward is two GEMMs (Q Kᵀ, P V) per head, backward four more.
* ``mha``: the whole layer (input projections, heads, output projection) on (N, L, E)
  with ``batch_first=True`` and ``need_weights=False`` (PyTorch then takes its fused SDPA
  path), same weights in both libraries (PyTorch's state_dict loaded into tinynet).

Both libraries run in this one process with the same thread count (2 by default), after a
warm-up, in interleaved rounds with an idle gap between libraries (``common.compare``);
medians with spread, the ratio tinynet / PyTorch, achieved GFLOP/s of the attention GEMMs
and the fraction of the float32 GEMM roofline. No target: the figures are for comparison.

    python benchmarks/attention.py                 # full run (under a minute)
    python benchmarks/attention.py --quick         # smoke run, figures not meaningful
    python benchmarks/attention.py --json out.json --threads 2 [--device cuda]

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
from tinynet.nn import MultiheadAttention  # noqa: E402

N, HEADS, L, E = 8, 8, 128, 64          # sdpa: (N, HEADS, L, E)
MHA_N, MHA_L, MHA_E, MHA_HEADS = 16, 64, 256, 8


def _sdpa_flops(n, h, l, s, e, backward):
    """GEMM flops: Q Kᵀ and P V forward (2·L·S·E each); backward adds dO Vᵀ, Aᵀ dO, dS K, dSᵀ Q."""
    forward = n * h * 2 * (2 * l * s * e)
    return forward * (3 if backward else 1)


def _mha_flops(n, l, e, heads, backward):
    projections = 4 * 2 * n * l * e * e              # Q, K, V and output projections
    total = projections + _sdpa_flops(n, heads, l, l, e // heads, False)
    return total * (3 if backward else 1)


def roofline(quick: bool, device: str) -> float:
    """The float32 GEMM roofline on the runner's sizes (so its cached figure is reused)."""
    sizes = (1024,) if quick else (2048, 4096) if device.startswith("cuda") else (1024, 2048)
    return common.gemm_gflops(sizes, device=device)


def _pair_step(ours_fn, theirs_fn, ours_inputs, theirs_inputs, backward, torch):
    """Callables running one forward (no graph) or forward+backward in each library."""
    def tn_step():
        if not backward:
            with tn.no_grad():
                return ours_fn()
        for t in ours_inputs:
            t.grad = None
        ours_fn().sum().backward()

    def pt_step():
        if not backward:
            with torch.no_grad():
                return theirs_fn()
        for t in theirs_inputs:
            t.grad = None
        theirs_fn().sum().backward()
    return tn_step, pt_step


def run(quick: bool = False, device: str | None = None) -> list[dict]:
    """One row per (workload, pass)."""
    device = device or common.get_device()
    torch = common.torch_or_none()
    tdev = common.torch_device(device)
    rounds, reps = (2, 1) if quick else (7, 5)
    length = 32 if quick else L
    gemm = roofline(quick, device)
    rng = np.random.default_rng(0)
    rows = []

    qkv = [rng.standard_normal((N, HEADS, length, E)).astype(np.float32) for _ in range(3)]
    ours_in = [tn.tensor(a, device=device, requires_grad=True) for a in qkv]
    theirs_in = ([torch.tensor(a, device=tdev, requires_grad=True) for a in qkv]
                 if torch is not None else [])
    for causal in (False, True):
        def ours_fn(causal=causal):
            return F.scaled_dot_product_attention(*ours_in, is_causal=causal)

        def theirs_fn(causal=causal):
            return torch.nn.functional.scaled_dot_product_attention(*theirs_in, is_causal=causal)

        for p in ("fwd", "fwd+bwd"):
            tn_step, pt_step = _pair_step(ours_fn, theirs_fn, ours_in, theirs_in,
                                          p == "fwd+bwd", torch)
            fns = {"tinynet": tn_step}
            if torch is not None:
                fns["torch"] = pt_step
            timing = common.compare(fns, rounds=rounds, reps=reps, device=device)
            name = f"sdpa N{N} H{HEADS} L{length} E{E}" + (" causal" if causal else "")
            rows.append(common.make_row(name, timing, roofline=gemm, **{"pass": p},
                                        flops=_sdpa_flops(N, HEADS, length, length, E,
                                                          p == "fwd+bwd")))

    mha_len = 16 if quick else MHA_L
    x_np = rng.standard_normal((MHA_N, mha_len, MHA_E)).astype(np.float32)
    tn.manual_seed(0)
    ours = MultiheadAttention(MHA_E, MHA_HEADS, batch_first=True).to(device)
    x = tn.tensor(x_np, device=device, requires_grad=True)
    theirs, tx = None, None
    if torch is not None:
        theirs = torch.nn.MultiheadAttention(MHA_E, MHA_HEADS, batch_first=True)
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        theirs = theirs.to(tdev)
        tx = torch.tensor(x_np, device=tdev, requires_grad=True)
    for p in ("fwd", "fwd+bwd"):
        tn_step, pt_step = _pair_step(
            lambda: ours(x, x, x, need_weights=False)[0],
            lambda: theirs(tx, tx, tx, need_weights=False)[0],
            [x] + list(ours.parameters()),
            [tx] + (list(theirs.parameters()) if theirs is not None else []),
            p == "fwd+bwd", torch)
        fns = {"tinynet": tn_step}
        if torch is not None:
            fns["torch"] = pt_step
        timing = common.compare(fns, rounds=rounds, reps=reps, device=device)
        rows.append(common.make_row(
            f"MultiheadAttention N{MHA_N} L{mha_len} E{MHA_E} heads{MHA_HEADS}", timing,
            roofline=gemm, flops=_mha_flops(MHA_N, mha_len, MHA_E, MHA_HEADS, p == "fwd+bwd"),
            **{"pass": p}))
    return rows


def main(argv=None) -> int:
    parser = common.standalone_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    info, threads = common.start_standalone(args)
    rows = run(quick=args.quick, device=common.get_device())
    print(common.format_table(rows))
    print(f"float32 GEMM roofline: {roofline(args.quick, common.get_device()):.1f} GFLOP/s")
    common.write_json(args.json, info, threads, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
