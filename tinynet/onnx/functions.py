"""Converters for the functions the trace records whole (``FUNCTIONS``; see trace.py).

Their inner ops lose what ONNX needs (``prelu`` selects with a mask computed outside the
ops, ``pad``'s edge modes gather at index arrays), or ONNX has the function as one
operator (Mish, Selu, Resize, LayerNormalization). A converter gets the call with the
function's own arguments (``_arguments`` binds them by name) and returns its output
names, or None to decline: the exporter then converts the ops recorded inside the call
(``Call.inner``) with ``ops.py``'s converters, which is exact but longer. Declining is
how an op whose ONNX form needs a newer opset, or fits only some arguments, stays
exportable everywhere:

| function                      | ONNX                                   | declines (inner ops)            |
|-------------------------------|----------------------------------------|---------------------------------|
| prelu                         | PRelu, weight reshaped to (C, 1, ...)  | never                           |
| mish                          | Mish (opset 18); Softplus, Tanh, Mul   | never                           |
| selu                          | Selu                                   | never                           |
| pad (reflect/replicate/circ.) | Pad reflect/edge/wrap (19), Slice      | never (Slice+Concat below 19    |
|                               |                                        | or with an empty dim)           |
| interpolate                   | Resize (sizes), AveragePool for 'area' | see ``interpolate``             |
| layer_norm                    | LayerNormalization                     | opset < 17                      |
"""
from __future__ import annotations

import importlib
import inspect

from ..backend import numpy as np
from .ops import _BIG

A, I, N, Pd = (importlib.import_module(f"tinynet.functional.{name}") for name in (
    "activation", "interpolate", "normalization", "padding"))

__all__ = ["FUNCTIONS"]


def _arguments(call, *names):
    """The named arguments of a recorded function call, however they were passed."""
    bound = inspect.signature(call.op).bind(*call.args, **call.kwargs)
    bound.apply_defaults()
    return [bound.arguments[n] for n in names]


def pad_edges(b, call):
    """F.pad's modes reflect, replicate and circular (recorded whole, see trace.py).

    reflect -> Pad mode 'reflect', replicate -> Pad mode 'edge' (the same source indices as
    padding.py's ``src``); circular -> Pad mode 'wrap' from opset 19, below that (and for a
    tensor with an empty dim, which ONNX Runtime's 'wrap' rejects) Concat(x[n - lo:], x,
    x[:hi]) per dim. Negative sizes (reflect, replicate: PyTorch
    reads the source positions of the uncropped input) pad the positive sides first, then
    Slice the negative ones off; circular gets its sizes already cropped from F.pad.
    """
    x, pad, mode = _arguments(call, "input", "pad", "mode")
    k, ndim = len(pad) // 2, x.ndim
    dims = [ndim - 1 - j for j in range(k)]                # pad's pairs go from the last dim
    lo = {d: pad[2 * j] for j, d in enumerate(dims)}
    hi = {d: pad[2 * j + 1] for j, d in enumerate(dims)}
    name = b.value(x)
    # ONNX Runtime's Pad 'wrap' fails on a tensor with an empty dim (a crop to size 0):
    # the Slice + Concat form serves there too
    if mode == "circular" and (b.opset < 19 or 0 in x.shape):
        for d in dims:
            n, parts = x.shape[d], []
            if lo[d]:
                parts.append(b.node("Slice", [name, b.ints([n - lo[d]], "starts"), b.ints([n], "ends"),
                                              b.ints([d], "axes")])[0])
            parts.append(name)
            if hi[d]:
                parts.append(b.node("Slice", [name, b.ints([0], "starts"), b.ints([hi[d]], "ends"),
                                              b.ints([d], "axes")])[0])
            if len(parts) > 1:
                (name,) = b.node("Concat", parts, axis=d)
        return [name]
    onnx_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    grow = [max(lo.get(d, 0), 0) for d in range(ndim)] + [max(hi.get(d, 0), 0) for d in range(ndim)]
    if any(grow):
        (name,) = b.node("Pad", [name, b.ints(grow, "pads")], mode=onnx_mode)
    cut = [d for d in dims if lo[d] < 0 or hi[d] < 0]
    if cut:
        # Positions in the padded tensor: the kept range starts -lo in and ends -hi before the end.
        starts = [-min(lo[d], 0) for d in cut]
        ends = [min(hi[d], 0) or _BIG for d in cut]
        (name,) = b.node("Slice", [name, b.ints(starts, "starts"), b.ints(ends, "ends"),
                                   b.ints(cut, "axes")])
    return [name]


def prelu(b, call):
    """PRelu(x, slope): ``weight`` of C elements reshaped to (C, 1, ..., 1) to broadcast
    over dim 1 (ONNX broadcasts the slope from the right), one element as it is."""
    x, weight = _arguments(call, "input", "weight")
    slope = b.value(weight)
    if weight.data.size > 1:
        (slope,) = b.node("Reshape", [slope, b.ints([weight.data.size] + [1] * (x.ndim - 2))])
    return b.node("PRelu", [b.value(x), slope])


def mish(b, call):
    """Mish (opset 18 on); below, x·tanh(softplus(x)) as Softplus, Tanh, Mul."""
    (x,) = _arguments(call, "input")
    x = b.value(x)
    if b.opset >= 18:
        return b.node("Mish", [x])
    (y,) = b.node("Tanh", b.node("Softplus", [x]))
    return b.node("Mul", [x, y])


