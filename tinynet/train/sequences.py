"""Losses and metrics of the sequence tasks: translation, language modelling, video.

==================  ================================  ==========================================
task                loss                              metrics
==================  ================================  ==========================================
``translation``     cross-entropy per target token    loss, exact-match accuracy (greedy decode)
``language_model``  cross-entropy per next character  loss, bits per character, completion accuracy
``video``           MSE over every predicted frame    mse of the forecast, copy-last baseline
==================  ================================  ==========================================

The batches these expect (built by :mod:`tinynet.train.recipes.sequences`):

* translation: ``x`` ``(B, S + T)`` packs the source ids and the decoder input (``<sos>``
  then the target), ``y`` ``(B, T)`` the target ids ending in ``<eos>``; the model's
  ``source_steps`` says where ``x`` splits.
* language_model: ``x`` ids ``(B, L)``, ``y`` the same shifted by one; a completion
  prompt is ``x[:, :prompt_steps]`` and its answer the characters of ``y`` that follow.
* video: ``x`` the given frames ``(B, T_in, C, H, W)``, ``y`` frames ``1 .. T_in + T_out - 1``.
"""
from __future__ import annotations

import math

from .. import backend
from .. import functional as F
from .metrics import batch_sums

__all__ = ["translation_loss", "translation_metrics", "language_model_loss", "language_model_metrics",
           "video_loss", "video_metrics"]

_PAD, _EOS = 0, 2


def _token_loss(logits, y, reduction="mean"):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=_PAD,
                           reduction=reduction)


def translation_loss(model, out, y):
    """Mean cross-entropy of the logits ``(B, T, V)`` over the non-padding target tokens."""
    return _token_loss(out, y)


def _until_eos(ids):
    """Rows of ids with everything after the first ``<eos>`` set to ``<pad>``."""
    xp = backend.get_array_module(ids)
    seen = xp.cumsum(ids == _EOS, axis=1)
    after = (seen - (ids == _EOS)) > 0
    return xp.where(after, _PAD, ids)


def translation_metrics(model, loader, device=None) -> dict:
    """Per-token loss and the share of sources whose greedy translation is exactly right."""
    def step(x, y):
        S = model.source_steps
        logits = model(x)
        xp = backend.get_array_module(y.data)
        ids, _ = model.greedy_decode(x[:, :S], max_length=y.shape[1])
        T = y.shape[1]
        got = xp.full((ids.shape[0], T), _PAD, dtype=ids.dtype)
        got[:, :min(T, ids.shape[1])] = ids[:, :T]
        exact = (_until_eos(got) == _until_eos(y.data)).all(axis=1)
        return {"loss": _token_loss(logits, y, "sum").item(), "tokens": int((y.data != _PAD).sum()),
                "exact": int(exact.sum()), "n": y.shape[0]}
    t = batch_sums(model, loader, device, step)
    return {"loss": t["loss"] / t["tokens"], "exact_match": t["exact"] / t["n"]}


def language_model_loss(model, out, y):
    """Mean next-character cross-entropy (padding ignored); ``out`` is ``(logits, state)``."""
    return _token_loss(out[0], y)


def language_model_metrics(model, loader, device=None) -> dict:
    """Loss (nats), bits per character, and the share of prompts completed exactly right."""
    P = model.prompt_steps

    def step(x, y):
        logits, _ = model(x)
        xp = backend.get_array_module(y.data)
        answer = _until_eos(y.data[:, P - 1:])
        got = model.complete(x[:, :P], max_new=answer.shape[1])
        exact = (_until_eos(xp.asarray(got)) == answer).all(axis=1)
        return {"loss": _token_loss(logits, y, "sum").item(), "chars": int((y.data != _PAD).sum()),
                "exact": int(exact.sum()), "n": y.shape[0]}
    t = batch_sums(model, loader, device, step)
    loss = t["loss"] / t["chars"]
    return {"loss": loss, "bits_per_char": loss / math.log(2.0), "completion_accuracy": t["exact"] / t["n"]}


def video_loss(model, out, y):
    """Mean squared error over every predicted frame."""
    return F.mse_loss(out, y)


def video_metrics(model, loader, device=None) -> dict:
    """``loss`` (all predictions), ``mse`` of the forecast alone, and ``copy_last_mse``: the
    error of repeating the last given frame, the baseline a forecaster must beat."""
    def step(x, y):
        out = model(x)
        future = slice(x.shape[1] - 1, None)
        diff = out.data - y.data
        copy = y.data[:, future] - x.data[:, -1:]
        return {"loss": float((diff ** 2).sum()), "n": diff.size,
                "mse": float((diff[:, future] ** 2).sum()), "copy": float((copy ** 2).sum()),
                "n_future": copy.size}
    t = batch_sums(model, loader, device, step)
    return {"loss": t["loss"] / t["n"], "mse": t["mse"] / t["n_future"],
            "copy_last_mse": t["copy"] / t["n_future"]}
