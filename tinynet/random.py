"""The one random generator behind initialisation, dropout and shuffling.

Random numbers are drawn on the host by a NumPy ``Generator`` (PCG64) and moved to the
target device, so a seed gives the same numbers on CPU and GPU, and
``get_rng_state``/``set_rng_state`` capture everything a resumed run needs.
"""
from __future__ import annotations

from . import backend
from .backend import numpy as np

__all__ = ["manual_seed", "get_rng_state", "set_rng_state", "generator", "keep_mask"]

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


#: Smallest mask :func:`keep_mask` draws from raw words (smaller ones: the plain draw).
_RAW_MASK_MIN = 1 << 12


def keep_mask(shape, p: float):
    """Booleans ``u >= p`` for uniform float32 draws u: a Bernoulli(1 - p) "keep" mask (the
    masks of dropout), bit for bit ``generator().random(shape, dtype=float32) >= p``,
    leaving the generator in the same state, at about half the cost.

    NumPy makes a float32 uniform from one 32-bit half of a 64-bit PCG64 word (low half
    first, the high half buffered for the next draw): ``u = (h >> 8) · 2⁻²⁴`` for a
    half h. So ``u >= p``, with p rounded to float32 as NumPy compares it, is the integer
    test ``h >= ⌈p·2²⁴⌉·2⁸`` on the raw 32-bit halves h, and no float is made: 1.1
    against 2.2 ms for 524,288 draws here. The buffered half, before and after, is read
    from and written to the generator's state, so the stream continues exactly as the
    float draw would leave it. Small masks, and a big-endian host, take the float draw
    itself.

    Large masks are drawn in chunks side by side (:func:`tinynet.backend.parallel_for`;
    NumPy releases the GIL while it draws): the first chunk draws from the generator, the
    one that starts ``k`` words into the stream from a copy of it advanced by ``k`` words
    (PCG64 jumps ahead in O(log k) steps), and the generator then jumps past the other
    chunks' words. So the mask is the same bit for bit whatever the chunks and threads.
    On two threads here: 524,288 draws 0.77 -> 0.47 ms, 262,144 draws 0.39 -> 0.27 ms.
    """
    n = 1
    for size in shape:
        n *= int(size)
    if n < _RAW_MASK_MIN or not np.little_endian:
        return _generator.random(shape, dtype=np.float32) >= p
    threshold = int(np.ceil(np.float64(np.float32(p)) * 2.0 ** 24)) << 8
    if threshold >= 1 << 32:
        keep = np.zeros(shape, dtype=bool)
        _generator.random(n, dtype=np.float32)          # the same draws, the same state
        return keep
    bits = _generator.bit_generator
    state = bits.state
    lead = int(state["has_uint32"])                     # a buffered half comes first
    keep = np.empty(n, dtype=bool)
    if lead:
        keep[0] = state["uinteger"] >= threshold
    words = (n - lead + 1) // 2
    drawn, last = [], []                                # the first chunk's words; the last half

    def draw(lo, hi):                                   # words [lo, hi) of the stream
        gen = bits if lo == 0 else _advanced(state, lo)
        halves = gen.random_raw(hi - lo).view(np.uint32)    # low, high, low, high, ...
        if lo:
            _spare_bits.append(gen)
        else:
            drawn.append(hi)
        start, stop = lead + 2 * lo, min(n, lead + 2 * hi)
        np.greater_equal(halves[:stop - start], np.uint32(threshold), out=keep[start:stop])
        if hi == words:
            last.append(int(halves[-1]))
    backend.parallel_for(words, draw, nbytes=16 * words + n)   # raw words written, read
    if drawn[0] < words:
        bits.advance(words - drawn[0])                  # past the other chunks' words
    if lead or (n - lead) % 2:
        state = bits.state
        spare = (n - lead) % 2
        state["has_uint32"] = spare
        state["uinteger"] = last[0] if spare else 0
        bits.state = state
    return keep.reshape(shape)


#: PCG64 objects reused by :func:`keep_mask`'s chunks (building one costs ~25 µs).
_spare_bits: list = []


def _advanced(state, words):
    """A PCG64 in ``state`` (a ``bit_generator.state`` dict) advanced by ``words`` draws."""
    try:
        gen = _spare_bits.pop()
    except IndexError:
        gen = np.random.PCG64(0)
    gen.state = state
    gen.advance(words)
    return gen
