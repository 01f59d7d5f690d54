"""ResNets built from BasicBlocks (He et al., 2016), laid out as torchvision's.

Module names match torchvision's, so ``state_dict`` keys are identical
(``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc``) and weights
move between the two by name. Two stems:

* ``"imagenet"``: 7x7 stride-2 conv + 3x3 stride-2 max pool (224x224 inputs -> 7x7 at layer4);
* ``"cifar"``: one 3x3 stride-1 conv, no pool (32x32 inputs -> 4x4 at layer4).

``width`` scales every stage (64 -> ``width``, 128 -> 2·width, ...) for narrow nets.
"""
from __future__ import annotations

from typing import Sequence

from .. import nn

__all__ = ["BasicBlock", "ResNet", "resnet18", "resnet34"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN) shortcut:
    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A BasicBlock ResNet: stem, four stages, global average pool, linear classifier.

    Parameters
    ----------
    layers : sequence of 4 ints
        Blocks per stage ((2, 2, 2, 2) is ResNet-18, (3, 4, 6, 3) ResNet-34).
    num_classes : int
    in_channels : int
    stem : "imagenet" or "cifar"
    width : int
        Channels of the first stage (64 in the paper).
    zero_init_residual : bool
        Start each block's last BN scale at 0, so blocks begin as identities.
    """

    def __init__(self, layers: Sequence[int] = (2, 2, 2, 2), num_classes: int = 1000, in_channels: int = 3,
                 stem: str = "imagenet", width: int = 64, zero_init_residual: bool = False,
                 block=BasicBlock):
        super().__init__()
        layers = tuple(layers)
        if len(layers) != 4 or any(not isinstance(n, int) or n < 1 for n in layers):
            raise ValueError(f"ResNet: layers must be 4 positive ints, got {layers}")
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"ResNet: stem must be 'imagenet' or 'cifar', got {stem!r}")
        for name, v in (("num_classes", num_classes), ("in_channels", in_channels), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ResNet: {name} must be a positive int, got {v!r}")
        self.in_channels, self.stem = in_channels, stem
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        self._planes = width
        self.layer1 = self._make_layer(block, width, layers[0], 1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2)
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)
        # torchvision's initialisation: He normal (fan_out) for convs, BN scale 1 shift 0.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._planes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._planes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self._planes, planes, stride, downsample)]
        self._planes = planes * block.expansion
        layers += [block(self._planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResNet: expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = x.mean(dim=(2, 3))            # global average pool (torchvision's avgpool, no parameters)
        return self.fc(x)


def resnet18(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-18; ``resnet18()`` has torchvision's 11,689,512 parameters and key names.

    >>> sum(p.numel() for p in resnet18().parameters())
    11689512
    """
    return ResNet((2, 2, 2, 2), num_classes=num_classes, **kwargs)


def resnet34(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-34 (21,797,672 parameters with 1000 classes)."""
    return ResNet((3, 4, 6, 3), num_classes=num_classes, **kwargs)
