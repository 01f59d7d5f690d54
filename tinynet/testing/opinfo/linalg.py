"""Registry entries: matmul (1-D, 2-D, batched with broadcast batch dims) and linear
(with and without bias; 1-D, 2-D and 3-D inputs)."""
from __future__ import annotations

from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst

_side = st.integers(1, 4)


@st.composite
def _matmul_shapes(draw):
    """Shapes (a, b) for every case of NumPy's matmul rules."""
    m, k, n = draw(_side), draw(_side), draw(_side)
    case = draw(st.sampled_from(["vv", "vm", "mv", "mm", "batched", "batched_v"]))
    if case == "vv":
        return (k,), (k,)
    if case == "vm":
        return (k,), (k, n)
    if case == "mv":
        return (m, k), (k,)
    if case == "mm":
        return (m, k), (k, n)
    batch_a, batch_b = draw(tst.broadcastable_shapes(2, min_dims=0, max_dims=2, max_side=3))
    if case == "batched_v":
        return batch_a + (m, k), (k,)
    return batch_a + (m, k), batch_b + (k, n)


def _matmul_samples():
    return _matmul_shapes().flatmap(lambda ab: st.tuples(tst.arrays(ab[0]), tst.arrays(ab[1]))).map(
        lambda ab: Sample(ab))


register(OpInfo("matmul", F.matmul, _matmul_samples, lambda torch, a, b: torch.matmul(a, b),
                atol=1e-9, max_examples=20))


@st.composite
def _linear_samples(draw):
    fan_in, fan_out = draw(_side), draw(_side)
    lead = draw(st.sampled_from([(), (3,), (2, 3)]))
    x = draw(tst.arrays(lead + (fan_in,)))
    w = draw(tst.arrays((fan_out, fan_in)))
    b = draw(st.one_of(st.none(), tst.arrays((fan_out,))))
    return Sample((x, w, b))


register(OpInfo("linear", F.linear, lambda: _linear_samples(),
                lambda torch, x, w, b: torch.nn.functional.linear(x, w, b), atol=1e-9,
                max_examples=20))
