"""Registry entries: losses, each with every ``reduction``.

Targets that tinynet treats as constants (class indices, weights that PyTorch does not
differentiate) are marked ``no_grad`` in the sample so that both libraries see the same
leaves. Float targets of the pointwise losses require grad: PyTorch differentiates them.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst

_reductions = st.sampled_from(["none", "mean", "sum"])


def _tf(torch):
    return torch.nn.functional


def _mse_samples():
    return tst.shapes().flatmap(lambda s: st.tuples(tst.arrays(s), tst.arrays(s), _reductions)).map(
        lambda a: Sample((a[0], a[1]), {"reduction": a[2]}))


register(OpInfo("mse_loss", F.mse_loss, _mse_samples,
                lambda torch, x, t, reduction: _tf(torch).mse_loss(x, t, reduction=reduction)))


@st.composite
def _bce_samples(draw):
    s = draw(tst.shapes())
    x = draw(tst.arrays(s, 0.05, 0.95))
    # Inside [0, 1] by a margin: finite differences step the target by 1e-6, and a target
    # outside [0, 1] is refused (targets of exactly 0 and 1: tests/functional/test_bce_target.py).
    t = draw(tst.arrays(s, 0.01, 0.99))
    w = draw(st.one_of(st.none(), tst.arrays(s, 0.1, 2.0)))
    return Sample((x, t, w), {"reduction": draw(_reductions)}, no_grad=(2,))


register(OpInfo("binary_cross_entropy", F.binary_cross_entropy, lambda: _bce_samples(),
                lambda torch, x, t, w, reduction:
                _tf(torch).binary_cross_entropy(x, t, w, reduction=reduction), atol=1e-9))


@st.composite
def _bce_logits_samples(draw):
    s = draw(tst.shapes())
    x = draw(tst.arrays(s, -4.0, 4.0))
    t = draw(tst.arrays(s, 0.0, 1.0))
    w = draw(st.one_of(st.none(), tst.arrays(s, 0.1, 2.0)))
    pw_shape = draw(st.sampled_from([s, s[-1:]]))
    pw = draw(st.one_of(st.none(), tst.arrays(pw_shape, 0.1, 3.0)))
    return Sample((x, t, w), {"reduction": draw(_reductions), "pos_weight": pw}, no_grad=(2,))


def _bce_logits(x, t, w, reduction, pos_weight):
    import tinynet as tn
    if isinstance(pos_weight, np.ndarray):
        pos_weight = tn.tensor(pos_weight.astype(getattr(x, "dtype", np.float64)))
    return F.binary_cross_entropy_with_logits(x, t, w, reduction=reduction, pos_weight=pos_weight)


def _bce_logits_torch(torch, x, t, w, reduction, pos_weight):
    pw = None if pos_weight is None else torch.from_numpy(pos_weight)
    return _tf(torch).binary_cross_entropy_with_logits(x, t, w, reduction=reduction, pos_weight=pw)


register(OpInfo("binary_cross_entropy_with_logits", _bce_logits, lambda: _bce_logits_samples(),
                _bce_logits_torch, atol=1e-9))


# ----------------------------------------------------------------- class-index losses
@st.composite
def _class_problem(draw, spatial=True, allow_ignore=True):
    """Scores (N, C) or (N, C, H, W), integer targets (N,) / (N, H, W), optional weight and
    ignore_index (never ignoring every target, so 'mean' stays defined)."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    extra = draw(st.sampled_from([(), (2, 3), (3,)])) if spatial else ()
    x = draw(tst.arrays((n, c) + extra))
    t = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n * int(np.prod(extra)),
                               max_size=n * int(np.prod(extra)))), dtype=np.int64).reshape((n,) + extra)
    ignore_index = -100
    if allow_ignore and draw(st.booleans()):
        ignore_index = int(t.reshape(-1)[0])
        keep = draw(st.integers(0, t.size - 1))
        others = [k for k in range(c) if k != ignore_index]
        flat = t.reshape(-1)
        if (flat == ignore_index).all():
            flat[keep] = others[0]
    w = draw(st.one_of(st.none(), tst.arrays((c,), 0.2, 2.0)))
    return x, t, w, ignore_index


def _cross_entropy_samples():
    return st.tuples(_class_problem(), _reductions, st.sampled_from([0.0, 0.0, 0.1, 0.3])).map(
        lambda p: Sample((p[0][0], p[0][1], p[0][2]),
                         {"ignore_index": p[0][3], "reduction": p[1], "label_smoothing": p[2]},
                         no_grad=(2,)))


