"""The op registry: one ``OpInfo`` per differentiable op of ``tinynet.functional``.

An entry names the op, the function, a hypothesis strategy that draws valid ``Sample``s
(float64 NumPy arrays for tensor arguments, plain values for the rest), and how to call
the PyTorch equivalent. ``tests/testing/test_registry.py`` turns every entry into
gradcheck, gradgradcheck, PyTorch parity, create_graph-vs-plain backward and
float32-vs-float64 tests; an exported op with no entry (and not listed in
``NOT_DIFFERENTIABLE``) fails a test.

Register your own op the same way to get the same checks::

    register(OpInfo("my_op", my_op, samples=my_strategy, torch_op=lambda torch, x: ...))
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

__all__ = ["OpInfo", "Sample", "register", "all_ops", "get_op", "NOT_DIFFERENTIABLE"]


@dataclasses.dataclass
class Sample:
    """One call: ``op(*args, **kwargs)``.

    ``args`` holds NumPy arrays (turned into Tensors; float arrays require grad unless
    their position is in ``no_grad``) or other values passed unchanged.
    """
    args: tuple
    kwargs: dict = dataclasses.field(default_factory=dict)
    no_grad: tuple = ()

    def __repr__(self) -> str:
        shapes = [getattr(a, "shape", a) for a in self.args]
        return f"Sample(args={shapes}, kwargs={self.kwargs})"


@dataclasses.dataclass
class OpInfo:
    """How to test one differentiable op.

    name:        the name exported by ``tinynet.functional`` (or a unique label)
    op:          the tinynet callable
    samples:     a zero-argument callable returning a hypothesis strategy of ``Sample``
                 (a callable so that hypothesis is imported only when tests run)
    torch_op:    ``torch_op(torch, *torch_args, **kwargs)`` -> torch result, or None
    gradcheck / gradgradcheck: run those checks (False only with a stated reason)
    atol, rtol:  tolerances for torch parity in float64
    f32_rtol, f32_atol: tolerances for float32 vs float64 agreement
    max_examples: cap on hypothesis examples for the expensive checks
    fast_mode:   use gradcheck's random-projection mode (large inputs)
    """
    name: str
    op: Callable
    samples: Callable[[], Any]
    torch_op: Callable | None = None
    gradcheck: bool = True
    gradgradcheck: bool = True
    atol: float = 1e-10
    rtol: float = 1e-7
    f32_rtol: float = 1e-3
    f32_atol: float = 1e-4
    max_examples: int | None = None
    fast_mode: bool = False
    note: str = ""


_REGISTRY: dict = {}
_FAMILIES = ("elementwise", "activation", "reduction", "shape", "linalg", "loss", "conv", "pool",
             "recurrent", "normalization", "dropout", "indexing")
_FAMILIES += ("embedding", "attention", "padding", "interpolate")

# Exported names that are not differentiable ops (they have no entry on purpose).
NOT_DIFFERENTIABLE = {
    "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "isnan", "isfinite", "sign", "argmax",
    "argmin",
}
NOT_DIFFERENTIABLE.update({"all", "any", "one_hot"})


def register(info: OpInfo) -> OpInfo:
    """Adds an entry; a name registered twice is an error."""
    if info.name in _REGISTRY:
        raise ValueError(f"register: an op named {info.name!r} is already registered")
    _REGISTRY[info.name] = info
    return info


def _load_all() -> None:
    import importlib
    for family in _FAMILIES:
        importlib.import_module(f"tinynet.testing.opinfo.{family}")


def all_ops() -> list:
    """Every registered entry, built-in families first loaded."""
    _load_all()
    return list(_REGISTRY.values())


def get_op(name: str) -> OpInfo:
    _load_all()
    return _REGISTRY[name]
