"""Containers: ``Sequential`` (call children in order), ``ModuleList`` and ``ModuleDict``
(hold children so their parameters are registered, with PyTorch's key names: ``0.weight``,
``blocks.2.bias``, ``heads.cls.weight``)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Iterator

from ._validate import int_pair
from .activation import ReLU
from .conv import Conv2d
from .linear import Linear
from .module import Module
from .pool import MaxPool2d

__all__ = ["Sequential", "ModuleList", "ModuleDict"]


def _check_module(m, owner: str, key) -> Module:
    if not isinstance(m, Module):
        raise TypeError(f"{owner}: entry {key!r} must be a Module, got {type(m).__name__}")
    return m


def _index(i, n: int, owner: str) -> int:
    if not isinstance(i, int) or isinstance(i, bool):
        raise TypeError(f"{owner}: indices must be integers or slices, got {type(i).__name__}")
    if not -n <= i < n:
        raise IndexError(f"{owner}: index {i} is out of range for {n} modules")
    return i % n


def _hooked(m: Module) -> bool:
    return bool(m.__dict__.get("_forward_hooks"))


def _pool_first(relu: Module, pool: Module) -> bool:
    """Whether ``Sequential`` may run this ``ReLU`` then ``MaxPool2d`` as the pool then the
    ReLU. The maximum commutes with ReLU, ``max_i max(x_i, 0) = max(max_i x_i, 0)``, over
    any window that holds an input element: so the output is the same, and so are the
    gradients: where the window's maximum is positive, both orders pick the same element
    (ReLU leaves positive values and their ties as they are), and where it is not, ReLU's
    derivative 0 stops the gradient either way. Only the sign of a zero output may differ
    (ReLU keeps -0, and a window of -0 and negatives pools to either zero), and a window
    holding NaN pools to NaN both ways, but the gradient of that NaN may land on another
    of its elements. The ReLU then runs on the
    pool's output, a quarter of the map under a 2x2 pool: SimpleCNN's training step 0.92x
    (docs/kernels/pooling.md).

    Only without dilation: a dilated window can fall wholly on the padding (kernel 2,
    dilation 2, padding 1 on a 1-pixel map), where the pool gives -inf and ReLU then 0.
    Undilated, every window holds an input element (padding <= kernel/2, and a
    ``ceil_mode`` window starts inside the input). Only for these exact types (a subclass
    may compute something else), without ``return_indices`` (the pool's output is then a
    pair) and without forward hooks on either (a hook would see the intermediate tensor)."""
    return (type(relu) is ReLU and type(pool) is MaxPool2d and not pool.return_indices
            and int_pair(pool.dilation, "dilation", "MaxPool2d") == (1, 1)
            and not _hooked(relu) and not _hooked(pool))


def _relu_after(linear: Module, relu: Module) -> bool:
    """Whether ``Sequential`` may run this ``Linear`` and the ``ReLU`` after it as one op
    (:func:`tinynet.functional.linalg.linear_relu`: the same values and gradients, bit for
    bit): these exact types (a subclass may compute something else) and no forward hook on
    either (a hook would see the intermediate tensor)."""
    return (type(linear) is Linear and type(relu) is ReLU
            and not _hooked(linear) and not _hooked(relu))


def _conv_relu_pool(conv: Module, relu: Module, pool: Module) -> bool:
    """Whether ``Sequential`` may run this ``Conv2d``, ``ReLU`` and ``MaxPool2d`` as one op
    (:func:`tinynet.functional.conv_pool.conv2d_relu_max_pool2d`: the values of the conv,
    then the pool and its ReLU, ``_pool_first``'s order, and their gradients): the ReLU
    and pool as ``_pool_first`` asks, a 2x2 window of stride 2 without padding or
    ``ceil_mode``, a ``Conv2d`` of this exact type padding with zeros, and no forward hook
    on the conv (a hook would see its output)."""
    return (type(conv) is Conv2d and conv.padding_mode == "zeros" and not _hooked(conv)
            and _pool_first(relu, pool) and not pool.ceil_mode
            and int_pair(pool.kernel_size, "kernel_size", "MaxPool2d") == (2, 2)
            and int_pair(pool.stride, "stride", "MaxPool2d") == (2, 2)
            and int_pair(pool.padding, "padding", "MaxPool2d", minimum=0) == (0, 0))


def _relu_in(m: Module, nxt: Module):
    """The module that runs the pair ``m``, ``nxt`` with the ReLU in its own op
    (``_forward_relu``), or None: the pool of a ReLU then a MaxPool2d (``_pool_first``),
    the layer of a Linear then a ReLU (``_relu_after``)."""
    if _pool_first(m, nxt):
        return nxt
    if _relu_after(m, nxt):
        return m
    return None


class Sequential(Module):
    """Runs its modules one after another: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 1))``
    or ``Sequential(OrderedDict(fc=Linear(4, 8), act=ReLU()))``.

    Three rewrites, for speed: a ``ReLU`` followed by a ``MaxPool2d`` runs as the pool,
    then the ReLU, on the pool's smaller output, both in one op
    (:func:`tinynet.functional.pool.max_pool2d_relu`; the same values, but for the sign of
    a zero, and the same gradients; the conditions in ``_pool_first``); a ``Conv2d``
    before them, with a 2x2 pool, joins that op
    (:func:`tinynet.functional.conv_pool.conv2d_relu_max_pool2d`, where each core pools its
    images' products while they are in its cache; the same values and gradients, to the
    rounding of its sums; the conditions in ``_conv_relu_pool``); and a ``Linear`` followed
    by a ``ReLU`` runs as one op (:func:`tinynet.functional.linalg.linear_relu`; the same
    values and gradients; the conditions in ``_relu_after``)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (OrderedDict, dict)):
            for name, m in modules[0].items():
                self.add_module(str(name), _check_module(m, "Sequential", name))
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), _check_module(m, "Sequential", i))

    def forward(self, input):
        modules = tuple(self._modules.values())
        i, n = 0, len(modules)
        while i < n:
            m = modules[i]
            if i + 2 < n and _conv_relu_pool(m, modules[i + 1], modules[i + 2]):
                input = m._forward_relu_pool(input)      # the three as one op
                i += 3
                continue
            owner = _relu_in(m, modules[i + 1]) if i + 1 < n else None
            if owner is not None:       # the pair as one op: the pool or the layer, then the ReLU
                input = owner._forward_relu(input)
                i += 2
            else:
                input = m(input)
                i += 1
        return input

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(OrderedDict(list(self._modules.items())[i]))
        return list(self._modules.values())[_index(i, len(self), "Sequential")]

    def __setitem__(self, i, module) -> None:
        key = list(self._modules)[_index(i, len(self), "Sequential")]
        self._modules[key] = _check_module(module, "Sequential", i)

    def __delitem__(self, i) -> None:
        keys = list(self._modules)
        for k in (keys[i] if isinstance(i, slice) else [keys[_index(i, len(self), "Sequential")]]):
            del self._modules[k]

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), _check_module(module, "Sequential", len(self)))
        return self


