"""The one random generator behind initialisation, dropout and shuffling.

Random numbers are drawn on the host by a NumPy ``Generator`` (PCG64) and moved to the
target device, so a seed gives the same numbers on CPU and GPU, and
``get_rng_state``/``set_rng_state`` capture everything a resumed run needs.
"""
from __future__ import annotations

from .backend import numpy as np

__all__ = ["manual_seed", "get_rng_state", "set_rng_state", "generator"]

_generator = np.random.Generator(np.random.PCG64())


def generator() -> np.random.Generator:
    """The global generator (draw from it, do not replace it)."""
    return _generator


def manual_seed(seed: int) -> None:
    """Re-seeds the global generator."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    _generator.bit_generator.state = np.random.PCG64(int(seed)).state


def get_rng_state() -> dict:
    """A copy of the generator's state (a dict of ints; save it in a checkpoint)."""
    state = _generator.bit_generator.state
    return {"bit_generator": state["bit_generator"],
            "state": dict(state["state"]),
            "has_uint32": state["has_uint32"], "uinteger": state["uinteger"]}


def set_rng_state(state: dict) -> None:
    """Restores a state from :func:`get_rng_state`."""
    try:
        if state["bit_generator"] != "PCG64":
            raise ValueError
        _generator.bit_generator.state = {"bit_generator": "PCG64",
                                          "state": {"state": int(state["state"]["state"]),
                                                    "inc": int(state["state"]["inc"])},
                                          "has_uint32": int(state["has_uint32"]),
                                          "uinteger": int(state["uinteger"])}
    except (KeyError, TypeError, ValueError):
        raise ValueError("set_rng_state: expected a state returned by get_rng_state()") from None
