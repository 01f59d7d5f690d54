"""``python -m tinynet`` (and later ``tinynet selfcheck``): a one-minute health check.

1. Builds a 2-layer MLP from core ops (linear, relu, cross_entropy) on random data,
   runs forward and backward, and takes a few plain SGD steps written by hand; the loss
   must go down.
2. Runs gradcheck and gradgradcheck (float64 finite differences) on a few core ops.

Prints a short report and returns 0 when everything passed, 1 otherwise.
"""
from __future__ import annotations

import sys
import time

import tinynet as tn
import tinynet.functional as F
from tinynet.testing import gradcheck, gradgradcheck


def _train_mlp(steps: int = 20, lr: float = 0.5, seed: int = 0):
    """Loss before and after ``steps`` SGD steps of a 2-layer MLP on a separable toy task."""
    tn.manual_seed(seed)
    n, d, hidden, classes = 64, 8, 16, 3
    x = tn.randn(n, d)
    true_w = tn.randn(classes, d)
    y = F.argmax(x @ true_w.T, dim=1)                 # labels a linear rule can fit
    w1 = (tn.randn(hidden, d) * (2.0 / d) ** 0.5).requires_grad_()
    b1 = tn.zeros(hidden, requires_grad=True)
    w2 = (tn.randn(classes, hidden) * (1.0 / hidden) ** 0.5).requires_grad_()
    b2 = tn.zeros(classes, requires_grad=True)
    params = [w1, b1, w2, b2]
    losses = []
    for _ in range(steps):
        logits = F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)
        loss = F.cross_entropy(logits, y)
        for p in params:
            p.grad = None
        loss.backward()
        with tn.no_grad():
            for p in params:
                p.data -= lr * p.grad.data
        losses.append(loss.item())
    return losses


def _gradient_checks():
    """(name, passed, detail) for first- and second-order checks of a few core ops."""
    rng = tn.random.generator()

    def leaf(*shape, low=-1.0, high=1.0):
        return tn.tensor(rng.uniform(low, high, shape), dtype=tn.float64, requires_grad=True)

    target = tn.tensor([1, 0, 2])
    checks = [
        ("mul + sum", lambda a, b: (a * b).sum(1), lambda: (leaf(2, 3), leaf(2, 3))),
        ("matmul", F.matmul, lambda: (leaf(2, 3), leaf(3, 4))),
        ("linear", F.linear, lambda: (leaf(4, 3), leaf(2, 3), leaf(2))),
        ("tanh", F.tanh, lambda: (leaf(5),)),
        ("softmax", lambda a: F.softmax(a, dim=1), lambda: (leaf(2, 4),)),
        ("cross_entropy", lambda a: F.cross_entropy(a, target), lambda: (leaf(3, 3),)),
        ("exp / log", lambda a: F.log(F.exp(a) + 1.0), lambda: (leaf(3),)),
    ]
    results = []
    for name, fn, make in checks:
        for kind, check in (("gradcheck", gradcheck), ("gradgradcheck", gradgradcheck)):
            try:
                check(fn, make())
                results.append((f"{kind} {name}", True, ""))
            except AssertionError as e:       # GradcheckError is one
                results.append((f"{kind} {name}", False, str(e)))
    return results


def main(argv=None) -> int:
    """Runs the checks and prints the report; returns the exit status."""
    start = time.perf_counter()
    ok = True
    print(f"tinynet {tn.__version__} self-check (device: {tn.get_default_device()})")
    try:
        losses = _train_mlp()
        decreased = losses[-1] < 0.7 * losses[0]
        ok &= decreased
        print(f"  [{'ok' if decreased else 'FAIL'}] 2-layer MLP, {len(losses)} SGD steps: "
              f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    except Exception as e:                   # report, do not crash: this is a diagnostic
        ok = False
        print(f"  [FAIL] 2-layer MLP training raised {type(e).__name__}: {e}")
    for name, passed, detail in _gradient_checks():
        ok &= passed
        print(f"  [{'ok' if passed else 'FAIL'}] {name}" + (f": {detail}" if detail else ""))
    print(f"{'all checks passed' if ok else 'SOME CHECKS FAILED'} "
          f"({time.perf_counter() - start:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
