"""Constructor-argument checks shared by the layers (messages name the layer)."""
from __future__ import annotations

from ..tensor import Tensor

__all__ = ["positive_int", "non_negative_int", "int_pair", "check_input"]


def positive_int(value, name: str, layer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise TypeError(f"{layer}: {name} must be an int, got {type(value).__name__}")
    if int(value) <= 0:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value}")
    return int(value)


def non_negative_int(value, name: str, layer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise TypeError(f"{layer}: {name} must be an int, got {type(value).__name__}")
    if int(value) < 0:
        raise ValueError(f"{layer}: {name} must be non-negative, got {value}")
    return int(value)


def int_pair(value, name: str, layer: str, minimum: int = 1) -> tuple:
    """An int or a pair of ints, each >= ``minimum``, as a pair."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}")
    for v in pair:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}")
        if v < minimum:
            bound = "positive" if minimum == 1 else f">= {minimum}"
            raise ValueError(f"{layer}: {name} must be {bound}, got {value!r}")
    return pair


def check_input(x, layer: str, ndims, what: str) -> Tensor:
    """A Tensor of one of ``ndims`` dims, else a message naming the layer and ``what``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer}: expected a Tensor input, got {type(x).__name__}")
    if x.ndim not in ndims:
        raise ValueError(f"{layer}: expected {what}, got input of shape {tuple(x.shape)}")
    return x
