"""The process group in a plain ``python`` run (a world of one rank), and argument errors.

What only several ranks can show is in test_multirank.py."""
import builtins
import io
import os
import sys
import threading

import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import nn, optim

pytest.importorskip("mpi4py", reason='needs the dist extra: pip install "tinynet[dist]"')
import tinynet.distributed as dist  # noqa: E402
from tinynet.nn.parallel import DistributedDataParallel as DDP  # noqa: E402


@pytest.fixture(autouse=True)
def group():
    dist.init_process_group("mpi")
    yield
    dist.destroy_process_group()


def test_a_plain_run_is_a_world_of_one():
    dist.init_process_group("mpi")               # idempotent
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    dist.barrier()
    t = tn.tensor([1.0, -2.0])
    for op in dist.ReduceOp:
        dist.all_reduce(t, op=op)
        assert t.tolist() == [1.0, -2.0]
    parts = [tn.zeros(2)]
    dist.all_gather(parts, t)
    assert parts[0].tolist() == [1.0, -2.0]


def test_destroy_then_init_again():
    dist.destroy_process_group()
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    dist.init_process_group()
    assert dist.get_world_size() == 1


def test_missing_mpi4py_names_the_extra(monkeypatch):
    dist.destroy_process_group()
    real_import = builtins.__import__

    def no_mpi4py(name, *args, **kwargs):
        if name.startswith("mpi4py"):
            raise ImportError("No module named 'mpi4py'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_mpi4py)
    with pytest.raises(ImportError, match=r'pip install "tinynet\[dist\]"'):
        dist.init_process_group()


@pytest.mark.skipif(os.name != "posix", reason="reads a pipe's fill level with FIONREAD (POSIX)")
def test_wait_until_read_returns_once_the_pipes_reader_has_the_text(tmp_path):
    """The abort hook's helper: mpiexec tears the job down when MPI_Abort reaches it, so
    text the rank wrote but the launcher had not yet read from the pipe was lost (a CI run
    saw an empty stderr); the hook waits with this (tested below)."""
    from tinynet.distributed.process_group import _unread_bytes, _wait_until_read
    r, w = os.pipe()
    with os.fdopen(w, "w") as stream, os.fdopen(r, "rb", buffering=0) as reader:
        stream.write("x" * 100)
        stream.flush()
        assert _unread_bytes(stream) == 100
        assert not _wait_until_read(stream, limit=0.05)     # nobody reads: gives up
        threading.Timer(0.2, reader.read, (1000,)).start()   # the launcher reads, later
        assert _wait_until_read(stream, limit=10.0)
        assert _unread_bytes(stream) == 0                    # returned after the read
    with open(tmp_path / "log", "w") as f:                  # not a pipe: nothing to wait for
        f.write("x")
        f.flush()
        assert _unread_bytes(f) == 0
    assert _unread_bytes(io.StringIO("x")) == 0             # no file descriptor at all


def test_the_installed_abort_hook_waits_for_the_launcher_before_mpi_abort(monkeypatch):
    """The hook itself (not only its helper) must write the traceback, wait until stderr's
    reader has it, and only then call MPI_Abort: a flaky CI run lost the traceback when the
    hook aborted at once."""
    from tinynet.distributed import process_group as pg
    events = []
    monkeypatch.setattr(pg, "_wait_until_read",
                        lambda stream, limit=1.0: events.append(("wait", stream)) or True)

    class FakeMPI:
        class COMM_WORLD:
            @staticmethod
            def Abort(code):
                events.append(("abort", code))

    saved = sys.excepthook, threading.excepthook, pg._state["hooks"]
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    try:
        pg._install_abort_hooks(FakeMPI, 3)
        try:
            raise RuntimeError("planted")
        except RuntimeError as e:
            sys.excepthook(type(e), e, e.__traceback__)
    finally:
        sys.excepthook, threading.excepthook, pg._state["hooks"] = saved
    assert "rank 3 raised an uncaught exception; aborting all ranks" in err.getvalue()
    assert "RuntimeError: planted" in err.getvalue()
    assert ("wait", err) in events and events[-1] == ("abort", 1)
    assert events.index(("wait", err)) < events.index(("abort", 1))


def test_argument_errors():
    with pytest.raises(ValueError, match="init_process_group: backend must be 'mpi'.*'nccl'"):
        dist.init_process_group("nccl")
    with pytest.raises(TypeError, match="init_process_group: got rank, world_size"):
        dist.init_process_group("mpi", world_size=2, rank=0)
    with pytest.raises(TypeError, match="all_reduce: op must be a tinynet.distributed.ReduceOp"):
        dist.all_reduce(tn.ones(2), op="sum")
    with pytest.raises(TypeError, match="all_reduce: unsupported dtype int64; expected float32 or float64"):
        dist.all_reduce(tn.tensor([1, 2]), op=dist.ReduceOp.AVG)
    with pytest.raises(TypeError, match="broadcast: expected a tinynet Tensor, got ndarray"):
        dist.broadcast(np.ones(2))
    with pytest.raises(ValueError, match=r"broadcast: src must be a rank in \[0, 1\), got 1"):
        dist.broadcast(tn.ones(2), src=1)
    with pytest.raises(ValueError, match="all_gather: tensor_list must be a list of 1 Tensors"):
        dist.all_gather([tn.ones(2), tn.ones(2)], tn.ones(2))
    with pytest.raises(ValueError, match=r"all_gather: tensor_list\[0\] has shape \(3,\)"):
        dist.all_gather([tn.ones(3)], tn.ones(2))
    with pytest.raises(TypeError, match="DistributedDataParallel: module must be a tinynet.nn.Module"):
        DDP(lambda x: x)
    with pytest.raises(ValueError, match="DistributedDataParallel: bucket_cap_mb must be positive"):
        DDP(nn.Linear(2, 2), bucket_cap_mb=0)


def test_ddp_on_one_rank_is_the_module():
    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    ddp = DDP(model)
    assert ddp.module is model
    assert list(ddp.state_dict()) == ["module." + k for k in model.state_dict()]
    x = tn.tensor(np.random.default_rng(0).standard_normal((5, 3)))
    ddp(x).sum().backward()
    got = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    model(x).sum().backward()
    for a, p in zip(got, model.parameters()):
        np.testing.assert_array_equal(a, p.grad.numpy())


def test_sync_batchnorm_on_one_rank_is_batchnorm():
    tn.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU()).double()
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(
        nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU()).double())
    assert isinstance(sync[1], nn.SyncBatchNorm)
    sync.load_state_dict(ref.state_dict())
    x = tn.tensor(np.random.default_rng(1).standard_normal((4, 2, 5, 5)))
    for model in (ref, sync):
        optim.SGD(model.parameters(), lr=0.1).zero_grad()
        F.mse_loss(model(x), tn.zeros(4, 3, 3, 3, dtype=tn.float64)).backward()
    for (k, a), b in zip(ref.state_dict().items(), sync.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, err_msg=k)
    for a, b in zip(ref.parameters(), sync.parameters()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)


def test_convert_keeps_parameters_and_settings():
    bn = nn.BatchNorm2d(4, eps=1e-3, momentum=0.3)
    bn.eval()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(bn))[0]
    assert isinstance(converted, nn.SyncBatchNorm)
    assert converted.weight is bn.weight and converted.running_var is bn.running_var
    assert (converted.eps, converted.momentum, converted.training) == (1e-3, 0.3, False)
    with pytest.raises(ValueError, match="SyncBatchNorm: expected input with 4 channels"):
        converted(tn.ones(2, 3, 2, 2))
    with pytest.raises(ValueError, match="convert_sync_batchnorm: tinynet has one process group"):
        nn.SyncBatchNorm.convert_sync_batchnorm(bn, process_group="world")
