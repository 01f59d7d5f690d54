"""gather, scatter, masked_fill, chunk, split, clone, all, any, one_hot and from_numpy:
known values, PyTorch agreement on cases the registry does not draw, and errors.
Registry checks (gradcheck, gradgradcheck, parity) run in tests/testing/test_registry.py."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import assert_close

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(3)


def test_gather_known_values_and_repeated_indices_accumulate():
    x = tn.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    y = x.gather(1, tn.tensor([[2, 2], [0, 1]]))
    assert y.detach().numpy().tolist() == [[3.0, 3.0], [4.0, 5.0]]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [[0.0, 0.0, 2.0], [1.0, 1.0, 0.0]]


def test_scatter_with_larger_src_and_scalar_value_match_torch():
    x = RNG.standard_normal((3, 4))
    idx = np.array([[0, 3], [2, 1]])
    src = RNG.standard_normal((3, 5))          # larger than index: only src[:2, :2] is used
    ours = F.scatter(tn.tensor(x), 1, tn.tensor(idx), tn.tensor(src))
    theirs = torch.scatter(torch.from_numpy(x), 1, torch.from_numpy(idx), torch.from_numpy(src))
    assert_close(ours, theirs)
    idx0 = np.array([[0, 2], [2, 1]])
    assert_close(tn.tensor(x).scatter(0, tn.tensor(idx0), value=-1.0),
                 torch.from_numpy(x).scatter(0, torch.from_numpy(idx0), -1.0))


def test_scatter_gradients_by_hand():
    x = tn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    src = tn.tensor([10.0, 20.0], requires_grad=True)
    y = F.scatter(x, 0, tn.tensor([2, 0]), src)
    assert y.detach().numpy().tolist() == [20.0, 2.0, 10.0]
    (y * tn.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 2.0, 0.0]     # overwritten positions get nothing
    assert src.grad.numpy().tolist() == [3.0, 1.0]        # gathered from where they landed


@pytest.mark.parametrize("call,error,match", [
    (lambda: F.gather(tn.ones(2, 3), 1, tn.tensor([[3]])), IndexError, "gather: index out of range"),
    (lambda: F.gather(tn.ones(2, 3), 1, tn.tensor([[-1]])), IndexError, "gather: index out of range"),
    (lambda: F.gather(tn.ones(2, 3), 1, tn.tensor([[0.5]])), TypeError, "gather: index must be an integer"),
    (lambda: F.gather(tn.ones(2, 3), 1, tn.tensor([0])), ValueError, "gather: index has 1 dimensions"),
    (lambda: F.gather(tn.ones(2, 3), 1, tn.zeros(3, 1, dtype=tn.int64)), ValueError, "only dim 1"),
    (lambda: F.gather(tn.ones(2, 3), 2, tn.zeros(1, 1, dtype=tn.int64)), ValueError, "gather: dim 2"),
    (lambda: F.scatter(tn.ones(2, 3), 1, tn.tensor([[0, 1]]), tn.ones(1, 1)), ValueError,
     "scatter: src of shape"),
    (lambda: F.scatter(tn.ones(2, 3), 1, tn.tensor([[0]])), TypeError, "scatter: expected 'src'"),
    (lambda: F.scatter(tn.ones(2, 3), 1, tn.tensor([[0]]), tn.ones(1, 1, dtype=tn.float64)), TypeError,
     "scatter: src has dtype float64 but input has dtype float32"),
    (lambda: F.mean(tn.tensor([1, 2]), dtype=tn.int64), TypeError, "mean: could not infer output dtype"),
    (lambda: F.scatter(tn.ones(2, 3), 1, tn.tensor([[0]]), "a"), TypeError, "scatter: src must be"),
    (lambda: F.masked_fill(tn.ones(2, 3), tn.ones(2, 3), 0.0), TypeError, "masked_fill: mask must be a bool"),
    (lambda: F.masked_fill(tn.ones(3), tn.tensor([[True, False]]), 0.0), ValueError,
     "masked_fill: shapes \\(1, 2\\) and \\(3,\\) do not broadcast"),
    (lambda: F.masked_fill(tn.ones(3), tn.tensor([True, False, True]), tn.ones(2)), ValueError,
     "masked_fill: value must be a number or a 0-d"),
    (lambda: F.chunk(tn.ones(3), 0), ValueError, "chunk: chunks must be a positive int"),
    (lambda: F.chunk(tn.tensor(1.0), 2), ValueError, "chunk: expected a tensor with at least one"),
    (lambda: F.split(tn.ones(5), [2, 2]), ValueError, "split: section sizes \\[2, 2\\] sum to 4"),
    (lambda: F.split(tn.ones(5), 0), ValueError, "split: split_size must be a positive"),
    (lambda: F.one_hot(tn.tensor([0, 3]), 3), ValueError, "one_hot: class values must be smaller"),
    (lambda: F.one_hot(tn.tensor([-1]), 3), ValueError, "one_hot: class values must be non-negative"),
    (lambda: F.one_hot(tn.tensor([0.0]), 3), TypeError, "one_hot: tensor must hold integer"),
    (lambda: F.all(tn.ones(2), dim=3), ValueError, "all: dim 3"),
    (lambda: tn.from_numpy([1.0, 2.0]), TypeError, "from_numpy: expected a numpy.ndarray"),
    (lambda: tn.from_numpy(np.array(["a"])), TypeError, "from_numpy: can't convert"),
])
def test_errors_name_the_op(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_masked_fill_with_tensor_value_gets_its_gradient():
    x = tn.tensor(RNG.standard_normal((2, 3)), requires_grad=True)
    v = tn.tensor(np.float64(0.5), requires_grad=True)
    mask = tn.tensor([[True, False, True], [False, False, True]])
    y = x.masked_fill(mask, v)
    y.sum().backward()
    assert v.grad.item() == 3.0
    assert x.grad.numpy().tolist() == [[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]


@pytest.mark.parametrize("size,chunks", [(5, 3), (6, 4), (1, 3), (0, 2), (7, 7), (4, 1)])
def test_chunk_sizes_match_torch(size, chunks):
    ours = [t.shape for t in tn.zeros(size, 2).chunk(chunks)]
    theirs = [tuple(t.shape) for t in torch.zeros(size, 2).chunk(chunks)]
    assert ours == theirs


@pytest.mark.parametrize("size,arg", [(5, 2), (5, 5), (5, 7), (0, 2), (5, [0, 5]), (6, [1, 2, 3])])
def test_split_sizes_match_torch(size, arg):
    ours = [t.shape for t in tn.zeros(2, size).split(arg, dim=1)]
    theirs = [tuple(t.shape) for t in torch.zeros(2, size).split(arg, dim=1)]
    assert ours == theirs


@pytest.mark.parametrize("name", ["all", "any"])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), ((0, 1), False)])
def test_all_any_match_torch(name, dim, keepdim):
    a = RNG.integers(0, 2, (3, 4)).astype(np.float64)
    a[0] = 1.0
    kwargs = {} if dim is None else {"dim": dim, "keepdim": keepdim}
    ours = getattr(tn.tensor(a), name)(**kwargs)
    theirs = getattr(torch.from_numpy(a), name)(**kwargs)
    assert ours.dtype == np.bool_
    assert ours.numpy().tolist() == theirs.numpy().tolist()


def test_one_hot_matches_torch_and_infers_num_classes():
    idx = np.array([[0, 3], [1, 1]])
    ours = F.one_hot(tn.tensor(idx))
    theirs = torch.nn.functional.one_hot(torch.from_numpy(idx))
    assert ours.shape == tuple(theirs.shape) == (2, 2, 4) and ours.dtype == np.int64
    assert ours.numpy().tolist() == theirs.numpy().tolist()
    assert F.one_hot(tn.tensor([1]), 5).shape == (1, 5)


def test_clone_owns_its_memory_and_passes_gradients():
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    y.data[0] = 9.0
    assert x.detach().numpy().tolist() == [1.0, 2.0]
    (y * 3.0).sum().backward()
    assert x.grad.numpy().tolist() == [3.0, 3.0]


def test_from_numpy_shares_memory_both_ways_like_torch():
    a = np.zeros((2, 2), dtype=np.float32)
    t = tn.from_numpy(a)
    assert t.dtype == np.float32 and t.device == "cpu"
    a[0, 0] = 5.0
    t.data[1, 1] = 7.0
    assert t.numpy()[0, 0] == 5.0 and a[1, 1] == 7.0
    assert np.shares_memory(t.numpy(), a)
    assert tn.from_numpy(np.arange(3)).dtype == np.int64


def test_masked_fill_broadcasts_input_against_mask_like_torch():
    x = RNG.standard_normal(3)
    mask = np.array([[True, False, True], [False, False, False]])
    ours = tn.tensor(x).masked_fill(tn.tensor(mask), 7.0)
    theirs = torch.from_numpy(x).masked_fill(torch.from_numpy(mask), 7.0)
    assert ours.shape == tuple(theirs.shape) == (2, 3)
    assert_close(ours, theirs)


def test_0d_input_and_empty_index_gather_scatter_like_torch():
    x, xt = tn.tensor(np.float64(2.5), requires_grad=True), torch.tensor(2.5, dtype=torch.float64,
                                                                          requires_grad=True)
    y, yt = F.gather(x, 0, tn.tensor([0, 0])), torch.gather(xt, 0, torch.tensor([0, 0]))
    assert y.shape == tuple(yt.shape) == (2,)
    y.sum().backward()
    yt.sum().backward()
    assert_close(x.grad, xt.grad)
    empty = F.gather(tn.ones(5), 0, tn.zeros(2, 0, dtype=tn.int64))
    assert empty.shape == tuple(torch.gather(torch.ones(5), 0, torch.zeros(2, 0, dtype=torch.int64)).shape)
    s = F.scatter(tn.tensor(np.float64(1.0), requires_grad=True), 0, tn.tensor(0), 2.5)
    assert s.shape == () and s.item() == 2.5 and s.requires_grad


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_accept_torchs_unbiased_overload_and_correction_none(name):
    a = RNG.standard_normal((4, 5))
    for args, kwargs in [((False,), {}), ((True,), {}), ((), {"dim": 1, "correction": None})]:
        ours = getattr(F, name)(tn.tensor(a), *args, **kwargs)
        theirs = getattr(torch, name)(torch.from_numpy(a), *args, **kwargs)
        assert_close(ours, theirs)
