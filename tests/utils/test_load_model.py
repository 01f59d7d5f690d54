"""load_model: a checkpoint that records its model's constructor rebuilds it alone."""
import numpy as np
import pytest

import tinynet as tn
from tinynet import optim
from tinynet.models import LSTMClassifier, UNet, resnet18
from tinynet.train import save_checkpoint
from tinynet.utils import load_model, read_config, save


def _save(path, model, name, kwargs, run=None):
    return save_checkpoint(path, model, optim.SGD(model.parameters(), lr=0.1), 1, [],
                           config={"model": {"name": name, "kwargs": kwargs}, "run": run or {}})


@pytest.mark.parametrize("name, kwargs, shape", [
    ("resnet18", {"num_classes": 10, "in_channels": 1, "stem": "cifar", "width": 8}, (2, 1, 8, 8)),
    ("UNet", {"in_channels": 3, "num_classes": 1, "base_width": 4, "depth": 2,
              "dropout": [0.0, 0.1, 0.1], "final_activation": None}, (2, 3, 16, 16)),
    ("LSTMClassifier", {"input_size": 8, "hidden_size": 6, "num_classes": 10}, (2, 5, 8)),
])
def test_rebuilt_model_gives_the_same_outputs_in_eval_mode(tmp_path, name, kwargs, shape):
    tn.manual_seed(0)
    model = {"resnet18": resnet18, "UNet": UNet, "LSTMClassifier": LSTMClassifier}[name](**kwargs)
    x = tn.tensor(np.random.default_rng(0).random(shape).astype(np.float32))
    model.train()
    model(x)                       # moves BatchNorm's running statistics away from their start
    model.eval()
    expected = model(x).detach().numpy()
    _save(tmp_path / "m.npz", model, name, kwargs, run={"recipe": "x", "input_shape": list(shape[1:])})
    tn.manual_seed(123)            # a different initialisation: everything must come from the file
    rebuilt = load_model(tmp_path / "m.npz")
    assert type(rebuilt) is type(model) and not rebuilt.training
    np.testing.assert_array_equal(rebuilt(x).detach().numpy(), expected)
    assert read_config(tmp_path / "m.npz")["run"]["input_shape"] == list(shape[1:])


def test_errors_name_the_file_and_the_problem(tmp_path):
    model = resnet18(num_classes=3, in_channels=1, stem="cifar", width=4)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_model(tmp_path / "absent.npz")
    save({"weights": np.zeros(2)}, tmp_path / "other.npz")
    with pytest.raises(ValueError, match="other.npz is not a tinynet training checkpoint"):
        load_model(tmp_path / "other.npz")
    save_checkpoint(tmp_path / "bare.npz", model, optim.SGD(model.parameters(), lr=0.1), 1, [])
    with pytest.raises(ValueError, match="does not record how to build its model"):
        load_model(tmp_path / "bare.npz")
    _save(tmp_path / "evil.npz", model, "__import__", {"name": "os"})
    with pytest.raises(ValueError, match="names the model '__import__', which tinynet.models does not export"):
        load_model(tmp_path / "evil.npz")
    _save(tmp_path / "wrong.npz", model, "resnet18", {"num_classes": 5, "in_channels": 1, "stem": "cifar",
                                                      "width": 4})
    with pytest.raises(ValueError, match="weights in .*wrong.npz do not fit resnet18"):
        load_model(tmp_path / "wrong.npz")
