"""tinynet.onnx.export: every model the package ships passes onnx.checker and runs in ONNX
Runtime with tinynet's outputs (rtol 1e-4, float32), at batch sizes other than the traced
one; ops without an export are named in the error."""
import sys

import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet import nn
from tinynet.models import LSTMClassifier, LSTMRegressor, SimpleCNN, UNet, resnet18, resnet34
from tinynet.onnx import UnsupportedOperatorError, export

onnx = pytest.importorskip("onnx", reason="the optional 'onnx' package is not installed "
                           "(pip install tinynet[onnx])")
ort = pytest.importorskip("onnxruntime", reason="the optional 'onnxruntime' package is not "
                          "installed (pip install tinynet[onnx])")


def run_onnx(path, *arrays):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, arrays)))


def tinynet_outputs(model, *arrays):
    model.eval()
    with tn.no_grad():
        out = model(*(tn.tensor(a) for a in arrays))
    flat, stack = [], [out]
    while stack:                        # depth first, in order: (out, (h, c)) -> out, h, c
        item = stack.pop(0)
        if isinstance(item, tuple):
            stack[:0] = list(item)
        else:
            flat.append(item.numpy())
    return flat


def assert_same_as_tinynet(model, path, shapes, rng, scale=1.0):
    """ONNX Runtime and tinynet agree at each input shape (batch sizes differ from the trace)."""
    for shape in shapes:
        x = (rng.standard_normal(shape) * scale).astype(np.float32)
        expected = tinynet_outputs(model, x)
        got = run_onnx(path, x)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def exported(model, shape, path, rng, scale=1.0):
    model.eval()
    proto = export(model, tn.tensor((rng.standard_normal(shape) * scale).astype(np.float32)), path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return proto


def op_types(proto):
    return [n.op_type for n in proto.graph.node]


def with_moved_batchnorm_statistics(model, shape):
    model.train()
    with tn.no_grad():
        for _ in range(2):
            model(tn.randn(*shape) * 2.0 + 0.5)
    model.eval()
    return model


MODELS = {
    "SimpleCNN": (lambda: SimpleCNN(dropout=0.3), (2, 1, 8, 8), [(1, 1, 8, 8), (5, 1, 8, 8)], 1.0),
    "resnet18-imagenet-stem": (lambda: with_moved_batchnorm_statistics(
        resnet18(num_classes=7, in_channels=3, width=4), (4, 3, 32, 32)),
        (2, 3, 32, 32), [(3, 3, 32, 32), (1, 3, 32, 32)], 1.0),
    "resnet34-cifar-stem": (lambda: with_moved_batchnorm_statistics(
        resnet34(num_classes=10, in_channels=1, stem="cifar", width=2), (4, 1, 16, 16)),
        (2, 1, 16, 16), [(3, 1, 16, 16)], 1.0),
    "UNet-width4-depth2": (lambda: UNet(in_channels=1, num_classes=3, base_width=4, depth=2),
                           (2, 1, 16, 16), [(3, 1, 16, 16)], 255.0),
    "UNet-width16-seed": (lambda: UNet(), (1, 3, 32, 32), [(2, 3, 32, 32)], 255.0),
    "LSTMClassifier-2layer-bidirectional": (
        lambda: LSTMClassifier(input_size=5, hidden_size=7, num_classes=3, num_layers=2, bidirectional=True),
        (2, 6, 5), [(4, 6, 5), (1, 6, 5)], 1.0),
    "LSTMRegressor": (lambda: LSTMRegressor(), (3, 10, 5), [(2, 10, 5), (7, 10, 5)], 1.0),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_shipped_models_run_in_onnx_runtime_with_tinynets_outputs(name, tmp_path):
    make, trace_shape, run_shapes, scale = MODELS[name]
    rng = np.random.default_rng(0)
    tn.manual_seed(0)
    model = make()
    path = tmp_path / f"{name}.onnx"
    proto = exported(model, trace_shape, path, rng, scale)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert "Dropout" not in op_types(proto)
    assert_same_as_tinynet(model, path, [trace_shape] + run_shapes, rng, scale)


def test_layers_become_their_onnx_ops(tmp_path):
    rng = np.random.default_rng(1)
    kinds = {}
    for name in ("resnet18-imagenet-stem", "UNet-width4-depth2", "LSTMClassifier-2layer-bidirectional",
                 "SimpleCNN"):
        make, shape, _, scale = MODELS[name]
        kinds[name] = op_types(exported(make(), shape, tmp_path / "m.onnx", rng, scale))
    resnet = kinds["resnet18-imagenet-stem"]
    assert resnet.count("BatchNormalization") == 20 and resnet.count("Conv") == 20
    assert {"MaxPool", "ReduceSum", "Gemm", "Add", "Relu"} <= set(resnet)
    unet = kinds["UNet-width4-depth2"]
    assert unet.count("ConvTranspose") == 2 and unet.count("Concat") == 2 and "Sigmoid" in unet
    assert unet.count("Elu") == 10 and unet.count("MaxPool") == 2
    assert kinds["LSTMClassifier-2layer-bidirectional"].count("LSTM") == 2
    # Sequential runs a ReLU followed by a max pool as the pool, then the ReLU
    assert kinds["SimpleCNN"][:3] == ["Conv", "MaxPool", "Relu"]


def test_parameters_are_initializers_named_by_state_dict_key(tmp_path):
    model = SimpleCNN()
    proto = exported(model, (1, 1, 8, 8), tmp_path / "m.onnx", np.random.default_rng(0))
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(initializers[key], value.numpy())


class RecurrentWithState(nn.Module):
    def __init__(self, kind, **kwargs):
        super().__init__()
        self.rnn = getattr(nn, kind)(4, 3, **kwargs)

    def forward(self, x, *states):
        if isinstance(self.rnn, nn.LSTM):
            out, (h, c) = self.rnn(x, tuple(states))
            return out, h, c
        out, h = self.rnn(x, states[0])
        return out, h


RECURRENT = [("LSTM", dict()), ("LSTM", dict(num_layers=2, bidirectional=True)),
             ("LSTM", dict(num_layers=3, batch_first=True)), ("LSTM", dict(bias=False)),
             ("GRU", dict(num_layers=2, bidirectional=True, batch_first=True)),
             ("RNN", dict(nonlinearity="relu", num_layers=2)), ("RNN", dict(bidirectional=True))]


@pytest.mark.parametrize("kind, kwargs", RECURRENT)
def test_recurrent_gate_order_states_and_all_outputs(kind, kwargs, tmp_path):
    """ONNX orders LSTM gates i, o, f, c (tinynet i, f, g, o) and GRU gates z, r, h
    (tinynet r, z, n): any slip changes every output."""
    tn.manual_seed(3)
    model = RecurrentWithState(kind, **kwargs)
    L = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    n_states = 2 if kind == "LSTM" else 1
    rng = np.random.default_rng(3)

    def arrays(batch):
        x = rng.standard_normal((batch, 5, 4) if kwargs.get("batch_first") else (5, batch, 4))
        return [a.astype(np.float32) for a in [x] + [rng.standard_normal((L, batch, 3))] * n_states]
    path = tmp_path / "rnn.onnx"
    batch_axis = 0 if kwargs.get("batch_first") else 1
    proto = export(model, tuple(tn.tensor(a) for a in arrays(2)), path,
                   batch_axes=(batch_axis,) + (1,) * n_states)
    assert [i.name for i in proto.graph.input] == [f"input_{i}" for i in range(1 + n_states)]
    assert op_types(proto).count(kind) == kwargs.get("num_layers", 1)
    for batch in (2, 3):
        xs = arrays(batch)
        for got, expected in zip(run_onnx(path, *xs), tinynet_outputs(model, *xs)):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


class Unrolled(nn.Module):
    """A Python loop over a cell: the trace unrolls it into one ONNX op per step."""

    def __init__(self, kind):
        super().__init__()
        self.cell = getattr(nn, kind)(4, 3)

    def forward(self, x, *state):
        state = (tuple(state) if len(state) == 2 else state[0]) if state else None
        outputs = []
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        return tn.stack(outputs, 1)


@pytest.mark.parametrize("kind, with_state", [("LSTMCell", True), ("LSTMCell", False),
                                              ("GRUCell", True), ("RNNCell", False)])
def test_cells_in_a_python_loop(kind, with_state, tmp_path):
    tn.manual_seed(6)
    model = Unrolled(kind)
    rng = np.random.default_rng(6)
    n_states = (2 if kind == "LSTMCell" else 1) if with_state else 0

    def arrays(batch):
        return [rng.standard_normal((batch, 3, 4)).astype(np.float32)] + \
            [rng.standard_normal((batch, 3)).astype(np.float32) for _ in range(n_states)]
    proto = export(model, tuple(tn.tensor(a) for a in arrays(2)), tmp_path / "cell.onnx")
    assert op_types(proto).count(kind[:-4]) == 3
    for batch in (2, 5):
        xs = arrays(batch)
        (got,), (expected,) = run_onnx(tmp_path / "cell.onnx", *xs), tinynet_outputs(model, *xs)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_unbatched_sequences_without_initial_state(tmp_path):
    tn.manual_seed(5)
    lstm = nn.LSTM(4, 3, num_layers=2)
    proto = export(lstm, tn.zeros(6, 4), tmp_path / "u.onnx", dynamic_batch=False)
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [6, 4]
    x = np.random.default_rng(5).standard_normal((6, 4)).astype(np.float32)
    for got, expected in zip(run_onnx(tmp_path / "u.onnx", x), tinynet_outputs(lstm, x)):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


class ManyOps(nn.Module):
    """One of each op the models above do not use."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.bn = nn.BatchNorm1d(6, affine=False)
        self.fc = nn.Linear(6, 4)
        self.norm = nn.LayerNorm(4)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x):
        y = self.pool(self.act(self.up(x)))                       # (N, 2, 4, 4)
        y = F.pad(y, (1, 0, 0, 2), value=0.5).permute(0, 2, 3, 1)  # (N, 6, 5, 2)
        z = y.flatten(2)                                            # (N, 6, 10)
        z = F.cat([z[:, :, 1::3], z[:, :, :2], z[..., -1:]], dim=2)   # (N, 6, 6)
        z = self.norm(self.fc(z.tanh()))                           # Linear on 3-D input
        w = self.bn(z.mean(dim=2, keepdim=True).reshape(-1, 6))   # (N, 6)
        v = F.softmax(z, -1) + F.log_softmax(z, 1) - z.exp() / (z.abs() + 1.0).sqrt()
        v = tn.maximum(v, z.clamp(-0.5, 0.5) ** 2) * w[:, :, None]
        return v.sum(dim=(1, 2)) + F.elu(v, 0.5).max() - v.min(dim=1)[0].sum(dim=1)


@pytest.mark.parametrize("opset", [13, 17, 18])      # ReduceMax takes its axes as an input from 18
def test_the_other_ops_agree_with_onnx_runtime(opset, tmp_path):
    tn.manual_seed(4)
    model = ManyOps()
    with tn.no_grad():
        model.bn.running_mean.data[...] = tn.tensor(np.linspace(-1, 1, 6)).data
        model.bn.running_var.data[...] = tn.tensor(np.linspace(0.5, 2, 6)).data
    path = tmp_path / "ops.onnx"
    proto = export(model, tn.tensor(np.random.default_rng(5).standard_normal((2, 3, 4, 4)).astype(np.float32)),
                   path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert proto.opset_import[0].version == opset
    assert {"ConvTranspose", "AveragePool", "LeakyRelu", "Pad", "Transpose", "Slice", "MatMul",
            "BatchNormalization", "Softmax", "LogSoftmax", "Clip", "Max", "ReduceMax", "ReduceMin", "Elu"} <= set(op_types(proto))
    assert_same_as_tinynet(model, path, [(2, 3, 4, 4), (5, 3, 4, 4)], np.random.default_rng(6))


class Gate(nn.Module):
    def forward(self, x):
        return tn.where(x > 0, x, x * 0.1)


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = Gate()

    def forward(self, x):
        return self.gate(x) + 1.0


def test_export_restores_training_mode_and_writes_nothing_on_failure(tmp_path):
    model = SimpleCNN(dropout=0.5)
    model.train()
    export(model, tn.zeros(1, 1, 8, 8), tmp_path / "ok.onnx")
    assert all(m.training for m in model.modules())

    with pytest.raises(UnsupportedOperatorError, match=r"op Where \(called in module 'gate'\)"):
        export(Gated(), tn.ones(2, 3), tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


def test_ops_without_an_export_are_named(tmp_path):
    class Indices(nn.Module):
        def forward(self, x):
            return x.max(dim=1)[1].to(tn.float32)

    class Mask(nn.Module):
        def forward(self, x):
            return x[tn.tensor(np.array([0, 1]))]

    with pytest.raises(UnsupportedOperatorError, match=r"op ToDtype receives a tensor of shape \(2,\)"):
        export(Indices(), tn.ones(2, 3), tmp_path / "a.onnx")
    with pytest.raises(UnsupportedOperatorError, match="indexing with an array"):
        export(Mask(), tn.ones(2, 3), tmp_path / "b.onnx")
    with pytest.raises(UnsupportedOperatorError, match=r"op Where \(called in module 'gate'\)"):
        export(Gated(), tn.ones(2, 3), tmp_path / "c.onnx")

    with pytest.raises(UnsupportedOperatorError, match="LSTM with lengths"):
        class Lengths(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(3, 2)

            def forward(self, x):
                return self.lstm(x, lengths=[2, 1])[0]
        export(Lengths(), tn.ones(2, 2, 3), tmp_path / "d.onnx")


def test_bad_arguments(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"opset must be an int in \[13, "):
        export(SimpleCNN(), tn.zeros(1, 1, 8, 8), tmp_path / "m.onnx", opset=9)
    with pytest.raises(TypeError, match="example_input must be a Tensor"):
        export(SimpleCNN(), np.zeros((1, 1, 8, 8)), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="batch_axes has 2 entries for 1 inputs"):
        export(SimpleCNN(), tn.zeros(1, 1, 8, 8), tmp_path / "m.onnx", batch_axes=(0, 0))
    with pytest.raises(TypeError, match="model must be a tinynet Module"):
        export(lambda x: x, tn.zeros(1, 1, 8, 8), tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"tinynet\[onnx\]"):
        export(SimpleCNN(), tn.zeros(1, 1, 8, 8), tmp_path / "m.onnx")


def test_tracing_leaves_the_engine_as_it_was(tmp_path):
    from tinynet.autograd import Function
    apply, call = Function.__dict__["apply"], nn.Module.__call__
    with pytest.raises(UnsupportedOperatorError):
        export(Gated(), tn.ones(2, 3), tmp_path / "m.onnx")
    assert Function.__dict__["apply"] is apply and nn.Module.__call__ is call


class Offset(nn.Module):
    def __init__(self, as_buffer):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        offset = tn.tensor(np.arange(3, dtype=np.float32))
        if as_buffer:
            self.register_buffer("offset", offset)
        else:
            self.offset_array = offset.numpy()

    def forward(self, x):
        y = self.fc(x)
        if hasattr(self, "offset_array"):
            return y + tn.tensor(self.offset_array)       # made in forward: not traceable as such
        return y + self.offset


def test_values_the_trace_cannot_follow_are_refused_not_frozen(tmp_path):
    """A mask from a comparison would otherwise be frozen into the graph as the example's."""
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            y = self.fc(x)
            return y * (y > 0).to(tn.float32)
    with pytest.raises(UnsupportedOperatorError, match=r"op ToDtype receives a tensor of shape \(2, 3\) "
                                                       "that no traced op produced"):
        export(Masked(), tn.ones(2, 3), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOperatorError, match="register a constant with module.register_buffer"):
        export(Offset(as_buffer=False), tn.ones(2, 3), tmp_path / "m.onnx")
    model = Offset(as_buffer=True)
    proto = export(model, tn.ones(2, 3), tmp_path / "m.onnx")
    assert "offset" in {i.name for i in proto.graph.initializer}
    assert_same_as_tinynet(model, tmp_path / "m.onnx", [(4, 3)], np.random.default_rng(0))


from hypothesis import given, settings, strategies as st   # noqa: E402


@st.composite
def window_layers(draw):
    """A conv, a pooling layer and a transposed conv with drawn geometry that fits a 9x9 input."""
    groups = draw(st.sampled_from([1, 2]))
    k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    p = draw(st.integers(0, k // 2 + (d > 1)))
    conv = nn.Conv2d(2, 2 * groups, k, stride=s, padding=p, dilation=d, groups=groups,
                     bias=draw(st.booleans()))
    pk = draw(st.integers(1, 3))
    pool_kwargs = dict(stride=draw(st.integers(1, 2)), padding=draw(st.integers(0, pk // 2)),
                       ceil_mode=draw(st.booleans()))
    if draw(st.booleans()):
        pool = nn.MaxPool2d(pk, dilation=draw(st.integers(1, 2)) if pk > 1 else 1, **pool_kwargs)
    else:
        pool = nn.AvgPool2d(pk, count_include_pad=draw(st.booleans()), **pool_kwargs)
    ts, td = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    tk = draw(st.integers(1, 3))
    up = nn.ConvTranspose2d(2 * groups, 3, tk, stride=ts, padding=draw(st.integers(0, (tk - 1) * td // 2)),
                            output_padding=draw(st.integers(0, max(ts, td) - 1)), dilation=td)
    return nn.Sequential(conv, nn.Tanh(), pool, up)


@settings(max_examples=20, deadline=None)
@given(window_layers())
def test_window_geometry_matches_onnx_runtime(tmp_path_factory, model):
    """Strides, paddings, dilations, groups, ceil_mode and output_padding: ONNX's conventions
    (pads as begin..., end...; output_padding) against tinynet's, on drawn layers."""
    x = np.random.default_rng(0).standard_normal((2, 2, 9, 9)).astype(np.float32)
    try:
        with tn.no_grad():
            model.eval()
            model(tn.tensor(x))
    except ValueError:       # a drawn geometry this input does not fit: not an export question
        return
    path = tmp_path_factory.mktemp("geometry") / "m.onnx"
    export(model, tn.tensor(x), path)
    (got,), (expected,) = run_onnx(path, x), tinynet_outputs(model, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_sequence_models_with_embeddings_and_zero_initial_states(tmp_path):
    """CharLM: ids -> Embedding (Gather) -> LSTM -> Linear, with the LSTM's states as outputs;
    ConvLSTMForecaster: its cells start from zeros made in forward, rebuilt at the run-time
    batch size."""
    from tinynet.models import CharLM, ConvLSTMForecaster
    rng = np.random.default_rng(7)
    tn.manual_seed(7)
    lm = CharLM(vocab_size=11, embedding_dim=5, hidden_size=6, num_layers=2)
    proto = export(lm, tn.tensor(rng.integers(1, 11, (2, 7))), tmp_path / "lm.onnx")
    assert op_types(proto)[0] == "Gather" and op_types(proto).count("LSTM") == 2
    for batch in (2, 4):
        ids = rng.integers(0, 11, (batch, 7))
        for got, expected in zip(run_onnx(tmp_path / "lm.onnx", ids), tinynet_outputs(lm, ids)):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)

    forecaster = ConvLSTMForecaster(channels=1, hidden_channels=(3, 2), frames_out=2)
    proto = export(forecaster, tn.tensor(rng.standard_normal((2, 3, 1, 8, 8)).astype(np.float32)),
                   tmp_path / "cl.onnx")
    assert "ConstantOfShape" in op_types(proto)
    assert_same_as_tinynet(forecaster, tmp_path / "cl.onnx", [(2, 3, 1, 8, 8), (5, 3, 1, 8, 8)], rng)
