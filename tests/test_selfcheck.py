"""``python -m tinynet`` / ``tinynet selfcheck``: trains a tiny MLP and runs gradient checks."""
import subprocess
import sys

from tinynet import selfcheck


def test_selfcheck_passes_and_reports(capsys):
    assert selfcheck.main() == 0
    out = capsys.readouterr().out
    assert "2-layer MLP" in out and "all checks passed" in out
    assert "gradgradcheck cross_entropy" in out


def test_mlp_loss_decreases():
    losses = selfcheck._train_mlp(steps=10)
    assert losses[-1] < losses[0]


def test_selfcheck_reports_a_failing_check(monkeypatch, capsys):
    monkeypatch.setattr(selfcheck, "_gradient_checks", lambda: [("gradcheck broken", False, "boom")])
    assert selfcheck.main() == 1
    assert "[FAIL] gradcheck broken: boom" in capsys.readouterr().out


def test_python_dash_m_tinynet_exits_zero():
    result = subprocess.run([sys.executable, "-m", "tinynet"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