class ModuleList(Module):
    """A list of modules (registered, so ``parameters()`` and ``state_dict()`` see them)."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _renumber(self, modules) -> None:
        self._modules.clear()
        for i, m in enumerate(modules):
            self._modules[str(i)] = m

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return ModuleList(mods[i])
        return mods[_index(i, len(mods), "ModuleList")]

    def __setitem__(self, i, module) -> None:
        self._modules[str(_index(i, len(self), "ModuleList"))] = _check_module(module, "ModuleList", i)

    def __delitem__(self, i) -> None:
        mods = list(self._modules.values())
        if isinstance(i, slice):
            del mods[i]
        else:
            del mods[_index(i, len(mods), "ModuleList")]
        self._renumber(mods)

    def append(self, module: Module) -> "ModuleList":
        self._modules[str(len(self))] = _check_module(module, "ModuleList", len(self))
        return self

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError("ModuleList.extend: expected an iterable of Modules, got a single "
                            f"{type(modules).__name__}")
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        mods = list(self._modules.values())
        mods.insert(index, _check_module(module, "ModuleList", index))
        self._renumber(mods)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList is a container and has no forward(); iterate over it")


class ModuleDict(Module):
    """A dict of modules by string key, in insertion order."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict: no module named {key!r} (have: {', '.join(self._modules)})")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: keys must be strings, got {type(key).__name__}")
        if "." in key or key == "":
            raise ValueError(f"ModuleDict: key {key!r} must be non-empty and contain no '.'")
        self._modules[key] = _check_module(module, "ModuleDict", key)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key: str) -> Module:
        return self._modules.pop(key)

    def clear(self) -> None:
        self._modules.clear()

    def update(self, modules) -> None:
        items = modules.items() if hasattr(modules, "items") else modules
        for key, m in items:
            self[key] = m

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict is a container and has no forward(); index it")
