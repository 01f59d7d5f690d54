"""The only module that knows NumPy from CuPy.

Everything numerical in tinynet is written once against an array namespace ``xp``,
obtained from the arrays themselves with :func:`get_array_module`. The handful of places
where the two libraries differ live here:

* devices: parsing ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and moving arrays between them;
* strided views (``as_strided``, ``sliding_window_view``);
* unbuffered scatter-add (``np.add.at`` vs ``cupyx.scatter_add``);
* compiled elementwise kernels (CuPy only; callers keep an ``xp`` fallback); every kernel
  tinynet defines is declared once with :func:`define_elementwise_kernel`, so a test can
  compile them all;
* threads: the BLAS thread count, and NumPy work run in chunks on OpenBLAS's own
  worker threads (:mod:`tinynet.blas_threads`) or a small Python pool
  (:func:`set_num_threads`, :func:`parallel_for`);
* a matrix product that adds into its output (:func:`matmul_into`: NumPy's own BLAS
  called directly through :mod:`tinynet.cblas`, where ``matmul`` cannot);
* strided copies of short runs (:func:`copy`: each run viewed as one element of a void
  dtype, which CuPy does not have);
* the error function ``erf`` (neither NumPy nor CuPy has it in the main namespace);
* compiled CPU kernels (:func:`use_compiled`): a few loops NumPy cannot fuse, written in
  Python and compiled by Numba where the ``jit`` extra is installed
  (:mod:`tinynet.kernels.compiled`); on NumPy arrays only, each with a NumPy route beside
  it that runs when Numba is absent or ``TINYNET_JIT=0``.

CuPy is imported lazily, the first time a CUDA device is asked for, and Numba the first
time a compiled kernel runs, so importing tinynet needs NumPy only.

A test stand-in for CUDA (``tinynet.testing.fakecuda``: NumPy arrays that follow CuPy's
rules) can be plugged in with :func:`install_stand_in`; it takes the CuPy branches below
with its own CuPy-like namespace, is never a GPU, and is not offered to users.
"""
from __future__ import annotations

import os
import threading
from typing import Any, NamedTuple

import numpy

from . import blas_threads as _blas_workers
from . import cblas as _cblas

__all__ = [
    "Device", "device", "numpy", "get_array_module", "device_of", "to_device",
    "is_cuda_available", "set_default_device", "get_default_device", "as_strided",
    "sliding_window_view", "scatter_add", "elementwise_kernel", "asnumpy", "erf",
    "ElementwiseKernelSource", "define_elementwise_kernel", "KERNEL_SOURCES",
    "install_stand_in", "is_device_string",
    "synchronize", "set_num_threads", "get_num_threads", "parallel_for", "parallel_chunks",
    "sum_in_order",
    "matmul", "matmul_into", "gemms_on_pool", "minimum_scalar",
    "use_compiled", "set_compiled", "compiled_available",
]

_cupy = None            # the cupy module once imported
_cupy_error = None      # why CUDA is unavailable, once known
_stand_in = None        # a test stand-in for CUDA (tinynet.testing.fakecuda), once installed


class Device:
    """A device: ``Device("cpu")``, ``Device("cuda")`` (index 0) or ``Device("cuda:1")``."""

    __slots__ = ("type", "index")

    def __init__(self, spec: "str | Device" = "cpu"):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got {type(spec).__name__}")
        kind, _, index = spec.strip().lower().partition(":")
        if kind == "cpu" and not index:
            self.type, self.index = "cpu", None
        elif kind in ("cuda", "gpu") and (not index or index.isdigit()):
            self.type, self.index = "cuda", int(index) if index else 0
        elif _stand_in is not None and kind == _stand_in.name and index in ("", "0"):
            self.type, self.index = kind, 0
        else:
            raise ValueError(f"device: unknown device {spec!r}; expected 'cpu', 'cuda' or 'cuda:N'")

    @property
    def xp(self):
        """The array module that holds arrays on this device."""
        if self.type == "cpu":
            return numpy
        if _stand_in is not None and self.type == _stand_in.name:
            return _stand_in.xp
        return _require_cupy(self)

    def __str__(self) -> str:
        return "cpu" if self.type == "cpu" else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        text = f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}")
        if _stand_in is not None and self.type == _stand_in.name:
            text += f", stand_in={_stand_in.description!r}"
        return text + ")"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except ValueError:
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


def is_device_string(spec) -> bool:
    """True when ``spec`` names a device type (``"cpu"``, ``"cuda:1"``...) rather than a dtype."""
    if not isinstance(spec, str):
        return False
    kind = spec.split(":")[0].strip().lower()
    return kind in ("cpu", "cuda", "gpu") or (_stand_in is not None and kind == _stand_in.name)


def install_stand_in(stand_in) -> None:
    """Plugs in a test stand-in for CUDA (see ``tinynet.testing.fakecuda``); not a user device.

    ``stand_in`` has ``name`` (its device type), ``description`` (shown in the device's
    repr), ``xp`` (a CuPy-like namespace: ``ndarray``, ``asarray``, ``cuda.Device``,
    ``lib.stride_tricks``, ``ElementwiseKernel``...) and ``cupyx`` (``scatter_add``).
    Its arrays then take the CuPy branches of this module.
    """
    global _stand_in
    _stand_in = stand_in


def device(spec: "str | Device") -> Device:
    """Parses a device string; an unknown one is a ``ValueError``."""
    return Device(spec)


CPU = Device("cpu")
_default_device = CPU


def set_default_device(spec: "str | Device") -> None:
    """Device on which factories (``tensor``, ``zeros``, ``randn``...) create tensors."""
    global _default_device
    d = Device(spec)
    if d.type == "cuda":
        _require_cupy(d)
    _default_device = d


def get_default_device() -> Device:
    return _default_device


