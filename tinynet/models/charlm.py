"""A character-level language model: embedding -> LSTM -> linear logits over the next character.

For ids ``x_1 .. x_T`` ``(B, T)`` the model gives logits ``(B, T, V)`` where row ``t`` scores
``x_{t+1}``; training minimises the cross-entropy of each next character (padding
ignored), and the same number divided by ``ln 2`` is the *bits per character*.

Generation feeds one character at a time, carrying the LSTM state ``(h, c)``::

    p(next | prefix) = softmax(logits / temperature)

``temperature -> 0`` is greedy (argmax), 1 samples the model's own distribution, larger
values flatten it. :meth:`CharLM.complete` continues a batch of prompts until a stop
character (or ``<eos>``); ids follow :class:`tinynet.data.text.CharVocab`.
"""
from __future__ import annotations

import math

from .. import functional as F
from ..autograd import no_grad
from ..backend import asnumpy, numpy as np, to_device
from ..nn.linear import Embedding, Linear
from ..nn.module import Module
from ..nn.rnn import LSTM
from ..random import generator
from ..tensor import Tensor

__all__ = ["CharLM"]

_PAD, _EOS = 0, 2


class CharLM(Module):
    """Embedding, ``num_layers`` LSTM layers and a linear head over ``vocab_size`` characters.

    >>> import tinynet as tn
    >>> lm = CharLM(10, embedding_dim=8, hidden_size=16)
    >>> logits, state = lm(tn.tensor([[3, 4, 5]]))
    >>> tuple(logits.shape), len(state)
    ((1, 3, 10), 2)
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 32, hidden_size: int = 128,
                 num_layers: int = 1, dropout: float = 0.0, dtype=None, device=None):
        super().__init__()
        kw = {"dtype": dtype, "device": device}
        self.vocab_size = vocab_size
        self.embedding = Embedding(vocab_size, embedding_dim, padding_idx=_PAD, **kw)
        self.lstm = LSTM(embedding_dim, hidden_size, num_layers=num_layers, batch_first=True,
                         dropout=dropout, **kw)
        self.head = Linear(hidden_size, vocab_size, **kw)

    def forward(self, ids, state=None):
        """``(logits (B, T, V), (h, c))`` for ids ``(B, T)``, from ``state`` (zeros if None)."""
        if not isinstance(ids, Tensor) or ids.ndim != 2 or ids.dtype.kind not in "iu":
            got = (f"{ids.dtype} of shape {tuple(ids.shape)}" if isinstance(ids, Tensor)
                   else type(ids).__name__)
            raise ValueError(f"CharLM: expected integer ids of shape (batch, steps), got {got}")
        out, state = self.lstm(self.embedding(ids), state)
        return self.head(out), state

    def loss(self, ids) -> Tensor:
        """Mean next-character cross-entropy (nats) of ids ``(B, T)``; ``<pad>`` targets ignored."""
        logits, _ = self(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), ids[:, 1:].reshape(-1),
                               ignore_index=_PAD)

    def bits_per_character(self, ids) -> float:
        """:meth:`loss` in bits: ``cross-entropy / ln 2``."""
        with no_grad():
            return self.loss(ids).item() / math.log(2.0)

    def complete(self, prompts, max_new: int = 8, temperature: float = 0.0, stop: int | None = None):
        """Continues each prompt (ids ``(B, P)``, all of length ``P``) by up to ``max_new`` ids.

        Returns an int64 array ``(B, max_new)``; after a row's ``stop`` id (or ``<eos>``)
        the rest of the row is ``<pad>``. ``temperature=0`` is greedy; otherwise ids are
        sampled from ``softmax(logits / temperature)`` with tinynet's generator.
        """
        if not temperature >= 0.0:
            raise ValueError(f"CharLM.complete: temperature must be >= 0, got {temperature}")
        with no_grad():
            ids = prompts if isinstance(prompts, Tensor) else Tensor(to_device(
                np.asarray(prompts, dtype=np.int64), self.embedding.weight.device))
            logits, state = self(ids)
            xp = logits.xp
            B = ids.shape[0]
            done = xp.zeros(B, dtype=bool)
            out = []
            last = logits[:, -1]
            for _ in range(max_new):
                if temperature == 0.0:
                    pick = last.data.argmax(axis=1)
                else:
                    probs = asnumpy(F.softmax(last / temperature, dim=1).data).astype(np.float64)
                    u = generator().random((B, 1))
                    pick = (probs.cumsum(axis=1) < u).sum(axis=1).clip(0, self.vocab_size - 1)
                    pick = xp.asarray(pick)
                pick = xp.where(done, _PAD, pick)
                out.append(pick)
                done = done | (pick == _EOS)
                if stop is not None:
                    done = done | (pick == stop)
                if bool(done.all()):
                    break
                step_logits, state = self(Tensor(xp.where(done, _EOS, pick).astype(xp.int64)[:, None]),
                                          state)
                last = step_logits[:, -1]
            result = xp.stack(out, 1)
            if result.shape[1] < max_new:
                pad = xp.full((B, max_new - result.shape[1]), _PAD, dtype=result.dtype)
                result = xp.concatenate([result, pad], 1)
            return result
