"""The fakecuda stand-in enforces CuPy's rules; each test names the port bug it would let through."""
import numpy as np
import pytest

import tinynet as tn
from tinynet import backend
from tinynet.kernels import lstm as lk
from tinynet.testing import _cupy_api, fakecuda

xp = fakecuda.xp


@pytest.fixture(autouse=True)
def stand_in(monkeypatch):
    """Installs the stand-in for one test and restores whatever was there before."""
    monkeypatch.setattr(backend, "_stand_in", backend._stand_in)
    fakecuda.install()


def dev(a):
    return backend.to_device(np.asarray(a), "fakecuda")


def test_device_says_it_is_a_stand_in_and_not_cuda():
    d = tn.device("fakecuda")
    assert str(d) == "fakecuda:0" and d.type == "fakecuda" and d != "cuda"
    assert "stand-in" in repr(d) and "not a GPU" in repr(d)
    t = tn.ones(2, device="fakecuda")
    assert t.device == "fakecuda:0" and "fakecuda" in repr(t)
    with pytest.raises(ValueError, match="unknown device"):
        tn.device("fakecuda:1")


def test_numpy_only_names_are_missing_from_the_namespace():
    # Wrong: code calling xp.errstate (NumPy only) would pass here and fail on CuPy.
    numpy_only = [n for n in ("errstate", "busday_count", "geterr", "insert") if n not in _cupy_api.NAMESPACE]
    assert numpy_only, "the list should have NumPy-only names"
    for name in numpy_only:
        with pytest.raises(AttributeError, match="has no attribute"):
            getattr(xp, name)
    assert xp.tanh is not None and xp.add.at is not None and xp.lib.stride_tricks.as_strided


def test_array_attributes_are_cupy_ones():
    a = dev([1.0, 2.0])
    assert a.shape == (2,) and a.dtype == np.float64
    with pytest.raises(AttributeError, match="cupy.ndarray"):
        a.setflags                         # NumPy has it, cupy.ndarray does not
    assert not isinstance(a.data, memoryview)   # .data is a device pointer on CuPy


