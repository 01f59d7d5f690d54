"""Test-suite configuration: hypothesis profiles and the device switch.

* ``HYPOTHESIS_PROFILE=ci`` (set by .ci/run): derandomized, bounded examples, no deadline.
  ``dev`` (default): more examples.
* ``TINYNET_TEST_DEVICE=cuda`` runs every test on the GPU: tinynet's factories create
  tensors on the default device, which is set here. Without a usable GPU every test is
  skipped with the reason (CuPy missing, or no device), and the run then fails: a run
  that asked for a device and ran nothing on it exits non-zero.
* ``TINYNET_TEST_DEVICE=fakecuda`` runs every test on ``tinynet.testing.fakecuda``, NumPy
  arrays under CuPy's rules (a stand-in that takes the CuPy path on a CPU; not a GPU).
* Tests marked ``config_independent`` check what neither of those switches nor
  ``TINYNET_JIT=0`` changes (the benchmark runner, the reference libraries, MPI launches on
  the CPU, the docs build). Only the default run (``cpu``, ``TINYNET_JIT`` not ``0``) runs
  them; the other runs deselect them and say so in the summary.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

import tinynet
from tinynet import backend

settings.register_profile("ci", max_examples=15, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.filter_too_much])
settings.register_profile("dev", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

TEST_DEVICE = os.environ.get("TINYNET_TEST_DEVICE", "cpu")
#: The default run: suite on the CPU, compiled kernels as installed. Anything else re-runs
#: the suite to check a device or a kernel route, which config_independent tests do not touch.
DEFAULT_RUN = TEST_DEVICE.strip().lower() == "cpu" and os.environ.get("TINYNET_JIT", "").strip() != "0"
_SKIP_REASON = None
if TEST_DEVICE == "fakecuda":      # the strict CuPy stand-in (a test tool, not a GPU)
    from tinynet.testing import fakecuda
    fakecuda.install()
    tinynet.set_default_device(TEST_DEVICE)
if backend.Device(TEST_DEVICE).type == "cuda":
    _SKIP_REASON = backend.cuda_unavailable_reason()
    if _SKIP_REASON is None:
        tinynet.set_default_device(TEST_DEVICE)


def pytest_report_header(config):
    return f"tinynet test device: {TEST_DEVICE}" + (f" (skipping: {_SKIP_REASON})" if _SKIP_REASON else "")


# Tests that cannot run on the fakecuda stand-in, by node-id prefix, with the reason.
_CPU_PAGE = ("a CPU program: its built-in dataset holds host tensors (as in PyTorch), so with "
             "a device as the default the model and the batches are on different devices")
FAKECUDA_SKIPS = {
    **{f"tests/docs/test_docs.py::test_code_blocks_run[docs/{page}.md]": _CPU_PAGE
       for page in ("getting-started", "tutorials/lstm-sequences", "tutorials/train-cnn",
                    "tutorials/unet-segmentation")},
    "tests/test_bench_suites.py::test_quick_smoke_run_of_the_real_suites":
        "runs the `bench` command in a subprocess; fakecuda is a test tool, not a device the "
        "command line offers",
}


def pytest_configure(config):
    config.addinivalue_line("markers", "compiled_kernels: compares or runs the compiled CPU "
                            "kernels (the jit extra); skipped on another suite device")
    config.addinivalue_line("markers", "config_independent: checks what neither the suite "
                            "device nor TINYNET_JIT changes; only the default run runs it")


# The compiled kernels take NumPy arrays only: on another suite device both routes would be
# the same xp route, so these tests would compare a route with itself.
_COMPILED_ON_DEVICE = "compiled kernels run on NumPy (CPU) arrays only"


_DESELECTED = []     # how many config_independent tests this run left to the default run


def pytest_collection_modifyitems(config, items):
    if not DEFAULT_RUN:
        kept, left = [], []
        for item in items:
            (left if item.get_closest_marker("config_independent") else kept).append(item)
        if left:
            _DESELECTED.append(len(left))
            config.hook.pytest_deselected(items=left)
            items[:] = kept
    if backend.get_default_device().type != "cpu":
        for item in items:
            if item.get_closest_marker("compiled_kernels"):
                item.add_marker(pytest.mark.skip(reason=_COMPILED_ON_DEVICE))
    if _SKIP_REASON:
        mark = pytest.mark.skip(reason=f"TINYNET_TEST_DEVICE={TEST_DEVICE}: {_SKIP_REASON}")
        for item in items:
            item.add_marker(mark)
    if TEST_DEVICE == "fakecuda":
        for item in items:
            for prefix, reason in FAKECUDA_SKIPS.items():
                if item.nodeid.startswith(prefix):
                    item.add_marker(pytest.mark.skip(reason=f"fakecuda: {reason}"))


@pytest.fixture
def device():
    """The device the suite runs on ('cpu' or 'cuda:N')."""
    return backend.get_default_device()


# A run that asked for a device and ran nothing on it fails: without this, a GPU job on a
# machine without a usable GPU skips every test and exits 0, which reads as "all passed".
_DEVICE_ASKED = os.environ.get("TINYNET_TEST_DEVICE", "cpu").strip().lower() != "cpu"
_PASSED = []


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed:
        _PASSED.append(report.nodeid)


def _nothing_ran_on_the_device():
    """The reason to fail the run, or None."""
    if not _DEVICE_ASKED:
        return None
    if _SKIP_REASON:
        return f"the device is not usable ({_SKIP_REASON})"
    if not _PASSED:
        return "no test passed (every selected test was skipped)"
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist: each worker collects (and deselects) the whole suite; tell the main
    process how many it left out, for the summary."""
    count = getattr(node, "workeroutput", {}).get("config_independent_deselected", 0)
    if count and not _DESELECTED:
        _DESELECTED.append(count)


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workeroutput"):        # a pytest-xdist worker
        session.config.workeroutput["config_independent_deselected"] = sum(_DESELECTED)
    if _nothing_ran_on_the_device() and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _DESELECTED:
        terminalreporter.write_line(
            f"{sum(_DESELECTED)} config_independent tests deselected: they check nothing the "
            "suite device or TINYNET_JIT changes, and the default run (cpu, TINYNET_JIT not 0) "
            "runs them")
    reason = _nothing_ran_on_the_device()
    if reason:
        terminalreporter.write_line(
            f"FAILED: TINYNET_TEST_DEVICE={TEST_DEVICE} was asked for, but nothing ran on it: "
            f"{reason}. Failing the run instead of reporting success; unset "
            "TINYNET_TEST_DEVICE to test on the CPU.", red=True, bold=True)


