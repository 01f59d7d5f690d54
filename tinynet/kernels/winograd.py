"""Winograd minimal filtering F(2x2, 3x3): a 3x3 stride-1 convolution in 2.25x fewer
multiplications (raw arrays, no autograd). Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", CVPR 2016.

One dimension first. Two outputs of a 3-tap correlation, y_i = Σ_k d_{i+k} g_k, read a
4-sample input tile d_0..d_3. Evaluating the polynomials at the points 0, 1, -1, ∞
gives them with 4 multiplications instead of 6:

    m_0 = (d_0 - d_2) g_0                  m_1 = (d_1 + d_2)(g_0 + g_1 + g_2)/2
    m_3 = (d_1 - d_3) g_2                  m_2 = (d_2 - d_1)(g_0 - g_1 + g_2)/2
    y_0 = m_0 + m_1 + m_2                  y_1 = m_1 - m_2 - m_3

In matrices, ``y = Aᵀ [(G g) ⊙ (Bᵀ d)]`` with

    Bᵀ = [[1,  0, -1,  0],      G = [[1,    0,    0  ],      Aᵀ = [[1, 1,  1,  0],
          [0,  1,  1,  0],           [1/2,  1/2,  1/2],             [0, 1, -1, -1]]
          [0, -1,  1,  0],           [1/2, -1/2,  1/2],
          [0,  1,  0, -1]]           [0,    0,    1  ]]

(expand m_0 + m_1 + m_2 and m_1 - m_2 - m_3 to check: every d_i g_k term cancels except
those of y_0 = d_0 g_0 + d_1 g_1 + d_2 g_2 and y_1 = d_1 g_0 + d_2 g_1 + d_3 g_2).
Nesting the 1-D algorithm in both axes gives the 2-D one, for a 4x4 tile d of one input
channel and a 3x3 filter g:

    Y (2x2) = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

and, since everything before Aᵀ(.)A is linear, the sum over input channels moves inside:
with U = G g Gᵀ per (C_out, C_in) pair and V = Bᵀ d B per (C_in, tile), each of the
16 positions (ξ, ν) of the 4x4 transformed tile is one matrix product

    M[ξ, ν] (C_out, P) = U[ξ, ν] (C_out, C_in) @ V[ξ, ν] (C_in, P),    P = N·⌈Ho/2⌉·⌈Wo/2⌉

and Y = Aᵀ M A per output tile. Cost: 16·C_out·C_in·P multiply-adds = 4·C_out·C_in·N·Ho·Wo,
against 9·C_out·C_in·N·Ho·Wo for im2col (2.25x fewer); the transforms are additions only
(Bᵀ and Aᵀ hold 0 and ±1), done here on strided slices of whole arrays. Memory: V holds
16·C_in·P ≈ 4x the input (im2col's columns are 9x), M 4x the output.

The weight gradient uses the same tiles (:func:`conv2d_weight_winograd`): dM = A dY Aᵀ
per tile, dU[ξ, ν] = dM[ξ, ν] Vᵀ[ξ, ν] summed over the tiles, and the weight
transform's adjoint, again 16 GEMMs.

Error. The transforms only add, subtract and halve, so each transformed value carries a
few roundings more than the direct sum: the float32 error bound grows from the direct
convolution's ~9·C_in·ε·Σ|x||w| to a small constant multiple of it (U entries are at most
the sum of |g| over the filter, V entries at most 4·max|d|, and the output transform adds
at most 9 products). Measured on random data it is about 1-2x the im2col error
(``tests/kernels/test_winograd.py`` checks it against a float64 reference).

F(4x4, 3x3). Four outputs from a 6-sample tile, evaluating at the points 0, 1, -1, 1/2,
-2 and ∞: 6 multiplications instead of 12 in one dimension, 36 instead of 144 in two
(4x fewer; the 36 GEMMs are as tall as F(2x2)'s 16 but over a quarter of the tiles).
The matrices follow from the Toom-Cook construction: with the five finite points p_j,

    Aᵀ[i, j] = p_j^i  (and Aᵀ's last column (0, 0, 0, 1): the point ∞),
    G[j, k]  = p_j^k / Π_{l≠j} (p_j - p_l)  (and G's last row (0, 0, 1)),

and Bᵀ the unique matrix for which ``Aᵀ[(G g) ⊙ (Bᵀ d)]`` is the correlation for every d
and g (a linear system in Bᵀ's 36 entries; :data:`B_T4`, whose every entry is a sum of
at most two powers of two). Its transforms read and write less memory than F(2x2)'s:
V holds 36 values per 16 outputs (2.25x the input; F(2x2) 4x) and M likewise. Error: the
points' powers up to 8 and the weights' thirds and fifteenths amplify rounding; with
0, ±1, ±2 (Lavin & Gray's choice) a float32 64-channel layer measured 2.3x the error of
these points, which sit closer to the ones that give the least error (Barabasz et al.,
"Error analysis and improving the accuracy of Winograd convolution", 2020). Measured on
random data, 16-256 channels, relative to each output's scale Σ|x||w| in units of
float32's ε: the forward 2-11 ε (F(2x2) 0.7-1.3 ε, im2col 0.4-2.3 ε), the weight
gradient 1-11 ε (F(2x2) 0.3-2.3 ε), i.e. at most ~1.3·10⁻⁶ of the scale;
``tests/kernels/test_winograd.py`` bounds both at 32 ε. It runs on the compiled route
only (:func:`conv2d_winograd`'s ``tile``).
"""
from __future__ import annotations

