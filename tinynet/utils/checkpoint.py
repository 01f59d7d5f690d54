"""Checkpoints without pickle: ``save(obj, path)`` and ``load(path)``.

``obj`` is any nesting of dicts, lists and tuples whose leaves are Tensors, NumPy/CuPy
arrays, numbers, strings, bools and None (a model's ``state_dict()``, an optimizer's,
``tinynet.get_rng_state()``, an epoch counter...). The file is a plain ``.npz``: one entry
per array (``a0``, ``a1``, ...) and one entry, ``__tinynet_structure__``, holding the
nesting as UTF-8 JSON. Loading uses ``allow_pickle=False``, so a file can never run code.

Writing goes to a temporary file in the same directory, flushed to disk, then renamed over
the target with ``os.replace`` (atomic on POSIX and Windows): a crash mid-save leaves the
previous checkpoint untouched.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile

from .. import backend
from ..backend import numpy as np
from ..tensor import Tensor

__all__ = ["save", "load"]

_STRUCTURE = "__tinynet_structure__"
_FORMAT = "tinynet-checkpoint"
_VERSION = 1


def _encode(obj, arrays: list, path: str):
    """A JSON-able description of ``obj``; arrays are appended to ``arrays``."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj if not isinstance(obj, str) else {"str": obj}
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        return {"int": str(int(obj))}             # as text: Python ints may exceed 64 bits
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return {"float": repr(f) if math.isfinite(f) else str(f)}
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Tensor):
        arrays.append(backend.asnumpy(obj.data))
        return {"tensor": len(arrays) - 1, "requires_grad": bool(obj.requires_grad),
                "device": str(obj.device)}
    if hasattr(obj, "shape") and hasattr(obj, "dtype") and hasattr(obj, "__array__") or \
            type(obj).__module__.startswith("cupy"):
        arr = backend.asnumpy(obj)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"save: array at {path} has dtype {arr.dtype}; only bool, integer "
                            "and float arrays can be saved without pickle")
        arrays.append(arr)
        return {"array": len(arrays) - 1}
    if isinstance(obj, dict):
        keys = []
        for k in obj:
            if isinstance(k, bool) or not isinstance(k, (str, int, np.integer)):
                raise TypeError(f"save: dict key {k!r} at {path} must be a string or an int")
            keys.append({"str": k} if isinstance(k, str) else {"int": str(int(k))})
        return {"dict": [[kk, _encode(v, arrays, f"{path}[{k!r}]")] for kk, (k, v) in
                         zip(keys, obj.items())]}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, arrays, f"{path}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(f"save: cannot save {type(obj).__name__} at {path} without pickle; allowed: "
                    "dict, list, tuple, Tensor, array, int, float, str, bool, None")


def save(obj, path) -> None:
    """Writes ``obj`` to ``path`` atomically (temporary file + rename), without pickle.

    Example
    -------
    >>> import tinynet as tn, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> tn.utils.save({"w": tn.ones(2), "epoch": 3}, p)
    >>> tn.utils.load(p)["epoch"]
    3
    """
    path = os.fspath(path)
    arrays: list = []
    structure = {"format": _FORMAT, "version": _VERSION, "root": _encode(obj, arrays, "obj")}
    text = json.dumps(structure).encode("utf-8")
    entries = {f"a{i}": a for i, a in enumerate(arrays)}
    entries[_STRUCTURE] = np.frombuffer(text, dtype=np.uint8)
    write_atomically(path, lambda f: np.savez(f, **entries))


def write_atomically(path, write) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path``, flushes it to disk, then
    renames it over ``path``: readers see the old file or the whole new one, never a part
    (checkpoints, safetensors and ONNX files are all written this way)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_directory(directory)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _fsync_directory(directory: str) -> None:
    """Makes the rename itself durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _decode(node, arrays, map_location, path):
    if node is None or isinstance(node, bool):
        return node
    if not isinstance(node, dict) or len(node) == 0:
        raise ValueError(f"load: {path}: malformed checkpoint structure")
    if "str" in node:
        return str(node["str"])
    if "int" in node:
        return int(node["int"])
    if "float" in node:
        return float(node["float"])
    if "tensor" in node or "array" in node:
        idx = node.get("tensor", node.get("array"))
        key = f"a{idx}"
        if not isinstance(idx, int) or key not in arrays:
            raise ValueError(f"load: {path}: checkpoint refers to a missing array {key!r}")
        arr = arrays[key]
        if "array" in node:
            return arr if map_location is None else backend.to_device(arr, map_location)
        device = map_location if map_location is not None else node.get("device", "cpu")
        try:
            data = backend.to_device(arr, device)
        except RuntimeError as e:
            raise RuntimeError(f"load: {path}: tensor was saved on {device} but {e}; pass "
                               "map_location='cpu'") from None
        return Tensor(data, requires_grad=bool(node.get("requires_grad")) and arr.dtype.kind == "f")
    if "dict" in node:
        return {_decode(k, arrays, map_location, path): _decode(v, arrays, map_location, path)
                for k, v in node["dict"]}
    if "list" in node:
        return [_decode(v, arrays, map_location, path) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, arrays, map_location, path) for v in node["tuple"])
    raise ValueError(f"load: {path}: malformed checkpoint structure (unknown entry {sorted(node)})")


def load(path, map_location=None):
    """Reads a checkpoint written by :func:`save`; never unpickles.

    Tensors return on the device they were saved from, or on ``map_location`` ("cpu",
    "cuda:0") when given. A corrupt, truncated, pickled or foreign file is a ``ValueError``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such checkpoint: {path}")
    if map_location is not None:
        map_location = backend.Device(map_location)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:1] == b"\x80":
        raise ValueError(f"load: {path} is a pickle file, which tinynet refuses to load (it could "
                         "run arbitrary code); checkpoints are .npz archives written by tinynet.utils.save")
    if magic != b"PK\x03\x04":
        raise ValueError(f"load: {path} is not a tinynet checkpoint (not an .npz archive"
                         + ("; the file is empty" if not magic else "") + ")")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not a checkpoint archive")
            if _STRUCTURE not in npz.files:
                raise ValueError(f"it has no {_STRUCTURE!r} entry (not written by tinynet.utils.save)")
            text = bytes(npz[_STRUCTURE].tobytes()).decode("utf-8")
            arrays = {k: npz[k] for k in npz.files if k != _STRUCTURE}
    except ValueError as e:
        if "pickle" in str(e):
            raise ValueError(f"load: {path} contains pickled data, which tinynet refuses to load "
                             "(it could run arbitrary code)") from None
        raise ValueError(f"load: {path} is not a valid tinynet checkpoint: {e}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, UnicodeDecodeError,
            zipfile.LargeZipFile, NotImplementedError) as e:
        raise ValueError(f"load: {path} is corrupt or truncated (not a readable .npz archive): "
                         f"{type(e).__name__}: {e}") from None
    try:
        structure = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"load: {path} has a corrupt structure entry: {e}") from None
    if not isinstance(structure, dict) or structure.get("format") != _FORMAT:
        raise ValueError(f"load: {path} is not a tinynet checkpoint (format tag missing)")
    if structure.get("version") != _VERSION:
        raise ValueError(f"load: {path} has checkpoint version {structure.get('version')!r}; "
                         f"this tinynet reads version {_VERSION}")
    return _decode(structure.get("root"), arrays, map_location, path)
