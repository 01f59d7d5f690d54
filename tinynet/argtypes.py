"""argparse types shared by the ``tinynet`` commands (``cli``, ``train``, ``bench``).

Each parses one option's text or raises ``argparse.ArgumentTypeError`` with a message
saying what was expected, which argparse turns into exit status 2.
"""
from __future__ import annotations

import argparse

__all__ = ["int_at_least", "positive_int", "non_negative_int", "positive_float", "shape", "device"]


def int_at_least(minimum: int, wording: str):
    """An argparse type: an integer >= ``minimum``, else a message using ``wording``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {v}")
        return v
    return parse


positive_int = int_at_least(1, "a positive integer")
non_negative_int = int_at_least(0, "an integer >= 0")


def positive_float(text: str) -> float:
    """A positive finite number."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return v


def shape(text: str) -> tuple:
    """Comma-separated positive sizes such as ``3,32,32``."""
    try:
        dims = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 3,32,32, got {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return dims


def device(text: str) -> str:
    """A device name tinynet knows: ``cpu``, ``cuda`` or ``cuda:N``."""
    from . import backend
    try:
        backend.Device(text)
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text
