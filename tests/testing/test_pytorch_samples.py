"""PyTorch's own test inputs, run through tinynet (float64, forward and backward).

PyTorch's OpInfo database (``torch.testing._internal.common_methods_invocations``, which
needs the ``expecttest`` package of the ``ref`` extra) holds, for each op, the sample
inputs PyTorch tests itself on — 0-d tensors, empty tensors, unbatched inputs, negative
dims, broadcast bounds — and a list of inputs it must refuse. For every op below:

* each sample PyTorch accepts gives tinynet's output (shape and values) and the gradient
  of every tensor argument PyTorch differentiates, for a random cotangent;
* each error input raises a ValueError/TypeError/IndexError from a tinynet frame whose
  message starts with an op name (inputs that use ``out=`` or more than 64 dimensions,
  which tinynet has no notion of, are left out).
"""
import os
import re
import traceback

import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F

torch = pytest.importorskip("torch")
opinfo = pytest.importorskip("torch.testing._internal.common_methods_invocations",
                             reason="PyTorch's OpInfo database needs expecttest (pip install tinynet[ref])")

OPS = {
    "sum": F.sum, "mean": F.mean, "amax": F.amax, "amin": F.amin, "max": F.max, "min": F.min,
    "var": F.var, "std": F.std, "argmax": F.argmax, "argmin": F.argmin, "all": F.all, "any": F.any,
    "softmax": F.softmax, "log_softmax": F.log_softmax, "clamp": F.clamp, "clone": F.clone,
    "gather": F.gather, "scatter": F.scatter, "masked_fill": F.masked_fill, "chunk": F.chunk,
    "split": F.split,
    "nn.functional.conv1d": F.conv1d, "nn.functional.conv2d": F.conv2d,
    "nn.functional.conv_transpose2d": F.conv_transpose2d,
    "nn.functional.max_pool2d": F.max_pool2d, "nn.functional.avg_pool2d": F.avg_pool2d,
    "nn.functional.adaptive_avg_pool2d": F.adaptive_avg_pool2d,
    "nn.functional.binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    "nn.functional.l1_loss": F.l1_loss, "nn.functional.smooth_l1_loss": F.smooth_l1_loss,
    "nn.functional.huber_loss": F.huber_loss, "nn.functional.kl_div": F.kl_div,
    "nn.functional.gelu": F.gelu, "nn.functional.silu": F.silu, "nn.functional.one_hot": F.one_hot,
}
# variants that are other ops (max(a, b) is maximum) or other dtypes (complex, dtype=)
SKIP_VARIANTS = {"binary", "complex", "with_dtype"}
ENTRIES = [o for o in opinfo.op_db if o.name in OPS and o.variant_test_name not in SKIP_VARIANTS]
TINYNET_DIR = os.path.dirname(tn.__file__)


def _ids(o):
    return o.name + (f".{o.variant_test_name}" if o.variant_test_name else "")


def _ours(value):
    """torch tensors -> tinynet tensors (float ones that require grad keep requiring it)."""
    if isinstance(value, torch.Tensor):
        t = tn.tensor(value.detach().numpy().copy())
        if value.requires_grad and value.dtype.is_floating_point:
            t.requires_grad = True
        return t
    if isinstance(value, (list, tuple)):
        return type(value)(_ours(v) for v in value)
    return value


