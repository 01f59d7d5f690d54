"""Module, Parameter and containers: registration, traversal, state_dict names and loading,
train/eval, to(), zero_grad, hooks, repr."""
from collections import OrderedDict

import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
from tinynet.testing import assert_close


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.heads = nn.ModuleDict({"cls": nn.Linear(3, 4), "reg": nn.Linear(3, 1)})
        self.stack = nn.ModuleList([nn.ReLU(), nn.Dropout(0.5)])
        self.register_buffer("scale", tn.ones(1))
        self.register_buffer("cache", tn.zeros(2), persistent=False)

    def forward(self, x):
        x = self.bn(self.conv(x))
        for m in self.stack:
            x = m(x)
        x = x.mean((2, 3))
        return self.heads["cls"](x) * self.scale, self.heads["reg"](x)


def test_state_dict_keys_follow_pytorch_naming():
    keys = list(Block().state_dict())
    assert keys == ["scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean",
                    "bn.running_var", "bn.num_batches_tracked", "heads.cls.weight",
                    "heads.cls.bias", "heads.reg.weight", "heads.reg.bias"]
    assert "cache" not in keys, "non-persistent buffers stay out of the state dict"


def test_state_dict_keys_match_torch_for_the_same_structure():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2, 3))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(2, 3))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (k, v), (k2, v2) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert tuple(v.shape) == tuple(v2.shape), k
    # and torch weights load into tinynet by name
    ours.load_state_dict(theirs.state_dict())
    assert_close(ours[0].weight, theirs[0].weight.detach())


def test_parameters_children_modules():
    b = Block()
    names = [n for n, _ in b.named_parameters()]
    assert names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "heads.cls.weight",
                     "heads.cls.bias", "heads.reg.weight", "heads.reg.bias"]
    assert len(list(b.parameters())) == 8
    assert [type(m).__name__ for m in b.children()] == ["Conv2d", "BatchNorm2d", "ModuleDict", "ModuleList"]
    assert len(list(b.modules())) == 1 + 4 + 2 + 2
    assert [n for n, _ in b.named_buffers()] == ["scale", "cache", "bn.running_mean", "bn.running_var",
                                                 "bn.num_batches_tracked"]


def test_shared_parameters_are_counted_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, lin)
    assert len(list(seq.parameters())) == 2


def test_load_state_dict_accepts_numpy_and_reports_all_problems():
    a, b = Block(), Block()
    b.load_state_dict({k: v.numpy() for k, v in a.state_dict().items()})
    assert_close(b.conv.weight, a.conv.weight)
    sd = a.state_dict()
    sd.pop("conv.bias")
    sd["extra.weight"] = np.zeros(3)
    sd["bn.weight"] = np.zeros(5)
    with pytest.raises(ValueError) as e:
        b.load_state_dict(sd)
    msg = str(e.value)
    assert "missing keys: conv.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "bn.weight: checkpoint (5,) vs model (3,)" in msg
    sd["bn.weight"] = np.zeros(3)
    missing, unexpected = b.load_state_dict(sd, strict=False)
    assert missing == ["conv.bias"] and unexpected == ["extra.weight"]


def test_load_state_dict_copies_into_the_same_parameter_objects():
    lin = nn.Linear(2, 2)
    w = lin.weight
    lin.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})
    assert lin.weight is w and lin.weight.dtype == np.float32
    assert np.all(w.detach().numpy() == 1)


def test_train_eval_propagate():
    b = Block()
    b.eval()
    assert not any(m.training for m in b.modules())
    b.train()
    assert all(m.training for m in b.modules())


def test_zero_grad_and_to_dtype():
    b = Block()
    out = b(tn.randn(2, 2, 4, 4))
    (out[0].sum() + out[1].sum()).backward()
    assert b.conv.weight.grad is not None
    b.zero_grad(set_to_none=False)
    assert np.all(b.conv.weight.grad.numpy() == 0)
    b.zero_grad()
    assert b.conv.weight.grad is None
    w = b.conv.weight
    b.double()
    assert b.conv.weight is w and w.dtype == np.float64
    assert b.bn.num_batches_tracked.dtype == np.int64, "casting touches float tensors only"


def test_optional_parameter_stays_none():
    lin = nn.Linear(2, 3, bias=False)
    assert lin.bias is None and list(lin.state_dict()) == ["weight"]


def test_sequential_indexing_slicing_append():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and isinstance(seq[-1], nn.Linear)
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    assert tuple(head(tn.randn(4, 2)).shape) == (4, 3)
    seq.append(nn.Sigmoid())
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.Tanh()))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    with pytest.raises(IndexError):
        seq[7]
    with pytest.raises(TypeError, match="must be a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_module_list_and_dict():
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    ml.insert(0, nn.Linear(1, 2))
    del ml[1]
    assert len(ml) == 3 and ml[0].out_features == 2
    assert list(ml.state_dict())[:2] == ["0.weight", "0.bias"]
    md = nn.ModuleDict()
    md["a"] = nn.Linear(1, 1)
    md.update({"b": nn.ReLU()})
    assert "a" in md and list(md.keys()) == ["a", "b"]
    with pytest.raises(KeyError, match="no module named 'c'"):
        md["c"]
    with pytest.raises(ValueError):
        md["x.y"] = nn.ReLU()


def test_forward_hook_runs_and_removes():
    lin = nn.Linear(2, 2)
    seen = []
    h = lin.register_forward_hook(lambda m, args, out: seen.append(tuple(out.shape)))
    lin(tn.randn(3, 2))
    h.remove()
    lin(tn.randn(3, 2))
    assert seen == [(3, 2)]


def test_repr_is_readable():
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.2)))
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in text
    assert "(1): Dropout(p=0.2, inplace=False)" in text


def test_setattr_before_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.x = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_deepcopy_gives_an_independent_module():
    import copy
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    m2 = copy.deepcopy(m)
    assert m2[0].weight is not m[0].weight and isinstance(m2[0].weight, nn.Parameter)
    m2[0].weight.data[...] = 0
    assert not np.all(m[0].weight.detach().numpy() == 0)
    assert tuple(m2(tn.randn(4, 2)).shape) == (4, 3)


def test_nn_functional_is_tinynet_functional():
    import tinynet.nn.functional as NF
    import tinynet.functional as F
    assert NF.conv2d is F.conv2d and NF.batch_norm is F.batch_norm


def test_reassigning_a_child_or_parameter_keeps_its_position():
    # PyTorch keeps insertion order on replacement; state_dict keys and Sequential order rely on it.
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    setattr(seq, "1", nn.Tanh())
    assert [type(m).__name__ for m in seq] == ["Linear", "Tanh", "Linear"]
    lin = nn.Linear(2, 3)
    lin.weight = nn.Parameter(lin.weight.data.copy())
    assert list(lin.state_dict()) == ["weight", "bias"]
