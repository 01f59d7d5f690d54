"""PyTorch's signatures are the contract: every function of ``tinynet.functional`` and every
class of ``tinynet.nn`` that PyTorch also has (with a Python signature ``inspect`` can read)
takes the same parameters, in the same order, of the same kinds, with the same defaults, so
that positional calls bind as they do in PyTorch."""
from __future__ import annotations

import inspect

import pytest

import tinynet.functional as F
import tinynet.nn as nn

# PyTorch's side is no plain signature: boolean_dispatch wrappers (*args, **kwargs) and
# modules whose __init__ forwards *args to a base class.
_OPAQUE = {"max_pool2d", "adaptive_max_pool2d", "Module", "Parameter", "Sequential", "LSTM",
           "GRU", "RNN", "Sigmoid", "Tanh", "LogSigmoid"}


def _signature(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):         # a builtin without a text signature
        return None
    return [(p.name, p.kind, p.default) for p in params]


def _pairs(torch):
    for name in sorted(set(F.__all__) - _OPAQUE):
        theirs = getattr(torch.nn.functional, name, None) or getattr(torch, name, None)
        if theirs is not None and _signature(theirs) is not None:
            yield f"F.{name}", getattr(F, name), theirs
    for name in sorted(set(nn.__all__) - _OPAQUE):
        theirs = getattr(torch.nn, name, None)
        if isinstance(theirs, type) and isinstance(getattr(nn, name), type):
            yield f"nn.{name}", getattr(nn, name).__init__, theirs.__init__


def test_signatures_are_pytorchs():
    torch = pytest.importorskip("torch")
    pairs = list(_pairs(torch))
    assert len(pairs) > 60          # the comparison covers the library, not a handful
    differ = [f"{label}: tinynet {_signature(ours)} / torch {_signature(theirs)}"
              for label, ours, theirs in pairs if _signature(ours) != _signature(theirs)]
    assert not differ, "\n".join(differ)
