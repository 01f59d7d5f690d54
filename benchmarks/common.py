"""Shared timing tools for the benchmark modules (kernels, recurrent, training, overhead).

Every benchmark in this directory measures tinynet and PyTorch the same way:

1. both libraries run in this one process on the same number of threads
   (:func:`set_threads`; NumPy's BLAS through threadpoolctl, PyTorch through
   ``torch.set_num_threads``);
2. each callable is warmed up first (page faults on fresh buffers, caches, lazy imports);
3. the libraries are then timed in *interleaved rounds* (tinynet, PyTorch, tinynet, ...)
   with an idle gap of 0.15 s between libraries, because OpenBLAS threads keep spinning
   for ~0.1 s after a call and would otherwise steal a core from the next library;
4. each round's time is the median of ``reps`` calls; a result is the median over rounds,
   with the spread (interquartile range over rounds) beside it.

A module typically does::

    from common import compare, make_row, torch_or_none, get_device

    torch = torch_or_none()
    fns = {"tinynet": tinynet_step}
    if torch is not None:
        fns["torch"] = torch_step
    timing = compare(fns, rounds=7, reps=5)
    rows.append(make_row("conv N8 64->64", timing, flops=2 * n * k * m, roofline=gemm))

When run through ``benchmarks/run.py`` (or ``tinynet bench``), the runner has already set
the threads and the device before calling ``run(quick)``; :func:`get_device` tells a module
which device to build its tensors on (``"cpu"`` or ``"cuda"``), and :func:`compare`
synchronises that device around every timed batch so GPU times are real.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from typing import Callable

import numpy as np

__all__ = [
    "IDLE_GAP_S", "REWARM_S", "DEFAULT_THREADS", "standalone_parser", "start_standalone", "write_json", "set_threads", "get_threads", "set_device", "get_device",
    "set_smoke", "REFERENCES", "module_installed", "load_reference", "reference_versions",
    "torch_or_none", "torch_device", "synchronize", "time_calls", "compare", "gemm_gflops",
    "make_row", "machine_info", "blas_note", "format_table", "markdown_table",
]

IDLE_GAP_S = 0.15          # pause between libraries: lets the other's BLAS threads go idle
REWARM_S = 0.1             # untimed calls after the gap, before the timed ones (see compare)
DEFAULT_THREADS = 2
#: The optional reference libraries beside PyTorch (issue 11), as rows and tables name
#: them: a row timed with one carries ``<name>_ms`` and ``<name>_ratio`` (its time over
#: PyTorch's). ``run.py --references`` adds them: JAX on the kernel rows
#: (``references.py``), Keras 3 on the U-Net step (``keras_unet.py``).
REFERENCES = {"jax": "JAX", "keras": "Keras"}

_threads = None            # what set_threads last applied
_thread_limiter = None     # threadpoolctl's limiter, kept alive so its limit stays in force
_device = "cpu"            # the device the runner asked for
_smoke = False             # set by the runner's --quick: compare() does the least it can


# ----------------------------------------------------------------------------- setup

def module_installed(name: str) -> bool:
    """True when ``import name`` would find the module, without importing it (a module
    set to None in ``sys.modules``, as tests do to hide one, counts as missing)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


def load_reference(caller: str, label: str, why: str | None, load: Callable[[], object]):
    """``load()`` for a reference library (:data:`REFERENCES`) when ``why`` (the reason it
    cannot run) is None; otherwise None, with the reason printed for ``caller``."""
    if why:
        print(f"{caller}: no {label} reference: {why}")
        return None
    return load()


