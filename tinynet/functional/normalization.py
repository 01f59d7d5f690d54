"""Batch, layer and group normalization.

Batch norm over an input (N, C, *spatial) normalizes each channel c with the statistics of
its M = N·prod(spatial) values:

    μ = mean(x),  σ² = mean((x - μ)²)           (biased, used to normalize)
    x̂ = (x - μ) / sqrt(σ² + eps),  y = γ·x̂ + β

and its backward (g = dL/dy, sums over the M values of one channel):

    dβ = Σ g,   dγ = Σ g·x̂,
    dx = γ / sqrt(σ² + eps) · (g - Σg / M - x̂ · Σ g·x̂ / M)

In training mode the running statistics are updated in place, as PyTorch does:
``running = (1 - momentum)·running + momentum·batch``, with the *unbiased* variance
σ²·M/(M - 1) for ``running_var``. In evaluation mode (or with ``training=False``) the
running statistics normalize, and y is an affine function of x.
"""
from __future__ import annotations

from ..autograd import Function, is_grad_enabled, depends_on, anchor
from .. import backend, blas_threads
from ..tensor import Tensor
from ._operands import check_tensor, check_same_device
from .reduction import sum as _sum, mean as _mean
from .shape import reshape

__all__ = ["batch_norm", "layer_norm", "group_norm"]


def _channel_shape(x_ndim: int, C: int) -> tuple:
    """(1, C, 1, 1, ...): broadcasts a per-channel vector against (N, C, *spatial)."""
    return (1, C) + (1,) * (x_ndim - 2)


#: Smallest batch for which batch norm reduces over the batch first (see
#: :class:`BatchNormTrain`): measured 0.35-0.9x the time of per-row reductions from N8 to
#: N64 on 4x4 to 32x32 maps, but 1.1-2x at N1-N4, where there is little batch to sum.
_BATCH_FIRST_MIN = 8


class _Channels:
    """Per-channel reductions and broadcasts over an ``(N, c, L)`` block of channels.

    Batch first (``batch_first``): ``Σ`` adds the N images' ``(c, L)`` planes (one
    vectorised pass over rows of ``c·L`` contiguous values), then the c rows of L; a
    per-channel vector is repeated to ``(c, L)``, so broadcasts against the block also run
    over ``c·L``-long rows. Otherwise ``Σ`` runs along each of the ``N·c`` rows of L values
    (NumPy's pairwise sum), then over N, and vectors broadcast as ``(c, 1)``. NumPy pays a
    fixed cost per row of an inner loop, so the first wins where L is short and N large
    (ResNet-18's N16 4x4 maps: 0.35x), the second where N is 1-4 and the repeated vectors
    would be as large as the block itself.
    """

    def __init__(self, xp, x3):
        """For the blocks of ``x3`` (N, C, L); the order follows from its batch size."""
        self.xp, self.L = xp, x3.shape[2]
        self.batch_first = x3.shape[0] >= _BATCH_FIRST_MIN

    def sum(self, a):
        """``(c,)`` sums over the batch and the positions of ``a`` ``(N, c, L)``."""
        return a.sum(axis=0).sum(axis=1) if self.batch_first else a.sum(axis=2).sum(axis=0)

    def dot(self, a, b):
        """``(c,)`` sums of ``a·b`` over the batch and the positions, no product array."""
        if self.batch_first:
            return self.xp.einsum("ncl,ncl->cl", a, b).sum(axis=1)
        return self.xp.einsum("ncl,ncl->c", a, b)

    def expand(self, v):
        """A ``(c,)`` vector shaped to broadcast against ``(N, c, L)``."""
        if self.batch_first:
            return self.xp.repeat(v, self.L).reshape(v.shape[0], self.L)
        return v[:, None]


def _compiled_route(*arrays) -> bool:
    """Whether batch norm runs compiled (:mod:`tinynet.kernels.compiled.batch_norm`) on
    ``arrays``, (N, C, L) blocks of float32 or float64. At every size: forward + backward
    measured 0.30-0.62x the NumPy route's time on ResNet-18's N16 maps (64x32x32 to
    512x4x4) and 0.57-0.76x on blocks of 128 to 1024 values, where the NumPy route's
    dozen calls cost more than the kernel's one (2 threads, docs/kernels/normalization.md)."""
    return backend.use_compiled(*arrays)


def _affine(x3, weight, bias):
    """γ and β as C-contiguous (C,) arrays of x's dtype: ones and zeros where absent, so
    one compiled signature serves every module (γ·invstd and + 0 are exact)."""
    xp, C = backend.get_array_module(x3), x3.shape[1]
    weight = xp.ones(C, dtype=x3.dtype) if weight is None else xp.ascontiguousarray(weight, dtype=x3.dtype)
    bias = xp.zeros(C, dtype=x3.dtype) if bias is None else xp.ascontiguousarray(bias, dtype=x3.dtype)
    return weight, bias


