"""Selection along a dimension: gather, scatter, masked_fill, chunk, split, clone, and the
non-differentiable all, any and one_hot.

``gather`` and ``scatter`` turn ``index`` into an advanced NumPy index: for
``dim = d`` the position ``(i_0, ..., i_{n-1})`` of the index tensor addresses
``input[i_0, ..., index[i], ..., i_{n-1}]``, i.e. the tuple

    (arange(s_0)[:, None, ...], ..., index, ..., arange(s_{n-1})[None, ..., :])

of broadcasting arrays. With it the algebra is the one of indexing (``shape.py``):

    gather(x, d, idx) = x[I]                 dx = index_add(g, I)          (scatter-add)
    scatter(x, d, idx, src) = x·(1 - M) + index_add(src[:idx.shape], I)
                                            dx = g·(1 - M)   d(src) = g[I]  (gather)

where M marks the written positions. ``chunk`` and ``split`` are slices (``getitem``).
"""
from __future__ import annotations

from numbers import Number

from ..autograd import Function
from .. import backend
from ..tensor import Tensor
from ._operands import check_tensor, normalize_dim, normalize_dims, check_broadcastable, as_tensor
from .elementwise import where, mul
from .shape import GetItem, IndexAdd, getitem, reshape

__all__ = ["clone", "gather", "scatter", "masked_fill", "chunk", "split", "all", "any",
           "one_hot"]

_builtin_any = any


class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


def clone(input) -> Tensor:
    """A copy of ``input`` with its own memory; gradients pass through unchanged.

    Example
    -------
    >>> import tinynet as tn
    >>> a = tn.tensor([1., 2.]); b = a.clone(); b.data[0] = 5.0; a.numpy().tolist()
    [1.0, 2.0]
    """
    check_tensor(input, "clone")
    return Clone.apply(input)


def _index_tensor(index, input, op, dim):
    """Checks ``index`` for gather/scatter: an integer Tensor of input's ndim on its device,
    sizes <= input's on every dim but ``dim``, entries in range along ``dim``."""
    check_tensor(index, op, "index")
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got {index.dtype}")
    if index.device != input.device:
        raise ValueError(f"{op}: index is on {index.device} but input is on {input.device}")
    if index.data.size == 0:
        return
    if index.ndim != input.ndim:
        raise ValueError(f"{op}: index has {index.ndim} dimensions but input has {input.ndim}; "
                         "they must have the same number")
    for a in range(input.ndim):
        if a != dim and index.shape[a] > input.shape[a]:
            raise ValueError(f"{op}: index has size {index.shape[a]} in dimension {a} but input "
                             f"has only {input.shape[a]} (only dim {dim} may be larger)")
    size = input.shape[dim] if input.ndim else 1
    idx = index.data
    if idx.size and (bool((idx < 0).any()) or bool((idx >= size).any())):
        raise IndexError(f"{op}: index out of range: dimension {dim} has size {size}, so "
                         f"entries must be in [0, {size - 1}]; got values in "
                         f"[{int(idx.min())}, {int(idx.max())}]")


def _advanced_index(index, dim):
    """The tuple of broadcasting arrays that addresses ``input`` at ``index`` along ``dim``."""
    xp = backend.get_array_module(index)
    n = index.ndim
    if n == 0:
        return ()
    items = []
    for a in range(n):
        if a == dim:
            items.append(index)
        else:
            shape = [1] * n
            shape[a] = index.shape[a]
            items.append(xp.arange(index.shape[a]).reshape(shape))
    return tuple(items)


def gather(input, dim: int, index) -> Tensor:
    """``out[i][j][k] = input[index[i][j][k]][j][k]`` for ``dim=0`` (and likewise for other
    dims); ``out`` has ``index``'s shape. PyTorch's ``gather``.

    Example
    -------
    >>> import tinynet as tn
    >>> x = tn.tensor([[1., 2.], [3., 4.]])
    >>> x.gather(1, tn.tensor([[0, 0], [1, 0]])).numpy().tolist()
    [[1.0, 1.0], [4.0, 3.0]]
    """
    op = "gather"
    check_tensor(input, op)
    d = normalize_dim(dim, input.ndim, op)
    if input.ndim == 0 and isinstance(index, Tensor) and index.ndim <= 1:
        # a 0-d tensor gathers as a 1-element vector (PyTorch), keeping index's shape
        out = gather(reshape(input, 1), 0, reshape(index, -1) if index.ndim else reshape(index, 1))
        return reshape(out, tuple(index.shape))
    _index_tensor(index, input, op, d)
    if index.data.size == 0:     # an empty slice keeps the graph (its gradient is zeros)
        return reshape(getitem(reshape(input, -1), slice(0, 0)), tuple(index.shape))
    return GetItem.apply(input, index=_advanced_index(index.data, d))