def _import_cupy():
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            import cupy
        except ImportError as e:  # no CuPy at all
            _cupy_error = (f"CUDA requested but CuPy is not installed ({e}); "
                           "install tinynet[cuda] (cupy-cuda12x) on a machine with an NVIDIA GPU")
            return None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CuPy without a driver or GPU raises CUDARuntimeError
            _cupy_error = f"CUDA requested but CuPy found no usable GPU: {type(e).__name__}: {e}"
            return None
        if count < 1:
            _cupy_error = "CUDA requested but CuPy found no usable GPU (0 devices)"
            return None
        _cupy = cupy
    return _cupy


def _require_cupy(dev: Device | None = None):
    cp = _import_cupy()
    if cp is None:
        raise RuntimeError(_cupy_error)
    if dev is not None and dev.index is not None and dev.index >= cp.cuda.runtime.getDeviceCount():
        raise RuntimeError(f"CUDA device {dev} requested but only "
                           f"{cp.cuda.runtime.getDeviceCount()} GPU(s) are visible")
    return cp


def is_cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    return _import_cupy() is not None


def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, or None when it can."""
    return None if is_cuda_available() else _cupy_error


def _device_module(a: Any):
    """``cupy`` (or the stand-in's namespace) when ``a`` is one of its arrays, else None."""
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy
    if _stand_in is not None and isinstance(a, _stand_in.xp.ndarray):
        return _stand_in.xp
    return None


def _is_cupy_array(a: Any) -> bool:
    return _device_module(a) is not None


def get_array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if _cupy is not None or _stand_in is not None:
        for a in arrays:
            xp = _device_module(a)
            if xp is not None:
                return xp
    return numpy


def device_of(array) -> Device:
    """The device holding ``array``."""
    xp = _device_module(array)
    if xp is None:
        return CPU
    return Device(f"{'cuda' if xp is _cupy else _stand_in.name}:{array.device.id}")


def to_device(array, dev: "str | Device"):
    """Copies ``array`` to ``dev`` (no copy when it is already there)."""
    dev = Device(dev)
    if dev.type == "cpu":
        return asnumpy(array)
    cp = dev.xp
    if _device_module(array) is not None:
        if device_of(array) == dev:
            return array
        array = asnumpy(array)        # between a GPU and the stand-in: through the host
    with cp.cuda.Device(dev.index):
        return cp.asarray(array)


def asnumpy(array) -> numpy.ndarray:
    """A NumPy array on the host with the contents of ``array``."""
    return array.get() if _is_cupy_array(array) else numpy.asarray(array)


_SHAPE_ONLY: dict = {}     # (namespace, device, dtype, shape) -> shape_only's view
_SHAPE_ONLY_MAX = 1024     # views kept before the cache starts over


def shape_only(a):
    """A read-only array with ``a``'s shape and dtype on ``a``'s device that holds no
    memory of its own: a zero broadcast to the shape (strides all 0), one per shape,
    dtype and device, made once. For an op's input whose backward reads only the shape,
    dtype and device (:attr:`tinynet.autograd.Function.unread_inputs`), so that the
    graph does not keep the input's array alive."""
    xp = _device_module(a)
    key = (xp, None if xp is None else a.device.id, a.dtype, a.shape)
    view = _SHAPE_ONLY.get(key)
    if view is None:
        if len(_SHAPE_ONLY) >= _SHAPE_ONLY_MAX:
            _SHAPE_ONLY.clear()
        if xp is None:
            view = numpy.broadcast_to(numpy.zeros((), a.dtype), a.shape)
        else:
            with xp.cuda.Device(a.device.id):
                view = xp.broadcast_to(xp.zeros((), a.dtype), a.shape)
        _SHAPE_ONLY[key] = view
    return view


def as_strided(x, shape, strides):
    """A read-only view of ``x`` with the given shape and byte strides (no copy). A
    C-contiguous NumPy ``x`` is viewed through the ``ndarray`` constructor, which also
    refuses a view reaching past ``x``'s memory (2.3 µs where
    ``numpy.lib.stride_tricks.as_strided`` takes 4-5, unchecked: im2col calls this per
    convolution)."""
    xp = _device_module(x)
    if xp is not None:
        return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)
    if type(x) is numpy.ndarray and x.flags.c_contiguous:
        view = numpy.ndarray(shape, x.dtype, x, 0, strides)
        view.flags.writeable = False
        return view
    return numpy.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, writeable=False)


def sliding_window_view(x, window_shape, axis=None):
    """Read-only view of all windows of ``window_shape`` along ``axis`` (NumPy semantics)."""
    xp = get_array_module(x)
    return xp.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)


def scatter_add(target, indices, values) -> None:
    """``target[indices] += values`` accumulating repeated indices (unbuffered), in place."""
    xp = _device_module(target)
    if xp is None:
        numpy.add.at(target, indices, values)
    elif xp is _cupy:
        import cupyx
        cupyx.scatter_add(target, indices, values)
    else:
        _stand_in.cupyx.scatter_add(target, indices, values)


class ElementwiseKernelSource(NamedTuple):
    """The four strings of a CuPy ``ElementwiseKernel``: parameters, body (CUDA C++), name."""
    in_params: str
    out_params: str
    operation: str
    name: str


KERNEL_SOURCES: "list[ElementwiseKernelSource]" = []   # every kernel tinynet defines


def define_elementwise_kernel(in_params: str, out_params: str, operation: str,
                              name: str) -> ElementwiseKernelSource:
    """Declares a kernel (at import time) so tests can compile every one; returns its source."""
    source = ElementwiseKernelSource(in_params, out_params, operation, name)
    if any(k.name == name and k != source for k in KERNEL_SOURCES):
        raise ValueError(f"define_elementwise_kernel: two different kernels are named {name!r}")
    if source not in KERNEL_SOURCES:
        KERNEL_SOURCES.append(source)
    return source


def synchronize() -> None:
    """Waits for all queued GPU work on the current CUDA device; a no-op when CuPy has not
    been loaded (CPU work is synchronous). Timers call it around what they time."""
    if _cupy is not None:
        _cupy.cuda.Device().synchronize()