def torch_or_none():
    """The ``torch`` module, or None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def set_threads(n: int = DEFAULT_THREADS) -> dict:
    """Sets NumPy's BLAS (threadpoolctl) and PyTorch to ``n`` threads; returns what took.

    The returned dict has ``threads`` (the request), ``numpy_threads`` (per BLAS library,
    as threadpoolctl reports it afterwards, or None without threadpoolctl) and
    ``torch_threads`` (or None without PyTorch).
    """
    global _threads, _thread_limiter
    if n < 1:
        raise ValueError(f"set_threads: n must be at least 1, got {n}")
    _threads = n
    numpy_threads = None
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        _thread_limiter = threadpool_limits(limits=n)
        numpy_threads = {f"{i['internal_api']}": i["num_threads"]
                         for i in threadpool_info() if i["user_api"] == "blas"}
    import tinynet
    tinynet.set_num_threads(n)      # tinynet's own pool too (and BLAS again, to the same n)
    torch = torch_or_none()
    torch_threads = None
    if torch is not None:
        torch.set_num_threads(n)
        torch_threads = torch.get_num_threads()
    return {"threads": n, "numpy_threads": numpy_threads, "torch_threads": torch_threads}


def get_threads() -> int:
    """The thread count the runner set (``DEFAULT_THREADS`` when nothing set it yet)."""
    return _threads if _threads is not None else DEFAULT_THREADS


def set_device(device: str) -> None:
    """Records the device the benchmarks run on and makes it tinynet's default device."""
    global _device
    import tinynet as tn
    dev = tn.device(device)
    tn.set_default_device(dev)          # raises a clear RuntimeError when CUDA is missing
    _device = str(dev)


def get_device() -> str:
    """``"cpu"`` or ``"cuda:N"``: where a module should put its tensors (both libraries)."""
    return _device


def set_smoke(on: bool = True) -> None:
    """Smoke mode (the runner's ``--quick``): :func:`compare` then makes one warm-up call
    and one timed call per library, with no idle gap, whatever the suite asked for.
    It shows that a workload runs; its figures mean nothing."""
    global _smoke
    _smoke = bool(on)


def torch_device(device: str | None = None) -> str:
    """The PyTorch device string for tinynet's ``device`` (the same spelling)."""
    return device or _device


def synchronize(device: str | None = None) -> None:
    """Waits for queued GPU work of both libraries; a no-op on the CPU.

    GPU calls return before the kernels finish, so a timer stopped without this would
    measure only the launch.
    """
    device = device or _device
    if not device.startswith("cuda"):
        return
    import tinynet as tn
    # CuPy through tinynet's backend (the one module allowed to hold it).
    tn.device(device).xp.cuda.Device(tn.device(device).index).synchronize()
    torch = torch_or_none()
    if torch is not None and torch.cuda.is_available():
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- timing

def time_calls(fn: Callable[[], object], reps: int, device: str | None = None) -> float:
    """Median seconds of ``reps`` calls of ``fn``, each synchronised on ``device``."""
    times = []
    for _ in range(reps):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q3 - q1


def compare(fns: dict[str, Callable[[], object]], rounds: int = 7, reps: int = 5,
            warmup: int = 2, gap: float = IDLE_GAP_S, device: str | None = None,
            rewarm: float = REWARM_S) -> dict:
    """Times several libraries' callables the same way, interleaved.

    Parameters
    ----------
    fns : dict
        ``{"tinynet": fn, "torch": fn}`` (any names; a missing library is simply absent).
    rounds, reps : int
        ``rounds`` interleaved rounds, each the median of ``reps`` calls per library.
    warmup : int
        Untimed calls of each callable before the first round.
    gap : float
        Idle seconds before each library's batch (0.15 s: OpenBLAS threads spin ~0.1 s).
    rewarm : float
        After the gap, the library's callable runs untimed for at least this many seconds
        (0.1 s; at least once) before its timed calls. On this project's VMs a second core
        left idle for the gap woke slowly for the next ~40 ms: a 2-thread tinynet ELU took
        3.3 ms per call there against 1.1-1.9 ms back to back, while single-threaded
        NumPy and PyTorch (whose OpenMP threads spin between calls) were unaffected.
        Training runs call back to back, so the timed calls should see that state.
    device : str, optional
        Device to synchronise (default: the runner's device).

    Returns
    -------
    dict
        ``{name: {"median_s", "spread_s", "min_s", "rounds_s"}}`` where ``spread_s`` is
        the interquartile range of the per-round medians.
    """
    if _smoke:
        rounds, reps, warmup, gap, rewarm = 1, 1, 1, 0.0, 0.0
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            if gap:
                time.sleep(gap)
            if rewarm:
                until = time.perf_counter() + rewarm
                while True:
                    fn()
                    synchronize(device)
                    if time.perf_counter() >= until:
                        break
            samples[name].append(time_calls(fn, reps, device))
    return {name: {"median_s": statistics.median(v), "spread_s": _iqr(v),
                   "min_s": min(v), "rounds_s": v}
            for name, v in samples.items()}


