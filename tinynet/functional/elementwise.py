"""Elementwise arithmetic, comparisons and dtype/device moves.

Binary ops broadcast as NumPy does and promote dtypes as PyTorch does (see
``_operands.py``). Their backward may return a gradient of the broadcast shape; the engine
sums it down to each input's shape. Each backward is written with these same ops, so the
algebra is closed under differentiation.
"""
from __future__ import annotations

from ..autograd import Function, depends_on
from .. import backend
from ..tensor import Tensor, as_dtype
from ._operands import binary_operands, as_tensor, check_tensor, check_broadcastable, promote

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "square", "abs",
           "sign", "clamp", "maximum", "minimum", "where", "eq", "ne", "lt", "le", "gt", "ge",
           "logical_not", "isnan", "isfinite", "to_dtype", "to_device"]


#: Fewest values for which :class:`Add` takes the compiled kernel: 262,144 (N16 256x8x8)
#: measured 0.49x NumPy's time, 131,072 (N16 512x4x4) 1.8x (thirty-first session).
_ADD_COMPILED_MIN_SIZE = 1 << 18


class Add(Function):
    """a + b; two float32 or float64 arrays of one shape (b C-contiguous), of at least
    :data:`_ADD_COMPILED_MIN_SIZE` values (a residual block's sum), add in one compiled
    pass on every core (:mod:`tinynet.kernels.compiled.elementwise`): N16 64x32x32 0.29
    against 0.46 ms."""
    unread_inputs = (0, 1)
    outputs_unread = True

    def forward(self, a, b):
        if (getattr(a, "size", 0) >= _ADD_COMPILED_MIN_SIZE and a.shape == getattr(b, "shape", ())
                and a.dtype == b.dtype and a.dtype.kind == "f" and a.dtype.itemsize in (4, 8)):
            from .activation import _compiled_pass, _compiled_route     # float32 or float64
            if _compiled_route(a, b, min_size=_ADD_COMPILED_MIN_SIZE):
                y = backend.get_array_module(a).empty(a.shape, a.dtype)
                _compiled_pass("add_forward", a.reshape(-1), b.reshape(-1), y.reshape(-1))
                return y
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    unread_inputs = (0, 1)
    outputs_unread = True

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, -g


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        return (g * b if self.needs_input_grad[0] else None,
                g * a if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga = g / b if self.needs_input_grad[0] else None
        gb = -g * a / (b * b) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Pow(Function):
    """y = a ** b.  dy/da = b·a^(b-1);  dy/db = y·log(a), taken as 0 where a == 0 (PyTorch)."""

    def forward(self, a, b):
        return a ** b

    def backward(self, g):
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g * b * a ** (b - 1)
        if self.needs_input_grad[1]:
            (y,) = self.outputs
            safe = where(a == 0, 1.0, a)
            gb = where(a == 0, 0.0, g * y * log(safe))
        return ga, gb


class Exp(Function):
    def forward(self, a):
        return backend.get_array_module(a).exp(a)

    def backward(self, g):
        return g * self.outputs[0]


class Log(Function):
    def forward(self, a):
        return backend.get_array_module(a).log(a)

    def backward(self, g):
        return g / self.inputs[0]


class Sqrt(Function):
    def forward(self, a):
        return backend.get_array_module(a).sqrt(a)

    def backward(self, g):
        return g / (2.0 * self.outputs[0])


class Abs(Function):
    """d|a|/da = sign(a), 0 at a == 0 (PyTorch)."""

    def forward(self, a):
        return backend.get_array_module(a).abs(a)

    def backward(self, g):
        return depends_on(g * sign(self.inputs[0]), self.inputs[0])


class Clamp(Function):
    """Gradient passes where lo <= a <= hi (boundaries included, as PyTorch)."""

    def forward(self, a, lo=None, hi=None):
        xp = backend.get_array_module(a)
        self.mask = xp.ones(a.shape, dtype=bool)
        if lo is not None:
            self.mask &= a >= lo
        if hi is not None:
            self.mask &= a <= hi
        return xp.clip(a, lo, hi)

    def backward(self, g):
        return g * Tensor(self.mask.astype(g.dtype))


class ClampTensor(Function):
    """y = min(max(a, lo), hi) with tensor bounds (all three broadcast; either bound may be
    None). Gradients as PyTorch's: ``a`` where lo <= a <= hi; ``lo`` where a < lo (and
    lo < hi when both are given); ``hi`` where a > hi, or everywhere hi < lo (then y = hi)."""

    def forward(self, a, lo, hi):
        xp = backend.get_array_module(a)
        y = a
        if lo is not None:
            y = xp.maximum(y, lo)
        if hi is not None:
            y = xp.minimum(y, hi)
        pass_a = xp.ones(a.shape, dtype=bool)
        if lo is not None:
            pass_a = pass_a & (a >= lo)
        if hi is not None:
            pass_a = pass_a & (a <= hi)
        self.pass_a = pass_a
        if lo is not None:
            self.pass_lo = (a < lo) & (lo < hi) if hi is not None else a < lo
        if hi is not None:
            self.pass_hi = (a > hi) | (hi < lo) if lo is not None else a > hi
        return y

    def backward(self, g):
        need = self.needs_input_grad
        return (g * Tensor(self.pass_a.astype(g.dtype)) if need[0] else None,
                g * Tensor(self.pass_lo.astype(g.dtype)) if need[1] else None,
                g * Tensor(self.pass_hi.astype(g.dtype)) if need[2] else None)


class Maximum(Function):
    """Ties send half of the gradient to each input (PyTorch)."""

    pick_first = staticmethod(lambda a, b: a > b)

    def forward(self, a, b):
        xp = backend.get_array_module(a)
        first, tie = self.pick_first(a, b), a == b
        self.weight_a = first + 0.5 * tie
        return xp.where(first | tie, a, b)

    def backward(self, g):
        wa = Tensor(self.weight_a.astype(g.dtype))
        return g * wa, g * (1.0 - wa)


class Minimum(Maximum):
    pick_first = staticmethod(lambda a, b: a < b)


class Where(Function):
    def forward(self, cond, a, b):
        self.cond = cond
        return backend.get_array_module(a).where(cond, a, b)

    def backward(self, g):
        cond = Tensor(self.cond)
        return (None,
                where(cond, g, 0.0) if self.needs_input_grad[1] else None,
                where(cond, 0.0, g) if self.needs_input_grad[2] else None)


class ToDtype(Function):
    def forward(self, a, dtype=None):
        self.src = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return to_dtype(g, self.src)


class ToDevice(Function):
    def forward(self, a, device=None):
        self.src = backend.device_of(a)
        return backend.to_device(a, device)

    def backward(self, g):
        return to_device(g, self.src)


def add(input, other, alpha=1) -> Tensor:
    """``input + alpha * other`` with broadcasting."""
    a, b = binary_operands(input, other, "add")
    if alpha != 1:
        b = mul(b, alpha)
    return Add.apply(a, b)


def sub(input, other, alpha=1) -> Tensor:
    """``input - alpha * other`` with broadcasting."""
    a, b = binary_operands(input, other, "sub")
    if alpha != 1:
        b = mul(b, alpha)
    return Sub.apply(a, b)


def mul(input, other) -> Tensor:
    """Elementwise product with broadcasting."""
    return Mul.apply(*binary_operands(input, other, "mul"))


def div(input, other) -> Tensor:
    """True division; integer inputs give float32 (as PyTorch)."""
    a, b = binary_operands(input, other, "div")
    if a.dtype.kind != "f":
        a, b = to_dtype(a, "float32"), to_dtype(b, "float32")
    return Div.apply(a, b)


def neg(input) -> Tensor:
    return Neg.apply(check_tensor(input, "neg"))


def pow(input, exponent) -> Tensor:
    """``input ** exponent``; either may be a Tensor or a number."""
    a, b = binary_operands(input, exponent, "pow")
    return Pow.apply(a, b)


def _float_input(x, op):
    check_tensor(x, op)
    return x if x.dtype.kind == "f" else to_dtype(x, "float32")


def exp(input) -> Tensor:
    return Exp.apply(_float_input(input, "exp"))


def log(input) -> Tensor:
    return Log.apply(_float_input(input, "log"))


def sqrt(input) -> Tensor:
    return Sqrt.apply(_float_input(input, "sqrt"))


def square(input) -> Tensor:
    check_tensor(input, "square")
    return mul(input, input)


def abs(input) -> Tensor:
    return Abs.apply(check_tensor(input, "abs"))


def sign(input) -> Tensor:
    """-1, 0 or 1; no gradient."""
    check_tensor(input, "sign")
    return Tensor(input.xp.sign(input.data))


def clamp(input, min=None, max=None) -> Tensor:
    """Limits values to ``[min, max]`` (either bound may be None).

    The bounds are numbers or Tensors; Tensor bounds broadcast against ``input`` (the
    result has the broadcast shape) and receive gradients where they are the output, as
    in PyTorch. Where ``min > max`` the output is ``max``.

    Example
    -------
    >>> import tinynet as tn
    >>> tn.tensor([-2., 0.5, 3.]).clamp(min=tn.tensor([-1., 1., 0.]), max=2.0).numpy().tolist()
    [-1.0, 1.0, 2.0]
    """
    check_tensor(input, "clamp")
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' and 'max' must be given")
    for name, v in (("min", min), ("max", max)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, Tensor))):
            raise TypeError(f"clamp: '{name}' must be a number, a Tensor or None, "
                            f"got {type(v).__name__}")
    if not isinstance(min, Tensor) and not isinstance(max, Tensor):
        return Clamp.apply(input, lo=min, hi=max)
    bounds = []
    for name, v in (("min", min), ("max", max)):
        if v is None:
            bounds.append(None)
            continue
        v = as_tensor(v, "clamp", name, like=input)
        if v.device != input.device:
            raise ValueError(f"clamp: 'input' is on {input.device} but '{name}' is on {v.device}")
        check_broadcastable(input.shape, v.shape, "clamp")
        bounds.append(v)
    dtype = input.dtype
    for v in bounds:
        if v is not None:
            dtype = promote(dtype, v.dtype)
    lo, hi = (None if v is None else (v if v.dtype == dtype else to_dtype(v, dtype)) for v in bounds)
    if lo is not None and hi is not None:
        check_broadcastable(lo.shape, hi.shape, "clamp")
    x = input if input.dtype == dtype else to_dtype(input, dtype)
    return ClampTensor.apply(x, lo, hi)


