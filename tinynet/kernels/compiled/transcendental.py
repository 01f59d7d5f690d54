"""expm1, tanh and the sigmoid in float32, for compiled kernels that need them in a fused pass.

Compiled code here has no vector ``exp``: Numba turns ``math.exp``, ``math.expm1`` and
``math.tanh`` into calls to libm's scalar functions, one element at a time, so a loop that
calls them cannot be vectorised (``tanhf`` that way took 37x NumPy's SIMD ``tanh``). These
are written with operations that LLVM does vectorise (multiply, add, round, compare, an
integer shift), for ELU's forward (:mod:`.activation`) and the LSTM's forward step
(:mod:`.lstm`). float32 in, float32 out, float32 arithmetic (8 lanes to a vector on AVX2).

Accuracy, measured over 1.6·10^6 sampled values each against float64 NumPy
(``tests/kernels/test_transcendental.py``), in ulps of the float32 result:

    expm1     1.11 on x <= 0 (NumPy's float32 expm1 0.76; ELU's NumPy route, the tanh
                   form of :func:`tinynet.backend.expm1_of_nonpositive`, 2.6)
    tanh      1.03 (NumPy's float32 tanh 1.37)
    sigmoid   2.25 (the LSTM's NumPy route on AVX2, 1 / (1 + exp(-a)), 3.2 where its
                   result is a normal float; it gives 0 below a = -88.7)

so each is at least as accurate as the NumPy route it replaces.

**exp by range reduction.** Write ``y = k ln2 + r`` with ``k = round(y / ln2)``, so that
``|r| <= ln2/2 ≈ 0.347``; then ``e^y = 2^k e^r``. ``2^k`` is exact and costs an integer
shift: its float32 bit pattern is ``(k + 127) << 23``, the biased exponent over a zero
mantissa (:func:`_pow2`). ``r = (y - k·LN2_HI) - k·LN2_LO`` with ln 2 split into a part of
12 significant bits, whose product with ``k`` is exact, and the rest (Cody and Waite), so r
is accurate to its own last bit. Then ``q = expm1(r)`` by its Taylor polynomial
``r + r²/2! + ... + r⁷/7!`` (the first term left out, ``r⁸/8!``, is ≤ 5·10⁻⁹ relative,
a tenth of an ulp), and

    e^y      = 2^k q + 2^k
    expm1(y) = 2^k q + (2^k - 1)      (y <= 0: 2^k - 1 is exact for the k that matter, and
                                       there is no cancellation, q being accurate relative
                                       to itself; for y > 0 and k = 1 the sum would cancel,
                                       and ELU needs only y <= 0)

**tanh.** Below ``|x| = 0.7``, its Taylor series ``x - x³/3 + 2x⁵/15 - ...`` to ``x²¹``
(coefficients ``2^{2n}(2^{2n}-1) B_{2n} / (2n)!`` from the Bernoulli numbers, computed
exactly at import; the first term left out is 0.18 ulp at 0.7); above,
``1 - 2 / (1 + e^{2|x|})`` with its sign: there the result is at least 0.6, and the error
of ``e^{2|x|}`` is damped rather than amplified. Both are computed and one selected, so
the loop has no branch.

**sigmoid.** ``e = e^{-|a|}`` (in (0, 1], never overflowing), then ``1 / (1 + e)`` for
``a >= 0`` and ``e / (1 + e)`` for ``a < 0``: one division, and no ``1 - small``
cancellation on the negative side. ``2^k`` is applied as two factors there, so that results
down to float32's subnormals (``a`` near -104) come out right rather than 0.

Clamps keep ``k`` in range where the float32 result no longer changes (|x| > 9.5 for tanh,
|a| > 104 for the sigmoid, x < -87 for expm1). NaN passes through; expm1 and tanh give ±0
for ±0.

The helpers are compiled with ``fastmath={"contract"}`` only, a precaution: under "reassoc"
LLVM may rewrite ``(y - k·LN2_HI) - k·LN2_LO`` or ``2^k q + (2^k - 1)`` into forms that
cancel (today's LLVM leaves them; the accuracy tests would see the day it does not). LLVM
keeps these flags per instruction when it inlines a helper into a kernel compiled with
"reassoc".
"""
import math
from fractions import Fraction

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

