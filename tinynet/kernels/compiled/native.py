"""What a native piece needs beyond plain Numba: pointers from addresses, a BLAS call, a barrier.

A native piece (:mod:`.pieces`) is a compiled C function that OpenBLAS's worker threads
call without the GIL. The activations' pieces are elementwise and each writes only its
own range, so they need nothing more. A piece that runs a whole time loop (the LSTM's,
:mod:`.lstm_loop`) also has to

* turn the integer addresses in the job's table into typed pointers
  (:func:`address_to_pointer`; ``numba.carray`` then makes arrays of them),
* call NumPy's own BLAS on its thread (:func:`gemm`, through the address of
  ``cblas_sgemm`` or ``cblas_dgemm`` that :func:`tinynet.cblas.gemm_address` gives: a
  product inside a piece runs on one thread, as :mod:`tinynet.blas_threads` arranges),
* wait, at the end of each time step, until every piece has finished that step
  (:func:`barrier`).

The barrier. Piece ``k`` publishes the number of steps it has finished in its own slot,
``flags[16 k]`` (one 128-byte line a piece, so two pieces' slots never share a cache
line), and then reads every slot until each has reached the same count::

    store_release(flags, 16 k, count)
    for m in pieces:  while load_acquire(flags, 16 m) < count:  pause

The release store orders the piece's writes of the step (its rows of ``h``, ``c``) before
its count; the acquire load orders another piece's reads after the count it saw, so once a
piece passes the barrier every other piece's rows of the step are visible to it. These
are LLVM's atomic load and store (plain ``mov`` on x86-64, whose ordering is already
this strong; they also stop the compiler from keeping the flag in a register). Between
reads the spin executes ``pause`` (x86: it tells the core a spin-wait is running), and
after :data:`SPINS_BEFORE_YIELD` reads it gives its core away once (``sched_yield``), so
that a barrier on a machine with more runnable threads than cores (a test run with many
workers) does not spin out a whole time slice while the piece it waits for cannot run.

Every piece of a job runs at once, each on its own thread: OpenBLAS gives each piece
but the first its own worker (a job has at most as many pieces as OpenBLAS has threads,
:func:`tinynet.blas_threads.run_native`), so a barrier always ends.
"""
import ctypes
import functools
import platform

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic

#: Reads of the flags between two ``sched_yield`` calls of a waiting piece (each read
#: with a ``pause``, ~40-140 cycles: some tens of microseconds, longer than a step).
SPINS_BEFORE_YIELD = 2000

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


