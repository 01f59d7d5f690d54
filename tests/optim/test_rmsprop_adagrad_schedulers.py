"""RMSprop and Adagrad against torch.optim over several steps (float64, the same gradients),
their state dicts (layout, torch state loading, resume); LinearLR, OneCycleLR and
ReduceLROnPlateau against torch's schedulers step by step, with state-dict round trips."""
import math

import numpy as np
import pytest

import tinynet as tn
import tinynet.optim as optim
from tinynet.optim import lr_scheduler
from tinynet.testing import assert_close

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), (2, 1, 3)]


def _params(seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in SHAPES]
    return ([tn.tensor(a, requires_grad=True) for a in arrays],
            [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays])


def _grads(steps, seed=42):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


def _step(opt, params, grads, lib):
    for p, g in zip(params, grads):
        p.grad = tn.tensor(g) if lib is tn else torch.from_numpy(g.copy())
    opt.step()


def _compare(ours_p, theirs_p, msg):
    for i, (p, q) in enumerate(zip(ours_p, theirs_p)):
        assert_close(p.detach(), q.detach(), rtol=1e-12, atol=1e-12, msg=f"parameter {i} {msg}")


RMSPROP_CASES = [dict(), dict(lr=0.05, alpha=0.9), dict(lr=0.01, momentum=0.9),
                 dict(lr=0.01, centered=True), dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1),
                 dict(lr=0.02, eps=1e-3, maximize=True)]
ADAGRAD_CASES = [dict(), dict(lr=0.1, lr_decay=0.05), dict(lr=0.1, weight_decay=0.1),
                 dict(lr=0.1, initial_accumulator_value=0.5), dict(lr=0.05, eps=1e-3, maximize=True)]


@pytest.mark.parametrize("name,kw", [("RMSprop", kw) for kw in RMSPROP_CASES]
                         + [("Adagrad", kw) for kw in ADAGRAD_CASES], ids=str)
def test_matches_torch_over_several_steps(name, kw):
    ours_p, theirs_p = _params()
    opt, topt = getattr(optim, name)(ours_p, **kw), getattr(torch.optim, name)(theirs_p, **kw)
    for step, g in enumerate(_grads(8)):
        _step(opt, ours_p, g, tn)
        _step(topt, theirs_p, g, torch)
        _compare(ours_p, theirs_p, f"after step {step}")


@pytest.mark.parametrize("name,kw", [("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
                                     ("Adagrad", dict(lr=0.1, lr_decay=0.01))])
def test_param_groups_and_skipped_gradients_like_torch(name, kw):
    ours_p, theirs_p = _params()
    groups = lambda p: [{"params": [p[0], p[2]], "lr": 0.003}, {"params": [p[1]]}]  # noqa: E731
    opt, topt = getattr(optim, name)(groups(ours_p), **kw), getattr(torch.optim, name)(groups(theirs_p), **kw)
    for step, g in enumerate(_grads(6)):
        _step(opt, ours_p, g, tn)
        _step(topt, theirs_p, g, torch)
        if step % 2:     # parameter 1 gets no gradient every other step
            ours_p[1].grad, theirs_p[1].grad = None, None
        _compare(ours_p, theirs_p, f"after step {step}")


@pytest.mark.parametrize("name,kw", [("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
                                     ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.2))])
def test_state_dict_layout_and_torch_state_loads(name, kw):
    ours_p, theirs_p = _params()
    opt, topt = getattr(optim, name)(ours_p, **kw), getattr(torch.optim, name)(theirs_p, **kw)
    grads = _grads(6)
    for g in grads[:3]:
        _step(opt, ours_p, g, tn)
        _step(topt, theirs_p, g, torch)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"])
    assert sorted(sd["state"][0]) == sorted(tsd["state"][0])
    assert set(sd["param_groups"][0]) - {"foreach"} <= set(tsd["param_groups"][0])
    # torch's state continues in tinynet exactly as torch continues it
    fresh, _ = _params()
    for p, q in zip(fresh, theirs_p):
        p.data[...] = tn.tensor(q.detach().numpy(), device=p.device).data
    opt2 = getattr(optim, name)(fresh, lr=99.0)
    opt2.load_state_dict(tsd)
    for g in grads[3:]:
        _step(opt2, fresh, g, tn)
        _step(topt, theirs_p, g, torch)
    _compare(fresh, theirs_p, "after resuming from torch's state")


