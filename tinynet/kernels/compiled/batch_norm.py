"""Batch norm in training mode, compiled: statistics, normalisation and the first-order
backward in 2 + 2 passes over the activation.

Shapes: x, g, y, dx are ``(N, C, L)`` (L = prod(spatial), 1 for ``(N, C)``), C-contiguous,
one dtype; ``mean``, ``invstd``, ``weight``, ``bias``, ``sum_g``, ``sum_gx`` are ``(C,)``.
Per channel c, over its M = N·L values (see :mod:`tinynet.functional.normalization`):

    μ = Σx / M,   σ² = Σ(x - μ)² / M,   invstd = 1 / sqrt(σ² + eps)
    y = (x - μ)·(γ·invstd) + β
    Σg,   Σg·x̂ = invstd·Σ g·(x - μ)
    dx = scale·g + k·(x - μ) + c,   scale = γ·invstd,  k = -scale·invstd·Σg·x̂ / M,
                                    c = -scale·Σg / M

Loop structure: a loop over channels ``lo..hi``; inside, the N rows of L contiguous values
of one channel. The caller splits the channels with ``backend.parallel_for`` (channels are
independent). A ``prange`` over the channels instead (Numba's OpenMP threads) halved the
kernels' own time, but a whole ResNet-18 training step took 1.94x as long (845 against
436 ms): after each parallel region the OpenMP workers keep spinning, taking a core from
the GEMM that follows (docs/kernels/normalization.md). In float32 the chunks run as a
native job (:func:`forward_piece`, :func:`backward_piece`: the same kernels on OpenBLAS's
workers without the GIL); as Python chunks each one took the GIL on its worker, and on
a guest where that hand-over is dear two threads ran ResNet-18's N16 256x8x8 forward +
backward 1.35x slower than one.

The forward reads a channel three times (Σx, Σ(x - μ)², then y) and the backward twice
(the two sums, then dx); a channel of
ResNet-18's N16 maps is 16-64 KB, so the second and third reads come from cache and the
activation streams through memory about once each way. The NumPy route pays ~14
whole-array passes for the same work (each ufunc reads and writes its operands, and the
per-channel broadcasts are arrays of their own). Sums accumulate in float64 for both
dtypes (the cast is free next to the memory traffic): at least as accurate as NumPy's
pairwise float32 sum.
"""
import numba
import numpy as np

from . import kernel
from .native import address_to_pointer, piece_range, table_piece


@kernel
def forward(x, weight, bias, eps, y, mean, var, invstd, lo, hi):
    """Fills ``y`` (like ``x``, (N, C, L)) and ``mean``, ``var``, ``invstd`` (C,) on
    channels ``lo..hi``; ``weight``/``bias`` are (C,) (ones and zeros where the module has
    none)."""
    N, C, L = x.shape
    M = N * L
    for c in range(lo, hi):
        total = 0.0
        for n in range(N):
            for i in range(L):
                total += x[n, c, i]
        mean[c] = total / M
        mu = mean[c]                    # read back: μ in x's dtype, as the NumPy route has it
        squares = 0.0
        for n in range(N):
            for i in range(L):
                d = x[n, c, i] - mu
                squares += d * d
        var[c] = squares / M
        invstd[c] = 1.0 / np.sqrt(var[c] + eps)
        scale, shift = invstd[c] * weight[c], bias[c]
        for n in range(N):
            for i in range(L):
                y[n, c, i] = (x[n, c, i] - mu) * scale + shift


@kernel
def backward(x, g, mean, invstd, weight, want_x, dx, sum_g, sum_gx, coefficients, lo, hi):
    """Fills ``sum_g`` = Σg and ``sum_gx`` = Σg·x̂ (C,), and ``dx`` (like ``x``) where
    ``want_x`` (the weight-only gradient skips the second pass), on channels ``lo..hi`` of
    ``x``, ``g`` (N, C, L); ``coefficients`` (C, 3) is scratch for each channel's scale, k
    and c in x's dtype."""
    N, C, L = x.shape
    M = N * L
    for c in range(lo, hi):
        mu, inv = mean[c], invstd[c]
        sg = 0.0
        sgc = 0.0
        for n in range(N):
            for i in range(L):
                gv = g[n, c, i]
                sg += gv
                sgc += gv * (x[n, c, i] - mu)
        sum_g[c] = sg
        sum_gx[c] = sgc * inv
        if want_x:
            coefficients[c, 0] = inv * weight[c]
            scale = coefficients[c, 0]
            coefficients[c, 1] = -scale * inv * sum_gx[c] / M
            coefficients[c, 2] = -scale * sum_g[c] / M
            k, shift = coefficients[c, 1], coefficients[c, 2]
            for n in range(N):
                for i in range(L):
                    dx[n, c, i] = scale * g[n, c, i] + k * (x[n, c, i] - mu) + shift


@table_piece
def forward_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of :func:`forward` in float32 as a native job
    (:func:`tinynet.blas_threads.run_native_job`): the channels ``parallel_for`` would
    give it. Table ``b``: the integer parameters ``N, C, L``, then x (N, C, L), weight,
    bias (C,), eps (a float64 (1,)), y (N, C, L), mean, var, invstd (C,)."""
    p = numba.carray(address_to_pointer(b[0], numba.int64), (3,))
    N, C, L = p[0], p[1], p[2]
    lo, hi = piece_range(a // 8, pieces, C)
    forward(numba.carray(address_to_pointer(b[1], numba.float32), (N, C, L)),
            numba.carray(address_to_pointer(b[2], numba.float32), (C,)),
            numba.carray(address_to_pointer(b[3], numba.float32), (C,)),
            numba.carray(address_to_pointer(b[4], numba.float64), (1,))[0],
            numba.carray(address_to_pointer(b[5], numba.float32), (N, C, L)),
            numba.carray(address_to_pointer(b[6], numba.float32), (C,)),
            numba.carray(address_to_pointer(b[7], numba.float32), (C,)),
            numba.carray(address_to_pointer(b[8], numba.float32), (C,)), lo, hi)


@table_piece
def backward_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of :func:`backward` in float32 as a native job. Table
    ``b``: the integer parameters ``N, C, L, want_x``, then x, g (N, C, L), mean, invstd,
    weight (C,), dx ((N, C, L); not read unless ``want_x``), sum_g, sum_gx (C,),
    coefficients (C, 3)."""
    p = numba.carray(address_to_pointer(b[0], numba.int64), (4,))
    N, C, L, want_x = p[0], p[1], p[2], p[3]
    lo, hi = piece_range(a // 8, pieces, C)
    backward(numba.carray(address_to_pointer(b[1], numba.float32), (N, C, L)),
             numba.carray(address_to_pointer(b[2], numba.float32), (N, C, L)),
             numba.carray(address_to_pointer(b[3], numba.float32), (C,)),
             numba.carray(address_to_pointer(b[4], numba.float32), (C,)),
             numba.carray(address_to_pointer(b[5], numba.float32), (C,)),
             want_x != 0,
             numba.carray(address_to_pointer(b[6], numba.float32), (N, C, L)),
             numba.carray(address_to_pointer(b[7], numba.float32), (C,)),
             numba.carray(address_to_pointer(b[8], numba.float32), (C,)),
             numba.carray(address_to_pointer(b[9], numba.float32), (C, 3)), lo, hi)
