"""Planted-bug audit: does the test suite catch realistic bugs?

Each mutation below is one small, plausible mistake (a sign, a strict/non-strict
comparison, a fast-path guard) in one file. For each, this script

1. copies the package and its tests once into a scratch directory (the working tree is
   never modified, so Ctrl-C or a crash cannot leave a mutation behind),
2. replaces exactly one occurrence of ``old`` by ``new`` in the scratch copy,
3. runs the tests meant to catch it (``HYPOTHESIS_PROFILE=ci``, no bytecode cache),
4. reports *caught* (some test failed) or *missed* (all passed), and restores the file.

A mutation whose ``old`` text no longer occurs exactly once is reported as *stale*: the
code moved, and the list needs updating. Entries marked ``expect="missed"`` are controls:
the tests that existed before issue 14 (gradcheck, gradgradcheck, parity), which cannot
see a wrong op-built backward; they show what the newer test adds.

Usage::

    python tools/mutations/run.py                 # all mutations
    python tools/mutations/run.py --list
    python tools/mutations/run.py --only gru-op-built-z-sign rnn-op-built-tanh-derivative

Exit status 0 when every mutation ended as expected (caught, or missed for controls).
Not part of the default pytest run (it lives outside ``tests/``).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COPIED = ("tinynet", "tests", "setup.cfg", "pyproject.toml", "README.md", "docs", "mkdocs.yml",
          "examples")


@dataclasses.dataclass
class Mutation:
    name: str
    path: str            # relative to the repository root
    old: str
    new: str
    tests: list          # pytest arguments (paths, -k expressions)
    about: str
    expect: str = "caught"


REGISTRY = "tests/testing/test_registry.py"
CREATE_GRAPH = "test_create_graph_backward_matches_first_order_backward_and_pytorch"
OLD_REGISTRY_CHECKS = "(test_gradcheck or test_gradgradcheck or test_torch_parity)"

MUTATIONS = [
    # --- op-built (create_graph=True) backwards: missed by the suite before issue 14
    Mutation("gru-op-built-z-sign", "tinynet/functional/recurrent.py",
             "da_z = dh * (h_prev - n) * z * (1 - z)", "da_z = dh * (n - h_prev) * z * (1 - z)",
             [REGISTRY, "-k", f"{CREATE_GRAPH} and gru"],
             "sign of the z-gate term in the GRU op-built backward"),
    Mutation("gru-op-built-z-sign (control)", "tinynet/functional/recurrent.py",
             "da_z = dh * (h_prev - n) * z * (1 - z)", "da_z = dh * (n - h_prev) * z * (1 - z)",
             [REGISTRY, "-k", f"{OLD_REGISTRY_CHECKS} and gru"],
             "the same bug against the pre-issue-14 registry checks only", expect="missed"),
    Mutation("rnn-op-built-tanh-derivative", "tinynet/functional/recurrent.py",
             "deriv = 1 - h_new * h_new", "deriv = 1 + h_new * h_new",
             [REGISTRY, "-k", f"{CREATE_GRAPH} and rnn"],
             "1 - h^2 -> 1 + h^2 in the RNN-tanh op-built backward"),
    Mutation("rnn-op-built-tanh-derivative (control)", "tinynet/functional/recurrent.py",
             "deriv = 1 - h_new * h_new", "deriv = 1 + h_new * h_new",
             [REGISTRY, "-k", f"{OLD_REGISTRY_CHECKS} and rnn"],
             "the same bug against the pre-issue-14 registry checks only", expect="missed"),
    Mutation("batch-norm-op-built-xhat-sign", "tinynet/functional/normalization.py",
             "gx = scale * (g - sum_g / float(M) - xhat * (sum_gx / float(M)))",
             "gx = scale * (g - sum_g / float(M) + xhat * (sum_gx / float(M)))",
             [REGISTRY, "-k", f"{CREATE_GRAPH} and batch_norm"],
             "sign of x̂·Σ(g·x̂) in BatchNorm's op-built backward"),
    Mutation("batch-norm-op-built-xhat-sign (control)", "tinynet/functional/normalization.py",
             "gx = scale * (g - sum_g / float(M) - xhat * (sum_gx / float(M)))",
             "gx = scale * (g - sum_g / float(M) + xhat * (sum_gx / float(M)))",
             [REGISTRY, "-k", f"{OLD_REGISTRY_CHECKS} and batch_norm"],
             "the same bug against the pre-issue-14 registry checks only", expect="missed"),
    Mutation("lstm-op-built-forget-derivative", "tinynet/functional/recurrent.py",
             "dct * c_prev * f * (1 - f)", "dct * c_prev * f * (1 + f)",
             [REGISTRY, "-k", f"{CREATE_GRAPH} and lstm"],
             "sigmoid derivative f(1-f) -> f(1+f) in the LSTM op-built backward"),
    # --- pooling
    Mutation("ceil-mode-last-window", "tinynet/kernels/im2col.py",
             "if (out - 1) * stride >= size + padding:", "if (out - 1) * stride > size + padding:",
             [REGISTRY, "tests/functional/test_pool.py", "-k", "pool"],
             ">= -> > in the ceil_mode rule; registry and test_pool.py only (they missed it)"),
    Mutation("sequential-pools-first-when-dilated", "tinynet/nn/containers.py",
             'and int_pair(pool.dilation, "dilation", "MaxPool2d") == (1, 1)', "and True",
             ["tests/nn/test_containers.py"],
             "Sequential runs a ReLU after a dilated max pool, whose window can be all padding"),
    Mutation("sequential-pools-first-past-a-hook", "tinynet/nn/containers.py",
             "and not _hooked(relu) and not _hooked(pool)", "and not _hooked(relu)",
             ["tests/nn/test_containers.py"],
             "Sequential reorders a ReLU and a max pool that has a forward hook"),
    Mutation("pool-loop-ties-go-last", "tinynet/kernels/pool.py",
             "better = window > y", "better = window >= y",
             ["tests/kernels/test_pool_kernels.py"],
             "ties go to the last index in the general max-pool loop (kernel tests only)"),
    Mutation("pool-tournament-ties-go-right", "tinynet/kernels/pool.py",
             "top_right = b > a", "top_right = b >= a",
             ["tests/kernels/test_pool_kernels.py"],
             "ties go to the right in the 2x2 tournament"),
    Mutation("pool-tournament-ties-go-down", "tinynet/kernels/pool.py",
             "take_bottom = bottom > top", "take_bottom = bottom >= top",
             ["tests/kernels/test_pool_kernels.py"],
             "ties go to the bottom row in the 2x2 tournament"),
    Mutation("pool-fast-path-shape-blind", "tinynet/kernels/pool.py",
             "tiles_2x2 = k == (2, 2) and _tiles_exactly", "tiles_2x2 = k[0] * k[1] == 4 and _tiles_exactly",
             ["tests/kernels/test_pool_kernels.py"],
             "the 2x2 tournament taken by any four-offset tiling kernel ((1, 4), (4, 1))"),
    Mutation("pool-compiled-ties-go-down", "tinynet/kernels/compiled/pool.py",
             "if bottom > top else np.int8(b > a)", "if bottom >= top else np.int8(b > a)",
             ["tests/kernels/test_pool_compiled.py"],
             "ties go to the bottom row in the compiled 2x2 max pool"),
    Mutation("pool-compiled-backward-wrong-column", "tinynet/kernels/compiled/pool.py",
             "row[2 * j + 1] = v if o == 1 else other", "row[2 * j + 1] = v if o == 0 else other",
             ["tests/kernels/test_pool_compiled.py"],
             "the compiled 2x2 max-pool backward sends a right-column winner's gradient left"),
    Mutation("cross-entropy-compiled-grad-misses-onehot", "tinynet/kernels/compiled/loss.py",
             "out[t[n]] = (p[t[n]] - softmax.dtype.type(1)) * k", "out[t[n]] = p[t[n]] * k",
             ["tests/kernels/test_loss_compiled.py"],
             "the compiled cross-entropy backward forgets the one-hot (gradient = softmax)"),
    Mutation("cross-entropy-compiled-target-check-off-by-one", "tinynet/kernels/compiled/loss.py",
             "(target < 0 or target >= C)", "(target < 0 or target > C)",
             ["tests/kernels/test_loss_compiled.py"],
             "the compiled cross-entropy accepts class C (one past the last) as a target"),
    Mutation("cross-entropy-compiled-ignored-rows-kept", "tinynet/kernels/compiled/loss.py",
             "        if ignored:\n            keep[n] = zero", "        if False:\n            keep[n] = zero",
             ["tests/kernels/test_loss_compiled.py"],
             "the compiled cross-entropy counts ignored rows in the loss and the mean"),
    Mutation("pool-scatter-overwrites-overlaps", "tinynet/kernels/pool.py",
             "window += grad[b0:b1] * (argmax[b0:b1] == offset)",
             "window[...] = grad[b0:b1] * (argmax[b0:b1] == offset)",
             ["tests/kernels/test_pool_kernels.py"],
             "overlapping max-pool windows overwrite instead of accumulating in backward"),
    Mutation("avg-pool-count-include-pad-inverted", "tinynet/kernels/pool.py",
             "if not count_include_pad:", "if count_include_pad:",
             [REGISTRY, "-k", "avg_pool2d"],
             "count_include_pad inverted in the divisor"),
    # --- im2col / col2im fast path
    Mutation("im2col-tiling-guard-ignores-padding", "tinynet/kernels/im2col.py",
             "return kernel_size == stride and dilation == (1, 1) and padding == (0, 0)",
             "return kernel_size == stride and dilation == (1, 1)",
             ["tests/kernels/test_im2col.py"],
             "the tiling fast path taken with padding"),
    Mutation("im2col-tiles-swap-offsets", "tinynet/kernels/im2col.py",
             "backend.copy(out, tiles.transpose(1, 3, 5, 0, 2, 4))", "backend.copy(out, tiles.transpose(1, 5, 3, 0, 2, 4))",
             ["tests/kernels/test_im2col.py"],
             "kernel offsets (i, j) swapped in the im2col tiling copy"),
    Mutation("col2im-tiles-swap-offsets", "tinynet/kernels/im2col.py",
             "tiles = col.transpose(3, 0, 4, 1, 5, 2)", "tiles = col.transpose(3, 0, 4, 2, 5, 1)",
             ["tests/kernels/test_im2col.py"],
             "kernel offsets (i, j) swapped in the col2im tiling copy"),
    Mutation("im2col-compiled-batch-last-wrong-image", "tinynet/kernels/compiled/im2col.py",
             "pf[k * _u(N) + _u(n)] = xf[src + k]", "pf[k * _u(N)] = xf[src + k]",
             ["tests/kernels/test_im2col_compiled.py"],
             "the compiled batch-last im2col writes every image's plane over image 0's"),
    Mutation("col2im-compiled-batch-last-plane-not-cleared", "tinynet/kernels/compiled/im2col.py",
             "        plane[:] = 0\n", "",
             ["tests/kernels/test_im2col_compiled.py"],
             "the compiled batch-last col2im reuses its plane without zeroing it per channel"),
    Mutation("im2col-compiled-batch-last-any-layout", "tinynet/kernels/im2col.py",
             "or (batch_last and batch >= COMPILED_IM2COL_BATCH_LAST_MIN_BATCH)",
             "or (batch >= COMPILED_IM2COL_BATCH_LAST_MIN_BATCH)",
             ["tests/kernels/test_im2col_compiled.py"],
             "the stride-1 compiled route taken by channel-major columns too (a speed rule: route test only)"),
    Mutation("conv-small-map-col2im-ignores-winograd", "tinynet/functional/conv.py",
             "            and not _use_winograd(x.shape, w_conv_shape,",
             "            and not False and _use_winograd(x.shape, w_conv_shape,",
             ["tests/functional/test_conv.py", "-k", "small_map"],
             "the small-map col2im rule takes the inputs a Winograd flipped conv would have"),
    Mutation("winograd-avx2-narrow-maps", "tinynet/functional/conv.py",
             "if side < _WINOGRAD_MIN_SIDE_AVX2 or", "if side < 4 or",
             ["tests/kernels/test_winograd.py", "-k", "auto_mode"],
             "Winograd taken again on 4x4 maps with many channels on AVX2"),
    Mutation("winograd-weight-grad-equal-channels-to-winograd", "tinynet/functional/conv.py",
             "and C <= w_shape[0] <= H * W", "and C < w_shape[0] <= H * W",
             ["tests/kernels/test_winograd.py"],
             "the N2 weight gradient with as many input as output channels goes back to Winograd"),
    Mutation("winograd-transposed-filters-not-rotated", "tinynet/kernels/winograd.py",
             "taps = xp.ascontiguousarray(taps[:, ::-1])", "taps = xp.ascontiguousarray(taps)",
             ["tests/kernels/test_winograd.py"],
             "the stride-1 transposed conv on Winograd uses the filters unrotated"),
    Mutation("winograd-transposed-route-reads-the-conv-weight", "tinynet/functional/conv.py",
             "return _winograd.conv2d_winograd(x, w, b, flipped_padding, transposed=True)",
             "return _winograd.conv2d_winograd(x, w.transpose(1, 0, 2, 3), b, flipped_padding)",
             ["tests/kernels/test_winograd.py"],
             "the input gradient's Winograd route takes the transposed weight without rotating it"),
    Mutation("conv-output-size-ceil", "tinynet/kernels/im2col.py",
             "return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1",
             "return -(-(size + 2 * padding - dilation * (kernel - 1) - 1) // stride) + 1",
             [REGISTRY, "tests/functional/test_conv.py", "-k", "conv"],
             "conv output size rounded up instead of down (registry and test_conv.py)"),
    Mutation("row-strips-left-edge-not-zeroed", "tinynet/kernels/flat_rows.py",
             "rows[..., :-shift] = 0", "pass",
             ["tests/functional/test_conv_row_strip_blocks.py", "tests/kernels/test_flat_rows.py"],
             "a left column shift of the row strips and flat rows reads the previous row instead of padding"),
    Mutation("row-strips-gap-between-images-not-zeroed", "tinynet/kernels/row_strips.py",
             "whole[:, :, P:] = 0", "pass",
             ["tests/functional/test_conv_row_strip_blocks.py"],
             "the strips copied straight from the images leave the reused buffer's stale values in the padding rows between images"),
    Mutation("pointwise-transposed-drops-last-tap", "tinynet/kernels/pointwise.py",
             "h, v = min(H, -(-Ho // sh)), min(W, -(-Wo // sw))", "h, v = min(H, Ho // sh), min(W, Wo // sw)",
             ["tests/kernels/test_pointwise.py"],
             "the 1x1 transposed conv drops the input rows whose tap lands in the last output rows"),
    Mutation("subpixel-bias-on-one-phase-only", "tinynet/kernels/subpixel.py",
             "w_t[0] = xp.tile(b, sh * sw)", "w_t[0] = 0; w_t[0, :C_out] = b",
             ["tests/kernels/test_phases.py"],
             "the sub-pixel transposed conv adds the bias to output phase (0, 0) only"),
    Mutation("flat-col2im-image-major-swaps-taps", "tinynet/kernels/flat_rows.py",
             "col = col.transpose(1, 2, 3, 0, 4)", "col = col.transpose(1, 3, 2, 0, 4)",
             ["tests/kernels/test_flat_rows.py"],
             "kernel offsets (i, j) swapped in the image-major flat col2im"),
    # --- LSTM kernel that runs on the CPU
    Mutation("lstm-kernel-g-derivative", "tinynet/kernels/lstm.py",
             "xp.subtract(i, f_g, out=f_g)", "xp.add(i, f_g, out=f_g)",
             ["tests/kernels/test_lstm_kernel.py", "-k", "not torch"],
             "tanh derivative of the g gate in the NumPy backward loop (torch-free tests only)"),
    # --- to_device
    Mutation("to-device-gradient-scaled", "tinynet/functional/elementwise.py",
             "return to_device(g, self.src)", "return to_device(g * 2, self.src)",
             ["tests/functional/test_elementwise.py", REGISTRY, "-k", "to_device"],
             "ToDevice's backward scales the gradient"),
    # --- the test harness itself
    Mutation("device-run-guard-disabled", "tests/conftest.py",
             'return f"the device is not usable ({_SKIP_REASON})"', "return None",
             ["tests/test_device_run_guard.py"],
             "TINYNET_TEST_DEVICE=cuda without a GPU reported as success again"),
]


def _copy_tree(dest: str) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
    for name in COPIED:
        src = os.path.join(ROOT, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dest, name), ignore=ignore)
        elif os.path.isfile(src):
            shutil.copy2(src, os.path.join(dest, name))


def _run_tests(scratch: str, tests: list, timeout: float):
    env = dict(os.environ, PYTHONPATH=scratch, HYPOTHESIS_PROFILE="ci", PYTHONDONTWRITEBYTECODE="1")
    env.pop("TINYNET_TEST_DEVICE", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    return done.returncode, done.stdout + done.stderr


def _failed_tests(output: str) -> list:
    return sorted({m.group(1) for m in re.finditer(r"^FAILED (\S+)", output, re.M)})


def run(mutations, timeout: float, verbose: bool) -> int:
    scratch = tempfile.mkdtemp(prefix="tinynet-mutations-")
    unexpected = 0
    try:
        _copy_tree(scratch)
        probe = subprocess.run([sys.executable, "-c", "import tinynet; print(tinynet.__file__)"],
                               cwd=scratch, env=dict(os.environ, PYTHONPATH=scratch),
                               capture_output=True, text=True)
        if not probe.stdout.strip().startswith(scratch):
            print(f"cannot import the scratch copy (got {probe.stdout.strip()!r})", file=sys.stderr)
            return 2
        print(f"scratch copy: {scratch}\n")
        print(f"{'mutation':42s} {'result':8s} {'expected':8s} {'time':>6s}  failing tests / note")
        for m in mutations:
            target = os.path.join(scratch, m.path)
            with open(target, encoding="utf-8") as f:
                original = f.read()
            if original.count(m.old) != 1:
                print(f"{m.name:42s} {'stale':8s} {m.expect:8s} {'':>6s}  'old' text found "
                      f"{original.count(m.old)} times in {m.path}")
                unexpected += 1
                continue
            t0 = time.perf_counter()
            try:
                with open(target, "w", encoding="utf-8") as f:
                    f.write(original.replace(m.old, m.new))
                rc, output = _run_tests(scratch, m.tests, timeout)
            finally:
                with open(target, "w", encoding="utf-8") as f:
                    f.write(original)
            seconds = time.perf_counter() - t0
            if rc == 1:
                failed = _failed_tests(output)
                shown = ", ".join(name.split("::", 1)[-1] for name in failed[:3])
                result, detail = "caught", (f"{len(failed)} failed: {shown}" + (", ..." if len(failed) > 3 else "")
                                            if failed else "(see output)")
            elif rc == 0:
                result, detail = "missed", m.about
            else:
                result, detail = "error", f"pytest exit {rc}: " + output.strip().splitlines()[-1:][0] \
                    if output.strip() else f"pytest exit {rc}"
            if result != m.expect:
                unexpected += 1
            print(f"{m.name:42s} {result:8s} {m.expect:8s} {seconds:5.0f}s  {detail}", flush=True)
            if verbose and result != m.expect:
                print(output[-3000:])
        print(f"\n{len(mutations) - unexpected} of {len(mutations)} mutations ended as expected")
        return 0 if unexpected == 0 else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutations")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per mutation's test run")
    parser.add_argument("-v", "--verbose", action="store_true", help="print pytest output of unexpected results")
    args = parser.parse_args(argv)
    chosen = MUTATIONS
    if args.only:
        names = {m.name for m in MUTATIONS}
        unknown = [n for n in args.only if n not in names]
        if unknown:
            parser.error(f"unknown mutation(s): {', '.join(unknown)}")
        chosen = [m for m in MUTATIONS if m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name:42s} {m.path}: {m.about}  [tests: {' '.join(m.tests)}]")
        return 0
    return run(chosen, args.timeout, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
