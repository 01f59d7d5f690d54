"""tinynet's chunked NumPy work run on OpenBLAS's own worker threads.

Why. NumPy's OpenBLAS keeps one worker thread per extra core. After each threaded
product the workers busy-wait for the next one, about 0.1 s here (2^28 cycles, with no
yield), so that back-to-back products start at once. A second thread of tinynet's own
pool (:func:`tinynet.backend.parallel_for`), woken right after a product, shares its core
with a spinning worker and gains little or nothing. Measured on the 2-core guest, an ELU
over 524,288 floats right after a GEMM took 3.9 ms in two chunks on the Python pool and
3.7 ms in one; with its second chunk on the spinning OpenBLAS worker, 2.2 ms. In a
ResNet-18 training step the chunked passes (batch norm, Adam, im2col copies) took 148 ms
on the pool and 91 ms on the workers.

How. OpenBLAS splits its own level-1 routines over its threads with an exported helper::

    blas_level1_thread(mode, m, n, k, alpha, a, lda, b, ldb, c, ldc, function, nthreads)

It cuts the range ``m`` into ``nthreads`` consecutive widths, and for the i-th advances
the pointer ``a`` by ``width · lda`` elements of the size ``mode`` names. It runs the first
piece on the calling thread and hands each other to a worker, which calls (``mode`` a
real double routine, OpenBLAS's "legacy" calling convention)::

    function(width_i, n, k, alpha, a_i, lda, b_i, ldb, c, ldc, buffer)

and it returns when all pieces are done. With ``a = NULL``, ``lda = 1`` and 8-byte
elements, ``a_i`` is 8 · (the start of piece i): ``function`` (a ctypes callback) receives
its range as ``(a_i // 8, a_i // 8 + width_i)``, and ``n`` carries a job number naming
the Python function to call. The callback takes the GIL to run it; the NumPy calls inside
release it again, so the pieces run side by side as on the pool.

Two rules keep it safe:

* No threaded product may start inside a piece: it would wait for a free worker, and
  the workers are busy with the pieces (a deadlock, observed). So OpenBLAS is set to one
  thread while any job runs (a product inside a piece then runs on its own thread), and
  set back after the last one.
* A job has at most as many pieces as OpenBLAS has threads (every piece but the first
  needs a worker of its own).

Native pieces (:func:`run_native`). A Python piece takes the GIL on its worker, and on a
guest whose idle cores sleep that hand-over is dear (twenty-eighth session's Intel
guest: a job of two empty Python pieces 28.5 µs; the worker's piece starting 13-80 µs
after the caller's; and when it ends last, OpenBLAS's wait returning 45-60 µs later). A
compiled kernel needs neither Python nor the GIL: :mod:`tinynet.kernels.compiled.pieces`
compiles it as a C function with ``function``'s signature, and the job passes it the
address of an array of data pointers in ``b`` with ``ldb = 0`` (so every piece gets the
same ``b``; OpenBLAS advances ``b`` by ``width · ldb`` elements a piece) and its scalar
in ``alpha``. A job of two empty native pieces takes 2.5 µs; ELU's forward over 524,288
floats 126 µs on two cores against 249 µs with Python pieces (and 248 on one).

``blas_level1_thread`` is internal to OpenBLAS, though exported by every build: before a
job first runs in more pieces than any before, one small check job must cover its range
exactly once, piece by piece; if it does not, :func:`available` turns False and callers
use the Python pool. ``TINYNET_NO_CBLAS=1`` turns it off with the rest of
:mod:`tinynet.cblas`.
"""
from __future__ import annotations

import ctypes
import itertools
import threading

from . import cblas

__all__ = ["available", "threads", "run", "run_native", "run_native_job", "native_gemm", "pointers"]

_DOUBLE_REAL = 0x3      # BLAS_DOUBLE | BLAS_REAL (OpenBLAS's common_thread.h): 8-byte steps
_LONG = ctypes.c_ssize_t            # BLASLONG: long (LP64) or long long (LLP64)
_PIECE = ctypes.CFUNCTYPE(None, _LONG, _LONG, _LONG, ctypes.c_double, ctypes.c_size_t, _LONG,
                          ctypes.c_void_p, _LONG, ctypes.c_void_p, _LONG, ctypes.c_void_p)

