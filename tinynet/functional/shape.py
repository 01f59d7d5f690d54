"""Shape ops: reshape, transpose, permute, flatten, squeeze, unsqueeze, expand, indexing,
cat, stack, pad. Each backward is the inverse movement of the gradient."""
from __future__ import annotations

from ..autograd import Function, is_grad_enabled
from .. import backend
from ..tensor import Tensor
from ._operands import check_tensor, normalize_dim, check_same_device, promote
from .reduction import broadcast_to

__all__ = ["reshape", "transpose", "permute", "flatten", "squeeze", "unsqueeze", "expand",
           "getitem", "cat", "stack", "pad"]


def _shape_args(shape, op="reshape"):
    """``f(2, 3)`` and ``f((2, 3))`` both mean shape (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if isinstance(s, bool) or not hasattr(s, "__index__"):
            raise TypeError(f"{op}: sizes must be ints, got {s!r} in {tuple(shape)!r}")
    return tuple(int(s) for s in shape)


class Reshape(Function):
    def forward(self, x, shape=()):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        if not is_grad_enabled():       # a plain backward: the array's own reshape, no node
            return Tensor(g.data.reshape(self.in_shape))
        return reshape(g, self.in_shape)


class Permute(Function):
    def forward(self, x, dims=()):
        self.inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
        return x.transpose(dims)

    def backward(self, g):
        if not is_grad_enabled():       # a plain backward: the array's own transpose, no node
            return Tensor(g.data.transpose(self.inverse))
        return permute(g, self.inverse)


class GetItem(Function):
    """``x[index]``: a view where NumPy makes one; with ``contiguous``, a C-contiguous copy
    (where the view is not one already)."""

    def forward(self, x, index=None, contiguous=False):
        self.index, self.in_shape = index, x.shape
        y = x[index]
        return backend.get_array_module(x).ascontiguousarray(y) if contiguous else y

    def backward(self, g):
        return IndexAdd.apply(g, index=self.index, shape=self.in_shape)


class IndexAdd(Function):
    """zeros(shape) with ``g`` added at ``index``: the adjoint of ``x[index]``."""

    def forward(self, g, index=None, shape=()):
        xp = backend.get_array_module(g)
        self.index = index
        out = xp.zeros(shape, dtype=g.dtype)
        if _has_integer_array(index):
            backend.scatter_add(out, index, g)   # repeated indices accumulate
        else:
            out[index] = g                       # slices and masks never repeat a position
        return out

    def backward(self, gg):
        return GetItem.apply(gg, index=self.index)


class Cat(Function):
    unread_inputs = True       # backward slices g by the sizes kept
    outputs_unread = True

    def forward(self, *xs, dim=0):
        xp = backend.get_array_module(*xs)
        self.dim, self.sizes = dim, [x.shape[dim] for x in xs]
        return xp.concatenate(xs, axis=dim)

    def backward(self, g):
        """The slices of ``g`` along ``dim``, each copied C-contiguous: a slice along any
        dimension but the first is strided (for a batch of 2+), and the kernels that take
        these gradients next (a convolution's input and weight gradients, the compiled
        elementwise passes) need C-contiguous operands; handed the view, each copied it
        on its own or took a slower strided route (the U-Net's 2x2 up-convolutions'
        backward, both products: 1.5-3x the time)."""
        grads, start = [], 0
        for size in self.sizes:
            index = (slice(None),) * self.dim + (slice(start, start + size),)
            grads.append(GetItem.apply(g, index=index, contiguous=True))
            start += size
        return tuple(grads)


class Pad(Function):
    def forward(self, x, widths=(), value=0.0):
        xp = backend.get_array_module(x)
        self.crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return xp.pad(x, widths, mode="constant", constant_values=value)

    def backward(self, g):
        return getitem(g, self.crop)


def reshape(input, *shape) -> Tensor:
    """Same data in a new shape; one dimension may be -1."""
    check_tensor(input, "reshape")
    shape = _shape_args(shape)
    if shape == tuple(input.shape):
        return input
    size, known = input.data.size, 1
    for s in shape:
        if s != -1:
            known *= s
    if shape.count(-1) > 1 or any(s < -1 for s in shape) or \
            (-1 not in shape and known != size) or (-1 in shape and (known == 0 or size % known)):
        raise ValueError(f"reshape: shape {list(shape)} is invalid for input of size {size} "
                         f"(shape {tuple(input.shape)})")
    return Reshape.apply(input, shape=shape)


def permute(input, *dims) -> Tensor:
    """Reorders dimensions: ``out.shape[i] == input.shape[dims[i]]``."""
    check_tensor(input, "permute")
    dims = _shape_args(dims, "permute")
    norm = tuple(normalize_dim(d, input.ndim, "permute") for d in dims)
    if len(dims) != input.ndim or sorted(norm) != list(range(input.ndim)):
        raise ValueError(f"permute: dims {list(dims)} is not a permutation of the "
                         f"{input.ndim} dimensions of a tensor of shape {tuple(input.shape)}")
    return Permute.apply(input, dims=norm)


def transpose(input, dim0: int, dim1: int) -> Tensor:
    """Swaps two dimensions."""
    check_tensor(input, "transpose")
    if input.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return input
    d0, d1 = normalize_dim(dim0, input.ndim, "transpose"), normalize_dim(dim1, input.ndim, "transpose")
    dims = list(range(input.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(input, dims=tuple(dims))


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merges dims ``start_dim..end_dim`` into one."""
    check_tensor(input, "flatten")
    if input.ndim == 0:
        return reshape(input, 1)
    s = normalize_dim(start_dim, input.ndim, "flatten")
    e = normalize_dim(end_dim, input.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = input.shape
    merged = 1
    for n in shape[s:e + 1]:
        merged *= n
    return reshape(input, shape[:s] + (merged,) + shape[e + 1:])


def squeeze(input, dim=None) -> Tensor:
    """Removes size-1 dimensions (all, or the given one(s) when they have size 1)."""
    check_tensor(input, "squeeze")
    if dim is None:
        dims = {i for i, n in enumerate(input.shape) if n == 1}
    else:
        dims = {normalize_dim(d, input.ndim, "squeeze")
                for d in ((dim,) if isinstance(dim, int) else dim)}
        dims = {d for d in dims if input.ndim and input.shape[d] == 1}
    return reshape(input, tuple(n for i, n in enumerate(input.shape) if i not in dims))


def unsqueeze(input, dim: int) -> Tensor:
    """Inserts a size-1 dimension at ``dim`` (in ``[-ndim-1, ndim]``)."""
    check_tensor(input, "unsqueeze")
    d = normalize_dim(dim, input.ndim + 1, "unsqueeze")
    shape = list(input.shape)
    shape.insert(d, 1)
    return reshape(input, tuple(shape))


def expand(input, *sizes) -> Tensor:
    """Broadcasts size-1 dims to ``sizes`` (-1 keeps a size); no copy."""
    check_tensor(input, "expand")
    sizes = _shape_args(sizes, "expand")
    if len(sizes) < input.ndim:
        raise ValueError(f"expand: the number of sizes ({len(sizes)}) must be at least the "
                         f"number of dimensions ({input.ndim})")
    lead = len(sizes) - input.ndim
    target = []
    for i, s in enumerate(sizes):
        own = input.shape[i - lead] if i >= lead else None
        if s == -1:
            if own is None:
                raise ValueError(f"expand: -1 is not allowed for the new leading dimension {i}")
            s = own
        if own is not None and own != 1 and own != s:
            raise ValueError(f"expand: the size of dimension {i - lead} ({own}) must match "
                             f"the requested {s} or be 1; input shape {tuple(input.shape)}")
        target.append(s)
    return broadcast_to(input, tuple(target))


def _has_integer_array(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(hasattr(i, "dtype") and i.dtype.kind in "iu" for i in items)


def normalize_index(index, xp=None):
    """Tensors and lists inside an index become arrays on the indexed tensor's device."""
    def convert(i):
        if isinstance(i, Tensor):
            return i.data
        if isinstance(i, list):
            # Built on the host first: a list of strings or floats is then refused by the
            # caller's dtype check with its name, not by the device's array constructor.
            host = backend.numpy.asarray(i)
            return xp.asarray(host) if xp is not None and host.dtype.kind in "biu" else host
        return i
    if isinstance(index, tuple):
        return tuple(convert(i) for i in index)
    return convert(index)


def getitem(input, index) -> Tensor:
    """``input[index]`` with ints, slices, None, Ellipsis, integer and boolean arrays."""
    check_tensor(input, "getitem")
    index = normalize_index(index, input.xp)
    items = index if isinstance(index, tuple) else (index,)
    for i in items:
        if hasattr(i, "dtype") and i.dtype.kind not in "biu":
            raise TypeError(f"getitem: index arrays must be integer or bool, got {i.dtype}")
        if hasattr(i, "dtype") and backend.get_array_module(i) is not input.xp:
            i_dev, x_dev = backend.device_of(i), input.device
            raise ValueError(f"getitem: the index is on {i_dev} but the tensor is on {x_dev}")
    try:
        return GetItem.apply(input, index=index)
    except IndexError as e:
        raise IndexError(f"getitem: {e} (tensor shape {tuple(input.shape)})") from None


def _sequence_of_tensors(tensors, op):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of Tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        check_tensor(t, op, f"tensors[{i}]")
    check_same_device(op, **{f"tensors[{i}]": t for i, t in enumerate(tensors)})
    dt = tensors[0].dtype
    for t in tensors[1:]:
        dt = promote(dt, t.dtype)
    return [t if t.dtype == dt else t.to(dt) for t in tensors]


def cat(tensors, dim: int = 0) -> Tensor:
    """Joins tensors along an existing dimension."""
    tensors = _sequence_of_tensors(tensors, "cat")
    ref = tensors[0]
    d = normalize_dim(dim, ref.ndim, "cat")
    for i, t in enumerate(tensors):
        if t.ndim != ref.ndim or any(a != b for j, (a, b) in enumerate(zip(t.shape, ref.shape)) if j != d):
            raise ValueError(f"cat: tensors[{i}] has shape {tuple(t.shape)} but tensors[0] has "
                             f"{tuple(ref.shape)}; all sizes except dim {d} must match")
    return Cat.apply(*tensors, dim=d)


def stack(tensors, dim: int = 0) -> Tensor:
    """Joins equally shaped tensors along a new dimension."""
    tensors = _sequence_of_tensors(tensors, "stack")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensors[{i}] has shape {tuple(t.shape)} but tensors[0] "
                             f"has {tuple(tensors[0].shape)}; all must be equal")
    d = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], d)