_RESIZE = {   # (mode, align_corners, antialias) -> Resize's attributes, each checked
    # against ONNX Runtime for every width 1..9 -> 1..20 (tests/onnx/test_export_new_ops.py)
    ("nearest", None, False): dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                                   nearest_mode="floor"),
    ("nearest-exact", None, False): dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                                         nearest_mode="round_prefer_ceil"),
    **{(m, ac, False): dict(mode="linear", coordinate_transformation_mode=ctm)
       for m in ("linear", "bilinear", "trilinear") for ac, ctm in ((False, "half_pixel"),
                                                                    (True, "align_corners"))},
    **{("bicubic", ac, False): dict(mode="cubic", cubic_coeff_a=-0.75, exclude_outside=0,
                                    coordinate_transformation_mode=ctm)
       for ac, ctm in ((False, "half_pixel"), (True, "align_corners"))},
    # PyTorch's antialiased filters: the triangle, and Keys' cubic with a = -0.5, both
    # widened by the scale when downsampling and renormalized over the taps inside the input.
    ("bilinear", False, True): dict(mode="linear", antialias=1, exclude_outside=1,
                                    coordinate_transformation_mode="half_pixel"),
    ("bicubic", False, True): dict(mode="cubic", cubic_coeff_a=-0.5, antialias=1, exclude_outside=1,
                                   coordinate_transformation_mode="half_pixel"),
}


def interpolate(b, call):
    """F.interpolate (recorded whole, see trace.py) as one ONNX node where one is exact:

    * Resize with the output ``sizes`` (N and C read from the input's shape, so the batch
      stays free) and the attributes of ``_RESIZE``: nearest = asymmetric + floor
      (x[⌊o·in/out⌋]), nearest-exact = half_pixel + round_prefer_ceil (x[⌊(o + ½)·in/out⌋]),
      linear modes and bicubic (a = -0.75, edge taps clamped) with half_pixel or
      align_corners; antialias from opset 18 (Resize's ``antialias``), align_corners=False.
    * mode 'area' with bins of one size (out divides in): AveragePool, kernel = stride = in/out.

    Resize's coordinates use in/out, PyTorch's 1/scale_factor when a scale_factor is given
    (recompute_scale_factor not True): the same only where out = in·scale_factor exactly.
    Everything else (such a scale_factor, uneven area bins, antialias below opset 18 or
    with align_corners=True, where ONNX Runtime's filter differs) returns None: the
    exporter then converts the recorded Resample ops (``ops.resample``), exact in every case.
    """
    x, scale_factor, mode, align_corners, recompute, antialias = _arguments(
        call, "input", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias")
    (y,) = call.outputs
    n_in, n_out = x.shape[2:], y.shape[2:]
    if align_corners is None and mode in ("linear", "bilinear", "trilinear", "bicubic"):
        align_corners = False
    if mode == "area":
        if any(n % m for n, m in zip(n_in, n_out)):
            return None
        k = [n // m for n, m in zip(n_in, n_out)]
        return b.node("AveragePool", [b.value(x)], kernel_shape=k, strides=k)
    if scale_factor is not None and not recompute:
        scales = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * len(n_in)
        if any(m != n * s for n, m, s in zip(n_in, n_out, scales)):
            return None
    attributes = _RESIZE.get((mode, align_corners, antialias))
    if attributes is None or (antialias and b.opset < 18):
        return None
    (shape,) = b.node("Shape", [b.value(x)])
    (batch_channels,) = b.node("Slice", [shape, b.ints([0], "starts"), b.ints([2], "ends")])
    (sizes,) = b.node("Concat", [batch_channels, b.ints(n_out, "sizes")], axis=0)
    return b.node("Resize", [b.value(x), "", "", sizes], **attributes)


def selu(b, call):
    """Selu with PyTorch's alpha and scale (``gamma`` in ONNX), one node instead of the
    ``scale · elu(x, alpha)`` that tinynet computes."""
    (x,) = _arguments(call, "input")
    return b.node("Selu", [b.value(x)], alpha=A.SELU_ALPHA, gamma=A.SELU_SCALE)


def layer_norm(b, call):
    """LayerNormalization (opset 17 on) over the trailing ``len(normalized_shape)`` dims,
    ``epsilon`` PyTorch's ``eps``; scale ones without ``weight``, no B without ``bias``.
    Below opset 17 None: the recorded arithmetic (means, Sub, Pow, Mul) instead."""
    x, shape, weight, bias, eps = _arguments(call, "input", "normalized_shape", "weight", "bias", "eps")
    if b.opset < 17:
        return None
    k = 1 if isinstance(shape, int) else len(shape)
    scale = b.value(weight) if weight is not None else \
        b.constant(np.ones(x.shape[x.ndim - k:], np.dtype(x.dtype)), "scale")
    return b.node("LayerNormalization", [b.value(x), scale, b.value(bias)], axis=-k, epsilon=float(eps))


FUNCTIONS = {
    A.prelu: prelu,
    A.mish: mish,
    A.selu: selu,
    Pd.pad_edges: pad_edges,
    I.interpolate: interpolate,
    N.layer_norm: layer_norm,
}
