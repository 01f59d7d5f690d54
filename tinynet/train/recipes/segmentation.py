"""Segmentation recipe: ``unet``.

Built-in data: generated 32x32 shapes, a narrow U-Net (width 8, depth 3, logits out) —
about a minute on two cores. With ``--images DIR --masks DIR`` the U-Net is the seed's
Keras model: depth 4, filters ``width``·(1, 2, 4, 8, 16) (``--width``, default 16), ELU,
He-normal, Keras' dropout, one sigmoid per class (``--classes``, default 2), trained on
images resized to ``--size`` (default 224) with binary cross-entropy against one-hot
masks; ``--width 16 --size 224`` with 3 input channels and 2 classes is the seed's model
exactly (1,941,122 parameters). The folder is split into train and validation
(``--val-split``, default 0.1); training images are flipped left-right at random.
"""
from __future__ import annotations

import copy
import os

from .registry import Recipe, build_model, register

_OPTIONS = ("images", "masks", "size", "width", "classes", "val_split", "skip_bad")
SEED_WIDTH, SEED_SIZE, SEED_CLASSES = 16, 224, 2
BUILTIN_WIDTH, BUILTIN_SIZE = 8, 32
#: generated shapes: training, validation and test images of the built-in run
BUILTIN_TRAIN, BUILTIN_VAL, BUILTIN_TEST = 384, 64, 128


def _plot_predictions(sample_batch):
    def plot(model, out_dir, device):
        from ..plots import plot_segmentation
        x, m = (t.to(device) for t in sample_batch)
        return [plot_segmentation(model, x, m, os.path.join(out_dir, "predictions.png"))]
    return plot


def _model(options):
    """``(model, config, input_shape)`` for ``options`` (see the module docstring)."""
    if options.get("images"):
        size = options.get("size") or SEED_SIZE
        model, config = build_model("UNet", in_channels=3, num_classes=options.get("classes") or SEED_CLASSES,
                                    base_width=options.get("width") or SEED_WIDTH, depth=4)
        return model, config, (3, size, size)
    size = options.get("size") or BUILTIN_SIZE
    # Logits out, BCE-with-logits loss: stabler than sigmoid + BCE in float32.
    model, config = build_model("UNet", in_channels=3, num_classes=options.get("classes") or 1,
                                base_width=options.get("width") or BUILTIN_WIDTH, depth=3,
                                dropout=[0.0, 0.0, 0.1, 0.1], final_activation=None)
    return model, config, (3, size, size)


def _folder_recipe(options) -> Recipe:
    from ...data import DataLoader, SegmentationFolder, Subset
    from ...data import paired_transforms as T
    classes = options.get("classes") or SEED_CLASSES
    size = options.get("size") or SEED_SIZE
    if size % 16:
        raise ValueError(f"--size must be a multiple of 16 for the depth-4 U-Net, got {size}")
    fraction = options.get("val_split") or 0.1
    if not 0 < fraction < 1:
        raise ValueError(f"--val-split must be between 0 and 1 (exclusive), got {fraction}")
    end = [T.ToFloat(), T.OneHot(classes)]
    train_set = SegmentationFolder(options["images"], options["masks"], num_classes=max(classes, 2),
                                   transform=T.Compose([T.Resize(size), T.RandomHorizontalFlip()] + end),
                                   skip_bad=bool(options.get("skip_bad")), report=options.get("report"))
    if len(train_set) < 2:
        raise ValueError(f"--images {options['images']}: {len(train_set)} usable pair(s); at least 2 are needed "
                         "to split off a validation set")
    val_set = copy.copy(train_set)
    val_set.transform = T.Compose([T.Resize(size)] + end)
    from .sources import _split
    train_part, val_part = _split(train_set, fraction, options["seed"])
    model, config, input_shape = _model(options)
    val_loader = DataLoader(Subset(val_set, val_part.indices), batch_size=8)
    sample = next(iter(DataLoader(Subset(val_set, val_part.indices[:6]), batch_size=6)))
    return Recipe("unet", "segmentation", model,
                  DataLoader(train_part, batch_size=options["batch_size"], shuffle=True),
                  val_loader, val_loader, sample_batch=sample, model_config=config,
                  plot=_plot_predictions(sample), input_shape=input_shape, test_name="validation",
                  class_names=[str(c) for c in range(classes)],
                  preprocess={"mode": "RGB", "size": [size, size], "scale": 1.0, "layout": "image"})


@register("unet", about="narrow U-Net (width 8, depth 3) on generated 32x32 shapes, IoU and Dice; "
                        "with --images/--masks the seed's U-Net (width 16, 224x224) on your folders",
          epochs=5, batch_size=16, lr=3e-3, options=_OPTIONS, model=_model)
def unet(options) -> Recipe:
    from ...data import DataLoader, make_shapes
    if options.get("images") or options.get("masks"):
        if not (options.get("images") and options.get("masks")):
            raise ValueError("--images and --masks go together: give both folders")
        return _folder_recipe(options)
    seed, size = options["seed"], options.get("size") or BUILTIN_SIZE
    if size % 8:
        raise ValueError(f"--size must be a multiple of 8 for the depth-3 U-Net, got {size}")
    classes = options.get("classes") or 1
    train_set = make_shapes(BUILTIN_TRAIN, size=size, seed=seed, num_classes=classes, as_dataset=True)
    val_set = make_shapes(BUILTIN_VAL, size=size, seed=seed + 1_000_001, num_classes=classes, as_dataset=True)
    test_set = make_shapes(BUILTIN_TEST, size=size, seed=seed + 2_000_003, num_classes=classes, as_dataset=True)
    model, config, input_shape = _model(options)
    sample = test_set.take(slice(0, 6))
    return Recipe("unet", "segmentation", model,
                  DataLoader(train_set, batch_size=options["batch_size"], shuffle=True),
                  DataLoader(val_set, batch_size=256), DataLoader(test_set, batch_size=256),
                  sample_batch=sample, model_config=config, plot=_plot_predictions(sample),
                  input_shape=input_shape, class_names=[str(c) for c in range(max(classes, 1))],
                  preprocess={"mode": "RGB", "size": [size, size], "scale": 1.0, "layout": "image"})
