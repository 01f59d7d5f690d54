"""``tinynet train --nproc 2``: one report from rank 0, and a Ctrl-C'd run that resumes to
the bit-identical weights and BatchNorm buffers of an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason='needs the dist extra: pip install "tinynet[dist]"')
from tinynet import utils  # noqa: E402
from tinynet.distributed.launch import find_mpiexec  # noqa: E402

# MPI ranks in subprocesses on the CPU; the routes they take are tested in process.
pytestmark = pytest.mark.config_independent

try:
    find_mpiexec()
except RuntimeError as e:   # pragma: no cover
    pytest.skip(str(e), allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


def train(*args, cwd, interrupt_when=None, timeout=300):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "tinynet", "train", *args, "--no-progress"], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        if interrupt_when is not None:
            deadline = time.monotonic() + timeout
            while not interrupt_when() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGINT)        # what Ctrl-C in a terminal sends
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"tinynet train {' '.join(args)} did not end in {timeout} s\n{out}\n{err}")
    return proc.returncode, out, err


def test_two_ranks_train_and_only_rank_0_reports(tmp_path):
    code, out, err = train("cnn", "--nproc", "2", "--epochs", "2", "--out", "run", cwd=tmp_path)
    assert code == 0, err
    assert out.count("tinynet train cnn:") == 1 and out.count("\ntest accuracy:") == 1, out
    assert "2 ranks x 16" in out
    assert (tmp_path / "run" / "last.npz").is_file() and (tmp_path / "run" / "metrics.json").is_file()
    state = utils.load(tmp_path / "run" / "last.npz")
    assert all(not k.startswith("module.") for k in state["model"])   # the model's own keys


def test_batch_size_must_split_evenly(tmp_path):
    code, out, err = train("cnn", "--nproc", "3", "--batch-size", "32", "--epochs", "1", cwd=tmp_path)
    assert code != 0 and "--batch-size 32 is not divisible by the 3 ranks" in err


def test_interrupted_two_rank_run_resumes_bit_identically(tmp_path):
    args = ("resnet", "--nproc", "2", "--sync-bn", "--epochs", "2", "--batch-size", "32")
    code, _, err = train(*args, "--out", "whole", cwd=tmp_path)
    assert code == 0, err
    first_epoch = tmp_path / "cut" / "metrics.json"
    seen = {}

    def into_the_second_epoch():
        # An epoch takes seconds here; 0.5 s after the first one ends is inside the second.
        if first_epoch.is_file():
            seen.setdefault("t", time.monotonic())
            return time.monotonic() - seen["t"] > 0.5
        return False
    code, out, err = train(*args, "--out", "cut", cwd=tmp_path, interrupt_when=into_the_second_epoch)
    assert code == 130, (out, err)
    cut = utils.load(tmp_path / "cut" / "last.npz")
    assert int(cut["epoch"]) == 1 and int(cut["step"]) > 0, \
        f"the interrupt did not land inside epoch 2 (epoch {cut['epoch']}, step {cut['step']})"
    code, out, err = train(*args, "--out", "cut", "--resume", str(tmp_path / "cut" / "last.npz"), cwd=tmp_path)
    assert code == 0, err
    whole, resumed = utils.load(tmp_path / "whole" / "last.npz"), utils.load(tmp_path / "cut" / "last.npz")
    assert set(whole["model"]) == set(resumed["model"])
    assert any("running_var" in k for k in whole["model"])
    for key, value in whole["model"].items():
        assert np.array_equal(value.numpy(), resumed["model"][key].numpy()), key
