"""Each optimizer against torch.optim over several steps (float64, the same gradients),
parameter groups, state_dict round trips, schedulers against torch's, and argument errors."""
import math

import numpy as np
import pytest

import tinynet as tn
import tinynet.optim as optim
from tinynet.optim import lr_scheduler
from tinynet.testing import assert_close

try:                      # only the PyTorch comparisons need it
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install tinynet[ref])")

SHAPES = [(3, 4), (5,), (2, 1, 3)]


def _params(seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in SHAPES]
    ours = [tn.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
    return ours, theirs


def _run(make_ours, make_theirs, steps=6, groups=None, skip_grad_of=None):
    ours_p, theirs_p = _params()
    if groups is None:
        opt, topt = make_ours(ours_p), make_theirs(theirs_p)
    else:
        opt = make_ours([dict(g, params=[ours_p[i] for i in idx]) for idx, g in groups])
        topt = make_theirs([dict(g, params=[theirs_p[i] for i in idx]) for idx, g in groups])
    rng = np.random.default_rng(42)
    for step in range(steps):
        for i, (p, q) in enumerate(zip(ours_p, theirs_p)):
            if skip_grad_of is not None and i == skip_grad_of and step % 2:
                p.grad, q.grad = None, None
                continue
            g = rng.standard_normal(p.shape)
            p.grad, q.grad = tn.tensor(g), torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for i, (p, q) in enumerate(zip(ours_p, theirs_p)):
            assert_close(p.detach(), q.detach(), rtol=1e-12, atol=1e-12,
                         msg=f"parameter {i} after step {step}")
    return opt, topt, ours_p, theirs_p


SGD_CASES = [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, dampening=0.3),
             dict(lr=0.1, momentum=0.8, nesterov=True), dict(lr=0.1, weight_decay=0.01),
             dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05),
             dict(lr=0.1, momentum=0.5, maximize=True)]


@needs_torch
@pytest.mark.parametrize("foreach", [True, False], ids=["flat", "loop"])
@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_matches_torch(kw, foreach):
    _run(lambda p: optim.SGD(p, foreach=foreach, **kw), lambda p: torch.optim.SGD(p, **kw))


ADAM_CASES = [dict(), dict(lr=0.01, betas=(0.8, 0.99)), dict(lr=0.01, weight_decay=0.1),
              dict(lr=0.01, amsgrad=True), dict(lr=0.01, amsgrad=True, weight_decay=0.05, eps=1e-6)]


@needs_torch
@pytest.mark.parametrize("foreach", [True, False], ids=["flat", "loop"])
@pytest.mark.parametrize("kw", ADAM_CASES, ids=str)
def test_adam_matches_torch(kw, foreach):
    _run(lambda p: optim.Adam(p, foreach=foreach, **kw), lambda p: torch.optim.Adam(p, **kw))


@needs_torch
@pytest.mark.parametrize("kw", [dict(), dict(lr=0.01, weight_decay=0.1), dict(lr=0.01, amsgrad=True)],
                         ids=str)
def test_adamw_matches_torch(kw):
    _run(lambda p: optim.AdamW(p, **kw), lambda p: torch.optim.AdamW(p, **kw))


@needs_torch
@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
                                     ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                     ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
                                     ("AdamW", dict(lr=0.01))])
def test_flat_update_chunks_spanning_parameters(name, kw, threads, monkeypatch):
    """Chunks smaller than, and straddling, the parameters give the same update, also when
    they run side by side on 3 threads (each must write only its own slice)."""
    from tinynet import backend
    from tinynet.optim import _flat
    monkeypatch.setattr(_flat, "CHUNK", 7)
    monkeypatch.setattr(backend, "parallel_grain", 1)
    before = backend._num_threads
    backend.set_num_threads(threads)
    try:
        _run(lambda p: getattr(optim, name)(p, **kw), lambda p: getattr(torch.optim, name)(p, **kw))
    finally:
        backend.set_num_threads(before or backend._usable_cores())
        backend._num_threads = before


@needs_torch
def test_parameters_without_grad_are_skipped_like_torch():
    _run(lambda p: optim.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01), skip_grad_of=1)
    _run(lambda p: optim.SGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
         skip_grad_of=0)


@needs_torch
def test_param_groups_with_own_hyperparameters():
    groups = [([0], dict(lr=0.1)), ([1, 2], dict(lr=0.01, momentum=0.9))]
    _run(lambda g: optim.SGD(g, lr=0.5), lambda g: torch.optim.SGD(g, lr=0.5), groups=groups)
    groups = [([0, 2], dict(weight_decay=0.1)), ([1], dict(lr=0.05, betas=(0.5, 0.9)))]
    opt, *_ = _run(lambda g: optim.Adam(g, lr=0.01), lambda g: torch.optim.Adam(g, lr=0.01), groups=groups)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[1]["lr"] == 0.05


