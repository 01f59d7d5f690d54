"""Converters for tinynet's ops (``Function`` subclasses) to ONNX nodes.

Each converter takes the graph builder and one recorded :class:`~tinynet.onnx.trace.Call`
and returns the names of the call's outputs. The table at the bottom (``CONVERTERS``)
maps each op to its converter; an op without an entry cannot be exported.

Shapes and dynamic batch size: every op here is shape-polymorphic in ONNX except
``Reshape`` and ``Expand``, whose target shapes the trace recorded as numbers. Those keep
the leading dimensions they share with their input as ``0`` ("copy the input's
dimension", so a batch dimension in front stays free) and write a single remaining
dimension as ``-1`` ("whatever is left"); ``flatten``, ``squeeze``/``unsqueeze`` behind
the batch dimension, and ``x.reshape(n, -1)`` are therefore batch-free.
"""
from __future__ import annotations

from .. import backend
from ..backend import numpy as np
import importlib

# The Function classes live in the submodules of tinynet.functional; importlib reaches the
# submodule even where the package exports a function of the same name (``dropout``).
A, C, CP, D, E, I, L, P, R, S = (importlib.import_module(f"tinynet.functional.{name}") for name in (
    "activation", "conv", "conv_pool", "dropout", "elementwise", "interpolate", "linalg", "pool",
    "reduction", "shape"))
from .graph import UnsupportedOperatorError

__all__ = ["CONVERTERS"]

_BIG = 2 ** 62     # an "until the end" bound for Slice


def _inputs(b, call):
    return [b.value(t) for t in call.args]


def _unary(op_type, **fixed):
    def convert(b, call):
        return b.node(op_type, [b.value(call.args[0])], **fixed)
    return convert


def _binary(op_type):
    def convert(b, call):
        return b.node(op_type, _inputs(b, call))
    return convert


# ------------------------------------------------------------------ convolution, pooling
def _pads(padding):
    (ph, pw) = padding
    return [ph, pw, ph, pw]        # ONNX: begin of each spatial axis, then end of each


def conv2d(b, call):
    x, w, bias = call.args
    k = call.args[1].shape[2:]
    kw = call.kwargs
    return b.node("Conv", [b.value(x), b.value(w), b.value(bias)], kernel_shape=list(k),
                  strides=list(kw["stride"]), pads=_pads(kw["padding"]),
                  dilations=list(kw["dilation"]), group=kw["groups"])


def conv_transpose2d(b, call):
    """ConvTranspose with the output_padding folded into the end pads.

    tinynet (like PyTorch) crops ``p`` rows at the start of the full transposed output
    ``(H - 1)·s + d(k - 1) + 1`` and ``p - output_padding`` at the end. ONNX Runtime refuses
    an ``output_padding`` attribute >= stride (which PyTorch allows when it is < dilation),
    so the end pad is written directly; rows past the full output (output_padding > p) hold
    only the bias, and are added by a Pad with zeros before the bias.
    """
    x, w, bias = call.args
    kw = call.kwargs
    k = w.shape[2:]
    # The trace knows the output size: output_padding = what it has beyond the formula.
    extra = [kw["output_size"][a] - ((x.shape[2 + a] - 1) * kw["stride"][a] - 2 * kw["padding"][a]
                                     + kw["dilation"][a] * (k[a] - 1) + 1) for a in range(2)]
    begin = list(kw["padding"])
    end = [max(p - e, 0) for p, e in zip(begin, extra)]
    beyond = [max(e - p, 0) for p, e in zip(begin, extra)]
    attributes = dict(kernel_shape=list(k), strides=list(kw["stride"]), pads=begin + end,
                      dilations=list(kw["dilation"]), group=kw["groups"])
    if not any(beyond):
        return b.node("ConvTranspose", [b.value(x), b.value(w), b.value(bias)], **attributes)
    (y,) = b.node("ConvTranspose", [b.value(x), b.value(w)], **attributes)
    (y,) = b.node("Pad", [y, b.ints([0, 0, 0, 0, 0, 0] + beyond, "pads")], mode="constant")
    if bias is None:
        return [y]
    (column,) = b.node("Unsqueeze", [b.value(bias), b.ints([1, 2], "axes")])   # (C, 1, 1)
    return b.node("Add", [y, column])


