"""Training end to end: the models reach their target figures on built-in data, a CNN
trained in tinynet and in PyTorch from the same weights on the same batches ends with the
same weights, resuming from a checkpoint is bit-identical, and a NaN loss stops the run.

The accuracy tests are seeded and each takes well under a minute on 2 cores. They pin
BLAS to one thread: these models' matrices are small, and a second BLAS thread only
hurts when other work shares the cores.
"""
import contextlib
import json
import os
import time

import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import optim
from tinynet import train as training
from tinynet.data import DataLoader, TensorDataset, load_digits, make_shapes
from tinynet.models import LSTMClassifier, SimpleCNN, UNet, resnet18

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None


@pytest.fixture
def one_blas_thread():
    with (threadpool_limits(1) if threadpool_limits else contextlib.nullcontext()):
        yield


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return load_digits(seed=0)


def _fit_classifier(model, train, test, epochs, lr, batch_size=32):
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    t0 = time.perf_counter()
    training.train_classifier(model, DataLoader(train, batch_size=batch_size, shuffle=True), optimizer,
                              epochs, scheduler=scheduler)
    result = training.evaluate(model, DataLoader(test, batch_size=512), "classification")
    print(f"{type(model).__name__}: test accuracy {result['accuracy']:.4f} in {time.perf_counter() - t0:.1f} s")
    return result["accuracy"]


def test_simple_cnn_reaches_97_percent_on_digits(digits, one_blas_thread):
    tn.manual_seed(0)
    train, test = digits
    assert _fit_classifier(SimpleCNN(), train, test, epochs=15, lr=3e-3) >= 0.97


def test_narrow_cifar_stem_resnet_reaches_95_percent_on_digits(digits, one_blas_thread):
    tn.manual_seed(0)
    train, test = digits
    model = resnet18(num_classes=10, in_channels=1, stem="cifar", width=8)
    assert _fit_classifier(model, train, test, epochs=4, lr=3e-3) >= 0.95


def test_lstm_reading_digit_rows_reaches_94_percent(digits, one_blas_thread):
    tn.manual_seed(0)
    train, test = digits
    rows = lambda ds: TensorDataset(ds.tensors[0].data.reshape(-1, 8, 8), ds.tensors[1].data)  # noqa: E731
    model = LSTMClassifier(input_size=8, hidden_size=64, num_classes=10)
    assert _fit_classifier(model, rows(train), rows(test), epochs=12, lr=1e-2) >= 0.94


def test_narrow_unet_segments_generated_shapes_with_iou_above_085(one_blas_thread):
    tn.manual_seed(0)
    train = make_shapes(256, size=32, seed=0, as_dataset=True)
    test = make_shapes(128, size=32, seed=1, as_dataset=True)
    model = UNet(3, 1, base_width=8, depth=3, dropout=0.0, final_activation=None)
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    t0 = time.perf_counter()
    training.train_segmentation(model, DataLoader(train, batch_size=16, shuffle=True), optimizer, 4)
    result = training.evaluate(model, DataLoader(test, batch_size=128), "segmentation")
    print(f"UNet: IoU {result['iou']:.4f}, Dice {result['dice']:.4f} in {time.perf_counter() - t0:.1f} s")
    assert result["iou"] >= 0.85 and result["dice"] >= result["iou"]


# ---------------------------------------------------------------------------- PyTorch parity
def _torch_cnn(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 10))


