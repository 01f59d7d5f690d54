"""tinynet.utils.summary: rows, output shapes, parameter totals; state left untouched."""
import numpy as np
import pytest

import tinynet.nn as nn
from tinynet.utils import summary


def _model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


def test_table_rows_shapes_and_totals():
    text = summary(_model(), (1, 8, 8), print_fn=None)
    lines = text.splitlines()
    assert any("0 (Conv2d)" in l and "(2, 4, 8, 8)" in l and l.rstrip().endswith("40") for l in lines)
    assert any("3 (MaxPool2d)" in l and "(2, 4, 4, 4)" in l for l in lines)
    assert any("6 (Linear)" in l and "(2, 10)" in l and l.rstrip().endswith("650") for l in lines)
    assert "Total params: 698" in text          # 40 + 8 + 650
    assert "Trainable params: 698" in text and "Non-trainable params: 0" in text


def test_non_trainable_parameters_are_counted_separately():
    m = _model()
    m[0].requires_grad_(False)
    text = summary(m, (1, 8, 8), print_fn=None)
    assert "Trainable params: 658" in text and "Non-trainable params: 40" in text


def test_summary_prints_and_leaves_model_state_alone(capsys):
    m = _model()
    before = m[1].running_mean.numpy().copy()
    assert summary(m, (1, 8, 8)) is None          # printed once, not echoed again by a REPL
    out = capsys.readouterr().out
    assert out.count("Total params") == 1
    assert "Layer (type)" in out and "Output Shape" in out and "Param #" in out
    assert np.array_equal(before, m[1].running_mean.numpy()), "running stats must not move"
    assert m[1].num_batches_tracked.item() == 0
    assert all(x.training for x in m.modules()), "training flags restored"
    m.eval()
    summary(m, (1, 8, 8), print_fn=None)
    assert not any(x.training for x in m.modules())
    assert not m[0]._forward_hooks, "hooks removed"


def test_nested_and_multi_output_modules():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 5), nn.Tanh())
            self.lstm = nn.LSTM(5, 6, batch_first=True)
            self.head = nn.Linear(6, 2)

        def forward(self, x):
            out, _ = self.lstm(self.body(x))
            return self.head(out[:, -1])

    text = summary(Net(), (7, 3), print_fn=None)
    assert "body.0 (Linear)" in text and "lstm (LSTM)" in text and "head (Linear)" in text
    total = 3 * 5 + 5 + 4 * 6 * (5 + 6) + 2 * 4 * 6 + 6 * 2 + 2
    assert f"Total params: {total:,}" in text


def test_bad_arguments():
    with pytest.raises(TypeError, match="summary: expected a tinynet.nn.Module"):
        summary(lambda x: x, (3,))
    with pytest.raises(ValueError, match="input_shape"):
        summary(_model(), (0, 8, 8))
