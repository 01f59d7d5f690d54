"""The reverse-mode engine: grad modes, the ``Function`` protocol and ``backward``.

A graph node is a ``Function`` instance. ``Function.apply`` runs ``forward`` on raw arrays
and, when some input requires a gradient and grad mode is on, records the node on its
outputs (``Tensor._ctx``). ``backward`` walks the nodes in reverse topological order:

    order  = reverse post-order of the graph under ``root``       (iterative DFS)
    g[root] = seed gradient
    for node in order:
        grads_in = node.backward(*g[outputs of node])             (Tensors in, Tensors out)
        g[input] += grads_in[input]   (summed down to the input's shape if broadcast)

``backward`` of a Function is written with tinynet ops, so it builds a graph of its own
when ``create_graph=True`` (double backward) and runs under ``no_grad`` otherwise.

Hooks (PyTorch's, for the code above the engine: ``nn.parallel`` averages gradients with them):

* ``t.register_hook(fn)``: ``fn(grad)`` runs when the gradient with respect to ``t`` is
  complete; a Tensor it returns replaces that gradient. For a non-leaf the hook lives on
  the node that made ``t`` (``node._output_hooks``), for a leaf on the Tensor.
* ``leaf.register_post_accumulate_grad_hook(fn)``: ``fn(leaf)`` runs once per backward,
  after the leaf's whole gradient has been added into ``leaf.grad``. A leaf used by several
  nodes receives several contributions; they are summed first (the walk counts each leaf's
  incoming edges), so the hook sees the final ``.grad`` exactly once.
* ``queue_callback(fn)``, called during a backward, runs ``fn()`` when that backward ends.

Profiling: ``set_profile_hook(hook)`` installs an optional callback (``tinynet.profiler``
does, inside ``profile()``); ``apply``, each node's ``backward`` and the walk above then
go through it. When none is set, each op pays one ``is not None`` test.
"""
from __future__ import annotations

import functools
import sys
import weakref

from . import backend

__all__ = ["Function", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "backward", "grad",
           "queue_callback", "RemovableHandle", "depends_on", "anchor", "set_profile_hook"]

_grad_enabled = True

# The Tensor class, bound by ``tinynet.tensor`` right after it defines it (that module
# imports this one first, so a top-level import here would be circular). A module global
# keeps ``apply`` and the backward loop free of per-call imports.
Tensor = None
_numpy_scalar = backend.numpy.generic

# The profiler's callback, or None. ``tinynet.profiler`` sets it with
# :func:`set_profile_hook`; the engine never imports the profiler. When it is None (always,
# unless a profile is running) an op pays one ``is not None`` test in ``apply`` and one
# per node in the backward walk.
_profile_hook = None


def set_profile_hook(hook):
    """Installs ``hook`` (or None) as the engine's profiling callback; returns the previous one.

    ``hook.forward(cls, args, kwargs)`` must run ``cls.apply(*args, **kwargs)`` with the hook
    uninstalled (it is re-entered otherwise) and return its result;
    ``hook.backward(node, grad_outputs)`` must return ``node.backward(*grad_outputs)``;
    ``hook.backward_pass(walk)`` must call ``walk()`` (the whole backward walk, once per
    ``backward``/``grad`` call).
    """
    global _profile_hook
    previous, _profile_hook = _profile_hook, hook
    return previous


class RemovableHandle:
    """Returned by every ``register_*_hook``; ``remove()`` takes the hook out again."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self.hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def is_grad_enabled() -> bool:
    """Whether operations record a graph."""
    return _grad_enabled


class _GradMode:
    """Sets grad mode to ``mode`` inside a ``with`` block (restoring the previous mode on
    exit, also on an exception); used as a decorator, around each call of the function."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        global _grad_enabled
        self.prev, _grad_enabled = _grad_enabled, self.mode

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with _GradMode(mode):   # a fresh one per call: calls may nest or recurse
                return fn(*args, **kwargs)
        return wrapped


class no_grad(_GradMode):
    """Disables graph recording: ``with tinynet.no_grad(): ...`` or ``@tinynet.no_grad()``."""

    def __init__(self):
        super().__init__(False)


