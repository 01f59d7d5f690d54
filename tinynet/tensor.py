"""``Tensor``: an array, its gradient, and the node that produced it.

A Tensor wraps one ``xp`` array (``.data``). Operators and methods delegate to
``tinynet.functional``, which records ``Function`` nodes (see ``autograd.py``).
"""
from __future__ import annotations

from . import backend
from .backend import numpy as np
from . import autograd as _autograd
from .autograd import backward as _run_backward

__all__ = ["Tensor", "tensor", "float32", "float64", "int64", "int32", "bool_"]

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int64 = np.dtype("int64")
int32 = np.dtype("int32")
bool_ = np.dtype("bool")
DEFAULT_FLOAT = float32


class Tensor:
    """A multi-dimensional array with an optional gradient.

    ``Tensor(array)`` wraps an existing NumPy or CuPy array without copying; use
    :func:`tinynet.tensor` to build one from Python data.
    """

    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "_output_index", "_hooks", "__weakref__")
    __array_priority__ = 1000  # numpy scalars defer to Tensor's reflected operators

    def __init__(self, data, requires_grad: bool = False):
        self.data = data
        self.grad = None
        self._ctx = None
        self._output_index = 0
        self._requires_grad = False
        self._hooks = None
        if requires_grad:
            self.requires_grad = True

    # ----------------------------------------------------------------- attributes
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad: only floating-point tensors can require gradients, "
                            f"this one is {self.data.dtype}")
        if not value and self._ctx is not None:
            raise RuntimeError("requires_grad: you can only change requires_grad of leaf tensors; "
                               "use .detach() for a non-leaf")
        self._requires_grad = bool(value)

    def requires_grad_(self, value: bool = True) -> "Tensor":
        self.requires_grad = value
        return self

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def shape(self) -> tuple:
        return self.data.shape

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> backend.Device:
        return backend.device_of(self.data)

    @property
    def xp(self):
        return backend.get_array_module(self.data)

    @property
    def T(self) -> "Tensor":
        return F.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    # ----------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False) -> None:
        """Accumulates gradients of this tensor into the ``.grad`` of every leaf."""
        _run_backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    def register_hook(self, hook) -> _autograd.RemovableHandle:
        """``hook(grad)`` runs each time the gradient with respect to this tensor has been
        computed in a backward; if it returns a Tensor, that replaces the gradient (what
        flows on, or what a leaf accumulates). Returns a handle whose ``remove()`` undoes it.
        """
        if not self._requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        if self._ctx is None:
            if self._hooks is None:
                self._hooks = _autograd.LeafHooks()
            hooks = self._hooks.grad
        else:   # kept by the node that made the tensor, as PyTorch's grad_fn keeps it
            per_output = self._ctx.__dict__.setdefault("_output_hooks", {})
            hooks = per_output.setdefault(self._output_index, {})
        handle = _autograd.RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def register_post_accumulate_grad_hook(self, hook) -> _autograd.RemovableHandle:
        """``hook(tensor)`` runs after a backward has added this leaf's whole gradient into
        ``.grad`` (once per backward, however many ops used the tensor); its return value
        is ignored. Only leaves accumulate, so only leaves take this hook."""
        if self._ctx is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: post accumulate grad hooks "
                               "cannot be registered on non-leaf tensors")
        if not self._requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: cannot register a hook on "
                               "a tensor that doesn't require gradient")
        if self._hooks is None:
            self._hooks = _autograd.LeafHooks()
        handle = _autograd.RemovableHandle(self._hooks.post)
        self._hooks.post[handle.id] = hook
        return handle

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory)."""
        return Tensor(self.data)

    def zero_(self) -> "Tensor":
        self.data[...] = 0
        return self

    # ----------------------------------------------------------------- conversion
    def numpy(self):
        """The data as a NumPy array (copied to the host from a GPU)."""
        if self._requires_grad:
            raise RuntimeError("numpy: can't call numpy() on a tensor that requires grad; "
                               "use tensor.detach().numpy()")
        return backend.asnumpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted to Python "
                             f"scalars, this one has {self.data.size} elements")
        return self.data.reshape(()).item()

    def tolist(self):
        return backend.asnumpy(self.data).tolist()

    def to(self, target) -> "Tensor":
        """``t.to("cuda")``, ``t.to(tinynet.float64)``; differentiable."""
        if isinstance(target, backend.Device) or (
                backend.is_device_string(target)):
            return F.to_device(self, target)
        return F.to_dtype(self, target)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, index: int = 0) -> "Tensor":
        return self.to(f"cuda:{index}")

    def float(self) -> "Tensor":
        return F.to_dtype(self, float32)

    def double(self) -> "Tensor":
        return F.to_dtype(self, float64)

    def long(self) -> "Tensor":
        return F.to_dtype(self, int64)

    def type_as(self, other: "Tensor") -> "Tensor":
        return F.to_dtype(self, other.dtype)

    def __repr__(self) -> str:
        body = np.array2string(backend.asnumpy(self.data), separator=", ", precision=4,
                               prefix="tensor(")
        extras = []
        if self.data.dtype not in (float32, int64, bool_):
            extras.append(f"dtype={self.data.dtype}")
        if self.device.type != "cpu":
            extras.append(f"device='{self.device}'")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{type(self._ctx).__name__}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError("bool: the truth value of a tensor with more than one element is ambiguous")
        return bool(self.data.reshape(()).item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    __hash__ = object.__hash__

    # ----------------------------------------------------------------- operators
    def __add__(self, other): return F.add(self, other)
    def __radd__(self, other): return F.add(other, self)
    def __sub__(self, other): return F.sub(self, other)
    def __rsub__(self, other): return F.sub(other, self)
    def __mul__(self, other): return F.mul(self, other)
    def __rmul__(self, other): return F.mul(other, self)
    def __truediv__(self, other): return F.div(self, other)
    def __rtruediv__(self, other): return F.div(other, self)
    def __pow__(self, other): return F.pow(self, other)
    def __rpow__(self, other): return F.pow(other, self)
    def __neg__(self): return F.neg(self)
    def __pos__(self): return self
    def __abs__(self): return F.abs(self)
    def __matmul__(self, other): return F.matmul(self, other)
    def __rmatmul__(self, other): return F.matmul(other, self)
    def __getitem__(self, index): return F.getitem(self, index)
    def __eq__(self, other): return F.eq(self, other)
    def __ne__(self, other): return F.ne(self, other)
    def __lt__(self, other): return F.lt(self, other)
    def __le__(self, other): return F.le(self, other)
    def __gt__(self, other): return F.gt(self, other)
    def __ge__(self, other): return F.ge(self, other)
    def __invert__(self): return F.logical_not(self)

    def __setitem__(self, index, value):
        """In-place write on the data; refused on tensors that are part of a graph."""
        if self._requires_grad and backend_grad_enabled():
            raise RuntimeError("setitem: in-place assignment to a tensor that requires grad is not "
                               "supported; assign under tinynet.no_grad() or to .data")
        self.data[F.shape.normalize_index(index, self.xp)] = value.data if isinstance(value, Tensor) else value

    # ----------------------------------------------------------------- methods
    def view(self, *shape): return F.reshape(self, *shape)
    def matmul(self, other): return F.matmul(self, other)
    def max(self, dim=None, keepdim=False): return F.max(self, dim, keepdim)
    def min(self, dim=None, keepdim=False): return F.min(self, dim, keepdim)
    def expand(self, *sizes): return F.expand(self, *sizes)
    def permute(self, *dims): return F.permute(self, *dims)

    def softmax(self, dim, dtype=None):
        """``F.softmax(self, dim, dtype=dtype)``; as PyTorch's method, ``dim`` is required and
        ``dtype`` may come second by position."""
        return F.softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim, dtype=None):
        """``F.log_softmax(self, dim, dtype=dtype)`` (see :meth:`softmax`)."""
        return F.log_softmax(self, dim, dtype=dtype)


_autograd.Tensor = Tensor   # the engine builds its output Tensors with this class
_autograd._calibrate()


def backend_grad_enabled() -> bool:
    from .autograd import is_grad_enabled
    return is_grad_enabled()


# Tensor-first functions of tinynet.functional become methods, as in PyTorch.
_METHODS = ("reshape transpose flatten squeeze unsqueeze sum mean var std argmax argmin exp log "
            "sqrt abs tanh sigmoid relu elu leaky_relu clamp pow neg "
            "maximum minimum add sub mul div eq ne lt le gt ge logical_not isnan isfinite "
            "sign square").split()
_METHODS += "amax amin clone gather scatter masked_fill chunk split all any".split()
_METHODS += ["prelu"]


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Builds a tensor from Python data, a NumPy/CuPy array or another tensor (copying).

    dtype follows a NumPy input's dtype (float64 stays float64); Python floats become
    float32, Python ints int64. Strings and objects are a ``TypeError``.
    """
    if isinstance(data, Tensor):
        data = data.data
    dev = backend.Device(device) if device is not None else None
    xp_in = backend.get_array_module(data)
    if xp_in is np:
        try:
            arr = np.array(data)
        except (ValueError, TypeError) as e:
            raise TypeError(f"tensor: could not build a tensor from {type(data).__name__}: {e}") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"tensor: data must be numeric (bool, int or float), got {arr.dtype} "
                            f"from {type(data).__name__}")
        if not isinstance(data, np.ndarray) and not isinstance(data, np.generic):
            if arr.dtype.kind == "f":
                arr = arr.astype(DEFAULT_FLOAT)
            elif arr.dtype.kind in "iu":
                arr = arr.astype(int64)
    else:
        arr = data.copy()
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"tensor: data must be numeric, got {arr.dtype}")
    if dtype is not None:
        arr = arr.astype(as_dtype(dtype, "tensor"), copy=False)
    target = dev if dev is not None else (backend.device_of(arr) if xp_in is not np
                                          else backend.get_default_device())
    arr = backend.to_device(arr, target)
    return Tensor(arr, requires_grad=requires_grad)


def as_dtype(dtype, op: str):
    """``tinynet.float32``, ``"float64"``, ``numpy.float32`` -> a NumPy dtype."""
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: unknown dtype {dtype!r}") from None
    if d.kind not in "biuf":
        raise TypeError(f"{op}: dtype must be bool, integer or float, got {d}")
    return d


from . import functional as F  # noqa: E402  (functional imports Tensor from this module)

for _name in _METHODS:
    setattr(Tensor, _name, getattr(F, _name))
del _name
