"""Registry entries: losses, each with every ``reduction``, the deprecated
``size_average``/``reduce`` pair (sometimes given: it then overrides ``reduction``), and
the weights and the target shapes each loss accepts (a target narrower or wider than the
input where PyTorch broadcasts it).

Targets that tinynet treats as constants (class indices, weights that PyTorch does not
differentiate) are marked ``no_grad`` in the sample so that both libraries see the same
leaves. Float targets of the pointwise losses require grad: PyTorch differentiates them,
and the per-element ``weight`` of mse/l1/huber too. The warnings that a broadcast target
or a legacy argument raises (tested in tests/functional/test_loss_torch_arguments.py) are
silenced here, in both libraries.
"""
from __future__ import annotations

import warnings

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst

_reductions = st.sampled_from(["none", "mean", "sum"])
# (size_average, reduce): mostly absent; each given pair stands for a row of the legacy rule
_legacy = st.sampled_from([(None, None)] * 4 + [(False, None), (None, False), (True, True), (0, 1)])


def _tf(torch):
    return torch.nn.functional


def _quiet(fn):
    """``fn`` with the broadcast-target and deprecation warnings silenced."""
    def call(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    return call


@st.composite
def _narrowed(draw, shape):
    """A shape that broadcasts to ``shape``: leading dims dropped, others set to 1."""
    drop = draw(st.integers(0, len(shape)))
    ones = draw(st.lists(st.booleans(), min_size=len(shape) - drop, max_size=len(shape) - drop))
    return tuple(1 if one else n for one, n in zip(ones, shape[drop:]))


@st.composite
def _legacy_kwargs(draw):
    size_average, reduce = draw(_legacy)
    return {"reduction": draw(_reductions), "size_average": size_average, "reduce": reduce}


@st.composite
def _regression_pair(draw):
    """input x and target t with |x - t| = k·0.1 + 0.05 elementwise after broadcasting: never
    0 and never equal to the drawn beta/delta (multiples of 0.5), so no finite difference
    straddles a kink. One of the two may be narrower than the other (PyTorch broadcasts it,
    with a warning): the wide one is built from the narrow one broadcast."""
    s = draw(tst.shapes())
    narrow_side = draw(st.sampled_from([None, None, "input", "target"]))
    narrow = draw(tst.arrays(draw(_narrowed(s)) if narrow_side else s))
    steps = draw(hnp.arrays(np.int64, s, elements=st.integers(-25, 24)))
    wide = np.broadcast_to(narrow, s) - (steps * 0.1 + 0.05)
    return (wide, narrow) if narrow_side == "target" else (narrow, wide)


@st.composite
def _weighted_regression_samples(draw, legacy=True, **extra):
    """(input, target, weight): weight None or shaped like input (PyTorch's rule), > 0."""
    x, t = draw(_regression_pair())
    w = draw(st.one_of(st.none(), tst.arrays(x.shape, 0.1, 2.0)))
    kwargs = draw(_legacy_kwargs()) if legacy else {"reduction": draw(_reductions)}
    kwargs.update({k: draw(v) for k, v in extra.items()})
    return Sample((x, t, w), kwargs)


def _weighted(fn):
    return _quiet(lambda x, t, w, **kw: fn(x, t, weight=w, **kw))


def _torch_weighted(name):
    return lambda torch, x, t, w, **kw: _quiet(getattr(_tf(torch), name))(x, t, weight=w, **kw)


register(OpInfo("mse_loss", _weighted(F.mse_loss), lambda: _weighted_regression_samples(),
                _torch_weighted("mse_loss")))


@st.composite
def _bce_samples(draw):
    s = draw(tst.shapes())
    x = draw(tst.arrays(s, 0.05, 0.95))
    # Inside [0, 1] by a margin: finite differences step the target by 1e-6, and a target
    # outside [0, 1] is refused (targets of exactly 0 and 1: tests/functional/test_bce_target.py).
    t = draw(tst.arrays(s, 0.01, 0.99))
    w = draw(st.one_of(st.none(), tst.arrays(draw(_narrowed(s)), 0.1, 2.0)))
    return Sample((x, t, w), draw(_legacy_kwargs()), no_grad=(2,))


register(OpInfo("binary_cross_entropy", _quiet(F.binary_cross_entropy), lambda: _bce_samples(),
                lambda torch, x, t, w, **kw:
                _quiet(_tf(torch).binary_cross_entropy)(x, t, w, **kw), atol=1e-9))


@st.composite
def _bce_logits_samples(draw):
    s = draw(tst.shapes())
    x = draw(tst.arrays(s, -4.0, 4.0))
    t = draw(tst.arrays(s, 0.0, 1.0))
    w = draw(st.one_of(st.none(), tst.arrays(draw(_narrowed(s)), 0.1, 2.0)))
    pw = draw(st.one_of(st.none(), tst.arrays(draw(_narrowed(s)), 0.1, 3.0)))
    return Sample((x, t, w), {**draw(_legacy_kwargs()), "pos_weight": pw}, no_grad=(2,))


@_quiet
def _bce_logits(x, t, w, pos_weight, **kw):
    import tinynet as tn
    if isinstance(pos_weight, np.ndarray):
        pos_weight = tn.tensor(pos_weight.astype(getattr(x, "dtype", np.float64)))
    return F.binary_cross_entropy_with_logits(x, t, w, pos_weight=pos_weight, **kw)


def _bce_logits_torch(torch, x, t, w, pos_weight, **kw):
    pw = None if pos_weight is None else torch.from_numpy(pos_weight)
    return _quiet(_tf(torch).binary_cross_entropy_with_logits)(x, t, w, pos_weight=pw, **kw)


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
    return st.tuples(_class_problem(), _legacy_kwargs(), st.sampled_from([0.0, 0.0, 0.1, 0.3])).map(
        lambda p: Sample((p[0][0], p[0][1], p[0][2]),
                         {"ignore_index": p[0][3], **p[1], "label_smoothing": p[2]},
                         no_grad=(2,)))


def _cross_entropy_index_samples():
    """The classifier case cross_entropy fuses into one op: (N, C) scores, class indices, no
    weight, no label smoothing, 'mean' or 'sum', also spelled size_average=True/False
    (every draw takes the fused path)."""
    return st.tuples(_class_problem(spatial=False), st.sampled_from(["mean", "sum"]),
                     st.sampled_from([None, None, True, False])).map(
        lambda p: Sample((p[0][0], p[0][1]), {"ignore_index": p[0][3], "reduction": p[1],
                                              "size_average": p[2]}))


register(OpInfo("cross_entropy_fused_index", _quiet(F.cross_entropy), _cross_entropy_index_samples,
                lambda torch, x, t, **kw: _quiet(_tf(torch).cross_entropy)(x, t, **kw),
                atol=1e-9, max_examples=20))
register(OpInfo("cross_entropy", _quiet(F.cross_entropy), _cross_entropy_samples,
                lambda torch, x, t, w, **kw: _quiet(_tf(torch).cross_entropy)(x, t, w, **kw),
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
    return st.tuples(_class_problem(), _legacy_kwargs()).map(
        lambda p: Sample((p[0][0], p[0][1], p[0][2]),
                         {"ignore_index": p[0][3], **p[1]}, no_grad=(2,)))


register(OpInfo("nll_loss", _quiet(F.nll_loss), _nll_samples,
                lambda torch, x, t, w, **kw: _quiet(_tf(torch).nll_loss)(x, t, w, **kw),
                atol=1e-9, max_examples=20))


# ----------------------------------------------------------------- regression and KL losses
def _regression_samples(**extra):
    @st.composite
    def build(draw):
        x, t = draw(_regression_pair())
        kwargs = draw(_legacy_kwargs())
        kwargs.update({k: draw(v) for k, v in extra.items()})
        return Sample((x, t), kwargs)
    return build


register(OpInfo("l1_loss", _weighted(F.l1_loss), lambda: _weighted_regression_samples(),
                _torch_weighted("l1_loss")))
register(OpInfo("smooth_l1_loss", _quiet(F.smooth_l1_loss),
                _regression_samples(beta=st.sampled_from([0.0, 0.5, 1.0, 2.0])),
                lambda torch, x, t, **kw: _quiet(_tf(torch).smooth_l1_loss)(x, t, **kw)))
register(OpInfo("huber_loss", _weighted(F.huber_loss),
                lambda: _weighted_regression_samples(legacy=False,
                                                     delta=st.sampled_from([0.5, 1.0, 2.0])),
                _torch_weighted("huber_loss")))


@st.composite
def _kl_samples(draw):
    """Log-probability input and a target (log_target: in log space), one of them maybe
    narrower than the other (PyTorch broadcasts it silently); every reduction, and the
    legacy pair (which with 'batchmean' still divides by the batch, as PyTorch)."""
    s = draw(tst.shapes())
    log_target = draw(st.booleans())
    narrow = draw(_narrowed(s))
    xs, ts = draw(st.sampled_from([(s, s), (s, s), (narrow, s), (s, narrow)]))
    x = draw(tst.arrays(xs, -4.0, 0.0))                                  # log-probabilities
    t = draw(tst.arrays(ts, -3.0, 0.0) if log_target else tst.arrays(ts, 0.05, 1.0))
    size_average, reduce = draw(_legacy)
    reduction = draw(st.sampled_from(["none", "mean", "sum", "batchmean"]))
    return Sample((x, t), {"size_average": size_average, "reduce": reduce,
                           "reduction": reduction, "log_target": log_target})


register(OpInfo("kl_div", _quiet(F.kl_div), lambda: _kl_samples(),
                lambda torch, x, t, **kw: _quiet(_tf(torch).kl_div)(x, t, **kw), atol=1e-9))
