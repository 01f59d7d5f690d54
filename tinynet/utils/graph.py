"""``to_dot(tensor)``: the autograd graph behind a tensor in Graphviz DOT.

Boxes are operations (``Function`` nodes, labelled with the class name, and "+ReLU" where
the node runs a ReLU of its own: ``nn.Sequential`` runs a ReLU after a ``Linear`` or next to
a ``MaxPool2d`` inside that node, with ``relu`` set); ellipses are the
leaf tensors that require grad (labelled with their name when ``params`` is given, and
their shape). Edges point the way the forward pass ran (inputs -> op -> output). Render
with ``dot -Tsvg graph.dot -o graph.svg``.
"""
from __future__ import annotations

from ..tensor import Tensor

__all__ = ["to_dot"]


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(tensor: Tensor, params: dict | None = None, name: str = "tinynet") -> str:
    """DOT text of the graph that produced ``tensor``; ``params`` maps names to Tensors
    (e.g. ``dict(model.named_parameters())``) to label the leaves.

    Example
    -------
    >>> import tinynet as tn
    >>> x = tn.ones(2, requires_grad=True)
    >>> print(tn.utils.to_dot((x * 2).sum()).splitlines()[0])
    digraph tinynet {
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expected a Tensor, got {type(tensor).__name__}")
    labels = {id(t): n for n, t in (params or {}).items()}
    lines = [f"digraph {name} {{", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    out_id = f"t{id(tensor)}"
    lines.append(f"  {out_id} [label={_quote('output ' + str(tuple(tensor.shape)))}, shape=ellipse, "
                 "style=filled, fillcolor=lightblue];")
    if tensor._ctx is None:
        lines.append("}")
        return "\n".join(lines)
    lines.append(f"  f{id(tensor._ctx)} -> {out_id};")
    seen, stack = set(), [tensor._ctx]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if getattr(node, "_released", False):
            lines.append(f"  f{id(node)} [label={_quote(type(node).__name__ + ' (freed)')}, shape=box];")
            continue
        name = type(node).__name__ + ("+ReLU" if node.__dict__.get("relu") else "")
        lines.append(f"  f{id(node)} [label={_quote(name)}, shape=box];")
        for t in node.inputs:
            if not isinstance(t, Tensor):
                continue
            if t._ctx is not None:
                lines.append(f"  f{id(t._ctx)} -> f{id(node)};")
                stack.append(t._ctx)
            elif t.requires_grad:
                label = labels.get(id(t), "leaf") + " " + str(tuple(t.shape))
                lines.append(f"  t{id(t)} [label={_quote(label)}, shape=ellipse, style=filled, "
                             "fillcolor=lightgrey];")
                lines.append(f"  t{id(t)} -> f{id(node)};")
    # a leaf used by several ops appears once per use above; DOT merges repeated node lines
    lines.append("}")
    return "\n".join(lines)
