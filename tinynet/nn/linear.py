"""Fully connected and shape layers: ``Linear``, ``Identity``, ``Flatten``, ``Lambda``,
``Embedding``."""
from __future__ import annotations


from .. import functional as F
from ..functional.embedding import check_options, lookup
from ..functional.linalg import linear_relu
from ..creation import empty
from ..tensor import Tensor
from . import init
from ._validate import positive_int, non_negative_int
from .module import Module, Parameter

__all__ = ["Linear", "Identity", "Flatten", "Lambda", "Embedding"]


class Linear(Module):
    """y = x Wᵀ + b over the last dim; weight (out_features, in_features), bias (out_features,).

    Initialised as PyTorch: W and b ~ U(-1/√in_features, 1/√in_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features", "Linear")
        self.out_features = positive_int(out_features, "out_features", "Linear")
        self.weight = Parameter(empty(out_features, in_features, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init._default_layer_init(self.weight, self.bias, self.in_features)

    def forward(self, input: Tensor) -> Tensor:
        self._check(input)
        return F.linear(input, self.weight, self.bias)

    def _forward_relu(self, input: Tensor) -> Tensor:
        """``relu(self(input))`` as one op (:func:`tinynet.functional.linalg.linear_relu`),
        for ``Sequential``'s Linear followed by a ReLU (without hooks)."""
        self._check(input)
        return linear_relu(input, self.weight, self.bias)

    def _check(self, input) -> None:
        if not isinstance(input, Tensor):
            raise TypeError(f"Linear: expected a Tensor input, got {type(input).__name__}")
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise ValueError(f"Linear: expected input with {self.in_features} features in its "
                             f"last dimension (in_features), got input of shape {tuple(input.shape)}")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input (a placeholder, e.g. for a removed head)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    """Flattens dims ``start_dim``..``end_dim`` (default: all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Lambda(Module):
    """Wraps a function as a layer: ``Lambda(lambda x: x / 255.0)`` (no parameters)."""

    def __init__(self, fn, name: str | None = None):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"Lambda: fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "fn")

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def extra_repr(self) -> str:
        return self.name


class Embedding(Module):
    """A lookup table: integer indices (any shape) -> rows of weight (num_embeddings,
    embedding_dim). Initialised N(0, 1); the ``padding_idx`` row starts at zero and gets
    no gradient. ``max_norm``, ``norm_type`` and ``scale_grad_by_freq`` are
    ``F.embedding``'s (``max_norm`` rescales rows of ``weight`` in place at each forward);
    ``sparse=True`` is refused (tinynet has no sparse tensors). ``_weight`` (a
    (num_embeddings, embedding_dim) Tensor) is used as the weight, not re-initialised;
    ``_freeze`` makes it not require grad, as in PyTorch."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False, _weight: Tensor | None = None,
                 _freeze: bool = False, device=None, dtype=None):
        super().__init__()
        self.num_embeddings = positive_int(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = embedding_dim = positive_int(embedding_dim, "embedding_dim", "Embedding")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be within num_embeddings "
                                 f"({num_embeddings}), got {padding_idx}")
            padding_idx = non_negative_int(padding_idx % num_embeddings, "padding_idx", "Embedding")
        self.padding_idx = padding_idx
        check_options("Embedding", max_norm, norm_type, sparse)
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = bool(scale_grad_by_freq), bool(sparse)
        if _weight is None:
            self.weight = Parameter(empty(num_embeddings, embedding_dim, device=device, dtype=dtype),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if not isinstance(_weight, Tensor) or tuple(_weight.shape) != (num_embeddings, embedding_dim):
                got = tuple(_weight.shape) if isinstance(_weight, Tensor) else type(_weight).__name__
                raise ValueError(f"Embedding: _weight must be a Tensor of shape "
                                 f"({num_embeddings}, {embedding_dim}) (num_embeddings, "
                                 f"embedding_dim), got {got}")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, sparse: bool = False) -> "Embedding":
        """An Embedding whose weight is ``embeddings`` (V, D), shared, not copied (as
        PyTorch); ``freeze`` (default True) makes it not require grad.

        Example
        -------
        >>> import tinynet as tn
        >>> e = Embedding.from_pretrained(tn.tensor([[1.0, 2.0], [3.0, 4.0]]))
        >>> e(tn.tensor([1])).numpy().tolist(), e.weight.requires_grad
        ([[3.0, 4.0]], False)
        """
        if not isinstance(embeddings, Tensor) or embeddings.ndim != 2:
            got = f"{embeddings.ndim}-D" if isinstance(embeddings, Tensor) else type(embeddings).__name__
            raise ValueError(f"Embedding.from_pretrained: embeddings must be a 2-D Tensor "
                             f"(num_embeddings, embedding_dim), got {got}")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input: Tensor) -> Tensor:
        return lookup(input, self.weight, self.padding_idx, "Embedding", self.max_norm,
                      self.norm_type, self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        return s