def _cross_entropy_index_samples():
    """The classifier case cross_entropy fuses into one op: (N, C) scores, class indices, no
    weight, no label smoothing, 'mean' or 'sum' (every draw takes the fused path)."""
    return st.tuples(_class_problem(spatial=False), st.sampled_from(["mean", "sum"])).map(
        lambda p: Sample((p[0][0], p[0][1]), {"ignore_index": p[0][3], "reduction": p[1]}))


register(OpInfo("cross_entropy_fused_index", F.cross_entropy, _cross_entropy_index_samples,
                lambda torch, x, t, ignore_index, reduction:
                _tf(torch).cross_entropy(x, t, ignore_index=ignore_index, reduction=reduction),
                atol=1e-9, max_examples=20))
register(OpInfo("cross_entropy", F.cross_entropy, _cross_entropy_samples,
                lambda torch, x, t, w, ignore_index, reduction, label_smoothing:
                _tf(torch).cross_entropy(x, t, w, ignore_index=ignore_index, reduction=reduction,
                                         label_smoothing=label_smoothing),
                atol=1e-9, max_examples=20))


@st.composite
def _probability_samples(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    extra = draw(st.sampled_from([(), (2,)]))
    x = draw(tst.arrays((n, c) + extra))
    raw = draw(tst.arrays((n, c) + extra, 0.05, 1.0))
    t = raw / raw.sum(axis=1, keepdims=True)
    w = draw(st.one_of(st.none(), tst.arrays((c,), 0.2, 2.0)))
    return Sample((x, t, w), {"reduction": draw(_reductions),
                              "label_smoothing": draw(st.sampled_from([0.0, 0.2]))}, no_grad=(2,))


register(OpInfo("cross_entropy_probabilities", F.cross_entropy, lambda: _probability_samples(),
                lambda torch, x, t, w, reduction, label_smoothing:
                _tf(torch).cross_entropy(x, t, w, reduction=reduction,
                                         label_smoothing=label_smoothing),
                atol=1e-9, max_examples=20))


def _nll_samples():
    return st.tuples(_class_problem(), _reductions).map(
        lambda p: Sample((p[0][0], p[0][1], p[0][2]),
                         {"ignore_index": p[0][3], "reduction": p[1]}, no_grad=(2,)))


register(OpInfo("nll_loss", F.nll_loss, _nll_samples,
                lambda torch, x, t, w, ignore_index, reduction:
                _tf(torch).nll_loss(x, t, w, ignore_index=ignore_index, reduction=reduction),
                atol=1e-9, max_examples=20))


# ----------------------------------------------------------------- regression and KL losses
def _separated_pair(shape):
    """input x and target x - d with |d| = k·0.1 + 0.05: never 0 and never equal to the
    drawn beta/delta (multiples of 0.5), so no finite difference straddles a kink."""
    from hypothesis.extra import numpy as hnp
    steps = hnp.arrays(np.int64, shape, elements=st.integers(-25, 24))
    return st.tuples(tst.arrays(shape), steps).map(lambda xs: (xs[0], xs[0] - (xs[1] * 0.1 + 0.05)))


def _pair_samples(**extra):
    def build():
        return tst.shapes().flatmap(lambda s: st.tuples(
            _separated_pair(s), _reductions, st.fixed_dictionaries(extra))).map(
            lambda p: Sample(p[0], {"reduction": p[1], **p[2]}))
    return build


register(OpInfo("l1_loss", F.l1_loss, _pair_samples(),
                lambda torch, x, t, reduction: _tf(torch).l1_loss(x, t, reduction=reduction)))
register(OpInfo("smooth_l1_loss", F.smooth_l1_loss,
                _pair_samples(beta=st.sampled_from([0.0, 0.5, 1.0, 2.0])),
                lambda torch, x, t, reduction, beta:
                _tf(torch).smooth_l1_loss(x, t, reduction=reduction, beta=beta)))
register(OpInfo("huber_loss", F.huber_loss, _pair_samples(delta=st.sampled_from([0.5, 1.0, 2.0])),
                lambda torch, x, t, reduction, delta:
                _tf(torch).huber_loss(x, t, reduction=reduction, delta=delta)))


@st.composite
def _kl_samples(draw):
    s = draw(tst.shapes())
    log_target = draw(st.booleans())
    x = draw(tst.arrays(s, -4.0, 0.0))                                  # log-probabilities
    t = draw(tst.arrays(s, -3.0, 0.0) if log_target else tst.arrays(s, 0.05, 1.0))
    reduction = draw(st.sampled_from(["none", "mean", "sum", "batchmean"]))
    return Sample((x, t), {"reduction": reduction, "log_target": log_target})


register(OpInfo("kl_div", F.kl_div, lambda: _kl_samples(),
                lambda torch, x, t, reduction, log_target:
                _tf(torch).kl_div(x, t, reduction=reduction, log_target=log_target), atol=1e-9))
