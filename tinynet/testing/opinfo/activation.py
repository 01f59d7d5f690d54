"""Registry entries: activation ops.

Kinks are kept out of the drawn inputs: relu and leaky_relu are not differentiable at 0,
and elu's second derivative jumps there, so their inputs stay at least 1e-3 away from 0.
The same holds for hardtanh's and relu6's bounds, hardswish's and hardsigmoid's ±3, prelu's
and celu's and selu's 0, and softplus's switch to the identity at beta·x = threshold.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tinynet.functional as F
from ..registry import OpInfo, Sample, register
from .. import strategies as tst


def _away_from_zero(**kwarg_strategies):
    def build():
        return st.tuples(tst.away_from([0.0]), st.fixed_dictionaries(kwarg_strategies)).map(
            lambda xk: Sample((xk[0],), xk[1]))
    return build


def _plain(low=-3.0, high=3.0):
    def build():
        return tst.arrays(None, low, high).map(lambda x: Sample((x,)))
    return build


def _with_dim(low=-3.0, high=3.0):
    """An array of at least one dim and a valid (possibly negative) ``dim``."""
    def build():
        return tst.shapes(min_dims=1).flatmap(lambda s: st.tuples(
            tst.arrays(s, low, high), tst.dims(len(s), allow_none=False))).map(
            lambda xd: Sample((xd[0],), {"dim": xd[1]}))
    return build


register(OpInfo("relu", F.relu, _away_from_zero(), lambda torch, x: torch.relu(x)))
register(OpInfo("leaky_relu", F.leaky_relu,
                _away_from_zero(negative_slope=st.sampled_from([0.01, 0.2, 1.5])),
                lambda torch, x, negative_slope: torch.nn.functional.leaky_relu(x, negative_slope)))
register(OpInfo("elu", F.elu, _away_from_zero(alpha=st.sampled_from([1.0, 0.5, 2.0])),
                lambda torch, x, alpha: torch.nn.functional.elu(x, alpha)))
register(OpInfo("sigmoid", F.sigmoid, _plain(-6.0, 6.0), lambda torch, x: torch.sigmoid(x),
                atol=1e-12, rtol=1e-12))
register(OpInfo("tanh", F.tanh, _plain(), lambda torch, x: torch.tanh(x)))


def _torch_dtype(torch, dtype):
    return None if dtype is None else getattr(torch, np.dtype(dtype).name)


def _with_dim_and_dtype(dtypes):
    """``_with_dim`` plus a ``dtype`` drawn from ``dtypes`` (softmax's cast)."""
    def build():
        return st.tuples(_with_dim()(), st.sampled_from(dtypes)).map(
            lambda sd: Sample(sd[0].args, {**sd[0].kwargs, "dtype": sd[1]}))
    return build


# dtype=None or float64 keeps a float64 input in float64, so the float64 checks apply; the
# cast to float32 has its own entries below (no gradcheck: a float32 result has too few
# digits for finite differences), which still check PyTorch parity, forward and backward.
register(OpInfo("softmax", F.softmax, _with_dim_and_dtype([None, np.float64, "float64"]),
                lambda torch, x, dim, dtype: torch.softmax(x, dim, dtype=_torch_dtype(torch, dtype))))
register(OpInfo("log_softmax", F.log_softmax, _with_dim_and_dtype([None, np.float64, "float64"]),
                lambda torch, x, dim, dtype: torch.log_softmax(x, dim, dtype=_torch_dtype(torch, dtype))))
register(OpInfo("softmax_to_float32", F.softmax, _with_dim_and_dtype([np.float32, "float32"]),
                lambda torch, x, dim, dtype: torch.softmax(x, dim, dtype=torch.float32),
                gradcheck=False, gradgradcheck=False, atol=1e-6, rtol=1e-5,
                note="dtype=float32 computes in float32: parity and float32 checks only"))
register(OpInfo("log_softmax_to_float32", F.log_softmax, _with_dim_and_dtype([np.float32, "float32"]),
                lambda torch, x, dim, dtype: torch.log_softmax(x, dim, dtype=torch.float32),
                gradcheck=False, gradgradcheck=False, atol=1e-6, rtol=1e-5,
                note="dtype=float32 computes in float32: parity and float32 checks only"))
register(OpInfo("gelu", F.gelu, _plain(-4.0, 4.0), lambda torch, x: torch.nn.functional.gelu(x)))
register(OpInfo("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), _plain(-4.0, 4.0),
                lambda torch, x: torch.nn.functional.gelu(x, approximate="tanh"), atol=1e-9))
register(OpInfo("silu", F.silu, _plain(-6.0, 6.0), lambda torch, x: torch.nn.functional.silu(x),
                atol=1e-9))


def _away_from_points(points, low, high, **kwarg_strategies):
    """Arrays in [low, high] at least 1e-3 from every kink in ``points(kwargs)`` (the kinks
    move with the drawn keyword arguments, e.g. hardtanh's bounds)."""
    def build():
        return st.fixed_dictionaries(kwarg_strategies).flatmap(lambda kw: tst.away_from(
            points(kw), low=low, high=high).map(lambda x: Sample((x,), kw)))
    return build


def _hardtanh_bounds():
    return st.tuples(st.floats(-2.0, 1.0), st.floats(0.1, 2.0)).map(
        lambda lw: {"min_val": lw[0], "max_val": lw[0] + lw[1]})


def _hardtanh_samples():
    return _hardtanh_bounds().flatmap(lambda kw: tst.away_from(
        [kw["min_val"], kw["max_val"]], low=-3.0, high=3.0).map(lambda x: Sample((x,), kw)))


register(OpInfo("softplus", F.softplus, _away_from_points(
    lambda kw: [kw["threshold"] / kw["beta"]], -6.0, 6.0,
    beta=st.sampled_from([1.0, 0.5, 2.0, -1.5]), threshold=st.sampled_from([20.0, 1.0, 2.5])),
    lambda torch, x, beta, threshold: torch.nn.functional.softplus(x, beta, threshold), atol=1e-9))
register(OpInfo("hardtanh", F.hardtanh, _hardtanh_samples,
                lambda torch, x, min_val, max_val: torch.nn.functional.hardtanh(x, min_val, max_val)))
register(OpInfo("relu6", F.relu6, _away_from_points(lambda kw: [0.0, 6.0], -3.0, 8.0),
                lambda torch, x: torch.nn.functional.relu6(x)))
register(OpInfo("selu", F.selu, _away_from_zero(), lambda torch, x: torch.nn.functional.selu(x)))
register(OpInfo("celu", F.celu, _away_from_zero(alpha=st.sampled_from([1.0, 0.5, 2.0, -1.5])),
                lambda torch, x, alpha: torch.nn.functional.celu(x, alpha)))
register(OpInfo("mish", F.mish, _plain(-6.0, 6.0), lambda torch, x: torch.nn.functional.mish(x),
                atol=1e-9))
register(OpInfo("hardswish", F.hardswish, _away_from_points(lambda kw: [-3.0, 3.0], -5.0, 5.0),
                lambda torch, x: torch.nn.functional.hardswish(x)))
# PyTorch's hardsigmoid gradient is a float32 1/6 even in float64 (0.16666667163...): rtol 1e-7.
register(OpInfo("hardsigmoid", F.hardsigmoid, _away_from_points(lambda kw: [-3.0, 3.0], -5.0, 5.0),
                lambda torch, x: torch.nn.functional.hardsigmoid(x), rtol=1e-7))
register(OpInfo("logsigmoid", F.logsigmoid, _plain(-10.0, 10.0),
                lambda torch, x: torch.nn.functional.logsigmoid(x), atol=1e-9))


def _glu_samples():
    """An input whose size along the drawn ``dim`` is even (the two halves)."""
    def with_even_dim(shape_dim):
        shape, dim = shape_dim
        shape = list(shape)
        shape[dim] *= 2
        return tst.arrays(tuple(shape)).map(lambda x: Sample((x,), {"dim": dim}))
    return tst.shapes(min_dims=1).flatmap(lambda s: st.tuples(
        st.just(s), tst.dims(len(s), allow_none=False))).flatmap(with_even_dim)


register(OpInfo("glu", F.glu, _glu_samples, lambda torch, x, dim: torch.nn.functional.glu(x, dim)))


def _prelu_samples():
    """An input away from 0 and a weight of 1 element (0-D or 1-D) or one per channel
    (dim 1; one channel below 2 dims)."""
    def weight_shapes(shape):
        channels = shape[1] if len(shape) >= 2 else 1
        return st.sampled_from([(), (1,), (channels,)])
    return tst.shapes().flatmap(lambda s: st.tuples(
        tst.away_from([0.0], shape=s), weight_shapes(s).flatmap(
            lambda ws: tst.arrays(ws, -2.0, 2.0)))).map(lambda xw: Sample(xw))


register(OpInfo("prelu", F.prelu, _prelu_samples, lambda torch, x, w: torch.nn.functional.prelu(x, w)))
