"""Compiled kernels as native pieces of an OpenBLAS job: chunks that run without the GIL.

A kernel here is one of :mod:`.activation`'s or :mod:`.elementwise`'s passes,
``kernel(*operands, lo, hi)`` over the values ``lo..hi`` of flat arrays. :func:`tinynet.backend.parallel_for` normally hands
its chunks to OpenBLAS's worker threads as Python callbacks (:mod:`tinynet.blas_threads`),
and each such chunk takes the GIL on its worker: on a guest whose idle cores sleep, that
hand-over costs tens of microseconds at each end of a job. :func:`piece` compiles the
kernel instead as a C function with the signature OpenBLAS calls a piece with::

    piece(width, n, k, alpha, a, lda, b, ldb, c, ldc, buffer)

where ``a // 8`` is the piece's first value (OpenBLAS advances the NULL pointer ``a`` by
``width`` 8-byte steps a piece, see :mod:`tinynet.blas_threads`), ``n`` the arrays' length,
``b`` the address of an array of the operands' data pointers (the same for every piece:
the job passes ``ldb = 0``) and ``alpha`` the kernel's scalar, if it takes one. The piece
rebuilds the arrays from the pointers (``numba.carray``) and calls the kernel on its range:
no Python object is touched, so the workers never wait for the GIL, nor the caller for
them.

Layouts (the order of a kernel's operands before ``lo, hi``): ``"aa"`` two arrays,
``"aaa"`` three, ``"asa"`` array, scalar (float64, as the callers pass it), array,
``"aasa"`` two arrays, a scalar of the arrays' dtype, an array, and ``"absa"`` an array,
a boolean array, a scalar of the first array's dtype, an array. One C function per
(kernel, dtype), compiled on first use and kept (``cache=True`` keeps the machine code
across processes, as for every compiled kernel).
"""
import numba
from numba import types

from . import activation, elementwise

#: The layout of each kernel's operands (see the module docstring).
LAYOUTS = {
    "add_forward": "aaa",
    "dropout_forward": "absa",
    "relu_forward": "aa",
    "relu_backward": "aaa",
    "elu_forward": "asa",
    "elu_backward": "aasa",
    "sigmoid_forward": "aa",
    "sigmoid_backward": "aasa",
}

_DTYPES = {"float32": types.float32, "float64": types.float64}
_pieces = {}            # (kernel name, dtype name) -> the compiled piece (keeps it alive)


#: The C signature of every piece; ``b`` is the array of the operands' data pointers.
_SIGNATURE = types.void(types.intp, types.intp, types.intp, types.float64, types.uintp, types.intp,
                        types.CPointer(types.voidptr), types.intp, types.voidptr, types.intp,
                        types.voidptr)


def _compile(kernel, layout, dtype):
    """The C piece of ``kernel`` for arrays of ``dtype`` (a Numba type; ``keep``, the
    boolean mask of layout ``"absa"``, is read as booleans)."""
    compile_piece = numba.cfunc(_SIGNATURE, nopython=True, nogil=True, cache=True,
                                fastmath={"contract", "reassoc"}, error_model="numpy")
    boolean = types.boolean
    if layout == "aa":
        def piece(width, n, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
            lo = a // 8
            kernel(numba.carray(b[0], (n,), dtype), numba.carray(b[1], (n,), dtype), lo, lo + width)
    elif layout == "aaa":
        def piece(width, n, _k, _alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
            lo = a // 8
            kernel(numba.carray(b[0], (n,), dtype), numba.carray(b[1], (n,), dtype),
                   numba.carray(b[2], (n,), dtype), lo, lo + width)
    elif layout == "asa":
        def piece(width, n, _k, alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
            lo = a // 8
            kernel(numba.carray(b[0], (n,), dtype), alpha, numba.carray(b[1], (n,), dtype), lo, lo + width)
    elif layout == "aasa":
        def piece(width, n, _k, alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
            lo = a // 8
            kernel(numba.carray(b[0], (n,), dtype), numba.carray(b[1], (n,), dtype), dtype(alpha),
                   numba.carray(b[2], (n,), dtype), lo, lo + width)
    elif layout == "absa":
        def piece(width, n, _k, alpha, a, _lda, b, _ldb, _c, _ldc, _buffer):
            lo = a // 8
            kernel(numba.carray(b[0], (n,), dtype), numba.carray(b[1], (n,), boolean), dtype(alpha),
                   numba.carray(b[2], (n,), dtype), lo, lo + width)
    else:
        raise ValueError(f"pieces: unknown layout {layout!r}")
    return compile_piece(piece)


def kernel(name: str):
    """The compiled kernel ``name`` of :mod:`.activation` or :mod:`.elementwise`."""
    return getattr(elementwise if hasattr(elementwise, name) else activation, name)


def piece(name: str, dtype) -> int:
    """The address of the kernel ``name`` (:func:`kernel`) compiled as a native piece for
    arrays of ``dtype`` (float32 or float64)."""
    key = (name, str(dtype))
    found = _pieces.get(key)
    if found is None:
        found = _pieces[key] = _compile(kernel(name), LAYOUTS[name], _DTYPES[str(dtype)])
    return found.address
