"""``DistributedDataParallel``: every rank keeps a replica; gradients are averaged in buckets.

Protocol, per training step, on every rank (W ranks, each on its own slice of the batch)::

    wrap:     check every rank has the same parameter names, shapes, dtypes (all-gather of
              the names, shapes and dtypes; an error naming the first mismatch on every rank);
              broadcast parameters and buffers from rank 0
    forward:  broadcast buffers from rank 0 (broadcast_buffers=True); arm the buckets
    backward: the engine finishes a parameter's gradient  ->  its post-accumulate hook
                  copies grad / W into the parameter's slot of its bucket (a flat array)
                  if the bucket is now full: start a non-blocking allreduce (MPI_Iallreduce)
                  of it, and of every full bucket after it in launch order
              the backward's end (a queued callback):
                  wait for every bucket; copy each averaged slice back into ``param.grad``
    step:     every rank applies the same averaged gradient to the same weights

Buckets hold parameters in reverse registration order, which is roughly the order in
which backward finishes their gradients (the last layer first), up to ``bucket_cap_mb``
each and one dtype each. A bucket's allreduce starts as soon as its last gradient is in,
so the communication of the late layers runs while backward is still computing the
early ones. Buckets are launched strictly in index order on every rank, because MPI
requires every rank to start the same collectives in the same order.

Unused parameters. A parameter that took no part in the loss gets no gradient, so its
bucket never fills. ``find_unused_parameters=False`` (the default, as in PyTorch) makes
that an error at the end of backward, naming the parameters; ``True`` fills their slots
with zeros at the end of backward and adds one small allreduce of a "used" mask: a
parameter used on no rank keeps ``grad`` untouched (None), one used on some rank gets
the average like every other.

``no_sync()``: forwards and backwards inside it only accumulate into ``.grad`` locally; the
first synchronised backward after it averages the accumulated sums (gradient accumulation).

Cost per step: the gradients cross the wire once (2·(W-1)/W of their bytes per rank in
the allreduce), plus one copy into and one out of the buckets. With CuPy parameters the
buckets live in host memory: two more PCIe copies per step (staged, slow; no NCCL yet).
"""
from __future__ import annotations

import contextlib
import time

from ... import backend
from ...autograd import queue_callback, is_grad_enabled, no_grad
from ...backend import numpy as np
from ...tensor import Tensor
from ..module import Module

__all__ = ["DistributedDataParallel"]


class _Bucket:
    """A flat host array holding the gradients of ``params`` back to back."""

    def __init__(self, index, params, dtype):
        self.index, self.params, self.dtype = index, params, dtype
        self.offsets, total = [], 0
        for _, p in params:
            self.offsets.append(total)
            total += p.data.size
        self.buffer = np.zeros(total, dtype=dtype)
        self.reset()

    def reset(self):
        self.missing = len(self.params)
        self.work = None

    def view(self, slot):
        _, p = self.params[slot]
        start = self.offsets[slot]
        return self.buffer[start:start + p.data.size].reshape(p.shape)


