"""benchmarks/gpu_check.sh fails loudly (exit 2, a reason, a report saying so) where there is
no usable GPU, and runs nothing else there."""
import os
import shutil
import stat
import subprocess

import pytest

from tinynet import backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.sh")


def run(tmp_path, path_dirs):
    env = dict(os.environ, PATH=os.pathsep.join(path_dirs), PYTHONPATH=ROOT)
    return subprocess.run(["bash", SCRIPT, str(tmp_path / "out")], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA driver")
def test_without_a_driver_it_stops_with_status_2(tmp_path):
    result = run(tmp_path, os.environ["PATH"].split(os.pathsep))
    assert result.returncode == 2
    assert "no nvidia-smi on PATH" in result.stderr
    report = (tmp_path / "out" / "report.md").read_text()
    assert "FAILED before running anything" in report
    assert not (tmp_path / "out" / "tests.log").exists()


@pytest.mark.skipif(backend.is_cuda_available(), reason="CUDA works here")
def test_with_a_driver_but_no_usable_gpu_it_says_why(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    smi = fake / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: Pretend GPU'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    result = run(tmp_path, [str(fake)] + os.environ["PATH"].split(os.pathsep))
    assert result.returncode == 2
    assert "tinynet cannot use CUDA" in result.stderr
    assert not (tmp_path / "out" / "tests.log").exists()
