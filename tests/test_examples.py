"""The ported classic programs in examples/ run end to end (with their --tiny settings).

A failure means a public API the examples use changed, or an example no longer trains.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_example(name, *args, cwd):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=cwd,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_unet_starter_builds_summarises_trains_and_predicts(tmp_path):
    out = run_example("unet_starter.py", "--tiny", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert "Total params: 1,941,105" in out, "the classic U-Net (1 output mask) changed size"
    assert "epoch 2/2" in out and "val_mean_iou" in out
    assert (tmp_path / "run" / "best.npz").is_file()
    with open(tmp_path / "run" / "predictions.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ImageId", "EncodedPixels"] and len(rows) == 1 + 4


def test_unet_starter_run_length_encoding():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from unet_starter import rle_encode
    finally:
        sys.path.remove(str(ROOT / "examples"))
    import numpy as np
    mask = np.array([[1, 0, 1],
                     [1, 0, 1],
                     [0, 0, 1]])
    # column-major, 1-based: column 0 holds pixels 1-3, column 2 holds pixels 7-9
    assert rle_encode(mask) == "1 2 7 3"
    assert rle_encode(np.zeros((2, 2))) == ""


def test_lstm_regressor_learns_something(tmp_path):
    out = run_example("lstm_regressor.py", "--tiny", cwd=tmp_path)
    assert "epoch   3" in out
    final = float(out.split("final test MSE ")[1].split()[0])
    baseline = float(out.split("training mean: ")[1].split()[0])
    assert final < baseline, "three epochs did not beat predicting the mean"
