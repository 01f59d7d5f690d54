"""MNIST IDX and CIFAR-10 binary readers on small files written here."""
import gzip
import struct

import numpy as np
import pytest

from tinynet.data import read_cifar10_batch, read_mnist_idx


def write_idx(path, array, code=0x08):
    dims = struct.pack(">" + "I" * array.ndim, *array.shape)
    dtype = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    body = bytes([0, 0, code, array.ndim]) + dims + array.astype(dtype).tobytes()
    path.write_bytes(gzip.compress(body) if path.suffix == ".gz" else body)
    return path


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_mnist_idx_images_roundtrip(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    out = read_mnist_idx(write_idx(tmp_path / name, images))
    assert out.dtype == np.uint8 and np.array_equal(out, images)


def test_mnist_idx_labels_and_wider_types(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    assert read_mnist_idx(write_idx(tmp_path / "labels", labels)).tolist() == list(range(10))
    ints = np.array([[1, -2], [300000, 4]], dtype=np.int32)
    out = read_mnist_idx(write_idx(tmp_path / "ints", ints, code=0x0C))
    assert out.dtype == np.int32 and np.array_equal(out, ints)   # big-endian decoded


def test_mnist_idx_corrupt_files_are_clear_errors(tmp_path):
    good = write_idx(tmp_path / "good", np.zeros((3, 4, 4), dtype=np.uint8)).read_bytes()
    cases = {
        "truncated": (good[:-5], "truncated"),
        "trailing": (good + b"xx", "trailing bytes"),
        "magic": (b"\x01\x02" + good[2:], "not an IDX file"),
        "type": (good[:2] + b"\x42" + good[3:], "unknown IDX type code 0x42"),
        "short": (b"\x00", "too short"),
        "header": (good[:6], "truncated inside its header"),
    }
    for name, (data, match) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=match):
            read_mnist_idx(tmp_path / name)
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(ValueError, match="gzip-compressed but is corrupt"):
        read_mnist_idx(tmp_path / "bad.gz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_mnist_idx(tmp_path / "missing")


def test_cifar10_binary_batch(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, size=4).astype(np.uint8)
    images = rng.integers(0, 256, size=(4, 3, 32, 32)).astype(np.uint8)
    records = np.concatenate([labels[:, None], images.reshape(4, -1)], axis=1)
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(records.tobytes())
    x, y = read_cifar10_batch(path)
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.array_equal(x, images) and np.array_equal(y, labels)
    # channel layout: the first 1024 pixel bytes of a record are the red plane
    assert np.array_equal(x[0, 0].ravel(), records[0, 1:1025])


def test_cifar10_corrupt_files(tmp_path):
    (tmp_path / "short.bin").write_bytes(bytes(3073 * 2 - 1))
    with pytest.raises(ValueError, match="not a positive multiple of the 3073-byte"):
        read_cifar10_batch(tmp_path / "short.bin")
    bad = np.zeros((2, 3073), dtype=np.uint8)
    bad[1, 0] = 12
    (tmp_path / "label.bin").write_bytes(bad.tobytes())
    with pytest.raises(ValueError, match="record 1 has label 12"):
        read_cifar10_batch(tmp_path / "label.bin")
    (tmp_path / "pickle").write_bytes(b"\x80\x04" + bytes(100))
    with pytest.raises(ValueError, match="looks like a pickle"):
        read_cifar10_batch(tmp_path / "pickle")
