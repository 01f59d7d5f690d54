"""Loss functions, all with ``reduction`` in {'none', 'mean', 'sum'} (PyTorch semantics).

Each takes PyTorch 2.13's parameter list in PyTorch's order, including the deprecated
``size_average`` and ``reduce``: either one given (not None) overrides ``reduction`` by
PyTorch's legacy rule (:func:`legacy_reduction`) with a deprecation UserWarning.
The regression losses (mse, l1, smooth_l1, huber) broadcast a target of another shape
against the input, warning as PyTorch does; ``kl_div`` broadcasts silently; the
binary cross-entropies require equal shapes.

Most are compositions of differentiable ops, so their gradients of every order follow.
``binary_cross_entropy_with_logits`` is its own op so that its gradient is exactly
σ(x)·(1 + (p - 1)·t) - p·t even at x = 0, where a composition through |x| would pick a
one-sided subgradient.
"""
from __future__ import annotations

import numbers
import warnings

from ..autograd import Function, anchor, is_grad_enabled
from .. import backend
from ..tensor import Tensor
from ._operands import check_tensor, check_same_device
from .elementwise import log, clamp, exp, where, abs as _abs
from .activation import log_softmax, sigmoid, Softmax, LogSigmoid
from .reduction import sum as _sum
from .shape import reshape, permute, getitem

__all__ = ["mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "cross_entropy", "nll_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def legacy_reduction(size_average, reduce, stacklevel: int = 3) -> str:
    """PyTorch's rule (``torch.nn._reduction.legacy_get_string``) for the deprecated
    ``size_average``/``reduce`` pair, a None counting as True, with its UserWarning:

        reduce falsy                       -> 'none'
        reduce truthy, size_average falsy  -> 'sum'
        both truthy                        -> 'mean'

    ``stacklevel`` points the warning at the caller of the loss (3: the caller of the
    function that calls this one).
    """
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn("size_average and reduce args will be deprecated, please use "
                  f"reduction='{ret}' instead.", UserWarning, stacklevel=stacklevel)
    return ret


def _reduction(size_average, reduce, reduction, op, alias: bool = True, also: tuple = ()) -> str:
    """The reduction a loss applies: ``size_average``/``reduce`` override ``reduction``
    when either is given (:func:`legacy_reduction`); else ``reduction`` must be a valid
    name, or (with ``alias``, wherever PyTorch accepts it) the deprecated spelling
    'elementwise_mean' of 'mean', with PyTorch's UserWarning. ``also``: names this loss
    accepts beyond the three (kl_div's 'batchmean'), returned as they are."""
    if size_average is not None or reduce is not None:
        return legacy_reduction(size_average, reduce, stacklevel=4)
    if alias and reduction == "elementwise_mean":
        warnings.warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' "
                      "instead.", UserWarning, stacklevel=3)
        return "mean"
    _check_reduction(reduction, op, _REDUCTIONS + also)
    return reduction


