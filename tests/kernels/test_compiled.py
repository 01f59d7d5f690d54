"""The compiled-kernel switch (tinynet.backend.use_compiled / set_compiled / TINYNET_JIT)
and the testing helper that runs both routes. The kernels themselves are checked against
their NumPy routes in their own test files."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tinynet import backend
from tinynet.testing.routes import on_both_routes


@pytest.fixture
def switch():
    before = backend._compiled
    yield backend
    backend._compiled = before


def test_set_compiled_off_turns_every_array_away(switch):
    switch.set_compiled(False)
    assert not switch.use_compiled(np.ones(3))


@pytest.mark.skipif(not backend.compiled_available(), reason="needs Numba (the jit extra)")
def test_set_compiled_on_takes_numpy_arrays_only(switch):
    switch.set_compiled(True)
    assert switch.use_compiled(np.ones(3), np.zeros((2, 2)))
    assert not switch.use_compiled(np.ones(3), np.ma.ones(3))    # a subclass: its own rules
    assert not switch.use_compiled(np.ones(3), [1.0])


def test_set_compiled_wants_a_bool(switch):
    with pytest.raises(TypeError, match="set_compiled: enabled must be a bool, got int"):
        switch.set_compiled(1)


def test_set_compiled_on_without_numba_names_the_extra(switch, monkeypatch):
    monkeypatch.setattr(backend, "_numba_found", False)
    with pytest.raises(ValueError, match=r"set_compiled: compiled kernels need Numba .*tinynet\[jit\]"):
        switch.set_compiled(True)


def _switch_in_child(env_value, numba_found="None"):
    code = ("from tinynet import backend; import numpy as np\n"
            f"backend._numba_found = {numba_found}\n"
            "print(backend.use_compiled(np.ones(2)))")
    env = dict(os.environ, TINYNET_JIT=env_value)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_environment_variable_turns_compiled_kernels_off():
    run = _switch_in_child("0")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


@pytest.mark.skipif(not backend.compiled_available(), reason="needs Numba (the jit extra)")
def test_compiled_kernels_are_on_by_default_where_numba_is_installed():
    run = _switch_in_child("")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "True"


def test_environment_variable_asking_for_numba_that_is_absent_fails_loudly():
    run = _switch_in_child("1", numba_found="False")
    assert run.returncode != 0
    assert "TINYNET_JIT=1 asks for compiled kernels, but Numba is not installed" in run.stderr


def test_environment_variable_other_values_are_refused():
    run = _switch_in_child("yes")
    assert run.returncode != 0
    assert "TINYNET_JIT must be 0 or 1, got 'yes'" in run.stderr


def test_importing_tinynet_does_not_import_numba():
    code = "import sys, tinynet, tinynet.functional, tinynet.nn; print('numba' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


@pytest.mark.skipif(not backend.compiled_available(), reason="needs Numba (the jit extra)")
def test_on_both_routes_runs_each_route_once_and_restores_the_switch(switch):
    switch.set_compiled(True)
    seen = on_both_routes(lambda: backend.use_compiled(np.ones(1)))
    assert seen == (False, True)
    assert backend._compiled is True


def test_on_both_routes_without_numba_says_so(monkeypatch):
    monkeypatch.setattr(backend, "_numba_found", False)
    with pytest.raises(ValueError, match="on_both_routes: the compiled route needs Numba"):
        on_both_routes(lambda: None)


@pytest.mark.skipif(not backend.compiled_available(), reason="needs Numba (the jit extra)")
def test_compiled_kernels_take_float32_or_float64_of_one_dtype(switch):
    switch.set_compiled(True)
    assert switch.use_compiled(np.ones(3, np.float32), np.ones(2, np.float32))
    assert not switch.use_compiled(np.ones(3, np.float16))       # Numba has no float16
    assert not switch.use_compiled(np.ones(3, np.int64))
    assert not switch.use_compiled(np.ones(3, np.float32), np.ones(3, np.float64))
