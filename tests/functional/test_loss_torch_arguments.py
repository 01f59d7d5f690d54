"""The losses' arguments as PyTorch 2.13 takes them: exact signatures (so positional calls
bind alike), the deprecated size_average/reduce and their legacy rule with its warning,
the per-element ``weight`` of mse/l1/huber, and targets of another shape (broadcast with a
warning in the regression losses, silently in kl_div, refused by the binary
cross-entropies). Every value and gradient is compared with PyTorch's."""
import inspect
import itertools
import warnings

import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
import tinynet.functional as F
from tinynet.testing import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional
RNG = np.random.default_rng(11)

LOSSES = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
          "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"]
MODULES = ["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "CrossEntropyLoss", "NLLLoss",
           "BCELoss", "BCEWithLogitsLoss", "KLDivLoss"]
LEGACY = [name for name in LOSSES if name != "huber_loss"]    # huber_loss has no legacy pair


def _pair(a, requires_grad=True):
    a = np.asarray(a, dtype=np.float64)
    return tn.tensor(a, requires_grad=requires_grad), torch.from_numpy(a.copy()).requires_grad_(requires_grad)


def _params(fn):
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", LOSSES)
def test_functional_signature_is_pytorchs(name):
    """A different name, order or default would bind a positional call differently."""
    assert _params(getattr(F, name)) == _params(getattr(TF, name))


@pytest.mark.parametrize("name", MODULES)
def test_module_signature_is_pytorchs(name):
    assert _params(getattr(nn, name).__init__) == _params(getattr(torch.nn, name).__init__)


def _problem(name):
    """(tinynet args, torch args, leaves to compare gradients of) for one loss."""
    if name in ("cross_entropy", "nll_loss"):
        x, xt = _pair(RNG.standard_normal((4, 3)))
        t = RNG.integers(0, 3, 4)
        return (x, tn.tensor(t)), (xt, torch.from_numpy(t)), [(x, xt)]
    if name == "binary_cross_entropy":
        x, xt = _pair(RNG.uniform(0.1, 0.9, (4, 3)))
    else:
        x, xt = _pair(RNG.standard_normal((4, 3)))
    t, tt = _pair(RNG.uniform(0.1, 0.9, (4, 3)), requires_grad=False)
    return (x, t), (xt, tt), [(x, xt)]


def _caught(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught if issubclass(w.category, UserWarning)
                 and "size_average" in str(w.message)]


TRUTH = [c for c in itertools.product([None, True, False, 0, 1], repeat=2) if c != (None, None)]


@pytest.mark.parametrize("size_average,reduce", TRUTH)
@pytest.mark.parametrize("name", LEGACY)
def test_legacy_size_average_reduce_truth_table_matches_torch(name, size_average, reduce):
    ours_args, theirs_args, leaves = _problem(name)
    kw = dict(size_average=size_average, reduce=reduce, reduction="sum")   # overridden by the pair
    ours, ours_warn = _caught(lambda: getattr(F, name)(*ours_args, **kw))
    theirs, theirs_warn = _caught(lambda: getattr(TF, name)(*theirs_args, **kw))
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert_close(ours, theirs)
    assert ours_warn == theirs_warn and len(ours_warn) == 1    # PyTorch's text, once
    g = RNG.standard_normal(tuple(theirs.shape))
    (ours * tn.tensor(g)).sum().backward()
    (theirs * torch.from_numpy(g)).sum().backward()
    for o, t in leaves:
        assert_close(o.grad, t.grad)


@pytest.mark.parametrize("size_average,reduce", TRUTH)
@pytest.mark.parametrize("name", [m for m in MODULES if m != "HuberLoss"])
def test_legacy_module_arguments_set_the_reduction_as_torch(name, size_average, reduce):
    ours, ours_warn = _caught(lambda: getattr(nn, name)(size_average=size_average, reduce=reduce))
    theirs, theirs_warn = _caught(lambda: getattr(torch.nn, name)(size_average=size_average,
                                                                   reduce=reduce))
    assert ours.reduction == theirs.reduction
    assert ours_warn == theirs_warn and len(ours_warn) == 1


def test_legacy_arguments_override_an_invalid_reduction_as_torch():
    x, t = tn.tensor([1.0, 3.0]), tn.tensor([0.0, 0.0])
    with pytest.warns(UserWarning, match="please use reduction='sum'"):
        assert F.mse_loss(x, t, size_average=False, reduction="bogus").item() == 10.0
    with pytest.warns(UserWarning, match="please use reduction='none'"):
        assert nn.L1Loss(reduce=False, reduction="bogus").reduction == "none"
    with pytest.raises(ValueError, match="mse_loss: reduction must be one of"):
        F.mse_loss(x, t, reduction="bogus")


