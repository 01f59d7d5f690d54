"""Compiles tinynet's CUDA kernels with NVRTC on a machine without a GPU.

A CuPy ``ElementwiseKernel`` is only the body of a loop: at its first call CuPy wraps the
body in a ``__global__`` function whose signature depends on the arguments (dtype of each
type placeholder ``T``, which arguments are arrays or scalars, how many dimensions the
arrays have after CuPy merges contiguous axes), prepends its headers and compiles the
result with NVRTC. This module does the same without a GPU:

1. ``cupy._core._kernel._get_elementwise_kernel_code`` generates the kernel function
   from the parameters and an argument layout (CuPy's own generator, so the code is the
   code CuPy would build; it needs no device);
2. ``cupy._core.core.compile_with_cache`` adds CuPy's headers and compiler options; its
   last step (which asks the driver for the GPU's architecture) is intercepted, so we
   get the exact source and options;
3. ``cupy_backends.cuda.libs.nvrtc`` compiles them for ``sm_90`` (Hopper; CuPy's own
   ``compile_using_nvrtc`` refuses without a driver, the NVRTC library does not).

A kernel that would not build raises :class:`KernelCompileError` with NVRTC's log (line
and message). Steps 1 and 2 use CuPy internals: the versions tried are in
``_cupy_api.CUPY_VERSION`` (install with ``pip install tinynet[nvrtc]``).

Example::

    from tinynet import backend
    from tinynet.testing import nvrtc
    for source in backend.KERNEL_SOURCES:
        nvrtc.compile_kernel(source, {"T": "float32"}, nvrtc.typical_layout(source))
"""
from __future__ import annotations

import numpy

__all__ = ["ARCH", "KernelCompileError", "unavailable_reason", "typical_layout",
           "kernel_code", "compile_kernel"]

ARCH = 90
_reason: "str | None | bool" = False      # False: not probed yet


class KernelCompileError(RuntimeError):
    """NVRTC rejected a kernel; the message holds its log."""


def unavailable_reason() -> "str | None":
    """Why kernels cannot be compiled here (CuPy or NVRTC missing), or None when they can."""
    global _reason
    if _reason is False:
        try:
            import cupy  # noqa: F401
            from cupy_backends.cuda.libs import nvrtc
            nvrtc.getVersion()
            _reason = None
        except Exception as e:  # ImportError, or the NVRTC library not found
            _reason = (f"NVRTC unavailable ({type(e).__name__}: {e}); "
                       "pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12 (tinynet[nvrtc])")
    return _reason


def _split(params: str):
    for item in filter(None, (p.strip() for p in params.split(","))):
        words = item.split()
        yield words[0] == "raw", words[-2]


def typical_layout(source) -> tuple:
    """The argument layout of a typical call: ``((kind, raw, ndim, c_contiguous), ...)``.

    A raw parameter is a 2-d array; a non-raw one with a type placeholder (``T x``) a
    contiguous array (CuPy reduces it to 1-d); a non-raw one with a concrete type
    (``int32 n``) a scalar, as tinynet's kernels are called.
    """
    layout = []
    for raw, ctype in list(_split(source.in_params)) + list(_split(source.out_params)):
        placeholder = len(ctype) == 1 and ctype.isupper()
        if raw:
            layout.append(("array", True, 2, True))
        elif placeholder:
            layout.append(("array", False, 1, True))
        else:
            layout.append(("scalar", False, 0, True))
    return tuple(layout)


def kernel_code(source, type_map: dict, layout) -> "tuple[str, tuple]":
    """CuPy's full source and NVRTC options for ``source`` called with ``layout``."""
    import cupy
    import cupy._core._kernel as kernel_module
    from cupy._core import _carray, _scalar, core
    from cupy.cuda import compiler

    kernel = cupy.ElementwiseKernel(*source)
    type_map = {k: numpy.dtype(v) for k, v in type_map.items()}
    ARRAY, INDEXER, SCALAR = 1, 2, 3          # CuPy's _ArgInfo kinds
    infos, index_ndim = [], 1
    for param, (kind, raw, ndim, contiguous) in zip(kernel.params, layout):
        dtype = param.dtype if param.dtype is not None else type_map[param.ctype]
        if kind == "array":
            infos.append(kernel_module._ArgInfo(ARRAY, cupy.ndarray, dtype, ndim, contiguous, True))
            if not raw:
                index_ndim = ndim
        else:
            infos.append(kernel_module._ArgInfo(SCALAR, _scalar.CScalar, dtype, 0, True, True))
    infos.append(kernel_module._ArgInfo(INDEXER, _carray.Indexer, None, index_ndim, True, True))
    code = kernel_module._get_elementwise_kernel_code(
        tuple(infos), kernel_module._TypeMap(tuple(sorted(type_map.items()))),
        kernel.params, kernel.operation, kernel.name, kernel.preamble)

    captured = {}

    class _Captured(Exception):
        pass

    def capture(full_source, options, *args, **kwargs):
        captured.update(source=full_source, options=tuple(options))
        raise _Captured

    original = compiler._compile_module_with_cache
    compiler._compile_module_with_cache = capture
    try:
        core.compile_with_cache(code, ())
    except _Captured:
        pass
    finally:
        compiler._compile_module_with_cache = original
    # What CuPy's NVRTC path appends before compiling (cupy/cuda/compiler.py).
    options = captured["options"] + ("-ftz=true", f"-arch=sm_{ARCH}",
                                      "--device-as-default-execution-space")
    return captured["source"], options


def compile_kernel(source, type_map: dict, layout=None) -> bytes:
    """Compiles ``source`` for ``type_map`` (e.g. ``{"T": "float64"}``); returns the cubin."""
    from cupy_backends.cuda.libs import nvrtc

    code, options = kernel_code(source, type_map, layout or typical_layout(source))
    program = nvrtc.createProgram(code, f"{source.name}.cu", (), ())
    try:
        try:
            nvrtc.compileProgram(program, options)
        except nvrtc.NVRTCError as e:
            log = nvrtc.getProgramLog(program)
            raise KernelCompileError(f"kernel {source.name!r} ({type_map}) does not compile: "
                                     f"{e}\n{log}") from None
        return nvrtc.getCUBIN(program)
    finally:
        nvrtc.destroyProgram(program)
