"""``tinynet train`` on the user's own files (IDX, CIFAR-10 binary, PNG folders) and
``tinynet predict`` on new inputs; every file is generated in a temporary directory."""
import csv
import gzip
import json
import os

import numpy as np
import pytest

import tinynet as tn
from tinynet import cli
from tinynet.utils import load_model, read_config

Image = pytest.importorskip("PIL.Image", reason="image folders need Pillow (the images extra)")


def _png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return str(path)


def _two_class_folder(root, n=12, size=8):
    """Bright images are class 'light', dark ones 'dark': learnable in a few steps."""
    rng = np.random.default_rng(0)
    for i in range(n):
        _png(root / "light" / f"{i}.png", rng.integers(170, 256, (size, size, 3)))
        _png(root / "dark" / f"{i}.png", rng.integers(0, 86, (size, size, 3)))


def _train(argv, capsys):
    code = cli.main(["train"] + argv + ["--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_folder_classifier_trains_records_its_config_and_predicts(tmp_path, capsys):
    _two_class_folder(tmp_path / "data")
    out = tmp_path / "run"
    code, text, err = _train(["cnn", "--data", f"folder:{tmp_path / 'data'}", "--size", "8", "--epochs", "2",
                              "--batch-size", "8", "--out", str(out)], capsys)
    assert code == 0, err
    assert "validation accuracy: " in text                 # no test/ folder: the figure is validation's
    # the user's data: the header names the model built for it, not the recipe's digits
    assert text.splitlines()[0] == "tinynet train cnn: SimpleCNN(in_channels=3, num_classes=2, input_size=[8, 8])"
    config = read_config(out / "last.npz")
    assert config["model"] == {"name": "SimpleCNN", "kwargs": {"in_channels": 3, "num_classes": 2,
                                                               "input_size": [8, 8]}}
    assert config["run"]["class_names"] == ["dark", "light"] and config["run"]["options"]["epochs"] == 2
    # predict: classes and probabilities equal the model's own on the same pixels / 255
    inputs = [_png(tmp_path / "new" / "a.png", np.full((8, 8, 3), 240)),
              _png(tmp_path / "new" / "b.png", np.full((8, 8, 3), 10))]
    assert cli.main(["predict", "cnn", str(out / "last.npz"), *inputs, "--out", str(tmp_path / "pred")]) == 0
    printed = capsys.readouterr().out
    model = load_model(out / "last.npz")
    x = np.stack([np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1) for p in inputs]) / 255.0
    logits = model(tn.tensor(x.astype(np.float32))).detach().numpy()
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    rows = list(csv.DictReader(open(tmp_path / "pred" / "predictions.csv")))
    for row, p in zip(rows, probs):
        assert row["class"] == ["dark", "light"][p.argmax()]
        assert float(row["probability"]) == pytest.approx(p.max(), abs=1e-5)
        assert f"{row['input']}: {row['class']} ({p.max():.3f})" in printed


def test_a_run_directory_is_not_overwritten_without_overwrite(tmp_path, capsys):
    _two_class_folder(tmp_path / "data", n=4)
    argv = ["cnn", "--data", f"folder:{tmp_path / 'data'}", "--epochs", "1", "--out", str(tmp_path / "run")]
    assert _train(argv, capsys)[0] == 0
    code, _, err = _train(argv, capsys)
    assert code == 2 and "already holds a run" in err and "--overwrite" in err
    assert _train(argv + ["--overwrite"], capsys)[0] == 0


def test_resume_restores_the_runs_options_and_names_flags_that_differ(tmp_path, capsys):
    _two_class_folder(tmp_path / "data", n=4)
    ckpt = str(tmp_path / "run" / "last.npz")
    assert _train(["cnn", "--data", f"folder:{tmp_path / 'data'}", "--epochs", "2", "--lr", "0.01",
                   "--out", str(tmp_path / "run")], capsys)[0] == 0
    code, _, err = _train(["cnn", "--resume", ckpt, "--epochs", "5", "--lr", "0.01"], capsys)
    assert code == 2 and "used --epochs 2; this command gives --epochs 5" in err
    code, text, err = _train(["cnn", "--resume", ckpt], capsys)    # options come from the checkpoint
    assert code == 0, err
    assert "epochs 2, batch size 32, lr 0.01" in text and "already finished its 2 epochs" in text
    code, _, err = _train(["resnet", "--resume", ckpt], capsys)
    assert code == 2 and "is a checkpoint of `tinynet train cnn`, not of resnet" in err
    _png(tmp_path / "data" / "dark" / "extra.png", np.zeros((8, 8, 3)))
    code, _, err = _train(["cnn", "--resume", ckpt], capsys)
    assert code == 2 and "the run trained on 7 samples, and the data now gives 8" in err


def test_flags_of_other_recipes_and_bad_files_are_refused_or_skipped(tmp_path, capsys):
    code, _, err = _train(["cnn", "--images", "x"], capsys)
    assert code == 2 and "--images does not apply to cnn (it applies to unet)" in err
    _two_class_folder(tmp_path / "data", n=4)
    (tmp_path / "data" / "dark" / "junk.png").write_bytes(b"not an image")
    argv = ["cnn", "--data", f"folder:{tmp_path / 'data'}", "--epochs", "1", "--out", str(tmp_path / "r")]
    code, _, err = _train(argv, capsys)
    assert code == 2 and "junk.png: not a readable image" in err
    code, text, err = _train(argv + ["--skip-bad", "--threads", "1"], capsys)
    assert code == 0, err
    assert "skipped " in text and "junk.png" in text and "7 training, 1 validation" in text   # 8 good files


def _idx(path, array, gz=False):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if gz else raw)


