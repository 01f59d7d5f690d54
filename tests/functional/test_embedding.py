"""F.embedding: a hand-computed lookup, the padding row's gradient, nn.Embedding's wiring
and the errors (the registry covers gradcheck and PyTorch parity)."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import nn


def test_lookup_and_scatter_add_by_hand():
    """Wrong rows picked, or repeated indices not accumulating their gradients, fail here."""
    w = tn.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    out = F.embedding(tn.tensor([[2, 0], [2, 2]]), w)
    assert out.detach().numpy().tolist() == [[[4.0, 5.0], [0.0, 1.0]], [[4.0, 5.0], [4.0, 5.0]]]
    out.sum().backward()
    assert w.grad.numpy().tolist() == [[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]]


@pytest.mark.parametrize("padding_idx", [1, -2])
def test_padding_row_gets_no_gradient_but_is_still_read(padding_idx):
    """padding_idx must zero the row's gradient (a negative index counts from the end)."""
    w = tn.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    out = F.embedding(tn.tensor([1, 0, 1]), w, padding_idx=padding_idx)
    assert out.detach().numpy()[0].tolist() == [2.0, 3.0]
    out.sum().backward()
    assert w.grad.numpy().tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]


def test_module_uses_the_functional_lookup():
    """nn.Embedding's output and gradient equal F.embedding's with the same padding row."""
    m = nn.Embedding(4, 3, padding_idx=0)
    idx = tn.tensor([[0, 3, 3, 1]])
    m(idx).sum().backward()
    assert np.array_equal(m(idx).detach().numpy(), F.embedding(idx, m.weight).detach().numpy())
    assert m.weight.grad.numpy()[0].tolist() == [0.0, 0.0, 0.0]
    assert m.weight.grad.numpy()[3].tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("call, error, message", [
    (lambda w: F.embedding(tn.tensor([0.0]), w), TypeError, "embedding: expected an integer tensor"),
    (lambda w: F.embedding(tn.tensor([3]), w), ValueError, r"embedding: index 3 is out of range"),
    (lambda w: F.embedding(tn.tensor([-1]), w), ValueError, r"embedding: index -1 is out of range"),
    (lambda w: F.embedding(tn.tensor([0]), w[0]), ValueError, "embedding: expected 'weight' to be 2-D"),
    (lambda w: F.embedding(tn.tensor([0]), w, padding_idx=3), ValueError, "embedding: padding_idx"),
    (lambda w: F.embedding(tn.tensor([0]), w, padding_idx=1.0), TypeError, "embedding: padding_idx"),
])
def test_errors_name_the_op_and_argument(call, error, message):
    with pytest.raises(error, match=message):
        call(tn.randn(3, 2))
