"""The ``tinynet export MODEL CHECKPOINT --format onnx|safetensors --out FILE`` command.

The checkpoint alone rebuilds the model (:func:`tinynet.utils.load_model`: constructor and
arguments recorded by ``tinynet train``); ``MODEL`` is the recipe it was trained with, checked
against the recipe the checkpoint records (or, for checkpoints without one, the model class).
Then:

* ``--format safetensors``: :func:`tinynet.utils.save_safetensors` of the model's
  ``state_dict`` (PyTorch's key names), with the recorded model configuration as JSON in
  the header's metadata (key ``tinynet_config``).
* ``--format onnx``: :func:`tinynet.onnx.export` traced on zeros of one sample's shape,
  batch dimension free. The sample shape comes from ``--input``, else from the
  checkpoint's recorded ``run.input_shape``, else from the model when it fixes one
  (``SimpleCNN``: ``in_channels`` and ``input_size``); otherwise ``--input`` is required.
  Models that start with an ``Embedding`` (``charlm``) are traced on integer ids.

Exit status: 0 written, 1 export failed (an op without ONNX export, a missing optional
package), 2 bad arguments or an unusable checkpoint.
"""
from __future__ import annotations

import argparse
import json
import sys

from . import argtypes

__all__ = ["add_arguments", "run", "DESCRIPTION"]

DESCRIPTION = ("Write a model trained by `tinynet train` as ONNX (for ONNX Runtime and other "
               "runtimes) or safetensors (weights for PyTorch: load_file + load_state_dict). "
               "The checkpoint alone rebuilds the model.")

# For checkpoints that do not record their recipe: the classes each name may hold.
MODEL_CLASSES = {"cnn": ("SimpleCNN",), "resnet": ("ResNet",), "unet": ("UNet",),
                 "lstm": ("LSTMClassifier", "LSTMRegressor")}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``tinynet export``'s arguments to ``parser``."""
    from .train.recipes import RECIPES
    parser.add_argument("model", choices=sorted(RECIPES), help="the recipe the checkpoint was trained with")
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint of `tinynet train` "
                        "(e.g. runs/cnn/last.npz)")
    parser.add_argument("--format", required=True, choices=["onnx", "safetensors"], dest="format",
                        help="onnx: the graph and weights; safetensors: the weights, by PyTorch name")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    parser.add_argument("--input", type=argtypes.shape, metavar="SHAPE",
                        help="one sample's shape for ONNX, without the batch: C,H,W for images, "
                             "T,F for sequences (default: recorded in the checkpoint, or fixed "
                             "by the model)")
    parser.add_argument("--opset", type=argtypes.positive_int, default=17,
                        help="ONNX opset (default 17)")
    return parser


def _sample_shape(model, config: dict, given):
    if given:
        return tuple(given)
    run = config.get("run") if isinstance(config, dict) else None
    if isinstance(run, dict) and run.get("input_shape"):
        return tuple(int(n) for n in run["input_shape"])
    if type(model).__name__ == "SimpleCNN":
        return (model.in_channels,) + tuple(model.input_size)
    return None


def run(args) -> int:
    """Runs ``tinynet export`` with parsed ``args``; returns the exit status."""
    from .backend import numpy as np
    from .tensor import Tensor
    from .utils import load_model, read_config, save_safetensors
    name = "tinynet export"
    try:
        model = load_model(args.checkpoint)
        config = read_config(args.checkpoint)
    except (FileNotFoundError, ValueError) as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 2
    held = type(model).__name__
    run_config = config.get("run") if isinstance(config.get("run"), dict) else {}
    recipe = run_config.get("recipe")
    if recipe is not None and recipe != args.model:
        print(f"{name}: {args.checkpoint} was trained with the {recipe} recipe (a {held}), not "
              f"{args.model}", file=sys.stderr)
        return 2
    if recipe is None and args.model in MODEL_CLASSES and held not in MODEL_CLASSES[args.model]:
        print(f"{name}: {args.checkpoint} holds a {held}, not a {args.model} model "
              f"({' or '.join(MODEL_CLASSES[args.model])})", file=sys.stderr)
        return 2
    if args.format == "safetensors":
        try:
            save_safetensors(model, args.out, metadata={"tinynet_config": json.dumps(config)})
        except (ImportError, OSError) as e:
            print(f"{name}: {e}", file=sys.stderr)
            return 1
        print(f"wrote {args.out} ({held} weights, {len(model.state_dict())} tensors, safetensors)")
        return 0
    shape = _sample_shape(model, config, args.input)
    if shape is None:
        print(f"{name}: the checkpoint does not record one sample's input shape for {held}; "
              f"give it with --input (C,H,W for images, T,F for sequences)", file=sys.stderr)
        return 2
    from .nn import Embedding
    # Models that start with an Embedding read integer ids (as in tinynet summary).
    first = next(iter(model.children()), None)
    dtype = np.int64 if isinstance(first, Embedding) else np.float32
    try:
        from .onnx import UnsupportedOperatorError, export
        example = Tensor(np.zeros((1,) + shape, dtype=dtype))
        proto = export(model, example, args.out, opset=args.opset)
    except (ImportError, OSError) as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    except (UnsupportedOperatorError, TypeError) as e:   # no export; a forward with other inputs
        print(f"{name}: {held} cannot be exported as ONNX: {e}", file=sys.stderr)
        return 1
    except ValueError as e:        # the input shape does not fit the model, a bad opset
        print(f"{name}: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({held}, input (batch, {', '.join(map(str, shape))}), "
          f"{len(proto.graph.node)} ONNX nodes, opset {args.opset})")
    return 0