def maximum(input, other) -> Tensor:
    """Elementwise maximum; ties split the gradient equally."""
    return Maximum.apply(*binary_operands(input, other, "maximum"))


def minimum(input, other) -> Tensor:
    """Elementwise minimum; ties split the gradient equally."""
    return Minimum.apply(*binary_operands(input, other, "minimum"))


def where(condition, input, other) -> Tensor:
    """``input`` where ``condition`` is true, else ``other`` (broadcasting all three)."""
    if not isinstance(condition, Tensor):
        raise TypeError(f"where: 'condition' must be a bool Tensor, got {type(condition).__name__}")
    if condition.dtype.kind != "b":
        raise TypeError(f"where: 'condition' must be a bool tensor, got {condition.dtype}")
    like = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else None
    if like is None:
        input = as_tensor(input, "where", "input", like=None)
        like = input
    a, b = binary_operands(as_tensor(input, "where", "input", like=like), other, "where")
    check_broadcastable(condition.shape, backend.numpy.broadcast_shapes(a.shape, b.shape), "where")
    return Where.apply(condition, a, b)


def _compare(name, fn):
    def compare(input, other) -> Tensor:
        a, b = binary_operands(input, other, name)
        return Tensor(fn(a.data, b.data))
    compare.__name__ = name
    compare.__doc__ = f"Elementwise ``{name}`` comparison as a bool tensor (no gradient)."
    return compare