def _listed(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _describe(s):
    shape = lambda v: tuple(v.shape) if isinstance(v, torch.Tensor) else v  # noqa: E731
    return f"input {shape(s.input)}, args {[shape(a) for a in s.args]}, kwargs " \
           f"{ {k: shape(v) for k, v in s.kwargs.items()} }"


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_pytorch_samples_agree(entry):
    fn = OPS[entry.name]
    checked = 0
    floating = torch.float64 in entry.dtypes      # one_hot takes integer tensors only
    dtype = torch.float64 if floating else torch.int64
    for s in entry.sample_inputs("cpu", dtype, requires_grad=floating):
        try:
            theirs = entry.op(s.input, *s.args, **s.kwargs)
        except Exception:   # noqa: BLE001 - a sample PyTorch itself refuses is not a parity case
            continue
        where = f"{_ids(entry)} on {_describe(s)}"
        x, args, kwargs = _ours(s.input), _ours(list(s.args)), {k: _ours(v) for k, v in s.kwargs.items()}
        ours = fn(x, *args, **kwargs)
        ours_l, theirs_l = _listed(ours), _listed(theirs)
        assert len(ours_l) == len(theirs_l), f"output count differs: {where}"
        rng = np.random.default_rng(0)
        ours_total = theirs_total = None
        for o, t in zip(ours_l, theirs_l):
            assert tuple(o.shape) == tuple(t.shape), f"shape {o.shape} vs {tuple(t.shape)}: {where}"
            np.testing.assert_allclose(o.detach().numpy().astype(np.float64), t.detach().numpy(),
                                       rtol=1e-7, atol=1e-9, equal_nan=True, err_msg=where)
            if t.requires_grad and t.dtype.is_floating_point:
                assert o.requires_grad, f"tinynet's output does not require grad: {where}"
                v = rng.standard_normal(tuple(t.shape))
                a, b = (o * tn.tensor(v)).sum(), (t * torch.from_numpy(v)).sum()
                ours_total = a if ours_total is None else ours_total + a
                theirs_total = b if theirs_total is None else theirs_total + b
        checked += 1
        if theirs_total is None:
            continue
        ours_in = [x] + [a for a in args if isinstance(a, tn.Tensor)] + \
                  [v for v in kwargs.values() if isinstance(v, tn.Tensor)]
        theirs_in = [s.input] + [a for a in s.args if isinstance(a, torch.Tensor)] + \
                    [v for v in s.kwargs.values() if isinstance(v, torch.Tensor)]
        pairs = [(o, t) for o, t in zip(ours_in, theirs_in) if t.requires_grad]
        grads = torch.autograd.grad(theirs_total, [t for _, t in pairs], allow_unused=True)
        ours_total.backward()
        for i, ((o, t), g) in enumerate(zip(pairs, grads)):
            expected = np.zeros(tuple(t.shape)) if g is None else g.numpy()
            got = np.zeros(tuple(t.shape)) if o.grad is None else o.grad.numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9, equal_nan=True,
                                       err_msg=f"gradient of tensor argument {i}: {where}")
    assert checked, f"{_ids(entry)}: no sample was checked"


def _error_inputs(entry):
    try:
        inputs = list(entry.error_inputs("cpu"))
    except Exception:   # noqa: BLE001 - an entry without error inputs
        return []
    return [e for e in inputs if "out" not in e.sample_input.kwargs
            and (not isinstance(e.sample_input.input, torch.Tensor) or e.sample_input.input.ndim <= 32)]


ERROR_ENTRIES = [o for o in ENTRIES if _error_inputs(o)]


@pytest.mark.parametrize("entry", ERROR_ENTRIES, ids=_ids)
def test_pytorch_error_inputs_raise_named_tinynet_errors(entry):
    fn = OPS[entry.name]
    for e in _error_inputs(entry):
        s = e.sample_input
        where = f"{_ids(entry)} on {_describe(s)} (PyTorch: {e.error_type.__name__} {e.error_regex!r})"
        with pytest.raises((ValueError, TypeError, IndexError)) as info:
            fn(_ours(s.input), *_ours(list(s.args)), **{k: _ours(v) for k, v in s.kwargs.items()})
        frame = traceback.extract_tb(info.value.__traceback__)[-1].filename
        assert frame.startswith(TINYNET_DIR), f"raised from {frame}: {where}"
        assert re.match(r"[\w.]+:", str(info.value).strip("'\"")), \
            f"message does not start with an op name ({info.value}): {where}"
