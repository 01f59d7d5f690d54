"""The only module that knows NumPy from CuPy.

Everything numerical in tinynet is written once against an array namespace ``xp``,
obtained from the arrays themselves with :func:`get_array_module`. The handful of places
where the two libraries differ live here:

* devices: parsing ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and moving arrays between them;
* strided views (``as_strided``, ``sliding_window_view``);
* unbuffered scatter-add (``np.add.at`` vs ``cupyx.scatter_add``);
* compiled elementwise kernels (CuPy only; callers keep an ``xp`` fallback);
* the error function ``erf`` (neither NumPy nor CuPy has it in the main namespace).

CuPy is imported lazily, the first time a CUDA device is asked for, so importing tinynet
needs NumPy only.
"""
from __future__ import annotations

import os
from typing import Any

import numpy

__all__ = [
    "Device", "device", "numpy", "get_array_module", "device_of", "to_device",
    "is_cuda_available", "set_default_device", "get_default_device", "as_strided",
    "sliding_window_view", "scatter_add", "elementwise_kernel", "asnumpy", "erf",
]

_cupy = None            # the cupy module once imported
_cupy_error = None      # why CUDA is unavailable, once known


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
        else:
            raise ValueError(f"device: unknown device {spec!r}; expected 'cpu', 'cuda' or 'cuda:N'")

    @property
    def xp(self):
        """The array module that holds arrays on this device."""
        return numpy if self.type == "cpu" else _require_cupy(self)

    def __str__(self) -> str:
        return "cpu" if self.type == "cpu" else f"cuda:{self.index}"

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except ValueError:
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


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


def _is_cupy_array(a: Any) -> bool:
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def get_array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return numpy


def device_of(array) -> Device:
    """The device holding ``array``."""
    if _is_cupy_array(array):
        return Device(f"cuda:{array.device.id}")
    return CPU


def to_device(array, dev: "str | Device"):
    """Copies ``array`` to ``dev`` (no copy when it is already there)."""
    dev = Device(dev)
    if dev.type == "cpu":
        return array.get() if _is_cupy_array(array) else numpy.asarray(array)
    cp = _require_cupy(dev)
    if _is_cupy_array(array) and array.device.id == dev.index:
        return array
    with cp.cuda.Device(dev.index):
        return cp.asarray(array)


def asnumpy(array) -> numpy.ndarray:
    """A NumPy array on the host with the contents of ``array``."""
    return array.get() if _is_cupy_array(array) else numpy.asarray(array)


def as_strided(x, shape, strides):
    """A view of ``x`` with the given shape and byte strides (no copy, no bounds check)."""
    if _is_cupy_array(x):
        return _cupy.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)
    return numpy.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, writeable=False)


def sliding_window_view(x, window_shape, axis=None):
    """Read-only view of all windows of ``window_shape`` along ``axis`` (NumPy semantics)."""
    xp = get_array_module(x)
    return xp.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)


def scatter_add(target, indices, values) -> None:
    """``target[indices] += values`` accumulating repeated indices (unbuffered), in place."""
    if _is_cupy_array(target):
        import cupyx
        cupyx.scatter_add(target, indices, values)
    else:
        numpy.add.at(target, indices, values)


_erf_host = None


def erf(x):
    """The error function, elementwise, to full float64 accuracy.

    CuPy arrays use ``cupyx.scipy.special.erf``; NumPy arrays use ``scipy.special.erf``
    when SciPy is installed, else ``math.erf`` element by element (exact, slower).
    """
    global _erf_host
    if _is_cupy_array(x):
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)
    if _erf_host is None:
        try:
            from scipy.special import erf as _erf_host
        except ImportError:
            import math
            _erf_host = numpy.vectorize(math.erf, otypes=[numpy.float64])
    return numpy.asarray(_erf_host(x), dtype=x.dtype)


_kernel_cache: dict = {}


def elementwise_kernel(in_params: str, out_params: str, operation: str, name: str):
    """A compiled CuPy ``ElementwiseKernel`` (cached), or ``None`` when CuPy is absent.

    Callers use it only for CuPy arrays and keep an ``xp`` fallback for NumPy.
    """
    if _import_cupy() is None:
        return None
    key = (in_params, out_params, operation, name)
    if key not in _kernel_cache:
        _kernel_cache[key] = _cupy.ElementwiseKernel(in_params, out_params, operation, name)
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
