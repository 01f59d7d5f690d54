"""Public tools for checking derivatives: gradcheck, gradgradcheck, assert_close, the op
registry and hypothesis strategies (``tinynet.testing.strategies``, needs hypothesis)."""
from .gradcheck import gradcheck, gradgradcheck, assert_close, GradcheckError
from .registry import OpInfo, Sample, register, all_ops, get_op

__all__ = ["gradcheck", "gradgradcheck", "assert_close", "GradcheckError", "OpInfo", "Sample",
           "register", "all_ops", "get_op", "strategies"]


def __getattr__(name):
    if name == "strategies":  # imports hypothesis, so only on demand
        import importlib
        return importlib.import_module(".strategies", __name__)
    raise AttributeError(f"module 'tinynet.testing' has no attribute {name!r}")
