"""Losses: hand-computed values for every reduction, ignore_index, weights, label
smoothing, probability targets, stability at |x| = 1000, and argument errors.
Registry checks (gradients, torch parity) run in tests/testing/test_registry.py."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import assert_close


def _x(values, requires_grad=True, dtype=np.float64):
    return tn.tensor(np.asarray(values, dtype=dtype), requires_grad=requires_grad)


def _log_softmax(v, axis=-1):
    v = np.asarray(v, dtype=np.float64)
    s = v - v.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def test_mse_loss_reductions_and_gradient():
    x, t = _x([1.0, 2.0, 4.0]), _x([1.0, 0.0, 1.0], requires_grad=False)
    assert F.mse_loss(x, t, reduction="none").detach().numpy().tolist() == [0.0, 4.0, 9.0]
    assert F.mse_loss(x, t, reduction="sum").item() == 13.0
    loss = F.mse_loss(x, t)
    assert loss.item() == pytest.approx(13 / 3)
    loss.backward()
    assert_close(x.grad, np.array([0.0, 4.0, 6.0]) / 3)


def test_binary_cross_entropy_value_and_weight():
    p, t = _x([0.8, 0.4]), _x([1.0, 0.0], requires_grad=False)
    expected = -np.array([np.log(0.8), np.log(0.6)])
    assert_close(F.binary_cross_entropy(p, t, reduction="none"), expected)
    w = _x([2.0, 1.0], requires_grad=False)
    assert F.binary_cross_entropy(p, t, w, reduction="sum").item() == pytest.approx(2 * expected[0] + expected[1])


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_binary_cross_entropy_clamps_log_at_minus_100():
    p, t = _x([0.0, 1.0]), _x([1.0, 0.0], requires_grad=False)
    assert F.binary_cross_entropy(p, t, reduction="none").detach().numpy().tolist() == [100.0, 100.0]


def test_bce_with_logits_value_gradient_and_pos_weight():
    x, t = _x([0.0, 2.0]), _x([1.0, 0.0], requires_grad=False)
    expected = np.array([np.log(2.0), np.log1p(np.exp(2.0))])
    assert_close(F.binary_cross_entropy_with_logits(x, t, reduction="none"), expected, rtol=1e-12)
    F.binary_cross_entropy_with_logits(x, t, reduction="sum").backward()
    assert_close(x.grad, 1 / (1 + np.exp(-np.array([0.0, 2.0]))) - np.array([1.0, 0.0]), rtol=1e-12)
    pw = tn.tensor(np.array([3.0, 3.0]))
    out = F.binary_cross_entropy_with_logits(x, t, reduction="none", pos_weight=pw)
    assert_close(out, np.array([3 * np.log(2.0), np.log1p(np.exp(2.0))]), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_stable_at_1000(dtype):
    x = _x([1000.0, -1000.0, 1000.0, -1000.0], dtype=dtype)
    t = _x([1.0, 0.0, 0.0, 1.0], requires_grad=False, dtype=dtype)
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    assert_close(loss, np.array([0.0, 0.0, 1000.0, 1000.0], dtype=dtype))
    loss.sum().backward()
    assert_close(x.grad, np.array([0.0, 0.0, 1.0, -1.0], dtype=dtype))


def test_cross_entropy_matches_log_softmax_formula():
    scores = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]])
    x, t = _x(scores), tn.tensor([1, 2])
    lp = _log_softmax(scores)
    picked = -np.array([lp[0, 1], lp[1, 2]])
    assert_close(F.cross_entropy(x, t, reduction="none"), picked, rtol=1e-12)
    assert F.cross_entropy(x, t, reduction="sum").item() == pytest.approx(picked.sum())
    loss = F.cross_entropy(x, t)
    assert loss.item() == pytest.approx(picked.mean())
    loss.backward()
    onehot = np.eye(3)[[1, 2]]
    assert_close(x.grad, (np.exp(lp) - onehot) / 2, rtol=1e-12)


def test_cross_entropy_stable_at_1000():
    x = _x([[1000.0, -1000.0, 0.0]], dtype=np.float32)
    loss = F.cross_entropy(x, tn.tensor([1]))
    assert loss.item() == pytest.approx(2000.0)
    loss.backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_cross_entropy_ignore_index_and_weighted_mean():
    scores = np.array([[1.0, 2.0], [0.5, 0.5], [3.0, 1.0]])
    lp = _log_softmax(scores)
    x, t = _x(scores), tn.tensor([0, -100, 1])
    assert F.cross_entropy(x, t).item() == pytest.approx(-(lp[0, 0] + lp[2, 1]) / 2)
    none = F.cross_entropy(x, t, reduction="none").detach().numpy()
    assert none[1] == 0.0
    w = tn.tensor(np.array([2.0, 0.5]))
    expected = -(2.0 * lp[0, 0] + 0.5 * lp[2, 1]) / (2.0 + 0.5)   # PyTorch's weighted mean
    assert F.cross_entropy(x, t, weight=w).item() == pytest.approx(expected)
    assert F.nll_loss(tn.tensor(lp), tn.tensor([0, 1, 1]), ignore_index=1).item() == pytest.approx(-lp[0, 0])


@pytest.mark.parametrize("kw,shape", [
    (dict(), (3, 4)),                                        # the fused op
    (dict(weight=np.array([2.0, 0.5, 1.0, 1.5])), (3, 4)),   # log_softmax + nll_loss
    (dict(label_smoothing=0.1), (3, 4)),
    (dict(), (2, 4, 3)),                                     # spatial targets
])
def test_cross_entropy_with_every_target_ignored_is_nan_with_zero_gradient(kw, shape):
    # PyTorch's rule: the weighted mean is 0/0 = NaN, but no target contributes, so the
    # gradient is zero (a NaN gradient would put NaN in every parameter)
    x = _x(np.random.default_rng(0).standard_normal(shape))
    t = tn.tensor(np.full((shape[0],) + shape[2:], -100))
    kw = {k: (tn.tensor(v) if k == "weight" else v) for k, v in kw.items()}
    loss = F.cross_entropy(x, t, **kw)
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(shape))
    x.grad = None
    nll = F.nll_loss(F.log_softmax(x, 1), t)
    assert np.isnan(nll.item())
    nll.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(shape))


def test_cross_entropy_label_smoothing():
    scores = np.array([[1.0, 2.0, 0.5]])
    lp = _log_softmax(scores)[0]
    eps = 0.3
    expected = -((1 - eps) * lp[1] + eps * lp.mean())
    assert F.cross_entropy(_x(scores), tn.tensor([1]), label_smoothing=eps).item() == pytest.approx(expected)


def test_cross_entropy_spatial_targets():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((2, 3, 2, 2))
    target = rng.integers(0, 3, (2, 2, 2))
    lp = _log_softmax(scores, axis=1)
    picked = np.take_along_axis(lp, target[:, None], axis=1)[:, 0]
    out = F.cross_entropy(_x(scores), tn.tensor(target), reduction="none")
    assert out.shape == (2, 2, 2)
    assert_close(out, -picked, rtol=1e-12)


def test_cross_entropy_probability_targets():
    scores = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    probs = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])
    lp = _log_softmax(scores)
    expected = -(probs * lp).sum(1)
    assert_close(F.cross_entropy(_x(scores), _x(probs, requires_grad=False), reduction="none"),
                 expected, rtol=1e-12)
    assert F.cross_entropy(_x(scores), _x(probs, requires_grad=False)).item() == pytest.approx(expected.mean())


def test_nll_loss_picks_the_target_entries():
    logp = _x([[-0.5, -1.0], [-2.0, -0.1]])
    loss = F.nll_loss(logp, tn.tensor([1, 0]), reduction="sum")
    assert loss.item() == pytest.approx(3.0)
    loss.backward()
    assert logp.grad.numpy().tolist() == [[0.0, -1.0], [-1.0, 0.0]]


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_binary_cross_entropies_need_equal_shapes(name):
    # PyTorch refuses any size difference here, even one that broadcasts (ValueError)
    with pytest.raises(ValueError, match=rf"{name}: target shape \(3,\) must equal input shape \(2,\)"):
        getattr(F, name)(tn.full((2,), 0.5), tn.full((3,), 0.5))
    with pytest.raises(ValueError, match=rf"{name}: target shape \(1, 2\) must equal input shape \(2,\)"):
        getattr(F, name)(tn.full((2,), 0.5), tn.full((1, 2), 0.5))


@pytest.mark.parametrize("name", ["mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                                  "cross_entropy", "nll_loss"])
def test_bad_reduction_names_the_op(name):
    args = (tn.full((2, 2), 0.5), tn.full((2, 2), 0.5)) if "entropy_with" in name or "mse" in name \
        or name == "binary_cross_entropy" else (tn.full((2, 2), 0.5), tn.tensor([0, 1]))
    with pytest.raises(ValueError, match=rf"{name}: reduction must be one of"):
        getattr(F, name)(*args, reduction="avg")


def test_integer_input_is_type_error():
    with pytest.raises(TypeError, match="mse_loss: expected 'input' to be a floating-point tensor"):
        F.mse_loss(tn.tensor([1, 2]), tn.tensor([1, 2]))
    with pytest.raises(TypeError, match="cross_entropy: expected 'input' to be a floating-point tensor"):
        F.cross_entropy(tn.tensor([[1, 2]]), tn.tensor([0]))


def test_bce_input_outside_zero_one():
    with pytest.raises(ValueError, match="binary_cross_entropy: all elements of input must be probabilities"):
        F.binary_cross_entropy(tn.tensor([1.5]), tn.tensor([1.0]))


def test_class_target_errors():
    x = tn.ones(2, 3)
    with pytest.raises(ValueError, match=r"cross_entropy: target contains class 5 but input has 3 classes"):
        F.cross_entropy(x, tn.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"nll_loss: target shape \(3,\) does not match input shape \(2, 3\)"):
        F.nll_loss(x, tn.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="nll_loss: class-index target must be an integer tensor, got float32"):
        F.nll_loss(x, tn.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="cross_entropy: weight has 4 entries but input has 3 classes"):
        F.cross_entropy(x, tn.tensor([0, 1]), weight=tn.ones(4))
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\]"):
        F.cross_entropy(x, tn.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(TypeError, match="cross_entropy: argument 'target' must be a Tensor, got list"):
        F.cross_entropy(x, [0, 1])
    probs = tn.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="cross_entropy: ignore_index is not supported for probability"):
        F.cross_entropy(x, probs, ignore_index=1)
    assert F.cross_entropy(x, probs, ignore_index=-1).item() == pytest.approx(np.log(3))   # PyTorch's rule


def test_binary_cross_entropy_gradient_is_finite_at_saturated_probabilities():
    """At x = 0 or 1 the loss is clamped at 100 and dℓ/dx = (x - t) / max(x(1 - x), 1e-12),
    as PyTorch: a composition through log would give NaN (0 · inf) there."""
    x = tn.tensor(np.array([0.0, 1.0, 0.25]), requires_grad=True)
    t = tn.tensor(np.array([1.0, 0.0, 1.0]))
    loss = F.binary_cross_entropy(x, t, reduction="sum")
    loss.backward()
    assert loss.item() == pytest.approx(100.0 + 100.0 - np.log(0.25))
    expected = np.array([-1e12, 1e12, (0.25 - 1.0) / (0.25 * 0.75)])
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)
