"""conv2d, conv_transpose2d and conv2d_weight forced through the phase grid and the
sub-pixel transposed conv (tinynet/kernels/phases.py, subpixel.py) and forced away from
them: PyTorch parity forward and backward on drawn arguments (stride, padding, dilation,
groups, output_padding, bias), gradcheck and gradgradcheck, and the routing of auto mode."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinynet as tn
import tinynet.functional as F
from tinynet.functional import conv as conv_module
from tinynet.kernels import im2col as K
from tinynet.kernels import phases as P
from tinynet.kernels.im2col import conv_output_size, conv_transpose_output_size
from tinynet.testing import gradcheck, gradgradcheck


@contextlib.contextmanager
def restored_phase_mode(mode=None):
    """Sets the phase mode (if given) and restores the previous one on exit."""
    before = P.get_phase_mode()
    if mode is not None:
        P.set_phase_mode(mode)
    try:
        yield P.set_phase_mode
    finally:
        P.set_phase_mode(before)


@pytest.fixture
def phase_mode():
    with restored_phase_mode() as set_mode:
        yield set_mode


@pytest.fixture
def counted(monkeypatch):
    """Names of the phase kernels tinynet.functional.conv calls, in order."""
    calls = []
    for module, name in ((conv_module._subpixel, "conv_transpose2d_subpixel"),
                         (conv_module._phases, "phase_im2col"), (conv_module._phases, "phase_col2im")):
        original = getattr(module, name)

        def wrapper(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapper)
    return calls


@st.composite
def conv_arguments(draw):
    """Valid conv2d / conv_transpose2d arguments with a positive output size."""
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dh, dw = draw(st.sampled_from([1, 1, 1, 2])), draw(st.sampled_from([1, 1, 1, 2]))
    oph = draw(st.integers(0, max(sh, dh) - 1))
    opw = draw(st.integers(0, max(sw, dw) - 1))
    H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    n = draw(st.integers(1, 3))
    return dict(n=n, c_in=c_in, c_out=c_out, kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                dilation=(dh, dw), output_padding=(oph, opw), size=(H, W), groups=groups,
                bias=draw(st.booleans()))


def _pair(torch, a, fn_ours, fn_theirs, shapes, gy_shape, seed):
    """Forward and all gradients of ours and PyTorch's on the same float64 data."""
    rng = np.random.default_rng(seed)
    arrays = [None if s is None else rng.standard_normal(s) for s in shapes]
    ours = [None if v is None else tn.tensor(v, requires_grad=True) for v in arrays]
    theirs = [None if v is None else torch.tensor(v, requires_grad=True) for v in arrays]
    y, ty = fn_ours(*ours), fn_theirs(*theirs)
    assert y.shape == tuple(ty.shape)
    gy = rng.standard_normal(y.shape)
    y.backward(tn.tensor(gy))
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-9)
    for o, t_ in zip(ours, theirs):
        if o is not None:
            np.testing.assert_allclose(o.grad.numpy(), t_.grad.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mode", ["always", "never"])
@settings(max_examples=60, deadline=None)
@given(a=conv_arguments(), seed=st.integers(0, 2**31 - 1))
def test_conv2d_forward_and_backward_match_pytorch(mode, a, seed):
    # backward runs conv_transpose2d (input) and conv2d_weight (weight) on the same path
    torch = pytest.importorskip("torch")
    (kh, kw), (H, W) = a["kernel"], a["size"]
    if min(conv_output_size(s, k, st_, p, d) for s, k, st_, p, d in
           zip(a["size"], a["kernel"], a["stride"], a["padding"], a["dilation"])) <= 0:
        return
    with restored_phase_mode(mode):
        geometry = dict(stride=a["stride"], padding=a["padding"], dilation=a["dilation"], groups=a["groups"])
        _pair(torch, a, lambda x, w, b=None: F.conv2d(x, w, b, **geometry),
              lambda x, w, b=None: torch.nn.functional.conv2d(x, w, b, **geometry),
              [(a["n"], a["c_in"], H, W), (a["c_out"], a["c_in"] // a["groups"], kh, kw),
               (a["c_out"],) if a["bias"] else None], None, seed)


@pytest.mark.parametrize("mode", ["always", "never"])
@settings(max_examples=60, deadline=None)
@given(a=conv_arguments(), seed=st.integers(0, 2**31 - 1))
def test_conv_transpose2d_forward_and_backward_match_pytorch(mode, a, seed):
    # always: the sub-pixel kernel (one group, dilation 1, kernel >= stride) or phase col2im
    torch = pytest.importorskip("torch")
    (kh, kw), (H, W) = a["kernel"], a["size"]
    if min(conv_transpose_output_size(s, k, st_, p, op, d) for s, k, st_, p, op, d in
           zip(a["size"], a["kernel"], a["stride"], a["padding"], a["output_padding"], a["dilation"])) <= 0:
        return
    with restored_phase_mode(mode):
        geometry = dict(stride=a["stride"], padding=a["padding"], output_padding=a["output_padding"],
                        dilation=a["dilation"], groups=a["groups"])
        _pair(torch, a, lambda x, w, b=None: F.conv_transpose2d(x, w, b, **geometry),
              lambda x, w, b=None: torch.nn.functional.conv_transpose2d(x, w, b, **geometry),
              [(a["n"], a["c_in"], H, W), (a["c_in"], a["c_out"] // a["groups"], kh, kw),
               (a["c_out"],) if a["bias"] else None], None, seed)


@pytest.mark.parametrize("args", [
    dict(stride=2, padding=1),                                   # sub-pixel, the decoders' 4x4
    dict(stride=(2, 3), padding=(0, 2), output_padding=(1, 0)),  # sub-pixel, uneven phases
    dict(stride=2, padding=1, groups=2),                         # phase col2im
    dict(stride=2, padding=1, dilation=2),                       # phase col2im
])
def test_conv_transpose2d_gradcheck_and_gradgradcheck_through_the_phases(args, phase_mode, counted):
    phase_mode("always")
    rng = np.random.default_rng(4)
    groups = args.get("groups", 1)
    x = tn.tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True)
    w = tn.tensor(rng.standard_normal((2, 4 // groups, 4, 4)), requires_grad=True)
    b = tn.tensor(rng.standard_normal(4), requires_grad=True)
    fn = lambda x_, w_, b_: F.conv_transpose2d(x_, w_, b_, **args)  # noqa: E731
    assert gradcheck(fn, (x, w, b))
    assert gradgradcheck(fn, (x, w, b))
    assert ("conv_transpose2d_subpixel" in counted) == (groups == 1 and "dilation" not in args)


def test_conv2d_gradcheck_and_gradgradcheck_through_the_phases(phase_mode, counted):
    phase_mode("always")
    rng = np.random.default_rng(5)
    x = tn.tensor(rng.standard_normal((2, 3, 6, 5)), requires_grad=True)
    w = tn.tensor(rng.standard_normal((4, 3, 3, 2)), requires_grad=True)
    b = tn.tensor(rng.standard_normal(4), requires_grad=True)
    fn = lambda x_, w_, b_: F.conv2d(x_, w_, b_, stride=2, padding=1)  # noqa: E731
    assert gradcheck(fn, (x, w, b))
    assert gradgradcheck(fn, (x, w, b))
    assert "phase_im2col" in counted


def test_never_mode_keeps_the_phase_kernels_out(phase_mode, counted):
    phase_mode("never")
    x = tn.randn(2, 8, 6, 6, requires_grad=True)
    F.conv_transpose2d(x, tn.randn(8, 4, 4, 4), stride=2, padding=1).sum().backward()
    F.conv2d(x, tn.randn(4, 8, 3, 3), stride=2, padding=1).sum().backward()
    assert counted == []


def test_auto_mode_routes_by_shape(phase_mode, counted):
    phase_mode("auto")
    # a decoder's 4x4 stride-2 up-convolution: sub-pixel forward, phase im2col backward
    x = tn.randn(2, 16, 7, 7, requires_grad=True)
    w = tn.randn(16, 8, 4, 4, requires_grad=True)
    F.conv_transpose2d(x, w, stride=2, padding=1).sum().backward()
    assert counted == ["conv_transpose2d_subpixel", "phase_im2col", "phase_im2col"]
    counted.clear()
    # the U-Net's 2x2 stride-2 up-convolution: sub-pixel too (each phase one tap)
    F.conv_transpose2d(x, tn.randn(16, 8, 2, 2), stride=2)
    assert counted == ["conv_transpose2d_subpixel"]
    counted.clear()
    # stride 1: im2col / row strips
    F.conv2d(x, tn.randn(8, 16, 3, 3), padding=1)
    assert counted == []
    use = conv_module._use_subpixel
    # many input channels, few output channels (the input gradient of a 7x7 stem conv):
    # copying the input per column tap costs more than col2im's sums
    assert not use((16, 64, 56, 56), (64, 3, 7, 7), (2, 2), (3, 3), (1, 1), 1)
    assert use((8, 128, 14, 14), (128, 64, 4, 4), (2, 2), (1, 1), (1, 1), 1)
    # uneven phases (3x3 stride 2, a strided conv's input gradient): the phase grid
    assert not use((16, 512, 4, 4), (512, 256, 3, 3), (2, 2), (1, 1), (1, 1), 1)
    phases = conv_module._use_phases
    geometry = (3, 3), (2, 2), (1, 1), (1, 1), 1
    resnet_stage = (16, 64, 32, 32), (128, 64) + geometry[0]
    # ResNet-18's 64->128 stride-2 conv (N16, rows of 16): im2col's row copies beat the
    # grid's spare GEMM columns for the conv and its weight gradient ...
    assert not phases(*resnet_stage, *geometry[1:], (16, 16))
    # ... while its input gradient (col2im's scatter) keeps the grid
    assert phases(*resnet_stage, *geometry[1:], (16, 16), gather=False)
    # rows of 8, or a batch longer than a row (im2col batch-innermost): the grid
    assert phases((16, 128, 16, 16), (128, 128, 3, 3), *geometry[1:], (8, 8))
    assert phases((32, 64, 32, 32), (128, 64, 3, 3), *geometry[1:], (16, 16))
    # 256 output channels: the GEMM dominates, either direction
    assert not phases((16, 128, 16, 16), (256, 128, 3, 3), *geometry[1:], (8, 8), gather=False)


def test_transposed_conv_backward_builds_the_phase_columns_of_dy_once(phase_mode, monkeypatch):
    # its input gradient conv2d(dy, W) and weight gradient conv2d_weight(dy, x) read the
    # same columns of dy; im2col.sharing() makes the second one reuse the first's
    phase_mode("always")
    built = []
    original = P._phase_im2col
    monkeypatch.setattr(P, "_phase_im2col", lambda *a: built.append(a[0].shape) or original(*a))
    rng = np.random.default_rng(7)
    x = tn.tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    w = tn.tensor(rng.standard_normal((3, 2, 4, 4)), requires_grad=True)
    dy = tn.tensor(rng.standard_normal((2, 2, 8, 8)))
    F.conv_transpose2d(x, w, stride=2, padding=1).backward(dy)
    # (an array type without a readable address, the fakecuda stand-in, is never shared)
    assert built == [(2, 2, 8, 8)] * (1 if K._address(dy.data) is not None else 2)
    shared = x.grad.numpy().copy(), w.grad.numpy().copy()
    phase_mode("never")
    x.grad = w.grad = None
    F.conv_transpose2d(x, w, stride=2, padding=1).backward(dy)
    np.testing.assert_allclose(shared[0], x.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(shared[1], w.grad.numpy(), rtol=1e-12, atol=1e-12)
    # batch chunks (one image each): each chunk's columns are its own, never another's
    phase_mode("always")
    x.grad = w.grad = None
    limit = K.get_workspace_limit()
    K.set_workspace_limit(1)
    try:
        F.conv_transpose2d(x, w, stride=2, padding=1).backward(dy)
    finally:
        K.set_workspace_limit(limit)
    np.testing.assert_allclose(shared[0], x.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(shared[1], w.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("limit, shared, unshared", [(None, [(2, 2, 8, 8)], [(2, 2, 8, 8)] * 2),
                                                     (4096, [(1, 2, 8, 8)] * 3, [(1, 2, 8, 8)] * 4)])
def test_transposed_conv_backward_builds_the_im2col_columns_of_dy_once(phase_mode, monkeypatch, limit,
                                                                       shared, unshared):
    # without the phase grid, both gradients read dy's plain im2col columns: built once;
    # the columns kept stay within the workspace limit (4 kB: batch chunks of one image,
    # 4 kB of columns each; the first chunk's are kept, the second's built twice)
    phase_mode("never")
    if limit is not None:
        monkeypatch.setattr(K, "workspace_limit", limit)
    built = []
    original = K._im2col
    monkeypatch.setattr(K, "_im2col", lambda *a: built.append(a[0].shape) or original(*a))
    rng = np.random.default_rng(8)
    x = tn.tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    w = tn.tensor(rng.standard_normal((3, 2, 4, 4)), requires_grad=True)
    dy = rng.standard_normal((2, 2, 8, 8))
    F.conv_transpose2d(x, w, stride=2, padding=1).backward(tn.tensor(dy))
    assert built == (shared if K._address(x.data) is not None else unshared)
    torch = pytest.importorskip("torch")
    tx, tw = (torch.tensor(t.detach().numpy(), requires_grad=True) for t in (x, w))
    torch.nn.functional.conv_transpose2d(tx, tw, stride=2, padding=1).backward(torch.tensor(dy))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_outside_a_backward_nothing_is_cached(phase_mode):
    # an array overwritten in place between two convolutions gives two different answers
    phase_mode("always")
    x = np.random.default_rng(8).standard_normal((1, 2, 6, 6))
    xt, w = tn.tensor(x), tn.tensor(np.ones((1, 2, 3, 3)))
    first = F.conv2d(xt, w, stride=2).numpy().copy()
    xt.data[...] = 0
    assert np.all(F.conv2d(xt, w, stride=2).numpy() == 0) and np.any(first != 0)
