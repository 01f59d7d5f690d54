"""Registry entries: embedding (indices of any shape, repeated indices, optional padding_idx,
negative padding_idx included), with scale_grad_by_freq, and with max_norm (drawn with
norm_type, scale_grad_by_freq and padding_idx). The index tensor is integer, so only the
weight is a leaf."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst


@st.composite
def embedding_samples(draw, padding=False, scale_grad_by_freq=False, max_norm=False):
    V, D = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    shape = draw(tst.shapes(min_dims=0, max_dims=3, max_side=4))
    n = int(np.prod(shape))
    idx = np.array(draw(st.lists(st.integers(0, V - 1), min_size=n, max_size=n)),
                   dtype=np.int64).reshape(shape)
    padding_idx = None
    if padding == "maybe":
        padding_idx = draw(st.none() | st.integers(-V, V - 1))
    elif padding:
        padding_idx = draw(st.integers(-V, V - 1))
    kwargs = {"padding_idx": padding_idx}
    if scale_grad_by_freq:
        kwargs["scale_grad_by_freq"] = True
    if max_norm:
        # rows of N(0, 1)-like values have norms around 1: some are rescaled, some not
        kwargs.update(max_norm=draw(st.sampled_from([0.3, 1.0, 1.5, 4])),
                      norm_type=draw(st.sampled_from([1, 2.0, 3.0, 0.5, float("inf")])),
                      scale_grad_by_freq=draw(st.booleans()))
    return Sample((idx, draw(tst.arrays((V, D)))), kwargs)


def _torch_embedding(torch, idx, w, **kwargs):
    return torch.nn.functional.embedding(idx, w, **kwargs)


register(OpInfo("embedding", F.embedding, lambda: embedding_samples(), _torch_embedding))
register(OpInfo(
    "embedding[padding_idx]", F.embedding, lambda: embedding_samples(padding=True),
    _torch_embedding, gradcheck=False, gradgradcheck=False,
    note="the padding row's gradient is zero by definition, not the derivative, so finite "
         "differences disagree there by design; PyTorch parity checks it (forward, backward "
         "and second order)"))
register(OpInfo(
    "embedding[scale_grad_by_freq]", F.embedding,
    lambda: embedding_samples(padding="maybe", scale_grad_by_freq=True), _torch_embedding,
    gradcheck=False,
    note="the weight gradient is divided by each row's count by definition, not the derivative, "
         "so gradcheck disagrees by design; gradgradcheck differentiates that (linear) "
         "backward. PyTorch's own double backward ignores the division; tinynet's does not"))
register(OpInfo(
    "embedding[max_norm]", F.embedding, lambda: embedding_samples(padding="maybe", max_norm=True),
    _torch_embedding, gradcheck=False, gradgradcheck=False,
    note="the in-place renormalisation records no gradient (as in PyTorch), so finite "
         "differences, which see it, disagree by design; PyTorch parity checks forward and "
         "gradient, tests/functional/test_embedding_options.py the weight after the call"))