class BatchNormTrain(Function):
    """Batch-statistics normalization, fused forward and analytic backward.

    forward(x, weight, bias): weight and bias are (C,) arrays or None.

    Both directions view x as (N, C, L) and run over channel chunks on tinynet's pool
    (channels are independent). Per-channel sums never use NumPy's multi-axis ``sum`` over
    (0, 2, 3), which walked the same data 2-3x slower: they take two steps, in the order
    :class:`_Channels` picks by batch size (:data:`_BATCH_FIRST_MIN`). Sums of products
    (``Σ(x-μ)²``, ``Σg·x̂``) are one ``einsum`` each, without a product array in memory.
    Where compiled kernels are on (:func:`_compiled_route`), the forward and the
    first-order backward run :mod:`tinynet.kernels.compiled.batch_norm` instead (2 + 2
    passes); the double-backward path stays tinynet ops.
    """
    outputs_unread = True

    def forward(self, x, weight, bias, eps=1e-5, stats=None):
        xp = backend.get_array_module(x)
        N, C = x.shape[:2]
        cshape = _channel_shape(x.ndim, C)
        self.cshape, self.eps = cshape, eps
        x3 = xp.ascontiguousarray(x).reshape(N, C, -1)
        y = xp.empty_like(x3)
        mean, var = xp.empty(C, dtype=x.dtype), xp.empty(C, dtype=x.dtype)
        invstd = xp.empty(C, dtype=x.dtype)
        if _compiled_route(x3):
            from ..kernels.compiled import batch_norm as _c
            w, b = _affine(x3, weight, bias)
            nbytes = 2 * x.nbytes
            if not blas_threads.run_float32_job(backend.native_chunks(C, nbytes, x), _c.forward_piece.address,
                                                x3.shape, (x3, w, b, xp.array([eps], dtype=xp.float64), y,
                                                           mean, var, invstd)):
                backend.parallel_for(C, lambda lo, hi: _c.forward(x3, w, b, float(eps), y, mean, var, invstd,
                                                                  lo, hi), nbytes=nbytes, like=x)
            return self._keep(mean, var, invstd, stats, y.reshape(x.shape))
        M = N * x3.shape[2]
        ch = _Channels(xp, x3)

        def channels(lo, hi):
            xs, ys = x3[:, lo:hi], y[:, lo:hi]
            m = ch.sum(xs) / M
            xp.subtract(xs, ch.expand(m), out=ys)                  # x - μ: becomes the output
            v = ch.dot(ys, ys) / M
            mean[lo:hi], var[lo:hi] = m, v
            invstd[lo:hi] = 1.0 / xp.sqrt(v + eps)
            ys *= ch.expand(invstd[lo:hi] if weight is None else invstd[lo:hi] * weight[lo:hi])
            if bias is not None:
                ys += ch.expand(bias[lo:hi])
        backend.parallel_for(C, channels, nbytes=3 * x.nbytes, like=x, calls=5)
        return self._keep(mean, var, invstd, stats, y.reshape(x.shape))

    def _keep(self, mean, var, invstd, stats, y):
        # Only (C,)-sized statistics are kept: backward recomputes x - μ from the input,
        # which the graph holds anyway, instead of keeping a second activation-sized array.
        self.mean, self.invstd = mean, invstd
        if stats is not None:  # the caller updates its running statistics from these
            stats["mean"], stats["var"] = mean, var
        return y

    def backward(self, g):
        x, weight, bias = self.inputs
        if is_grad_enabled():
            return self._backward_ops(g, x, weight, bias)
        # First-order only (no graph requested): per channel, with x̂ = (x - μ)·invstd,
        #   dx = scale·g + k·(x - μ) + c,   scale = γ·invstd,  k = -scale·invstd·Σg·x̂ / M,
        #   c = -scale·Σg / M;   dγ = Σ g·x̂,  dβ = Σ g.
        xp = backend.get_array_module(g.data)
        N, C = x.shape[:2]
        x3 = xp.ascontiguousarray(x.data).reshape(N, C, -1)
        g3 = xp.ascontiguousarray(xp.broadcast_to(g.data, x.shape)).reshape(N, C, -1)
        want_x = self.needs_input_grad[0]
        if _compiled_route(x3, g3):
            from ..kernels.compiled import batch_norm as _c
            w = _affine(x3, None if weight is None else weight.data, None)[0]
            gx = xp.empty_like(x3) if want_x else xp.empty((0, 0, 0), dtype=x3.dtype)
            sum_g, sum_gx = xp.empty(C, dtype=x3.dtype), xp.empty(C, dtype=x3.dtype)
            scratch = xp.empty((C, 3), dtype=x3.dtype)
            nbytes = 3 * x3.nbytes
            if not blas_threads.run_float32_job(backend.native_chunks(C, nbytes, x3), _c.backward_piece.address,
                                                x3.shape + (want_x,),
                                                (x3, g3, self.mean, self.invstd, w, gx, sum_g, sum_gx, scratch)):
                backend.parallel_for(C, lambda lo, hi: _c.backward(x3, g3, self.mean, self.invstd, w, want_x,
                                                                   gx, sum_g, sum_gx, scratch, lo, hi),
                                     nbytes=nbytes, like=x3)
        else:
            gx, sum_g, sum_gx = self._backward_numpy(xp, x3, g3, weight, want_x)
        gw = Tensor(sum_gx) if weight is not None and self.needs_input_grad[1] else None
        gb = Tensor(sum_g) if bias is not None and self.needs_input_grad[2] else None
        return (Tensor(gx.reshape(x.shape)) if want_x else None), gw, gb

    def _backward_numpy(self, xp, x3, g3, weight, want_x):
        """``(dx, Σg, Σg·x̂)`` on the NumPy route, in channel chunks on tinynet's pool."""
        N, C = x3.shape[:2]
        M = N * x3.shape[2]
        ch = _Channels(xp, x3)
        gx = xp.empty_like(x3) if want_x else None
        sum_g, sum_gx = xp.empty(C, dtype=g3.dtype), xp.empty(C, dtype=g3.dtype)
        mean, invstd = self.mean, self.invstd

        def channels(lo, hi):
            gs = g3[:, lo:hi]
            centred = x3[:, lo:hi] - ch.expand(mean[lo:hi])
            sg = ch.sum(gs)
            sgx = ch.dot(gs, centred) * invstd[lo:hi]
            sum_g[lo:hi], sum_gx[lo:hi] = sg, sgx
            if not want_x:
                return
            scale = invstd[lo:hi] if weight is None else invstd[lo:hi] * weight.data[lo:hi]
            centred *= ch.expand(-scale * invstd[lo:hi] * sgx / M)
            centred -= ch.expand(scale * sg / M)
            xs = gx[:, lo:hi]
            xp.multiply(gs, ch.expand(scale), out=xs)
            xs += centred
        backend.parallel_for(C, channels, nbytes=4 * x3.nbytes, like=x3, calls=7)
        return gx, sum_g, sum_gx

    def _backward_ops(self, g, x, weight, bias):
        """The same formulas as tinynet ops, recomputing x̂ from x so that every derivative
        order flows through μ and σ (double backward)."""
        axes, cshape = (0,) + tuple(range(2, x.ndim)), self.cshape
        M = x.data.size // x.shape[1]
        mu = _mean(x, axes, keepdim=True)
        xc = x - mu
        invstd = (_mean(xc * xc, axes, keepdim=True) + self.eps) ** -0.5
        xhat = xc * invstd
        sum_g = _sum(g, axes, keepdim=True)
        sum_gx = _sum(g * xhat, axes, keepdim=True)
        scale = invstd if weight is None else invstd * reshape(weight, cshape)
        gx = scale * (g - sum_g / float(M) - xhat * (sum_gx / float(M)))
        gw = reshape(sum_gx, (-1,)) if weight is not None else None
        gb = depends_on(reshape(sum_g, (-1,)), x) if bias is not None else None
        return gx, gw, gb


