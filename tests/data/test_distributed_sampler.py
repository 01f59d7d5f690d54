"""DistributedSampler: PyTorch's partition rules, checked by counting, and against torch."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinynet.data import DataLoader, DistributedSampler, TensorDataset


def shares(n, world, **kwargs):
    return [list(DistributedSampler(range(n), num_replicas=world, rank=r, **kwargs)) for r in range(world)]


@given(n=st.integers(1, 60), world=st.integers(1, 7), shuffle=st.booleans(), seed=st.integers(0, 99))
def test_every_index_once_per_epoch_when_padding(n, world, shuffle, seed):
    parts = shares(n, world, shuffle=shuffle, seed=seed)
    per_rank = -(-n // world)                                   # ceil, the closed formula
    assert all(len(p) == per_rank for p in parts)
    counts = np.bincount(np.concatenate(parts), minlength=n)
    assert counts.min() >= 1                                     # every index is read
    assert counts.sum() == per_rank * world                      # padding adds only the shortfall
    assert (counts > 1).sum() <= per_rank * world - n            # ...as repeats


@given(n=st.integers(1, 60), world=st.integers(1, 7), shuffle=st.booleans())
def test_drop_last_reads_each_index_at_most_once(n, world, shuffle):
    parts = shares(n, world, shuffle=shuffle, drop_last=True)
    assert all(len(p) == n // world for p in parts)
    flat = np.concatenate(parts) if parts[0] else np.zeros(0, int)
    assert len(set(flat.tolist())) == len(flat) == (n // world) * world


def test_new_order_each_epoch_and_the_same_order_on_a_rerun():
    a = DistributedSampler(range(100), num_replicas=2, rank=1, seed=5)
    b = DistributedSampler(range(100), num_replicas=2, rank=1, seed=5)
    first = list(a)
    a.set_epoch(1)
    second = list(a)
    assert first != second and sorted(first) != sorted(range(50))
    b.set_epoch(1)
    assert list(b) == second
    b.set_epoch(0)
    assert list(b) == first
    c = DistributedSampler(range(100), num_replicas=2, rank=1, seed=6)
    assert list(c) != first


@pytest.mark.parametrize("n,world,drop_last", [(10, 3, False), (10, 3, True), (7, 4, False),
                                               (2, 5, False), (12, 4, True), (9, 2, True)])
def test_unshuffled_shares_equal_pytorchs(n, world, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    for r in range(world):
        ours = list(DistributedSampler(range(n), world, r, shuffle=False, drop_last=drop_last))
        theirs = list(torch_data.DistributedSampler(range(n), world, r, shuffle=False, drop_last=drop_last))
        assert ours == theirs


def test_worked_example():
    # 10 samples on 3 ranks: padded to 12 with indices 0 and 1; rank r reads r, r+3, ...
    assert shares(10, 3, shuffle=False) == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]
    assert shares(10, 3, shuffle=False, drop_last=True) == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]


def test_data_loader_reads_the_sampler_order():
    data = TensorDataset(np.arange(10.0))
    sampler = DistributedSampler(data, num_replicas=2, rank=1, shuffle=False)
    loader = DataLoader(data, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    assert [b[0].tolist() for b in loader] == [[1.0, 3.0], [5.0, 7.0], [9.0]]
    loader.resume_at(loader.epoch_order, 2)      # resume mid-epoch from the recorded order
    assert [b[0].tolist() for b in loader] == [[9.0]]


def test_errors():
    with pytest.raises(ValueError, match=r"DistributedSampler: rank must be in \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="DistributedSampler: num_replicas must be >= 1"):
        DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(TypeError, match="DistributedSampler: seed must be an int"):
        DistributedSampler(range(4), num_replicas=1, rank=0, seed=1.5)
    with pytest.raises(ValueError, match="DistributedSampler: epoch must be >= 0"):
        DistributedSampler(range(4), num_replicas=1, rank=0).set_epoch(-1)
    with pytest.raises(ValueError, match="DataLoader: sampler and shuffle=True are mutually exclusive"):
        DataLoader(TensorDataset(np.arange(4.0)), sampler=range(4), shuffle=True)