def test_lstm_on_mnist_idx_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    d = tmp_path / "mnist"
    d.mkdir()
    _idx(d / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (40, 28, 28)).astype(np.uint8), gz=True)
    _idx(d / "train-labels-idx1-ubyte", rng.integers(0, 10, 40).astype(np.uint8))
    _idx(d / "t10k-images-idx3-ubyte", rng.integers(0, 256, (10, 28, 28)).astype(np.uint8))
    code, _, err = _train(["lstm", "--data", f"mnist:{d}", "--epochs", "1", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz" in err
    _idx(d / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 10).astype(np.uint8))
    code, text, err = _train(["lstm", "--data", f"mnist:{d}", "--epochs", "1", "--out", str(tmp_path / "r")],
                             capsys)
    assert code == 0, err
    assert "36 training, 4 validation" in text and "test accuracy: " in text
    config = read_config(tmp_path / "r" / "last.npz")
    assert config["model"]["kwargs"]["input_size"] == 28 and config["run"]["input_shape"] == [28, 28]


def test_resnet_on_cifar10_binary_batches(tmp_path, capsys):
    rng = np.random.default_rng(0)
    d = tmp_path / "cifar-10-batches-bin"
    d.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = np.concatenate([rng.integers(0, 10, (4, 1)), rng.integers(0, 256, (4, 3072))], axis=1)
        (d / name).write_bytes(records.astype(np.uint8).tobytes())
    code, text, err = _train(["resnet", "--data", f"cifar10:{tmp_path}", "--width", "2", "--epochs", "1",
                              "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    assert "18 training, 2 validation" in text and "test accuracy: " in text
    model = load_model(tmp_path / "r" / "last.npz")
    assert model(tn.zeros(1, 3, 32, 32)).shape == (1, 10)


def _segmentation_folder(root, n=6, size=20):
    rng = np.random.default_rng(0)
    for i in range(n):
        mask = np.zeros((size, size), dtype=np.uint8)
        y, x = rng.integers(2, size - 10, 2)
        mask[y:y + 8, x:x + 8] = 255
        image = rng.integers(0, 60, (size, size, 3))
        image[mask > 0] = 220
        _png(root / "images" / f"im{i}.png", image)
        _png(root / "masks" / f"im{i}.png", mask)


def test_unet_on_an_image_and_mask_folder_then_predict_masks(tmp_path, capsys):
    _segmentation_folder(tmp_path)
    out = tmp_path / "run"
    code, text, err = _train(["unet", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
                              "--size", "16", "--width", "2", "--epochs", "1", "--batch-size", "2",
                              "--out", str(out)], capsys)
    assert code == 0, err
    assert "validation IoU: " in text
    history = json.loads((out / "metrics.json").read_text())
    assert {"val_iou_0", "val_iou_1", "val_dice_0", "val_dice_1"} <= set(history[0])
    config = read_config(out / "last.npz")
    assert config["model"]["kwargs"] == {"in_channels": 3, "num_classes": 2, "base_width": 2, "depth": 4}
    image = str(tmp_path / "images" / "im0.png")
    assert cli.main(["predict", "unet", str(out / "last.npz"), image, "--out", str(tmp_path / "p"), "--plot"]) == 0
    mask = np.asarray(Image.open(tmp_path / "p" / "im0_mask.png"))
    assert mask.shape == (20, 20) and set(np.unique(mask)) <= {0, 255}
    assert (tmp_path / "p" / "im0_overlay.png").is_file()
    # the mask is the model's own class map at 16x16, brought back to 20x20 by nearest neighbour
    from tinynet.data.resize import bilinear, nearest
    x = bilinear(np.asarray(Image.open(image).convert("RGB")).transpose(2, 0, 1)[None], (16, 16))
    probs = load_model(out / "last.npz")(tn.tensor(x.astype(np.float32))).detach().numpy()[0]
    np.testing.assert_array_equal(mask, nearest(probs.argmax(0)[None], (20, 20))[0] * 255)


def test_predict_reads_npy_sequences_for_the_lstm_regressor(tmp_path, capsys):
    from tinynet import optim
    from tinynet.models import LSTMRegressor
    from tinynet.train import save_checkpoint
    model = LSTMRegressor(input_size=5, hidden_size=4, output_size=1)
    save_checkpoint(tmp_path / "reg.npz", model, optim.SGD(model.parameters(), lr=0.1), 1, [],
                    config={"model": {"name": "LSTMRegressor",
                                      "kwargs": {"input_size": 5, "hidden_size": 4, "output_size": 1}},
                            "run": {"input_shape": [10, 5]}})
    seqs = np.random.default_rng(0).random((7, 10, 5)).astype(np.float32)
    np.save(tmp_path / "seqs.npy", seqs)
    assert cli.main(["predict", "lstm", str(tmp_path / "reg.npz"), str(tmp_path / "seqs.npy"),
                     "--out", str(tmp_path / "p")]) == 0
    assert "7 predictions, shape (7, 1)" in capsys.readouterr().out
    expected = model.eval()(tn.tensor(seqs)).detach().numpy()
    np.testing.assert_allclose(np.load(tmp_path / "p" / "predictions.npy"), expected, rtol=1e-6)
    np.save(tmp_path / "bad.npy", seqs[:, :, :3])
    assert cli.main(["predict", "lstm", str(tmp_path / "reg.npz"), str(tmp_path / "bad.npy")]) == 2
    assert "samples of shape (10, 3), but the model takes (10, 5)" in capsys.readouterr().err


def test_ctrl_c_during_the_test_pass_says_training_finished(tmp_path, capsys, monkeypatch):
    # fit() has returned (its deferred Ctrl-C handling is over): exit 130, no resume hint,
    # and the complete checkpoint named
    from tinynet.train import tasks

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(tasks, "evaluate", interrupted)     # command.py imports it per call
    _two_class_folder(tmp_path / "data")
    out = tmp_path / "run"
    code, text, err = _train(["cnn", "--data", f"folder:{tmp_path / 'data'}", "--size", "8", "--epochs", "1",
                              "--batch-size", "8", "--out", str(out)], capsys)
    assert code == 130
    assert "training had finished" in err and str(out / "last.npz") in err and "--resume" not in err
    assert read_config(out / "last.npz")["run"]["options"]["epochs"] == 1
