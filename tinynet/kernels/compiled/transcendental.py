"""expm1 for compiled float32 kernels: computed in float64, rounded once.

Compiled code here has no vector ``expm1``: Numba turns ``math.expm1`` into a call to
libm's scalar function, one element at a time, so a loop that calls it cannot be
vectorised. This one is written with operations that LLVM does vectorise (multiply, add,
round, an integer shift), for a float32 kernel that needs it inside a fused pass: ELU's
forward (:mod:`.activation`).

It takes a float32 value, works in float64 and returns float64; the caller stores the
result (times ELU's α) to float32, so it is rounded once. The float64 arithmetic carries
about 2e-10 relative error (below), 2^-24 / 2e-10 ≈ 300 times less than float32's half-ulp,
so the stored value is the float32 nearest the exact result except where that exact value
lies within about 1/300 ulp of halfway between two floats: measured over 1.6·10^6 points,
at most 0.51 ulp from the exact value, where NumPy's float32 route for ELU (the half-angle
``tanh`` form of :func:`tinynet.backend.expm1_of_nonpositive`) is within 2.7
(``tests/kernels/test_transcendental.py``). Float64 inputs keep NumPy's ``expm1``: the
polynomial below is short for a float32 result, not for a float64 one.

**Range reduction.** Write ``y = k ln2 + r`` with ``k = round(y / ln2)``, so that
``|r| <= ln2/2 ≈ 0.347``; then ``e^y = 2^k · e^r``. ``2^k`` is exact: its float64 bit
pattern is ``(k + 1023) << 52`` (the biased exponent field over a zero mantissa), so it
costs an integer shift and a reinterpretation of the bits (:func:`_from_bits`). ``r`` is
``y - k·ln2`` with ln 2 in float64: its error, at most ``|k|·ln2·2^-53`` ≈ 10^-14 for the
``|k| <= 160`` that occur, is invisible at float32's precision (so no Cody-Waite split).

**expm1(r) by its Taylor polynomial.** ``q = expm1(r) = r + r²/2! + ... + r⁸/8!``; the
first term left out, ``r⁹/9!``, is at most ``0.347⁹ / 362880 ≈ 2·10⁻¹⁰`` relative to
``|q| ≈ |r|``. Keeping ``expm1(r)`` rather than ``exp(r)`` keeps its small values exact
relative to themselves, so the result has no cancellation however small y is:

    expm1(y) = 2^k (1 + q) - 1 = 2^k q + (2^k - 1)          (2^k - 1 exact in float64)

The argument is clamped to [-110, 100] (beyond, the float32 result is -1 or inf either
way), which keeps ``k`` in range; NaN is passed through and ±0 returned as it came by the
last select, which the loop that calls this turns into a blend, so it stays branch-free.

The same reduction gives ``exp`` (``2^k q + 2^k``), and from it ``tanh`` and the sigmoid;
written so, they were tried in the LSTM's forward step (docs/kernels/lstm.md) and lost to
NumPy there: float64 lanes are half as many per vector as float32 ones.

The helper is compiled with ``fastmath={"contract"}`` only, a precaution: under
"reassoc" LLVM may rewrite ``2^k q + (2^k - 1)`` as ``(2^k q + 2^k) - 1``, which cancels
for small y (today's LLVM leaves it; the accuracy test would see the day it does not).
LLVM keeps these flags per instruction when it inlines the helper into a kernel compiled
with "reassoc".
"""
import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

#: The decorator of scalar helpers: like :data:`tinynet.kernels.compiled.kernel`, without
#: "reassoc" (see the module docstring).
scalar = numba.njit(fastmath={"contract"}, error_model="numpy", cache=True, nogil=True)

LOG2E = 1.0 / math.log(2.0)
LN2 = math.log(2.0)
#: 1/n! for n = 2..8: the Taylor coefficients of expm1 after the linear term.
C2, C3, C4, C5, C6, C7, C8 = (1.0 / math.factorial(n) for n in range(2, 9))


@intrinsic
def _from_bits(typingctx, bits):
    """The float64 whose bit pattern is the int64 ``bits`` (LLVM's ``bitcast``)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@scalar
def expm1(x):
    """e^x - 1 of a float32 ``x``, in float64 (to be stored as float32)."""
    y = min(max(np.float64(x), -110.0), 100.0)
    k = np.rint(y * LOG2E)
    r = y - k * LN2
    q = r * (1.0 + r * (C2 + r * (C3 + r * (C4 + r * (C5 + r * (C6 + r * (C7 + r * C8)))))))
    # k through int32: float64 -> int32 is one vector instruction on AVX2, -> int64 is not
    s = _from_bits(np.int64(np.int32(k) + np.int32(1023)) << 52)      # 2^k
    m = s * q + (s - 1.0)
    return m if x == x and x != 0 else np.float64(x)      # NaN; ±0 keeps its sign