def scatter(input, dim: int, index, src=None, value=None) -> Tensor:
    """A copy of ``input`` with ``src[i][j][k]`` written at ``[index[i][j][k]][j][k]`` (for
    ``dim=0``); ``src`` may be a Tensor (at least ``index``'s size) or a number (also
    accepted as ``value=``). PyTorch's out-of-place ``scatter``. Where ``index`` repeats a
    position, PyTorch keeps one unspecified write; tinynet adds them, so repeated indices
    should be avoided with either library.

    Example
    -------
    >>> import tinynet as tn
    >>> tn.zeros(2, 3).scatter(1, tn.tensor([[2], [0]]), 5.0).numpy().tolist()
    [[0.0, 0.0, 5.0], [5.0, 0.0, 0.0]]
    """
    op = "scatter"
    check_tensor(input, op)
    if src is None and value is None:
        raise TypeError(f"{op}: expected 'src' (a Tensor or a number) or 'value'")
    if src is not None and value is not None:
        raise TypeError(f"{op}: give one of 'src' and 'value', not both")
    d = normalize_dim(dim, input.ndim, op)
    _index_tensor(index, input, op, d)
    source = src if src is not None else value
    if isinstance(source, Tensor):
        if source.device != input.device:
            raise ValueError(f"{op}: src is on {source.device} but input is on {input.device}")
        if source.ndim != index.ndim or _builtin_any(s < n for s, n in zip(source.shape, index.shape)):
            raise ValueError(f"{op}: src of shape {tuple(source.shape)} must have index's number "
                             f"of dimensions and be at least as large as index "
                             f"{tuple(index.shape)} in each")
        if source.dtype != input.dtype:
            raise TypeError(f"{op}: src has dtype {source.dtype} but input has dtype "
                            f"{input.dtype}; they must be equal")
        part = getitem(source, tuple(slice(0, n) for n in index.shape)) if source.ndim else source
    elif isinstance(source, Number) and not isinstance(source, complex):
        part = Tensor(input.xp.full(tuple(index.shape), source, dtype=input.dtype))
    else:
        raise TypeError(f"{op}: src must be a Tensor or a number, got {type(source).__name__}")
    if input.ndim == 0:        # as a 1-element vector (PyTorch)
        if isinstance(index, Tensor) and index.ndim <= 1 and part.ndim <= 1:
            out = scatter(reshape(input, 1), 0, reshape(index, -1), reshape(part, -1))
            return reshape(out, ())
        raise ValueError(f"{op}: a 0-d input takes a 0-d or 1-element index, got shape "
                         f"{tuple(index.shape)}")
    if index.data.size == 0:
        return Clone.apply(input)
    at = _advanced_index(index.data, d)
    keep = input.xp.ones(input.shape, dtype=input.dtype)
    keep[at] = 0
    return mul(input, Tensor(keep)) + IndexAdd.apply(part, index=at, shape=tuple(input.shape))


def masked_fill(input, mask, value) -> Tensor:
    """``value`` where the bool ``mask`` is true, else ``input``; ``mask`` and ``input``
    broadcast together (the result has their broadcast shape, as PyTorch's out-of-place
    ``masked_fill``). ``value`` is a number or a 0-d Tensor (which then receives a gradient).

    Example
    -------
    >>> import tinynet as tn
    >>> tn.tensor([1., 2., 3.]).masked_fill(tn.tensor([True, False, True]), 0.0).numpy().tolist()
    [0.0, 2.0, 0.0]
    """
    op = "masked_fill"
    check_tensor(input, op)
    check_tensor(mask, op, "mask")
    if mask.dtype.kind != "b":
        raise TypeError(f"{op}: mask must be a bool tensor, got {mask.dtype}")
    if mask.device != input.device:
        raise ValueError(f"{op}: mask is on {mask.device} but input is on {input.device}")
    check_broadcastable(tuple(mask.shape), tuple(input.shape), op)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"{op}: value must be a number or a 0-d tensor, got shape "
                             f"{tuple(value.shape)}")
        if value.device != input.device:
            raise ValueError(f"{op}: value is on {value.device} but input is on {input.device}")
        if value.dtype != input.dtype:
            value = value.to(input.dtype)
    elif isinstance(value, bool) or not isinstance(value, Number) or isinstance(value, complex):
        raise TypeError(f"{op}: value must be a number or a 0-d Tensor, got {type(value).__name__}")
    else:
        value = as_tensor(value, op, "value", like=input)
        if value.dtype != input.dtype:
            value = Tensor(value.data.astype(input.dtype))
    return where(mask, value, input)


