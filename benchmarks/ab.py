"""Old code against new, in one process, call by call: is a change faster?

On a shared VM whose speed drifts by 10-30% for minutes at a time, two runs of
``run.py`` (or two processes alternating) cannot resolve a 5% change: the machine moves
more than the code. This tool takes the code of some modules as it was at a git
revision (``--base``), loads it beside the working tree's, and times one workload with
each, alternating call by call (ABBA order, so that neither side always runs second),
on the same data and the same model. Both sides see the same machine state at every
moment, so their ratio is steady where the times themselves are not.

    python benchmarks/ab.py --base HEAD~1 --swap tinynet.functional.conv --workload unet
    python benchmarks/ab.py --base 09b6a80 --swap tinynet.kernels.subpixel,tinynet.functional.conv \\
        --workload "convT N8 128->64 14x14 k4 s2 p1" --calls 30

Workloads: a training step of ``training.py`` (``unet``, ``resnet18``, ``cnn``), the
1-layer LSTM of ``recurrent.py`` (``lstm``) or a ``kernels.py`` row by its name (forward
+ backward; ``--forward`` for the forward only, kernel rows and ``lstm``).

How the swap works. Each ``--swap`` module's source at ``--base`` (``git show``) is
executed as a separate module object in the same package, so its relative imports
resolve to the live package. Its functions keep the old module's globals: an old
function calls the old helpers of its own file, and the live (shared) modules for
everything else. Swapping to the old side copies every name the old file defines into
the live module's namespace; swapping back restores the live ones. Code that looks
names up through the module at call time (all of tinynet's kernels and ops do:
``_conv2d_array(...)``, ``_subpixel.conv_...(...)``) runs the old code; a reference
bound elsewhere before the swap (``from .conv import conv2d`` in ``tinynet.functional``)
still points at the new function, which is why the public entry points stay the same
and only what they call changes. Swap the module that defines what changed, and every
module whose functions you want old.

A setting rather than code (``--env NAME=VALUE``, repeatable): an environment variable
read when a library loads (``OPENBLAS_THREAD_TIMEOUT``, ``TINYNET_NO_MALLOPT``) cannot be
switched inside one process, so two worker processes run the workload, the old side with
this environment and the new side with the variables set, and take turns one call at a
time in the same ABBA order, each call after ``--gap`` seconds of idle (default 0.2: the
other process's BLAS threads spin about 0.1 s after its call and would take a core)::

    python benchmarks/ab.py --env OPENBLAS_THREAD_TIMEOUT=20 --workload resnet18 --calls 30

Two processes can differ in more than the setting (where their buffers landed in
memory): run an A/A comparison, ``--env`` of a variable nothing reads, to see how far
two identical processes differ on your machine.

Output: per side the minimum and median over the calls, the ratio new / old of each,
and in how many of the ABBA pairs the new side was faster. Nothing is written; this is
a developer's tool, not a suite of ``run.py``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))

import common  # noqa: E402


def module_at_revision(name: str, source: str, label: str) -> types.ModuleType:
    """Module ``name``'s ``source`` (another version of its file) as a new module object
    in the same package, named ``name@label``; the live module is untouched."""
    live = importlib.import_module(name)
    old = types.ModuleType(f"{name}@{label}")
    old.__package__ = live.__package__
    old.__file__ = live.__file__
    exec(compile(source, f"{live.__file__}@{label}", "exec"), old.__dict__)
    return old


def source_at_revision(name: str, revision: str) -> str:
    """The text of module ``name``'s file at git ``revision`` (the repository holding it)."""
    path = os.path.realpath(importlib.import_module(name).__file__)
    root = subprocess.run(["git", "-C", os.path.dirname(path), "rev-parse", "--show-toplevel"],
                          capture_output=True, text=True, check=True).stdout.strip()
    relative = os.path.relpath(path, root)
    done = subprocess.run(["git", "-C", root, "show", f"{revision}:{relative}"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ValueError(f"ab: cannot read {relative} at {revision!r}: {done.stderr.strip()}")
    return done.stdout


class Swap:
    """Switches a live module's namespace between its own names and an old version's.

    ``use("old")`` saves the live module's names as they are at that moment, then copies
    every public and private name the old module defines (not its dunders) into it;
    ``use("new")`` puts the saved names back. Saving at each switch keeps what the new
    side cached in its module since the last one (``tinynet.cblas`` binds its BLAS
    routines into module globals on first use): restored from a snapshot taken once at
    the start, those caches were emptied at every switch and the new side paid the
    binding again, reading 1.12x slower than an identical old side. The old functions'
    caches live in the old module's own globals and persist by themselves. Names only
    the live module has stay: a new function bound elsewhere may still look them up."""

    def __init__(self, live: types.ModuleType, old: types.ModuleType):
        self.live = live
        self.new_names = self._names(live)
        self.old_names = self._names(old)
        self.side = "new"

    @staticmethod
    def _names(module) -> dict:
        return {k: v for k, v in vars(module).items() if not k.startswith("__")}

    def use(self, side: str) -> None:
        if side == self.side:
            return
        if side == "old":
            self.new_names = self._names(self.live)
        vars(self.live).update(self.old_names if side == "old" else self.new_names)
        self.side = side


def workload(name: str, forward_only: bool = False, build: bool = True):
    """A callable running one step of ``name`` (a training key or a kernels row name);
    with ``build=False`` only checks the name (None)."""
    import kernels
    import training
    if name == "lstm":
        return _lstm_step(forward_only) if build else None
    if name in training.WORKLOADS:
        if forward_only:
            raise ValueError("ab: --forward applies to kernel rows, not training steps")
        _, shape, _ = training.WORKLOADS[name]
        return training.tinynet_step_fn(name, shape)[1] if build else None
    for row in kernels.WORKLOADS:
        if row[0] == name:
            if not build:
                return None
            return kernels.make_cases(row[1], *row[2:])["tinynet"][0 if forward_only else 1]
    known = list(training.WORKLOADS) + ["lstm"] + [row[0] for row in kernels.WORKLOADS]
    raise ValueError(f"ab: unknown workload {name!r}; one of: {', '.join(known)}")


def _lstm_step(forward_only: bool):
    """``recurrent.py``'s 1-layer LSTM row (B32, T50, 64 -> 128): forward, or forward and
    backward through time of the last hidden state's sum."""
    import numpy as np
    import recurrent
    import tinynet as tn
    model = recurrent._tinynet_model("LSTM", 1, False)
    x = tn.tensor(np.random.default_rng(0).standard_normal(
        (recurrent.T, recurrent.B, recurrent.I)).astype(np.float32))

    def step():
        if forward_only:
            with tn.no_grad():
                return model(x)
        model.zero_grad()
        recurrent._last_h(model(x)).sum().backward()
    return step


def alternate_sides(run, calls: int, warmup: int = 2) -> dict:
    """Calls ``run(side)`` (which times one call of that side and returns seconds) for
    ``warmup`` untimed calls per side, then ``calls`` times per side in ABBA order;
    returns seconds per side and the per-pair wins of the new side."""
    for side in ("old", "new"):
        for _ in range(warmup):
            run(side)
    times = {"old": [], "new": []}
    wins = 0
    for k in range(calls):
        order = ("old", "new") if k % 2 == 0 else ("new", "old")
        pair = {side: run(side) for side in order}
        for side in order:
            times[side].append(pair[side])
        wins += pair["new"] < pair["old"]
    return {"old": times["old"], "new": times["new"], "new_faster_pairs": wins}


def alternate(fn, swaps, calls: int, warmup: int = 2) -> dict:
    """Times ``fn`` ``calls`` times on each side, in ABBA order; returns seconds per side
    and the per-pair wins of the new side."""
    def run(side):
        for s in swaps:
            s.use(side)
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    try:
        return alternate_sides(run, calls, warmup)
    finally:
        for s in swaps:
            s.use("new")


def alternate_processes(command: list[str], new_env: dict, calls: int, gap: float = 0.2,
                        warmup: int = 2) -> dict:
    """Two workers running ``command`` (which times one call per line read from stdin and
    prints its seconds), the old one in this environment, the new one with ``new_env``
    added; they take turns in ABBA order, each call after ``gap`` seconds of idle."""
    workers = {"old": subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True),
               "new": subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                       env={**os.environ, **new_env})}

    def run(side):
        time.sleep(gap)
        worker = workers[side]
        worker.stdin.write("\n")
        worker.stdin.flush()
        line = worker.stdout.readline()
        if not line:
            raise RuntimeError(f"ab: the {side} side's worker exited with status "
                               f"{worker.wait()} (its error is above)")
        return float(line)
    try:
        return alternate_sides(run, calls, warmup)
    finally:
        for worker in workers.values():
            try:
                worker.stdin.close()
            except OSError:
                pass                     # a worker that died closed its end already
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def serve(fn) -> None:
    """The worker of ``--env`` mode: one timed call of ``fn`` per line on stdin."""
    for _ in sys.stdin:
        start = time.perf_counter()
        fn()
        print(time.perf_counter() - start, flush=True)


