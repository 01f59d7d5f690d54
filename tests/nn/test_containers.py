"""Sequential's rewrites: a ReLU followed by a MaxPool2d runs as the pool, then the ReLU,
in one op (tinynet/nn/containers.py, ``_pool_first``; tinynet.functional.pool.max_pool2d_relu),
and a Conv2d, a ReLU and a 2x2 MaxPool2d in a row as one op (``_conv_relu_pool``;
tinynet.functional.conv_pool.conv2d_relu_max_pool2d). The results must be those of the
order as written, the rewrite must actually happen where it may, and must not where a
hook, a subclass, ``return_indices``, a dilated window or another pooling window could
tell the difference."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinynet as tn
import tinynet.functional as F
import tinynet.nn as nn
from tinynet.models import SimpleCNN
from tinynet.nn import containers
from tinynet.testing import strategies as tst


def _as_written(seq, x):
    """The children called one after another, no reordering."""
    for m in seq:
        x = m(x)
    return x


def _relu_input_shapes(monkeypatch):
    shapes = []
    relu = F.relu
    monkeypatch.setattr(F, "relu", lambda x: shapes.append(tuple(x.shape)) or relu(x))
    return shapes


@settings(max_examples=60, deadline=None)
@given(case=tst.pooling(), dtype=st.sampled_from([np.float32, np.float64]))
def test_relu_then_max_pool_gives_the_written_orders_values_and_gradients(case, dtype):
    """Same outputs (numerically: only a zero's sign may differ) and bit-identical input
    gradients as ReLU then pool, over every pooling argument, with ties in the windows."""
    values, kw = case
    seq = nn.Sequential(nn.ReLU(), nn.MaxPool2d(**kw))
    x1 = tn.tensor(values.astype(dtype), requires_grad=True)
    x2 = tn.tensor(values.astype(dtype), requires_grad=True)
    out, ref = seq(x1), _as_written(seq, x2)
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    g = np.random.default_rng(0).standard_normal(ref.shape).astype(dtype)
    out.backward(tn.tensor(g))
    ref.backward(tn.tensor(g))
    np.testing.assert_array_equal(x1.grad.numpy(), x2.grad.numpy())


def test_a_nan_gives_nan_where_the_written_order_does():
    """A window holding NaN pools to NaN in both orders (the gradient of a NaN result may
    land elsewhere: _pool_first's docstring)."""
    x = tn.tensor(np.array([[[[-2.0, np.nan, 1.0, 3.0], [0.5, -1.0, -1.0, -2.0]]]]))
    seq = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))
    np.testing.assert_array_equal(seq(x).numpy(), _as_written(seq, x).numpy())
    assert np.isnan(seq(x).numpy()[0, 0, 0, 0])


def test_a_dilated_window_on_the_padding_keeps_the_written_order(monkeypatch):
    """Kernel 2, dilation 2, padding 1 on one pixel: the window's two taps are both padding,
    so the pool gives -inf, which ReLU after it would turn into 0: not reordered."""
    shapes = _relu_input_shapes(monkeypatch)
    x = tn.tensor(np.array([[[[-2.0]]]]))
    out = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, stride=1, padding=1, dilation=2))(x)
    assert out.numpy().tolist() == [[[[-np.inf]]]]
    assert shapes == [(1, 1, 1, 1)]


def test_the_relu_and_the_pool_run_as_one_op(monkeypatch):
    """The rewrite happens (the test above would pass without it): one pool-then-ReLU op
    on the conv's output (tinynet.functional.pool.max_pool2d_relu), no ReLU of its own (a
    stride-1 pool: not the conv-ReLU-pool op)."""
    from tinynet.nn import pool as nn_pool
    shapes, fused = _relu_input_shapes(monkeypatch), []
    op = nn_pool.max_pool2d_relu
    monkeypatch.setattr(nn_pool, "max_pool2d_relu", lambda x, *a: fused.append(tuple(x.shape)) or op(x, *a))
    nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, stride=1))(tn.randn(3, 1, 8, 8))
    assert shapes == [] and fused == [(3, 2, 8, 8)]


def _conv_relu_pool_calls(monkeypatch):
    from tinynet.nn import conv as nn_conv
    calls = []
    op = nn_conv.conv2d_relu_max_pool2d
    monkeypatch.setattr(nn_conv, "conv2d_relu_max_pool2d",
                        lambda x, *a: calls.append(tuple(x.shape)) or op(x, *a))
    return calls


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 1), dilation=st.integers(1, 2),
       groups=st.sampled_from([1, 2]), size=st.integers(5, 9), bias=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 16))