eq = _compare("eq", lambda a, b: a == b)
ne = _compare("ne", lambda a, b: a != b)
lt = _compare("lt", lambda a, b: a < b)
le = _compare("le", lambda a, b: a <= b)
gt = _compare("gt", lambda a, b: a > b)
ge = _compare("ge", lambda a, b: a >= b)


def logical_not(input) -> Tensor:
    check_tensor(input, "logical_not")
    return Tensor(input.xp.logical_not(input.data))


def isnan(input) -> Tensor:
    return Tensor(check_tensor(input, "isnan").xp.isnan(input.data))


def isfinite(input) -> Tensor:
    return Tensor(check_tensor(input, "isfinite").xp.isfinite(input.data))


def to_dtype(input, dtype) -> Tensor:
    """A copy of ``input`` in ``dtype``; gradients flow back in the source dtype."""
    dtype = as_dtype(dtype, "to")
    check_tensor(input, "to")
    if input.dtype == dtype:
        return input
    if input.requires_grad and dtype.kind != "f":
        return Tensor(input.data.astype(dtype))
    return ToDtype.apply(input, dtype=dtype)


def device_argument(device, op: str = "to") -> backend.Device:
    """``device`` as a Device; a bad one is an error that names ``op``."""
    try:
        return backend.Device(device)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{op}: {e}") from None


def to_device(input, device) -> Tensor:
    """``input`` on ``device`` (the same tensor when it is already there); differentiable."""
    check_tensor(input, "to")
    device = device_argument(device)
    if input.device == device:
        return input
    return ToDevice.apply(input, device=device)