@intrinsic
def address_to_pointer(typingctx, address, dtype):
    """``address`` (an integer) as a pointer to ``dtype`` values (``numba.float32``...)."""
    target = dtype.instance_type
    sig = types.CPointer(target)(address, dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return sig, codegen


@intrinsic
def load_acquire(typingctx, pointer, index):
    """``pointer[index]`` (8-byte integers), an atomic load with acquire ordering."""
    sig = pointer.dtype(pointer, index)

    def codegen(context, builder, signature, args):
        return builder.load_atomic(builder.gep(args[0], [args[1]]), "acquire", 8)
    return sig, codegen


@intrinsic
def store_release(typingctx, pointer, index, value):
    """``pointer[index] = value`` (8-byte integers), an atomic store with release ordering."""
    sig = types.void(pointer, index, pointer.dtype)

    def codegen(context, builder, signature, args):
        builder.store_atomic(args[2], builder.gep(args[0], [args[1]]), "release", 8)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def cpu_pause(typingctx):
    """The spin-wait hint (``pause`` on x86; nothing elsewhere)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _X86:
            pause = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
            builder.call(pause, [])
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def call_void(typingctx, function):
    """Calls the C function ``int function(void)`` at address ``function`` (``sched_yield``)."""
    sig = types.void(function)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [])
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def call_gemm(typingctx, function, order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
              beta, c, ldc):
    """``cblas_?gemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)``
    through its address ``function``; ``a``, ``b``, ``c`` are data addresses (integers).
    The integer arguments' Numba types are the C types passed: int32 for the three
    enums, the BLAS's integer (int32, or int64 for an ILP64 build) for the sizes."""
    sig = types.void(function, order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        values = list(args[1:])
        for i in (7, 10, 12):           # a, b, c: addresses -> void *
            values[i] = builder.inttoptr(values[i], ir.IntType(8).as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [v.type for v in values])
        builder.call(builder.inttoptr(args[0], fnty.as_pointer()), values)
        return context.get_dummy_value()
    return sig, codegen


_ROW_MAJOR, NO_TRANS, TRANS = np.int32(101), np.int32(111), np.int32(112)

#: ``flags`` slots a piece: 16 int64 = 128 bytes, so no two pieces' slots share a line.
FLAG_STRIDE = 16


@numba.njit(nogil=True, cache=True)
def gemm(function, ilp64, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """``C = alpha op(A) @ op(B) + beta C``, row-major, through the BLAS's ``cblas_?gemm``
    at ``function`` (:func:`tinynet.cblas.gemm_address` gives it and ``ilp64``, its
    integer width); ``a``, ``b``, ``c`` data addresses, ``trans_*`` :data:`NO_TRANS` or
    :data:`TRANS`, ``alpha`` and ``beta`` of the matrices' dtype (which picks the BLAS
    routine's scalar type: float32 for ``sgemm``, float64 for ``dgemm``)."""
    if ilp64:
        call_gemm(function, _ROW_MAJOR, trans_a, trans_b, np.int64(m), np.int64(n), np.int64(k),
                  alpha, a, np.int64(lda), b, np.int64(ldb), beta, c, np.int64(ldc))
    else:
        call_gemm(function, _ROW_MAJOR, trans_a, trans_b, np.int32(m), np.int32(n), np.int32(k),
                  alpha, a, np.int32(lda), b, np.int32(ldb), beta, c, np.int32(ldc))


@numba.njit(nogil=True, cache=True)
def barrier(flags, pieces, k, count, yield_function):
    """Piece ``k`` of ``pieces`` has finished ``count`` steps: publishes it in
    ``flags[16 k]`` (a pointer to int64) and returns once every piece has (see the
    module docstring)."""
    store_release(flags, FLAG_STRIDE * k, count)
    for m in range(pieces):
        spins = 0
        while load_acquire(flags, FLAG_STRIDE * m) < count:
            cpu_pause()
            spins += 1
            if spins == SPINS_BEFORE_YIELD:
                call_void(yield_function)
                spins = 0


#: The C signature OpenBLAS calls a piece with (:mod:`tinynet.blas_threads`), for a piece
#: that reads a table of integers in ``b`` (:func:`tinynet.blas_threads.run_native_job`):
#: ``piece(width, n, k, alpha, a, lda, b, ldb, c, ldc, buffer)``.
TABLE_PIECE = types.void(types.intp, types.intp, types.intp, types.float64, types.uintp,
                         types.intp, types.CPointer(types.intp), types.intp, types.voidptr,
                         types.intp, types.voidptr)

#: Compiles a function as such a piece, with the flags every compiled kernel has.
table_piece = numba.cfunc(TABLE_PIECE, nopython=True, nogil=True, cache=True,
                          fastmath={"contract", "reassoc"}, error_model="numpy")


@numba.njit(nogil=True, cache=True)
def piece_range(k, pieces, count):
    """``(first, end)`` of ``range(count)`` for piece ``k`` of ``pieces``: the split
    ``parallel_for`` makes (consecutive ranges whose sizes differ by at most one, the
    larger first; :func:`tinynet.backend.chunk_bounds`)."""
    q, r = count // pieces, count % pieces
    first = k * q + min(k, r)
    return first, first + q + (1 if k < r else 0)


@functools.lru_cache(maxsize=None)
def yield_address() -> int:
    """The address of the C library's ``sched_yield`` (``SwitchToThread`` on Windows)."""
    if platform.system() == "Windows":
        return ctypes.cast(ctypes.windll.kernel32.SwitchToThread, ctypes.c_void_p).value
    return ctypes.cast(ctypes.CDLL(None).sched_yield, ctypes.c_void_p).value


def new_flags(pieces: int):
    """Zeroed barrier flags for a job of ``pieces`` pieces."""
    return np.zeros(FLAG_STRIDE * pieces, dtype=np.int64)
