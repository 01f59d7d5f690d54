"""Every module tinynet.nn shares with torch.nn prints the same repr as PyTorch's, built
with the same (non-default) arguments: a user comparing two printed models sees the
same text."""
import warnings

import numpy as np
import pytest

import tinynet as tn
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

#: every other module both libraries have (containers below)
MODULES = {
    "Identity": [((), {})], "Linear": [((3, 4), {"bias": False})],
    "Flatten": [((), {"start_dim": 2, "end_dim": -2})],
    "Embedding": [((10, 3), {"padding_idx": 0, "max_norm": 1.0, "norm_type": 1.0,
                             "scale_grad_by_freq": True})],
    "Conv1d": [((2, 4, 3), {"stride": 2, "padding": 1, "dilation": 2, "groups": 2, "bias": False,
                            "padding_mode": "reflect"}), ((2, 4, 3), {"padding": "valid"}),
               ((2, 4, 3), {"padding": "same"})],
    "Conv2d": [((2, 4, 3), {"stride": 2, "padding": 1, "dilation": 2, "groups": 2, "bias": False,
                            "padding_mode": "circular"}), ((2, 4, (1, 3)), {"padding": "valid"}),
               ((2, 4, 3), {"padding": "same"}), ((2, 4, 3), {})],
    "ConvTranspose2d": [((2, 4, 3), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2,
                                     "bias": False, "dilation": 2}), ((2, 4, 3), {})],
    "MaxPool2d": [((3,), {"stride": 2, "padding": 1, "dilation": 2, "return_indices": True,
                          "ceil_mode": True}), ((2,), {}), (((2, 3),), {"stride": [1, 2]})],
    "AvgPool2d": [((3,), {"stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False,
                          "divisor_override": 2}), (((2, 3),), {})],
    "AdaptiveAvgPool2d": [((3,), {}), (((2, None),), {})],
    "AdaptiveMaxPool2d": [((3,), {"return_indices": True}), (((2, None),), {})],
    "BatchNorm1d": [((4,), {"eps": 1e-3, "momentum": 0.2, "affine": False,
                            "track_running_stats": False}), ((4,), {"momentum": None})],
    "BatchNorm2d": [((4,), {"eps": 1e-3, "momentum": 0.2, "affine": False}), ((4,), {})],
    "SyncBatchNorm": [((4,), {"eps": 1e-3, "momentum": 0.2, "affine": False})],
    "GroupNorm": [((2, 4), {"eps": 1e-3, "affine": False})],
    "LayerNorm": [(((3, 4),), {"eps": 1e-3, "elementwise_affine": False}), ((4,), {"bias": False})],
    "Dropout": [((0.3,), {}), ((1,), {"inplace": True})], "Dropout2d": [((0.3,), {}), ((0,), {})],
    "ReLU": [((), {}), ((True,), {})], "ReLU6": [((), {"inplace": True})], "SELU": [((), {})],
    "SiLU": [((), {})], "Sigmoid": [((), {})], "Tanh": [((), {})], "Mish": [((), {})],
    "ELU": [((0.5,), {})], "CELU": [((0.5,), {})], "LeakyReLU": [((0.2,), {})],
    "GELU": [((), {"approximate": "tanh"}), ((), {})], "GLU": [((), {"dim": 1})],
    "Hardsigmoid": [((), {})], "Hardswish": [((), {})], "Hardtanh": [((-2.0, 3.0), {})],
    "LogSigmoid": [((), {})], "Softplus": [((), {"beta": 2.0, "threshold": 10.0})],
    "Softmax": [((), {"dim": 1}), ((), {})], "LogSoftmax": [((), {"dim": 1})],
    "PReLU": [((), {"num_parameters": 3, "init": 0.1})],
    "LSTM": [((3, 4), {"num_layers": 2, "bias": False, "batch_first": True, "dropout": 0.5,
                       "bidirectional": True, "proj_size": 2})],
    "GRU": [((3, 4), {"num_layers": 2, "bias": False, "batch_first": True, "dropout": 0.5,
                      "bidirectional": True})],
    "RNN": [((3, 4), {"num_layers": 2, "nonlinearity": "relu", "bias": False, "dropout": 0.5})],
    "LSTMCell": [((3, 4), {"bias": False})], "GRUCell": [((3, 4), {})],
    "RNNCell": [((3, 4), {"bias": False, "nonlinearity": "relu"}), ((3, 4), {})],
    "MultiheadAttention": [((8, 2), {"dropout": 0.1, "bias": False, "kdim": 3, "vdim": 5,
                                     "batch_first": True})],
    "Upsample": [((), {"scale_factor": 2, "mode": "bilinear", "align_corners": True}),
                 ((), {"size": (3, 4)}), ((), {"scale_factor": 1.5})],
    "UpsamplingBilinear2d": [((), {"scale_factor": 2})], "UpsamplingNearest2d": [((), {"size": 5})],
}
CONTAINERS = ("Module", "Sequential", "ModuleList", "ModuleDict")


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


def test_every_module_both_libraries_have_is_in_the_tables():
    # a module added to tinynet.nn later must join the comparison
    shared = {n for n in dir(nn) if isinstance(getattr(nn, n), type)
              and issubclass(getattr(nn, n), nn.Module) and hasattr(torch.nn, n)}
    assert shared == set(LOSSES) | set(MODULES) | set(CONTAINERS)


@pytest.mark.parametrize("name,args,kwargs", _cases(MODULES))
def test_module_repr_matches_torch(name, args, kwargs):
    with warnings.catch_warnings():       # dropout with num_layers=1 and the like: both warn
        warnings.simplefilter("ignore", UserWarning)
        ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)


def test_pooling_windows_keep_the_arguments_form_like_torch():
    # PyTorch keeps kernel_size/stride/padding/dilation as given (stride None -> kernel_size)
    for args, kwargs in [((3,), {}), (((2, 3),), {"stride": [1, 2], "padding": (1, 0)})]:
        ours, theirs = nn.MaxPool2d(*args, **kwargs), torch.nn.MaxPool2d(*args, **kwargs)
        for attribute in ("kernel_size", "stride", "padding", "dilation"):
            assert getattr(ours, attribute) == getattr(theirs, attribute)
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    y = nn.MaxPool2d((2, 3), stride=[1, 2], padding=(1, 0))(tn.tensor(x.numpy()))
    assert np.array_equal(y.numpy(), torch.nn.MaxPool2d((2, 3), stride=[1, 2], padding=(1, 0))(x).numpy())


def test_containers_print_their_children_like_torch():
    def build(m):
        return m.Sequential(m.Linear(2, 3), m.ReLU(), m.ModuleList([m.Tanh(), m.MSELoss(reduction="sum")]),
                            m.ModuleDict({"a": m.Identity(), "pool": m.MaxPool2d(2)}))
    assert repr(build(nn)) == repr(build(torch.nn))
