"""Layers and containers (``tinynet.nn``), named and initialised as in PyTorch."""
from .module import Module, Parameter
