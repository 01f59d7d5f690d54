"""Loss functions, all with ``reduction`` in {'none', 'mean', 'sum'} (PyTorch semantics).

Most are compositions of differentiable ops, so their gradients of every order follow.
``binary_cross_entropy_with_logits`` is its own op so that its gradient is exactly
σ(x)·(1 + (p - 1)·t) - p·t even at x = 0, where a composition through |x| would pick a
one-sided subgradient.
"""
from __future__ import annotations

from ..autograd import Function, anchor, is_grad_enabled
from .. import backend
from ..tensor import Tensor
from ._operands import check_tensor, check_same_device, check_broadcastable
from .elementwise import log, clamp, exp, where, abs as _abs
from .activation import log_softmax, sigmoid, Softmax
from .reduction import sum as _sum
from .shape import reshape, permute, getitem

__all__ = ["mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "cross_entropy", "nll_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _weighted(loss: Tensor, weight, op: str) -> Tensor:
    """``loss * weight`` once ``weight`` is checked to be a Tensor that broadcasts to it."""
    check_tensor(weight, op, "weight")
    check_same_device(op, input=loss, weight=weight)
    check_broadcastable(tuple(weight.shape), tuple(loss.shape), op)
    if tuple(backend.numpy.broadcast_shapes(tuple(weight.shape), tuple(loss.shape))) != tuple(loss.shape):
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} does not broadcast to the "
                         f"loss shape {tuple(loss.shape)}")
    return loss * weight


def _check_pair(input, target, op):
    check_tensor(input, op, "input", floating=True)
    check_tensor(target, op, "target")
    check_same_device(op, input=input, target=target)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{op}: target shape {tuple(target.shape)} must equal input shape "
                         f"{tuple(input.shape)}")
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    return target


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    """(input - target)²."""
    _check_reduction(reduction, "mse_loss")
    target = _check_pair(input, target, "mse_loss")
    diff = input - target
    return _reduce(diff * diff, reduction)


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean") -> Tensor:
    """-w·(t·log x + (1 - t)·log(1 - x)), each log clamped at -100 (as PyTorch)."""
    _check_reduction(reduction, "binary_cross_entropy")
    target = _check_pair(input, target, "binary_cross_entropy")
    xp = input.xp
    if input.data.size and (xp.any(input.data < 0) or xp.any(input.data > 1)):
        raise ValueError("binary_cross_entropy: all elements of input must be probabilities in "
                         "[0, 1]; use binary_cross_entropy_with_logits for raw scores")
    if target.data.size and not xp.all((target.data >= 0) & (target.data <= 1)):  # NaN too
        raise ValueError("binary_cross_entropy: all elements of target must be probabilities in "
                         f"[0, 1], got values in [{float(target.data.min())}, {float(target.data.max())}]")
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = _weighted(loss, weight, "binary_cross_entropy")
    return _reduce(loss, reduction)


class BinaryCrossEntropy(Function):
    """ℓ = -(t·max(log x, -100) + (1 - t)·max(log(1 - x), -100)).

    Gradients as PyTorch defines them, finite even at x = 0 or 1:
    dℓ/dx = (x - t) / max(x·(1 - x), 1e-12);  dℓ/dt = log(1 - x) - log x (unclamped, as PyTorch).
    """

    def forward(self, x, t):
        xp = backend.get_array_module(x)
        with backend.numpy.errstate(divide="ignore"):   # CuPy has no errstate (and never warns)
            log_x = xp.maximum(xp.log(x), -100.0)
            log_1mx = xp.maximum(xp.log1p(-x), -100.0)
        return -(t * log_x + (1 - t) * log_1mx)

    def backward(self, g):
        x, t = self.inputs
        gx = gt = None
        if self.needs_input_grad[0]:
            gx = g * (x - t) / clamp(x * (1.0 - x), min=1e-12)
        if self.needs_input_grad[1]:
            gt = g * (log(1.0 - x) - log(x))
        return gx, gt


