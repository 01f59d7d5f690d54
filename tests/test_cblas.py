"""tinynet/cblas.py: NumPy's own BLAS called directly. On drawn shapes and layouts (plain,
transposed, a block of a larger array) ``gemm`` gives ``beta·out + a @ b`` in float32
and float64, writes nothing outside ``out``, and refuses (False, ``out`` untouched) what
it cannot pass to BLAS; ``backend.matmul_into`` gives the same values with and without
it; the library is found in a fresh process and ``TINYNET_NO_CBLAS=1`` turns it off;
``corename`` names the kernels OpenBLAS loaded (``OPENBLAS_CORETYPE`` included), and
``backend.blas_has_avx512`` follows it rather than the CPU. ``transpose`` writes the
transpose of a block of rows into a block of another array and nothing else, keeps every
float's bits (signs of zeros, infinities, NaN), and refuses leading dimensions BLAS
cannot take and dtypes other than float32 and float64."""
import ctypes
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinynet import backend, cblas

ROOT = Path(__file__).resolve().parents[1]

needs_blas = pytest.mark.skipif(
    not cblas.available(),
    reason="NumPy's BLAS here is not an OpenBLAS that tinynet.cblas can find "
           "(matmul_into falls back to matmul; tested below without it)")


def _operand(draw, rows, cols, dtype, rng):
    """A (rows, cols) view laid out one of four ways: C order, transposed (contiguous
    down its columns), a block of a larger C-order array (rows further apart), or the
    transpose of such a block (columns further apart)."""
    layout = draw(st.sampled_from(["c", "transposed", "block", "transposed block"]))
    if layout == "c":
        return rng.standard_normal((rows, cols)).astype(dtype)
    if layout == "transposed":
        return rng.standard_normal((cols, rows)).astype(dtype).T
    r, c = (rows, cols) if layout == "block" else (cols, rows)
    big = rng.standard_normal((r + 3, c + draw(st.integers(1, 5)))).astype(dtype)
    r0, c0 = draw(st.integers(0, 3)), draw(st.integers(0, big.shape[1] - c))
    block = big[r0:r0 + r, c0:c0 + c]
    return block if layout == "block" else block.T


@needs_blas
@given(st.data(), st.integers(1, 9), st.integers(1, 9), st.integers(1, 9),
       st.sampled_from([np.float32, np.float64]), st.sampled_from([0.0, 1.0, 0.5]))
def test_gemm_is_beta_out_plus_the_product_on_any_layout(data, M, K, N, dtype, beta):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    a = _operand(data.draw, M, K, dtype, rng)
    b = _operand(data.draw, K, N, dtype, rng)
    frame = rng.standard_normal((M + 4, N + 6)).astype(dtype)     # out is a block of it
    r0, c0 = data.draw(st.integers(0, 4)), data.draw(st.integers(0, 6))
    before = frame.copy()
    out = frame[r0:r0 + M, c0:c0 + N]
    expected = beta * out.astype(np.float64) + a.astype(np.float64) @ b.astype(np.float64)
    assert cblas.gemm(a, b, out, beta=beta)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    outside = np.ones(frame.shape, bool)
    outside[r0:r0 + M, c0:c0 + N] = False
    np.testing.assert_array_equal(frame[outside], before[outside])   # nothing written around


@needs_blas
def test_one_row_or_column_operands_pass_whatever_their_other_stride():
    """BLAS never steps along an axis of length 1, so its stride (0 for a broadcast) must
    not turn the product away; and a row whose elements are spaced out is the transpose
    of a one-column matrix (a column with spaced elements, a one-column matrix itself)."""
    as_strided = np.lib.stride_tricks.as_strided
    base = np.arange(8, dtype=np.float32)
    rows = {"broadcast row": as_strided(base, (1, 3), (0, 4)),
            "spaced row": as_strided(base, (1, 3), (0, 8))}
    columns = {"broadcast column": as_strided(base, (4, 1), (4, 0)),
               "spaced column": as_strided(base, (4, 1), (8, 0))}
    b = np.arange(12, dtype=np.float32).reshape(3, 4)
    for name, row in rows.items():
        out = np.zeros((1, 4), np.float32)
        assert cblas.gemm(row, b, out), name
        np.testing.assert_array_equal(out, row @ b)
    for name, column in columns.items():
        out = np.zeros((4, 3), np.float32)
        assert cblas.gemm(column, b[:1, :3], out), name
        np.testing.assert_array_equal(out, column @ b[:1, :3])


