"""benchmarks/references.py: JAX as a second reference. Skipped with a reason when JAX is
absent; where present, its functions compute what PyTorch computes (the padding mapping of
the transposed conv included), which is what makes its timings comparable."""
import os
import sys

import pytest

# JAX and Keras against PyTorch, and the runner's rows: no tinynet device or kernel route.
pytestmark = pytest.mark.config_independent

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCH)
references = pytest.importorskip("references", reason="benchmarks/ not importable")


def test_without_jax_the_suite_says_so_and_returns_nothing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jax", None)        # makes `import jax` fail
    assert references.import_jax(threads=2) is None
    assert references.run(quick=True, threads=2) == []
    assert "JAX is not installed" in capsys.readouterr().out


@pytest.mark.parametrize("workload", [
    ("conv", 2, 3, 4, 7, 6, 3, 1, 1),
    ("conv", 1, 4, 2, 9, 9, 3, 2, 1),
    ("convT", 2, 3, 4, 5, 5, 4, 2, 1),
    ("convT", 1, 2, 3, 4, 4, 2, 2, 0),
    ("maxpool", 2, 3, 3, 8, 8, 2, 2, 0),
])
def test_jax_functions_match_pytorch(workload):
    pytest.importorskip("jax", reason="the jax extra is not installed")
    pytest.importorskip("torch", reason="PyTorch is the reference")
    mods = references.import_jax(threads=2)
    op, *shape = workload
    _, _, check, (x, w, b, gy) = references.jax_cases(mods, op, *shape)
    check(*references.torch_reference(op, x, w, b, gy, *shape[-3:]))


def test_keras_unet_without_keras_is_skipped_with_a_reason(monkeypatch, capsys):
    import keras_unet
    monkeypatch.setitem(sys.modules, "keras", None)
    assert keras_unet.import_keras(threads=2) is None
    assert keras_unet.run(quick=True, threads=2) == []
    assert "Keras 3 with JAX is not installed" in capsys.readouterr().out


def test_keras_unet_is_the_seed_unet():
    import keras_unet
    keras = keras_unet.import_keras(threads=2)
    if keras is None:
        pytest.skip("the keras extra is not installed")
    model = keras_unet.keras_unet(keras)
    # the seed's parameter count, and tinynet's UNet() has the same
    from tinynet.models import UNet
    assert model.count_params() == 1_941_122 == sum(p.numel() for p in UNet(3, 2).parameters())
    assert tuple(model.output.shape) == (None, 128, 128, 2)


@pytest.fixture
def smoke():
    """The runner's --quick: one call per library, no gaps (these tests time nothing)."""
    import common
    common.set_smoke(True)
    yield
    common.set_smoke(False)


def test_runner_rows_carry_jax_beside_pytorch(smoke):
    """``kernels.run(references=("jax",))`` (``run.py --references jax``): every kernel row
    also has JAX's time and its ratio to PyTorch's, after the check against PyTorch."""
    pytest.importorskip("jax", reason="the jax extra is not installed")
    pytest.importorskip("torch", reason="PyTorch is the reference")
    import kernels
    rows = kernels.run(quick=True, references=("jax",))
    assert len(rows) == 2 * len(kernels.WORKLOADS)
    for row in rows:
        assert row["jax_ms"] > 0 and row["jax_ratio"] == pytest.approx(row["jax_ms"] / row["torch_ms"])


def test_runner_unet_row_carries_keras_beside_pytorch(smoke):
    """``training.run(references=("keras",))`` (``run.py --references keras``): the U-Net
    row also has the Keras U-Net's step time (narrow, as the quick tinynet model is)."""
    import keras_unet
    if keras_unet.unavailable() or keras_unet.import_keras(threads=2) is None:
        pytest.skip("the keras extra is not installed")
    pytest.importorskip("torch", reason="PyTorch is the reference")
    import training
    (row,) = training.run(quick=True, memory=False, references=("keras",), names=("unet",))
    assert row["workload"].startswith("U-Net step") and row["keras_ms"] > 0
    assert row["keras_ratio"] == pytest.approx(row["keras_ms"] / row["torch_ms"])
