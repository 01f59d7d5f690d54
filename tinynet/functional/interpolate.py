"""Upsampling and resizing: ``interpolate`` in modes 'nearest', 'nearest-exact', 'linear',
'bilinear', 'trilinear', 'bicubic' and 'area', with or without ``antialias``.

Resizing is separable: one resampling per spatial axis, each a sparse matrix A with one
(nearest), two (linear), four (cubic) or a window of (area, anti-aliased) non-zeros per
row (``tinynet/kernels/interpolate.py``). The
closed algebra, as for convolution::

    Resample(x)          = A x          backward: ResampleAdjoint(dy) = Aᵀ dy
    ResampleAdjoint(g)   = Aᵀ g         backward: Resample(dg)         = A dg

Bilinear interpolation of an (N, C, H, W) input is Resample along H then along W,
``Y = A_H X A_Wᵀ``; its backward is ``dX = A_Hᵀ dY A_W``, the adjoint (derived in
docs/kernels/interpolation.md). A is a constant of the graph, so every derivative order
is one of the two ops.
"""
from __future__ import annotations

from numbers import Real

from ..autograd import Function, anchor
from ..kernels import interpolate as K
from ..tensor import Tensor
from ._operands import check_tensor

__all__ = ["interpolate"]

MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
# Input dimensionality per mode, and the modes that interpolate (take align_corners).
NDIMS = {"nearest": (3, 4, 5), "nearest-exact": (3, 4, 5), "area": (3, 4, 5), "linear": (3,),
         "bilinear": (4,), "bicubic": (4,), "trilinear": (5,)}
INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")


class Resample(Function):
    """y = A x along ``axis`` (A given by its taps; the axis has size n before)."""

    def forward(self, x, *, taps, axis):
        self.taps, self.axis, self.n = taps, axis, x.shape[axis]
        return K.resample(x, taps, axis)

    def backward(self, g):
        return ResampleAdjoint.apply(g, taps=self.taps, axis=self.axis, n=self.n)


class ResampleAdjoint(Function):
    """dx = Aᵀ g along ``axis`` (back to size n)."""

    def forward(self, g, *, taps, axis, n):
        self.taps, self.axis = taps, axis
        return K.resample_adjoint(g, taps, axis, n)

    def backward(self, gg):
        return Resample.apply(gg, taps=self.taps, axis=self.axis)


def _per_axis(value, k: int, name: str, op: str) -> tuple:
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * k
    if len(items) != k:
        raise ValueError(f"{op}: {name} must be a number or a sequence of {k} (one per spatial "
                         f"dim), got {value!r}")
    return items


def _output_sizes(shape, size, scale_factor, recompute_scale_factor, op, mode):
    """(output sizes, scale factors used for the coordinates or None per axis). Mode
    'area' may give an empty axis (size 0), as PyTorch's adaptive average pooling does."""
    k, least = len(shape), 0 if mode == "area" else 1
    allowed = "non-negative" if least == 0 else "positive"
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size or scale_factor, got "
                         f"size={size!r}, scale_factor={scale_factor!r}")
    if size is not None:
        sizes = _per_axis(size, k, "size", op)
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, int) or s < least:
                raise ValueError(f"{op}: size must be {allowed} ints with mode {mode!r}, got "
                                 f"{size!r}")
        return tuple(sizes), (None,) * k
    if recompute_scale_factor not in (None, True, False):
        raise TypeError(f"{op}: recompute_scale_factor must be a bool or None, got "
                        f"{recompute_scale_factor!r}")
    scales = _per_axis(scale_factor, k, "scale_factor", op)
    for s in scales:
        if isinstance(s, bool) or not isinstance(s, Real) or not s > 0:
            raise ValueError(f"{op}: scale_factor must be positive numbers, got {scale_factor!r}")
    sizes = tuple(K.output_size(n, float(s)) for n, s in zip(shape, scales))
    if min(sizes) < least:
        raise ValueError(f"{op}: scale_factor {scale_factor!r} makes an empty output from "
                         f"spatial size {tuple(shape)} (output {sizes}); only mode 'area' "
                         f"allows one")
    used = (None,) * k if recompute_scale_factor else tuple(float(s) for s in scales)
    return sizes, used


def _keeps_identity(mode: str, ndim: int, antialias: bool) -> bool:
    """Whether PyTorch's forward copies an axis whose size a scale factor s != 1 keeps
    (m == n): the (bi/tri)linear, area and anti-aliased kernels and 2-D nearest do; 1-D and
    3-D nearest, nearest-exact and bicubic use the coordinates r = 1/s instead."""
    return (mode in ("linear", "bilinear", "trilinear", "area") or antialias
            or (mode == "nearest" and ndim == 4))


