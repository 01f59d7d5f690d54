"""LSTM gate math on raw arrays: a whole layer, forward and backward through time.

(A cell is a layer over one time step; ``tinynet.functional.lstm_cell`` calls it so.)

Notation (PyTorch's, gate order i, f, g, o; weights stacked in blocks of ``H`` rows)::

    a = x @ W_ih^T + b_ih + h @ W_hh^T + b_hh          a: (B, 4H) = [a_i | a_f | a_g | a_o]
    i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
    c' = f * c + i * g
    h' = o * tanh(c')

The CPU time loop (NumPy; ~60 % of the time at B=32, H=128 is NumPy call overhead and
passes over small arrays, the rest the GEMMs) is built around three choices:

* **One GEMM per step, nothing added after it.** Step t multiplies the stacked weights
  ``[W_hh | W_ih | b]`` ``(4H, H+I+1)`` by the stacked input ``z_t = [h_{t-1}; x_t; 1]``
  ``(H+I+1, B)``: recurrence, input projection and bias at once. After the loop,
  ``[dW_hh | dW_ih | db] = dA @ Z`` is one GEMM over all steps, with ``dA`` ``(4H, T*B)``
  the gate gradients and ``Z`` ``(T*B, H+I+1)`` the stacked inputs, batch-major.
* **Feature-major steps.** A step's gates are ``(4H, B)``: ``[i; f; o; g]`` are four
  contiguous ``(H, B)`` row blocks, so every gate operation is one pass over contiguous
  memory (a ``(B, H)`` column block of a batch-major ``(B, 4H)`` array is 32 separate
  rows, and NumPy pays per row), and ``W @ z`` with the batch as the short dimension
  is the faster OpenBLAS product at these sizes. One transposing copy after the loop
  gives the batch-major ``y`` and ``Z``.
* **One transcendental pass for all four gates**, with the gate blocks stored in the
  order ``[i; f; o; g]`` (the stacked weights' rows permuted once per call), so that the
  three sigmoid gates are one contiguous block and g the last. The form follows NumPy's
  speed on this CPU (:func:`tanh_gates`), set up by a row scale folded into the weights
  once per call:

  - with AVX-512 (NumPy's float32 ``tanh`` 0.38 ns per element): ``0.5`` on the i, f, o
    rows, then ``act = tanh(z)`` over all four blocks and ``0.5·act + 0.5`` over the
    first three, since ``sigmoid(a) = 0.5 tanh(a/2) + 0.5``: 3 calls;
  - elsewhere (its AVX2 ``tanh`` costs twice its ``exp``): ``-1`` on the i, f, o rows and
    ``-2`` on the g rows make ``act = 1 / (1 + exp(z))`` the sigmoid of i, f, o and
    ``sigmoid(2 a_g)`` on g, and ``tanh(a_g) = 2 sigmoid(2 a_g) - 1``: 5 calls.
    ``exp`` overflowing to ``inf`` gives the exact limits 0 (and -1).

On CuPy the layout is batch-major, ``(B, 4H)`` gates per step, and one compiled kernel
per step does the gate math: the rows of i, f, o are scaled by ``0.5`` and the kernel
computes ``sigmoid(a) = 0.5 * tanh(0.5 a) + 0.5``.

Backward of one step, given ``dh'`` and ``dc'`` (the gradient reaching ``c'`` from the
future)::

    dc_total = dc' + dh' * o * (1 - tanh(c')^2)
    da_i = dc_total * g      * i (1 - i)
    da_f = dc_total * c      * f (1 - f)
    da_g = dc_total * i      * (1 - g^2)
    da_o = dh' * tanh(c')    * o (1 - o)
    dc = dc_total * f ;  dh = da @ W_hh ;  dx = da @ W_ih

On the CPU the factors that do not depend on the incoming gradient are computed inside
the backward loop, on the step's blocks while they are in cache, from products the
forward kept: with ``ig = i g``, ``fc = f c`` and ``h' = o tanh(c')``,
``g i(1-i) = ig - ig i``, ``c f(1-f) = fc - fc f``, ``i(1-g^2) = i - ig g``,
``tanh(c') o(1-o) = h' - h' o`` and ``o(1-tanh(c')^2) = o - h' tanh(c')``: two calls
each, and the first two in one pair of calls over ``[ig; fc]`` and ``[i; f]``.
Computed for all steps before the loop they cost more, because each pass then streams
a ``(T, 4H, B)`` array through memory.

Variable-length batches use a boolean ``mask`` of shape ``(T, B, 1)``: where it is False
the state is carried unchanged (``h_t = h_{t-1}``), the output is zero, and no gradient
reaches that step's gates.

On CuPy the per-step gate math runs as one compiled elementwise kernel each way (through
``tinynet.backend.elementwise_kernel``); on NumPy it is 8 in-place ufunc calls a step
forward (10 in the exp form) and 13 backward, on preallocated buffers
(docs/kernels/lstm.md counts them). With compiled kernels on
(:func:`tinynet.backend.use_compiled`) a float32 forward's calls and the backward's 13
become one compiled pass over the step each (:mod:`tinynet.kernels.compiled.lstm`; the
forward then takes the pre-activations unscaled); the GEMMs, the layout and the saved
record stay the same. Where NumPy's OpenBLAS can run native pieces
(:mod:`tinynet.blas_threads`), such a loop without a mask runs as one native job instead,
each thread owning a slice of the hidden units for the whole loop, with the step's GEMMs
called from compiled code (:mod:`tinynet.kernels.compiled.lstm_loop`, which says why it
is faster): no Python between steps, and a step's rows computed and used on one core.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import backend

__all__ = [
    "gate_scale", "LSTMSaved", "lstm_layer_forward", "lstm_layer_backward", "length_mask",
]


def gate_scale(hidden: int, dtype, xp, sigmoid_blocks=(0, 1, 3), blocks: int = 4):
    """``(blocks * hidden,)`` row scale of the pre-activations for the tanh form of sigmoid:
    ``0.5`` on a sigmoid block (``sigmoid(a) = 0.5 tanh(0.5 a) + 0.5``: the kernels take
    ``tanh`` of the scaled rows, then ``0.5 t + 0.5``), ``1`` on a tanh block.
    """
    scale = xp.ones((blocks, hidden), dtype=dtype)
    for k in sigmoid_blocks:
        scale[k] = 0.5
    return scale.reshape(-1)


# ------------------------------------------------------------------ fused per-step math
_FWD_OP = """
    const int b = i / H, j = i % H;
    const long base = (long)b * 4 * H + j;
    T ig = 0.5 * tanh(gates[base]) + 0.5;
    T fg = 0.5 * tanh(gates[base + H]) + 0.5;
    T gg = tanh(gates[base + 2 * H]);
    T og = 0.5 * tanh(gates[base + 3 * H]) + 0.5;
    gates[base] = ig; gates[base + H] = fg; gates[base + 2 * H] = gg; gates[base + 3 * H] = og;
    T cn = fg * c_prev + ig * gg;
    T tc = tanh(cn);
    c = cn; tanh_c = tc; h = og * tc;
