"""Sequence to sequence with attention: an LSTM encoder, an LSTM decoder, and three scores.

Shapes: source ids ``(B, S)`` with lengths ``(B,)``; target ids ``(B, T)``; ``H`` is
``hidden_size`` (the decoder's state and the width of every encoder output ``e_s``).

Encoder: ``e = LSTM(Embedding(x))``, ``(B, S, H)``; bidirectional by default, with ``H/2``
units per direction so that ``e_s = [forward_s ; backward_s]`` has width ``H`` and the
decoder starts from ``h_0 = [h_fwd ; h_bwd]``, ``c_0 = [c_fwd ; c_bwd]`` (the final states
of the two directions).

Attention scores between a query ``q`` ``(B, H)`` and each ``e_s`` (:class:`Attention`)::

    dot      (Luong)      score_s = q . e_s
    general  (Luong)      score_s = q . (W_a e_s)
    additive (Bahdanau)   score_s = v . tanh(W_k e_s + W_q q + b)

    a = softmax(score) over the source positions (padding masked out),  context = sum_s a_s e_s

``W_a e_s`` and ``W_k e_s`` do not depend on the decoder step, so they are computed once
per source batch, as one GEMM over all ``B * S`` positions.

Decoder step (``y`` is the previous output token; ``h~`` the attentional state)::

    Luong (dot, general):  h, c = LSTMCell([emb(y) ; h~_prev], (h, c))     "input feeding"
                           context, a = attend(h)
    Bahdanau (additive):   context, a = attend(h_prev)
                           h, c = LSTMCell([emb(y) ; context], (h, c))
    both:                  h~ = tanh(W_c [context ; h]),   logits = W_out h~

Training is teacher forcing: the decoder reads the true previous token; with
``teacher_forcing < 1`` each step reads, with that probability, the truth, else its own
previous argmax (one draw per step for the whole batch, from tinynet's generator).
:meth:`Seq2Seq.greedy_decode` and :meth:`Seq2Seq.beam_search` decode without targets.
Token ids follow :class:`tinynet.data.text.CharVocab`: 0 ``<pad>``, 1 ``<sos>``, 2 ``<eos>``.
"""
from __future__ import annotations

from .. import functional as F
from ..autograd import no_grad
from ..backend import asnumpy, numpy as np
from ..nn.linear import Embedding, Linear
from ..nn.module import Module
from ..nn.rnn import LSTM, LSTMCell
from ..random import generator
from ..tensor import Tensor

__all__ = ["Attention", "Seq2Seq", "ATTENTION_METHODS"]

ATTENTION_METHODS = ("dot", "general", "additive")
_PAD, _SOS, _EOS = 0, 1, 2
_MASKED = -1e9          # added to the scores of padding positions: softmax gives them 0


def _ids(x, op, name, device=None):
    """``x`` as an integer Tensor; a host array or list goes to ``device`` (the model's)."""
    if not isinstance(x, Tensor):
        from ..creation import tensor
        x = tensor(np.asarray(x), device=device)
    if x.ndim != 2 or x.dtype.kind not in "iu":
        raise ValueError(f"{op}: expected {name} as integer ids of shape (batch, steps), got "
                         f"{x.dtype} of shape {tuple(x.shape)}")
    return x


