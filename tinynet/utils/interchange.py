"""Weights in the ``safetensors`` format: ``save_safetensors`` and ``load_safetensors``.

A safetensors file is an 8-byte little-endian header length, a JSON header
``{name: {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}`` and the raw,
C-ordered tensor bytes. It holds no code, so reading one can never execute anything (no
pickle anywhere), and PyTorch, JAX and the Hugging Face tools read it directly.

Because tinynet's ``state_dict`` keys, shapes and layouts are PyTorch's for the same
module (``conv1.weight`` is ``(C_out, C_in, kh, kw)``, LSTM gates are i, f, g, o, BatchNorm
keeps ``running_mean``/``running_var``/``num_batches_tracked``), a file written here loads
into the equivalent PyTorch model with::

    model.load_state_dict(safetensors.torch.load_file(path))

and a file written by ``safetensors.torch.save_file(torch_model.state_dict(), path)`` loads
into tinynet with ``model.load_state_dict(tinynet.utils.load_safetensors(path))``.

The ``safetensors`` package is optional (``pip install "tinynet[safetensors]"``); only these
two functions need it, through its NumPy API. Writing is atomic (temporary file + rename),
as for :func:`tinynet.utils.save`.
"""
from __future__ import annotations

import json
import os
import struct
from collections import OrderedDict

from .. import backend
from ..tensor import Tensor
from .checkpoint import write_atomically

__all__ = ["save_safetensors", "load_safetensors"]

_INSTALL_HINT = 'install it with: pip install "tinynet[safetensors]" (or pip install safetensors)'


def _safetensors_numpy(op: str):
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(f"{op}: the optional package 'safetensors' is not installed; "
                          f"{_INSTALL_HINT}") from None
    return safetensors.numpy


def _arrays(state, op: str) -> "OrderedDict[str, object]":
    """Host NumPy arrays, C-contiguous, from a Module or a dict of Tensors/arrays."""
    if hasattr(state, "state_dict") and callable(state.state_dict):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise TypeError(f"{op}: expected a Module or a dict of name -> Tensor/array, "
                        f"got {type(state).__name__}")
    out = OrderedDict()
    for name, value in state.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"{op}: keys must be non-empty strings, got {name!r}")
        if isinstance(value, Tensor):
            arr = backend.asnumpy(value.data)
        elif hasattr(value, "shape") and hasattr(value, "dtype"):
            arr = backend.asnumpy(value)
        else:
            raise TypeError(f"{op}: value of {name!r} must be a Tensor or an array, "
                            f"got {type(value).__name__}")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{op}: {name!r} has dtype {arr.dtype}; safetensors holds bool, "
                            "integer and float tensors only")
        # (not ascontiguousarray: it turns a 0-d buffer such as num_batches_tracked into 1-d)
        out[name] = arr if arr.flags.c_contiguous else arr.copy(order="C")
    return out


def save_safetensors(state, path, metadata: dict | None = None) -> None:
    """Writes a model's ``state_dict()`` (or a dict of Tensors/arrays) to ``path`` as safetensors.

    Parameters
    ----------
    state : Module or dict
        A Module (its ``state_dict()`` is written: parameters and persistent buffers,
        under PyTorch's key names) or a dict ``name -> Tensor | array``.
    path : str or os.PathLike
    metadata : dict of str -> str, optional
        Stored in the header's ``__metadata__`` (safetensors allows text values only).

    Example
    -------
    >>> import tinynet as tn, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> tn.utils.save_safetensors(tn.nn.Linear(3, 2), p)
    >>> sorted(tn.utils.load_safetensors(p))
    ['bias', 'weight']
    """
    op = "save_safetensors"
    st = _safetensors_numpy(op)
    arrays = _arrays(state, op)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in metadata.items()):
            raise TypeError(f"{op}: metadata must be a dict of str -> str, got {metadata!r}")
    blob = st.save(dict(arrays), metadata=metadata)
    write_atomically(path, lambda f: f.write(blob))


def _check_header(path: str, op: str) -> None:
    """A clear error for files that are not safetensors (before the library sees them)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{op}: {path} is not a safetensors file (only {size} bytes; "
                             "it needs an 8-byte header length first)")
        (n,) = struct.unpack("<Q", head)
        if n < 2 or 8 + n > size:
            raise ValueError(f"{op}: {path} is not a safetensors file or is truncated (header "
                             f"length {n} with {size} bytes in the file)")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{op}: {path} has a corrupt safetensors header: {e}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{op}: {path} has a corrupt safetensors header (not a JSON object)")
    end = max((v["data_offsets"][1] for k, v in header.items()
               if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v), default=0)
    if 8 + n + end > size:
        raise ValueError(f"{op}: {path} is truncated: the header describes {end} bytes of "
                         f"tensor data but the file has {size - 8 - n}")


def load_safetensors(path, map_location=None) -> "OrderedDict[str, Tensor]":
    """Reads a safetensors file into ``{name: Tensor}``; never unpickles.

    Pass the result to ``model.load_state_dict``; tensors land on ``map_location``
    ("cpu", "cuda:0"; default: the current default device).
    """
    op = "load_safetensors"
    st = _safetensors_numpy(op)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{op}: no such file: {path}")
    _check_header(path, op)
    try:
        arrays = st.load_file(path)
    except Exception as e:   # the library's own error types differ between versions
        raise ValueError(f"{op}: {path} could not be read as safetensors: {type(e).__name__}: {e}") \
            from None
    device = backend.Device(map_location) if map_location is not None else backend.get_default_device()
    return OrderedDict((name, Tensor(backend.to_device(arr, device))) for name, arr in arrays.items())