def test_numpys_bundled_openblas_is_found():
    """NumPy's wheels ship scipy-openblas: with one, the direct BLAS must be in use (a
    binding that lost it would still pass every test above by skipping)."""
    blas = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
    if blas.get("name") != "scipy-openblas":
        pytest.skip(f"NumPy is built against {blas.get('name')!r}, not its bundled OpenBLAS")
    assert cblas.available()


def _refusals():
    f32 = np.ones((4, 3), np.float32)
    g32 = np.ones((3, 5), np.float32)
    out = np.zeros((4, 5), np.float32)
    read_only = np.zeros((4, 5), np.float32)
    read_only.flags.writeable = False
    shared = np.zeros((4, 8), np.float32)
    big = np.ones((8, 6), np.float32)
    return {
        "int operands": (f32.astype(np.int32), g32.astype(np.int32), out.astype(np.int32)),
        "mixed dtypes": (f32.astype(np.float64), g32, out),
        "float16": (f32.astype(np.float16), g32.astype(np.float16), out.astype(np.float16)),
        "byte-swapped": (f32.astype(">f4"), g32.astype(">f4"), out.astype(">f4")),
        "shapes that do not chain": (f32, np.ones((4, 5), np.float32), out),
        "wrong out shape": (f32, g32, np.zeros((5, 4), np.float32)),
        "empty inner dimension": (np.ones((4, 0), np.float32), np.ones((0, 5), np.float32), out),
        "strided both ways": (big[::2, ::2], g32, out),
        "out contiguous down columns": (f32, g32, np.zeros((5, 4), np.float32).T),
        "read-only out": (f32, g32, read_only),
        "out overlapping a": (shared[:, :3], np.ones((3, 5), np.float32), shared[:, 3:]),
        "3-D operand": (f32[None], g32, out),
        "a list": (f32.tolist(), g32, out),
        "unaligned operand": (np.frombuffer(bytearray(4 * 12 + 1), np.float32, 12, offset=1).reshape(4, 3),
                              g32, out),
    }


@needs_blas
@pytest.mark.parametrize("case", list(_refusals()))
def test_gemm_refuses_what_blas_cannot_take_and_leaves_out_alone(case):
    a, b, out = _refusals()[case]
    before = np.array(out, copy=True)
    assert cblas.gemm(a, b, out, beta=1.0) is False
    np.testing.assert_array_equal(out, before)


@needs_blas
def test_gemm_refuses_sizes_and_row_distances_past_the_blas_integer(monkeypatch):
    # an 8-bit BLAS integer (largest 127) stands in for a 32-bit one and sizes past 2^31
    monkeypatch.setattr(cblas, "_integer", ctypes.c_int8)
    out = np.zeros((4, 5), np.float32)
    for a, b in ((np.ones((4, 200), np.float32), np.ones((200, 5), np.float32)),      # K
                 (np.ones((4, 300), np.float32)[:, :3], np.ones((3, 5), np.float32)),  # lda
                 (np.ones((4, 3), np.float32), np.ones((3, 130), np.float32)[:, :5])):  # ldb
        assert cblas.gemm(a, b, out, beta=1.0) is False
    assert not out.any()
    assert cblas.gemm(np.ones((4, 3), np.float32), np.ones((3, 5), np.float32), out) is True
    np.testing.assert_array_equal(out, 3)


