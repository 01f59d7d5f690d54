"""``max_pool2d(relu(conv2d(x, w, b)), 2)`` as one op: what ``nn.Sequential`` runs for a
``Conv2d``, a ``ReLU`` and a 2x2 ``MaxPool2d`` in a row (``tinynet/nn/containers.py``).

    y = conv2d(x, w, b, ...)                 (N, C_out, Ho, Wo)
    z = relu(max_pool2d(y, 2))               (N, C_out, ⌊Ho/2⌋, ⌊Wo/2⌋)

Where the native job runs (small maps, at most :data:`MAX_PIXELS`; float32 NumPy arrays,
compiled kernels and OpenBLAS's threads available, stride 1, one group, Ho and Wo even:
:mod:`tinynet.kernels.compiled.conv_pool`), each core convolves a block of images and
pools the product while it is still in its cache, and the backward builds the
convolution's output gradient from z's gradient block by block, as the products want it:
y and its gradient never exist as arrays. Elsewhere (larger maps, float64, a GPU, odd
maps, strides, groups) the node runs the two ops' array routines, the convolution then
the pool-and-ReLU. Either way the values are those of ``F.max_pool2d(F.relu(F.conv2d(...)),
2)`` but for the sign of a zero (``nn.Sequential``'s pool-then-ReLU order:
``tinynet/nn/containers.py``, ``_pool_first``), and so are the gradients, to the rounding
of the native job's sums (its products blocked by images, its bias gradient each core's
row sums where the separate ops multiply by a vector of ones). Not part of the
PyTorch API, so not exported by ``tinynet.functional``.
"""
from __future__ import annotations

from .. import backend
from ..autograd import depends_on, is_grad_enabled
from ..kernels import pool as P
from ..tensor import Tensor
from .activation import relu_gradient
from .conv import (Conv2d, _IMAGE_BLOCKS_MAX_WEIGHTS, _check_operands, _conv2d_array, _conv2d_geometry,
                   _image_block)
from .pool import MaxPool2dBackward, max_pool2d_relu
from .shape import squeeze as _squeeze, unsqueeze as _unsqueeze

#: max_pool2d's geometry for a 2x2 window: kernel, stride, padding, dilation, ceil_mode.
POOL = ((2, 2), (2, 2), (0, 0), (1, 1), False)

#: Largest convolution output (pixels) the native job takes, and at most
#: :data:`tinynet.functional.conv._IMAGE_BLOCKS_MAX_WEIGHTS` weights (each core keeps a
#: partial weight gradient). Thirty-eighth session, 2-core Intel guest, forward + backward
#: (3x3, "same", bias) against the two ops, medians of 7 alternated runs: on maps up to
#: 16x16 0.68-0.99x (N64 1->16 8x8 0.68-0.71x, N64 16->32 4x4 0.77x, N128 16->32 8x8
#: 0.69x, N64 16->16 16x16 0.81x, N64 3->16 16x16 0.94x, N2 64->64 16x16 0.91x, N32
#: 32->64 16x16 0.99x, N16 128->128 8x8 0.91x, N1 8->8 16x16 0.89x); on larger maps,
#: where the conv's own routes (row strips, Winograd, flat rows image by image) beat the
#: job's blocks of columns, 1.08-2.3x (N8 3->16 32x32 1.08x, N4 16->16 32x32 1.61x, N64
#: 3->32 32x32 1.65x, N16 32->32 24x24 1.55x, N2 3->16 128x128 1.35x, N16 64->64 32x32
#: 2.3x), and with more weights (N2 256->256 8x8) 1.84x.
MAX_PIXELS = 16 * 16


