"""The engine: Function protocol, accumulation, retain_graph, double backward, grad modes,
tinynet.autograd.grad, deep graphs and the errors of misuse."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import backend
from tinynet.autograd import Function, grad
from tinynet.testing import assert_close


def _t(values, requires_grad=True, dtype=tn.float64):
    return tn.tensor(np.asarray(values, dtype=np.float64), dtype=dtype, requires_grad=requires_grad)


class Cube(Function):
    """y = x³, backward written with ops so it is differentiable again."""

    def forward(self, x):
        return x ** 3

    def backward(self, g):
        (x,) = self.inputs
        return g * 3.0 * x * x


def test_custom_function_forward_and_backward():
    # Wrong if apply did not pass raw arrays in or Tensors to backward.
    x = _t([1.0, -2.0])
    y = Cube.apply(x)
    assert isinstance(y, tn.Tensor) and y.grad_fn is not None
    y.sum().backward()
    assert_close(x.grad, np.array([3.0, 12.0]))


def test_gradients_accumulate_into_leaves_over_calls():
    x = _t([1.0, 2.0])
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    assert_close(x.grad, np.array([5.0, 5.0]))
    x.grad = None
    (x * x).sum().backward()
    assert_close(x.grad, np.array([2.0, 4.0]))


def test_a_tensor_used_twice_gets_both_contributions():
    # y = x·x + x: dy/dx = 2x + 1 (the graph fans out and back in).
    x = _t([3.0])
    (x * x + x).sum().backward()
    assert_close(x.grad, np.array([7.0]))


def test_shared_subexpression_reached_through_two_paths_is_complete_before_use():
    # a feeds b and c; both feed d. A wrong topological order would run a's backward
    # before c's contribution arrived and lose it.
    x = _t([0.5, -1.5])
    a = x * 2.0
    b = a.exp()
    c = (a * b).sum(0, keepdim=True)
    d = (a * (b - c)).sum()
    d.backward()
    ref = x.detach().numpy()
    aa = 2 * ref
    bb = np.exp(aa)
    cc = (aa * bb).sum()
    # d = Σ a(b - c);  dd/da_i = (b_i - c) + a_i b_i - (Σ_j a_j)(b_i + a_i b_i)
    dd_da = (bb - cc) + aa * bb - aa.sum() * (bb + aa * bb)
    assert_close(x.grad, 2 * dd_da, rtol=1e-12, atol=1e-12)


def test_broadcast_gradients_are_summed_to_the_input_shape():
    a = _t(np.ones((2, 3)))
    b = _t([1.0, 2.0, 3.0])
    c = _t(np.full((2, 1), 2.0))
    (a * b * c).sum().backward()
    assert b.grad.shape == (3,) and c.grad.shape == (2, 1)
    assert_close(b.grad, np.array([4.0, 4.0, 4.0]))
    assert_close(c.grad, np.array([[6.0], [6.0]]))
    assert_close(a.grad, np.array([[2.0, 4.0, 6.0]] * 2))


def test_scalar_gradient_of_broadcast_scalar_tensor():
    s = _t(2.0)
    x = _t(np.arange(6.0).reshape(2, 3))
    (x * s).sum().backward()
    assert s.grad.shape == () and s.grad.item() == pytest.approx(15.0)


def test_second_backward_through_released_graph_is_runtime_error():
    x = _t([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = _t([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_close(x.grad, np.array([4.0, 8.0]))


def test_double_backward_of_cube():
    # d/dx x³ = 3x², d²/dx² = 6x.
    x = _t([2.0, -1.0])
    (dx,) = grad((x ** 3).sum(), x, create_graph=True)
    assert_close(dx, np.array([12.0, 3.0]))
    assert dx.requires_grad
    (ddx,) = grad(dx.sum(), x)
    assert_close(ddx, np.array([12.0, -6.0]))


def test_double_backward_through_backward_with_create_graph():
    x = _t([1.5])
    y = Cube.apply(x)
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    g.backward()
    assert_close(x.grad, np.array([9.0]))   # 6x


def test_third_derivative():
    x = _t([0.7])
    (g1,) = grad((x ** 4).sum(), x, create_graph=True)
    (g2,) = grad(g1.sum(), x, create_graph=True)
    (g3,) = grad(g2.sum(), x)
    assert_close(g3, np.array([24 * 0.7]))


def test_backward_without_create_graph_builds_no_graph():
    x = _t([1.0, 2.0])
    (x * x).sum().backward()
    assert x.grad.grad_fn is None and not x.grad.requires_grad


def test_ten_thousand_op_chain_backpropagates_without_recursion_error():
    x = _t([1.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    assert_close(x.grad, np.array([1.0001 ** 10_000]), rtol=1e-9)


def test_no_grad_records_nothing():
    x = _t([1.0])
    with tn.no_grad():
        y = x * 2
        assert not tn.is_grad_enabled()
    assert tn.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_enable_grad_inside_no_grad():
    x = _t([1.0])
    with tn.no_grad():
        with tn.enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and not z.requires_grad


def test_set_grad_enabled_as_context_and_decorator():
    x = _t([1.0])
    with tn.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    with tn.set_grad_enabled(True):
        assert (x * 2).requires_grad

    @tn.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    assert tn.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ZeroDivisionError):
        with tn.no_grad():
            1 / 0
    assert tn.is_grad_enabled()


def test_detach_shares_data_and_cuts_the_graph():
    x = _t([1.0, 2.0])
    y = x * 3
    d = y.detach()
    assert d.grad_fn is None and not d.requires_grad
    assert d.data is y.data
    (d * x).sum().backward()
    assert_close(x.grad, np.array([3.0, 6.0]))   # no gradient through d


def test_requires_grad_on_integer_tensor_is_type_error():
    with pytest.raises(TypeError, match="requires_grad.*floating"):
        tn.tensor([1, 2], requires_grad=True)
    t = tn.tensor([1, 2])
    with pytest.raises(TypeError, match="requires_grad"):
        t.requires_grad = True


def test_backward_on_non_scalar_without_gradient_is_runtime_error():
    x = _t([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"backward: grad can be implicitly created only for scalar.*\(2,\)"):
        (x * 2).backward()


def test_backward_on_non_scalar_with_gradient():
    x = _t([1.0, 2.0])
    (x * x).backward(tn.tensor(np.array([1.0, 10.0])))
    assert_close(x.grad, np.array([2.0, 40.0]))


def test_backward_gradient_of_wrong_shape_is_value_error():
    x = _t([1.0, 2.0])
    with pytest.raises(ValueError, match=r"backward: gradient has shape \(3,\)"):
        (x * 2).backward(tn.tensor(np.ones(3)))


def test_backward_on_tensor_without_grad_is_runtime_error():
    with pytest.raises(RuntimeError, match="backward: the tensor does not require grad"):
        tn.tensor([1.0]).sum().backward()


def test_grad_returns_gradients_without_touching_dot_grad():
    x, y = _t([1.0, 2.0]), _t([3.0, 4.0])
    gx, gy = grad((x * y).sum(), [x, y])
    assert_close(gx, np.array([3.0, 4.0]))
    assert_close(gy, np.array([1.0, 2.0]))
    assert x.grad is None and y.grad is None


def test_grad_with_grad_outputs_and_several_outputs():
    x = _t([1.0, 2.0])
    a, b = x * 2, x * x
    (gx,) = grad([a, b], [x], [tn.tensor(np.array([1.0, 1.0])), tn.tensor(np.array([0.5, 0.0]))])
    assert_close(gx, np.array([3.0, 2.0]))


def test_grad_of_an_intermediate_tensor():
    x = _t([2.0])
    h = x * 3
    y = (h * h).sum()
    (gh,) = grad(y, h)
    assert_close(gh, np.array([12.0]))


def test_grad_unused_input():
    x, z = _t([1.0]), _t([1.0])
    with pytest.raises(RuntimeError, match="allow_unused"):
        grad((x * 2).sum(), [x, z])
    gx, gz = grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None


def test_integer_outputs_are_not_differentiable():
    x = _t([[1.0, 5.0], [7.0, 2.0]])
    values, indices = x.max(1)
    assert values.requires_grad and not indices.requires_grad
    assert indices.dtype == np.int64


def test_backward_returning_wrong_number_of_gradients_is_reported():
    class Bad(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, g):
            return g

    a, b = _t([1.0]), _t([2.0])
    with pytest.raises(RuntimeError, match="Bad.backward returned 1 gradients for 2 inputs"):
        Bad.apply(a, b).sum().backward()


def test_saved_state_is_released_after_backward():
    x = _t([1.0, 2.0])
    y = x.relu()
    node = y.grad_fn
    y.sum().backward()
    assert not hasattr(node, "mask")


def test_float32_leaf_receives_float32_gradient_from_float64_graph():
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    (x.double() * 2).sum().backward()
    assert x.grad.dtype == np.float32
    assert_close(x.grad, np.array([2.0, 2.0], dtype=np.float32))


def test_set_grad_enabled_as_a_plain_call_takes_effect_immediately():
    # As torch.set_grad_enabled(False) without a with-block.
    try:
        tn.set_grad_enabled(False)
        assert not tn.is_grad_enabled()
        assert not (_t([1.0]) * 2).requires_grad
    finally:
        tn.set_grad_enabled(True)
    assert tn.is_grad_enabled()


def test_set_grad_enabled_decorator_does_not_change_mode_at_decoration():
    @tn.set_grad_enabled(False)
    def f(t):
        return t * 2

    assert tn.is_grad_enabled()
    assert not f(_t([1.0])).requires_grad
    assert tn.is_grad_enabled()


def test_grad_mode_nesting_restores_each_level():
    with tn.no_grad():
        with tn.set_grad_enabled(True):
            assert tn.is_grad_enabled()
            with tn.no_grad():
                assert not tn.is_grad_enabled()
            assert tn.is_grad_enabled()
        assert not tn.is_grad_enabled()
    assert tn.is_grad_enabled()


# ------------------------------------------------------------------ taking a gradient without a copy
# A leaf's first gradient becomes its .grad without a copy when nothing but the engine
# refers to it (tinynet.autograd._sole_references); every other case must leave .grad
# sharing no memory with anything else: checked by writing into .grad and reading the rest.

class _FreshGradient(Function):
    """Identity whose backward returns an array of its own making (and records its id)."""
    made = []

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        array = g.data * 1.0
        _FreshGradient.made.append(id(array))
        return tn.Tensor(array)


class _KeepsGradient(Function):
    """Identity whose backward keeps what it returns (in ``kept``, as a cache would): a
    Tensor (``view=False``) or the array a returned view was cut from (``view=True``)."""
    kept = []

    def forward(self, x, view=False):
        self.view = view
        return x.copy()

    def backward(self, g):
        if self.view:
            base = g.data.reshape(-1) * 1.0
            _KeepsGradient.kept.append(base)
            return tn.Tensor(base[:g.data.size].reshape(g.shape))
        _KeepsGradient.kept.append(tn.Tensor(g.data * 1.0))
        return _KeepsGradient.kept[-1]


class _PassesGradientOn(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


def _written_into(grad):
    """Fills ``grad``'s array with 7 (the test then checks nothing else changed)."""
    grad.data[...] = 7.0


