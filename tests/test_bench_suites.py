"""The benchmark scripts on the suite's device: ``benchmarks/run.py --quick`` runs every
suite, and ``benchmarks/layers.py`` finds and times a model's convolutions.

Figures from a busy test machine mean nothing, so this only shows that every suite runs
and writes rows the runner reads, and that the layer map times the products PyTorch
computes (the runner itself is checked in ``test_bench.py``, on the CPU only).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))      # the scripts import each other by name
#: The suites that must run wherever their script is in the tree (the reference libraries'
#: suites may report themselves absent instead).
OWN_SUITES = ("kernels", "overhead", "recurrent", "training", "attention")


def test_quick_smoke_run_of_the_real_suites(tmp_path, check_bench_row):
    """It runs on the test device (``TINYNET_TEST_DEVICE=cuda`` checks the suites' GPU path)."""
    pytest.importorskip("threadpoolctl")
    device = os.environ.get("TINYNET_TEST_DEVICE", "cpu")
    out = tmp_path / "quick.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
                             "--device", device, "--json", str(out)], cwd=tmp_path,
                            capture_output=True, text=True,
                            timeout=900, env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    data = json.loads(out.read_text())
    ran = [name for name, suite in data["suites"].items() if suite["status"] == "ok"]
    assert ran, f"no benchmark suite ran: {data['suites']}"
    for row in data["rows"]:
        check_bench_row(row)
    for name in OWN_SUITES:
        if (ROOT / "benchmarks" / f"{name}.py").is_file():
            assert data["suites"][name]["status"] == "ok", data["suites"][name]
            assert data["suites"][name]["rows"], f"{name} gave no rows"


def test_layers_finds_every_convolution_of_resnet18_by_shape(device):
    """benchmarks/layers.py's map of a step: ResNet-18 (CIFAR stem, width 8) on N2 32x32
    has 20 convolutions, listed here by hand from the architecture."""
    import layers
    import training
    found = layers.conv_layers(training.tinynet_model("resnet18", 8).to(device), (2, 3, 32, 32), device)
    expected = {   # (kind, N, C_in, H, W, C_out, k, s, p, output_padding): count
        ("conv", 2, 3, 32, 32, 8, 3, 1, 1, 0): 1,                                # stem
        ("conv", 2, 8, 32, 32, 8, 3, 1, 1, 0): 4,                                # stage 1
        ("conv", 2, 8, 32, 32, 16, 3, 2, 1, 0): 1, ("conv", 2, 8, 32, 32, 16, 1, 2, 0, 0): 1,
        ("conv", 2, 16, 16, 16, 16, 3, 1, 1, 0): 3,                              # stage 2
        ("conv", 2, 16, 16, 16, 32, 3, 2, 1, 0): 1, ("conv", 2, 16, 16, 16, 32, 1, 2, 0, 0): 1,
        ("conv", 2, 32, 8, 8, 32, 3, 1, 1, 0): 3,                                # stage 3
        ("conv", 2, 32, 8, 8, 64, 3, 2, 1, 0): 1, ("conv", 2, 32, 8, 8, 64, 1, 2, 0, 0): 1,
        ("conv", 2, 64, 4, 4, 64, 3, 1, 1, 0): 3,                                # stage 4
    }
    assert dict(found) == expected


def test_layers_names_a_layer_it_cannot_time_and_leaves_no_hook(device):
    from tinynet import nn
    import layers
    model = nn.Conv2d(3, 4, (3, 1), padding=(1, 0)).to(device)
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4, kernel_size=\(3, 1\).*only square"):
        layers.conv_layers(model, (1, 3, 8, 8), device)
    assert not model.__dict__.get("_forward_hooks")


@pytest.mark.parametrize("key", [
    ("conv", 2, 3, 8, 8, 4, 3, 2, 1, 0),        # stride 2 on an even map: dx needs output_padding 1
    ("conv", 2, 3, 7, 7, 4, 3, 1, 1, 0),
    ("convT", 2, 4, 5, 5, 3, 2, 2, 0, 0),
    ("convT", 2, 4, 5, 5, 3, 3, 2, 1, 1)])
def test_layers_times_the_products_pytorch_computes(key, device):
    """Each pass's tinynet callable gives PyTorch's tensor: the script times the same
    products (a wrong output_padding would time an input gradient of another size)."""
    pytest.importorskip("torch")
    import layers
    cases = layers.make_cases(key, device)
    for name, fns in cases.items():
        ours, theirs = fns["tinynet"]().numpy(), fns["torch"]()
        if isinstance(theirs, tuple):        # convolution_backward: (dx, dW, db) with Nones
            theirs = next(t for t in theirs if t is not None)
        np.testing.assert_allclose(ours, theirs.cpu().numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
