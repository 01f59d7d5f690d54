"""save_safetensors / load_safetensors: weights move between tinynet and PyTorch models built
independently with torch.nn, in both directions, with equal outputs; bad files are refused."""
import os
import pickle

import numpy as np
import pytest

import tinynet as tn
from tinynet.models import LSTMClassifier, LSTMRegressor, ResNet, SimpleCNN
from tinynet.testing.torch_models import torch_resnet

safetensors_torch = pytest.importorskip("safetensors.torch", reason="the optional 'safetensors' "
                                        "package is not installed (pip install tinynet[safetensors])")
torch = pytest.importorskip("torch")


# ----------------------------------------------------------------- torch twins, by hand
def torch_simple_cnn(in_channels=1, num_classes=10, size=8, channels=(16, 32), hidden=64):
    nn = torch.nn
    layers, c = [], in_channels
    for w in channels:
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c = w
    feat = c * (size >> len(channels)) ** 2
    net = nn.Module()
    net.features = nn.Sequential(*layers)
    net.classifier = nn.Sequential(nn.Flatten(), nn.Linear(feat, hidden), nn.ReLU(),
                                   nn.Linear(hidden, num_classes))
    net.forward = lambda x: net.classifier(net.features(x))
    return net


def torch_lstm_head(input_size, hidden_size, out, num_layers, bidirectional, sigmoid):
    nn = torch.nn
    net = nn.Module()
    net.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                       bidirectional=bidirectional)
    net.fc = nn.Linear(hidden_size * (2 if bidirectional else 1), out)

    def forward(x):
        _, (h, _) = net.lstm(x)
        last = torch.cat([h[-2], h[-1]], 1) if bidirectional else h[-1]
        y = net.fc(last)
        return torch.sigmoid(y) if sigmoid else y
    net.forward = forward
    return net


# ----------------------------------------------------------------- helpers
def one_sgd_step(model, x, target):
    """Train a step, so the weights are no longer their initial values (and BN stats move)."""
    model.train()
    opt = tn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = tn.functional.mse_loss(model(tn.tensor(x)), tn.tensor(target))
    loss.backward()
    opt.step()
    model.eval()


def torch_sgd_step(model, x):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.forward(torch.from_numpy(x)).square().mean().backward()
    opt.step()
    model.eval()


def tinynet_out(model, x):
    with tn.no_grad():
        return model(tn.tensor(x)).numpy()


def torch_out(model, x):
    with torch.no_grad():
        return model.forward(torch.from_numpy(x)).numpy()


CASES = {
    "SimpleCNN": (lambda: SimpleCNN(), lambda: torch_simple_cnn(), (3, 1, 8, 8), 10),
    "ResNet": (lambda: ResNet((1, 1, 2, 1), num_classes=4, in_channels=3, stem="cifar", width=4),
               lambda: torch_resnet(torch, (1, 1, 2, 1), 4, 3, "cifar", 4), (2, 3, 16, 16), 4),
    "LSTMClassifier": (lambda: LSTMClassifier(input_size=5, hidden_size=7, num_classes=3, num_layers=2,
                                              bidirectional=True),
                       lambda: torch_lstm_head(5, 7, 3, 2, True, False), (4, 6, 5), 3),
    "LSTMRegressor": (lambda: LSTMRegressor(), lambda: torch_lstm_head(5, 10, 1, 1, False, True),
                      (4, 10, 5), 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_trained_tinynet_weights_load_into_the_torch_model_and_back(name, tmp_path):
    make_ours, make_theirs, shape, n_out = CASES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    tn.manual_seed(1)
    ours = make_ours()
    one_sgd_step(ours, x, rng.standard_normal((shape[0], n_out)).astype(np.float32))
    path = tmp_path / "ours.safetensors"
    tn.utils.save_safetensors(ours, path)

    theirs = make_theirs()
    theirs.load_state_dict(safetensors_torch.load_file(str(path)))      # strict: every key, every shape
    theirs.eval()
    np.testing.assert_allclose(torch_out(theirs, x), tinynet_out(ours, x), rtol=1e-4, atol=1e-5)

    # The other way: train the torch model a step, save with torch, load into a fresh tinynet model.
    torch_sgd_step(theirs, x)
    back = tmp_path / "theirs.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in theirs.state_dict().items()}, str(back))
    fresh = make_ours()
    fresh.load_state_dict(tn.utils.load_safetensors(back))
    fresh.eval()
    assert not np.allclose(tinynet_out(fresh, x), tinynet_out(ours, x))   # the torch step changed it
    np.testing.assert_allclose(tinynet_out(fresh, x), torch_out(theirs, x), rtol=1e-4, atol=1e-5)


def test_batchnorm_statistics_and_counter_survive_the_trip(tmp_path):
    model = ResNet((1, 1, 1, 1), num_classes=2, in_channels=1, stem="cifar", width=2)
    for _ in range(3):
        model(tn.randn(4, 1, 8, 8))
    tn.utils.save_safetensors(model, tmp_path / "m.safetensors")
    state = safetensors_torch.load_file(str(tmp_path / "m.safetensors"))
    assert state["bn1.num_batches_tracked"].shape == () and int(state["bn1.num_batches_tracked"]) == 3
    np.testing.assert_array_equal(state["layer1.0.bn2.running_var"].numpy(),
                                  model.layer1[0].bn2.running_var.numpy())
    assert state["layer1.0.bn2.running_var"].dtype == torch.float32


def test_the_file_is_safetensors_not_pickle(tmp_path):
    path = tmp_path / "m.safetensors"
    tn.utils.save_safetensors(tn.nn.Linear(3, 2), path, metadata={"model": "Linear"})
    raw = path.read_bytes()
    header_length = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and b'"model":"Linear"' in raw[8:8 + header_length]
    assert not raw.startswith(b"\x80")          # no pickle protocol marker


def test_bad_files_are_refused_with_the_file_named(tmp_path):
    pickled = tmp_path / "weights.pt"
    pickled.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    with pytest.raises(ValueError, match=f"{pickled.name}.*not a safetensors file"):
        tn.utils.load_safetensors(pickled)
    good = tmp_path / "good.safetensors"
    tn.utils.save_safetensors({"w": tn.ones(100)}, good)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(ValueError, match="cut.safetensors is truncated"):
        tn.utils.load_safetensors(truncated)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.safetensors is not a safetensors file"):
        tn.utils.load_safetensors(empty)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        tn.utils.load_safetensors(tmp_path / "missing.safetensors")


def test_bad_arguments_are_clear_errors(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match="save_safetensors: expected a Module or a dict"):
        tn.utils.save_safetensors([tn.ones(2)], path)
    with pytest.raises(TypeError, match="save_safetensors: value of 'w' must be a Tensor"):
        tn.utils.save_safetensors({"w": [1.0]}, path)
    with pytest.raises(TypeError, match="metadata must be a dict of str -> str"):
        tn.utils.save_safetensors({"w": tn.ones(2)}, path, metadata={"epoch": 3})
    assert not os.path.exists(path)


def test_missing_package_names_the_extra(monkeypatch, tmp_path):
    import sys
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"tinynet\[safetensors\]"):
        tn.utils.save_safetensors({"w": tn.ones(2)}, tmp_path / "x.safetensors")
