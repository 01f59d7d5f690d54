"""``tinynet predict``: run a trained model on new inputs, from its checkpoint alone.

The checkpoint written by ``tinynet train`` records the model's constructor (so
:func:`tinynet.utils.load_model` rebuilds it) and how the run prepared its inputs: the
Pillow mode, the size images were resized to, the scale, and whether the model reads
images or rows of images (the LSTM). Inputs are prepared the same way and run in batches
under ``no_grad`` with the model in eval mode.

* classifiers print ``INPUT: CLASS (probability)`` per input and write ``predictions.csv``;
* the U-Net writes one mask PNG per input image, at the image's own size (``MASK`` 0/255
  for one or two classes, class indices as a palette PNG for more), and with ``--plot``
  an overlay of the mask on the image;
* the LSTM regressor (and a classifier given ``.npy`` sequences) reads ``.npy`` arrays of
  samples and writes ``predictions.npy``.

Inputs may be image files, folders of images, or ``.npy`` arrays of samples (N, ...) in
the shape the model takes.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

from . import argtypes

__all__ = ["add_arguments", "run", "predict_arrays", "prepare_images"]

_FOREGROUND = (255, 64, 64)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``tinynet predict``'s arguments to ``parser``."""
    parser.add_argument("model", help="the recipe the checkpoint was trained with (cnn, resnet, lstm, unet)")
    parser.add_argument("checkpoint", help="a checkpoint written by tinynet train (e.g. runs/cnn/last.npz)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, folders of images, or .npy arrays of samples")
    parser.add_argument("--out", metavar="DIR",
                        help="where predictions go (default: predictions/ beside the checkpoint)")
    parser.add_argument("--batch-size", type=argtypes.positive_int, default=32, help="inputs per batch (default 32)")
    parser.add_argument("--device", type=argtypes.device, default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--plot", action="store_true", help="unet: also write each mask over its image")
    return parser


def _task_of(model, run: dict) -> str:
    if run.get("task"):
        return run["task"]
    name = type(model).__name__
    return {"UNet": "segmentation", "LSTMRegressor": "regression"}.get(name, "classification")


def _expand(inputs) -> list:
    from .data.images import _is_image
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, f) for f in os.listdir(item) if _is_image(f))
            if not found:
                raise ValueError(f"{item}: folder holds no images")
            paths += found
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return paths


def prepare_images(paths, preprocess: dict):
    """Decodes and prepares image files as the training run did: a float32 array
    (N, C, H, W), or (N, H, C*W) for ``layout="rows"``, and each image's original (H, W)."""
    from .backend import numpy as np
    from .data.images import read_image
    from .data.resize import bilinear
    mode = preprocess.get("mode", "RGB")
    size = tuple(preprocess["size"]) if preprocess.get("size") else None
    arrays, sizes = [], []
    for path in paths:
        image = read_image(path, mode)
        sizes.append(tuple(image.shape[1:]))
        if size is not None and tuple(image.shape[1:]) != size:
            image = bilinear(image[None], size)[0]
        arrays.append(image)
    if len({a.shape for a in arrays}) > 1:
        raise ValueError("images have different sizes and the checkpoint records no --size to resize them to: "
                         + ", ".join(f"{p} {a.shape[1:]}" for p, a in zip(paths, arrays)))
    x = np.stack(arrays).astype(np.float32) * np.float32(preprocess.get("scale", 1.0))
    if preprocess.get("layout") == "rows":
        n, c, h, w = x.shape
        x = x.transpose(0, 2, 1, 3).reshape(n, h, c * w)
    return x, sizes


def predict_arrays(model, x, batch_size: int = 32, device=None):
    """The model's outputs on ``x`` (an array of samples), in batches under ``no_grad``, as
    one host array; the model is put in eval mode."""
    from . import backend
    from .autograd import no_grad
    from .backend import numpy as np
    from .tensor import Tensor
    model.eval()
    outputs = []
    with no_grad():
        for start in range(0, len(x), batch_size):
            batch = Tensor(backend.to_device(np.ascontiguousarray(x[start:start + batch_size]),
                                             device or backend.get_default_device()))
            outputs.append(backend.asnumpy(model(batch).data))
    return np.concatenate(outputs) if outputs else np.zeros((0,))


def _load_npy(paths, input_shape):
    from .backend import numpy as np
    arrays = []
    for path in paths:
        a = np.load(path, allow_pickle=False)
        if input_shape is not None and tuple(a.shape) == tuple(input_shape):
            a = a[None]                           # one sample
        if input_shape is not None and tuple(a.shape[1:]) != tuple(input_shape):
            raise ValueError(f"{path}: samples of shape {tuple(a.shape[1:])}, but the model takes "
                             f"{tuple(input_shape)} (array of shape (N, {', '.join(map(str, input_shape))}))")
        arrays.append(a.astype(np.float32))
    return np.concatenate(arrays)