_roofline_cache: dict = {}


def gemm_gflops(sizes: tuple[int, ...] = (1024, 2048), reps: int = 5,
                refresh: bool = False, device: str = "cpu") -> float:
    """float32 GEMM GFLOP/s NumPy reaches on square matrices: the roofline.

    The best of the per-size medians over ``sizes`` (square ``n x n @ n x n``, 2n^3 flops),
    with the thread count currently in force. Convolutions and LSTMs are GEMM-bound, so
    their achieved GFLOP/s divided by this number says how far from the machine's
    practical peak they run. The result is cached per (sizes, threads) for the process,
    so suites run by the runner share one measurement; ``refresh=True`` measures again.
    ``device="cuda"`` measures CuPy's GEMM on the GPU instead (the GPU roofline).
    """
    key = (tuple(sizes), get_threads(), device)
    if not refresh and key in _roofline_cache:
        return _roofline_cache[key]
    rng = np.random.default_rng(0)
    best = 0.0
    for n in sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        if device != "cpu":
            import tinynet as tn
            a, b = (tn.tensor(m, device=device).data for m in (a, b))
        a @ b                                            # warm-up
        seconds = time_calls(lambda: a @ b, reps, device=device)
        best = max(best, 2.0 * n ** 3 / seconds / 1e9)
    _roofline_cache[key] = best
    return best


def make_row(workload: str, timing: dict, flops: float | None = None,
             roofline: float | None = None, **extra) -> dict:
    """One result row in the shape the runner expects.

    ``timing`` is :func:`compare`'s result. Keys: ``workload``, ``tinynet_ms``,
    ``torch_ms`` (None without PyTorch), ``ratio`` (tinynet / PyTorch, None without
    PyTorch), their spreads, ``gflops`` (tinynet's, when ``flops`` is given),
    ``torch_gflops``, ``roofline_fraction`` (``gflops / roofline``),
    ``torch_roofline_fraction`` (``torch_gflops / roofline``), plus ``extra``; and
    for each reference library of :data:`REFERENCES` in ``timing``, ``<name>_ms`` and
    ``<name>_ratio`` (its time over PyTorch's, None without PyTorch).
    """
    def ms(name, key="median_s"):
        return timing[name][key] * 1e3 if name in timing else None

    tn_ms, pt_ms = ms("tinynet"), ms("torch")
    row = {
        "workload": workload,
        "tinynet_ms": tn_ms,
        "torch_ms": pt_ms,
        "ratio": tn_ms / pt_ms if tn_ms is not None and pt_ms else None,
        "tinynet_spread_ms": ms("tinynet", "spread_s"),
        "torch_spread_ms": ms("torch", "spread_s"),
        "gflops": flops / (tn_ms * 1e-3) / 1e9 if flops and tn_ms else None,
        "torch_gflops": flops / (pt_ms * 1e-3) / 1e9 if flops and pt_ms else None,
    }
    row["roofline_fraction"] = (row["gflops"] / roofline
                                if row["gflops"] is not None and roofline else None)
    # PyTorch's rate in units of NumPy's GEMM rate: the ratio tinynet would read with
    # every flop at the roofline (benchmarks/targets.py's floor)
    row["torch_roofline_fraction"] = (row["torch_gflops"] / roofline
                                      if row["torch_gflops"] is not None and roofline else None)
    for name in REFERENCES:
        if name in timing:
            row[f"{name}_ms"] = ms(name)
            row[f"{name}_ratio"] = row[f"{name}_ms"] / pt_ms if pt_ms else None
    row.update(extra)
    return row


# ----------------------------------------------------------------------------- reporting

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    return None