def _split_dim(input, dim, op):
    check_tensor(input, op)
    if input.ndim == 0:
        raise ValueError(f"{op}: expected a tensor with at least one dimension, got a 0-d tensor")
    return normalize_dim(dim, input.ndim, op)


def _pieces(input, d, sizes):
    out, start = [], 0
    for n in sizes:
        out.append(getitem(input, (slice(None),) * d + (slice(start, start + n),)))
        start += n
    return tuple(out)


def chunk(input, chunks: int, dim: int = 0) -> tuple:
    """Splits into at most ``chunks`` pieces of ``ceil(size / chunks)`` along ``dim`` (the
    last may be smaller; fewer pieces when they run out), as PyTorch. Views by slicing.

    Example
    -------
    >>> import tinynet as tn
    >>> [t.shape for t in tn.zeros(5, 2).chunk(3)]
    [(2, 2), (2, 2), (1, 2)]
    """
    op = "chunk"
    d = _split_dim(input, dim, op)
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"{op}: chunks must be a positive int, got {chunks!r}")
    size = input.shape[d]
    step = -(-size // chunks) if size else 0
    if step == 0:
        return _pieces(input, d, [0] * chunks) if size == 0 else (input,)
    return _pieces(input, d, [min(step, size - s) for s in range(0, size, step)])


def split(tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the listed
    section sizes (which must sum to the size of ``dim``), as PyTorch's ``split``.

    Example
    -------
    >>> import tinynet as tn
    >>> [t.shape for t in tn.zeros(5).split([1, 4])]
    [(1,), (4,)]
    """
    op = "split"
    d = _split_dim(tensor, dim, op)
    size = tensor.shape[d]
    s = split_size_or_sections
    if isinstance(s, (list, tuple)):
        if _builtin_any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in s):
            raise ValueError(f"{op}: section sizes must be non-negative ints, got {list(s)}")
        if sum(s) != size:
            raise ValueError(f"{op}: section sizes {list(s)} sum to {sum(s)} but dimension {d} "
                             f"has size {size}")
        return _pieces(tensor, d, list(s))
    if isinstance(s, bool) or not isinstance(s, int) or s < 0 or (s == 0 and size):
        raise ValueError(f"{op}: split_size must be a positive int (or a list of sizes), "
                         f"got {s!r}")
    if size == 0:
        return (tensor,)
    return _pieces(tensor, d, [min(s, size - i) for i in range(0, size, s)])


def _logical_reduce(input, dim, keepdim, op, fn):
    check_tensor(input, op)
    if not isinstance(keepdim, (bool, int)) or keepdim not in (0, 1):
        raise TypeError(f"{op}: keepdim must be a bool, got {keepdim!r}")
    dims = normalize_dims(dim, input.ndim, op)
    data = input.data if input.dtype.kind == "b" else input.data != 0
    return Tensor(input.xp.asarray(fn(data, axis=dims, keepdims=bool(keepdim))))


def all(input, dim=None, keepdim: bool = False) -> Tensor:
    """True where every element (over ``dim``, or all) is non-zero; a bool tensor."""
    return _logical_reduce(input, dim, keepdim, "all", lambda a, **kw: a.all(**kw))


def any(input, dim=None, keepdim: bool = False) -> Tensor:
    """True where some element (over ``dim``, or all) is non-zero; a bool tensor."""
    return _logical_reduce(input, dim, keepdim, "any", lambda a, **kw: a.any(**kw))


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """(..., num_classes) int64 tensor with a 1 at each class index of the integer
    ``tensor``; ``num_classes=-1`` takes ``max + 1``. PyTorch's ``one_hot``.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.one_hot(tn.tensor([0, 2]), 3).numpy().tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    op = "one_hot"
    check_tensor(tensor, op, "tensor")
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"{op}: tensor must hold integer class indices, got {tensor.dtype}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < -1:
        raise ValueError(f"{op}: num_classes must be a non-negative int or -1, got {num_classes!r}")
    data = tensor.data
    if data.size and int(data.min()) < 0:
        raise ValueError(f"{op}: class values must be non-negative, got {int(data.min())}")
    if num_classes == -1:
        if not data.size:
            raise ValueError(f"{op}: cannot infer num_classes from an empty tensor; pass it")
        num_classes = int(data.max()) + 1
    if data.size and int(data.max()) >= num_classes:
        raise ValueError(f"{op}: class values must be smaller than num_classes={num_classes}, "
                         f"got {int(data.max())}")
    xp = tensor.xp
    return Tensor((data[..., None] == xp.arange(num_classes)).astype("int64"))
