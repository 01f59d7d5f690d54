"""Registry entries: reductions.

``max``/``min``/``amax``/``amin`` draw tie-free inputs (a finite difference straddling a tie is meaningless);
the tie rules themselves are tested by hand in tests/functional/test_reduction.py.
``var``/``std`` use at least one dim and sides >= 2 so that N - correction > 0 for every drawn ``dim``.
"""
from __future__ import annotations

from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst


def _reduce_samples(array=tst.arrays, min_side=1, multiple=True, extra=None):
    min_dims = 1 if min_side > 1 else 0
    """(x,) with kwargs ``dim`` (None, an int or a tuple) and ``keepdim``, plus ``extra``."""
    def build():
        def for_shape(shape):
            # a 0-d input takes dim 0 or -1 too (PyTorch returns the value itself)
            dim = tst.dims(len(shape), multiple=multiple) if shape else \
                st.sampled_from([None, 0, -1])
            kwargs = {"dim": dim,
                      "keepdim": st.booleans(), **(extra or {})}
            return st.tuples(array(shape), st.fixed_dictionaries(kwargs))
        return tst.shapes(min_dims=min_dims, min_side=min_side).flatmap(for_shape).map(
            lambda xk: Sample((xk[0],), xk[1]))
    return build


def _torch_dim(dim, x):
    return tuple(range(x.ndim)) if dim is None else dim


def _torch_amax_amin(name):
    def call(torch, x, dim, keepdim):
        return getattr(torch, name)(x, () if dim is None else dim, keepdim)
    return call


def _torch_extreme(name):
    def call(torch, x, dim, keepdim):
        fn = getattr(torch, name)
        return fn(x) if dim is None else tuple(fn(x, dim, keepdim))
    return call


register(OpInfo("sum", F.sum, _reduce_samples(),
                lambda torch, x, dim, keepdim: torch.sum(x, _torch_dim(dim, x), keepdim)))
register(OpInfo("mean", F.mean, _reduce_samples(),
                lambda torch, x, dim, keepdim: torch.mean(x, _torch_dim(dim, x), keepdim)))
register(OpInfo("max", F.max, _reduce_samples(tst.tie_free, multiple=False),
                _torch_extreme("max")))
register(OpInfo("min", F.min, _reduce_samples(tst.tie_free, multiple=False),
                _torch_extreme("min")))
register(OpInfo("amax", F.amax, _reduce_samples(tst.tie_free), _torch_amax_amin("amax")))
register(OpInfo("amin", F.amin, _reduce_samples(tst.tie_free), _torch_amax_amin("amin")))
register(OpInfo("var", F.var, _reduce_samples(min_side=2, extra={"correction": st.sampled_from([0, 1])}),
                lambda torch, x, dim, keepdim, correction:
                torch.var(x, _torch_dim(dim, x), correction=correction, keepdim=keepdim),
                atol=1e-9))
# std = sqrt(var): drawn values are spread out, so var stays well away from 0.
register(OpInfo("std", F.std, _reduce_samples(tst.tie_free, min_side=2,
                                              extra={"correction": st.sampled_from([0, 1])}),
                lambda torch, x, dim, keepdim, correction:
                torch.std(x, _torch_dim(dim, x), correction=correction, keepdim=keepdim),
                atol=1e-9))


def _sum_to_samples():
    """``shape`` and an input shape that broadcasts from it (extra leading dims too)."""
    def build(shapes):
        target, other = shapes
        full = tuple(max(a, b) for a, b in zip((1,) * (len(other) - len(target)) + target,
                                               (1,) * (len(target) - len(other)) + other))
        return tst.arrays(full).map(lambda x: Sample((x,), {"shape": target}))
    return tst.broadcastable_shapes(2).flatmap(build)


register(OpInfo("sum_to", F.sum_to, _sum_to_samples,
                lambda torch, x, shape: x.sum_to_size(shape) if shape else x.sum()))