@pytest.fixture
def check_bench_row():
    """Asserts that one benchmark row is in the runner's common keys, as the runner reads
    it (no legacy key it would have to rename, a ratio that is the two times' ratio)."""
    def check(row):
        assert {"workload", "tinynet_ms", "torch_ms", "ratio"} <= set(row), row
        assert row["tinynet_ms"] > 0, row
        assert not {"tinynet_us", "torch_us", "mode", "tinynet_gflops"} & set(row), \
            f"legacy keys the runner would have to rename: {row}"
        assert row.get("pass") is None or (isinstance(row["pass"], str) and row["pass"]), \
            f"`pass` names the pass (fwd, fwd+bwd, ...); a target verdict is `pass_target`: {row}"
        assert row.get("pass_target") is None or isinstance(row["pass_target"], bool), row
        if row.get("pass_target") is not None:
            assert row.get("target") is not None, f"pass_target without its target: {row}"
        if row["torch_ms"] is not None and row["ratio"] is not None:
            assert row["ratio"] == pytest.approx(row["tinynet_ms"] / row["torch_ms"]), row
    return check


@pytest.fixture
def restore_threads():
    """Puts tinynet's thread settings (and BLAS's) back after a test that changes them."""
    before = backend._num_threads
    yield
    if before is None:
        backend.set_num_threads(backend._usable_cores())
        backend._num_threads = None
    else:
        backend.set_num_threads(before)


@pytest.fixture
def chunk_counts(monkeypatch):
    """A list that receives, for every ``backend.parallel_for`` call of the test, how many
    chunks it ran in (``backend.parallel_chunks`` of its arguments)."""
    counts = []
    real = backend.parallel_for

    def spy(count, fn, nbytes=0, like=None, calls=1, native=None):
        counts.append(backend.parallel_chunks(count, nbytes, like, calls))
        real(count, fn, nbytes, like, calls, native)
    monkeypatch.setattr(backend, "parallel_for", spy)
    return counts


@pytest.fixture
def native_jobs(monkeypatch):
    """For a test of a native job (:func:`tinynet.blas_threads.run_native_job`): skips
    unless one can run here (NumPy's OpenBLAS running native pieces on 2+ threads, its
    ``cblas_sgemm`` found); turns the compiled kernels on and the parallel and native
    grains down to one (chunks however small the job); returns the list that receives ``(pieces,
    address, parameters)`` for every native job the test runs, in order."""
    import numpy as np
    from tinynet import blas_threads, cblas
    if not blas_threads.available() or cblas.gemm_address(np.float32) is None or blas_threads.threads() < 2:
        pytest.skip("needs NumPy's OpenBLAS with 2+ threads, running native pieces")
    monkeypatch.setattr(backend, "_compiled", True)
    monkeypatch.setattr(backend, "parallel_grain", 1)
    monkeypatch.setattr(backend, "native_grain", 1)
    jobs = []
    run = blas_threads.run_native_job
    monkeypatch.setattr(blas_threads, "run_native_job",
                        lambda pieces, address, parameters, arrays:
                        jobs.append((pieces, address, list(parameters))) or run(pieces, address, parameters, arrays))
    return jobs