"""
_BWD_OP = """
    const int b = i / H, j = i % H;
    const long base = (long)b * 4 * H + j;
    T ig = acts[base], fg = acts[base + H], gg = acts[base + 2 * H], og = acts[base + 3 * H];
    T dct = dc + dh * og * (1 - tanh_c * tanh_c);
    d_gates[base] = dct * gg * ig * (1 - ig);
    d_gates[base + H] = dct * c_prev * fg * (1 - fg);
    d_gates[base + 2 * H] = dct * ig * (1 - gg * gg);
    d_gates[base + 3 * H] = dh * tanh_c * og * (1 - og);
    dc_prev = dct * fg;
"""


# ``gates`` and ``d_gates`` are written through, so they are (raw) outputs: CuPy declares
# every input parameter const.
FORWARD_KERNEL = backend.define_elementwise_kernel(
    "T c_prev, int32 H", "T c, T h, T tanh_c, raw T gates", _FWD_OP, "tinynet_lstm_fwd")
BACKWARD_KERNEL = backend.define_elementwise_kernel(
    "raw T acts, T c_prev, T tanh_c, T dh, T dc, int32 H", "T dc_prev, raw T d_gates",
    _BWD_OP, "tinynet_lstm_bwd")


# ------------------------------------------------------------------ whole layer
class LSTMSaved(NamedTuple):
    """What :func:`lstm_layer_backward` needs from :func:`lstm_layer_forward`.

    ``acts``, ``c_prev`` and ``tanh_c`` are batch-major on CuPy (per step ``(B, 4H)`` and
    ``(B, H)``, the compiled kernels' layout) and feature-major on NumPy (per step
    ``(4H, B)`` and ``(H, B)``: ``feature_major`` says which).
    """
    inputs: object      # (T*B, H+I+1) [h_prev | x | 1] of every step ((T*B, H+I) without a bias)
    w_ih: object        # (4H, I)
    w_hh: object        # (4H, H)
    acts: object        # (T, B, 4H) [i|f|g|o] or (T, 4H, B) [i;f;o;g]: gate activations
    c_prev: object      # (T, B, H) or (T, H, B)
    tanh_c: object      # (T, B, H) or (T, H, B): tanh of the new cell state
    mask: object        # (T, B, 1) bool or None
    reverse: bool
    bias: bool          # inputs ends with the column of ones
    feature_major: bool
    products: object = None     # NumPy: (T, 2H, B) [i*g; f*c_prev] of every step
    h_out: object = None        # NumPy: (T, H, B) the new hidden state of every step

    @property
    def h_prev(self):
        """``(T, B, H)`` state entering each step (time-indexed), a view of ``inputs``."""
        T = self.acts.shape[0]
        H = self.w_hh.shape[1]
        return self.inputs[:, :H].reshape(T, -1, H)


def length_mask(lengths, steps: int, xp):
    """``(T, B, 1)`` bool mask, True where step ``t < lengths[b]``."""
    return (xp.arange(steps)[:, None] < xp.asarray(lengths)[None, :])[:, :, None]


def tanh_gates() -> bool:
    """Whether the NumPy time loop computes its gates with one ``tanh`` (the sigmoid as
    ``0.5 tanh(a/2) + 0.5``) rather than one ``exp``: on CPUs with AVX-512, where NumPy's
    float32 ``tanh`` loop is as fast as its ``exp`` (6.3 against 7.8 µs on 16,384 values,
    2-core AVX-512 EPYC) and saves the two calls of the g fix-up (forward 0.956x, forward
    and backward 0.942x, docs/kernels/lstm.md); on AVX2 its ``tanh`` took twice its
    ``exp``."""
    return backend.cpu_has_avx512()


#: Where the NumPy path keeps PyTorch's gate blocks (i, f, g, o): rows ``[i; f; o; g]``,
#: so the three sigmoid gates are one contiguous block.
NUMPY_BLOCKS = (0, 1, 3, 2)


def _pre_activation_scale(H: int, dtype, xp, form: str):
    """``(4H,)`` row scale folded into the weights and bias (see the module docstring):
    ``[-1, -1, -2, -1]`` per gate block for the exp form, ``[0.5, 0.5, 1, 0.5]`` for the
    tanh form (CuPy's kernel's, and NumPy's with AVX-512); None for the compiled CPU step,
    which takes the pre-activations as they are."""
    if form == "compiled":
        return None
    if form == "tanh":
        return gate_scale(H, dtype, xp)
    scale = xp.full((4, H), -1, dtype=dtype)
    scale[2] = -2
    return scale.reshape(-1)


def _stacked_weights(w_hh, w_ih, bias, scale, xp):
    """``scale * [W_hh | W_ih | b]`` ``(4H, H+I+1)`` (no ``b`` column without a bias; no
    scale when ``scale`` is None): the weights of the stacked step input ``[h; x; 1]``."""
    H, I = w_hh.shape[1], w_ih.shape[1]
    w = xp.empty((w_hh.shape[0], H + I + (bias is not None)), dtype=w_hh.dtype)
    if scale is None:
        w[:, :H], w[:, H:H + I] = w_hh, w_ih
        if bias is not None:
            w[:, H + I] = bias
        return w
    xp.multiply(w_hh, scale[:, None], out=w[:, :H])
    xp.multiply(w_ih, scale[:, None], out=w[:, H:H + I])
    if bias is not None:
        xp.multiply(bias, scale, out=w[:, H + I])
    return w


def _state_buffers(xp, T, h_shape, c_shape, dtype, h0, c0, reverse):
    """``(T+1, ...)`` buffers of h and c in time order, with the initial state in place,
    and the per-step views of them.

    The state entering step t is ``hs[t]`` going forward and ``hs[t + 1]`` going backward,
    so ``h_prev`` and ``h_out`` are two views of one buffer (likewise for c). ``h0`` fills
    the first rows of its slot (the rest of a feature-major slot holds ``[x; 1]``).
    """
    hs = xp.empty((T + 1,) + h_shape, dtype=dtype)
    cs = xp.empty((T + 1,) + c_shape, dtype=dtype)
    hs[T if reverse else 0, :h0.shape[0]] = h0
    cs[T if reverse else 0] = c0
    h_out, h_prev = (hs[:T], hs[1:]) if reverse else (hs[1:], hs[:T])
    c_out, c_prev = (cs[:T], cs[1:]) if reverse else (cs[1:], cs[:T])
    return hs, cs, h_out, h_prev, c_out, c_prev


def lstm_layer_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, reverse: bool = False,
                       mask=None):
    """One LSTM layer in one direction over a whole sequence.

    x ``(T, B, I)``, h0/c0 ``(B, H)``, w_ih ``(4H, I)``, w_hh ``(4H, H)``, biases ``(4H,)``.
    ``reverse=True`` runs from ``t = T-1`` down to 0 (the backward half of a bidirectional
    layer; with a mask, each sequence starts at its own last valid step).

    Returns ``y (T, B, H)`` (time-indexed outputs, zero at masked steps), ``h_n``, ``c_n``
    ``(B, H)`` and the :class:`LSTMSaved` record for the backward pass.
    """
    xp = backend.get_array_module(x, w_ih, w_hh)
    T, B, I = x.shape
    H = w_hh.shape[1]
    step_kernel = backend.elementwise_kernel(FORWARD_KERNEL, xp)
    if step_kernel is not None:
        form = "tanh"
    elif x.dtype == "float32" and backend.use_compiled(x, w_ih, w_hh, h0, c0):
        form = "compiled"
    else:
        form = "tanh" if tanh_gates() else "exp"
    scale = _pre_activation_scale(H, x.dtype, xp, form)
    bias = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih + b_hh)
    w = _stacked_weights(w_hh, w_ih, bias, scale, xp)
    steps = range(T - 1, -1, -1) if reverse else range(T)
    if step_kernel is None:
        w = w.reshape(4, H, -1)[list(NUMPY_BLOCKS)].reshape(4 * H, -1)      # rows [i; f; o; g]
        return _forward_feature_major(xp, x, w, w_ih, w_hh, h0, c0, steps, reverse, mask,
                                      bias is not None, form)

    # CuPy: batch-major, the input projection of all steps in one GEMM, then per step
    # one GEMM and one compiled kernel for the gate math
    x_ones = x.reshape(T * B, I)
    if bias is not None:
        x_ones = xp.concatenate([x_ones, xp.ones((T * B, 1), dtype=x.dtype)], axis=1)
    gates = (x_ones @ w[:, H:].T).reshape(T, B, 4 * H)
    w_hh_t = w[:, :H].T
    hs, cs, h_out, h_prev, c_out, c_prev = _state_buffers(xp, T, (B, H), (B, H), x.dtype,
                                                          h0, c0, reverse)
    tanh_c = xp.empty((T, B, H), dtype=x.dtype)
    buf = xp.empty((B, 4 * H), dtype=x.dtype)
    for t in steps:
        xp.matmul(h_prev[t], w_hh_t, out=buf)
        gates[t] += buf
        step_kernel(c_prev[t], H, c_out[t], h_out[t], tanh_c[t], gates[t])
        if mask is not None:
            keep = ~mask[t]
            xp.copyto(h_out[t], h_prev[t], where=keep)
            xp.copyto(c_out[t], c_prev[t], where=keep)
    h_n, c_n = (hs[0], cs[0]) if reverse else (hs[T], cs[T])
    y = h_out if mask is None else xp.where(mask, h_out, 0).astype(x.dtype, copy=False)
    inputs = xp.concatenate([h_prev.reshape(T * B, H), x_ones], axis=1)
    saved = LSTMSaved(inputs, w_ih, w_hh, gates, c_prev, tanh_c, mask, reverse,
                      bias is not None, False)
    return y, h_n.copy(), c_n.copy(), saved


def _native_pieces(H: int, *arrays) -> int:
    """Threads for the native time loop (:mod:`tinynet.kernels.compiled.lstm_loop`), or 0
    where it cannot run: the arrays not all C-contiguous float32, or NumPy's OpenBLAS not
    found or unable to run native pieces. One piece per OpenBLAS thread, at most one per
    hidden unit and one per core this process may use: pieces that wait for each other at
    every step must all be running (4 pieces on 2 cores took 12 ms a forward where 2 take
    2.2)."""
    from .. import blas_threads
    if blas_threads.native_gemm(*arrays) is None:
        return 0
    return max(1, min(blas_threads.threads(), H, backend._usable_cores()))


def _run_native(piece, pieces: int, parameters, arrays) -> bool:
    """Runs ``piece`` (:mod:`tinynet.kernels.compiled.lstm_loop`) as one job of ``pieces``
    pieces (:func:`tinynet.blas_threads.run_native_job`): the integer parameters, with the
    BLAS's ``gemm``, its integer width and ``sched_yield`` where the piece expects them
    (marked None), the arrays and fresh barrier flags. False where the job did not run."""
    from .. import blas_threads
    from .compiled import native
    fill = iter(blas_threads.native_gemm() + (native.yield_address(),))
    params = [next(fill) if v is None else v for v in parameters]
    return blas_threads.run_native_job(pieces, piece.address, params,
                                       list(arrays) + [native.new_flags(pieces)])


def _forward_feature_major(xp, x, w, w_ih, w_hh, h0, c0, steps, reverse, mask, has_bias,
                           form):
    """The NumPy time loop, feature-major: one GEMM and 8 calls a step (10 in the exp
    form, 1 with the compiled step), each on contiguous memory. ``form``: "tanh", "exp"
    or "compiled" (see the module docstring).

    Step t multiplies the stacked weights ``[W_hh | W_ih | b]`` ``(4H, H+I+1)``, rows in
    the order ``[i; f; o; g]``, by the stacked input ``z_t = [h_{t-1}; x_t; 1]``
    ``(H+I+1, B)``: the input projection, the bias and the recurrence in one GEMM, with
    nothing to add afterwards. The step's gates are ``(4H, B)``: four contiguous
    ``(H, B)`` row blocks, so each gate operation is one pass over contiguous memory (a
    ``(B, H)`` column block of a batch-major ``(B, 4H)`` array would be 32 separate
    rows, and NumPy pays for each).
    One transposing copy after the loop (the native job's pieces make it, and the copy of x
    into its slots, where x is C-contiguous) gives ``y`` and, batch-major, the ``[h | x | 1]``
    rows that the backward's single weight-gradient GEMM multiplies.
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    rows = w.shape[1]                                     # H + I (+ 1)
    dtype = x.dtype
    # zs[k] = [h; x; 1] in time order: z_t sits where h_{t-1} does (see _state_buffers)
    zs, cs, h_out, z_prev, c_out, c_prev = _state_buffers(xp, T, (rows, B), (H, B), dtype,
                                                          h0.T, c0.T, reverse)
    x_slots = zs[1:] if reverse else zs[:T]
    zs[0 if reverse else T, H:] = 0                       # the slot after the last step has no x
    if has_bias:
        x_slots[:, H + I] = 1
    acts = xp.empty((T, 4 * H, B), dtype=dtype)
    tanh_c = xp.empty((T, H, B), dtype=dtype)
    products = xp.empty((T, 2 * H, B), dtype=dtype)      # [i g; f c_prev], kept for backward
    padded = None if mask is None else ~mask[..., 0]      # (T, B): columns that keep state
    zs_bm, pieces, layouts = None, 0, False
    if form == "compiled":
        from .compiled.lstm import forward_step
        pieces = 0 if padded is not None else _native_pieces(H, w, zs, cs, acts, tanh_c, products)
        # the native job's pieces also make the two transposing copies around the loop,
        # each its share of the steps, from a C-contiguous x (53 + 136 µs on one core
        # before, on B32 T50 64->128)
        layouts = bool(pieces) and x.flags.c_contiguous and x.dtype == dtype
    if not layouts:
        x_slots[:, H:H + I] = x.transpose(0, 2, 1)
    if pieces:
        from .compiled import lstm_loop
        out = xp.empty((T + 1, B, rows), dtype=dtype) if layouts else zs
        if _run_native(lstm_loop.forward_piece, pieces,
                       (T, B, H, rows, reverse, None, None, None, I, int(layouts)),
                       (w, zs, cs, acts, tanh_c, products, x if layouts else zs, out)):
            steps = ()          # done: the loop below has nothing left to run
            zs_bm = out if layouts else None
        elif layouts:           # the job did not run: the copy it would have made
            x_slots[:, H:H + I] = x.transpose(0, 2, 1)
    # the exp form's exp(-a) (_gates_numpy) overflows to inf for a < -88 (float32):
    # 1 / (1 + inf) = 0 is the exact limit; one errstate for the whole loop
    with xp.errstate(over="ignore"):
        for t in steps:
            a = acts[t]
            xp.matmul(w, z_prev[t], out=a)
            h, c = h_out[t, :H], c_out[t]
            if form == "compiled":
                forward_step(a, c_prev[t], c, tanh_c[t], products[t], h, 0, H)
            else:
                _gates_numpy(xp, a, c_prev[t], c, tanh_c[t], products[t], h, form == "tanh")
            if padded is not None:
                xp.copyto(h, z_prev[t, :H], where=padded[t])
                xp.copyto(c, c_prev[t], where=padded[t])
    if zs_bm is None:
        zs_bm = xp.ascontiguousarray(zs.transpose(0, 2, 1))        # (T+1, B, H+I+1)
    y = (zs_bm[:T] if reverse else zs_bm[1:])[..., :H]
    if mask is not None:
        y = xp.where(mask, y, 0).astype(dtype, copy=False)
    inputs = (zs_bm[1:] if reverse else zs_bm[:T]).reshape(T * B, rows)
    h_n = zs_bm[0 if reverse else T, :, :H]
    c_n = cs[0 if reverse else T]
    saved = LSTMSaved(inputs, w_ih, w_hh, acts, c_prev, tanh_c, mask, reverse, has_bias, True,
                      products, h_out[:, :H])
    return y, h_n.copy(), xp.ascontiguousarray(c_n.T), saved


def _gates_numpy(xp, a, c_prev, c, tanh_c, products, h, tanh_form):
    """One step's gate math on the NumPy route, after the GEMM: ``a`` ``(4H, B)`` (rows
    [i; f; o; g], pre-activations scaled for the form) becomes the gates; fills ``c``,
    ``tanh_c``, ``h`` ``(H, B)`` and ``products`` ``(2H, B)`` = ``[i g; f c_prev]``. 8 calls
    in the tanh form, 10 in the exp form (see the module docstring)."""
    H = c.shape[0]
    half = a.dtype.type(0.5)
    i, f, o, g = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
    if tanh_form:
        xp.tanh(a, out=a)                 # tanh(a/2) on i, f, o; tanh(a_g) on g
        sigmoids = a[:3 * H]
        sigmoids *= half
        sigmoids += half                  # sigmoid(a) = 0.5 tanh(a/2) + 0.5
    else:
        xp.exp(a, out=a)
        a += 1
        xp.divide(1, a, out=a)            # i, f, o; the g block holds sigmoid(2 a_g)
        g *= 2
        g -= 1                            # tanh(a_g) = 2 sigmoid(2 a_g) - 1
    ig, fc = products[:H], products[H:]
    xp.multiply(i, g, out=ig)
    xp.multiply(f, c_prev, out=fc)
    xp.add(ig, fc, out=c)
    xp.tanh(c, out=tanh_c)
    xp.multiply(o, tanh_c, out=h)


def lstm_layer_backward(saved: LSTMSaved, dy=None, dh_n=None, dc_n=None, need_dx: bool = True):
    """Backward through time for :func:`lstm_layer_forward`.

    dy ``(T, B, H)``, dh_n/dc_n ``(B, H)`` (any may be None = zero). Returns
    ``dx (T, B, I), dh0, dc0 (B, H), dw_ih (4H, I), dw_hh (4H, H), db (4H,)``; ``db`` is the
    gradient of both ``b_ih`` and ``b_hh`` (they enter the gates as a sum). With
    ``need_dx=False`` the input-gradient GEMM is skipped and ``dx`` is None.
    """
    acts = saved.acts
    xp = backend.get_array_module(acts)
    T = acts.shape[0]
    H = saved.w_hh.shape[1]
    B = saved.inputs.shape[0] // T
    zeros = xp.zeros((B, H), dtype=acts.dtype)
    dh = zeros if dh_n is None else dh_n.astype(acts.dtype, copy=False)
    dc = zeros if dc_n is None else dc_n.astype(acts.dtype, copy=False)
    steps = range(T) if saved.reverse else range(T - 1, -1, -1)
    if saved.feature_major:
        dg, dh, dc = _backward_feature_major(xp, saved, dy, dh, dc, steps)
    else:
        d_gates, dh, dc = _backward_batch_major(xp, saved, dy, dh.copy(), dc.copy(), steps)
        dg = d_gates.reshape(T * B, 4 * H).T

    # every step's weight gradient in one GEMM: [dW_hh | dW_ih | db] = dA [h_prev | x | 1]
    dw = dg @ saved.inputs
    I = saved.w_ih.shape[1]
    dw_hh, dw_ih = xp.ascontiguousarray(dw[:, :H]), xp.ascontiguousarray(dw[:, H:H + I])
    db = xp.ascontiguousarray(dw[:, H + I]) if saved.bias else dg.sum(axis=1)
    dx = (dg.T @ saved.w_ih).reshape(T, B, -1) if need_dx else None
    return dx, dh, dc, dw_ih, dw_hh, db


def _backward_batch_major(xp, saved, dy, dh, dc, steps):
    """CuPy: one compiled kernel per step for the gate gradients, then ``dh = da @ W_hh``."""
    acts, c_prev, tanh_c, mask = saved.acts, saved.c_prev, saved.tanh_c, saved.mask
    step_kernel = backend.elementwise_kernel(BACKWARD_KERNEL, xp)
    H = dh.shape[1]
    d_gates = xp.empty_like(acts)
    dct = xp.empty_like(dh)
    for t in steps:
        if mask is not None:
            keep = ~mask[t]
            carry_h, carry_c = dh * keep, dc * keep
            if dy is not None:
                dh += dy[t]
            dh *= mask[t]
            dc *= mask[t]
        elif dy is not None:
            dh += dy[t]
        step_kernel(acts[t], c_prev[t], tanh_c[t], dh, dc, H, dct, d_gates[t])
        dc, dct = dct, dc
        xp.matmul(d_gates[t], saved.w_hh, out=dh)
        if mask is not None:
            dh += carry_h
            dc += carry_c
    return d_gates, dh, dc


def _backward_feature_major(xp, saved, dy, dh_n, dc_n, steps):
    """The NumPy backward time loop, feature-major like its forward: per step 13 calls on
    contiguous ``(H, B)`` blocks that stay in cache, the GEMM ``dh = W_hh^T @ da`` and one
    copy of ``da`` into its column block of the ``(4H, T*B)`` weight-gradient matrix.

    The gradient-independent factors (``g i(1-i)`` and the others) are computed step by
    step from the forward's products (see the module docstring). Returns ``dA (4H, T*B)``
    (columns ordered t, b) and ``dh0, dc0 (B, H)``.
    """
    acts, tanh_c, mask = saved.acts, saved.tanh_c, saved.mask
    products, h_out = saved.products, saved.h_out
    T, G, B = acts.shape
    H = G // 4
    dh = dh_n.T.copy()                                    # (H, B), updated in place
    dc = dc_n.T.copy()
    if dy is not None and not dy.any():
        dy = None       # the engine's zeros for an unused output: skip T additions
    dy_t = None if dy is None else xp.ascontiguousarray(dy.transpose(0, 2, 1))   # (T, H, B)
    keep = None if mask is None else mask[..., 0]         # (T, B)
    w_hh_t = xp.ascontiguousarray(saved.w_hh.T)           # (H, 4H)
    d_gates = xp.empty((G, T, B), dtype=acts.dtype)      # (4H, T*B) for the weight GEMM
    if backend.use_compiled(acts):
        # compiled / NumPy, backward, 1 thread: 0.37x at T10 B4 8->16, 0.91x at T50 B32
        # 64->128, 0.99x at T50 B64 64->256 (the GEMMs grow, the saving stays one pass)
        _backward_steps_compiled(xp, saved, dy_t, keep, dh, dc, w_hh_t, d_gates, steps)
        return d_gates.reshape(G, T * B), xp.ascontiguousarray(dh.T), xp.ascontiguousarray(dc.T)
    d = xp.empty((G, B), dtype=acts.dtype)               # this step's, contiguous
    factor = xp.empty((G, B), dtype=acts.dtype)
    f_g, f_o = factor[2 * H:3 * H], factor[3 * H:]
    factor3 = factor[:3 * H].reshape(3, H, B)
    scratch = xp.empty((2 * H, B), dtype=acts.dtype)
    dct = xp.empty_like(dh)
    for t in steps:
        if keep is not None:
            carry_h, carry_c = dh * ~keep[t], dc * ~keep[t]
        if dy_t is not None:
            dh += dy_t[t]
        if keep is not None:
            dh *= keep[t]
            dc *= keep[t]
        a, tc, h, ig_fc = acts[t], tanh_c[t], h_out[t], products[t]
        i, f, o, g = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]        # NUMPY_BLOCKS
        # factor = [g i(1-i); c f(1-f); i (1-g^2); tanh_c o(1-o)], from the forward's
        # products ig = i g, fc = f c and h = o tanh_c: two calls a block, no constants
        xp.multiply(ig_fc, a[:2 * H], out=scratch)
        xp.subtract(ig_fc, scratch, out=factor[:2 * H])   # [ig - ig i; fc - fc f]
        xp.multiply(ig_fc[:H], g, out=f_g)
        xp.subtract(i, f_g, out=f_g)                       # i - i g^2
        xp.multiply(h, o, out=f_o)
        xp.subtract(h, f_o, out=f_o)                       # h - h o
        # dc_total = dc + dh o (1 - tanh_c^2) = dc + dh (o - h tanh_c)
        xp.multiply(h, tc, out=dct)
        xp.subtract(o, dct, out=dct)
        dct *= dh
        dct += dc
        xp.multiply(factor3, dct, out=d[:3 * H].reshape(3, H, B))
        xp.multiply(f_o, dh, out=d[3 * H:])
        xp.multiply(dct, f, out=dc)
        xp.matmul(w_hh_t, d, out=dh)
        d_gates[:, t] = d                         # one strided copy while d is in cache
        if keep is not None:
            dh += carry_h
            dc += carry_c
    return d_gates.reshape(G, T * B), xp.ascontiguousarray(dh.T), xp.ascontiguousarray(dc.T)


