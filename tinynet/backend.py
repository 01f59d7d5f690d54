"""The only module that knows NumPy from CuPy.

Everything numerical in tinynet is written once against an array namespace ``xp``,
obtained from the arrays themselves with :func:`get_array_module`. The handful of places
where the two libraries differ live here:

* devices: parsing ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and moving arrays between them;
* strided views (``as_strided``, ``sliding_window_view``);
* unbuffered scatter-add (``np.add.at`` vs ``cupyx.scatter_add``);
* compiled elementwise kernels (CuPy only; callers keep an ``xp`` fallback); every kernel
  tinynet defines is declared once with :func:`define_elementwise_kernel`, so a test can
  compile them all.

CuPy is imported lazily, the first time a CUDA device is asked for, so importing tinynet
needs NumPy only.

A test stand-in for CUDA (``tinynet.testing.fakecuda``: NumPy arrays that follow CuPy's
rules) can be plugged in with :func:`install_stand_in`; it takes the CuPy branches below
with its own CuPy-like namespace, is never a GPU, and is not offered to users.
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy

__all__ = [
    "Device", "device", "numpy", "get_array_module", "device_of", "to_device",
    "is_cuda_available", "set_default_device", "get_default_device", "as_strided",
    "sliding_window_view", "scatter_add", "elementwise_kernel", "asnumpy",
    "ElementwiseKernelSource", "define_elementwise_kernel", "KERNEL_SOURCES",
    "install_stand_in", "is_device_string",
]

_cupy = None            # the cupy module once imported
_cupy_error = None      # why CUDA is unavailable, once known
_stand_in = None        # a test stand-in for CUDA (tinynet.testing.fakecuda), once installed


class Device:
    """A device: ``Device("cpu")``, ``Device("cuda")`` (index 0) or ``Device("cuda:1")``."""

    __slots__ = ("type", "index")

    def __init__(self, spec: "str | Device" = "cpu"):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got {type(spec).__name__}")
        kind, _, index = spec.strip().lower().partition(":")
        if kind == "cpu" and not index:
            self.type, self.index = "cpu", None
        elif kind in ("cuda", "gpu") and (not index or index.isdigit()):
            self.type, self.index = "cuda", int(index) if index else 0
        elif _stand_in is not None and kind == _stand_in.name and index in ("", "0"):
            self.type, self.index = kind, 0
        else:
            raise ValueError(f"device: unknown device {spec!r}; expected 'cpu', 'cuda' or 'cuda:N'")

    @property
    def xp(self):
        """The array module that holds arrays on this device."""
        if self.type == "cpu":
            return numpy
        if _stand_in is not None and self.type == _stand_in.name:
            return _stand_in.xp
        return _require_cupy(self)

    def __str__(self) -> str:
        return "cpu" if self.type == "cpu" else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        text = f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}")
        if _stand_in is not None and self.type == _stand_in.name:
            text += f", stand_in={_stand_in.description!r}"
        return text + ")"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except ValueError:
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


def is_device_string(spec) -> bool:
    """True when ``spec`` names a device type (``"cpu"``, ``"cuda:1"``...) rather than a dtype."""
    if not isinstance(spec, str):
        return False
    kind = spec.split(":")[0].strip().lower()
    return kind in ("cpu", "cuda", "gpu") or (_stand_in is not None and kind == _stand_in.name)


def install_stand_in(stand_in) -> None:
    """Plugs in a test stand-in for CUDA (see ``tinynet.testing.fakecuda``); not a user device.

    ``stand_in`` has ``name`` (its device type), ``description`` (shown in the device's
    repr), ``xp`` (a CuPy-like namespace: ``ndarray``, ``asarray``, ``cuda.Device``,
    ``lib.stride_tricks``, ``ElementwiseKernel``...) and ``cupyx`` (``scatter_add``).
    Its arrays then take the CuPy branches of this module.
    """
    global _stand_in
    _stand_in = stand_in


def device(spec: "str | Device") -> Device:
    """Parses a device string; an unknown one is a ``ValueError``."""
    return Device(spec)


CPU = Device("cpu")
_default_device = CPU


def set_default_device(spec: "str | Device") -> None:
    """Device on which factories (``tensor``, ``zeros``, ``randn``...) create tensors."""
    global _default_device
    d = Device(spec)
    if d.type == "cuda":
        _require_cupy(d)
    _default_device = d


def get_default_device() -> Device:
    return _default_device


def _import_cupy():
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            import cupy
        except ImportError as e:  # no CuPy at all
            _cupy_error = (f"CUDA requested but CuPy is not installed ({e}); "
                           "install tinynet[cuda] (cupy-cuda12x) on a machine with an NVIDIA GPU")
            return None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CuPy without a driver or GPU raises CUDARuntimeError
            _cupy_error = f"CUDA requested but CuPy found no usable GPU: {type(e).__name__}: {e}"
            return None
        if count < 1:
            _cupy_error = "CUDA requested but CuPy found no usable GPU (0 devices)"
            return None
        _cupy = cupy
    return _cupy


def _require_cupy(dev: Device | None = None):
    cp = _import_cupy()
    if cp is None:
        raise RuntimeError(_cupy_error)
    if dev is not None and dev.index is not None and dev.index >= cp.cuda.runtime.getDeviceCount():
        raise RuntimeError(f"CUDA device {dev} requested but only "
                           f"{cp.cuda.runtime.getDeviceCount()} GPU(s) are visible")
    return cp


def is_cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    return _import_cupy() is not None


def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, or None when it can."""
    return None if is_cuda_available() else _cupy_error


