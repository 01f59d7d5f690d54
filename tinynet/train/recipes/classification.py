"""Classification recipes: ``cnn``, ``resnet`` and ``lstm``.

Built-in data: the 8x8 handwritten digits, split 90/10 into train and validation, the
held-out test part used only for the final figure. With ``--data mnist:DIR``,
``cifar10:DIR`` or ``folder:DIR`` the same models are built for that data's channels,
size and classes (see :mod:`tinynet.train.recipes.sources`). The LSTM reads each image
row by row.
"""
from __future__ import annotations

from .registry import Recipe, build_model, register
from .sources import batch_transform, classification_data, describe

_OPTIONS = ("data", "size", "val_split", "skip_bad")


def _model(name, options):
    """The recipe's model for the data ``options`` describe: ``(model, config, input_shape)``."""
    channels, (h, w), classes = describe(options)
    if name == "cnn":
        model, config = build_model("SimpleCNN", in_channels=channels, num_classes=classes, input_size=[h, w])
        return model, config, (channels, h, w)
    if name == "resnet":
        model, config = build_model("resnet18", num_classes=classes, in_channels=channels, stem="cifar",
                                    width=options.get("width") or 8)
        return model, config, (channels, h, w)
    model, config = build_model("LSTMClassifier", input_size=channels * w, hidden_size=64, num_classes=classes)
    return model, config, (h, channels * w)


def _recipe(name, options) -> Recipe:
    from ...data import DataLoader
    data = classification_data(options)
    model, config, input_shape = _model(name, options)
    layout = "rows" if name == "lstm" else "image"
    transform = batch_transform(data.scale, layout)
    test = data.test if data.test is not None else data.val
    return Recipe(name, "classification", model,
                  DataLoader(data.train, batch_size=options["batch_size"], shuffle=True, transform=transform),
                  DataLoader(data.val, batch_size=256, transform=transform),
                  DataLoader(test, batch_size=256, transform=transform),
                  model_config=config, input_shape=input_shape, class_names=data.class_names,
                  test_name="test" if data.test is not None else "validation",
                  # image files hold bytes; every source is trained on [0, 1] values
                  preprocess={"mode": data.mode, "size": list(data.size), "scale": 1.0 / 255.0, "layout": layout})


@register("cnn", about="SimpleCNN on the 8x8 handwritten digits (test accuracy ~98%)",
          epochs=15, batch_size=32, lr=3e-3, options=_OPTIONS, model=lambda o: _model("cnn", o))
def cnn(options) -> Recipe:
    return _recipe("cnn", options)


@register("resnet", about="narrow ResNet-18 (CIFAR stem, width 8) on the digits",
          epochs=5, batch_size=32, lr=3e-3, options=_OPTIONS + ("width",), model=lambda o: _model("resnet", o))
def resnet(options) -> Recipe:
    return _recipe("resnet", options)


@register("lstm", about="LSTM classifier (64 units) reading the digits row by row",
          epochs=12, batch_size=32, lr=1e-2, options=_OPTIONS, model=lambda o: _model("lstm", o))
def lstm(options) -> Recipe:
    return _recipe("lstm", options)