def _then_relu(b, call, out):
    """``out``, through a Relu node where the op ran ``Sequential``'s ReLU in its own node
    (``relu=True``: a max pool's or a linear layer's)."""
    return b.node("Relu", out) if call.kwargs.get("relu") else out


def conv2d_relu_pool(b, call):
    """Conv, then MaxPool 2x2 and Relu: ``Sequential``'s conv, ReLU and pool, run as one
    node (the pool before the ReLU, as ``Sequential`` orders them)."""
    (y,) = conv2d(b, call)
    k, s, p, d, ceil = CP.POOL
    return b.node("Relu", b.node("MaxPool", [y], kernel_shape=list(k), strides=list(s), pads=_pads(p),
                                 dilations=list(d), ceil_mode=int(ceil)))


def max_pool2d(b, call):
    if call.kwargs.get("return_indices"):
        raise UnsupportedOperatorError("tinynet.onnx: max_pool2d with return_indices=True has no "
                                       f"ONNX export (in {call.scope or 'the model'})")
    k, s, p, d, ceil = call.kwargs["geometry"]
    out = b.node("MaxPool", [b.value(call.args[0])], kernel_shape=list(k), strides=list(s),
                 pads=_pads(p), dilations=list(d), ceil_mode=int(ceil))
    return _then_relu(b, call, out)


