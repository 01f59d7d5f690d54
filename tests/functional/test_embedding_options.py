"""F.embedding / nn.Embedding options: max_norm's in-place renormalisation (the weight after
the call, against PyTorch and by hand), scale_grad_by_freq (by hand, and its second order
against finite-difference logic), sparse refused, nn.Embedding's _weight/_freeze and
from_pretrained, signatures equal to PyTorch's."""
import inspect

import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import nn
from tinynet.testing import assert_close


def test_max_norm_rescales_referenced_rows_in_place_by_hand():
    """Row 0 (norm 5 > 1) is scaled by 1 / (5 + 1e-7); row 1 (norm 0.5) and the unreferenced
    row 2 (norm 10) are untouched; the returned rows are the rescaled ones."""
    w = tn.tensor(np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]]))
    out = F.embedding(tn.tensor([0, 1, 0]), w, max_norm=1.0)
    scale = 1.0 / (5.0 + 1e-7)
    assert np.allclose(w.numpy(), [[3 * scale, 4 * scale], [0.3, 0.4], [6.0, 8.0]], rtol=0, atol=1e-15)
    assert np.array_equal(out.numpy(), w.numpy()[[0, 1, 0]])


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.0, 0.5, float("inf")])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_max_norm_weight_output_and_gradient_match_torch(norm_type, dtype):
    """Repeated indices rescale a row once; the weight after the call, the output and the
    gradient (which ignores the rescaling) equal PyTorch's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    w = (2 * rng.standard_normal((6, 4))).astype(dtype)
    idx = np.array([[1, 3, 1, 1], [5, 0, 3, 3]])
    a = tn.tensor(w.copy(), requires_grad=True)
    b = torch.tensor(w.copy(), requires_grad=True)
    oa = F.embedding(tn.tensor(idx), a, 2, 1.5, norm_type, True)
    ob = torch.nn.functional.embedding(torch.tensor(idx), b, 2, 1.5, norm_type, True)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-14, atol=1e-15)
    assert_close(a.detach(), b.detach(), **tol)
    assert not np.allclose(a.detach().numpy(), w)               # something was rescaled
    assert np.array_equal(a.detach().numpy()[[2, 4]], w[[2, 4]])  # rows not referenced stay
    assert_close(oa.detach(), ob.detach(), **tol)
    v = rng.standard_normal(oa.shape).astype(dtype)
    (oa * tn.tensor(v)).sum().backward()
    (ob * torch.from_numpy(v)).sum().backward()
    assert_close(a.grad, b.grad, **tol)


def test_module_max_norm_renormalises_its_weight_like_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Embedding(5, 3, max_norm=0.8, norm_type=1.0, dtype=torch.float64)
    ours = nn.Embedding(5, 3, max_norm=0.8, norm_type=1.0, dtype=tn.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    idx = np.array([4, 0, 4])
    assert_close(ours(tn.tensor(idx)).detach(), theirs(torch.tensor(idx)).detach(), rtol=0, atol=0)
    assert_close(ours.weight.detach(), theirs.weight.detach(), rtol=0, atol=0)
    assert repr(ours) == repr(theirs)


def test_scale_grad_by_freq_divides_by_the_count_by_hand():
    """Row 2 appears three times, row 0 once, row 1 (padding) twice: gradients 3/3, 1/1, 0."""
    w = tn.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    out = F.embedding(tn.tensor([[2, 0, 1], [2, 2, 1]]), w, padding_idx=1, scale_grad_by_freq=True)
    assert np.array_equal(out.detach().numpy(), w.detach().numpy()[[[2, 0, 1], [2, 2, 1]]])
    (out * tn.tensor([[[1.0, 2.0]] * 3, [[4.0, 8.0]] * 3])).sum().backward()
    assert w.grad.numpy().tolist() == [[1.0, 2.0], [0.0, 0.0], [3.0, 6.0]]


def test_scale_grad_by_freq_second_order_is_the_derivative_of_the_backward():
    """The weight gradient is linear in the output gradient g with factor 1/count, so the
    derivative of sum(dweight) with respect to g is 1/count(input[p]) at every position
    (PyTorch's double backward leaves the division out; tinynet differentiates its backward)."""
    w = tn.tensor(np.ones((3, 2)), requires_grad=True)
    out = F.embedding(tn.tensor([0, 0, 1, 0]), w, scale_grad_by_freq=True)
    g = tn.tensor(np.ones((4, 2)), requires_grad=True)
    (gw,) = tn.autograd.grad(out, w, g, create_graph=True)
    (gg,) = tn.autograd.grad(gw.sum(), g)
    assert np.allclose(gg.numpy(), [[1 / 3] * 2, [1 / 3] * 2, [1.0] * 2, [1 / 3] * 2])


def test_embedding_signatures_equal_pytorchs():
    torch = pytest.importorskip("torch")

    def sig(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]
    assert sig(F.embedding) == sig(torch.nn.functional.embedding)
    assert sig(nn.Embedding.__init__) == sig(torch.nn.Embedding.__init__)
    assert sig(nn.Embedding.from_pretrained) == sig(torch.nn.Embedding.from_pretrained)


def test_weight_freeze_and_from_pretrained():
    """_weight is used as is (padding row not zeroed, storage shared), _freeze/freeze turn off
    requires_grad, as PyTorch."""
    w = tn.tensor([[1.0, 2.0], [3.0, 4.0]])
    e = nn.Embedding(2, 2, padding_idx=0, _weight=w)
    assert e.weight.requires_grad and e.weight.detach().numpy().tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert not nn.Embedding(2, 2, _freeze=True).weight.requires_grad
    p = nn.Embedding.from_pretrained(w, max_norm=1.0)
    assert not p.weight.requires_grad and p.max_norm == 1.0
    p(tn.tensor([1]))
    assert np.isclose(np.linalg.norm(w.numpy()[1]), 1.0)     # shared with the given tensor
    assert nn.Embedding.from_pretrained(w, freeze=False, padding_idx=1).weight.requires_grad


@pytest.mark.parametrize("call, error, message", [
    (lambda w: F.embedding(tn.tensor([0]), w, sparse=True), ValueError, "embedding: sparse=True is not supported"),
    (lambda w: F.embedding(tn.tensor([0]), w, max_norm="1"), TypeError, "embedding: max_norm must be a number"),
    (lambda w: F.embedding(tn.tensor([0]), w, max_norm=1.0, norm_type=None), TypeError,
     "embedding: norm_type must be a number"),
    (lambda w: nn.Embedding(3, 2, sparse=True), ValueError, "Embedding: sparse=True is not supported"),
    (lambda w: nn.Embedding(3, 2, _weight=tn.randn(2, 2)), ValueError,
     r"Embedding: _weight must be a Tensor of shape \(3, 2\)"),
    (lambda w: nn.Embedding.from_pretrained(tn.randn(3)), ValueError,
     "Embedding.from_pretrained: embeddings must be a 2-D Tensor"),
])
def test_errors_name_the_op_and_argument(call, error, message):
    with pytest.raises(error, match=message):
        call(tn.randn(3, 2))
