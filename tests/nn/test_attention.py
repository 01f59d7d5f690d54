"""nn.MultiheadAttention against torch.nn.MultiheadAttention: a PyTorch state_dict loads by
name and gives the same outputs, attention weights and gradients (inputs and every
parameter), for each layout and mask kind; then the errors."""
import numpy as np
import pytest

import tinynet as tn
from tinynet import nn
from tinynet.testing import assert_close

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install tinynet[ref])")

CASES = [
    dict(),
    dict(batch_first=True),
    dict(unbatched=True),
    dict(key_padding_mask="bool"),
    dict(key_padding_mask="float", batch_first=True),
    dict(attn_mask="bool"),
    dict(attn_mask="float_per_head"),
    dict(attn_mask="causal", is_causal=True),
    dict(attn_mask="bool", key_padding_mask="bool", average_attn_weights=False),
    dict(need_weights=False, key_padding_mask="bool", attn_mask="float"),
    dict(kdim=3, vdim=5),
    dict(bias=False, batch_first=True),
    dict(unbatched=True, key_padding_mask="bool", average_attn_weights=False),
]


def _masks(case, N, H, L, S, rng):
    """(tinynet, torch) versions of the masks; every query keeps at least one key."""
    out = {}
    kind = case.get("attn_mask")
    if kind == "bool":
        m = rng.random((L, S)) < 0.4
        m[:, 0] = False                       # True = not allowed; key 0 always allowed
        out["attn_mask"] = m
    elif kind == "float":
        out["attn_mask"] = rng.standard_normal((L, S))
    elif kind == "float_per_head":
        out["attn_mask"] = rng.standard_normal((N * H, L, S))
    elif kind == "causal":
        out["attn_mask"] = np.triu(np.ones((L, S), dtype=bool), 1)
    kpm = case.get("key_padding_mask")
    shape = (S,) if case.get("unbatched") else (N, S)
    if kpm == "bool":
        m = rng.random(shape) < 0.4
        m[..., 0] = False
        out["key_padding_mask"] = m
    elif kpm == "float":
        out["key_padding_mask"] = rng.standard_normal(shape)
    return ({k: tn.tensor(v) for k, v in out.items()},
            {k: torch.from_numpy(v) for k, v in out.items()})


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_torch_state_dict_gives_same_outputs_and_gradients(case):
    """A wrong projection split, head layout, mask convention, weight averaging or any
    gradient differing from PyTorch's fails here."""
    E, H, N, L, S = 6, 2, 3, 4, 5
    ctor = {k: case[k] for k in ("batch_first", "kdim", "vdim", "bias") if k in case}
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, H, dtype=torch.float64, **ctor)
    ours = nn.MultiheadAttention(E, H, dtype=tn.float64, **ctor)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert set(ours.state_dict()) == set(theirs.state_dict())
    rng = np.random.default_rng(1)
    kdim, vdim = case.get("kdim", E), case.get("vdim", E)
    if case.get("unbatched"):
        shapes = [(L, E), (S, kdim), (S, vdim)]
    elif case.get("batch_first"):
        shapes = [(N, L, E), (N, S, kdim), (N, S, vdim)]
    else:
        shapes = [(L, N, E), (S, N, kdim), (S, N, vdim)]
    arrays = [rng.standard_normal(s) for s in shapes]
    ours_in = [tn.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.from_numpy(a).requires_grad_(True) for a in arrays]
    masks_ours, masks_theirs = _masks(case, N, H, L, S, rng)
    kw = {k: case[k] for k in ("need_weights", "average_attn_weights", "is_causal") if k in case}
    out_o, w_o = ours(*ours_in, **masks_ours, **kw)
    out_t, w_t = theirs(*theirs_in, **masks_theirs, **kw)
    assert tuple(out_o.shape) == tuple(out_t.shape)
    assert_close(out_o, out_t, rtol=1e-9, atol=1e-12, msg="output")
    assert (w_o is None) == (w_t is None)
    loss_o = (out_o * tn.tensor(np.cos(np.arange(out_o.data.size)).reshape(out_o.shape))).sum()
    loss_t = (out_t * torch.from_numpy(np.cos(np.arange(out_t.numel())).reshape(out_t.shape))).sum()
    if w_o is not None:
        assert tuple(w_o.shape) == tuple(w_t.shape)
        assert_close(w_o, w_t, rtol=1e-9, atol=1e-12, msg="attention weights")
        v = np.sin(np.arange(w_o.data.size)).reshape(w_o.shape)
        loss_o = loss_o + (w_o * tn.tensor(v)).sum()
        loss_t = loss_t + (w_t * torch.from_numpy(v)).sum()
    loss_o.backward()
    loss_t.backward()
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-11, msg=f"gradient of input {i}")
    params_t = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, params_t[name].grad, rtol=1e-8, atol=1e-11, msg=f"gradient of {name}")