# --------------------------------------------------------------------------- threads
# NumPy releases the GIL inside ufunc loops, copies and fancy indexing, so threads can run
# chunks of one large array operation on several cores at once. The calling thread runs
# the first chunk itself; the others run on OpenBLAS's own worker threads where that
# works (tinynet.blas_threads: after a product those workers spin on the other cores, so
# a thread of one's own would only share a core with them), else on a Python pool of
# ``get_num_threads() - 1`` workers.
_num_threads = None      # set by set_num_threads (or TINYNET_NUM_THREADS); None = all cores
_pool = None             # concurrent.futures.ThreadPoolExecutor, made on first use
_in_chunk = threading.local()    # .active: this thread is running a chunk of parallel_for
_blas_limiter = None     # threadpoolctl's limiter, kept alive so its limit stays in force
_blas_threads = None     # the BLAS thread count set_num_threads applied (None: untouched)

#: Smallest chunk worth a thread, in bytes touched: below this, handing a chunk to a
#: worker (~20-50 µs) costs more than it saves.
parallel_grain = 1 << 20

#: Smallest piece worth a thread for a native job (:func:`native_chunks`), in bytes
#: touched: its pieces take no GIL, so a worker costs only its wake-up. Thirty-first
#: session, 2-core Intel guest, image-by-image convolutions in two pieces instead of one:
#: the U-Net's N2 64->32 2x2 up-convolution's input and weight gradients (1.5 MB) 0.47 /
#: 0.51x, 128->64 (0.8 MB) 0.74 / 0.72x, N2 64->128 16x16 3x3 (0.6 MB) 0.69 / 0.71x.
native_grain = 1 << 18

#: Run :func:`parallel_for`'s chunks on OpenBLAS's worker threads where possible
#: (:mod:`tinynet.blas_threads`); False keeps them on the Python pool.
chunks_on_blas_threads = True


_cores = None           # _usable_cores' answer, read once: every parallel_for asks for it