def _device_module(a: Any):
    """``cupy`` (or the stand-in's namespace) when ``a`` is one of its arrays, else None."""
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy
    if _stand_in is not None and isinstance(a, _stand_in.xp.ndarray):
        return _stand_in.xp
    return None


def _is_cupy_array(a: Any) -> bool:
    return _device_module(a) is not None


def get_array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if _cupy is not None or _stand_in is not None:
        for a in arrays:
            xp = _device_module(a)
            if xp is not None:
                return xp
    return numpy


def device_of(array) -> Device:
    """The device holding ``array``."""
    xp = _device_module(array)
    if xp is None:
        return CPU
    return Device(f"{'cuda' if xp is _cupy else _stand_in.name}:{array.device.id}")


def to_device(array, dev: "str | Device"):
    """Copies ``array`` to ``dev`` (no copy when it is already there)."""
    dev = Device(dev)
    if dev.type == "cpu":
        return asnumpy(array)
    cp = dev.xp
    if _device_module(array) is not None:
        if device_of(array) == dev:
            return array
        array = asnumpy(array)        # between a GPU and the stand-in: through the host
    with cp.cuda.Device(dev.index):
        return cp.asarray(array)


def asnumpy(array) -> numpy.ndarray:
    """A NumPy array on the host with the contents of ``array``."""
    return array.get() if _is_cupy_array(array) else numpy.asarray(array)


def as_strided(x, shape, strides):
    """A view of ``x`` with the given shape and byte strides (no copy, no bounds check)."""
    xp = _device_module(x)
    if xp is not None:
        return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)
    return numpy.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, writeable=False)


def sliding_window_view(x, window_shape, axis=None):
    """Read-only view of all windows of ``window_shape`` along ``axis`` (NumPy semantics)."""
    xp = get_array_module(x)
    return xp.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)


def scatter_add(target, indices, values) -> None:
    """``target[indices] += values`` accumulating repeated indices (unbuffered), in place."""
    xp = _device_module(target)
    if xp is None:
        numpy.add.at(target, indices, values)
    elif xp is _cupy:
        import cupyx
        cupyx.scatter_add(target, indices, values)
    else:
        _stand_in.cupyx.scatter_add(target, indices, values)


class ElementwiseKernelSource(NamedTuple):
    """The four strings of a CuPy ``ElementwiseKernel``: parameters, body (CUDA C++), name."""
    in_params: str
    out_params: str
    operation: str
    name: str


KERNEL_SOURCES: "list[ElementwiseKernelSource]" = []   # every kernel tinynet defines


def define_elementwise_kernel(in_params: str, out_params: str, operation: str,
                              name: str) -> ElementwiseKernelSource:
    """Declares a kernel (at import time) so tests can compile every one; returns its source."""
    source = ElementwiseKernelSource(in_params, out_params, operation, name)
    if any(k.name == name and k != source for k in KERNEL_SOURCES):
        raise ValueError(f"define_elementwise_kernel: two different kernels are named {name!r}")
    if source not in KERNEL_SOURCES:
        KERNEL_SOURCES.append(source)
    return source


_kernel_cache: dict = {}


def elementwise_kernel(source: ElementwiseKernelSource, xp):
    """The compiled ``ElementwiseKernel`` of ``source`` for arrays of ``xp`` (cached).

    ``None`` for NumPy: callers keep an ``xp`` fallback. On the test stand-in the kernel's
    source is compiled (NVRTC, where installed) and a NumPy emulation runs.
    """
    if xp is numpy:
        return None
    key = (source, id(xp))
    if key not in _kernel_cache:
        _kernel_cache[key] = xp.ElementwiseKernel(*source)
    return _kernel_cache[key]


def _tune_allocator() -> None:
    """Keeps large temporaries mapped between calls (glibc only; see docs/architecture.md).

    glibc's malloc hands blocks above its mmap threshold straight back to the OS and
    page-faults them in again on the next call; raising the thresholds keeps the big
    im2col and activation buffers resident. Set ``TINYNET_NO_MALLOPT=1`` to skip.
    """
    if os.environ.get("TINYNET_NO_MALLOPT"):
        return
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)   # glibc's largest allowed value
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)


_tune_allocator()
