"""``export(model, example_input, path, opset=17)``: trace, convert, check, save (the
function behind ``tinynet.onnx.export``)."""
from __future__ import annotations


from .. import backend
from ..autograd import no_grad
from ..backend import numpy as np
from ..nn.module import Module
from ..tensor import Tensor
from . import functions, layers, ops
from .graph import GraphBuilder, UnsupportedOperatorError
from .trace import Trace, flatten_tensors

__all__ = ["export", "UnsupportedOperatorError"]

MIN_OPSET = 13     # Squeeze/Unsqueeze/ReduceSum take their axes as inputs from 13 on

_INSTALL_HINT = 'install them with: pip install "tinynet[onnx]" (or pip install onnx onnxruntime)'


def _onnx(op: str):
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
        import onnx.shape_inference
    except ImportError:
        raise ImportError(f"{op}: the optional package 'onnx' is not installed; {_INSTALL_HINT}") from None
    return onnx


def _module_converter(module):
    for cls in type(module).__mro__:
        if cls in layers.CONVERTERS:
            return layers.CONVERTERS[cls]
    return None


def _converter(call):
    """The converter for ``call``; an op without one is an error naming it and its caller."""
    convert = _module_converter(call.op) if call.is_module else \
        ops.CONVERTERS.get(call.op, functions.FUNCTIONS.get(call.op))
    if convert is None:
        where = f" (called in module {call.scope!r})" if call.scope else ""
        supported = sorted(c.__name__ for c in [*ops.CONVERTERS, *functions.FUNCTIONS])
        raise UnsupportedOperatorError(f"tinynet.onnx.export: op {call.name}{where} has no ONNX "
                                       f"conversion; supported ops: {', '.join(supported)}; "
                                       f"layers: {layers.NAMES}")
    return convert


def _convert(builder, call, convert):
    builder.scope, builder.call = call.scope, call
    names = convert(builder, call)
    if names is None:          # an opaque function's converter declined: its own calls instead
        for inner in call.inner:
            _convert(builder, inner, _converter(inner))
        builder.scope, builder.call = call.scope, call
        names = [builder.value(t) for t in call.outputs]
    if len(names) != len(call.outputs):
        raise RuntimeError(f"tinynet.onnx.export: converter for {call.name} gave {len(names)} "
                           f"outputs, the op has {len(call.outputs)}")
    for t, name in zip(call.outputs, names):
        builder.bind(t, name)


def _input_info(onnx, name, tensor, batch_axis):
    dims = list(tensor.shape)
    if batch_axis is not None:
        dims[batch_axis] = "batch"
    return onnx.helper.make_tensor_value_info(
        name, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(tensor.dtype)), dims)


def _output_info(onnx, name, tensor):
    # Shapes left to ONNX's shape inference, which carries the symbolic batch through.
    return onnx.helper.make_tensor_value_info(
        name, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(tensor.dtype)), None)


def _batch_axes(batch_axes, inputs, dynamic_batch, op):
    if not dynamic_batch:
        return [None] * len(inputs)
    if batch_axes is None:
        return [0] * len(inputs)
    axes = list(batch_axes) if isinstance(batch_axes, (tuple, list)) else [batch_axes]
    if len(axes) != len(inputs):
        raise ValueError(f"{op}: batch_axes has {len(axes)} entries for {len(inputs)} inputs")
    for i, (a, t) in enumerate(zip(axes, inputs)):
        if a is not None and (isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < t.ndim):
            raise ValueError(f"{op}: batch_axes[{i}] must be None or an axis of input {i} "
                             f"(shape {tuple(t.shape)}), got {a!r}")
    sizes = {t.shape[a] for a, t in zip(axes, inputs) if a is not None}
    if len(sizes) > 1:
        raise ValueError(f"{op}: the batch axes of the inputs have different sizes {sorted(sizes)}")
    return axes


def _as_inputs(example_input, op):
    inputs = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    if not inputs or not all(isinstance(t, Tensor) for t in inputs):
        raise TypeError(f"{op}: example_input must be a Tensor or a tuple of Tensors, got "
                        f"{type(example_input).__name__}")
    for i, t in enumerate(inputs):
        if t.ndim == 0:
            raise ValueError(f"{op}: example_input[{i}] is 0-d; inputs need a batch dimension first")
    return tuple(inputs)


