"""A training step's convolutions one by one: tinynet against PyTorch, layer by layer (issue 11).

The training suite times whole steps; this script says where a step's convolution time
goes. It runs the model's forward once with a hook on every ``Conv2d`` and
``ConvTranspose2d``, groups the layers by shape (batch, channels, map, kernel, stride,
padding), and times each shape's three products, as the backward needs them:

    conv2d(x, W):            fwd y = conv2d(x, W)    dx = conv_transpose2d(dy, W)    dW = conv2d_weight(x, dy)
    conv_transpose2d(x, W):  fwd y = conv_transpose2d(x, W)    dx = conv2d(dy, W)    dW = conv2d_weight(dy, x)

through tinynet's public functional ops (no bias: it is a separate sum) and PyTorch's
``conv2d`` / ``conv_transpose2d`` and ``aten.convolution_backward`` (what its autograd
runs), interleaved with ``common.compare`` (idle gap, rewarm, medians). Each row gives
both times, the ratio, tinynet's GFLOP/s and its share of the step's convolution time
(time x the number of layers of that shape); the total is the convolutions of one step.

    python benchmarks/layers.py                      # ResNet-18 CIFAR, N16 3x32x32
    python benchmarks/layers.py --model unet         # the U-Net, N2 3x128x128
    python benchmarks/layers.py --quick              # smoke run: small batch, one call each

Not a suite of ``run.py`` (it adds minutes to a run and no target); a developer's map of
where to work. Speed is measured here, never asserted.
"""
from __future__ import annotations

import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402  (benchmark driver)

import common  # noqa: E402
import kernels  # noqa: E402
import training  # noqa: E402
import tinynet as tn  # noqa: E402
import tinynet.functional as F  # noqa: E402
from tinynet import nn  # noqa: E402
from tinynet.functional.conv import conv2d_weight  # noqa: E402
from tinynet.kernels.im2col import conv_output_size, conv_transpose_output_size  # noqa: E402


def conv_layers(model, shape, device="cpu") -> Counter:
    """``Counter`` of ``(kind, N, C_in, H, W, C_out, k, s, p, output_padding)`` over the
    model's convolutions in one forward of a ``shape`` batch (kind ``"conv"`` or
    ``"convT"``; square maps, kernels, strides and paddings, one group, no dilation)."""
    found = Counter()

    def hook(module, inputs, output):
        x = inputs[0]
        square = (x.shape[2] == x.shape[3] and len({*module.kernel_size}) == len({*module.stride})
                  == len({*module.padding}) == 1)
        if module.groups != 1 or module.dilation != (1, 1) or not square:
            raise ValueError(f"layers.py: {module!r} on a {tuple(x.shape)} input: only square "
                             "maps, kernels, strides and paddings, one group, no dilation")
        kind = "convT" if isinstance(module, nn.ConvTranspose2d) else "conv"
        output_padding = module.output_padding[0] if kind == "convT" else 0
        found[(kind,) + tuple(x.shape) + (output.shape[1], module.kernel_size[0], module.stride[0],
                                          module.padding[0], output_padding)] += 1
    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with tn.no_grad():
            model(tn.zeros(*shape, device=device))
    finally:
        for h in handles:
            h.remove()
    return found


def label(key) -> str:
    kind, N, C_in, H, W, C_out, k, s, p, _ = key
    return f"{kind} N{N} {C_in}->{C_out} {H}x{W} k{k} s{s} p{p}"


def flops(key) -> int:
    """Multiply-adds x 2 of one product (the three are equal): the direct convolution's,
    as ``kernels.py`` counts its rows' forward."""
    kind, N, C_in, H, W, C_out, k, s, p, _ = key
    return kernels.flops(kind, N, C_in, C_out, H, W, k, s, p, backward=False)