def _check_reduction(reduction, op, allowed=_REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_broadcasts_to(tensor, shape, op, arg, what):
    """ValueError naming ``arg`` unless ``tensor``'s shape broadcasts to ``shape`` itself
    (not to a wider one)."""
    ok = len(tensor.shape) <= len(shape) and all(
        m == 1 or m == n for m, n in zip(reversed(tensor.shape), reversed(shape)))
    if not ok:
        raise ValueError(f"{op}: {arg} of shape {tuple(tensor.shape)} does not broadcast to the "
                         f"{what} shape {tuple(shape)}")


def _weighted(loss: Tensor, weight, op: str) -> Tensor:
    """``loss * weight`` once ``weight`` is checked to be a Tensor that broadcasts to it."""
    check_tensor(weight, op, "weight")
    check_same_device(op, input=loss, weight=weight)
    _check_broadcasts_to(weight, tuple(loss.shape), op, "weight", "loss")
    return loss * weight


def _check_pair(input, target, op, broadcast=False, warn=True):
    """``target`` (in input's dtype) once checked against ``input``: of input's shape, or
    with ``broadcast`` of any shape that broadcasts against it. A target of another shape
    then gets PyTorch's UserWarning first (the regression losses; ``kl_div`` passes
    ``warn=False``, broadcasting silently as PyTorch's does), and a ValueError when it
    cannot broadcast."""
    check_tensor(input, op, "input", floating=True)
    check_tensor(target, op, "target")
    check_same_device(op, input=input, target=target)
    shape, tshape = tuple(input.shape), tuple(target.shape)
    if tshape != shape:
        if not broadcast:
            raise ValueError(f"{op}: target shape {tshape} must equal input shape {shape}")
        if warn:
            warnings.warn(f"{op}: Using a target size {tshape} that is different to the input size "
                          f"{shape}. This will likely lead to incorrect results due to "
                          "broadcasting. Please ensure they have the same size.",
                          UserWarning, stacklevel=3)
        try:
            backend.numpy.broadcast_shapes(shape, tshape)
        except ValueError:
            raise ValueError(f"{op}: target shape {tshape} does not broadcast with input shape "
                             f"{shape}; expected a target of shape {shape}") from None
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    return target


def _pointwise_weighted(loss, weight, input, reduction, op, mean_by_weight):
    """PyTorch 2.13's ``weight`` of the regression losses: one weight per input element
    (``weight.shape == input.shape``; it broadcasts against the loss when the target
    widened it), ``loss·weight`` reduced by 'sum', and by 'mean' as
    Σ loss·w / Σ w (mse, l1: ``mean_by_weight``) or Σ loss·w / loss.numel() (huber).
    The gradient reaches ``weight`` too."""
    check_tensor(weight, op, "weight")
    check_same_device(op, input=input, weight=weight)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} must have the input's "
                         f"shape {tuple(input.shape)}")
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return _sum(loss) / _sum(weight)
    return _reduce(loss, reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None) -> Tensor:
    """(input - target)², optionally times ``weight`` (input's shape); with a weight,
    'mean' is Σ w·(x - t)² / Σ w, as PyTorch's."""
    op = "mse_loss"
    target = _check_pair(input, target, op, broadcast=True)
    reduction = _reduction(size_average, reduce, reduction, op, alias=weight is None)
    diff = input - target
    if weight is not None:
        return _pointwise_weighted(diff * diff, weight, input, reduction, op, mean_by_weight=True)
    return _reduce(diff * diff, reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """-w·(t·log x + (1 - t)·log(1 - x)), each log clamped at -100 (as PyTorch);
    ``target`` must have input's shape, ``weight`` must broadcast to it."""
    reduction = _reduction(size_average, reduce, reduction, "binary_cross_entropy")
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
            log_1mx = xp.maximum(backend.log1p(-x), -100.0)
        return -(t * log_x + (1 - t) * log_1mx)

    def backward(self, g):
        x, t = self.inputs
        gx = gt = None
        if self.needs_input_grad[0]:
            gx = g * (x - t) / clamp(x * (1.0 - x), min=1e-12)
        if self.needs_input_grad[1]:
            gt = g * (log(1.0 - x) - log(x))
        return gx, gt


class BCEWithLogits(Function):
    """ℓ = (1 - t)·x + (1 + (p - 1)·t)·(log(1 + e^{-|x|}) + max(-x, 0)), i.e. with
    softplus(-x) = -log σ(x):

        dℓ/dx = σ(x)·(1 + (p - 1)·t) - p·t
        dℓ/dt = -x + (p - 1)·softplus(-x)       (-x without ``pos_weight``, as PyTorch)
    """

    def forward(self, x, t, pos_weight=None):
        xp = backend.get_array_module(x)
        softplus_neg = backend.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)
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


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """BCE on raw scores, stable for large |x|; ``pos_weight`` scales positive targets.

    ``target`` must have input's shape; ``weight`` and ``pos_weight`` must broadcast to it.
    Differentiable in ``input`` and ``target`` (and ``weight``), as in PyTorch.
    """
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(size_average, reduce, reduction, op)
    target = _check_pair(input, target, op)
    if pos_weight is not None:
        check_tensor(pos_weight, op, "pos_weight")
        _check_broadcasts_to(pos_weight, tuple(input.shape), op, "pos_weight", "input")
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


