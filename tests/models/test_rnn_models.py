"""LSTMRegressor / LSTMClassifier: shapes, names, torch parity and a short fit."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet.models.rnn import LSTMClassifier, LSTMRegressor
from tinynet.nn.clip import clip_grad_norm_
from tinynet.testing import assert_close


def test_regressor_defaults_are_the_dynamic_rnn_example():
    m = LSTMRegressor()
    out = m(tn.randn(4, 10, 5))
    assert tuple(out.shape) == (4, 1)
    assert ((out.detach().numpy() > 0) & (out.detach().numpy() < 1)).all()
    assert list(m.state_dict()) == ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                                    "lstm.bias_hh_l0", "fc.weight", "fc.bias"]
    assert tuple(m.lstm.weight_ih_l0.shape) == (40, 5)


def test_classifier_shapes_bidirectional_and_bad_input():
    m = LSTMClassifier(input_size=8, hidden_size=6, num_classes=10, num_layers=2, bidirectional=True)
    assert tuple(m(tn.randn(3, 8, 8)).shape) == (3, 10)
    assert tuple(m(tn.randn(3, 8, 8), lengths=[8, 4, 2]).shape) == (3, 10)
    with pytest.raises(ValueError, match="expected input of shape"):
        m(tn.randn(8, 8))
    with pytest.raises(ValueError, match="input has 7 features"):
        m(tn.randn(2, 8, 7))


def test_classifier_matches_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t_lstm = torch.nn.LSTM(8, 6, num_layers=2, batch_first=True, bidirectional=True).double()
    t_fc = torch.nn.Linear(12, 10).double()
    m = LSTMClassifier(input_size=8, hidden_size=6, num_classes=10, num_layers=2,
                       bidirectional=True, dtype=tn.float64)
    state = {f"lstm.{k}": v for k, v in t_lstm.state_dict().items()}
    state.update({f"fc.{k}": v for k, v in t_fc.state_dict().items()})
    m.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((3, 5, 8))
    _, (h, _) = t_lstm(torch.tensor(x))
    expect = t_fc(torch.cat([h[-2], h[-1]], 1))
    assert_close(m(tn.tensor(x)), expect.detach(), rtol=1e-10, atol=1e-12)


def test_regressor_learns_a_sequence_task():
    # Target: is the mean of the first feature positive? A working LSTM + BPTT fits it quickly.
    tn.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 10, 5)).astype(np.float32)
    y = (x[:, :, 0].mean(1) > 0).astype(np.float32)[:, None]
    m = LSTMRegressor()
    xt, yt = tn.tensor(x), tn.tensor(y)
    losses = []
    for _ in range(150):
        m.zero_grad()
        loss = F.binary_cross_entropy(m(xt), yt)
        loss.backward()
        clip_grad_norm_(m.parameters(), 5.0)
        for p in m.parameters():
            p.data -= 0.5 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
