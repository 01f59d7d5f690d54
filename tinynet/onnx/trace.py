"""Recording one forward pass as a list of op calls (the input of the ONNX exporter).

Every differentiable op in tinynet goes through ``Function.apply(*args, **kwargs)``, and
every layer through ``Module.__call__``. While a :class:`Trace` is active, both are
wrapped (class attributes swapped, restored on exit, also after an exception), so that

    for each Function.apply outside an opaque module:
        record Call(op=Function subclass, args, kwargs, outputs, scope)
    for each call of a module whose type has a module converter (BatchNorm, LSTM):
        record Call(op=the module, args, kwargs, outputs) and nothing inside it
    for each call of an opaque function (prelu, mish, selu, interpolate, layer_norm, ...):
        record Call(op=the function, args, kwargs, outputs, inner=the calls made inside),
        the inner calls being what the exporter converts if the function's converter
        declines (interpolate, layer_norm at an opset or in a mode without an exact node)

Opaque functions are those whose inner ops lose what ONNX needs: ``prelu`` selects with
a mask computed outside the ops, the edge modes of ``pad`` gather with index arrays, and
``mish``, ``selu``, ``interpolate`` and ``layer_norm`` have ONNX ops of their own. They
are wrapped, for the trace only, wherever a loaded module of tinynet binds them
(``tinynet.functional.prelu``, which ``nn.PReLU`` calls, and the defining module); a user
module that bound one itself (``from tinynet.functional import prelu`` before the export)
calls the unwrapped function, whose inner ops are recorded.

The engine itself is untouched and pays nothing when no trace is active. Tensors are
identified by ``id``; the trace keeps every Tensor it has seen alive, so an id is never
reused while the trace exists. A Tensor that reaches a call without having been produced
by an earlier call is a parameter, a buffer or a constant of the forward pass.

Limits (those of any tracer): the record is the path the example input took, so Python
control flow that depends on values is frozen, and a value computed outside tinynet's ops
(``Tensor(x.numpy() * 2)``, ``x > 0``) is not recorded at all: it reaches the next op as
an unknown Tensor, which the exporter refuses unless it is a scalar, a parameter or a buffer. Not thread-safe: ops run by other
threads during the trace would be recorded too.
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field

from ..autograd import Function
from ..nn.module import Module
from ..tensor import Tensor

__all__ = ["Call", "Trace", "flatten_tensors"]


@dataclass
class Call:
    """One recorded op: a Function subclass (``is_module`` False) or an opaque Module."""
    op: object
    args: tuple
    kwargs: dict
    outputs: list          # the output Tensors, flattened in order
    structure: object      # the output as returned (a Tensor or nested tuples of Tensors)
    scope: str             # dotted name of the innermost module that made the call ("" = top)
    is_module: bool = False
    inner: list = field(default_factory=list)   # an opaque function's own calls, in order

    @property
    def name(self) -> str:
        return type(self.op).__name__ if self.is_module else self.op.__name__


def flatten_tensors(obj) -> list:
    """The Tensors in a (nested) tuple/list output, depth first."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in flatten_tensors(item)]
    return []


@dataclass
class Trace:
    """Context manager recording the calls made by a forward pass (see module docstring).

    ``opaque`` is a tuple of Module classes recorded as single calls, ``functions`` a
    tuple of functions recorded as single calls (wrapped wherever a loaded ``tinynet``
    module binds them).
    """
    model: Module
    opaque: tuple = ()
    functions: tuple = ()
    calls: list = field(default_factory=list)

    def __post_init__(self):
        self._names = {id(m): name for name, m in self.model.named_modules()}
        self._scope = [""]
        self._inside_opaque = 0
        self._alive = []
        self._sinks = [self.calls]     # where calls go: an opaque function's inner list on top

    def keep(self, *tensors) -> None:
        self._alive.extend(tensors)

    # ------------------------------------------------------------------ the two wrappers
    def __enter__(self) -> "Trace":
        trace = self
        self._apply = Function.__dict__["apply"]
        self._call = Module.__dict__["__call__"]
        original_apply, original_call = self._apply.__func__, self._call

        def traced_apply(cls, *args, **kwargs):
            out = original_apply(cls, *args, **kwargs)
            if not trace._inside_opaque:
                outputs = flatten_tensors(out)
                trace.keep(*args, *outputs)
                trace._sinks[-1].append(Call(cls, args, kwargs, outputs, out, trace._scope[-1]))
            return out

        def traced_call(module, *args, **kwargs):
            if trace._inside_opaque:
                return original_call(module, *args, **kwargs)
            trace._scope.append(trace._names.get(id(module), trace._scope[-1]))
            opaque = isinstance(module, trace.opaque)
            trace._inside_opaque += opaque
            try:
                out = original_call(module, *args, **kwargs)
            finally:
                trace._inside_opaque -= opaque
                trace._scope.pop()
            if opaque:
                outputs = flatten_tensors(out)
                trace.keep(*args, *kwargs.values(), *outputs)
                trace._sinks[-1].append(Call(module, args, kwargs, outputs, out,
                                             trace._names.get(id(module), type(module).__name__),
                                             is_module=True))
            return out

        def traced_function(function):
            @functools.wraps(function)
            def call(*args, **kwargs):
                if trace._inside_opaque:
                    return function(*args, **kwargs)
                trace._sinks.append([])
                try:
                    out = function(*args, **kwargs)
                finally:
                    inner = trace._sinks.pop()
                outputs = flatten_tensors(out)
                trace.keep(*args, *kwargs.values(), *outputs)
                trace._sinks[-1].append(Call(function, args, kwargs, outputs, out, trace._scope[-1],
                                             inner=inner))
                return out
            return call

        self._patched = []
        wrapped = {id(f): traced_function(f) for f in self.functions}
        for module in [m for name, m in list(sys.modules.items())
                       if m is not None and (name == "tinynet" or name.startswith("tinynet."))]:
            for attribute, value in list(vars(module).items()):
                if id(value) in wrapped:
                    self._patched.append((module, attribute, value))
                    setattr(module, attribute, wrapped[id(value)])
        Function.apply = classmethod(traced_apply)
        Module.__call__ = traced_call
        return self

    def __exit__(self, *exc) -> None:
        Function.apply = self._apply
        Module.__call__ = self._call
        for module, attribute, value in self._patched:
            setattr(module, attribute, value)