_binding = None         # (split, get_threads, set_threads), False where unusable
_checked = 0            # the most pieces a check job has run in correctly
_jobs: dict = {}        # job number -> (fn, errors)
_job_numbers = itertools.count(1)
_region_lock = threading.Lock()
_regions = 0            # jobs running now (several Python threads may each run one)
_threads_before = 0     # OpenBLAS's thread count before the first of them


def _piece(width, job, _k, _alpha, start_bytes, _lda, _b, _ldb, _c, _ldc, _buffer):
    fn, errors = _jobs[job]
    start = start_bytes // 8
    try:
        fn(start, start + width)
    except BaseException as e:      # nothing may unwind through OpenBLAS's C frames
        errors.append(e)


_piece_callback = _PIECE(_piece)
_alpha = (ctypes.c_double * 2)(1.0, 0.0)


def _bind():
    found = cblas.library()
    if found is None:
        return False
    lib, prefix, suffix = found
    try:
        split = lib.blas_level1_thread
        get_threads = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")
        set_threads = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")
    except AttributeError:
        return False
    split.argtypes = [ctypes.c_int, _LONG, _LONG, _LONG, ctypes.c_void_p, ctypes.c_size_t, _LONG,
                      ctypes.c_void_p, _LONG, ctypes.c_void_p, _LONG, _PIECE, ctypes.c_int]
    split.restype = ctypes.c_int
    get_threads.argtypes, get_threads.restype = [], ctypes.c_int
    set_threads.argtypes, set_threads.restype = [ctypes.c_int], None
    return split, get_threads, set_threads


def _works(pieces: int) -> bool:
    """One job of ``2 · pieces + 1`` indices in ``pieces`` pieces covers each index once."""
    global _checked
    seen = [0] * (2 * pieces + 1)
    lock = threading.Lock()

    def count(lo, hi):
        with lock:
            for i in range(lo, hi):
                seen[i] += 1
    try:
        _run(len(seen), pieces, count)
    except Exception:
        return False
    if seen != [1] * len(seen):
        return False
    _checked = max(_checked, pieces)
    return True


def available() -> bool:
    """True when OpenBLAS was found and its threads run tinynet's pieces of work."""
    global _binding, _checked
    if _binding is None:
        _checked = 0
        _binding = _bind()
        if _binding and not _works(max(1, min(2, _binding[1]()))):
            _binding = False
    return bool(_binding)


def threads() -> int:
    """OpenBLAS's current thread count (what ``threadpoolctl`` and
    ``tinynet.set_num_threads`` set); 0 where :func:`available` is False."""
    return _binding[1]() if available() else 0


def _split(count: int, pieces: int, function, n: int, alpha, b, ldb: int) -> None:
    """One ``blas_level1_thread`` job, with OpenBLAS on one thread while it runs."""
    global _regions, _threads_before
    split, get_threads, set_threads = _binding
    with _region_lock:
        if _regions == 0:
            _threads_before = get_threads()
            set_threads(1)        # a product inside a piece runs on its own thread
        _regions += 1
    try:
        split(_DOUBLE_REAL, count, n, 0, ctypes.addressof(alpha), 0, 1, b, ldb, None, 1,
              function, pieces)
    finally:
        with _region_lock:
            _regions -= 1
            if _regions == 0:
                set_threads(_threads_before)


def _run(count: int, pieces: int, fn) -> None:
    job = next(_job_numbers)
    errors: list = []
    _jobs[job] = (fn, errors)
    try:
        _split(count, pieces, _piece_callback, job, _alpha, None, 1)
    finally:
        del _jobs[job]
    if errors:
        raise errors[0]


def _ready(count: int, pieces: int) -> bool:
    """Whether a job of ``pieces`` pieces over ``count`` values can run: OpenBLAS found and
    working as checked (a job in more pieces than any before is checked first), at least
    one value a piece, no more pieces than its threads."""
    global _binding
    if not (1 <= pieces <= count and available() and pieces <= _binding[1]()):
        return False
    if pieces > _checked and not _works(pieces):    # more pieces than any check so far
        _binding = False
        return False
    return True


