"""Pooling layers: ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d``
(no parameters)."""
from __future__ import annotations

from .. import functional as F
from ..functional.pool import max_pool2d_relu
from ..tensor import Tensor
from ._validate import int_pair, check_input
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]


def _window(layer, kernel_size, stride, padding):
    """Checks the window and returns it as given, stride None meaning kernel_size: PyTorch's
    attributes and repr keep the arguments' form (``kernel_size=3``, not ``(3, 3)``)."""
    k = int_pair(kernel_size, "kernel_size", layer)
    if stride is not None:
        int_pair(stride, "stride", layer)
    p = int_pair(padding, "padding", layer, minimum=0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{layer}: padding {p} must be at most half the kernel size {k}")
    return kernel_size, kernel_size if stride is None else stride, padding


class MaxPool2d(Module):
    """Max over each window; stride defaults to kernel_size."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = _window("MaxPool2d", kernel_size, stride, padding)
        int_pair(dilation, "dilation", "MaxPool2d")
        self.dilation = dilation
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)

    def forward(self, input: Tensor):
        self._check(input)
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def _forward_relu(self, input: Tensor):
        """``relu(self(input))`` as one op (:func:`tinynet.functional.pool.max_pool2d_relu`),
        for ``Sequential``'s ReLU next to a pool (without ``return_indices``, without hooks)."""
        self._check(input)
        return max_pool2d_relu(input, self.kernel_size, self.stride, self.padding, self.dilation,
                               self.ceil_mode)

    @staticmethod
    def _check(input) -> None:
        check_input(input, "MaxPool2d", (3, 4), "a 4-D input (N, C, H, W) or 3-D (C, H, W)")

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean over each window; stride defaults to kernel_size."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = _window("AvgPool2d", kernel_size, stride, padding)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        if divisor_override is not None and (isinstance(divisor_override, bool) or not isinstance(
                divisor_override, int) or divisor_override == 0):
            raise ValueError(f"AvgPool2d: divisor_override must be a non-zero int, got {divisor_override!r}")
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        check_input(input, "AvgPool2d", (3, 4), "a 4-D input (N, C, H, W) or 3-D (C, H, W)")
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def _check_output_size(layer, output_size):
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(sizes) != 2 or any(v is not None and (isinstance(v, bool) or not isinstance(v, int)
                                                 or v < 0) for v in sizes):
        raise ValueError(f"{layer}: output_size must be a non-negative int or a pair "
                         f"(None keeps the input size), got {output_size!r}")
    return output_size


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed (Ho, Wo); ``None`` keeps that input size."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = _check_output_size("AdaptiveAvgPool2d", output_size)

    def forward(self, input: Tensor) -> Tensor:
        check_input(input, "AdaptiveAvgPool2d", (3, 4), "a 4-D input (N, C, H, W) or 3-D (C, H, W)")
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed (Ho, Wo) (``F.adaptive_max_pool2d``); ``None`` keeps that
    input size; ``return_indices`` also returns the int64 ``h·W + w`` of each maximum."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size = _check_output_size("AdaptiveMaxPool2d", output_size)
        self.return_indices = bool(return_indices)

    def forward(self, input: Tensor):
        check_input(input, "AdaptiveMaxPool2d", (3, 4), "a 4-D input (N, C, H, W) or 3-D (C, H, W)")
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