class LogSigmoid(Function):
    """log σ(x) = -(log(1 + e^{-|x|}) + max(-x, 0)), stable for any x;
    d/dx = 1 - σ(x) = σ(-x)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        return -(xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0))

    def backward(self, g):
        return g * sigmoid(-self.inputs[0])


class BCEWithLogits(Function):
    """ℓ = (1 - t)·x + (1 + (p - 1)·t)·(log(1 + e^{-|x|}) + max(-x, 0)), i.e. with
    softplus(-x) = -log σ(x):

        dℓ/dx = σ(x)·(1 + (p - 1)·t) - p·t
        dℓ/dt = -x + (p - 1)·softplus(-x)       (-x without ``pos_weight``, as PyTorch)
    """

    def forward(self, x, t, pos_weight=None):
        xp = backend.get_array_module(x)
        softplus_neg = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)
        if pos_weight is None:
            return (1 - t) * x + softplus_neg
        return (1 - t) * x + (1 + (pos_weight - 1) * t) * softplus_neg

    def backward(self, g):
        x, t, pw = self.inputs
        gx = gt = None
        if self.needs_input_grad[0]:
            s = sigmoid(x)
            gx = g * (s - t) if pw is None else g * (s * (1.0 + (pw - 1.0) * t) - pw * t)
        if self.needs_input_grad[1]:
            gt = -g * x if pw is None else -g * (x + (pw - 1.0) * LogSigmoid.apply(x))
        return gx, gt, None


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """BCE on raw scores, stable for large |x|; ``pos_weight`` scales positive targets.

    Differentiable in ``input`` and ``target`` (and ``weight``), as in PyTorch.
    """
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    target = _check_pair(input, target, "binary_cross_entropy_with_logits")
    if pos_weight is not None:
        check_tensor(pos_weight, "binary_cross_entropy_with_logits", "pos_weight")
        check_broadcastable(tuple(pos_weight.shape), tuple(input.shape), "binary_cross_entropy_with_logits")
        pos_weight = pos_weight.to(input.dtype)
    loss = BCEWithLogits.apply(input, target, pos_weight)
    if weight is not None:
        loss = _weighted(loss, weight, "binary_cross_entropy_with_logits")
    return _reduce(loss, reduction)


def _class_last(input: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N·d1·..., C); (N, C) and (C,) pass through as 2-D."""
    if input.ndim == 1:
        return reshape(input, 1, -1)
    if input.ndim == 2:
        return input
    dims = (0,) + tuple(range(2, input.ndim)) + (1,)
    return reshape(permute(input, dims), -1, input.shape[1])


def _check_class_target(input, target, op, ignore_index):
    check_tensor(input, op, "input", floating=True)
    check_tensor(target, op, "target")
    check_same_device(op, input=input, target=target)
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got a 0-d tensor")
    expected = (input.shape[0],) + input.shape[2:] if input.ndim > 1 else ()
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: class-index target must be an integer tensor, got {target.dtype} "
                        "(for class probabilities pass a float target shaped like input)")
    if tuple(target.shape) != expected:
        raise ValueError(f"{op}: target shape {tuple(target.shape)} does not match input shape "
                         f"{tuple(input.shape)}; expected target shape {expected}")
    C = input.shape[1] if input.ndim > 1 else input.shape[0]
    t = target.data
    bad = (t != ignore_index) & ((t < 0) | (t >= C))
    if t.size and bool(bad.any()):
        first = int(t[bad].reshape(-1)[0])
        raise ValueError(f"{op}: target contains class {first} but input has {C} classes "
                         f"(valid: 0..{C - 1}, or ignore_index={ignore_index})")
    return C


def _check_class_weight(weight, C, op):
    check_tensor(weight, op, "weight", ndim=1)
    if weight.shape[0] != C:
        raise ValueError(f"{op}: weight has {weight.shape[0]} entries but input has {C} classes")


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """-w[t]·input[t] for log-probabilities ``input`` (N, C, ...) and class indices ``target``.

    'mean' divides by Σ w[t] over non-ignored targets (PyTorch's weighted mean); with every
    target ignored that is 0/0, a NaN loss whose gradient is zero, as in PyTorch.
    """
    return _nll_loss(input, target, weight, ignore_index, reduction, "nll_loss")


def _nll_loss(input, target, weight, ignore_index, reduction, op):
    _check_reduction(reduction, op)
    C = _check_class_target(input, target, op, ignore_index)
    xp = input.xp
    logp = _class_last(anchor(input))   # PyTorch's nll backward reads the input
    t = target.data.reshape(-1)
    keep = t != ignore_index
    safe_t = xp.where(keep, t, 0)
    picked = getitem(logp, (xp.arange(logp.shape[0]), safe_t))
    if weight is not None:
        _check_class_weight(weight, C, op)
        w = Tensor(weight.data[safe_t].astype(input.dtype) * keep)
    else:
        w = Tensor(keep.astype(input.dtype))
    losses = -picked * w
    if reduction == "none":
        return reshape(losses, target.shape)
    total = _sum(losses)
    if reduction == "sum":
        return total
    return _weighted_mean(total, w.data.sum())