def _softmax(z):
    from .backend import numpy as np
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _write_mask(path, mask_probs, size, threshold: float = 0.5):
    """Probabilities (K, h, w) -> a mask PNG at the image's ``size`` (H, W)."""
    from PIL import Image
    from .backend import numpy as np
    from .data.resize import nearest
    k = mask_probs.shape[0]
    labels = (mask_probs[0] > threshold).astype(np.int64) if k == 1 else mask_probs.argmax(axis=0)
    labels = nearest(labels[None], size)[0]
    if k <= 2:
        Image.fromarray((labels * 255).astype(np.uint8), mode="L").save(path)
    else:
        image = Image.fromarray(labels.astype(np.uint8), mode="P")
        rng = np.random.default_rng(0)
        palette = [0, 0, 0] + rng.integers(64, 256, 3 * 255).tolist()
        image.putpalette(palette)
        image.save(path)
    return labels


def _write_overlay(path, image_path, labels):
    from PIL import Image
    from .backend import numpy as np
    with Image.open(image_path) as img:
        rgb = np.asarray(img.convert("RGB")).astype(np.float32)
    tint = np.zeros_like(rgb)
    tint[labels > 0] = _FOREGROUND
    alpha = np.where(labels[..., None] > 0, 0.45, 0.0).astype(np.float32)
    Image.fromarray((rgb * (1 - alpha) + tint * alpha).astype(np.uint8)).save(path)


def run(args) -> int:
    """Runs ``tinynet predict`` with parsed ``args``; returns the exit status."""
    from .utils import load_model, read_config
    try:
        config = read_config(args.checkpoint)
        run_config = config.get("run") or {}
        recipe = run_config.get("recipe")
        if recipe is not None and recipe != args.model:
            raise ValueError(f"{args.checkpoint} was written by `tinynet train {recipe}`, not {args.model}")
        model = load_model(args.checkpoint, device=args.device)
        paths = _expand(args.inputs)
    except (ValueError, FileNotFoundError) as e:
        print(f"tinynet predict: {e}", file=sys.stderr)
        return 2
    task = _task_of(model, run_config)
    if task not in ("classification", "segmentation", "regression"):
        print(f"tinynet predict: {args.checkpoint} holds a {task} model; predict handles classifiers, "
              f"the U-Net and the LSTM regressor", file=sys.stderr)
        return 2
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "predictions")
    os.makedirs(out_dir, exist_ok=True)
    npy = [p for p in paths if p.lower().endswith(".npy")]
    images = [p for p in paths if not p.lower().endswith(".npy")]
    try:
        if npy and images:
            raise ValueError("give either image files or .npy arrays, not both")
        if npy:
            x, sizes = _load_npy(npy, run_config.get("input_shape")), None
            names = [f"{os.path.basename(p)}" for p in npy]
        else:
            preprocess = run_config.get("preprocess")
            if not preprocess:
                raise ValueError(f"{args.checkpoint} records no input preparation (it was not written by "
                                 "tinynet train); give .npy arrays of samples instead")
            x, sizes = prepare_images(images, preprocess)
            names = images
    except ImportError as e:
        print(f"tinynet predict: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as e:
        print(f"tinynet predict: {e}", file=sys.stderr)
        return 2
    outputs = predict_arrays(model, x, args.batch_size, args.device)
    if task == "classification":
        probs = _softmax(outputs.astype("float64"))
        classes = run_config.get("class_names") or [str(i) for i in range(probs.shape[1])]
        best = probs.argmax(axis=1)
        labels = names if sizes is not None else [f"sample {i}" for i in range(len(best))]
        csv_path = os.path.join(out_dir, "predictions.csv")
        with open(csv_path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["input", "class", "probability"] + [f"p_{c}" for c in classes])
            for label, k, p in zip(labels, best, probs):
                writer.writerow([label, classes[k], f"{p[k]:.6f}"] + [f"{v:.6f}" for v in p])
        for label, k, p in zip(labels, best, probs):
            print(f"{label}: {classes[k]} ({p[k]:.3f})")
        print(f"wrote {csv_path}")
    elif task == "segmentation":
        if sizes is None:
            path = os.path.join(out_dir, "predictions.npy")
            import numpy
            numpy.save(path, outputs)
            print(f"wrote {path} (probabilities, shape {outputs.shape})")
            return 0
        logits = getattr(model, "final_activation", "sigmoid") is None
        probs = 1.0 / (1.0 + _exp_neg(outputs)) if logits else outputs
        for path, p, size in zip(names, probs, sizes):
            stem = os.path.splitext(os.path.basename(path))[0]
            mask_path = os.path.join(out_dir, f"{stem}_mask.png")
            labels = _write_mask(mask_path, p, size)
            line = f"{path}: wrote {mask_path} ({(labels > 0).mean():.1%} foreground)"
            if args.plot:
                overlay = os.path.join(out_dir, f"{stem}_overlay.png")
                _write_overlay(overlay, path, labels)
                line += f" and {overlay}"
            print(line)
    else:
        path = os.path.join(out_dir, "predictions.npy")
        import numpy
        numpy.save(path, outputs)
        print(f"{len(outputs)} predictions, shape {tuple(outputs.shape)}; wrote {path}")
    return 0


def _exp_neg(z):
    from .backend import numpy as np
    return np.exp(-z)
