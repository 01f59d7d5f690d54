"""Differentiable collectives: collectives as graph nodes (``torch.distributed.nn.functional``).

``all_reduce(x)`` returns ``y = Σ_r x_r`` on every rank. Each rank's loss L_r depends on
every rank's ``x`` through ``y``, and the gradient of the total loss ``Σ_r L_r`` with
respect to this rank's ``x`` is ``Σ_r ∂L_r/∂y``, which is again an all-reduce of the
incoming gradients: the sum all-reduce is its own adjoint. So the backward of the node
is one more ``all_reduce``, written as the same op, and double backward follows.

Every rank must run the same collectives in the same order, forward and backward; with
the same model on every rank the backward walk visits the nodes in the same order.
"""
from __future__ import annotations

from ..autograd import Function
from ..tensor import Tensor
from . import collectives

__all__ = ["all_reduce"]


class AllReduceSum(Function):
    def forward(self, x):
        out = Tensor(x.copy())
        collectives.all_reduce(out)
        return out.data

    def backward(self, grad):
        return AllReduceSum.apply(grad)


def all_reduce(tensor: Tensor) -> Tensor:
    """A new Tensor holding the sum of ``tensor`` over all ranks, differentiable.

    >>> import tinynet as tn, tinynet.distributed as dist
    >>> dist.init_process_group("mpi")
    >>> x = tn.tensor([1.0, 2.0], requires_grad=True)
    >>> dist.functional.all_reduce(x).tolist()     # one rank: the tensor itself
    [1.0, 2.0]
    """
    collectives._check_tensor("all_reduce", tensor, floating=True)
    return AllReduceSum.apply(tensor)