def test_adagrad_state_exists_before_the_first_step_like_torch():
    ours_p, theirs_p = _params()
    sd = optim.Adagrad(ours_p, initial_accumulator_value=0.3).state_dict()
    tsd = torch.optim.Adagrad(theirs_p, initial_accumulator_value=0.3).state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"]) == [0, 1, 2]
    assert_close(sd["state"][1]["sum"], tsd["state"][1]["sum"])


@pytest.mark.parametrize("name,kw", [("RMSprop", dict(lr=0.01, momentum=0.9)),
                                     ("Adagrad", dict(lr=0.1))])
def test_resume_through_a_checkpoint_is_bit_identical(name, kw, tmp_path):
    grads = _grads(6)
    full, _ = _params()
    opt = getattr(optim, name)(full, **kw)
    for g in grads:
        _step(opt, full, g, tn)
    part, _ = _params()
    opt = getattr(optim, name)(part, **kw)
    for g in grads[:3]:
        _step(opt, part, g, tn)
    tn.utils.save({"opt": opt.state_dict(), "params": part}, tmp_path / "ckpt.npz")
    loaded = tn.utils.load(tmp_path / "ckpt.npz")
    opt2 = getattr(optim, name)(loaded["params"], lr=5.0)
    opt2.load_state_dict(loaded["opt"])
    for g in grads[3:]:
        _step(opt2, loaded["params"], g, tn)
    for a, b in zip(full, loaded["params"]):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.RMSprop(p, lr=-1.0), "RMSprop: invalid learning rate"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "RMSprop: invalid alpha value"),
    (lambda p: optim.RMSprop(p, momentum=-0.5), "RMSprop: invalid momentum value"),
    (lambda p: optim.Adagrad(p, lr_decay=-1.0), "Adagrad: invalid lr_decay value"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1.0), "Adagrad: invalid initial_accumulator_value"),
    (lambda p: optim.Adagrad(p, eps="small"), "Adagrad: invalid epsilon value"),
])
def test_invalid_hyperparameters(make, match):
    ours_p, _ = _params()
    with pytest.raises(ValueError, match=match):
        make(ours_p)


# ----------------------------------------------------------------- schedulers
def _sched_run(make_ours, make_theirs, opt_name="SGD", opt_kw=None, steps=12, metrics=None,
               momentum_key=None):
    opt_kw = opt_kw or dict(lr=0.1, momentum=0.9)
    ours_p, theirs_p = _params()
    opt = getattr(optim, opt_name)(ours_p, **opt_kw)
    topt = getattr(torch.optim, opt_name)(theirs_p, **opt_kw)
    s, ts = make_ours(opt), make_theirs(topt)
    for i in range(steps):
        for a, b in zip(s.get_last_lr(), ts.get_last_lr()):
            assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), f"step {i}: lr {a} vs {b}"
        assert [g["lr"] for g in opt.param_groups] == s.get_last_lr()
        if momentum_key:
            a, b = opt.param_groups[0][momentum_key], topt.param_groups[0][momentum_key]
            a, b = (a[0], b[0]) if momentum_key == "betas" else (a, b)
            assert math.isclose(a, b, rel_tol=1e-12), f"step {i}: {momentum_key} {a} vs {b}"
        opt.step()
        topt.step()
        if metrics is None:
            s.step()
            ts.step()
        else:
            s.step(metrics[i])
            ts.step(metrics[i])
    return s, opt


@pytest.mark.parametrize("kw", [dict(), dict(start_factor=0.1, total_iters=4),
                                dict(start_factor=1.0, end_factor=0.2, total_iters=6)], ids=str)
def test_linear_lr_matches_torch(kw):
    _sched_run(lambda o: lr_scheduler.LinearLR(o, **kw), lambda o: torch.optim.lr_scheduler.LinearLR(o, **kw))


@pytest.mark.parametrize("opt_name,opt_kw,key", [("SGD", dict(lr=0.1, momentum=0.9), "momentum"),
                                                 ("Adam", dict(lr=0.01), "betas")])
@pytest.mark.parametrize("kw", [dict(max_lr=0.5, total_steps=12),
                                dict(max_lr=0.5, epochs=3, steps_per_epoch=4, anneal_strategy="linear"),
                                dict(max_lr=0.2, total_steps=12, three_phase=True, pct_start=0.25),
                                dict(max_lr=0.2, total_steps=12, cycle_momentum=False, div_factor=5.0,
                                     final_div_factor=100.0)], ids=str)
