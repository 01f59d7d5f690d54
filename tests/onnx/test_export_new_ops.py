"""tinynet.onnx.export of the newer activations, pad modes, interpolate modes, adaptive max
pooling, norms with and without bias and Embedding(max_norm): ONNX Runtime gives tinynet's outputs
(float32, rtol 1e-4) at a batch size other than the traced one, at the default opset and
at the opsets where a better ONNX op exists; what ONNX cannot express is refused by name."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import nn
from tinynet.onnx import UnsupportedOperatorError, export

onnx = pytest.importorskip("onnx", reason="the optional 'onnx' package is not installed "
                           "(pip install tinynet[onnx])")
ort = pytest.importorskip("onnxruntime", reason="the optional 'onnxruntime' package is not "
                          "installed (pip install tinynet[onnx])")


def run_onnx(path, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def tinynet_output(model, x):
    model.eval()
    with tn.no_grad():
        return model(tn.tensor(x)).numpy()


class Lambda(nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


def check(model, shape, tmp_path, opset=17, scale=1.0, run_batch=3, special=()):
    """Exports at ``opset`` traced on batch 2, compares ONNX Runtime with tinynet on batch
    ``run_batch`` (``special`` values written into the input's first entries: the kinks);
    returns the node types."""
    rng = np.random.default_rng(0)
    path = tmp_path / f"m{opset}.onnx"
    model.eval()
    proto = export(model, tn.tensor((rng.standard_normal((2,) + shape) * scale).astype(np.float32)),
                   path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x = (rng.standard_normal((run_batch,) + shape) * scale).astype(np.float32)
    x.reshape(-1)[:len(special)] = special
    got, expected = run_onnx(path, x), tinynet_output(model, x)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    return [n.op_type for n in proto.graph.node]


class FunctionalPReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("slope", tn.tensor(np.float32([0.25, -1.0, 2.0, 0.0])))

    def forward(self, x):
        return F.prelu(x, self.slope)


def prelu_model(channels):
    tn.manual_seed(1)
    model = nn.PReLU(channels)
    with tn.no_grad():
        model.weight.data[...] = tn.tensor(np.linspace(-0.5, 1.5, channels).astype(np.float32)).data
    return model


KINKS = [0.0, -3.0, 3.0, 1.5, -1.5, 30.0, -30.0, 95.0, -95.0, 6.0, -0.5, 2.0]
ACTIVATIONS = {   # name: (model, ONNX ops the graph must have, at opset 17)
    "softplus": (lambda: nn.Softplus(), {"Softplus", "Where", "Greater"}),
    "softplus-beta-threshold": (lambda: nn.Softplus(beta=2.0, threshold=3.0), {"Softplus", "Div"}),
    "hardtanh": (lambda: nn.Hardtanh(-0.5, 2.0), {"Clip"}),
    "relu6": (lambda: nn.ReLU6(), {"Clip"}),
    "selu": (lambda: nn.SELU(), {"Selu"}),
    "celu": (lambda: nn.CELU(0.7), {"Celu"}),
    "celu-negative-alpha": (lambda: nn.CELU(-0.5), {"Celu"}),
    "mish": (lambda: nn.Mish(), {"Softplus", "Tanh", "Mul"}),
    "hardswish": (lambda: nn.Hardswish(), {"HardSwish"}),
    "hardsigmoid": (lambda: nn.Hardsigmoid(), {"HardSigmoid"}),
    "logsigmoid": (lambda: nn.LogSigmoid(), {"Softplus", "Neg"}),
    "glu": (lambda: nn.GLU(dim=1), {"Slice", "Sigmoid", "Mul"}),
    "prelu-per-channel": (lambda: prelu_model(4), {"PRelu"}),
    "prelu-one-weight": (lambda: prelu_model(1), {"PRelu"}),
    "F.prelu": (lambda: FunctionalPReLU(), {"PRelu"}),
    "softmax-dtype": (lambda: Lambda(lambda x: F.softmax(x, 1, dtype=tn.float64)), {"Cast", "Softmax"}),
    "log_softmax-dtype": (lambda: Lambda(lambda x: F.log_softmax(x, -1, dtype=tn.float64)),
                          {"Cast", "LogSoftmax"}),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activations_match_onnx_runtime(name, tmp_path):
    """Input with both tails (±95: softplus's linear region, logsigmoid below float32's
    exp range) and every kink (0, ±3, 6) set exactly."""
    make, ops = ACTIVATIONS[name]
    types = check(make(), (4, 3, 5), tmp_path, scale=4.0, special=KINKS)
    assert ops <= set(types), types


@pytest.mark.parametrize("opset, fused", [(13, False), (17, False), (18, True), (19, True)])
def test_mish_is_one_node_from_opset_18(opset, fused, tmp_path):
    types = check(Lambda(lambda x: F.mish(x)), (4, 3), tmp_path, opset=opset, scale=4.0, special=KINKS)
    assert ("Mish" in types) == fused and ("Softplus" in types) != fused


@pytest.mark.parametrize("opset", [13, 14])
def test_hardswish_before_and_after_its_onnx_op(opset, tmp_path):
    types = check(nn.Hardswish(), (6,), tmp_path, opset=opset, scale=4.0, special=KINKS)
    assert ("HardSwish" in types) == (opset >= 14)


# ------------------------------------------------------------------ padding
PADS = {
    "reflect": lambda x: F.pad(x, (1, 2, 2, 1), mode="reflect"),
    "reflect-negative": lambda x: F.pad(x, (-1, 2, 3, -4), mode="reflect"),
    "replicate": lambda x: F.pad(x, (3, 0, 1, 2), mode="replicate"),
    "replicate-negative": lambda x: F.pad(x, (2, -3, -1, 1), mode="replicate"),
    "replicate-3d": lambda x: F.pad(x[:, None], (1, 1, 0, 2, 1, 0), mode="replicate"),
    "circular": lambda x: F.pad(x, (1, 5, 2, 0), mode="circular"),
    "circular-negative": lambda x: F.pad(x, (-2, 1, 3, -1), mode="circular"),
    "reflect-1d": lambda x: F.pad(x.flatten(2), (3, 2), mode="reflect"),
}


@pytest.mark.parametrize("opset", [17, 19])
@pytest.mark.parametrize("name", list(PADS))
def test_pad_modes_match_onnx_runtime(name, opset, tmp_path):
    types = check(Lambda(PADS[name]), (3, 5, 6), tmp_path, opset=opset)
    mode = name.split("-")[0]
    assert "Gather" not in types
    if mode == "circular" and opset < 19:
        assert "Concat" in types and "Pad" not in types
    else:
        assert "Pad" in types


def test_pad_modes_become_onnx_pad_modes(tmp_path):
    modes = {}
    for mode, opset in (("reflect", 17), ("replicate", 17), ("circular", 19)):
        proto = export(Lambda(lambda x: F.pad(x, (1, 1), mode=mode)), tn.zeros(1, 2, 4),
                       tmp_path / "p.onnx", opset=opset)
        (node,) = [n for n in proto.graph.node if n.op_type == "Pad"]
        modes[mode] = onnx.helper.get_attribute_value(node.attribute[0]).decode()
    assert modes == {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@pytest.mark.parametrize("padding_mode", ["reflect", "replicate", "circular"])
def test_conv_padding_modes(padding_mode, tmp_path):
    tn.manual_seed(2)
    conv = nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode=padding_mode)
    types = check(conv, (3, 5, 6), tmp_path)
    assert "Conv" in types
    conv1d = nn.Conv1d(3, 2, 3, padding=2, dilation=2, padding_mode=padding_mode)
    check(conv1d, (3, 7), tmp_path)


# ------------------------------------------------------------------ interpolate
INTERPOLATIONS = {   # name: (function, spatial dims, node at opset 17, node at opset 18)
    "nearest": (lambda x: F.interpolate(x, scale_factor=2), 2, "Resize", "Resize"),
    "nearest-size": (lambda x: F.interpolate(x, size=(7, 4)), 2, "Resize", "Resize"),
    "nearest-scale-1/s": (lambda x: F.interpolate(x, scale_factor=1.5), 2, "Gather", "Gather"),
    "nearest-exact": (lambda x: F.interpolate(x, size=(9, 4), mode="nearest-exact"), 2, "Resize", "Resize"),
    "nearest-exact-1d": (lambda x: F.interpolate(x, size=13, mode="nearest-exact"), 1, "Resize", "Resize"),
    "linear": (lambda x: F.interpolate(x, size=11, mode="linear"), 1, "Resize", "Resize"),
    "linear-align-corners-1/s": (lambda x: F.interpolate(x, scale_factor=1.7, mode="linear",
                                                         align_corners=True), 1, "Gather", "Gather"),
    "bilinear": (lambda x: F.interpolate(x, size=(8, 9), mode="bilinear"), 2, "Resize", "Resize"),
    "bilinear-recompute": (lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear",
                                                   recompute_scale_factor=True), 2, "Resize", "Resize"),
    "bilinear-antialias": (lambda x: F.interpolate(x, size=(3, 2), mode="bilinear", antialias=True),
                           2, "Gather", "Resize"),
    "bilinear-antialias-align-corners": (lambda x: F.interpolate(
        x, size=(3, 2), mode="bilinear", antialias=True, align_corners=True), 2, "Gather", "Gather"),
    "bicubic-1/s": (lambda x: F.interpolate(x, scale_factor=(1.5, 2), mode="bicubic"), 2, "Gather", "Gather"),
    "bicubic": (lambda x: F.interpolate(x, scale_factor=(3, 0.5), mode="bicubic"), 2, "Resize", "Resize"),
    "bicubic-antialias": (lambda x: F.interpolate(x, size=(2, 4), mode="bicubic", antialias=True),
                          2, "Gather", "Resize"),
    "bicubic-align-corners": (lambda x: F.interpolate(x, size=(4, 7), mode="bicubic",
                                                      align_corners=True), 2, "Resize", "Resize"),
    "area-uniform": (lambda x: F.interpolate(x, size=(5, 3), mode="area"), 2, "AveragePool", "AveragePool"),
    "area-uneven": (lambda x: F.interpolate(x, size=(3, 4), mode="area"), 2, "Gather", "Gather"),
    "trilinear": (lambda x: F.interpolate(x[:, None], size=(2, 7, 3), mode="trilinear"), 2, "Resize", "Resize"),
    "Upsample": (lambda x: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(x), 2,
                 "Resize", "Resize"),
}


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("name", list(INTERPOLATIONS))
def test_interpolate_modes_match_onnx_runtime(name, opset, tmp_path):
    """Resize where its coordinates are PyTorch's, else the recorded resampling as Gathers."""
    function, spatial, *nodes = INTERPOLATIONS[name]
    shape = (3, 5, 6) if spatial == 2 else (3, 5)
    types = check(Lambda(function), shape, tmp_path, opset=opset)
    node = nodes[opset - 17]
    assert node in types and not {"Resize", "Gather", "AveragePool"} - {node} & set(types), types


class Sizes(nn.Module):
    """x resized to each width in ``sizes``, then by each scale factor in ``scales``."""

    def __init__(self, sizes, scales, **kwargs):
        super().__init__()
        self.sizes, self.scales, self.kwargs = sizes, scales, kwargs

    def forward(self, x):
        return tuple(F.interpolate(x, size=(1, m), **self.kwargs) for m in self.sizes) + \
            tuple(F.interpolate(x, scale_factor=(1, s), **self.kwargs) for s in self.scales)


@pytest.mark.parametrize("kwargs", [dict(mode="nearest"), dict(mode="nearest-exact"),
                                    dict(mode="bilinear"), dict(mode="bilinear", align_corners=True),
                                    dict(mode="bicubic"), dict(mode="bicubic", align_corners=True),
                                    dict(mode="bilinear", antialias=True), dict(mode="bicubic", antialias=True)])
def test_resize_attributes_on_every_size_pair(kwargs, tmp_path):
    """Each Resize configuration against tinynet for every input width 1..9 and output
    width 1..20, and the scale factors that give out = in·s (PyTorch's coordinates then
    use 1/s, Resize's in/out): the rounding of nearest's source index and the edge
    handling of the filters are where ONNX's coordinate modes and PyTorch's part ways."""
    rng = np.random.default_rng(8)
    sizes = range(1, 21)
    for n in range(1, 10):
        scales = [s for s in (1 / 3, 0.25, 0.5, 0.75, 1.5, 2, 2.5, 3, 4) if (n * s) % 1 == 0 and n * s >= 1]
        model = Sizes(sizes, scales, **kwargs)
        x = rng.standard_normal((2, 2, 1, n)).astype(np.float32)
        proto = export(model, tn.tensor(x), tmp_path / "s.onnx", opset=18)
        assert [t.op_type for t in proto.graph.node].count("Resize") == len(sizes) + len(scales)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(tmp_path / "s.onnx"), options, providers=["CPUExecutionProvider"])
        with tn.no_grad():
            expected = model(tn.tensor(x))
        outputs = session.run(None, {"input": x})
        assert len(outputs) == len(expected)
        for m, got, e in zip(list(sizes) + scales, outputs, expected):
            np.testing.assert_allclose(got, e.numpy(), rtol=1e-4, atol=1e-5, err_msg=f"{n} -> {m}")


