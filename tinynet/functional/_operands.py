"""Turning op arguments into Tensors: scalars, dtype promotion and device checks.

PyTorch's promotion rules for the dtypes tinynet has: a Python scalar takes the tensor's
dtype (a float scalar with an integer tensor gives float32); two tensors of different
float dtypes give the wider one; an integer tensor with a float tensor gives the float
tensor's dtype; two integer tensors follow NumPy.
"""
from __future__ import annotations

from numbers import Number

from .. import backend
from ..backend import numpy as np
from ..tensor import Tensor, DEFAULT_FLOAT

__all__ = ["as_tensor", "binary_operands", "check_broadcastable", "promote", "check_tensor", "check_same_device",
           "check_floating", "normalize_dim", "normalize_dims", "inplace_ignored"]


def promote(a, b):
    """Result dtype of a binary op between dtypes ``a`` and ``b`` (PyTorch rules)."""
    fa, fb = a.kind == "f", b.kind == "f"
    if fa and not fb:
        return a
    if fb and not fa:
        return b
    return np.promote_types(a, b)


def _scalar_dtype(value, like):
    """dtype a Python scalar takes next to a tensor of dtype ``like``."""
    if isinstance(value, bool):
        return like
    if isinstance(value, int):
        return np.dtype("int64") if like.kind == "b" else like
    return like if like.kind == "f" else DEFAULT_FLOAT


def as_tensor(value, op: str, arg: str, like: Tensor | None = None) -> Tensor:
    """A Tensor for ``value``: Tensors pass through, scalars follow ``like``'s dtype/device."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (Number, np.generic)) and not isinstance(value, complex):
        if like is None:
            dtype = DEFAULT_FLOAT if isinstance(value, float) else np.asarray(value).dtype
            return Tensor(backend.get_default_device().xp.asarray(value, dtype=dtype))
        return Tensor(like.xp.asarray(value, dtype=_scalar_dtype(value, like.dtype)))
    raise TypeError(f"{op}: argument '{arg}' must be a Tensor or a number, got {type(value).__name__}")


def binary_operands(a, b, op: str, broadcast: bool = True):
    """(a, b) as Tensors of one dtype on one device, ready for an elementwise op.

    With ``broadcast`` (elementwise ops) the shapes must broadcast, else a ValueError
    naming ``op``; matmul passes False and checks its own shape rules.
    """
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} and "
                            f"{type(b).__name__}")
        a = as_tensor(a, op, "input", like=b)
    else:
        b = as_tensor(b, op, "other", like=a)
    if broadcast and a.data.shape != b.data.shape:
        check_broadcastable(a.data.shape, b.data.shape, op)
    if a.data.dtype != b.data.dtype:
        dt = promote(a.data.dtype, b.data.dtype)
        if a.data.dtype != dt:
            a = to_dtype(a, dt)
        if b.data.dtype != dt:
            b = to_dtype(b, dt)
    return a, b


def check_broadcastable(shape_a, shape_b, op: str) -> None:
    """ValueError naming ``op`` unless the two shapes broadcast (NumPy rules)."""
    for m, n in zip(reversed(shape_a), reversed(shape_b)):
        if m != n and m != 1 and n != 1:
            raise ValueError(f"{op}: shapes {tuple(shape_a)} and {tuple(shape_b)} do not broadcast "
                             f"(sizes {m} and {n} differ and neither is 1)")


def to_dtype(x: Tensor, dtype) -> Tensor:
    from .elementwise import to_dtype as _to_dtype
    return _to_dtype(x, dtype)


def check_tensor(x, op: str, arg: str = "input", ndim=None, floating: bool = False) -> Tensor:
    """Raises a clear error unless ``x`` is a Tensor (of ``ndim`` dims, floating)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: argument '{arg}' must be a Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(f"{n}-D" for n in allowed)
            raise ValueError(f"{op}: expected '{arg}' to be {want}, got shape {tuple(x.shape)}")
    if floating:
        check_floating(x, op, arg)
    return x


def check_floating(x: Tensor, op: str, arg: str = "input") -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected '{arg}' to be a floating-point tensor, got {x.dtype}")


def check_same_device(op: str, **tensors) -> None:
    """ValueError naming both devices when the given tensors live on different devices."""
    if backend._cupy is None and backend._stand_in is None:
        return      # no GPU namespace loaded: every array is a NumPy array, on the CPU
    items = [(k, t.device) for k, t in tensors.items() if isinstance(t, Tensor)]
    for k, d in items[1:]:
        if d != items[0][1]:
            raise ValueError(f"{op}: '{items[0][0]}' is on {items[0][1]} but '{k}' is on {d}; "
                             "move them to one device first")


def check_same_dtype(op: str, **tensors) -> None:
    items = [(k, t.dtype) for k, t in tensors.items() if isinstance(t, Tensor)]
    for k, d in items[1:]:
        if d != items[0][1]:
            raise TypeError(f"{op}: '{items[0][0]}' has dtype {items[0][1]} but '{k}' has dtype {d}")


def normalize_dim(dim, ndim: int, op: str) -> int:
    """A dim in ``[-ndim, ndim)`` as a non-negative int, else a clear IndexError/TypeError."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions "
                         f"(expected a value in [{-n}, {n - 1}])")
    return int(dim) % n


def normalize_dims(dim, ndim: int, op: str) -> tuple:
    """``None`` (all dims), an int or a sequence of ints -> a sorted tuple of unique dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (int, np.integer)):
        dims = (dim,)
    else:
        try:
            dims = tuple(dim)
        except TypeError:
            raise TypeError(f"{op}: dim must be an int, a tuple of ints or None, "
                            f"got {type(dim).__name__}") from None
    out = tuple(sorted({normalize_dim(d, ndim, op) for d in dims}))
    if len(out) != len(dims):
        raise ValueError(f"{op}: dim {dim} names a dimension twice")
    # A 0-d tensor accepts dim 0 / -1 (as PyTorch) and has no axis to reduce.
    return out if ndim else ()


def inplace_ignored(inplace, op: str) -> None:
    """``inplace`` is accepted for PyTorch compatibility and ignored (tinynet ops never
    write into their input); it must still be a bool."""
    if not isinstance(inplace, bool):
        raise TypeError(f"{op}: 'inplace' must be a bool, got {type(inplace).__name__}")