def _check_vector(v, name, C, x, op, allow_grad=True):
    if v is None:
        return None
    check_tensor(v, op, name, ndim=1)
    if v.shape[0] != C:
        raise ValueError(f"{op}: {name} has {v.shape[0]} elements but input has {C} channels "
                         f"(input shape {tuple(x.shape)})")
    return v if v.dtype == x.dtype or not allow_grad else v.to(x.dtype)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float | None = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization over (N, C), (N, C, L) or (N, C, H, W), PyTorch's ``batch_norm``.

    ``training=True`` normalizes with the batch statistics and, when running statistics are
    given, updates them in place with ``momentum`` (a number in [0, 1]; the cumulative
    average of ``momentum=None`` needs a batch counter, which the ``BatchNorm`` modules keep).
    ``training=False`` normalizes with the running statistics (or, when there are none,
    with the batch statistics).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> y = F.batch_norm(tn.tensor([[1.0], [3.0]]), None, None, training=True)
    >>> [round(v, 3) for v in y.numpy().ravel().tolist()]
    [-1.0, 1.0]
    """
    op = "batch_norm"
    check_tensor(input, op, "input", floating=True)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C) or (N, C, *spatial), got "
                         f"shape {tuple(input.shape)}")
    if eps <= 0:
        raise ValueError(f"{op}: eps must be positive, got {eps}")
    C = input.shape[1]
    weight = _check_vector(weight, "weight", C, input, op)
    bias = _check_vector(bias, "bias", C, input, op)
    _check_vector(running_mean, "running_mean", C, input, op, allow_grad=False)
    _check_vector(running_var, "running_var", C, input, op, allow_grad=False)
    check_same_device(op, input=input, weight=weight, bias=bias, running_mean=running_mean,
                      running_var=running_var)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    use_batch_stats = training or running_mean is None
    if not use_batch_stats:
        cshape = _channel_shape(input.ndim, C)
        invstd = Tensor((1.0 / input.xp.sqrt(running_var.data.astype(input.dtype) + eps)))
        scale = invstd if weight is None else weight * invstd
        shift = -Tensor(running_mean.data.astype(input.dtype)) * scale
        if bias is not None:
            shift = shift + anchor(bias, input)
        return input * reshape(scale, cshape) + reshape(shift, cshape)
    M = input.data.size // C if C else 0
    if M <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got "
                         f"input shape {tuple(input.shape)}")
    update = training and running_mean is not None
    if update and (momentum is None or not 0.0 <= momentum <= 1.0):
        raise ValueError(f"{op}: momentum must be a number in [0, 1], got {momentum!r}")
    stats = {} if update else None
    out = BatchNormTrain.apply(input, weight, bias, eps=float(eps), stats=stats)
    if update:
        # PyTorch's rule: the running variance takes the unbiased batch variance.
        rm, rv = running_mean.data, running_var.data
        rm *= (1.0 - momentum)
        rm += momentum * stats["mean"].astype(rm.dtype, copy=False)
        rv *= (1.0 - momentum)
        rv += (momentum * M / (M - 1)) * stats["var"].astype(rv.dtype, copy=False)
    return out


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalizes over the trailing ``normalized_shape`` dims (biased variance), then γ·x̂ + β.

    Composed of differentiable ops, so every derivative order follows.
    """
    op = "layer_norm"
    check_tensor(input, op, "input", floating=True)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape or len(shape) > input.ndim:
        raise ValueError(f"{op}: normalized_shape {shape} does not match the trailing dims of "
                         f"input shape {tuple(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            check_tensor(t, op, name, floating=True)
            if tuple(t.shape) != shape:
                raise ValueError(f"{op}: {name} has shape {tuple(t.shape)} but normalized_shape "
                                 f"is {shape}")
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    mu = _mean(input, axes, keepdim=True)
    xc = input - mu
    y = xc * (_mean(xc * xc, axes, keepdim=True) + eps) ** -0.5
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + anchor(bias, input)
    return y


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Group normalization (Wu & He, 2018), PyTorch's ``group_norm``.

    The C channels of an (N, C, *) input are split into ``num_groups`` groups of C/G
    consecutive channels; each (sample, group) is normalized with the biased mean and
    variance of its (C/G)·prod(*) values, then each channel is scaled and shifted:

        x̂ = (x - μ_ng) / sqrt(σ²_ng + eps),   y = γ_c·x̂ + β_c        γ, β: (C,)

    Unlike batch norm it uses no batch statistics, so it behaves the same in training and
    evaluation and for any batch size. Composed of differentiable ops (reshape, mean, the
    affine map), so every derivative order follows.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> y = F.group_norm(tn.tensor([[[1.0], [3.0], [5.0], [5.0]]]), 2)
    >>> [round(v, 3) for v in y.numpy().ravel().tolist()]
    [-1.0, 1.0, 0.0, 0.0]
    """
    op = "group_norm"
    check_tensor(input, op, "input", floating=True)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C, *), got shape {tuple(input.shape)}")
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups <= 0:
        raise ValueError(f"{op}: num_groups must be a positive int, got {num_groups!r}")
    N, C = input.shape[0], input.shape[1]
    if C % num_groups:
        raise ValueError(f"{op}: the {C} channels of input shape {tuple(input.shape)} do not "
                         f"split into num_groups={num_groups} equal groups")
    if eps <= 0:
        raise ValueError(f"{op}: eps must be positive, got {eps}")
    weight = _check_vector(weight, "weight", C, input, op)
    bias = _check_vector(bias, "bias", C, input, op)
    check_same_device(op, input=input, weight=weight, bias=bias)
    per_group = C // num_groups
    for n in input.shape[2:]:
        per_group *= n
    grouped = reshape(input, N, num_groups, per_group)     # (N, G, C/G · prod(*)); N may be 0
    mu = _mean(grouped, -1, keepdim=True)
    xc = grouped - mu
    y = reshape(xc * (_mean(xc * xc, -1, keepdim=True) + eps) ** -0.5, input.shape)
    cshape = _channel_shape(input.ndim, C)
    if weight is not None:
        y = y * reshape(weight, cshape)
    if bias is not None:
        y = y + reshape(bias, cshape)
    return y
