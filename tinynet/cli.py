"""The ``tinynet`` command.

::

    tinynet train {cnn,resnet,lstm,unet,seq2seq,charlm,convlstm} [--epochs N] [--batch-size B] [--lr LR] [--seed S]
                  [--device DEV] [--threads N] [--out DIR] [--overwrite] [--resume CKPT]
                  [--plot] [--no-progress] [--val-split F] [--skip-bad] [--nproc N] [--sync-bn]
                  [--data mnist:DIR|cifar10:DIR|folder:DIR]                  (cnn, resnet, lstm)
                  [--images DIR --masks DIR] [--size N] [--width N] [--classes K]  (unet)
    tinynet predict MODEL CHECKPOINT INPUT... [--out DIR] [--plot]
    tinynet summary {cnn,resnet,lstm,unet,seq2seq,charlm,convlstm} [the model flags of train]
    tinynet gradcheck [--device DEV] [--ops NAMES] [--examples N]
    tinynet bench [--device DEV] [--quick] [--only NAMES] [--json FILE] [--plot FILE]
    tinynet selfcheck
    tinynet export {cnn,resnet,unet,lstm} CHECKPOINT --format {onnx,safetensors} --out FILE
                   [--input SHAPE] [--opset N]
    tinynet profile {cnn,lstm,resnet18,unet} [--steps N] [--trace FILE] [--device DEV]

``python -m tinynet`` with no arguments runs the self-check. Bad arguments exit with
status 2 (argparse's convention), an interrupted training run with 130 after saving a
checkpoint, and a failed run with 1.
"""
from __future__ import annotations

import argparse
import sys
import time

