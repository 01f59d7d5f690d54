"""The seq2seq, charlm and convlstm recipes: metrics against known answers, the command line
(summary, a run's files), and checkpoints that rebuild the plain models."""
import json

import numpy as np
import pytest

import tinynet as tn
from tinynet import cli
from tinynet.data import DataLoader, TensorDataset, make_additions
from tinynet.data.text import ADDITION_VOCAB
from tinynet.nn.module import Module
from tinynet.train.sequences import language_model_metrics, translation_metrics, video_metrics


class _Stub(Module):
    """Returns fixed outputs, to check what the metrics count."""

    def __init__(self, answer=None, out=None):
        super().__init__()
        # answers and outputs on the default device, where _loader puts the batches
        self.answer = None if answer is None else tn.tensor(answer).data
        self.out = out
        self.source_steps, self.prompt_steps = 2, 7

    def forward(self, x):
        return self.out(x) if self.out is not None else tn.zeros(x.shape[0], 4, 10)

    def greedy_decode(self, source, lengths=None, max_length=20):
        return self.answer[:source.shape[0]], None

    def complete(self, prompts, max_new=8, temperature=0.0, stop=None):
        return self.answer[:prompts.shape[0], :max_new]


def _loader(x, y, batch_size):
    """Batches on the default device (a parameterless stub leaves them where the data is)."""
    return DataLoader(TensorDataset(tn.tensor(x), tn.tensor(y)), batch_size=batch_size)


def test_translation_exact_match_counts_whole_sequences_up_to_eos():
    y = np.array([[5, 6, 2, 0], [7, 7, 7, 2], [3, 2, 0, 0]])
    decoded = np.array([[5, 6, 2, 9, 9], [7, 7, 7, 2, 0], [3, 4, 2, 0, 0]])   # junk after <eos> is fine
    x = np.zeros((3, 6), dtype=np.int64)
    m = translation_metrics(_Stub(decoded), _loader(x, y, 2))
    assert m["exact_match"] == pytest.approx(2 / 3)
    assert m["loss"] == pytest.approx(np.log(10))         # zero logits: uniform over 10 ids


def test_completion_accuracy_compares_the_answer_after_the_prompt():
    lines = make_additions(4, split="test", seed=0)
    ids, _ = ADDITION_VOCAB.encode(lines, length=11, sos=True, eos=True)
    x, y = ids[:, :-1], ids[:, 1:]
    answers, _ = ADDITION_VOCAB.encode([line.split("=")[1] for line in lines], length=4, eos=True)
    answers[3, 0] = (answers[3, 0] - 3 + 1) % 10 + 3                   # one wrong digit
    stub = _Stub(answers, out=lambda x: (tn.zeros(x.shape[0], x.shape[1], len(ADDITION_VOCAB)), None))
    m = language_model_metrics(stub, _loader(x, y, 3))
    assert m["completion_accuracy"] == pytest.approx(3 / 4)
    assert m["bits_per_char"] == pytest.approx(np.log2(len(ADDITION_VOCAB)))


def test_video_metrics_forecast_error_and_copy_baseline():
    rng = np.random.default_rng(0)
    x, y = rng.random((3, 4, 1, 2, 2)), rng.random((3, 6, 1, 2, 2))
    truth_plus = y + 0.1
    m = video_metrics(_Stub(out=lambda _x: tn.tensor(truth_plus)), _loader(x, y, 3))
    assert m["mse"] == pytest.approx(0.01) and m["loss"] == pytest.approx(0.01)
    assert m["copy_last_mse"] == pytest.approx(((y[:, 3:] - x[:, 3:4]) ** 2).mean())


@pytest.mark.parametrize("name, params", [("seq2seq", "68,590"), ("charlm", "77,072"), ("convlstm", "11,652")])
def test_summary_knows_the_sequence_models(name, params, capsys):
    assert cli.main(["summary", name]) == 0
    assert params in capsys.readouterr().out


def test_a_run_writes_test_metrics_and_plots_and_fits_the_plain_model(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    # one epoch would take minutes; --epochs 0 still evaluates, checkpoints and plots
    assert cli.main(["train", "convlstm", "--epochs", "0", "--no-progress", "--out", str(out)]) == 0
    test = json.loads((out / "test_metrics.json").read_text())
    assert {"mse", "copy_last_mse", "loss"} <= set(test)
    printed = capsys.readouterr().out
    assert "mse" in printed and "copy_last_mse" in printed
    from tinynet.train.recipes.sequences import _plot_attention, _seq2seq_model
    model, _, _ = _seq2seq_model()
    device = str(next(model.parameters()).device)      # the recipe passes the model's device
    [path] = _plot_attention(["the 3rd of March 1987", "03/03/87"])(model, str(tmp_path), device)
    assert path.endswith("attention.png")
    plain = tn.models.Seq2Seq(**_seq2seq_model()[1]["kwargs"])
    plain.load_state_dict(model.state_dict())          # the packed model's weights fit the plain one