def _check_class_target(input, target, op, ignore_index, values=True):
    """Checks a class-index ``target`` against ``input``'s shape and returns the number of
    classes C; ``values``: also that every target is ``ignore_index`` or in 0..C-1 (the
    compiled cross-entropy checks them in its own pass, :func:`_bad_target`'s message)."""
    check_tensor(input, op, "input", floating=True)
    check_tensor(target, op, "target")
    check_same_device(op, input=input, target=target)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"{op}: ignore_index must be an int, got {type(ignore_index).__name__}")
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
    if not values:
        return C
    t = target.data
    bad = (t != ignore_index) & ((t < 0) | (t >= C))
    if t.size and bool(bad.any()):
        raise _bad_target(op, int(t[bad].reshape(-1)[0]), C, ignore_index)
    return C


def _bad_target(op, first, C, ignore_index):
    return ValueError(f"{op}: target contains class {first} but input has {C} classes "
                      f"(valid: 0..{C - 1}, or ignore_index={ignore_index})")


def _check_class_weight(weight, C, op):
    check_tensor(weight, op, "weight", ndim=1)
    if weight.shape[0] != C:
        raise ValueError(f"{op}: weight has {weight.shape[0]} entries but input has {C} classes")


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """-w[t]·input[t] for log-probabilities ``input`` (N, C, ...) and class indices ``target``.

    'mean' divides by Σ w[t] over non-ignored targets (PyTorch's weighted mean); with every
    target ignored that is 0/0, a NaN loss whose gradient is zero, as in PyTorch.
    """
    reduction = _reduction(size_average, reduce, reduction, "nll_loss")
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


def _compiled_cross_entropy(x, t, ignore_index) -> bool:
    """Whether :class:`CrossEntropyIndex` runs compiled: NumPy arrays, (N, C > 0) scores
    of float32/64, a signed integer target and an ``ignore_index`` that fits int64, with
    Numba (:func:`tinynet.backend.use_compiled`)."""
    return (backend.use_compiled(x) and type(t) is type(x) and t.dtype.kind == "i"
            and x.ndim == 2 and x.shape[1] > 0 and isinstance(ignore_index, numbers.Integral)
            and -2 ** 63 <= ignore_index < 2 ** 63)


