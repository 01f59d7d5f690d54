"""``SyncBatchNorm``: batch norm whose statistics span every rank's part of the batch.

With data parallelism each rank sees N/W samples; plain BatchNorm would normalise with
the statistics of that slice (noisy for small per-rank batches, and not what one process
on the whole batch computes). SyncBatchNorm computes the statistics of the global batch.

Forward, per channel c, on rank r with n_r values per channel::

    m_r  = mean of x_r                      M2_r = Σ (x_r - m_r)²       (stable, local)
    [S1, S2, N] = allreduce_sum([n_r·m_r,  M2_r + n_r·m_r²,  n_r])       (one allreduce,
                                                                        in float64)
    mean = S1 / N        var = S2 / N - mean²                           (biased, as BatchNorm)
    y    = (x - mean) / sqrt(var + eps) · weight + bias

The local centring keeps each rank's sums exact; the combination is done in float64, so
the cancellation in ``S2/N - mean²`` costs ~1e-16·mean²/var relative, far below float32's
resolution. The whole forward is written in tinynet ops, with the allreduce as the
differentiable node of ``tinynet.distributed.functional`` (its adjoint is the same
allreduce of the incoming gradients): backward then performs exactly one allreduce, of
the gradient of the 2C statistics — Σ_r ∂L/∂S1 and Σ_r ∂L/∂S2 — and every derivative
order follows. The running statistics are updated as BatchNorm's, with the global
unbiased variance ``var·N/(N-1)``.

Without a process group, or in a world of one rank, it is exactly ``BatchNorm``.
"""
from __future__ import annotations

from .. import functional as F
from ..autograd import no_grad
from ..tensor import Tensor, float64
from ._validate import check_input
from .module import Module
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, *) with statistics over all ranks (``torch.nn.SyncBatchNorm``).

    >>> import tinynet as tn
    >>> bn = SyncBatchNorm(3)                 # no process group: plain batch norm
    >>> tuple(bn(tn.randn(4, 3, 2, 2)).shape)
    (4, 3, 2, 2)
    """
    _name = "SyncBatchNorm"
    _ndims = (2, 3, 4, 5)
    _what = "an input of shape (N, C, *) with at least 2 dims"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None, *, bias: bool = True):
        _check_process_group("SyncBatchNorm", process_group)
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)

    def forward(self, input: Tensor) -> Tensor:
        from .. import distributed as dist
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        _check_channels(self, input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        return _sync_batch_norm(input, self.running_mean if self.track_running_stats else None,
                                self.running_var if self.track_running_stats else None,
                                self.weight, self.bias, factor, self.eps, dist)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """``module`` with every BatchNorm1d/2d replaced by a SyncBatchNorm holding the same
        parameters, buffers and settings (the module itself is changed and returned)."""
        _check_process_group("convert_sync_batchnorm", process_group)
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats, bias=module.bias is not None)
            for name in ("weight", "bias"):
                if getattr(module, name, None) is not None:
                    setattr(sync, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                if getattr(module, name, None) is not None:
                    sync.register_buffer(name, getattr(module, name))
            sync.train(module.training)
            return sync
        for name, child in list(module.named_children()):
            converted = cls.convert_sync_batchnorm(child)
            if converted is not child:
                setattr(module, name, converted)
        return module


def _check_process_group(op, process_group) -> None:
    if process_group is not None:
        raise ValueError(f"{op}: tinynet has one process group (the MPI world); pass "
                         f"process_group=None")


def _check_channels(layer, input) -> None:
    check_input(input, layer._name, layer._ndims, layer._what)
    if input.shape[1] != layer.num_features:
        raise ValueError(f"{layer._name}: expected input with {layer.num_features} channels "
                         f"(num_features), got {input.shape[1]} channels in input of shape "
                         f"{tuple(input.shape)}")


def _sync_batch_norm(x, running_mean, running_var, weight, bias, momentum, eps, dist):
    C = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    cshape = (1, C) + (1,) * (x.ndim - 2)
    n_local = x.data.size // C
    m = x.mean(axes)
    xc = x - m.reshape(cshape)
    m2 = (xc * xc).sum(axes)
    m64 = m.to(float64)
    count = Tensor(x.xp.full((1,), float(n_local), dtype=float64))
    total = dist.functional.all_reduce(F.cat([m64 * n_local, m2.to(float64) + m64 * m64 * n_local, count]))
    N = float(total.data[2 * C])
    if N <= 1:
        raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel over all ranks "
                         f"when training, got {int(N)}")
    mean64 = total[:C] / N
    var64 = total[C:2 * C] / N - mean64 * mean64
    mean, var = mean64.to(x.dtype), var64.to(x.dtype)
    scale = (var + eps) ** -0.5
    if weight is not None:
        scale = scale * weight
    y = (x - mean.reshape(cshape)) * scale.reshape(cshape)
    if bias is not None:
        y = y + bias.reshape(cshape)
    if running_mean is not None:
        with no_grad():
            rm, rv = running_mean.data, running_var.data
            rm *= (1.0 - momentum)
            rm += momentum * mean64.data.astype(rm.dtype)
            rv *= (1.0 - momentum)
            rv += momentum * (var64.data * (N / (N - 1))).astype(rv.dtype)
    return y