class enable_grad(_GradMode):
    """Re-enables graph recording inside a ``no_grad`` block."""

    def __init__(self):
        super().__init__(True)


class set_grad_enabled(_GradMode):
    """Sets grad mode from a bool. As in PyTorch it takes effect at once, so it works as a
    plain call (``tinynet.set_grad_enabled(False)``) as well as a ``with`` block (which
    restores the previous mode on exit) or a decorator."""

    def __init__(self, mode: bool):
        global _grad_enabled
        super().__init__(mode)
        self.prev, _grad_enabled = _grad_enabled, self.mode

    def __enter__(self):
        pass  # already in effect since __init__

    def __call__(self, fn):
        global _grad_enabled
        _grad_enabled = self.prev  # decorating a function must not change the mode now
        return super().__call__(fn)


class Function:
    """One differentiable operation; an instance is a node of the graph.

    Subclasses define ``forward(self, *args, **kwargs)`` on raw arrays and
    ``backward(self, *grad_outputs)`` on Tensors, returning one gradient (or None) per
    positional argument of ``forward``. During backward, ``self.inputs`` holds the
    positional arguments as given (Tensors stay Tensors; at :attr:`unread_inputs`, an
    op-made Tensor may be a placeholder with its shape, dtype and device but no values) and
    ``self.outputs`` the output Tensors. Whatever forward stores on ``self`` lives until
    the node is released.
    """

    #: Positions of ``forward``'s positional arguments whose arrays ``backward`` never
    #: reads (only their shape, dtype and device; True: every position). There the node
    #: keeps a placeholder for a Tensor that an op computed (:func:`_without_data`), so the
    #: array can be freed once nothing else holds it, as PyTorch saves for backward only
    #: what the formula needs: a ReLU after a batch norm or a convolution, a residual sum.
    unread_inputs = ()
    #: True where ``backward`` never reads ``self.outputs``: a consumer may then drop its
    #: input array though it is this node's output (the node holds its outputs only
    #: weakly, so an op that reads them needs its consumers to keep them).
    outputs_unread = False

    def __init__(self):
        self.inputs = ()
        self.needs_input_grad = ()
        self._outputs = ()

    @classmethod
    def apply(cls, *args, **kwargs):
        # This runs for every op, so it is written for speed: one pass over the
        # arguments, and no graph bookkeeping at all when nothing will be recorded.
        if _profile_hook is not None:
            return _profile_hook.forward(cls, args, kwargs)
        node = cls()
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        if backend._cupy is not None or backend._stand_in is not None:  # only then can two devices meet
            _check_one_device(cls, raw)
        result = node.forward(*raw, **kwargs)
        if _grad_enabled:
            needs = tuple([isinstance(a, Tensor) and a._requires_grad for a in args])
            record = True in needs
        else:
            record = False
        if not isinstance(result, tuple):          # the common case: one output
            if isinstance(result, _numpy_scalar):  # NumPy reductions return scalars, not 0-d arrays
                result = backend.numpy.asarray(result)
            out = Tensor(result)
            if record:
                if result.dtype.kind == "f":
                    out._ctx, out._requires_grad = node, True
                node.inputs = _without_data(args, cls.unread_inputs) if cls.unread_inputs else args
                node.needs_input_grad = needs
                node._outputs = (weakref.ref(out),)
                node._output_meta = ((result.shape, result.dtype),)
            return out
        outputs = []
        for i, r in enumerate(result):
            if isinstance(r, _numpy_scalar):
                r = backend.numpy.asarray(r)
            t = Tensor(r)
            if record and r.dtype.kind == "f":
                t._ctx, t._output_index, t._requires_grad = node, i, True
            outputs.append(t)
        if record:
            node.inputs = _without_data(args, cls.unread_inputs) if cls.unread_inputs else args
            node.needs_input_grad = needs
            node._outputs = tuple(weakref.ref(t) for t in outputs)
            node._output_meta = tuple((r.shape, r.dtype) for r in result)
        return tuple(outputs)

    @property
    def outputs(self):
        return tuple(ref() for ref in self._outputs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    def release(self) -> None:
        """Drops everything saved for backward; a later backward through it is an error."""
        self.__dict__.clear()
        self._released = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} node>"


