"""SimpleCNN: shapes, configuration and input errors."""
import numpy as np
import pytest

import tinynet as tn
from tinynet.models import SimpleCNN


def test_default_fits_digits_and_outputs_logits():
    model = SimpleCNN()
    out = model(tn.randn(5, 1, 8, 8))
    assert out.shape == (5, 10)
    # conv 1->16 (160) + conv 16->32 (4640) + linear 128->64 (8256) + linear 64->10 (650)
    assert sum(p.numel() for p in model.parameters()) == 160 + 4640 + 8256 + 650


def test_configurable_input_size_channels_and_head():
    model = SimpleCNN(in_channels=3, num_classes=4, input_size=(32, 16), channels=(8, 8, 8), hidden=None)
    assert model(tn.randn(2, 3, 32, 16)).shape == (2, 4)
    keys = list(model.state_dict())
    assert keys == ["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
                    "features.6.weight", "features.6.bias", "classifier.1.weight", "classifier.1.bias"]


def test_backward_reaches_every_parameter():
    model = SimpleCNN()
    model(tn.randn(3, 1, 8, 8)).sum().backward()
    assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in model.parameters())


def test_wrong_input_is_a_clear_error():
    model = SimpleCNN()
    with pytest.raises(ValueError, match=r"expected input \(N, 1, 8, 8\), got \(2, 3, 8, 8\)"):
        model(tn.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="too small for 3 pooling blocks; it needs at least 8x8"):
        SimpleCNN(input_size=4, channels=(4, 4, 4))
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        SimpleCNN(num_classes=0)
