"""Convolution and pooling kernels: tinynet against PyTorch, side by side (issue 4).

Workloads (float32, forward and forward+backward, with input, weight and bias gradients):
the convolutions of a ResNet / CNN / U-Net step, the U-Net's transposed convolutions, a
2x2 max pool and the U-Net's ELU. Timing follows ``common.py``: one process, the same thread count for both
libraries (2 by default), warm-up, interleaved rounds with an idle gap, medians, the ratio
tinynet / PyTorch, achieved GFLOP/s and the fraction of NumPy's float32 GEMM roofline
measured in the same run.

    python benchmarks/kernels.py                 # full run
    python benchmarks/kernels.py --quick         # smoke run: small batches, one call each
    python benchmarks/kernels.py --json out.json --threads 2 [--device cuda]

``run(quick=False, device=None, references=()) -> list[dict]`` is what
``benchmarks/run.py`` calls; ``references=("jax",)`` (``run.py --references jax``) also
times jit-compiled JAX on every row, in the same interleaved rounds (``references.py``).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402  (benchmark driver, not a kernel)

import common  # noqa: E402
import tinynet as tn  # noqa: E402
import tinynet.functional as F  # noqa: E402

# (name, op, N, C_in, C_out, H, W, kernel, stride, padding) as issue 4 specifies them
WORKLOADS = [
    ("conv1 N8 64->64 56x56 3x3 p1", "conv", 8, 64, 64, 56, 56, 3, 1, 1),
    ("conv2 N32 3->16 32x32 3x3 p1", "conv", 32, 3, 16, 32, 32, 3, 1, 1),
    ("conv3 N8 128->256 28x28 3x3 s2 p1", "conv", 8, 128, 256, 28, 28, 3, 2, 1),
    ("conv4 N4 16->16 224x224 3x3 p1", "conv", 4, 16, 16, 224, 224, 3, 1, 1),
    ("convT N8 128->64 14x14 k2 s2", "convT", 8, 128, 64, 14, 14, 2, 2, 0),
    ("convT N8 128->64 14x14 k4 s2 p1", "convT", 8, 128, 64, 14, 14, 4, 2, 1),
    ("maxpool N8 C64 112x112 2x2 s2", "maxpool", 8, 64, 64, 112, 112, 2, 2, 0),
    # the U-Net's activation (issue 11): one 16-channel 128x128 map of its first stage
    ("elu N2 C16 128x128", "elu", 2, 16, 16, 128, 128, 0, 0, 0),
]


def flops(op, N, C_in, C_out, H, W, k, s, p, backward):
    """GEMM flops of the workload (backward = input-gradient + weight-gradient GEMMs)."""
    if op in ("maxpool", "elu"):
        return None
    if op == "conv":
        Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        forward = 2 * N * C_out * Ho * Wo * C_in * k * k
    else:
        forward = 2 * N * C_in * H * W * C_out * k * k
    return forward * (3 if backward else 1)


def make_cases(op, N, C_in, C_out, H, W, k, s, p, device="cpu"):
    """``{library: (forward_fn, forward_backward_fn)}`` on the same float32 data."""
    torch = common.torch_or_none()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C_in, H, W), dtype=np.float32)
    w = b = None
    if op not in ("maxpool", "elu"):
        w_shape = (C_out, C_in, k, k) if op == "conv" else (C_in, C_out, k, k)
        w = rng.standard_normal(w_shape, dtype=np.float32) * 0.1
        b = rng.standard_normal(C_out, dtype=np.float32)

    def call(lib, x_, w_, b_):
        if op == "maxpool":
            return lib.max_pool2d(x_, k, s, p)
        if op == "elu":
            return lib.elu(x_)
        if op == "conv":
            return lib.conv2d(x_, w_, b_, s, p)
        return lib.conv_transpose2d(x_, w_, b_, s, p)

    ours = [None if a is None else tn.tensor(a, device=device, requires_grad=True) for a in (x, w, b)]
    with tn.no_grad():
        gy_shape = call(F, *ours).shape
    gy = rng.standard_normal(gy_shape, dtype=np.float32)
    ours_gy = tn.tensor(gy, device=device)

    def ours_forward():
        with tn.no_grad():
            call(F, *ours)

    def ours_forward_backward():
        for t in ours:
            if t is not None:
                t.grad = None
        call(F, *ours).backward(ours_gy)

    cases = {"tinynet": (ours_forward, ours_forward_backward)}
    if torch is not None:
        dev = common.torch_device(device)
        theirs = [None if a is None else torch.tensor(a, device=dev, requires_grad=True)
                  for a in (x, w, b)]
        theirs_gy = torch.tensor(gy, device=dev)
        TF = torch.nn.functional

        def torch_forward():
            with torch.no_grad():
                call(TF, *theirs)

        def torch_forward_backward():
            for t in theirs:
                if t is not None:
                    t.grad = None
            call(TF, *theirs).backward(theirs_gy)

        cases["torch"] = (torch_forward, torch_forward_backward)
    return cases


def run(quick: bool = False, device: str | None = None, references=()) -> list[dict]:
    """One row per (workload, pass); ``quick`` shrinks batches to 1 (a smoke run).
    ``references`` may name ``"jax"``: JAX then runs beside both libraries, checked
    against PyTorch first (skipped, with the reason printed, where it cannot run)."""
    device = device or common.get_device()
    roofline = common.gemm_gflops(device=device)
    jax_mods = _jax_reference(device) if "jax" in references else None
    if jax_mods is not None:
        import references as reference
    rows = []
    for name, op, N, *shape in WORKLOADS:
        if quick:
            N = 1
        cases = make_cases(op, N, *shape, device=device)
        if jax_mods is not None:
            jax_forward, jax_forward_backward, check, (x, w, b, gy) = reference.jax_cases(
                jax_mods, op, N, *shape)
            check(*reference.torch_reference(op, x, w, b, gy, *shape[-3:]))
            cases["jax"] = (jax_forward, jax_forward_backward)
        for index, pass_name in enumerate(("fwd", "fwd+bwd")):
            timing = common.compare({lib: fns[index] for lib, fns in cases.items()},
                                    rounds=2 if quick else 7, reps=2 if quick else 5,
                                    device=device)
            rows.append(common.make_row(name, timing, flops=flops(op, N, *shape, backward=index == 1),
                                        roofline=roofline, **{"pass": pass_name}))
    return rows


def _jax_reference(device):
    """JAX's modules for the reference rows, or None with the reason printed."""
    import references as reference
    return common.load_reference("kernels", "JAX", reference.unavailable(device),
                                 lambda: reference.import_jax(common.get_threads()))


def main(argv=None) -> int:
    parser = common.standalone_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    info, threads = common.start_standalone(args)
    rows = run(quick=args.quick, device=args.device)
    print(common.format_table(rows))
    print(f"NumPy float32 GEMM roofline: {common.gemm_gflops():.1f} GFLOP/s "
          f"({common.get_threads()} threads)")
    common.write_json(args.json, info, threads, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
