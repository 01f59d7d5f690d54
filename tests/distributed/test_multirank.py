"""Launch real MPI ranks with ``mpiexec`` and check what they report.

Each rank script under ``workers/`` asserts its own results (against a one-process
reference or hand-derived values) and prints "<name> OK"; a failing assertion on any
rank aborts the whole job (tinynet.distributed's exception hook), so a non-zero exit or a
missing "OK" line fails the test. Every launch has a timeout and kills the whole process
group when it expires, so a hang fails the test instead of stalling CI.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mpi4py", reason='needs the dist extra: pip install "tinynet[dist]"')
from tinynet.distributed.launch import mpiexec_command, rank_environment  # noqa: E402

# MPI ranks in subprocesses on the CPU; the routes they take are tested in process.
pytestmark = pytest.mark.config_independent

try:
    mpiexec_command(1, ["true"])
except RuntimeError as e:   # pragma: no cover - depends on the environment
    pytest.skip(str(e), allow_module_level=True)

WORKERS = Path(__file__).parent / "workers"
ROOT = Path(__file__).resolve().parents[2]


def launch(nproc, script, *args, timeout=180):
    """Runs ``script`` on ``nproc`` ranks; returns (exit code, stdout, stderr, seconds)."""
    env = rank_environment(threads=1)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    cmd = mpiexec_command(nproc, [sys.executable, str(WORKERS / script), *args])
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{script} on {nproc} ranks did not finish in {timeout} s\n{out}\n{err}")
    return proc.returncode, out, err, time.perf_counter() - start


def assert_ok(nproc, script, *args, names):
    code, out, err, _ = launch(nproc, script, *args)
    assert code == 0, f"{script} failed (exit {code}):\n{out}\n{err[-4000:]}"
    for name in names:
        for rank in range(nproc):
            assert f"rank {rank}/{nproc}: {name} OK" in out, f"rank {rank} did not finish {name}:\n{out}\n{err[-4000:]}"


@pytest.mark.parametrize("nproc", [2, 3])
def test_collectives_on_every_rank(nproc):
    assert_ok(nproc, "collectives.py", names=["collectives"])


def test_two_ranks_train_like_one_process_on_the_whole_batch():
    """SimpleCNN, the LSTM classifier and a ResNet with SyncBatchNorm; SGD and Adam."""
    assert_ok(2, "ddp_equivalence.py", "cnn", "lstm", "resnet-syncbn",
              names=["ddp equivalence cnn", "ddp equivalence lstm", "ddp equivalence resnet-syncbn"])


def test_three_ranks_train_like_one_process():
    assert_ok(3, "ddp_equivalence.py", "cnn", "resnet-syncbn",
              names=["ddp equivalence cnn", "ddp equivalence resnet-syncbn"])


@pytest.mark.parametrize("nproc", [2, 3])
def test_no_sync_overlap_and_unused_parameters(nproc):
    assert_ok(nproc, "ddp_features.py", names=["no_sync", "overlap", "second backward", "unused parameters"])


@pytest.mark.parametrize("nproc", [2, 3])
def test_sync_batchnorm_first_and_second_derivatives_match_one_process(nproc):
    assert_ok(nproc, "syncbn_double_backward.py", names=["syncbn double backward"])


def test_ranks_with_different_models_all_get_the_mismatch_error():
    assert_ok(2, "mismatch.py", names=["mismatch"])


def test_an_exception_on_one_rank_ends_the_whole_job():
    code, out, err, seconds = launch(2, "fault.py", timeout=60)
    report = f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert code != 0, report
    assert seconds < 30, f"the job took {seconds:.1f} s to end\n{report}"
    assert "planted failure on rank 1" in err and "aborting all ranks" in err, report
    assert "unreachable" not in out, report