def run(count: int, pieces: int, fn) -> bool:
    """Calls ``fn(start, stop)`` over ``pieces`` consecutive ranges covering
    ``range(count)``, the first on the calling thread and each other on an OpenBLAS
    worker, and waits for all; raises the first piece's error after all have finished.

    Returns False, having run nothing, where it cannot: OpenBLAS not found or not working
    as checked, or more pieces than OpenBLAS has threads. ``fn`` must write only its own
    range.
    """
    if not _ready(count, pieces):
        return False
    _run(count, pieces, fn)
    return True


def run_native(count: int, pieces: int, address: int, pointers, scalar: float = 0.0) -> bool:
    """Runs the compiled piece at ``address`` (a C function with OpenBLAS's ``function``
    signature, from :func:`tinynet.kernels.compiled.pieces.piece`) over ``pieces``
    consecutive ranges covering ``range(count)``, the first on the calling thread and each
    other on an OpenBLAS worker, without the GIL; ``pointers`` (a ctypes array of data
    pointers) and ``scalar`` are what every piece reads. The arrays must stay alive, and
    each piece may write only its own range.

    Returns False, having run nothing, where :func:`run` would (OpenBLAS not found or not
    working as checked, more pieces than its threads).
    """
    if not _ready(count, pieces):
        return False
    alpha = (ctypes.c_double * 2)(scalar, 0.0)
    function = _functions.get(address)
    if function is None:
        function = _functions[address] = ctypes.cast(address, _PIECE)
    _split(count, pieces, function, count, alpha, ctypes.addressof(pointers), 0)
    return True


_functions: dict = {}       # address -> the piece as a ctypes function pointer


def pointers(arrays):
    """A ctypes array of the data addresses of NumPy ``arrays`` (a native job's table).

    ``a.ctypes.data`` builds a helper object on every call (0.77 µs here); a writable
    C-contiguous array lends its buffer through the buffer protocol in 0.27, and a job's
    table of 5-12 addresses is built on every call (a third of the Python time around
    SimpleCNN's 16->32 convolution jobs). Others (read-only, empty) take ``a.ctypes.data``:
    the same address."""
    addresses = []
    for a in arrays:
        try:
            addresses.append(ctypes.addressof(ctypes.c_char.from_buffer(a)))
        except (TypeError, ValueError, BufferError):
            addresses.append(a.ctypes.data)
    return (ctypes.c_ssize_t * len(addresses))(*addresses)


def native_gemm(*arrays):
    """``(address, ilp64)`` of NumPy's ``cblas_sgemm`` (:func:`tinynet.cblas.gemm_address`)
    for a native job over ``arrays`` that calls it, or None where such a job cannot run:
    an array not a C-contiguous float32 NumPy array, or NumPy's OpenBLAS not found or
    not running native pieces (:func:`available`)."""
    import numpy
    if not all(isinstance(a, numpy.ndarray) and a.dtype == numpy.float32 and a.flags.c_contiguous
               for a in arrays):
        return None
    blas = cblas.gemm_address(numpy.float32)
    if blas is None or not available():
        return None
    return blas[0], int(blas[1] == 64)


def run_native_job(pieces: int, address: int, parameters, arrays) -> bool:
    """:func:`run_native` for a piece that reads a table: ``pieces`` pieces, piece ``k``
    getting ``k`` as its range (``a // 8``) and ``pieces`` as ``n``; the table holds the
    address of the integer ``parameters`` (as int64) and then the data addresses of
    ``arrays``, which must stay alive and C-contiguous. The LSTM loop and the
    convolutions' native jobs take their arguments this way. False where
    :func:`run_native` would be."""
    import numpy
    params = numpy.array(parameters, dtype=numpy.int64)
    return run_native(pieces, pieces, address, pointers([params, *arrays]))


def run_float32_job(pieces: int, address: int, parameters, arrays) -> bool:
    """:func:`run_native_job` for a piece compiled for float32 data that calls no BLAS
    (batch norm's, the Winograd filter transforms'), where it is worth running: 2+ pieces,
    and the job's first two arrays (its data) float32. False, having run nothing,
    elsewhere (float64, one chunk, no OpenBLAS running native pieces): the caller then
    runs the same kernel in ``parallel_for`` chunks, or in place."""
    if pieces < 2 or not str(arrays[0].dtype) == str(arrays[1].dtype) == "float32":
        return False
    return run_native_job(pieces, address, parameters, arrays)
