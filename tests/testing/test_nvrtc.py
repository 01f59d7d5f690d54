"""Every CUDA kernel tinynet defines compiles with NVRTC, in float32 and float64, for sm_90.

Runs without a GPU (NVRTC needs no driver); skipped with the reason where the CuPy and
NVRTC wheels are absent (``pip install tinynet[nvrtc]``, which .ci/run installs).
"""
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import tinynet
import tinynet.kernels
from tinynet import backend
from tinynet.testing import nvrtc

for _module in pkgutil.iter_modules(tinynet.kernels.__path__):   # every kernel declared
    importlib.import_module(f"tinynet.kernels.{_module.name}")

needs_nvrtc = pytest.mark.skipif(nvrtc.unavailable_reason() is not None,
                                 reason=str(nvrtc.unavailable_reason()))
KERNELS = list(backend.KERNEL_SOURCES)


def test_tinynet_defines_kernels_only_through_the_declaration():
    # Wrong: a kernel built directly with cupy.ElementwiseKernel/RawKernel would escape
    # the compile test below.
    root = Path(tinynet.__file__).parent
    direct = re.compile(r"\b(ElementwiseKernel|RawKernel|RawModule|ReductionKernel)\(")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "backend.py" and "testing" not in p.parts and direct.search(p.read_text())]
    assert offenders == []
    assert {k.name for k in KERNELS} >= {"tinynet_lstm_fwd", "tinynet_lstm_bwd"}


@needs_nvrtc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("source", KERNELS, ids=[k.name for k in KERNELS])
def test_every_kernel_compiles(source, dtype):
    code, _ = nvrtc.kernel_code(source, {"T": dtype}, nvrtc.typical_layout(source))
    assert f'extern "C" __global__ void {source.name}(' in code      # CuPy's full kernel
    assert ("double" if dtype == "float64" else "float") in code
    cubin = nvrtc.compile_kernel(source, {"T": dtype})
    assert cubin[:4] == b"\x7fELF"


@needs_nvrtc
def test_a_syntax_error_in_a_kernel_fails_with_its_line():
    source = backend.ElementwiseKernelSource("T x", "T y", "T z = x * 2\n    y = z;", "tinynet_broken")
    with pytest.raises(nvrtc.KernelCompileError, match=r"tinynet_broken\.cu\(\d+\): error"):
        nvrtc.compile_kernel(source, {"T": "float32"})


@needs_nvrtc
def test_writing_to_an_input_fails_as_on_cupy():
    # CuPy declares input parameters const: the bug the LSTM kernels had before.
    source = backend.ElementwiseKernelSource("raw T a", "T y", "a[i] = 0; y = 1;", "tinynet_writes_input")
    with pytest.raises(nvrtc.KernelCompileError, match="modifiable lvalue"):
        nvrtc.compile_kernel(source, {"T": "float64"})


@needs_nvrtc
def test_the_stand_in_compiles_the_kernels_it_runs(monkeypatch):
    from tinynet.testing import fakecuda
    source = backend.ElementwiseKernelSource("T x", "T y", "y = x +;", "tinynet_broken_on_call")
    monkeypatch.setattr(backend, "KERNEL_SOURCES", [*backend.KERNEL_SOURCES, source])
    monkeypatch.setitem(fakecuda.KERNEL_EMULATIONS, source.name, lambda x, y: None)
    x = fakecuda.xp.asarray([1.0, 2.0])
    kernel = fakecuda.xp.ElementwiseKernel(*source)
    with pytest.raises(nvrtc.KernelCompileError, match="tinynet_broken_on_call"):
        kernel(x, fakecuda.xp.empty_like(x))