def test_a_fresh_first_gradient_becomes_grad_without_a_copy():
    x = _t([1.0, 2.0, 3.0])
    _FreshGradient.made.clear()
    _FreshGradient.apply(x).backward(_t([1.0, 1.0, 1.0], requires_grad=False))
    assert id(x.grad.data) == _FreshGradient.made[-1]     # the very array backward made
    assert_close(x.grad, np.ones(3))


class _ViewGradient(Function):
    """Identity whose backward returns a view of an array of its own making: reshaped
    (the whole array) or sliced (part of a larger one)."""
    made = []

    def forward(self, x, sliced=False):
        self.sliced = sliced
        return x.copy()

    def backward(self, g):
        flat = g.data.reshape(-1) * 1.0
        if self.sliced:     # the first half of an array twice as long
            array = backend.get_array_module(flat).concatenate([flat, flat])[:flat.size].reshape(g.shape)
        else:
            array = flat.reshape(g.shape)
        _ViewGradient.made.append(id(array))
        return tn.Tensor(array)


def test_a_reshaped_fresh_gradient_is_taken_and_a_slice_is_copied():
    x, y = _t([[1.0, 2.0], [3.0, 4.0]]), _t([[1.0, 2.0], [3.0, 4.0]])
    seed = tn.tensor(np.ones((2, 2)), dtype=tn.float64)
    _ViewGradient.made.clear()
    _ViewGradient.apply(x).backward(seed)
    probe = x.grad.data.reshape(-1)
    if probe.base is probe.base:    # NumPy, CuPy: a view's base is its array, one object
        assert id(x.grad.data) == _ViewGradient.made[-1]
    # (fakecuda wraps a view's base anew on each access, so the engine, which cannot
    # count its references, copies: the safe side, checked by the values below)
    _ViewGradient.apply(y, sliced=True).backward(seed)
    # the slice's gradient is a compact copy, not a view holding twice its memory
    assert y.grad.data.flags.c_contiguous
    assert y.grad.data.base is None or y.grad.data.base.nbytes == y.grad.data.nbytes
    assert_close(x.grad, np.ones((2, 2)))
    assert_close(y.grad, np.ones((2, 2)))


