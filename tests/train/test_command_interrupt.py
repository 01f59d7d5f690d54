"""End to end: SIGINT to a running `tinynet train resnet` at a random moment of its second
epoch, then `tinynet train resnet --resume CKPT` with no other flag, ends with the same
weights and BatchNorm buffers as a run never interrupted."""
import contextlib
import os
import signal
import subprocess
import sys
import threading
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


@contextlib.contextmanager
def _running(*argv, timeout):
    """The command started with its output piped; killed if it still runs after ``timeout``
    seconds, which ends any read of its output: the test cannot hang on it."""
    proc = subprocess.Popen(_command(*argv), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    killer = threading.Timer(timeout, proc.kill)
    killer.daemon = True
    killer.start()
    try:
        yield proc
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


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
    # The uninterrupted run, timed epoch by epoch: the runs below are signalled at a random
    # moment after their first epoch's line and well before their last epoch could end
    seen = {}
    with _running(*flags, "--out", str(tmp_path / "full"), timeout=300) as full:
        for line in full.stdout:                    # epoch lines are flushed as they end
            if line.strip().startswith("epoch "):
                seen[line.split()[1].rstrip(":")] = time.perf_counter()
        _, stderr = full.communicate(timeout=300)
    assert full.returncode == 0, stderr
    epoch_seconds = (seen["3/3"] - seen["1/3"]) / 2
    for attempt in range(5):
        out = tmp_path / f"cut{attempt}"
        with _running(*flags, "--out", str(out), timeout=120) as proc:
            for line in proc.stdout:                  # a checkpoint exists from here on
                if line.strip().startswith("epoch 1/3"):
                    break
            delay = float(rng.uniform(0.0, epoch_seconds))   # inside epoch 2 at the full run's pace
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=120)
        # Finished before the signal (a run much faster than the timed one: a signal during
        # the test pass says so; one during interpreter shutdown, after the run's last
        # line, ends the process with -SIGINT), or stopped before any checkpoint: try again.
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
            assert np.array_equal(expected[k], got[k]), f"{k} differs (SIGINT {delay:.2f} s after epoch 1)"
        print(f"SIGINT {delay:.2f} s after epoch 1; resumed: {resumed.stdout.splitlines()[4].strip()}")
        return
    pytest.fail(f"no attempt was interrupted mid-training (SIGINT up to {epoch_seconds:.2f} s after "
                "the first epoch's line): the test checked nothing")
