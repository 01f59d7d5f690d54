"""F.pad modes 'reflect' and 'replicate': known answers, the edge gradients, and the
errors (the registry covers gradcheck, gradgradcheck and PyTorch parity)."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F


def test_reflect_and_replicate_by_hand():
    """Reflect mirrors without repeating the edge; replicate repeats it."""
    x = tn.tensor([[1.0, 2.0, 3.0]])
    assert F.pad(x, (2, 1), mode="reflect").numpy().tolist() == [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
    assert F.pad(x, (2, 1), mode="replicate").numpy().tolist() == [[1.0, 1.0, 1.0, 2.0, 3.0, 3.0]]


def test_two_dims_pad_rows_and_columns():
    x = tn.tensor(np.arange(4.0).reshape(1, 2, 2))
    out = F.pad(x, (1, 0, 0, 1), mode="replicate").numpy()[0]
    assert out.tolist() == [[0.0, 0.0, 1.0], [2.0, 2.0, 3.0], [2.0, 2.0, 3.0]]


def test_gradients_collect_at_the_copied_entries():
    """An entry copied k times must receive k gradients (a scatter-add, not a write)."""
    x = tn.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    F.pad(x, (2, 2), mode="replicate").sum().backward()
    assert x.grad.numpy().tolist() == [[3.0, 1.0, 3.0]]
    x.grad = None
    F.pad(x, (2, 2), mode="reflect").sum().backward()
    assert x.grad.numpy().tolist() == [[2.0, 3.0, 2.0]]     # sources 2 1 0 1 2 1 0


@pytest.mark.parametrize("call, message", [
    (lambda: F.pad(tn.ones(3), (1, 1), mode="reflect"), "need a 2-D or 3-D input"),
    (lambda: F.pad(tn.ones(1, 2, 3, 4), (1, 1), mode="replicate"), "need a 2-D or 3-D input"),
    (lambda: F.pad(tn.ones(2, 3), (3, 0), mode="reflect"), "reflect padding \\(3, 0\\) of dim 1 must be less than its size 3"),
    (lambda: F.pad(tn.ones(1, 2, 0), (1, 0), mode="replicate"), "cannot pad dim 2 of size 0"),
    (lambda: F.pad(tn.ones(2, 3), (1, 1), mode="circular"), "mode must be"),
])
def test_errors_name_the_op_and_what_was_expected(call, message):
    with pytest.raises(ValueError, match="pad: .*" + message):
        call()
