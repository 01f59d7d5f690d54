"""Containers: ``Sequential`` (call children in order), ``ModuleList`` and ``ModuleDict``
(hold children so their parameters are registered, with PyTorch's key names: ``0.weight``,
``blocks.2.bias``, ``heads.cls.weight``)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Iterator

from .module import Module

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


class Sequential(Module):
    """Runs its modules one after another: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 1))``
    or ``Sequential(OrderedDict(fc=Linear(4, 8), act=ReLU()))``."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (OrderedDict, dict)):
            for name, m in modules[0].items():
                self.add_module(str(name), _check_module(m, "Sequential", name))
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), _check_module(m, "Sequential", i))

    def forward(self, input):
        for m in self._modules.values():
            input = m(input)
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