def test_a_summed_gradient_is_taken_and_correct():
    x = _t([1.0, 2.0])
    (_FreshGradient.apply(x) + _FreshGradient.apply(x) * 2.0).sum().backward()
    assert_close(x.grad, np.array([3.0, 3.0]))


@pytest.mark.parametrize("case", ["seed passed on", "one gradient for two leaves", "kept tensor",
                                  "kept base of a view", "kept by a hook"])
def test_a_gradient_someone_else_holds_is_copied(case):
    x, other = _t([1.0, 2.0]), _t([5.0, 6.0])
    seed = _t([1.0, 1.0], requires_grad=False)
    if case == "seed passed on":
        _PassesGradientOn.apply(x).backward(seed)
        held = seed.data
    elif case == "one gradient for two leaves":
        (x + other).backward(seed)
        held = other.grad.data
    elif case in ("kept tensor", "kept base of a view"):
        _KeepsGradient.kept.clear()
        _KeepsGradient.apply(x, view=case == "kept base of a view").backward(seed)
        kept = _KeepsGradient.kept[-1]
        held = kept.data if case == "kept tensor" else kept
    else:
        kept = []
        x.register_hook(lambda g: kept.append(g))
        (x * 1.0).backward(seed)
        held = kept[0].data
    before = held.copy()
    _written_into(x.grad)
    assert_close(held, before)
