"""Built-in data: digits, generated shapes, sequence tasks."""
import builtins

import numpy as np
import pytest

from tinynet.data import load_digits, make_adding_problem, make_shapes, make_sine


def test_digits_split_shapes_ranges_and_determinism():
    pytest.importorskip("sklearn")
    (xtr, ytr), (xte, yte) = load_digits(as_arrays=True)
    assert xtr.shape == (1438, 1, 8, 8) and xte.shape == (359, 1, 8, 8)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0
    assert set(np.unique(yte)) == set(range(10))
    (xtr2, _), _ = load_digits(as_arrays=True)
    assert np.array_equal(xtr, xtr2)
    train, test = load_digits(flatten=True)
    assert train[0][0].shape == (64,)


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        load_digits()


def test_shapes_masks_match_the_drawn_pixels():
    x, m = make_shapes(16, size=32, seed=0)
    assert x.shape == (16, 3, 32, 32) and m.shape == (16, 1, 32, 32)
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    # Shapes are bright (>= 120 before noise), the background dark (< 90): the mask must
    # separate the two brightness populations.
    brightness = x.mean(axis=1)
    fg, bg = brightness[m[:, 0] == 1], brightness[m[:, 0] == 0]
    assert fg.mean() > bg.mean() + 60
    assert 0.03 < m.mean() < 0.5


def test_shapes_are_deterministic_and_multiclass_masks_are_disjoint():
    a = make_shapes(8, size=16, seed=4, num_classes=3)
    b = make_shapes(8, size=16, seed=4, num_classes=3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[1].shape == (8, 3, 16, 16)
    assert a[1].sum(axis=1).max() == 1.0
    assert not np.array_equal(make_shapes(8, size=16, seed=5)[0], a[0])


def test_shapes_errors():
    with pytest.raises(ValueError, match="size must be an int >= 8"):
        make_shapes(2, size=4)
    with pytest.raises(ValueError, match="num_classes=4"):
        make_shapes(2, num_classes=4)
    with pytest.raises(ValueError, match="unknown shape kind 'star'"):
        make_shapes(2, kinds=("star",))


def test_sine_continuation_targets_continue_the_wave():
    x, y = make_sine(5, seq_len=40, horizon=3, seed=0)
    assert x.shape == (5, 40, 1) and y.shape == (5, 3)
    # A sine obeys s[t+1] = 2 cos(w) s[t] - s[t-1]; recover 2cos(w) from the input and
    # check the first target follows.
    s = x[:, :, 0].astype(np.float64)
    k = (s[:, 2:] + s[:, :-2]) / np.where(np.abs(s[:, 1:-1]) > 0.3, s[:, 1:-1], np.nan)
    k = np.nanmedian(k, axis=1)
    np.testing.assert_allclose(y[:, 0], k * s[:, -1] - s[:, -2], atol=1e-4)


def test_adding_problem_targets_are_the_marked_sums():
    x, y = make_adding_problem(20, seq_len=10, seed=1)
    assert x.shape == (20, 10, 2) and y.shape == (20, 1)
    assert np.array_equal(x[:, :, 1].sum(axis=1), np.full(20, 2.0))
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * x[:, :, 1]).sum(axis=1), rtol=1e-6)
    assert (x[:, :5, 1].sum(axis=1) == 1).all()          # one marker in each half
