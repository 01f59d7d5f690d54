"""Winograd's filter transform U = G g Gᵀ and its adjoint dW = Gᵀ (Σ dU) G, compiled
(tinynet/kernels/compiled/winograd_filters.py), against the same algebra written out in
float64 with einsum (an independent statement of the formulas), for F(2x2, 3x3) and
F(4x4, 3x3), rotated filters, float32 and float64; and their native jobs against the
same kernels as Python chunks."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("numba")

from tinynet import backend, blas_threads
from tinynet.kernels import winograd as W
from tinynet.kernels.compiled import winograd_filters as kernels

pytestmark = pytest.mark.compiled_kernels      # CPU only (tests/conftest.py)


def _g(tile):
    return np.array(W.G4 if tile == 4 else W.G, dtype=np.float64)


def _transformed(w, tile, flipped):
    """U[ξ·n + ν, o, i] = Σ_ab G[ξ, a] g[a, b] G[ν, b], g = w[o, i] (rotated by 180° if
    ``flipped``), in float64."""
    g = w[:, :, ::-1, ::-1] if flipped else w
    u = np.einsum("xa,oiab,yb->xyoi", _g(tile), g.astype(np.float64), _g(tile))
    return u.reshape(-1, w.shape[0], w.shape[1])


def _adjoint(du, tile):
    """dW[o, i, a, b] = Σ_ξν G[ξ, a] (Σ_s dU_s)[ξ·n + ν, o, i] G[ν, b], in float64."""
    n = tile + 2
    total = du.astype(np.float64).sum(axis=0).reshape(n, n, *du.shape[2:])
    return np.einsum("xa,xyoi,yb->oiab", _g(tile), total, _g(tile))


@pytest.fixture(scope="module")
def compiled_on():
    """The compiled route on; the switch is put back afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backend, "_compiled", True)
        yield


def _tolerance(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@settings(deadline=None, max_examples=30)
@given(c_out=st.integers(1, 9), c_in=st.integers(1, 300), tile=st.sampled_from([2, 4]),
       flipped=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 16))
def test_transform_weight_is_g_g_gt_on_the_compiled_route(compiled_on, c_out, c_in, tile, flipped, dtype, seed):
    """Filter counts across several of the kernel's blocks of 128 and a partial last one.
    Would fail if a tap or a position were misplaced, the block's transpose mixed filters,
    or the rotation reversed the wrong axis."""
    w = np.random.default_rng(seed).standard_normal((c_out, c_in, 3, 3)).astype(dtype)
    u = W.transform_weight(w, flipped=flipped, tile=tile)
    assert u.shape == ((tile + 2) ** 2, c_out, c_in) and u.dtype == dtype
    np.testing.assert_allclose(u, _transformed(w, tile, flipped), **_tolerance(dtype))


@settings(deadline=None, max_examples=30)
@given(partials=st.integers(1, 3), c_out=st.integers(1, 9), c_in=st.integers(1, 300),
       tile=st.sampled_from([2, 4]), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2 ** 16))
def test_adjoint_sums_the_partials_then_applies_gt_du_g(compiled_on, partials, c_out, c_in, tile, dtype, seed):
    """Would fail if a partial were left out or counted twice, or G's transpose were
    applied on the wrong side."""
    du = np.random.default_rng(seed).standard_normal((partials, (tile + 2) ** 2, c_out, c_in)).astype(dtype)
    dw = W._weight_from_partials_compiled(du, tile)
    assert dw.shape == (c_out, c_in, 3, 3) and dw.dtype == dtype
    np.testing.assert_allclose(dw, _adjoint(du, tile), **_tolerance(dtype))


def test_the_numpy_route_gives_the_same_transforms(monkeypatch):
    """The GEMM with kron(G, G) (the route without Numba) and its adjoint, against the
    same formulas."""
    monkeypatch.setattr(backend, "_compiled", False)
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 7, 3, 3))
    for tile in (2, 4):
        for flipped in (False, True):
            np.testing.assert_allclose(W.transform_weight(w, flipped, tile), _transformed(w, tile, flipped),
                                       rtol=1e-12, atol=1e-12)
        du = rng.standard_normal((2, (tile + 2) ** 2, 5, 7))
        dw = W._weight_from_partials([(1, du[1].copy()), (0, du[0].copy())], tile)
        np.testing.assert_allclose(dw, _adjoint(du, tile), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tile", [2, 4])
def test_float32_filters_run_as_native_jobs_with_the_python_chunks_values(tile, native_jobs, monkeypatch):
    """In float32 the transform and the adjoint run as native jobs (transform_piece,
    adjoint_piece: the kernels on OpenBLAS's workers without the GIL), with the values the
    same kernels give as Python chunks, bit for bit; float64 keeps the Python chunks."""
    rng = np.random.default_rng(5)
    pieces = {kernels.transform_piece.address, kernels.adjoint_piece.address}
    for dtype in (np.float32, np.float64):
        w = rng.standard_normal((6, 50, 3, 3)).astype(dtype)
        du = rng.standard_normal((2, (tile + 2) ** 2, 6, 50)).astype(dtype)

        def run():
            return [W.transform_weight(w, flipped, tile) for flipped in (False, True)] + \
                [W._weight_from_partials_compiled(du, tile)]
        native_jobs.clear()
        native = run()
        jobs = [job for job in native_jobs if job[1] in pieces]
        assert len(jobs) == (3 if dtype == np.float32 else 0)
        assert all(count >= 2 for count, *_ in jobs)
        with monkeypatch.context() as m:
            m.setattr(blas_threads, "run_float32_job", lambda *a: False)
            chunks = run()
        for a, b in zip(native, chunks):
            np.testing.assert_array_equal(a, b)
