"""BatchNorm running statistics against torch over several steps, train/eval switching,
momentum=None (cumulative average), track_running_stats=False, and the functional op."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
import tinynet.functional as F
from tinynet.testing import assert_close, gradcheck, gradgradcheck

try:                      # only the PyTorch comparisons need it
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install tinynet[ref])")


def _pair(cls, tcls, *args, **kwargs):
    ours, theirs = cls(*args, **kwargs).double(), tcls(*args, **kwargs).double()
    return ours, theirs


def _check_buffers(ours, theirs, msg):
    assert_close(ours.running_mean, theirs.running_mean, rtol=1e-12, atol=1e-12, msg=msg + " mean")
    assert_close(ours.running_var, theirs.running_var, rtol=1e-12, atol=1e-12, msg=msg + " var")
    assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item()


@needs_torch
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("kind", ["2d", "1d", "1d3"])
def test_running_stats_follow_torch_over_steps(momentum, kind):
    """Momentum update with the unbiased variance (or the cumulative average for None)."""
    cls, tcls, shape = {"2d": (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 6)),
                        "1d": (nn.BatchNorm1d, torch.nn.BatchNorm1d, (8, 3)),
                        "1d3": (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 7))}[kind]
    ours, theirs = _pair(cls, tcls, 3, momentum=momentum)
    rng = np.random.default_rng(0)
    for step in range(5):
        x = rng.standard_normal(shape) * (step + 1) + step
        y, yt = ours(tn.tensor(x)), theirs(torch.from_numpy(x))
        assert_close(y, yt, rtol=1e-10, atol=1e-10, msg=f"train output step {step}")
        _check_buffers(ours, theirs, f"step {step}")
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape)
    assert_close(ours(tn.tensor(x)), theirs(torch.from_numpy(x)), rtol=1e-10, atol=1e-10,
                 msg="eval output uses running statistics")
    _check_buffers(ours, theirs, "eval must not update")


@needs_torch
def test_eval_gradients_match_torch():
    ours, theirs = _pair(nn.BatchNorm2d, torch.nn.BatchNorm2d, 3)
    rng = np.random.default_rng(1)
    for _ in range(2):
        x = rng.standard_normal((4, 3, 3, 3))
        ours(tn.tensor(x)), theirs(torch.from_numpy(x))
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 3, 3))
    a, b = tn.tensor(x, requires_grad=True), torch.from_numpy(x.copy()).requires_grad_(True)
    (ours(a) ** 2).sum().backward()
    (theirs(b) ** 2).sum().backward()
    assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-10)
    assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-10, atol=1e-10)
    assert_close(ours.bias.grad, theirs.bias.grad, rtol=1e-10, atol=1e-10)


@needs_torch
def test_without_running_stats_uses_batch_stats_in_eval():
    ours, theirs = _pair(nn.BatchNorm2d, torch.nn.BatchNorm2d, 2, track_running_stats=False)
    assert ours.running_mean is None and "running_mean" not in ours.state_dict()
    x = np.random.default_rng(2).standard_normal((3, 2, 4, 4))
    ours.eval()
    theirs.eval()
    assert_close(ours(tn.tensor(x)), theirs(torch.from_numpy(x)), rtol=1e-10, atol=1e-10)


@needs_torch
def test_state_dict_keys_match_torch():
    assert list(nn.BatchNorm2d(3).state_dict()) == list(torch.nn.BatchNorm2d(3).state_dict())
    assert list(nn.BatchNorm1d(3, affine=False).state_dict()) == \
        list(torch.nn.BatchNorm1d(3, affine=False).state_dict())


def test_float32_running_stats_stay_float32():
    bn = nn.BatchNorm2d(3)
    bn(tn.randn(2, 3, 4, 4))
    assert bn.running_mean.dtype == np.float32 and bn.running_var.dtype == np.float32


def test_batch_norm_double_backward():
    """The training-mode backward is itself differentiable (written in ops)."""
    rng = np.random.default_rng(3)
    x = tn.tensor(rng.standard_normal((3, 2, 2, 2)), requires_grad=True)
    w = tn.tensor(rng.random(2) + 0.5, requires_grad=True)
    b = tn.tensor(rng.standard_normal(2), requires_grad=True)
    fn = lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)
    assert gradcheck(fn, [x, w, b])
    assert gradgradcheck(fn, [x, w, b])
    assert gradgradcheck(lambda x: F.batch_norm(x, None, None, training=True), [x])


def test_functional_batch_norm_argument_errors():
    x = tn.randn(4, 3)
    with pytest.raises(ValueError, match="batch_norm: weight has 2 elements but input has 3 channels"):
        F.batch_norm(x, None, None, tn.ones(2), training=True)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(x, tn.zeros(3), None, training=True)
    with pytest.raises(ValueError, match="batch_norm: expected input of shape"):
        F.batch_norm(tn.randn(3), None, None, training=True)


@needs_torch
def test_layer_norm_matches_torch_with_double_backward():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 5))
    w, b = rng.random((4, 5)) + 0.5, rng.standard_normal((4, 5))
    ours = F.layer_norm(tn.tensor(x), (4, 5), tn.tensor(w), tn.tensor(b))
    theirs = torch.nn.functional.layer_norm(torch.from_numpy(x), (4, 5), torch.from_numpy(w),
                                            torch.from_numpy(b))
    assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    xt = tn.tensor(x[:2, :2, :3], requires_grad=True)
    assert gradgradcheck(lambda t: F.layer_norm(t, 3), [xt])


@needs_torch
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("shape,offset", [((2, 6, 40, 40), 0.0), ((2, 6, 40, 40), 100.0),
                                          ((16, 7, 2, 2), 3.0), ((9, 5), 0.0),
                                          ((12, 5, 3, 7), 100.0)])
def test_batch_norm_float32_in_channel_chunks_is_as_accurate_as_torch(monkeypatch, shape, offset,
                                                                      batch_first):
    """float32 batch norm run in uneven channel chunks on 3 threads, against a float64
    reference, within 8x PyTorch's own float32 error, with the sums taken batch first or
    row by row (both forced, whatever the batch size). Would fail if a chunk wrote another
    chunk's channels, if a per-channel vector were broadcast against the wrong axis, or if
    the statistics lost the two-pass form (Σx² - Mμ² cancels on the offset-100 input)."""
    from tinynet import backend
    from tinynet.functional import normalization
    monkeypatch.setattr(backend, "parallel_grain", 1)
    monkeypatch.setattr(normalization, "_BATCH_FIRST_MIN", 1 if batch_first else 10 ** 9)
    before = backend._num_threads
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) + offset).astype(np.float32)
    w, b = (rng.standard_normal(shape[1]).astype(np.float32) for _ in range(2))
    g = rng.standard_normal(shape).astype(np.float32)

    def run(lib, tensor, arrays, dtype):
        ts = [tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        y = lib.batch_norm(ts[0], None, None, ts[1], ts[2], training=True)
        y.backward(tensor(g.astype(dtype)))
        return [np.asarray(y.detach().numpy(), np.float64)] + [np.asarray(t.grad.numpy(), np.float64) for t in ts]

    backend.set_num_threads(3)
    try:
        ours = run(F, tn.tensor, (x, w, b), np.float32)
    finally:
        backend.set_num_threads(before or backend._usable_cores())
        backend._num_threads = before
    theirs = run(torch.nn.functional, torch.tensor, (x, w, b), np.float32)
    exact = run(torch.nn.functional, torch.tensor, (x, w, b), np.float64)
    for o, t32, e in zip(ours, theirs, exact):
        scale = np.abs(e).max()
        assert np.abs(o - e).max() / scale <= 8 * max(np.abs(t32 - e).max() / scale, 1e-7)
