"""tinynet.utils.save / load: round trips, resumed training bit-identical, atomic writes,
and refusal of corrupt, truncated, foreign and pickled files (never unpickling)."""
import os
import pickle
import zipfile

import numpy as np
import pytest

import tinynet as tn
import tinynet.nn as nn
import tinynet.optim as optim
from tinynet.utils import save, load
from tinynet.utils import checkpoint as ckpt_module


def test_round_trip_of_nested_values(tmp_path):
    obj = {"w": tn.tensor(np.arange(6.0).reshape(2, 3)), "i": tn.tensor([1, 2, 3]),
           "arr": np.array([[True, False]]), "f32": np.float32(1.5), "n": 7, "big": 2 ** 100,
           "x": 0.1, "inf": float("inf"), "s": "héllo", "none": None, "flag": True,
           "list": [1, (2.0, "three"), [tn.ones(2, requires_grad=True)]], 3: "int key",
           "empty": {}, "empty_list": []}
    path = tmp_path / "c.npz"
    save(obj, path)
    back = load(path)
    assert set(back) == set(obj)
    assert np.array_equal(back["w"].numpy(), obj["w"].numpy()) and back["w"].dtype == np.float64
    assert back["i"].dtype == np.int64 and isinstance(back["i"], tn.Tensor)
    assert isinstance(back["arr"], np.ndarray) and back["arr"].dtype == bool
    assert back["n"] == 7 and back["big"] == 2 ** 100 and back["x"] == 0.1
    assert back["inf"] == float("inf") and back["s"] == "héllo" and back["none"] is None
    assert back["flag"] is True and back[3] == "int key"
    assert isinstance(back["list"][1], tuple) and back["list"][1][1] == "three"
    assert back["list"][2][0].requires_grad
    assert back["empty"] == {} and back["empty_list"] == []


def test_model_and_optimizer_state_round_trip(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    opt = optim.Adam(model.parameters(), lr=0.01)
    model(tn.randn(2, 1, 4, 4)).sum().backward()
    opt.step()
    save({"model": model.state_dict(), "optim": opt.state_dict(), "rng": tn.get_rng_state()},
         tmp_path / "m.npz")
    back = load(tmp_path / "m.npz")
    model2 = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    model2.load_state_dict(back["model"])
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy()), k
    opt2 = optim.Adam(model2.parameters(), lr=0.5)
    opt2.load_state_dict(back["optim"])
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.9, 0.999)
    tn.set_rng_state(back["rng"])


def test_resumed_training_is_bit_identical(tmp_path):
    """Model, optimizer and RNG state (dropout masks) restored: the same final weights."""
    def make():
        tn.manual_seed(0)
        m = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
        return m, optim.AdamW(m.parameters(), lr=0.01)

    rng = np.random.default_rng(0)
    data = [(tn.tensor(rng.standard_normal((8, 4)).astype(np.float32)),
             tn.tensor(rng.standard_normal((8, 1)).astype(np.float32))) for _ in range(8)]
    model, opt = make()
    for x, y in data:
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    straight = [p.detach().numpy().copy() for p in model.parameters()]

    model, opt = make()
    for x, y in data[:4]:
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    save({"model": model.state_dict(), "optim": opt.state_dict(), "rng": tn.get_rng_state()},
         tmp_path / "r.npz")
    tn.manual_seed(999)  # disturb everything a resumed process would not have
    model, opt = make()
    state = load(tmp_path / "r.npz")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optim"])
    tn.set_rng_state(state["rng"])
    for x, y in data[4:]:
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    for a, p in zip(straight, model.parameters()):
        assert np.array_equal(a, p.detach().numpy()), "resumed run diverged from the straight run"


def test_crash_mid_save_leaves_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save({"v": tn.ones(3)}, path)

    def exploding_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial garbage")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ckpt_module.np, "savez", exploding_savez)
    with pytest.raises(OSError, match="disk full"):
        save({"v": tn.zeros(3)}, path)
    monkeypatch.undo()
    assert np.array_equal(load(path)["v"].numpy(), np.ones(3)), "the old checkpoint must survive"
    assert os.listdir(tmp_path) == ["c.npz"], "the temporary file must be removed"


def test_pickled_file_is_refused_without_unpickling(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"x": Boom()}))
    with pytest.raises(ValueError, match="pickle"):
        load(path)
    # an .npz whose entry is an object array (pickled inside the archive)
    path2 = tmp_path / "evil2.npz"
    np.savez(path2, __tinynet_structure__=np.frombuffer(b'{"format": "tinynet-checkpoint", '
                                                        b'"version": 1, "root": {"array": 0}}',
                                                        dtype=np.uint8),
             a0=np.array([Boom()], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load(path2)
    assert not (tmp_path / "pwned").exists(), "loading must never run pickled code"


def test_truncated_and_corrupt_files_are_value_errors(tmp_path):
    good = tmp_path / "good.npz"
    save({"w": tn.randn(50, 50), "step": 3}, good)
    data = good.read_bytes()
    for name, content in [("truncated", data[: len(data) // 2]), ("empty", b""),
                          ("text", b"hello world, not a checkpoint"),
                          ("flipped", data[:200] + bytes([data[200] ^ 0xFF]) + data[201:])]:
        p = tmp_path / f"{name}.npz"
        p.write_bytes(content)
        with pytest.raises(ValueError, match="load:"):
            load(p)


def test_foreign_npz_and_npy_are_value_errors(tmp_path):
    np.savez(tmp_path / "foreign.npz", x=np.ones(3))
    with pytest.raises(ValueError, match="not written by tinynet.utils.save"):
        load(tmp_path / "foreign.npz")
    np.save(tmp_path / "plain.npy", np.ones(3))
    with pytest.raises(ValueError, match="not a tinynet checkpoint"):
        load(tmp_path / "plain.npy")
    bad_zip = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(ValueError, match="load:"):
        load(bad_zip)


def test_unsupported_values_are_type_errors(tmp_path):
    with pytest.raises(TypeError, match="without pickle"):
        save({"f": lambda x: x}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dict key"):
        save({(1, 2): 3}, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")


def test_map_location(tmp_path):
    save({"w": tn.ones(2)}, tmp_path / "c.npz")
    assert str(load(tmp_path / "c.npz", map_location="cpu")["w"].device) == "cpu"
