"""Inputs a backward never reads (Function.unread_inputs, tinynet/autograd.py's
_without_data): the graph keeps a data-free placeholder for an op-made tensor there, so its
array is freed once nothing else holds it, the gradients unchanged (first and second
order); never for a leaf, nor for an output its own op reads back (self.outputs)."""
import gc
import weakref

import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import backend
from tinynet.autograd import Function
from tinynet.testing import assert_close, gradcheck, gradgradcheck


class _Watch:
    """Whether an array is still alive: a weak reference where the array type takes one
    (NumPy); otherwise (a device stand-in's arrays) whether any node of ``graph_of``'s
    graph still holds it, checked by identity."""

    def __init__(self, array):
        try:
            self.ref, self.array = weakref.ref(array), None
        except TypeError:
            self.ref, self.array = None, array

    def alive(self, graph_of):
        if self.ref is not None:
            gc.collect()
            return self.ref() is not None
        seen, stack = set(), [graph_of.grad_fn]
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            for t in node.inputs:
                if isinstance(t, tn.Tensor):
                    if t.data is self.array:
                        return True
                    stack.append(t.grad_fn)
        return False


def _rand(*shape, seed=0, requires_grad=True):
    rng = np.random.default_rng(seed)
    return tn.tensor(rng.standard_normal(shape), dtype=tn.float64, requires_grad=requires_grad)


# each: (name, op on the (2, 1, 4, 6) tensor a Linear made)
_CONSUMERS = [
    ("relu", lambda h: F.relu(h)),
    ("elu", lambda h: F.elu(h)),
    ("add", lambda h: h + h),
    ("sub", lambda h: F.relu(h) - h),
    ("cat", lambda h: tn.cat([h, h], dim=1)),
    ("max_pool2d", lambda h: F.max_pool2d(h, 2)),
    ("avg_pool2d", lambda h: F.avg_pool2d(h, 2)),
    ("dropout", lambda h: F.dropout(h, 0.3)),
]


@pytest.mark.parametrize("name, op", _CONSUMERS, ids=[c[0] for c in _CONSUMERS])
def test_an_unread_input_is_freed_and_the_gradients_are_unchanged(name, op):
    x, w = _rand(2, 1, 4, 5, seed=1), _rand(6, 5, seed=2)

    def loss(keep):
        tn.manual_seed(3)
        h = F.linear(x, w)
        kept.append(h)
        watch = _Watch(h.data)
        y = op(h)
        if not keep:
            kept.clear()
            del h
        freed = not watch.alive(y)
        (y * y).sum().backward()
        return freed
    kept = []
    loss(keep=True)                     # the caller's reference keeps it: the reference
    grads = x.grad.numpy().copy(), w.grad.numpy().copy()
    x.grad = w.grad = None
    assert loss(keep=False), f"{name}'s graph kept the array of an input it never reads"
    assert_close(x.grad, grads[0])
    assert_close(w.grad, grads[1])


def test_a_sum_of_two_op_made_tensors_frees_both():
    x, w = _rand(3, 4, seed=4), _rand(6, 4, seed=5)
    a, b = F.linear(x, w), F.linear(x * 2.0, w)
    watches = _Watch(a.data), _Watch(b.data)
    y = F.relu(a + b)
    del a, b
    assert not watches[0].alive(y) and not watches[1].alive(y)
    y.sum().backward()
    expected = ((x.detach().numpy() @ w.detach().numpy().T * 3.0) > 0).astype(float)
    assert_close(x.grad, 3.0 * expected @ w.detach().numpy())


def test_leaves_are_kept_and_get_their_gradients():
    x = _rand(4, 3)
    y = F.relu(x) + x
    assert y.grad_fn.inputs[1] is x          # the Add's leaf operand, not a placeholder
    y.sum().backward()
    assert_close(x.grad, (x.detach().numpy() > 0) + 1.0)


def test_an_output_its_own_op_reads_back_is_kept():
    # Sigmoid's backward reads its output through self.outputs: a consumer must keep it
    x = _rand(3, 4)
    s = F.sigmoid(x * 1.0)
    watch = _Watch(s.data)
    y = F.relu(s)
    del s
    assert watch.alive(y)
    y.sum().backward()
    sig = 1 / (1 + np.exp(-x.detach().numpy()))
    assert_close(x.grad, sig * (1 - sig))


class _TimesTwoReadingOutput(Function):
    """A user's op whose backward reads self.outputs (no opt-in): never dropped."""

    def forward(self, x):
        return 2.0 * x

    def backward(self, g):
        (y,) = self.outputs
        return g * (y / y) * 2.0