#: The decorator of the scalar helpers: like :data:`tinynet.kernels.compiled.kernel`, but
#: without "reassoc" (see the module docstring).
scalar = numba.njit(fastmath={"contract"}, error_model="numpy", cache=True, nogil=True)

_f32 = np.float32
LOG2E = _f32(1.0 / math.log(2.0))
#: ln 2 rounded to 12 significant bits (k·LN2_HI exact for |k| < 2^12), and the rest.
LN2_HI = _f32(math.ldexp(round(math.ldexp(math.log(2.0), 12)), -12))
LN2_LO = _f32(math.log(2.0) - float(LN2_HI))
#: 1/n! for n = 2..7: expm1's Taylor coefficients after the linear term.
C2, C3, C4, C5, C6, C7 = (_f32(1.0 / math.factorial(n)) for n in range(2, 8))
#: Where tanh switches from its Taylor series to ``1 - 2 / (1 + e^{2|x|})``.
TANH_SERIES_BOUND = _f32(0.7)


def _bernoulli(n: int) -> Fraction:
    """The Bernoulli number B_n (B_1 = +1/2 convention; only even n are used), exactly, by
    the Akiyama-Tanigawa recurrence."""
    a = [Fraction(0)] * (n + 1)
    for m in range(n + 1):
        a[m] = Fraction(1, m + 1)
        for j in range(m, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
    return a[0]


#: tanh's Taylor coefficients of x^3, x^5, ..., x^21: 2^{2n} (2^{2n} - 1) B_{2n} / (2n)!.
T3, T5, T7, T9, T11, T13, T15, T17, T19, T21 = (
    _f32(Fraction(4 ** n * (4 ** n - 1)) * _bernoulli(2 * n) / math.factorial(2 * n))
    for n in range(2, 12))


@intrinsic
def _from_bits(typingctx, bits):
    """The float32 whose bit pattern is the int32 ``bits`` (LLVM's ``bitcast``)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@scalar
def _pow2(k):
    """2^k as a float32, for an int32 ``k`` in [-126, 127]."""
    return _from_bits((k + np.int32(127)) << 23)


@scalar
def _reduce(y):
    """``(q, k)`` with ``e^y = 2^k (1 + q)``: ``k`` an int32, ``q = expm1(r)``, ``|r| <= ln2/2``."""
    k = np.rint(y * LOG2E)
    r = (y - k * LN2_HI) - k * LN2_LO
    q = r * (_f32(1) + r * (C2 + r * (C3 + r * (C4 + r * (C5 + r * (C6 + r * C7))))))
    return q, np.int32(k)


@scalar
def expm1_of_nonpositive(x):
    """e^m - 1 for ``m = min(x, 0)``, of a float32 ``x`` (ELU's negative branch)."""
    q, k = _reduce(min(max(x, _f32(-87.0)), _f32(0)))
    s = _pow2(k)
    m = s * q + (s - _f32(1))
    return m if x == x and x != 0 else x          # NaN; ±0 keeps its sign


@scalar
def tanh(x):
    """tanh of a float32 ``x``."""
    x2 = x * x
    series = x + x * x2 * (T3 + x2 * (T5 + x2 * (T7 + x2 * (T9 + x2 * (
        T11 + x2 * (T13 + x2 * (T15 + x2 * (T17 + x2 * (T19 + x2 * T21)))))))))
    q, k = _reduce(_f32(2) * min(abs(x), _f32(9.5)))
    s = _pow2(k)
    t = _f32(1) - _f32(2) / (_f32(1) + (s * q + s))       # 1 - 2 / (1 + e^{2|x|})
    t = t if x >= 0 else -t
    t = series if abs(x) < TANH_SERIES_BOUND else t
    return t if x == x and x != 0 else x          # NaN; ±0 keeps its sign


@scalar
def sigmoid(a):
    """1 / (1 + e^-a) of a float32 ``a``."""
    q, k = _reduce(-min(abs(a), _f32(104.0)))
    half = k >> 1                                      # 2^k as 2^half · 2^(k - half)
    s = _pow2(half)
    e = (s * q + s) * _pow2(k - half)                  # e^{-|a|}, in (0, 1]
    r = (_f32(1) if a >= 0 else e) / (_f32(1) + e)
    return r if a == a else a
