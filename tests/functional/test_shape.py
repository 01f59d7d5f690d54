"""Shape ops: known results, gradients that move back (scatter-add for repeated indices),
and errors naming op and argument. Registry checks run in tests/testing/test_registry.py."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import assert_close


def _x(values, requires_grad=True):
    return tn.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


A = np.arange(6.0).reshape(2, 3)


def test_reshape_and_its_gradient():
    x = _x(A)
    y = F.reshape(x, 3, -1)
    assert y.shape == (3, 2)
    (y * _x(np.arange(6.0).reshape(3, 2), requires_grad=False)).sum().backward()
    assert x.grad.shape == (2, 3)
    assert_close(x.grad, np.arange(6.0).reshape(2, 3))


def test_transpose_permute_and_gradient():
    x = _x(np.arange(24.0).reshape(2, 3, 4))
    assert F.transpose(x, 0, 2).shape == (4, 3, 2)
    y = F.permute(x, (2, 0, 1))
    assert y.shape == (4, 2, 3)
    assert_close(y, np.transpose(np.arange(24.0).reshape(2, 3, 4), (2, 0, 1)))
    w = np.random.default_rng(0).standard_normal((4, 2, 3))
    (y * tn.tensor(w)).sum().backward()
    assert_close(x.grad, np.transpose(w, (1, 2, 0)))


def test_flatten_squeeze_unsqueeze():
    x = _x(np.zeros((2, 1, 3, 1)), requires_grad=False)
    assert F.flatten(x).shape == (6,)
    assert F.flatten(x, 1).shape == (2, 3)
    assert F.flatten(x, 1, 2).shape == (2, 3, 1)
    assert F.squeeze(x).shape == (2, 3)
    assert F.squeeze(x, 1).shape == (2, 3, 1)
    assert F.squeeze(x, 0).shape == (2, 1, 3, 1)   # size 2: unchanged, as PyTorch
    assert F.unsqueeze(x, -1).shape == (2, 1, 3, 1, 1)
    assert F.unsqueeze(x, 0).shape == (1, 2, 1, 3, 1)


def test_expand_and_gradient_sums_over_expanded_dims():
    x = _x([[1.0], [2.0]])
    y = F.expand(x, 3, 2, 4)
    assert y.shape == (3, 2, 4)
    y.sum().backward()
    assert_close(x.grad, np.full((2, 1), 12.0))
    assert F.expand(x, -1, 5).shape == (2, 5)


def test_getitem_slices_and_ints():
    x = _x(A)
    y = x[1, ::2]
    assert y.detach().numpy().tolist() == [3.0, 5.0]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [[0, 0, 0], [1, 0, 1]]
    assert x[None, ..., -1].shape == (1, 2)


def test_getitem_integer_array_with_repeats_accumulates():
    x = _x([10.0, 20.0, 30.0])
    idx = tn.tensor([0, 2, 0, 0])
    y = x[idx]
    assert y.detach().numpy().tolist() == [10.0, 30.0, 10.0, 10.0]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [3.0, 0.0, 1.0]
    x.grad = None
    x[[1, 1]].sum().backward()           # a Python list works too
    assert x.grad.numpy().tolist() == [0.0, 2.0, 0.0]


def test_getitem_pairs_of_index_arrays():
    x = _x(A)
    y = x[tn.tensor([0, 1, 1]), tn.tensor([2, 0, 0])]
    assert y.detach().numpy().tolist() == [2.0, 3.0, 3.0]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [[0, 0, 1], [2, 0, 0]]


def test_getitem_boolean_mask():
    x = _x(A)
    mask = x.detach() > 2.5
    y = x[mask]
    assert y.detach().numpy().tolist() == [3.0, 4.0, 5.0]
    (y * 2).sum().backward()
    assert x.grad.numpy().tolist() == [[0, 0, 0], [2, 2, 2]]


def test_cat_and_stack_with_gradients():
    a, b = _x([[1.0, 2.0]]), _x([[3.0, 4.0], [5.0, 6.0]])
    c = F.cat([a, b], 0)
    assert c.shape == (3, 2)
    (c * _x([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]], requires_grad=False)).sum().backward()
    assert a.grad.numpy().tolist() == [[1.0, 1.0]]
    assert b.grad.numpy().tolist() == [[2.0, 2.0], [3.0, 3.0]]
    s = tn.stack([a[0], b[0]], dim=1)
    assert s.shape == (2, 2) and s.detach().numpy().tolist() == [[1.0, 3.0], [2.0, 4.0]]


def test_cat_backward_hands_each_input_a_contiguous_gradient():
    """Along dim 1 of a batch of 2 the gradient's slices are strided views; cat's backward
    copies each C-contiguous (the convolutions and compiled passes that take them next need
    C-contiguous operands), with the slices' values."""
    a, b = _x(np.ones((2, 3, 4))), _x(np.ones((2, 5, 4)))
    g = np.random.default_rng(0).standard_normal((2, 8, 4))
    ga, gb = F.cat([a, b], 1).grad_fn.backward(tn.tensor(g))
    assert ga.data.flags.c_contiguous and gb.data.flags.c_contiguous
    assert np.array_equal(ga.numpy(), g[:, :3]) and np.array_equal(gb.numpy(), g[:, 3:])


def test_cat_promotes_dtypes():
    c = tn.cat([tn.ones(1), tn.tensor(np.ones(1))])
    assert c.dtype == np.float64


