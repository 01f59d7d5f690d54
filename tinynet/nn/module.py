"""``Module`` and ``Parameter``: the containers every layer is built from.

Attributes that are Parameters, Modules or registered buffers are tracked in
insertion order, which gives PyTorch's ``state_dict`` key names (``layer1.0.conv1.weight``)
so weights move between the two libraries by name.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

from .. import backend
from ..backend import numpy as np
from ..autograd import RemovableHandle
from ..tensor import Tensor, as_dtype

__all__ = ["Module", "Parameter", "RemovableHandle"]


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (``requires_grad`` True by default)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: override ``forward``; call the module to run it."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---------------------------------------------------------------- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning "
                                 f"attributes (assigning {name!r})")
        if value is None and name in self._parameters:
            self._parameters[name] = None   # an optional parameter switched off (bias=False)
            return
        if value is None and name in self._buffers:
            self._buffers[name] = None
            return
        if isinstance(value, Parameter):
            target = self._parameters
        elif isinstance(value, Module):
            target = self._modules
        elif name in self.__dict__.get("_buffer_names", ()) and (value is None or isinstance(value, Tensor)):
            target = self._buffers
        else:
            target = None
        # Leave the other stores; a replacement within one store keeps its position (as in
        # PyTorch), so state_dict order and Sequential order survive reassignment.
        for store in (self._parameters, self._buffers, self._modules):
            if store is not target:
                store.pop(name, None)
        if target is None:
            object.__setattr__(self, name, value)
            return
        target[name] = value
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is None:
            self._parameters[name] = None
            self.__dict__.pop(name, None)
        else:
            if not isinstance(param, Parameter):
                raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, "
                                f"got {type(param).__name__}")
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that is state but not trained (e.g. BatchNorm's running mean)."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module, got {type(module).__name__}")
        self._modules[name] = module

    # ---------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "", memo=None) -> Iterator:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator:
        for _, m in self.named_children():
            yield m

    def _named(self, store: str, prefix: str, recurse: bool) -> Iterator:
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in modules:
            for name, t in getattr(m, store).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator:
        return self._named("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator:
        return self._named("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn) -> "Module":
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- state
    def state_dict(self) -> "OrderedDict[str, Tensor]":
        """Parameters and persistent buffers by PyTorch key name (detached, shared memory)."""
        out = OrderedDict()
        for prefix, m in self.named_modules():
            for name, p in m._parameters.items():
                if p is not None:
                    out[f"{prefix}.{name}" if prefix else name] = p.detach()
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    out[f"{prefix}.{name}" if prefix else name] = b.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copies values (tinynet Tensors, NumPy arrays, or torch tensors) in by key name.

        Values keep each parameter's dtype and device. Strict (default): missing,
        unexpected and mis-shaped keys are one ``ValueError`` listing all of them; with
        ``strict=False`` only shapes are enforced, and ``(missing, unexpected)`` returned.
        """
        own = self.state_dict()
        targets = {}
        for prefix, m in self.named_modules():
            for store in (m._parameters, m._buffers):
                for name, t in store.items():
                    if t is not None:
                        targets[f"{prefix}.{name}" if prefix else name] = t
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        converted, mis_shaped = {}, []
        for k, v in state_dict.items():
            if k not in own:
                continue
            arr = _as_host_or_device_array(v, k)
            if tuple(arr.shape) != tuple(own[k].shape):
                mis_shaped.append(f"{k}: checkpoint {tuple(arr.shape)} vs model {tuple(own[k].shape)}")
            else:
                converted[k] = arr
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mis_shaped:
            problems.append("mis-shaped: " + "; ".join(mis_shaped))
        if problems:
            raise ValueError(f"load_state_dict: {type(self).__name__} cannot load this state dict: "
                             + " | ".join(problems))
        for k, arr in converted.items():
            t = targets[k]
            t.data[...] = backend.to_device(arr, t.device).astype(t.dtype, copy=False)
        return missing, unexpected

    # ---------------------------------------------------------------- modes and moves
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    def to(self, target) -> "Module":
        """Moves (``"cuda"``) or casts (``tinynet.float64``) parameters and buffers in place.

        The Parameter objects stay the same, so an optimizer built before still holds them.
        Casting touches floating-point tensors only.
        """
        is_device = isinstance(target, backend.Device) or (
            backend.is_device_string(target))
        dev = backend.Device(target) if is_device else None
        dtype = None if is_device else as_dtype(target, "Module.to")
        for m in self.modules():
            for store in (m._parameters, m._buffers):
                for t in store.values():
                    if t is None:
                        continue
                    if dev is not None:
                        t.data = backend.to_device(t.data, dev)
                        if t.grad is not None:
                            t.grad = Tensor(backend.to_device(t.grad.data, dev))
                    elif t.dtype.kind == "f":
                        t.data = t.data.astype(dtype)
                        if t.grad is not None:
                            t.grad = Tensor(t.grad.data.astype(dtype))
        return self

    def cuda(self, index: int = 0) -> "Module":
        return self.to(f"cuda:{index}")

    def cpu(self) -> "Module":
        return self.to("cpu")

    def double(self) -> "Module":
        return self.to("float64")

    def float(self) -> "Module":
        return self.to("float32")

    # ---------------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        hooks = self.__dict__.get("_forward_hooks")
        if hooks:
            for hook in list(hooks.values()):
                result = hook(self, args, out)
                if result is not None:
                    out = result
        return out

    def register_forward_hook(self, hook) -> "RemovableHandle":
        """``hook(module, inputs, output)`` runs after every forward; a non-None return
        replaces the output. Returns a handle whose ``remove()`` unregisters it."""
        hooks = self.__dict__.setdefault("_forward_hooks", OrderedDict())
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _as_host_or_device_array(v, key):
    if isinstance(v, Tensor):
        return v.data
    if hasattr(v, "detach") and hasattr(v, "cpu") and hasattr(v, "numpy"):  # a torch tensor
        return v.detach().cpu().numpy()
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return v
    if isinstance(v, (int, float, list)):
        return np.asarray(v)
    raise TypeError(f"load_state_dict: value for {key!r} must be a Tensor or an array, "
                    f"got {type(v).__name__}")