from .argtypes import device as _device, int_at_least as _int_at_least  # noqa: F401
from .argtypes import non_negative_int as _non_negative_int, positive_float as _positive_float  # noqa: F401
from .argtypes import positive_int as _positive_int, shape as _shape  # noqa: F401

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    from .train import command as train_command
    from .train.recipes import RECIPES
    parser = argparse.ArgumentParser(
        prog="tinynet", description="tinynet: train models, check gradients, benchmark against PyTorch.",
        epilog="With no command, `python -m tinynet` runs the self-check.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"tinynet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser("train", help="train a model on built-in data or your own files",
                           description=train_command.description())
    train_command.add_arguments(train)
    train.set_defaults(handler=train_command.run)

    from . import predict as predict_command
    predict = sub.add_parser("predict", help="run a trained model on new inputs, from its checkpoint",
                             description="Run the model of a `tinynet train` checkpoint on images or .npy "
                                         "arrays: classes and probabilities (CSV), U-Net mask PNGs, or "
                                         "regression outputs (.npy).")
    predict_command.add_arguments(predict)
    predict.set_defaults(handler=predict_command.run)

    summary = sub.add_parser("summary", help="print a Keras-style table of a model's layers",
                             description="Print each layer's output shape and parameter count for the model "
                                         "`tinynet train MODEL` builds with the same flags (e.g. `tinynet "
                                         "summary unet --images DIR --masks DIR` for the seed's U-Net).")
    summary.add_argument("model", choices=list(RECIPES))
    train_command.add_model_arguments(summary)
    summary.set_defaults(handler=_cmd_summary)

    grad = sub.add_parser("gradcheck", help="check every registered op's gradients on this machine",
                          description="Run first- and second-order gradient checks of the op registry "
                                      "on inputs drawn by hypothesis; print a table of ops.")
    grad.add_argument("--device", type=_device, default="cpu", help="cpu or cuda[:N] (default cpu)")
    grad.add_argument("--ops", metavar="NAMES", help="comma-separated op names (default: all)")
    grad.add_argument("--examples", type=_positive_int, default=5, help="samples per op (default 5)")
    grad.set_defaults(handler=_cmd_gradcheck)

    bench = sub.add_parser("bench", help="benchmark tinynet against PyTorch",
                           description="Run the benchmark suite (tinynet vs PyTorch when installed).")
    try:
        from . import bench as _bench
        _bench.add_arguments(bench)
    except ImportError:
        bench.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    bench.set_defaults(handler=_cmd_bench, bench_parser=bench)

    profile = sub.add_parser("profile", help="where a training step's time goes, op by op",
                             description="Profile training steps of a benchmark workload: a table per op type.")
    from .profiler import command as _profile_command
    _profile_command.add_arguments(profile)
    profile.set_defaults(handler=lambda args: _profile_command.run(args))

    selfcheck = sub.add_parser("selfcheck", help="a quick check that this installation works",
                               description="Quick end-to-end check of this installation.")
    selfcheck.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    selfcheck.set_defaults(handler=_cmd_selfcheck)

    from . import export_command
    export = sub.add_parser("export", help="write a trained model as ONNX or safetensors",
                            description=export_command.DESCRIPTION)
    export_command.add_arguments(export)
    export.set_defaults(handler=export_command.run)
    return parser


# ---------------------------------------------------------------------------- commands
def _check_device(device: str) -> str | None:
    from . import backend
    if backend.Device(device).type == "cuda":
        return backend.cuda_unavailable_reason()
    return None


def _cmd_summary(args) -> int:
    from . import utils
    from .train.recipes import RECIPES
    spec = RECIPES[args.model]
    if spec.model is None:
        print(f"tinynet summary: the recipe {args.model} cannot build its model without its data",
              file=sys.stderr)
        return 2
    options = {k: getattr(args, k, None) for k in ("data", "images", "masks", "size", "width", "classes")}
    try:
        model, _, input_shape = spec.model(options)
        utils.summary(model, input_shape, dtype=spec.input_dtype)          # prints the table once
    except ValueError as e:
        print(f"tinynet summary: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_gradcheck(args) -> int:
    reason = _check_device(args.device)
    if reason:
        print(f"tinynet gradcheck: device {args.device} is not usable: {reason}", file=sys.stderr)
        return 1
    from . import backend
    from .testing import all_ops
    ops = all_ops()
    if args.ops:
        wanted = [n.strip() for n in args.ops.split(",") if n.strip()]
        known = {o.name for o in ops}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            print(f"tinynet gradcheck: unknown op(s) {', '.join(unknown)}; registered: "
                  f"{', '.join(sorted(known))}", file=sys.stderr)
            return 2
        ops = [o for o in ops if o.name in wanted]
    previous = backend.get_default_device()
    backend.set_default_device(args.device)
    print(f"gradient checks on {args.device}, {args.examples} sample(s) per op, float64")
    print(f"{'op':<34}{'grad':>6}{'gradgrad':>10}{'worst abs error':>18}{'seconds':>9}")
    failures = 0
    try:
        for info in ops:
            t0 = time.perf_counter()
            result = _check_op(info, args.examples)
            failures += result["failed"]
            print(f"{info.name:<34}{result['grad']:>6}{result['gradgrad']:>10}"
                  f"{result['worst']:>18.2e}{time.perf_counter() - t0:>9.2f}")
            for msg in result["messages"][:1]:
                print("    " + msg.splitlines()[0][:200])
    finally:      # called in-process (the tests), the caller's default device is left as it was
        backend.set_default_device(previous)
    print(f"{len(ops) - failures} of {len(ops)} ops passed")
    return 1 if failures else 0


def _check_op(info, examples: int) -> dict:
    """gradcheck / gradgradcheck on ``examples`` drawn samples, plus the worst error of a
    random directional derivative (backward vs central difference)."""
    from hypothesis import HealthCheck, given, seed, settings
    from .testing import gradcheck, gradgradcheck
    state = {"grad": "pass" if info.gradcheck else "-", "gradgrad": "pass" if info.gradgradcheck else "-",
             "worst": 0.0, "messages": [], "failed": 0}

    @seed(20240611)                       # random but repeatable samples
    @settings(max_examples=examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(info.samples())
    def check(sample):
        inputs = _sample_tensors(sample)
        fn = (lambda *a: info.op(*a, **sample.kwargs))
        try:
            state["worst"] = max(state["worst"], _directional_error(fn, inputs))
        except Exception as e:  # noqa: BLE001 - reported in the table
            state["messages"].append(f"error: {type(e).__name__}: {e}")
        for key, checker, enabled in (("grad", gradcheck, info.gradcheck),
                                      ("gradgrad", gradgradcheck, info.gradgradcheck)):
            if not enabled or state[key] == "FAIL":
                continue
            try:
                checker(fn, inputs, fast_mode=info.fast_mode)
            except Exception as e:  # noqa: BLE001
                state[key] = "FAIL"
                state["messages"].append(f"{key}: {type(e).__name__}: {e}")
    try:
        check()
    except Exception as e:  # noqa: BLE001 - e.g. a strategy that cannot draw
        state["messages"].append(f"sampling: {type(e).__name__}: {e}")
        state["grad"] = "FAIL"
    state["failed"] = int("FAIL" in (state["grad"], state["gradgrad"]))
    return state


def _sample_tensors(sample):
    import numpy
    from . import tensor as make
    out = []
    for i, a in enumerate(sample.args):
        if isinstance(a, (numpy.ndarray, numpy.generic)):
            a = numpy.asarray(a)
            floating = a.dtype.kind == "f"
            out.append(make(a.astype(numpy.float64) if floating else a,
                            requires_grad=floating and i not in sample.no_grad))
        else:
            out.append(a)
    return out


def _directional_error(fn, inputs, eps: float = 1e-6) -> float:
    """|v·J·u (backward) - v·(f(x+eps·u) - f(x-eps·u))/(2eps)| for random u, v."""
    import numpy
    from . import Tensor, backend, no_grad
    rng = numpy.random.default_rng(0)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        return 0.0

    def outputs(args):
        out = fn(*args)
        out = out if isinstance(out, (tuple, list)) else (out,)
        return [o for o in out if isinstance(o, Tensor) and o.dtype.kind == "f"]

    outs = outputs(inputs)
    vs = [rng.standard_normal(o.shape) for o in outs]
    total = None
    for o, v in zip(outs, vs):
        term = (o * Tensor(backend.to_device(v, o.device))).sum()
        total = term if total is None else total + term
    for i in checked:
        inputs[i].grad = None
    if total is None or not total.requires_grad:
        return 0.0
    total.backward()
    us = {i: rng.standard_normal(inputs[i].shape) for i in checked}
    analytic = sum(float((backend.asnumpy(inputs[i].grad.data) * us[i]).sum())
                   for i in checked if inputs[i].grad is not None)

    def shifted(sign):
        args = list(inputs)
        for i in checked:
            args[i] = Tensor(inputs[i].data + sign * eps * backend.to_device(us[i], inputs[i].device))
        with no_grad():
            return sum(float((backend.asnumpy(o.data) * v).sum()) for o, v in zip(outputs(args), vs))
    numeric = (shifted(1) - shifted(-1)) / (2 * eps)
    return abs(analytic - numeric)


def _cmd_bench(args) -> int:
    try:
        from . import bench
    except ImportError:
        print("tinynet bench: the benchmark runner (tinynet/bench.py) is not part of this installation; "
              "run from a source checkout: python benchmarks/run.py", file=sys.stderr)
        return 1
    return bench.run_from_args(args, args.bench_parser)


def _cmd_selfcheck(args) -> int:
    try:
        from . import selfcheck
    except ImportError:
        print("tinynet selfcheck: the self-check (tinynet/selfcheck.py) is not available in this "
              "installation; try `tinynet gradcheck --examples 1` instead", file=sys.stderr)
        return 1
    argv = [a for a in getattr(args, "rest", []) if a != "--"]
    try:
        return int(selfcheck.main(argv) or 0)
    except TypeError:
        return int(selfcheck.main() or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tinynet`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)   # what `train --nproc` relaunches
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