def _taps(mode, n, m, scale, align_corners, antialias, ndim, dtype, xp):
    """The taps of one axis's resampling matrix in ``mode`` (see kernels/interpolate.py)."""
    if m == 0:                  # an empty axis ('area' only) reads nothing: A is (0, n)
        return [(xp.zeros(0, dtype=xp.int64), None)]
    if antialias:
        return K.antialias_taps(n, m, align_corners, scale, mode == "bicubic", dtype, xp)
    if mode == "nearest":
        return K.nearest_taps(n, m, scale, xp, halving=ndim == 4)
    if mode == "nearest-exact":
        return K.nearest_exact_taps(n, m, scale, xp)
    if mode == "area":
        return K.area_taps(n, m, dtype, xp)
    if mode == "bicubic":
        return K.cubic_taps(n, m, align_corners, scale, dtype, xp)
    return K.linear_taps(n, m, align_corners, scale, dtype, xp)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resizes the spatial dims of (N, C, *spatial), PyTorch's ``interpolate``.

    Every mode is separable: one resampling matrix per spatial axis (its taps in
    ``tinynet/kernels/interpolate.py``, derived in docs/kernels/interpolation.md).

    Parameters
    ----------
    input : (N, C, W), (N, C, H, W) or (N, C, D, H, W) for 'nearest', 'nearest-exact' and
        'area'; (N, C, W) for 'linear'; (N, C, H, W) for 'bilinear' and 'bicubic';
        (N, C, D, H, W) for 'trilinear'.
    size : output spatial size (an int for every dim, or one per dim); or
    scale_factor : a multiplier (one, or one per dim); output size ⌊n · scale_factor⌋, and
        the coordinates use 1/scale_factor unless ``recompute_scale_factor=True`` (mode
        'area' uses the sizes only).
    mode : 'nearest' (copies x[⌊o · r⌋]), 'nearest-exact' (x[⌊(o + 0.5) · r⌋]), 'linear',
        'bilinear', 'trilinear' (two taps per axis), 'bicubic' (four taps per axis, Keys'
        kernel with a = -0.75, edges clamped) or 'area' (adaptive average pooling; an
        output size of 0 gives an empty output, as in PyTorch, with a zero input gradient).
    align_corners : interpolating modes only: True maps the corner pixels' centres onto
        each other, False (the default) the corners of the pixel grids.
    antialias : 'bilinear' and 'bicubic' only: when downsampling, widen the filter by the
        scale so that every input pixel contributes (PyTorch's rule).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> x = tn.tensor([[[[1.0, 3.0]]]])
    >>> F.interpolate(x, scale_factor=2, mode="nearest").numpy()[0, 0].tolist()
    [[1.0, 1.0, 3.0, 3.0], [1.0, 1.0, 3.0, 3.0]]
    >>> F.interpolate(x, size=(1, 3), mode="bilinear", align_corners=True).numpy()[0, 0].tolist()
    [[1.0, 2.0, 3.0]]
    >>> F.interpolate(tn.tensor([[[1.0, 3.0, 5.0, 7.0]]]), size=2, mode="area").numpy().tolist()
    [[[2.0, 6.0]]]
    """
    op = "interpolate"
    check_tensor(input, op, "input", floating=True)
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if input.ndim not in NDIMS[mode]:
        expected = " or ".join(f"{d}-D" for d in NDIMS[mode])
        raise ValueError(f"{op}: mode {mode!r} expects a {expected} input (N, C, *spatial), got "
                         f"shape {tuple(input.shape)}")
    if mode in INTERPOLATING:
        if align_corners is None:
            align_corners = False
        elif not isinstance(align_corners, bool):
            raise TypeError(f"{op}: align_corners must be a bool or None, got {align_corners!r}")
    elif align_corners is not None:
        raise ValueError(f"{op}: align_corners can only be set with the interpolating modes "
                         f"{', '.join(INTERPOLATING)} (got align_corners={align_corners!r} with "
                         f"mode={mode!r})")
    if not isinstance(antialias, bool):
        raise TypeError(f"{op}: antialias must be a bool, got {antialias!r}")
    if antialias and mode not in ("bilinear", "bicubic"):
        raise ValueError(f"{op}: antialias=True needs mode 'bilinear' or 'bicubic' (a 4-D input), "
                         f"got mode={mode!r}")
    spatial = tuple(input.shape[2:])
    if min(spatial) <= 0:
        raise ValueError(f"{op}: input has an empty spatial size {spatial}")
    sizes, scales = _output_sizes(spatial, size, scale_factor, recompute_scale_factor, op, mode)
    # 'area' is PyTorch's adaptive average pooling, whose backward reads the input: the
    # gradient then requires grad under create_graph (its second derivative is zero) --
    # except to a 1x1 output, which PyTorch computes as a mean
    start = anchor(input) if mode == "area" and any(m != 1 for m in sizes) else input
    out = start
    for a, (n, m, s) in enumerate(zip(spatial, sizes, scales)):
        if m == n and (s is None or s == 1.0 or _keeps_identity(mode, input.ndim, antialias)):
            continue                  # the identity along this axis
        taps = _taps(mode, n, m, s, align_corners, antialias, input.ndim, input.dtype, input.xp)
        out = Resample.apply(out, taps=taps, axis=2 + a)
    if out is start:                  # same size everywhere: a copy, as PyTorch returns
        out = Resample.apply(start, taps=K.nearest_taps(spatial[-1], spatial[-1], None, input.xp),
                             axis=input.ndim - 1)
    return out
