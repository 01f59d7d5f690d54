"""Reductions over dimensions: sum, mean, max, min, var, std, argmax, argmin.

Tie rule for ``max``/``min`` (as PyTorch): a full reduction (``dim=None``) splits the
gradient equally between all positions holding the extreme value; a reduction along
``dim`` returns the index of the first extreme value and sends the whole gradient there.
"""
from __future__ import annotations

from collections import namedtuple

from ..autograd import Function
from ..tensor import Tensor, as_dtype
from ._operands import check_tensor, normalize_dims, normalize_dim

__all__ = ["sum", "mean", "max", "min", "amax", "amin", "var", "std", "argmax", "argmin", "sum_to"]

MaxMin = namedtuple("MaxMin", ["values", "indices"])
_builtin_sum = sum


def _int_tuple(values, op, arg):
    try:
        out = tuple(values)
    except TypeError:
        raise TypeError(f"{op}: '{arg}' must be a sequence of ints, got {type(values).__name__}") from None
    if any(isinstance(v, bool) or not hasattr(v, "__index__") for v in out):
        raise TypeError(f"{op}: '{arg}' must be a sequence of ints, got {values!r}")
    return tuple(int(v) for v in out)


def _check_keepdim(keepdim, op):
    if not isinstance(keepdim, (bool, int)) or keepdim not in (0, 1):
        raise TypeError(f"{op}: keepdim must be a bool, got {keepdim!r}")


def _check_correction(correction, op):
    if isinstance(correction, bool) or not isinstance(correction, (int, float)):
        raise TypeError(f"{op}: correction must be a number, got {correction!r}")


