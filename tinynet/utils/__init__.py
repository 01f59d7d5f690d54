"""Utilities: checkpoints (``save``/``load``, no pickle), ``summary`` tables and
autograd-graph export (``to_dot``)."""
from .checkpoint import save, load
from .summary import summary
from .graph import to_dot
from .interchange import save_safetensors, load_safetensors

__all__ = ["save", "load", "summary", "to_dot"]
__all__ += ["save_safetensors", "load_safetensors"]