class Conv2dReluPool(Conv2d):
    """A convolution, its ReLU and a 2x2 max pool in one node (see the module docstring).
    Its backward gives the convolution's gradient of z's gradient through the pool and the
    ReLU, then runs :class:`Conv2d`'s backward on it, unless the native job takes the whole
    plain backward."""

    def forward(self, x, w, b, *, stride, padding, dilation, groups, output_size):
        self._keep(stride, padding, dilation, groups)
        self.conv_size = output_size
        native = self._job_geometry() and _native_forward(x, w, b, padding, dilation, output_size)
        if native:
            self.z, self.argmax = native
        else:
            y = _conv2d_array(x, w, b, stride, padding, dilation, groups, output_size)
            self.z, self.argmax = P.max_pool2d_forward(y, *POOL, relu=True)
        return self.z

    def backward(self, gz):
        x, w, b = self.inputs
        if is_grad_enabled():       # differentiable: ReLU's product, the pool's scatter
            gy = relu_gradient(gz, self.z, x, w, b)
            gy = depends_on(MaxPool2dBackward.apply(gy, Tensor(self.argmax), input_size=self.conv_size,
                                                    geometry=POOL), x, w, b)
            return super().backward(gy)
        grads = self._native_backward(gz.data)
        if grads is not None:
            return grads
        return super().backward(Tensor(P.max_pool2d_backward(gz.data, self.argmax, self.conv_size, *POOL,
                                                             relu_output=self.z)))

    def _job_geometry(self) -> bool:
        """Stride 1 and one group: the convolutions the native job computes."""
        return self.stride == (1, 1) and self.groups == 1

    def _native_backward(self, g):
        x, w, b = self.inputs
        if not (self._job_geometry() and self.needs_input_grad[1] and (b is None or self.needs_input_grad[2])):
            return None
        grads = _native_backward(x.data, w.data, g, self.z, self.argmax, self.padding, self.dilation,
                                 self.conv_size, self.needs_input_grad[0])
        if grads is None:
            return None
        gx, gw, gb = grads
        return (None if gx is None else Tensor(gx)), Tensor(gw), (None if b is None else Tensor(gb))


def _job(x, w, output_size, nbytes):
    """``(pieces, block, (gemm, ilp64))`` of a native job over x and w, or None where it
    does not pay (a map of more than :data:`MAX_PIXELS`, too many weights) or cannot run:
    Ho or Wo odd, not float32 NumPy arrays, compiled kernels off, no OpenBLAS running
    native pieces. Its pieces: one per :data:`tinynet.backend.native_grain` of
    ``nbytes`` besides the columns and the products (or dY's blocks), which each piece
    writes and then reads (twice their size: SimpleCNN's N64 1->16 8x8 layer in two pieces
    rather than one, whose 505 kB once over fall short of two grains, made the training
    step 0.88x)."""
    from .. import blas_threads
    Ho, Wo = output_size
    if (Ho % 2 or Wo % 2 or Ho * Wo > MAX_PIXELS or w.size > _IMAGE_BLOCKS_MAX_WEIGHTS
            or not backend.use_compiled(x, w)):
        return None
    blas = blas_threads.native_gemm(x, w)
    if blas is None:
        return None
    N, C = x.shape[:2]
    C_out, _, kh, kw = w.shape
    rows = C * kh * kw
    pieces = backend.native_chunks(N, 2 * (rows + C_out) * Ho * Wo * N * x.itemsize + nbytes, x)
    return pieces, _image_block(N, pieces, rows, Ho * Wo, x.itemsize), blas


