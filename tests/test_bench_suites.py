"""The real benchmark suites execute: ``benchmarks/run.py --quick`` on the suite's device.

Figures from a busy test machine mean nothing, so this only shows that every suite runs
and writes rows the runner reads (the runner itself is checked in ``test_bench.py``).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The suites that must run wherever their script is in the tree (the reference libraries'
#: suites may report themselves absent instead).
OWN_SUITES = ("kernels", "overhead", "recurrent", "training", "attention")


def test_quick_smoke_run_of_the_real_suites(tmp_path, check_bench_row):
    """It runs on the test device (``TINYNET_TEST_DEVICE=cuda`` checks the suites' GPU path)."""
    pytest.importorskip("threadpoolctl")
    device = os.environ.get("TINYNET_TEST_DEVICE", "cpu")
    out = tmp_path / "quick.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
                             "--device", device, "--json", str(out)], cwd=tmp_path,
                            capture_output=True, text=True,
                            timeout=900, env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    data = json.loads(out.read_text())
    ran = [name for name, suite in data["suites"].items() if suite["status"] == "ok"]
    assert ran, f"no benchmark suite ran: {data['suites']}"
    for row in data["rows"]:
        check_bench_row(row)
    for name in OWN_SUITES:
        if (ROOT / "benchmarks" / f"{name}.py").is_file():
            assert data["suites"][name]["status"] == "ok", data["suites"][name]
            assert data["suites"][name]["rows"], f"{name} gave no rows"
