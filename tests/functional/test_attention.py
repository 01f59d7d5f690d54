"""F.scaled_dot_product_attention: small cases with known answers, dropout's mask, fully
masked queries, and the errors (the registry covers gradcheck, gradgradcheck and PyTorch
parity over drawn shapes and masks)."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F


def test_known_weights_by_hand():
    """Scores [0, ln 3] give weights [1/4, 3/4]; a wrong scale or softmax axis fails here."""
    q = tn.tensor([[1.0]], dtype=tn.float64)                   # L = 1, E = 1
    k = tn.tensor([[0.0], [np.log(3.0)]], dtype=tn.float64)    # S = 2
    v = tn.tensor([[4.0, 0.0], [8.0, 1.0]], dtype=tn.float64)
    out = F.scaled_dot_product_attention(q, k, v, scale=1.0)
    assert np.allclose(out.numpy(), [[0.25 * 4 + 0.75 * 8, 0.75]])


def test_causal_and_boolean_masks_by_hand():
    """Query 0 under a causal mask sees key 0 only; a boolean False hides a key."""
    q = tn.zeros(2, 1)
    v = tn.tensor([[1.0], [3.0]])
    causal = F.scaled_dot_product_attention(q, q, v, is_causal=True).numpy()
    assert causal.tolist() == [[1.0], [2.0]]
    mask = tn.tensor([[False, True], [True, True]])
    masked = F.scaled_dot_product_attention(q, q, v, attn_mask=mask).numpy()
    assert masked.tolist() == [[3.0], [2.0]]


def test_a_query_that_sees_nothing_outputs_zeros_and_passes_no_gradient():
    """PyTorch's rule for fully masked rows: zeros, not NaN."""
    q = tn.randn(3, 2, requires_grad=True)
    mask = tn.tensor([[True, True, True], [False, False, False], [True, False, True]])
    out = F.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    assert np.all(out.detach().numpy()[1] == 0) and np.isfinite(out.detach().numpy()).all()
    out.sum().backward()
    assert np.isfinite(q.grad.numpy()).all()


@pytest.mark.parametrize("p", [0.25, 0.6])
def test_dropout_zeroes_weights_with_rate_p_and_rescales_the_rest(p):
    """With uniform weights 1/S and V = I, the output is the dropout mask over S: its zeros
    must have rate p and the kept entries must equal 1/(1 - p)."""
    S = 400
    tn.manual_seed(3)
    q = tn.zeros(50, 1, dtype=tn.float64)
    k = tn.zeros(S, 1, dtype=tn.float64)
    eye = tn.tensor(np.eye(S))
    mask = F.scaled_dot_product_attention(q, k, eye, dropout_p=p).numpy() * S
    kept = mask[mask != 0]
    assert np.allclose(kept, 1.0 / (1.0 - p))
    assert abs((mask == 0).mean() - p) < 0.02
    tn.manual_seed(3)
    again = F.scaled_dot_product_attention(q, k, eye, dropout_p=p).numpy() * S
    assert np.array_equal(mask, again), "a seed must repeat the dropout mask"


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(query=tn.randn(3)), ValueError, "'query' to have at least 2 dims"),
    (dict(key=tn.randn(4, 3)), ValueError, "'key' has 3 features but 'query' has 2"),
    (dict(value=tn.randn(5, 2)), ValueError, "'value' has 5 positions but 'key' has 4"),
    (dict(query=tn.randn(3, 3, 2), key=tn.randn(2, 4, 2), value=tn.randn(2, 4, 2)), ValueError,
     "batch dims of query \\(3,\\), key \\(2,\\) and value \\(2,\\) do not broadcast"),
    (dict(value=tn.randn(4, 2, dtype=tn.float64)), TypeError, "'value' has dtype float64"),
    (dict(query=tn.tensor([[1, 2]] * 3)), TypeError, "floating-point"),
    (dict(attn_mask=tn.ones(3, 5)), ValueError, "do not broadcast"),
    (dict(attn_mask=tn.ones(2, 3, 4)), ValueError, "does not broadcast to the attention scores"),
    (dict(attn_mask=tn.ones(3, 4, dtype=tn.int64)), TypeError, "bool or floating-point"),
    (dict(attn_mask=tn.ones(3, 4), is_causal=True), ValueError, "not both"),
    (dict(dropout_p=1.5), ValueError, "dropout_p must be a number in \\[0, 1\\]"),
    (dict(scale="big"), TypeError, "scale must be a number"),
])
def test_errors_name_the_op_and_argument(kwargs, error, message):
    args = dict(query=tn.randn(3, 2), key=tn.randn(4, 2), value=tn.randn(4, 2))
    args.update(kwargs)
    with pytest.raises(error, match="scaled_dot_product_attention: .*" + message):
        F.scaled_dot_product_attention(**args)
