"""``SimpleCNN``: a few conv-ReLU-maxpool blocks and a small fully connected head.

With the defaults it fits the 8x8 handwritten digits::

    (N, 1, 8, 8) -conv3x3,16-relu-pool-> (N, 16, 4, 4) -conv3x3,32-relu-pool-> (N, 32, 2, 2)
                 -flatten-> (N, 128) -linear-> (N, 64) -relu-> -linear-> (N, 10) logits
"""
from __future__ import annotations

from typing import Sequence

from .. import nn

__all__ = ["SimpleCNN"]


class SimpleCNN(nn.Module):
    """Conv-ReLU-MaxPool(2) blocks followed by a linear head; outputs class logits.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (1 for the digits).
    num_classes : int
    input_size : int or (int, int)
        Height and width of the inputs; each block halves them (floor), so they must stay
        >= 1 after ``len(channels)`` blocks.
    channels : sequence of int
        Output channels of each conv block (3x3, padding 1).
    hidden : int or None
        Width of the hidden linear layer (None: a single linear layer after the features).
    dropout : float
        Dropout before the last linear layer.

    >>> import tinynet as tn
    >>> model = SimpleCNN()
    >>> model(tn.zeros(2, 1, 8, 8)).shape
    (2, 10)
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size=8,
                 channels: Sequence[int] = (16, 32), hidden: int | None = 64, dropout: float = 0.0):
        super().__init__()
        h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        for name, v in (("in_channels", in_channels), ("num_classes", num_classes), ("height", h), ("width", w)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"SimpleCNN: {name} must be a positive int, got {v!r}")
        channels = tuple(channels)
        if not channels or any(not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(f"SimpleCNN: channels must be a non-empty sequence of positive ints, got {channels}")
        if h >> len(channels) < 1 or w >> len(channels) < 1:
            raise ValueError(f"SimpleCNN: input size {h}x{w} is too small for {len(channels)} pooling "
                             f"blocks; it needs at least {2 ** len(channels)}x{2 ** len(channels)}")
        self.in_channels, self.input_size = in_channels, (h, w)
        layers, c_in = [], in_channels
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        feat = c_in * (h >> len(channels)) * (w >> len(channels))
        head = [nn.Flatten()]
        if hidden:
            head += [nn.Linear(feat, hidden), nn.ReLU()]
            feat = hidden
        if dropout:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(feat, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != self.input_size:
            raise ValueError(f"SimpleCNN: expected input (N, {self.in_channels}, {self.input_size[0]}, "
                             f"{self.input_size[1]}), got {tuple(x.shape)}")
        return self.classifier(self.features(x))
