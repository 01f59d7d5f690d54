"""No NumPy exception reaches a user of the layers either: each layer called on a string,
an integer tensor, a 1-D, a 5-D and an empty tensor raises a ValueError/TypeError/
IndexError from a tinynet frame whose message starts with a layer or op name (or works)."""
import os
import re
import traceback

import pytest

import tinynet as tn
import tinynet.nn as nn

TINYNET_DIR = os.path.dirname(tn.__file__)

LAYERS = {
    "Linear": lambda: nn.Linear(3, 2), "Conv1d": lambda: nn.Conv1d(2, 3, 3),
    "Conv2d": lambda: nn.Conv2d(2, 3, 3), "ConvTranspose2d": lambda: nn.ConvTranspose2d(2, 3, 3),
    "MaxPool2d": lambda: nn.MaxPool2d(2), "AvgPool2d": lambda: nn.AvgPool2d(2),
    "AdaptiveAvgPool2d": lambda: nn.AdaptiveAvgPool2d(2), "BatchNorm1d": lambda: nn.BatchNorm1d(3),
    "AdaptiveMaxPool2d": lambda: nn.AdaptiveMaxPool2d(2),
    "BatchNorm2d": lambda: nn.BatchNorm2d(3), "LayerNorm": lambda: nn.LayerNorm(3),
    "Dropout": lambda: nn.Dropout(0.5), "Dropout2d": lambda: nn.Dropout2d(0.5),
    "ReLU": nn.ReLU, "ELU": nn.ELU, "LeakyReLU": nn.LeakyReLU, "Sigmoid": nn.Sigmoid,
    "Tanh": nn.Tanh, "GELU": nn.GELU, "SiLU": nn.SiLU, "Softmax": lambda: nn.Softmax(1),
    "LogSoftmax": lambda: nn.LogSoftmax(1), "Flatten": nn.Flatten,
    "Embedding": lambda: nn.Embedding(5, 3), "LSTM": lambda: nn.LSTM(3, 4),
    "GRU": lambda: nn.GRU(3, 4), "RNN": lambda: nn.RNN(3, 4), "LSTMCell": lambda: nn.LSTMCell(3, 4),
    "GRUCell": lambda: nn.GRUCell(3, 4), "RNNCell": lambda: nn.RNNCell(3, 4),
    "L1Loss": nn.L1Loss, "SmoothL1Loss": nn.SmoothL1Loss, "HuberLoss": nn.HuberLoss,
    "KLDivLoss": nn.KLDivLoss, "MSELoss": nn.MSELoss,
    "Softplus": nn.Softplus, "Hardtanh": nn.Hardtanh, "ReLU6": nn.ReLU6, "SELU": nn.SELU,
    "CELU": nn.CELU, "Mish": nn.Mish, "Hardswish": nn.Hardswish, "Hardsigmoid": nn.Hardsigmoid,
    "LogSigmoid": nn.LogSigmoid, "GLU": nn.GLU, "PReLU": nn.PReLU, "PReLU(3)": lambda: nn.PReLU(3),
}
for optional in ("GroupNorm", "Upsample", "MultiheadAttention"):   # other parts of issue 12
    if hasattr(nn, optional):
        LAYERS[optional] = {"GroupNorm": lambda: nn.GroupNorm(1, 3),
                            "Upsample": lambda: nn.Upsample(scale_factor=2),
                            "MultiheadAttention": lambda: nn.MultiheadAttention(4, 2)}[optional]
BAD = {"a string": lambda: "x", "an int64 tensor": lambda: tn.ones(2, 3, 4, 4, dtype=tn.int64),
       "a 1-D tensor": lambda: tn.ones(7), "a 5-D tensor": lambda: tn.ones(1, 1, 1, 1, 1),
       "an empty tensor": lambda: tn.ones(0)}
ARITY = {"MultiheadAttention": 3, "L1Loss": 2, "SmoothL1Loss": 2, "HuberLoss": 2, "KLDivLoss": 2,
         "MSELoss": 2}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_bad_inputs_to_layers_raise_named_tinynet_errors(name):
    layer = LAYERS[name]()
    for label, make in BAD.items():
        bad = make()
        try:
            layer(*[bad] * ARITY.get(name, 1))
        except Exception as e:  # noqa: BLE001 - every exception is inspected
            where = f"{name} called on {label}: {type(e).__name__}: {e}"
            assert isinstance(e, (ValueError, TypeError, IndexError)), f"unexpected type: {where}"
            frame = traceback.extract_tb(e.__traceback__)[-1].filename
            assert frame.startswith(TINYNET_DIR), f"raised from {frame}: {where}"
            assert re.match(r"[\w.]+:", str(e).strip("'\"")), f"no op or layer name: {where}"
