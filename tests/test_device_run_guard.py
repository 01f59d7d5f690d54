"""tests/conftest.py: a run that asked for a device (TINYNET_TEST_DEVICE) and ran nothing on
it must exit non-zero with a message, not report success with every test skipped.

Each case runs pytest in a child process on a two-line test file beside a copy of the
project's conftest.py.
"""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tinynet import backend

# Runs pytest in subprocesses with its own TINYNET_TEST_DEVICE.
pytestmark = pytest.mark.config_independent

CONFTEST = pathlib.Path(__file__).with_name("conftest.py")
ROOT = CONFTEST.parent.parent


def _run(tmp_path, body, device, jit=None, args=()):
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_case.py").write_text(body)
    env = dict(os.environ, PYTHONPATH=str(ROOT), HYPOTHESIS_PROFILE="ci")
    for name, value in (("TINYNET_TEST_DEVICE", device), ("TINYNET_JIT", jit)):
        env.pop(name, None)
        if value is not None:
            env[name] = value
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


SKIPS = "import pytest\n\ndef test_skips():\n    pytest.skip('not here')\n"
PASSES = "def test_passes():\n    assert 1 + 1 == 2\n"


def test_asked_for_a_device_and_everything_skipped_fails_loudly(tmp_path):
    rc, out = _run(tmp_path, SKIPS, "cuda")
    assert rc != 0, out
    assert "TINYNET_TEST_DEVICE=cuda was asked for, but nothing ran on it" in out


def test_the_guard_holds_with_parallel_workers(tmp_path):
    """The README runs the suite on pytest-xdist workers: the reports reach the guard."""
    pytest.importorskip("xdist", reason="pytest-xdist (the test extra) is not installed")
    rc, out = _run(tmp_path, SKIPS, "cuda", args=("-n", "2"))
    assert rc != 0, out
    assert "TINYNET_TEST_DEVICE=cuda was asked for, but nothing ran on it" in out


TWO_KINDS = ("import pytest\n\n@pytest.mark.config_independent\ndef test_plumbing():\n    pass\n\n"
             "def test_arrays():\n    pass\n")


@pytest.mark.parametrize("device, jit, workers, ran", [
    (None, None, 0, 2), (None, "1", 0, 2), (None, "0", 0, 1), ("fakecuda", None, 0, 1),
    (None, "0", 2, 1)])
def test_config_independent_tests_run_in_the_default_run_only(tmp_path, device, jit, workers, ran):
    if workers:
        pytest.importorskip("xdist", reason="pytest-xdist (the test extra) is not installed")
    rc, out = _run(tmp_path, TWO_KINDS, device, jit=jit, args=("-n", str(workers)) if workers else ())
    assert rc == 0, out
    assert f"{ran} passed" in out, out
    assert ("1 config_independent tests deselected" in out) == (ran == 1), out


def test_the_same_all_skipped_run_on_the_cpu_is_not_an_error(tmp_path):
    rc, out = _run(tmp_path, SKIPS, None)
    assert rc == 0, out
    assert "was asked for" not in out


def test_asking_for_cuda_without_a_usable_gpu_fails_with_the_reason(tmp_path):
    rc, out = _run(tmp_path, PASSES, "cuda")
    reason = backend.cuda_unavailable_reason()
    if reason is None:      # a GPU machine: the test ran on it
        assert rc == 0, out
        assert "1 passed" in out
    else:
        assert rc != 0, out
        assert "the device is not usable" in out and "1 skipped" in out