@needs_torch
@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9)),
                                     ("Adam", dict(lr=0.01, amsgrad=True)),
                                     ("AdamW", dict(lr=0.01))])
def test_state_dict_round_trip_continues_identically(name, kw, tmp_path):
    """Stop after 3 steps, save optimizer state through a checkpoint, resume into a fresh
    optimizer: the next steps equal those of an uninterrupted run (bit for bit)."""
    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(6)]

    def step(opt, params, g):
        for p, gi in zip(params, g):
            p.grad = tn.tensor(gi)
        opt.step()

    full, _ = _params()
    opt = getattr(optim, name)(full, **kw)
    for g in grads:
        step(opt, full, g)

    part, _ = _params()
    opt = getattr(optim, name)(part, **kw)
    for g in grads[:3]:
        step(opt, part, g)
    tn.utils.save({"opt": opt.state_dict(), "params": part}, tmp_path / "ckpt.npz")
    del opt
    loaded = tn.utils.load(tmp_path / "ckpt.npz")
    resumed = loaded["params"]
    assert all(p.requires_grad for p in resumed)
    opt2 = getattr(optim, name)(resumed, lr=123.0)
    opt2.load_state_dict(loaded["opt"])
    assert opt2.param_groups[0]["lr"] == kw["lr"], "hyperparameters come back from the state dict"
    for g in grads[3:]:
        step(opt2, resumed, g)
    for a, b in zip(full, resumed):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())


@needs_torch
def test_state_dict_layout_matches_torch():
    ours_p, theirs_p = _params()
    opt, topt = optim.Adam(ours_p, lr=0.01), torch.optim.Adam(theirs_p, lr=0.01)
    for p, q in zip(ours_p, theirs_p):
        p.grad, q.grad = tn.ones(*p.shape, dtype=tn.float64), torch.ones_like(q)
    opt.step()
    topt.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"])
    assert sorted(sd["state"][0]) == sorted(tsd["state"][0])
    assert sd["param_groups"][0]["params"] == tsd["param_groups"][0]["params"]
    # a torch optimizer state loads into tinynet
    opt.load_state_dict(tsd)
    assert_close(tn.Tensor(opt.state[id(ours_p[0])]["exp_avg"]), tsd["state"][0]["exp_avg"])


@needs_torch
def test_load_state_dict_mismatch_is_an_error():
    ours_p, _ = _params()
    opt = optim.SGD(ours_p, lr=0.1, momentum=0.9)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="parameter group 0 has 3 parameters in the state dict but 2"):
        optim.SGD(ours_p[:2], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"foo": 1})


def test_flat_buffers_follow_module_moves_and_loaded_state():
    """The flat path re-points p.data at its buffer; a later Module.to(dtype) or a loaded
    state is noticed and the buffers rebuilt, and the model always sees the updated weights."""
    model = tn.nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.1)
    x = tn.randn(4, 3)
    model(x).sum().backward()
    opt.step()
    before = model.weight.detach().numpy().copy()
    model.double()
    model.zero_grad()
    model(x.double()).sum().backward()
    opt.step()
    assert model.weight.dtype == np.float64
    assert not np.array_equal(before, model.weight.detach().numpy()), "step must reach the model"
    sd = opt.state_dict()
    assert sd["state"][0]["step"] == 2 and sd["state"][0]["exp_avg"].shape == (2, 3)
    opt.load_state_dict(sd)
    model(x.double()).sum().backward()
    opt.step()
    assert opt.state_dict()["state"][1]["step"] == 3


@needs_torch
def test_zero_grad():
    ours_p, _ = _params()
    opt = optim.SGD(ours_p, lr=0.1)
    for p in ours_p:
        p.grad = tn.ones(*p.shape, dtype=tn.float64)
    opt.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in ours_p)
    opt.zero_grad()
    assert all(p.grad is None for p in ours_p)


def test_step_builds_no_graph_and_keeps_parameter_objects():
    lin = tn.nn.Linear(3, 2)
    w = lin.weight
    opt = optim.Adam(lin.parameters(), lr=0.1)
    lin(tn.randn(4, 3)).sum().backward()
    opt.step()
    assert lin.weight is w and w.is_leaf and w.dtype == np.float32


@needs_torch
@pytest.mark.parametrize("make,words", [
    (lambda p: optim.SGD(p, lr=-0.1), "invalid learning rate"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-1), "invalid momentum"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "invalid weight_decay"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, lr=-1.0), "invalid learning rate"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "beta parameter at index 0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "beta parameter at index 1"),
    (lambda p: optim.Adam(p, eps=-1e-8), "invalid epsilon"),
    (lambda p: optim.AdamW(p, weight_decay=-0.1), "invalid weight_decay"),
    (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda p: optim.Adam(iter([]), lr=0.1), "empty parameter list"),
    (lambda p: optim.SGD([p[0], p[0]], lr=0.1), "more than one parameter group"),
    (lambda p: optim.SGD([{"params": [p[0]]}, {"params": [p[0]]}], lr=0.1), "more than one"),
    (lambda p: optim.SGD(p[0], lr=0.1), "single Tensor"),
    (lambda p: optim.SGD([np.zeros(3)], lr=0.1), "can only optimize Tensors"),
])
def test_invalid_hyperparameters_are_errors(make, words):
    ours_p, _ = _params()
    with pytest.raises((ValueError, TypeError)) as e:
        make(ours_p)
    assert words in str(e.value)


