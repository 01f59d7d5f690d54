"""Utilities: checkpoints (``save``/``load``, no pickle), ``summary`` tables and
autograd-graph export (``to_dot``)."""
from .checkpoint import save, load
from .summary import summary
from .graph import to_dot
from .model_file import load_model, read_config
from .interchange import save_safetensors, load_safetensors

__all__ = ["save", "load", "summary", "to_dot", "load_model", "read_config"]
__all__ += ["save_safetensors", "load_safetensors"]
