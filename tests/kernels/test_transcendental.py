"""The compiled float32 expm1 (tinynet/kernels/compiled/transcendental.py) against float64
NumPy, in ulps of the float32 result, over sampled float32 values (uniform, and every
magnitude from 1e-30 up, both signs), and at NaN, ±inf, ±0 and the clamps."""
import numpy as np
import pytest

numba = pytest.importorskip("numba")

from tinynet import backend

pytestmark = pytest.mark.skipif(backend.get_default_device().type != "cpu",
                                reason="compiled kernels run on NumPy (CPU) arrays only")

from tinynet.kernels.compiled import transcendental as tr  # noqa: E402


@numba.njit(fastmath={"contract", "reassoc"}, error_model="numpy")
def _expm1_loop(x, y):
    """``y[i] = expm1(x[i])`` over float32 arrays, with the kernels' flags ("reassoc", as
    the callers are compiled), so the test sees what a kernel that inlines it computes."""
    for i in range(x.shape[0]):
        y[i] = tr.expm1(x[i])


def _expm1(x):
    y = np.empty_like(x)
    _expm1_loop(x, y)
    return y


def _samples(lo, hi, n=400_000, seed=0):
    rng = np.random.default_rng(seed)
    magnitudes = 10.0 ** rng.uniform(-30, np.log10(max(-lo, hi)), n)
    x = np.concatenate([rng.uniform(lo, hi, n), np.linspace(lo, hi, n), magnitudes, -magnitudes])
    return x[(x >= lo) & (x <= hi)].astype(np.float32)


def _ulps(y32, exact):
    """|y - exact| in ulps of float32 at the exact value (the spacing of the float32 nearest
    it); and where that nearest float32 is finite."""
    nearest = exact.astype(np.float32)
    finite = np.isfinite(nearest)
    spacing = np.spacing(np.abs(np.where(finite, nearest, 0))).astype(np.float64)
    return np.abs(y32.astype(np.float64) - exact) / spacing, finite


def test_within_a_hair_of_correct_rounding():
    """At most 0.52 ulp from the exact value (correct rounding is 0.5) over [-110, 100]:
    tighter than NumPy's own float32 expm1 and than ELU's NumPy route (its tanh form)."""
    x = _samples(-110.0, 100.0)
    y = _expm1(x)
    with np.errstate(over="ignore"):
        exact = np.expm1(x.astype(np.float64))
        ulps, finite = _ulps(y, exact)
        numpy_ulps, _ = _ulps(np.expm1(x), exact)
        nonpositive = x <= 0
        route_ulps, _ = _ulps(backend.expm1_of_nonpositive(x[nonpositive]), exact[nonpositive])
    assert np.all(np.isinf(y[~finite]) & (y[~finite] > 0))      # overflow: +inf
    worst = ulps[finite].max()
    assert worst <= 0.52, (worst, x[finite][np.argmax(ulps[finite])])
    assert worst <= max(numpy_ulps[finite].max(), route_ulps.max())


@pytest.mark.parametrize("x, expected", [
    (np.inf, np.inf), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0), (-200.0, -1.0),
    (-17.5, -1.0), (89.0, np.inf), (1e-30, 1e-30), (-1e-30, -1e-30), (1.0, np.expm1(1.0)),
])
def test_limits_and_signed_zero(x, expected):
    y = _expm1(np.array([x], np.float32))
    assert y[0] == np.float32(expected) and np.signbit(y[0]) == np.signbit(expected)


def test_nan_passes_through():
    y = _expm1(np.array([np.nan, 1.0, -np.nan], np.float32))
    assert np.isnan(y[0]) and np.isnan(y[2]) and not np.isnan(y[1])


def test_loop_vectorises():
    """The helper is written so that a loop calling it vectorises: its machine code rounds
    and shifts packed lanes (``roundpd``; a loop left scalar has ``roundsd``, and a libm
    ``expm1`` call would round nothing)."""
    _expm1(np.ones(64, np.float32))
    asm = _expm1_loop.inspect_asm(_expm1_loop.signatures[0])
    assert "roundpd" in asm
