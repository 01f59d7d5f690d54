"""Registry entries: ``interpolate`` in modes 'nearest' (3-D, 4-D and 5-D inputs) and
'bilinear' (4-D, both ``align_corners``), with ``size`` or ``scale_factor`` (one, or one
per dim; with and without ``recompute_scale_factor``).

The entry ``interpolate`` is mode nearest, ``interpolate[bilinear]`` the other mode.
One PyTorch inconsistency is kept out of the parity entries: for 3-D and 5-D inputs in mode
'nearest', PyTorch's backward treats an axis whose size is kept (m == n) as the identity
and one whose size doubles (m == 2n) as o // 2, while its forward uses the scale factor's
formula there, so its gradient is not the adjoint of its forward (PyTorch's own gradcheck
fails on ``interpolate(x of shape (1, 1, 3), scale_factor=2.3)``). tinynet's backward is
the adjoint; those samples go to the entry ``interpolate[nearest-edge-sizes]``, checked
by gradcheck and gradgradcheck only.
"""
from __future__ import annotations

import math

from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst

_SCALES = [0.5, 0.7, 1.0, 1.3, 1.5, 2.0, 2.3, 3.0]


def _torch_disagrees(spatial, kwargs, ndim):
    """True for the nearest 1-D/3-D cases where PyTorch's backward is not its adjoint."""
    if kwargs["mode"] != "nearest" or ndim == 4 or kwargs.get("scale_factor") is None \
            or kwargs.get("recompute_scale_factor"):
        return False
    sf = kwargs["scale_factor"]
    scales = sf if isinstance(sf, tuple) else (sf,) * len(spatial)
    for n, s in zip(spatial, scales):
        m = math.floor(n * s)
        if (m == n and s != 1.0) or (m == 2 * n and s != 2.0):
            return True
    return False


@st.composite
def interpolate_samples(draw, mode, torch_agrees=True):
    k = 2 if mode == "bilinear" else draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 5 if k < 3 else 3)) for _ in range(k))
    x = draw(tst.arrays((draw(st.integers(1, 2)), draw(st.integers(1, 2))) + spatial))
    kwargs = {"mode": mode}
    if draw(st.booleans()):
        sizes = tuple(draw(st.integers(1, 7 if k < 3 else 4)) for _ in range(k))
        kwargs["size"] = sizes if k > 1 or draw(st.booleans()) else sizes[0]
    else:
        if draw(st.booleans()):
            scale = draw(st.sampled_from(_SCALES))
            scales = (scale,) * k
            kwargs["scale_factor"] = scale
        else:
            scales = tuple(draw(st.sampled_from(_SCALES)) for _ in range(k))
            kwargs["scale_factor"] = scales
        if any(math.floor(n * s) < 1 for n, s in zip(spatial, scales)):
            kwargs["scale_factor"] = 2.0
        if draw(st.booleans()):
            kwargs["recompute_scale_factor"] = True
    if mode == "bilinear":
        kwargs["align_corners"] = draw(st.booleans())
    disagrees = _torch_disagrees(spatial, kwargs, x.ndim)
    if torch_agrees and disagrees:
        kwargs.pop("scale_factor")
        kwargs.pop("recompute_scale_factor", None)
        kwargs["size"] = tuple(2 * n + 1 for n in spatial)
    elif not torch_agrees and not disagrees:
        kwargs.pop("size", None)
        kwargs.pop("recompute_scale_factor", None)
        kwargs["scale_factor"] = 1.3 if draw(st.booleans()) else 2.3   # the disagreeing sizes
        if not _torch_disagrees(spatial, kwargs, x.ndim):
            kwargs["scale_factor"] = 2.3 if kwargs["scale_factor"] == 1.3 else 1.3
    return Sample((x,), kwargs)


def _torch_interpolate(torch, x, **kwargs):
    return torch.nn.functional.interpolate(x, **kwargs)


register(OpInfo("interpolate", F.interpolate, lambda: interpolate_samples("nearest"),
                _torch_interpolate, max_examples=40))
register(OpInfo("interpolate[bilinear]", F.interpolate, lambda: interpolate_samples("bilinear"),
                _torch_interpolate, max_examples=40))
register(OpInfo(
    "interpolate[nearest-edge-sizes]", F.interpolate,
    lambda: interpolate_samples("nearest", torch_agrees=False).filter(
        lambda s: _torch_disagrees(s.args[0].shape[2:], s.kwargs, s.args[0].ndim)),
    torch_op=None, max_examples=20,
    note="3-D/5-D nearest where PyTorch's backward is not the adjoint of its forward (see the "
         "module docstring); forward parity is still checked in tests/functional/test_interpolate.py"))
