"""Batch transforms: normalize, random crop with padding, flip, scaling."""
import numpy as np
import pytest

import tinynet as tn
from tinynet.data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToFloat


def test_to_float_scales_bytes_to_unit_interval():
    out = ToFloat()(tn.tensor(np.array([[[[0, 51, 255]]]], dtype=np.uint8)))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), [[[[0.0, 0.2, 1.0]]]], rtol=1e-6)


def test_normalize_is_per_channel():
    x = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 3.0)])[None].astype(np.float32)
    out = Normalize([1.0, 1.0], [1.0, 2.0])(tn.tensor(x)).numpy()
    assert out[0, 0].max() == 0.0 and out[0, 1].min() == 1.0
    single = Normalize([1.0, 1.0], [1.0, 2.0])(tn.tensor(x[0]))
    assert single.shape == (2, 2, 2)


def test_normalize_errors():
    with pytest.raises(ValueError, match="2 means given but the input has 3 channels"):
        Normalize([0, 0], [1, 1])(tn.tensor(np.zeros((1, 3, 2, 2), dtype=np.float32)))
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize([0], [0])
    with pytest.raises(TypeError, match="apply ToFloat first"):
        Normalize([0], [1])(tn.tensor(np.zeros((1, 1, 2, 2), dtype=np.uint8)))


def test_random_crop_crops_are_windows_of_the_padded_image():
    tn.manual_seed(0)
    x = np.arange(2 * 1 * 5 * 5, dtype=np.float32).reshape(2, 1, 5, 5) + 1
    out = RandomCrop(5, padding=2)(tn.tensor(x)).numpy()
    assert out.shape == (2, 1, 5, 5)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for n in range(2):
        found = [(i, j) for i in range(5) for j in range(5)
                 if np.array_equal(padded[n, :, i:i + 5, j:j + 5], out[n])]
        assert found, f"crop {n} is not a window of the padded image"


def test_random_crop_is_repeatable_and_varies_over_the_batch():
    x = tn.tensor(np.random.default_rng(0).random((16, 3, 8, 8)).astype(np.float32))
    tn.manual_seed(1)
    a = RandomCrop(8, padding=3)(x).numpy()
    tn.manual_seed(1)
    b = RandomCrop(8, padding=3)(x).numpy()
    assert np.array_equal(a, b)
    assert len({a[i].tobytes() == x.numpy()[i].tobytes() for i in range(16)}) == 2


def test_random_crop_too_large_is_an_error():
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(9)(tn.tensor(np.zeros((1, 1, 8, 8), dtype=np.float32)))


def test_flip_all_or_nothing_and_per_image():
    x = tn.tensor(np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3))
    assert np.array_equal(RandomHorizontalFlip(1.0)(x).numpy(), x.numpy()[..., ::-1])
    assert np.array_equal(RandomHorizontalFlip(0.0)(x).numpy(), x.numpy())
    tn.manual_seed(0)
    batch = tn.tensor(np.tile(x.numpy(), (32, 1, 1, 1)))
    out = RandomHorizontalFlip()(batch).numpy()
    flipped = (out[:, 0, 0, 0] == 2).sum()
    assert 0 < flipped < 32
    with pytest.raises(ValueError, match="p must be in"):
        RandomHorizontalFlip(1.5)


def test_compose_chains():
    t = Compose([ToFloat(scale=0.5), Normalize([1.0], [2.0])])
    out = t(tn.tensor(np.full((1, 1, 1, 1), 4, dtype=np.uint8)))
    assert out.item() == pytest.approx(0.5)
    with pytest.raises(TypeError, match="not callable"):
        Compose([3])
