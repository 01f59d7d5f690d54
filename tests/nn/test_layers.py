"""Every layer against torch.nn with the same weights (float64, forward and backward),
default-initialisation bounds, and construction/input errors that name the layer."""
import math

import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
import tinynet.functional as F
from tinynet.testing import assert_close

try:                      # only the PyTorch comparisons need it
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install tinynet[ref])")


def _to_torch_state(module):
    return {k: torch.from_numpy(np.array(v.numpy())) for k, v in module.state_dict().items()}


def _compare(ours, theirs, x_np, extra_args=(), rtol=1e-10, atol=1e-10, grad_x=True):
    """Same weights; forward values, input gradient and parameter gradients agree."""
    ours.double()
    theirs.double()
    theirs.load_state_dict(_to_torch_state(ours))
    x = tn.tensor(x_np, requires_grad=grad_x)
    xt = torch.from_numpy(x_np.copy()).requires_grad_(grad_x)
    y = ours(x, *extra_args)
    yt = theirs(xt, *extra_args)
    assert tuple(y.shape) == tuple(yt.shape), "output shape differs from PyTorch"
    assert_close(y, yt, rtol=rtol, atol=atol, msg=f"{type(ours).__name__} forward")
    v = np.random.default_rng(1).standard_normal(y.shape)
    (y * tn.tensor(v)).sum().backward()
    (yt * torch.from_numpy(v)).sum().backward()
    if grad_x:
        assert_close(x.grad, xt.grad, rtol=rtol, atol=atol, msg=f"{type(ours).__name__} input grad")
    named_t = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, named_t[name].grad, rtol=rtol, atol=atol,
                     msg=f"{type(ours).__name__} grad of {name}")
    return y, yt


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@needs_torch
def test_linear_matches_torch():
    _compare(nn.Linear(5, 3), torch.nn.Linear(5, 3), _x(4, 5))
    _compare(nn.Linear(5, 3, bias=False), torch.nn.Linear(5, 3, bias=False), _x(2, 6, 5))


@needs_torch
@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2),
                                dict(groups=2, bias=False), dict(padding="valid")])
def test_conv2d_matches_torch(kw):
    _compare(nn.Conv2d(4, 6, 3, **kw), torch.nn.Conv2d(4, 6, 3, **kw), _x(2, 4, 7, 8))


@needs_torch
@pytest.mark.parametrize("kw", [dict(stride=2), dict(stride=2, padding=1, output_padding=1),
                                dict(groups=2, bias=False)])
def test_conv_transpose2d_matches_torch(kw):
    _compare(nn.ConvTranspose2d(4, 6, 3, **kw), torch.nn.ConvTranspose2d(4, 6, 3, **kw), _x(2, 4, 5, 5))


@needs_torch
def test_pools_match_torch():
    x = _x(2, 3, 8, 9)
    _compare(nn.MaxPool2d(2), torch.nn.MaxPool2d(2), x)
    _compare(nn.MaxPool2d(3, stride=2, padding=1), torch.nn.MaxPool2d(3, stride=2, padding=1), x)
    _compare(nn.AvgPool2d(2), torch.nn.AvgPool2d(2), x)
    _compare(nn.AvgPool2d(3, 2, 1, count_include_pad=False),
             torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False), x)
    _compare(nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1), x)
    _compare(nn.AdaptiveAvgPool2d((3, 4)), torch.nn.AdaptiveAvgPool2d((3, 4)), x)


@needs_torch
@pytest.mark.parametrize("ours,theirs", [      # theirs: built when the test runs (needs torch)
    pytest.param(ours, theirs, id=type(ours).__name__) for ours, theirs in [
        (nn.ReLU(), lambda: torch.nn.ReLU()), (nn.ELU(0.7), lambda: torch.nn.ELU(0.7)),
        (nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)), (nn.Sigmoid(), lambda: torch.nn.Sigmoid()),
        (nn.Tanh(), lambda: torch.nn.Tanh()), (nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1)),
        (nn.LogSoftmax(dim=-1), lambda: torch.nn.LogSoftmax(dim=-1)),
        (nn.Identity(), lambda: torch.nn.Identity()),
        (nn.Flatten(), lambda: torch.nn.Flatten()), (nn.Flatten(0, 1), lambda: torch.nn.Flatten(0, 1))]])
def test_parameterless_layers_match_torch(ours, theirs):
    _compare(ours, theirs(), _x(3, 4, 5))


@needs_torch
def test_batchnorm_layers_match_torch():
    _compare(nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3), _x(4, 3, 5, 5))
    _compare(nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3), _x(6, 3))
    _compare(nn.BatchNorm1d(3, affine=False), torch.nn.BatchNorm1d(3, affine=False), _x(4, 3, 7))
    _compare(nn.LayerNorm(5), torch.nn.LayerNorm(5), _x(4, 3, 5))


@needs_torch
def test_sequential_and_lambda_match_torch():
    ours = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 3 * 3, 5), nn.Lambda(lambda t: t * 2.0))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                 torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                                 torch.nn.Linear(4 * 3 * 3, 5))
    ours.double()
    theirs.double()
    theirs.load_state_dict(_to_torch_state(ours))
    x = _x(2, 2, 6, 6)
    assert_close(ours(tn.tensor(x)), theirs(torch.from_numpy(x)) * 2.0, rtol=1e-10, atol=1e-10)


