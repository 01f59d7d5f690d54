"""F.group_norm / nn.GroupNorm: a hand-computed case, the module against PyTorch's (names,
initial values, output and gradients), and the errors. The registry covers gradcheck,
gradgradcheck and PyTorch parity of the function over drawn shapes."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import nn
from tinynet.testing import assert_close


def test_groups_normalize_separately_by_hand():
    """Channels {0, 1} and {2, 3} are two groups: each is standardized on its own values."""
    x = tn.tensor([[[1.0], [3.0], [10.0], [14.0]]], dtype=tn.float64)
    y = F.group_norm(x, 2, eps=1e-12).numpy().ravel()
    assert np.allclose(y, [-1.0, 1.0, -1.0, 1.0])
    y1 = F.group_norm(x, 1, eps=1e-12).numpy().ravel()
    values = np.array([1.0, 3.0, 10.0, 14.0])
    assert np.allclose(y1, (values - values.mean()) / values.std())


def test_module_matches_torch():
    """Parameter names, initial values, outputs and gradients equal PyTorch's GroupNorm."""
    torch = pytest.importorskip("torch")
    theirs = torch.nn.GroupNorm(2, 6, dtype=torch.float64)
    ours = nn.GroupNorm(2, 6, dtype=tn.float64)
    assert set(ours.state_dict()) == set(theirs.state_dict()) == {"weight", "bias"}
    assert np.array_equal(ours.weight.detach().numpy(), theirs.weight.detach().numpy())
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 2.0)
        theirs.bias.normal_()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 6, 4, 5))
    a, b = tn.tensor(x, requires_grad=True), torch.from_numpy(x).requires_grad_(True)
    out_o, out_t = ours(a), theirs(b)
    assert_close(out_o, out_t, rtol=1e-9, atol=1e-12)
    v = np.cos(np.arange(x.size)).reshape(x.shape)
    (out_o * tn.tensor(v)).sum().backward()
    (out_t * torch.from_numpy(v)).sum().backward()
    assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-11)
    assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-8, atol=1e-11)
    assert_close(ours.bias.grad, theirs.bias.grad, rtol=1e-8, atol=1e-11)


def test_without_affine_has_no_parameters():
    assert list(nn.GroupNorm(1, 4, affine=False).parameters()) == []


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.group_norm(tn.ones(2, 6, 3), 4), ValueError, "group_norm: the 6 channels .* num_groups=4"),
    (lambda: F.group_norm(tn.ones(6), 2), ValueError, "group_norm: expected input of shape \\(N, C, \\*\\)"),
    (lambda: F.group_norm(tn.ones(2, 6), 0), ValueError, "group_norm: num_groups must be a positive int"),
    (lambda: F.group_norm(tn.ones(2, 6), 2, weight=tn.ones(5)), ValueError, "group_norm: weight has 5 elements"),
    (lambda: F.group_norm(tn.tensor([[1, 2]]), 1), TypeError, "group_norm: expected 'input' to be a floating-point"),
    (lambda: nn.GroupNorm(4, 6), ValueError, "GroupNorm: num_channels \\(6\\) must be divisible"),
    (lambda: nn.GroupNorm(2, 6)(tn.ones(2, 4, 3)), ValueError, "GroupNorm: expected input of shape \\(N, 6, \\*\\)"),
])
def test_errors_name_the_op_and_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
