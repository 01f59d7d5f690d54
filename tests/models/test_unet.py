"""UNet: the classic Keras U-Net's exact parameter count, the architecture against a
PyTorch U-Net built here, configuration, and input errors."""
import numpy as np
import pytest

import tinynet as tn
from tinynet.models import UNet


def keras_unet_parameter_count(in_channels, num_classes):
    """The count by hand: a k x k conv from a to b channels has a*b*k*k weights + b biases.

    enc  3->16, 16->16 | 16->32, 32->32 | 32->64, 64->64 | 64->128, 128->128 | 128->256, 256->256
    dec  up 256->128 (2x2) + conv 256->128, 128->128 | up 128->64 + conv 128->64, 64->64
         up 64->32 + conv 64->32, 32->32 | up 32->16 + conv 32->16, 16->16 | head 16->classes (1x1)
    With 3 inputs: 448+2320 + 4640+9248 + 18496+36928 + 73856+147584 + 295168+590080
                 + 131200+295040+147584 + 32832+73792+36928 + 8224+18464+9248 + 2064+4624+2320
                 = 1,941,088, plus the 1x1 head 16*2+2 = 34 -> 1,941,122 (Keras' 1,941,105 + 17
                 for the second class).
    """
    def conv(a, b, k=3):
        return a * b * k * k + b
    total = conv(in_channels, 16) + conv(16, 16)
    widths = [16, 32, 64, 128, 256]
    for lo, hi in zip(widths, widths[1:]):
        total += conv(lo, hi) + conv(hi, hi)            # encoder level
        total += conv(hi, lo, 2) + conv(2 * lo, lo) + conv(lo, lo)   # decoder level
    return total + conv(16, num_classes, 1)


def test_default_unet_has_exactly_1941122_parameters():
    assert keras_unet_parameter_count(3, 2) == 1_941_122
    assert keras_unet_parameter_count(3, 1) == 1_941_105          # the figure Keras prints
    assert sum(p.numel() for p in UNet().parameters()) == 1_941_122
    assert sum(p.numel() for p in UNet(3, 1).parameters()) == 1_941_105


def test_default_configuration_is_the_keras_one():
    net = UNet()
    assert [b.conv1.weight.shape[0] for b in net.down] == [16, 32, 64, 128, 256]
    assert [b.dropout.p for b in net.down] == [0.1, 0.1, 0.2, 0.2, 0.3]
    assert [b.dropout.p for b in net.up] == [0.2, 0.2, 0.1, 0.1]
    assert type(net.down[0].act1).__name__ == "ELU"
    assert tuple(net.upsample[0].weight.shape) == (256, 128, 2, 2)
    assert net.input_scale == pytest.approx(1 / 255)
    # He normal: std sqrt(2 / fan_in) for the 3x3 convs
    w = net.down[3].conv2.weight.detach().numpy()
    assert w.std() == pytest.approx(np.sqrt(2 / (128 * 9)), rel=0.05)
    assert float(np.abs(net.down[3].conv2.bias.detach().numpy()).max()) == 0.0


def test_output_is_a_per_pixel_probability_map():
    net = UNet(3, 2, base_width=4, depth=2, dropout=0.0).eval()
    out = net(tn.rand(2, 3, 12, 20) * 255)
    assert out.shape == (2, 2, 12, 20)
    v = out.detach().numpy()
    assert 0 < v.min() and v.max() < 1
    logits = UNet(3, 2, base_width=4, depth=2, final_activation=None)(tn.rand(1, 3, 4, 4))
    assert logits.shape == (1, 2, 4, 4)


def test_matches_a_pytorch_unet_with_the_same_weights():
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, a, b):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(a, b, 3, padding=1), tnn.Conv2d(b, b, 3, padding=1)

        def forward(self, x):
            return torch.nn.functional.elu(self.conv2(torch.nn.functional.elu(self.conv1(x))))

    class Ref(tnn.Module):
        def __init__(self):
            super().__init__()
            self.down = tnn.ModuleList([Block(3, 4), Block(4, 8), Block(8, 16)])
            self.upsample = tnn.ModuleList([tnn.ConvTranspose2d(16, 8, 2, 2), tnn.ConvTranspose2d(8, 4, 2, 2)])
            self.up = tnn.ModuleList([Block(16, 8), Block(8, 4)])
            self.head = tnn.Conv2d(4, 2, 1)

        def forward(self, x):
            x = x / 255
            skips = []
            for i, b in enumerate(self.down):
                x = b(x)
                if i < 2:
                    skips.append(x)
                    x = torch.nn.functional.max_pool2d(x, 2)
            for u, b in zip(self.upsample, self.up):
                x = b(torch.cat([u(x), skips.pop()], 1))
            return torch.sigmoid(self.head(x))

    torch.manual_seed(0)
    ref = Ref().double()
    net = UNet(3, 2, base_width=4, depth=2, dropout=0.0).to(tn.float64)
    net.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 8, 12))
    np.testing.assert_allclose(net(tn.tensor(x)).detach().numpy(),
                               ref(torch.from_numpy(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_sizes_not_divisible_by_16_name_valid_sizes():
    net = UNet(3, 2, base_width=2)
    with pytest.raises(ValueError, match="input height 30 is not divisible by 16.*such as 16 or 32"):
        net(tn.zeros(1, 3, 30, 32))
    with pytest.raises(ValueError, match="input width 8 is not divisible by 16.*such as 16"):
        net(tn.zeros(1, 3, 32, 8))


def test_wrong_channels_and_bad_configuration():
    net = UNet(3, 2, base_width=2)
    with pytest.raises(ValueError, match="expected 3 input channels, got 1"):
        net(tn.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"expected input \(N, C, H, W\)"):
        net(tn.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="dropout needs depth\\+1 = 3 values"):
        UNet(depth=2, dropout=(0.1, 0.2))
    with pytest.raises(ValueError, match="base_width must be an int >= 1"):
        UNet(base_width=0)
