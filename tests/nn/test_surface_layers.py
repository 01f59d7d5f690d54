"""Conv1d, Dropout2d, GELU, SiLU and the L1 / SmoothL1 / Huber / KL-divergence loss modules
against PyTorch's (weights moved by state_dict, float64), plus argument errors."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
import tinynet.functional as F
from tinynet.testing import assert_close

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)


def _pair(a, requires_grad=True):
    a = np.asarray(a, dtype=np.float64)
    return tn.tensor(a, requires_grad=requires_grad), torch.from_numpy(a.copy()).requires_grad_(requires_grad)


@pytest.mark.parametrize("kw,shape", [
    (dict(in_channels=2, out_channels=3, kernel_size=3), (4, 2, 9)),
    (dict(in_channels=4, out_channels=2, kernel_size=2, stride=2, padding=1, dilation=2, groups=2), (2, 4, 8)),
    (dict(in_channels=2, out_channels=2, kernel_size=3, padding="same", bias=False), (1, 2, 5)),
    (dict(in_channels=2, out_channels=3, kernel_size=(3,), padding=(1,)), (2, 6)),       # unbatched
], ids=["plain", "strided-groups", "same", "unbatched"])
def test_conv1d_module_matches_torch(kw, shape):
    ours, theirs = nn.Conv1d(**kw, dtype=tn.float64), torch.nn.Conv1d(**kw).double()
    assert ours.kernel_size == theirs.kernel_size and ours.stride == theirs.stride
    assert set(ours.state_dict()) == set(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x, xt = _pair(RNG.standard_normal(shape))
    y, yt = ours(x), theirs(xt)
    assert y.shape == tuple(yt.shape)
    assert_close(y, yt)
    g = RNG.standard_normal(y.shape)
    (y * tn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    assert_close(x.grad, xt.grad)
    assert_close(ours.weight.grad, theirs.weight.grad)


def test_conv1d_default_init_bounds_follow_fan_in():
    layer = nn.Conv1d(4, 8, 5)
    bound = 1 / np.sqrt(4 * 5)
    assert np.abs(layer.weight.detach().numpy()).max() <= bound
    assert np.abs(layer.bias.detach().numpy()).max() <= bound


@pytest.mark.parametrize("make,x,match", [
    (lambda: nn.Conv1d(2, 3, 3), lambda: tn.randn(1, 2, 3, 4), "Conv1d: expected a 3-D input"),
    (lambda: nn.Conv1d(2, 3, 3), lambda: tn.randn(1, 3, 8), "Conv1d: expected input with 2 channels"),
    (lambda: nn.Conv1d(2, 3, (3, 3)), None, "Conv1d: kernel_size must be an int or a 1-tuple"),
    (lambda: nn.Conv1d(2, 3, 3, groups=2), None, "Conv1d: out_channels \\(3\\) must be divisible"),
    (lambda: nn.Conv1d(2, 3, 3, stride=2, padding="same"), None, "Conv1d: padding='same'"),
    (lambda: F.conv1d(tn.randn(1, 2, 2), tn.randn(3, 2, 5)), None, "conv1d: kernel size"),
    (lambda: F.conv1d(tn.randn(1, 2, 8), tn.randn(3, 2, 3), stride=(1, 1)), None, "conv1d: stride"),
    (lambda: nn.GELU("erf"), None, "GELU: approximate must be"),
    (lambda: F.gelu(tn.randn(2), approximate="fast"), None, "gelu: approximate must be"),
    (lambda: nn.SmoothL1Loss(beta=-1.0), None, "SmoothL1Loss: beta must be"),
    (lambda: nn.HuberLoss(delta=0.0), None, "HuberLoss: delta must be positive"),
    (lambda: F.huber_loss(tn.ones(2), tn.ones(2), delta=-1.0), None, "huber_loss: delta must be positive"),
    (lambda: nn.KLDivLoss(reduction="avg"), None, "KLDivLoss: reduction must be"),
    (lambda: F.kl_div(tn.ones(2), tn.ones(3)), None, "kl_div: target shape"),
    (lambda: F.l1_loss(tn.ones(2), tn.ones(2), reduction="batchmean"), None, "l1_loss: reduction"),
    (lambda: nn.Dropout2d(1.5), None, "Dropout2d: probability p"),
    (lambda: nn.Dropout2d(0.5), lambda: tn.randn(4, 4), "dropout2d: expected 'input' to be 3-D or 4-D"),
])
def test_argument_errors_name_the_layer_or_op(make, x, match):
    with pytest.raises((ValueError, TypeError), match=match):
        layer = make()
        if x is not None:
            layer(x())


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_module_matches_torch_first_and_second_order(approximate):
    x, xt = _pair(RNG.standard_normal(20) * 3)
    y, yt = nn.GELU(approximate)(x), torch.nn.GELU(approximate)(xt)
    assert_close(y, yt, atol=1e-12)
    (g,) = tn.autograd.grad(y.sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad(yt.sum(), xt, create_graph=True)
    assert_close(g, gt, atol=1e-12)
    g.sum().backward()
    gt.sum().backward()
    assert_close(x.grad, xt.grad, atol=1e-10)


def test_silu_module_matches_torch():
    x, xt = _pair(RNG.standard_normal((3, 4)) * 4)
    y, yt = nn.SiLU()(x), torch.nn.SiLU()(xt)
    assert_close(y, yt)
    y.sum().backward()
    yt.sum().backward()
    assert_close(x.grad, xt.grad)


def test_gelu_known_values():
    """Φ(1) = 0.8413447460685429, so gelu(1) = 0.8413447460685429 and gelu(-1) = -0.1586552539314571."""
    y = F.gelu(tn.tensor(np.array([1.0, -1.0, 0.0])))
    assert_close(y, np.array([0.8413447460685429, -0.15865525393145707, 0.0]), atol=1e-15)


def test_dropout2d_zeroes_whole_channels_and_scales_the_rest():
    tn.manual_seed(0)
    x = tn.ones(64, 16, 3, 3)
    y = nn.Dropout2d(0.25)(x).numpy()
    per_channel = y.reshape(64, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 1 / 0.75).all(-1)), \
        "a channel was partly dropped"
    kept = (per_channel[..., 0] != 0).mean()
    assert 0.70 < kept < 0.80, f"keep rate {kept} far from 0.75"
    layer = nn.Dropout2d(0.25).eval()
    assert layer(x) is x


def test_dropout2d_gradient_is_the_same_mask():
    tn.manual_seed(1)
    x = tn.ones(2, 8, 2, 2, requires_grad=True)
    y = F.dropout2d(x, 0.5)
    y.sum().backward()
    assert np.array_equal(x.grad.numpy(), y.detach().numpy())


@pytest.mark.parametrize("ours_cls,theirs_cls,kw", [
    (nn.L1Loss, torch.nn.L1Loss, {}),
    (nn.L1Loss, torch.nn.L1Loss, dict(reduction="sum")),
    (nn.SmoothL1Loss, torch.nn.SmoothL1Loss, dict(beta=0.5)),
    (nn.SmoothL1Loss, torch.nn.SmoothL1Loss, dict(beta=0.0, reduction="none")),
    (nn.HuberLoss, torch.nn.HuberLoss, dict(delta=2.0)),
    (nn.HuberLoss, torch.nn.HuberLoss, dict(delta=0.3, reduction="none")),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_regression_loss_modules_match_torch(ours_cls, theirs_cls, kw):
    x, xt = _pair(RNG.standard_normal((4, 5)) * 2)
    t, tt = _pair(RNG.standard_normal((4, 5)))
    y, yt = ours_cls(**kw)(x, t), theirs_cls(**kw)(xt, tt)
    assert_close(y, yt)
    g = RNG.standard_normal(y.shape)
    (y * tn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    assert_close(x.grad, xt.grad)
    assert_close(t.grad, tt.grad)


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "mean", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kldiv_module_matches_torch(reduction, log_target):
    logits = RNG.standard_normal((3, 5))
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    q = np.exp(RNG.standard_normal((3, 5)))
    q /= q.sum(1, keepdims=True)
    q[0, 0] = 0.0 if not log_target else q[0, 0]          # a zero target contributes 0
    target = np.log(q) if log_target else q
    x, xt = _pair(logp)
    t, tt = _pair(target, requires_grad=False)
    y = nn.KLDivLoss(reduction=reduction, log_target=log_target)(x, t)
    yt = torch.nn.KLDivLoss(reduction=reduction, log_target=log_target)(xt, tt)
    assert_close(y, yt)
    y.sum().backward()
    yt.sum().backward()
    assert_close(x.grad, xt.grad)


def test_kl_div_of_equal_distributions_is_zero():
    p = tn.tensor(np.array([[0.2, 0.3, 0.5]]))
    assert abs(F.kl_div(p.log(), p, reduction="batchmean").item()) < 1e-15
