"""ONNX export: ``tinynet.onnx.export(model, example_input, path, opset=17)``.

Design: a tracer, not a module walk. The models in ``tinynet.models`` do not compose as
pure module chains: ``ResNet.forward`` adds a shortcut and takes a mean over H and W,
``UNet.forward`` scales its input, concatenates skips and applies a sigmoid,
``LSTMClassifier`` indexes and concatenates ``h_n``. A module walk would need one
converter per model (and one per user model); a trace needs one per op. So
``export`` runs the model once on ``example_input`` in eval mode, with ``Function.apply``
and ``Module.__call__`` wrapped (see ``trace.py``), and converts the recorded calls in
order, each op to ONNX nodes (``ops.py``), built with the ``onnx`` package's helpers.
Layers that ONNX has as single ops are recorded whole instead of as their inner ops
(``layers.py``): BatchNorm, LSTM, GRU, RNN, their cells, and Embedding; so are a few
functions (``functions.py``: prelu, mish, selu, interpolate, layer_norm and pad's edge
modes).

Which ONNX node each op becomes:

| tinynet                                   | ONNX                                          |
|-------------------------------------------|-----------------------------------------------|
| conv2d (Conv2d)                           | Conv                                          |
| conv_transpose2d (ConvTranspose2d)        | ConvTranspose (output_padding in the pads)    |
| max_pool2d / avg_pool2d                   | MaxPool / AveragePool                         |
| adaptive_max_pool2d, out divides in       | MaxPool (kernel = stride = in/out)            |
| BatchNorm1d/2d (eval, running statistics) | BatchNormalization                            |
| linear (Linear)                           | Gemm (transB=1) for 2-D input, else MatMul+Add|
| matmul                                    | MatMul                                        |
| relu, leaky_relu, elu, sigmoid, tanh      | Relu, LeakyRelu, Elu, Sigmoid, Tanh           |
| softmax, log_softmax                      | Softmax, LogSoftmax (axis)                    |
| softplus(beta, threshold)                 | Softplus (Mul/Div by beta), Where(> threshold)|
| hardtanh, relu6, selu, celu               | Clip, Clip, Selu, Celu                        |
| hardsigmoid, hardswish, logsigmoid        | HardSigmoid, HardSwish, -Softplus(-x)         |
| mish, glu, prelu                          | Mish (opset 18; Softplus Tanh Mul), Sigmoid, PRelu |
| pad reflect / replicate / circular        | Pad reflect / edge / wrap (19; Slice+Concat)  |
| interpolate (every mode), Upsample        | Resize or AveragePool where exact, else Gathers|
| layer_norm (LayerNorm)                    | LayerNormalization (opset 17; else arithmetic)|
| + - * / neg pow exp log sqrt abs          | Add Sub Mul Div Neg Pow Exp Log Sqrt Abs      |
| maximum, minimum, clamp, .to(dtype)       | Max, Min, Clip, Cast                          |
| reshape/flatten/squeeze/unsqueeze         | Reshape (batch dims kept as 0, see ops.py)    |
| permute/transpose, cat, pad, expand       | Transpose, Concat, Pad, Expand                |
| x[int / slice / None]                     | Gather / Slice / Unsqueeze                    |
| sum, mean, max/min over dims              | ReduceSum (+ Div for mean), ReduceMax/Min     |
| LSTM (any layers, bidirectional)          | one LSTM node per layer, gates i,f,g,o→i,o,f,c|
|                                           | (proj_size > 0 is refused: ONNX has none)     |
| GRU, RNN (tanh or relu)                   | one GRU / RNN node per layer (see layers.py) |
| LSTMCell, GRUCell, RNNCell                | that node on a one-step sequence              |
| Embedding                                 | Gather (axis 0) of the table                  |
|                                           | (max_norm: the rows' renorm in the graph)     |
| zeros made in forward (initial states)    | ConstantOfShape (batch size from the input)   |
| dropout, Dropout (eval)                   | nothing: the identity in eval mode            |

Parameters and buffers become initializers named by their ``state_dict`` key; other
constants (``x * (1/255)``) become initializers ``constant``, ``constant_1``, ...

Failure behaviour: an op or layer without a converter raises
:class:`UnsupportedOperatorError` naming it and the module that called it, before any file
is written. So does a non-scalar tensor that no traced op produced and that is no
parameter or buffer (a comparison mask, a detour through ``.numpy()``): freezing the
example's value would give a wrong graph. The model is checked with ``onnx.checker``
(``full_check``: types and shapes inferred) before it is written, atomically; its
train/eval flags are restored.

Dynamic batch: the batch dimension of each input (``batch_axes``, the first by default)
is named ``batch`` and ONNX's shape inference carries the name to the outputs. Every op
above is batch-free, with one rule for recorded shapes (``Reshape``/``Expand`` keep shared
leading dims as ``0``); a model that folds the batch into another dimension
(``x.reshape(B * T, H)``) gets a fixed batch.

Cost: one forward pass on the example input, whose intermediate tensors all stay alive
until the export ends (the trace identifies tensors by ``id``, which must not be reused),
plus one copy of the weights into the ``ModelProto`` (recurrent weights reordered). Use a
batch of one as the example: the batch size does not matter for the graph.

Needs the optional packages ``onnx`` (to build and check) and ``onnxruntime`` (only to
run the result): ``pip install "tinynet[onnx]"``. The engine never imports this package.
"""
from .exporter import export, UnsupportedOperatorError

__all__ = ["export", "UnsupportedOperatorError"]
