"""The compiled float32 expm1 (of x <= 0) / tanh / sigmoid (tinynet/kernels/compiled/transcendental.py)
against float64 NumPy, in ulps of the float32 result, over sampled float32 values (uniform,
and every magnitude from 1e-30 up, both signs); and at NaN, ±inf, ±0, the clamps and the
subnormal range."""
import numpy as np
import pytest

numba = pytest.importorskip("numba")

from tinynet import backend

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)

from tinynet.kernels.compiled import transcendental as tr  # noqa: E402


def _loop(fn):
    """A compiled loop ``y[i] = fn(x[i])`` over float32 arrays, with the kernels' flags
    ("reassoc", as the callers are compiled), so the test sees what a kernel that inlines
    the helper computes. Not cached: these closures share one source line, which is what
    Numba's cache keys on."""
    @numba.njit(fastmath={"contract", "reassoc"}, error_model="numpy")
    def loop(x, y):
        for i in range(x.shape[0]):
            y[i] = fn(x[i])
    return loop


_LOOPS = {}


def _apply(name, x):
    if name not in _LOOPS:
        _LOOPS[name] = _loop(getattr(tr, name))
    y = np.empty_like(x)
    _LOOPS[name](x, y)
    return y


def _sigmoid64(a):
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _numpy_sigmoid32(a):
    """The LSTM NumPy route's float32 sigmoid on AVX2 machines: 1 / (1 + exp(-a))."""
    with np.errstate(over="ignore"):
        return np.float32(1) / (np.float32(1) + np.exp(-a))


# name: (exact in float64, the float32 NumPy way it replaces in a kernel (ELU's NumPy route
# for expm1, the LSTM's AVX2 route for the sigmoid), sample range, bound in ulps)
FUNCTIONS = {
    "expm1_of_nonpositive": (lambda x: np.expm1(np.minimum(x, 0)),
                             lambda x: backend.expm1_of_nonpositive(x.copy()), (-100.0, 100.0), 1.25),
    "tanh": (np.tanh, np.tanh, (-12.0, 12.0), 1.15),
    "sigmoid": (_sigmoid64, _numpy_sigmoid32, (-110.0, 110.0), 2.4),
}


def _samples(lo, hi, n=400_000, seed=0):
    rng = np.random.default_rng(seed)
    magnitudes = 10.0 ** rng.uniform(-30, np.log10(max(-lo, hi)), n)
    x = np.concatenate([rng.uniform(lo, hi, n), np.linspace(lo, hi, n), magnitudes, -magnitudes])
    return x[(x >= lo) & (x <= hi)].astype(np.float32)


def _ulps(y32, exact):
    """|y - exact| in ulps of float32 at the exact value (the spacing of the float32 nearest
    it; float32's subnormal spacing below the normals), and where that float32 is finite."""
    nearest = exact.astype(np.float32)
    finite = np.isfinite(nearest)
    spacing = np.spacing(np.abs(np.where(finite, nearest, 0))).astype(np.float64)
    return np.abs(y32.astype(np.float64) - exact) / spacing, finite


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_accuracy_in_ulps(name):
    """Within the bound the module docstring states, and at least as accurate as the NumPy
    float32 computation it replaces in a kernel (its own worst over the same samples)."""
    exact_fn, numpy32, (lo, hi), bound = FUNCTIONS[name]
    x = _samples(lo, hi)
    y = _apply(name, x)
    with np.errstate(over="ignore", under="ignore"):
        exact = exact_fn(x.astype(np.float64))
        ulps, finite = _ulps(y, exact)
        numpy_ulps, _ = _ulps(numpy32(x), exact)
    worst = ulps[finite].max()
    assert worst <= bound, (name, worst, x[finite][np.argmax(ulps[finite])])
    # compared where results are normal floats (NumPy's sigmoid gives 0 for a < -88.7)
    normal = finite & (np.abs(exact) >= np.finfo(np.float32).tiny)
    assert worst <= numpy_ulps[normal].max()


@pytest.mark.parametrize("name, x, expected", [
    ("expm1_of_nonpositive", [np.inf, -np.inf, 0.0, -0.0, -200.0, -17.5, 88.8, 1e-30, -1e-30],
     [0, -1, 0, -0.0, -1, -1, 0, 0, -1e-30]),
    ("tanh", [np.inf, -np.inf, 0.0, -0.0, 9.5, -50.0, 1e-30, -1e-30],
     [1, -1, 0, -0.0, 1, -1, 1e-30, -1e-30]),
    ("sigmoid", [np.inf, -np.inf, 0.0, -0.0, 200.0, -200.0, 1e-30],
     [1, 0, 0.5, 0.5, 1, 0, 0.5]),
])
def test_limits_and_signed_zero(name, x, expected):
    y = _apply(name, np.array(x, np.float32))
    expected = np.array(expected, np.float32)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(expected))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_nan_passes_through(name):
    y = _apply(name, np.array([np.nan, 1.0, -np.nan], np.float32))
    assert np.isnan(y[0]) and np.isnan(y[2]) and not np.isnan(y[1])


def test_sigmoid_reaches_the_subnormals():
    """sigmoid(a) for a in [-103.9, -87.5] is a float32 subnormal (e^a < 2^-126): the
    two-factor 2^k gets it to within a few of its 2^-149 steps, not 0."""
    a = np.linspace(-103.9, -87.5, 4001).astype(np.float32)
    y = _apply("sigmoid", a)
    exact = _sigmoid64(a.astype(np.float64))
    assert np.all(y > 0)
    assert np.max(np.abs(y.astype(np.float64) - exact)) <= 2.5 * 2.0 ** -149


def test_loop_vectorises():
    """The helpers are written so that a loop calling them vectorises: its machine code
    rounds and divides packed float32 lanes (``roundps``, or AVX-512's ``rndscaleps``, and
    ``divps``; a loop left scalar has only ``roundss`` / ``rndscaless`` and ``divss``, and
    a libm call would have neither)."""
    _apply("tanh", np.ones(64, np.float32))
    loop = _LOOPS["tanh"]
    asm = loop.inspect_asm(loop.signatures[0])
    assert ("roundps" in asm or "rndscaleps" in asm) and "divps" in asm