import math

from tinynet import backend, cblas

__all__ = ["B_T", "G", "A_T", "B_T4", "G4", "A_T4", "transform_weight", "conv2d_winograd", "conv2d_weight_winograd",
           "set_winograd_mode", "get_winograd_mode"]

B_T = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
G = ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1))
A_T = ((1, 1, 1, 0), (0, 1, -1, -1))
#: F(4x4, 3x3)'s matrices, points 0, 1, -1, 1/2, -2, ∞ (see the module docstring).
B_T4 = ((1, -1.5, -2, 1.5, 1, 0), (0, -1, 0.5, 2.5, 1, 0), (0, 1, -2.5, 0.5, 1, 0),
        (0, -2, -1, 2, 1, 0), (0, 0.5, -1, -0.5, 1, 0), (0, 1, -1.5, -2, 1.5, 1))
G4 = ((1, 0, 0), (1 / 3, 1 / 3, 1 / 3), (-1 / 3, 1 / 3, -1 / 3), (-16 / 15, -8 / 15, -4 / 15),
      (1 / 15, -2 / 15, 4 / 15), (0, 0, 1))
A_T4 = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 0.5, -2, 0), (0, 1, 1, 0.25, 4, 0), (0, 1, -1, 0.125, -8, 1))

_mode = "auto"


def set_winograd_mode(mode: str) -> None:
    """``"auto"`` (use Winograd where it is measured faster), ``"always"`` (wherever it
    applies: 3x3, stride 1, dilation 1, groups 1) or ``"never"``."""
    global _mode
    if mode not in ("auto", "always", "never"):
        raise ValueError(f"set_winograd_mode: mode must be 'auto', 'always' or 'never', got {mode!r}")
    _mode = mode


def get_winograd_mode() -> str:
    return _mode


def transform_weight(w, flipped: bool = False, tile: int = 2):
    """U = G g Gᵀ for every filter: w (C_out, C_in, 3, 3) -> (16, C_out, C_in), position
    (ξ, ν) of the 4x4 transformed filter first; with ``tile`` 4, F(4x4, 3x3)'s
    (36, C_out, C_in) by :data:`G4` (the same algebra with kron(G4, G4), (36, 9)).

    ``U[ξ, ν] = Σ_ab G[ξ, a] g[a, b] G[ν, b]`` is linear in the 9 filter taps with
    coefficients ``kron(G, G)[4ξ + ν, 3a + b]``, so all filters transform in one GEMM
    (16, 9) @ (9, C_out·C_in) instead of C_out·C_in tiny matrix products; the filters'
    taps enter as a transposed operand, so the result is (16, C_out·C_in) as it is
    stored, with no transposing copy (512->512: 12 -> 1 ms). Where compiled kernels run,
    the same sums are one compiled pass on every core
    (:func:`tinynet.kernels.compiled.winograd_filters.transform_filters`): a U-Net step's
    29 transforms 3.3 -> 2.6 ms inside the step (256->256 F(4x4) alone: 0.67 -> 0.43 ms).

    ``flipped=True`` transforms every filter rotated by 180 degrees, ``g[2 - a, 2 - b]``,
    without making it: the rotation reverses the order of the 9 taps ``3a + b``, so it is
    the same GEMM with the columns of ``kron(G, G)`` reversed. (A stride-1 transposed conv
    is a conv with the rotated filters; see :func:`conv2d_winograd`'s ``transposed``.)
    """
    xp = backend.get_array_module(w)
    taps = _taps(xp, w.dtype, tile, flipped)            # (16, 9) or (36, 9)
    C_out, C_in = w.shape[0], w.shape[1]
    if backend.use_compiled(w):
        from .compiled import winograd_filters as kernels
        w9 = xp.ascontiguousarray(w).reshape(-1, 9)
        u = xp.empty((taps.shape[0], w9.shape[0]), dtype=w.dtype)
        _filters_job(kernels.transform_filters, kernels.transform_piece, (w9.shape[0], taps.shape[0]),
                     (w9, taps, u), w9.shape[0], u.nbytes + w9.nbytes)
    else:
        u = taps @ w.reshape(-1, 9).T                   # (positions, C_out·C_in)
    return u.reshape(taps.shape[0], C_out, C_in)


_TAPS = {}      # the arrays of _g and _taps, by array module, dtype, tile (and rotation)


def _g(xp, dtype, tile):
    """:data:`G` (4, 3), or :data:`G4` (6, 3) with ``tile`` 4, as an array of ``dtype``,
    made once per array module, dtype and tile."""
    key = (xp.__name__, str(dtype), tile)
    g = _TAPS.get(key)
    if g is None:
        g = _TAPS[key] = xp.asarray(G4 if tile == 4 else G, dtype=dtype)
    return g