def export(model: Module, example_input, path, opset: int = 17, dynamic_batch: bool = True,
           input_names=None, output_names=None, batch_axes=None):
    """Writes ``model`` as an ONNX file, traced on ``example_input``; returns the ``onnx.ModelProto``.

    Parameters
    ----------
    model : Module
        Traced in eval mode (Dropout is the identity, BatchNorm uses running statistics);
        its train/eval flags are restored afterwards.
    example_input : Tensor or tuple of Tensors
        Passed to ``model(*inputs)``; fixes every dimension except the first (the batch).
        The graph keeps the model's dtype: export float32 models for ONNX Runtime, whose
        CPU Conv and LSTM have no float64 kernels.
    path : str or os.PathLike
        Written atomically (temporary file + rename), after ``onnx.checker`` passed.
    opset : int
        ONNX opset of the default domain (13 or later; 17 by default).
    dynamic_batch : bool
        Name the batch dimension of every input ``"batch"`` instead of a number (ONNX's
        shape inference carries the name to the outputs).
    input_names, output_names : list of str, optional
        Default ``input`` / ``output`` (``input_0``, ``output_1``... when several).
    batch_axes : int or sequence of (int or None), optional
        The batch axis of each input (default 0 for every input; None for an input
        without one), e.g. ``(1, 1, 1)`` for an LSTM fed ``(x, h0, c0)`` sequence-first.

    Raises
    ------
    UnsupportedOperatorError
        An op or layer on the traced path has no conversion; the message names it and
        the module that called it.

    Example
    -------
    >>> import tinynet as tn, tempfile, os
    >>> from tinynet.onnx import export
    >>> p = os.path.join(tempfile.mkdtemp(), "cnn.onnx")
    >>> proto = export(tn.models.SimpleCNN(), tn.zeros(1, 1, 8, 8), p)
    >>> [n.op_type for n in proto.graph.node][:3]
    ['Conv', 'Relu', 'MaxPool']
    """
    op = "tinynet.onnx.export"
    onnx = _onnx(op)
    if not isinstance(model, Module):
        raise TypeError(f"{op}: model must be a tinynet Module, got {type(model).__name__}")
    inputs = _as_inputs(example_input, op)
    axes = _batch_axes(batch_axes, inputs, dynamic_batch, op)
    if isinstance(opset, bool) or not isinstance(opset, int) or \
            not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"{op}: opset must be an int in [{MIN_OPSET}, "
                         f"{onnx.defs.onnx_opset_version()}] (this onnx package's newest), got {opset!r}")
    # The trace runs where the model is (a GPU model is traced on the GPU); weights and
    # constants are copied to the host with backend.asnumpy as they become initializers.
    device = next((p.device for p in model.parameters()), None)
    if device is None:
        device = next((b.device for b in model.buffers()), None)
    inputs = tuple(Tensor(backend.to_device(t.data, device if device is not None else t.device))
                   for t in inputs)
    modes = {id(m): m.training for m in model.modules()}
    model.eval()
    try:
        with no_grad(), Trace(model, opaque=tuple(layers.CONVERTERS),
                              functions=tuple(functions.FUNCTIONS)) as trace:
            trace.keep(*inputs)
            result = model(*inputs)
    finally:
        for m in model.modules():
            object.__setattr__(m, "training", modes.get(id(m), m.training))
    outputs = flatten_tensors(result)
    if not outputs:
        raise TypeError(f"{op}: the model returned {type(result).__name__}, not Tensors")
    input_names = list(input_names) if input_names is not None else (
        ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))])
    output_names = list(output_names) if output_names is not None else (
        ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))])
    if len(input_names) != len(inputs) or len(output_names) != len(outputs):
        raise ValueError(f"{op}: got {len(input_names)} input names for {len(inputs)} inputs and "
                         f"{len(output_names)} output names for {len(outputs)} outputs")

    parameter_names = {}
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        parameter_names.setdefault(id(t), name)
    builder = GraphBuilder(onnx, opset, parameter_names)
    for t, name in zip(inputs, input_names):
        builder.fresh(name)
        builder.bind(t, name)
    batched = [(n, a, t.shape[a]) for t, n, a in zip(inputs, input_names, axes) if a is not None]
    builder.batch = batched[0] if batched else None
    converters = [_converter(call) for call in trace.calls]   # every missing op first
    for call, convert in zip(trace.calls, converters):
        _convert(builder, call, convert)
    # Outputs get their own names through Identity (an output may also be an input or a
    # constant, or appear twice).
    builder.call = None
    for t, name in zip(outputs, output_names):
        builder.fresh(name)
        builder.scope = ""
        builder.node("Identity", [builder.value(t)], outputs=[name])

    graph = onnx.helper.make_graph(
        builder.nodes, type(model).__name__,
        [_input_info(onnx, n, t, a) for t, n, a in zip(inputs, input_names, axes)],
        [_output_info(onnx, n, t) for t, n in zip(outputs, output_names)],
        initializer=builder.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="tinynet",
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    onnx.checker.check_model(proto, full_check=True)
    _write(proto, path)
    return proto


def _write(proto, path) -> None:
    from ..utils.checkpoint import write_atomically
    write_atomically(path, lambda f: f.write(proto.SerializeToString()))
