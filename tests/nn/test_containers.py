"""Sequential's one rewrite: a ReLU followed by a MaxPool2d runs as the pool, then the
ReLU, in one op (tinynet/nn/containers.py, ``_pool_first``; tinynet.functional.pool.max_pool2d_relu). The results must be those of the order
as written, the rewrite must actually happen where it may, and must not where a hook, a
subclass, ``return_indices`` or a dilated window could tell the difference."""
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
    on the conv's output (tinynet.functional.pool.max_pool2d_relu), no ReLU of its own."""
    from tinynet.nn import pool as nn_pool
    shapes, fused = _relu_input_shapes(monkeypatch), []
    op = nn_pool.max_pool2d_relu
    monkeypatch.setattr(nn_pool, "max_pool2d_relu", lambda x, *a: fused.append(tuple(x.shape)) or op(x, *a))
    nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))(tn.randn(3, 1, 8, 8))
    assert shapes == [] and fused == [(3, 2, 8, 8)]


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
    """SimpleCNN (Conv-ReLU-MaxPool blocks): loss and every parameter's gradient bit for
    bit those of its modules called in the written order."""
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
    assert loss == ref_loss
    for g, r in zip(grads, ref_grads):
        np.testing.assert_array_equal(g, r)