def _mean_denominator(xp, denom, dtype):
    """``(safe, nan)`` for a weighted mean over targets whose weight sum ``denom`` (an
    array) is 0 only when every target is ignored: ``safe`` is ``denom`` with that 0 made
    1 and ``nan`` is NaN then (0 otherwise), so ``total / safe + nan`` is PyTorch's NaN
    loss while its gradient stays zero, as PyTorch's (no target contributes; dividing the
    zero gradients by 0 would make them NaN and put NaN in every parameter)."""
    empty = denom == 0
    return xp.where(empty, 1, denom).astype(dtype), xp.where(empty, xp.nan, 0).astype(dtype)


def _weighted_mean(total, denom):
    """``total / denom`` as a graph op, with :func:`_mean_denominator`'s rule for 0."""
    safe, nan = _mean_denominator(total.xp, denom, total.dtype)
    return total / Tensor(safe) + Tensor(nan)


class CrossEntropyIndex(Function):
    """Fused ``log_softmax`` + ``nll_loss`` for scores x (N, C) and class indices t (N,)
    (no class weight, no label smoothing: the common classifier case, one op instead of ~10).

        loss = Σ_n k_n·(logsumexp(x_n) - x[n, t_n]) / D,     k_n = [t_n != ignore_index],
        D = Σ_n k_n ('mean') or 1 ('sum')
        dx = g · (softmax(x) - onehot(t)) ⊙ k / D

    The backward under ``create_graph`` is written with the ``Softmax`` op, so second
    derivatives exist; otherwise it reuses the softmax saved by the forward.
    """

    def forward(self, x, t, *, ignore_index, mean):
        xp = backend.get_array_module(x)
        keep = t != ignore_index
        safe = xp.where(keep, t, 0)
        rows = xp.arange(x.shape[0])
        shifted = x - x.max(axis=1, keepdims=True)
        e = xp.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        losses = (xp.log(total[:, 0]) - shifted[rows, safe]) * keep
        # arrays, not x.dtype.type(...): a CuPy scalar has no implicit host conversion.
        # Every target ignored ('mean'): a NaN loss, a zero gradient (_mean_denominator)
        denom = keep.sum().astype(x.dtype) if mean else xp.asarray(1, dtype=x.dtype)
        denom, nan = _mean_denominator(xp, denom, x.dtype)
        e /= total                                     # now softmax(x)
        self.softmax, self.rows, self.safe = e, rows, safe
        self.scale = (keep / denom).astype(x.dtype)[:, None]
        return xp.asarray(losses.sum() / denom + nan, dtype=x.dtype)

    def backward(self, g):
        x = self.inputs[0]
        xp = backend.get_array_module(self.softmax)
        if is_grad_enabled():
            onehot = xp.zeros_like(self.softmax)
            onehot[self.rows, self.safe] = 1
            p = Softmax.apply(x, dim=1)
            return (p - Tensor(onehot)) * Tensor(self.scale) * g, None
        gx = self.softmax.copy()
        gx[self.rows, self.safe] -= 1
        gx *= self.scale * g.data
        return Tensor(gx), None


