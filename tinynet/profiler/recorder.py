"""The recorder behind :func:`tinynet.profiler.profile`: events from the engine's callback.

The engine (``tinynet/autograd.py``) calls an optional hook, and only while a profile is
running (``autograd.set_profile_hook``):

    Function.apply(cls, ...)  ->  hook.forward(cls, args, kwargs)      one "op" event
    node.backward(grads)      ->  hook.backward(node, grads)           one "backward" event
    tensor.backward() walk    ->  hook.backward_pass(walk)             one "engine" event
    with record_function(n)   ->                                        one "region" event

Events nest: a conv2d node's backward calls ``conv_transpose2d`` and ``conv2d_weight``,
whose op events sit inside it. Each event keeps its wall time ``[start, end]`` (from
``time.perf_counter_ns``) and the time of its direct children, so

    self time = (end - start) - children's (end - start) - profiler bookkeeping inside it

and the self times of all events add up to the time spent inside events. An op run by
the backward walk (an op inside a "backward" or "engine" event) is in the *backward*
phase, every other one in the *forward* phase.

Cost when profiling: two clock reads and a few attribute writes per op (~2-4 µs in
CPython); the bookkeeping done after an op's clock stops is measured and reported as
"profiler overhead" instead of being charged to the enclosing event. When a GPU is in
use (CuPy loaded), ``synchronize=True`` waits for the device before each clock read, so
an op's time is its kernels' time rather than their launch time.
"""
from __future__ import annotations

import threading
import time

from .. import autograd, backend
from .flops import count_flops

__all__ = ["Event", "Recorder", "active_recorder"]

_clock = time.perf_counter_ns
_active = None   # the running Recorder, if any


def active_recorder():
    """The running :class:`Recorder`, or None."""
    return _active


class Event:
    """One timed call: ``kind`` is "op", "backward", "engine" or "region"; ``phase``
    "forward" or "backward"; times in nanoseconds from ``time.perf_counter_ns``."""

    __slots__ = ("name", "kind", "phase", "start", "end", "child_ns", "flops", "nbytes",
                 "shapes", "depth", "child_arrays")

    def __init__(self, name, kind, phase, depth):
        self.name, self.kind, self.phase, self.depth = name, kind, phase, depth
        self.child_ns = 0
        self.flops = None
        self.nbytes = 0
        self.shapes = None
        self.child_arrays = None

    @property
    def total_ns(self) -> int:
        return self.end - self.start

    @property
    def self_ns(self) -> int:
        return self.end - self.start - self.child_ns


def _shape(a):
    shape = getattr(a, "shape", None)
    return None if shape is None else tuple(shape)


def _arrays(result):
    """The arrays inside an op's result (a Tensor, or a tuple of Tensors/None)."""
    items = result if isinstance(result, tuple) else (result,)
    return [t.data for t in items if t is not None and hasattr(t, "data")]


class Recorder:
    """Collects :class:`Event` objects while installed as the engine's profile hook."""

    def __init__(self, synchronize: bool = False, record_shapes: bool = True):
        self.synchronize = bool(synchronize)
        self.record_shapes = bool(record_shapes)
        self.events: list[Event] = []
        self.overhead_ns = 0
        self.start = self.end = None
        self.thread = threading.get_ident()
        self._stack: list[Event] = []
        self._backward_depth = 0
        self._previous_hook = None

    # ------------------------------------------------------------- lifetime
    def install(self) -> None:
        global _active
        if _active is not None:
            raise RuntimeError("profile: a profile is already running; profiles do not nest")
        self._previous_hook = autograd.set_profile_hook(self)
        _active = self
        if self.synchronize:
            backend.synchronize()
        self.start = _clock()

    def uninstall(self) -> None:
        global _active
        if self.synchronize:
            backend.synchronize()
        self.end = _clock()
        autograd.set_profile_hook(self._previous_hook)
        _active = None

    # ------------------------------------------------------------- events
    def open(self, name: str, kind: str) -> Event:
        phase = "backward" if self._backward_depth else "forward"
        event = Event(name, kind, phase, len(self._stack))
        self._stack.append(event)
        if self.synchronize:
            backend.synchronize()
        event.start = _clock()
        return event

    def close(self, event: Event) -> None:
        if self.synchronize:
            backend.synchronize()
        event.end = _clock()
        self._stack.pop()
        self.events.append(event)
        if self._stack:
            self._stack[-1].child_ns += event.end - event.start

    def _charge_overhead(self, since: int) -> None:
        """Time spent in bookkeeping after an event closed: not the enclosing event's work."""
        spent = _clock() - since
        self.overhead_ns += spent
        if self._stack:
            self._stack[-1].child_ns += spent

    # ------------------------------------------------------------- the engine's hook
    def forward(self, cls, args, kwargs):
        event = self.open(cls.__name__, "op")
        autograd._profile_hook = None      # cls.apply must not call back into us
        try:
            result = cls.apply(*args, **kwargs)
        finally:
            autograd._profile_hook = self
            self.close(event)
        arrays = _arrays(result)
        event.nbytes = sum(a.nbytes for a in arrays)
        arg_shapes = [_shape(a) for a in args]
        event.flops = count_flops(event.name, arg_shapes, kwargs, [a.shape for a in arrays])
        if self.record_shapes:
            event.shapes = arg_shapes
        parent = self._stack[-1] if self._stack else None
        if parent is not None and parent.kind == "backward":
            if parent.child_arrays is None:
                parent.child_arrays = set()
            parent.child_arrays.update(id(a) for a in arrays)
        self._charge_overhead(event.end)
        return result

    def backward(self, node, grad_outputs):
        event = self.open(type(node).__name__, "backward")
        try:
            grads = node.backward(*grad_outputs)
        finally:
            self.close(event)
        # Gradients computed by child ops were counted by those ops; count the rest.
        made_by_children = event.child_arrays or ()
        items = grads if isinstance(grads, tuple) else (grads,)
        event.nbytes = sum(a.nbytes for a in _arrays(items) if id(a) not in made_by_children)
        event.child_arrays = None
        self._charge_overhead(event.end)
        return grads

    def backward_pass(self, walk):
        event = self.open("autograd.backward", "engine")
        event.phase = "backward"
        self._backward_depth += 1
        try:
            walk()
        finally:
            self._backward_depth -= 1
            self.close(event)

    def region(self, name: str):
        return _Region(self, name)


class _Region:
    """``with`` block timed as a "region" event (see :func:`tinynet.profiler.record_function`)."""

    __slots__ = ("recorder", "name", "event")

    def __init__(self, recorder, name):
        self.recorder, self.name, self.event = recorder, name, None

    def __enter__(self):
        self.event = self.recorder.open(self.name, "region")
        return self

    def __exit__(self, *exc):
        self.recorder.close(self.event)
