"""Adam's update, compiled: one pass over a chunk of the flat parameter buffer.

Shapes: ``p``, ``g``, ``m``, ``v`` and ``vmax`` are 1-D chunks of one dtype (float32 or
float64) of :class:`tinynet.optim._flat.FlatGroup`'s buffers (``vmax`` empty without
amsgrad). The update, :mod:`tinynet.optim.adam`'s, per value::

    g ← -g                               (maximize)
    p ← p·(1 - lr·λ)                     (AdamW's decoupled weight decay; decay = 1 without)
    g ← g + λ·p                          (Adam's L2 penalty; l2 = 0 without)
    m ← β1·m + (1 - β1)·g,   v ← β2·v + (1 - β2)·g²
    v̂ ← max(v̂, v) with amsgrad, else v
    p ← p - step_size · m / (sqrt(v̂)/sqrt(1 - β2^t) + ε),   step_size = lr/(1 - β1^t)

Why it is faster: the NumPy route makes 12-15 passes over each chunk (a multiply, an add,
a square, a square root, a division... each a call with its own loop), this one pass that
reads g, p, m, v once and writes p, m, v once. The scalars arrive as Python floats and are
cast to the arrays' dtype first, as NumPy does with a Python scalar, so the float32
arithmetic is the NumPy route's but for fused multiply-adds.
"""
import numpy as np

from . import kernel


@kernel
def adam_update(p, g, m, v, vmax, b1, b2, eps, step_size, root_bc2, l2, decay, maximize):
    """One Adam/AdamW step on the chunk (see the module docstring); ``g`` is only read."""
    T = p.dtype.type
    b1_, c1, b2_, c2 = T(b1), T(1.0 - b1), T(b2), T(1.0 - b2)
    eps_, step, root, l2_, decay_ = T(eps), T(step_size), T(root_bc2), T(l2), T(decay)
    amsgrad = vmax.shape[0] > 0
    for i in range(p.shape[0]):
        gi = -g[i] if maximize else g[i]
        pi = p[i] * decay_ if decay != 1.0 else p[i]
        if l2 != 0.0:
            gi = gi + l2_ * pi
        mi = m[i] * b1_ + gi * c1
        vi = v[i] * b2_ + (gi * gi) * c2
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vi = np.maximum(vmax[i], vi)             # NaN propagates, as xp.maximum
            vmax[i] = vi
        p[i] = pi - step * (mi / (np.sqrt(vi) / root + eps_))
