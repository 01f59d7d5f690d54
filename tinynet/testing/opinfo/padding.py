"""Registry entries: ``pad`` in modes 'reflect', 'replicate' and 'circular'.

Draws 1, 2 or 3 padded dims of a (C, *) or (N, C, *) input and sizes that PyTorch accepts,
negative ones included: reflect, each pad below the dim's size; replicate, up to twice the
size; circular, a crop first, then each positive pad at most the cropped size (PyTorch
reads memory it has not written beyond that). Every padded dim keeps at least one entry,
but for one of two or three reflect or replicate dims that may be cropped to 0.
"""
from __future__ import annotations

from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst


@st.composite
def edge_pad_samples(draw, mode):
    k = draw(st.integers(1, 3))
    lead = draw(st.sampled_from([(2,), (1, 2)]))
    sides = tuple(draw(st.integers(1, 4 if k < 3 else 3)) for _ in range(k))
    x = draw(tst.arrays(lead + sides))
    pad = []
    # reflect and replicate: one of two or three padded dims may be cropped to 0 (an empty
    # output, as in PyTorch), except 3-D reflect, whose PyTorch backward then leaves the
    # gradient uninitialised
    emptiable = k > 1 and not (mode == "reflect" and k == 3) and mode != "circular"
    empty = draw(st.sampled_from([None, *range(k)])) if emptiable else None
    for j in range(k):
        n = sides[k - 1 - j]                     # pad pairs run from the last dim back
        if j == empty:
            lo = draw(st.integers(-n, 0))
            hi = -n - lo
        elif mode == "circular":
            crop_lo = draw(st.integers(0, n - 1))
            crop_hi = draw(st.integers(0, n - 1 - crop_lo))
            kept = n - crop_lo - crop_hi
            lo = -crop_lo if crop_lo else draw(st.integers(0, kept))
            hi = -crop_hi if crop_hi else draw(st.integers(0, kept))
        else:
            top = n - 1 if mode == "reflect" else 2 * n
            lo = draw(st.integers(max(-n - 1, 1 - n - top), top))
            hi = draw(st.integers(max(-n - 1, 1 - n - lo), top))   # keeps lo + n + hi >= 1
        pad += [lo, hi]
    return Sample((x,), {"pad": tuple(pad), "mode": mode})


for _mode in ("reflect", "replicate", "circular"):
    register(OpInfo(
        f"pad[{_mode}]", F.pad, (lambda m=_mode: edge_pad_samples(m)),
        lambda torch, x, pad, mode: torch.nn.functional.pad(x, pad, mode=mode), max_examples=40))