def _usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), as at the first call."""
    global _cores
    if _cores is None:
        try:
            _cores = max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            _cores = max(1, os.cpu_count() or 1)
    return _cores


def _check_threads(n, source) -> int:
    if isinstance(n, bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
        raise TypeError(f"set_num_threads: {source} must be a positive int, got {n!r}")
    if int(n) < 1:
        raise ValueError(f"set_num_threads: {source} must be a positive int, got {n!r}")
    return int(n)


def set_num_threads(n: int, blas: int | None = None) -> None:
    """Sets the threads tinynet uses on the CPU, like ``torch.set_num_threads``: how many
    threads tinynet's chunked array work uses (:func:`parallel_for`), and the BLAS
    library's threads (through threadpoolctl, imported on this call; without it only the
    first changes).

    ``blas`` (default: ``n``) sets the BLAS threads separately. ``set_num_threads(n,
    blas=1)`` makes tinynet split its large matrix products into ``n`` column (or row)
    blocks on its own pool, each a one-thread BLAS call (:func:`matmul`): OpenBLAS's
    threads busy-wait for each other, which on a machine whose cores are shared with
    other processes made 2-thread GEMMs 1.5-9x slower than 1-thread ones here, while
    the pool's threads sleep when idle (measured: docs/profiler.md, benchmarks/threads.py).
    """
    global _num_threads, _pool, _blas_limiter, _blas_threads
    n = _check_threads(n, "n")
    blas = n if blas is None else _check_threads(blas, "blas")
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _num_threads = n
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    _blas_limiter = threadpool_limits(limits=blas, user_api="blas")
    _blas_threads = blas


def get_num_threads() -> int:
    """The threads tinynet uses on the CPU: the last :func:`set_num_threads`, else
    ``TINYNET_NUM_THREADS``, else the number of cores this process may run on."""
    if _num_threads is not None:
        return _num_threads
    env = os.environ.get("TINYNET_NUM_THREADS")
    if env:
        try:
            return _check_threads(int(env), "TINYNET_NUM_THREADS")
        except ValueError:
            raise ValueError(f"TINYNET_NUM_THREADS must be a positive int, got {env!r}") from None
    return _usable_cores()


def parallel_chunks(count: int, nbytes: int = 0, like=None, calls: int = 1, grain: int | None = None) -> int:
    """How many chunks :func:`parallel_for` would run the same job in (1: in the caller);
    ``grain`` in place of :data:`parallel_grain` (:func:`native_chunks`)."""
    if like is not None and _is_cupy_array(like):
        return 1
    grains = nbytes // ((parallel_grain if grain is None else grain) * calls)
    if grains <= 1 or count <= 1:     # small: no need to ask how many threads there are
        return 1
    return min(get_num_threads(), count, grains)


def chunk_bounds(count: int, chunks: int) -> list:
    """Where :func:`parallel_for`'s chunks start, then ``count``: consecutive ranges whose
    sizes differ by at most one, the larger first (OpenBLAS's own split, so that both
    routes cut the same way).

    >>> chunk_bounds(11, 2), chunk_bounds(12, 3)
    ([0, 6, 11], [0, 4, 8, 12])
    """
    bounds = [0]
    for k in range(chunks):
        bounds.append(bounds[-1] + -(-(count - bounds[-1]) // (chunks - k)))
    return bounds


def native_chunks(count: int, nbytes: int = 0, like=None) -> int:
    """How many pieces a native job over ``count`` items touching ``nbytes`` bytes runs
    in: :func:`parallel_chunks` with :data:`native_grain` (a native piece pays no GIL
    hand-over, so smaller jobs split)."""
    return parallel_chunks(count, nbytes, like, grain=native_grain)


def parallel_for(count: int, fn, nbytes: int = 0, like=None, calls: int = 1, native=None) -> None:
    """Calls ``fn(start, stop)`` over consecutive chunks covering ``range(count)``, on up
    to :func:`get_num_threads` threads at once, and waits for all of them.

    ``nbytes`` (the bytes the whole job reads and writes) sets how many chunks are worth
    it: at most one per :data:`parallel_grain` bytes and NumPy call, where ``calls`` is
    how many NumPy calls each chunk makes over its share of the data (a chain of
    passes). Two threads take turns at the GIL around every call, so a chunk of many
    short calls costs a hand-over each (measured on a 2-core guest: ten passes of 256 kB
    per chunk 1.45x slower on two threads than on one, of 1 MB 0.69x). Small jobs, a
    single thread, work on a CuPy array ``like`` (the GPU is already parallel) and calls
    made from inside a chunk run ``fn(0, count)`` in the caller. Otherwise the caller
    runs the first chunk and OpenBLAS's worker threads the others
    (:mod:`tinynet.blas_threads`), or, where that cannot be used (no OpenBLAS, more
    chunks than its threads, as with BLAS on one thread for :func:`gemms_on_pool`, or
    :data:`chunks_on_blas_threads` False), a Python thread pool. ``fn`` must write only
    its own chunk.
    An exception in any chunk is raised here after all chunks have finished.

    ``native``, for a compiled kernel: a function returning ``(address, pointers,
    scalar)`` of the same job as a native piece (:mod:`tinynet.kernels.compiled.pieces`),
    called only when the job runs in chunks; its chunks then run on OpenBLAS's workers
    without the GIL (:func:`tinynet.blas_threads.run_native`), and ``fn`` only where that
    cannot run.

    >>> import numpy as np
    >>> x = np.arange(8.0)
    >>> def double(lo, hi): x[lo:hi] *= 2
    >>> parallel_for(len(x), double, nbytes=x.nbytes)
    >>> x.tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]
    """
    global _pool
    chunks = parallel_chunks(count, nbytes, like, calls)
    if chunks <= 1 or getattr(_in_chunk, "active", False):    # small, or nested: in place
        fn(0, count)
        return

    def chunk(lo, hi):
        _in_chunk.active = True
        try:
            fn(lo, hi)
        finally:
            _in_chunk.active = False
    # OpenBLAS's workers when they can: not with fewer OpenBLAS threads than chunks, as
    # under set_num_threads(n, blas=1), whose chunks are GEMMs that need threads of their own
    if chunks_on_blas_threads and native is not None and _blas_workers.run_native(count, chunks, *native()):
        return
    if chunks_on_blas_threads and _blas_workers.run(count, chunks, chunk):
        return
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor
        _pool = ThreadPoolExecutor(max_workers=get_num_threads() - 1,
                                   thread_name_prefix="tinynet")
    bounds = chunk_bounds(count, chunks)
    futures = [_pool.submit(chunk, bounds[k], bounds[k + 1]) for k in range(1, chunks)]
    error = None
    try:
        chunk(bounds[0], bounds[1])
    except BaseException as e:  # still wait: the workers write into the caller's arrays
        error = e
    for f in futures:
        try:
            f.result()
        except BaseException as e:
            error = error or e
    if error is not None:
        raise error


def sum_in_order(partials):
    """The sum of the ``(start, array)`` partials that :func:`parallel_for`'s chunks
    appended, added in the order of their starts: the same sums whichever chunk ended
    first. Adds into the first partial (each chunk made its own)."""
    partials.sort(key=lambda p: p[0])
    total = partials[0][1]
    for _, part in partials[1:]:
        total += part
    return total


#: Bytes per block of :func:`parallel_blocks`: about the L2 cache of one core (1 MiB on
#: the project's EPYC guests), so that a block's passes find it still cached.
block_bytes = 1 << 20


def parallel_blocks(count: int, fn, item_bytes: int, like=None) -> None:
    """Calls ``fn(start, stop)`` over blocks of about :data:`block_bytes` of items (each
    ``item_bytes`` bytes touched) covering ``range(count)``, consecutive blocks grouped
    into chunks that run side by side as in :func:`parallel_for`.

    For work that makes several passes over its data (a chain of ufuncs, strided sweeps):
    over a whole large array each pass streams it through memory again, over a block the
    later passes find it in the core's L2 cache. On a CuPy array ``like`` there is one
    block (a kernel launch per block would cost more than it saves).

    >>> import numpy as np
    >>> x = np.arange(6.0)
    >>> def square_plus_one(lo, hi): x[lo:hi] **= 2; x[lo:hi] += 1
    >>> parallel_blocks(len(x), square_plus_one, item_bytes=x.itemsize)
    >>> x.tolist()
    [1.0, 2.0, 5.0, 10.0, 17.0, 26.0]
    """
    if like is not None and _is_cupy_array(like):
        fn(0, count)
        return
    per_block = max(1, block_bytes // max(1, item_bytes))

    def blocks(lo, hi):
        for b0 in range(lo, hi, per_block):
            fn(b0, min(hi, b0 + per_block))
    parallel_for(count, blocks, nbytes=count * item_bytes, like=like)


def gemms_on_pool() -> bool:
    """True when GEMMs may run side by side on tinynet's pool: ``set_num_threads(n,
    blas=1)`` with n > 1. Otherwise each BLAS call already uses the BLAS threads, and
    running several at once would oversubscribe the cores."""
    return _num_threads is not None and _num_threads > 1 and _blas_threads == 1


def matmul(a, b):
    """``a @ b`` for 2-D arrays; split into blocks on tinynet's pool when BLAS was set to
    one thread by ``set_num_threads(n, blas=1)`` with n > 1 and the product is large.

    Blocks: columns of ``b`` (and of the result) when the result is wide, else rows of
    ``a``, else the inner dimension K (partial products summed), each block one BLAS call
    that releases the GIL. Otherwise (the default, CuPy arrays, small products) it is
    exactly ``a @ b``.
    """
    n = _num_threads
    if (not gemms_on_pool() or _is_cupy_array(a)
            or a.ndim != 2 or b.ndim != 2 or a.shape[0] * a.shape[1] * b.shape[1] < (1 << 22)):
        return a @ b
    M, K = a.shape
    L = b.shape[1]
    out = numpy.empty((M, L), dtype=numpy.result_type(a, b))
    every_thread = n * parallel_grain     # as if large enough for one chunk per thread
    if L >= 256 * n:
        parallel_for(L, lambda lo, hi: numpy.matmul(a, b[:, lo:hi], out=out[:, lo:hi]),
                     nbytes=every_thread)
    elif M >= 64 * n:
        parallel_for(M, lambda lo, hi: numpy.matmul(a[lo:hi], b, out=out[lo:hi]),
                     nbytes=every_thread)
    else:
        bounds = [K * k // n for k in range(n + 1)]
        parts = [None] * n

        def block(lo, hi):
            for k in range(lo, hi):
                parts[k] = numpy.matmul(a[:, bounds[k]:bounds[k + 1]], b[bounds[k]:bounds[k + 1]])
        parallel_for(n, block, nbytes=every_thread)
        numpy.add(parts[0], parts[1], out=out)
        for p in parts[2:]:
            out += p
    return out


def matmul_into(a, b, out, accumulate: bool = False):
    """``out[...] = a @ b``, or ``out += a @ b`` with ``accumulate``, for 2-D arrays;
    returns ``out``.

    ``out`` may be a view into a larger array (a band of an image's output rows, one
    kernel row's block of a weight gradient). On NumPy arrays the product is one call to
    NumPy's own BLAS with β = 1 or 0 (:mod:`tinynet.cblas`), which adds the product in as
    it computes it and writes the view where it lies. Without that BLAS, and on CuPy
    arrays, it is ``xp.matmul`` (plus a temporary and an add when accumulating): the
    same values up to rounding.
    """
    if not _is_cupy_array(out) and _cblas.gemm(a, b, out, beta=1.0 if accumulate else 0.0):
        return out
    xp = get_array_module(out)
    if accumulate:
        out += xp.matmul(a, b)
    else:
        xp.matmul(a, b, out=out)
    return out


_erf_host = None


def erf(x):
    """The error function, elementwise, to full float64 accuracy.

    CuPy arrays use ``cupyx.scipy.special.erf``; NumPy arrays use ``scipy.special.erf``
    when SciPy is installed, else ``math.erf`` element by element (exact, slower).
    """
    global _erf_host
    xp = _device_module(x)
    if xp is not None and xp is _cupy:
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)
    if xp is not None:
        return _stand_in.cupyx.scipy.special.erf(x)
    if _erf_host is None:
        try:
            from scipy.special import erf as _erf_host
        except ImportError:
            import math
            _erf_host = numpy.vectorize(math.erf, otypes=[numpy.float64])
    return numpy.asarray(_erf_host(x), dtype=x.dtype)


_avx512 = None          # cpu_has_avx512's answer, read once


def cpu_has_avx512() -> bool:
    """Whether NumPy found AVX-512F on this CPU (its runtime dispatch table, read once:
    conv and LSTM calls ask on every call). Kernels whose speed was measured to depend
    on it ask here."""
    global _avx512
    if _avx512 is None:
        try:
            from numpy._core._multiarray_umath import __cpu_features__
        except ImportError:       # NumPy < 2
            try:
                from numpy.core._multiarray_umath import __cpu_features__
            except ImportError:
                __cpu_features__ = {}
        _avx512 = bool(__cpu_features__.get("AVX512F"))
    return _avx512


#: OpenBLAS kernel names (``openblas_get_corename``, lower case) built on AVX-512.
_AVX512_BLAS_KERNELS = frozenset({"skylakex", "cooperlake", "sapphirerapids"})
_blas_avx512 = None     # blas_has_avx512's answer, read once


def blas_has_avx512() -> bool:
    """Whether NumPy's BLAS runs AVX-512 GEMM kernels: the kernels OpenBLAS chose
    (:func:`tinynet.cblas.corename`), which ``OPENBLAS_CORETYPE`` can hold below the CPU
    (``Haswell`` on an AVX-512 CPU); :func:`cpu_has_avx512` where that is unknown (another
    BLAS). Kernels whose choice was measured to depend on the GEMM's kernels ask here,
    those that depend on NumPy's own loops ask :func:`cpu_has_avx512`."""
    global _blas_avx512
    if _blas_avx512 is None:
        name = _cblas.corename()
        _blas_avx512 = (cpu_has_avx512() if name is None
                        else name.lower() in _AVX512_BLAS_KERNELS)
    return _blas_avx512


_simd_loops: dict = {}      # (ufunc name, dtype) -> bool


def numpy_has_simd_loop(name: str, dtype) -> bool:
    """Whether NumPy runs ufunc ``name`` on one-``dtype`` arrays with a loop built for a
    CPU above its baseline, on this CPU (``numpy.lib.introspect.opt_func_info``, NumPy
    >= 2.0; False where it cannot tell).

    Some of NumPy's transcendental loops exist only for AVX-512 (``expm1``, ``exp2``,
    ``log1p``: Intel's SVML). Without it they fall back to a scalar loop 20-40x slower
    (float32 ``expm1``: 13 against 0.36 ns per element, measured on one AVX-512 EPYC with
    and without ``NPY_DISABLE_CPU_FEATURES``), so a kernel that could write the same value
    with another ufunc asks here which one is fast."""
    key = (name, dtype)             # as given (a dtype or a scalar type): hashing is cheap
    found = _simd_loops.get(key)
    if found is None:
        try:
            from numpy.lib.introspect import opt_func_info
            info = opt_func_info(func_name=f"^{name}$", signature=numpy.dtype(dtype).name)[name]
            found = any(not str(loop.get("current", "baseline")).startswith("baseline")
                        for loop in info.values())
        except (ImportError, KeyError, TypeError, AttributeError):
            found = False
        _simd_loops[key] = found
    return found


#: Longest contiguous run, in bytes, that :func:`copy` moves as one opaque element.
RUN_BYTES = 256
#: Fewest runs for which :func:`copy` builds its void views.
_MIN_RUNS = 512
_run_dtypes: dict = {}      # run size in bytes -> its void dtype


def copy(dst, src):
    """``dst[...] = src`` for two arrays of one shape and dtype; returns ``dst``.

    NumPy's strided copy pays about 20 ns per contiguous run it walks (its inner loop
    restarts for every run), so a copy made of short runs, like im2col's rows of ``Wo``
    values, costs far more than its bytes. When both arrays' innermost axes are contiguous
    for at most :data:`RUN_BYTES` (and not throughout), each run is viewed as one element
    of a void dtype of the run's size: the inner loop then walks runs, moving each with
    one fixed-size memory copy (runs of 4-32 float32: 0.4-0.6x the time; 56-64: 0.73x;
    about 112 and more: equal; measured on this project's AVX2 EPYC guest). The bytes
    moved are the same, so the result is identical. Other arrays (CuPy's, broadcast or
    strided innermost axes, long runs) go to OpenBLAS's transposes where they are one
    (:func:`_copy_by_transposes`: NumPy arrays of at least :data:`_MIN_TRANSPOSE_BYTES`
    whose contiguous axis moved), and to ``dst[...] = src`` otherwise."""
    if (type(dst) is numpy.ndarray and type(src) is numpy.ndarray and dst.ndim >= 2
            and dst.strides[-1] == src.strides[-1] == dst.itemsize
            and dst.shape == src.shape and dst.dtype == src.dtype):
        shape, run, axis = dst.shape, dst.itemsize, dst.ndim
        while axis > 0 and (shape[axis - 1] == 1 or dst.strides[axis - 1] == src.strides[axis - 1] == run):
            axis -= 1
            run *= shape[axis]
        # a few hundred runs save less than the views cost (about 4 us)
        if 0 < axis and run <= RUN_BYTES and dst.nbytes >= _MIN_RUNS * run:
            kind = _run_dtypes.get(run)
            if kind is None:
                kind = _run_dtypes[run] = numpy.dtype((numpy.void, run))
            rows = shape[:axis] + (-1,)
            numpy.copyto(dst.reshape(rows).view(numpy.uint8).view(kind),
                         src.reshape(rows).view(numpy.uint8).view(kind))
            return dst
    if _copy_by_transposes(dst, src):
        return dst
    dst[...] = src
    return dst


def copy_add(dst, src, addend):
    """``dst[...] = src + addend`` (``addend`` broadcasting against ``dst``); returns ``dst``.

    A copy that :func:`copy` makes with BLAS transposes takes the add as a second,
    contiguous pass: 0.41-0.80x the time of NumPy's add, which is fused but reads a
    transposed ``src`` element by element (a convolution's batch-innermost product
    returned to NCHW with its bias). Every other pair, CuPy's included, is NumPy's (or
    CuPy's) one fused pass, which beat the two passes where the copy stayed NumPy's
    (1.00-1.12x)."""
    if _copy_by_transposes(dst, src):
        dst += addend
    else:
        get_array_module(dst).add(src, addend, out=dst)
    return dst


def blas_transposes(like=None) -> bool:
    """Whether :func:`copy` makes large transposing copies of float arrays with BLAS
    (:func:`tinynet.cblas.transpose`: NumPy's OpenBLAS found), 6-11x faster than NumPy's;
    False for a ``like`` that is not a NumPy array (CuPy's copies are CuPy's)."""
    return (like is None or type(like) is numpy.ndarray) and _cblas.can_transpose(numpy.float32)


#: Smallest copy, in bytes, that :func:`copy` hands to BLAS transposes: below it NumPy's
#: copy stays in cache and costs less than the stride analysis (64x64 float32: NumPy
#: 1.1 µs, BLAS 3.3; 256x256: 54 against 10).
_MIN_TRANSPOSE_BYTES = 64 << 10
#: Fewest values along the source's contiguous axis for a BLAS transpose. NumPy copies
#: along the destination's rows; with a short source row (1024x8 float32 to 8x1024) the
#: values it reads sit in a few cache lines and it beats BLAS (2.4 against 5.7 µs); from
#: 16 on BLAS wins (1024x32: 18 against 8 µs; 8x25088, a page per value read: 80 against 25).
_MIN_TRANSPOSE_RUN = 16
#: Most transposes one :func:`copy` makes (one per index of the axes that are neither
#: array's contiguous axis); more, and each is too small to win.
_MAX_TRANSPOSES = 16


def _copy_by_transposes(dst, src) -> bool:
    """``dst[...] = src`` as BLAS transposes (:func:`tinynet.cblas.transpose`) when the copy
    is one, or a batch of up to :data:`_MAX_TRANSPOSES`; False (nothing written) otherwise.

    Axes of length 1 are dropped and neighbouring axes merged where both arrays hold them
    as one (``NCHW -> HWNC`` is then ``(N·C, H·W) -> (H·W, N·C)``). What remains is a
    transpose when one axis ``i`` is contiguous in ``dst`` and another, ``j``, in ``src``:
    ``src`` read along ``i`` is the row-major matrix A (rows ``i``, columns ``j``, row
    stride ``lda``), and ``dst`` its transpose. Every other axis indexes one such matrix.
    A large single transpose (4 MB and more) is split by rows over tinynet's threads."""
    # NumPy arrays of one shape and float dtype, large enough; a transpose moves the
    # innermost axis, so equal innermost strides rule it out cheaply
    if not (type(dst) is numpy.ndarray and type(src) is numpy.ndarray
            and dst.nbytes >= _MIN_TRANSPOSE_BYTES and dst.ndim >= 2
            and (dst.strides[-1] != src.strides[-1] or dst.shape[-1] == 1)
            and dst.shape == src.shape and dst.dtype == src.dtype and _cblas.can_transpose(dst.dtype)):
        return False
    item = dst.itemsize
    axes = []                       # (length, dst stride, src stride) in elements, outer first
    for n, d, s in zip(dst.shape, dst.strides, src.strides):
        if n == 1:
            continue
        if d % item or s % item:
            return False
        d, s = d // item, s // item
        if axes and axes[-1][1] == d * n and axes[-1][2] == s * n:
            axes[-1] = (axes[-1][0] * n, d, s)
        else:
            axes.append((n, d, s))
    i = next((k for k, a in enumerate(axes) if a[1] == 1), None)
    j = next((k for k, a in enumerate(axes) if a[2] == 1), None)
    if i is None or j is None or i == j:
        return False
    (rows, _, lda), (cols, ldb, _) = axes[i], axes[j]
    batch = [a for k, a in enumerate(axes) if k not in (i, j)]
    count = 1
    for n, _, _ in batch:
        count *= n
    if (cols < _MIN_TRANSPOSE_RUN or lda < cols or ldb < rows or not dst.flags.writeable
            or not (dst.flags.aligned and src.flags.aligned) or numpy.may_share_memory(dst, src)):
        return False
    if count > 1:
        # Each BLAS call hands the GIL over, which costs the most when tinynet's threads
        # run copies side by side (16 transposes of 32 kB on each of two threads: 2x the
        # time of one thread). Into a dst that is not contiguous (the inside of a padded
        # buffer): transpose into a contiguous copy, one matrix, then copy its long runs
        # over; otherwise a few matrices, outside a parallel chunk.
        if dst.flags.c_contiguous:
            if count > _MAX_TRANSPOSES or getattr(_in_chunk, "active", False):
                return False
        else:
            staged = numpy.empty(dst.shape, dtype=dst.dtype)
            if not _copy_by_transposes(staged, src):
                return False
            copy(dst, staged)
            return True
    offsets = [(0, 0)]              # (dst, src) element offsets of each matrix
    for n, d, s in batch:
        offsets = [(od + k * d, os_ + k * s) for od, os_ in offsets for k in range(n)]
    a0, b0 = src.ctypes.data, dst.ctypes.data

    def matrices(lo, hi):
        for od, os_ in offsets[lo:hi]:
            _cblas.transpose(dst.dtype, rows, cols, a0 + os_ * item, lda, b0 + od * item, ldb)

    def row_blocks(lo, hi):         # rows lo..hi of A are columns lo..hi of B
        _cblas.transpose(dst.dtype, hi - lo, cols, a0 + lo * lda * item, lda, b0 + lo * item, ldb)
    if count == 1:
        parallel_for(rows, row_blocks, nbytes=dst.nbytes // 2)
    else:
        parallel_for(count, matrices, nbytes=dst.nbytes // 2)
    return True


def ascontiguous(a):
    """``xp.ascontiguousarray(a)`` for arrays of one or more dimensions, through :func:`copy`
    (a C-contiguous array is returned as it is)."""
    if type(a) is numpy.ndarray and not a.flags.c_contiguous:
        return copy(numpy.empty(a.shape, dtype=a.dtype), a)
    return get_array_module(a).ascontiguousarray(a)


#: Row length of :func:`minimum_scalar`'s constant row.
_MIN_ROW = 1024
_min_rows: dict = {}


def minimum_scalar(x, value, out=None):
    """``xp.minimum(x, value)`` for a scalar ``value`` (with ``out``, written there).

    NumPy's SIMD loops for ``minimum`` take two arrays; with a scalar operand it falls
    back to a loop 3.5x slower (0.69 against 0.20 ns per float32 element in cache, 0.86
    against 0.68 over 32 MB, measured here). So a large contiguous float array is read
    as rows of :data:`_MIN_ROW` against one row holding ``value`` (broadcast: the inner
    loop is array-array), and the remainder the plain way. Same values, NaN included."""
    xp = get_array_module(x)
    if (xp is not numpy or x.dtype.kind != "f" or x.size < 4 * _MIN_ROW
            or not x.flags.c_contiguous or (out is not None and not out.flags.c_contiguous)):
        return xp.minimum(x, value) if out is None else xp.minimum(x, value, out=out)
    key = (x.dtype.str, float(value))
    row = _min_rows.get(key)
    if row is None:
        row = _min_rows[key] = numpy.full(_MIN_ROW, value, dtype=x.dtype)
    out = numpy.empty_like(x) if out is None else out
    flat, dst = x.reshape(-1), out.reshape(-1)
    body = x.size - x.size % _MIN_ROW
    numpy.minimum(flat[:body].reshape(-1, _MIN_ROW), row, out=dst[:body].reshape(-1, _MIN_ROW))
    if body < x.size:
        numpy.minimum(flat[body:], row[:x.size - body], out=dst[body:])
    return out


def expm1_of_nonpositive(x, out=None):
    """``expm1(min(x, 0))`` elementwise, within 3 ulp of the exact value (2.7 ulp at
    worst, measured over 2·10⁶ points from -25 to -10⁻¹²; NumPy's own ``expm1`` is within 1).

    NumPy's float32 ``expm1`` has a SIMD loop only on AVX-512 CPUs
    (:func:`numpy_has_simd_loop`; 0.36 ns per element on an AVX-512 EPYC, 13 ns without
    it) while ``tanh`` has one on AVX2 too (~3 ns), so without one float32 NumPy arrays
    take the half-angle identity: with ``t = tanh(m/2)``, ``e^m = (1 + t)/(1 - t)``, hence
    ``expm1(m) = 2t/(1 - t)``. Unlike ``exp(m) - 1`` it has no cancellation: t is accurate
    relative to itself however small m is, and for m <= 0, ``1 - t`` lies in [1, 2]. (1.5x
    faster than ``exp`` with Kahan's log correction, and more accurate; 2.6x slower than
    the AVX-512 ``expm1``, which is why that one is used where it exists.) Other dtypes
    and CuPy arrays use ``xp.expm1`` directly.
    """
    xp = get_array_module(x)
    m = minimum_scalar(x, 0.0, out=out)
    if xp is not numpy or x.dtype != numpy.float32 or numpy_has_simd_loop("expm1", x.dtype):
        return xp.expm1(m, out=m)
    half = m
    half *= numpy.float32(0.5)
    t = numpy.tanh(half, out=half)
    denominator = numpy.subtract(numpy.float32(1.0), t)
    t += t
    t /= denominator
    return t


def log1p(x):
    """``log(1 + x)`` elementwise, into a new array, within 4.5 ulp of the exact value for
    float32 (4.13 ulp at worst, measured over 1.6·10⁶ points of [-1, 1] and every magnitude
    from 10⁻³⁰ to 1; NumPy's own ``log1p`` is within 1).

    NumPy's float32 ``log1p`` has a SIMD loop only on AVX-512 CPUs
    (:func:`numpy_has_simd_loop`; without it a scalar loop, 883 µs for 65,536 values on
    this project's Zen 3 guest, against 130 µs for ``log``), so without one float32 NumPy
    arrays take Goldberg's identity: with ``w = fl(1 + x)`` (x rounded away where it is
    small) and ``d = w - 1`` (exact),

        log1p(x) = log(w) · (x / d)        (d ≠ 0),        x    (d = 0: |x| < 2⁻²⁴)

    ``log(w)`` is the exact log of the rounded ``w``; since ``log(1 + t)/t`` varies slowly,
    scaling it by ``x / d`` puts back what the rounding of ``1 + x`` took, to first order
    (the error left is of order ε², plus ``log``'s own). 191 µs for the same 65,536 values.
    ``x = -1`` gives -inf, ``x < -1`` NaN (with NumPy's warnings, as ``log1p``), +inf and
    NaN themselves. Other dtypes and CuPy arrays use ``xp.log1p`` directly.
    """
    xp = get_array_module(x)
    if xp is not numpy or x.dtype != numpy.float32 or numpy_has_simd_loop("log1p", x.dtype):
        return xp.log1p(x)
    # every temporary an array (a 0-d input's ufunc results would be scalars)
    w = numpy.add(numpy.float32(1), x, out=numpy.empty(x.shape, x.dtype))
    d = numpy.subtract(w, numpy.float32(1), out=numpy.empty(x.shape, x.dtype))
    itself = numpy.equal(d, 0, out=numpy.empty(x.shape, bool))
    numpy.logical_or(itself, x == numpy.inf, out=itself)    # log(inf)·inf/inf would be NaN
    d[itself] = 1
    scale = numpy.divide(x, d, out=d)       # x / d ≈ 1 (before the product: no overflow)
    y = numpy.log(w, out=w)
    y *= scale
    numpy.copyto(y, x, where=itself)
    return y


_kernel_cache: dict = {}


def elementwise_kernel(source: ElementwiseKernelSource, xp):
    """The compiled ``ElementwiseKernel`` of ``source`` for arrays of ``xp`` (cached).

    ``None`` for NumPy: callers keep an ``xp`` fallback. On the test stand-in the kernel's
    source is compiled (NVRTC, where installed) and a NumPy emulation runs.
    """
    if xp is numpy:
        return None
    key = (source, id(xp))
    if key not in _kernel_cache:
        _kernel_cache[key] = xp.ElementwiseKernel(*source)
    return _kernel_cache[key]


# --------------------------------------------------------------------------- compiled kernels
# A handful of CPU loops that NumPy can only run as several passes over memory (or not
# vectorised at all) are written as plain Python loops in tinynet.kernels.compiled and
# compiled by Numba (the optional ``jit`` extra) on first use. Each has a NumPy route
# beside it: the compiled one is taken only for NumPy arrays, with Numba installed, while
# ``TINYNET_JIT`` is not ``0`` and :func:`set_compiled` has not turned it off.
_compiled = None        # None: not yet decided; then True / False


def compiled_available() -> bool:
    """Whether Numba can be imported (looked up once, without importing it)."""
    global _numba_found
    if _numba_found is None:
        import importlib.util
        _numba_found = importlib.util.find_spec("numba") is not None
    return _numba_found


_numba_found = None


def set_compiled(enabled: bool) -> None:
    """Turns the compiled CPU kernels on or off for this process (default: on where
    Numba is installed, unless ``TINYNET_JIT=0``). Off, every op takes its NumPy route:
    the same results to rounding. Turning them on without Numba raises."""
    global _compiled
    if not isinstance(enabled, bool):
        raise TypeError(f"set_compiled: enabled must be a bool, got {type(enabled).__name__}")
    if enabled and not compiled_available():
        raise ValueError("set_compiled: compiled kernels need Numba (pip install 'tinynet[jit]')")
    _compiled = enabled


#: The dtypes compiled kernels take (Numba has no float16; integer data keeps NumPy's rules).
_COMPILED_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def use_compiled(*arrays) -> bool:
    """True when a compiled CPU kernel may run on ``arrays``: all NumPy ndarrays of one
    dtype, float32 or float64, Numba installed, and compiled kernels on
    (:func:`set_compiled`, ``TINYNET_JIT``)."""
    global _compiled
    if _compiled is None:
        env = os.environ.get("TINYNET_JIT", "").strip()
        if env not in ("", "0", "1"):
            raise ValueError(f"TINYNET_JIT must be 0 or 1, got {env!r}")
        if env == "1" and not compiled_available():
            raise ValueError("TINYNET_JIT=1 asks for compiled kernels, but Numba is not installed "
                             "(pip install 'tinynet[jit]')")
        _compiled = env != "0" and compiled_available()
    if not _compiled:
        return False
    for a in arrays:
        if type(a) is not numpy.ndarray or a.dtype != arrays[0].dtype:
            return False
    return not arrays or arrays[0].dtype in _COMPILED_DTYPES


def _tune_allocator() -> None:
    """Keeps large temporaries mapped between calls (glibc only; see docs/architecture.md).

    glibc's malloc hands blocks above its mmap threshold straight back to the OS and
    page-faults them in again on the next call; raising the thresholds keeps the big
    im2col and activation buffers resident. Set ``TINYNET_NO_MALLOPT=1`` to skip.
    """
    if os.environ.get("TINYNET_NO_MALLOPT"):
        return
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)   # glibc's largest allowed value
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)


_tune_allocator()
