"""Readers for image files a user already has on disk (no download, no pickle).

* :func:`read_mnist_idx` — the IDX format of MNIST / Fashion-MNIST
  (``train-images-idx3-ubyte`` and friends, optionally ``.gz``).
* :func:`read_cifar10_batch` — the **binary version** of CIFAR-10
  (``data_batch_1.bin`` ... ``test_batch.bin``). The "python version" of CIFAR-10 is a
  pickle, and tinynet never unpickles files; download the binary version instead.

Malformed files are a ``ValueError`` saying what is wrong, never a reshape error.
"""
from __future__ import annotations

import gzip
import os

from ..backend import numpy as np

__all__ = ["read_mnist_idx", "read_cifar10_batch", "read_cifar10"]

# IDX type codes -> big-endian NumPy dtypes.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path, op):
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"\x1f\x8b":          # gzip magic, whatever the file name says
                try:
                    return gzip.decompress(f.read())
                except (OSError, EOFError) as e:
                    raise ValueError(f"{op}: {path} looks gzip-compressed but is corrupt: {e}") from None
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{op}: no such file: {path}") from None


def read_mnist_idx(path) -> "np.ndarray":
    """Reads an IDX file (plain or gzip) into a NumPy array of its stored shape and type.

    Format: two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, one big-endian uint32 per
    dimension, then the values in C order, big-endian.

    >>> read_mnist_idx("train-images-idx3-ubyte.gz").shape    # doctest: +SKIP
    (60000, 28, 28)
    """
    op = "read_mnist_idx"
    raw = _read_bytes(path, op)
    if len(raw) < 4:
        raise ValueError(f"{op}: {path} is too short ({len(raw)} bytes) to be an IDX file")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{op}: {path} is not an IDX file (magic bytes {raw[:4].hex()} should "
                         f"start with 0000)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{op}: {path} has unknown IDX type code 0x{code:02x}; expected one of "
                         + ", ".join(f"0x{c:02x}" for c in _IDX_TYPES))
    if ndim == 0:
        raise ValueError(f"{op}: {path} declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{op}: {path} is truncated inside its header ({len(raw)} bytes, "
                         f"header needs {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        raise ValueError(f"{op}: {path} should hold {expected} data bytes for shape {shape} "
                         f"and type {dtype.name}, but has {got} "
                         f"({'truncated' if got < expected else 'trailing bytes'})")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # native byte order, own memory


_CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar10_batch(path):
    """Reads one CIFAR-10 *binary-version* batch file (e.g. ``data_batch_1.bin``).

    Each record is 3073 bytes: a label byte (0-9), then 1024 red, 1024 green and 1024
    blue bytes of a 32x32 image in row-major order. (The *python* version of CIFAR-10 is
    pickled and is deliberately not supported: loading it would run pickle.)

    Returns ``images`` uint8 (N, 3, 32, 32) and ``labels`` int64 (N,).
    """
    op = "read_cifar10_batch"
    raw = _read_bytes(path, op)
    if len(raw) == 0 or len(raw) % _CIFAR_RECORD:
        hint = ""
        if raw[:1] == b"\x80":
            hint = " (this looks like a pickle: the python version is not supported, use the binary version)"
        raise ValueError(f"{op}: {path} has {len(raw)} bytes, not a positive multiple of the "
                         f"{_CIFAR_RECORD}-byte CIFAR-10 record{hint}")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise ValueError(f"{op}: {path} record {bad} has label {labels[bad]}; CIFAR-10 labels are 0-9")
    images = records[:, 1:].reshape(-1, 3, 32, 32).copy()
    return images, labels


def read_cifar10(directory):
    """Reads a ``cifar-10-batches-bin`` directory: ``((x_train, y_train), (x_test, y_test))``."""
    directory = os.fspath(directory)
    train = [read_cifar10_batch(os.path.join(directory, f"data_batch_{i}.bin")) for i in range(1, 6)]
    x_test, y_test = read_cifar10_batch(os.path.join(directory, "test_batch.bin"))
    x_train = np.concatenate([t[0] for t in train])
    y_train = np.concatenate([t[1] for t in train])
    return (x_train, y_train), (x_test, y_test)
