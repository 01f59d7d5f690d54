"""2-D convolution and transposed convolution, with a closed algebra of gradients.

Shapes (PyTorch's; an unbatched (C_in, H, W) input is also accepted and gives an
unbatched output): ``conv2d`` x (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw)
-> (N, C_out, Ho, Wo); ``conv_transpose2d`` x (N, C_in, H, W), weight
(C_in, C_out/groups, kh, kw) -> (N, C_out, Ho, Wo). Sizes: see
:mod:`tinynet.kernels.im2col`.

Forward, as matrices (per group g, batch folded into the columns)::

    conv2d:            Y = W @ im2col(x)                  (+ bias)
    conv_transpose2d:  y = col2im(Wᵀ @ X)                 (+ bias)
    conv2d_weight:    dW = dY @ im2col(x)ᵀ

Since col2im is the adjoint of im2col, the three ops are each other's derivatives:

    conv2d(x, W):           dx = conv_transpose2d(dy, W)     dW = conv2d_weight(x, dy)
    conv_transpose2d(x, W): dx = conv2d(dy, W)               dW = conv2d_weight(dy, x)
    conv2d_weight(x, dy):   dx = conv_transpose2d(dy, gW)    d(dy) = conv2d(x, gW)

Every backward is written with these ops, so derivatives of any order exist. The
internal ops take the spatial output size explicitly: a transposed conv with
``output_padding`` (or a conv whose last rows fit no window) has an input gradient one or
more rows shorter than the "natural" size, and the explicit size crops it.

Speed (see docs/kernels/convolution.md): each op picks one path by the ``_use_*`` rules
below. 1x1 kernels: one product per image in NCHW (:mod:`tinynet.kernels.pointwise`).
3x3 stride-1 convs with many channels and tiles (more tiles on a CPU without AVX-512):
Winograd F(2x2, 3x3) (:mod:`tinynet.kernels.winograd`, 2.25x fewer multiply-adds;
forward, input and weight gradient). Other stride-1 convs with >= 16 channels on large
maps: row strips (:mod:`tinynet.kernels.row_strips`); with few input channels or a
batch of one or two: flat rows (:mod:`tinynet.kernels.flat_rows`). Strided convs on
short rows: the phase grid (:mod:`tinynet.kernels.phases`); strided transposed convs:
sub-pixel (:mod:`tinynet.kernels.subpixel`). Otherwise one im2col GEMM per group over
the batch (or a batch chunk, bounded by :data:`tinynet.kernels.im2col.workspace_limit`),
the bias added as the result is copied back to NCHW (:func:`tinynet.backend.copy_add`: one
fused pass, or a second contiguous pass after a BLAS transposing copy).
"""
from __future__ import annotations

from .. import backend, cblas
from ..autograd import Function, depends_on, is_grad_enabled
from ..kernels import im2col as K
from ..kernels import flat_rows as _flat_rows
from ..kernels import phases as _phases
from ..kernels import pointwise as _pointwise
from ..kernels import row_strips as RS
from ..kernels import subpixel as _subpixel
from ..kernels import winograd as _winograd
from ..tensor import Tensor
from ._operands import check_same_device, check_tensor
from .reduction import sum as _sum
from .shape import pad as _pad, squeeze as _squeeze, unsqueeze as _unsqueeze

__all__ = ["conv2d", "conv_transpose2d", "conv2d_weight", "conv1d"]


# --------------------------------------------------------------------------- array code
def _groups_matmul(a, b, groups):
    """``a`` (G·M, K) times ``b`` (G·K, L) block by block -> (G·M, L); a plain GEMM when G == 1."""
    if groups == 1:
        return backend.matmul(a, b)     # a @ b, on the pool's threads if so configured
    M, L = a.shape[0] // groups, b.shape[1]
    out = a.reshape(groups, M, -1) @ b.reshape(groups, -1, L)
    return out.reshape(groups * M, L)


def _groups_matmul_bt(a, b, groups):
    """``a`` (G·M, P) times ``b`` (G·K, P)ᵀ block by block -> (G, M, K); a plain GEMM when
    G == 1 (the weight gradient ``dY @ colᵀ`` per group)."""
    if groups == 1:
        return backend.matmul(a, b.T)[None]
    P = a.shape[1]
    return a.reshape(groups, -1, P) @ b.reshape(groups, -1, P).transpose(0, 2, 1)


#: Smallest product that :func:`_to_nchw` hands to the compiled pass: measured against the
#: NumPy copy (alternated, minimum of 31 calls, float32, with bias), 0.36-0.86x the time
#: from 16K to 800K values at 1 and 2 threads, 0.8-1.3x at 4K, 1.2-2.1x at 2K and below
#: (the kernel's fixed cost).
_COMPILED_NCHW_MIN_SIZE = 16384


def _to_nchw(y, out, bias):
    """Writes ``y`` (C, n, Ho, Wo) (any strides) into ``out`` (n, C, Ho, Wo), adding
    ``bias`` (:func:`tinynet.backend.copy_add`). A GEMM product (``y`` C-contiguous, or
    batch-last: ``y.transpose(0, 2, 3, 1)`` C-contiguous) into a C-contiguous ``out`` of
    float32/64 of at least :data:`_COMPILED_NCHW_MIN_SIZE` values goes through one
    compiled pass where Numba is on (:func:`tinynet.kernels.compiled.im2col.to_nchw`)."""
    if backend.use_compiled(y, out) and y.size >= _COMPILED_NCHW_MIN_SIZE and out.flags.c_contiguous:
        rows = y.transpose(0, 2, 3, 1)
        if y.flags.c_contiguous or rows.flags.c_contiguous:
            from ..kernels.compiled import im2col as _compiled
            xp = backend.get_array_module(y)
            b = xp.empty(0, y.dtype) if bias is None else backend.ascontiguous(bias.astype(y.dtype, copy=False))
            fn, y = (_compiled.to_nchw, y) if y.flags.c_contiguous else (_compiled.to_nchw_batch_last, rows)
            backend.parallel_for(y.shape[0], lambda lo, hi: fn(y, out, b, bias is not None, lo, hi),
                                 nbytes=2 * out.nbytes, like=out)
            return
    y = y.transpose(1, 0, 2, 3)
    if bias is None:
        backend.copy(out, y)
    else:
        backend.copy_add(out, y, bias.reshape(-1, 1, 1))


def _use_batch_last(batch, width, col_rows, channels):
    """Batch-innermost im2col columns (Ho, Wo, N) pay off when rows of the map are shorter
    than the batch: NumPy's strided copies then run over rows of N elements instead of Wo
    (SimpleCNN's 4x4 maps, ResNet's last stages). The price is a costlier transposing copy
    of the ``channels``-row GEMM operand (output or output gradient), so the column
    buffer (``col_rows`` = C·kh·kw rows) must be the larger one (measured)."""
    return batch > width and col_rows > channels


#: Largest grid per output pixel (``(H + 2·ph)·W / (Ho·Wo)``) for which auto mode takes
#: row strips: 1.07 admits maps of 29 rows and more with a 3x3 "same" kernel (32x32: 34
#: grid rows for 32, 1.06). There they beat im2col at every size measured, 0.65-0.88x the time
#: from N1 16->16 to N2 64->64 and equal on larger ones; on 16x16 maps (1.125) they
#: measured 1.0-1.2x, on 8x8 maps (1.25) up to 1.75x.
_ROW_STRIP_MAX_GRID = 1.07


def _use_row_strips(x_shape, w_shape, stride, padding, dilation, groups, output_size):
    """Row strips (:mod:`tinynet.kernels.row_strips`) where they apply (stride 1, padded no
    more than "same" along the width) with one group and >= 16 input and output channels,
    where the grid's zero rows waste little (:data:`_ROW_STRIP_MAX_GRID`)."""
    N, C, H, W = x_shape
    C_out, _, kh, kw = w_shape
    if (groups != 1 or min(C, C_out) < 16 or kh * kw == 1
            or not RS.applies(x_shape, (kh, kw), stride, padding, dilation, output_size)):
        return False
    Ho, Wo = output_size
    return (H + 2 * padding[0]) * W <= _ROW_STRIP_MAX_GRID * Ho * Wo


#: Fewest output tiles for which auto mode takes Winograd F(2x2, 3x3) (see
#: :func:`_use_winograd`): on a CPU with AVX-512 (and on the GPU), and on one without.
_WINOGRAD_MIN_TILES = 256
_WINOGRAD_MIN_TILES_AVX2 = 512
#: Below 128 channels (see :func:`_use_winograd`): the smallest output map (pixels) and
#: the fewest values (images per thread x channels) in the transforms' contiguous runs.
_WINOGRAD_MIN_MAP = 32 * 32
_WINOGRAD_MIN_RUN = 128
#: Fewest output tiles with 128+ channels on that CPU with the compiled transforms (and
#: with 32+ channels on an AVX2 CPU with them).
_WINOGRAD_MIN_TILES_COMPILED = 128
#: Largest output map (pixels) for Winograd from 32 channels on an AVX2 CPU with the
#: compiled transforms: on 64x64 maps it lost (see :func:`_use_winograd`).
_WINOGRAD_MAX_MAP_AVX2 = 32 * 32
#: There also, the shortest output side, and the fewest channels x that side, for
#: Winograd: its edge tiles and transforms outweigh the GEMMs' savings on narrow maps
#: with few channels (see :func:`_use_winograd`).
_WINOGRAD_MIN_SIDE_AVX2 = 8
_WINOGRAD_MIN_CHANNEL_SIDE_AVX2 = 1024
#: Where F(4x4, 3x3) applies, on AVX-512 BLAS with the compiled transforms, all three
#: (forward, input gradient, weight gradient) take Winograd from these input and output
#: channels; with fewer than :data:`_WINOGRAD_F4_FEW_CHANNELS` input channels only on
#: output maps of :data:`_WINOGRAD_F4_FEW_MIN_MAP` pixels and more (the weight gradient:
#: :data:`_WINOGRAD_F4_FEW_MIN_MAP_WEIGHT`). See :func:`_use_winograd`.
_WINOGRAD_F4_MIN_IN = 8
_WINOGRAD_F4_MIN_OUT = 4
_WINOGRAD_F4_FEW_CHANNELS = 32
_WINOGRAD_F4_FEW_MIN_MAP = 48 * 48
_WINOGRAD_F4_FEW_MIN_MAP_WEIGHT = 96 * 96
#: Smallest output map (pixels) for the forward and input gradient on Winograd from 32
#: channels where the BLAS runs AVX-512 kernels and the transforms are compiled, given
#: 128+ input channels (below that, :data:`_WINOGRAD_MIN_MAP`): on 8x8 maps it lost,
#: and on 16x16 with 64 input channels (see :func:`_use_winograd`).
_WINOGRAD_MIN_MAP_AVX512 = 16 * 16


