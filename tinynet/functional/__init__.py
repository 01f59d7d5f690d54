"""Differentiable operations on Tensors (imported as ``F``), grouped by kind.

Each module wraps raw-array kernels as ``Function`` nodes; see ``autograd.py`` for the
protocol. ``__all__`` of every module is re-exported here.
"""
from .elementwise import *      # noqa: F401,F403
from .elementwise import __all__ as _elementwise
from .activation import *       # noqa: F401,F403
from .activation import __all__ as _activation
from .reduction import *        # noqa: F401,F403
from .reduction import __all__ as _reduction
from .shape import *            # noqa: F401,F403
from .shape import __all__ as _shape
from .linalg import *           # noqa: F401,F403
from .linalg import __all__ as _linalg
from .loss import *             # noqa: F401,F403
from .loss import __all__ as _loss
from .conv import *             # noqa: F401,F403
from .conv import __all__ as _conv
from .pool import *             # noqa: F401,F403
from .pool import __all__ as _pool
from .recurrent import *        # noqa: F401,F403
from .recurrent import __all__ as _recurrent
from .normalization import *    # noqa: F401,F403
from .normalization import __all__ as _normalization
from .dropout import *          # noqa: F401,F403
from .dropout import __all__ as _dropout
from .embedding import *        # noqa: F401,F403
from .embedding import __all__ as _embedding
from .indexing import *         # noqa: F401,F403
from .indexing import __all__ as _indexing

__all__ = (_elementwise + _activation + _reduction + _shape + _linalg + _loss + _conv + _pool
           + _recurrent + _normalization + _dropout)
from .attention import *        # noqa: F401,F403
from .attention import __all__ as _attention
from .interpolate import *      # noqa: F401,F403
from .interpolate import __all__ as _interpolate
__all__ = __all__ + _embedding + _attention + _interpolate + _indexing
