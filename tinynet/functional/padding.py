"""Edge padding: ``F.pad`` modes 'reflect', 'replicate' and 'circular' (PyTorch's semantics).

Each padded dim of size n gets ``lo`` entries before and ``hi`` after; output position
o ∈ [0, lo + n + hi) reads input position src(o - lo):

    replicate:  src(i) = clip(i, 0, n - 1)                           (needs n >= 1)
    reflect:    src(i) = |i|, then 2(n - 1) - that where it passes n - 1   (needs lo, hi < n)
    circular:   src(i) = i mod n                                  (needs 0 <= lo, hi <= n)

so padding is a gather along that dim, ``x[..., src, ...]``, and its backward is the
adjoint scatter-add (an edge value copied k times collects k gradients; in mode
'circular' the gradient of a wrapped-around copy adds into the entry at the other end).
Negative ``lo``/``hi`` in modes reflect and replicate use the same src, the range o - lo
simply starting (or ending) inside the input, as PyTorch does: ``(-1, 2)`` on
[0, 1, 2, 3, 4] reflects to [1, 2, 3, 4, 3, 2]. PyTorch's size rules for these two modes:
every dim but the batch dim non-empty, no padded dim cropped below 0, and not every padded
dim cropped to 0 (cropping one of two or three to 0 gives an empty output, whose input
gradient is zeros; PyTorch 2.13's 3-D reflect backward leaves that one uninitialised).
Mode 'circular' gets its negative sizes from ``F.pad``, which crops first (PyTorch
wraps around the cropped input). Both are
``getitem`` and ``IndexAdd``, so every derivative order follows. As in PyTorch, the last
1, 2 or 3 dims are padded, of a (C, *) or (N, C, *) input: ``len(pad) / 2 + 1`` or
``+ 2`` dims.
"""
from __future__ import annotations

from ..autograd import anchor
from ..tensor import Tensor
from .shape import getitem

__all__: list = []   # reached through F.pad(..., mode='reflect' | 'replicate')

MODES = ("reflect", "replicate", "circular")


def source_index(n: int, lo: int, hi: int, mode: str, xp):
    """Input positions (lo + n + hi,) read by each output position along one dim."""
    i = xp.arange(-lo, n + hi)
    if mode == "replicate":
        return xp.clip(i, 0, n - 1)
    if mode == "circular":
        return i % n
    i = xp.abs(i)
    return xp.where(i > n - 1, 2 * (n - 1) - i, i)


def pad_edges(input: Tensor, pad: tuple, mode: str) -> Tensor:
    """``pad`` (validated as even-length ints by ``F.pad``; non-negative for 'circular',
    which ``F.pad`` crops first) in ``mode``."""
    op = "pad"
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be 'constant', 'reflect', 'replicate' or 'circular', "
                         f"got {mode!r}")
    k = len(pad) // 2
    if k not in (1, 2, 3) or input.ndim not in (k + 1, k + 2):
        raise ValueError(f"{op}: mode {mode!r} pads the last 1, 2 or 3 dims of a (C, *) or "
                         f"(N, C, *) input, so {len(pad)} padding sizes need a {k + 1}-D or "
                         f"{k + 2}-D input; got shape {tuple(input.shape)}")
    if mode != "circular":
        _check_edge_sizes(op, input, pad, mode, k)
    # PyTorch's backward of reflect and replicate reads the input: second order gives zeros,
    # not None; its circular pad is slices and a concatenation, whose backward does not.
    out = input if mode == "circular" else anchor(input)
    for j in range(k):
        dim = input.ndim - 1 - j
        lo, hi = pad[2 * j], pad[2 * j + 1]
        if lo == 0 and hi == 0:
            continue
        n = input.shape[dim]
        if mode == "circular" and (lo > n or hi > n):
            raise ValueError(f"{op}: circular padding ({lo}, {hi}) of dim {dim} must be at "
                             f"most its size {n} after cropping, or it wraps around more "
                             f"than once (input shape {tuple(input.shape)})")
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ValueError(f"{op}: reflect padding ({lo}, {hi}) of dim {dim} must be less than "
                             f"its size {n} (input shape {tuple(input.shape)})")
        index = (slice(None),) * dim + (source_index(n, lo, hi, mode, input.xp),)
        out = getitem(out, index)
    return out


def _check_edge_sizes(op, input, pad, mode, k):
    """PyTorch's size rules for reflect and replicate: every dim but the batch dim non-empty
    (an edge to copy), no padded dim cropped below 0 entries, and not all of them to 0 (one
    cropped to 0 while another keeps entries gives an empty output, as in PyTorch)."""
    batched = input.ndim == k + 2
    if 0 in input.shape[1 if batched else 0:]:
        raise ValueError(f"{op}: mode {mode!r} needs every dim but the batch dim non-empty "
                         f"(a (C, *) or (N, C, *) input with N >= 0 and the others >= 1), got "
                         f"shape {tuple(input.shape)}")
    sizes = {}
    for j in range(k):
        dim = input.ndim - 1 - j
        lo, hi = pad[2 * j], pad[2 * j + 1]
        sizes[dim] = lo + input.shape[dim] + hi
        if sizes[dim] < 0:
            raise ValueError(f"{op}: padding ({lo}, {hi}) of dim {dim} of size "
                             f"{input.shape[dim]} leaves {sizes[dim]} entries; it needs at "
                             f"least 0 (input shape {tuple(input.shape)})")
    if not any(sizes.values()):
        raise ValueError(f"{op}: padding {tuple(pad)} crops every padded dim (dims "
                         f"{', '.join(map(str, sorted(sizes)))}) to 0 entries; mode {mode!r} "
                         f"needs at least one padded dim non-empty (input shape "
                         f"{tuple(input.shape)})")
