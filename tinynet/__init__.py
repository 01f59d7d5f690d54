"""tinynet: a deep-learning framework written from scratch on NumPy (CPU) and CuPy (GPU).

    >>> import tinynet as tn
    >>> x = tn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4., 6.])
"""
from .backend import Device, device, is_cuda_available, set_default_device, get_default_device
from .backend import set_num_threads, get_num_threads
from .autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled, Function
from .tensor import Tensor, tensor, float32, float64, int64, int32, bool_
from .random import manual_seed, get_rng_state, set_rng_state
from .creation import *  # noqa: F401,F403
from . import functional
from .functional import cat, stack, where, maximum, minimum  # noqa: F401

__version__ = "0.1.0"

if __import__("os").environ.get("TINYNET_NUM_THREADS"):
    set_num_threads(get_num_threads())   # BLAS follows the variable too (needs threadpoolctl)


def __getattr__(name):
    # Subpackages load on first use so `import tinynet` stays light.
    import importlib
    if name in ("nn", "optim", "data", "models", "testing", "utils", "kernels"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'tinynet' has no attribute {name!r}")