def _without_data(args, positions):
    """``args`` with each Tensor at ``positions`` (True: all) that an op computed, and
    whose op does not read its outputs in backward, replaced by a placeholder: a new Tensor
    with the same ``_ctx``, output index and ``requires_grad`` (so the backward walk routes
    its gradient to the same node) over :func:`tinynet.backend.shape_only` of its array.
    Leaves stay themselves (their ``.grad`` is delivered to them)."""
    out = list(args)
    for i in (range(len(out)) if positions is True else positions):
        a = out[i] if i < len(out) else None
        if isinstance(a, Tensor) and a._ctx is not None and a._ctx.outputs_unread:
            placeholder = Tensor(backend.shape_only(a.data))
            placeholder._ctx, placeholder._output_index = a._ctx, a._output_index
            placeholder._requires_grad = a._requires_grad
            out[i] = placeholder
    return tuple(out)


class ZeroLink(Function):
    """``g`` unchanged, with an edge of derivative zero to each anchor tensor."""

    def forward(self, g, *anchors):
        return g

    def backward(self, gg):
        return (gg,) + tuple(Tensor(a.xp.zeros(a.shape, dtype=a.dtype)) for a in self.inputs[1:])


def depends_on(grad, *anchors):
    """``grad``, recorded as a function of ``anchors`` whose derivative is zero.

    PyTorch's rule for higher-order gradients: a gradient requires grad when its formula
    reads a saved tensor that requires grad, even where the formula is constant in that
    tensor. relu's gradient ``g·[x > 0]`` reads x, so after ``backward(create_graph=True)``
    ``x.grad`` requires grad and a second backward gives zeros (not an error). A backward
    written with constants (a mask, argmax indices, a pooling window) calls this with the
    tensors PyTorch's formula reads. It adds nothing when no graph is being built.
    """
    if (not _grad_enabled or grad is None or grad._requires_grad
            or not any(isinstance(a, Tensor) and a._requires_grad for a in anchors)):
        return grad
    return ZeroLink.apply(grad, *[a for a in anchors if isinstance(a, Tensor)])


class Anchor(Function):
    """Identity on ``x`` in the forward graph; backward passes ``depends_on(g, x, *anchors)``."""

    def forward(self, x, *anchors):
        return x

    def backward(self, g):
        return (depends_on(g, *self.inputs),) + (None,) * (len(self.inputs) - 1)


def anchor(x, *anchors):
    """``x`` unchanged, but its gradient will depend on ``x`` and ``anchors`` (see
    ``depends_on``): for ops composed of other ops whose PyTorch backward reads the input."""
    if not _grad_enabled or not isinstance(x, Tensor) or not x._requires_grad:
        return x
    return Anchor.apply(x, *anchors)


def _check_one_device(cls, arrays) -> None:
    devices = {str(backend.device_of(a)) for a in arrays if hasattr(a, "dtype")}
    if len(devices) > 1:
        raise ValueError(f"{cls.__name__.lower()}: expected all tensors on one device, got "
                         f"{' and '.join(sorted(devices))}; move them with .to(device)")


