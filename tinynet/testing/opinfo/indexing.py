"""Registry entries: clone, gather, scatter, masked_fill, chunk, split.

``scatter`` draws indices that never repeat a position along ``dim`` (PyTorch keeps an
unspecified one of repeated writes, so no two libraries need agree there); ``gather``
draws repeats freely (their gradients must accumulate).
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst


def _as_index(a):
    """NumPy int arrays become tinynet tensors on the input's device inside the op call."""
    import tinynet as tn
    return a if not isinstance(a, np.ndarray) else tn.tensor(a)


register(OpInfo("clone", F.clone, lambda: tst.arrays().map(lambda x: Sample((x,))),
                lambda torch, x: torch.clone(x)))


@st.composite
def _gather_samples(draw):
    shape = draw(tst.shapes(min_dims=1))
    d = draw(st.integers(-len(shape), len(shape) - 1))
    index_shape = tuple(draw(st.integers(1, 4)) if a == d % len(shape) else draw(st.integers(1, n))
                        for a, n in enumerate(shape))
    size = shape[d]
    index = draw(st.lists(st.integers(0, size - 1), min_size=int(np.prod(index_shape)),
                          max_size=int(np.prod(index_shape))))
    return Sample((draw(tst.arrays(shape)),), {"dim": d,
                                               "index": np.array(index, np.int64).reshape(index_shape)})


register(OpInfo("gather", lambda x, dim, index: F.gather(x, dim, _as_index(index)),
                lambda: _gather_samples(),
                lambda torch, x, dim, index: torch.gather(x, dim, torch.from_numpy(index))))


@st.composite
def _scatter_samples(draw):
    shape = draw(tst.shapes(min_dims=1))
    n = len(shape)
    d = draw(st.integers(0, n - 1))
    m = draw(st.integers(1, shape[d]))
    index_shape = tuple(m if a == d else draw(st.integers(1, s)) for a, s in enumerate(shape))
    seed = draw(st.integers(0, 2 ** 16))
    # distinct positions along d: the first m entries of a random permutation per line
    keys = np.random.default_rng(seed).random(index_shape[:d] + (shape[d],) + index_shape[d + 1:])
    index = np.argsort(keys, axis=d).take(range(m), axis=d).astype(np.int64)
    x = draw(tst.arrays(shape))
    if draw(st.booleans()):
        # src of index's shape: PyTorch's backward fails for a larger src (whose forward
        # tinynet matches, tested by hand in tests/functional/test_indexing.py)
        src = draw(tst.arrays(index_shape))
    else:
        src = draw(st.sampled_from([1.5, -2.0]))
    return Sample((x, src), {"dim": d - n if draw(st.booleans()) else d, "index": index})


def _scatter(x, src, dim, index):
    return F.scatter(x, dim, _as_index(index), src)


def _scatter_torch(torch, x, src, dim, index):
    return torch.scatter(x, dim, torch.from_numpy(index), src)


register(OpInfo("scatter", _scatter, lambda: _scatter_samples(), _scatter_torch))


@st.composite
def _masked_fill_samples(draw):
    shape = draw(tst.shapes())
    lead = draw(st.integers(0, len(shape)))
    mask_shape = tuple(1 if draw(st.booleans()) else s for s in shape[lead:])
    mask = draw(tst.arrays(mask_shape)) > 0
    value = draw(st.one_of(st.sampled_from([0.0, -1e4, 2.5]), tst.arrays(())))
    return Sample((draw(tst.arrays(shape)), mask, value))


register(OpInfo("masked_fill", F.masked_fill, lambda: _masked_fill_samples(),
                lambda torch, x, mask, value: torch.masked_fill(x, mask, value)))


def _split_samples(kind):
    @st.composite
    def build(draw):
        shape = draw(tst.shapes(min_dims=1, max_side=5))
        d = draw(st.integers(-len(shape), len(shape) - 1))
        size = shape[d]
        if kind == "chunk":
            return Sample((draw(tst.arrays(shape)),), {"chunks": draw(st.integers(1, 6)), "dim": d})
        if draw(st.booleans()):
            arg = draw(st.integers(1, size + 1))
        else:
            cuts = sorted(draw(st.lists(st.integers(0, size), max_size=3)))
            arg = [b - a for a, b in zip([0] + cuts, cuts + [size])]
        return Sample((draw(tst.arrays(shape)),), {"split_size_or_sections": arg, "dim": d})
    return build


register(OpInfo("chunk", F.chunk, _split_samples("chunk"),
                lambda torch, x, chunks, dim: torch.chunk(x, chunks, dim)))
register(OpInfo("split", F.split, _split_samples("split"),
                lambda torch, x, split_size_or_sections, dim: torch.split(x, split_size_or_sections, dim)))
