"""NumPy's own BLAS, called directly for the product NumPy cannot make: one that adds
into its output.

BLAS's matrix product (GEMM) computes, for A (M, K), B (K, N) and C (M, N),

    C ← α·op(A)·op(B) + β·C            op(X) = X or Xᵀ

NumPy's ``matmul`` always passes β = 0, so a sum of products ``Σ_i A_i @ B_i`` costs a
temporary and an add pass over C per term (in a convolution's row strips, a C as large
as the layer's output per kernel row). With β = 1 the GEMM adds each product into C
inside its micro-kernel, while a tile of C sits in registers: no temporary, no pass.

The three operands are passed as pointers with a leading dimension (the distance
between rows), so any 2-D view whose elements are contiguous along one axis is read or
written where it lies: a band of rows of a larger array, or a transposed view (then
``op(X) = Xᵀ`` of the underlying row-major matrix).

Finding it: NumPy loads its BLAS when it is imported. Its wheels bundle OpenBLAS
(``scipy-openblas``: symbols named ``scipy_cblas_sgemm64_``, 64-bit integers); other
builds link a system OpenBLAS (``cblas_sgemm``). This module looks for an OpenBLAS in
NumPy's package (its wheels' copy), then among the libraries the process has loaded
(``/proc/self/maps``), reads its integer width from ``openblas_get_config``
(``USE64BITINT``), and checks one small product against ``matmul`` before it is used.
Opening a loaded library returns the copy already in memory, with NumPy's thread
settings. Where none is found (another BLAS, or ``TINYNET_NO_CBLAS=1``), :func:`available`
is False and :func:`gemm` returns False: callers fall back to ``out += a @ b``.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy

__all__ = ["available", "gemm", "can_transpose", "transpose", "library", "corename",
           "gemm_address"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# (prefix, suffix) of the symbol names, most specific first
_NAMINGS = (("scipy_", "64_"), ("", "64_"), ("scipy_", ""), ("", ""))

_routines = None        # {dtype: ctypes function}, {} when there is no usable BLAS
_library = None         # (ctypes.CDLL, symbol prefix, symbol suffix) of that BLAS
_integer = None         # its BLAS integer type (ctypes.c_int64 or c_int32)
_transposes = None      # {dtype: ctypes function} of ?omatcopy, {} where unusable


def _library_paths() -> list:
    """The OpenBLAS shipped inside NumPy's wheel, then any other OpenBLAS this process has
    loaded (a system NumPy's; another package's own copy, such as SciPy's, comes after
    NumPy's, so that tinynet calls the copy whose threads NumPy uses)."""
    here = os.path.dirname(numpy.__file__)
    paths = []
    for folder in (os.path.join(here, os.pardir, "numpy.libs"), os.path.join(here, ".dylibs")):
        paths += sorted(glob.glob(os.path.join(folder, "*openblas*")))
    seen = {os.path.realpath(p) for p in paths}
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(None, 1)[-1]
                if path.startswith("/") and "openblas" in os.path.basename(path).lower():
                    real = os.path.realpath(path)
                    if real not in seen:
                        seen.add(real)
                        paths.append(path)
    except OSError:
        pass
    return paths


def _bind(lib, prefix, suffix) -> dict:
    """The sgemm and dgemm of one naming, typed for the library's integer width; {} if absent."""
    try:
        config = getattr(lib, f"{prefix}openblas_get_config{suffix}")
        gemms = {numpy.dtype(numpy.float32): (getattr(lib, f"{prefix}cblas_sgemm{suffix}"), ctypes.c_float),
                 numpy.dtype(numpy.float64): (getattr(lib, f"{prefix}cblas_dgemm{suffix}"), ctypes.c_double)}
    except AttributeError:
        return {}
    global _integer
    config.restype = ctypes.c_char_p
    integer = _integer = ctypes.c_int64 if b"USE64BITINT" in (config() or b"") else ctypes.c_int32
    routines = {}
    for dtype, (fn, scalar) in gemms.items():
        # order, transA, transB (C enums), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
        fn.argtypes = [ctypes.c_int] * 3 + [integer] * 3 + [scalar, ctypes.c_void_p, integer,
                                                            ctypes.c_void_p, integer, scalar,
                                                            ctypes.c_void_p, integer]
        fn.restype = None
        routines[dtype] = fn
    return routines


def _agrees(routines) -> bool:
    """One small product of each dtype, with a transposed operand and β = 1, against NumPy."""
    rng = numpy.random.default_rng(0)
    for dtype, fn in routines.items():
        a = rng.standard_normal((3, 5)).astype(dtype)
        b = rng.standard_normal((4, 5)).astype(dtype).T
        c = rng.standard_normal((3, 4)).astype(dtype)
        expected = c + a @ b
        if not _call(fn, a, b, c, 1.0) or not numpy.allclose(c, expected, rtol=1e-4, atol=1e-5):
            return False
    return True


def _load() -> dict:
    global _library
    if os.environ.get("TINYNET_NO_CBLAS"):
        return {}
    for path in _library_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in _NAMINGS:
            routines = _bind(lib, prefix, suffix)
            if routines and _agrees(routines):
                _library = (lib, prefix, suffix)
                return routines
    return {}


def available() -> bool:
    """True when NumPy's BLAS was found and :func:`gemm` calls it."""
    global _routines
    if _routines is None:
        _routines = _load()
    return bool(_routines)


def gemm_address(dtype):
    """``(address, integer_bits)`` of NumPy's BLAS ``cblas_sgemm`` (float32) or
    ``cblas_dgemm`` (float64): what compiled code calls it through
    (:func:`tinynet.kernels.compiled.native.call_gemm`), with the width of its size
    arguments (64 in an ILP64 build such as NumPy's wheels, else 32); None where
    :func:`available` is False."""
    if not available():
        return None
    fn = _routines.get(numpy.dtype(dtype))
    if fn is None:
        return None
    known = _addresses.get(id(fn))
    if known is None or known[0] is not fn:     # a cast costs ~0.5 µs; every native job asks
        known = _addresses[id(fn)] = (fn, (ctypes.cast(fn, ctypes.c_void_p).value,
                                           8 * ctypes.sizeof(_integer)))
    return known[1]


_addresses: dict = {}       # id(routine) -> (routine, what gemm_address returns for it)


def library():
    """``(lib, prefix, suffix)``: the ``ctypes.CDLL`` of the OpenBLAS that :func:`gemm`
    calls and the prefix and suffix of its ``openblas_*`` and ``cblas_*`` symbol names
    (``"scipy_"`` and ``"64_"`` in NumPy's wheels); None where :func:`available` is False.
    :mod:`tinynet.blas_threads` binds more of the same library through it."""
    return _library if available() else None


def corename() -> str | None:
    """The name of the CPU kernels OpenBLAS chose at load time (``openblas_get_corename``:
    ``"SkylakeX"``, ``"Haswell"``, ``"Zen"``, ...), or None where :func:`available` is False.

    It need not match the CPU: ``OPENBLAS_CORETYPE`` picks the kernels when the library
    loads, so an AVX-512 CPU may run ``Haswell`` (AVX2) GEMMs, about half as fast."""
    if not available():
        return None
    lib, prefix, suffix = _library
    try:
        fn = getattr(lib, f"{prefix}openblas_get_corename{suffix}")
    except AttributeError:
        return None
    fn.restype = ctypes.c_char_p
    name = fn()
    return name.decode("ascii", "replace") if name else None


def _operand(x):
    """(transpose flag, leading dimension) of a 2-D view contiguous along one axis, or None.

    Row-major ``X`` (rows ``ld`` elements apart, ``ld >= columns``) is passed as is; a view
    contiguous down its columns is the transpose of a row-major matrix. The stride of an
    axis of length 1 is never used, so it is not checked."""
    rows, cols = x.shape
    item = x.itemsize
    s0, s1 = x.strides
    if (cols == 1 or s1 == item) and (rows == 1 or (s0 % item == 0 and s0 >= cols * item)):
        return _NO_TRANS, (s0 // item if rows > 1 else cols)
    if (rows == 1 or s0 == item) and (cols == 1 or (s1 % item == 0 and s1 >= rows * item)):
        return _TRANS, (s1 // item if cols > 1 else rows)
    return None


def _fits(*values) -> bool:
    """Whether every value fits the BLAS integer (32 or 64 bits, signed): ctypes would
    pass a larger one truncated, and BLAS would read or write the wrong memory."""
    return max(values) <= 2 ** (8 * ctypes.sizeof(_integer) - 1) - 1


def _call(fn, a, b, out, beta) -> bool:
    layout_a, layout_b, layout_c = _operand(a), _operand(b), _operand(out)
    if layout_a is None or layout_b is None or layout_c is None or layout_c[0] != _NO_TRANS:
        return False
    (M, K), N = a.shape, b.shape[1]
    if not _fits(M, N, K, layout_a[1], layout_b[1], layout_c[1]):
        return False
    fn(_ROW_MAJOR, layout_a[0], layout_b[0], M, N, K, 1.0, a.ctypes.data, layout_a[1],
       b.ctypes.data, layout_b[1], beta, out.ctypes.data, layout_c[1])
    return True


def gemm(a, b, out, beta: float = 0.0) -> bool:
    """``out ← a @ b + beta·out`` in place through NumPy's BLAS; False (``out`` untouched)
    where it cannot: no BLAS found, not NumPy arrays of one native float dtype (float32
    or float64), shapes that do not chain, an empty dimension, an unaligned operand or one
    not contiguous along either axis (``out``: along its rows), a size or row distance
    past the BLAS integer, or ``out`` overlapping an input.

    a (M, K), b (K, N), out (M, N): 2-D views; ``out`` may be a block of a larger array.

    >>> import numpy as np
    >>> a, b = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    >>> out = np.ones((2, 4), np.float32)
    >>> gemm(a, b, out, beta=1.0) or np.add(out, a @ b, out=out) is out  # either way
    True
    >>> out.tolist()
    [[4.0, 4.0, 4.0, 4.0], [4.0, 4.0, 4.0, 4.0]]
    """
    if not available():
        return False
    fn = _routines.get(getattr(out, "dtype", None))
    if (fn is None or type(a) is not numpy.ndarray or type(b) is not numpy.ndarray
            or type(out) is not numpy.ndarray or a.dtype != out.dtype or b.dtype != out.dtype
            or a.ndim != 2 or b.ndim != 2 or out.ndim != 2
            or a.shape[1] != b.shape[0] or out.shape != (a.shape[0], b.shape[1]) or 0 in a.shape
            or 0 in out.shape or not out.flags.writeable
            or not (a.flags.aligned and b.flags.aligned and out.flags.aligned)
            or numpy.may_share_memory(out, a) or numpy.may_share_memory(out, b)):
        return False
    return _call(fn, a, b, out, beta)


def _bind_transposes() -> dict:
    """OpenBLAS's ``cblas_somatcopy`` / ``cblas_domatcopy``, checked against NumPy on one
    small padded matrix; {} where absent or wrong."""
    if not available():
        return {}
    lib, prefix, suffix = _library
    routines = {}
    for dtype, letter, scalar in ((numpy.float32, "s", ctypes.c_float), (numpy.float64, "d", ctypes.c_double)):
        fn = getattr(lib, f"{prefix}cblas_{letter}omatcopy{suffix}", None)
        if fn is None:
            return {}
        # order, trans (C enums), rows, cols, alpha, A, lda, B, ldb
        fn.argtypes = [ctypes.c_int, ctypes.c_int, _integer, _integer, scalar, ctypes.c_void_p,
                       _integer, ctypes.c_void_p, _integer]
        fn.restype = None
        a = numpy.arange(3 * 7, dtype=dtype).reshape(3, 7)          # a 3x5 matrix, lda 7
        b = numpy.full((5, 4), -1, dtype=dtype)                      # its transpose, ldb 4
        fn(_ROW_MAJOR, _TRANS, 3, 5, 1.0, a.ctypes.data, 7, b.ctypes.data, 4)
        if not (numpy.array_equal(b[:, :3], a[:, :5].T) and (b[:, 3] == -1).all()):
            return {}
        routines[numpy.dtype(dtype)] = fn
    return routines


def can_transpose(dtype) -> bool:
    """True when :func:`transpose` runs for arrays of ``dtype``."""
    global _transposes
    if _transposes is None:
        _transposes = _bind_transposes()
    return numpy.dtype(dtype) in _transposes


def transpose(dtype, rows: int, cols: int, a: int, lda: int, b: int, ldb: int) -> bool:
    """``B = Aᵀ`` through OpenBLAS's out-of-place transposing copy (``?omatcopy``), for
    float32 or float64; False (nothing written) where it cannot run.

    A is a ``rows x cols`` row-major matrix at address ``a`` whose rows are ``lda``
    elements apart (``lda >= cols``); B, at address ``b``, gets ``cols`` rows of ``rows``
    elements, ``ldb`` apart (``ldb >= rows``): ``B[j, i] = A[i, j]``. The two must not
    overlap. Why: NumPy's copy of a transposed view walks one operand element by element
    across rows (about 2 GB/s on a 1 MB float32 matrix here), while OpenBLAS moves small
    blocks that stay in cache, 6-11x faster (:func:`tinynet.backend.copy` uses it).
    Values are copied as ``1.0 * a``: the same bits, except that a signalling NaN comes
    out quiet.
    """
    if not can_transpose(dtype):
        return False
    fn = _transposes[numpy.dtype(dtype)]
    if lda < cols or ldb < rows or not _fits(rows, cols, lda, ldb):
        return False
    fn(_ROW_MAJOR, _TRANS, rows, cols, 1.0, a, lda, b, ldb)
    return True
