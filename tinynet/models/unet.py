"""``UNet``: the classic Keras U-Net (Ronneberger et al., 2015, as in the Kaggle 2018
Data Science Bowl starter), in PyTorch layout.

Default architecture (depth 4, base width 16, ``in_channels=3``, ``num_classes=2``)::

    x / 255
    enc0: conv3x3 16, ELU, dropout 0.1, conv3x3 16, ELU        -> skip0   (H,    W)
    pool 2x2; enc1: 32 filters, dropout 0.1                    -> skip1   (H/2,  W/2)
    pool 2x2; enc2: 64 filters, dropout 0.2                    -> skip2   (H/4,  W/4)
    pool 2x2; enc3: 128 filters, dropout 0.2                   -> skip3   (H/8,  W/8)
    pool 2x2; bottleneck: 256 filters, dropout 0.3                        (H/16, W/16)
    up3: convT 2x2/2 -> 128, cat skip3 (256 ch), conv block 128, dropout 0.2
    up2: convT -> 64,  cat skip2, conv block 64,  dropout 0.2
    up1: convT -> 32,  cat skip1, conv block 32,  dropout 0.1
    up0: convT -> 16,  cat skip0, conv block 16,  dropout 0.1
    head: conv1x1 -> num_classes, sigmoid

All 3x3 convs are "same" padded. Parameter count: 1,941,122 for 3 inputs and 2 classes
(1,941,105 with one class, the figure Keras prints for the starter). Initialisation as
in the starter: He normal for the 3x3 convs, Glorot uniform (Keras' default) for the
transposed convs and the head, zero biases.
"""
from __future__ import annotations

from typing import Sequence

from .. import functional as F
from .. import nn

__all__ = ["UNet"]

KERAS_DROPOUT = (0.1, 0.1, 0.2, 0.2, 0.3)


class ConvBlock(nn.Module):
    """conv3x3 -> ELU -> dropout -> conv3x3 -> ELU (``padding=1`` keeps the size)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.act1 = nn.ELU()
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.act2 = nn.ELU()
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def forward(self, x):
        return self.act2(self.conv2(self.dropout(self.act1(self.conv1(x)))))


class UNet(nn.Module):
    """U-Net for per-pixel (multi-label) segmentation; returns probabilities in [0, 1].

    Parameters
    ----------
    in_channels : int
    num_classes : int
        Output channels (one sigmoid mask each).
    base_width : int
        Filters of the first level; level ``i`` has ``base_width * 2**i``.
    depth : int
        Number of 2x2 poolings (4 in the classic net); inputs must have height and width
        divisible by ``2**depth``.
    dropout : sequence of depth+1 floats, a float, or None
        Dropout inside each level's conv block, top to bottom (decoder levels reuse the
        value of the encoder level they join). None: Keras' 0.1, 0.1, 0.2, 0.2, 0.3
        (cut or continued at 0.3 for other depths).
    input_scale : float
        Inputs are multiplied by this first (1/255 for byte images; 1.0 to disable).
    final_activation : "sigmoid" or None
        None returns logits (use ``binary_cross_entropy_with_logits``).

    >>> import tinynet as tn
    >>> net = UNet(in_channels=3, num_classes=2, base_width=4, depth=2, dropout=(0, 0, 0))
    >>> net(tn.zeros(1, 3, 8, 8)).shape
    (1, 2, 8, 8)
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base_width: int = 16, depth: int = 4,
                 dropout: Sequence[float] | float | None = None,
                 input_scale: float = 1.0 / 255.0, final_activation: str | None = "sigmoid"):
        super().__init__()
        for name, v, least in (("in_channels", in_channels, 1), ("num_classes", num_classes, 1),
                               ("base_width", base_width, 1), ("depth", depth, 0)):
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ValueError(f"UNet: {name} must be an int >= {least}, got {v!r}")
        if dropout is None:       # the Keras schedule, continued at 0.3 for deeper nets
            dropout = (KERAS_DROPOUT + (0.3,) * depth)[:depth + 1]
        if isinstance(dropout, (int, float)):
            dropout = (float(dropout),) * (depth + 1)
        dropout = tuple(float(p) for p in dropout)
        if len(dropout) != depth + 1:
            raise ValueError(f"UNet: dropout needs depth+1 = {depth + 1} values (one per level), "
                             f"got {len(dropout)}")
        if final_activation not in ("sigmoid", None):
            raise ValueError(f"UNet: final_activation must be 'sigmoid' or None, got {final_activation!r}")
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        self.input_scale = float(input_scale)
        self.final_activation = final_activation
        widths = [base_width * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c_in = in_channels
        for level, w in enumerate(widths):
            self.down.append(ConvBlock(c_in, w, dropout[level]))
            c_in = w
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for level in range(depth - 1, -1, -1):      # bottom to top
            w = widths[level]
            self.upsample.append(nn.ConvTranspose2d(widths[level + 1], w, 2, stride=2))
            self.up.append(ConvBlock(2 * w, w, dropout[level]))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        for m in list(self.upsample) + [self.head]:
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def _check_input(self, x) -> None:
        if x.ndim != 4:
            raise ValueError(f"UNet: expected input (N, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"UNet: expected {self.in_channels} input channels, got {x.shape[1]} "
                             f"(input shape {tuple(x.shape)})")
        k = 2 ** self.depth
        for name, s in (("height", x.shape[2]), ("width", x.shape[3])):
            if s % k or s == 0:
                lower, upper = (s // k) * k, (s // k + 1) * k
                options = f"{lower} or {upper}" if lower else f"{upper}"
                raise ValueError(f"UNet: input {name} {s} is not divisible by {k} (2**depth, depth="
                                 f"{self.depth}); use a multiple of {k} such as {options}")

    def forward(self, x):
        self._check_input(x)
        if self.input_scale != 1.0:
            x = x * self.input_scale
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < self.depth:
                skips.append(x)
                x = self.pool(x)
        for upsample, block in zip(self.upsample, self.up):
            x = upsample(x)
            x = block(F.cat([x, skips.pop()], dim=1))   # upsampled first, then the skip (Keras order)
        x = self.head(x)
        return x.sigmoid() if self.final_activation == "sigmoid" else x