class Attention(Module):
    """Scores, weights and context of one query against a sequence of keys.

    ``method`` is ``"dot"`` or ``"general"`` (Luong et al., 2015) or ``"additive"``
    (Bahdanau et al., 2015); see the module docstring for the equations. Call
    :meth:`prepare` once per key sequence, then :meth:`forward` per query.

    >>> import tinynet as tn
    >>> attn = Attention("general", 4)
    >>> keys = tn.randn(2, 5, 4)
    >>> context, weights = attn(tn.randn(2, 4), keys, attn.prepare(keys))
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 4), (2, 5))
    """

    def __init__(self, method: str, hidden_size: int, attention_size: int | None = None,
                 dtype=None, device=None):
        super().__init__()
        if method not in ATTENTION_METHODS:
            raise ValueError(f"Attention: method must be one of {', '.join(ATTENTION_METHODS)}, "
                             f"got {method!r}")
        self.method, self.hidden_size = method, hidden_size
        if method == "general":
            self.W_a = Linear(hidden_size, hidden_size, bias=False, dtype=dtype, device=device)
        elif method == "additive":
            size = attention_size or hidden_size
            self.W_k = Linear(hidden_size, size, bias=False, dtype=dtype, device=device)
            self.W_q = Linear(hidden_size, size, dtype=dtype, device=device)
            self.v = Linear(size, 1, bias=False, dtype=dtype, device=device)

    def extra_repr(self) -> str:
        return f"{self.method!r}, {self.hidden_size}"

    def prepare(self, keys: Tensor) -> Tensor:
        """The query-independent part for ``keys`` ``(B, S, H)``: ``e``, ``W_a e`` or ``W_k e``."""
        if self.method == "general":
            return self.W_a(keys)
        if self.method == "additive":
            return self.W_k(keys)
        return keys

    def forward(self, query: Tensor, keys: Tensor, prepared: Tensor | None = None,
                mask: Tensor | None = None):
        """``(context (B, H), weights (B, S))`` for ``query`` ``(B, H)``.

        ``mask`` is an additive ``(B, S)`` tensor: 0 at real positions, a large negative
        number at padding.
        """
        prepared = self.prepare(keys) if prepared is None else prepared
        if self.method == "additive":
            energy = (prepared + self.W_q(query).unsqueeze(1)).tanh()          # (B, S, A)
            scores = self.v(energy).squeeze(2)                                 # (B, S)
        else:
            scores = (prepared @ query.unsqueeze(2)).squeeze(2)                # (B, S)
        if mask is not None:
            scores = scores + mask
        weights = F.softmax(scores, dim=1)
        context = (weights.unsqueeze(1) @ keys).squeeze(1)                     # (B, H)
        return context, weights