def _taps(xp, dtype, tile, flipped=False):
    """``kron(G, G)`` (16, 9), or ``kron(G4, G4)`` (36, 9) with ``tile`` 4, of ``dtype``,
    its columns reversed if ``flipped``: the coefficients of U's positions in the 9
    taps, made once per array module, dtype and tile (``kron`` and the conversion cost
    more than a small layer's whole transform)."""
    key = (xp.__name__, str(dtype), tile, flipped)
    taps = _TAPS.get(key)
    if taps is None:
        g = _g(xp, dtype, tile)
        taps = xp.kron(g, g)
        _TAPS[key] = taps = xp.ascontiguousarray(taps[:, ::-1]) if flipped else taps
    return taps


def _filters_job(kernel, piece, params, arrays, filters, nbytes):
    """Runs a kernel of :mod:`tinynet.kernels.compiled.winograd_filters` over the
    ``filters``: as a native job of its float32 ``piece`` (table: ``params``, then
    ``arrays``) where one can run (:func:`tinynet.blas_threads.run_float32_job`), else in
    ``parallel_for`` chunks (or in place)."""
    from tinynet import blas_threads
    if not blas_threads.run_float32_job(backend.native_chunks(filters, nbytes, arrays[0]), piece.address,
                                        params, arrays):
        backend.parallel_for(filters, lambda lo, hi: kernel(*arrays, lo, hi), nbytes=nbytes, like=arrays[0])


def _filters(w, transposed, tile=2):
    """(16, C_out, C_in): the transformed filters of the conv, or, with ``transposed``, of
    the stride-1 transposed conv whose weight ``w`` is (C_in, C_out, 3, 3): the conv with
    each filter ``w[c, o]`` rotated by 180 degrees. That conv's weight would be the copy
    ``w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)``, a gather of runs of one element
    (0.1-0.6 ms for the U-Net's 64- to 256-channel weights); transformed unrotated with
    the reversed taps and read transposed, no copy of it is made."""
    if transposed:
        return transform_weight(w, flipped=True, tile=tile).transpose(0, 2, 1)
    return transform_weight(w, tile=tile)


def _input_transform(xpad, th, tw, out):
    """V = Bᵀ d B for every 4x4 tile (stride 2) of xpad (Hp, Wp, L), into ``out``
    (4, 4, th, tw, L). Rows first: Bᵀ's rows on strided row slices, then its rows again
    on strided column slices of each result. L (images x channels) is innermost, so
    every pass runs over contiguous runs of L values."""
    xp = backend.get_array_module(xpad)
    rows = [xpad[r:r + 2 * th - 1:2] for r in range(4)]                  # d_r, (th, Wp, L)
    combos = (xp.subtract(rows[0], rows[2]), xp.add(rows[1], rows[2]),
              xp.subtract(rows[2], rows[1]), xp.subtract(rows[1], rows[3]))
    for i, t in enumerate(combos):
        cols = [t[:, s:s + 2 * tw - 1:2] for s in range(4)]
        xp.subtract(cols[0], cols[2], out=out[i, 0])
        xp.add(cols[1], cols[2], out=out[i, 1])
        xp.subtract(cols[2], cols[1], out=out[i, 2])
        xp.subtract(cols[1], cols[3], out=out[i, 3])
    return out


def _output_transform(m, out):
    """Y = Aᵀ M A for every tile: m (4, 4, th, tw, L) -> out (th, 2, tw, 2, L)."""
    xp = backend.get_array_module(m)
    s0 = m[0] + m[1] + m[2]                      # Aᵀ's first row over ξ: (4, th, tw, L)
    s1 = m[1] - m[2]
    s1 -= m[3]
    for a, s in enumerate((s0, s1)):
        left = out[:, a, :, 0]
        xp.add(s[0], s[1], out=left)
        left += s[2]
        right = out[:, a, :, 1]
        xp.subtract(s[1], s[2], out=right)
        right -= s[3]
    return out


