"""The LSTM's whole time loop as one native job: each thread owns a slice of the hidden units.

The loop of :mod:`tinynet.kernels.lstm` (feature-major, float32, compiled gate math)
makes, per step, one threaded GEMM and one compiled pass from Python. At the benchmark's
size (B32, 64->128) a step's GEMM ``(512 x 193) @ (193 x 32)`` takes 31 µs on two
threads and the gate pass 17-22 µs on one, yet the two in a row take 65-71 µs: OpenBLAS
splits the GEMM's rows between the cores, so the gate pass reads half of its input from
the other core's cache, and the next GEMM reads the new ``h`` back across (with OpenBLAS
on one thread the two add up exactly). Here each of P threads owns the hidden units
``j0..j1`` (``H/P`` of them) for the whole loop and computes, per step, exactly the rows
it then uses::

    forward, step t:   a[blk, j0:j1] = W[blk, j0:j1] @ z_t          (4 GEMMs, one a block)
                       gates, c[j0:j1], h[j0:j1] from a             (forward_step, ranged)
                       barrier                                      (h_t whole for step t+1)

    backward, step t:  dh[j0:j1] += dy_t[j0:j1];  d[blk, j0:j1], dc[j0:j1]  (backward_step)
                       barrier                                      (d_t whole)
                       dh[j0:j1] = W_hh^T[j0:j1, :] @ d_t          (one GEMM)

so what a thread writes in a step it reads again itself, and only ``h`` (forward) or ``d``
(backward) crosses between cores, once a step. The forward's GEMM ``z_t`` holds
``[h_{t-1}; x_t; 1]`` (the whole stacked input), so the input projection and bias ride in
the same products. The backward alternates two ``d`` buffers (a thread may start step
t+1's gate gradients while another still reads step t's ``d`` in its GEMM; it cannot get
two steps ahead, because step t+1's barrier waits for that other thread's step t+1).
Each GEMM is NumPy's own BLAS called from the piece on its thread
(:func:`.native.gemm`); the barrier is :func:`.native.barrier`; the gate math is
:mod:`.lstm`'s ``forward_step`` and ``backward_step`` over the thread's rows, so the
values are the loop's of :mod:`.lstm` in the forward (the same products, rows computed
separately) and in the backward (``dh``'s rows are the same dot products over 4H terms)
up to float32 rounding (the BLAS may block a product of fewer rows differently).

Pieces (:mod:`tinynet.blas_threads`, :func:`~tinynet.blas_threads.run_native`): piece
``k`` of ``n`` (``a // 8`` and ``n`` in OpenBLAS's call) reads the job's table ``b``, an
array of integers: ``b[0]`` the address of the integer parameters, then the arrays'
data addresses in the order of :func:`forward` and :func:`backward`.

float32 only, no mask (a padded batch keeps :mod:`.lstm`'s loop), on NumPy's OpenBLAS
(:func:`tinynet.cblas.gemm_address`).
"""
import numba
import numpy as np

from .lstm import backward_step, forward_step
from .native import NO_TRANS, address_to_pointer, barrier, gemm, piece_range, table_piece

@numba.njit(nogil=True, cache=True)
def _gemm(function, ilp64, m, n, k, a, lda, b, ldb, c, ldc):
    """``C (m x n) = A (m x k) @ B (k x n)``, row-major float32, at data addresses a, b, c."""
    gemm(function, ilp64, NO_TRANS, NO_TRANS, m, n, k, np.float32(1), a, lda, b, ldb,
         np.float32(0), c, ldc)