def test_dropout_is_off_in_eval_and_on_in_training():
    """Evaluation must be deterministic; training with dropout must change the output."""
    mha = nn.MultiheadAttention(4, 2, dropout=0.5, batch_first=True)
    x = tn.randn(2, 6, 4)
    mha.eval()
    a, _ = mha(x, x, x)
    b, _ = mha(x, x, x)
    assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    mha.train()
    c, w = mha(x, x, x, average_attn_weights=False)
    assert not np.allclose(c.detach().numpy(), a.detach().numpy())
    # the returned weights are the dropped ones: each kept entry is scaled by 1/(1 - p) = 2
    assert np.any(w.detach().numpy() == 0)


@pytest.mark.parametrize("build, call, error, message", [
    (lambda: nn.MultiheadAttention(6, 4), None, ValueError, "MultiheadAttention: embed_dim \\(6\\) must be divisible"),
    (lambda: nn.MultiheadAttention(4, 2, add_bias_kv=True), None, ValueError, "add_bias_kv"),
    (lambda: nn.MultiheadAttention(4, 2, dropout=1.5), None, ValueError, "dropout"),
    (lambda: nn.MultiheadAttention(4, 2), lambda m: m(tn.randn(3, 2, 5), tn.randn(3, 2, 4), tn.randn(3, 2, 4)),
     ValueError, "'query' to have 4 features"),
    (lambda: nn.MultiheadAttention(4, 2), lambda m: m(tn.randn(3, 2, 4), tn.randn(3, 4), tn.randn(3, 2, 4)),
     ValueError, "all 3-D"),
    (lambda: nn.MultiheadAttention(4, 2), lambda m: m(tn.randn(3, 2, 4), tn.randn(5, 3, 4), tn.randn(5, 3, 4)),
     ValueError, "batch size"),
    (lambda: nn.MultiheadAttention(4, 2), lambda m: m(*[tn.randn(3, 2, 4)] * 3, attn_mask=tn.zeros(2, 3)),
     ValueError, "attn_mask must have shape"),
    (lambda: nn.MultiheadAttention(4, 2), lambda m: m(*[tn.randn(3, 2, 4)] * 3, key_padding_mask=tn.zeros(3, 2)),
     ValueError, "key_padding_mask must have shape \\(2, 3\\)"),
    (lambda: nn.MultiheadAttention(4, 2), lambda m: m(*[tn.randn(3, 2, 4)] * 3, is_causal=True),
     ValueError, "is_causal"),
    (lambda: nn.MultiheadAttention(4, 2), lambda m: m(*[tn.randn(3, 2, 4)] * 3, attn_mask=tn.zeros(3, 3, dtype=tn.int64)),
     TypeError, "attn_mask must be a bool or floating-point"),
])
def test_errors_name_the_layer(build, call, error, message):
    with pytest.raises(error, match=message):
        m = build()
        call(m)
