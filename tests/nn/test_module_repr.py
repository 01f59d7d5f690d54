"""Every module tinynet.nn shares with torch.nn prints the same repr as PyTorch's, built
with the same (non-default) arguments: a user comparing two printed models sees the
same text."""
import pytest

import tinynet.nn as nn

torch = pytest.importorskip("torch")

#: module name -> constructor calls ``(args, kwargs)``, non-default arguments wherever it has any
LOSSES = {
    "MSELoss": [((), {"reduction": "sum"})],
    "L1Loss": [((), {"reduction": "none"})],
    "BCELoss": [((), {"reduction": "sum"})],
    "BCEWithLogitsLoss": [((), {"reduction": "none"})],
    "NLLLoss": [((), {"ignore_index": 3, "reduction": "none"})],
    "CrossEntropyLoss": [((), {"ignore_index": 3, "reduction": "sum", "label_smoothing": 0.1})],
    "SmoothL1Loss": [((), {"reduction": "sum", "beta": 0.5})],
    "HuberLoss": [((), {"reduction": "sum", "delta": 0.5})],
    "KLDivLoss": [((), {"reduction": "batchmean", "log_target": True})],
}


def _cases(table):
    return [pytest.param(name, args, kwargs, id=f"{name}-{i}")
            for name, calls in table.items() for i, (args, kwargs) in enumerate(calls)]


def test_every_loss_module_is_in_the_table():
    # a loss module added later must join the comparison
    assert {n for n in nn.loss.__all__} == set(LOSSES)


@pytest.mark.parametrize("name,args,kwargs", _cases(LOSSES))
def test_loss_repr_matches_torch(name, args, kwargs):
    # PyTorch's loss modules have no extra_repr: MSELoss() whatever the reduction
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs) == f"{name}()"
