"""Ctrl-C during training, resumed: bit-identical to a run that was never interrupted.

The interrupt is a real SIGINT sent by a layer in the middle of a forward pass, after
BatchNorm has updated its running statistics and before the optimizer step: the moment at
which a checkpoint of the current state would hold a half-applied step.
"""
import json
import os
import signal

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinynet as tn
from tinynet import nn, optim
from tinynet import train as training
from tinynet.data import DataLoader, TensorDataset
from tinynet.data.transforms import RandomCrop

STEPS_PER_EPOCH = 6     # 96 samples, batch size 16


class _SignalAt(nn.Module):
    """Identity that sends SIGINT to this process during its ``at``-th training forward pass."""

    def __init__(self, at=None):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                os.kill(os.getpid(), signal.SIGINT)
        return x


def _run(out_dir, epochs=2, resume=None, interrupt_at=None, batch_size=16):
    tn.manual_seed(3 if resume is None else 999)     # a resumed run owes everything to the checkpoint
    x = np.random.default_rng(0).random((96, 1, 8, 8)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, 96)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          _SignalAt(interrupt_at), nn.Flatten(), nn.Dropout(0.2), nn.Linear(256, 10))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                        transform=RandomCrop(8, padding=1))
    training.train_classifier(model, loader, optimizer, epochs, scheduler=scheduler, out_dir=out_dir,
                              resume=resume, val_loader=DataLoader(TensorDataset(x, y), batch_size=32))
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return _run(out), json.loads((out / "metrics.json").read_text())


@settings(max_examples=4, deadline=None, derandomize=False)
@given(at=st.integers(1, 2 * STEPS_PER_EPOCH - 1))
def test_sigint_mid_step_then_resume_is_bit_identical(uninterrupted, tmp_path_factory, at):
    full, full_history = uninterrupted
    out = tmp_path_factory.mktemp("cut")
    with pytest.raises(training.TrainingInterrupted) as info:
        _run(out, interrupt_at=at)
    from tinynet.utils import load
    saved = load(info.value.checkpoint)
    done = int(saved["epoch"]) * STEPS_PER_EPOCH + int(saved["step"])
    assert done == at, f"SIGINT in step {at}: the checkpoint holds {done} completed steps"
    resumed = _run(out, resume=info.value.checkpoint)
    assert "running_mean" in " ".join(full) and "num_batches_tracked" in " ".join(full)
    for k in full:
        assert np.array_equal(full[k], resumed[k]), f"{k} differs after SIGINT at step {at}"
    history = json.loads((out / "metrics.json").read_text())
    for a, b in zip(history, full_history):      # the resumed epoch's loss counts all its steps
        assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"], (at, a, b)


def test_resume_mid_epoch_with_another_batch_size_says_so(tmp_path):
    with pytest.raises(training.TrainingInterrupted) as info:
        _run(tmp_path, interrupt_at=2)
    with pytest.raises(training.ResumeError, match="batch size 16, and this loader's batch size is 29"):
        _run(tmp_path, resume=info.value.checkpoint, batch_size=29)


def test_resuming_a_finished_run_trains_nothing_and_says_so(tmp_path):
    _run(tmp_path, epochs=1)
    messages = []
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), _SignalAt(),
                          nn.Flatten(), nn.Dropout(0.2), nn.Linear(256, 10))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    loader = DataLoader(TensorDataset(np.zeros((16, 1, 8, 8), np.float32), np.zeros(16, np.int64)), batch_size=16)
    history = training.train_classifier(model, loader, optimizer, 1, out_dir=tmp_path, log=messages.append,
                                        resume=tmp_path / "last.npz")
    assert len(history) == 1 and "already finished its 1 epoch; nothing left to train" in messages[0]


def test_progress_bar_is_drawn_on_a_terminal_reporting_zero_columns(monkeypatch):
    from tinynet.train import loop

    class Stream:
        def fileno(self):
            return 2
    monkeypatch.setattr(loop.os, "get_terminal_size", lambda fd: os.terminal_size((0, 24)))
    assert loop._bar_width(Stream()) == 80
    monkeypatch.setattr(loop.os, "get_terminal_size", lambda fd: os.terminal_size((120, 24)))
    assert loop._bar_width(Stream()) is None          # tqdm follows the terminal
