"""``GraphBuilder``: names, initializers and nodes of the ONNX graph being written.

Converters (``ops.py``, ``layers.py``) call ``builder.value(tensor)`` for the name of an
input, ``builder.constant(array)`` for a new initializer and ``builder.node(op_type,
inputs, **attributes)`` for a node; everything is made with the ``onnx`` package's helpers
(``helper.make_node``, ``numpy_helper.from_array``), never by writing protobuf fields.
"""
from __future__ import annotations

from .. import backend
from ..backend import numpy as np
from ..tensor import Tensor


class UnsupportedOperatorError(NotImplementedError):
    """An op or module on the traced path has no ONNX conversion; the message names it."""


class GraphBuilder:
    def __init__(self, onnx, opset: int, parameter_names: dict):
        self.onnx, self.opset = onnx, opset
        self.nodes, self.initializers = [], []
        self._names = {}                        # id(Tensor) -> value name
        self._parameter_names = parameter_names  # id(Parameter or buffer) -> state_dict key
        self._used = set()
        self.scope = ""
        self.call = None       # the call being converted, for error messages
        self.batch = None      # (input name, batch axis, example batch size) when dynamic
        self._batch_size = None

    # ------------------------------------------------------------------ names
    def fresh(self, hint: str) -> str:
        base = hint.replace("/", ".") or "value"
        name, i = base, 1
        while name in self._used:
            name, i = f"{base}_{i}", i + 1
        self._used.add(name)
        return name

    def bind(self, tensor: Tensor, name: str) -> None:
        self._names[id(tensor)] = name

    def has(self, tensor: Tensor) -> bool:
        return id(tensor) in self._names

    def value(self, tensor) -> str:
        """The name of ``tensor``: a traced value, or a new initializer (parameters keep
        their state_dict key as name; other constants get ``constant``, ``constant_1``...).
        ``None`` is the empty name ONNX uses for an omitted optional input."""
        if tensor is None:
            return ""
        if not isinstance(tensor, Tensor):
            raise TypeError(f"tinynet.onnx: expected a Tensor operand, got {type(tensor).__name__}")
        name = self._names.get(id(tensor))
        if name is None:
            hint = self._parameter_names.get(id(tensor))
            if hint is None and tensor.ndim > 0:      # Python numbers arrive 0-d
                name = self._zeros(tensor)
                if name is None:
                    raise UnsupportedOperatorError(self._untraced(tensor))
            else:
                name = self.constant(backend.asnumpy(tensor.data), hint or "constant")
            self._names[id(tensor)] = name
        return name

    def _zeros(self, tensor):
        """Zeros made in forward (a recurrent loop's initial state) are the one untraced kind
        a graph can rebuild: ``ConstantOfShape``, with the run-time batch size in front when
        their first dimension is the example's batch size. None for anything else."""
        if tensor.dtype.kind != "f" or tensor.data.any():
            return None
        if self.batch is None or tensor.shape[0] != self.batch[2]:
            dims = self.ints(tensor.shape, "zeros_shape")
        else:
            if self._batch_size is None:
                (shape,) = self.node("Shape", [self.batch[0]])
                (self._batch_size,) = self.node("Gather", [shape, self.ints([self.batch[1]], "batch_axis")],
                                                axis=0)
            (dims,) = self.node("Concat", [self._batch_size, self.ints(tensor.shape[1:], "zeros_shape")],
                                axis=0)
        zero = self.onnx.helper.make_tensor("value", self.onnx.helper.np_dtype_to_tensor_dtype(
            backend.numpy.dtype(tensor.dtype)), [1], [0.0])
        return self.node("ConstantOfShape", [dims], value=zero)[0]

    def _untraced(self, tensor) -> str:
        # A tensor that no recorded op produced and that is no parameter or buffer: either
        # computed outside tinynet's ops (a comparison, .numpy() and back), which the trace
        # cannot follow, or a constant made in forward. Scalars (x * 0.5) are let through.
        call = self.call
        where = f"op {call.name}" + (f" in module {call.scope!r}" if call and call.scope else "") \
            if call is not None else "an output"
        return (f"tinynet.onnx.export: {where} receives a tensor of shape {tuple(tensor.shape)} "
                "that no traced op produced and that is not a parameter or buffer: it was computed "
                "outside tinynet's differentiable ops (a comparison such as x > 0, a mask, "
                ".numpy() and back), which has no export, or made in forward as a constant "
                "(only zeros are rebuilt); register a constant with module.register_buffer")

    def constant(self, array, hint: str = "constant") -> str:
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def ints(self, values, hint: str = "shape") -> str:
        """An int64 1-D initializer (shapes, axes, pads, indices as ONNX wants them)."""
        return self.constant(np.asarray(list(values), dtype=np.int64), hint)

    # ------------------------------------------------------------------ nodes
    def node(self, op_type: str, inputs, outputs=1, **attributes) -> list:
        """Adds one node; ``outputs`` is a count (fresh names) or a list of names.
        Returns the output names."""
        if isinstance(outputs, int):
            outputs = [self.fresh(f"{self.scope}.{op_type}" if self.scope else op_type)
                       for _ in range(outputs)]
        # Trailing omitted optional inputs are dropped; inner ones stay as "".
        inputs = list(inputs)
        while inputs and inputs[-1] == "":
            inputs.pop()
        attributes = {k: v for k, v in attributes.items() if v is not None}
        self.nodes.append(self.onnx.helper.make_node(
            op_type, inputs, outputs, name=self.fresh(f"{self.scope}/{op_type}" if self.scope else op_type),
            **attributes))
        return outputs