def test_keywords_cupy_does_not_take_are_refused():
    # Wrong: xp.sum(..., where=) or as_strided(..., writeable=) pass on NumPy, fail on CuPy.
    a = dev([1.0, 2.0])
    with pytest.raises(TypeError, match="unexpected keyword"):
        xp.sum(a, where=a > 1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        a.max(initial=0.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        xp.lib.stride_tricks.as_strided(a, (2,), (8,), writeable=False)
    assert float(xp.sum(a, axis=0, keepdims=False)) == 3.0


def test_implicit_host_copies_raise():
    # Wrong: a hidden device-to-host copy (np.asarray, numpy functions) would go unnoticed.
    a = dev([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="implicitly"):
        np.asarray(a)
    with pytest.raises(TypeError, match="implicitly"):
        np.sum(a)
    with pytest.raises(TypeError, match="implicitly"):
        np.concatenate([a, a])
    with pytest.raises(TypeError):
        np.exp(a)
    with pytest.raises(TypeError):
        np.add.at(a, [0, 0], 1.0)
    assert backend.asnumpy(a).tolist() == [1.0, 2.0, 3.0]
    assert type(a.get()) is np.ndarray


def test_scalar_conversions_work_as_on_cupy():
    a = dev(2.5)
    assert float(a) == 2.5 and int(a) == 2 and bool(a) and a.item() == 2.5
    assert f"{a.sum():.1f}" == "2.5"


def test_reductions_and_scalar_indexing_give_0d_device_arrays():
    # Wrong: code that treats a reduction as a NumPy scalar (isinstance float, np.* on it).
    a = dev([[1.0, 2.0], [3.0, 4.0]])
    for r in (a.sum(), xp.sum(a), a.max(), a[0, 1], xp.array_equal(a, a)):
        assert type(r) is fakecuda.ndarray and r.ndim == 0
    assert float(a.sum()) == 10.0


def test_mixing_with_numpy_arrays_is_the_device_mismatch_error():
    a, h = dev([1.0, 2.0]), np.array([1.0, 2.0])
    for op in (lambda: a + h, lambda: h + a, lambda: xp.add(a, h), lambda: xp.where(a > 1, a, h)):
        with pytest.raises(TypeError, match="NumPy array met a device array"):
            op()
    with pytest.raises(TypeError, match="NumPy array met a device array"):
        a[...] = h
    assert (a * np.float64(2.0)).tolist() == [2.0, 4.0]    # NumPy scalars are fine, as on CuPy
    with pytest.raises(ValueError, match="fakecuda:0"):
        tn.tensor([1.0], device="cpu") + tn.tensor([1.0], device="fakecuda")


def test_non_numeric_dtypes_do_not_exist_on_the_device():
    with pytest.raises(TypeError, match="no arrays of dtype"):
        xp.asarray(["a", "b"])


def test_host_to_device_copies_are_explicit():
    a = xp.asarray(np.arange(3.0))
    assert type(a) is fakecuda.ndarray and backend.device_of(a) == "fakecuda"
    assert backend.to_device(a, "fakecuda") is a
    assert type(backend.to_device(a, "cpu")) is np.ndarray


def test_a_numpy_call_planted_in_a_kernel_fails():
    # The port bug the stand-in exists for: np.add.at on a device array inside a kernel.
    def scatter_kernel(target, index, values):
        np.add.at(target, index, values)

    with pytest.raises(TypeError):
        scatter_kernel(dev(np.zeros(3)), dev([0, 0]), dev([1.0, 1.0]))
    target = dev(np.zeros(3))
    backend.scatter_add(target, dev([0, 0, 2]), dev([1.0, 1.0, 5.0]))   # the backend's way
    assert backend.asnumpy(target).tolist() == [2.0, 0.0, 5.0]


def test_undeclared_kernels_are_refused():
    with pytest.raises(ValueError, match="not declared"):
        xp.ElementwiseKernel("T x", "T y", "y = x", "tinynet_undeclared_copy")


def test_kernel_calls_are_checked_like_cupy():
    kernel = backend.elementwise_kernel(lk.FORWARD_KERNEL, xp)
    B, H = 2, 3
    c_prev, outs, gates = dev(np.zeros((B, H))), [dev(np.zeros((B, H))) for _ in range(3)], dev(np.zeros((B, 4 * H)))
    with pytest.raises(TypeError, match="wrong number of arguments"):
        kernel(c_prev, H, *outs)
    with pytest.raises(TypeError, match="type T"):
        kernel(c_prev, H, *outs, dev(np.zeros((B, 4 * H), np.float32)))
    with pytest.raises(TypeError, match="NumPy array met a device array"):
        kernel(np.zeros((B, H)), H, *outs, gates)
    with pytest.raises(ValueError, match="broadcast shape"):
        kernel(c_prev, H, dev(np.zeros((B, H + 1))), outs[1], outs[2], gates)


@pytest.mark.parametrize("with_mask", [False, True])
def test_lstm_layer_through_the_kernels_matches_the_numpy_path(with_mask):
    # Wrong: a kernel call site passing arguments in the wrong order, or an emulation that
    # does not follow the CUDA body.
    rng = np.random.default_rng(0)
    T, B, I, H = 4, 3, 2, 5
    args = [rng.standard_normal(s) for s in ((T, B, I), (B, H), (B, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    mask = lk.length_mask([4, 2, 3], T, np) if with_mask else None
    y, h, c, saved = lk.lstm_layer_forward(*args, mask=mask)
    yd, hd, cd, saved_d = lk.lstm_layer_forward(*map(dev, args), mask=None if mask is None else dev(mask))
    for a, b in ((y, yd), (h, hd), (c, cd)):
        np.testing.assert_allclose(backend.asnumpy(b), a, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal((T, B, H))
    grads = lk.lstm_layer_backward(saved, dy)
    grads_d = lk.lstm_layer_backward(saved_d, dev(dy))
    for a, b in zip(grads, grads_d):
        np.testing.assert_allclose(backend.asnumpy(b), a, rtol=1e-10, atol=1e-12)


def test_every_kernel_has_an_emulation():
    import tinynet.kernels  # noqa: F401  (declares the kernels)
    names = {k.name for k in backend.KERNEL_SOURCES}
    assert names and names <= set(fakecuda.KERNEL_EMULATIONS)


def test_api_list_is_the_installed_cupys():
    cupy = pytest.importorskip("cupy", reason="the list is checked against CuPy where it is installed")
    if cupy.__version__ != _cupy_api.CUPY_VERSION:
        pytest.skip(f"list made from CuPy {_cupy_api.CUPY_VERSION}, {cupy.__version__} installed; "
                    "regenerate with python -m tinynet.testing.fakecuda")
    top = {n for n in dir(cupy) if not n.startswith("_")}
    assert top == {n for n in _cupy_api.NAMESPACE if "." not in n}
    assert {n for n in dir(cupy.ndarray) if not n.startswith("_")} == _cupy_api.NDARRAY