def adaptive_max_pool2d(b, call):
    """MaxPool with kernel = stride = in/out when every bin has the same size, which is when
    out divides in (bin i spans [floor(i·in/out), ceil((i+1)·in/out))). Uneven bins overlap
    and vary in size, which MaxPool cannot express: refused, naming the sizes."""
    x = call.args[0]
    sizes, out = x.shape[-2:], call.kwargs["output_size"]
    if call.kwargs.get("return_indices"):
        raise UnsupportedOperatorError("tinynet.onnx: adaptive_max_pool2d with return_indices=True "
                                       f"has no ONNX export (in {call.scope or 'the model'})")
    if any(n % o for n, o in zip(sizes, out)):
        raise UnsupportedOperatorError(
            f"tinynet.onnx: adaptive_max_pool2d from {tuple(sizes)} to {tuple(out)} (in "
            f"{call.scope or 'the model'}) has no ONNX export: its bins are uneven, which MaxPool "
            "cannot express; export with an input whose height and width are multiples of "
            "output_size (the bins are then uniform) or use max_pool2d")
    k = [n // o for n, o in zip(sizes, out)]
    return b.node("MaxPool", [b.value(x)], kernel_shape=k, strides=k)


def avg_pool2d(b, call):
    k, s, p, ceil, count_include_pad = call.kwargs["geometry"]
    return b.node("AveragePool", [b.value(call.args[0])], kernel_shape=list(k), strides=list(s),
                  pads=_pads(p), ceil_mode=int(ceil), count_include_pad=int(count_include_pad))


# ------------------------------------------------------------------ linear algebra
def linear(b, call):
    x, w, bias = (list(call.args) + [None])[:3]
    if x.ndim == 2:
        out = b.node("Gemm", [b.value(x), b.value(w), b.value(bias)], transB=1)
    else:
        (wt,) = b.node("Transpose", [b.value(w)], perm=[1, 0])
        out = b.node("MatMul", [b.value(x), wt])
        if bias is not None:
            out = b.node("Add", [out[0], b.value(bias)])
    return _then_relu(b, call, out)


# ------------------------------------------------------------------ activations
def softmax(op_type):
    def convert(b, call):
        return b.node(op_type, [b.value(call.args[0])], axis=call.kwargs.get("dim", -1))
    return convert


def leaky_relu(b, call):
    return b.node("LeakyRelu", [b.value(call.args[0])], alpha=float(call.kwargs.get("slope", 0.01)))


def elu(b, call):
    return b.node("Elu", [b.value(call.args[0])], alpha=float(call.kwargs.get("alpha", 1.0)))


def _scalar(b, value, like, hint="constant"):
    return b.constant(np.asarray(value, dtype=like.dtype), hint)


def softplus(b, call):
    """log(1 + exp(β·x))/β where β·x <= threshold, x above (PyTorch's linear region):
    ``Where(Greater(z, threshold), x, Softplus(z) / β)`` with z = β·x (the Mul and the Div
    only when β != 1)."""
    x = call.args[0]
    beta, threshold = call.kwargs.get("beta", 1.0), call.kwargs.get("threshold", 20.0)
    z = b.value(x)
    if beta != 1:
        (z,) = b.node("Mul", [z, _scalar(b, beta, x, "beta")])
    (y,) = b.node("Softplus", [z])
    if beta != 1:
        (y,) = b.node("Div", [y, _scalar(b, beta, x, "beta")])
    (linear,) = b.node("Greater", [z, _scalar(b, threshold, x, "threshold")])
    return b.node("Where", [linear, b.value(x), y])


def _clip(b, x, lo, hi):
    """Clip(x, lo, hi), a None bound left out."""
    bound = lambda v: "" if v is None else _scalar(b, v, x, "clip_bound")
    return b.node("Clip", [b.value(x), bound(lo), bound(hi)])


def hardtanh(b, call):
    """Clip(x, min_val, max_val) (relu6 is Clip(x, 0, 6))."""
    return _clip(b, call.args[0], call.kwargs["min_val"], call.kwargs["max_val"])


def celu(b, call):
    """Celu(alpha) (float32 only in ONNX); other dtypes as Where(x > 0, x, α·(exp(x/α) - 1))."""
    x = call.args[0]
    alpha = float(call.kwargs.get("alpha", 1.0))
    if np.dtype(x.dtype) == np.float32:
        return b.node("Celu", [b.value(x)], alpha=alpha)
    (e,) = b.node("Exp", [b.node("Div", [b.value(x), _scalar(b, alpha, x, "alpha")])[0]])
    (e,) = b.node("Sub", [e, _scalar(b, 1.0, x, "one")])
    (e,) = b.node("Mul", [e, _scalar(b, alpha, x, "alpha")])
    (positive,) = b.node("Greater", [b.value(x), _scalar(b, 0.0, x, "zero")])
    return b.node("Where", [positive, b.value(x), e])


def hardsigmoid(b, call):
    """HardSigmoid(alpha=1/6, beta=1/2): max(0, min(1, x/6 + 1/2)) = relu6(x + 3)/6."""
    return b.node("HardSigmoid", [b.value(call.args[0])], alpha=1 / 6, beta=0.5)


def hardswish(b, call):
    """HardSwish (opset 14 on); at opset 13 x·HardSigmoid(x), the same equation."""
    if b.opset >= 14:
        return b.node("HardSwish", [b.value(call.args[0])])
    (gate,) = hardsigmoid(b, call)
    return b.node("Mul", [b.value(call.args[0]), gate])


def logsigmoid(b, call):
    """log σ(x) = -softplus(-x): Neg, Softplus, Neg (Log(Sigmoid(x)) would give -inf for
    x below about -88 in float32, where the answer is x)."""
    (y,) = b.node("Neg", [b.value(call.args[0])])
    (y,) = b.node("Softplus", [y])
    return b.node("Neg", [y])


def clamp(b, call):
    return _clip(b, call.args[0], call.kwargs.get("lo"), call.kwargs.get("hi"))


def to_dtype(b, call):
    (y,) = call.outputs
    return b.node("Cast", [b.value(call.args[0])],
                  to=b.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(y.dtype)))


