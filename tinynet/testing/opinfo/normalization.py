"""Registry entries: normalization ops (batch_norm in training and evaluation mode,
layer_norm). Running statistics are non-differentiable buffers (``no_grad`` positions)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst


@st.composite
def _bn_input(draw):
    """(N, C), (N, C, L) or (N, C, H, W) with at least 2 values per channel, spread out
    enough that the variance is well away from 0 (finite differences through 1/σ); batches
    of 1-4 and of 8-9."""
    C = draw(st.integers(1, 3))
    spatial = draw(st.sampled_from([(), (3,), (2, 3)]))
    # batches of 8 and more take batch norm's batch-first sums (normalization._BATCH_FIRST_MIN)
    N = draw(st.one_of(st.integers(2 if not spatial else 1, 4), st.integers(8, 9)))
    x = draw(tst.arrays((N, C) + spatial))
    # A fixed ramp per channel keeps the variance >= ~0.1 whatever hypothesis draws.
    M = N * int(np.prod(spatial, dtype=int))
    ramp = np.linspace(-1.0, 1.0, M).reshape((N,) + spatial)
    x = x * 0.3 + np.expand_dims(ramp, 1)
    return x, C


def _bn_train_samples():
    def build(xc):
        x, C = xc
        return st.tuples(tst.arrays((C,), 0.5, 2.0), tst.arrays((C,)), st.booleans()).map(
            lambda wbs: Sample((x, wbs[0], wbs[1]) if wbs[2] else (x, None, None)))
    return _bn_input().flatmap(build)


def _bn_train(x, weight, bias):
    return F.batch_norm(x, None, None, weight, bias, training=True)


def _bn_eval_samples():
    def build(xc):
        x, C = xc
        return st.tuples(tst.arrays((C,)), tst.arrays((C,), 0.3, 2.0), tst.arrays((C,), 0.5, 2.0),
                         tst.arrays((C,))).map(
            lambda a: Sample((x, a[0], a[1], a[2], a[3]), no_grad=(1, 2)))
    return _bn_input().flatmap(build)


def _bn_eval(x, running_mean, running_var, weight, bias):
    return F.batch_norm(x, running_mean, running_var, weight, bias, training=False)


def _layer_norm_samples():
    def build(xc):
        x, _ = xc
        shape = x.shape[1:]
        return st.tuples(tst.arrays(shape, 0.5, 2.0), tst.arrays(shape)).map(
            lambda wb: Sample((x, wb[0], wb[1])))
    return _bn_input().map(lambda xc: (np.swapaxes(xc[0], 0, 1).copy(), xc[1])).flatmap(build)


def _layer_norm(x, weight, bias):
    return F.layer_norm(x, getattr(x, "shape", (1, 1))[1:], weight, bias)


register(OpInfo(
    "batch_norm", _bn_train, _bn_train_samples,
    lambda torch, x, w, b: torch.nn.functional.batch_norm(x, None, None, w, b, training=True),
    atol=1e-9, rtol=1e-7, f32_rtol=1e-3, f32_atol=1e-3,
    note="training mode with batch statistics; the running-statistics update is checked "
         "against torch over several steps in tests/nn/test_normalization.py"))
register(OpInfo(
    "batch_norm_eval", _bn_eval, _bn_eval_samples,
    lambda torch, x, rm, rv, w, b: torch.nn.functional.batch_norm(x, rm, rv, w, b, training=False),
    atol=1e-9, rtol=1e-7))
register(OpInfo(
    "layer_norm", _layer_norm, _layer_norm_samples,
    lambda torch, x, w, b: torch.nn.functional.layer_norm(x, x.shape[1:], w, b),
    atol=1e-9, rtol=1e-7, f32_rtol=1e-3, f32_atol=1e-3))


@st.composite
def _group_norm_samples(draw):
    """(N, C, *) with C = G·(C/G); each group holds a ramp so its variance stays >= ~0.1."""
    G, per = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    C = G * per
    spatial = draw(st.sampled_from([(), (3,), (2, 2)]))
    if per * int(np.prod(spatial, dtype=int)) < 2:
        spatial = (2,)
    N = draw(st.integers(1, 3))
    x = draw(tst.arrays((N, C) + spatial)) * 0.3
    M = per * int(np.prod(spatial, dtype=int))
    ramp = np.linspace(-1.0, 1.0, M).reshape((per,) + spatial)
    x = x + np.tile(ramp, (G,) + (1,) * len(spatial))[None]
    affine = draw(st.booleans())
    w = draw(tst.arrays((C,), 0.5, 2.0)) if affine else None
    b = draw(tst.arrays((C,))) if affine else None
    return Sample((x, w, b), {"num_groups": G})


def _group_norm(x, weight, bias, num_groups):
    return F.group_norm(x, num_groups, weight, bias)


register(OpInfo(
    "group_norm", _group_norm, lambda: _group_norm_samples(),
    lambda torch, x, w, b, num_groups: torch.nn.functional.group_norm(x, num_groups, w, b),
    atol=1e-9, rtol=1e-7, f32_rtol=1e-3, f32_atol=1e-3))