def _backward_steps_compiled(xp, saved, dy_t, keep, dh, dc, w_hh_t, d_gates, steps):
    """The backward time loop with each step's gate gradients computed by one compiled
    pass (:func:`tinynet.kernels.compiled.lstm.backward_step`) instead of 13 NumPy
    calls; the recurrent GEMM ``dh = W_hh^T da`` stays a NumPy call. Updates ``dh``,
    ``dc`` ``(H, B)`` and fills ``d_gates`` ``(4H, T, B)`` in place."""
    from .compiled import lstm as _compiled
    acts = saved.acts
    T, G, B = acts.shape
    H = G // 4
    dtype = acts.dtype
    # empty arrays stand for "no dy" and "no mask", so one compiled signature serves all
    dy_t = xp.empty((0, H, B), dtype) if dy_t is None else dy_t
    keep = xp.empty((0, B), dtype) if keep is None else keep.astype(dtype)
    d = xp.empty((G, B), dtype=dtype)
    carry = xp.empty((2, H, B), dtype=dtype)
    masked = keep.shape[0] > 0
    arrays = (acts, saved.c_prev, saved.tanh_c, dy_t, dh, dc)
    pieces = 0 if masked else _native_pieces(H, w_hh_t, d_gates, *arrays)
    if pieces:
        from .compiled import lstm_loop
        d2 = xp.empty((2, G, B), dtype=dtype)
        if _run_native(lstm_loop.backward_piece, pieces,
                       (T, B, H, saved.reverse, None, None, None, dy_t.shape[0] > 0),
                       arrays + (d2, d_gates, w_hh_t)):
            return
    for t in steps:
        _compiled.backward_step(acts, saved.c_prev, saved.tanh_c, dy_t, keep, dh, dc, d,
                                d_gates, carry, t, 0, H)
        xp.matmul(w_hh_t, d, out=dh)
        if masked:
            dh += carry[0]
