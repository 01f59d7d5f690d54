"""A second reference library beside PyTorch: JAX (jit-compiled, ``jax.grad``) on the
kernel workloads of ``kernels.py`` (issue 11).

Each workload runs in three libraries in this one process, interleaved as in
``common.compare``: tinynet, PyTorch (the contract) and JAX on its CPU backend, each
forward and forward+backward (gradients of input, weight and bias through
``jax.grad`` of ``<f(x, w, b), dy>``, compiled once with ``jax.jit`` during the warm-up).
Before timing, every JAX function is checked against PyTorch's result, so a row compares
the same mathematics (PyTorch's ``conv_transpose2d`` padding is ``k - 1 - p`` on the
dilated input in ``lax.conv_transpose``).

Without JAX (``pip install -e ".[jax]"``) the module prints why and exits 0.

Threads: XLA sizes its CPU thread pool at import, so ``--threads 1`` sets
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` before
importing JAX; with more threads XLA uses its default (all cores), which the table says.

    python benchmarks/references.py [--threads N] [--quick] [--json FILE]

The same rows come from ``run.py --references jax``, in the runner's tables (the JAX
columns beside PyTorch's); ``keras_unet.py`` is the second reference, on the U-Net step.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402  (benchmark driver)

import common  # noqa: E402
import kernels  # noqa: E402


def import_jax(threads: int):
    """``(jax, jax.numpy, jax.lax)`` or None when JAX is not installed."""
    if threads == 1:
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                           "intra_op_parallelism_threads=1")
    try:
        import jax
        import jax.numpy as jnp
        from jax import lax
    except ImportError:
        return None
    return jax, jnp, lax


def jax_cases(jax_mods, op, N, C_in, C_out, H, W, k, s, p):
    """``(forward_fn, forward_backward_fn, check)`` for JAX on kernels.make_cases' data;
    ``check(torch_forward_output, torch_grads)`` asserts JAX computes the same."""
    jax, jnp, lax = jax_mods
    rng = np.random.default_rng(0)     # the same draws as kernels.make_cases
    x = rng.standard_normal((N, C_in, H, W), dtype=np.float32)
    w = b = None
    if op not in ("maxpool", "elu"):
        w_shape = (C_out, C_in, k, k) if op == "conv" else (C_in, C_out, k, k)
        w = rng.standard_normal(w_shape, dtype=np.float32) * 0.1
        b = rng.standard_normal(C_out, dtype=np.float32)

    def f(x_, w_, b_):
        if op == "elu":
            return jax.nn.elu(x_)
        if op == "maxpool":
            return lax.reduce_window(x_, -jnp.inf, lax.max, (1, 1, k, k), (1, 1, s, s), "VALID")
        if op == "conv":
            y = lax.conv_general_dilated(x_, w_, (s, s), [(p, p), (p, p)],
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        else:
            y = lax.conv_transpose(x_, w_, (s, s), [(k - 1 - p, k - 1 - p)] * 2,
                                   dimension_numbers=("NCHW", "OIHW", "NCHW"), transpose_kernel=True)
        return y + b_[None, :, None, None]

    args = [jnp.asarray(a) for a in (x, w, b) if a is not None]
    if op in ("maxpool", "elu"):
        args += [None, None]
    y_shape = jax.eval_shape(f, *args).shape
    gy = jnp.asarray(rng.standard_normal(y_shape, dtype=np.float32))
    forward = jax.jit(f)
    argnums = (0,) if op in ("maxpool", "elu") else (0, 1, 2)
    grads = jax.jit(jax.grad(lambda *a: jnp.vdot(f(*a), gy), argnums=argnums))

    def run_forward():
        forward(*args).block_until_ready()

    def run_forward_backward():
        for g in grads(*args):
            g.block_until_ready()

    def check(torch_y, torch_grads):
        np.testing.assert_allclose(np.asarray(forward(*args)), torch_y, rtol=2e-3, atol=2e-3)
        for ours, theirs in zip(grads(*args), torch_grads):
            np.testing.assert_allclose(np.asarray(ours), theirs, rtol=2e-3, atol=2e-2)
    return run_forward, run_forward_backward, check, (x, w, b, np.asarray(gy))


def torch_reference(op, x, w, b, gy, k, s, p):
    """PyTorch's output and gradients on the same data, for the check."""
    import torch
    ts = [None if a is None else torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    TF = torch.nn.functional
    if op == "elu":
        y = TF.elu(ts[0])
    elif op == "maxpool":
        y = TF.max_pool2d(ts[0], k, s, p)
    elif op == "conv":
        y = TF.conv2d(ts[0], ts[1], ts[2], s, p)
    else:
        y = TF.conv_transpose2d(ts[0], ts[1], ts[2], s, p)
    y.backward(torch.tensor(gy))
    return y.detach().numpy(), [t.grad.numpy() for t in ts if t is not None]


def unavailable(device: str = "cpu") -> str | None:
    """Why the JAX reference cannot run here (None when it can)."""
    if str(device).startswith("cuda"):
        return "JAX runs on its CPU backend only in these benchmarks"
    if common.torch_or_none() is None:
        return "PyTorch, the contract each JAX result is checked against, is not installed"
    if not common.module_installed("jax"):
        return "JAX is not installed (pip install -e '.[jax]')"
    return None


def run(quick: bool = False, threads: int = 1) -> list[dict]:
    """The kernel rows with JAX beside tinynet and PyTorch (``kernels.run``'s rows)."""
    if common.load_reference("references", "JAX", unavailable(), lambda: import_jax(threads)) is None:
        return []
    return kernels.run(quick=quick, references=("jax",))


def main(argv=None) -> int:
    parser = common.standalone_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    jax_mods = import_jax(args.threads)   # before anything else touches XLA
    info, threads = common.start_standalone(args)
    rows = run(quick=args.quick, threads=args.threads)
    if rows:
        jax = jax_mods[0]
        print(f"JAX {jax.__version__} on {jax.devices()[0].platform}, XLA threads: "
              f"{'1' if args.threads == 1 else 'default (all cores)'}")
        print(common.format_table(rows))
    common.write_json(args.json, info, threads, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
