"""Layers and containers (``tinynet.nn``), named and initialised as in PyTorch."""
from .module import Module, Parameter, RemovableHandle
from .containers import Sequential, ModuleList, ModuleDict
from .linear import Linear, Identity, Flatten, Lambda, Embedding
from .conv import Conv2d, ConvTranspose2d
from .pool import MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .sync_batchnorm import SyncBatchNorm
from .dropout import Dropout
from .activation import ReLU, ELU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax
from .loss import MSELoss, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, NLLLoss
from .rnn import LSTMCell, GRUCell, RNNCell, LSTM, GRU, RNN
from .clip import clip_grad_norm_, clip_grad_value_
from .attention import MultiheadAttention
from . import init
from . import parallel

__all__ = [
    "Module", "Parameter", "RemovableHandle", "Sequential", "ModuleList", "ModuleDict",
    "Linear", "Identity", "Flatten", "Lambda", "Embedding", "Conv2d", "ConvTranspose2d",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm",
    "Dropout", "ReLU", "ELU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss",
    "LSTMCell", "GRUCell", "RNNCell", "LSTM", "GRU", "RNN", "clip_grad_norm_", "clip_grad_value_",
    "init", "SyncBatchNorm", "parallel",
]
from .normalization import GroupNorm
from .upsampling import Upsample, UpsamplingNearest2d, UpsamplingBilinear2d
__all__ += ["MultiheadAttention", "GroupNorm", "Upsample", "UpsamplingNearest2d",
            "UpsamplingBilinear2d"]

from .conv import Conv1d                                        # noqa: E402
from .dropout import Dropout2d                                  # noqa: E402
from .activation import GELU, SiLU                              # noqa: E402
__all__ += ["Conv1d", "Dropout2d", "GELU", "SiLU"]
from .activation import (Softplus, Hardtanh, ReLU6, SELU, CELU, Mish, Hardswish,  # noqa: E402
                         Hardsigmoid, LogSigmoid, GLU, PReLU)
__all__ += ["Softplus", "Hardtanh", "ReLU6", "SELU", "CELU", "Mish", "Hardswish", "Hardsigmoid",
            "LogSigmoid", "GLU", "PReLU"]
from .loss import L1Loss, SmoothL1Loss, HuberLoss, KLDivLoss    # noqa: E402
__all__ += ["L1Loss", "SmoothL1Loss", "HuberLoss", "KLDivLoss"]
__all__ += ["AdaptiveMaxPool2d"]
