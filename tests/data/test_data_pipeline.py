"""Dataset, TensorDataset, random_split and DataLoader."""
import numpy as np
import pytest

import tinynet as tn
from tinynet.data import DataLoader, Dataset, Subset, TensorDataset, random_split


class Squares(Dataset):
    """A map-style dataset without a vectorised path (exercises collation)."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.full((2,), float(i), dtype=np.float32), i * i


def test_tensor_dataset_rows_and_length():
    ds = TensorDataset(np.arange(12.0).reshape(6, 2), tn.tensor(np.arange(6)))
    assert len(ds) == 6
    x, y = ds[4]
    assert x.tolist() == [8.0, 9.0] and y.item() == 4


def test_tensor_dataset_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same first dimension.*\\[3, 4\\]"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_loader_batches_in_order_with_last_partial_batch():
    ds = TensorDataset(np.arange(10.0), np.arange(10))
    batches = list(DataLoader(ds, batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(DataLoader(ds, batch_size=4)) == 3
    dropped = list(DataLoader(ds, batch_size=4, drop_last=True))
    assert len(dropped) == 2 == len(DataLoader(ds, batch_size=4, drop_last=True))


def test_shuffle_is_a_permutation_and_follows_the_global_seed():
    ds = TensorDataset(np.arange(50))
    tn.manual_seed(3)
    a = np.concatenate([b[0].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True)])
    tn.manual_seed(3)
    b = np.concatenate([b[0].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True)])
    assert sorted(a.tolist()) == list(range(50))        # every sample once
    assert a.tolist() == b.tolist()                       # same seed, same order
    assert a.tolist() != list(range(50))


def test_private_seed_gives_new_order_each_epoch_and_is_reproducible():
    ds = TensorDataset(np.arange(30))
    loader = DataLoader(ds, batch_size=30, shuffle=True, seed=5)
    e1, e2 = [next(iter(loader))[0].tolist() for _ in range(2)]
    assert e1 != e2
    again = DataLoader(ds, batch_size=30, shuffle=True, seed=5)
    assert next(iter(again))[0].tolist() == e1
    state = loader.state_dict()
    e3 = next(iter(loader))[0].tolist()
    loader.load_state_dict(state)
    assert next(iter(loader))[0].tolist() == e3


def test_generic_dataset_is_collated_into_stacked_tensors():
    batches = list(DataLoader(Squares(), batch_size=3))
    x, y = batches[0]
    assert x.shape == (3, 2) and x.dtype == np.float32
    assert y.tolist() == [0, 1, 4] and y.dtype == np.int64
    assert batches[-1][1].tolist() == [36]


def test_subset_of_tensor_dataset_uses_the_vectorised_path():
    ds = TensorDataset(np.arange(10) * 10)
    sub = Subset(ds, [9, 1, 5])
    assert [b[0].tolist() for b in DataLoader(sub, batch_size=2)] == [[90, 10], [50]]


def test_transform_applies_to_inputs_only():
    ds = TensorDataset(np.ones((4, 1, 2, 2), dtype=np.float32), np.arange(4))
    loader = DataLoader(ds, batch_size=4, transform=lambda x: x * 2)
    x, y = next(iter(loader))
    assert float(x.numpy().max()) == 2.0 and y.tolist() == [0, 1, 2, 3]
    assert float(ds.tensors[0].numpy().max()) == 1.0      # the dataset was not modified


def test_random_split_counts_fractions_and_disjointness():
    ds = TensorDataset(np.arange(11))
    a, b = random_split(ds, [0.7, 0.3], seed=0)
    assert len(a) + len(b) == 11 and len(a) == 8
    ids = sorted(a.indices.tolist() + b.indices.tolist())
    assert ids == list(range(11))
    c, d = random_split(ds, [0.7, 0.3], seed=0)
    assert c.indices.tolist() == a.indices.tolist()
    with pytest.raises(ValueError, match="sum to 10 but the dataset has 11"):
        random_split(ds, [5, 5])


@pytest.mark.parametrize("kwargs, match", [({"batch_size": 0}, "batch_size must be a positive int"),
                                           ({"batch_size": 2.5}, "batch_size"),
                                           ({"seed": "x"}, "seed must be an int")])
def test_loader_rejects_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DataLoader(TensorDataset(np.zeros(3)), **kwargs)


def test_resume_at_replays_the_rest_of_an_epoch_without_drawing():
    ds = TensorDataset(np.arange(20))
    loader = DataLoader(ds, batch_size=6, shuffle=True)
    tn.manual_seed(0)
    full = [b[0].tolist() for b in loader]
    order = loader.epoch_order
    state = tn.get_rng_state()
    loader.resume_at(order, 2)
    assert [b[0].tolist() for b in loader] == full[2:]
    assert tn.get_rng_state() == state                  # nothing drawn
    with pytest.raises(ValueError, match="order has shape"):
        loader.resume_at(order[:5], 0)
    with pytest.raises(ValueError, match="batch must be in \\[0, 4\\]"):
        loader.resume_at(order, 9)