def _keepdim_shape(shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


class Sum(Function):
    def forward(self, x, dims=(), keepdim=False):
        self.in_shape, self.kept = x.shape, _keepdim_shape(x.shape, dims)
        return x.sum(axis=dims, keepdims=keepdim)

    def backward(self, g):
        return broadcast_to(g.reshape(self.kept), self.in_shape)


class SumTo(Function):
    """Sums a broadcast gradient back down to ``shape`` (the adjoint of broadcasting)."""

    def forward(self, x, shape=()):
        self.in_shape = x.shape
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                          if s == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(shape)

    def backward(self, g):
        return broadcast_to(g, self.in_shape)


class BroadcastTo(Function):
    def forward(self, x, shape=()):
        from .. import backend
        self.in_shape = x.shape
        return backend.get_array_module(x).broadcast_to(x, shape)

    def backward(self, g):
        return sum_to(g, self.in_shape)


class Extreme(Function):
    """max/min along dims; the gradient goes through a constant selection mask."""

    def forward(self, x, dims=(), keepdim=False, largest=True, along_dim=False):
        from .. import backend
        xp = backend.get_array_module(x)
        self.kept, self.in_shape = _keepdim_shape(x.shape, dims), x.shape
        y = x.max(axis=dims, keepdims=True) if largest else x.min(axis=dims, keepdims=True)
        mask = (x == y)
        if along_dim:
            # Along one dim: the first extreme position only, as the returned index.
            idx = (mask.argmax(axis=dims[0])).reshape(self.kept)
            mask = xp.arange(x.shape[dims[0]]).reshape(
                [-1 if i == dims[0] else 1 for i in range(x.ndim)]) == idx
            self.indices = idx if keepdim else idx.reshape([s for i, s in enumerate(x.shape) if i not in dims])
            self.weights = mask.astype(x.dtype)
        else:
            self.weights = mask / mask.sum(axis=dims, keepdims=True)
        return y if keepdim else y.reshape([s for i, s in enumerate(x.shape) if i not in dims])

    def backward(self, g):
        return broadcast_to(g.reshape(self.kept), self.in_shape) * Tensor(self.weights.astype(g.dtype))


def sum(input, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Sum over ``dim`` (an int, a tuple, or None for all)."""
    check_tensor(input, "sum")
    _check_keepdim(keepdim, "sum")
    dims = normalize_dims(dim, input.ndim, "sum")
    if dtype is not None:
        input = input.to(as_dtype(dtype, "sum"))
    elif input.dtype.kind in "bi":
        input = input.to("int64")
    return Sum.apply(input, dims=dims, keepdim=keepdim)


def mean(input, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Arithmetic mean over ``dim``; floating inputs only, or a floating ``dtype`` to cast
    the input to first (as PyTorch)."""
    check_tensor(input, "mean")
    _check_keepdim(keepdim, "mean")
    if dtype is not None:
        dtype = as_dtype(dtype, "mean")
        if dtype.kind != "f":
            raise TypeError(f"mean: could not infer output dtype; dtype must be a floating "
                            f"point dtype, got {dtype}")
        input = input.to(dtype)
    if input.dtype.kind != "f":
        raise TypeError(f"mean: input must be floating-point, got {input.dtype}; "
                        "convert it with .float() first")
    dims = normalize_dims(dim, input.ndim, "mean")
    count = 1
    for d in dims:
        count *= input.shape[d]
    return sum(input, dims, keepdim) / float(count) if count else sum(input, dims, keepdim) * float("nan")


def _extreme(input, dim, keepdim, largest, name):
    check_tensor(input, name)
    _check_keepdim(keepdim, name)
    if input.data.size == 0:
        raise ValueError(f"{name}: cannot reduce an empty tensor of shape {tuple(input.shape)}")
    if dim is None:
        return Extreme.apply(input, dims=tuple(range(input.ndim)), keepdim=False, largest=largest)
    d = normalize_dim(dim, input.ndim, name)
    if input.ndim == 0:
        return MaxMin(input, Tensor(input.xp.zeros((), dtype="int64")))
    values = Extreme.apply(input, dims=(d,), keepdim=keepdim, largest=largest, along_dim=True)
    node = values._ctx
    if node is None:  # no graph recorded: recompute the index directly
        idx = (input.data.argmax if largest else input.data.argmin)(axis=d)
        if keepdim:
            idx = input.xp.expand_dims(idx, d)
    else:
        idx = node.indices
    return MaxMin(values, Tensor(idx.astype("int64")))


def max(input, dim=None, keepdim: bool = False):
    """Maximum of all elements, or ``(values, indices)`` along ``dim``."""
    return _extreme(input, dim, keepdim, True, "max")


def min(input, dim=None, keepdim: bool = False):
    """Minimum of all elements, or ``(values, indices)`` along ``dim``."""
    return _extreme(input, dim, keepdim, False, "min")


def _amax_amin(input, dim, keepdim, largest, name):
    check_tensor(input, name)
    _check_keepdim(keepdim, name)
    dims = normalize_dims(None if dim == () else dim, input.ndim, name)
    if any(input.shape[d] == 0 for d in dims):
        raise ValueError(f"{name}: cannot reduce an empty dimension of a tensor of shape "
                         f"{tuple(input.shape)}")
    return Extreme.apply(input, dims=dims, keepdim=keepdim, largest=largest)


def amax(input, dim=(), keepdim: bool = False) -> Tensor:
    """Maximum over ``dim`` (an int, a tuple; ``()`` or None for all), values only.

    Unlike ``max(input, dim)``, ties split the gradient equally between all positions
    holding the maximum (PyTorch's ``amax``).

    Example
    -------
    >>> import tinynet as tn
    >>> tn.tensor([[1., 5.], [7., 2.]]).amax(dim=0).numpy().tolist()
    [7.0, 5.0]
    """
    return _amax_amin(input, dim, keepdim, True, "amax")


def amin(input, dim=(), keepdim: bool = False) -> Tensor:
    """Minimum over ``dim`` (an int, a tuple; ``()`` or None for all), values only; ties
    split the gradient equally (PyTorch's ``amin``)."""
    return _amax_amin(input, dim, keepdim, False, "amin")


def argmax(input, dim=None, keepdim: bool = False) -> Tensor:
    check_tensor(input, "argmax")
    _check_keepdim(keepdim, "argmax")
    if dim is None:
        return Tensor(input.xp.asarray(input.data.argmax(), dtype="int64"))
    d = normalize_dim(dim, input.ndim, "argmax")
    if input.ndim == 0:
        return Tensor(input.xp.zeros((), dtype="int64"))
    idx = input.data.argmax(axis=d)
    return Tensor((input.xp.expand_dims(idx, d) if keepdim else idx).astype("int64"))


def argmin(input, dim=None, keepdim: bool = False) -> Tensor:
    check_tensor(input, "argmin")
    _check_keepdim(keepdim, "argmin")
    if dim is None:
        return Tensor(input.xp.asarray(input.data.argmin(), dtype="int64"))
    d = normalize_dim(dim, input.ndim, "argmin")
    if input.ndim == 0:
        return Tensor(input.xp.zeros((), dtype="int64"))
    idx = input.data.argmin(axis=d)
    return Tensor((input.xp.expand_dims(idx, d) if keepdim else idx).astype("int64"))


def var(input, dim=None, keepdim: bool = False, correction: int = 1, unbiased=None) -> Tensor:
    """Σ (x - mean)² / (N - correction); ``unbiased=False`` means correction 0."""
    check_tensor(input, "var")
    if isinstance(dim, bool):      # var(input, unbiased), PyTorch's older overload
        dim, unbiased = None, dim
    if correction is None:
        correction = 1
    _check_keepdim(keepdim, "var")
    if unbiased is not None:
        correction = 1 if unbiased else 0
    _check_correction(correction, "var")
    if input.dtype.kind != "f":
        raise TypeError(f"var: input must be floating-point, got {input.dtype}")
    dims = normalize_dims(dim, input.ndim, "var")
    count = 1
    for d in dims:
        count *= input.shape[d]
    centered = input - mean(input, dims, keepdim=True)
    return sum(centered * centered, dims, keepdim) / float(count - correction) \
        if count > correction else sum(centered * centered, dims, keepdim) * float("nan")


def std(input, dim=None, keepdim: bool = False, correction: int = 1, unbiased=None) -> Tensor:
    """Square root of :func:`var`."""
    check_tensor(input, "std")
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    if correction is None:
        correction = 1
    _check_keepdim(keepdim, "std")
    normalize_dims(dim, input.ndim, "std")
    _check_correction(correction, "std")
    if input.dtype.kind != "f":
        raise TypeError(f"std: input must be floating-point, got {input.dtype}")
    return var(input, dim, keepdim, correction, unbiased) ** 0.5


def sum_to(input: Tensor, shape) -> Tensor:
    """Sums ``input`` down to ``shape``, which it must broadcast from."""
    check_tensor(input, "sum_to")
    shape = _int_tuple(shape, "sum_to", "shape")
    if tuple(input.shape) == shape:
        return input
    lead = input.ndim - len(shape)
    if lead < 0 or any(s != 1 and s != n for s, n in zip(shape, input.shape[lead:])):
        raise ValueError(f"sum_to: shape {tuple(input.shape)} cannot be summed to {shape} "
                         f"({shape} does not broadcast to it)")
    return SumTo.apply(input, shape=shape)


def broadcast_to(input: Tensor, shape) -> Tensor:
    """A broadcast view of ``input`` with ``shape`` (NumPy broadcasting rules)."""
    shape = tuple(shape)
    if tuple(input.shape) == shape:
        return input
    return BroadcastTo.apply(input, shape=shape)
