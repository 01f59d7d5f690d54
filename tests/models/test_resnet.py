"""ResNet-18/34: torchvision's parameter count and key names, stems, and a forward pass
that matches a PyTorch ResNet built here with torch.nn and loaded with the same weights."""
import numpy as np
import pytest

import tinynet as tn
from tinynet.models import BasicBlock, ResNet, resnet18, resnet34
from tinynet.testing.torch_models import torch_resnet


def test_resnet18_has_torchvisions_parameter_count_and_keys():
    torch = pytest.importorskip("torch")
    model = resnet18()
    assert sum(p.numel() for p in model.parameters()) == 11_689_512
    ref = torch_resnet(torch, (2, 2, 2, 2), 1000)
    assert sum(p.numel() for p in ref.parameters()) == 11_689_512
    ours, theirs = model.state_dict(), ref.state_dict()
    assert list(ours) == [k for k in theirs if not k.endswith("num_batches_tracked")] or \
        list(ours) == list(theirs)
    for k, v in ours.items():
        assert tuple(v.shape) == tuple(theirs[k].shape), k
    for k in ("conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
              "layer2.0.downsample.1.bias", "layer4.1.bn2.weight", "fc.bias"):
        assert k in ours


def test_resnet34_parameter_count():
    assert sum(p.numel() for p in resnet34().parameters()) == 21_797_672


def test_forward_matches_pytorch_with_the_same_weights_in_both_modes():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = torch_resnet(torch, (1, 1, 1, 1), 5, in_channels=2, stem="imagenet", width=4).double()
    model = ResNet((1, 1, 1, 1), num_classes=5, in_channels=2, stem="imagenet", width=4).to(tn.float64)
    with torch.no_grad():   # non-trivial BN statistics
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    model.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items() if "num_batches" not in k},
                          strict=False)
    x = np.random.default_rng(0).standard_normal((2, 2, 32, 32))
    for train in (False, True):
        ref.train(train)
        model.train(train)
        expected = ref(torch.from_numpy(x)).detach().numpy()
        got = model(tn.tensor(x)).detach().numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


def test_cifar_stem_keeps_resolution_and_narrow_width():
    model = ResNet((1, 1, 1, 1), num_classes=10, in_channels=1, stem="cifar", width=4)
    assert tuple(model.conv1.weight.shape) == (4, 1, 3, 3)
    assert type(model.maxpool).__name__ == "Identity"
    assert tuple(model.fc.weight.shape) == (10, 32)
    assert model(tn.randn(2, 1, 8, 8)).shape == (2, 10)


def test_zero_init_residual_and_block_shortcut():
    model = ResNet((1, 1, 1, 1), num_classes=3, stem="cifar", width=4, zero_init_residual=True)
    assert float(np.abs(model.layer1[0].bn2.weight.detach().numpy()).max()) == 0.0
    block = BasicBlock(4, 4)
    assert block.downsample is None
    assert block(tn.randn(1, 4, 5, 5)).shape == (1, 4, 5, 5)


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="stem must be 'imagenet' or 'cifar'"):
        ResNet(stem="tiny")
    with pytest.raises(ValueError, match="layers must be 4 positive ints"):
        ResNet((2, 2, 2))
    model = ResNet((1, 1, 1, 1), num_classes=3, stem="cifar", width=4)
    with pytest.raises(ValueError, match=r"expected input \(N, 3, H, W\), got \(1, 1, 8, 8\)"):
        model(tn.randn(1, 1, 8, 8))
