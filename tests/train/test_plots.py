"""The run's figures: whole-number epoch ticks, and the per-class metrics kept out of the
headline panel."""
import pytest

matplotlib = pytest.importorskip("matplotlib")


def test_history_plot_has_integer_epoch_ticks(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tinynet.train import plot_history
    figures = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_iou": 0.5 + e / 10,
                "val_iou_0": 0.9, "val_iou_1": 0.1} for e in (1, 2, 3)]
    plot_history(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    fig = figures[0]
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert [line.get_label() for line in fig.axes[1].get_lines()] == ["iou"]
    real_close(fig)
