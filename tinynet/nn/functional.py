"""``tinynet.nn.functional``: the same module as ``tinynet.functional``, under the name a
PyTorch user reaches for (``import tinynet.nn.functional as F``)."""
from ..functional import *            # noqa: F401,F403
from ..functional import __all__      # noqa: F401