# ------------------------------------------------------------------ shapes
def _free_shape(in_shape, out_shape, one_for_equal=False):
    """Target dims with the shared leading ones as 0 (see module docstring)."""
    lead = 0
    while lead < min(len(in_shape), len(out_shape)) and in_shape[lead] == out_shape[lead]:
        lead += 1
    if one_for_equal:                       # Expand: a 1 keeps the input's dimension
        return [1 if i < len(in_shape) and in_shape[i] == n else n for i, n in enumerate(out_shape)]
    dims = [0] * lead + list(out_shape[lead:])
    if len(out_shape) - lead == 1:
        dims[-1] = -1
    return dims


def reshape(b, call):
    (x,), (y,) = call.args, call.outputs
    return b.node("Reshape", [b.value(x), b.ints(_free_shape(x.shape, y.shape))])


def broadcast_to(b, call):
    (x,), (y,) = call.args, call.outputs
    return b.node("Expand", [b.value(x), b.ints(_free_shape(x.shape, y.shape, one_for_equal=True))])


def permute(b, call):
    return b.node("Transpose", [b.value(call.args[0])], perm=list(call.kwargs["dims"]))


def cat(b, call):
    return b.node("Concat", _inputs(b, call), axis=call.kwargs.get("dim", 0))


def pad(b, call):
    widths = call.kwargs["widths"]
    pads = [lo for lo, _ in widths] + [hi for _, hi in widths]
    x = call.args[0]
    value = _scalar(b, call.kwargs.get("value", 0.0), x, "pad_value")
    return b.node("Pad", [b.value(x), b.ints(pads, "pads"), value], mode="constant")


def resample(b, call):
    """interpolate where no single ONNX node is exact (see ``functions.interpolate``), in any
    mode: the trace records y = A x along one axis at a time, A given by taps (index i_t,
    weight w_t): ``y = Σ_t w_t ⊙ x[..., i_t, ...]``, exported as that sum, ``Gather(x, i_t,
    axis)`` times the weights (shaped to broadcast along the axis) added in tinynet's
    order, so the numbers are tinynet's (and PyTorch's). Nearest modes are one Gather per
    axis. The indices and weights are those of the traced size: like every shape here,
    the spatial sizes are the example input's."""
    x = call.args[0]
    axis, taps = call.kwargs["axis"], call.kwargs["taps"]
    y = None
    for index, weight in taps:
        (term,) = b.node("Gather", [b.value(x), b.constant(np.asarray(backend.asnumpy(index), dtype=np.int64),
                                                           "resample_index")], axis=axis)
        if weight is not None:
            w = backend.asnumpy(weight).astype(np.dtype(x.dtype))
            w = w.reshape(w.shape + (1,) * (x.ndim - 1 - axis))
            (term,) = b.node("Mul", [term, b.constant(w, "resample_weight")])
        (y,) = [term] if y is None else b.node("Add", [y, term])
    return [y]


def getitem(b, call):
    """ints -> Gather (drops the axis), slices -> Slice, None -> Unsqueeze, ``...`` -> full slices."""
    x = call.args[0]
    index = call.kwargs["index"]
    items = list(index) if isinstance(index, tuple) else [index]
    if any(hasattr(i, "dtype") or isinstance(i, (list, bool)) for i in items):
        raise UnsupportedOperatorError(f"tinynet.onnx: indexing with an array or a mask (GetItem) "
                                       f"has no ONNX export (in {call.scope or 'the model'}); use "
                                       "ints and slices")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
        items[at:at + 1] = [slice(None)] * (x.ndim - n_real)
    name, axis = b.value(x), 0
    for item in items:
        if item is None:
            (name,) = b.node("Unsqueeze", [name, b.ints([axis], "axes")])
            axis += 1
        elif isinstance(item, slice):
            if item != slice(None):
                step = 1 if item.step is None else item.step
                start = item.start if item.start is not None else (0 if step > 0 else _BIG)
                stop = item.stop if item.stop is not None else (_BIG if step > 0 else -_BIG)
                (name,) = b.node("Slice", [name, b.ints([start], "starts"), b.ints([stop], "ends"),
                                           b.ints([axis], "axes"), b.ints([step], "steps")])
            axis += 1
        else:
            (name,) = b.node("Gather", [name, b.constant(np.asarray(int(item), dtype=np.int64), "index")],
                             axis=axis)
    if name == b.value(x):
        (name,) = b.node("Identity", [name])
    return [name]


