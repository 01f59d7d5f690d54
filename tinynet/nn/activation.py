"""Activation modules: ``ReLU``, ``ELU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``, ``Softmax``,
``LogSoftmax``, ``GELU``, ``SiLU``, ``Softplus``, ``Hardtanh``, ``ReLU6``, ``SELU``, ``CELU``,
``Mish``, ``Hardswish``, ``Hardsigmoid``, ``LogSigmoid``, ``GLU`` (no parameters) and
``PReLU`` (a learnable ``weight``)."""
from __future__ import annotations

import warnings

from .. import functional as F
from ..creation import empty
from ..tensor import Tensor
from . import init
from ._validate import positive_int
from .module import Module, Parameter

__all__ = ["ReLU", "ELU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "GELU", "SiLU",
           "Softplus", "Hardtanh", "ReLU6", "SELU", "CELU", "Mish", "Hardswish", "Hardsigmoid",
           "LogSigmoid", "GLU", "PReLU"]


def _with_inplace(arguments: str, inplace: bool) -> str:
    """A repr's arguments followed by ``inplace=True`` when set (PyTorch's repr)."""
    return ", ".join(part for part in (arguments, "inplace=True" if inplace else "") if part)


class _InplaceIgnored(Module):
    """An activation whose ``inplace`` is accepted for PyTorch compatibility and ignored
    (tinynet ops never write into their input), kept and shown in the repr as PyTorch's."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return _with_inplace("", self.inplace)


class ReLU(_InplaceIgnored):
    """max(x, 0). ``inplace`` is accepted for PyTorch compatibility and ignored."""

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)


class ELU(_InplaceIgnored):
    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.alpha = float(alpha)

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return _with_inplace(f"alpha={self.alpha}", self.inplace)


class LeakyReLU(_InplaceIgnored):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__(inplace)
        self.negative_slope = float(negative_slope)

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return _with_inplace(f"negative_slope={self.negative_slope}", self.inplace)


class Sigmoid(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Tanh(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Softmax(Module):
    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GELU(Module):
    """x·Φ(x); ``approximate='tanh'`` uses the tanh approximation (see ``F.gelu``)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(_InplaceIgnored):
    """x·σ(x). ``inplace`` is accepted for PyTorch compatibility and ignored."""

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input)


def _number(value, name: str, layer: str):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{layer}: {name} must be a number, got {type(value).__name__}")
    return value


class Softplus(Module):
    """log(1 + exp(beta·x))/beta, linear where beta·x > threshold (see ``F.softplus``)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = _number(beta, "beta", "Softplus")
        self.threshold = _number(threshold, "threshold", "Softplus")

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(_InplaceIgnored):
    """min(max(x, min_val), max_val). ``min_value``/``max_value`` are PyTorch's deprecated
    spellings (a FutureWarning); ``max_val <= min_val`` is a ValueError."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None):
        super().__init__(inplace)
        if min_value is not None:
            warnings.warn("keyword argument `min_value` is deprecated and renamed to `min_val`",
                          FutureWarning, stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("keyword argument `max_value` is deprecated and renamed to `max_val`",
                          FutureWarning, stacklevel=2)
            max_val = max_value
        self.min_val = _number(min_val, "min_val", type(self).__name__)
        self.max_val = _number(max_val, "max_val", type(self).__name__)
        if self.max_val <= self.min_val:
            raise ValueError(f"{type(self).__name__}: max_val ({self.max_val}) must be greater "
                             f"than min_val ({self.min_val})")

    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return _with_inplace(f"min_val={self.min_val}, max_val={self.max_val}", self.inplace)


class ReLU6(Hardtanh):
    """min(max(x, 0), 6): ``Hardtanh(0, 6)``, as PyTorch's."""

    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0, inplace)

    def forward(self, input: Tensor) -> Tensor:
        return F.relu6(input)

    def extra_repr(self) -> str:
        return _InplaceIgnored.extra_repr(self)


class SELU(_InplaceIgnored):
    """scale·elu(x, alpha) with PyTorch's constants (see ``F.selu``)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.selu(input)


class CELU(_InplaceIgnored):
    """max(0, x) + min(0, alpha·(exp(x/alpha) - 1)); ``inplace`` accepted and ignored."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.alpha = _number(alpha, "alpha", "CELU")

    def forward(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha)

    def extra_repr(self) -> str:
        return _with_inplace(f"alpha={self.alpha}", self.inplace)


class Mish(_InplaceIgnored):
    """x·tanh(softplus(x))."""

    def forward(self, input: Tensor) -> Tensor:
        return F.mish(input)


class Hardswish(_InplaceIgnored):
    """x·relu6(x + 3)/6 (PyTorch shows no ``inplace`` in its repr)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.hardswish(input)

    def extra_repr(self) -> str:
        return ""


class Hardsigmoid(_InplaceIgnored):
    """relu6(x + 3)/6 (PyTorch shows no ``inplace`` in its repr)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.hardsigmoid(input)

    def extra_repr(self) -> str:
        return ""


class LogSigmoid(Module):
    """log σ(x), stable for every x."""

    def forward(self, input: Tensor) -> Tensor:
        return F.logsigmoid(input)


class GLU(Module):
    """a·σ(b) over the two halves of ``dim``: (*, 2n, *) -> (*, n, *)."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class PReLU(Module):
    """x (x > 0), weight·x (x <= 0) with a learnable ``weight`` of shape
    ``(num_parameters,)``, filled with ``init``: one slope for all channels
    (``num_parameters=1``) or one per channel (dim 1 of the input)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = positive_int(num_parameters, "num_parameters", "PReLU")
        self.init = _number(init, "init", "PReLU")
        self.weight = Parameter(empty(self.num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.constant_(self.weight, self.init)

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"