def _use_winograd(x_shape, w_shape, stride, padding, dilation, groups, output_size, on_cpu=True,
                  weight_grad=False):
    """Winograd F(2x2, 3x3) (:mod:`tinynet.kernels.winograd`) applies to 3x3, stride-1,
    dilation-1, single-group convs with their natural output size. In "auto" mode it is
    chosen where it measured faster than im2col and row strips: many channels on both
    sides (its 2.25x fewer multiply-adds then outweigh its 8x-the-input memory passes)
    and enough output tiles (its 16 GEMMs are P = N·⌈Ho/2⌉·⌈Wo/2⌉ rows tall):
    :data:`_WINOGRAD_MIN_TILES` with AVX-512 or on the GPU, :data:`_WINOGRAD_MIN_TILES_AVX2`
    on a CPU without. Measured against im2col / row strips, 2 threads, its channels-last
    transforms on every thread:

    - 2-core AVX-512 EPYC: 0.68-0.71x on ResNet-18's N16 128->128 16x16 (1024 tiles) and
      0.82x on N16 256->256 8x8 (256 tiles); 1.5x on N16 512->512 4x4 (64 tiles), 1.2x on
      the U-Net's N2 128-channel 16x16 (128 tiles), 1.04x on N16 64->64 32x32. The
      weight gradient (:func:`tinynet.kernels.winograd.conv2d_weight_winograd`) takes the
      same rule: 0.73-0.75x on the two ResNet shapes, 1.06-1.52x on the others.
    - 2-core AVX2-only EPYC (Zen 3), forward / weight gradient: N16 128->128 16x16
      0.69-0.87x / 0.71-0.87x, N32 256->256 8x8 (512 tiles) 0.90x / 0.79x, N8 128->128
      16x16 (512) 1.04x / 0.90x; from 256 tiles down it lost or tied: N16 256->256 8x8
      0.93-0.95x / 1.06-1.19x, N4 256->256 16x16 1.03x / 0.97x, N16 512->512 4x4 1.6x /
      2.7x, N2 128->128 16x16 1.7x / 2.0x.
    - 2-core AVX-512 Zen 5 whose OpenBLAS runs its AVX2 kernels (``OPENBLAS_CORETYPE=Haswell``):
      the AVX2 rule made the ResNet-18 step 1.064x slower (5 of 30 calls faster), and
      Winograd from 64 channels 1.02x. The rule asks the CPU (NumPy's loops, which run
      the transforms), not :func:`tinynet.backend.blas_has_avx512`.
    - The same guest once the transposing copies around the transforms ran on BLAS
      (:func:`tinynet.backend.copy`; over a quarter of the forward's time had been
      NumPy's copies into and out of the channels-last grid), Winograd against the
      default path, forward / input gradient / weight gradient: N16 64->64 32x32 0.83
      / 0.84 / 0.77x, N8 0.63 / 0.63 / 0.62x, N4 0.70 / 0.68 / 0.71x, N8 64->64 56x56
      0.90 / 0.87 / 0.90x, N16 32->32 32x32 0.72 / 0.72 / 0.73x, N8 64->128 32x32 0.59
      / 0.81 / 0.60x; it lost with one image per thread (N2 64->64 32x32 1.27 / 1.14 /
      1.30x, N2 32->32 64x64 1.46-1.56x: runs of C values), tied on 16x16 maps (N16
      64->64 1.00 / 0.91 / 1.07x), and lost with 16 channels (N4 16->16 224x224
      2.2-2.5x). With the variables unset (OpenBLAS's SkylakeX kernels, GEMMs ~1.8x
      faster) the same shapes lost: N16 64->64 32x32 1.06 / 1.02 / 1.12x, N8 64->64
      56x56 1.36 / 1.25 / 1.19x, N16 32->32 32x32 1.08 / 1.02 / 0.99x (N4 64->64 32x32
      0.93 / 0.97 / 0.92x). Hence, below 128 channels: at least 32 of them, maps of at
      least 32x32 and images per thread x channels >= 128, on an AVX-512 CPU whose
      BLAS has AVX2 kernels (:func:`tinynet.backend.blas_has_avx512` False) and makes
      the transposes; the ResNet-18 step 0.938x (19 of 20 pairs).
    - The same guest with the compiled transforms (Numba, :func:`tinynet.backend.use_compiled`;
      docs/kernels/convolution.md, "Compiled transforms"), thread time on one thread,
      medians of 5, fwd / fwd+bwd against the default path: N8 64->64 56x56 0.69 /
      0.77x, N16 64->64 32x32 0.75 / 0.76x, N16 128->128 16x16 0.62 / 0.63x, and where
      the NumPy transforms lost or were not taken: N2 64->64 32x32 0.79 / 0.75x (one
      image per thread: the compiled kernels read NCHW, no channels-last runs), N2
      128->128 16x16 (128 tiles) 0.76 / 0.91x, N2 32->32 64x64 1.00 / 0.96x; it still
      lost on N2 256->256 8x8 (32 tiles) 1.16 / 1.12x and tied on N16 512->512 4x4 (64
      tiles) 0.92 / 1.03x and N2 16->16 128x128 1.03 / 1.16x. Hence with them: 128+
      channels from :data:`_WINOGRAD_MIN_TILES_COMPILED` tiles, 32-127 channels on
      32x32 maps and more whatever the batch.
    - 2-core AVX2-only EPYC (Zen 3) with the compiled transforms (twenty-second session;
      forward + backward through ``F.conv2d``, mode "always" against "auto", alternated,
      medians of 12, two runs where two are given): wins on maps of 32x32 and less, N2
      32->64 32x32 0.81 / 0.90x, N2 64->64 32x32 0.82 / 0.88x, N2 128->64 32x32 0.84 /
      0.86x, N2 256->128 16x16 (128 tiles) 0.88 / 0.88x, N16 64->128 16x16 0.79x, N16
      256->256 8x8 (256 tiles) 0.77x, N16 64->64 32x32 1.02x; losses on 64x64 maps (N2
      32->32 1.08 / 1.16x, N2 64->32 1.10 / 1.10x), with 16 channels (N2 16->16 128x128
      1.49x, N2 16->32 64x64 1.19x) and with few tiles (N16 512->512 4x4, 64 tiles,
      1.25x; N2 256->256 8x8, 32 tiles, 1.40x). Hence on an AVX2 CPU with them: 32+
      channels on maps of at most :data:`_WINOGRAD_MAX_MAP_AVX2` pixels from
      :data:`_WINOGRAD_MIN_TILES_COMPILED` tiles.
    - The same guest (twenty-fourth session; ``_conv2d_array`` and
      ``_conv2d_weight_array``, mode "always" against "never", alternated, medians of
      12-100), forward / weight gradient, on the batches of 16-64 that reach 128 tiles on
      small maps: 4x4 maps lost or tied at every width (N64 32->32 1.98 / 3.45-4.26x, N32
      64->64 1.75 / 3.19-3.58x, N16 128->128 1.42 / 2.56-2.69x, N64 256->256 0.96 /
      1.25x, N64 512->512 0.86 / 1.05x, N32 512->512 0.92 / 1.22x); 8x8 maps lost
      below 128 channels (N64 32->32 1.30-1.43 / 1.73-1.90x, N32 64->64 1.20 / 1.43-1.63x,
      N16 64->128 1.14 / 1.45x) and won or tied from 128 (N32 128->128 0.89 / 1.11x, N64
      0.89 / 1.01x, N16 256->256 0.76-0.81 / 1.00x, N64 0.68 / 0.80x); 16x16 maps lost
      with 32 channels (N16 1.07 / 1.40x, N32 1.11 / 1.17x, N64 32->64 1.22 / 1.09x) and
      won from 64 (N16 64->64 0.89-0.94 / 0.97-1.05x, N16 128->128 0.73 / 0.84x). Hence
      there also: output sides of at least :data:`_WINOGRAD_MIN_SIDE_AVX2` and channels x
      side >= :data:`_WINOGRAD_MIN_CHANNEL_SIDE_AVX2`, which every shape of the U-Net's
      and ResNet-18's (N16) Winograd layers meets.
    - 2-core Intel Xeon with AVX-512 and AMX (twenty-eighth session; OpenBLAS's SkylakeX
      kernels, 406 GFLOP/s on square products) with the compiled transforms, mode
      "always" against "auto" (im2col / row strips / flat rows there), alternated, medians
      of 15, forward / input gradient / weight gradient: from 32 channels on maps of
      16x16 and more Winograd won the forward and input gradient, N2 (the U-Net's
      levels) 64->64 32x32 0.85 / 0.82x, 128->64 32x32 0.71 / 0.76x, 64->32 64x64 0.83 /
      0.93x, 256->128 16x16 0.91 / 0.78x, 128->128 16x16 0.96 / 0.81x, 32->64 32x32 0.94
      / 0.93x, 64->128 16x16 1.07 / 0.81x, 32->32 64x64 0.97 / 0.98x; N16 64->64 32x32
      (ResNet-18's first stage) 0.77 / 0.78x, N8 64->64 56x56 0.81 / 0.83x; it lost on
      8x8 maps (N2 128->256 1.82 / 0.99x, 256->256 1.57 / 1.00x), on 16x16 with 64 input
      channels (the 64->128 forward 1.07x, 1.12x in a second run; its input gradient, a
      128->64 conv, won) and with 16 channels on one side (N2 16->32 64x64 1.24 / 0.98x,
      32->16 128x128 0.96 / 1.24x); the weight gradient lost on all of these shapes
      (1.10-3.50x; N16 64->64 32x32 0.98x). Hence there, for the forward and the input
      gradient only: 32+ channels on maps of :data:`_WINOGRAD_MIN_MAP` pixels and more,
      or of :data:`_WINOGRAD_MIN_MAP_AVX512` with 128+ input channels, whatever the
      tiles; the weight gradient (``weight_grad``) keeps the rule below.
    - The same guest type (thirtieth session), with the weight gradient's native job,
      ``conv2d_weight_winograd`` against the route otherwise taken (row strips, image by
      image, flat rows), alternated, best of two medians of 20: 64+ channels on maps of
      56x56 and more won or tied (N8 64->64 56x56 0.91x, N2 64->128 56x56 0.81x, N2
      64->64 128x128 0.96x, N8 128->128 56x56 0.99x, N4 / N2 64->64 64x64 0.99 / 1.01x);
      on smaller maps or with fewer channels it mostly lost (N2 32->32 64x64 1.27x, 16->16
      128x128 1.65x, 256->256 8x8 1.77x, N4 32->32 112x112 1.09x; N16 64->64 32x32 1.01x;
      N2 16->32 64x64 won, 0.65x). Hence, for the weight gradient there: 64+ channels
      on maps of 56x56 and more (until the next session's F(4x4, 3x3) rule, which
      covers all of them).
    - The same guest type (thirty-first session), with F(4x4, 3x3) where it applies
      (:func:`tinynet.kernels.winograd.default_tile`: 8x8 maps and more, 128+ tiles of
      4x4), the weight gradient against the route otherwise taken, medians of 7: N16
      64->64 32x32 0.74x, N16 128->128 16x16 0.90x, N8 64->64 56x56 0.69x, N2 32->32
      64x64 0.83x, 64->64 32x32 0.90x, 64->32 64x64 0.80x, 128->64 32x32 0.65x, 32->16
      64x64 0.62x. Once its output transform ran a tile row at a time (0.26x the time on
      128x128 maps), F(4x4, 3x3) also beat the routes taken with few channels (row
      strips, flat rows, image by image), forward / input gradient / weight gradient: N4
      16->16 224x224 (conv4) 0.70 / 0.75 / 0.99x, N2 16->16 128x128 0.81 / 0.80 / 1.03x,
      16->32 64x64 0.62-0.71 / 0.95 / 0.85-0.97x, 32->16 128x128 0.98 / 0.65 / 1.00x,
      16->8 128x128 0.48 / 0.65 / 0.72x, 12->12 128x128 0.52 / 0.55 / 0.74x, 8->16 128x128
      0.63 / 0.39 / 0.91x, N4 8->8 224x224 0.42 / 0.43 / 0.88x, N8 16->16 56x56 0.71 / 0.69
      / 0.82x, N2 8->8 64x64 0.83 / 0.89 / 1.56x; it lost on 32x32 maps with fewer than 32
      input channels (N8 16->8 32x32 0.87 / 1.22 / 1.37x) and with 3 input channels (N32
      3->16 32x32 2.3-2.7x). Hence, for all three there, wherever F(4x4, 3x3) applies:
      :data:`_WINOGRAD_F4_MIN_IN` input and :data:`_WINOGRAD_F4_MIN_OUT` output channels,
      and below :data:`_WINOGRAD_F4_FEW_CHANNELS` input channels, maps of
      :data:`_WINOGRAD_F4_FEW_MIN_MAP` pixels and more (the weight gradient
      :data:`_WINOGRAD_F4_FEW_MIN_MAP_WEIGHT`). The U-Net step from 8 input channels
      against from 32: 0.986x (11 of 12 pairs).
    """
    mode = _winograd.get_winograd_mode()
    if mode == "never" or w_shape[2:] != (3, 3) or stride != (1, 1) or dilation != (1, 1) or groups != 1:
        return False
    N, C, H, W = x_shape
    Ho, Wo = H + 2 * padding[0] - 2, W + 2 * padding[1] - 2
    if (Ho, Wo) != tuple(output_size) or min(Ho, Wo) <= 0:
        return False
    if mode == "always":
        return True
    # the channels and map F(4x4)'s rule asks for (it also asks for the CPU, BLAS and
    # tiles); every other rule needs 32 channels on both sides, which meet them too
    f4_channels = (C >= _WINOGRAD_F4_MIN_IN and w_shape[0] >= _WINOGRAD_F4_MIN_OUT and (
        C >= _WINOGRAD_F4_FEW_CHANNELS
        or Ho * Wo >= (_WINOGRAD_F4_FEW_MIN_MAP_WEIGHT if weight_grad else _WINOGRAD_F4_FEW_MIN_MAP)))
    if not f4_channels:
        # no need to ask about the CPU and BLAS (a conv's forward and backward ask here up
        # to three times; SimpleCNN's 1->16 and 16->32 convolutions 7 µs a call inside its
        # training step)
        return False
    channels = min(C, w_shape[0])
    tiles = N * (-(-Ho // 2)) * (-(-Wo // 2))
    avx2_only = on_cpu and not backend.cpu_has_avx512()
    # an AVX-512 CPU whose BLAS runs AVX2 kernels (its GEMMs half as fast, so the flops
    # saved are worth twice as much) and makes the transposing copies (blas_transposes)
    slow_blas = (on_cpu and not avx2_only and not backend.blas_has_avx512()
                 and backend.blas_transposes())
    # compiled transforms (tinynet.kernels.compiled.winograd): NCHW in and out, no
    # channels-last runs, and cheaper; the NumPy arrays' dtype is checked by the kernel
    jit = backend.use_compiled()
    compiled = slow_blas and jit
    if (not weight_grad and on_cpu and jit and not avx2_only and backend.blas_has_avx512()
            and channels >= 32
            and Ho * Wo >= (_WINOGRAD_MIN_MAP if C < 128 else _WINOGRAD_MIN_MAP_AVX512)):
        return True                 # AVX-512 GEMMs and compiled transforms: fwd / input grad
    if (on_cpu and jit and not avx2_only and backend.blas_has_avx512() and f4_channels
            and _winograd.default_tile(x_shape, padding) == 4):
        return True                 # ... and all three where F(4x4) applies
    if avx2_only and jit:           # an AVX2 CPU with the compiled transforms
        side = min(Ho, Wo)
        if side < _WINOGRAD_MIN_SIDE_AVX2 or channels * side < _WINOGRAD_MIN_CHANNEL_SIDE_AVX2:
            return False            # narrow maps with few channels, whatever the tiles
        if channels >= 32 and Ho * Wo <= _WINOGRAD_MAX_MAP_AVX2 and tiles >= _WINOGRAD_MIN_TILES_COMPILED:
            return True
    if channels >= 128:
        if compiled:
            return tiles >= _WINOGRAD_MIN_TILES_COMPILED
        return tiles >= (_WINOGRAD_MIN_TILES_AVX2 if avx2_only else _WINOGRAD_MIN_TILES)
    # 32-127 channels, with slow_blas: on maps of 32x32 and more, with groups of images
    # wide enough that the NumPy transforms' contiguous runs (images x channels) reach 128
    per_thread = min(_winograd._BLOCK_IMAGES, -(-N // backend.get_num_threads()))
    return (slow_blas and channels >= 32 and Ho * Wo >= _WINOGRAD_MIN_MAP
            and (compiled or per_thread * channels >= _WINOGRAD_MIN_RUN))


def _use_winograd_weight_grad(x_shape, w_shape, stride, padding, dilation, groups, output_size,
                              on_cpu=True):
    """:func:`_use_winograd` for the weight gradient, except for a batch of at most
    :data:`_FLAT_ROWS_MAX_BATCH` whose flat-row weight gradient applies (C_out <= H·W) and
    whose input has no more channels than the output, on an AVX2 CPU with the compiled
    transforms: there the next route measured faster (row strips on maps of 29+ rows,
    which come first, flat rows on smaller ones). Twenty-fifth session, 2-core Zen 3
    guest, ``_conv2d_weight_array`` with Winograd against without (mode "always" against
    "never", alternated, medians of 300 calls), float32, the U-Net's N2 weight
    gradients: 32->64 32x32 1.53x and 64->64 32x32 1.04x (against row strips), 64->128
    16x16 2.02x and 128->128 16x16 1.11x (against flat rows), now the other route;
    256->128 16x16 0.95x and 128->64 32x32 0.89x, still Winograd; 32->32 32x32 2.16x. From
    N4 the other route is im2col and Winograd mostly wins (N8 32->64 and 64->64 32x32 0.72
    / 0.67x, N8 128->128 16x16 0.90x; N4 mixed: 64->64 32x32 0.67x, 32->64 1.09x, 64->128
    16x16 1.21x), unchanged."""
    if not _use_winograd(x_shape, w_shape, stride, padding, dilation, groups, output_size, on_cpu,
                         weight_grad=True):
        return False
    N, C, H, W = x_shape
    flat_rows_win = (on_cpu and not backend.cpu_has_avx512() and backend.use_compiled()
                     and _winograd.get_winograd_mode() == "auto" and C <= w_shape[0] <= H * W
                     and _use_flat_rows(x_shape, w_shape, stride, padding, dilation, groups, output_size))
    return not flat_rows_win


def _use_phases(x_shape, w_shape, stride, padding, dilation, groups, output_size, gather=True):
    """The phase grid (:mod:`tinynet.kernels.phases`) turns im2col's strided copies (one
    per kernel offset and output row) into contiguous ones (one per kernel offset and
    channel), at the price of GEMM columns for the grid's spare rows and columns.
    Shapes are the conv's (for a transposed conv: its output as ``x_shape``, its weight,
    its input's size as ``output_size``). Auto: strided convs with short output rows
    (<= 32, where the per-row copy cost shows) and at most 128 output channels (more,
    and the GEMM dominates so that the spare columns cost more than the copies save).
    Gathering the columns (``gather``: conv2d and its weight gradient; not col2im's
    scatter, the input gradient) also needs rows that im2col would copy slowly: output
    rows of at most :data:`_PHASE_MAX_ROW` values, or a batch longer than a row (where
    im2col goes batch-innermost, :func:`_use_batch_last`). Measured, see the docs."""
    mode = _phases.get_phase_mode()
    if mode == "never" or K._is_tiling(tuple(w_shape[2:]), stride, padding, dilation):
        return False
    if mode == "always":
        return True
    if stride == (1, 1) or output_size[1] > 32 or w_shape[0] > 128:
        return False
    return not gather or output_size[1] <= _PHASE_MAX_ROW or x_shape[0] > output_size[1]


#: Longest output row for which conv2d and its weight gradient take the phase grid
#: whatever the batch (:func:`_use_phases`): im2col's copies of rows of 16 values measured
#: faster than the grid's spare GEMM columns (N8-N16, 16-64 channels on 32x32 inputs:
#: phases 1.1-1.3x slower, ResNet-18's 64->128 stage 1.2x), of 8 values slower (0.6-0.9x).
_PHASE_MAX_ROW = 8


def _use_pointwise(w_shape, padding, groups):
    """1x1 kernels without padding, one group: a batched product per image in NCHW
    (:mod:`tinynet.kernels.pointwise`), no column matrix, any stride."""
    return tuple(w_shape[2:]) == (1, 1) and tuple(padding) == (0, 0) and groups == 1


#: Smallest output map (pixels) for which :func:`_use_image_columns` takes the per-image
#: route.
_IMAGE_COLUMNS_MIN_PIXELS = 196


def _use_image_columns(x_shape, w_shape, groups, output_size):
    """im2col's convolutions (the ones no other route takes) image by image as a native
    job (:func:`_native_image_columns`): one group, a batch at least as long as a row
    (else im2col goes batch-innermost, :func:`_use_batch_last`), output maps of at least
    :data:`_IMAGE_COLUMNS_MIN_PIXELS` pixels (each image's product that many columns)."""
    return (groups == 1 and output_size[0] * output_size[1] >= _IMAGE_COLUMNS_MIN_PIXELS
            and not _use_batch_last(x_shape[0], output_size[1], x_shape[1] * w_shape[2] * w_shape[3],
                                    w_shape[0]))


#: Largest columns of one image (bytes) for which :func:`_image_columns_first` prefers
#: the per-image route to row strips.
_IMAGE_COLUMNS_MAX_STRIP_BYTES = 4 << 20


def _image_columns_first(x, w_shape, groups, output_size):
    """Row strips' convolutions whose columns of one image (C·kh·kw x Ho·Wo) take at most
    :data:`_IMAGE_COLUMNS_MAX_STRIP_BYTES` (about twice an L2 of these guests) go image by
    image instead (:func:`_use_image_columns`), where that native job can run (float32
    NumPy arrays, NumPy's OpenBLAS running native pieces). Measured against row strips'
    native jobs in one process, alternated, medians of 20-30, two threads (thirtieth
    session), forward / weight gradient, with each image's columns: N16 16->16 32x32
    (0.6 MB) 0.60 / 0.52x, N16 32->32 32x32 (1.2 MB) weight 0.52x, N16 64->64 32x32 (2.4
    MB) weight 0.79x (its forward is Winograd), N8 and N2 64->64 32x32 weights 0.61 /
    0.67x, N2 16->32 64x64 (2.4 MB) 0.76 / 0.49x, N16 32->32 48x48 (2.7 MB) weight 0.89x,
    N16 64->64 40x40 (3.7 MB) weight 0.92x; N2 32->32 64x64 (4.7 MB) 1.00 / 1.16x, N8
    64->64 56x56 (7.2 MB) weight 1.0x, N2 64->32 64x64 and 16->16 128x128 (9.4 MB) 1.2-1.4x,
    N2 32->16 128x128 (19 MB) 2.1x."""
    C, kh, kw = w_shape[1:]
    if (C * kh * kw * output_size[0] * output_size[1] * x.itemsize > _IMAGE_COLUMNS_MAX_STRIP_BYTES
            or not backend.use_compiled(x)):
        return False
    from .. import blas_threads
    return (blas_threads.native_gemm(x) is not None
            and _use_image_columns(x.shape, w_shape, groups, output_size))


#: Largest batch for which auto mode takes flat rows whatever the channel count.
_FLAT_ROWS_MAX_BATCH = 2


def _use_flat_rows(x_shape, w_shape, stride, padding, dilation, groups, output_size):
    """Flat-row im2col (:mod:`tinynet.kernels.flat_rows`) for stride-1 "same" convs where
    im2col's per-row copies (N·C·kh·kw·Ho runs of Wo) and the transposing copy after the
    GEMM cost more than the GEMM: few input channels (< 16: the first layer of an image
    network), or a batch of at most :data:`_FLAT_ROWS_MAX_BATCH` images (the U-Net's N2,
    on the 8x8 and 16x16 maps that row strips leave to im2col), where the product per
    image loses nothing to one over the batch. Measured against im2col in one process,
    alternated (minimum of 8 calls x 3 rounds): forward 0.72-0.97x and input gradient
    0.74-0.92x on N1-N2 16-256 channels, 8x8 and 16x16; at N16 the per-image products
    (256 columns or fewer) made the forward up to 1.5x slower."""
    return (groups == 1 and (x_shape[1] < 16 or x_shape[0] <= _FLAT_ROWS_MAX_BATCH)
            and _flat_rows.applies(x_shape, tuple(w_shape[2:]), stride, padding, dilation, output_size))


def _use_subpixel(x_shape, w_shape, stride, padding, dilation, groups):
    """The sub-pixel transposed conv (:mod:`tinynet.kernels.subpixel`) needs one group,
    dilation 1, a stride above 1 and kernel >= stride (every output phase has a tap).
    It copies the input once per tap of a phase (⌈kh/sh⌉·⌈kw/sw⌉ times) where col2im adds
    kh·kw output-sized columns, so auto mode takes it when ⌈kh/sh⌉·⌈kw/sw⌉·C_in <=
    kh·kw·C_out and the kernel is a multiple of the stride (every phase has the same
    taps, none padded with zeros). This includes kernel == stride (the U-Net's 2x2
    up-convolution), where its strided writes of whole phase rows beat the tiling path's
    transposing copy of 2-element runs (3.6 -> 2.6 ms on N8 128->64 14x14, measured).
    With uneven phases (3x3 stride 2: the input gradient of a strided conv) it measured
    equal or slower than the phase grid, 1.6x slower on ResNet-18's N16 512->256 4x4
    (10-12 ms against 6-7.6)."""
    mode = _phases.get_phase_mode()
    C_in, C_out, kh, kw = w_shape
    if (mode == "never" or groups != 1 or dilation != (1, 1) or stride == (1, 1)
            or kh < stride[0] or kw < stride[1]):
        return False
    return mode == "always" or (kh % stride[0] == 0 and kw % stride[1] == 0
                                and -(-kh // stride[0]) * -(-kw // stride[1]) * C_in <= kh * kw * C_out)


#: Bytes of strips per block (see :mod:`tinynet.kernels.row_strips`): about 3 MB, the best
#: measured on 16-, 32- and 64-channel maps.
_ROW_STRIP_BYTES = 3 << 20
#: ... and where the blocks run as native jobs (float32, NumPy's OpenBLAS): 1 MB.
#: Thirtieth session, against 3 MB, best of two medians of 12, two threads, forward /
#: weight gradient: N2 16->16 and 32->16 128x128 0.84 / 0.92x and 0.79 / 0.92x, N4 16->16
#: 224x224 0.87 / 0.85x, N2 64->32 64x64 0.84 / 0.94x; N8 64->64 56x56 1.09 / 0.96x (a
#: Winograd layer there); 6 MB 0.92-1.14x.
_ROW_STRIP_NATIVE_BYTES = 1 << 20


#: Most output channels for which a "same" row-strip conv on an AVX-512 CPU stacks its
#: kernel rows into one GEMM instead of adding them in place (:func:`_row_strips_in_place`).
_ROW_STRIP_STACK_MAX_CHANNELS = 32


def _row_strips_in_place(C_out):
    """Whether a "same" row-strip conv adds its kh kernel-row products into the output
    where it lies (``matmul_into`` with β = 1), rather than stacking the kernel rows into
    one GEMM of M = kh·C_out rows and summing Z's shifted row blocks afterwards.

    In place writes each output once, the stacked GEMM kh outputs' worth that are read
    back; the stacked GEMM's taller M uses the BLAS better. Measured (alternated in one
    process, docs/kernels/convolution.md): on an AVX2-only EPYC in place won (forward
    0.91x on N8 64->64 56x56, 0.95x on N4 16->16 224x224); on an AVX-512 EPYC (OpenBLAS's
    SkylakeX kernels) the stacked GEMM won wherever C_out <= 32 (forward and input
    gradient 0.82-0.95x on the U-Net's N2 16- and 32-channel layers, 0.92x on N4 16->16
    224x224) and lost from 64 on (1.03-1.17x on N2 64 and 128->64 32x32, N8 64->64
    56x56). The GEMM's kernels decide, not the CPU (:func:`tinynet.backend.blas_has_avx512`):
    on an AVX-512 Zen 5 with ``OPENBLAS_CORETYPE=Haswell`` in place won again (N4 16->16
    224x224 forward and backward 0.95-0.98x)."""
    return not (C_out <= _ROW_STRIP_STACK_MAX_CHANNELS and backend.blas_has_avx512())


def _row_strip_blocks(x, w_shape, padding, dilation):
    budget = _ROW_STRIP_BYTES
    if _ROW_STRIP_NATIVE_BYTES < budget and backend.use_compiled(x):
        from .. import blas_threads
        if blas_threads.native_gemm(x) is not None:
            budget = _ROW_STRIP_NATIVE_BYTES
    return RS.blocks(x.shape, tuple(w_shape[2:]), padding, dilation, budget // x.itemsize)


def _row_strip_sums(z, blk, C_out, k, rows, span, dh, W):
    """The kh row blocks of ``z = [W_0; …] @ S``, each shifted by ``i·dh·W`` columns, as
    (C_out, k, rows, Wo) views of the block's ``k`` images (``rows``: output rows)."""
    for i in range(z.shape[0] // C_out):
        zi = z[i * C_out:(i + 1) * C_out, i * dh * W:(i * dh + span) * W]
        yield zi.reshape(C_out, k, span // k, W)[:, :, :rows, :blk.Wo]


def _conv2d_row_strips(x, w, b, padding, dilation):
    """Stride-1 conv as GEMMs over :mod:`row strips <tinynet.kernels.row_strips>` (no kh·kw
    im2col copy): ``y = Σ_i W_i @ strips`` shifted by ``i·dh·W`` columns, ``W_i = W[:, :, i, :]``,
    written into the NCHW output with the bias.

    A "same" conv's output rows are the grid's rows (``Wo == W``), so each image's
    ``Σ_i`` is kh GEMMs adding into its output rows where they lie
    (:func:`tinynet.backend.matmul_into`). Otherwise one GEMM with the kernel rows stacked,
    ``Z = [W_0; …; W_{kh-1}] @ strips``, then the sum of Z's row blocks, each read shifted,
    is cropped into the output."""
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    C_out, _, kh, kw = w.shape
    blk = _row_strip_blocks(x, w.shape, padding, dilation)
    out = xp.empty((N, C_out, blk.Ho, blk.Wo), dtype=x.dtype)
    w_rows = xp.ascontiguousarray(w.transpose(2, 0, 1, 3)).reshape(kh * C_out, C * kw)
    in_place = blk.Wo == W and _row_strips_in_place(C_out)
    dh = dilation[0]
    # In place, the bias rides in the first product: a row of ones under the strips and
    # the bias as one more column of W_0, so no pass over the output adds it (conv4's
    # forward: that pass was 7% of it).
    ones_row = in_place and b is not None
    products = [w_rows[i * C_out:(i + 1) * C_out] for i in range(kh)]
    compiled = not in_place and backend.use_compiled(x, w_rows, out) and (b is None or backend.use_compiled(x, b))
    if compiled:
        from ..kernels.compiled import row_strips as _compiled_strips
        bias = xp.zeros(C_out, dtype=x.dtype) if b is None else xp.ascontiguousarray(b)
        blas = cblas.gemm_address(x.dtype)      # then every block of a thread in one call
    if ones_row:
        products[0] = xp.concatenate([products[0], b.reshape(C_out, 1)], axis=1)

    groups = -(-N // blk.images)
    nbytes = x.nbytes + out.nbytes
    if compiled and blas is not None and _native_strips(
            "stacked_piece", x, backend.parallel_chunks(groups, nbytes, x), blk,
            (padding, dilation), kh, kw, w_rows, out, bias):
        return out

    def image_groups(first, last):
        # Groups are independent: they run side by side, each with its own buffer and
        # one-thread GEMMs (see below).
        if compiled and blas is not None:
            _compiled_strips.stacked_blocks(
                blas[0], blas[1] == 64, x, w_rows, out, bias, first, last, blk.images, blk.band,
                blk.Hp, blk.reach, padding[0], padding[1], dh, dilation[1],
                xp.empty((C, kw, blk.strip_rows * W), dtype=x.dtype),
                xp.empty(kh * C_out * blk.strip_rows * W, dtype=x.dtype))
            return
        buffer = xp.empty((C * kw + ones_row, blk.strip_rows * W), dtype=x.dtype)
        if ones_row:
            buffer[C * kw] = 1          # strip_block writes only the rows above it
        strip_buffer = buffer[:C * kw].reshape(C, kw, -1)
        for n0, k, r0, rows, span in RS.block_plan(N, blk, first, last):
            strips = RS.strip_block(x[n0:n0 + k], blk, kw, padding, dilation, r0, span + blk.reach,
                                    strip_buffer)
            if in_place:
                with_ones = buffer[:, :strips.shape[1]]      # the strips and the row of ones
                for m in range(k):       # image m's output rows start at grid row m·Hp
                    rows_out = out[n0 + m].reshape(C_out, blk.Ho * W)[:, r0 * W:(r0 + rows) * W]
                    start = m * (span // k) * W
                    for i in range(kh):
                        source = with_ones if i == 0 else strips
                        shifted = source[:, start + i * dh * W:start + (i * dh + rows) * W]
                        backend.matmul_into(products[i], shifted, rows_out, accumulate=i > 0)
                continue
            if compiled:        # one call for the sums and the bias, without the GIL
                _compiled_strips.strip_sums(w_rows @ strips, out, n0, k, r0, rows, span // k, dh,
                                            W, bias)
                continue
            target = out[n0:n0 + k, :, r0:r0 + rows].transpose(1, 0, 2, 3)
            sums = _row_strip_sums(w_rows @ strips, blk, C_out, k, rows, span, dh, W)
            if kh == 1:
                target[...] = next(sums)
            else:
                xp.add(next(sums), next(sums), out=target)
                for part in sums:
                    target += part
            if b is not None:
                target += b.reshape(-1, 1, 1, 1)
    # Image groups side by side, each GEMM on one thread (OpenBLAS runs on one thread
    # inside parallel_for's chunks), instead of one group at a time with 2-thread GEMMs:
    # forward 0.60-0.79x on N4 16->16 224x224, 0.74-0.86x on the U-Net's N2 16- and
    # 32-channel layers, 0.91-0.96x on N8 64->64 56x56 (docs/kernels/convolution.md).
    backend.parallel_for(groups, image_groups, like=x, nbytes=nbytes)
    return out


#: Most bytes of columns per product of :func:`_native_image_columns`'s image blocks
#: (4 MB, about two L2s: against 256 kB, 1.03-1.3x faster alone on N16-N128 16-128-channel
#: 4x4 and 8x8 maps; as fast as unbounded blocks). Inside the SimpleCNN step 256 kB (two
#: blocks of 16 a piece) measured 0.976x (65 of 80 pairs), 64 kB 0.975-0.985x: not taken
#: against the slower calls alone.
_IMAGE_BLOCK_BYTES = 4 << 20
#: Most weights (C·kh·kw·C_out) of a conv that goes block by block: up to 128->128
#: channels measured 0.63-0.98x the batched route's time on N16-N64 4x4 and 8x8 maps
#: (forward, weight and input gradients); ResNet-18's 256->256 4x4 weight gradient 1.07x.
_IMAGE_BLOCKS_MAX_WEIGHTS = 1 << 18


def _use_image_blocks(N, width, col_rows, channels, groups):
    """Batch-last convolutions (:func:`_use_batch_last`: maps narrower than the batch)
    with one group and at most :data:`_IMAGE_BLOCKS_MAX_WEIGHTS` weights (``col_rows`` x
    ``channels``) go block by block as a native job, their forward and weight gradient
    through :func:`_native_image_columns`, a transposed conv (an input gradient) through
    :func:`_native_block_input_grad`: each core builds the columns of its images, multiplies
    and scatters them on its own, where NumPy's route moves them between cores around a
    two-thread GEMM (:mod:`tinynet.kernels.compiled.flat_rows`)."""
    return (groups == 1 and col_rows * channels <= _IMAGE_BLOCKS_MAX_WEIGHTS
            and _use_batch_last(N, width, col_rows, channels))


def _image_block(N, pieces, rows, pixels, itemsize):
    """Images per product for :func:`_native_image_columns` on small maps: a piece's
    images, or, where their columns (``rows`` x block·``pixels``) would pass
    :data:`_IMAGE_BLOCK_BYTES`, equal blocks within it (a last block of a few images made
    a product too narrow: SimpleCNN's step 1.04x slower with blocks of 28 + 4 than with
    32, 0.976x with 16 + 16)."""
    per_piece = -(-N // max(pieces, 1))
    most = max(1, _IMAGE_BLOCK_BYTES // (rows * pixels * itemsize))
    return -(-per_piece // -(-per_piece // most))       # equal blocks, none larger


def _native_image_columns(x, w_or_dy, out, bias, geometry, kernel, pieces, block=1):
    """Image-by-image columns and products as a native job (float32, NumPy's OpenBLAS;
    :mod:`tinynet.kernels.compiled.flat_rows`), in the ``pieces`` chunks ``parallel_for``
    would use, ``block`` images per product (:func:`_use_image_blocks`; 1: each image's
    product written in place): im2col's columns of one image, ``geometry`` = (stride, padding,
    dilation) (flat rows: stride 1, "same"). The forward (``out`` given; ``w_or_dy`` the
    weights (C_out, K), ``bias`` (C_out,) or None) returns True when it ran; the weight
    gradient (``out`` None; ``w_or_dy`` the output gradient) returns
    the pieces' partial sums of ``dWᵀ`` (pieces, C·kh·kw, C_out). None / False, having
    run nothing, where it cannot: one chunk, not float32, a non-contiguous input, no
    OpenBLAS running native pieces. Inside :func:`tinynet.kernels.im2col.sharing` (a
    transposed conv's backward, whose two gradients read the same columns of dy),
    columns of one image a product are the whole batch's, built once and kept by
    :func:`tinynet.kernels.im2col.shared` where they fit the workspace limit."""
    from .. import blas_threads
    import numpy
    weight = out is None
    if pieces < 2 or not backend.use_compiled(x, w_or_dy):     # (NumPy arrays only)
        return None if weight else False
    a = numpy.ascontiguousarray(w_or_dy)
    blas = blas_threads.native_gemm(x, a, *(() if bias is None else (bias,)))
    if blas is None:
        return None if weight else False
    from ..kernels.compiled import flat_rows as _compiled_flat, narrow as _narrow
    (sh, sw), padding, dilation = geometry
    N, C, H, W = x.shape
    Ho, Wo = a.shape[2:] if weight else out.shape[2:]
    C_out = a.shape[1] if weight else a.shape[0]
    rows = C * kernel[0] * kernel[1]
    params = [N, C, H, W, C_out, kernel[0], kernel[1], padding[0], padding[1], dilation[0],
              dilation[1], rows]
    cols, filled = None, [False]
    if (block == 1 and K.sharing_active()
            and N * rows * Ho * Wo * x.itemsize <= K.get_workspace_limit()):
        # the batch's columns and whether a job has filled them yet
        cols, filled = K.shared("image_columns", x, (kernel, geometry),
                                lambda *_: (numpy.empty((N, rows, Ho * Wo), x.dtype), [False]))
    layout = [sh, sw, Ho, Wo, int(cols is not None), int(filled[0]), block]
    if cols is None:
        cols = numpy.empty((pieces, rows * block * Ho * Wo), dtype=x.dtype)
    # block > 1: each piece's product (forward) or dY block (weight gradient)
    blocks = numpy.empty((pieces, C_out * block * Ho * Wo) if block > 1 else 0, dtype=x.dtype)
    if not weight:
        ran = blas_threads.run_native_job(
            pieces, _compiled_flat.forward_piece.address,
            params + [bias is not None, *blas] + layout, (x, a, out, cols, blocks, a if bias is None else bias))
    else:
        partials = numpy.zeros((pieces, rows, C_out), dtype=x.dtype)
        ran = blas_threads.run_native_job(
            pieces, _compiled_flat.weight_piece.address,
            params + [*blas, _narrow.NARROW_MAX_OUT] + layout, (x, a, partials, cols, blocks))
    filled[0] = filled[0] or ran
    if weight:
        return partials if ran else None
    return ran


def _native_block_input_grad(x, w, b, out, stride, padding, dilation):
    """A batch-last transposed conv (a conv's input gradient on small maps) block by block
    as a native job (:func:`tinynet.kernels.compiled.flat_rows.block_input_piece`): x (N,
    C_in, H, W), w (C_in, C_out, kh, kw), one group, into ``out`` (N, C_out, Ho, Wo).
    True when it ran; False, having run nothing, where it cannot (one chunk, not float32,
    no OpenBLAS running native pieces)."""
    from .. import blas_threads
    import numpy
    N, C_in, H, W = x.shape
    C_out, Ho, Wo = out.shape[1:]
    kh, kw = w.shape[2:]
    rows = C_out * kh * kw
    pieces = backend.native_chunks(N, rows * H * W * N * x.itemsize + out.nbytes, x)
    if pieces < 2 or not backend.use_compiled(x, w):     # (NumPy arrays only)
        return False
    bias = numpy.zeros(C_out, x.dtype) if b is None else numpy.ascontiguousarray(b)
    x, w = numpy.ascontiguousarray(x), numpy.ascontiguousarray(w)
    blas = blas_threads.native_gemm(x, w, bias, out)
    if blas is None:
        return False
    from ..kernels.compiled import flat_rows as _compiled_flat
    block = _image_block(N, pieces, rows, H * W, x.itemsize)
    params = [N, C_in, H, W, C_out, kh, kw, stride[0], stride[1], padding[0], padding[1],
              dilation[0], dilation[1], Ho, Wo, *blas, block, int(b is not None)]
    blocks = numpy.empty((pieces, C_in * block * H * W), dtype=x.dtype)
    cols = numpy.empty((pieces, rows * block * H * W), dtype=x.dtype)
    return blas_threads.run_native_job(pieces, _compiled_flat.block_input_piece.address, params,
                                       (x, w, bias, out, blocks, cols))


def _use_block_backward(x_shape, w_shape, stride, padding, dilation, groups, dy):
    """A stride-1 "same" convolution on maps narrower than the batch whose weight gradient
    and input gradient both go block by block (:func:`_use_image_blocks`, not flat rows:
    16+ input channels and 3+ images; the input gradient's col2im route,
    :func:`_small_map_col2im`, asked of ``dy``) does its plain backward as one native job
    (:func:`_native_block_backward`) instead of the two. Where the rule holds, each of the
    two would take its block job (tests/kernels/test_image_columns.py checks it over drawn
    shapes). Measured, the two against the one, medians of 9 x 200 alternated calls, two
    threads: SimpleCNN's N64 16->32 4x4 185 -> 135 µs; N32 16->32 4x4 0.44x, N16 32->64
    4x4 0.56x, N64 32->64 0.78x, N64 64->64 0.88x, N16 64->128 0.84x, N16 16->16 8x8 0.73x;
    the SimpleCNN step 0.956x (40 of 40 alternated pairs)."""
    N, C, H, W = x_shape
    C_out, _, kh, kw = w_shape
    output_size = tuple(dy.shape[2:])
    if not (stride == (1, 1) and groups == 1 and output_size == (H, W)
            and _use_image_blocks(N, W, C * kh * kw, C_out, groups)
            and not _use_flat_rows(x_shape, w_shape, stride, padding, dilation, groups, output_size)):
        return False
    flipped = tuple(dilation[a] * ((kh, kw)[a] - 1) - padding[a] for a in range(2))
    return (_small_map_col2im(dy, (C, C_out, kh, kw), flipped, dilation, groups)
            and not _use_winograd_weight_grad(x_shape, w_shape, stride, padding, dilation, groups,
                                              output_size, on_cpu=True)
            and not _use_row_strips(x_shape, w_shape, stride, padding, dilation, groups, output_size))


def _native_block_backward(x, w, dy, padding, dilation):
    """:func:`_use_block_backward`'s convolutions' input and weight gradients in one native
    job (:func:`tinynet.kernels.compiled.flat_rows.block_backward_piece`): each core lays
    out its block of dY once, multiplies it with the block's columns of x into its partial
    weight gradient, then with Wᵀ into the same buffer and scatters that into dx. Returns
    ``(dx, dw)``, or None, having run nothing, where the job cannot run (one chunk, not
    float32, no OpenBLAS running native pieces)."""
    from .. import blas_threads
    import numpy
    N, C, H, W = x.shape
    C_out, _, kh, kw = w.shape
    rows = C * kh * kw
    pieces = backend.native_chunks(N, 2 * rows * H * W * N * x.itemsize + dy.nbytes + x.nbytes, x)
    if pieces < 2 or not backend.use_compiled(x, w, dy):     # (NumPy arrays only)
        return None
    x, dy = numpy.ascontiguousarray(x), numpy.ascontiguousarray(dy)
    w2 = numpy.ascontiguousarray(w).reshape(C_out, rows)
    blas = blas_threads.native_gemm(x, w2, dy)
    if blas is None:
        return None
    from ..kernels.compiled import flat_rows as _compiled_flat, narrow as _narrow
    block = _image_block(N, pieces, rows, H * W, x.itemsize)
    params = [N, C, H, W, C_out, kh, kw, padding[0], padding[1], dilation[0], dilation[1], rows,
              *blas, _narrow.NARROW_MAX_OUT, 1, 1, H, W, block]
    partials = numpy.zeros((pieces, rows, C_out), dtype=x.dtype)
    dx = numpy.empty(x.shape, dtype=x.dtype)
    cols = numpy.empty((pieces, rows * block * H * W), dtype=x.dtype)
    blocks = numpy.empty((pieces, C_out * block * H * W), dtype=x.dtype)
    if not blas_threads.run_native_job(pieces, _compiled_flat.block_backward_piece.address, params,
                                       (x, dy, w2, partials, dx, cols, blocks)):
        return None
    return dx, backend.sum_in_order(list(enumerate(partials))).T.reshape(w.shape)


def _native_flat_input_grad(x, w, b, out, padding, dilation, pieces):
    """The flat-row transposed conv (a flat-row conv's input gradient) image by image as a
    native job (:func:`tinynet.kernels.compiled.flat_rows.input_piece`): x (N, C_in, H,
    W), w (C_in, C_out, kh, kw), one group, into ``out`` (N, C_out, H, W). True when it
    ran; False, having run nothing, where it cannot (one chunk, not float32, no OpenBLAS
    running native pieces)."""
    from .. import blas_threads
    import numpy
    if pieces < 2 or not backend.use_compiled(x, w):     # (NumPy arrays only)
        return False
    C_out = out.shape[1]
    bias = numpy.zeros(C_out, x.dtype) if b is None else numpy.ascontiguousarray(b)
    blas = blas_threads.native_gemm(x, w, bias, out)
    if blas is None:
        return False
    from ..kernels.compiled import flat_rows as _compiled_flat
    N, C_in, H, W = x.shape
    kh, kw = w.shape[2:]
    rows = C_out * kh * kw
    params = [N, C_out, H, W, C_in, kh, kw, padding[0], padding[1], dilation[0], dilation[1], rows, *blas]
    cols = numpy.empty((pieces, rows, H * W), dtype=x.dtype)
    return blas_threads.run_native_job(pieces, _compiled_flat.input_piece.address, params,
                                       (x, w, bias, out, cols))


def _native_strips(piece, x, pieces, blk, geometry, kh, kw, *arrays):
    """A row-strip convolution's image groups as a native job
    (:mod:`tinynet.kernels.compiled.row_strips`), in the ``pieces`` chunks ``parallel_for``
    would use, each piece with its own buffers: ``stacked_piece``, the forward, with
    ``arrays = (w_rows, out, bias)``, returns True when it ran; ``weight_piece``, the
    weight gradient, with ``arrays = (dy,)``, returns the pieces' partial sums of ``dWᵀ``
    (pieces, kh, C·kw, C_out). A chunk on a worker then takes no GIL, whose hand-overs at
    a job's start and end cost tens of microseconds each on the twenty-ninth session's
    Intel guest. False / None, having run nothing, where it cannot run: one chunk, not
    float32, a non-contiguous input, no OpenBLAS running native pieces."""
    from .. import blas_threads
    from ..kernels.compiled import narrow as _narrow, row_strips as _strips
    import numpy
    weight = piece == "weight_piece"
    blas = blas_threads.native_gemm(x, *arrays)
    if pieces < 2 or blas is None:
        return None if weight else False
    (ph, pw), (dh, dw) = geometry
    N, C, H, W = x.shape
    C_out = arrays[0].shape[1] if weight else arrays[1].shape[1]
    buffers = numpy.empty(pieces * C * kw * blk.strip_rows * W, dtype=x.dtype)
    params = [N, C, H, W, C_out, blk.Ho, blk.Wo, kh, kw, -(-N // blk.images), blk.images,
              blk.band, blk.Hp, blk.reach, ph, pw, dh, dw, blk.strip_rows]
    address = getattr(_strips, piece).address
    if not weight:
        scratch = numpy.empty(pieces * kh * C_out * blk.strip_rows * W, x.dtype)
        return blas_threads.run_native_job(pieces, address, params + [*blas],
                                           (x, *arrays, buffers, scratch))
    partials = numpy.zeros((pieces, kh, C * kw, C_out), dtype=x.dtype)
    grids = numpy.empty(pieces * C_out * blk.span * W, x.dtype)
    ran = blas_threads.run_native_job(pieces, address,
                                      params + [blk.span, *blas, _narrow.NARROW_MAX_OUT],
                                      (x, *arrays, partials, buffers, grids))
    return partials if ran else None


def _conv2d_weight_row_strips(x, dy, weight_shape, padding, dilation):
    """Stride-1 weight gradient: kernel row i is ``dY_grid @ strips[:, shifted by i]ᵀ``,
    summed over the blocks (the GEMMs' inner dimension), computed transposed."""
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    C_out, _, kh, kw = weight_shape
    blk = _row_strip_blocks(x, weight_shape, padding, dilation)
    # dW_iᵀ = strips_(i) @ dY_gridᵀ, (C·kw, C_out): OpenBLAS runs this orientation of the
    # product in 0.83-0.97x the time of dY_grid @ strips_(i)ᵀ on 16- to 64-channel maps
    # (docs/kernels/convolution.md).
    blas = cblas.gemm_address(x.dtype) if backend.use_compiled(x, dy) else None
    groups = -(-N // blk.images)
    nbytes = x.nbytes + dy.nbytes
    if blas is not None:
        from ..kernels.compiled import narrow as _compiled_narrow, row_strips as _compiled_strips
        dy = xp.ascontiguousarray(dy)
        native = _native_strips("weight_piece", x, backend.parallel_chunks(groups, nbytes, x), blk,
                                (padding, dilation), kh, kw, dy)
        if native is not None:
            dw_t = backend.sum_in_order(list(enumerate(native)))
            return xp.ascontiguousarray(dw_t.reshape(kh, C, kw, C_out).transpose(3, 1, 0, 2))
    partials = []

    def image_groups(first, last):      # independent: side by side, each its own partial sum
        dw_t = xp.zeros((kh, C * kw, C_out), dtype=x.dtype)
        buffer = xp.empty((C, kw, blk.strip_rows * W), dtype=x.dtype)
        if blas is not None:            # all the blocks in one call
            _compiled_strips.weight_blocks(
                blas[0], blas[1] == 64, x, dy, dw_t, first, last, blk.images, blk.band, blk.Hp,
                blk.reach, padding[0], padding[1], dilation[0], dilation[1], buffer,
                xp.empty(C_out * blk.span * W, dtype=x.dtype), _compiled_narrow.NARROW_MAX_OUT)
            partials.append((first, dw_t))
            return
        grid = xp.zeros((C_out, blk.images, blk.span // blk.images, W), dtype=x.dtype)   # zeros off the output
        for n0, k, r0, rows, span in RS.block_plan(N, blk, first, last):
            strips = RS.strip_block(x[n0:n0 + k], blk, kw, padding, dilation, r0, span + blk.reach,
                                    buffer)
            if k == 1 and blk.Wo == W:      # a band of one image's rows: dy is its own grid
                g = dy[n0].reshape(C_out, blk.Ho * W)[:, r0 * W:(r0 + rows) * W]
            else:
                view = grid[:, :k, :span // k]
                backend.copy(view[:, :, :rows, :blk.Wo], dy[n0:n0 + k, :, r0:r0 + rows].transpose(1, 0, 2, 3))
                g = view.reshape(C_out, span * W)
            for i in range(kh):
                offset = i * dilation[0] * W
                backend.matmul_into(strips[:, offset:offset + g.shape[1]], g.T, dw_t[i], accumulate=True)
        partials.append((first, dw_t))
    backend.parallel_for(groups, image_groups, like=x, nbytes=nbytes)
    dw_t = backend.sum_in_order(partials)
    return xp.ascontiguousarray(dw_t.reshape(kh, C, kw, C_out).transpose(3, 1, 0, 2))


def _conv2d_array(x, w, b, stride, padding, dilation, groups, output_size):
    """x (N, C, H, W), w (C_out, C/G, kh, kw) -> (N, C_out, Ho, Wo) = W @ im2col(x) + b."""
    xp = backend.get_array_module(x)
    if x.shape[0] == 0:         # an empty batch: an empty output
        return xp.empty((0, w.shape[0]) + tuple(output_size), dtype=x.dtype)
    if _use_pointwise(w.shape, padding, groups):
        return _pointwise.conv2d_pointwise(x, w, b, stride, output_size)
    if _use_winograd(x.shape, w.shape, stride, padding, dilation, groups, output_size,
                     on_cpu=backend.device_of(x).type == "cpu"):
        return _winograd.conv2d_winograd(x, w, b, padding)
    if (_use_row_strips(x.shape, w.shape, stride, padding, dilation, groups, output_size)
            and not _image_columns_first(x, w.shape, groups, output_size)):
        return _conv2d_row_strips(x, w, b, padding, dilation)
    N, C, H, W = x.shape
    C_out, _, kh, kw = w.shape
    Ho, Wo = output_size
    out = xp.empty((N, C_out, Ho, Wo), dtype=x.dtype)
    w2 = w.reshape(C_out, -1)
    if _use_flat_rows(x.shape, w.shape, stride, padding, dilation, groups, output_size):
        # columns image by image: the batched GEMM writes NCHW
        nbytes = kh * kw * x.nbytes + out.nbytes
        if _native_image_columns(x, w2, out, b, ((1, 1), padding, dilation), (kh, kw),
                                 backend.native_chunks(N, nbytes, x)):
            return out
        if b is not None:       # here a ones row under the columns adds the bias
            w2 = xp.concatenate([w2, b.reshape(C_out, 1)], axis=1)
        chunk = K.batch_chunk(N, w2.shape[1] * H * W * x.itemsize)

        def images(lo, hi):     # independent: side by side, each product on one thread
            for n0 in range(lo, hi, chunk):
                n1 = min(hi, n0 + chunk)
                col = _flat_rows.flat_im2col(x[n0:n1], (kh, kw), padding, dilation, ones=b is not None)
                xp.matmul(w2, col, out=out[n0:n1].reshape(n1 - n0, C_out, H * W))
        backend.parallel_for(N, images, nbytes=nbytes, like=x)
        return out
    if _use_phases(x.shape, w.shape, stride, padding, dilation, groups, output_size):
        Hq, Wq = _phases.phase_grid_size((H, W), (kh, kw), stride, padding, dilation, output_size)
        chunk = K.batch_chunk(N, C * kh * kw * Hq * Wq * x.itemsize)
        for n0 in range(0, N, chunk):
            xs = x[n0:n0 + chunk]
            col, _ = _phases.phase_im2col(xs, (kh, kw), stride, padding, dilation, output_size)
            y = _groups_matmul(w2, col.reshape(C * kh * kw, -1), groups)
            _to_nchw(y.reshape(C_out, -1, Hq, Wq)[:, :, :Ho, :Wo], out[n0:n0 + chunk], b)
        return out
    blocks = _use_image_blocks(N, Wo, C * kh * kw, C_out, groups)
    if blocks or _use_image_columns(x.shape, w.shape, groups, output_size):
        nbytes = C * kh * kw * Ho * Wo * N * x.itemsize + out.nbytes
        pieces = backend.native_chunks(N, nbytes, x)
        block = _image_block(N, pieces, w2.shape[1], Ho * Wo, x.itemsize) if blocks else 1
        if _native_image_columns(x, w2, out, b, (stride, padding, dilation), (kh, kw),
                                 pieces, block):
            return out
    chunk = K.batch_chunk(N, C * kh * kw * Ho * Wo * x.itemsize)
    for n0 in range(0, N, chunk):
        xs = x[n0:n0 + chunk]
        n = xs.shape[0]
        if _use_batch_last(n, Wo, C * kh * kw, C_out):
            col = K.im2col(xs, (kh, kw), stride, padding, dilation, output_size, batch_last=True)
            y = _groups_matmul(w2, col.reshape(C * kh * kw, n * Ho * Wo), groups)
            _to_nchw(y.reshape(C_out, Ho, Wo, n).transpose(0, 3, 1, 2), out[n0:n0 + n], b)
            continue
        col = K.im2col(xs, (kh, kw), stride, padding, dilation, output_size)
        y = _groups_matmul(w2, col.reshape(C * kh * kw, n * Ho * Wo), groups)
        _to_nchw(y.reshape(C_out, n, Ho, Wo), out[n0:n0 + n], b)
    return out


#: Bytes of GEMM product (columns) per step of the compiled transposed conv: an L2's worth,
#: so that the scatter reads the columns back from cache.
_COMPILED_COL_BYTES = 1 << 20

#: Smallest output channels per group, and input pixels per image, for which the compiled
#: transposed conv is taken (see :func:`_use_compiled_transposed`).
_COMPILED_MIN_CHANNELS = 64
_COMPILED_MIN_PIXELS = 64
#: Kernel == stride (the U-Net's 2x2 up-convolutions): the fewest input pixels of the
#: whole batch for which its native job is taken (see :func:`_use_compiled_transposed`).
_COMPILED_TILES_MIN_PIXELS = 1024


def _use_compiled_transposed(x, w, stride, groups=1):
    """The compiled channels-last scatter (:mod:`tinynet.kernels.compiled.transposed`) for
    a strided transposed conv whose kernel stamps overlap (kernel > stride), with at least
    64 output channels per group (the run each add vectorises over) and 8x8 input maps.
    Measured A/B against the NumPy route, float32, one thread, thread CPU time, medians
    of 30 (the 2-core machine was shared, so wall times were not steady): 4x4 stride 2
    N8 128->64 14x14 0.90x; ResNet's 3x3 stride-2 input gradients N16 128->64 16x16 0.77x,
    N16 256->128 8x8 0.80x, N8 256->128 14x14 0.86x, but 512->256 on 4x4 maps 1.00x;
    kernel == stride (the U-Net's 2x2 up-convs, no overlap: the sub-pixel route writes its
    phases with plain copies) 1.1-1.2x slower with 64-128 output channels and 1.6x with
    16-32, so none of those was taken (benchmark command: docs/kernels/convolution.md).
    Since its float32 forward runs as a native job (:func:`_native_transposed`), kernel
    == stride is taken for that job: one group, 2+ pieces of it and
    :data:`_COMPILED_TILES_MIN_PIXELS` input pixels in the batch (thirty-first session,
    2 threads, against the sub-pixel route: the U-Net's N2 64->32 32x32 0.54x, 32->16
    64x64 0.62x, the benchmark's N8 128->64 14x14 0.77x; N2 128->64 16x16 1.20x, 256->128
    8x8 1.16x: a piece's one small image)."""
    from tinynet import blas_threads
    N, _, H, W = x.shape
    _, C_out_g, kh, kw = w.shape
    if stride == (1, 1) or not backend.use_compiled(x, w):
        return False
    if (kh, kw) == tuple(stride):
        # the job's bytes as _conv_transpose2d_compiled counts them: input, output and
        # columns, the last two kh·kw values a pixel here
        nbytes = x.nbytes + 2 * kh * kw * C_out_g * N * H * W * x.itemsize
        return (groups == 1 and N * H * W >= _COMPILED_TILES_MIN_PIXELS
                and backend.native_chunks(N, nbytes) >= 2 and blas_threads.native_gemm(x, w) is not None)
    return ((kh > stride[0] or kw > stride[1]) and C_out_g >= _COMPILED_MIN_CHANNELS
            and H * W >= _COMPILED_MIN_PIXELS)


def _conv_transpose2d_compiled(x, w, b, stride, padding, dilation, groups, output_size):
    """The GEMM ``xᵀ @ W`` per few images and group (x copied channels last, the output
    channels innermost) and a compiled channels-last col2im that writes each output pixel
    once, with its bias (:mod:`tinynet.kernels.compiled.transposed`)."""
    from ..kernels.compiled import transposed as _transposed
    xp = backend.get_array_module(x)
    N, C_in, H, W = x.shape
    _, C_out_g, kh, kw = w.shape
    C_out, C_in_g = C_out_g * groups, C_in // groups
    # W per group as (C_in/G, kh·kw·C_out/G), output channels innermost: a copy of the weight
    w_cl = xp.ascontiguousarray(w.reshape(groups, C_in_g, C_out_g, kh, kw).transpose(0, 1, 3, 4, 2))
    w_cl = w_cl.reshape(groups, C_in_g, kh * kw * C_out_g)
    bias = xp.zeros(C_out, dtype=x.dtype) if b is None else xp.ascontiguousarray(b)
    out = xp.empty((N, C_out) + tuple(output_size), dtype=x.dtype)
    nbytes = x.nbytes + out.nbytes + kh * kw * C_out * N * H * W * x.itemsize
    if groups == 1 and _native_transposed(x, w_cl[0], bias, out, (kh, kw), stride, padding, dilation,
                                          backend.native_chunks(N, nbytes, x)):
        return out
    step = max(1, _COMPILED_COL_BYTES // (C_out * kh * kw * H * W * x.itemsize))   # images per GEMM

    def images(lo, hi):     # independent: each chunk its GEMMs and scatters on one thread
        for n0 in range(lo, hi, step):
            n1 = min(hi, n0 + step)
            # x channels last, (G, images·H·W, C_in/G): one GEMM per group over all the
            # images' pixels (a product per image of a 4x4 map is only 16 rows tall)
            x_t = xp.ascontiguousarray(x[n0:n1].reshape(n1 - n0, groups, C_in_g, H * W).transpose(1, 0, 3, 2))
            col = xp.matmul(x_t.reshape(groups, -1, C_in_g), w_cl).reshape(groups, n1 - n0, H, W, kh, kw, C_out_g)
            _transposed.col2im_bias(col, bias, out[n0:n1], stride[0], stride[1], padding[0], padding[1],
                                    dilation[0], dilation[1])
    backend.parallel_for(N, images, like=x, nbytes=nbytes)
    return out


def _native_transposed(x, w_cl, bias, out, kernel, stride, padding, dilation, pieces):
    """The compiled transposed conv's images as a native job, one group (float32, NumPy's
    OpenBLAS; :func:`tinynet.kernels.compiled.transposed.forward_piece`), in the
    ``pieces`` chunks ``parallel_for`` would use, each with its own buffers: ``w_cl``
    (C_in, kh·kw·C_out), ``bias`` (C_out,). True when it ran; False, having run nothing,
    where it cannot: one chunk, not float32, a non-contiguous input, no OpenBLAS running
    native pieces."""
    from .. import blas_threads
    import numpy
    blas = blas_threads.native_gemm(x, w_cl, bias, out)
    if pieces < 2 or blas is None:
        return False
    from ..kernels.compiled import transposed as _transposed
    N, C_in, H, W = x.shape
    _, C_out, Ho, Wo = out.shape
    params = [N, C_in, H, W, C_out, *kernel, Ho, Wo, *stride, *padding, *dilation, *blas]
    cols = numpy.empty(pieces * H * W * kernel[0] * kernel[1] * C_out, dtype=x.dtype)
    sums = numpy.empty(pieces * Ho * Wo * C_out, dtype=x.dtype)
    return blas_threads.run_native_job(pieces, _transposed.forward_piece.address, params,
                                       (x, w_cl, bias, out, cols, sums))


#: Largest input map (pixels) of a stride-1 transposed conv that :func:`_small_map_col2im`
#: sends to col2im.
_COL2IM_MAX_MAP = 8 * 8


def _small_map_col2im(x, w_conv_shape, flipped_padding, dilation, groups):
    """A stride-1 transposed conv (an input gradient) on small maps, batch larger than the
    width, whose flipped conv would take batch-last im2col (not Winograd) is faster as the
    GEMM then the compiled col2im: that GEMM is C_out·kh·kw rows tall where the flipped
    conv's is C_out, and the compiled batch-last col2im is one pass. Measured, median of
    200 alternated calls (2 threads): N16-N64, 8-128 channels, 4x4 and 8x8 maps
    0.38-0.83x the time (SimpleCNN's N64 32->16 4x4: 242 -> 171 µs), ties at 0.98-1.02;
    16x16 maps 1.00-1.18x (not taken); a flipped conv that takes Winograd (N16 256->256
    8x8) 1.16x (not taken). NumPy's col2im (compiled kernels off) is the slower one."""
    N, _, H, W = x.shape
    return (N > W and H * W <= _COL2IM_MAX_MAP and backend.use_compiled(x)
            and not _use_winograd(x.shape, w_conv_shape, (1, 1), flipped_padding, dilation, groups,
                                  (H, W), on_cpu=True))


def _conv_transpose2d_array(x, w, b, stride, padding, dilation, groups, output_size):
    """x (N, C_in, H, W), w (C_in, C_out/G, kh, kw) -> (N, C_out, Ho, Wo) = col2im(Wᵀ X) + b."""
    xp = backend.get_array_module(x)
    N, C_in, H, W = x.shape
    _, C_out_g, kh, kw = w.shape
    C_out = C_out_g * groups
    if N == 0:                  # an empty batch: an empty output
        return xp.empty((0, C_out) + tuple(output_size), dtype=x.dtype)
    if _use_pointwise(w.shape, padding, groups):
        return _pointwise.conv_transpose2d_pointwise(x, w, b, stride, output_size)
    if _use_compiled_transposed(x, w, stride, groups):
        return _conv_transpose2d_compiled(x, w, b, stride, padding, dilation, groups, output_size)
    # Stride 1: the transposed conv is a conv with the flipped kernel and padding
    # d(k-1) - p, so it takes whichever path conv2d takes (Winograd, row strips, im2col).
    # An im2col copy then replaces col2im's scatter-add, its zeroed buffer and its final
    # transposing copy: 1.3-2.9x faster measured, except when the conv would have few
    # output channels (C_out < 8: a GEMM only a few rows tall; 3 channels: 2.9x slower)
    # or the flipped weight it copies (C_in·C_out·kh·kw) is at least as large as the
    # columns that weight multiplies (C_in·kh·kw·N·H·W), i.e. C_out >= N·H·W: deep layers
    # on small maps, where col2im reads Wᵀ in place as a transposed GEMM operand (N2
    # 256->128 8x8 1.2 against 3.0 ms, N16 512->512 4x4 12-14 against 16-18 ms).
    flipped_padding = tuple(dilation[a] * ((kh, kw)[a] - 1) - padding[a] for a in range(2))
    natural = tuple((H, W)[a] + flipped_padding[a] * 2 - dilation[a] * ((kh, kw)[a] - 1) for a in range(2))
    if (stride == (1, 1) and min(flipped_padding) >= 0 and natural == tuple(output_size) and C_out >= 8
            and C_out < N * H * W
            and not _small_map_col2im(x, (C_out, C_in // groups, kh, kw), flipped_padding, dilation, groups)):
        if _use_winograd(x.shape, (C_out, C_in // groups, kh, kw), stride, flipped_padding, dilation,
                         groups, output_size, on_cpu=backend.device_of(x).type == "cpu"):
            # the flipped filters' transform without the flipped copy (docs: convolution.md)
            return _winograd.conv2d_winograd(x, w, b, flipped_padding, transposed=True)
        w_conv = w[:, :, ::-1, ::-1].reshape(groups, C_in // groups, C_out_g, kh, kw)
        w_conv = xp.ascontiguousarray(w_conv.transpose(0, 2, 1, 3, 4)).reshape(C_out, C_in // groups, kh, kw)
        return _conv2d_array(x, w_conv, b, stride, flipped_padding, dilation, groups, output_size)
    if _use_subpixel(x.shape, w.shape, stride, padding, dilation, groups):
        # each output phase a small stride-1 correlation, every output pixel written once
        grid = _phases.phase_grid_size(output_size, (kh, kw), stride, padding, dilation, (H, W))
        taps = -(-kh // stride[0]) * -(-kw // stride[1])
        chunk = K.batch_chunk(N, (taps * C_in + stride[0] * stride[1] * C_out)
                              * grid[0] * grid[1] * x.itemsize)
        parts = [_subpixel.conv_transpose2d_subpixel(x[n0:n0 + chunk], w, b, stride, padding, output_size)
                 for n0 in range(0, N, chunk)]
        return parts[0] if len(parts) == 1 else xp.concatenate(parts)
    out = None
    if groups == 1:     # a transposed operand the BLAS reads as is (a copy: 0.5 ms on 128x1024)
        wt = w.reshape(C_in, C_out * kh * kw).T
    else:               # Wᵀ per group: (G, C_out/G·kh·kw, C_in/G) stacked to (C_out·kh·kw, C_in/G)
        wt = w.reshape(groups, C_in // groups, C_out_g * kh * kw).transpose(0, 2, 1)
        wt = xp.ascontiguousarray(wt).reshape(groups * C_out_g * kh * kw, C_in // groups)
    chunk = K.batch_chunk(N, C_out * kh * kw * H * W * x.itemsize)
    tiles = (kh, kw) == stride and dilation == (1, 1) and padding == (0, 0)
    if chunk == N and _use_flat_rows((N, C_out) + tuple(output_size), w.shape, stride, padding,
                                     dilation, groups, (H, W)):
        # the adjoint of the flat-row conv: a product per image on x where it lies (no
        # transposing copy; 3->16 32x32 N32 input gradient 2.2 -> 1.2 ms), then
        # contiguous adds per offset
        y = xp.empty((N, C_out) + tuple(output_size), dtype=x.dtype)
        nbytes = kh * kw * y.nbytes + x.nbytes
        if _native_flat_input_grad(x, w, b, y, padding, dilation, backend.native_chunks(N, nbytes, x)):
            return y

        def images(lo, hi):     # independent: side by side, each product on one thread
            col = xp.matmul(wt, x[lo:hi].reshape(hi - lo, C_in, H * W)).reshape(hi - lo, C_out, kh, kw, H * W)
            _flat_rows.flat_col2im(col, (H, W), padding, dilation, image_major=True, out=y[lo:hi])
            if b is not None:
                y[lo:hi] += b.reshape(-1, 1, 1)
        backend.parallel_for(N, images, nbytes=nbytes, like=x)
        return y
    phases = _use_phases((N, C_out) + tuple(output_size), w.shape, stride, padding, dilation, groups, (H, W),
                         gather=False)
    if not (tiles or phases) and _use_image_blocks(N, W, C_out * kh * kw, C_in, groups):
        y = xp.empty((N, C_out) + tuple(output_size), dtype=x.dtype)
        if _native_block_input_grad(x, w, b, y, stride, padding, dilation):
            return y
    if phases:
        grid = _phases.phase_grid_size(output_size, (kh, kw), stride, padding, dilation, (H, W))
        chunk = K.batch_chunk(N, C_out * kh * kw * grid[0] * grid[1] * x.itemsize)
    for n0 in range(0, N, chunk):
        xs = x[n0:n0 + chunk]
        n = xs.shape[0]
        if phases:
            col = _groups_matmul(wt, _phases.to_grid(xs, grid), groups).reshape(C_out, kh, kw, -1)
            y = _phases.phase_col2im(col, output_size, (kh, kw), stride, padding, dilation, grid, b)
        elif not tiles and _use_batch_last(n, W, C_out * kh * kw, C_in):
            x_mat = backend.ascontiguous(xs.transpose(1, 2, 3, 0)).reshape(C_in, H * W * n)
            col = _groups_matmul(wt, x_mat, groups).reshape(C_out, kh, kw, H, W, n)
            y = K.col2im(col, output_size, stride, padding, dilation, batch_last=True)
        else:
            x_mat = backend.ascontiguous(xs.transpose(1, 0, 2, 3)).reshape(C_in, n * H * W)
            col = _groups_matmul(wt, x_mat, groups).reshape(C_out, kh, kw, n, H, W)
            y = K.col2im(col, output_size, stride, padding, dilation)   # a fresh array
        if b is not None and not phases:
            y += b.reshape(-1, 1, 1)
        if n == N:
            return y
        if out is None:
            out = xp.empty((N, C_out) + tuple(output_size), dtype=x.dtype)
        out[n0:n0 + n] = y
    return out


def _conv2d_weight_array(x, dy, weight_shape, stride, padding, dilation, groups):
    """dW (C_out, C/G, kh, kw) = dY @ im2col(x)ᵀ, summed over batch chunks."""
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    C_out, _, kh, kw = weight_shape
    Ho, Wo = dy.shape[2:]
    if N == 0:                  # an empty batch: no products to sum
        return xp.zeros(weight_shape, dtype=x.dtype)
    if _use_pointwise(weight_shape, padding, groups):
        return _pointwise.conv2d_weight_pointwise(x, dy, stride)
    if _use_winograd_weight_grad(x.shape, weight_shape, stride, padding, dilation, groups, (Ho, Wo),
                                 on_cpu=backend.device_of(x).type == "cpu"):
        return _winograd.conv2d_weight_winograd(x, dy, padding)
    if (_use_row_strips(x.shape, weight_shape, stride, padding, dilation, groups, (Ho, Wo))
            and not _image_columns_first(x, weight_shape, groups, (Ho, Wo))):
        return _conv2d_weight_row_strips(x, dy, weight_shape, padding, dilation)
    dw = None
    if (_use_flat_rows(x.shape, weight_shape, stride, padding, dilation, groups, (Ho, Wo))
            and C_out <= H * W):
        # the flat-row forward's columns, image by image: dW = Σ_n dY[n] @ col[n]ᵀ reads dY
        # where it lies (no transposing copy of it, no padded copy of x): 15-35% faster.
        # Each image's product is a whole (C_out, C·kh·kw) partial dW summed afterwards,
        # over an inner dimension of only H·W: with C_out > H·W those partials outweigh the
        # columns (N2 256->256 8x8: 2.3 against 1.9 ms with im2col), so im2col keeps them.
        nbytes = kh * kw * x.nbytes + dy.nbytes
        pieces = backend.native_chunks(N, nbytes, x)
        native = _native_image_columns(x, dy, None, None, ((1, 1), padding, dilation), (kh, kw), pieces)
        if native is not None:
            return backend.sum_in_order(list(enumerate(native))).T.reshape(weight_shape)
        chunk = K.batch_chunk(N, C * kh * kw * H * W * x.itemsize)
        partials = []
        # up to 32 output channels on large maps, the products (C_out x C·kh·kw, over H·W
        # pixels) are the narrow kind OpenBLAS runs poorly: one compiled call a chunk
        narrow = (backend.use_compiled(x, dy) and dy.flags.c_contiguous
                  and H * W >= _FLAT_ROWS_NARROW_MIN_PIXELS)
        if narrow:
            from ..kernels.compiled import narrow as _compiled_narrow
            narrow = C_out <= _compiled_narrow.NARROW_MAX_OUT

        def images(lo, hi):     # independent: side by side, each its own partial sum
            dw = xp.zeros((C * kh * kw, C_out), dtype=x.dtype) if narrow else None
            for n0 in range(lo, hi, chunk):
                n1 = min(hi, n0 + chunk)
                col = _flat_rows.flat_im2col(x[n0:n1], (kh, kw), padding, dilation)
                if narrow:      # dWᵀ += Σ_n col[n] @ dY[n]ᵀ
                    _compiled_narrow.image_products(col, dy[n0:n1].reshape(n1 - n0, C_out, H * W), dw)
                    continue
                part = (dy[n0:n1].reshape(n1 - n0, C_out, H * W) @ col.transpose(0, 2, 1)).sum(axis=0)
                dw = part if dw is None else dw + part
            partials.append((lo, dw.T if narrow else dw))
        backend.parallel_for(N, images, nbytes=nbytes, like=x)
        return backend.sum_in_order(partials).reshape(weight_shape)
    if _use_phases(x.shape, weight_shape, stride, padding, dilation, groups, (Ho, Wo)):
        Hq, Wq = _phases.phase_grid_size((H, W), (kh, kw), stride, padding, dilation, (Ho, Wo))
        chunk = K.batch_chunk(N, C * kh * kw * Hq * Wq * x.itemsize)
        for n0 in range(0, N, chunk):
            col, grid = _phases.phase_im2col(x[n0:n0 + chunk], (kh, kw), stride, padding, dilation, (Ho, Wo))
            dy_grid = _phases.to_grid(dy[n0:n0 + chunk], grid)     # zeros on the spare columns
            part = _groups_matmul_bt(dy_grid, col.reshape(C * kh * kw, -1), groups)
            dw = part if dw is None else dw + part
        return dw.reshape(weight_shape)
    blocks = _use_image_blocks(N, Wo, C * kh * kw, C_out, groups)
    if blocks or _use_image_columns(x.shape, weight_shape, groups, (Ho, Wo)):
        nbytes = C * kh * kw * Ho * Wo * N * x.itemsize + dy.nbytes
        pieces = backend.native_chunks(N, nbytes, x)
        block = _image_block(N, pieces, C * kh * kw, Ho * Wo, x.itemsize) if blocks else 1
        native = _native_image_columns(x, dy, None, None, (stride, padding, dilation), (kh, kw), pieces, block)
        if native is not None:
            return backend.sum_in_order(list(enumerate(native))).T.reshape(weight_shape)
    chunk = K.batch_chunk(N, C * kh * kw * Ho * Wo * x.itemsize)
    for n0 in range(0, N, chunk):
        xs = x[n0:n0 + chunk]
        n = xs.shape[0]
        batch_last = _use_batch_last(n, Wo, C * kh * kw, C_out)
        col = K.im2col(xs, (kh, kw), stride, padding, dilation, (Ho, Wo), batch_last=batch_last)
        dy_mat = backend.ascontiguous(dy[n0:n0 + n].transpose((1, 2, 3, 0) if batch_last else (1, 0, 2, 3)))
        part = _groups_matmul_bt(dy_mat.reshape(C_out, n * Ho * Wo), col.reshape(C * kh * kw, n * Ho * Wo), groups)
        dw = part if dw is None else dw + part
    return dw.reshape(weight_shape)


#: Smallest map (pixels) whose flat-row weight gradient takes the narrow product
#: (:mod:`tinynet.kernels.compiled.narrow`): on 128x128 maps (the U-Net's N2 3->16 first
#: layer) its products took 0.41 against 0.75 ms, on 32x32 (N32 3->16) as long as the
#: batched GEMMs', and that row's forward + backward measured 1.026x with it (10 of 30
#: alternated pairs faster).
_FLAT_ROWS_NARROW_MIN_PIXELS = 4096


def _bias_grad(gy: Tensor) -> Tensor:
    """The bias gradient, gy summed over (N, H, W), as two matrix-vector products with
    ones: over the larger of the pixels and the batch first (gy viewed as (N·C, H·W) or
    (N, C·H·W)), then over the other. NumPy's multi-axis ``sum`` pays a fixed cost per
    row of the innermost axis (1,024 rows of 64 on SimpleCNN's maps: ~60 µs); einsum's
    reduction runs one vectorised loop, the BLAS products faster still (thirty-seventh
    session, one call, float32: N64 16x8x8 7.0 -> 4.0 µs, N64 32x4x4 7.8 -> 3.3, N16
    64x32x32 160 -> 46, N2 16x128x128 50 -> 14, N8 64x56x56 253 -> 108). For a
    higher-order graph it stays the differentiable ``sum``."""
    if is_grad_enabled():
        return _sum(gy, (0, 2, 3))
    g = gy.data
    xp = backend.get_array_module(g)
    N, C, H, W = g.shape
    if H * W > N:
        sums = g.reshape(N * C, H * W) @ xp.ones(H * W, dtype=g.dtype)
        return Tensor(sums.reshape(N, C).T @ xp.ones(N, dtype=g.dtype))
    sums = xp.ones(N, dtype=g.dtype) @ g.reshape(N, C * H * W)
    return Tensor(sums.reshape(C, H * W) @ xp.ones(H * W, dtype=g.dtype))


# --------------------------------------------------------------------------- Functions
class _Geometry(Function):
    """Stores the normalised stride, padding, dilation and groups."""
    outputs_unread = True

    def _keep(self, stride, padding, dilation, groups):
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def _geometry(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)


class Conv2d(_Geometry):
    def forward(self, x, w, b, *, stride, padding, dilation, groups, output_size):
        self._keep(stride, padding, dilation, groups)
        return _conv2d_array(x, w, b, stride, padding, dilation, groups, output_size)

    def backward(self, gy):
        x, w, b = self.inputs
        gx = gw = gb = None
        both = (not is_grad_enabled() and self.needs_input_grad[0] and self.needs_input_grad[1]
                and _use_block_backward(x.shape, w.shape, self.stride, self.padding, self.dilation,
                                        self.groups, gy.data))
        grads = both and _native_block_backward(x.data, w.data, gy.data, self.padding, self.dilation)
        if grads:       # a plain backward's two gradients in one job
            gx, gw = Tensor(grads[0]), Tensor(grads[1])
        if self.needs_input_grad[0] and gx is None:
            gx = ConvTranspose2d.apply(gy, w, None, output_size=x.shape[2:], **self._geometry())
        if self.needs_input_grad[1] and gw is None:
            gw = Conv2dWeight.apply(x, gy, weight_shape=w.shape, **self._geometry())
        if b is not None and self.needs_input_grad[2]:
            gb = depends_on(_bias_grad(gy), x, w)
        return gx, gw, gb


class ConvTranspose2d(_Geometry):
    def forward(self, x, w, b, *, stride, padding, dilation, groups, output_size):
        self._keep(stride, padding, dilation, groups)
        return _conv_transpose2d_array(x, w, b, stride, padding, dilation, groups, output_size)

    def backward(self, gy):
        x, w, b = self.inputs
        gx = gw = gb = None
        with K.sharing():       # both read the same columns of gy (any route's): built once
            if self.needs_input_grad[0]:
                gx = Conv2d.apply(gy, w, None, output_size=x.shape[2:], **self._geometry())
            if self.needs_input_grad[1]:
                gw = Conv2dWeight.apply(gy, x, weight_shape=w.shape, **self._geometry())
        if b is not None and self.needs_input_grad[2]:
            gb = depends_on(_bias_grad(gy), x, w)
        return gx, gw, gb


class Conv2dWeight(_Geometry):
    """The weight gradient of conv2d as an op of its own: bilinear in (x, dy)."""

    def forward(self, x, dy, *, weight_shape, stride, padding, dilation, groups):
        self._keep(stride, padding, dilation, groups)
        return _conv2d_weight_array(x, dy, tuple(weight_shape), stride, padding, dilation, groups)

    def backward(self, gw):
        x, dy = self.inputs
        gx = gdy = None
        if self.needs_input_grad[0]:
            gx = ConvTranspose2d.apply(dy, gw, None, output_size=x.shape[2:], **self._geometry())
        if self.needs_input_grad[1]:
            gdy = Conv2d.apply(x, gw, None, output_size=dy.shape[2:], **self._geometry())
        return gx, gdy


# --------------------------------------------------------------------------- checks
def _positive_pair(value, name, op):
    pair = K.pair(value, name, op)
    if min(pair) <= 0:
        raise ValueError(f"{op}: {name} must be positive, got {value!r}")
    return pair


def _nonnegative_pair(value, name, op):
    pair = K.pair(value, name, op)
    if min(pair) < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {value!r}")
    return pair


def _check_operands(op, x, weight, bias, groups):
    check_tensor(x, op, "input", ndim=(3, 4), floating=True)
    check_tensor(weight, op, "weight", ndim=4, floating=True)
    check_same_device(op, input=x, weight=weight, bias=bias)
    if weight.dtype != x.dtype:
        raise TypeError(f"{op}: input has dtype {x.dtype} but weight has dtype {weight.dtype}")
    if bias is not None:
        check_tensor(bias, op, "bias", ndim=1, floating=True)
        if bias.dtype != x.dtype:
            raise TypeError(f"{op}: input has dtype {x.dtype} but bias has dtype {bias.dtype}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if min(weight.shape[2:]) <= 0:
        raise ValueError(f"{op}: kernel size must be positive, got weight of shape {tuple(weight.shape)}")


def _check_window(op, x, kernel, padding, dilation):
    H, W = x.shape[2:]
    for axis, size in enumerate((H, W)):
        reach = dilation[axis] * (kernel[axis] - 1) + 1
        if size + 2 * padding[axis] < reach:
            raise ValueError(
                f"{op}: kernel size {tuple(kernel)} (dilation {tuple(dilation)}) is larger than the "
                f"padded input {H + 2 * padding[0]}x{W + 2 * padding[1]}")


def _same_padding(x, weight, stride, dilation):
    """PyTorch's ``padding='same'``: pads d·(k-1) in total, the odd one on the bottom/right."""
    if stride != (1, 1):
        raise ValueError("conv2d: padding='same' is not supported for strided convolutions")
    total = [dilation[a] * (weight.shape[2 + a] - 1) for a in range(2)]
    before = (total[0] // 2, total[1] // 2)
    extra = (total[0] - 2 * before[0], total[1] - 2 * before[1])
    if any(extra):
        x = _pad(x, (0, extra[1], 0, extra[0]))
    return x, before


# --------------------------------------------------------------------------- public ops
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D cross-correlation over an (N, C_in, H, W) input, PyTorch's ``conv2d``.

    ``y[n, o, ho, wo] = b[o] + sum over c, i, j of
    w[o, c, i, j] · x_pad[n, g·C_in/G + c, ho·sh + i·dh, wo·sw + j·dw]`` (g = o's group);
    ``Ho = floor((H + 2p - d(kh-1) - 1) / s) + 1``. ``padding`` may also be ``'valid'`` or
    ``'same'`` (stride 1). An unbatched (C_in, H, W) input gives a (C_out, Ho, Wo) output.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.conv2d(tn.ones(1, 1, 3, 3), tn.ones(1, 1, 2, 2)).numpy().ravel().tolist()
    [4.0, 4.0, 4.0, 4.0]
    """
    op = "conv2d"
    _check_operands(op, input, weight, bias, groups)
    if input.ndim == 3:     # unbatched (C, H, W), as PyTorch accepts
        return _squeeze(conv2d(_unsqueeze(input, 0), weight, bias, stride, padding, dilation,
                               groups), 0)
    input, geometry = _conv2d_geometry(op, input, weight, bias, stride, padding, dilation, groups)
    return Conv2d.apply(input, weight, bias, **geometry)


def _conv2d_geometry(op, input, weight, bias, stride, padding, dilation, groups):
    """conv2d's checks of a batched input against the weight and its arguments, normalised:
    ``(input, geometry)``, the input padded where ``padding='same'`` asks for an odd total,
    ``geometry`` the keyword arguments of :class:`Conv2d` (stride, padding, dilation,
    groups, output_size)."""
    stride = _positive_pair(stride, "stride", op)
    dilation = _positive_pair(dilation, "dilation", op)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            input, padding = _same_padding(input, weight, stride, dilation)
        else:
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    padding = _nonnegative_pair(padding, "padding", op)
    C_out, C_g, kh, kw = weight.shape
    C = input.shape[1]
    if C_g * groups != C:
        raise ValueError(f"{op}: weight has {C_g} input channels per group but input has {C} "
                         f"(groups={groups}); expected weight.shape[1] * groups == {C}")
    if C_out % groups:
        raise ValueError(f"{op}: {C_out} output channels (weight.shape[0]) are not divisible "
                         f"by groups={groups}")
    if bias is not None and bias.shape[0] != C_out:
        raise ValueError(f"{op}: bias has {bias.shape[0]} elements but weight has {C_out} output channels")
    _check_window(op, input, (kh, kw), padding, dilation)
    size = tuple(K.conv_output_size(input.shape[2 + a], (kh, kw)[a], stride[a], padding[a],
                                    dilation[a]) for a in range(2))
    return input, dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                       output_size=size)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-D convolution (the input-gradient of ``conv2d``), PyTorch's layout.

    weight (C_in, C_out/groups, kh, kw); ``Ho = (H-1)·s - 2p + d(kh-1) + output_padding + 1``.
    ``output_padding`` (< stride or < dilation) picks one of the several output sizes a
    strided conv maps to the same input size; it adds rows at the bottom/right. An
    unbatched (C_in, H, W) input gives a (C_out, Ho, Wo) output.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.conv_transpose2d(tn.ones(1, 1, 2, 2), tn.ones(1, 1, 2, 2), stride=2).shape
    (1, 1, 4, 4)
    """
    op = "conv_transpose2d"
    _check_operands(op, input, weight, bias, groups)
    if input.ndim == 3:     # unbatched (C, H, W), as PyTorch accepts
        return _squeeze(conv_transpose2d(_unsqueeze(input, 0), weight, bias, stride, padding,
                                         output_padding, groups, dilation), 0)
    stride = _positive_pair(stride, "stride", op)
    dilation = _positive_pair(dilation, "dilation", op)
    padding = _nonnegative_pair(padding, "padding", op)
    output_padding = _nonnegative_pair(output_padding, "output_padding", op)
    C_in, C_out_g, kh, kw = weight.shape
    if input.shape[1] != C_in:
        raise ValueError(f"{op}: weight has {C_in} input channels (weight.shape[0]) but input "
                         f"has {input.shape[1]}")
    if C_in % groups:
        raise ValueError(f"{op}: {C_in} input channels are not divisible by groups={groups}")
    C_out = C_out_g * groups
    if bias is not None and bias.shape[0] != C_out:
        raise ValueError(f"{op}: bias has {bias.shape[0]} elements but the output has {C_out} channels")
    for a in range(2):
        if output_padding[a] >= stride[a] and output_padding[a] >= dilation[a]:
            raise ValueError(f"{op}: output_padding {tuple(output_padding)} must be smaller than "
                             f"either stride {tuple(stride)} or dilation {tuple(dilation)}")
    size = tuple(K.conv_transpose_output_size(input.shape[2 + a], (kh, kw)[a], stride[a],
                                              padding[a], output_padding[a], dilation[a])
                 for a in range(2))
    if min(size) <= 0:
        raise ValueError(f"{op}: output size {size} is not positive (input "
                         f"{tuple(input.shape[2:])}, kernel {(kh, kw)}, stride {stride}, "
                         f"padding {padding}, dilation {dilation})")
    return ConvTranspose2d.apply(input, weight, bias, stride=stride, padding=padding,
                                 dilation=dilation, groups=groups, output_size=size)


def conv2d_weight(input: Tensor, grad_output: Tensor, weight_shape, stride=1, padding=0,
                  dilation=1, groups: int = 1) -> Tensor:
    """Gradient of ``conv2d`` with respect to its weight: ``dY @ im2col(x)ᵀ`` per group.

    Differentiable in both ``input`` and ``grad_output`` (a bilinear op).
    """
    op = "conv2d_weight"
    check_tensor(input, op, "input", ndim=4, floating=True)
    check_tensor(grad_output, op, "grad_output", ndim=4, floating=True)
    check_same_device(op, input=input, grad_output=grad_output)
    if input.dtype != grad_output.dtype:
        raise TypeError(f"{op}: input has dtype {input.dtype} but grad_output has dtype {grad_output.dtype}")
    stride = _positive_pair(stride, "stride", op)
    dilation = _positive_pair(dilation, "dilation", op)
    padding = _nonnegative_pair(padding, "padding", op)
    weight_shape = tuple(int(s) for s in weight_shape)
    C_out, C_g, kh, kw = weight_shape
    if C_g * groups != input.shape[1] or grad_output.shape[1] != C_out or C_out % groups:
        raise ValueError(f"{op}: weight_shape {weight_shape} does not fit input {tuple(input.shape)}, "
                         f"grad_output {tuple(grad_output.shape)} and groups={groups}")
    for a in range(2):
        natural = K.conv_output_size(input.shape[2 + a], weight_shape[2 + a], stride[a],
                                     padding[a], dilation[a])
        if not 0 < grad_output.shape[2 + a] <= natural:
            raise ValueError(f"{op}: grad_output spatial size {tuple(grad_output.shape[2:])} does "
                             f"not fit the convolution output size of the input")
    return Conv2dWeight.apply(input, grad_output, weight_shape=weight_shape, stride=stride,
                              padding=padding, dilation=dilation, groups=groups)


# --------------------------------------------------------------------------- 1-D
def _single(value, name, op):
    """An int or a 1-tuple of ints as an int (PyTorch's ``_single``)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {value!r}")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{op}: {name} must be an int or a 1-tuple of ints, got {value!r}")
    return value


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-D cross-correlation over an (N, C_in, L) or unbatched (C_in, L) input, PyTorch's
    ``conv1d``; weight (C_out, C_in/groups, k).

    Computed by the 2-D kernels on a height-1 image: x (N, C_in, 1, L) and weight
    (C_out, C_in/groups, 1, k), so ``Lo = floor((L + 2p - d(k-1) - 1) / s) + 1`` and every
    derivative is conv2d's. ``padding`` may be ``'valid'`` or ``'same'`` (stride 1).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.conv1d(tn.ones(1, 1, 4), tn.ones(1, 1, 2)).numpy().tolist()
    [[[2.0, 2.0, 2.0]]]
    """
    op = "conv1d"
    check_tensor(input, op, "input", ndim=(2, 3), floating=True)
    check_tensor(weight, op, "weight", ndim=3, floating=True)
    stride = _single(stride, "stride", op)
    dilation = _single(dilation, "dilation", op)
    if isinstance(padding, str):
        pad2 = padding
    else:
        pad2 = (0, _single(padding, "padding", op))
    try:
        y = conv2d(_unsqueeze(input, -2), _unsqueeze(weight, -2), bias, (1, stride), pad2,
                   (1, dilation), groups)
    except (ValueError, TypeError) as e:   # name this op; sizes are of the height-1 image
        message = str(e).removeprefix("conv2d: ")
        raise type(e)(f"{op}: {message} (as a conv2d on a height-1 image)") from None
    return _squeeze(y, -2)
