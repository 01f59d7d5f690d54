"""The ``tinynet`` command: help everywhere, exit status 2 on bad arguments, a short
training run with its outputs, Ctrl-C saving a checkpoint, summary and gradcheck."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import types

import pytest

from tinynet import backend, cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["summary", "--help"],
                                  ["gradcheck", "--help"], ["bench", "--help"], ["selfcheck", "--help"]])
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0
    assert "usage: tinynet" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train"], "required: model"),
    (["train", "mlp"], "invalid choice: 'mlp'"),
    (["train", "cnn", "--epochs", "-1"], "expected an integer >= 0"),
    (["train", "cnn", "--lr", "0"], "expected a positive"),
    (["train", "cnn", "--batch-size", "x"], "expected a positive integer"),
    (["train", "cnn", "--device", "tpu"], "--device"),
    (["summary", "unet", "--size", "0"], "expected a positive integer"),
    (["summary", "resnet18"], "invalid choice: 'resnet18'"),
    (["train", "cnn", "--val-split", "1.5"], "expected a fraction between 0 and 1"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_with_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_short_training_run_writes_metrics_checkpoint_and_plots(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "run"
    plot = importlib.util.find_spec("matplotlib") is not None    # without it --plot is an error
    code = cli.main(["train", "cnn", "--epochs", "2", "--out", str(out), "--no-progress"]
                    + ["--plot"] * plot)
    text = capsys.readouterr().out
    assert code == 0
    assert "test accuracy: " in text and "epoch 2/2" in text
    # built-in data and the recipe's model: the recipe's own line describes the run
    from tinynet.train.recipes import RECIPES
    assert text.splitlines()[0] == f"tinynet train cnn: {RECIPES['cnn'].about}"
    history = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2] and "val_accuracy" in history[0]
    assert (out / "last.npz").is_file() and (out / "metrics.csv").is_file()
    if plot:
        curves = out / "curves.png"
        assert f"wrote {curves}" in text
        assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and curves.stat().st_size > 1000
    # predict on an 8x8 PNG: bytes / 255, the digits' [0, 1] range
    Image = pytest.importorskip("PIL.Image")
    import numpy as np
    import tinynet as tn
    from tinynet.utils import load_model
    pixels = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    assert cli.main(["predict", "cnn", str(out / "last.npz"), str(tmp_path / "digit.png"),
                     "--out", str(tmp_path / "pred")]) == 0
    logits = load_model(out / "last.npz")(tn.tensor(pixels[None, None] / np.float32(255))).detach().numpy()
    probs = np.exp(logits[0] - logits.max()) / np.exp(logits[0] - logits.max()).sum()
    assert f"digit.png: {probs.argmax()} ({probs.max():.3f})" in capsys.readouterr().out
    # resuming a finished run trains nothing more and still reports
    assert cli.main(["train", "cnn", "--epochs", "2", "--out", str(out), "--no-progress",
                     "--resume", str(out / "last.npz")]) == 0
    assert "resumed from" in capsys.readouterr().out


def test_plot_without_matplotlib_is_status_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)       # import fails as if absent
    assert cli.main(["train", "cnn", "--plot"]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_missing_or_mismatched_resume_file_is_status_2(tmp_path, capsys):
    assert cli.main(["train", "cnn", "--resume", str(tmp_path / "nope.npz")]) == 2
    assert "no such file" in capsys.readouterr().err
    pytest.importorskip("sklearn")
    from tinynet import optim, train
    from tinynet.models import SimpleCNN
    cnn = SimpleCNN()
    train.save_checkpoint(tmp_path / "cnn.npz", cnn, optim.Adam(cnn.parameters()), 1, [])
    code = cli.main(["train", "resnet", "--out", str(tmp_path / "resnet"), "--no-progress",
                     "--resume", str(tmp_path / "cnn.npz")])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot resume from" in err and "belong to a different model" in err
    assert len(err) < 800 and err.count("\n") <= 2        # a summary, not every key name


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "tinynet", "train", "cnn", "--epochs", "50",
                             "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(300, proc.kill)      # the test ends on its own, whatever happens
    watchdog.start()
    try:
        # The event: the child's own "epoch 1/50" line, logged inside the epoch's
        # Ctrl-C handler, however long the machine takes to get there.
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "epoch 1/50" in line:
                break
        else:
            pytest.fail("the child ended before its first epoch: " + "".join(seen) + proc.stderr.read())
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "interrupted" in stdout + stderr
    from tinynet import utils
    saved = utils.load(str(out / "last.npz"))       # a complete, loadable checkpoint
    assert isinstance(saved, dict) and saved


def test_summary_prints_what_train_builds_once(capsys):
    assert cli.main(["summary", "unet", "--images", "imgs", "--masks", "masks"]) == 0
    out = capsys.readouterr().out
    assert out.count("Total params: 1,941,122") == 1           # the seed's U-Net, printed once
    assert "(2, 3, 224, 224)" in out
    assert cli.main(["summary", "unet"]) == 0                   # the narrow one train builds by default
    assert "Total params: 120,825" in capsys.readouterr().out
    assert cli.main(["summary", "unet", "--size", "30"]) == 2
    assert "divisible" in capsys.readouterr().err


def test_gradcheck_prints_a_table_and_rejects_unknown_ops(capsys):
    before = backend.get_default_device()
    assert cli.main(["gradcheck", "--ops", "exp,tanh", "--examples", "1"]) == 0
    assert backend.get_default_device() == before     # else a device test run continues on the CPU
    out = capsys.readouterr().out
    assert "exp" in out and "pass" in out and "2 of 2 ops passed" in out
    assert cli.main(["gradcheck", "--ops", "no_such_op"]) == 2
    assert "unknown op(s) no_such_op" in capsys.readouterr().err


def test_selfcheck_hook_calls_selfcheck_main(monkeypatch):
    calls = []
    fake = types.ModuleType("tinynet.selfcheck")
    fake.main = lambda argv=None: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "tinynet.selfcheck", fake)
    import tinynet
    monkeypatch.setattr(tinynet, "selfcheck", fake, raising=False)
    assert cli.main(["selfcheck"]) == 0
    assert calls == [[]]


def test_bench_does_not_import_the_command_line():
    """cli imports bench to add `tinynet bench`; bench importing cli back was a cycle."""
    code = ("import sys, tinynet.bench; "
            "sys.exit(1 if 'tinynet.cli' in sys.modules else 0)")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=120).returncode == 0