@needs_torch
def test_embedding_matches_torch_and_padding_row_gets_no_grad():
    ours, theirs = nn.Embedding(7, 3, padding_idx=2), torch.nn.Embedding(7, 3, padding_idx=2)
    assert np.all(ours.weight.detach().numpy()[2] == 0), "padding row must start at zero"
    ours.double()
    theirs.double()
    theirs.load_state_dict(_to_torch_state(ours))
    idx = np.array([[0, 2, 6], [2, 2, 1]])
    y, yt = ours(tn.tensor(idx)), theirs(torch.from_numpy(idx))
    assert_close(y, yt)
    v = np.random.default_rng(0).standard_normal(y.shape)
    (y * tn.tensor(v)).sum().backward()
    (yt * torch.from_numpy(v)).sum().backward()
    assert_close(ours.weight.grad, theirs.weight.grad)


@needs_torch
def test_losses_match_torch():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4))
    target = rng.integers(0, 4, 5)
    probs = 1 / (1 + np.exp(-rng.standard_normal((5, 4))))
    binary = (rng.random((5, 4)) > 0.5).astype(np.float64)
    w = rng.random(4) + 0.5
    cases = [
        (nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), logits, target),
        (nn.CrossEntropyLoss(weight=tn.tensor(w), label_smoothing=0.1),
         torch.nn.CrossEntropyLoss(weight=torch.from_numpy(w), label_smoothing=0.1), logits, target),
        (nn.NLLLoss(reduction="sum"), torch.nn.NLLLoss(reduction="sum"), logits, target),
        (nn.MSELoss(), torch.nn.MSELoss(), logits, probs),
        (nn.BCELoss(), torch.nn.BCELoss(), probs, binary),
        (nn.BCEWithLogitsLoss(pos_weight=tn.tensor(w)),
         torch.nn.BCEWithLogitsLoss(pos_weight=torch.from_numpy(w)), logits, binary),
    ]
    for ours, theirs, inp, tgt in cases:
        x = tn.tensor(inp, requires_grad=True)
        xt = torch.from_numpy(inp.copy()).requires_grad_(True)
        loss, loss_t = ours(x, tn.tensor(tgt)), theirs(xt, torch.from_numpy(tgt))
        assert_close(loss, loss_t, rtol=1e-10, atol=1e-12, msg=type(ours).__name__)
        loss.backward()
        loss_t.backward()
        assert_close(x.grad, xt.grad, rtol=1e-10, atol=1e-12, msg=type(ours).__name__ + " grad")


# ------------------------------------------------------------------ dropout
def test_dropout_identity_in_eval_and_p0():
    x = tn.randn(50, 40)
    d = nn.Dropout(0.3)
    d.eval()
    assert_close(d(x), x)
    assert_close(nn.Dropout(0.0)(x), x)


def test_dropout_mask_statistics_and_scaling():
    """Kept fraction ≈ 1 - p, kept values scaled by exactly 1/(1 - p), gradient the same mask."""
    tn.manual_seed(0)
    p = 0.3
    x = tn.ones(200, 500, dtype=tn.float64, requires_grad=True)
    y = nn.Dropout(p)(x)
    vals = y.detach().numpy()
    kept = vals != 0
    assert abs(kept.mean() - (1 - p)) < 0.01, "keep rate must be 1 - p"
    assert np.allclose(vals[kept], 1 / (1 - p)), "kept values must be scaled by 1/(1-p)"
    y.sum().backward()
    assert np.array_equal(x.grad.numpy(), vals), "gradient must use the same scaled mask"
    assert np.all(nn.Dropout(1.0)(x).detach().numpy() == 0)


def test_dropout_graph_keeps_a_one_byte_mask():
    """The saved mask is boolean (as PyTorch keeps it), not a float array 4x its size:
    this is what keeps a U-Net step's peak memory below PyTorch's."""
    x = tn.ones(8, 8, requires_grad=True)
    y = F.dropout(x, 0.5)
    assert y.grad_fn.keep.dtype == np.bool_ and y.grad_fn.keep.shape == (8, 8)


def test_dropout_is_repeatable_under_a_seed():
    x = tn.ones(10, 10)
    tn.manual_seed(5)
    a = nn.Dropout(0.5)(x).numpy()
    tn.manual_seed(5)
    b = nn.Dropout(0.5)(x).numpy()
    assert np.array_equal(a, b)


# ------------------------------------------------------------------ default initialisation
@needs_torch
def test_linear_and_conv_default_init_within_pytorch_bounds():
    tn.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w = lin.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound, "weight must be U(±1/√fan_in)"
    assert np.abs(lin.bias.detach().numpy()).max() <= bound
    conv = nn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(16 * 9)
    w = conv.weight.detach().numpy()
    assert np.abs(w).max() <= bound and abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    convt = nn.ConvTranspose2d(16, 8, 2)
    bound = 1 / math.sqrt(8 * 4)   # PyTorch's fan_in of a transposed conv weight: size(1)·k·k
    assert np.abs(convt.weight.detach().numpy()).max() <= bound
    assert np.abs(convt.bias.detach().numpy()).max() <= bound