def test_no_legacy_warning_without_legacy_arguments():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.cross_entropy(tn.ones(2, 3), tn.tensor([0, 1]), reduction="sum")
        nn.NLLLoss(reduction="none")


# ----------------------------------------------------------------- positional calls
def _same(ours, theirs):
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert_close(ours, theirs)


def test_positional_calls_bind_as_in_torch():
    scores = RNG.standard_normal((5, 3))
    t = np.array([1, 0, 1, 2, 1])
    x, xt = _pair(scores)
    ti, tt = tn.tensor(t), torch.from_numpy(t)
    w, wt = _pair([0.5, 2.0, 1.0], requires_grad=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same(F.cross_entropy(x, ti, None, None, 1), TF.cross_entropy(xt, tt, None, None, 1))
        _same(F.cross_entropy(x, ti, w, False, 2, None, "mean", 0.1),
              TF.cross_entropy(xt, tt, wt, False, 2, None, "mean", 0.1))
        _same(F.nll_loss(x, ti, None, None, 1, False), TF.nll_loss(xt, tt, None, None, 1, False))
        _same(nn.CrossEntropyLoss(None, None, 1)(x, ti), torch.nn.CrossEntropyLoss(None, None, 1)(xt, tt))
        _same(nn.NLLLoss(w, None, 0, None, "sum")(x, ti), torch.nn.NLLLoss(wt, None, 0, None, "sum")(xt, tt))
        p, pt = _pair(RNG.uniform(0.1, 0.9, (5, 3)))
        q, qt = _pair(RNG.uniform(0.1, 0.9, (5, 3)), requires_grad=False)
        _same(F.mse_loss(x, q, None, False), TF.mse_loss(xt, qt, None, False))
        _same(F.l1_loss(x, q, None, None, "sum", p), TF.l1_loss(xt, qt, None, None, "sum", pt))
        _same(F.smooth_l1_loss(x, q, False, None, "none", 0.5),
              TF.smooth_l1_loss(xt, qt, False, None, "none", 0.5))
        _same(F.huber_loss(x, q, "sum", 0.5, p), TF.huber_loss(xt, qt, "sum", 0.5, pt))
        _same(F.binary_cross_entropy(p, q, w, None, False), TF.binary_cross_entropy(pt, qt, wt, None, False))
        _same(F.binary_cross_entropy_with_logits(x, q, None, None, None, "sum", w),
              TF.binary_cross_entropy_with_logits(xt, qt, None, None, None, "sum", wt))
        _same(F.kl_div(p.log(), q, None, None, "batchmean", False),
              TF.kl_div(pt.log(), qt, None, None, "batchmean", False))
        _same(nn.BCEWithLogitsLoss(None, None, None, "none", w)(x, q),
              torch.nn.BCEWithLogitsLoss(None, None, None, "none", wt)(xt, qt))
        _same(nn.SmoothL1Loss(None, None, "sum", 2.0)(x, q),
              torch.nn.SmoothL1Loss(None, None, "sum", 2.0)(xt, qt))
        _same(nn.KLDivLoss(None, None, "sum", True)(x, q.log()),
              torch.nn.KLDivLoss(None, None, "sum", True)(xt, qt.log()))


# ----------------------------------------------------------------- weight= (mse, l1, huber)
def test_weighted_means_by_hand():
    x, t, w = tn.tensor([1.0, 2.0]), tn.tensor([0.0, 0.0]), tn.tensor([1.0, 3.0])
    assert F.mse_loss(x, t, weight=w).item() == pytest.approx((1 + 3 * 4) / 4)     # Σw·d² / Σw
    assert F.l1_loss(x, t, weight=w).item() == pytest.approx((1 + 3 * 2) / 4)      # Σw·|d| / Σw
    assert F.huber_loss(x, t, weight=w).item() == pytest.approx((0.5 + 3 * 1.5) / 2)   # / numel
    assert F.mse_loss(x, t, weight=w, reduction="sum").item() == 13.0
    assert F.huber_loss(x, t, weight=w, reduction="none").numpy().tolist() == [0.5, 4.5]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (3, 4)), ((3, 4), (4,))],
                         ids=["same", "input-broadcast", "target-broadcast"])
