"""Convolution layers: ``Conv2d``, ``ConvTranspose2d`` and ``Conv1d`` (PyTorch's arguments, weight
layouts and default initialisation: weight ~ kaiming_uniform(a=√5), i.e. U(±1/√fan_in),
bias ~ U(±1/√fan_in) with fan_in = weight.shape[1]·kh·kw)."""
from __future__ import annotations

from .. import functional as F
from ..creation import empty
from ..functional.conv_pool import conv2d_relu_max_pool2d
from ..tensor import Tensor
from . import init
from ._validate import positive_int, int_pair, check_input
from .module import Module, Parameter

__all__ = ["Conv2d", "ConvTranspose2d", "Conv1d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_padding_mode(layer, mode, allowed=_PADDING_MODES):
    if mode not in allowed:
        raise ValueError(f"{layer}: padding_mode must be one of {allowed}, got {mode!r}")
    return mode


def _mode_padding(padding, kernel_size, dilation) -> tuple:
    """The ``F.pad`` sizes (last dim first, each dim's (before, after)) that a layer with
    ``padding_mode`` other than 'zeros' applies before a conv without padding, as PyTorch:
    ``padding`` on both sides, or for 'same' a total of d·(k-1) split with the odd one
    after."""
    if padding == "valid":
        return (0, 0) * len(kernel_size)
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        sides = [(t // 2, t - t // 2) for t in total]
    else:
        sides = [(p, p) for p in padding]
    return tuple(v for side in reversed(sides) for v in side)


class _ConvNd(Module):
    _name = "Conv"

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
               bias, padding_mode, weight_shape_fn, device, dtype):
        name = self._name
        self.in_channels = positive_int(in_channels, "in_channels", name)
        self.out_channels = positive_int(out_channels, "out_channels", name)
        self.groups = positive_int(groups, "groups", name)
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        self.kernel_size = int_pair(kernel_size, "kernel_size", name)
        self.stride = int_pair(stride, "stride", name)
        self.dilation = int_pair(dilation, "dilation", name)
        self.padding_mode = _check_padding_mode(name, padding_mode,
                                                allowed=_PADDING_MODES if name == "Conv2d" else ("zeros",))
        self.weight = Parameter(empty(*weight_shape_fn(), device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
        init._default_layer_init(self.weight, self.bias, fan_in)

    def _check(self, input: Tensor) -> None:
        check_input(input, self._name, (3, 4), "a 4-D input (N, C, H, W) or 3-D (C, H, W)")
        C = input.shape[-3]
        if C != self.in_channels:
            raise ValueError(f"{self._name}: expected input with {self.in_channels} channels "
                             f"(in_channels), got {C} channels in input of shape {tuple(input.shape)}")

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):      # a string too (padding=valid), as PyTorch
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W); weight (C_out, C_in/groups, kh, kw).

    ``padding`` is an int, a pair, ``'valid'`` (none) or ``'same'`` (output size = input
    size; stride 1 only). ``padding_mode`` 'reflect', 'replicate' or 'circular' pads the
    input with ``F.pad`` in that mode (by ``padding`` on each side; for 'same' a total of
    d·(k-1), the odd one after) and convolves without padding, as PyTorch.
    """
    _name = "Conv2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__()
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
            if padding == "same" and stride not in (1, (1, 1), [1, 1]):
                raise ValueError("Conv2d: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = int_pair(padding, "padding", "Conv2d", minimum=0)
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                    padding_mode, lambda: (out_channels, in_channels // groups) + int_pair(
                        kernel_size, "kernel_size", "Conv2d"), device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        self._check(input)
        if self.padding_mode != "zeros":      # pad by the mode, then a conv without padding
            input = F.pad(input, _mode_padding(self.padding, self.kernel_size, self.dilation),
                          mode=self.padding_mode)
            return F.conv2d(input, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def _forward_relu_pool(self, input: Tensor) -> Tensor:
        """``max_pool2d(relu(self(input)), 2)`` as one op
        (:func:`tinynet.functional.conv_pool.conv2d_relu_max_pool2d`), for ``Sequential``'s
        conv, ReLU and 2x2 pool in a row (zero padding, without hooks)."""
        self._check(input)
        return conv2d_relu_max_pool2d(input, self.weight, self.bias, self.stride, self.padding,
                                      self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution; weight (C_in, C_out/groups, kh, kw);
    ``H_out = (H-1)·stride - 2·padding + dilation·(kh-1) + output_padding + 1``."""
    _name = "ConvTranspose2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        self.padding = int_pair(padding, "padding", "ConvTranspose2d", minimum=0)
        self.output_padding = int_pair(output_padding, "output_padding", "ConvTranspose2d", minimum=0)
        s, d = int_pair(stride, "stride", "ConvTranspose2d"), int_pair(dilation, "dilation", "ConvTranspose2d")
        for a in range(2):
            if self.output_padding[a] >= max(s[a], d[a]):
                raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be "
                                 f"smaller than stride {s} or dilation {d}")
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                    padding_mode, lambda: (in_channels, out_channels // groups) + int_pair(
                        kernel_size, "kernel_size", "ConvTranspose2d"), device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        self._check(input)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


def _single(value, name: str) -> tuple:
    """An int or a 1-tuple as a 1-tuple (PyTorch stores Conv1d's sizes this way)."""
    one = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(one) != 1 or isinstance(one[0], bool) or not isinstance(one[0], int):
        raise TypeError(f"Conv1d: {name} must be an int or a 1-tuple of ints, got {value!r}")
    return one


class Conv1d(Module):
    """1-D convolution over (N, C_in, L) or (C_in, L); weight (C_out, C_in/groups, k),
    initialised as PyTorch's (U(±1/√fan_in), fan_in = C_in/groups·k). Runs on the 2-D
    kernels (see ``F.conv1d``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__()
        name = "Conv1d"
        self.in_channels = positive_int(in_channels, "in_channels", name)
        self.out_channels = positive_int(out_channels, "out_channels", name)
        self.groups = positive_int(groups, "groups", name)
        for label, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if n % groups:
                raise ValueError(f"{name}: {label} ({n}) must be divisible by groups ({groups})")
        self.kernel_size = _single(kernel_size, "kernel_size")
        self.stride = _single(stride, "stride")
        self.dilation = _single(dilation, "dilation")
        for label, v in (("kernel_size", self.kernel_size), ("stride", self.stride),
                         ("dilation", self.dilation)):
            if v[0] <= 0:
                raise ValueError(f"{name}: {label} must be positive, got {v[0]}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be an int, 'valid' or 'same', got {padding!r}")
            if padding == "same" and self.stride != (1,):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _single(padding, "padding")
            if self.padding[0] < 0:
                raise ValueError(f"{name}: padding must be non-negative, got {padding}")
        self.padding_mode = _check_padding_mode(name, padding_mode)
        self.weight = Parameter(empty(out_channels, in_channels // groups, self.kernel_size[0],
                                      device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init._default_layer_init(self.weight, self.bias, self.weight.shape[1] * self.kernel_size[0])

    def forward(self, input: Tensor) -> Tensor:
        check_input(input, "Conv1d", (2, 3), "a 3-D input (N, C, L) or 2-D (C, L)")
        if input.shape[-2] != self.in_channels:
            raise ValueError(f"Conv1d: expected input with {self.in_channels} channels "
                             f"(in_channels), got {input.shape[-2]} channels in input of shape "
                             f"{tuple(input.shape)}")
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        if self.padding_mode != "zeros":      # pad by the mode, then a conv without padding
            input = F.pad(input, _mode_padding(self.padding, self.kernel_size, self.dilation),
                          mode=self.padding_mode)
            padding = 0
        return F.conv1d(input, self.weight, self.bias, self.stride[0], padding,
                        self.dilation[0], self.groups)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,):
            s += f", padding={self.padding}"
        if self.dilation != (1,):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s
