"""Registry entries: activation ops.

Kinks are kept out of the drawn inputs: relu and leaky_relu are not differentiable at 0,
and elu's second derivative jumps there, so their inputs stay at least 1e-3 away from 0.
"""
from __future__ import annotations

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
register(OpInfo("softmax", F.softmax, _with_dim(), lambda torch, x, dim: torch.softmax(x, dim)))
register(OpInfo("log_softmax", F.log_softmax, _with_dim(),
                lambda torch, x, dim: torch.log_softmax(x, dim)))
register(OpInfo("gelu", F.gelu, _plain(-4.0, 4.0), lambda torch, x: torch.nn.functional.gelu(x)))
register(OpInfo("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), _plain(-4.0, 4.0),
                lambda torch, x: torch.nn.functional.gelu(x, approximate="tanh"), atol=1e-9))
register(OpInfo("silu", F.silu, _plain(-6.0, 6.0), lambda torch, x: torch.nn.functional.silu(x),
                atol=1e-9))