# ------------------------------------------------------------------ pooling, norms, embedding
def test_adaptive_max_pool2d_with_uniform_bins_is_maxpool(tmp_path):
    types = check(nn.AdaptiveMaxPool2d((3, 2)), (2, 6, 6), tmp_path)
    assert types.count("MaxPool") == 1


def test_adaptive_max_pool2d_with_uneven_bins_is_refused(tmp_path):
    with pytest.raises(UnsupportedOperatorError, match=r"adaptive_max_pool2d from \(5, 6\) to "
                                                       r"\(3, 3\).*bins are uneven"):
        export(nn.AdaptiveMaxPool2d(3), tn.zeros(1, 2, 5, 6), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(UnsupportedOperatorError, match="return_indices=True"):
        export(Lambda(lambda x: F.adaptive_max_pool2d(x, 2, return_indices=True)[0]),
               tn.zeros(1, 2, 4, 4), tmp_path / "m.onnx")


NORMS = {   # name: (model, node at opset 13, 17, 21)
    "LayerNorm": (lambda: nn.LayerNorm(6), ("ReduceSum", "LayerNormalization", "LayerNormalization")),
    "LayerNorm-no-bias": (lambda: nn.LayerNorm((5, 6), bias=False),
                          ("ReduceSum", "LayerNormalization", "LayerNormalization")),
    "LayerNorm-no-affine": (lambda: nn.LayerNorm(6, elementwise_affine=False),
                            ("ReduceSum", "LayerNormalization", "LayerNormalization")),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), ("ReduceSum",) * 3),
    "GroupNorm-no-bias": (lambda: nn.GroupNorm(2, 4, bias=False), ("ReduceSum",) * 3),
    "GroupNorm-no-affine": (lambda: nn.GroupNorm(4, 4, affine=False), ("ReduceSum",) * 3),
    "BatchNorm2d-no-bias": (lambda: nn.BatchNorm2d(4, bias=False), ("BatchNormalization",) * 3),
}


