"""Tensor hooks and backward callbacks: ``register_hook``, ``register_post_accumulate_grad_hook``,
``queue_callback``. The expected gradients are derived by hand in each test."""
import numpy as np
import pytest

import tinynet as tn
from tinynet.autograd import queue_callback


def leaf(values):
    return tn.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def test_leaf_hook_sees_the_gradient_and_its_return_replaces_it():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    (x * x).sum().backward()                       # d/dx sum(x^2) = 2x
    np.testing.assert_allclose(seen[0], [2.0, 4.0])
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 40.0])


def test_non_leaf_hook_changes_what_flows_upstream():
    x = leaf([1.0, -2.0])
    y = x * 3.0
    y.register_hook(lambda g: g * 2)
    (y * y).sum().backward()                       # dL/dy = 2y, doubled, times dy/dx = 3
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * 3 * np.array([1.0, -2.0])) * 3)


def test_hook_returning_none_keeps_the_gradient_and_hooks_run_in_registration_order():
    x = leaf([1.0])
    calls = []
    x.register_hook(lambda g: calls.append("first"))
    x.register_hook(lambda g: calls.append("second") or g + 1)
    x.register_hook(lambda g: calls.append(("third", g.item())))
    (x * 5.0).sum().backward()
    assert calls == ["first", "second", ("third", 6.0)]
    assert x.grad.item() == 6.0


def test_a_leaf_used_twice_gets_one_hook_call_with_the_summed_gradient():
    x = leaf([1.0, 2.0])
    grads, posts = [], []
    x.register_hook(lambda g: grads.append(g.numpy().copy()))
    x.register_post_accumulate_grad_hook(lambda t: posts.append(t.grad.numpy().copy()))
    (x * 2.0 + x * 3.0 + x.exp()).sum().backward()
    expected = 5.0 + np.exp([1.0, 2.0])
    assert len(grads) == 1 and len(posts) == 1
    np.testing.assert_allclose(grads[0], expected)
    np.testing.assert_allclose(posts[0], expected)


def test_post_accumulate_hook_sees_the_accumulated_grad_across_backwards():
    x = leaf([1.0])
    posts = []
    x.register_post_accumulate_grad_hook(lambda t: posts.append(t.grad.item()))
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    assert posts == [2.0, 5.0]


def test_removed_hooks_no_longer_run():
    x = leaf([1.0])
    calls = []
    handle = x.register_hook(lambda g: calls.append("grad"))
    post = x.register_post_accumulate_grad_hook(lambda t: calls.append("post"))
    handle.remove()
    post.remove()
    (x * 2.0).sum().backward()
    assert calls == [] and x.grad.item() == 2.0
    y = x * 1.0
    with y.register_hook(lambda g: g * 0):          # a handle is also a context manager
        pass
    (y * 4.0).sum().backward()
    assert x.grad.item() == 6.0


def test_hook_on_the_root_receives_the_seed():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    y.backward(tn.tensor(np.array([3.0, 4.0])))
    np.testing.assert_allclose(seen[0], [3.0, 4.0])
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 8.0])


def test_hooks_and_autograd_grad_leave_post_hooks_alone():
    x = leaf([2.0])
    posts = []
    x.register_hook(lambda g: g * 3)
    x.register_post_accumulate_grad_hook(lambda t: posts.append(1))
    (g,) = tn.autograd.grad((x * x).sum(), x)
    assert g.item() == 12.0                         # 2x = 4, tripled by the hook
    assert posts == [] and x.grad is None           # grad() accumulates nothing


def test_hook_under_create_graph_keeps_the_gradient_differentiable():
    x = leaf([1.5])
    y = x * x
    y.register_hook(lambda g: g * y)               # the replaced gradient depends on x
    (g,) = tn.autograd.grad(y.sum(), x, create_graph=True)
    assert g.item() == pytest.approx(2 * 1.5 * 1.5 ** 2)   # (dL/dy · y) · dy/dx = y · 2x = 2x^3
    # The second backward goes through y again, so the hook multiplies by y there too:
    # g = 2x·y; dg/dx = 2y (direct) + (dg/dy = 2x, hooked: 2x·y) · dy/dx = 2x² + 4x⁴ (as in PyTorch).
    (gg,) = tn.autograd.grad(g.sum(), x)
    assert gg.item() == pytest.approx(2 * 1.5 ** 2 + 4 * 1.5 ** 4)


def test_hooks_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    results = []
    for lib in (tn, torch):
        x = lib.tensor(a, requires_grad=True)
        W = lib.tensor(w, requires_grad=True)
        h = (x @ W).tanh()
        h.register_hook(lambda g: g.clamp(-0.1, 0.1) if lib is torch else tn.functional.clamp(g, -0.1, 0.1))
        W.register_hook(lambda g: g * 2)
        ((h * h).sum() + (x * x).sum()).backward()
        results.append((x.grad.detach().numpy(), W.grad.detach().numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_queue_callback_runs_after_every_leaf_is_done():
    x, y = leaf([1.0]), leaf([2.0])
    events = []

    def post(t):
        events.append(("post", t.grad.item()))
        if len(events) == 1:
            queue_callback(lambda: events.append(("end", x.grad.item(), y.grad.item())))
    x.register_post_accumulate_grad_hook(post)
    y.register_post_accumulate_grad_hook(post)
    (x * 3.0 * y).sum().backward()
    assert sorted(events[:2]) == [("post", 3.0), ("post", 6.0)]   # d/dx = 3y, d/dy = 3x
    assert events[2] == ("end", 6.0, 3.0)
    # A callback runs once: a later backward that queues nothing runs nothing.
    (x * 1.0).sum().backward()
    assert events[3:] == [("post", 7.0)]


def test_hook_errors():
    with pytest.raises(RuntimeError, match="register_hook: .*doesn't require gradient"):
        tn.tensor([1.0]).register_hook(lambda g: g)
    y = leaf([1.0]) * 2.0
    with pytest.raises(RuntimeError, match="register_post_accumulate_grad_hook: .*non-leaf"):
        y.register_post_accumulate_grad_hook(lambda t: None)
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: 3.0)
    with pytest.raises(TypeError, match="register_hook: a hook must return None or a Tensor.*float"):
        (x * 2.0).sum().backward()
    z = leaf([1.0, 2.0])
    z.register_hook(lambda g: g.sum())
    with pytest.raises(ValueError, match=r"register_hook: .*shape \(2,\), got \(\)"):
        (z * 2.0).sum().backward()
    with pytest.raises(RuntimeError, match="queue_callback: can only be called while backward"):
        queue_callback(lambda: None)
