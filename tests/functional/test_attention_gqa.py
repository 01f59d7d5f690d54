"""F.scaled_dot_product_attention(enable_gqa=True): key/value heads repeated per group of query
heads (repeat_interleave along dim -3), by hand and against PyTorch (values and gradients),
and the errors PyTorch raises (as ValueErrors naming the argument). The registry draws
enable_gqa with head counts for gradcheck, gradgradcheck and PyTorch parity."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import assert_close


def test_each_key_head_serves_a_consecutive_group_of_query_heads_by_hand():
    """Query heads 0, 1 must read key/value head 0 and heads 2, 3 head 1 (interleaved, not
    tiled): with one key position the output is that head's value row."""
    q = tn.tensor(np.ones((4, 1, 2)))
    k = tn.tensor(np.ones((2, 1, 2)))
    v = tn.tensor(np.array([[[10.0]], [[20.0]]]))
    out = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    assert out.numpy().ravel().tolist() == [10.0, 10.0, 20.0, 20.0]


def test_grouped_gradient_sums_over_the_group_by_hand():
    """The gradient of a shared value head is the sum of its group's output gradients."""
    q = tn.tensor(np.ones((4, 1, 2)))
    k = tn.tensor(np.ones((2, 1, 2)))
    v = tn.tensor(np.zeros((2, 1, 1)), requires_grad=True)
    out = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    (out * tn.tensor(np.array([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1))).sum().backward()
    assert v.grad.numpy().ravel().tolist() == [3.0, 7.0]


@pytest.mark.parametrize("shapes", [
    ((2, 4, 3, 5), (2, 2, 6, 5), (2, 4, 6, 7)),      # key and value with different head counts
    ((6, 3, 5), (3, 6, 5), (1, 6, 7)),                # unbatched 3-D
    ((1, 2, 6, 3, 5), (1, 2, 3, 6, 5), (1, 2, 2, 6, 7)),
    ((2, 4, 3, 5), (1, 2, 6, 5), (1, 2, 6, 7)),       # key/value batch broadcasts too
])
def test_matches_torch_values_and_gradients(shapes):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s) for s in shapes]
    mask = rng.standard_normal(shapes[0][:-1] + (shapes[1][-2],))
    ours = [tn.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_o = F.scaled_dot_product_attention(*ours, tn.tensor(mask), scale=0.7, enable_gqa=True)
    out_t = torch.nn.functional.scaled_dot_product_attention(*theirs, torch.tensor(mask), scale=0.7,
                                                             enable_gqa=True)
    assert_close(out_o.detach(), out_t.detach(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(out_o.shape)
    (out_o * tn.tensor(w)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, theirs):
        assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shapes, message", [
    (((2, 4, 3, 5), (2, 3, 6, 5), (2, 3, 6, 5)), r"number of heads of 'key' \(3\) to divide .* 'query' \(4\)"),
    (((2, 4, 3, 5), (2, 4, 6, 5), (2, 8, 6, 5)), r"number of heads of 'value' \(8\) to divide"),
    (((2, 1, 3, 5), (2, 2, 6, 5), (2, 2, 6, 5)), r"'key' \(2\) to divide .* 'query' \(1\)"),
    (((3, 5), (6, 5), (6, 5)), r"'query' with a head dim"),
    (((2, 3, 5), (6, 5), (6, 5)), r"'key' with a head dim"),
])
def test_errors_where_torch_refuses(shapes, message):
    """Each case also fails in PyTorch (RuntimeError / IndexError there)."""
    q, k, v = (tn.randn(*s) for s in shapes)
    with pytest.raises(ValueError, match="scaled_dot_product_attention: enable_gqa=True needs .*" + message):
        F.scaled_dot_product_attention(q, k, v, enable_gqa=True)


def test_without_enable_gqa_unequal_heads_do_not_broadcast():
    with pytest.raises(ValueError, match="scaled_dot_product_attention: the batch dims"):
        F.scaled_dot_product_attention(tn.randn(2, 4, 3, 5), tn.randn(2, 2, 6, 5), tn.randn(2, 2, 6, 5))