def make_cases(key, device="cpu") -> dict:
    """``{pass: {library: fn}}`` on the same float32 data."""
    kind, N, C_in, H, W, C_out, k, s, p, op = key
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C_in, H, W)).astype(np.float32)
    w_shape = (C_out, C_in, k, k) if kind == "conv" else (C_in, C_out, k, k)
    w = (rng.standard_normal(w_shape) / np.sqrt(C_in * k * k)).astype(np.float32)
    if kind == "conv":
        Ho, Wo = conv_output_size(H, k, s, p), conv_output_size(W, k, s, p)
    else:
        Ho, Wo = conv_transpose_output_size(H, k, s, p, op), conv_transpose_output_size(W, k, s, p, op)
    dy = rng.standard_normal((N, C_out, Ho, Wo)).astype(np.float32)
    tx, tw, tdy = (tn.tensor(a, device=device) for a in (x, w, dy))
    if kind == "conv":
        back = H - conv_transpose_output_size(Ho, k, s, p)     # the input gradient's output_padding
        cases = {"fwd": lambda: F.conv2d(tx, tw, stride=s, padding=p),
                 "dx": lambda: F.conv_transpose2d(tdy, tw, stride=s, padding=p, output_padding=back),
                 "dW": lambda: conv2d_weight(tx, tdy, w_shape, stride=s, padding=p)}
    else:
        cases = {"fwd": lambda: F.conv_transpose2d(tx, tw, stride=s, padding=p, output_padding=op),
                 "dx": lambda: F.conv2d(tdy, tw, stride=s, padding=p),
                 "dW": lambda: conv2d_weight(tdy, tx, w_shape, stride=s, padding=p)}
    out = {name: {"tinynet": fn} for name, fn in cases.items()}
    torch = common.torch_or_none()
    if torch is not None:
        # PyTorch on the same GPU where it has CUDA, else on the CPU (a CPU-only build
        # beside tinynet's GPU arrays, or tinynet's CuPy stand-in in the tests)
        on = device if str(device).startswith("cuda") and torch.cuda.is_available() else "cpu"
        px, pw, pdy = (torch.from_numpy(a).to(on) for a in (x, w, dy))
        transposed = kind == "convT"

        def backward(mask):
            return lambda: torch.ops.aten.convolution_backward(
                pdy, px, pw, None, [s, s], [p, p], [1, 1], transposed, [op, op], 1, mask)
        forward = (lambda: torch.nn.functional.conv2d(px, pw, stride=s, padding=p)) if kind == "conv" else (
            lambda: torch.nn.functional.conv_transpose2d(px, pw, stride=s, padding=p, output_padding=op))
        out["fwd"]["torch"] = forward
        out["dx"]["torch"] = backward([True, False, False])
        out["dW"]["torch"] = backward([False, True, False])
    return out


def run(quick: bool = False, device: str | None = None, model: str = "resnet18") -> list[dict]:
    """One row per (layer shape, pass), in the model's order: times in ms, the ratio,
    tinynet's GFLOP/s, ``count`` (layers of that shape) and ``share`` (of the step's
    convolution time, tinynet's; None where every time is zero)."""
    device = device or common.get_device()
    shape = training.QUICK_SHAPES[model] if quick else training.WORKLOADS[model][1]
    width = training.QUICK_WIDTHS[model] if quick else None
    layers = conv_layers(training.tinynet_model(model, width).to(device), shape, device)
    rounds, reps = (1, 1) if quick else (5, 3)
    roofline = None if quick else common.gemm_gflops(device=device)
    rows = []
    for key, count in layers.items():
        for pass_name, fns in make_cases(key, device).items():
            timing = common.compare(fns, rounds=rounds, reps=reps, device=device)
            rows.append(common.make_row(f"{label(key)} x{count}", timing, flops(key), roofline,
                                        **{"pass": pass_name}, count=count))
    total = sum(r["tinynet_ms"] * r["count"] for r in rows)
    for r in rows:
        r["share"] = r["tinynet_ms"] * r["count"] / total if total else None
    return rows


def print_rows(rows: list[dict]) -> None:
    width = max(len(r["workload"]) for r in rows)
    head = (f"{'layer':{width}s} {'pass':4s} {'tinynet ms':>10s} {'torch ms':>9s} {'ratio':>6s} "
            f"{'GFLOP/s':>8s} {'share':>6s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:5.2f}x"
        torch_ms = "-" if r["torch_ms"] is None else f"{r['torch_ms']:9.3f}"
        gflops = "-" if r["gflops"] is None else f"{r['gflops']:8.1f}"
        share = "-" if r["share"] is None else f"{100 * r['share']:5.1f}%"
        print(f"{r['workload']:{width}s} {r['pass']:4s} {r['tinynet_ms']:10.3f} {torch_ms:>9s} "
              f"{ratio:>6s} {gflops:>8s} {share:>6s}")
    tn_total = sum(r["tinynet_ms"] * r["count"] for r in rows)
    line = f"one step's convolutions (count x time): tinynet {tn_total:.1f} ms"
    if all(r["torch_ms"] is not None for r in rows):
        pt_total = sum(r["torch_ms"] * r["count"] for r in rows)
        line += f", PyTorch {pt_total:.1f} ms ({tn_total / pt_total:.2f}x)"
    print(line)


def main(argv=None) -> int:
    parser = common.standalone_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("resnet18", "unet", "cnn"), default="resnet18",
                        help="whose training step (training.py's workloads; default resnet18)")
    args = parser.parse_args(argv)
    info, threads = common.start_standalone(args)
    rows = run(quick=args.quick, device=common.get_device(), model=args.model)
    print_rows(rows)
    common.write_json(args.json, info, threads, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
