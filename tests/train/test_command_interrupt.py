"""End to end: SIGINT to a running `tinynet train resnet` at a random moment, then
`tinynet train resnet --resume CKPT` with no other flag, ends with the same weights and
BatchNorm buffers as a run never interrupted."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image", reason="image folders need Pillow (the images extra)")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _command(*argv):
    return [sys.executable, "-m", "tinynet", "train", "resnet", *argv, "--no-progress"]


def _env():
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")


def _weights(path):
    from tinynet.utils import load
    return {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in load(path)["model"].items()}


def test_sigint_at_a_random_moment_then_resume_matches_the_uninterrupted_run(tmp_path):
    rng = np.random.default_rng()
    for c in ("a", "b", "c"):
        for i in range(16):
            os.makedirs(tmp_path / "data" / c, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)).save(tmp_path / "data" / c / f"{i}.png")
    flags = ["--data", f"folder:{tmp_path / 'data'}", "--size", "8", "--width", "2", "--epochs", "3",
             "--batch-size", "4"]
    full = subprocess.run(_command(*flags, "--out", str(tmp_path / "full")), env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    for attempt in range(5):
        out = tmp_path / f"cut{attempt}"
        proc = subprocess.Popen(_command(*flags, "--out", str(out)), env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:                      # training starts after this line
            if "metrics and checkpoints in" in line:
                break
        delay = float(rng.uniform(0.0, 1.5)) / (attempt + 1)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
        # Finished before the signal (a signal during the test pass says so; one during
        # interpreter shutdown, after the run's last line, ends the process with -SIGINT),
        # or stopped before any step: try again.
        finished = (proc.returncode == 0 or "training had finished" in stderr
                    or (proc.returncode == -signal.SIGINT and "over 3 epochs" in stdout))
        if finished or not (out / "last.npz").exists():
            continue
        assert proc.returncode == 130, stderr
        assert f"tinynet train resnet --resume {out / 'last.npz'}" in stderr
        resumed = subprocess.run(_command("--resume", str(out / "last.npz")), env=_env(), capture_output=True,
                                 text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        expected, got = _weights(tmp_path / "full" / "last.npz"), _weights(out / "last.npz")
        assert any("running_var" in k for k in expected)
        for k in expected:
            assert np.array_equal(expected[k], got[k]), f"{k} differs (SIGINT {delay:.2f} s into training)"
        print(f"SIGINT {delay:.2f} s into training; resumed: {resumed.stdout.splitlines()[4].strip()}")
        return
    pytest.skip("the run finished before every SIGINT; nothing was interrupted")
