"""ConvLSTM: tinynet against the same ConvLSTM written in PyTorch, side by side (issue 12).

PyTorch has no ConvLSTM, so the reference is written here from ``torch.nn.functional``:
one ``conv2d`` over ``[x ; h]``, the gates sliced i, f, g, o, the LSTM update — the
equations of ``docs/kernels/convlstm.md``, the same as ``tinynet.models.convlstm``. Both
start from the same weights. Workloads, float32, 3x3 kernels:

* one cell step, B16, 1 -> 16 channels on 32x32 (the recipe without patches), fwd and fwd+bwd;
* one cell step, B16, 16 -> 64 channels on 32x32 (a wider layer), fwd+bwd;
* the ``tinynet train convlstm`` forecaster on one batch: B16, 10 frames in, 10 out,
  16 hidden channels on 2x2 patches (16x16 maps), fwd+bwd of the MSE over all 19
  predictions.

GFLOP/s counts the convolutions only: ``2 * 4K * (C + K) * k^2 * B * H * W`` per step
forward, three times that with the backward pass (input and weight gradients).

    python benchmarks/convlstm.py                 # full run (~1 minute on an idle machine)
    python benchmarks/convlstm.py --quick         # smoke run, figures not meaningful
    python benchmarks/convlstm.py --json out.json --threads 2 [--device cuda]

``run(quick=False, device=None) -> list[dict]`` returns the rows, like the other suites.
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
from tinynet.models.convlstm import ConvLSTMCell, ConvLSTMForecaster  # noqa: E402


def _conv_flops(B, C, K, H, W, k=3, steps=1, backward=False):
    return 2 * 4 * K * (C + K) * k * k * B * H * W * steps * (3 if backward else 1)


def _torch_cell(torch, x, h, c, weight, bias):
    K = h.shape[1]
    a = torch.nn.functional.conv2d(torch.cat([x, h], 1), weight, bias, padding=weight.shape[2] // 2)
    i, f = torch.sigmoid(a[:, :K]), torch.sigmoid(a[:, K:2 * K])
    g, o = torch.tanh(a[:, 2 * K:3 * K]), torch.sigmoid(a[:, 3 * K:])
    c = f * c + i * g
    return o * torch.tanh(c), c


def _torch_forecaster(torch, frames, weight, bias, head_w, head_b, K, frames_out, p):
    B, T, _, H, W = frames.shape
    h = c = torch.zeros(B, K, H // p, W // p, device=frames.device)
    down, up = torch.nn.functional.pixel_unshuffle, torch.nn.functional.pixel_shuffle
    out = []
    for t in range(T - 1):
        h, c = _torch_cell(torch, down(frames[:, t], p), h, c, weight, bias)
        out.append(up(torch.sigmoid(torch.nn.functional.conv2d(h, head_w, head_b)), p))
    frame = down(frames[:, -1], p)
    for _ in range(frames_out):
        h, c = _torch_cell(torch, frame, h, c, weight, bias)
        frame = torch.sigmoid(torch.nn.functional.conv2d(h, head_w, head_b))
        out.append(up(frame, p))
    return torch.stack(out, 1)


def _params(torch, module, device):
    return [torch.tensor(tn.backend.asnumpy(p.data).copy(), device=device, requires_grad=True)
            for p in module.parameters()]


def run(quick: bool = False, device: str | None = None) -> list[dict]:
    device = device or common.get_device()
    torch = common.torch_or_none()
    tdev = common.torch_device(device) if torch is not None else None
    rounds, reps = (2, 1) if quick else (7, 3)
    rng = np.random.default_rng(0)
    rows = []

    for C, K, passes in ((1, 16, ("fwd", "fwd+bwd")), (16, 64, ("fwd+bwd",))):
        B, H, W = (4, 16, 16) if quick else (16, 32, 32)
        tn.manual_seed(0)
        cell = ConvLSTMCell(C, K, kernel_size=3).to(device)
        arrays = [rng.standard_normal(s).astype(np.float32) for s in [(B, C, H, W), (B, K, H, W), (B, K, H, W)]]
        x, h, c = (tn.tensor(a, device=device, requires_grad=True) for a in arrays)
        if torch is not None:
            tx, th, tc = (torch.tensor(a, device=tdev, requires_grad=True) for a in arrays)
            tw, tb = _params(torch, cell, tdev)
        for p in passes:
            backward = p == "fwd+bwd"

            def tn_step(backward=backward):
                if not backward:
                    with tn.no_grad():
                        return cell(x, (h, c))
                cell.zero_grad()
                h1, c1 = cell(x, (h, c))
                (h1.sum() + c1.sum()).backward()

            def pt_step(backward=backward):
                if not backward:
                    with torch.no_grad():
                        return _torch_cell(torch, tx, th, tc, tw, tb)
                tw.grad = tb.grad = None
                h1, c1 = _torch_cell(torch, tx, th, tc, tw, tb)
                (h1.sum() + c1.sum()).backward()

            fns = {"tinynet": tn_step}
            if torch is not None:
                fns["torch"] = pt_step
            timing = common.compare(fns, rounds=rounds, reps=reps, device=device)
            rows.append(common.make_row(f"ConvLSTM cell B{B} {C}->{K} {H}x{W} k3", timing,
                                        flops=_conv_flops(B, C, K, H, W, backward=backward), **{"pass": p}))

    # the recipe's forecaster on one batch
    B, T_in, T_out, K, P = (4, 4, 3, 8, 2) if quick else (16, 10, 10, 16, 2)
    tn.manual_seed(0)
    model = ConvLSTMForecaster(channels=1, hidden_channels=[K], frames_out=T_out, patch_size=P).to(device)
    video = rng.random((B, T_in + T_out, 1, 32, 32)).astype(np.float32)
    x, y = tn.tensor(video[:, :T_in], device=device), tn.tensor(video[:, 1:], device=device)

    def tn_model():
        model.zero_grad()
        F.mse_loss(model(x), y).backward()

    fns = {"tinynet": tn_model}
    if torch is not None:
        tw, tb, hw, hb = _params(torch, model, tdev)
        tx, ty = torch.tensor(video[:, :T_in], device=tdev), torch.tensor(video[:, 1:], device=tdev)

        def pt_model():
            for t in (tw, tb, hw, hb):
                t.grad = None
            out = _torch_forecaster(torch, tx, tw, tb, hw, hb, K, T_out, P)
            torch.nn.functional.mse_loss(out, ty).backward()
        fns["torch"] = pt_model
    timing = common.compare(fns, rounds=max(2, rounds // 2), reps=1, device=device)
    steps = T_in - 1 + T_out
    rows.append(common.make_row(f"ConvLSTMForecaster B{B} {T_in}->{T_out} frames 32x32, K{K} patch {P}",
                                timing, flops=_conv_flops(B, P * P, K, 32 // P, 32 // P, steps=steps, backward=True),
                                **{"pass": "fwd+bwd"}))
    return rows


def main(argv=None) -> int:
    parser = common.standalone_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    info, threads = common.start_standalone(args)
    rows = run(quick=args.quick, device=common.get_device())
    print(common.format_table(rows))
    common.write_json(args.json, info, threads, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
