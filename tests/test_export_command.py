"""End to end: train a tiny model a step -> `tinynet export` -> ONNX Runtime and PyTorch
(through safetensors) give tinynet's outputs; and the command's errors."""
from collections import OrderedDict

import numpy as np
import pytest

import tinynet as tn
from tinynet import optim
from tinynet.cli import main
from tinynet.data import DataLoader, TensorDataset
from tinynet.models import LSTMRegressor, SimpleCNN, UNet
from tinynet.train import fit
from tinynet.utils import load_model

CNN_KWARGS = {"in_channels": 1, "num_classes": 4, "input_size": 8, "channels": [3, 5], "hidden": 6}


def train_one_step(tmp_path, model, name, kwargs, x, y, loss_fn, run=None):
    """fit() for one epoch of one batch; returns the checkpoint it wrote."""
    loader = DataLoader(TensorDataset(x, y), batch_size=len(x))
    fit(model, loader, optim.Adam(model.parameters(), lr=0.01), 1, loss_fn, out_dir=str(tmp_path / "run"),
        config={"model": {"name": name, "kwargs": kwargs}, "run": run or {}})
    return str(tmp_path / "run" / "last.npz")


def cross_entropy(model, out, target):
    return tn.functional.cross_entropy(out, target)


def mse(model, out, target):
    return tn.functional.mse_loss(out, target)


def tinynet_outputs(checkpoint, x):
    with tn.no_grad():
        return load_model(checkpoint)(tn.tensor(x)).numpy()


def onnx_outputs(path, x):
    ort = pytest.importorskip("onnxruntime", reason="the optional 'onnxruntime' package is not "
                              "installed (pip install tinynet[onnx])")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@pytest.fixture
def cnn_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    tn.manual_seed(0)
    x = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 8)
    model = SimpleCNN(**CNN_KWARGS)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    ckpt = train_one_step(tmp_path, model, "SimpleCNN", CNN_KWARGS, x, y, cross_entropy)
    trained = load_model(ckpt).state_dict()
    assert not np.allclose(trained["features.0.weight"].numpy(), before["features.0.weight"])
    return ckpt