def parse_env(items) -> dict:
    """``["NAME=VALUE", ...]`` -> ``{NAME: VALUE}``; a ValueError naming a bad item."""
    env = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"ab: --env takes NAME=VALUE, got {item!r}")
        env[name] = value
    return env


def report(result: dict, label: str) -> str:
    old, new = result["old"], result["new"]
    lines = [f"{label}: {len(new)} calls per side, alternating", "",
             "| side | min ms | median ms |", "|---|---:|---:|"]
    for side, values in (("old", old), ("new", new)):
        lines.append(f"| {side} | {min(values) * 1e3:.3f} | {statistics.median(values) * 1e3:.3f} |")
    lines += ["", f"new / old: min {min(new) / min(old):.3f}, median "
                  f"{statistics.median(new) / statistics.median(old):.3f}; new faster in "
                  f"{result['new_faster_pairs']} of {len(new)} pairs"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="git revision of the old code (e.g. HEAD~1)")
    parser.add_argument("--swap",
                        help="comma-separated modules to take from --base (e.g. tinynet.functional.conv)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="instead of --base/--swap: the new side is a process with this "
                             "environment variable set (repeatable), the old one without")
    parser.add_argument("--gap", type=float, default=0.2,
                        help="--env: idle seconds before each call (default 0.2)")
    parser.add_argument("--workload", required=True, help="unet, resnet18, cnn, lstm, or a kernels.py row name")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per side (default 20)")
    parser.add_argument("--forward", action="store_true", help="kernel rows: time the forward only")
    parser.add_argument("--threads", type=int, default=common.DEFAULT_THREADS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    if args.gap < 0:
        parser.error("--gap must be 0 or more seconds")
    if args.worker:
        common.set_threads(args.threads)
        serve(workload(args.workload, args.forward))
        return 0
    if args.env and (args.base or args.swap):
        parser.error("--env compares two processes of the same code: give it without --base/--swap")
    if not args.env and not (args.base and args.swap):
        parser.error("give --base and --swap (old code against new), or --env (a setting)")
    try:
        if args.env:
            new_env = parse_env(args.env)
            workload(args.workload, args.forward, build=False)      # a bad name fails here
        else:
            common.set_threads(args.threads)
            swaps = []
            for name in filter(None, args.swap.split(",")):
                old = module_at_revision(name, source_at_revision(name, args.base), args.base)
                swaps.append(Swap(importlib.import_module(name), old))
            fn = workload(args.workload, args.forward)
    except (ValueError, ImportError, subprocess.CalledProcessError) as e:
        print(e, file=sys.stderr)
        return 2
    if args.env:
        command = [sys.executable, os.path.abspath(__file__), "--worker", "--workload", args.workload,
                   "--threads", str(args.threads)] + (["--forward"] if args.forward else [])
        result = alternate_processes(command, new_env, args.calls, gap=args.gap)
        setting = " ".join(args.env)
        print(report(result, f"{args.workload}, a process with {setting} (new) against one without (old)"))
        return 0
    result = alternate(fn, swaps, args.calls)
    print(report(result, f"{args.workload}, {args.swap} at {args.base} (old) against the working tree (new)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
