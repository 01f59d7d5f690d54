"""Tensor factories. They create on the default device (``backend.set_default_device``)
unless ``device`` is given; random ones draw from tinynet's one generator."""
from __future__ import annotations

from . import backend
from .random import generator
from .tensor import Tensor, DEFAULT_FLOAT, as_dtype

__all__ = ["zeros", "ones", "full", "empty", "arange", "randn", "rand", "randint",
           "zeros_like", "ones_like", "full_like", "randn_like", "rand_like", "eye"]


def _size(size, op):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if isinstance(s, bool) or not isinstance(s, int) and not hasattr(s, "__index__"):
            raise TypeError(f"{op}: sizes must be ints, got {type(s).__name__}")
        if int(s) < 0:
            raise ValueError(f"{op}: sizes must be non-negative, got {tuple(size)}")
    return tuple(int(s) for s in size)


def _finish(arr, device, requires_grad):
    dev = backend.Device(device) if device is not None else backend.get_default_device()
    return Tensor(backend.to_device(arr, dev), requires_grad=requires_grad)


def _xp(device):
    return (backend.Device(device) if device is not None else backend.get_default_device()).xp


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = _xp(device)
    return _finish(xp.zeros(_size(size, "zeros"), dtype=as_dtype(dtype or DEFAULT_FLOAT, "zeros")),
                   device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = _xp(device)
    return _finish(xp.ones(_size(size, "ones"), dtype=as_dtype(dtype or DEFAULT_FLOAT, "ones")),
                   device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    if dtype is None:
        dtype = DEFAULT_FLOAT if isinstance(fill_value, float) else \
            "bool" if isinstance(fill_value, bool) else "int64"
    xp = _xp(device)
    return _finish(xp.full(_size((size,) if isinstance(size, int) else (tuple(size),), "full"),
                           fill_value, dtype=as_dtype(dtype, "full")), device, requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = _xp(device)
    return _finish(xp.eye(n, m, dtype=as_dtype(dtype or DEFAULT_FLOAT, "eye")), device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Like ``torch.arange``: integers give int64, any float gives float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if dtype is None:
        dtype = "int64" if all(isinstance(v, int) for v in (start, end, step)) else DEFAULT_FLOAT
    xp = _xp(device)
    return _finish(xp.arange(start, end, step, dtype=as_dtype(dtype, "arange")), device, requires_grad)


def _float_dtype(dtype, op):
    d = as_dtype(dtype or DEFAULT_FLOAT, op)
    if d.kind != "f":
        raise TypeError(f"{op}: dtype must be floating-point, got {d}")
    return d


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples."""
    d = _float_dtype(dtype, "randn")
    return _finish(generator().standard_normal(_size(size, "randn")).astype(d), device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples on [0, 1)."""
    d = _float_dtype(dtype, "rand")
    return _finish(generator().random(_size(size, "rand")).astype(d), device, requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None) -> Tensor:
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    return _finish(generator().integers(low, high, size=_size((tuple(size),), "randint"))
                   .astype(as_dtype(dtype or "int64", "randint")), device, False)


def _like(op, fn, x, dtype, device, **kw):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    return fn(*x.shape, dtype=dtype or x.dtype, device=device or x.device, **kw)


def zeros_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like("zeros_like", zeros, input, dtype, device, requires_grad=requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like("ones_like", ones, input, dtype, device, requires_grad=requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like("randn_like", randn, input, dtype, device, requires_grad=requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like("rand_like", rand, input, dtype, device, requires_grad=requires_grad)


__all__ += ["from_numpy"]


def from_numpy(ndarray) -> Tensor:
    """A CPU tensor that shares memory with the NumPy array ``ndarray`` (no copy), as
    ``torch.from_numpy``: writes through either are seen by the other; the dtype is kept.

    Example
    -------
    >>> import numpy as np, tinynet as tn
    >>> a = np.zeros(3); t = tn.from_numpy(a); a[0] = 7.0; t.numpy().tolist()
    [7.0, 0.0, 0.0]
    """
    np = backend.numpy
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    if ndarray.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: can't convert an array of dtype {ndarray.dtype}; supported "
                        "kinds are bool, integer and float")
    if ndarray.dtype.byteorder == ">":
        raise TypeError("from_numpy: a big-endian array can't share memory; convert it with "
                        "ndarray.astype(ndarray.dtype.newbyteorder('='))")
    return Tensor(ndarray)
