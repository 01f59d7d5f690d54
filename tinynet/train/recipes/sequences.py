"""Sequence recipes on generated data: ``seq2seq`` (dates), ``charlm`` (additions), ``convlstm`` (video).

* ``seq2seq``: :class:`~tinynet.models.Seq2Seq` (Bahdanau additive attention, 64 units)
  translates dates written in 16 human formats into ISO ``YYYY-MM-DD``; 12,800 training
  dates, 500 validation and 2,000 test dates from days never seen in training. Final
  figure: exact-match accuracy of the greedy translation. ``--plot``: attention heat maps.
* ``charlm``: :class:`~tinynet.models.CharLM` (128 LSTM units) on lines "a+b=c" of two-digit
  numbers; 90% of the training pairs train, 10% validate, and 810 pairs never seen test.
  Final figures: bits per character and the share of prompts "a+b=" completed right.
  ``--plot``: sampled lines at three temperatures (``samples.txt``).
* ``convlstm``: :class:`~tinynet.models.ConvLSTMForecaster` (16 hidden channels, 3x3
  kernels, 2x2 patches) on two digits bouncing in 32x32 frames: 10 frames in, 10 out;
  1,024 training sequences, test sequences drawn from the digits' test images. Final
  figure: the forecast's MSE beside repeating the last given frame. ``--plot``: predicted
  frames beside the truth.
"""
from __future__ import annotations

import os

from ...backend import numpy as np
from ...models.seq2seq import Seq2Seq
from ...models.charlm import CharLM
from .registry import Recipe, build_model, register

# ---------------------------------------------------------------------------- seq2seq
_S2S = {"embedding_dim": 16, "hidden_size": 64, "attention": "additive"}
_SOURCE_STEPS = 40           # the longest date text has 37 characters
_TARGET_STEPS = 11           # "YYYY-MM-DD" and <eos>


class _PackedSeq2Seq(Seq2Seq):
    """A :class:`Seq2Seq` whose one input packs the source ids (first ``source_steps``
    columns) and the decoder input, as the training loop calls ``model(x)``; the
    parameters and ``state_dict`` are Seq2Seq's, so a checkpoint loads into a plain one."""

    def __init__(self, source_steps: int, **kwargs):
        super().__init__(**kwargs)
        self.source_steps = source_steps

    def forward(self, packed, lengths=None, target_in=None, teacher_forcing: float = 1.0):
        if target_in is not None:
            return super().forward(packed, lengths, target_in, teacher_forcing)
        S = self.source_steps
        logits, _ = super().forward(packed[:, :S], None, packed[:, S:])
        return logits


def _seq2seq_model(options=None):
    from ...data.text import DATE_SOURCE_VOCAB, DATE_TARGET_VOCAB
    kwargs = dict(_S2S, source_vocab=len(DATE_SOURCE_VOCAB), target_vocab=len(DATE_TARGET_VOCAB))
    model = _PackedSeq2Seq(_SOURCE_STEPS, **kwargs)
    return model, {"name": "Seq2Seq", "kwargs": kwargs}, (_SOURCE_STEPS + _TARGET_STEPS,)


def _date_arrays(n, split, seed):
    from ...data import make_dates
    from ...data.text import DATE_SOURCE_VOCAB, DATE_TARGET_VOCAB
    sources, targets = make_dates(n, split=split, seed=seed)
    src, _ = DATE_SOURCE_VOCAB.encode(sources, length=_SOURCE_STEPS)
    tgt, _ = DATE_TARGET_VOCAB.encode(targets, sos=True, eos=True)
    return np.concatenate([src, tgt[:, :-1]], 1), tgt[:, 1:], sources