class CrossEntropyIndex(Function):
    """Fused ``log_softmax`` + ``nll_loss`` for scores x (N, C) and class indices t (N,)
    (no class weight, no label smoothing: the common classifier case, one op instead of ~10).

        loss = Σ_n k_n·(logsumexp(x_n) - x[n, t_n]) / D,     k_n = [t_n != ignore_index],
        D = Σ_n k_n ('mean') or 1 ('sum')
        dx = g · (softmax(x) - onehot(t)) ⊙ k / D

    The backward under ``create_graph`` is written with the ``Softmax`` op, so second
    derivatives exist; otherwise it reuses the softmax saved by the forward. With
    ``compiled`` (:func:`_compiled_cross_entropy`, decided once by :func:`cross_entropy`,
    which then leaves the targets' values unchecked) it takes one compiled pass each way
    (:mod:`tinynet.kernels.compiled.loss`), which checks them itself.
    """

    def forward(self, x, t, *, ignore_index, mean, compiled=False):
        xp = backend.get_array_module(x)
        if compiled:
            return self._forward_compiled(x, t, ignore_index, mean)
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
            rows, safe = self.rows, self.safe
            if rows is None:        # the compiled forward kept the targets as given
                rows, safe = xp.arange(safe.shape[0]), xp.where(safe != self.ignore_index, safe, 0)
            onehot = xp.zeros_like(self.softmax)
            onehot[rows, safe] = 1
            p = Softmax.apply(x, dim=1)
            return (p - Tensor(onehot)) * Tensor(self.scale) * g, None
        if self.rows is None:       # the compiled forward's softmax
            from ..kernels.compiled import loss as _compiled
            gx = xp.empty_like(self.softmax)
            scale = backend.ascontiguous((self.scale[:, 0] * g.data).astype(gx.dtype, copy=False))
            _compiled.cross_entropy_backward(self.softmax, self.safe, self.ignore_index, scale, gx)
            return Tensor(gx), None
        gx = self.softmax.copy()
        gx[self.rows, self.safe] -= 1
        gx *= self.scale * g.data
        return Tensor(gx), None

    def _forward_compiled(self, x, t, ignore_index, mean):
        """The forward as one compiled pass (:mod:`tinynet.kernels.compiled.loss`); the
        same saved state as the NumPy route, with ``rows`` None and ``safe`` the targets."""
        from ..kernels.compiled import loss as _compiled
        xp = backend.get_array_module(x)
        x = backend.ascontiguous(x)
        t = backend.ascontiguous(t)
        softmax, keep = xp.empty_like(x), xp.empty(x.shape[0], dtype=x.dtype)
        total, kept, bad = _compiled.cross_entropy_forward(x, t, ignore_index, softmax, keep)
        if bad >= 0:
            raise _bad_target("cross_entropy", int(t[bad]), x.shape[1], ignore_index)
        # _mean_denominator's rule, on host numbers: every target ignored ('mean') gives a
        # NaN loss and (keep all 0) a zero gradient
        T = x.dtype.type
        denom = T(kept if mean else 1)
        self.softmax, self.rows, self.safe, self.ignore_index = softmax, None, t, ignore_index
        self.scale = (keep / (denom or T(1)))[:, None]
        return xp.asarray(T(total) / denom if denom else T("nan"), dtype=x.dtype)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over dim 1 then nll_loss; class-index or class-probability targets.

    Input (N, C), (N, C, d1, ...) or (C,); index target (N,), (N, d1, ...) or ();
    probability target shaped like input. ``label_smoothing`` ε mixes the one-hot target
    with the uniform distribution: (1 - ε)·nll + ε·mean_c(-w_c·log p_c) (PyTorch's rule).
    With class indices and every target ignored, 'mean' gives a NaN loss and a zero
    gradient, as PyTorch does.
    """
    reduction = _reduction(size_average, reduce, reduction, "cross_entropy")
    check_tensor(input, "cross_entropy", "input", floating=True)
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        raise TypeError(f"cross_entropy: label_smoothing must be a number, got "
                        f"{type(label_smoothing).__name__}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if (input.ndim == 2 and weight is None and not label_smoothing and reduction != "none"
            and isinstance(target, Tensor) and target.dtype.kind in "iu"):
        compiled = _compiled_cross_entropy(input.data, target.data, ignore_index)
        _check_class_target(input, target, "cross_entropy", ignore_index, values=not compiled)
        return CrossEntropyIndex.apply(input, target, ignore_index=ignore_index,
                                       mean=reduction == "mean", compiled=compiled)
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


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
            weight=None) -> Tensor:
    """|input - target| (gradient 0 where they are equal, as PyTorch), optionally times
    ``weight`` (input's shape); with a weight, 'mean' is Σ w·|x - t| / Σ w, as PyTorch's.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.l1_loss(tn.tensor([1., 4.]), tn.tensor([2., 2.])).item()
    1.5
    """
    op = "l1_loss"
    target = _check_pair(input, target, op, broadcast=True)
    reduction = _reduction(size_average, reduce, reduction, op, alias=weight is None)
    loss = _abs(input - target)
    if weight is not None:
        return _pointwise_weighted(loss, weight, input, reduction, op, mean_by_weight=True)
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5·d²/β where |d| < β, else |d| - 0.5·β, with d = input - target (β = 0: L1).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.smooth_l1_loss(tn.tensor([0.5, 3.]), tn.tensor([0., 0.]), reduction="none").numpy().tolist()
    [0.125, 2.5]
    """
    op = "smooth_l1_loss"
    target = _check_pair(input, target, op, broadcast=True)
    reduction = _reduction(size_average, reduce, reduction, op)
    beta = _non_negative_number(beta, "beta", op)
    diff = input - target
    size = _abs(diff)
    if beta == 0.0:
        return _reduce(size, reduction)
    loss = where(size < beta, diff * diff * (0.5 / beta), size - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """0.5·d² where |d| < δ, else δ·(|d| - 0.5·δ), with d = input - target (δ > 0);
    equals δ·smooth_l1_loss with β = δ. Optionally times ``weight`` (input's shape); unlike
    mse/l1, the weighted 'mean' divides by the number of loss elements, as PyTorch's.

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> F.huber_loss(tn.tensor([0.5, 3.]), tn.tensor([0., 0.]), reduction="none", delta=2.0).numpy().tolist()
    [0.125, 4.0]
    """
    op = "huber_loss"
    target = _check_pair(input, target, op, broadcast=True)
    reduction = _reduction(None, None, reduction, op, alias=weight is None)
    delta = _non_negative_number(delta, "delta", op, strict=True)
    diff = input - target
    size = _abs(diff)
    loss = where(size < delta, diff * diff * 0.5, (size - 0.5 * delta) * delta)
    if weight is not None:
        return _pointwise_weighted(loss, weight, input, reduction, op, mean_by_weight=False)
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """Pointwise KL divergence for log-probabilities ``input``:
    t·(log t - input) (0 where t = 0, NaN where t < 0, as PyTorch), or e^t·(t - input)
    with ``log_target``.

    ``reduction='batchmean'`` divides the sum by the batch size (input.shape[0]), the
    mathematically correct KL; ``'mean'`` averages over all elements (PyTorch's default,
    with PyTorch's UserWarning). ``target`` broadcasts against ``input`` without a warning,
    as in PyTorch. ``size_average``/``reduce`` override ``reduction`` by the legacy rule;
    with them, ``reduction='batchmean'`` still divides the result by input.shape[0]
    (PyTorch's behaviour).

    Example
    -------
    >>> import tinynet as tn, tinynet.functional as F
    >>> p = tn.tensor([[0.5, 0.5]])
    >>> F.kl_div(p.log(), p, reduction="batchmean").item()
    0.0
    """
    op = "kl_div"
    applied = _reduction(size_average, reduce, reduction, op, also=("batchmean",))
    if reduction == "mean" and size_average is None and reduce is None:
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and "
                      "the support size. 'batchmean' divides only by the batch size, and "
                      "aligns with the KL div math definition. 'mean' will be changed to "
                      "behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=2)
    if applied == "batchmean":
        applied = "sum"
    if not isinstance(log_target, bool):
        raise TypeError(f"{op}: log_target must be a bool, got {type(log_target).__name__}")
    target = _check_pair(input, target, op, broadcast=True, warn=False)
    if log_target:
        loss = exp(target) * (target - input)
    else:
        # xlogy(t, t) as PyTorch: 0 at t = 0, NaN for a negative t (no probability)
        positive = target > 0
        safe = where(positive, target, 1.0)
        entropy = where(positive, target * log(safe), where(target < 0, float("nan"), 0.0))
        loss = entropy - target * input
    loss = _reduce(loss, applied)
    if reduction == "batchmean" and input.ndim:
        return loss / float(input.shape[0])
    return loss
