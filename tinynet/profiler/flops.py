"""Floating-point operation counts of the ops whose cost is dominated by products.

A count is a function of the shapes only, ``flops(arg_shapes, kwargs, out_shapes)``, where
``arg_shapes`` holds the shape of each positional argument of ``forward`` (None for a
non-array) and ``out_shapes`` those of the outputs. A multiply-add counts as 2 flops, as
in every GEMM benchmark; bias additions and activations are not counted (they are memory
bound, and their time is better read as bytes moved). Ops absent from :data:`FLOPS` have
no defined count and show no GFLOP/s.

    conv2d             y (N, C_out, Ho, Wo), w (C_out, C_in/G, kh, kw):
                       2 · N·C_out·Ho·Wo · (C_in/G)·kh·kw
    conv2d, ReLU and 2x2 max pool in one op (Conv2dReluPool): conv2d's count, with
                       (Ho, Wo) the convolution's output size (its ``output_size``)
    conv_transpose2d   x (N, C_in, H, W),   w (C_in, C_out/G, kh, kw):
                       2 · N·C_in·H·W · (C_out/G)·kh·kw
    conv2d_weight      dy (N, C_out, Ho, Wo), weight_shape (C_out, C_in/G, kh, kw):
                       2 · N·C_out·Ho·Wo · (C_in/G)·kh·kw
    matmul             out (..., m, n), a (..., m, k): 2 · prod(out) · k
    linear             x (..., in), w (out, in): 2 · prod(x[:-1]) · in · out
    LSTM / GRU / RNN   x (T, B, I), w_ih (gH, I), w_hh (gH, H): 2 · T·B·gH·(I + H)
                       (the forward GEMMs; gate math not counted)
"""
from __future__ import annotations

from math import prod

__all__ = ["FLOPS", "count_flops"]


def _conv2d(shapes, kwargs, outs):
    w = shapes[1]
    return 2 * prod(outs[0]) * prod(w[1:])


def _conv2d_relu_pool(shapes, kwargs, outs):
    """The convolution's products: its output (N, C_out, Ho, Wo) is the pool's input."""
    w = shapes[1]
    return 2 * outs[0][0] * outs[0][1] * prod(kwargs["output_size"]) * prod(w[1:])


def _conv_transpose2d(shapes, kwargs, outs):
    x, w = shapes[0], shapes[1]
    return 2 * prod(x) * prod(w[1:])


def _conv2d_weight(shapes, kwargs, outs):
    return 2 * prod(shapes[1]) * prod(kwargs["weight_shape"][1:])


def _matmul(shapes, kwargs, outs):
    return 2 * prod(outs[0]) * shapes[0][-1]


def _linear(shapes, kwargs, outs):
    x, w = shapes[0], shapes[1]
    return 2 * prod(x[:-1]) * w[0] * w[1]


def _recurrent_layer(first_weight):
    """LSTMLayer's weights are arguments 3 and 4 (after x, h0, c0); GRU's and RNN's 2 and 3."""
    def count(shapes, kwargs, outs):
        x, w_ih, w_hh = shapes[0], shapes[first_weight], shapes[first_weight + 1]
        return 2 * prod(x[:-1]) * w_ih[0] * (w_ih[1] + w_hh[1])
    return count


#: Function class name -> flop count from shapes.
FLOPS = {
    "Conv2d": _conv2d,
    "Conv2dReluPool": _conv2d_relu_pool,
    "ConvTranspose2d": _conv_transpose2d,
    "Conv2dWeight": _conv2d_weight,
    "MatMul": _matmul,
    "Linear": _linear,
    "LSTMLayer": _recurrent_layer(3),
    "GRULayer": _recurrent_layer(2),
    "RNNLayer": _recurrent_layer(2),
}


def count_flops(name: str, arg_shapes, kwargs, out_shapes) -> int | None:
    """Flops of one call of the op ``name``, or None where no count is defined (or the
    shapes do not have the layout the formula expects)."""
    rule = FLOPS.get(name)
    if rule is None:
        return None
    try:
        return int(rule(arg_shapes, kwargs, out_shapes))
    except (TypeError, IndexError, KeyError):
        return None