def test_weighted_regression_losses_match_torch_with_weight_gradient(name, reduction, shapes):
    xs, ts = shapes
    x, xt = _pair(RNG.standard_normal(xs) * 2)
    t, tt = _pair(RNG.standard_normal(ts))
    w, wt = _pair(RNG.uniform(0.1, 2.0, xs))
    kw = dict(reduction=reduction, delta=0.7) if name == "huber_loss" else dict(reduction=reduction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = getattr(F, name)(x, t, weight=w, **kw)
        theirs = getattr(TF, name)(xt, tt, weight=wt, **kw)
    _same(ours, theirs)
    g = RNG.standard_normal(tuple(theirs.shape))
    (ours * tn.tensor(g)).sum().backward()
    (theirs * torch.from_numpy(g)).sum().backward()
    for o, th in ((x, xt), (t, tt), (w, wt)):
        assert o.grad.shape == tuple(th.shape)
        assert_close(o.grad, th.grad)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_weight_must_have_the_input_shape(name):
    x, t = tn.ones(3, 4), tn.ones(3, 4)
    with pytest.raises(ValueError, match=rf"{name}: weight of shape \(4,\) must have the input's "
                                         rf"shape \(3, 4\)"):
        getattr(F, name)(x, t, weight=tn.ones(4))
    with pytest.raises(TypeError, match=rf"{name}: argument 'weight' must be a Tensor, got list"):
        getattr(F, name)(x, t, weight=[1.0])
    with pytest.raises(ValueError, match=rf"{name}: reduction must be one of"):
        getattr(F, name)(x, t, reduction="avg", weight=tn.ones(3, 4))


# ----------------------------------------------------------------- target of another shape
REGRESSION = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", REGRESSION)
@pytest.mark.parametrize("shapes", [((3, 4), (4,)), ((3, 4), (1, 4)), ((4,), (3, 4)),
                                    ((3, 1), (1, 4)), ((2, 3), ())])
def test_regression_losses_broadcast_a_target_of_another_shape_with_a_warning(name, reduction, shapes):
    xs, ts = shapes
    x, xt = _pair(RNG.standard_normal(xs) * 2)
    t, tt = _pair(RNG.standard_normal(ts))
    with pytest.warns(UserWarning, match=rf"{name}: Using a target size .* different to the input size"):
        ours = getattr(F, name)(x, t, reduction=reduction)
    with pytest.warns(UserWarning, match="Using a target size"):
        theirs = getattr(TF, name)(xt, tt, reduction=reduction)
    _same(ours, theirs)
    g = RNG.standard_normal(tuple(theirs.shape))
    (ours * tn.tensor(g)).sum().backward()
    (theirs * torch.from_numpy(g)).sum().backward()
    assert x.grad.shape == xs and t.grad.shape == ts     # reduced back to each shape
    assert_close(x.grad, xt.grad)
    assert_close(t.grad, tt.grad)


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_losses_refuse_a_target_that_does_not_broadcast(name):
    with pytest.warns(UserWarning, match="Using a target size"):      # PyTorch warns first too
        with pytest.raises(ValueError, match=rf"{name}: target shape \(5,\) does not broadcast with "
                                             rf"input shape \(3, 4\); expected a target of shape \(3, 4\)"):
            getattr(F, name)(tn.ones(3, 4), tn.ones(5))


def test_same_shape_gives_no_size_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in REGRESSION:
            getattr(F, name)(tn.ones(3, 4), tn.zeros(3, 4))


@pytest.mark.parametrize("reduction", ["none", "sum", "batchmean"])
@pytest.mark.parametrize("shapes", [((3, 4), (4,)), ((4,), (3, 4)), ((3, 1), (3, 4))])
def test_kl_div_broadcasts_silently_as_torch(reduction, shapes):
    xs, ts = shapes
    x, xt = _pair(-RNG.uniform(0.1, 3.0, xs))
    t, tt = _pair(RNG.uniform(0.1, 1.0, ts))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = F.kl_div(x, t, reduction=reduction)
    theirs = TF.kl_div(xt, tt, reduction=reduction)
    _same(ours, theirs)     # 'batchmean' divides by input.shape[0], not the broadcast batch
    g = RNG.standard_normal(tuple(theirs.shape))
    (ours * tn.tensor(g)).sum().backward()
    (theirs * torch.from_numpy(g)).sum().backward()
    assert_close(x.grad, xt.grad)
    assert_close(t.grad, tt.grad)
    with pytest.raises(ValueError, match=r"kl_div: target shape \(2, 5\) does not broadcast"):
        F.kl_div(x, tn.ones(2, 5), reduction=reduction)


def test_kl_div_mean_warns_as_torch_and_other_reductions_do_not():
    x, t = tn.tensor([[-1.0, -0.5]]), tn.tensor([[0.3, 0.7]])
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(x, t)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        nn.KLDivLoss()(x, t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for reduction in ("none", "sum", "batchmean"):
            F.kl_div(x, t, reduction=reduction)


@pytest.mark.parametrize("legacy", [dict(size_average=False), dict(size_average=True), dict(reduce=False)])
def test_kl_div_legacy_arguments_with_batchmean_also_divide_by_the_batch_as_torch(legacy):
    x, xt = _pair(-RNG.uniform(0.1, 3.0, (3, 4)))
    t, tt = _pair(RNG.uniform(0.1, 1.0, (3, 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same(F.kl_div(x, t, reduction="batchmean", **legacy),
              TF.kl_div(xt, tt, reduction="batchmean", **legacy))


def test_binary_cross_entropy_weights_must_broadcast_to_the_input():
    x, t = tn.full((3, 4), 0.5), tn.full((3, 4), 0.5)
    for name in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
        with pytest.raises(ValueError, match=rf"{name}: weight of shape \(2, 3, 4\) does not broadcast "
                                             rf"to the loss shape \(3, 4\)"):
            getattr(F, name)(x, t, weight=tn.ones(2, 3, 4))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: pos_weight of shape "
                                         r"\(2, 3, 4\) does not broadcast to the input shape \(3, 4\)"):
        F.binary_cross_entropy_with_logits(x, t, pos_weight=tn.ones(2, 3, 4))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: pos_weight of shape "
                                         r"\(5,\) does not broadcast to the input shape \(3, 4\)"):
        F.binary_cross_entropy_with_logits(x, t, pos_weight=tn.ones(5))


# ----------------------------------------------------------------- reduction='elementwise_mean'
@pytest.mark.parametrize("name", LOSSES)
def test_elementwise_mean_is_the_deprecated_mean_as_torch(name):
    ours_args, theirs_args, _ = _problem(name)
    with pytest.warns(UserWarning, match="reduction='elementwise_mean' is deprecated"):
        ours = getattr(F, name)(*ours_args, reduction="elementwise_mean")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(TF, name)(*theirs_args, reduction="elementwise_mean")
        mean = getattr(F, name)(*ours_args, reduction="mean")
    _same(ours, theirs)
    assert ours.item() == mean.item()


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_elementwise_mean_with_a_weight_is_refused_as_torch(name):
    x = tn.ones(2, 2)
    with pytest.raises(ValueError, match=rf"{name}: reduction must be one of"):
        getattr(F, name)(x, x, reduction="elementwise_mean", weight=x)


def test_elementwise_mean_module_warns_when_called():
    x, t = tn.tensor([1.0, 3.0]), tn.tensor([0.0, 0.0])
    loss = nn.MSELoss(reduction="elementwise_mean")
    with pytest.warns(UserWarning, match="reduction='elementwise_mean' is deprecated"):
        assert loss(x, t).item() == 5.0


def test_module_thresholds_of_the_wrong_type_are_type_errors():
    with pytest.raises(TypeError, match="HuberLoss: delta must be a number, got str"):
        nn.HuberLoss(delta="1")
    with pytest.raises(TypeError, match="SmoothL1Loss: beta must be a number, got NoneType"):
        nn.SmoothL1Loss(beta=None)
    with pytest.raises(ValueError, match="SmoothL1Loss: beta must be non-negative, got -1"):
        nn.SmoothL1Loss(beta=-1)


def test_kl_div_negative_target_is_nan_as_torch():
    """t·log t is xlogy(t, t) in PyTorch: 0 at t = 0 and NaN for a negative t (not a
    probability), while the gradient to the input stays -t."""
    torch = pytest.importorskip("torch")
    x = np.array([[-1.0, -2.0, -0.5, -0.3]])
    t = np.array([[0.5, -0.1, 0.0, 0.4]])
    xo = tn.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ours = F.kl_div(xo, tn.tensor(t), reduction="none")
    theirs = torch.nn.functional.kl_div(xt, torch.tensor(t), reduction="none")
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    assert np.isnan(ours.detach().numpy()[0, 1])
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