def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over dim 1 then nll_loss; class-index or class-probability targets.

    Input (N, C), (N, C, d1, ...) or (C,); index target (N,), (N, d1, ...) or ();
    probability target shaped like input. ``label_smoothing`` ε mixes the one-hot target
    with the uniform distribution: (1 - ε)·nll + ε·mean_c(-w_c·log p_c) (PyTorch's rule).
    With class indices and every target ignored, 'mean' gives a NaN loss and a zero
    gradient, as PyTorch does.
    """
    _check_reduction(reduction, "cross_entropy")
    check_tensor(input, "cross_entropy", "input", floating=True)
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        raise TypeError(f"cross_entropy: label_smoothing must be a number, got "
                        f"{type(label_smoothing).__name__}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if (input.ndim == 2 and weight is None and not label_smoothing and reduction != "none"
            and isinstance(target, Tensor) and target.dtype.kind in "iu"):
        _check_class_target(input, target, "cross_entropy", ignore_index)
        return CrossEntropyIndex.apply(input, target, ignore_index=ignore_index,
                                       mean=reduction == "mean")
    class_dim = 1 if input.ndim > 1 else 0
    logp = log_softmax(input, class_dim)
    C = input.shape[class_dim] if input.ndim else 0
    wshape = [1] * input.ndim
    if input.ndim:
        wshape[class_dim] = C
    if weight is not None:
        _check_class_weight(weight, C, "cross_entropy")
    w_b = reshape(weight.to(input.dtype), wshape) if weight is not None else None
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if ignore_index >= 0:     # PyTorch's check: a negative index ignores nothing here
            raise ValueError(f"cross_entropy: ignore_index is not supported for probability "
                             f"(floating point) targets, got ignore_index={ignore_index}")
        target = _check_pair(input, target, "cross_entropy")
        if label_smoothing:
            target = target * (1.0 - label_smoothing) + label_smoothing / C
        per = logp * target if w_b is None else logp * target * w_b
        losses = -_sum(per, class_dim)
        if reduction == "mean":
            n = losses.data.size
            return _sum(losses) / float(n)
        return _reduce(losses, reduction)
    check_tensor(target, "cross_entropy", "target")
    nll = _nll_loss(logp, target, weight, ignore_index, reduction, "cross_entropy")
    if not label_smoothing:
        return nll
    keep = Tensor((target.data != ignore_index).astype(input.dtype))
    smooth = -_sum(logp if w_b is None else logp * w_b, class_dim) * keep
    if reduction == "mean":
        if weight is not None:
            t = input.xp.where(target.data != ignore_index, target.data, 0)
            denom = (weight.data[t].astype(input.dtype) * keep.data).sum()
        else:
            denom = keep.data.sum()
        smooth = _weighted_mean(_sum(smooth), denom)
    elif reduction == "sum":
        smooth = _sum(smooth)
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / C)


# ----------------------------------------------------------------- regression and KL losses
# Compositions of differentiable ops (abs, where, log, exp), so every derivative order of
# input and target follows; the target receives a gradient, as in PyTorch.
__all__ += ["l1_loss", "smooth_l1_loss", "huber_loss", "kl_div"]


def _non_negative_number(value, name, op, strict=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__}")
    if value < 0 or (strict and value == 0) or value != value:
        bound = "positive" if strict else "non-negative"
        raise ValueError(f"{op}: {name} must be {bound}, got {value}")
    return float(value)


def l1_loss(input, target, reduction: str = "mean") -> Tensor:
    """|input - target| (gradient 0 where they are equal, as PyTorch).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.l1_loss(tn.tensor([1., 4.]), tn.tensor([2., 2.])).item()
    1.5
    """
    _check_reduction(reduction, "l1_loss")
    target = _check_pair(input, target, "l1_loss")
    return _reduce(_abs(input - target), reduction)


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5·d²/β where |d| < β, else |d| - 0.5·β, with d = input - target (β = 0: L1).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.smooth_l1_loss(tn.tensor([0.5, 3.]), tn.tensor([0., 0.]), reduction="none").numpy().tolist()
    [0.125, 2.5]
    """
    op = "smooth_l1_loss"
    _check_reduction(reduction, op)
    beta = _non_negative_number(beta, "beta", op)
    target = _check_pair(input, target, op)
    diff = input - target
    size = _abs(diff)
    if beta == 0.0:
        return _reduce(size, reduction)
    loss = where(size < beta, diff * diff * (0.5 / beta), size - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5·d² where |d| < δ, else δ·(|d| - 0.5·δ), with d = input - target (δ > 0);
    equals δ·smooth_l1_loss with β = δ.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.huber_loss(tn.tensor([0.5, 3.]), tn.tensor([0., 0.]), reduction="none", delta=2.0).numpy().tolist()
    [0.125, 4.0]
    """
    op = "huber_loss"
    _check_reduction(reduction, op)
    delta = _non_negative_number(delta, "delta", op, strict=True)
    target = _check_pair(input, target, op)
    diff = input - target
    size = _abs(diff)
    loss = where(size < delta, diff * diff * 0.5, (size - 0.5 * delta) * delta)
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """Pointwise KL divergence for log-probabilities ``input``:
    t·(log t - input) (0 where t = 0), or e^t·(t - input) with ``log_target``.

    ``reduction='batchmean'`` divides the sum by the batch size (input.shape[0]), the
    mathematically correct KL; ``'mean'`` averages over all elements (PyTorch's default).
    ``size_average``/``reduce`` are PyTorch's deprecated spellings and must stay None.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> p = tn.tensor([[0.5, 0.5]])
    >>> F.kl_div(p.log(), p, reduction="batchmean").item()
    0.0
    """
    op = "kl_div"
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average and reduce are deprecated in PyTorch and not "
                         "supported; use reduction")
    if reduction not in _REDUCTIONS + ("batchmean",):
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS + ('batchmean',)}, "
                         f"got {reduction!r}")
    if not isinstance(log_target, bool):
        raise TypeError(f"{op}: log_target must be a bool, got {type(log_target).__name__}")
    target = _check_pair(input, target, op)
    if log_target:
        loss = exp(target) * (target - input)
    else:
        positive = target > 0
        safe = where(positive, target, 1.0)
        loss = where(positive, target * log(safe), 0.0) - target * input
    if reduction == "batchmean":
        return _sum(loss) / float(input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)
