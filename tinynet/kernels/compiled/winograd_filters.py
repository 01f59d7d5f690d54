"""Winograd's filter transform and its adjoint, compiled (:mod:`tinynet.kernels.winograd`).

Shapes: F = C_out·C_in filters of 9 taps, P positions (16 for F(2x2, 3x3), 36 for
F(4x4, 3x3)), ``taps = kron(G, G)`` (P, 9):

* :func:`transform_filters`: w (F, 9) -> u (P, F), ``U = G g Gᵀ`` per filter, i.e.
  ``u[p, f] = Σ_k taps[p, k] w[f, k]``;
* :func:`adjoint_filters`: du (S, P, F) -> dw (F, 9), the weight gradient's last step:
  the S partial dU (one per piece of the job that made them) summed in order, then the
  adjoint ``dw[f] = Gᵀ dU[f] G`` (the same as ``dw[f, k] = Σ_p taps[p, k] dU[p, f]``).

Both were one GEMM with K = 9 or an N of 9 ((P, 9) @ (9, F), (F, P) @ (P, 9)), which
OpenBLAS runs on one thread at a few tens of GFLOP/s, plus ``kron`` and the partials'
sum as separate passes: 4.6 ms of a U-Net training step for its 29 transforms and 10
weight gradients (3.7 ms here). The work is small (P·9 multiply-adds a filter at most)
and the pass over memory is what costs, u being P/9 times the weight's size; here it is
one pass on both cores.

Loop structure: a block of :data:`BLOCK` filters at a time, its taps first copied
transposed into a small (9, BLOCK) buffer, so that the inner loop runs over the
block's filters (contiguous in ``u``'s rows and in the buffer: it vectorises) with the 9
coefficients of position p in registers. The adjoint sums the block's partials into a
(P, BLOCK) buffer, applies G along ν and then along ξ (each a loop over the block's
filters, G's zeros skipped: 126 multiply-adds a filter for F(4x4, 3x3) instead of 324),
and stores the 9 rows transposed into dw.
"""
import numba
import numpy as np

from . import kernel
from .native import address_to_pointer, piece_range, table_piece

#: Filters per block: the buffers stay in L1 (36 x 128 float32 = 18 KB).
BLOCK = 128


@kernel
def transform_filters(w, taps, u, lo, hi):
    """``u[p, f] = Σ_k taps[p, k] w[f, k]`` for the filters ``lo..hi``; w (F, 9), taps
    (P, 9), u (P, F)."""
    P = taps.shape[0]
    block = np.empty((9, BLOCK), dtype=w.dtype)
    for f0 in range(lo, hi, BLOCK):
        nb = min(BLOCK, hi - f0)
        for j in range(nb):
            for k in range(9):
                block[k, j] = w[f0 + j, k]
        for p in range(P):
            t0, t1, t2, t3, t4 = taps[p, 0], taps[p, 1], taps[p, 2], taps[p, 3], taps[p, 4]
            t5, t6, t7, t8 = taps[p, 5], taps[p, 6], taps[p, 7], taps[p, 8]
            row = u[p, f0:f0 + nb]
            for j in range(nb):
                row[j] = (t0 * block[0, j] + t1 * block[1, j] + t2 * block[2, j]
                          + t3 * block[3, j] + t4 * block[4, j] + t5 * block[5, j]
                          + t6 * block[6, j] + t7 * block[7, j] + t8 * block[8, j])


@kernel
def adjoint_filters(du, g, dw, lo, hi):
    """``dw[f] = Gᵀ (Σ_s dU_s[f]) G`` for the filters ``lo..hi``, the partials added in
    order s = 0, 1, ...; du (S, P, F) with position ``p = n ξ + ν`` of the n x n
    transformed filter, g the (n, 3) matrix G, dw (F, 9)."""
    S, P = du.shape[0], du.shape[1]
    n = g.shape[0]
    total = np.empty((P, BLOCK), dtype=du.dtype)
    half = np.zeros((3 * n, BLOCK), dtype=du.dtype)     # T[ξ, b] = Σ_ν dU[ξ, ν] G[ν, b]
    out = np.zeros((9, BLOCK), dtype=du.dtype)          # dw[a, b] = Σ_ξ G[ξ, a] T[ξ, b]
    for f0 in range(lo, hi, BLOCK):
        nb = min(BLOCK, hi - f0)
        for p in range(P):
            for j in range(nb):
                total[p, j] = du[0, p, f0 + j]
            for s in range(1, S):
                for j in range(nb):
                    total[p, j] += du[s, p, f0 + j]
        half[:, :nb] = 0
        for xi in range(n):
            for b in range(3):
                for nu in range(n):
                    c = g[nu, b]
                    if c != 0:
                        for j in range(nb):
                            half[3 * xi + b, j] += c * total[n * xi + nu, j]
        out[:, :nb] = 0
        for a in range(3):
            for b in range(3):
                for xi in range(n):
                    c = g[xi, a]
                    if c != 0:
                        for j in range(nb):
                            out[3 * a + b, j] += c * half[3 * xi + b, j]
        for j in range(nb):
            for k in range(9):
                dw[f0 + j, k] = out[k, j]


@table_piece
def transform_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of :func:`transform_filters` in float32 as a native
    job (:func:`tinynet.blas_threads.run_native_job`): the filters ``parallel_for`` would
    give it. Table ``b``: the integer parameters ``F, P``, then w (F, 9), taps (P, 9),
    u (P, F)."""
    p = numba.carray(address_to_pointer(b[0], numba.int64), (2,))
    F, P = p[0], p[1]
    lo, hi = piece_range(a // 8, pieces, F)
    transform_filters(numba.carray(address_to_pointer(b[1], numba.float32), (F, 9)),
                      numba.carray(address_to_pointer(b[2], numba.float32), (P, 9)),
                      numba.carray(address_to_pointer(b[3], numba.float32), (P, F)), lo, hi)


@table_piece
def adjoint_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of ``pieces`` of :func:`adjoint_filters` in float32 as a native
    job. Table ``b``: the integer parameters ``S, n, F``, then du (S, n², F), g (n, 3),
    dw (F, 9)."""
    p = numba.carray(address_to_pointer(b[0], numba.int64), (3,))
    S, n, F = p[0], p[1], p[2]
    lo, hi = piece_range(a // 8, pieces, F)
    adjoint_filters(numba.carray(address_to_pointer(b[1], numba.float32), (S, n * n, F)),
                    numba.carray(address_to_pointer(b[2], numba.float32), (n, 3)),
                    numba.carray(address_to_pointer(b[3], numba.float32), (F, 9)), lo, hi)