@pytest.mark.parametrize("opset", [13, 17, 21])
@pytest.mark.parametrize("name", list(NORMS))
def test_norms_with_and_without_bias(name, opset, tmp_path):
    """LayerNormalization from opset 17, its arithmetic below; GroupNorm as its arithmetic
    (onnx's shape inference gives GroupNormalization-21 no output type, so the checked
    export would fail); BatchNormalization with a zero shift without a bias."""
    tn.manual_seed(3)
    make, nodes = NORMS[name]
    model = make()
    with tn.no_grad():
        if model.weight is not None:
            w = np.linspace(0.5, 2.0, int(np.prod(model.weight.shape))).astype(np.float32)
            model.weight.data[...] = tn.tensor(w.reshape(model.weight.shape)).data
        if getattr(model, "bias", None) is not None:
            model.bias.data[...] = tn.tensor(np.full(model.bias.shape, 0.3, np.float32)).data
        if isinstance(model, nn.BatchNorm2d):
            model.running_mean.data[...] = tn.tensor(np.float32([0.5, -1, 0, 2])).data
            model.running_var.data[...] = tn.tensor(np.float32([0.5, 2, 1, 3])).data
    types = check(model, (4, 5, 6), tmp_path, opset=opset, scale=2.0)
    assert nodes[(13, 17, 21).index(opset)] in types, types


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_embedding_max_norm_renormalizes_rows_the_trace_never_saw(norm_type, tmp_path):
    """The example looks up rows 0-2 only; rows 3-9 keep their large norms in the exported
    table, and the graph must rescale them as tinynet does when it looks them up."""
    tn.manual_seed(4)
    model = nn.Embedding(10, 5, max_norm=1.5, norm_type=norm_type)
    with tn.no_grad():
        model.weight.data[...] *= 3.0
    path = tmp_path / "e.onnx"
    proto = export(model, tn.tensor(np.array([[0, 1, 2]])), path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    ids = np.array([[3, 4, 5], [9, 8, 0], [7, 6, 6]])
    got = run_onnx(path, ids)                  # before tinynet's lookup renormalizes the rows
    before = model.weight.detach().numpy()[ids]
    expected = tinynet_output(model, ids)
    assert not np.allclose(before, expected)   # the rows were over max_norm
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert "Where" in [n.op_type for n in proto.graph.node]


def test_opaque_functions_are_restored_after_export_and_after_a_failure(tmp_path):
    import tinynet.functional.activation as activation
    import tinynet.functional.padding as padding
    import tinynet.nn.functional as nn_functional
    originals = (F.prelu, F.mish, F.selu, F.interpolate, F.layer_norm, activation.prelu, activation.mish,
                 padding.pad_edges)
    export(nn.Sequential(nn.PReLU(), nn.Mish(), nn.SELU(), nn.LayerNorm(2)), tn.zeros(1, 2), tmp_path / "ok.onnx")
    with pytest.raises(UnsupportedOperatorError):
        export(nn.Sequential(nn.PReLU(), nn.AdaptiveMaxPool2d(3)), tn.zeros(1, 1, 4, 4), tmp_path / "bad.onnx")
    assert (F.prelu, F.mish, F.selu, F.interpolate, F.layer_norm, activation.prelu, activation.mish,
            padding.pad_edges) == originals
    assert nn_functional.prelu is F.prelu


def test_functions_bound_before_the_export_record_their_inner_ops(tmp_path):
    """A module that bound mish / prelu itself calls the unwrapped function: mish exports
    as its arithmetic, still exact; prelu's mask select is refused by name."""
    from tinynet.functional import mish as bound_mish, prelu as bound_prelu
    types = check(Lambda(bound_mish), (4,), tmp_path, opset=18, scale=4.0, special=KINKS[:4])
    assert "Mish" not in types and {"Softplus", "Tanh"} <= set(types)
    model = FunctionalPReLU()
    model.forward = lambda x: bound_prelu(x, model.slope)
    with pytest.raises(UnsupportedOperatorError, match="op Where has no ONNX conversion"):
        export(model, tn.zeros(1, 4, 2), tmp_path / "p.onnx")


from hypothesis import given, settings, strategies as st   # noqa: E402


@st.composite
def pads(draw):
    k = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(k))
    mode = draw(st.sampled_from(["reflect", "replicate", "circular"]))
    widths = tuple(draw(st.integers(-n + 1, n if mode == "circular" else max(n - 1, 0) if mode == "reflect" else 4))
                   for n in reversed(shape) for _ in range(2))
    return shape, mode, widths, draw(st.sampled_from([17, 19]))


