"""tinynet.profiler: what it records, the self-time arithmetic, flops and bytes, the
Chrome trace, the engine hook being off outside a profile, and ``tinynet profile``."""
import doctest
import json
import time

import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import autograd, cli, profiler
from tinynet.autograd import Function
from tinynet.tensor import Tensor

SLEEP_S = 0.02


class _Sleepy(Function):
    """Identity whose forward sleeps; its backward sleeps and calls another _Sleepy."""

    def forward(self, x):
        time.sleep(SLEEP_S)
        return x.copy()

    def backward(self, g):
        time.sleep(SLEEP_S)
        return _Sleepy.apply(g)


def _conv_step():
    x = tn.tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 5)).astype(np.float32))
    w = tn.tensor(np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32),
                  requires_grad=True)
    F.relu(F.conv2d(x, w, padding=1)).sum().backward()
    return w


def test_records_forward_and_backward_calls_per_op_type():
    with profiler.profile() as prof:
        _conv_step()
    conv = prof.row("Conv2d")
    # one forward call, one node backward; its weight gradient ran as a child op
    assert (conv["calls"], conv["backward_calls"]) == (1, 1)
    assert prof.row("Conv2dWeight")["calls"] == 1
    assert prof.row("ReLU")["backward_calls"] == 1
    engine = prof.row("autograd.backward")
    assert engine["kind"] == "engine" and engine["calls"] == 1
    phases = {e.name: e.phase for e in prof.events if e.kind == "op"}
    assert phases["Conv2d"] == "forward" and phases["Conv2dWeight"] == "backward"


def test_total_and_self_time_of_nested_calls():
    x = tn.tensor(np.ones(3), requires_grad=True)
    with profiler.profile() as prof:
        _Sleepy.apply(x).sum().backward()
    node = next(e for e in prof.events if e.kind == "backward" and e.name == "_Sleepy")
    child = next(e for e in prof.events if e.kind == "op" and e.name == "_Sleepy" and e.phase == "backward")
    # the child runs inside its parent's interval, and the parent's self time excludes it
    assert node.start <= child.start and child.end <= node.end
    assert node.self_ns <= node.total_ns - child.total_ns
    assert node.self_ns >= SLEEP_S * 1e9 and child.total_ns >= SLEEP_S * 1e9
    row = prof.row("_Sleepy")
    assert row["calls"] == 2 and row["backward_calls"] == 1
    assert row["total_ns"] >= 2 * SLEEP_S * 1e9 and row["backward_total_ns"] >= 2 * SLEEP_S * 1e9
    assert all(e.self_ns >= 0 for e in prof.events)


def test_self_times_never_exceed_the_wall_time():
    with profiler.profile() as prof:
        for _ in range(3):
            _conv_step()
    total_self = sum(r["all_self_ns"] for r in prof.rows())
    assert 0 < total_self <= prof.wall_ns
    phases = prof.phases()
    parts = sum(phases[k] for k in ("forward_ns", "backward_ns", "engine_ns", "region_ns",
                                    "untracked_ns"))
    assert parts <= phases["wall_ns"]


def test_flop_count_and_bytes_of_a_convolution():
    with profiler.profile() as prof:
        _conv_step()
    # conv2d N2, 3->4 channels, 3x3 kernel, 6x5 "same" output: 2·N·C_out·Ho·Wo·C_in·kh·kw
    assert prof.row("Conv2d")["flops"] == 2 * 2 * 4 * 6 * 5 * 3 * 3 * 3
    assert prof.row("Conv2d")["gflops"] > 0
    # ReLU returns one (2, 4, 6, 5) float32 array
    relu = next(e for e in prof.events if e.name == "ReLU" and e.kind == "op")
    assert relu.nbytes == 2 * 4 * 6 * 5 * 4
    assert prof.row("ReLU")["gflops"] is None


def test_matmul_and_linear_flop_counts():
    a = tn.randn(5, 7, requires_grad=True)
    w = tn.randn(3, 7)
    with profiler.profile() as prof:
        (a @ tn.randn(7, 2)).sum()
        F.linear(a, w)
    assert prof.row("MatMul")["flops"] == 2 * 5 * 2 * 7
    assert prof.row("Linear")["flops"] == 2 * 5 * 3 * 7