def test_conv_relu_and_pool_give_the_written_orders_values_and_gradients(k, stride, padding, dilation, groups,
                                                                        size, bias, dtype, seed):
    """A Conv2d (any stride, padding, dilation, groups; odd and even output sizes), a ReLU
    and a 2x2 MaxPool2d run as one op (counted), with the written order's outputs and the
    gradients of the input and every parameter (to float32 rounding: the op's native job
    may block the products and sum the bias gradient differently)."""
    with pytest.MonkeyPatch.context() as patch:
        calls = _conv_relu_pool_calls(patch)
        tn.manual_seed(seed)
        seq = nn.Sequential(nn.Conv2d(2, 4, k, stride, padding, dilation, groups, bias), nn.ReLU(),
                            nn.MaxPool2d(2)).to(dtype)
        x0 = np.random.default_rng(seed).standard_normal((3, 2, size, size)).astype(dtype)
        results = []
        for run in (seq, lambda x: _as_written(seq, x)):
            seq.zero_grad()
            x = tn.tensor(x0, requires_grad=True)
            out = run(x)
            (out * tn.tensor(np.arange(out.numel()).reshape(out.shape).astype(dtype))).sum().backward()
            results.append([out.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in seq.parameters()])
    assert calls == [(3, 2, size, size)]
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for a, r in zip(*results):
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol * max(1.0, np.abs(r).max()))


def test_the_conv_relu_and_pool_keep_the_written_order_where_something_could_tell(monkeypatch):
    """Not one op where a hook on any of the three would see an intermediate tensor, where
    the conv pads by another mode or is a subclass, or where the pool is not a 2x2 window
    of stride 2 without padding, ceil_mode or indices (then, with a ReLU, the pair rule
    alone). The same conv in a plain block is (the control)."""
    calls = _conv_relu_pool_calls(monkeypatch)
    x = tn.randn(2, 1, 6, 6)

    class MyConv(nn.Conv2d):
        pass

    def block(conv=None, pool=None, hook=None):
        mods = [conv or nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), pool or nn.MaxPool2d(2)]
        if hook is not None:
            mods[hook].register_forward_hook(lambda *a: None)
        return nn.Sequential(*mods)

    block()(x)
    assert calls == [(2, 1, 6, 6)]
    for seq in [block(hook=0), block(hook=1), block(hook=2), block(MyConv(1, 2, 3, padding=1)),
                block(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")), block(pool=nn.MaxPool2d(3)),
                block(pool=nn.MaxPool2d(2, stride=1)), block(pool=nn.MaxPool2d(2, padding=1)),
                block(pool=nn.MaxPool2d(2, ceil_mode=True)), block(pool=nn.MaxPool2d(2, dilation=2)),
                block(pool=nn.MaxPool2d(2, return_indices=True))]:
        seq(x)
    assert calls == [(2, 1, 6, 6)]


@pytest.mark.parametrize("where", ["relu", "pool"])
def test_a_forward_hook_keeps_the_written_order(monkeypatch, where):
    """A hook sees the intermediate tensor, so with one on either module nothing moves:
    the ReLU's hook gets the full map, the pool's hook its ReLU'd input."""
    shapes = _relu_input_shapes(monkeypatch)
    relu, pool = nn.ReLU(), nn.MaxPool2d(2)
    seen = []
    (relu if where == "relu" else pool).register_forward_hook(lambda m, args, out: seen.append(args[0]))
    x = tn.randn(2, 3, 6, 6)
    nn.Sequential(relu, pool)(x)
    assert shapes == [(2, 3, 6, 6)]
    if where == "pool":
        assert seen[0].shape == (2, 3, 6, 6) and float(seen[0].min()) >= 0.0


def test_return_indices_subclasses_and_other_pools_keep_the_written_order(monkeypatch):
    """With ``return_indices`` the pool returns a pair (and indices into the ReLU'd map);
    a ReLU subclass may compute something else; an average pool does not commute: none is
    reordered."""
    x = tn.tensor(np.array([[[[-1.0, 3.0], [2.0, -4.0]]]]))
    out, idx = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, return_indices=True))(x)
    assert float(out.item()) == 3.0 and int(idx.item()) == 1

    class ShiftedReLU(nn.ReLU):
        def forward(self, input):
            return F.relu(input - 3.0)

    seq = nn.Sequential(ShiftedReLU(), nn.MaxPool2d(2))
    np.testing.assert_array_equal(seq(x).numpy(), _as_written(seq, x).numpy())
    shapes = _relu_input_shapes(monkeypatch)
    seq(x)
    assert shapes == [(1, 1, 2, 2)]
    assert not containers._pool_first(nn.MaxPool2d(2), nn.ReLU())     # the other order
    seq = nn.Sequential(nn.ReLU(), nn.AvgPool2d(2))     # a mean does not commute with ReLU
    assert seq(x).item() == 1.25


def test_simple_cnn_trains_as_written(monkeypatch):
    """SimpleCNN (Conv-ReLU-MaxPool blocks, then Linear-ReLU): loss and every parameter's
    gradient those of its modules called in the written order (to float32 rounding: its
    conv-ReLU-pool blocks' native job sums the bias gradient on each core)."""
    x = tn.tensor(np.random.default_rng(1).standard_normal((8, 1, 8, 8)).astype(np.float32))
    y = tn.tensor(np.arange(8) % 10)

    def loss_and_grads():
        tn.manual_seed(0)
        model = SimpleCNN()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss.item(), [p.grad.numpy() for p in model.parameters()]

    loss, grads = loss_and_grads()
    monkeypatch.setattr(nn.Sequential, "forward", _as_written)
    ref_loss, ref_grads = loss_and_grads()
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