@settings(max_examples=25, deadline=None)
@given(pads())
def test_drawn_edge_pads_match_onnx_runtime(tmp_path_factory, case):
    """Every edge mode on 1, 2 or 3 padded dims with negative sizes drawn too: ONNX's Pad
    conventions (begin..., end...; the edge modes on the uncropped input) against tinynet's."""
    shape, mode, widths, opset = case
    model = Lambda(lambda x: F.pad(x, widths, mode=mode))
    x = np.random.default_rng(0).standard_normal((2, 2) + shape).astype(np.float32)
    try:
        tinynet_output(model, x)
    except ValueError:       # sizes the mode does not allow (PyTorch refuses them too)
        return
    path = tmp_path_factory.mktemp("pads") / "m.onnx"
    export(model, tn.tensor(x), path, opset=opset)
    got, expected = run_onnx(path, x), tinynet_output(model, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)


def test_celu_in_float64_is_its_equation(tmp_path):
    """ONNX's Celu is float32 only: a float64 model gets Where(x > 0, x, α·(exp(x/α) - 1))."""
    model = Lambda(lambda x: F.celu(x, 0.7))
    x = np.array([[-3.0, -0.5, 0.0, 0.25, 4.0, -40.0]])
    proto = export(model, tn.tensor(x), tmp_path / "c.onnx")
    assert "Celu" not in [n.op_type for n in proto.graph.node]
    np.testing.assert_allclose(run_onnx(tmp_path / "c.onnx", x), tinynet_output(model, x), rtol=1e-12)


def test_circular_pad_that_crops_a_dim_to_nothing_exports_at_opset_19(tmp_path):
    """ONNX Runtime's Pad 'wrap' fails on an empty tensor ("Unexpected mode of 3"): a
    circular pad whose crop leaves a dim of size 0 goes through Slice + Concat instead."""
    model = Lambda(lambda x: F.pad(x, (0, 1, -1, -3), mode="circular"))
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 1)).astype(np.float32)
    export(model, tn.tensor(x), tmp_path / "p.onnx", opset=19)
    got, expected = run_onnx(tmp_path / "p.onnx", x), tinynet_output(model, x)
    assert got.shape == expected.shape == (2, 2, 0, 2)