def _blas() -> list[str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["unknown (install threadpoolctl to see NumPy's BLAS)"]
    return [f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, "
            f"{i['num_threads']} threads)"
            for i in threadpool_info() if i["user_api"] == "blas"]


def blas_note(info: dict) -> str | None:
    """A sentence for a report whose NumPy BLAS runs below its CPU (``OPENBLAS_CORETYPE``
    set to an older core, e.g. Haswell's AVX2, on an AVX-512 CPU): NumPy's GEMMs then run
    at half the speed the CPU allows or less, while PyTorch picks its own kernels. None
    otherwise."""
    if not info.get("cpu_avx512") or info.get("blas_avx512", True):
        return None
    held = info.get("openblas_coretype")
    return (f"this CPU has AVX-512 but NumPy's OpenBLAS runs its {info.get('blas_kernels')} "
            "kernels, not its AVX-512 ones" + (f", as OPENBLAS_CORETYPE={held} asks" if held else "")
            + ": its GEMMs run at half the speed the CPU allows or less (Haswell's: about "
            "half), while PyTorch picks its own AVX-512 kernels")


def _compiled_kernels() -> str:
    """Whether tinynet's compiled CPU kernels run (the jit extra): "numba X.Y" or "off (why)"."""
    from tinynet import backend
    if not backend.compiled_available():
        return "off (Numba not installed)"
    if not backend.use_compiled(np.empty(0)):
        return "off (TINYNET_JIT=0 or backend.set_compiled(False))"
    from importlib.metadata import version
    return f"numba {version('numba')}"


def machine_info(device: str | None = None) -> dict:
    """The machine a result came from: CPU, cores, memory, BLAS, library versions, GPU."""
    import tinynet as tn
    from tinynet import backend, cblas
    device = device or _device
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas(),
        "blas_kernels": cblas.corename(),
        "blas_avx512": backend.blas_has_avx512(),
        "cpu_avx512": backend.cpu_has_avx512(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "compiled": _compiled_kernels(),
        "tinynet": tn.__version__,
        "torch": None,
        "threads": get_threads(),
        "torch_threads": None,
        "device": device,
    }
    torch = torch_or_none()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    if device.startswith("cuda"):
        dev = tn.device(device)
        cp = dev.xp
        props = cp.cuda.runtime.getDeviceProperties(dev.index)
        name = props["name"]
        info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        info["cupy"] = cp.__version__
        if torch is not None:
            info["torch_cuda"] = torch.version.cuda
    return info


#: The kinds of CPU time on /proc/stat's ``cpu`` line, in order (``guest`` time is
#: already counted in ``user``).
CPU_TIME_KINDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times(stat_text: str | None = None) -> dict | None:
    """The machine's CPU time so far by kind (clock ticks summed over its CPUs, from the
    ``cpu`` line of Linux's /proc/stat, or of ``stat_text``); None where it cannot be read.

    ``steal`` is the time the hypervisor ran something else while this guest had work to
    run: on a shared virtual machine, the one figure that tells a slow phase of the host
    from a slow change of the code."""
    if stat_text is None:
        try:
            with open("/proc/stat") as f:
                stat_text = f.read()
        except OSError:
            return None
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            try:
                values = [int(v) for v in fields[1:1 + len(CPU_TIME_KINDS)]]
            except ValueError:
                return None
            values += [0] * (len(CPU_TIME_KINDS) - len(values))   # old kernels: no steal field
            return dict(zip(CPU_TIME_KINDS, values))
    return None


def steal_share(before: dict | None, after: dict | None) -> float | None:
    """The share of all CPU time between two :func:`cpu_times` snapshots that the
    hypervisor took (0.25: a quarter); None if either is missing or no time passed."""
    if before is None or after is None:
        return None
    total = sum(after[k] - before[k] for k in CPU_TIME_KINDS)
    return None if total <= 0 else (after["steal"] - before["steal"]) / total


def reference_versions(names=tuple(REFERENCES)) -> dict:
    """``{name: version}`` of the reference libraries among ``names`` that this process has
    imported, i.e. that timed rows (Keras imports JAX too, hence the filter)."""
    return {name: getattr(sys.modules[name], "__version__", "?") for name in names
            if sys.modules.get(name) is not None}


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _references_in(rows: list[dict]) -> list[str]:
    """The reference libraries (:data:`REFERENCES`) some row was timed with, in order."""
    return [name for name in REFERENCES if any(f"{name}_ms" in r for r in rows)]


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of rows (workload, times, ratio, GFLOP/s, roofline), with
    each reference library's time and ratio to PyTorch where rows have them."""
    width = max([len(_label(r)) for r in rows] + [8])
    refs = _references_in(rows)
    head = (f"{'workload':{width}s} {'tinynet ms':>11s} {'torch ms':>10s} {'ratio':>6s} "
            f"{'GFLOP/s':>8s} {'of GEMM':>7s}"
            + "".join(f" {REFERENCES[n] + ' ms':>10s} {REFERENCES[n] + ' ratio':>11s}" for n in refs))
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{_label(r):{width}s} {_fmt(r.get('tinynet_ms'), '11.3f')} "
                     f"{_fmt(r.get('torch_ms'), '10.3f'):>10s} {_fmt(r.get('ratio'), '6.2f'):>6s} "
                     f"{_fmt(r.get('gflops'), '8.1f'):>8s} "
                     f"{_fmt(r.get('roofline_fraction'), '7.2f'):>7s}"
                     + "".join(f" {_fmt(r.get(n + '_ms'), '10.3f'):>10s} "
                               f"{_fmt(r.get(n + '_ratio'), '11.2f'):>11s}" for n in refs))
    return "\n".join(lines)