def _topological_order(root_node):
    """Nodes reachable from ``root_node``, each after all nodes that consume its outputs.

    Iterative depth-first post-order (no recursion, so a 10,000-step chain is fine),
    reversed. Also returns the intermediate Tensors seen, kept alive for the walk, and the
    number of graph edges that will carry a gradient into each leaf (keyed by ``id``).
    """
    order, visited, keep_alive, leaf_edges = [], set(), [], {}
    stack = [(root_node, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)      # every node it feeds from is already in ``order``
            continue
        # Marked when expanded, not when pushed: a node reached again through a second
        # consumer must still come after that consumer in the reversed order.
        if id(node) in visited:
            continue
        visited.add(id(node))
        if getattr(node, "_released", False):
            raise RuntimeError(
                "backward: trying to backward through the graph a second time (or directly "
                "access saved tensors after they have already been freed); pass "
                "retain_graph=True to the first backward call if you need to do this")
        stack.append((node, True))
        for t, needed in zip(node.inputs, node.needs_input_grad):
            if not needed:
                continue
            ctx = t._ctx
            if ctx is None:
                leaf_edges[id(t)] = leaf_edges.get(id(t), 0) + 1
            elif id(ctx) not in visited:
                keep_alive.append(t)
                stack.append((ctx, False))
    order.reverse()
    return order, keep_alive, leaf_edges


def _seed(root, gradient, op):
    if not root.requires_grad:
        raise RuntimeError(f"{op}: the tensor does not require grad and has no grad_fn "
                           "(was it computed under no_grad, or from tensors without requires_grad?)")
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(f"{op}: grad can be implicitly created only for scalar outputs; "
                               f"this tensor has shape {tuple(root.shape)}, pass `gradient`")
        return Tensor(root.xp.ones_like(root.data))
    if not isinstance(gradient, Tensor):
        gradient = Tensor(root.xp.asarray(gradient, dtype=root.dtype))
    if tuple(gradient.shape) != tuple(root.shape):
        raise ValueError(f"{op}: gradient has shape {tuple(gradient.shape)} but the tensor "
                         f"has shape {tuple(root.shape)}")
    return gradient


def backward(root, gradient=None, retain_graph=None, create_graph: bool = False) -> None:
    """Accumulates d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

    ``retain_graph`` defaults to ``create_graph`` (as in PyTorch): a graph built for a
    higher-order gradient still needs the forward graph it refers to.
    """
    gradient = _seed(root, gradient, "backward")
    retain = create_graph if retain_graph is None else retain_graph
    global _callbacks
    outer, _callbacks = _callbacks, []
    try:
        _run(root, gradient, retain, create_graph, _accumulate_leaf)
        # Callbacks may queue more callbacks (run in this same backward's end).
        while _callbacks:
            _callbacks.pop(0)()
    finally:
        _callbacks = outer


_callbacks = None   # a list while a ``backward`` runs: what ``queue_callback`` queued


def queue_callback(fn) -> None:
    """Runs ``fn()`` once the ``backward`` now running has finished its walk (after every
    leaf gradient and hook), before that ``backward`` returns. Only valid inside a hook."""
    if _callbacks is None:
        raise RuntimeError("queue_callback: can only be called while backward() runs (from a hook)")
    _callbacks.append(fn)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool = False):
    """d(outputs)/d(inputs) as a tuple, without touching any ``.grad`` (``torch.autograd.grad``).

    ``outputs``/``grad_outputs`` may be one Tensor or sequences; an input that the outputs do
    not depend on is an error unless ``allow_unused`` (then its gradient is None).
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    captured = {id(t): None for t in inputs}

    def capture(leaf, g, create_graph, owned=False):
        if id(leaf) in captured:
            prev = captured[id(leaf)]
            if not create_graph and g._ctx is not None:
                g = Tensor(g.data)
            captured[id(leaf)] = g if prev is None else prev + g

    retain = create_graph if retain_graph is None else retain_graph
    # Several outputs: one backward from their weighted sum keeps one traversal.
    from .functional.reduction import sum as _sum
    with set_grad_enabled(True):
        terms = [(_sum(o * _seed(o, g, "grad")) if o.data.size != 1 or g is not None else _sum(o))
                 for o, g in zip(outputs, grad_outputs)]
        total = terms[0]
        for t in terms[1:]:
            total = total + t
    _run(total, _seed(total, None, "grad"), retain, create_graph, capture, capture_nonleaf=inputs)
    result = []
    for t in inputs:
        g = captured[id(t)]
        if g is None and not allow_unused:
            raise RuntimeError("grad: one of the differentiated tensors was not used in the graph; "
                               "set allow_unused=True if this is intended")
        result.append(g)
    return tuple(result)


def _run(root, gradient, retain_graph, create_graph, deliver, capture_nonleaf=()):
    """The backward walk: ``deliver(leaf, grad, create_graph)`` receives each leaf's whole
    gradient once; tensors in ``capture_nonleaf`` that are not leaves are delivered once
    complete."""
    hook = _profile_hook
    if hook is not None:
        hook.backward_pass(lambda: _walk(root, gradient, retain_graph, create_graph, deliver,
                                         capture_nonleaf, hook))
    else:
        _walk(root, gradient, retain_graph, create_graph, deliver, capture_nonleaf, None)


def _walk(root, gradient, retain_graph, create_graph, deliver, capture_nonleaf, hook):
    if root._ctx is None:  # a leaf
        with set_grad_enabled(create_graph):
            deliver(root, _run_hooks(_leaf_grad_hooks(root), gradient), create_graph)
        return
    watched = {(id(t._ctx), t._output_index): t for t in capture_nonleaf if t._ctx is not None} \
        if capture_nonleaf else None
    order, _keep_alive, leaf_edges = _topological_order(root._ctx)
    grads = {(id(root._ctx), root._output_index): gradient}
    leaf_grads = {}
    owned = set()       # leaves whose pending gradient array nothing outside the walk holds
    with set_grad_enabled(create_graph):
        for node in order:
            outs = []
            hooks = getattr(node, "_output_hooks", None)
            for i, (shape, dtype) in enumerate(node._output_meta):
                g = grads.pop((id(node), i), None)
                if hooks and g is not None and i in hooks:
                    g = _run_hooks(hooks[i], g)
                if watched and (id(node), i) in watched and g is not None:
                    deliver(watched[(id(node), i)], g, create_graph)
                if g is None:
                    g = Tensor(_xp_of(node).zeros(shape, dtype=dtype))
                outs.append(g)
            in_grads = node.backward(*outs) if hook is None else hook.backward(node, outs)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) != len(node.inputs):
                raise RuntimeError(f"{type(node).__name__}.backward returned {len(in_grads)} "
                                   f"gradients for {len(node.inputs)} inputs")
            sole = () if create_graph or not any(
                need and inp._ctx is None for inp, need in zip(node.inputs, node.needs_input_grad)
            ) else _sole_references(in_grads)
            for inp, g, needed in zip(node.inputs, in_grads, node.needs_input_grad):
                if not needed:
                    continue
                if g is not None and g.shape != inp.shape:   # a broadcast input: sum back to its shape
                    g = _sum_to_node().apply(g, shape=inp.shape)
                if inp._ctx is None:
                    # A leaf: sum its contributions; deliver once the last edge has arrived.
                    key = id(inp)
                    prev = leaf_grads.get(key)
                    if g is not None:
                        leaf_grads[key] = g if prev is None else prev + g
                        if prev is not None or id(g) in sole:   # a sum is a new array too
                            owned.add(key)
                    leaf_edges[key] -= 1
                    if leaf_edges[key] == 0:
                        total = leaf_grads.pop(key, None)
                        if total is not None:
                            hooks = _leaf_grad_hooks(inp)
                            # a hook may keep the gradient it is given: then it is not ours
                            deliver(inp, _run_hooks(hooks, total), create_graph,
                                    owned=key in owned and not hooks)
                        owned.discard(key)
                elif g is not None:
                    key = (id(inp._ctx), inp._output_index)
                    prev = grads.get(key)
                    grads[key] = g if prev is None else prev + g
            if not retain_graph:
                node.release()


class LeafHooks:
    """A leaf Tensor's hooks (``Tensor._hooks``, None until the first registration):
    ``grad`` maps handle ids to ``fn(grad)``, ``post`` to ``fn(leaf)``."""

    __slots__ = ("grad", "post")

    def __init__(self):
        self.grad, self.post = {}, {}


def _leaf_grad_hooks(leaf):
    return None if leaf._hooks is None else leaf._hooks.grad


def _run_hooks(hooks, g):
    """Passes ``g`` through the gradient hooks ``{handle id: fn}`` in registration order."""
    if not hooks:
        return g
    for fn in list(hooks.values()):
        result = fn(g)
        if result is not None:
            if not isinstance(result, Tensor):
                raise TypeError(f"register_hook: a hook must return None or a Tensor, "
                                f"{getattr(fn, '__name__', 'the hook')} returned {type(result).__name__}")
            if tuple(result.shape) != tuple(g.shape):
                raise ValueError(f"register_hook: a hook must return a gradient of shape "
                                 f"{tuple(g.shape)}, got {tuple(result.shape)}")
            g = result
    return g


_SumTo = None


def _sum_to_node():
    """The ``SumTo`` Function (functional imports this module, so it is looked up late)."""
    global _SumTo
    if _SumTo is None:
        from .functional.reduction import SumTo
        _SumTo = SumTo
    return _SumTo


def _xp_of(node):
    for t in node.inputs:
        if hasattr(t, "xp"):
            return t.xp
    from .backend import numpy
    return numpy


def _sole_references(tensors) -> set:
    """The ids of the Tensors in the tuple ``tensors`` (a node's input gradients, just
    returned by its ``backward``) that only that tuple refers to, each holding a
    C-contiguous array that only that Tensor refers to and that owns its memory, or is a
    reshaped view of a whole array only it refers to (kernels often return
    ``buf.reshape(shape)``): arrays the ``backward`` made and kept no reference to. A
    leaf's first gradient can then become its ``.grad`` without a copy, as PyTorch's
    AccumulateGrad steals a gradient nothing else uses.

    Something else refers to the Tensor or its memory when the gradient is the seed or
    another incoming gradient passed on (the walk still holds it), appears twice in the
    tuple (one gradient for two inputs), is a slice of a larger array, or is kept by the
    op: then the leaf gets a copy. The counts are compared with those of fresh probe
    Tensors measured through this same code at import (:data:`_SOLE`), so they hold
    whatever the interpreter adds for the calls and the loop.
    """
    return {key for key, counts in _counted(tensors) if counts in _SOLE}


def _counted(tensors) -> list:
    """``(id, _counts)`` of each Tensor in ``tensors``: the one loop that both
    :func:`_sole_references` and :func:`_calibrate` count through."""
    return [(id(t), _counts(t)) for t in tensors if t is not None]


def _counts(t):
    """References to ``t``, to its array and to the array's base (None without one)."""
    array = t.data
    base = getattr(array, "base", 0)
    if not array.flags.c_contiguous or base is not None and not (
            getattr(base, "base", 0) is None and getattr(base, "nbytes", -1) == array.nbytes):
        return None     # strided, a slice, a view of a view, or not an array: never taken
    return sys.getrefcount(t), sys.getrefcount(array), None if base is None else sys.getrefcount(base)


