"""Every registered op: gradcheck, gradgradcheck, PyTorch parity, float32 vs float64.

Driven by ``tinynet.testing.all_ops()``; a failing test names the op and the drawn sample.
"""
import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import all_ops, gradcheck, gradgradcheck, assert_close
from tinynet.testing.registry import NOT_DIFFERENTIABLE

try:
    import torch
except ImportError:  # parity tests are reported as skipped, with the reason
    torch = None

OPS = all_ops()


def _ids(info):
    return info.name


def _settings(info, cap=None):
    current = settings.default.max_examples
    n = min(current, info.max_examples or current, cap or current)
    return settings(max_examples=n, suppress_health_check=list(HealthCheck))


def _tensors(sample, dtype=np.float64, requires_grad=True):
    out = []
    for i, a in enumerate(sample.args):
        if isinstance(a, (np.ndarray, np.generic)):
            a = np.asarray(a)
            if a.dtype.kind == "f":
                out.append(tn.tensor(a.astype(dtype),
                                     requires_grad=requires_grad and i not in sample.no_grad))
            else:
                out.append(tn.tensor(a))
        else:
            out.append(a)
    return out


def _call(info, sample):
    return lambda *args: info.op(*args, **sample.kwargs)


def _first(out):
    return out if not isinstance(out, (tuple, list)) else [o for o in out if isinstance(o, tn.Tensor)]


@pytest.mark.parametrize("info", [o for o in OPS if o.gradcheck], ids=_ids)
def test_gradcheck(info):
    """First derivatives match central finite differences (float64)."""
    @_settings(info)
    @given(info.samples())
    def check(sample):
        gradcheck(_call(info, sample), _tensors(sample), fast_mode=info.fast_mode)
    check()


@pytest.mark.parametrize("info", [o for o in OPS if o.gradgradcheck], ids=_ids)
def test_gradgradcheck(info):
    """Second derivatives (backward of backward) match finite differences of backward."""
    @_settings(info, cap=max(5, settings.default.max_examples // 2))
    @given(info.samples())
    def check(sample):
        gradgradcheck(_call(info, sample), _tensors(sample), fast_mode=info.fast_mode)
    check()


def _torch_args(sample):
    out = []
    for i, a in enumerate(sample.args):
        if isinstance(a, (np.ndarray, np.generic)):
            t = torch.from_numpy(np.array(a))
            if a.dtype.kind == "f" and i not in sample.no_grad:
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(a)
    return out


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install tinynet[ref])")
@pytest.mark.parametrize("info", [o for o in OPS if o.torch_op is not None], ids=_ids)
def test_torch_parity(info):
    """Forward values and gradients equal PyTorch's in float64."""
    @_settings(info)
    @given(info.samples())
    def check(sample):
        ours_in = _tensors(sample)
        ours = info.op(*ours_in, **sample.kwargs)
        theirs_in = _torch_args(sample)
        theirs = info.torch_op(torch, *theirs_in, **sample.kwargs)
        ours_l = list(ours) if isinstance(ours, (tuple, list)) else [ours]
        theirs_l = list(theirs) if isinstance(theirs, (tuple, list)) else [theirs]
        assert len(ours_l) == len(theirs_l), f"{info.name}: output count differs from PyTorch"
        for o, t in zip(ours_l, theirs_l):
            assert tuple(o.shape) == tuple(t.shape), f"{info.name}: shape {o.shape} vs {tuple(t.shape)}"
            assert_close(o, t, rtol=info.rtol, atol=info.atol, msg=f"{info.name} forward")
        rng = np.random.default_rng(0)
        ours_sum, theirs_sum = None, None
        for o, t in zip(ours_l, theirs_l):
            if o.requires_grad and t.requires_grad:
                v = rng.standard_normal(o.shape)
                a = (o * tn.tensor(v)).sum()
                b = (t * torch.from_numpy(v)).sum()
                ours_sum = a if ours_sum is None else ours_sum + a
                theirs_sum = b if theirs_sum is None else theirs_sum + b
        if ours_sum is None:
            return
        ours_sum.backward()
        theirs_sum.backward()
        for i, (x, y) in enumerate(zip(ours_in, theirs_in)):
            if isinstance(x, tn.Tensor) and x.requires_grad:
                gx = x.grad if x.grad is not None else tn.zeros(*x.shape, dtype=x.dtype)
                gy = y.grad if y.grad is not None else torch.zeros_like(y)
                assert_close(gx, gy, rtol=info.rtol, atol=max(info.atol, 1e-9),
                             msg=f"{info.name} gradient of argument {i}")
    check()


@pytest.mark.parametrize("info", OPS, ids=_ids)
def test_float32_agrees_with_float64(info):
    """The float32 path computes the same function (within float32 rounding)."""
    @_settings(info)
    @given(info.samples())
    def check(sample):
        out64 = info.op(*_tensors(sample, requires_grad=False), **sample.kwargs)
        out32 = info.op(*_tensors(sample, np.float32, requires_grad=False), **sample.kwargs)
        for a, b in zip(out64 if isinstance(out64, (tuple, list)) else [out64],
                        out32 if isinstance(out32, (tuple, list)) else [out32]):
            if a.dtype.kind == "f":
                assert b.dtype == np.float32, f"{info.name}: float32 input gave {b.dtype}"
                assert_close(b, a, rtol=info.f32_rtol, atol=info.f32_atol, msg=info.name)
    check()


def test_every_exported_op_is_registered():
    """An op exported by tinynet.functional without a registry entry fails here."""
    registered = {o.name for o in OPS}
    missing = sorted(n for n in F.__all__ if n not in registered and n not in NOT_DIFFERENTIABLE)
    assert not missing, f"ops exported by tinynet.functional with no registry entry: {missing}"