# ------------------------------------------------------------------ schedulers
def _sched_pair(make_ours, make_theirs, epochs=25, lr=0.1):
    ours_p, theirs_p = _params()
    opt = optim.SGD([{"params": ours_p[:1]}, {"params": ours_p[1:], "lr": 0.5}], lr=lr)
    topt = torch.optim.SGD([{"params": theirs_p[:1]}, {"params": theirs_p[1:], "lr": 0.5}], lr=lr)
    s, ts = make_ours(opt), make_theirs(topt)
    for epoch in range(epochs):
        for a, b in zip(s.get_last_lr(), ts.get_last_lr()):
            assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), f"epoch {epoch}: {a} vs {b}"
        assert [g["lr"] for g in opt.param_groups] == s.get_last_lr()
        opt.step()
        topt.step()
        s.step()
        ts.step()
    return s, opt


@needs_torch
def test_step_lr_matches_torch():
    _sched_pair(lambda o: lr_scheduler.StepLR(o, step_size=4, gamma=0.5),
                lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=4, gamma=0.5))


@needs_torch
def test_cosine_annealing_matches_torch():
    _sched_pair(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
                lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
                epochs=10)


@needs_torch
def test_lambda_lr_matches_torch():
    f = lambda e: 0.95 ** e
    _sched_pair(lambda o: lr_scheduler.LambdaLR(o, f), lambda o: torch.optim.lr_scheduler.LambdaLR(o, f))


@needs_torch
def test_scheduler_state_dict_round_trip():
    s, opt = _sched_pair(lambda o: lr_scheduler.StepLR(o, 3, 0.5),
                         lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5), epochs=5)
    state = s.state_dict()
    ours_p, _ = _params()
    opt2 = optim.SGD(ours_p, lr=0.1)
    opt2.param_groups[0]["initial_lr"] = 0.1
    s2 = lr_scheduler.StepLR(opt2, 3, 0.5)
    s2.load_state_dict(state)
    assert s2.last_epoch == s.last_epoch
    s.step()
    s2.step()
    assert s2.get_last_lr()[0] == s.get_last_lr()[0]


@needs_torch
def test_scheduler_argument_errors():
    ours_p, _ = _params()
    opt = optim.SGD(ours_p, lr=0.1)
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(opt, 0)
    with pytest.raises(ValueError, match="T_max"):
        lr_scheduler.CosineAnnealingLR(opt, 0)
    with pytest.raises(TypeError, match="not an Optimizer"):
        lr_scheduler.StepLR(object(), 2)


@needs_torch
@pytest.mark.parametrize("opt_name,kw", [("SGD", dict(lr=0.05, momentum=0.9, weight_decay=1e-3)),
                                         ("Adam", dict(lr=0.01))])
def test_small_cnn_training_matches_torch(opt_name, kw):
    """Layers + loss + optimizer end to end: same weights after several steps (float64)."""
    def build(lib):
        # (no conv bias before BatchNorm: its true gradient is 0, and Adam would amplify
        # the rounding noise in it to O(lr) differences between the libraries)
        return lib.Sequential(lib.Conv2d(1, 4, 3, padding=1, bias=False), lib.BatchNorm2d(4), lib.ReLU(),
                              lib.MaxPool2d(2), lib.Flatten(), lib.Linear(4 * 4 * 4, 3))
    tn.manual_seed(0)  # fixed weights: the test must not depend on which tests ran before
    ours, theirs = build(tn.nn).double(), build(torch.nn).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    opt = getattr(optim, opt_name)(ours.parameters(), **kw)
    topt = getattr(torch.optim, opt_name)(theirs.parameters(), **kw)
    loss_fn, tloss_fn = tn.nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    for step in range(5):
        x = rng.standard_normal((6, 1, 8, 8))
        y = rng.integers(0, 3, 6)
        opt.zero_grad()
        topt.zero_grad()
        loss = loss_fn(ours(tn.tensor(x)), tn.tensor(y))
        tloss = tloss_fn(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        assert math.isclose(loss.item(), tloss.item(), rel_tol=1e-10), f"loss at step {step}"
        loss.backward()
        tloss.backward()
        opt.step()
        topt.step()
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert_close(a, b, rtol=1e-9, atol=1e-11, msg=k)