def test_regions_nest_ops_and_are_rows():
    @profiler.record_function("decorated")
    def run():
        return F.relu(tn.randn(4))

    with profiler.profile() as prof:
        with profiler.record_function("outer"):
            run()
    outer = next(e for e in prof.events if e.name == "outer")
    relu = next(e for e in prof.events if e.name == "ReLU")
    assert outer.start <= relu.start and relu.end <= outer.end
    assert prof.row("decorated")["kind"] == "region"
    assert relu.depth == 2


def test_record_function_outside_a_profile_does_nothing():
    with profiler.record_function("idle"):
        y = F.relu(tn.tensor([-1.0, 2.0]))
    assert y.tolist() == [0.0, 2.0]
    with pytest.raises(TypeError, match="record_function: name must be a non-empty string"):
        profiler.record_function("")


def test_profiling_does_not_change_results():
    plain = _conv_step().grad.numpy()
    with profiler.profile():
        profiled = _conv_step().grad.numpy()
    np.testing.assert_array_equal(plain, profiled)
    x = tn.tensor([1.0, 2.0], requires_grad=True)
    with profiler.profile():
        (g,) = autograd.grad((x * x).sum(), x, create_graph=True)
        (gg,) = autograd.grad(g.sum(), x)
    assert g.tolist() == [2.0, 4.0] and gg.tolist() == [2.0, 2.0]


def test_the_engine_hook_is_off_outside_a_profile_even_after_an_error():
    assert autograd._profile_hook is None
    with pytest.raises(ZeroDivisionError):
        with profiler.profile():
            F.relu(tn.randn(3))
            1 / 0
    assert autograd._profile_hook is None
    assert profiler.recorder.active_recorder() is None


def test_misuse_is_reported():
    with profiler.profile():
        with pytest.raises(RuntimeError, match="profiles do not nest"):
            with profiler.profile():
                pass
    prof = profiler.profile()
    with pytest.raises(RuntimeError, match="after the `with` block ends"):
        prof.rows()
    with prof:
        pass
    with pytest.raises(RuntimeError, match="already run"):
        with prof:
            pass
    with pytest.raises(ValueError, match="steps must be a positive int"):
        prof.table(steps=0)
    with pytest.raises(KeyError, match="no op or region named 'Conv2d'"):
        prof.row("Conv2d")


def test_table_lists_ops_with_per_step_figures():
    with profiler.profile() as prof:
        for _ in range(2):
            _conv_step()
    text = prof.table(steps=2)
    head, rule, *lines = text.splitlines()
    assert head.split()[:2] == ["op", "calls"]
    conv = next(line for line in lines if line.startswith("Conv2d "))
    assert conv.split()[1] == "1"           # 2 calls over 2 steps
    assert "wall" in text and "per step" in text
    short = prof.table(row_limit=2)
    assert "more rows" in short


def test_chrome_trace_is_nested_complete_events(tmp_path):
    with profiler.profile() as prof:
        _conv_step()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    assert len(events) == len(prof.events)
    assert all(e["ph"] == "X" and e["dur"] >= 0 and e["ts"] >= 0 for e in events)
    backward = next(e for e in events if e["name"] == "Conv2d.backward")
    weight = next(e for e in events if e["name"] == "Conv2dWeight")
    assert backward["ts"] <= weight["ts"] and weight["ts"] + weight["dur"] <= backward["ts"] + backward["dur"] + 1e-3
    conv = next(e for e in events if e["name"] == "Conv2d")
    assert conv["args"]["input_shapes"] == [[2, 3, 6, 5], [4, 3, 3, 3], None]


def test_module_docstring_example_runs():
    result = doctest.testmod(profiler, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_profile_command_prints_a_table_and_writes_a_trace(tmp_path, capsys):
    trace = tmp_path / "cnn.json"
    assert cli.main(["profile", "cnn", "--batch-size", "4", "--steps", "2", "--warmup", "0",
                     "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "Conv2d" in out and "[optimizer.step]" in out and "figures per step" in out
    assert json.loads(trace.read_text())["traceEvents"]


@pytest.mark.parametrize("argv, message", [
    (["profile", "mlp"], "invalid choice: 'mlp'"),
    (["profile", "cnn", "--steps", "0"], "expected a positive integer"),
    (["profile", "cnn", "--device", "tpu"], "--device"),
])
def test_profile_command_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