def test_embedding_and_batchnorm_default_init():
    tn.manual_seed(0)
    e = nn.Embedding(1000, 50).weight.detach().numpy()
    assert abs(e.mean()) < 0.01 and abs(e.std() - 1) < 0.01
    bn = nn.BatchNorm2d(4)
    assert np.all(bn.weight.detach().numpy() == 1) and np.all(bn.bias.detach().numpy() == 0)
    assert np.all(bn.running_var.numpy() == 1) and bn.num_batches_tracked.item() == 0


def test_default_dtype_is_float32():
    assert nn.Linear(2, 2).weight.dtype == np.float32
    assert nn.Conv2d(2, 2, 1).weight.dtype == np.float32


# ------------------------------------------------------------------ construction errors
@pytest.mark.parametrize("make,words", [
    (lambda: nn.Linear(0, 3), "Linear: in_features"),
    (lambda: nn.Linear(3, -1), "Linear: out_features"),
    (lambda: nn.Conv2d(3, 4, 0), "Conv2d: kernel_size"),
    (lambda: nn.Conv2d(0, 4, 3), "Conv2d: in_channels"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), "Conv2d: stride"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "divisible by groups"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), "Conv2d: padding"),
    (lambda: nn.Conv2d(3, 4, 3, padding="same", stride=2), "same"),
    (lambda: nn.ConvTranspose2d(3, 4, 0), "ConvTranspose2d: kernel_size"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2), "output_padding"),
    (lambda: nn.MaxPool2d(0), "MaxPool2d: kernel_size"),
    (lambda: nn.MaxPool2d(2, padding=2), "MaxPool2d: padding"),
    (lambda: nn.AvgPool2d(2, stride=0), "AvgPool2d: stride"),
    (lambda: nn.AdaptiveAvgPool2d(-1), "AdaptiveAvgPool2d"),
    (lambda: nn.BatchNorm2d(0), "BatchNorm2d: num_features"),
    (lambda: nn.BatchNorm1d(3, momentum=1.5), "BatchNorm1d: momentum"),
    (lambda: nn.Dropout(1.5), "Dropout: probability"),
    (lambda: nn.Dropout(-0.1), "Dropout: probability"),
    (lambda: nn.Embedding(0, 4), "Embedding: num_embeddings"),
    (lambda: nn.Embedding(4, 2, padding_idx=9), "Embedding: padding_idx"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), "CrossEntropyLoss: reduction"),
])
def test_bad_construction_arguments_are_clear_errors(make, words):
    with pytest.raises((ValueError, TypeError)) as e:
        make()
    assert words in str(e.value)


def test_non_int_sizes_are_type_errors():
    with pytest.raises(TypeError, match="Linear: in_features must be an int"):
        nn.Linear(2.5, 3)
    with pytest.raises(TypeError, match="Conv2d: kernel_size"):
        nn.Conv2d(3, 4, 2.0)


@pytest.mark.parametrize("layer,x,words", [
    (lambda: nn.Linear(4, 2), lambda: tn.randn(3, 5), "Linear: expected input with 4 features"),
    (lambda: nn.Conv2d(3, 4, 3), lambda: tn.randn(2, 2, 8, 8), "Conv2d: expected input with 3 channels"),
    (lambda: nn.Conv2d(3, 4, 3), lambda: tn.randn(8, 8), "Conv2d: expected a 4-D input"),
    (lambda: nn.ConvTranspose2d(3, 4, 2), lambda: tn.randn(1, 4, 5, 5),
     "ConvTranspose2d: expected input with 3 channels"),
    (lambda: nn.BatchNorm2d(3), lambda: tn.randn(2, 4, 5, 5), "BatchNorm2d: expected input with 3 channels"),
    (lambda: nn.BatchNorm2d(3), lambda: tn.randn(2, 3), "BatchNorm2d: expected a 4-D input"),
    (lambda: nn.BatchNorm1d(3), lambda: tn.randn(2, 3, 4, 4), "BatchNorm1d: expected a 2-D"),
    (lambda: nn.MaxPool2d(2), lambda: tn.randn(4), "MaxPool2d: expected a 4-D input"),
    (lambda: nn.LayerNorm(4), lambda: tn.randn(2, 5), "LayerNorm: expected input whose trailing dims"),
    (lambda: nn.Embedding(5, 2), lambda: tn.tensor([0, 5]), "Embedding: index 5 is out of range"),
])
def test_wrong_inputs_name_the_layer(layer, x, words):
    with pytest.raises((ValueError, TypeError)) as e:
        layer()(x())
    assert words in str(e.value)


def test_embedding_rejects_float_indices():
    with pytest.raises(TypeError, match="Embedding: expected an integer tensor"):
        nn.Embedding(5, 2)(tn.randn(3))


def test_batchnorm_training_needs_more_than_one_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(tn.randn(1, 3))
