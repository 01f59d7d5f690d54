"""Pointwise (1x1) convolution: one matrix product per image, in NCHW as it stands.

A 1x1 kernel with stride (sh, sw) and no padding reads only ``x[n, :, h·sh, w·sw]``.
With the taps ``xs = x[:, :, ::sh, ::sw]`` (cropped to Ho x Wo; ``x`` itself at
stride 1) every image is one product::

    y[n] = W @ xs[n] + b          W (C_out, C_in), xs[n] (C_in, Ho·Wo), y[n] (C_out, Ho·Wo)

An (N, C, H·W) array is already a stack of such matrices, so the batched product reads
the input where it lies and writes the output in its final layout. The im2col path
would copy ``x`` into a (C_in, N·Ho·Wo) column matrix and the product back to NCHW:
two passes over memory that cost more than a 1x1 conv's few flops (ResNet-18's 1x1
stride-2 shortcut, N16 64->128 32x32, forward: 5.8 -> 1.7 ms measured, against the phase
grid it took before; docs/kernels/convolution.md).

The other two ops of the conv algebra are its adjoints:

    transposed conv:  dx[n][:, ::sh, ::sw] = Wᵀ @ dy[n]       (zero between the taps)
    weight gradient:  dW = Σ_n dy[n] @ xs[n]ᵀ

The weight gradient either sums per-image products (an (N, C_out, C_in) stack) or,
when that stack would be larger than the operands, folds the batch into the inner
dimension of one GEMM (two transposing copies, of N·Ho·Wo·(C_out + C_in) elements).
"""
from __future__ import annotations

from tinynet import backend

__all__ = ["taps", "conv2d_pointwise", "conv_transpose2d_pointwise", "conv2d_weight_pointwise"]


def taps(x, stride, output_size):
    """``x[:, :, ::sh, ::sw]`` cropped to ``output_size``, contiguous (``x`` itself at stride 1)."""
    xp = backend.get_array_module(x)
    (sh, sw), (Ho, Wo) = stride, output_size
    if (sh, sw) == (1, 1) and tuple(x.shape[2:]) == (Ho, Wo):
        return xp.ascontiguousarray(x)
    return xp.ascontiguousarray(x[:, :, :Ho * sh:sh, :Wo * sw:sw])


def conv2d_pointwise(x, w, b, stride, output_size):
    """x (N, C_in, H, W), w (C_out, C_in, 1, 1), b (C_out,) or None -> (N, C_out, Ho, Wo)."""
    xp = backend.get_array_module(x)
    N, C_out = x.shape[0], w.shape[0]
    Ho, Wo = output_size
    xs = taps(x, stride, output_size)
    out = xp.empty((N, C_out, Ho, Wo), dtype=x.dtype)
    xp.matmul(w.reshape(C_out, -1), xs.reshape(N, -1, Ho * Wo), out=out.reshape(N, C_out, Ho * Wo))
    if b is not None:
        out += b.reshape(-1, 1, 1)
    return out


def conv_transpose2d_pointwise(x, w, b, stride, output_size):
    """x (N, C_in, H, W), w (C_in, C_out, 1, 1) -> (N, C_out, Ho, Wo): ``Wᵀ @ x[n]`` placed
    on every (sh, sw)-th output pixel, ``b`` (or zero) elsewhere."""
    xp = backend.get_array_module(x)
    N, C_in, H, W = x.shape
    C_out = w.shape[1]
    (sh, sw), (Ho, Wo) = stride, output_size
    h, v = min(H, -(-Ho // sh)), min(W, -(-Wo // sw))      # input rows/columns that land
    wt = w.reshape(C_in, C_out).T
    if (sh, sw) == (1, 1) and (h, v) == (H, W) == (Ho, Wo):
        out = xp.empty((N, C_out, Ho, Wo), dtype=x.dtype)
        xp.matmul(wt, xp.ascontiguousarray(x).reshape(N, C_in, H * W), out=out.reshape(N, C_out, H * W))
        if b is not None:
            out += b.reshape(-1, 1, 1)
        return out
    out = xp.zeros((N, C_out, Ho, Wo), dtype=x.dtype)
    if b is not None:
        out += b.reshape(-1, 1, 1)
    xs = xp.ascontiguousarray(x[:, :, :h, :v]).reshape(N, C_in, h * v)
    out[:, :, :h * sh:sh, :v * sw:sw] += (wt @ xs).reshape(N, C_out, h, v)
    return out


def conv2d_weight_pointwise(x, dy, stride):
    """x (N, C_in, H, W), dy (N, C_out, Ho, Wo) -> dW (C_out, C_in, 1, 1)."""
    xp = backend.get_array_module(x)
    N, C_out, Ho, Wo = dy.shape
    C_in, P = x.shape[1], Ho * Wo
    xs = taps(x, stride, (Ho, Wo)).reshape(N, C_in, P)
    dy = dy.reshape(N, C_out, P)
    if C_out * C_in <= P * (C_out + C_in):       # the per-image stack is the smaller buffer
        dw = (dy @ xs.transpose(0, 2, 1)).sum(axis=0)
    else:
        dy_mat = xp.ascontiguousarray(dy.transpose(1, 0, 2)).reshape(C_out, N * P)
        x_mat = xp.ascontiguousarray(xs.transpose(1, 0, 2)).reshape(C_in, N * P)
        dw = backend.matmul(dy_mat, x_mat.T)
    return dw.reshape(C_out, C_in, 1, 1)
