"""Compiled CPU kernels: loops NumPy cannot fuse, compiled by Numba (the ``jit`` extra).

Each module here holds plain Python loops over NumPy arrays, compiled on first call by
:data:`kernel`, and is imported only by a route that has asked
:func:`tinynet.backend.use_compiled` first, so Numba is imported the first time a
compiled kernel runs, never by ``import tinynet``. Every kernel has a NumPy route beside
it in the module that calls it; the two agree to rounding (each kernel's test runs both
with :func:`tinynet.testing.routes.on_both_routes`).

Why compiled code helps where NumPy is already calling C: a NumPy expression is a
sequence of whole-array passes, each reading and writing memory, and its small inner
loops (a 3x3 window, 16 channels) cannot be blocked into registers. A compiled loop
keeps its accumulators in registers across the whole window and makes one pass.

Threads: a kernel is compiled serial and takes the range of its outer loop it should
run (``lo, hi``); the caller splits that range with :func:`tinynet.backend.parallel_for`,
whose chunks run on OpenBLAS's worker threads, the ones already awake after the last
matrix product (docs/architecture.md, "Threads"). Numba's own parallel loops (OpenMP
threads) were the first design and were measured against that on this project's 2-core
machine: with batch norm and ReLU on OpenMP threads a ResNet-18 training step took 1.94x
the NumPy route's time, and the compiled im2col pieces made a 128->256 stride-2 conv's
forward + backward 2x slower, though each kernel alone was faster. OpenBLAS's workers
spin for ~0.1 s after each product, so a second pool's thread shares a core with a
spinning worker, and a spinning OpenMP thread slows the next product in turn.
``benchmarks/compiled_threads.py`` shows it on one kernel (a direct conv right after a
product; four runs on a quiet machine: OpenMP 18.9-21.0 ms, ``parallel_for`` chunks
17.2-18.7 ms, one thread 16.6-23.9 ms: the OpenMP pool never ahead). One pool it is.
A kernel whose chunks touch no Python object can also run as native pieces on those
workers, without the GIL (:mod:`.pieces`; the activations' passes do).

Compilation flags, the same for every kernel:

* ``fastmath={"contract", "reassoc"}``: fused multiply-adds, and sums reordered so they
  vectorise (the freedom a BLAS takes); no "no-NaN"/"no-Inf" assumptions, so NaN and Inf
  propagate as in NumPy;
* ``error_model="numpy"``: division by zero gives Inf/NaN, as in NumPy, not an exception;
* ``cache=True``: the machine code is kept in ``__pycache__`` and reused by later
  processes (the first call of each kernel and dtype otherwise compiles, 1-5 s);
* ``nogil=True``: the chunks of one call run side by side, and other Python threads (a
  data loader) keep running meanwhile.
"""
import numba
import numpy as np

#: The decorator every compiled kernel uses (see the module docstring for the flags).
kernel = numba.njit(fastmath={"contract", "reassoc"}, error_model="numpy", cache=True, nogil=True)

#: An index cast to unsigned, ``x[_u(i)]``: Numba tests every signed index for a
#: negative (Python's wraparound), a compare and select per access that can keep LLVM
#: from vectorising a loop whose index is computed (``pw + col``); an unsigned index
#: has no such test. Only for indices known to be in range (im2col's loops and the
#: Winograd tile rows' loader use it).
unsigned = np.uint64
