"""Registry entries: dropout.

The mask is random, so the entry wraps the op in a fixed seed (and restores the global
generator afterwards): every call then draws the same mask, which makes finite
differences and the float32-vs-float64 comparison meaningful. PyTorch parity is
impossible for a random mask (different generators); tests/nn/test_layers.py checks
p=0 and training=False against the identity and the mask statistics (keep rate,
1/(1-p) scaling) by hand instead.
"""
from __future__ import annotations

from hypothesis import strategies as st

import tinynet as tn
import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst


def _seeded_dropout(x, p):
    saved = tn.get_rng_state()
    tn.manual_seed(20240611)
    try:
        return F.dropout(x, p=p, training=True)
    finally:
        tn.set_rng_state(saved)


def _samples():
    return st.tuples(tst.arrays(tst.shapes(min_dims=1)), st.sampled_from([0.0, 0.2, 0.5, 0.9])).map(
        lambda xp: Sample((xp[0],), {"p": xp[1]}))


register(OpInfo(
    "dropout", _seeded_dropout, _samples, torch_op=None,
    note="deterministic under a fixed seed; no torch parity for a random mask (see module "
         "docstring and tests/nn/test_layers.py for identity and mask-statistics checks)"))


def _seeded_dropout2d(x, p):
    saved = tn.get_rng_state()
    tn.manual_seed(20240611)
    try:
        return F.dropout2d(x, p=p, training=True)
    finally:
        tn.set_rng_state(saved)


def _samples_2d():
    return st.tuples(tst.arrays(tst.shapes(min_dims=3, max_dims=4)),
                     st.sampled_from([0.0, 0.2, 0.5, 0.9])).map(lambda xp: Sample((xp[0],), {"p": xp[1]}))


register(OpInfo(
    "dropout2d", _seeded_dropout2d, _samples_2d, torch_op=None,
    note="channel masks under a fixed seed; whole-channel zeroing and scaling are checked "
         "by hand in tests/nn/test_surface_layers.py"))