def _plot_attention(sources):
    def plot(model, out_dir, device):
        from ..plots import pyplot, save_figure
        plt = pyplot()
        from ... import tensor
        from ...backend import asnumpy
        from ...data.text import DATE_SOURCE_VOCAB, DATE_TARGET_VOCAB
        ids, _ = DATE_SOURCE_VOCAB.encode(sources, length=_SOURCE_STEPS)
        out, weights = model.greedy_decode(tensor(ids, device=device), max_length=_TARGET_STEPS)
        out, weights = asnumpy(out), asnumpy(weights)
        fig, axes = plt.subplots(len(sources), 1, figsize=(8, 2.6 * len(sources)), squeeze=False)
        for ax, text, row, w in zip(axes[:, 0], sources, out, weights):
            steps = int(np.argmax(row == 2)) + 1 if (row == 2).any() else len(row)
            ax.imshow(w[:steps, :len(text)], cmap="viridis", aspect="auto", vmin=0, vmax=1)
            ax.set_xticks(range(len(text)), list(text))
            labels = list(DATE_TARGET_VOCAB.decode(row[:steps])) + ["<eos>"]
            ax.set_yticks(range(steps), labels[:steps])
            ax.set_title(f"{text!r} -> {DATE_TARGET_VOCAB.decode(row)}", fontsize=9)
        return [save_figure(fig, os.path.join(out_dir, "attention.png"))]
    return plot


@register("seq2seq", about="LSTM encoder-decoder with additive attention: dates in 16 human formats "
          "to ISO YYYY-MM-DD (exact match ~98%)", epochs=5, batch_size=64, lr=3e-3,
          model=_seq2seq_model, input_dtype="int64")
def seq2seq(options) -> Recipe:
    from ...data import DataLoader, TensorDataset
    seed = options["seed"]
    model, config, shape = _seq2seq_model()
    x, y, _ = _date_arrays(12800, "train", seed)
    vx, vy, _ = _date_arrays(500, "train", seed + 1_000_001)
    tx, ty, sources = _date_arrays(2000, "test", seed + 2_000_003)
    return Recipe("seq2seq", "translation", model,
                  DataLoader(TensorDataset(x, y), batch_size=options["batch_size"], shuffle=True),
                  DataLoader(TensorDataset(vx, vy), batch_size=500), DataLoader(TensorDataset(tx, ty), batch_size=500),
                  model_config=config, plot=_plot_attention(sources[:4]), input_shape=shape)


# ---------------------------------------------------------------------------- charlm
_LM = {"embedding_dim": 16, "hidden_size": 128}
_PROMPT_STEPS = 7            # <sos> and "ab+cd="
_LINE_STEPS = 11             # <sos>, "ab+cd=" and up to 3 digits, <eos>


class _PromptedCharLM(CharLM):
    """A :class:`CharLM` that knows its prompts' length (``prompt_steps``) for the metrics."""

    def __init__(self, prompt_steps: int, **kwargs):
        super().__init__(**kwargs)
        self.prompt_steps = prompt_steps


def _charlm_model(options=None):
    from ...data.text import ADDITION_VOCAB
    kwargs = dict(_LM, vocab_size=len(ADDITION_VOCAB))
    return _PromptedCharLM(_PROMPT_STEPS, **kwargs), {"name": "CharLM", "kwargs": kwargs}, (_LINE_STEPS - 1,)


def _line_arrays(lines):
    from ...data.text import ADDITION_VOCAB
    ids, _ = ADDITION_VOCAB.encode(lines, length=_LINE_STEPS, sos=True, eos=True)
    return ids[:, :-1], ids[:, 1:]