# ------------------------------------------------------------------ reductions
def _reduce(op_type):
    def convert(b, call):
        # x.max(dim) returns (values, indices); the indices are made outside the op, so
        # the exporter refuses them where they are used, and only the values come here.
        x = call.args[0]
        dims = list(call.kwargs.get("dims", ()))
        keep = int(bool(call.kwargs.get("keepdim", False)))
        if not dims:                      # a reduction over no dims is the identity
            return b.node("Identity", [b.value(x)])
        # ReduceSum takes its axes as an input from opset 13, the others from opset 18.
        if op_type == "ReduceSum" or b.opset >= 18:
            return b.node(op_type, [b.value(x), b.ints(dims, "axes")], keepdims=keep)
        return b.node(op_type, [b.value(x)], axes=dims, keepdims=keep)
    return convert


def extreme(b, call):
    op_type = "ReduceMax" if call.kwargs.get("largest", True) else "ReduceMin"
    return _reduce(op_type)(b, call)


def dropout(b, call):
    raise UnsupportedOperatorError("tinynet.onnx: dropout in training mode has no ONNX export; "
                                   f"(in {call.scope or 'the model'}); export puts the model in "
                                   "eval mode, so a dropout still running was called with training=True")


CONVERTERS = {
    C.Conv2d: conv2d,
    C.ConvTranspose2d: conv_transpose2d,
    CP.Conv2dReluPool: conv2d_relu_pool,
    P.MaxPool2d: max_pool2d,
    P.AvgPool2d: avg_pool2d,
    L.Linear: linear,
    L.MatMul: _binary("MatMul"),
    A.ReLU: _unary("Relu"),
    A.LeakyReLU: leaky_relu,
    A.ELU: elu,
    A.Sigmoid: _unary("Sigmoid"),
    A.Tanh: _unary("Tanh"),
    A.Softmax: softmax("Softmax"),
    A.LogSoftmax: softmax("LogSoftmax"),
    E.Add: _binary("Add"),
    E.Sub: _binary("Sub"),
    E.Mul: _binary("Mul"),
    E.Div: _binary("Div"),
    E.Pow: _binary("Pow"),
    E.Neg: _unary("Neg"),
    E.Exp: _unary("Exp"),
    E.Log: _unary("Log"),
    E.Sqrt: _unary("Sqrt"),
    E.Abs: _unary("Abs"),
    E.Maximum: _binary("Max"),
    E.Minimum: _binary("Min"),
    E.Clamp: clamp,
    E.ToDtype: to_dtype,
    S.Reshape: reshape,
    S.Permute: permute,
    S.Cat: cat,
    S.Pad: pad,
    S.GetItem: getitem,
    R.Sum: _reduce("ReduceSum"),
    R.BroadcastTo: broadcast_to,
    R.Extreme: extreme,
    D.Dropout: dropout,
    A.Softplus: softplus,
    A.Hardtanh: hardtanh,
    A.CELU: celu,
    A.Hardsigmoid: hardsigmoid,
    A.Hardswish: hardswish,
    A.LogSigmoid: logsigmoid,
    A.TailSigmoid: _unary("Sigmoid"),
    P.AdaptiveMaxPool2d: adaptive_max_pool2d,
    I.Resample: resample,
}
