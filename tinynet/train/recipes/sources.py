"""Where a classification recipe's images come from: ``--data SOURCE``.

=================  ==========================================================================
``None``           the built-in 8x8 handwritten digits (scikit-learn), 1 channel, 10 classes
``mnist:DIR``      MNIST IDX files in DIR (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
                   ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally
                   ``.gz``): 1x28x28, 10 classes, the t10k files as the test set
``cifar10:DIR``    the CIFAR-10 binary version (``data_batch_1.bin`` ... ``data_batch_5.bin``,
                   ``test_batch.bin``) in DIR or DIR/cifar-10-batches-bin: 3x32x32, 10 classes
``folder:DIR``     an :class:`~tinynet.data.ImageFolder` (one subfolder per class), RGB,
                   resized to ``--size`` (default 32); with DIR/train and DIR/test those two
=================  ==========================================================================

The training part is split into train and validation by ``val_split`` (default 0.1).
Without a test part the validation part gives the final figure (reported as such). Images
are kept as bytes and scaled to [0, 1] per batch (``ToFloat``), so a CIFAR-10 training set
takes 150 MB, not 600.

:func:`describe` gives the input channels, size and number of classes without reading
the images (for ``tinynet summary``); :func:`classification_data` loads the data.
"""
from __future__ import annotations

import os
from typing import NamedTuple

__all__ = ["ClassificationData", "classification_data", "describe", "parse_source", "DEFAULT_FOLDER_SIZE"]

DEFAULT_FOLDER_SIZE = 32
_CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
                "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


class ClassificationData(NamedTuple):
    """Datasets and what a model and ``tinynet predict`` need to know about them."""
    train: object
    val: object
    test: object               # None: the validation part stands in for a test set
    channels: int
    size: tuple                # (height, width)
    class_names: list
    scale: float               # inputs are multiplied by this per batch (1/255 for bytes)
    mode: str                  # the Pillow mode ``tinynet predict`` converts input files to


def parse_source(spec: str | None):
    """``"mnist:DIR"`` -> ``("mnist", "DIR")``; None -> ``("digits", None)``."""
    if spec is None:
        return "digits", None
    kind, sep, path = spec.partition(":")
    if not sep or kind not in ("mnist", "cifar10", "folder") or not path:
        raise ValueError(f"--data must be mnist:DIR, cifar10:DIR or folder:DIR, got {spec!r}")
    path = os.path.expanduser(path)           # the shell leaves "mnist:~/data" alone
    if not os.path.isdir(path):
        raise ValueError(f"--data {spec}: {path} is not a directory")
    return kind, path


def _folder_parts(path):
    train, test = os.path.join(path, "train"), os.path.join(path, "test")
    if os.path.isdir(train) and os.path.isdir(test):
        return train, test
    return path, None


def describe(options) -> tuple:
    """``(channels, (height, width), num_classes)`` of ``options["data"]``, from file names only."""
    kind, path = parse_source(options.get("data"))
    if kind == "digits":
        return 1, (8, 8), 10
    if kind == "mnist":
        return 1, (28, 28), 10
    if kind == "cifar10":
        return 3, (32, 32), 10
    size = options.get("size") or DEFAULT_FOLDER_SIZE
    root, _ = _folder_parts(path)
    classes = [d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")]
    return 3, (size, size), len(classes)


def _find(directory, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"--data mnist:{directory}: no {name} or {name}.gz in {directory}")


def _split(dataset, fraction, seed):
    from ...data import random_split
    if not 0 < fraction < 1:
        raise ValueError(f"--val-split must be between 0 and 1 (exclusive), got {fraction}")
    n = len(dataset)
    if n < 2:
        raise ValueError(f"{n} usable sample(s): at least 2 are needed to hold one out for validation")
    train, val = random_split(dataset, [1 - fraction, fraction], seed=seed)
    if len(val) == 0 or len(train) == 0:          # a tiny set: still one sample on each side
        train, val = random_split(dataset, [n - 1, 1], seed=seed)
    return train, val


def classification_data(options) -> ClassificationData:
    """Loads ``options["data"]`` (see the table above)."""
    from ...data import ImageFolder, TensorDataset, load_digits, read_cifar10, read_mnist_idx
    from ...data.transforms import Resize
    kind, path = parse_source(options.get("data"))
    seed, fraction = options["seed"], options.get("val_split") or 0.1
    if kind == "digits":
        (xtr, ytr), (xte, yte) = load_digits(as_arrays=True, seed=seed)
        train, val = _split(TensorDataset(xtr, ytr), fraction, seed)
        return ClassificationData(train, val, TensorDataset(xte, yte), 1, (8, 8),
                                  [str(d) for d in range(10)], 1.0, "L")
    if kind == "mnist":
        arrays = {k: read_mnist_idx(_find(path, name)) for k, name in _MNIST_FILES.items()}
        for part in ("train", "test"):
            images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise ValueError(f"--data mnist:{path}: {part} images {images.shape} and labels "
                                 f"{labels.shape} do not pair up (expected (N, H, W) and (N,))")
        xtr, xte = arrays["train_images"][:, None], arrays["test_images"][:, None]
        train, val = _split(TensorDataset(xtr, arrays["train_labels"].astype("int64")), fraction, seed)
        test = TensorDataset(xte, arrays["test_labels"].astype("int64"))
        names = [str(d) for d in range(int(arrays["train_labels"].max()) + 1)]
        return ClassificationData(train, val, test, 1, tuple(xtr.shape[2:]), names, 1.0 / 255.0, "L")
    if kind == "cifar10":
        inner = os.path.join(path, "cifar-10-batches-bin")
        directory = inner if os.path.isdir(inner) else path
        (xtr, ytr), (xte, yte) = read_cifar10(directory)
        train, val = _split(TensorDataset(xtr, ytr), fraction, seed)
        return ClassificationData(train, val, TensorDataset(xte, yte), 3, (32, 32), list(_CIFAR_NAMES),
                                  1.0 / 255.0, "RGB")
    size = options.get("size") or DEFAULT_FOLDER_SIZE
    root, test_root = _folder_parts(path)
    report = options.get("report")
    dataset = ImageFolder(root, transform=Resize(size), skip_bad=bool(options.get("skip_bad")), report=report)
    train, val = _split(dataset, fraction, seed)
    test = None
    if test_root is not None:
        test = ImageFolder(test_root, transform=Resize(size), skip_bad=bool(options.get("skip_bad")),
                           report=report)
        if test.classes != dataset.classes:
            raise ValueError(f"--data folder:{path}: train/ has classes {dataset.classes} but test/ has "
                             f"{test.classes}")
    return ClassificationData(train, val, test, 3, (size, size), list(dataset.classes), 1.0 / 255.0, "RGB")


def image_rows(x):
    """Images (N, C, H, W) -> sequences (N, H, C*W): what the LSTM classifier reads, one row
    per time step (channels side by side)."""
    from ...tensor import Tensor
    a = x.data if isinstance(x, Tensor) else x
    n, c, h, w = a.shape
    return Tensor(a.transpose(0, 2, 1, 3).reshape(n, h, c * w))


def batch_transform(scale: float, layout: str):
    """The per-batch input transform: bytes to [0, 1] floats, then rows for ``layout="rows"``."""
    from ...data.transforms import Compose, Lambda, ToFloat
    steps = []
    if scale != 1.0:
        steps.append(ToFloat(scale))
    if layout == "rows":
        steps.append(Lambda(image_rows))
    return Compose(steps) if steps else None