def test_a_user_function_keeps_its_outputs_by_default():
    x = _rand(5)
    h = _TimesTwoReadingOutput.apply(x)
    y = F.relu(h)
    assert y.grad_fn.inputs[0] is h
    del h
    y.sum().backward()
    assert_close(x.grad, 2.0 * (x.detach().numpy() > 0))


@pytest.mark.parametrize("name, op", _CONSUMERS[:4] + _CONSUMERS[5:7], ids=[c[0] for c in _CONSUMERS[:4] + _CONSUMERS[5:7]])
def test_first_and_second_derivatives_through_placeholders(name, op):
    # the op's input is made by a Linear, so its node holds a placeholder: gradcheck and
    # gradgradcheck of the composition in float64
    x, w = _rand(2, 1, 4, 5, seed=6), _rand(6, 5, seed=7)
    fn = lambda x, w: op(F.linear(x, w))        # noqa: E731
    assert gradcheck(fn, [x, w])
    assert gradgradcheck(fn, [x, w])


def test_shape_only_is_a_cached_zero_view_without_memory():
    a = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    view = backend.shape_only(a)
    assert view.shape == (3, 4) and view.dtype == np.float32 and view.strides == (0, 0)
    assert not view.flags.writeable and not view.any()
    assert backend.shape_only(np.ones((3, 4), np.float32)) is view
    assert backend.shape_only(np.ones((3, 4), np.float64)) is not view
    assert backend.device_of(view) == backend.device_of(a)


class _TwoOutputs(Function):
    """(2x, 3x), outputs never read in backward."""
    outputs_unread = True

    def forward(self, x):
        return 2.0 * x, 3.0 * x

    def backward(self, g2, g3):
        return 2.0 * g2 + 3.0 * g3


def test_a_placeholder_carries_the_output_index():
    x = _rand(4)
    _, three = _TwoOutputs.apply(x)
    y = F.relu(three)
    assert y.grad_fn.inputs[0] is not three and y.grad_fn.inputs[0]._output_index == 1
    del three
    y.sum().backward()
    assert_close(x.grad, 3.0 * (x.detach().numpy() > 0))


def test_a_gradient_through_a_placeholder_still_depends_on_it():
    # PyTorch: relu's gradient reads its input, so gx = d(Σ relu(x wᵀ))/dx = [x wᵀ > 0] w,
    # built with create_graph, depends on x (with derivative 0: relu'' = 0) and on w
    x, w = _rand(3, 4, seed=8), _rand(5, 4, seed=9)
    (gx,) = tn.autograd.grad(F.relu(F.linear(x, w)).sum(), [x], create_graph=True)
    gx.sum().backward()
    mask = (x.detach().numpy() @ w.detach().numpy().T > 0).astype(float)
    assert_close(x.grad, np.zeros((3, 4)))          # reached: a zero gradient, not None
    assert_close(w.grad, np.repeat(mask.sum(0)[:, None], 4, axis=1))


_PRODUCERS = [
    ("conv2d", lambda x, w: F.conv2d(x, w, padding=1)),
    ("conv_transpose2d", lambda x, w: F.conv_transpose2d(x, w.transpose(0, 1), padding=1)),
    ("batch_norm", lambda x, w: F.batch_norm(x, None, None, w[:, 0, 0, 0], w[:, 0, 1, 1], training=True)),
    ("linear", lambda x, w: F.linear(x, w[:, :, 0, 0])),
    ("matmul", lambda x, w: x @ w[:, :, 0, 0]),
]


@pytest.mark.parametrize("name, make", _PRODUCERS, ids=[p[0] for p in _PRODUCERS])
def test_the_model_layers_outputs_can_be_dropped(name, make):
    # a ResNet's batch norm -> ReLU and -> residual sum, a U-Net's conv -> ELU and
    # up-convolution -> cat: the op's output freed once the consumer alone holds it
    x, w = _rand(2, 3, 3, 3, seed=10), _rand(3, 3, 3, 3, seed=11)
    h = make(x, w)
    watch = _Watch(h.data)
    y = F.relu(h)
    del h
    assert not watch.alive(y)
    y.sum().backward()
    expected_x, expected_w = x.grad.numpy().copy(), w.grad.numpy().copy()
    x.grad = w.grad = None
    h = make(x, w)
    F.relu(h).sum().backward()              # h held: no placeholder
    assert_close(x.grad, expected_x)
    assert_close(w.grad, expected_w)
