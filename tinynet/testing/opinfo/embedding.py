"""Registry entry: embedding (indices of any shape, repeated indices, optional padding_idx,
negative padding_idx included). The index tensor is integer, so only the weight is a leaf."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst


@st.composite
def embedding_samples(draw, padding=False):
    V, D = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    shape = draw(tst.shapes(min_dims=0, max_dims=3, max_side=4))
    n = int(np.prod(shape))
    idx = np.array(draw(st.lists(st.integers(0, V - 1), min_size=n, max_size=n)),
                   dtype=np.int64).reshape(shape)
    padding_idx = draw(st.integers(-V, V - 1)) if padding else None
    return Sample((idx, draw(tst.arrays((V, D)))), {"padding_idx": padding_idx})


def _torch_embedding(torch, idx, w, padding_idx):
    return torch.nn.functional.embedding(idx, w, padding_idx)


register(OpInfo("embedding", F.embedding, lambda: embedding_samples(), _torch_embedding))
register(OpInfo(
    "embedding[padding_idx]", F.embedding, lambda: embedding_samples(padding=True),
    _torch_embedding, gradcheck=False, gradgradcheck=False,
    note="the padding row's gradient is zero by definition, not the derivative, so finite "
         "differences disagree there by design; PyTorch parity checks it (forward, backward "
         "and second order)"))