class Seq2Seq(Module):
    """LSTM encoder-decoder with attention, for token-id sequences (see the module docstring).

    Parameters
    ----------
    source_vocab, target_vocab : int
        Vocabulary sizes (ids 0, 1, 2 are ``<pad>``, ``<sos>``, ``<eos>``).
    embedding_dim, hidden_size : int
        Embedding width and decoder width ``H`` (even when ``bidirectional``).
    attention : str
        ``"dot"``, ``"general"`` or ``"additive"``.
    bidirectional : bool
        Encoder reads both ways (``H/2`` units each).

    >>> import tinynet as tn
    >>> model = Seq2Seq(20, 15, embedding_dim=8, hidden_size=16)
    >>> src = tn.tensor([[5, 6, 7, 2], [8, 9, 2, 0]])
    >>> logits, weights = model(src, [4, 3], tn.tensor([[1, 3, 4], [1, 5, 6]]))
    >>> tuple(logits.shape), tuple(weights.shape)
    ((2, 3, 15), (2, 3, 4))
    """

    def __init__(self, source_vocab: int, target_vocab: int, embedding_dim: int = 32,
                 hidden_size: int = 64, attention: str = "general", bidirectional: bool = True,
                 dtype=None, device=None):
        super().__init__()
        if bidirectional and hidden_size % 2:
            raise ValueError(f"Seq2Seq: hidden_size must be even with a bidirectional encoder "
                             f"(H/2 units per direction), got {hidden_size}")
        if attention not in ATTENTION_METHODS:
            raise ValueError(f"Seq2Seq: attention must be one of {', '.join(ATTENTION_METHODS)}, "
                             f"got {attention!r}")
        self.source_vocab, self.target_vocab = source_vocab, target_vocab
        self.hidden_size, self.attention_method = hidden_size, attention
        self.bidirectional = bidirectional
        kw = {"dtype": dtype, "device": device}
        self.source_embedding = Embedding(source_vocab, embedding_dim, padding_idx=_PAD, **kw)
        self.encoder = LSTM(embedding_dim, hidden_size // 2 if bidirectional else hidden_size,
                            batch_first=True, bidirectional=bidirectional, **kw)
        self.target_embedding = Embedding(target_vocab, embedding_dim, padding_idx=_PAD, **kw)
        self.decoder = LSTMCell(embedding_dim + hidden_size, hidden_size, **kw)
        self.attention = Attention(attention, hidden_size, **kw)
        self.combine = Linear(2 * hidden_size, hidden_size, bias=False, **kw)
        self.out = Linear(hidden_size, target_vocab, **kw)

    def extra_repr(self) -> str:
        return f"attention={self.attention_method!r}, hidden_size={self.hidden_size}"

    # ------------------------------------------------------------------ pieces
    def encode(self, source, lengths=None):
        """Encoder outputs ``(B, S, H)``, the first decoder state and the padding mask."""
        source = _ids(source, "Seq2Seq", "source", self.source_embedding.weight.device)
        B, S = source.shape
        xp = source.xp
        if lengths is None:
            lengths = xp.maximum((source.data != _PAD).sum(axis=1), 1)   # an all-<pad> row reads one step
        lengths_host = asnumpy(lengths.data if isinstance(lengths, Tensor) else lengths
                               ).astype(np.int64).reshape(-1)
        if lengths_host.shape != (B,) or lengths_host.min() < 1 or lengths_host.max() > S:
            raise ValueError(f"Seq2Seq: lengths must be {B} values in 1..{S}, got {lengths_host.tolist()}")
        keys, (h_n, c_n) = self.encoder(self.source_embedding(source), lengths=lengths_host)
        if self.bidirectional:
            h0, c0 = F.cat([h_n[0], h_n[1]], 1), F.cat([c_n[0], c_n[1]], 1)
        else:
            h0, c0 = h_n[0], c_n[0]
        real = xp.arange(S)[None, :] < xp.asarray(lengths_host)[:, None]
        mask = Tensor(xp.where(real, 0.0, _MASKED).astype(keys.dtype))
        feed = Tensor(xp.zeros((B, self.hidden_size), dtype=keys.dtype))
        return keys, self.attention.prepare(keys), mask, (h0, c0, feed)

    def step(self, token, state, keys, prepared, mask):
        """One decoder step: ``(logits (B, V), new state, attention weights (B, S))``."""
        h, c, feed = state
        emb = self.target_embedding(token)
        if self.attention_method == "additive":
            context, weights = self.attention(h, keys, prepared, mask)
            h, c = self.decoder(F.cat([emb, context], 1), (h, c))
        else:
            h, c = self.decoder(F.cat([emb, feed], 1), (h, c))
            context, weights = self.attention(h, keys, prepared, mask)
        attentional = self.combine(F.cat([context, h], 1)).tanh()
        return self.out(attentional), (h, c, attentional), weights

    # ------------------------------------------------------------------ training
    def forward(self, source, lengths, target_in, teacher_forcing: float = 1.0):
        """Logits ``(B, T, V)`` and attention weights ``(B, T, S)`` for decoder inputs
        ``target_in`` ``(B, T)`` (``<sos>`` then the target shifted right)."""
        target_in = _ids(target_in, "Seq2Seq", "target_in", self.source_embedding.weight.device)
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"Seq2Seq: teacher_forcing must be in [0, 1], got {teacher_forcing}")
        keys, prepared, mask, state = self.encode(source, lengths)
        logits, weights = [], []
        token = target_in[:, 0]
        for t in range(target_in.shape[1]):
            out, state, w = self.step(token, state, keys, prepared, mask)
            logits.append(out)
            weights.append(w)
            if t + 1 < target_in.shape[1]:
                truth = teacher_forcing >= 1.0 or generator().random() < teacher_forcing
                token = target_in[:, t + 1] if truth else Tensor(out.data.argmax(axis=1))
        return F.stack(logits, 1), F.stack(weights, 1)

    # ------------------------------------------------------------------ decoding
    def greedy_decode(self, source, lengths=None, max_length: int = 20):
        """Argmax decoding: ``(ids (B, L) int64 array, weights (B, L, S) array)``; each row
        ends at its first ``<eos>`` (later positions are ``<pad>``)."""
        with no_grad():
            keys, prepared, mask, state = self.encode(source, lengths)
            xp = keys.xp
            B = keys.shape[0]
            token = Tensor(xp.full((B,), _SOS, dtype=xp.int64))
            done = xp.zeros(B, dtype=bool)
            ids, weights = [], []
            for _ in range(max_length):
                out, state, w = self.step(token, state, keys, prepared, mask)
                next_id = xp.where(done, _PAD, out.data.argmax(axis=1))
                ids.append(next_id)
                weights.append(w.data)
                done = done | (next_id == _EOS)
                token = Tensor(xp.where(next_id == _PAD, _EOS, next_id).astype(xp.int64))
                if bool(done.all()):
                    break
            return xp.stack(ids, 1), xp.stack(weights, 1)

    def beam_search(self, source, lengths=None, beam_size: int = 4, max_length: int = 20,
                    length_penalty: float = 0.0):
        """Beam-search decoding: ``(ids (B, L) int64 array, log-probabilities (B,))``.

        Keeps the ``beam_size`` most probable prefixes per source, all ``B * beam_size`` in
        one batch; a finished beam (it emitted ``<eos>``) stays put with its score. The
        winner maximises ``log p / length ** length_penalty``.
        """
        if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
            raise ValueError(f"Seq2Seq.beam_search: beam_size must be a positive int, got {beam_size!r}")
        with no_grad():
            keys, prepared, mask, state = self.encode(source, lengths)
            xp = keys.xp
            B, K, V = keys.shape[0], beam_size, self.target_vocab
            rows = xp.repeat(xp.arange(B), K)                      # beam b*K+k reads source b
            keys, prepared, mask = keys[rows], prepared[rows], mask[rows]
            state = tuple(s[rows] for s in state)
            scores = xp.full((B, K), -xp.inf)
            scores[:, 0] = 0.0                                     # one live beam to start
            finished = xp.zeros((B, K), dtype=bool)
            length = xp.zeros((B, K))
            history = xp.zeros((B, K, 0), dtype=xp.int64)
            token = Tensor(xp.full((B * K,), _SOS, dtype=xp.int64))
            for _ in range(max_length):
                out, state, _w = self.step(token, state, keys, prepared, mask)
                logp = F.log_softmax(out, dim=1).data.astype(xp.float64).reshape(B, K, V)
                # a finished beam continues only with <pad>, at no cost
                logp = xp.where(finished[:, :, None], -xp.inf, logp)
                logp[:, :, _PAD] = xp.where(finished, 0.0, -xp.inf)
                total = (scores[:, :, None] + logp).reshape(B, K * V)
                best = xp.argsort(-total, axis=1, kind="stable")[:, :K]
                parent, next_id = best // V, best % V
                scores = xp.take_along_axis(total, best, axis=1)
                finished = xp.take_along_axis(finished, parent, axis=1)
                length = xp.take_along_axis(length, parent, axis=1) + ~finished
                history = xp.concatenate([xp.take_along_axis(history, parent[:, :, None], axis=1),
                                          next_id[:, :, None]], axis=2)
                finished = finished | (next_id == _EOS)
                flat = (xp.arange(B)[:, None] * K + parent).reshape(-1)
                state = tuple(s[flat] for s in state)
                token = Tensor(xp.where(next_id == _PAD, _EOS, next_id).reshape(-1).astype(xp.int64))
                if bool(finished.all()):
                    break
            ranked = scores / xp.maximum(length, 1.0) ** length_penalty
            pick = ranked.argmax(axis=1)
            return history[xp.arange(B), pick], scores[xp.arange(B), pick]
