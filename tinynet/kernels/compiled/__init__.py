"""Compiled CPU kernels: loops NumPy cannot fuse, compiled by Numba (the ``jit`` extra).

Each module here holds plain Python loops over NumPy arrays, compiled on first call by
:data:`kernel`, and is imported only by a route that has asked
:func:`tinynet.backend.use_compiled` first, so Numba is imported the first time a
compiled kernel runs, never by ``import tinynet``. Every kernel has a NumPy route beside
it in the module that calls it; the two agree to rounding (tests/kernels/test_compiled.py
and each kernel's own test run both).

Why compiled code helps where NumPy is already calling C: a NumPy expression is a
sequence of whole-array passes, each reading and writing memory, and its small inner
loops (a 3x3 window, 16 channels) cannot be blocked into registers. A compiled loop
keeps its accumulators in registers across the whole window and makes one pass; Numba's
``prange`` splits the outer loop over the cores (OpenMP threads, as many as
:func:`tinynet.get_num_threads`).

Compilation flags, the same for every kernel:

* ``fastmath={"contract", "reassoc"}``: fused multiply-adds, and reductions reordered so
  they vectorise (the same freedom a BLAS takes); no "no-NaN"/"no-Inf" assumptions, so
  NaN and Inf propagate as in NumPy;
* ``error_model="numpy"``: division by zero gives Inf/NaN, as in NumPy, not an exception;
* ``cache=True``: the machine code is kept in ``__pycache__`` and reused by later
  processes (the first call of each kernel and dtype otherwise compiles for 1-5 s);
* ``nogil=True``: other Python threads (a data loader) keep running meanwhile.
"""
import numba

#: The decorator every compiled kernel uses (see the module docstring for the flags).
kernel = numba.njit(parallel=True, fastmath={"contract", "reassoc"}, error_model="numpy",
                    cache=True, nogil=True)

#: The same, for kernels with no parallel loop (small jobs, or called per chunk).
serial_kernel = numba.njit(fastmath={"contract", "reassoc"}, error_model="numpy", cache=True,
                           nogil=True)

prange = numba.prange

from tinynet.backend import _set_compiled_threads   # noqa: E402

_set_compiled_threads()     # Numba's threads follow tinynet.set_num_threads from now on