def markdown_table(rows: list[dict], suite_column: bool = False) -> str:
    """The same table in Markdown (used for docs/benchmarks.md)."""
    refs = _references_in(rows)
    cols = (["suite"] if suite_column else []) + [
        "workload", "tinynet ms", "torch ms", "ratio", "GFLOP/s", "of GEMM"] + [
        f"{REFERENCES[n]} {unit}" for n in refs for unit in ("ms", "ratio")]
    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if c in ("suite", "workload") else "---:" for c in cols) + "|"]
    for r in rows:
        tn_ms = _fmt(r.get("tinynet_ms"), ".3g")
        if r.get("tinynet_spread_ms"):
            tn_ms += f" ± {r['tinynet_spread_ms']:.2g}"
        pt_ms = _fmt(r.get("torch_ms"), ".3g")
        if r.get("torch_spread_ms"):
            pt_ms += f" ± {r['torch_spread_ms']:.2g}"
        cells = ([str(r.get("suite", ""))] if suite_column else []) + [
            _label(r).replace("|", "/"), tn_ms, pt_ms, _ratio(r.get("ratio")),
            _fmt(r.get("gflops"), ".1f"), _fmt(r.get("roofline_fraction"), ".2f")]
        for n in refs:
            cells += [_fmt(r.get(n + "_ms"), ".3g"), _ratio(r.get(n + "_ratio"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _label(row: dict) -> str:
    """Workload name, with the pass (``fwd``, ``fwd+bwd``) when a module gives one."""
    label = str(row.get("workload", "?"))
    if isinstance(row.get("pass"), str) and row["pass"]:
        label += f" [{row['pass']}]"
    return label


def standalone_parser(description: str) -> argparse.ArgumentParser:
    """The options every suite takes when run as a script on its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smoke run (figures mean nothing)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="threads for NumPy's BLAS and PyTorch (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--json", help="also write the rows and machine info to this file")
    return parser


def start_standalone(args) -> tuple[dict, dict]:
    """Sets threads, device and smoke mode as the runner does; prints the machine.

    Returns ``(machine_info, thread_report)``.
    """
    threads = set_threads(args.threads)
    set_device(args.device)
    set_smoke(args.quick)
    info = machine_info(args.device)
    print(" | ".join(f"{k}: {v}" for k, v in info.items()))
    print(f"threads: {threads}")
    if torch_or_none() is None:
        print("PyTorch is not installed: timing tinynet alone.")
    return info, threads


def write_json(path: str | None, info: dict, threads: dict, rows: list[dict]) -> None:
    """A standalone suite's ``--json`` output: machine, threads and rows (no-op without a path)."""
    if not path:
        return
    import json
    with open(path, "w") as f:
        json.dump({"machine": info, "threads": threads, "rows": rows}, f, indent=2, default=str)
