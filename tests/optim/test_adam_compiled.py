"""Adam's compiled update (tinynet/kernels/compiled/optim.py) against the NumPy route it
replaces, over drawn options, dtypes, chunkings and gradients with NaN and inf; that it
runs where it should; and that it leaves ``p.grad`` as it found it (it reads the gradients
in place, where the NumPy route works on a copy)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("numba")

import tinynet as tn  # noqa: E402
import tinynet.optim as optim  # noqa: E402
from tinynet import backend  # noqa: E402
from tinynet.optim import _flat  # noqa: E402
from tinynet.testing.routes import on_both_routes  # noqa: E402

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)

SHAPES = [(3, 4), (5,), (2, 1, 3), (7, 2)]


def _train(name, kw, dtype, grads):
    """Parameters after len(grads) steps of optimizer ``name``, and the gradients as the
    parameters held them after the last step."""
    rng = np.random.default_rng(0)
    params = [tn.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in SHAPES]
    opt = getattr(optim, name)(params, **kw)
    for step in grads:
        for p, g in zip(params, step):
            p.grad = tn.tensor(g.copy())
        opt.step()
    return [p.detach().numpy().copy() for p in params], [p.grad.numpy().copy() for p in params]


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(["Adam", "AdamW"]), dtype=st.sampled_from([np.float32, np.float64]),
       amsgrad=st.booleans(), maximize=st.booleans(), weight_decay=st.sampled_from([0.0, 0.1]),
       chunk=st.sampled_from([3, 7, 1 << 17]), views=st.booleans(), specials=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_compiled_adam_matches_the_numpy_route(name, dtype, amsgrad, maximize, weight_decay,
                                               chunk, views, specials, seed):
    """Same parameters after 3 steps on both routes (to rounding: the compiled one fuses
    multiply-adds), NaN where NaN; chunks of 3 and 7 straddle the parameters, and the
    compiled route takes a straddling chunk's gradients gathered or (``views``) piece by
    piece."""
    rng = np.random.default_rng(seed)
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(3)]
    if specials:
        grads[1][0][0, 1] = np.nan
        grads[2][3][4, 0] = np.inf
    kw = dict(lr=0.01, amsgrad=amsgrad, maximize=maximize, weight_decay=weight_decay)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_flat, "CHUNK", chunk)
        mp.setattr(_flat, "VIEWS_MIN", 0 if views else 1 << 40)
        (numpy_p, _), (compiled_p, _) = on_both_routes(lambda: _train(name, kw, dtype, grads))
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for a, b in zip(numpy_p, compiled_p):
        assert b.dtype == dtype
        np.testing.assert_allclose(b, a, **tol)         # also: NaN exactly where NaN


def test_the_compiled_update_runs_and_leaves_the_gradients_alone(monkeypatch):
    """The route comparison above compares something only if the kernel runs: once a chunk.
    And maximize, which the NumPy route applies by negating its copy in place, must not
    negate p.grad through the view the compiled route reads."""
    from tinynet.kernels.compiled import optim as compiled_optim
    calls = []
    kernel = compiled_optim.adam_update
    monkeypatch.setattr(compiled_optim, "adam_update", lambda *a: calls.append(1) or kernel(*a))
    monkeypatch.setattr(_flat, "CHUNK", 7)
    monkeypatch.setattr(backend, "_compiled", True)
    rng = np.random.default_rng(1)
    grads = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES]]
    _, seen = _train("Adam", dict(lr=0.1, maximize=True, weight_decay=0.1), np.float32, grads)
    total = sum(int(np.prod(s)) for s in SHAPES)
    assert len(calls) == -(-total // 7)
    for g, h in zip(seen, grads[0]):
        np.testing.assert_array_equal(g, h)
    # piece by piece: one call per (chunk, parameter) piece; sizes 12, 5, 6, 14 in chunks
    # of 7 make the pieces 7 | 5 2 | 3 4 | 2 5 | 7 | 2
    calls.clear()
    monkeypatch.setattr(_flat, "VIEWS_MIN", 0)
    _train("Adam", dict(lr=0.1), np.float32, grads)
    assert len(calls) == 9


def test_a_hand_computed_first_step(monkeypatch):
    """Step 1 of Adam from m = v = 0: m = (1 - β1) g, v = (1 - β2) g², and the bias
    corrections cancel them, so p ← p - lr · g / (|g| + ε) = p - lr · sign(g) for |g| ≫ ε
    (and p unchanged where g = 0)."""
    monkeypatch.setattr(backend, "_compiled", True)
    p = tn.tensor(np.array([1.0, -2.0, 0.5], np.float32), requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    p.grad = tn.tensor(np.array([3.0, -0.25, 0.0], np.float32))
    opt.step()
    np.testing.assert_allclose(p.detach().numpy(), [0.9, -1.9, 0.5], rtol=1e-6)
