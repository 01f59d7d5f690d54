"""`benchmarks/distributed.py --quick` executes end to end and writes its JSON; figures
from a busy test machine mean nothing, so none is judged. The scaling model's arithmetic
is checked on hand-made numbers."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mpi4py", reason='needs the dist extra: pip install "tinynet[dist]"')
# MPI ranks in subprocesses on the CPU; the routes they take are tested in process.
pytestmark = pytest.mark.config_independent
ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_prints_the_three_configurations_and_the_model(tmp_path):
    out = tmp_path / "d.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "distributed.py"), "--quick",
                             "--rounds", "1", "--steps", "1", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tinynet 1x2" in result.stdout and "tinynet 2x1" in result.stdout
    assert "allreduce between 2 ranks" in result.stdout and "scaling model" in result.stdout
    data = json.loads(out.read_text())
    assert len(data["rows"]) == 2 and len(data["allreduce_s"]) >= 5
    assert all(r["tinynet 2x1 samples/s"] > 0 for r in data["rows"])


def test_scaling_model_arithmetic():
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_distributed", ROOT / "benchmarks" / "distributed.py")
    distributed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(distributed)
    # α = 10 µs, β = 1 ns/byte: 2 ranks, 1 MB: 2α + nβ = 20 µs + 1 ms
    curve = {n: 2 * 1e-5 + n * 1e-9 for n in (1e3, 1e5, 1e6, 1e7)}
    alpha, beta = distributed.fit_allreduce(curve)
    assert alpha == pytest.approx(1e-5, rel=1e-6) and beta == pytest.approx(1e-9, rel=1e-6)
    row = {"tinynet 2x1 ms": 60.0, "exposed ms": 10.0, "grad_bytes": 1e6}
    model = distributed.scaling_model(row, alpha, beta, ranks=(2, 4))
    assert model["compute_ms"] == pytest.approx(100.0)         # 2 · (60 - 10)
    h = 0.010 / (2e-5 + 1e-3)                                  # exposed share of the allreduce
    step4 = 0.100 / 4 + h * (6 * 1e-5 + 1.5 * 1e6 * 1e-9)
    assert model["predicted"][2]["step_ms"] == pytest.approx(60.0)
    assert model["predicted"][4]["step_ms"] == pytest.approx(1e3 * step4)
    assert model["predicted"][4]["efficiency"] == pytest.approx(0.100 / (4 * step4))
