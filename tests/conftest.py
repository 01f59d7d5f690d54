"""Test-suite configuration: hypothesis profiles and the device switch.

* ``HYPOTHESIS_PROFILE=ci`` (set by .ci/run): derandomized, bounded examples, no deadline.
  ``dev`` (default): more examples.
* ``TINYNET_TEST_DEVICE=cuda`` runs every test on the GPU: tinynet's factories create
  tensors on the default device, which is set here. Without a usable GPU every test is
  skipped with the reason (CuPy missing, or no device).
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
_SKIP_REASON = None
if backend.Device(TEST_DEVICE).type == "cuda":
    _SKIP_REASON = backend.cuda_unavailable_reason()
    if _SKIP_REASON is None:
        tinynet.set_default_device(TEST_DEVICE)


def pytest_report_header(config):
    return f"tinynet test device: {TEST_DEVICE}" + (f" (skipping: {_SKIP_REASON})" if _SKIP_REASON else "")


def pytest_collection_modifyitems(config, items):
    if _SKIP_REASON:
        mark = pytest.mark.skip(reason=f"TINYNET_TEST_DEVICE={TEST_DEVICE}: {_SKIP_REASON}")
        for item in items:
            item.add_marker(mark)


@pytest.fixture
def device():
    """The device the suite runs on ('cpu' or 'cuda:N')."""
    return backend.get_default_device()
