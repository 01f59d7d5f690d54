"""Finite-difference checks of first and second derivatives (float64, central differences).

For f: inputs -> outputs, backward computes vᵀJ for a cotangent v. ``gradcheck`` compares,
for every input x_k that requires grad, the analytical Jacobian (one backward per output
element) with the numerical one (f(x + eps·e_j) - f(x - eps·e_j)) / 2eps, element by
element: |analytical - numerical| <= atol + rtol·|numerical|.

``fast_mode`` checks one random projection instead: uᵀ J v computed two ways — analytically
with one backward for a random cotangent u, numerically with one central difference along a
random direction v per input — the cost of two forwards and one backward per input.
"""
from __future__ import annotations

from ..backend import numpy as np, asnumpy
from ..autograd import enable_grad, grad as _grad
from ..tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "assert_close", "GradcheckError"]


class GradcheckError(AssertionError):
    """A derivative disagrees with its finite-difference estimate."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _checked(inputs):
    return [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]


def _check_inputs(inputs, name):
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise ValueError(f"{name}: input {i} is {t.dtype}; finite differences need float64 "
                             "inputs (cast with .double())")
    if not _checked(inputs):
        raise ValueError(f"{name}: no input requires grad, nothing to check")


def _flat_outputs(fn, inputs):
    with enable_grad():
        return np.concatenate([asnumpy(o.data).ravel() for o in _outputs(fn, inputs)] or [np.zeros(0)])


def _numerical_jacobian(fn, inputs, k, eps):
    """Columns d(outputs)/d(inputs[k][j]) by central differences, perturbing in place."""
    x = inputs[k].data
    flat = x.reshape(-1)
    cols = []
    for j in range(flat.size):
        orig = flat[j].item()
        flat[j] = orig + eps
        plus = _flat_outputs(fn, inputs)
        flat[j] = orig - eps
        minus = _flat_outputs(fn, inputs)
        flat[j] = orig
        cols.append((plus - minus) / (2 * eps))
    n_out = _flat_outputs(fn, inputs).size
    return np.stack(cols, axis=1) if cols else np.zeros((n_out, 0))


def _vjp(fn, inputs, cotangents, create_graph=False):
    """Gradients of Σ <output_i, cotangent_i> with respect to the checked inputs."""
    for i in _checked(inputs):
        inputs[i].grad = None
    with enable_grad():
        outs = _outputs(fn, inputs)
        total = None
        for o, c in zip(outs, cotangents):
            if not o.requires_grad:
                continue
            term = (o * Tensor(o.xp.asarray(c.reshape(o.shape)))).sum()
            total = term if total is None else total + term
    grads = []
    if total is not None:
        total.backward(create_graph=create_graph)
    for i in _checked(inputs):
        g = inputs[i].grad
        grads.append(np.zeros(inputs[i].shape) if g is None else asnumpy(g.data).astype(np.float64))
    return grads


def _split(vec, fn, inputs):
    with enable_grad():
        shapes = [o.shape for o in _outputs(fn, inputs)]
    parts, start = [], 0
    for s in shapes:
        n = int(np.prod(s))
        parts.append(vec[start:start + n])
        start += n
    return parts


def _report(name, which, analytical, numerical, atol, rtol, inputs_desc):
    diff = np.abs(analytical - numerical) - (atol + rtol * np.abs(numerical))
    worst = np.unravel_index(np.argmax(diff), diff.shape) if diff.size else None
    raise GradcheckError(
        f"{name}: {which} of {inputs_desc} disagrees with finite differences; worst element "
        f"{tuple(int(i) for i in worst)}: analytical {analytical[worst]:.10g}, numerical "
        f"{numerical[worst]:.10g} (atol={atol}, rtol={rtol}; "
        f"max |difference| {np.max(np.abs(analytical - numerical)):.3g})")


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              fast_mode: bool = False, seed: int = 0, name: str = "gradcheck") -> bool:
    """Checks the first derivatives of ``fn`` at ``inputs`` against central differences.

    ``fn`` takes the inputs (Tensors, or other values passed through) and returns a Tensor
    or a tuple of Tensors. Inputs with ``requires_grad=True`` must be float64 and are
    checked. Returns True, or raises :class:`GradcheckError` naming the input, the worst
    element, both values and the tolerances.

    >>> import tinynet as tn
    >>> x = tn.tensor([0.5, -1.0], dtype=tn.float64, requires_grad=True)
    >>> gradcheck(lambda t: (t * t * t).sum(), (x,))
    True
    """
    inputs = list(inputs)
    _check_inputs(inputs, name)
    for k in _checked(inputs):  # perturbation below writes through a flat view
        if not inputs[k].data.flags.c_contiguous:
            inputs[k].data = inputs[k].data.copy()
    out0 = _flat_outputs(fn, inputs)
    rng = np.random.default_rng(seed)
    checked = _checked(inputs)
    if fast_mode:
        u = rng.standard_normal(out0.size)
        grads = _vjp(fn, inputs, _split(u, fn, inputs))
        for g, k in zip(grads, checked):
            x, xp = inputs[k].data, inputs[k].xp
            v = rng.standard_normal(x.shape)
            orig, step = x.copy(), xp.asarray(eps * v)
            x[...] = orig + step
            plus = _flat_outputs(fn, inputs)
            x[...] = orig - step
            minus = _flat_outputs(fn, inputs)
            x[...] = orig
            numerical = np.array([u @ ((plus - minus) / (2 * eps))])
            analytical = np.array([np.sum(g * v)])
            if not np.all(np.abs(analytical - numerical) <= atol + rtol * np.abs(numerical)):
                _report(name, "the projected Jacobian uᵀJv", analytical, numerical, atol, rtol,
                        f"input {k}")
        return True
    analytical = _analytical_jacobians(fn, inputs, checked, out0.size)
    for k, jac in zip(checked, analytical):
        numerical = _numerical_jacobian(fn, inputs, k, eps)
        ok = np.abs(jac - numerical) <= atol + rtol * np.abs(numerical)
        if not np.all(ok):
            _report(name, "the Jacobian (rows: outputs, columns: input elements)", jac,
                    numerical, atol, rtol, f"input {k} (shape {tuple(inputs[k].shape)})")
    return True


def _analytical_jacobians(fn, inputs, checked, n_out):
    """One Jacobian per checked input, row r = backward of the r-th output element.

    One forward builds the graph; each row is a backward through it (retain_graph).
    """
    jacs = [np.zeros((n_out, inputs[k].data.size)) for k in checked]
    with enable_grad():
        outs = [o for o in _outputs(fn, inputs)]
    diff = [o for o in outs if o.requires_grad]
    offsets, start = [], 0
    for o in outs:
        offsets.append(start)
        start += o.data.size
    xs = [inputs[k] for k in checked]
    for o, off in zip(outs, offsets):
        if not o.requires_grad:
            continue
        for j in range(o.data.size):
            seed = o.xp.zeros(o.shape, dtype=o.dtype)
            seed.reshape(-1)[j] = 1
            grads = _grad([o], xs, [Tensor(seed)], retain_graph=True, allow_unused=True)
            for jac, g in zip(jacs, grads):
                if g is not None:
                    jac[off + j] = asnumpy(g.data).astype(np.float64).ravel()
    del diff
    return jacs


def gradgradcheck(fn, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, fast_mode: bool = False, seed: int = 0) -> bool:
    """Checks second derivatives: gradcheck of the map (inputs, v) -> vᵀJ(inputs).

    The vector-Jacobian product is computed with ``create_graph=True``; the cotangent
    ``v`` (random when ``grad_outputs`` is None) is itself checked as an input, as PyTorch
    does.
    """
    inputs = list(inputs)
    _check_inputs(inputs, "gradgradcheck")
    with enable_grad():
        outs = _outputs(fn, inputs)
    rng = np.random.default_rng(seed + 1)
    if grad_outputs is None:
        xp = outs[0].xp if outs else np
        grad_outputs = [Tensor(xp.asarray(rng.standard_normal(o.shape)), requires_grad=True) for o in outs]
    checked = _checked(inputs)
    n = len(inputs)

    def first_derivative(*args):
        xs, vs = list(args[:n]), args[n:]
        with enable_grad():
            pairs = [(o, v) for o, v in zip(_outputs(fn, xs), vs) if o.requires_grad]
            if not pairs:
                return tuple()
            return _grad([o for o, _ in pairs], [xs[i] for i in checked], [v for _, v in pairs],
                         create_graph=True, allow_unused=True)

    return gradcheck(first_derivative, inputs + list(grad_outputs), eps=eps, atol=atol,
                     rtol=rtol, fast_mode=fast_mode, seed=seed, name="gradgradcheck")


def assert_close(actual, expected, rtol: float | None = None, atol: float | None = None,
                 msg: str = "") -> None:
    """Asserts two tensors/arrays (any device, or torch tensors) are equal within tolerance.

    Default tolerances follow the dtype (float32: rtol 1.3e-6, atol 1e-5; float64: rtol
    1e-7, atol 1e-7), as ``torch.testing.assert_close``.
    """
    a, b = _to_numpy(actual), _to_numpy(expected)
    if a.shape != b.shape:
        raise AssertionError(f"assert_close: shapes differ: {a.shape} vs {b.shape}. {msg}")
    lowest = np.float32 if np.float32 in (a.dtype, b.dtype) else np.float64
    if rtol is None:
        rtol = 1.3e-6 if lowest == np.float32 else 1e-7
    if atol is None:
        atol = 1e-5 if lowest == np.float32 else 1e-7
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bad = ~np.isclose(a64, b64, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        gap = np.where(bad, np.abs(a64 - b64), -1.0)
        gap = np.where(np.isnan(gap), np.inf, gap)   # a NaN on one side only is the worst
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(gap), a.shape)) if a.ndim else ()
        raise AssertionError(
            f"assert_close: {int(bad.sum())} of {a.size} elements differ (rtol={rtol}, atol={atol}); "
            f"worst at {idx}: {float(a64[idx])!r} vs {float(b64[idx])!r}. {msg}")


def _to_numpy(x):
    if isinstance(x, Tensor):
        return asnumpy(x.data)
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        return x.detach().cpu().numpy()
    return asnumpy(x) if hasattr(x, "dtype") else np.asarray(x)