@needs_blas
def test_matmul_into_gives_the_same_values_without_the_blas(monkeypatch):
    """The fallback (``xp.matmul``, plus an add when accumulating) and the direct call
    agree, accumulating into a strided block and overwriting it."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 7)).astype(np.float32)
    b = rng.standard_normal((9, 7)).astype(np.float32).T
    results = []
    for routines in (cblas._routines, {}):
        monkeypatch.setattr(cblas, "_routines", routines)
        frame = np.arange(80, dtype=np.float32).reshape(8, 10)
        backend.matmul_into(a, b, frame[1:7, 0:9], accumulate=True)
        backend.matmul_into(a, b[:, :4], frame[2:8, 6:10])
        results.append(frame)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6, atol=1e-5)
    expected = np.arange(80, dtype=np.float32).reshape(8, 10)
    expected[1:7, 0:9] += a @ b
    expected[2:8, 6:10] = a @ b[:, :4]
    np.testing.assert_allclose(results[0], expected, rtol=1e-6, atol=1e-5)


def test_no_library_found_means_not_available(monkeypatch):
    monkeypatch.setattr(cblas, "_routines", None)
    monkeypatch.setattr(cblas, "_library_paths", lambda: ["/nonexistent/libopenblas.so"])
    assert cblas.available() is False
    assert cblas.gemm(np.ones((2, 2)), np.ones((2, 2)), np.zeros((2, 2))) is False


@pytest.mark.parametrize("env, expected", [pytest.param({}, "True", marks=needs_blas),
                                           ({"TINYNET_NO_CBLAS": "1"}, "False")])
def test_found_in_a_fresh_process_unless_switched_off(env, expected):
    environment = {k: v for k, v in os.environ.items() if k != "TINYNET_NO_CBLAS"}
    out = subprocess.run([sys.executable, "-c", "from tinynet import cblas; print(cblas.available())"],
                         cwd=ROOT, env={**environment, **env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == expected, out.stderr


@needs_blas
def test_corename_is_what_openblas_reports_to_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    names = {i["architecture"] for i in threadpoolctl.threadpool_info()
             if i["internal_api"] == "openblas"
             and os.path.realpath(i["filepath"]) == os.path.realpath(cblas.library()[0]._name)}
    if not names:
        pytest.skip("threadpoolctl does not list the OpenBLAS that tinynet.cblas found")
    assert names == {cblas.corename()}


@needs_blas
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="OPENBLAS_CORETYPE=Haswell is x86-64")
def test_openblas_coretype_holds_the_blas_kernels_below_the_cpu():
    """An AVX-512 CPU with ``OPENBLAS_CORETYPE=Haswell`` runs AVX2 GEMMs: the kernel
    choices that depend on the GEMM must see AVX2 (the CPU's flags would say AVX-512)."""
    code = "from tinynet import backend, cblas; print(cblas.corename(), backend.blas_has_avx512())"
    environment = {k: v for k, v in os.environ.items() if k != "TINYNET_NO_CBLAS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60, capture_output=True, text=True,
                         env={**environment, "OPENBLAS_CORETYPE": "Haswell", "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["Haswell", "False"], out.stderr


@pytest.mark.parametrize("name, cpu, expected", [
    ("SkylakeX", False, True), ("Cooperlake", False, True), ("SapphireRapids", True, True),
    ("Haswell", True, False), ("Zen", True, False), ("Prescott", False, False),
    (None, True, True), (None, False, False)])
def test_blas_has_avx512_follows_the_kernels_then_the_cpu(monkeypatch, name, cpu, expected):
    monkeypatch.setattr(backend, "_blas_avx512", None)
    monkeypatch.setattr(cblas, "corename", lambda: name)
    monkeypatch.setattr(backend, "cpu_has_avx512", lambda: cpu)
    assert backend.blas_has_avx512() is expected


@needs_blas
@given(st.data(), st.integers(1, 40), st.integers(1, 40), st.sampled_from([np.float32, np.float64]))
def test_transpose_writes_the_transposed_block_and_nothing_else(data, rows, cols, dtype):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    lda, ldb = cols + data.draw(st.integers(0, 3)), rows + data.draw(st.integers(0, 3))
    a = rng.standard_normal((rows, lda)).astype(dtype)
    frame = rng.standard_normal((cols, ldb)).astype(dtype)
    before = frame.copy()
    assert cblas.transpose(dtype, rows, cols, a.ctypes.data, lda, frame.ctypes.data, ldb)
    np.testing.assert_array_equal(frame[:, :rows], a[:, :cols].T)
    np.testing.assert_array_equal(frame[:, rows:], before[:, rows:])   # the gap between rows


@needs_blas
def test_transpose_keeps_every_floats_bits():
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -3.5, 7e37], np.float32)
    a = np.tile(special, (16, 4))                                 # 16 x 32
    b = np.empty((32, 16), np.float32)
    assert cblas.transpose(np.float32, 16, 32, a.ctypes.data, 32, b.ctypes.data, 16)
    np.testing.assert_array_equal(b.view(np.uint32), a.T.view(np.uint32))


@needs_blas
def test_transpose_refuses_what_blas_cannot_take():
    a, b = np.ones((4, 6), np.float32), np.zeros((6, 4), np.float32)
    assert cblas.transpose(np.float32, 4, 6, a.ctypes.data, 5, b.ctypes.data, 4) is False    # lda < cols
    assert cblas.transpose(np.float32, 4, 6, a.ctypes.data, 6, b.ctypes.data, 3) is False    # ldb < rows
    huge = 2 ** (8 * ctypes.sizeof(cblas._integer) - 1)                    # past the BLAS integer
    assert cblas.transpose(np.float32, 4, 6, a.ctypes.data, huge, b.ctypes.data, 4) is False
    ints = np.ones((4, 6), np.int32)
    assert cblas.can_transpose(np.int32) is False
    assert cblas.transpose(np.int32, 4, 6, ints.ctypes.data, 6, b.ctypes.data, 4) is False
    assert not b.any()
