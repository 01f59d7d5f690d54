"""``summary(model, input_shape)``: a Keras-style table of a model's layers.

One row per call of a leaf module (or of a module holding parameters directly, such as an
LSTM), in call order: the layer's qualified name and type, its output shape (with the
dummy batch size it was run with), and its parameter count.
The table ends with the totals of all, trainable (``requires_grad``) and non-trainable
parameters; buffers (BatchNorm's running statistics) are not parameters and not counted.
The shapes come from one forward pass on a zero batch under ``no_grad`` in evaluation mode
(so running statistics do not move); each module's training flag is restored afterwards.
"""
from __future__ import annotations

from ..autograd import no_grad
from ..creation import zeros
from ..tensor import Tensor

__all__ = ["summary"]


def _shape_of(out):
    if isinstance(out, Tensor):
        return list(out.shape)
    if isinstance(out, (tuple, list)):
        shapes = [_shape_of(o) for o in out]
        shapes = [s for s in shapes if s is not None]
        if len(shapes) == 1:
            return shapes[0]
        return shapes or None
    return None


def _fmt_shape(shape) -> str:
    if shape is None:
        return "-"
    if shape and isinstance(shape[0], list):
        return ", ".join(_fmt_shape(s) for s in shape)
    return "(" + ", ".join(str(s) for s in shape) + ")"


def summary(model, input_shape, batch_size: int = 2, device=None, dtype=None,
            print_fn=print) -> str | None:
    """Runs ``model`` on zeros of shape ``(batch_size, *input_shape)`` and prints the table
    with ``print_fn`` (returning None, as Keras' ``model.summary()`` does, so a REPL does not
    echo a second, quoted copy), or with ``print_fn=None`` returns it as a string. ``input_shape`` excludes the batch dim; a list of shapes feeds a
    model with several inputs. ``dtype`` is the dummy input's dtype (default float32; use
    an integer dtype for models that start with an Embedding).

    Example
    -------
    >>> import tinynet as tn
    >>> model = tn.nn.Sequential(tn.nn.Linear(4, 3), tn.nn.ReLU())
    >>> text = tn.utils.summary(model, (4,), print_fn=None)
    >>> "Total params: 15" in text
    True
    """
    from ..nn.module import Module
    if not isinstance(model, Module):
        raise TypeError(f"summary: expected a tinynet.nn.Module, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"summary: batch_size must be a positive int, got {batch_size!r}")
    shapes = input_shape if (isinstance(input_shape, list) and input_shape
                             and isinstance(input_shape[0], (tuple, list))) else [input_shape]
    for s in shapes:
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in s):
            raise ValueError(f"summary: input_shape must be positive ints (without the batch "
                             f"dim), got {input_shape!r}")
    if device is None:
        params = list(model.parameters())
        device = params[0].device if params else None
    inputs = [zeros((batch_size,) + tuple(s), dtype=dtype, device=device) for s in shapes]

    names = {id(m): n for n, m in model.named_modules()}
    rows, handles = [], []

    def hook(module, args, out):
        own = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append((names.get(id(module), ""), type(module).__name__, _shape_of(out), own))

    for name, m in model.named_modules():
        is_leaf = not any(True for _ in m.children())
        has_own = any(True for _ in m.parameters(recurse=False))
        if (is_leaf or has_own) and m is not model or (m is model and is_leaf):
            handles.append(m.register_forward_hook(hook))
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            object.__setattr__(m, "training", mode)

    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    header = ("Layer (type)", "Output Shape", "Param #")
    body = [(f"{n} ({t})" if n else t, _fmt_shape(s), f"{c:,}") for n, t, s, c in rows]
    w0 = max([len(header[0])] + [len(r[0]) for r in body]) + 2
    w1 = max([len(header[1])] + [len(r[1]) for r in body]) + 2
    w2 = max([len(header[2])] + [len(r[2]) for r in body])
    width = w0 + w1 + w2
    lines = [f'Model: "{type(model).__name__}"', "=" * width,
             f"{header[0]:<{w0}}{header[1]:<{w1}}{header[2]:>{w2}}", "=" * width]
    for r in body:
        lines.append(f"{r[0]:<{w0}}{r[1]:<{w1}}{r[2]:>{w2}}")
    lines += ["=" * width, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", "-" * width,
              f"Input shape: {', '.join(_fmt_shape([batch_size] + list(s)) for s in shapes)}"]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
        return None
    return text