def _native_forward(x, w, b, padding, dilation, output_size):
    """``(z, argmax)`` by :func:`tinynet.kernels.compiled.conv_pool.forward_piece`, or None,
    having run nothing (see :func:`_job`)."""
    from .. import blas_threads
    import numpy
    Ho, Wo = output_size
    job = _job(x, w, output_size, x.nbytes + 5 * x.shape[0] * w.shape[0] * (Ho // 2) * (Wo // 2))
    if job is None or (b is not None and not backend.use_compiled(x, b)):
        return None
    from ..kernels.compiled import conv_pool as _compiled
    pieces, block, blas = job
    N, C, H, W = x.shape
    C_out, _, kh, kw = w.shape
    rows = C * kh * kw
    bias = numpy.zeros(C_out, x.dtype) if b is None else numpy.ascontiguousarray(b)
    z = numpy.empty((N, C_out, Ho // 2, Wo // 2), x.dtype)
    argmax = numpy.empty(z.shape, numpy.int8)
    params = [N, C, H, W, C_out, kh, kw, padding[0], padding[1], dilation[0], dilation[1], rows,
              int(b is not None), *blas, Ho, Wo, block]
    arrays = (x, w.reshape(C_out, rows), bias, z, argmax, numpy.empty((pieces, rows * block * Ho * Wo), x.dtype),
              numpy.empty((pieces, C_out * block * Ho * Wo), x.dtype))
    if not blas_threads.run_native_job(pieces, _compiled.forward_piece.address, params, arrays):
        return None
    return z, argmax


def _native_backward(x, w, g, z, argmax, padding, dilation, output_size, input_grad):
    """``(dx or None, dw, db)`` by :func:`tinynet.kernels.compiled.conv_pool.backward_piece`
    from z's gradient ``g``, or None, having run nothing (see :func:`_job`)."""
    from .. import blas_threads
    import numpy
    job = _job(x, w, output_size, x.nbytes * (2 if input_grad else 1) + g.nbytes * 2 + argmax.nbytes)
    if job is None or not backend.use_compiled(x, g, z) or argmax.dtype != numpy.int8:
        return None
    from ..kernels.compiled import conv_pool as _compiled, narrow as _narrow
    pieces, block, blas = job
    N, C, H, W = x.shape
    C_out, _, kh, kw = w.shape
    Ho, Wo = output_size
    rows = C * kh * kw
    g = numpy.ascontiguousarray(g)
    weight_parts = numpy.zeros((pieces, rows, C_out), x.dtype)
    bias_parts = numpy.zeros((pieces, C_out), x.dtype)
    dx = numpy.empty(x.shape if input_grad else 0, x.dtype)
    params = [N, C, H, W, C_out, kh, kw, padding[0], padding[1], dilation[0], dilation[1], rows, *blas,
              _narrow.NARROW_MAX_OUT, Ho, Wo, block, int(input_grad)]
    arrays = (x, g, z, argmax, w.reshape(C_out, rows), weight_parts, bias_parts, dx,
              numpy.empty((pieces, rows * block * Ho * Wo), x.dtype),
              numpy.empty((pieces, C_out * block * Ho * Wo), x.dtype))
    if not blas_threads.run_native_job(pieces, _compiled.backward_piece.address, params, arrays):
        return None
    dw = backend.sum_in_order(list(enumerate(weight_parts))).T.reshape(w.shape)
    return (dx if input_grad else None), dw, backend.sum_in_order(list(enumerate(bias_parts)))


def conv2d_relu_max_pool2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                           padding=0, dilation=1, groups: int = 1) -> Tensor:
    """``max_pool2d(relu(conv2d(input, weight, bias, stride, padding, dilation, groups)), 2)``
    as one op (see the module docstring); conv2d's arguments and checks.

    Example
    -------
    >>> import tinynet as tn
    >>> from tinynet.functional.conv_pool import conv2d_relu_max_pool2d
    >>> x = tn.tensor([[[[1., -2.], [3., -4.]]]])
    >>> conv2d_relu_max_pool2d(x, tn.ones(1, 1, 1, 1), tn.tensor([-1.])).item()
    2.0
    """
    op = "conv2d"
    _check_operands(op, input, weight, bias, groups)
    if input.ndim == 3:     # unbatched (C, H, W), as conv2d
        return _squeeze(conv2d_relu_max_pool2d(_unsqueeze(input, 0), weight, bias, stride, padding,
                                               dilation, groups), 0)
    input, geometry = _conv2d_geometry(op, input, weight, bias, stride, padding, dilation, groups)
    if min(geometry["output_size"]) < 2:    # no whole window: max_pool2d's own error
        return max_pool2d_relu(Conv2d.apply(input, weight, bias, **geometry), 2)
    return Conv2dReluPool.apply(input, weight, bias, **geometry)
