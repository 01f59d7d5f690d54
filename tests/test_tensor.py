"""Tensor construction, dtypes and PyTorch type promotion, operators, conversions, the
random generator, and the constructor's errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinynet as tn
from tinynet.testing import assert_close


# ----------------------------------------------------------------- construction
def test_python_floats_become_float32_and_ints_int64():
    assert tn.tensor([1.0, 2.0]).dtype == np.float32
    assert tn.tensor([1, 2]).dtype == np.int64
    assert tn.tensor(True).dtype == np.bool_
    assert tn.tensor(3.5).shape == ()


def test_numpy_dtype_is_kept():
    assert tn.tensor(np.zeros(2, dtype=np.float64)).dtype == np.float64
    assert tn.tensor(np.zeros(2, dtype=np.int32)).dtype == np.int32
    assert tn.tensor([1, 2], dtype=tn.float64).dtype == np.float64
    assert tn.tensor([1, 2], dtype="float32").dtype == np.float32


def test_tensor_copies_its_input():
    a = np.zeros(3)
    t = tn.tensor(a)
    a[0] = 5.0
    assert t.numpy()[0] == 0.0


def test_string_data_is_type_error_naming_tensor():
    with pytest.raises(TypeError, match="tensor: data must be numeric"):
        tn.tensor("abc")
    with pytest.raises(TypeError, match="tensor: data must be numeric"):
        tn.tensor(["a", "b"])
    with pytest.raises(TypeError, match="tensor: could not build"):
        tn.tensor([[1, 2], [3]])
    with pytest.raises(TypeError, match="tensor: unknown dtype"):
        tn.tensor([1.0], dtype="banana")


def test_factories_shapes_and_dtypes():
    assert tn.zeros(2, 3).shape == (2, 3)
    assert tn.ones((2, 3)).dtype == np.float32
    assert tn.full((2,), 7.0).numpy().tolist() == [7.0, 7.0]
    assert tn.arange(4).dtype == np.int64
    assert tn.randn(3, 4, dtype=tn.float64).dtype == np.float64
    assert tn.zeros_like(tn.ones(2, dtype=tn.float64)).dtype == np.float64


# ----------------------------------------------------------------- type promotion
def test_float32_plus_float64_is_float64():
    a = tn.tensor(np.ones(2, dtype=np.float32))
    b = tn.tensor(np.ones(2, dtype=np.float64))
    assert (a + b).dtype == np.float64
    assert (b * a).dtype == np.float64


def test_python_scalar_keeps_tensor_dtype():
    a = tn.tensor(np.ones(2, dtype=np.float32))
    assert (a * 2.5).dtype == np.float32
    assert (2 + a).dtype == np.float32
    assert (tn.tensor([1, 2]) * 3).dtype == np.int64


def test_int_tensor_with_float_scalar_is_float32():
    r = tn.tensor([1, 2]) * 1.5
    assert r.dtype == np.float32
    assert r.numpy().tolist() == [1.5, 3.0]


def test_int_tensor_with_float_tensor_takes_the_float_dtype():
    i = tn.tensor([1, 2])
    assert (i + tn.tensor(np.ones(2))).dtype == np.float64
    assert (i + tn.ones(2)).dtype == np.float32


def test_int_divided_by_int_is_float32():
    r = tn.tensor([1, 3]) / tn.tensor([2, 2])
    assert r.dtype == np.float32
    assert r.numpy().tolist() == [0.5, 1.5]
    assert (tn.tensor([3]) / 2).dtype == np.float32


def test_mixed_dtype_gradients_come_back_in_each_leaf_dtype():
    a = tn.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b = tn.tensor(np.array([3.0, 4.0]), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    assert_close(a.grad, np.array([3.0, 4.0], dtype=np.float32))


# ----------------------------------------------------------------- operators and methods
def test_operators_match_numpy():
    x = np.array([[1.0, -2.0], [3.0, 0.5]])
    t = tn.tensor(x)
    assert_close(t + 1, x + 1)
    assert_close(1 - t, 1 - x)
    assert_close(t * t, x * x)
    assert_close(2 / t, 2 / x)
    assert_close(t ** 2, x ** 2)
    assert_close(2 ** t, 2 ** x)
    assert_close(-t, -x)
    assert_close(abs(t), np.abs(x))
    assert_close(t @ t, x @ x)
    assert_close(t.T, x.T)
    assert (t > 0).dtype == np.bool_
    assert ((t > 0) == tn.tensor(x > 0)).numpy().all()


def test_numpy_scalar_on_the_left_defers_to_tensor():
    t = tn.tensor(np.array([1.0, 2.0]))
    r = np.float64(2.0) * t
    assert isinstance(r, tn.Tensor)


def test_methods_mirror_functional():
    t = tn.tensor(np.arange(6.0).reshape(2, 3))
    assert t.reshape(3, 2).shape == (3, 2)
    assert t.view(-1).shape == (6,)
    assert t.transpose(0, 1).shape == (3, 2)
    assert t.permute(1, 0).shape == (3, 2)
    assert t.flatten().shape == (6,)
    assert t.sum().item() == 15.0
    assert t.sum(0).numpy().tolist() == [3.0, 5.0, 7.0]
    assert t.mean().item() == 2.5
    values, indices = t.max(1)
    assert values.numpy().tolist() == [2.0, 5.0] and indices.numpy().tolist() == [2, 2]
    assert t.max().item() == 5.0
    assert t[1, 2].item() == 5.0
    assert t[:, 1].numpy().tolist() == [1.0, 4.0]
    assert t.clamp(min=1.0, max=4.0).numpy().max() == 4.0
    assert t.unsqueeze(0).shape == (1, 2, 3)
    assert t.expand(4, 2, 3).shape == (4, 2, 3)


def test_item_numpy_and_len():
    t = tn.tensor([[1.5]])
    assert t.item() == 1.5 and isinstance(t.item(), float)
    assert len(tn.zeros(4, 2)) == 4
    with pytest.raises(ValueError, match="item: only one-element"):
        tn.zeros(2).item()
    with pytest.raises(RuntimeError, match="numpy: can't call numpy"):
        tn.zeros(2, requires_grad=True).numpy()
    assert tn.zeros(2, requires_grad=True).detach().numpy().shape == (2,)


def test_to_dtype_and_shortcuts():
    t = tn.tensor([1.5, 2.5])
    assert t.double().dtype == np.float64
    assert t.to(tn.float64).dtype == np.float64
    assert t.long().numpy().tolist() == [1, 2]
    assert t.to(t.device) is t


def test_to_dtype_is_differentiable():
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    x.double().sum().backward()
    assert x.grad.dtype == np.float32
    assert x.grad.numpy().tolist() == [1.0, 1.0]


def test_setitem_under_no_grad_and_refused_on_graph_leaves():
    t = tn.zeros(3)
    t[1] = 5.0
    assert t.numpy().tolist() == [0.0, 5.0, 0.0]
    t[[0, 2]] = 7.0                      # a list index goes to the tensor's device
    assert t.numpy().tolist() == [7.0, 5.0, 7.0]
    w = tn.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="setitem"):
        w[0] = 1.0
    with tn.no_grad():
        w[0] = 1.0
    assert w.detach().numpy()[0] == 1.0


def test_zero_and_repr():
    t = tn.tensor([1.0, 2.0])
    assert t.zero_().numpy().tolist() == [0.0, 0.0]
    assert repr(tn.tensor([1.0, 2.0], device="cpu")) == "tensor([1., 2.])"   # a device adds device=...
    assert "requires_grad=True" in repr(tn.tensor([1.0], requires_grad=True))
    assert "grad_fn=<Mul>" in repr(tn.tensor([1.0], requires_grad=True) * 2)
    assert "dtype=float64" in repr(tn.tensor(np.zeros(1)))


def test_bool_of_multi_element_tensor_is_an_error():
    with pytest.raises(ValueError, match="ambiguous"):
        bool(tn.zeros(2))
    assert bool(tn.tensor([1.0]))


def test_requires_grad_of_non_leaf_cannot_be_switched_off():
    y = tn.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False


# ----------------------------------------------------------------- the random generator
def test_manual_seed_makes_draws_repeat():
    tn.manual_seed(123)
    a = tn.randn(5).numpy()
    tn.manual_seed(123)
    b = tn.randn(5).numpy()
    np.testing.assert_array_equal(a, b)
    tn.manual_seed(124)
    assert not np.array_equal(a, tn.randn(5).numpy())


def test_rng_state_round_trip_resumes_the_sequence():
    tn.manual_seed(7)
    tn.rand(3)
    state = tn.get_rng_state()
    expected = tn.randn(4).numpy()
    tn.randn(10)                       # move on
    tn.set_rng_state(state)
    np.testing.assert_array_equal(tn.randn(4).numpy(), expected)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(4096,), (4097,), (3, 2001), (2, 3000)]),
       st.one_of(st.floats(1e-9, 1.0, exclude_max=True), st.sampled_from([0.1, 1 / 3, 0.5, 1 - 1e-9])),
       st.integers(0, 3))
def test_keep_mask_is_the_float_draw_bit_for_bit_and_leaves_the_same_state(seed, shape, p, before):
    # the mask from raw 64-bit words against its definition, u >= p on float32 uniforms:
    # odd and even sizes, a half word buffered before (odd draws first) and after, and
    # p that rounds to 1 in float32 (1 - 1e-9: keep nothing)
    from tinynet import random as tr
    tn.manual_seed(seed)
    tr.generator().random(before, dtype=np.float32)
    state = tn.get_rng_state()
    expected = tr.generator().random(shape, dtype=np.float32) >= p
    expected_next = tr.generator().random(3, dtype=np.float32)
    tn.set_rng_state(state)
    keep = tr.keep_mask(shape, p)
    assert keep.shape == shape and keep.dtype == bool
    np.testing.assert_array_equal(keep, expected)
    np.testing.assert_array_equal(tr.generator().random(3, dtype=np.float32), expected_next)


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("before,shape", [(0, (4096,)), (1, (4097,)), (3, (3, 2001)), (2, (2, 3000)),
                                          (0, (2, 3, 1001))])
def test_keep_mask_in_chunks_on_threads_is_the_serial_draw(monkeypatch, restore_threads, chunk_counts,
                                                          threads, before, shape):
    # every mask split over the threads (a grain of one byte), uneven chunks included:
    # each chunk jumps its own copy of the generator ahead to its first word, so the mask
    # and the state after it must be exactly those of the float draw made in one go
    from tinynet import backend, random as tr
    monkeypatch.setattr(backend, "parallel_grain", 1)
    backend.set_num_threads(threads)
    tn.manual_seed(11)
    tr.generator().random(before, dtype=np.float32)
    state = tn.get_rng_state()
    expected = tr.generator().random(shape, dtype=np.float32) >= 0.3
    expected_next = tr.generator().random(5, dtype=np.float32)
    tn.set_rng_state(state)
    keep = tr.keep_mask(shape, 0.3)
    assert chunk_counts == [threads], "the mask was not drawn in chunks"
    np.testing.assert_array_equal(keep, expected)
    np.testing.assert_array_equal(tr.generator().random(5, dtype=np.float32), expected_next)


def test_keep_mask_at_the_boundary_keeps_u_equal_to_p_and_drops_u_just_below():
    # p set to a drawn value u (in [0.25, 0.5), where float32 has steps of 2^-25, finer
    # than the draws' 2^-24): u >= p keeps it; p one float32 step above u drops it
    from tinynet import random as tr
    tn.manual_seed(3)
    state = tn.get_rng_state()
    u = tr.generator().random(5000, dtype=np.float32)
    i = int(np.flatnonzero((u >= 0.25) & (u < 0.5))[0])
    for p, kept in ((float(u[i]), True), (float(u[i]) + 2.0 ** -25, False)):
        tn.set_rng_state(state)
        keep = tr.keep_mask((5000,), p)
        assert bool(keep[i]) is kept
        np.testing.assert_array_equal(keep, u >= np.float32(p))


def test_rng_state_is_a_copy():
    tn.manual_seed(0)
    state = tn.get_rng_state()
    tn.randn(3)
    assert state != tn.get_rng_state()


def test_rng_errors():
    with pytest.raises(TypeError, match="manual_seed: seed must be an int"):
        tn.manual_seed("1")
    with pytest.raises(ValueError, match="set_rng_state"):
        tn.set_rng_state({"nope": 1})


def test_full_reductions_hold_0d_arrays_not_scalars():
    # NumPy's full reductions return scalars; a Tensor always holds an array (writable).
    s = tn.ones(2, 3, requires_grad=True).sum()
    assert s.data.shape == () and hasattr(s.data, "flags")
    with tn.no_grad():
        s.zero_()
    assert s.item() == 0.0