@table_piece
def forward_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of the forward loop. Parameters ``T, B, H, rows, reverse, gemm,
    ilp64, sched_yield, I, layouts``; arrays ``w (4H, rows)`` (rows [i; f; o; g]), ``zs
    (T+1, rows, B)``, ``cs (T+1, H, B)``, ``acts (T, 4H, B)``, ``tanh_c (T, H, B)``,
    ``products (T, 2H, B)``, ``x (T, B, I)``, ``zs_bm (T+1, B, rows)`` (both unread where
    ``layouts`` is 0) and ``flags`` (:func:`.native.new_flags`). Where ``layouts`` is 1
    the pieces also make the loop's two transposing copies, each its share of the steps:
    before the loop ``x``'s steps into their slots of ``zs`` (rows H..H+I,
    feature-major), after it ``zs`` batch-major into ``zs_bm`` (what the outputs and the
    backward's weight-gradient GEMM read)."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (10,))
    T, B, H, rows, reverse, gemm, ilp64, yield_function = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]
    I, layouts = p[8], p[9]
    zs = numba.carray(address_to_pointer(b[2], numba.float32), (T + 1, rows, B))
    cs = numba.carray(address_to_pointer(b[3], numba.float32), (T + 1, H, B))
    acts = numba.carray(address_to_pointer(b[4], numba.float32), (T, 4 * H, B))
    tanh_c = numba.carray(address_to_pointer(b[5], numba.float32), (T, H, B))
    products = numba.carray(address_to_pointer(b[6], numba.float32), (T, 2 * H, B))
    flags = address_to_pointer(b[9], numba.int64)
    first, end = H * k // pieces, H * (k + 1) // pieces
    if layouts:
        x = numba.carray(address_to_pointer(b[7], numba.float32), (T, B, I))
        lo, hi = piece_range(k, pieces, T)
        for t in range(lo, hi):
            slot = zs[t + 1 if reverse else t]
            for i in range(I):
                row = slot[H + i]
                for n in range(B):
                    row[n] = x[t, n, i]
        barrier(flags, pieces, k, 1, yield_function)    # every slot filled before step 0
    for s in range(T):
        t = T - 1 - s if reverse else s
        z_in, z_out = (t + 1, t) if reverse else (t, t + 1)
        if end > first:
            for block in range(4):      # a[block rows first..end] = W[same rows] @ z_t
                row = block * H + first
                _gemm(gemm, ilp64, end - first, B, rows, b[1] + 4 * row * rows, rows,
                      b[2] + 4 * z_in * rows * B, B, b[4] + 4 * (t * 4 * H + row) * B, B)
            forward_step(acts[t], cs[z_in], cs[z_out], tanh_c[t], products[t], zs[z_out, :H],
                         first, end)
        barrier(flags, pieces, k, s + 1 + layouts, yield_function)
    if layouts:                         # the last barrier: every step's h is in zs
        zs_bm = numba.carray(address_to_pointer(b[8], numba.float32), (T + 1, B, rows))
        lo, hi = piece_range(k, pieces, T + 1)
        for t in range(lo, hi):
            for n in range(B):
                dst = zs_bm[t, n]
                for r in range(rows):
                    dst[r] = zs[t, r, n]


@table_piece
def backward_piece(_width, pieces, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
    """Piece ``a // 8`` of the backward loop. Parameters ``T, B, H, reverse, gemm, ilp64,
    sched_yield, has_dy``; arrays ``acts (T, 4H, B)``, ``c_prev``, ``tanh_c``, ``dy``
    ``(T, H, B)`` (any, without dy), ``dh``, ``dc`` ``(H, B)`` (updated in place), ``d (2,
    4H, B)`` (scratch), ``d_gates (4H, T, B)``, ``w_hh_t (H, 4H)``, ``flags``."""
    k = a // 8
    p = numba.carray(address_to_pointer(b[0], numba.int64), (8,))
    T, B, H, reverse, gemm, ilp64, yield_function, has_dy = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]
    acts = numba.carray(address_to_pointer(b[1], numba.float32), (T, 4 * H, B))
    c_prev = numba.carray(address_to_pointer(b[2], numba.float32), (T, H, B))
    tanh_c = numba.carray(address_to_pointer(b[3], numba.float32), (T, H, B))
    dy = numba.carray(address_to_pointer(b[4], numba.float32), (T if has_dy else 0, H, B))
    dh = numba.carray(address_to_pointer(b[5], numba.float32), (H, B))
    dc = numba.carray(address_to_pointer(b[6], numba.float32), (H, B))
    d = numba.carray(address_to_pointer(b[7], numba.float32), (2, 4 * H, B))
    d_gates = numba.carray(address_to_pointer(b[8], numba.float32), (4 * H, T, B))
    flags = address_to_pointer(b[10], numba.int64)
    # no mask: an empty keep, and carry (read only with a mask) an empty view
    keep = numba.carray(address_to_pointer(b[6], numba.float32), (0, B))
    carry = numba.carray(address_to_pointer(b[6], numba.float32), (0, H, B))
    first, end = H * k // pieces, H * (k + 1) // pieces
    for s in range(T):
        t = s if reverse else T - 1 - s
        backward_step(acts, c_prev, tanh_c, dy, keep, dh, dc, d[s % 2], d_gates, carry, t,
                      first, end)
        barrier(flags, pieces, k, s + 1, yield_function)
        if end > first:                 # dh[first..end] = W_hh^T[first..end, :] @ d_t
            _gemm(gemm, ilp64, end - first, B, 4 * H, b[9] + 4 * first * 4 * H, 4 * H,
                  b[7] + 4 * (s % 2) * 4 * H * B, B, b[5] + 4 * first * B, B)