def test_one_cycle_lr_and_momentum_match_torch(kw, opt_name, opt_kw, key):
    s, _ = _sched_run(lambda o: lr_scheduler.OneCycleLR(o, **kw),
                      lambda o: torch.optim.lr_scheduler.OneCycleLR(o, **kw),
                      opt_name=opt_name, opt_kw=opt_kw, steps=12, momentum_key=key)
    with pytest.raises(ValueError, match="OneCycleLR: tried to step 13 times"):
        s.step()


METRICS = [1.0, 0.9, 0.9, 0.95, 0.91, 0.9, 0.9, 0.85, 0.86, 0.87, 0.88, 0.9, 0.91, 0.92, 0.93, 0.8]


@pytest.mark.parametrize("kw", [dict(patience=2), dict(patience=1, cooldown=2, factor=0.5),
                                dict(mode="max", patience=1, threshold=0.01, threshold_mode="abs"),
                                dict(patience=0, min_lr=0.02, factor=0.3),
                                dict(patience=1, threshold=0.1)], ids=str)
def test_reduce_lr_on_plateau_matches_torch(kw):
    _sched_run(lambda o: lr_scheduler.ReduceLROnPlateau(o, **kw),
               lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, **kw),
               steps=len(METRICS), metrics=METRICS)


@pytest.mark.parametrize("make,args", [
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0.2, total_iters=8), None),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=20), None),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=1, cooldown=1), [3.0, 3.0, 3.0, 2.0, 2.0, 2.0]),
], ids=["LinearLR", "OneCycleLR", "ReduceLROnPlateau"])
def test_scheduler_state_dict_resumes_identically(make, args, tmp_path):
    """Saved after a few steps (through a checkpoint file) and loaded into a new scheduler
    on a fresh optimizer, the schedule continues exactly as the uninterrupted one."""
    def fresh():
        p, _ = _params()
        return optim.SGD(p, lr=0.1, momentum=0.9)

    def advance(s, i):
        s.step() if args is None else s.step(args[i])

    full_opt = fresh()
    full = make(full_opt)
    lrs = []
    for i in range(6):
        advance(full, i)
        lrs.append(full.get_last_lr()[0])
    part_opt = fresh()
    part = make(part_opt)
    for i in range(3):
        advance(part, i)
    tn.utils.save({"sched": part.state_dict(), "opt": part_opt.state_dict()}, tmp_path / "s.npz")
    loaded = tn.utils.load(tmp_path / "s.npz")
    opt2 = fresh()
    opt2.load_state_dict(loaded["opt"])
    resumed = make(opt2)
    resumed.load_state_dict(loaded["sched"])
    for i in range(3, 6):
        advance(resumed, i)
        assert resumed.get_last_lr()[0] == lrs[i], f"step {i}"
        assert opt2.param_groups[0]["lr"] == lrs[i]


@pytest.mark.parametrize("make,error,match", [
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0.0), ValueError, "LinearLR: start_factor"),
    (lambda o: lr_scheduler.LinearLR(o, end_factor=1.5), ValueError, "LinearLR: end_factor"),
    (lambda o: lr_scheduler.LinearLR(o, total_iters=0), ValueError, "LinearLR: total_iters"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1), ValueError, "OneCycleLR: you must define"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=2), ValueError,
     "OneCycleLR: expected a number between 0 and 1"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="exp"),
     ValueError, "OneCycleLR: anneal_strategy"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[0.1, 0.2], total_steps=10), ValueError,
     "OneCycleLR: expected 1 values for max_lr"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), ValueError, "ReduceLROnPlateau: factor"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="up"), ValueError, "ReduceLROnPlateau: mode"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="x"), ValueError,
     "ReduceLROnPlateau: threshold mode"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o).step("bad"), TypeError, "ReduceLROnPlateau: step"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(object()), TypeError, "not an Optimizer"),
])
def test_scheduler_argument_errors(make, error, match):
    ours_p, _ = _params()
    with pytest.raises(error, match=match):
        make(optim.SGD(ours_p, lr=0.1, momentum=0.9))


def test_one_cycle_needs_a_momentum_to_cycle():
    ours_p, _ = _params()
    with pytest.raises(ValueError, match="OneCycleLR: optimizer must support momentum"):
        lr_scheduler.OneCycleLR(optim.Adagrad(ours_p), max_lr=0.1, total_steps=5)
    lr_scheduler.OneCycleLR(optim.Adagrad(ours_p), max_lr=0.1, total_steps=5, cycle_momentum=False)