def pad(input, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pads with ``value`` (mode 'constant'), or by reflecting ('reflect'), repeating
    ('replicate') or wrapping around ('circular') the edges; ``pad = (left, right, top,
    bottom, ...)`` from the last dim back.

    A negative size crops that side, as in PyTorch. In modes 'constant' and 'circular' the
    result is the crop, padded by the positive sizes (``pad(x, (-1, 2))`` drops the first
    column, then adds two on the right, read from the crop in mode 'circular'). In modes
    'reflect' and 'replicate' output position o reads src(o - left) of the whole input
    (``tinynet/functional/padding.py``), so a positive side still reflects or repeats
    from the uncropped input. ``value``: the fill of mode 'constant' (None: 0); the other
    modes take none, as in PyTorch.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.pad(tn.tensor([[0.0, 1.0, 2.0]]), (2, -1), mode="circular").numpy().tolist()
    [[0.0, 1.0, 0.0, 1.0]]
    """
    check_tensor(input, "pad")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', "
                         f"got {mode!r}")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: 'pad' must have an even length of at most 2*ndim = {2 * input.ndim}, "
                         f"got {len(pad)}")
    if any(isinstance(p, bool) or not isinstance(p, int) for p in pad):
        raise ValueError(f"pad: padding sizes must be ints, got {pad}")
    if mode != "constant" and value is not None and value != 0:
        raise ValueError(f"pad: mode {mode!r} takes no fill value, got value={value!r}")
    if mode in ("reflect", "replicate"):
        from .padding import pad_edges   # padding builds on getitem, defined here
        return pad_edges(input, pad, mode)
    if any(p < 0 for p in pad):
        index = [slice(None)] * input.ndim
        for k in range(len(pad) // 2):
            dim, (lo, hi) = input.ndim - 1 - k, pad[2 * k:2 * k + 2]
            n = input.shape[dim]
            if n + min(lo, 0) + min(hi, 0) < 0:
                raise ValueError(f"pad: cropping ({lo}, {hi}) of dim {dim} removes more than "
                                 f"its size {n} (input shape {tuple(input.shape)})")
            index[dim] = slice(max(-lo, 0), n - max(-hi, 0))
        input = getitem(input, tuple(index))
        pad = tuple(max(p, 0) for p in pad)
    if mode == "circular":
        from .padding import pad_edges
        return pad_edges(input, pad, mode)
    if value is None:
        value = 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"pad: 'value' must be a number, got {type(value).__name__}")
    widths = [(0, 0)] * input.ndim
    for k in range(len(pad) // 2):
        widths[input.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return Pad.apply(input, widths=tuple(widths), value=value)
