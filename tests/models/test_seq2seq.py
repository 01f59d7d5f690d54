"""Seq2Seq with attention: PyTorch parity of the whole forward pass (each score), masking,
decoding (greedy, beam) against the teacher-forced probabilities, and a short fit."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import optim
from tinynet.backend import asnumpy
from tinynet.models import Attention, Seq2Seq
from tinynet.testing import assert_close

torch = pytest.importorskip("torch")


def _torch_seq2seq(model, src, lengths, tgt_in):
    """The same network written in PyTorch from the tinynet model's weights (float64)."""
    W = {k: torch.tensor(v.numpy() if hasattr(v, "numpy") else v, requires_grad=True)
         for k, v in model.state_dict().items()}
    H = model.hidden_size
    emb = W["source_embedding.weight"][torch.tensor(src)]
    enc = torch.nn.LSTM(emb.shape[2], H // 2, batch_first=True, bidirectional=True).double()
    enc.load_state_dict({k[len("encoder."):]: v for k, v in W.items() if k.startswith("encoder.")})
    packed = torch.nn.utils.rnn.pack_padded_sequence(emb, torch.tensor(lengths), batch_first=True,
                                                     enforce_sorted=False)
    out, (h_n, c_n) = enc(packed)
    keys, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
    h, c = torch.cat([h_n[0], h_n[1]], 1), torch.cat([c_n[0], c_n[1]], 1)
    pad = torch.arange(src.shape[1])[None, :] >= torch.tensor(lengths)[:, None]
    feed = torch.zeros_like(h)
    cell = torch.nn.LSTMCell(emb.shape[2] + H, H).double()
    cell.load_state_dict({k[len("decoder."):]: v for k, v in W.items() if k.startswith("decoder.")})
    method = model.attention_method

    def attend(q):
        if method == "dot":
            scores = torch.einsum("bsh,bh->bs", keys, q)
        elif method == "general":
            scores = torch.einsum("bsh,bh->bs", keys @ W["attention.W_a.weight"].T, q)
        else:
            e = torch.tanh(keys @ W["attention.W_k.weight"].T
                           + (q @ W["attention.W_q.weight"].T + W["attention.W_q.bias"])[:, None])
            scores = (e @ W["attention.v.weight"].T)[:, :, 0]
        a = torch.softmax(scores.masked_fill(pad, float("-inf")), 1)
        return torch.einsum("bs,bsh->bh", a, keys), a

    logits, weights = [], []
    for t in range(tgt_in.shape[1]):
        y = W["target_embedding.weight"][torch.tensor(tgt_in[:, t])]
        if method == "additive":
            ctx, a = attend(h)
            h, c = cell(torch.cat([y, ctx], 1), (h, c))
        else:
            h, c = cell(torch.cat([y, feed], 1), (h, c))
            ctx, a = attend(h)
        feed = torch.tanh(torch.cat([ctx, h], 1) @ W["combine.weight"].T)
        logits.append(feed @ W["out.weight"].T + W["out.bias"])
        weights.append(a)
    return torch.stack(logits, 1), torch.stack(weights, 1), W


def _batch(rng, B=3, S=6, T=4, V_src=12, V_tgt=9):
    lengths = np.array([S, S - 2, 3][:B])
    src = rng.integers(3, V_src, size=(B, S))
    src[np.arange(S)[None, :] >= lengths[:, None]] = 0
    tgt = np.concatenate([np.ones((B, 1), dtype=np.int64), rng.integers(3, V_tgt, size=(B, T - 1))], 1)
    return src, lengths, tgt


@pytest.mark.parametrize("method", ["dot", "general", "additive"])
def test_forward_and_gradients_match_torch(method):
    # Wrong here: a score, the mask, input feeding, the order of attend/step, or the encoder bridge.
    tn.manual_seed(1)
    model = Seq2Seq(12, 9, embedding_dim=5, hidden_size=6, attention=method, dtype=tn.float64)
    src, lengths, tgt = _batch(np.random.default_rng(0))
    logits, weights = model(tn.tensor(src), lengths, tn.tensor(tgt))
    t_logits, t_weights, W = _torch_seq2seq(model, src, lengths, tgt)
    assert_close(logits, t_logits.detach(), rtol=1e-9, atol=1e-11)
    assert_close(weights, t_weights.detach(), rtol=1e-9, atol=1e-11)
    g = np.random.default_rng(1).standard_normal(logits.shape)
    (logits * tn.tensor(g)).sum().backward()
    (t_logits * torch.tensor(g)).sum().backward()
    for name, p in model.named_parameters():
        if name.startswith(("encoder.", "decoder.")):
            continue          # those were copied into torch modules, not kept as leaves
        assert_close(p.grad, W[name].grad, rtol=1e-8, atol=1e-10, msg=name)


def test_padding_gets_no_attention_and_does_not_change_the_output():
    tn.manual_seed(0)
    model = Seq2Seq(12, 9, embedding_dim=4, hidden_size=6, attention="additive", dtype=tn.float64)
    src, lengths, tgt = _batch(np.random.default_rng(2))
    logits, weights = model(tn.tensor(src), lengths, tn.tensor(tgt))
    w = weights.detach().numpy()
    assert np.allclose(w.sum(2), 1.0)
    assert (w[1, :, lengths[1]:] < 1e-12).all() and (w[2, :, 3:] < 1e-12).all()
    garbage = src.copy()
    garbage[2, 3:] = 7                          # change only what lies beyond the lengths
    other, _ = model(tn.tensor(garbage), lengths, tn.tensor(tgt))
    assert_close(other, logits.detach(), rtol=1e-12, atol=1e-12)


def _sequence_log_prob(model, src, lengths, ids):
    """log p(ids | src) from the teacher-forced logits, up to and including <eos>."""
    rows = []
    for i in range(len(ids)):
        seq = list(ids[i])
        seq = seq[:seq.index(2) + 1] if 2 in seq else seq
        tgt_in = np.array([[1] + seq[:-1]])
        logits, _ = model(tn.tensor(src[i:i + 1]), lengths[i:i + 1], tn.tensor(tgt_in))
        logp = F.log_softmax(logits, dim=2).detach().numpy()[0]
        rows.append(sum(logp[t, s] for t, s in enumerate(seq)))
    return np.array(rows)


def test_greedy_and_beam_search_agree_with_teacher_forced_probabilities():
    tn.manual_seed(3)
    model = Seq2Seq(12, 9, embedding_dim=4, hidden_size=6, attention="general", dtype=tn.float64)
    model.out.bias.data[2] += 1.0          # make <eos> likely, so beams finish at different steps
    src, lengths, _ = _batch(np.random.default_rng(4))
    greedy, gw = model.greedy_decode(tn.tensor(src), lengths, max_length=6)
    greedy = asnumpy(greedy)           # decoding returns arrays on the model's device
    assert gw.shape == (3, greedy.shape[1], 6)
    # greedy: each token is the argmax of the teacher-forced logits given the tokens before it
    for i in range(3):
        seq = list(greedy[i])
        logits, _ = model(tn.tensor(src[i:i + 1]), lengths[i:i + 1], tn.tensor(np.array([[1] + seq[:-1]])))
        steps = seq.index(2) + 1 if 2 in seq else len(seq)
        assert logits.detach().numpy()[0, :steps].argmax(1).tolist() == seq[:steps]
    beam1, _ = model.beam_search(tn.tensor(src), lengths, beam_size=1, max_length=6)
    assert beam1[:, :greedy.shape[1]].tolist() == greedy.tolist()
    beam, score = model.beam_search(tn.tensor(src), lengths, beam_size=4, max_length=15)
    beam, score = asnumpy(beam), asnumpy(score)
    assert (beam == 2).any(1).all(), "every winner should have finished within 15 steps"
    assert np.allclose(score, _sequence_log_prob(model, src, lengths, beam), atol=1e-9)
    assert (score >= _sequence_log_prob(model, src, lengths, greedy) - 1e-9).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="Seq2Seq: attention must be one of dot, general, additive"):
        Seq2Seq(5, 5, attention="cosine")
    with pytest.raises(ValueError, match="hidden_size must be even"):
        Seq2Seq(5, 5, hidden_size=7)
    with pytest.raises(ValueError, match="Attention: method must be"):
        Attention("mlp", 4)
    model = Seq2Seq(5, 5, embedding_dim=3, hidden_size=4)
    with pytest.raises(ValueError, match="expected source as integer ids of shape"):
        model(tn.randn(2, 3), [3, 3], tn.tensor([[1], [1]]))
    with pytest.raises(ValueError, match="lengths must be 2 values in 1..3"):
        model(tn.tensor([[3, 4, 2], [3, 4, 2]]), [3, 4], tn.tensor([[1], [1]]))
    with pytest.raises(ValueError, match="teacher_forcing must be in"):
        model(tn.tensor([[3, 4, 2]]), [3], tn.tensor([[1]]), teacher_forcing=2.0)
    with pytest.raises(ValueError, match="beam_size must be a positive int"):
        model.beam_search(tn.tensor([[3, 4, 2]]), beam_size=0)


def test_learns_to_reverse_short_strings():
    # A broken attention or backward through the decoder loop leaves this far below 0.9.
    tn.manual_seed(0)
    rng = np.random.default_rng(0)
    src = rng.integers(3, 8, size=(512, 4))
    tgt = np.concatenate([np.ones((512, 1), dtype=np.int64), src[:, ::-1], np.full((512, 1), 2)], 1)
    model = Seq2Seq(8, 8, embedding_dim=8, hidden_size=24, attention="dot")
    opt = optim.Adam(model.parameters(), lr=1e-2)
    for step in range(160):
        idx = rng.integers(0, 512, size=32)
        logits, _ = model(tn.tensor(src[idx]), None, tn.tensor(tgt[idx, :-1]), teacher_forcing=0.8)
        loss = F.cross_entropy(logits.reshape(-1, 8), tn.tensor(tgt[idx, 1:].reshape(-1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = rng.integers(3, 8, size=(200, 4))
    out, _ = model.greedy_decode(tn.tensor(test), max_length=5)
    out = asnumpy(out)
    exact = (out[:, :4] == test[:, ::-1]).all(1) & (out[:, 4] == 2)
    assert exact.mean() >= 0.9, exact.mean()
