"""Classification recipes: ``cnn``, ``resnet`` and ``lstm`` on the 8x8 handwritten digits.

The digits' training part is split 90/10 into train and validation; the test part is only
used for the final figure.
"""
from __future__ import annotations

from .registry import Recipe, build_model, register


def _digits(options, as_rows: bool = False):
    from ...data import DataLoader, TensorDataset, load_digits, random_split
    seed = options["seed"]
    (xtr, ytr), (xte, yte) = load_digits(as_arrays=True, seed=seed)
    if as_rows:                  # each image is a sequence of 8 rows of 8 pixels
        xtr, xte = xtr.reshape(-1, 8, 8), xte.reshape(-1, 8, 8)
    train_set, val_set = random_split(TensorDataset(xtr, ytr), [0.9, 0.1], seed=seed)
    return (DataLoader(train_set, batch_size=options["batch_size"], shuffle=True),
            DataLoader(val_set, batch_size=256), DataLoader(TensorDataset(xte, yte), batch_size=256))


@register("cnn", about="SimpleCNN on the 8x8 handwritten digits (test accuracy ~98%)",
          epochs=15, batch_size=32, lr=3e-3)
def cnn(options) -> Recipe:
    model, config = build_model("SimpleCNN")
    return Recipe("cnn", "classification", model, *_digits(options), model_config=config)


@register("resnet", about="narrow ResNet-18 (CIFAR stem, width 8) on the digits",
          epochs=5, batch_size=32, lr=3e-3)
def resnet(options) -> Recipe:
    model, config = build_model("resnet18", num_classes=10, in_channels=1, stem="cifar", width=8)
    return Recipe("resnet", "classification", model, *_digits(options), model_config=config)


@register("lstm", about="LSTM classifier (64 units) reading the digits row by row",
          epochs=12, batch_size=32, lr=1e-2)
def lstm(options) -> Recipe:
    model, config = build_model("LSTMClassifier", input_size=8, hidden_size=64, num_classes=10)
    return Recipe("lstm", "classification", model, *_digits(options, as_rows=True), model_config=config)
