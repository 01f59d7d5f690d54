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
                a = (o * tn.tensor(v, device=o.device)).sum()   # where o is (to_device moves it)
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


def _gradients(info, sample, create_graph):
    """Gradients of ``sum_i <out_i, v_i>`` (``v`` seeded, so the same for every call) with
    respect to every float input, through ``backward(create_graph=...)``; None where an
    input gets no gradient."""
    ours_in = _tensors(sample)
    out = info.op(*ours_in, **sample.kwargs)
    rng = np.random.default_rng(0)
    total = None
    for o in (list(out) if isinstance(out, (tuple, list)) else [out]):
        if isinstance(o, tn.Tensor) and o.requires_grad:
            term = (o * tn.tensor(rng.standard_normal(o.shape), device=o.device)).sum()
            total = term if total is None else total + term
    if total is None:
        return None
    total.backward(create_graph=create_graph)
    return [x.grad if isinstance(x, tn.Tensor) and x.requires_grad else None for x in ours_in], ours_in


@pytest.mark.parametrize("info", [o for o in OPS if o.gradcheck], ids=_ids)
def test_create_graph_backward_matches_first_order_backward_and_pytorch(info):
    """``backward(create_graph=True)`` gives the same first derivatives as the plain backward,
    and as PyTorch's, on the same drawn inputs.

    Some ops (batch_norm, the recurrent layers and cells) have two backward implementations:
    array code for first-order use, and one written in tinynet ops that runs when a graph
    is requested. gradcheck sees only the first; gradgradcheck differentiates the second but
    compares it with finite differences of itself, so a wrong op-built backward passes both.
    This test pins the op-built one to the other two. It runs for every registered op, so
    an op registered later is covered without opting in.
    """
    @_settings(info)
    @given(info.samples())
    def check(sample):
        first = _gradients(info, sample, create_graph=False)
        assert first is not None, f"{info.name}: no output requires grad, nothing to compare"
        built, ours_in = _gradients(info, sample, create_graph=True)
        for i, (a, b) in enumerate(zip(first[0], built)):
            if a is None and b is None:
                continue
            assert a is not None and b is not None, f"{info.name}: argument {i} has a gradient on one path only"
            assert_close(b.detach(), a, rtol=max(info.rtol, 1e-9), atol=max(info.atol, 1e-9),
                         msg=f"{info.name}: create_graph=True gradient of argument {i} differs "
                             f"from the create_graph=False one")
        if torch is None or info.torch_op is None:
            return
        theirs_in = _torch_args(sample)
        theirs = info.torch_op(torch, *theirs_in, **sample.kwargs)
        rng = np.random.default_rng(0)
        total = None
        for t in (list(theirs) if isinstance(theirs, (tuple, list)) else [theirs]):
            if t.requires_grad:
                term = (t * torch.from_numpy(rng.standard_normal(tuple(t.shape)))).sum()
                total = term if total is None else total + term
        total.backward()
        for i, (b, y) in enumerate(zip(built, theirs_in)):
            if b is not None:
                gy = y.grad if y.grad is not None else torch.zeros_like(y)
                assert_close(b.detach(), gy, rtol=info.rtol, atol=max(info.atol, 1e-9),
                             msg=f"{info.name}: create_graph=True gradient of argument {i} vs PyTorch")
    check()


def _function_classes():
    """Every ``Function`` subclass defined in tinynet (functional and below)."""
    import tinynet.functional  # noqa: F401  (defines them)
    found, stack = set(), [tn.autograd.Function]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in found and sub.__module__.startswith("tinynet."):
                found.add(sub)
                stack.append(sub)
    return found


def _has_op_built_backward(cls):
    """A backward that consults the grad mode has a separate create_graph path."""
    import inspect
    backward = cls.__dict__.get("backward")
    return backward is not None and "grad_enabled" in inspect.getsource(backward)


def _graph_functions(out):
    seen, stack = set(), [o._ctx for o in (out if isinstance(out, (tuple, list)) else [out])
                          if isinstance(o, tn.Tensor) and o._ctx is not None]
    while stack:
        node = stack.pop()
        if type(node) in seen:
            continue
        seen.add(type(node))
        stack.extend(t._ctx for t in node.inputs if isinstance(t, tn.Tensor) and t._ctx is not None)
    return seen


def test_every_op_built_backward_is_reached_by_a_registered_op():
    """A Function whose backward branches on the grad mode (an op-built create_graph path
    beside an array path) must sit in the graph of some registered op, so that
    test_create_graph_backward_matches_first_order_backward_and_pytorch compares its two paths."""
    from hypothesis import Phase
    branching = {cls for cls in _function_classes() if _has_op_built_backward(cls)}
    assert branching, "no Function with an op-built backward found: the detection is broken"
    reached = set()
    for info in OPS:
        if not info.gradcheck:
            continue

        @settings(max_examples=1, phases=[Phase.generate], database=None,
                  suppress_health_check=list(HealthCheck))
        @given(info.samples())
        def record(sample):
            reached.update(_graph_functions(info.op(*_tensors(sample), **sample.kwargs)))
        record()
    missing = sorted(cls.__qualname__ for cls in branching - reached)
    assert not missing, f"Functions with an op-built backward that no registered op reaches: {missing}"


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
                # An op's own dtype= argument (softmax's) sets the result's dtype.
                expected = np.dtype(sample.kwargs.get("dtype") or np.float32)
                assert b.dtype == expected, f"{info.name}: float32 input gave {b.dtype}"
                assert_close(b, a, rtol=info.f32_rtol, atol=info.f32_atol, msg=info.name)
    check()


def test_every_exported_op_is_registered():
    """An op exported by tinynet.functional without a registry entry fails here."""
    registered = {o.name for o in OPS}
    missing = sorted(n for n in F.__all__ if n not in registered and n not in NOT_DIFFERENTIABLE)
    assert not missing, f"ops exported by tinynet.functional with no registry entry: {missing}"
