"""Registry entries: elementwise arithmetic ops."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst


def _binary(low=-3.0, high=3.0, other_low=None, other_high=None):
    """Two broadcastable arrays."""
    def build():
        return tst.broadcastable_shapes(2).flatmap(lambda shapes: st.tuples(
            tst.arrays(shapes[0], low, high),
            tst.arrays(shapes[1], other_low if other_low is not None else low,
                       other_high if other_high is not None else high),
        )).map(lambda ab: Sample(ab))
    return build


def _binary_away(gap=0.05):
    """Two broadcastable arrays whose elements are never within ``gap`` of each other."""
    def build():
        def separate(ab):
            a, b = ab
            a2, b2 = np.broadcast_arrays(a, b)
            close = np.abs(a2 - b2) < gap
            if close.any():
                # push b away from a where they nearly tie (b is broadcast: rebuild it full)
                b = np.where(close, a2 + 2 * gap, b2)
                a = a2
            return Sample((a, b))
        return tst.broadcastable_shapes(2).flatmap(lambda shapes: st.tuples(
            tst.arrays(shapes[0]), tst.arrays(shapes[1]))).map(separate)
    return build


def _unary(low=-3.0, high=3.0, **kwargs):
    def build():
        return tst.arrays(None, low, high).map(lambda a: Sample((a,), dict(kwargs)))
    return build


def _unary_away(points, **kwargs):
    def build():
        return tst.away_from(points).map(lambda a: Sample((a,), dict(kwargs)))
    return build


register(OpInfo("add", F.add, _binary(), lambda torch, a, b: torch.add(a, b)))
register(OpInfo("sub", F.sub, _binary(), lambda torch, a, b: torch.sub(a, b)))
register(OpInfo("mul", F.mul, _binary(), lambda torch, a, b: torch.mul(a, b)))
register(OpInfo("div", F.div, _binary(other_low=0.5, other_high=3.0),
                lambda torch, a, b: torch.div(a, b)))
register(OpInfo("neg", F.neg, _unary(), lambda torch, a: torch.neg(a)))
register(OpInfo("pow", F.pow, _binary(low=0.5, high=2.0, other_low=-2.0, other_high=2.0),
                lambda torch, a, b: torch.pow(a, b)))
register(OpInfo("exp", F.exp, _unary(), lambda torch, a: torch.exp(a)))
register(OpInfo("log", F.log, _unary(0.2, 3.0), lambda torch, a: torch.log(a)))
register(OpInfo("sqrt", F.sqrt, _unary(0.2, 3.0), lambda torch, a: torch.sqrt(a)))
register(OpInfo("square", F.square, _unary(), lambda torch, a: torch.square(a)))
register(OpInfo("abs", F.abs, _unary_away([0.0]), lambda torch, a: torch.abs(a)))
register(OpInfo("clamp", F.clamp, _unary_away([-1.0, 0.5], min=-1.0, max=0.5),
                lambda torch, a, min, max: torch.clamp(a, min=min, max=max)))


def _grid(shape, offset, low=-30, high=30):
    """Arrays of k·0.1 + offset: bounds and inputs on interleaved grids never tie (the
    offsets differ by >= 0.02), so no finite difference straddles a kink of clamp."""
    from hypothesis.extra import numpy as hnp
    return hnp.arrays(np.int64, shape, elements=st.integers(low, high)).map(
        lambda k: k * 0.1 + offset)


@st.composite
def _clamp_tensor_samples(draw):
    """x with Tensor bounds (min, max or both, broadcasting; sometimes min > max), or a
    Tensor min with a number max."""
    shapes = draw(tst.broadcastable_shapes(3))
    # x takes the full broadcast shape: PyTorch's backward fails when the bounds broadcast x
    x = draw(_grid(np.broadcast_shapes(*shapes), 0.05))
    kind = draw(st.sampled_from(["both", "min", "max", "number_max"]))
    lo = draw(_grid(shapes[1], 0.02, -20, 5)) if kind != "max" else None
    hi = draw(_grid(shapes[2], 0.07, -5, 20)) if kind in ("both", "max") else None
    return Sample((x, lo, hi), {"number_max": 0.98 if kind == "number_max" else None})


def _clamp_tensor(x, lo, hi, number_max):
    return F.clamp(x, min=lo, max=number_max if hi is None and number_max is not None else hi)


def _clamp_tensor_torch(torch, x, lo, hi, number_max):
    if hi is None and number_max is not None:    # torch wants both bounds of one kind
        hi = torch.tensor(number_max, dtype=x.dtype)
    return torch.clamp(x, min=lo, max=hi)


register(OpInfo("clamp_tensor", _clamp_tensor, lambda: _clamp_tensor_samples(), _clamp_tensor_torch,
                note="Tensor bounds broadcast and receive gradients, as PyTorch's clamp"))
register(OpInfo("maximum", F.maximum, _binary_away(), lambda torch, a, b: torch.maximum(a, b)))
register(OpInfo("minimum", F.minimum, _binary_away(), lambda torch, a, b: torch.minimum(a, b)))


def _where_samples():
    return tst.broadcastable_shapes(3).flatmap(lambda s: st.tuples(
        tst.arrays(s[0]), tst.arrays(s[1]), tst.arrays(s[2]))).map(
        lambda abc: Sample((abc[0] > 0, abc[1], abc[2])))


register(OpInfo("where", F.where, _where_samples, lambda torch, c, a, b: torch.where(c, a, b)))
register(OpInfo("to_dtype", lambda x: F.to_dtype(x, "float32"), _unary(),
                lambda torch, a: a.float(), f32_rtol=1e-6, atol=1e-6, rtol=1e-6,
                gradcheck=False, gradgradcheck=False,
                note="a cast to float32 cannot be finite-differenced at eps=1e-6; its gradient "
                     "(the identity, cast back) is checked against PyTorch here and by hand in "
                     "tests/functional/test_elementwise.py"))


def _to_device_node(x, device):
    """``to_device`` through its ``ToDevice`` node even when ``x`` is already on ``device``
    (``F.to_device`` returns such a tensor unchanged), so the node's backward is checked
    on a CPU-only machine too; on a GPU test run the samples live on the GPU and this is a
    real transfer to the host and back."""
    from tinynet.functional.elementwise import ToDevice, device_argument
    return ToDevice.apply(x, device=device_argument(device))


register(OpInfo("to_device", _to_device_node, _unary(device="cpu"),
                lambda torch, a, device: a.to(device),
                note="device transfer; the gradient goes back to the source device"))