class DistributedDataParallel(Module):
    """Wraps ``module`` so that ``backward()`` leaves every rank with the gradient of the
    whole global batch: the average over ranks of each rank's gradient.
    ``state_dict()`` keys carry PyTorch's ``module.`` prefix; ``.module`` is the model.

    Parameters
    ----------
    module : Module
        The model, already on its device, identical in structure on every rank.
    bucket_cap_mb : float
        Largest bucket, in MiB (25, PyTorch's default).
    broadcast_buffers : bool
        Copy rank 0's buffers (e.g. BatchNorm's running statistics) to every rank at
        each forward.
    find_unused_parameters : bool
        Allow parameters that get no gradient in a step (see the module docstring).
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25, broadcast_buffers: bool = True,
                 find_unused_parameters: bool = False):
        super().__init__()
        from ... import distributed as dist
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a tinynet.nn.Module, "
                            f"got {type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self._dist = dist
        self._comm = dist.process_group.communicator()
        self.module = module
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.world_size = self._comm.Get_size()
        self._check_same_structure()
        with no_grad():
            for _, t in list(module.named_parameters()) + list(module.named_buffers()):
                dist.broadcast(t, src=0)
        trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._buckets = self._make_buckets(trainable[::-1])
        self._slot_of = {}
        for b in self._buckets:
            for slot, (_, p) in enumerate(b.params):
                self._slot_of[id(p)] = (b, slot)
                p.register_post_accumulate_grad_hook(self._on_grad_ready)
        self._require_sync = True     # toggled by no_sync()
        self._armed = False           # set by a forward that will be synchronised
        self._consumed = False        # that forward's backward has been averaged
        self._next_launch = 0
        self._ready = set()
        self.comm_events = []         # (event, bucket, perf_counter time) of the last step

    # -------------------------------------------------------------- wrap-time checks
    def _check_same_structure(self) -> None:
        mine = [(kind, name, tuple(t.shape), str(t.dtype))
                for kind, named in (("parameter", self.module.named_parameters()),
                                    ("buffer", self.module.named_buffers()))
                for name, t in named]
        everyone = self._comm.allgather(mine)     # names and shapes only: small, pickled
        reference = everyone[0]
        for rank, theirs in enumerate(everyone[1:], start=1):
            if theirs == reference:
                continue
            for i in range(max(len(reference), len(theirs))):
                a = reference[i] if i < len(reference) else None
                b = theirs[i] if i < len(theirs) else None
                if a != b:
                    raise ValueError(
                        f"DistributedDataParallel: ranks hold different models: entry {i} is "
                        f"{_describe(a)} on rank 0 but {_describe(b)} on rank {rank}; every rank "
                        f"must build the same module")

    def _make_buckets(self, params):
        cap = self.bucket_cap_mb * 2 ** 20
        buckets, current, size = [], [], 0
        for name, p in params:
            nbytes = p.data.size * p.dtype.itemsize
            if current and (size + nbytes > cap or p.dtype != current[0][1].dtype):
                buckets.append(_Bucket(len(buckets), current, current[0][1].dtype))
                current, size = [], 0
            current.append((name, p))
            size += nbytes
        if current:
            buckets.append(_Bucket(len(buckets), current, current[0][1].dtype))
        return buckets

    # -------------------------------------------------------------- forward
    def forward(self, *args, **kwargs):
        if self.broadcast_buffers and self.world_size > 1:
            with no_grad():
                for _, b in self.module.named_buffers():
                    self._dist.broadcast(b, src=0)
        self._armed = self._require_sync and is_grad_enabled() and self.world_size > 1
        self._consumed = False
        if self._armed:
            for b in self._buckets:
                b.reset()
            self._next_launch, self._ready = 0, set()
            self.comm_events = []
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside: forward/backward accumulate gradients locally, no communication."""
        previous, self._require_sync = self._require_sync, False
        try:
            yield
        finally:
            self._require_sync = previous

    # -------------------------------------------------------------- backward hooks
    def _on_grad_ready(self, param) -> None:
        if not self._armed:
            if self._consumed:
                raise RuntimeError(
                    "DistributedDataParallel: a second backward after one forward (retain_graph) "
                    "would leave these gradients un-averaged and the ranks would drift apart; run "
                    "forward again for each backward, or accumulate inside no_sync()")
            return
        if not self._ready:
            queue_callback(self._finish_backward)
        bucket, slot = self._slot_of[id(param)]
        if id(param) in self._ready:
            raise RuntimeError("DistributedDataParallel: a parameter received its gradient twice in "
                               "one step (two backwards after one forward); run forward again, or "
                               "accumulate with no_sync()")
        self._ready.add(id(param))
        self._fill(bucket, slot, param.grad.data)
        bucket.missing -= 1
        self._launch_ready_buckets()

    def _fill(self, bucket, slot, grad) -> None:
        # Pre-divide by W while copying, so the allreduce sum is already the average.
        np.multiply(backend.asnumpy(grad), bucket.dtype.type(1.0 / self.world_size),
                    out=bucket.view(slot), casting="unsafe")

    def _launch_ready_buckets(self) -> None:
        MPI = self._dist.process_group._mpi()
        while self._next_launch < len(self._buckets) and self._buckets[self._next_launch].missing == 0:
            b = self._buckets[self._next_launch]
            b.work = self._comm.Iallreduce(MPI.IN_PLACE, b.buffer, op=MPI.SUM)
            self.comm_events.append(("launch", b.index, time.perf_counter()))
            self._next_launch += 1
        # MPI makes progress only inside MPI calls: give the started ones a push.
        for b in self._buckets[:self._next_launch]:
            if b.work is not None:
                b.work.Test()

    def _finish_backward(self) -> None:
        self._armed, self._consumed = False, True
        unused = [(b, slot) for b in self._buckets for slot, (_, p) in enumerate(b.params)
                  if id(p) not in self._ready]
        if unused and not self.find_unused_parameters:
            for b in self._buckets[:self._next_launch]:   # leave no collective half-done
                b.work.Wait()
            names = ", ".join(b.params[slot][0] for b, slot in unused[:8])
            more = f" and {len(unused) - 8} more" if len(unused) > 8 else ""
            raise RuntimeError(
                f"DistributedDataParallel: parameters received no gradient in this step: {names}{more}. "
                f"Every rank waits for every gradient; pass find_unused_parameters=True if some "
                f"parameters may take no part in the loss")
        for b, slot in unused:
            b.view(slot)[...] = 0
            b.missing -= 1
        self._launch_ready_buckets()
        used_somewhere = None
        if self.find_unused_parameters:
            MPI = self._dist.process_group._mpi()
            mask = np.ones(len(self._slot_of), dtype=np.int32)
            order = [p for b in self._buckets for _, p in b.params]
            for i, p in enumerate(order):
                if id(p) not in self._ready:
                    mask[i] = 0
            self._comm.Allreduce(MPI.IN_PLACE, mask, op=MPI.SUM)
            used_somewhere = {id(p) for p, m in zip(order, mask) if m > 0}
        for b in self._buckets:
            start = time.perf_counter()
            b.work.Wait()
            self.comm_events.append(("wait", b.index, start, time.perf_counter()))
            for slot, (_, p) in enumerate(b.params):
                if used_somewhere is not None and id(p) not in used_somewhere:
                    continue
                self._store_grad(p, b.view(slot))

    @staticmethod
    def _store_grad(p, averaged) -> None:
        device = backend.device_of(p.data)
        if p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == p.dtype:
            p.grad.data[...] = backend.to_device(averaged, device)
        else:
            p.grad = Tensor(backend.to_device(averaged.copy(), device))

    def extra_repr(self) -> str:
        return (f"world_size={self.world_size}, buckets={len(self._buckets)}, "
                f"bucket_cap_mb={self.bucket_cap_mb:g}, broadcast_buffers={self.broadcast_buffers}")


def _describe(entry) -> str:
    if entry is None:
        return "missing"
    kind, name, shape, dtype = entry
    return f"{kind} {name!r} of shape {shape} and dtype {dtype}"
