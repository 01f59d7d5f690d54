"""ConvLSTM (Shi et al., 2015): an LSTM whose states are images and whose products are convolutions.

Shapes: input ``x_t`` ``(B, C, H, W)``; states ``h_t, c_t`` ``(B, K, H, W)`` with ``K``
hidden channels; one weight ``W`` ``(4K, C + K, k, k)`` and bias ``b`` ``(4K,)``, gate
blocks in PyTorch's LSTM order i, f, g, o. With ``*`` the 2-D convolution (stride 1,
padding ``k // 2``, so the map keeps its size) and ``∘`` the elementwise product::

    [a_i | a_f | a_g | a_o] = W * [x_t ; h_{t-1}] + b          (B, 4K, H, W): one conv2d
    i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
    c_t = f ∘ c_{t-1} + i ∘ g
    h_t = o ∘ tanh(c_t)

One convolution over the concatenation ``[x ; h]`` equals Shi et al.'s two sums
``W_x * x + W_h * h`` (split ``W`` along its input channels), in one GEMM instead of
two. The gate math is the LSTM's, applied at every pixel; the paper's peephole terms
``W_c ∘ c`` are left out, as in PyTorch's ``nn.LSTM`` and most ConvLSTM code. Everything
is built from tinynet ops (``conv2d``, ``sigmoid``, ``tanh``, products), so gradients of
every order come from autograd. The derivation, shapes and cost are in
``docs/models/convlstm.md``.

:class:`ConvLSTMForecaster` is the next-frame model: a stack of ConvLSTM cells reads the
``T_in`` given frames, then runs ``T_out`` more steps, each reading the frame it predicted
last (the first reads the last given frame); a 1x1 convolution and a sigmoid turn the top
hidden state into the frame ``(B, C, H, W)``. With ``patch_size=p`` every frame is first
cut into ``p x p`` blocks stacked as channels, ``(B, C, H, W) -> (B, C p^2, H/p, W/p)``
(space to depth, lossless), so the cells run on a map ``p^2`` times smaller; a 3x3 kernel
then reaches ``p`` pixels per step. Predictions are put back the inverse way.
"""
from __future__ import annotations

import math

from .. import functional as F
from ..creation import zeros
from ..nn import init
from ..nn.conv import Conv2d
from ..nn.containers import ModuleList
from ..nn.module import Module, Parameter
from ..tensor import Tensor

__all__ = ["ConvLSTMCell", "ConvLSTM", "ConvLSTMForecaster", "conv_lstm_cell", "space_to_depth",
           "depth_to_space"]