def _tiles(H, W, padding, tile=2):
    """Output size and output tiles per axis, of ``tile`` x ``tile`` outputs each (with
    tile 2 the tiles read a padded grid of ``(2·th + 2, 2·tw + 2)``, :func:`_padded_grid`)."""
    Ho, Wo = H + 2 * padding[0] - 2, W + 2 * padding[1] - 2
    return (Ho, Wo), (-(-Ho // tile), -(-Wo // tile))


def _padded_grid(xs, padding, th, tw):
    """The images xs (n, C, H, W) copied channels last into a zero-padded grid
    (Hp, Wp, n·C), Hp = 2·th + 2, Wp = 2·tw + 2; rows of the grid on tinynet's threads."""
    xp = backend.get_array_module(xs)
    n, C, H, W = xs.shape
    ph, pw = padding
    Hp, Wp = 2 * th + 2, 2 * tw + 2
    xpad = xp.empty((Hp, Wp, n, C), dtype=xs.dtype)

    def pad_rows(lo, hi):           # rows of the padded grid are independent
        a, b = min(max(lo, ph), hi), max(min(hi, ph + H), lo)   # the rows holding x
        xpad[lo:a] = 0
        xpad[b:hi] = 0
        if b > a:
            xpad[a:b, :pw] = 0
            xpad[a:b, pw + W:] = 0
            backend.copy(xpad[a:b, pw:pw + W], xs[:, :, a - ph:b - ph].transpose(2, 3, 0, 1))
    backend.parallel_for(Hp, pad_rows, nbytes=2 * xs.nbytes, like=xs)
    return xpad.reshape(Hp, Wp, n * C)


#: Images and bytes of transformed tiles per block on the CPU (:func:`conv2d_winograd`,
#: :func:`conv2d_weight_winograd`): 4 images and about 2 MB of V were the fastest of the
#: sizes measured for the forward (1-16 tile rows x 1-8 images, N16 64x32x32 and
#: 128x16x16).
_BLOCK_IMAGES = 4
_BLOCK_BYTES = 2 << 20
#: Images per block with the compiled transforms: None, as many whole images as fit in
#: :data:`_BLOCK_BYTES` of tiles, at least one (N8 64->64 56x56, one thread: 13.8 / 15.3 ms
#: forward / weight gradient with one image per block against 16.9 / 17.5 ms with 4; a
#: fixed single image made N16 512->512 4x4 2.1x slower, its GEMMs 4 tiles wide).
_COMPILED_BLOCK_IMAGES = None
#: The compiled forward's blocks: about this many bytes of V, but at least
#: :data:`_COMPILED_FORWARD_MIN_TILES` tiles, and at most :data:`_BLOCK_BYTES`.
#: Thirtieth session, against 2 MB, best of three medians of 15, two threads: 64
#: channels 0.84-0.88x the time (N8 56x56, N16 and N2 32x32), N2 32->32 and 64->32
#: 64x64 0.81-0.84x, 128 and more channels 0.98-1.01x; without the floor, 256 input
#: channels lost 1.15-1.5x (their 16 GEMMs too narrow): 128 tiles keep their 2 MB.
_COMPILED_FORWARD_BLOCK_BYTES = 3 << 18
_COMPILED_FORWARD_MIN_TILES = 128


def _block_plan(x, th, tw, channels, images=_BLOCK_IMAGES, block_bytes=None, positions=16):
    """(images per group, tile rows per block) for the images x: ``images`` images (None:
    as many whole images as fit in ``block_bytes``, at least one) and about
    ``block_bytes`` (default :data:`_BLOCK_BYTES`) of transformed tiles (``positions``
    planes of ``channels`` values) on the CPU; the whole batch and all ``th`` tile rows
    on CuPy."""
    if backend.device_of(x).type != "cpu":
        return x.shape[0], th
    block_bytes = _BLOCK_BYTES if block_bytes is None else block_bytes
    tile_bytes = positions * channels * x.itemsize
    if images is None:
        images = max(1, block_bytes // (th * tw * tile_bytes))
    images = min(x.shape[0], images)
    return images, max(1, block_bytes // (tw * images * tile_bytes))


def _tile_blocks(xs, padding, th, tw, rows):
    """Yields ``(t0, tb, V)`` for the images xs (n, C, H, W), block by block of ``rows``
    tile rows: V (4, 4, tb, tw, n·C) of tile rows t0 .. t0 + tb - 1."""
    xp = backend.get_array_module(xs)
    flat = _padded_grid(xs, padding, th, tw)
    for t0 in range(0, th, rows):
        tb = min(rows, th - t0)
        yield t0, tb, _input_transform(flat[2 * t0:2 * t0 + 2 * tb + 2], tb, tw,
                                       xp.empty((4, 4, tb, tw, flat.shape[2]), dtype=xs.dtype))


#: Where the compiled kernels take F(4x4, 3x3): output maps of at least
#: :data:`_F4_MIN_SIDE` rows and columns and at least :data:`_F4_MIN_TILES` 4x4 tiles in
#: the batch (its 36 GEMMs are that wide). Thirty-first session, native jobs on two
#: threads, float32, against F(2x2, 3x3), forward / weight gradient: N16 64->64 32x32
#: (1,024 tiles) 0.75x / 0.79x, N8 64->64 56x56 0.74x / 0.70x, N16 128->128 16x16 (256)
#: 0.82x / 0.90x, N2 32->32 64x64 0.97x / 0.62x, N2 32->16 64x64 0.74x / 0.84x, N2
#: 64->64 32x32 (128) 0.96x / 0.90x; N16 256->256 8x8 (64 tiles) 1.04x / 1.14x, N2
#: 128->128 16x16 (32) 1.05x / 1.29x, N2 256->256 8x8 (8) 1.36x forward; 4x4 maps (one
#: tile an image) 1.5x on one thread.
_F4_MIN_SIDE = 8
_F4_MIN_TILES = 128


def default_tile(x_shape, padding, compiled=True) -> int:
    """The output tile side :func:`conv2d_winograd` and :func:`conv2d_weight_winograd`
    take by default: 4 (F(4x4, 3x3)) on the compiled route where :data:`_F4_MIN_SIDE`
    and :data:`_F4_MIN_TILES` allow, else 2."""
    N, _, H, W = x_shape
    Ho, Wo = H + 2 * padding[0] - 2, W + 2 * padding[1] - 2
    tiles = N * (-(-Ho // 4)) * (-(-Wo // 4))
    return 4 if compiled and min(Ho, Wo) >= _F4_MIN_SIDE and tiles >= _F4_MIN_TILES else 2


def _checked_tile(op, tile, x_shape, padding, compiled) -> int:
    """``tile`` if it is 2, or 4 on the compiled route; :func:`default_tile`'s where None;
    else a ValueError naming ``op``."""
    if tile is None:
        return default_tile(x_shape, padding, compiled)
    if tile not in (2, 4) or (tile == 4 and not compiled):
        raise ValueError(f"{op}: tile must be 2, or 4 where the compiled kernels run "
                         f"(tinynet.backend.use_compiled), got {tile!r}")
    return tile


def conv2d_winograd(x, w, bias=None, padding=(0, 0), transposed: bool = False, tile=None):
    """3x3, stride-1, dilation-1, single-group convolution by F(2x2, 3x3) or F(4x4, 3x3).

    Parameters
    ----------
    x : array (N, C_in, H, W)
    w : array (C_out, C_in, 3, 3); with ``transposed``, (C_in, C_out, 3, 3): the weight of
        a stride-1 transposed conv, computed as the conv with the filters rotated by 180
        degrees (``padding`` is then that conv's, ``2 - p``), without copying them
    bias : array (C_out,) or None
    padding : (ph, pw)
    tile : 2, 4 or None
        Output tile side: F(2x2, 3x3) or F(4x4, 3x3) (the compiled route only); None
        chooses (:func:`default_tile`).

    Returns
    -------
    y : array (N, C_out, Ho, Wo), Ho = H + 2ph - 2, Wo = W + 2pw - 2, equal (up to
        rounding) to ``W @ im2col(x) + b``.

    Layout: pixels first, channels last. The images are copied to a zero-padded
    (Hp, Wp, n, C_in) grid, so both transforms run over contiguous runs of n·C values (on
    NCHW their strided slices ran over rows of ⌈W/2⌉ values: 3-12x slower), the
    transformed tiles ``V[ξ, ν]`` are (P, C_in) matrices with P = (tile row, tile column,
    image), and each of the 16 products is ``M[ξ, ν] = V[ξ, ν] @ U[ξ, ν]ᵀ`` (P, C_out).
    One transposing copy per block of images gives NCHW.

    Blocks (CPU): groups of :data:`_BLOCK_IMAGES` images run side by side on tinynet's
    threads, each product on one thread (as the row-strip convolution does), and each
    group goes through its tile rows in blocks of about :data:`_BLOCK_BYTES` of V:
    transform, 16 products, output transform, while the block is in cache. On CuPy the
    whole batch is one block.
    """
    compiled = backend.use_compiled(x, w)
    tile = _checked_tile("conv2d_winograd", tile, x.shape, padding, compiled)
    if compiled:
        return _conv2d_compiled(x, w, bias, padding, transposed, tile)
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    u_t = _filters(w, transposed).transpose(0, 2, 1)     # U[ξ, ν]ᵀ, (16, C_in, C_out)
    C_out = u_t.shape[2]
    (Ho, Wo), (th, tw) = _tiles(H, W, padding)
    out = xp.empty((N, C_out, Ho, Wo), dtype=x.dtype)
    images, rows = _block_plan(x, th, tw, C)

    def image_groups(lo, hi):       # independent: side by side, each product on one thread
        for n0 in range(lo, hi, images):
            xs = x[n0:min(hi, n0 + images)]
            n = xs.shape[0]
            y = xp.empty((th, 2, tw, 2, n, C_out), dtype=x.dtype)
            for t0, tb, v in _tile_blocks(xs, padding, th, tw, rows):
                m = v.reshape(16, tb * tw * n, C) @ u_t     # 16 GEMMs (P, C_in) @ (C_in, C_out)
                _output_transform(m.reshape(4, 4, tb, tw, n * C_out),
                                  y[t0:t0 + tb].reshape(tb, 2, tw, 2, n * C_out))
            source = y.reshape(2 * th, 2 * tw, n, C_out)[:Ho, :Wo].transpose(2, 3, 0, 1)
            if bias is None:                            # transposing copies: BLAS's
                backend.copy(out[n0:n0 + n], source)
            else:
                backend.copy_add(out[n0:n0 + n], source, bias.reshape(-1, 1, 1))
    backend.parallel_for(N, image_groups, nbytes=16 * (x.nbytes + out.nbytes), like=x)
    return out


def _output_transform_adjoint(dy_grid, out):
    """dM = A dY Aᵀ for every tile, the adjoint of :func:`_output_transform`: dy_grid
    (2·th, 2·tw, L) -> out (4, 4, th, tw, L). ``A = A_Tᵀ`` maps a pair (d_0, d_1) to
    (d_0, d_0 + d_1, d_0 - d_1, -d_1); rows first, then columns."""
    xp = backend.get_array_module(dy_grid)
    r0, r1 = dy_grid[0::2], dy_grid[1::2]                              # (th, 2·tw, L)
    for i, t in enumerate((r0, xp.add(r0, r1), xp.subtract(r0, r1), xp.negative(r1))):
        c0, c1 = t[:, 0::2], t[:, 1::2]                                 # (th, tw, L)
        out[i, 0] = c0
        xp.add(c0, c1, out=out[i, 1])
        xp.subtract(c0, c1, out=out[i, 2])
        xp.negative(c1, out=out[i, 3])
    return out


def conv2d_weight_winograd(x, dy, padding=(0, 0), tile=None):
    """The weight gradient of :func:`conv2d_winograd`'s convolution, in the same algebra.

    x (N, C_in, H, W), dy (N, C_out, Ho, Wo) -> dW (C_out, C_in, 3, 3). ``tile``: 2 or 4
    (F(4x4, 3x3), its 36 positions, the compiled route only), None to choose
    (:func:`default_tile`).

    The forward is linear in U: ``M[ξ, ν] = V[ξ, ν] @ U[ξ, ν]ᵀ`` and ``Y = Aᵀ M A`` per
    tile, so by the chain rule

        dM = A dY Aᵀ  (per tile, 2x2 -> 4x4),   dU[ξ, ν] = dM[ξ, ν]ᵀ @ V[ξ, ν]  (C_out, C_in),

    and ``U = (G ⊗ G) @ taps`` gives ``dW = dUᵀ @ (G ⊗ G)`` over the 16 positions: 16
    GEMMs summing over the P tiles, 2.25x fewer multiply-adds than im2col's
    ``dY @ colsᵀ``, and the exact gradient (Winograd is exact in exact arithmetic). The
    output rows and columns past Ho, Wo of the last tiles get zero gradient: the
    forward cropped them.

    Blocks as in :func:`conv2d_winograd`: groups of images side by side on tinynet's
    threads, tile rows in blocks; each thread adds its blocks' products into its own
    partial dU, and the partials are summed in image order (the same sums every run).
    """
    compiled = backend.use_compiled(x, dy)
    tile = _checked_tile("conv2d_weight_winograd", tile, x.shape, padding, compiled)
    if compiled:
        return _weight_from_partials_compiled(_weight_partials_compiled(x, dy, padding, tile), tile)
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    C_out = dy.shape[1]
    (Ho, Wo), (th, tw) = _tiles(H, W, padding)
    images, rows = _block_plan(x, th, tw, max(C, C_out))
    partials = []

    def image_groups(lo, hi):       # independent: side by side, each its own partial dU
        du = xp.zeros((16, C_out, C), dtype=x.dtype)
        for n0 in range(lo, hi, images):
            xs, dys = x[n0:min(hi, n0 + images)], dy[n0:min(hi, n0 + images)]
            n = xs.shape[0]
            for t0, tb, v in _tile_blocks(xs, padding, th, tw, rows):
                grid = xp.empty((2 * tb, 2 * tw, n, C_out), dtype=x.dtype)
                inside = max(0, min(2 * (t0 + tb), Ho) - 2 * t0)    # rows of dy in the block
                grid[inside:] = 0
                grid[:inside, Wo:] = 0
                backend.copy(grid[:inside, :Wo], dys[:, :, 2 * t0:2 * t0 + inside].transpose(2, 3, 0, 1))
                dm = _output_transform_adjoint(grid.reshape(2 * tb, 2 * tw, n * C_out),
                                               xp.empty((4, 4, tb, tw, n * C_out), dtype=x.dtype))
                # 16 GEMMs (C_out, P) @ (P, C_in), summed over the block's P tiles
                P = tb * tw * n
                _add_products(du, dm.reshape(16, P, C_out).transpose(0, 2, 1), v.reshape(16, P, C))
        partials.append((lo, du))
    backend.parallel_for(N, image_groups, nbytes=16 * (x.nbytes + dy.nbytes), like=x)
    return _weight_from_partials(partials)


def _add_products(du, a, b):
    """``du[k] += a[k] @ b[k]`` for the 16 positions k, each product added in by the GEMM
    itself (:func:`tinynet.backend.matmul_into`, β = 1): ``du += a @ b`` would first
    build all 16 products as a temporary the size of ``du`` (a thread's whole partial
    dU: 2 MB for the U-Net's 256->128 up-convolution, where the step's memory peaks)."""
    for k in range(16):
        backend.matmul_into(a[k], b[k], du[k], accumulate=True)


def _weight_from_partials(partials, tile=2):
    """dW (C_out, C_in, 3, 3) from the threads' partial dU (positions, C_out, C_in),
    ``(first image, dU)`` pairs: their sum in image order (the same sums every run), then
    the weight transform's adjoint ``dW = dUᵀ @ (G ⊗ G)``."""
    du = backend.sum_in_order(partials)
    positions, C_out, C = du.shape
    dw = du.reshape(positions, C_out * C).T @ _taps(backend.get_array_module(du), du.dtype, tile)
    return dw.reshape(C_out, C, 3, 3)                    # from (C_out·C_in, 9)


def _weight_from_partials_compiled(du, tile):
    """:func:`_weight_from_partials` for the compiled route's partials, stacked in image
    order (S, positions, C_out, C_in): the sum and the adjoint in one compiled pass on
    every core (:func:`tinynet.kernels.compiled.winograd_filters.adjoint_filters`)."""
    from .compiled import winograd_filters as kernels
    S, positions, C_out, C = du.shape
    xp = backend.get_array_module(du)
    dw = xp.empty((C_out * C, 9), dtype=du.dtype)
    _filters_job(kernels.adjoint_filters, kernels.adjoint_piece, (S, tile + 2, C_out * C),
                 (du.reshape(S, positions, C_out * C), _g(xp, du.dtype, tile), dw), C_out * C,
                 du.nbytes + dw.nbytes)
    return dw.reshape(C_out, C, 3, 3)


# ---------------------------------------------------------------- compiled transforms
# Where Numba is installed (backend.use_compiled), the transforms run as compiled loops
# (tinynet.kernels.compiled.winograd) that read NCHW tiles straight from the images and
# write NCHW outputs, with the 16 GEMMs in BLAS between them; the layout is
# channels-first, M[ξ, ν] (C_out, P) = U[ξ, ν] (C_out, C_in) @ V[ξ, ν] (C_in, P).

def _conv2d_compiled(x, w, bias, padding, transposed=False, tile=2):
    """:func:`conv2d_winograd` with compiled transforms: per block of images and tile
    rows, V (positions, C_in, n, tb, tw) from the images, a GEMM ``U[k] @ V[k]`` per
    position (16 for F(2x2, 3x3), 36 for F(4x4, 3x3)), and the output transform with the
    bias straight into the NCHW output."""
    from .compiled import winograd as compiled, winograd4
    xp = backend.get_array_module(x)
    x = xp.ascontiguousarray(x)
    N, C, H, W = x.shape
    u = _filters(w, transposed, tile)                # (positions, C_out, C_in)
    positions, C_out = u.shape[0], u.shape[1]
    (Ho, Wo), (th, tw) = _tiles(H, W, padding, tile)
    has_bias = bias is not None
    b = xp.ascontiguousarray(bias) if has_bias else xp.zeros(1, dtype=x.dtype)
    out = xp.empty((N, C_out, Ho, Wo), dtype=x.dtype)
    block_bytes = min(_BLOCK_BYTES, max(_COMPILED_FORWARD_BLOCK_BYTES,
                                        _COMPILED_FORWARD_MIN_TILES * positions * C * x.itemsize))
    images, rows = _block_plan(x, th, tw, C, _COMPILED_BLOCK_IMAGES, block_bytes, positions)
    nbytes = 16 * (x.nbytes + out.nbytes)
    if _native_forward(x, u, b, has_bias, out, images, rows, (th, tw), padding, tile,
                       backend.native_chunks(N, nbytes, x)):
        return out
    transforms = winograd4 if tile == 4 else compiled

    def image_groups(lo, hi):       # independent: side by side, each product on one thread
        v_buf, m_buf = _block_buffers(x, min(images, hi - lo), min(rows, th), tw, C, C_out, positions)
        for n0 in range(lo, hi, images):
            n = min(hi, n0 + images) - n0
            for t0 in range(0, th, rows):
                tb = min(rows, th - t0)
                v = transforms.input_tiles(x, n0, t0, padding[0], padding[1],
                                           _view(v_buf, (positions, C, n, tb, tw)))
                m = _view(m_buf, (positions, C_out, n * tb * tw))
                xp.matmul(u, v.reshape(positions, C, n * tb * tw), out=m)   # (C_out, C_in) @ (C_in, P) each
                transforms.output_tiles(m.reshape(positions, C_out, n, tb, tw), b, has_bias, n0, t0, out)
    backend.parallel_for(N, image_groups, nbytes=nbytes, like=x)
    return out


def _native_forward(x, u, b, has_bias, out, images, rows, tiles, padding, tile, pieces) -> bool:
    """:func:`_conv2d_compiled`'s image groups as a native job (float32, on OpenBLAS's
    workers without the GIL; :func:`tinynet.kernels.compiled.winograd.forward_piece`), in
    the ``pieces`` chunks ``parallel_for`` would use. A Python chunk takes the GIL on its
    worker, and where that hand-over is dear a two-image job of Python chunks ran only
    1.3x faster than on one thread (twenty-ninth session's Intel guest, N2 64->64 32x32).
    False, having run nothing, where it cannot run (one chunk, float64, no OpenBLAS that
    runs native pieces)."""
    import numpy
    from tinynet import blas_threads
    blas = blas_threads.native_gemm(x, out, b)
    if pieces < 2 or blas is None:
        return False
    from .compiled import winograd as compiled
    N, C, H, W = x.shape
    C_out, Ho, Wo = out.shape[1:]
    th, tw = tiles
    transposed = not u.flags.c_contiguous and u.transpose(0, 2, 1).flags.c_contiguous
    base = u.transpose(0, 2, 1) if transposed else numpy.ascontiguousarray(u)
    per_piece = images * min(rows, th) * tw * u.shape[0]
    v = numpy.empty(pieces * C * per_piece, dtype=x.dtype)
    m = numpy.empty(pieces * C_out * per_piece, dtype=x.dtype)
    params = (N, C, H, W, C_out, Ho, Wo, th, tw, images, rows, padding[0], padding[1], has_bias)
    params += blas + (transposed, tile)
    return blas_threads.run_native_job(pieces, compiled.forward_piece.address, params,
                                       (x, base, out, b, v, m))


def _block_buffers(x, images, rows, tw, C, C_out, positions=16):
    """One thread's two flat buffers for its blocks' tiles, sized for its largest block
    (``images`` images of ``rows`` tile rows): ``positions·C`` and ``positions·C_out``
    values per tile.
    Each block takes a view of the size it needs (:func:`_view`), so the blocks reuse
    them: a fresh pair per block kept the last block's pair alive while the next V was
    allocated (1.5x the memory; N16 64->64 32x32, one thread: 6.2 against 4.2 MB of
    temporaries for the weight gradient)."""
    xp = backend.get_array_module(x)
    tiles = images * rows * tw * positions
    return xp.empty(C * tiles, dtype=x.dtype), xp.empty(C_out * tiles, dtype=x.dtype)


def _view(buffer, shape):
    """The first ``prod(shape)`` values of the flat ``buffer`` as a C-contiguous array of
    ``shape``."""
    return buffer[:math.prod(shape)].reshape(shape)


def _weight_partials_compiled(x, dy, padding, tile=2):
    """The partial dU of :func:`conv2d_weight_winograd` with compiled transforms, one per
    chunk of images, stacked in image order (chunks, positions, C_out, C_in): per block,
    V from the images, dM (positions, C_out, n, tb, tw) = A dY Aᵀ from dy, and
    ``dU[k] += dM[k] @ V[k]ᵀ``."""
    from .compiled import winograd as compiled, winograd4
    xp = backend.get_array_module(x)
    x, dy = xp.ascontiguousarray(x), xp.ascontiguousarray(dy)
    N, C, H, W = x.shape
    C_out = dy.shape[1]
    positions = (tile + 2) ** 2
    _, (th, tw) = _tiles(H, W, padding, tile)
    images, rows = _block_plan(x, th, tw, max(C, C_out), _COMPILED_BLOCK_IMAGES, None, positions)
    blas = cblas.gemm_address(x.dtype)       # (address, integer bits) of NumPy's GEMM, or None
    nbytes = 16 * (x.nbytes + dy.nbytes)
    native = _native_weight(x, dy, images, rows, padding, tile, backend.native_chunks(N, nbytes, x))
    if native is not None:
        return native
    partials = []
    transforms = winograd4 if tile == 4 else compiled

    def image_groups(lo, hi):       # independent: side by side, each its own partial dU
        du = xp.zeros((positions, C_out, C), dtype=x.dtype)
        v_buf, dm_buf = _block_buffers(x, min(images, hi - lo), min(rows, th), tw, C, C_out, positions)
        for n0 in range(lo, hi, images):
            n = min(hi, n0 + images) - n0
            for t0 in range(0, th, rows):
                tb = min(rows, th - t0)
                P = n * tb * tw
                v = transforms.input_tiles(x, n0, t0, padding[0], padding[1],
                                           _view(v_buf, (positions, C, n, tb, tw)))
                dm = transforms.output_tiles_adjoint(dy, n0, t0, _view(dm_buf, (positions, C_out, n, tb, tw)))
                # a GEMM (C_out, P) @ (P, C_in) per position, summed over the block's P
                # tiles: one compiled call for all where NumPy's BLAS can be called from it
                dm3, v3 = dm.reshape(positions, C_out, P), v.reshape(positions, C, P)
                if blas is not None:
                    compiled.add_products(blas[0], blas[1] == 64, du, dm3, v3)
                else:
                    _add_products(du, dm3, v3.transpose(0, 2, 1))
        partials.append((lo, du))
    backend.parallel_for(N, image_groups, nbytes=nbytes, like=x)
    partials.sort(key=lambda p: p[0])
    return xp.stack([du for _, du in partials])


def _native_weight(x, dy, images, rows, padding, tile, pieces):
    """:func:`_weight_partials_compiled`'s image groups as a native job (float32;
    :func:`tinynet.kernels.compiled.winograd.weight_piece`), in the ``pieces`` chunks
    ``parallel_for`` would use: the pieces' partial dU (pieces, 16, C_out, C_in), or None,
    having run nothing, where it cannot run (one chunk, float64, no OpenBLAS that runs
    native pieces)."""
    import numpy
    from tinynet import blas_threads
    blas = blas_threads.native_gemm(x, dy)
    if pieces < 2 or blas is None:
        return None
    from .compiled import winograd as compiled
    N, C, H, W = x.shape
    C_out, Ho, Wo = dy.shape[1:]
    _, (th, tw) = _tiles(H, W, padding, tile)
    positions = (tile + 2) ** 2
    per_piece = images * min(rows, th) * tw * positions
    partials = numpy.zeros((pieces, positions, C_out, C), dtype=x.dtype)
    v = numpy.empty(pieces * C * per_piece, dtype=x.dtype)
    dm = numpy.empty(pieces * C_out * per_piece, dtype=x.dtype)
    params = (N, C, H, W, C_out, Ho, Wo, th, tw, images, rows, padding[0], padding[1]) + blas + (tile,)
    ran = blas_threads.run_native_job(pieces, compiled.weight_piece.address, params, (x, dy, partials, v, dm))
    return partials if ran else None