def test_pad_and_its_gradient():
    x = _x([[1.0, 2.0]])
    y = F.pad(x, (1, 2, 1, 0), value=-1.0)
    assert y.shape == (2, 5)
    assert y.detach().numpy().tolist() == [[-1, -1, -1, -1, -1], [-1, 1, 2, -1, -1]]
    (y * y).sum().backward()
    assert x.grad.numpy().tolist() == [[2.0, 4.0]]


# ----------------------------------------------------------------- errors
def test_reshape_to_a_wrong_size():
    with pytest.raises(ValueError, match=r"reshape: shape \[4, 2\] is invalid for input of size 6"):
        F.reshape(tn.ones(2, 3), 4, 2)
    with pytest.raises(ValueError, match="reshape: shape"):
        F.reshape(tn.ones(2, 3), -1, -1)


@pytest.mark.parametrize("call, pattern", [
    (lambda x: F.transpose(x, 0, 2), r"transpose: dim 2 is out of range"),
    (lambda x: F.flatten(x, 3), r"flatten: dim 3 is out of range"),
    (lambda x: F.squeeze(x, 2), r"squeeze: dim 2 is out of range"),
    (lambda x: F.unsqueeze(x, 4), r"unsqueeze: dim 4 is out of range"),
    (lambda x: F.cat([x, x], 2), r"cat: dim 2 is out of range"),
    (lambda x: F.stack([x, x], -4), r"stack: dim -4 is out of range"),
    (lambda x: F.permute(x, (0, 5)), r"permute: dim 5 is out of range"),
])
def test_bad_dim_names_the_op(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call(tn.ones(2, 3))


def test_permute_must_be_a_permutation():
    with pytest.raises(ValueError, match=r"permute: dims \[0, 0\] is not a permutation"):
        F.permute(tn.ones(2, 3), (0, 0))


def test_flatten_start_after_end():
    with pytest.raises(ValueError, match="flatten: start_dim 1 comes after end_dim 0"):
        F.flatten(tn.ones(2, 3), 1, 0)


def test_expand_to_an_incompatible_size():
    with pytest.raises(ValueError, match=r"expand: the size of dimension 0 \(2\) must match the requested 3"):
        F.expand(tn.ones(2, 3), 3, 3)
    with pytest.raises(ValueError, match=r"expand: the number of sizes \(1\)"):
        F.expand(tn.ones(2, 3), 3)


def test_getitem_errors():
    with pytest.raises(TypeError, match="getitem: index arrays must be integer or bool, got float32"):
        tn.ones(3)[tn.tensor([0.5])]
    with pytest.raises(IndexError, match=r"getitem: index 5 is out of bounds.*\(tensor shape \(3,\)\)"):
        tn.ones(3)[5]


def test_cat_and_stack_errors():
    with pytest.raises(ValueError, match=r"cat: tensors\[1\] has shape \(2, 2\) but tensors\[0\] has \(2, 3\)"):
        F.cat([tn.ones(2, 3), tn.ones(2, 2)], 0)
    with pytest.raises(ValueError, match=r"stack: tensors\[1\] has shape \(3, 2\)"):
        F.stack([tn.ones(2, 3), tn.ones(3, 2)])
    with pytest.raises(TypeError, match="stack: expected a list or tuple of Tensors, got Tensor"):
        F.stack(tn.ones(2))
    with pytest.raises(TypeError, match=r"cat: argument 'tensors\[1\]' must be a Tensor, got list"):
        F.cat([tn.ones(2), [1.0]])
    with pytest.raises(ValueError, match="cat: expected a non-empty list"):
        F.cat([])


def test_pad_errors():
    with pytest.raises(ValueError, match="pad: 'pad' must have an even length"):
        F.pad(tn.ones(2, 3), (1,))
    with pytest.raises(ValueError, match="pad: padding sizes must be ints"):
        F.pad(tn.ones(2, 3), (1, 0.5))
    with pytest.raises(ValueError, match=r"pad: padding \(-3, 0\) crops every padded dim \(dims 1\) to 0 entries"):
        F.pad(tn.ones(2, 3), (-3, 0), mode="reflect")
    with pytest.raises(ValueError, match=r"pad: cropping \(-2, -2\) of dim 1 removes more than its size 3"):
        F.pad(tn.ones(2, 3), (-2, -2))


def test_pad_negative_sizes_crop_then_pad():
    x = tn.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = F.pad(x, (-1, 2, 1, -1), value=9.0)     # drop column 0 and the last row, then pad
    assert y.detach().numpy().tolist() == [[9, 9, 9, 9], [1, 2, 9, 9]]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [[0, 1, 1], [0, 0, 0]]
    assert F.pad(x, (-3, 0)).shape == (2, 0)                 # an empty crop, as in PyTorch


def test_pad_value_none_is_zero_and_other_modes_take_no_value():
    x = tn.tensor([[1.0, 2.0]])
    assert F.pad(x, (1, 1), value=None).numpy().tolist() == [[0, 1, 2, 0]]
    assert F.pad(x, (1, 0), mode="reflect", value=0.0).numpy().tolist() == [[2, 1, 2]]
    with pytest.raises(ValueError, match="pad: mode 'reflect' takes no fill value, got value=2.0"):
        F.pad(x, (1, 0), mode="reflect", value=2.0)
    with pytest.raises(ValueError, match="pad: mode 'circular' takes no fill value, got value=2.0"):
        F.pad(x, (1, 0), mode="circular", value=2.0)