_SOLE = frozenset()     # _counts of Tensors only a tuple holds; measured once Tensor exists


def _calibrate() -> None:
    """Measures :data:`_SOLE`; ``tinynet.tensor`` calls it once it has bound :data:`Tensor`."""
    global _SOLE
    import numpy
    _SOLE = frozenset(counts for _, counts in
                      _counted((Tensor(numpy.empty(2)), Tensor(numpy.empty(2).reshape(1, 2)))))


def _accumulate_leaf(leaf, g, create_graph: bool, owned: bool = False) -> None:
    """Adds ``g`` into ``leaf.grad``. ``owned``: nothing but the walk refers to ``g`` and
    its array (:func:`_sole_references`), so a first gradient is taken without a copy."""
    if not create_graph:
        g = Tensor(g.data) if g._ctx is not None else g
    if g.dtype != leaf.dtype:
        g, owned = Tensor(g.data.astype(leaf.dtype)), True
    if leaf.grad is None:
        # Never alias a gradient buffer that may belong to someone else (e.g. the seed).
        leaf.grad = g if create_graph else Tensor(g.data if owned else g.data.copy())
    else:
        leaf.grad = leaf.grad + g
    if leaf._hooks is not None:
        for fn in list(leaf._hooks.post.values()):
            fn(leaf)
