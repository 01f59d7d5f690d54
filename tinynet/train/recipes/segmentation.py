"""Segmentation recipe: ``unet``, a narrow U-Net on generated 32x32 shapes."""
from __future__ import annotations

import os

from .registry import Recipe, build_model, register


def _plot_predictions(sample_batch):
    def plot(model, out_dir, device):
        from ..plots import plot_segmentation
        x, m = (t.to(device) for t in sample_batch)
        return [plot_segmentation(model, x, m, os.path.join(out_dir, "predictions.png"))]
    return plot


@register("unet", about="narrow U-Net (width 8, depth 3) on generated 32x32 shapes, IoU and Dice",
          epochs=5, batch_size=16, lr=3e-3)
def unet(options) -> Recipe:
    from ...data import DataLoader, make_shapes
    seed, size = options["seed"], 32
    train_set = make_shapes(384, size=size, seed=seed, as_dataset=True)
    val_set = make_shapes(64, size=size, seed=seed + 1_000_001, as_dataset=True)
    test_set = make_shapes(128, size=size, seed=seed + 2_000_003, as_dataset=True)
    # Logits out, BCE-with-logits loss: stabler than sigmoid + BCE in float32.
    model, config = build_model("UNet", in_channels=3, num_classes=1, base_width=8, depth=3,
                                dropout=(0.0, 0.0, 0.1, 0.1), final_activation=None)
    sample = test_set.take(slice(0, 6))
    return Recipe("unet", "segmentation", model,
                  DataLoader(train_set, batch_size=options["batch_size"], shuffle=True),
                  DataLoader(val_set, batch_size=256), DataLoader(test_set, batch_size=256),
                  sample_batch=sample, model_config=config, plot=_plot_predictions(sample))