def _write_samples(model, out_dir, device):
    from ... import tensor
    from ...backend import asnumpy
    from ...data.text import ADDITION_VOCAB as V
    lines = []
    for temperature in (0.5, 1.0, 1.5):
        start = tensor(np.full((8, 1), V.SOS, dtype=np.int64), device=device)
        out = asnumpy(model.complete(start, max_new=_LINE_STEPS - 1, temperature=temperature))
        lines.append(f"temperature {temperature}: " + "  ".join(V.decode(r) for r in out))
    path = os.path.join(out_dir, "samples.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return [path]


@register("charlm", about="character-level LSTM language model on lines a+b=c of two-digit numbers "
          "(bits per character, completion of unseen a+b=)", epochs=30, batch_size=32, lr=1e-2,
          model=_charlm_model, input_dtype="int64")
def charlm(options) -> Recipe:
    from ...data import DataLoader, TensorDataset, make_additions
    seed = options["seed"]
    model, config, shape = _charlm_model()
    lines = make_additions(seed=seed)
    n_val = len(lines) // 10
    x, y = _line_arrays(lines[n_val:])
    vx, vy = _line_arrays(lines[:n_val])
    tx, ty = _line_arrays(make_additions(split="test"))
    return Recipe("charlm", "language_model", model,
                  DataLoader(TensorDataset(x, y), batch_size=options["batch_size"], shuffle=True),
                  DataLoader(TensorDataset(vx, vy), batch_size=1000), DataLoader(TensorDataset(tx, ty), batch_size=1000),
                  model_config=config, plot=_write_samples, input_shape=shape)


# ---------------------------------------------------------------------------- convlstm
_VIDEO = {"channels": 1, "hidden_channels": [16], "kernel_size": 3, "frames_out": 10, "patch_size": 2}
_FRAMES_IN = 10


def _convlstm_model(options=None):
    model, config = build_model("ConvLSTMForecaster", **_VIDEO)
    return model, config, (_FRAMES_IN, 1, 32, 32)


def _video_arrays(n, split, seed):
    from ...data import make_moving_digits
    video = make_moving_digits(n, frames=_FRAMES_IN + _VIDEO["frames_out"], size=32, split=split, seed=seed)
    return video[:, :_FRAMES_IN], video[:, 1:]


def _plot_frames(x, y):
    def plot(model, out_dir, device):
        from ..plots import pyplot, save_figure
        plt = pyplot()
        from ... import no_grad, tensor
        from ...backend import asnumpy
        model.eval()
        with no_grad():
            pred = asnumpy(model.forecast(tensor(x, device=device)).data)
        model.train()
        truth = y[:, _FRAMES_IN - 1:]
        T = truth.shape[1]
        fig, axes = plt.subplots(2 * len(x), T, figsize=(T * 1.1, 2.4 * len(x)), squeeze=False)
        for i in range(len(x)):
            for t in range(T):
                for row, frames, name in ((2 * i, truth, "truth"), (2 * i + 1, pred, "predicted")):
                    ax = axes[row, t]
                    ax.imshow(frames[i, t, 0], cmap="gray", vmin=0, vmax=1)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if t == 0:
                        ax.set_ylabel(name, fontsize=8)
                    if row == 0:
                        ax.set_title(f"t+{t + 1}", fontsize=8)
        return [save_figure(fig, os.path.join(out_dir, "frames.png"))]
    return plot


@register("convlstm", about="ConvLSTM next-frame model on two digits bouncing in 32x32: 10 frames in, "
          "10 out (test MSE beside copying the last frame)", epochs=10, batch_size=16, lr=1e-2,
          model=_convlstm_model)
def convlstm(options) -> Recipe:
    from ...data import DataLoader, TensorDataset
    seed = options["seed"]
    model, config, shape = _convlstm_model()
    x, y = _video_arrays(1024, "train", seed)
    vx, vy = _video_arrays(128, "train", seed + 1_000_001)
    tx, ty = _video_arrays(256, "test", seed + 2_000_003)
    return Recipe("convlstm", "video", model,
                  DataLoader(TensorDataset(x, y), batch_size=options["batch_size"], shuffle=True),
                  DataLoader(TensorDataset(vx, vy), batch_size=64), DataLoader(TensorDataset(tx, ty), batch_size=64),
                  model_config=config, plot=_plot_frames(tx[:2], ty[:2]), input_shape=shape)
