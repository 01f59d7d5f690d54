"""Registry entries: scaled_dot_product_attention.

The strategy draws batch dims (none, one or two; key and value's may broadcast against
query's), lengths L and S, feature sizes E and Ev,
and one of: no mask, a boolean mask (some rows may be fully masked: their output is 0), a
float mask (a differentiable leaf) at the full or the broadcast (L, S) shape, or
``is_causal``; ``scale`` is None or a number; ``enable_gqa`` is drawn too, and when True
query has Hq heads (dim -3) and key and value each have a divisor of Hq. Dropout is random, so its entry fixes the
seed around each call (as the dropout entry does) and has no PyTorch parity.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tinynet as tn
import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst


@st.composite
def attention_samples(draw, dropout=False):
    gqa = draw(st.booleans())
    batch = draw(st.sampled_from([(), (2,), (1, 2)]))
    L, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    E, Ev = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # key and value may broadcast against query's batch dims: size-1 or missing leading dims
    kv_batch = draw(st.sampled_from([batch, tuple(1 for _ in batch), batch[1:]]))
    k_batch = v_batch = kv_batch
    if gqa:     # a head dim: Hq query heads, key and value heads each dividing Hq
        Hq = draw(st.sampled_from([1, 2, 4, 6]))
        heads = [h for h in range(1, Hq + 1) if Hq % h == 0]
        batch = batch + (Hq,)
        k_batch = kv_batch + (draw(st.sampled_from(heads)),)
        v_batch = kv_batch + (draw(st.sampled_from(heads)),)
    q = draw(tst.arrays(batch + (L, E), -2, 2))
    k = draw(tst.arrays(k_batch + (S, E), -2, 2))
    v = draw(tst.arrays(v_batch + (S, Ev)))
    kind = draw(st.sampled_from(["none", "bool", "float", "causal"]))
    mask_shape = draw(st.sampled_from([batch + (L, S), (L, S)]))
    mask, kwargs = None, {}
    if kind == "bool":
        n = int(np.prod(mask_shape))
        mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool).reshape(mask_shape)
    elif kind == "float":
        mask = draw(tst.arrays(mask_shape, -2, 2))
    kwargs["is_causal"] = kind == "causal"
    kwargs["scale"] = draw(st.none() | st.floats(0.2, 1.5))
    kwargs["enable_gqa"] = gqa
    if dropout:
        kwargs["dropout_p"] = draw(st.sampled_from([0.0, 0.3, 0.6]))
    return Sample((q, k, v, mask), kwargs)


def _seeded(q, k, v, mask, **kwargs):
    saved = tn.get_rng_state()
    tn.manual_seed(20261201)
    try:
        return F.scaled_dot_product_attention(q, k, v, mask, **kwargs)
    finally:
        tn.set_rng_state(saved)


def _torch_math_sdpa(torch, q, k, v, mask, **kwargs):
    """PyTorch's reference on its math backend: on a CPU its fused (flash) kernel may serve
    the same call, and that kernel's backward has no derivative, so the second-order check
    could not compare against it."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel(SDPBackend.MATH):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, mask, **kwargs)


register(OpInfo(
    "scaled_dot_product_attention", F.scaled_dot_product_attention, lambda: attention_samples(),
    _torch_math_sdpa, atol=1e-9, max_examples=40))
register(OpInfo(
    "scaled_dot_product_attention[dropout]", _seeded, lambda: attention_samples(dropout=True),
    torch_op=None, max_examples=20,
    note="deterministic under a fixed seed; a random mask has no PyTorch counterpart (the "
         "mask statistics and the dropped weights are checked in tests/functional/test_attention.py)"))