@pytest.mark.parametrize("opt_name", ["adam", "sgd"])
def test_cnn_training_matches_pytorch_step_for_step(opt_name):
    """Same weights, same batches, float64: after 5 steps the weights agree to ~1e-10."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = _torch_cnn(torch).double()
    model = SimpleCNN(channels=(4, 6), hidden=16).to(tn.float64)
    ours = list(model.state_dict())
    theirs = list(ref.state_dict())
    model.load_state_dict({k: ref.state_dict()[t].numpy() for k, t in zip(ours, theirs)})
    if opt_name == "adam":
        opt = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
        ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2, weight_decay=1e-4)
    else:
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.random((16, 1, 8, 8))
        y = rng.integers(0, 10, 16)
        loss = F.cross_entropy(model(tn.tensor(x)), tn.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        ref_loss = torch.nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y))
        ref_opt.zero_grad()
        ref_loss.backward()
        ref_opt.step()
        assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-10)
    for k, t in zip(ours, theirs):
        np.testing.assert_allclose(model.state_dict()[k].numpy(), ref.state_dict()[t].numpy(),
                                   rtol=1e-9, atol=1e-11, err_msg=k)


# ---------------------------------------------------------------------------- checkpoints
def _small_run(tmp_path, name, epochs, resume=None, interrupt_at=None):
    """A seeded run with dropout, shuffling and a random-crop transform, so every RNG matters."""
    from tinynet.data.transforms import RandomCrop
    tn.manual_seed(7 if resume is None else 12345)   # a resumed run owes everything to the checkpoint
    x = np.random.default_rng(0).random((96, 1, 8, 8)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, 96)
    model = SimpleCNN(channels=(4, 8), hidden=16, dropout=0.3)
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, transform=RandomCrop(8, padding=1))

    steps = []

    def on_step(epoch, step, loss):
        steps.append((epoch, step))
        if interrupt_at == (epoch, step):
            raise KeyboardInterrupt
    try:
        training.train_classifier(model, loader, optimizer, epochs, scheduler=scheduler,
                                  out_dir=tmp_path / name, resume=resume, on_step=on_step)
    finally:
        _small_run.steps = steps
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_resume_from_epoch_checkpoint_is_bit_identical(tmp_path):
    full = _small_run(tmp_path, "full", epochs=3)
    _small_run(tmp_path, "part", epochs=1)
    resumed = _small_run(tmp_path, "part", epochs=3, resume=tmp_path / "part" / "last.npz")
    assert _small_run.steps[0] == (1, 1) and len(_small_run.steps) == 12   # epochs 2 and 3 only
    for k in full:
        assert np.array_equal(full[k], resumed[k]), k
    history = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert (tmp_path / "part" / "metrics.csv").read_text().startswith("epoch,train_loss")


def test_resume_after_ctrl_c_mid_epoch_is_bit_identical(tmp_path):
    full = _small_run(tmp_path, "full", epochs=2)
    with pytest.raises(training.TrainingInterrupted) as info:
        _small_run(tmp_path, "cut", epochs=2, interrupt_at=(1, 3))
    assert info.value.checkpoint == os.path.join(tmp_path / "cut", "last.npz")
    resumed = _small_run(tmp_path, "cut", epochs=2, resume=info.value.checkpoint)
    assert _small_run.steps[0] == (1, 4)                 # continues after the interrupted step
    for k in full:
        assert np.array_equal(full[k], resumed[k]), k


def test_non_finite_loss_stops_the_run():
    x = np.zeros((8, 1, 8, 8), dtype=np.float32)
    x[3] = np.nan
    model = SimpleCNN(channels=(2, 2), hidden=None)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    before = [p.numpy().copy() for p in model.state_dict().values()]
    with pytest.raises(training.NonFiniteLossError, match="loss became nan at epoch 1, step 1"):
        training.train_classifier(model, DataLoader(TensorDataset(x, np.zeros(8, dtype=np.int64)), batch_size=8),
                                  optimizer, 1)
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(before, model.state_dict().values()))


def test_loading_a_foreign_checkpoint_is_a_clear_error(tmp_path):
    tn.utils.save({"weights": np.zeros(3)}, tmp_path / "other.npz")
    with pytest.raises(ValueError, match="not a tinynet training checkpoint"):
        training.load_checkpoint(tmp_path / "other.npz", SimpleCNN())


def test_segmentation_loss_on_saturated_probabilities_has_finite_gradients():
    """float32 sigmoids reach exactly 0 and 1; the loss clips them as Keras does."""
    probs = tn.tensor(np.array([[[[0.0, 1.0], [0.5, 1.0]]]], dtype=np.float32), requires_grad=True)
    target = tn.tensor(np.array([[[[1.0, 0.0], [1.0, 1.0]]]], dtype=np.float32))
    loss = training.segmentation_loss(UNet(1, 1, base_width=2, depth=1, dropout=0.0), probs, target)
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(probs.grad.numpy()).all()
