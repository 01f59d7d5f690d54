"""PyTorch twins of tinynet's models, for checks that need the same network in both
libraries (parity tests, weight interchange, benchmarks). Written with ``torch.nn`` alone
(no torchvision); parameter and buffer names equal tinynet's ``state_dict`` keys, so
weights move between the two by name. ``torch`` is passed in: importing this module does
not import it.
"""
from __future__ import annotations

__all__ = ["torch_resnet"]


def torch_resnet(torch, layers, num_classes: int, in_channels: int = 3, stem: str = "imagenet",
                 width: int = 64):
    """torchvision's BasicBlock ResNet (``layers`` blocks per stage, e.g. (2, 2, 2, 2) for
    ResNet-18) with tinynet's two stems: "imagenet" (7x7 stride 2 + 3x3 max-pool) or "cifar"
    (3x3 stride 1, no pooling); the twin of :class:`tinynet.models.ResNet`."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + idt)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            if stem == "imagenet":
                self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
                self.maxpool = nn.MaxPool2d(3, 2, 1)
            else:
                self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
                self.maxpool = nn.Identity()
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU()
            cin = width
            for i, n in enumerate(layers):
                cout = width * 2 ** i
                blocks = [Block(cin, cout, 1 if i == 0 else 2)] + [Block(cout, cout, 1) for _ in range(n - 1)]
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
                cin = cout
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return Net()