def space_to_depth(x: Tensor, p: int) -> Tensor:
    """``(B, C, H, W) -> (B, C*p*p, H/p, W/p)``: channel ``c*p*p + i*p + j`` holds pixel
    ``(i, j)`` of every ``p x p`` block of channel ``c``."""
    B, C, H, W = x.shape
    return x.reshape(B, C, H // p, p, W // p, p).permute(0, 1, 3, 5, 2, 4).reshape(B, C * p * p, H // p, W // p)


def depth_to_space(x: Tensor, p: int) -> Tensor:
    """The inverse of :func:`space_to_depth`: ``(B, C*p*p, h, w) -> (B, C, h*p, w*p)``."""
    B, Cpp, h, w = x.shape
    C = Cpp // (p * p)
    return x.reshape(B, C, p, p, h, w).permute(0, 1, 4, 2, 5, 3).reshape(B, C, h * p, w * p)


def conv_lstm_cell(input: Tensor, hx, weight: Tensor, bias: Tensor | None = None):
    """One ConvLSTM step: ``(h', c')`` from ``input`` ``(B, C, H, W)`` and ``hx = (h, c)``.

    ``weight`` ``(4K, C + K, k, k)`` with odd ``k``; ``bias`` ``(4K,)``. See the module
    docstring for the equations.

    >>> import tinynet as tn
    >>> h, c = conv_lstm_cell(tn.randn(2, 1, 5, 5), (tn.zeros(2, 3, 5, 5), tn.zeros(2, 3, 5, 5)),
    ...                       tn.randn(12, 4, 3, 3))
    >>> tuple(h.shape)
    (2, 3, 5, 5)
    """
    h, c = hx
    if input.ndim != 4 or h.ndim != 4 or tuple(h.shape) != tuple(c.shape):
        raise ValueError(f"conv_lstm_cell: expected input (B, C, H, W) and h, c of one shape "
                         f"(B, K, H, W), got {tuple(input.shape)}, {tuple(h.shape)}, {tuple(c.shape)}")
    K = h.shape[1]
    if (weight.ndim != 4 or weight.shape[0] != 4 * K or weight.shape[1] != input.shape[1] + K
            or weight.shape[2] != weight.shape[3] or weight.shape[2] % 2 == 0):
        raise ValueError(f"conv_lstm_cell: expected weight of shape ({4 * K}, {input.shape[1] + K}, k, k) "
                         f"with odd k, got {tuple(weight.shape)}")
    if input.shape[0] != h.shape[0] or input.shape[2:] != h.shape[2:]:
        raise ValueError(f"conv_lstm_cell: input {tuple(input.shape)} and state {tuple(h.shape)} "
                         f"differ in batch or spatial size")
    gates = F.conv2d(F.cat([input, h], 1), weight, bias, padding=weight.shape[2] // 2)
    i = gates[:, :K].sigmoid()
    f = gates[:, K:2 * K].sigmoid()
    g = gates[:, 2 * K:3 * K].tanh()
    o = gates[:, 3 * K:].sigmoid()
    c_next = f * c + i * g
    return o * c_next.tanh(), c_next


class ConvLSTMCell(Module):
    """A ConvLSTM cell: ``weight`` ``(4K, C + K, k, k)``, ``bias`` ``(4K,)``; gates i, f, g, o.

    Initialised like PyTorch's LSTM, uniform in ``±1/sqrt(K)``. ``forward(x, hx=None)``
    with ``x`` ``(B, C, H, W)`` returns ``(h, c)``, each ``(B, K, H, W)``.

    >>> import tinynet as tn
    >>> cell = ConvLSTMCell(1, 8, kernel_size=3)
    >>> h, c = cell(tn.randn(2, 1, 16, 16))
    >>> tuple(h.shape), tuple(cell.weight.shape)
    ((2, 8, 16, 16), (32, 9, 3, 3))
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int = 3,
                 bias: bool = True, dtype=None, device=None):
        super().__init__()
        for name, value in (("input_channels", input_channels), ("hidden_channels", hidden_channels),
                            ("kernel_size", kernel_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ConvLSTMCell: {name} must be a positive int, got {value!r}")
        if kernel_size % 2 == 0:
            raise ValueError(f"ConvLSTMCell: kernel_size must be odd (the map keeps its size), "
                             f"got {kernel_size}")
        self.input_channels, self.hidden_channels, self.kernel_size = \
            input_channels, hidden_channels, kernel_size
        K = hidden_channels
        shape = (4 * K, input_channels + K, kernel_size, kernel_size)
        self.weight = Parameter(zeros(*shape, dtype=dtype, device=device))
        self.bias = Parameter(zeros(4 * K, dtype=dtype, device=device)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_channels)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_channels}, {self.hidden_channels}, kernel_size={self.kernel_size}"

    def initial_state(self, x: Tensor):
        """Zero ``(h, c)`` for a batch like ``x`` ``(B, C, H, W)``."""
        B, _, H, W = x.shape
        z = zeros(B, self.hidden_channels, H, W, dtype=x.dtype, device=x.device)
        return z, z

    def forward(self, input: Tensor, hx=None):
        if not isinstance(input, Tensor) or input.ndim != 4 or input.shape[1] != self.input_channels:
            got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"ConvLSTMCell: expected input of shape (batch, {self.input_channels}, "
                             f"height, width), got {got}")
        hx = self.initial_state(input) if hx is None else hx
        return conv_lstm_cell(input, hx, self.weight, self.bias)


class ConvLSTM(Module):
    """Stacked ConvLSTM cells over a sequence ``(B, T, C, H, W)`` (batch first).

    Returns ``(output (B, T, K_top, H, W), [(h_n, c_n) per layer])``; layer ``l`` reads the
    hidden states of layer ``l - 1``. ``hidden_channels`` is an int or one int per layer.

    >>> import tinynet as tn
    >>> layer = ConvLSTM(1, [8, 4], kernel_size=3)
    >>> out, states = layer(tn.randn(2, 5, 1, 8, 8))
    >>> tuple(out.shape), len(states)
    ((2, 5, 4, 8, 8), 2)
    """

    def __init__(self, input_channels: int, hidden_channels, kernel_size: int = 3,
                 num_layers: int | None = None, bias: bool = True, dtype=None, device=None):
        super().__init__()
        if isinstance(hidden_channels, int):
            hidden_channels = [hidden_channels] * (num_layers or 1)
        hidden_channels = list(hidden_channels)
        if not hidden_channels or (num_layers is not None and num_layers != len(hidden_channels)):
            raise ValueError(f"ConvLSTM: hidden_channels {hidden_channels} does not give "
                             f"num_layers={num_layers} layers")
        self.hidden_channels = hidden_channels
        sizes = [input_channels] + hidden_channels
        self.cells = ModuleList([ConvLSTMCell(sizes[i], sizes[i + 1], kernel_size, bias, dtype=dtype,
                                              device=device) for i in range(len(hidden_channels))])

    def step(self, x: Tensor, states=None):
        """One time step through every layer: ``(top hidden state, new states)``."""
        states = [None] * len(self.cells) if states is None else states
        new = []
        for cell, state in zip(self.cells, states):
            h, c = cell(x, state)
            new.append((h, c))
            x = h
        return x, new

    def forward(self, input: Tensor, states=None):
        if not isinstance(input, Tensor) or input.ndim != 5:
            got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"ConvLSTM: expected input of shape (batch, steps, channels, height, "
                             f"width), got {got}")
        outputs = []
        for t in range(input.shape[1]):
            top, states = self.step(input[:, t], states)
            outputs.append(top)
        return F.stack(outputs, 1), states


class ConvLSTMForecaster(Module):
    """Next frames from past frames: ``(B, T_in, C, H, W)`` -> ``(B, frames_out, C, H, W)`` in [0, 1]
    (:meth:`forecast`); calling the model also returns the one-step predictions made while
    reading, for training.

    >>> import tinynet as tn
    >>> model = ConvLSTMForecaster(channels=1, hidden_channels=[8], frames_out=3)
    >>> tuple(model.forecast(tn.rand(2, 4, 1, 16, 16)).shape)
    (2, 3, 1, 16, 16)
    """

    def __init__(self, channels: int = 1, hidden_channels=(16,), kernel_size: int = 3,
                 frames_out: int = 10, patch_size: int = 1, dtype=None, device=None):
        super().__init__()
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f"ConvLSTMForecaster: patch_size must be a positive int, got {patch_size!r}")
        self.patch_size = patch_size
        depth = channels * patch_size * patch_size
        if isinstance(frames_out, bool) or not isinstance(frames_out, int) or frames_out < 1:
            raise ValueError(f"ConvLSTMForecaster: frames_out must be a positive int, got {frames_out!r}")
        self.channels, self.frames_out = channels, frames_out
        self.convlstm = ConvLSTM(depth, list(hidden_channels) if not isinstance(hidden_channels, int)
                                 else hidden_channels, kernel_size, dtype=dtype, device=device)
        self.head = Conv2d(self.convlstm.hidden_channels[-1], depth, 1, dtype=dtype, device=device)

    def forward(self, frames: Tensor) -> Tensor:
        """Every prediction: ``(B, T_in - 1 + frames_out, C, H, W)``.

        Row ``t < T_in - 1`` is the one-step prediction of given frame ``t + 1`` (made while
        reading), the last ``frames_out`` rows are the forecast; training on all of them
        teaches the one-step dynamics and the roll-out together.
        """
        if not isinstance(frames, Tensor) or frames.ndim != 5 or frames.shape[2] != self.channels:
            got = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
            raise ValueError(f"ConvLSTMForecaster: expected frames of shape (batch, steps, "
                             f"{self.channels}, height, width), got {got}")
        p = self.patch_size
        if frames.shape[3] % p or frames.shape[4] % p:
            raise ValueError(f"ConvLSTMForecaster: height and width must be multiples of "
                             f"patch_size={p}, got {tuple(frames.shape[3:])}")
        states, predicted = None, []
        for t in range(frames.shape[1] - 1):            # read all but the last given frame
            top, states = self.convlstm.step(space_to_depth(frames[:, t], p), states)
            predicted.append(depth_to_space(self.head(top).sigmoid(), p))
        frame = space_to_depth(frames[:, -1], p)
        for _ in range(self.frames_out):
            top, states = self.convlstm.step(frame, states)
            frame = self.head(top).sigmoid()
            predicted.append(depth_to_space(frame, p))
        return F.stack(predicted, 1)

    def forecast(self, frames: Tensor) -> Tensor:
        """The ``frames_out`` predicted future frames only: ``(B, frames_out, C, H, W)``."""
        return self(frames)[:, frames.shape[1] - 1:]
