"""Devices, the CUDA-missing errors, device moves and the backend primitives."""
import sys
import types

import numpy as np
import pytest

import tinynet as tn
from tinynet import backend

GPU = backend.is_cuda_available()
needs_no_gpu = pytest.mark.skipif(GPU, reason="simulates a machine without CUDA; this one has a GPU")
needs_gpu = pytest.mark.skipif(not GPU, reason=f"needs a GPU: {backend.cuda_unavailable_reason()}")


def test_device_parsing():
    assert str(tn.device("cpu")) == "cpu"
    assert str(tn.device("cuda")) == "cuda:0"
    assert str(tn.device("CUDA:1")) == "cuda:1"
    assert tn.device("cuda:0") == "cuda"
    assert tn.device("cpu") != "cuda"
    assert repr(tn.device("cuda:2")) == "device(type='cuda', index=2)"


@pytest.mark.parametrize("spec", ["tpu", "cuda:x", "cpu:0", "", "cuda:-1"])
def test_unknown_device_string_is_value_error(spec):
    with pytest.raises(ValueError, match="device: unknown device"):
        tn.device(spec)
    with pytest.raises(ValueError, match="unknown device"):
        tn.zeros(2, device=spec)


def test_device_of_wrong_type_is_type_error():
    with pytest.raises(TypeError, match="device: expected a string"):
        tn.device(3)


def test_cpu_tensors_report_cpu():
    t = tn.tensor([1.0], device="cpu")
    assert t.device == "cpu" and t.device.type == "cpu"
    assert t.cpu() is t


@pytest.fixture
def no_cuda_state(monkeypatch):
    """Forgets what the backend learnt about CUDA, so the next request probes again."""
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_error", None)
    return monkeypatch


@needs_no_gpu
def test_cuda_without_cupy_is_runtime_error_naming_cupy(no_cuda_state):
    no_cuda_state.setitem(sys.modules, "cupy", None)     # makes `import cupy` fail
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        tn.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        tn.tensor([1.0]).to("cuda")
    assert not backend.is_cuda_available()
    assert "CuPy is not installed" in backend.cuda_unavailable_reason()


@needs_no_gpu
def test_cuda_with_cupy_but_no_gpu_is_runtime_error_naming_the_driver_error(no_cuda_state):
    class CUDARuntimeError(RuntimeError):
        pass

    def no_driver():
        raise CUDARuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_driver))
    no_cuda_state.setitem(sys.modules, "cupy", fake)
    before = tn.get_default_device()
    with pytest.raises(RuntimeError, match="CuPy found no usable GPU: CUDARuntimeError: cudaErrorInsufficientDriver"):
        tn.set_default_device("cuda")
    assert tn.get_default_device() == before      # a failed switch leaves the default alone


@needs_no_gpu
def test_cuda_with_zero_devices(no_cuda_state):
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 0))
    no_cuda_state.setitem(sys.modules, "cupy", fake)
    with pytest.raises(RuntimeError, match="no usable GPU"):
        tn.ones(1, device="cuda:0")


def test_get_array_module_on_cpu_is_numpy():
    assert backend.get_array_module(np.zeros(1)) is np
    assert backend.get_array_module() is np


def test_scatter_add_accumulates_repeated_indices():
    t = tn.zeros(4, dtype=tn.float64)
    xp = t.xp
    target = t.data
    backend.scatter_add(target, xp.asarray([0, 2, 0]), xp.asarray([1.0, 2.0, 3.0]))
    assert backend.asnumpy(target).tolist() == [4.0, 0.0, 2.0, 0.0]


def test_as_strided_and_sliding_window_view():
    x = np.arange(6.0)
    w = backend.sliding_window_view(x, 3)
    assert w.shape == (4, 3) and w[1].tolist() == [1.0, 2.0, 3.0]
    s = backend.as_strided(x, (3, 2), (16, 8))
    assert s.tolist() == [[0, 1], [2, 3], [4, 5]]
    copy = backend.ElementwiseKernelSource("T x", "T y", "y = x", "copy")
    assert backend.elementwise_kernel(copy, np) is None      # NumPy callers take their fallback


def test_to_device_cpu_roundtrip():
    a = np.arange(3.0)
    assert backend.to_device(a, "cpu") is a
    assert backend.asnumpy(a) is a


# ----------------------------------------------------------------- with a GPU
@needs_gpu
def test_move_to_gpu_and_back_is_differentiable():
    x = tn.tensor(np.array([1.0, 2.0]), device="cpu", requires_grad=True)
    y = x.cuda()
    assert y.device == "cuda:0"
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    assert x.grad.numpy().tolist() == [2.0, 4.0]


@needs_gpu
def test_mixing_devices_in_one_op_is_value_error_naming_op_and_devices():
    a = tn.ones(2, device="cpu")
    b = tn.ones(2, device="cuda")
    with pytest.raises(ValueError, match=r"add: .*cpu.*cuda:0|add: .*cuda:0.*cpu"):
        a + b
    with pytest.raises(ValueError, match=r"linear: 'input' is on cpu but 'weight' is on cuda:0"):
        tn.functional.linear(tn.ones(2, 3, device="cpu"), tn.ones(4, 3, device="cuda"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_expm1_of_nonpositive_is_within_4_ulp(dtype):
    """Would fail if the float32 route lost its log correction (exp(x) - 1 is 100% off for
    |x| < 1e-8) or its -20 clamp (exp underflows to 0 and log(0) gives NaN)."""
    x = np.concatenate([-np.logspace(-12, 2, 20001), [0.0, -np.inf, 3.0]]).astype(dtype)
    got = backend.asnumpy(backend.expm1_of_nonpositive(tn.tensor(x).data))
    exact = np.expm1(np.minimum(x.astype(np.float64), 0.0))
    ulp = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    assert got.dtype == dtype
    assert np.all(np.abs(got - exact) <= 4 * ulp), np.max(np.abs(got - exact) / ulp)
    nan = backend.expm1_of_nonpositive(tn.tensor(np.array([np.nan], dtype)).data)
    assert np.isnan(backend.asnumpy(nan)).all()


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 1024 * 5 + 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_minimum_scalar_is_numpys(size, dtype):
    """The row-against-constant-row route (large contiguous float arrays) and its
    remainder give NumPy's values, NaN and infinities included, with or without ``out``;
    strided and integer inputs take NumPy's own call."""
    rng = np.random.default_rng(size)
    x = (rng.standard_normal(size) * 5).astype(dtype)
    if dtype != np.int64 and size > 3:
        x[[0, size // 2, -1]] = [np.nan, np.inf, -np.inf]
    for value in ((0, -1, 2) if dtype == np.int64 else (0, -1.5, 2)):
        expected = np.minimum(x, value)
        np.testing.assert_array_equal(backend.minimum_scalar(x, value), expected)
        out = np.full_like(expected, 7)
        assert backend.minimum_scalar(x, value, out=out) is out
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(backend.minimum_scalar(x[::2], value), expected[::2])
