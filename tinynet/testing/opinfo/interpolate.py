"""Registry entries: ``interpolate`` in every mode — 'nearest', 'nearest-exact' and 'area'
(3-D, 4-D and 5-D inputs), 'linear' (3-D), 'bilinear' and 'bicubic' (4-D, with and without
``antialias``), 'trilinear' (5-D) — with ``size`` or ``scale_factor`` (one, or one per dim;
with and without ``recompute_scale_factor``), and ``align_corners`` (True, False or left
out) in the interpolating modes.

The entry ``interpolate`` is mode nearest, ``interpolate[<mode>]`` the others.
PyTorch's backward is not the adjoint of its forward in a few edge sizes, which are kept
out of the parity entries (PyTorch's own gradcheck fails on them, e.g. on
``interpolate(x of shape (1, 1, 3), scale_factor=2.3)``):

- 'nearest', 3-D and 5-D inputs: the backward treats an axis whose size a scale factor
  keeps (m == n, s != 1) as the identity and one it doubles (m == 2n, s != 2) as o // 2,
  while the forward uses the scale factor's formula there;
- 'bicubic' (align_corners=False): m == n, s != 1, the forward uses the formula and the
  backward the identity;
- ``antialias=True`` (align_corners=False): m == n, s != 1, the forward is the identity and
  the backward the formula's adjoint.

tinynet's backward is the adjoint; those samples go to the entries
``interpolate[nearest-edge-sizes]`` and ``interpolate[bicubic-edge-sizes]``, checked by
gradcheck and gradgradcheck only (their forward parity is checked in
tests/functional/test_interpolate.py).
"""
from __future__ import annotations

import math

from hypothesis import strategies as st

import tinynet.functional as F
from tinynet.functional.interpolate import INTERPOLATING, NDIMS
from ..registry import OpInfo, Sample, register
from .. import strategies as tst

_SCALES = [0.5, 0.7, 1.0, 1.3, 1.5, 2.0, 2.3, 3.0]


def _torch_disagrees(spatial, kwargs, ndim):
    """True for the edge sizes where PyTorch's backward is not its adjoint (docstring)."""
    mode, antialias = kwargs["mode"], kwargs.get("antialias", False)
    if kwargs.get("scale_factor") is None or kwargs.get("recompute_scale_factor"):
        return False
    sf = kwargs["scale_factor"]
    scales = sf if isinstance(sf, tuple) else (sf,) * len(spatial)
    for n, s in zip(spatial, scales):
        m = math.floor(n * s)
        if mode == "nearest" and ndim != 4:
            if (m == n and s != 1.0) or (m == 2 * n and s != 2.0):
                return True
        elif (mode == "bicubic" or antialias) and not kwargs.get("align_corners"):
            if m == n and s != 1.0:
                return True
    return False


def _antialias_width_one(spatial, kwargs):
    """PyTorch 2.13's anti-aliased CPU kernel is wrong when the output width is 1 and the
    height changes (every output row is the first one); tinynet there equals PyTorch on the
    transposed input (tests/functional/test_interpolate.py)."""
    if kwargs.get("size") is not None:
        size = kwargs["size"]
        out = size if isinstance(size, tuple) else (size,) * len(spatial)
    else:
        sf = kwargs["scale_factor"]
        scales = sf if isinstance(sf, tuple) else (sf,) * len(spatial)
        out = tuple(math.floor(n * s) for n, s in zip(spatial, scales))
    return out[-1] == 1 and out[0] != spatial[0]


@st.composite
def interpolate_samples(draw, mode, torch_agrees=True):
    k = draw(st.sampled_from(NDIMS[mode])) - 2
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
    if mode in INTERPOLATING:
        align_corners = draw(st.sampled_from([None, False, True]))
        if align_corners is not None:
            kwargs["align_corners"] = align_corners
    if mode in ("bilinear", "bicubic") and (draw(st.booleans()) or
                                            (not torch_agrees and mode == "bilinear")):
        kwargs["antialias"] = True
    if not torch_agrees and kwargs.get("align_corners"):
        kwargs["align_corners"] = False        # True makes r = 1 at m == n: no edge case
    disagrees = _torch_disagrees(spatial, kwargs, x.ndim)
    if torch_agrees and kwargs.get("antialias") and _antialias_width_one(spatial, kwargs):
        disagrees = True
    if torch_agrees and disagrees:
        kwargs.pop("scale_factor", None)
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
for _mode in ("nearest-exact", "area", "linear", "bilinear", "bicubic", "trilinear"):
    register(OpInfo(f"interpolate[{_mode}]", F.interpolate,
                    (lambda m=_mode: interpolate_samples(m)), _torch_interpolate,
                    max_examples=40 if _mode != "trilinear" else 25))


def _edge_samples(mode):
    return interpolate_samples(mode, torch_agrees=False).filter(
        lambda s: _torch_disagrees(s.args[0].shape[2:], s.kwargs, s.args[0].ndim))


register(OpInfo(
    "interpolate[nearest-edge-sizes]", F.interpolate, lambda: _edge_samples("nearest"),
    torch_op=None, max_examples=20,
    note="3-D/5-D nearest where PyTorch's backward is not the adjoint of its forward (see the "
         "module docstring); forward parity is still checked in tests/functional/test_interpolate.py"))
register(OpInfo(
    "interpolate[bicubic-edge-sizes]", F.interpolate,
    lambda: st.sampled_from(["bicubic", "bilinear"]).flatmap(_edge_samples),
    torch_op=None, max_examples=20,
    note="bicubic and antialias where a scale factor keeps a size and PyTorch's backward is not "
         "the adjoint of its forward (see the module docstring); forward parity is checked in "
         "tests/functional/test_interpolate.py"))