def test_trained_cnn_exports_to_onnx_and_to_pytorch_with_the_same_outputs(tmp_path, cnn_checkpoint, capsys):
    pytest.importorskip("onnx", reason="the optional 'onnx' package is not installed")
    x = np.random.default_rng(1).standard_normal((5, 1, 8, 8)).astype(np.float32)
    expected = tinynet_outputs(cnn_checkpoint, x)

    assert main(["export", "cnn", cnn_checkpoint, "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert "wrote" in capsys.readouterr().out
    np.testing.assert_allclose(onnx_outputs(tmp_path / "m.onnx", x), expected, rtol=1e-4, atol=1e-5)

    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch", reason="the optional 'safetensors' package is not installed")
    out = tmp_path / "m.safetensors"
    assert main(["export", "cnn", cnn_checkpoint, "--format", "safetensors", "--out", str(out)]) == 0
    nn = torch.nn
    twin = nn.Sequential(OrderedDict(
        features=nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
        classifier=nn.Sequential(nn.Flatten(), nn.Linear(20, 6), nn.ReLU(), nn.Linear(6, 4))))
    twin.load_state_dict(st.load_file(str(out)))
    with torch.no_grad():
        np.testing.assert_allclose(twin(torch.from_numpy(x)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_lstm_and_unet_take_their_input_shape_from_the_checkpoint_or_the_flag(tmp_path, capsys):
    pytest.importorskip("onnx", reason="the optional 'onnx' package is not installed")
    rng = np.random.default_rng(2)
    tn.manual_seed(2)
    x = rng.standard_normal((6, 10, 5)).astype(np.float32)
    ckpt = train_one_step(tmp_path / "lstm", LSTMRegressor(), "LSTMRegressor", {}, x,
                          rng.random((6, 1)).astype(np.float32), mse)
    assert main(["export", "lstm", ckpt, "--format", "onnx", "--out", str(tmp_path / "l.onnx")]) == 2
    assert "give it with --input" in capsys.readouterr().err
    assert main(["export", "lstm", ckpt, "--format", "onnx", "--out", str(tmp_path / "l.onnx"),
                 "--input", "10,5"]) == 0
    np.testing.assert_allclose(onnx_outputs(tmp_path / "l.onnx", x), tinynet_outputs(ckpt, x),
                               rtol=1e-4, atol=1e-6)

    kwargs = {"in_channels": 3, "num_classes": 1, "base_width": 2, "depth": 2}
    images = rng.uniform(0, 255, (2, 3, 8, 8)).astype(np.float32)
    ckpt = train_one_step(tmp_path / "unet", UNet(**kwargs), "UNet", kwargs, images,
                          (rng.random((2, 1, 8, 8)) > 0.5).astype(np.float32), mse,
                          run={"input_shape": [3, 8, 8]})
    assert main(["export", "unet", ckpt, "--format", "onnx", "--out", str(tmp_path / "u.onnx")]) == 0
    np.testing.assert_allclose(onnx_outputs(tmp_path / "u.onnx", images), tinynet_outputs(ckpt, images),
                               rtol=1e-4, atol=1e-6)


def test_errors_are_reported_with_their_cause(tmp_path, cnn_checkpoint, capsys):
    out = str(tmp_path / "x.onnx")
    assert main(["export", "unet", cnn_checkpoint, "--format", "onnx", "--out", out]) == 2
    assert "holds a SimpleCNN, not a unet model (UNet)" in capsys.readouterr().err
    assert main(["export", "cnn", str(tmp_path / "absent.npz"), "--format", "onnx", "--out", out]) == 2
    assert "no such file" in capsys.readouterr().err
    pytest.importorskip("onnx", reason="the optional 'onnx' package is not installed")
    assert main(["export", "cnn", cnn_checkpoint, "--format", "onnx", "--out", out, "--input", "1,9,9"]) == 2
    assert "SimpleCNN: expected input (N, 1, 8, 8)" in capsys.readouterr().err
    pytest.importorskip("safetensors", reason="the optional 'safetensors' package is not installed")
    assert main(["export", "cnn", cnn_checkpoint, "--format", "safetensors", "--out",
                 str(tmp_path / "no" / "such" / "dir" / "m.safetensors")]) == 1
    assert "No such file or directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "cnn", cnn_checkpoint, "--format", "pt", "--out", out])
    assert exit_info.value.code == 2


def _png(path, array):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return str(path)


def test_folder_training_then_predict_then_export_agree(tmp_path, capsys):
    """The issue's end to end: `tinynet train` two epochs on a PNG folder -> `tinynet predict`
    -> `tinynet export` -> ONNX Runtime and PyTorch (through safetensors) give tinynet's outputs."""
    import csv
    pytest.importorskip("PIL.Image", reason="image folders need Pillow (the images extra)")
    pytest.importorskip("onnx", reason="the optional 'onnx' package is not installed")
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch", reason="the optional 'safetensors' package is not installed")
    rng = np.random.default_rng(0)
    for i in range(8):
        _png(tmp_path / "data" / "light" / f"{i}.png", rng.integers(170, 256, (8, 8, 3)))
        _png(tmp_path / "data" / "dark" / f"{i}.png", rng.integers(0, 86, (8, 8, 3)))
    run = tmp_path / "run"
    assert main(["train", "cnn", "--data", f"folder:{tmp_path / 'data'}", "--size", "8", "--epochs", "2",
                 "--batch-size", "8", "--out", str(run), "--no-progress"]) == 0
    ckpt = str(run / "last.npz")
    inputs = [_png(tmp_path / "new" / "a.png", rng.integers(150, 256, (8, 8, 3))),
              _png(tmp_path / "new" / "b.png", rng.integers(0, 100, (8, 8, 3)))]
    assert main(["predict", "cnn", ckpt, *inputs, "--out", str(tmp_path / "pred")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "pred" / "predictions.csv")))
    capsys.readouterr()

    assert main(["export", "cnn", ckpt, "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert "input (batch, 3, 8, 8)" in capsys.readouterr().out     # the shape recorded by the run
    from PIL import Image
    x = (np.stack([np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1) for p in inputs])
         / 255.0).astype(np.float32)
    expected = tinynet_outputs(ckpt, x)
    logits = onnx_outputs(tmp_path / "m.onnx", x)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for row, p in zip(rows, probs):          # ONNX Runtime's answer is the one predict printed
        assert row["class"] == ["dark", "light"][p.argmax()]
        assert float(row["probability"]) == pytest.approx(p.max(), abs=1e-4)

    assert main(["export", "cnn", ckpt, "--format", "safetensors", "--out", str(tmp_path / "m.safetensors")]) == 0
    nn = torch.nn
    twin = nn.Sequential(OrderedDict(
        features=nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
        classifier=nn.Sequential(nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 2))))
    twin.load_state_dict(st.load_file(str(tmp_path / "m.safetensors")))
    with torch.no_grad():
        np.testing.assert_allclose(twin(torch.from_numpy(x)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_unet_trained_on_image_and_mask_folders_exports_at_its_training_size(tmp_path, capsys):
    pytest.importorskip("PIL.Image", reason="image folders need Pillow (the images extra)")
    pytest.importorskip("onnx", reason="the optional 'onnx' package is not installed")
    rng = np.random.default_rng(1)
    for i in range(4):
        mask = np.zeros((20, 20), dtype=np.uint8)
        mask[4:12, 6:14] = 255
        image = rng.integers(0, 60, (20, 20, 3))
        image[mask > 0] = 220
        _png(tmp_path / "images" / f"im{i}.png", image)
        _png(tmp_path / "masks" / f"im{i}.png", mask)
    run = tmp_path / "run"
    assert main(["train", "unet", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
                 "--size", "16", "--width", "2", "--epochs", "1", "--batch-size", "2", "--out", str(run),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["export", "unet", str(run / "last.npz"), "--format", "onnx", "--out", str(tmp_path / "u.onnx")]) == 0
    assert "input (batch, 3, 16, 16)" in capsys.readouterr().out
    x = rng.uniform(0, 1, (3, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(onnx_outputs(tmp_path / "u.onnx", x), tinynet_outputs(str(run / "last.npz"), x),
                               rtol=1e-4, atol=1e-5)


def test_sequence_recipes_export_by_their_recorded_recipe(tmp_path, capsys):
    """charlm traces on integer ids; seq2seq (a forward of several inputs with lengths) has no
    ONNX export and says so, but its weights go to safetensors; the recipe is checked."""
    pytest.importorskip("onnx", reason="the optional 'onnx' package is not installed")
    pytest.importorskip("safetensors", reason="the optional 'safetensors' package is not installed")
    from tinynet.models import CharLM, Seq2Seq
    from tinynet.train import save_checkpoint

    def checkpoint(path, model, name, kwargs, recipe, shape):
        save_checkpoint(path, model, optim.SGD(model.parameters(), lr=0.1), 1, [],
                        config={"model": {"name": name, "kwargs": kwargs},
                                "run": {"recipe": recipe, "input_shape": shape}})
        return str(path)
    tn.manual_seed(8)
    kwargs = {"vocab_size": 9, "embedding_dim": 4, "hidden_size": 5}
    lm = checkpoint(tmp_path / "lm.npz", CharLM(**kwargs), "CharLM", kwargs, "charlm", [6])
    assert main(["export", "cnn", lm, "--format", "onnx", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "trained with the charlm recipe (a CharLM), not cnn" in capsys.readouterr().err
    assert main(["export", "charlm", lm, "--format", "onnx", "--out", str(tmp_path / "lm.onnx")]) == 0
    ids = np.random.default_rng(8).integers(0, 9, (3, 6))
    ort = pytest.importorskip("onnxruntime", reason="the optional 'onnxruntime' package is not installed")
    logits = ort.InferenceSession(str(tmp_path / "lm.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": ids})[0]
    with tn.no_grad():
        expected = load_model(lm)(tn.tensor(ids))[0].numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)

    kwargs = {"source_vocab": 7, "target_vocab": 8, "embedding_dim": 4, "hidden_size": 6}
    s2s = checkpoint(tmp_path / "s2s.npz", Seq2Seq(**kwargs), "Seq2Seq", kwargs, "seq2seq", [5])
    capsys.readouterr()
    assert main(["export", "seq2seq", s2s, "--format", "onnx", "--out", str(tmp_path / "s.onnx")]) == 1
    assert "Seq2Seq cannot be exported as ONNX" in capsys.readouterr().err
    assert not (tmp_path / "s.onnx").exists()
    assert main(["export", "seq2seq", s2s, "--format", "safetensors", "--out", str(tmp_path / "s.st")]) == 0
    assert set(tn.utils.load_safetensors(tmp_path / "s.st")) == set(load_model(s2s).state_dict())
