"""The benchmark runner behind ``tinynet bench`` and ``python benchmarks/run.py``.

It finds the benchmark modules in the source tree's ``benchmarks/`` directory (next to
the ``tinynet`` package, or where ``TINYNET_BENCHMARKS_DIR`` points), sets one thread count
for NumPy's BLAS and PyTorch, prints the machine, runs each module's ``run(quick)`` in
this one process, and writes the results as JSON, a Markdown table and a PNG bar chart
of the tinynet / PyTorch time ratios. The timing method itself lives in
``benchmarks/common.py`` and is described in ``benchmarks/README.md``.

A benchmark module is a file ``benchmarks/<name>.py`` with ``run(quick=False)``
returning a list of row dicts (``workload``, ``tinynet_ms``, ``torch_ms``, ``ratio``, and
optionally ``gflops``, ``roofline_fraction``, ``pass``, ``notes``). A module whose ``run``
also takes ``device`` supports ``--device cuda``; others are skipped on the GPU.
``--references`` hands ``references=(names,)`` to the suite that times each reference
library (:data:`REFERENCES`); its rows then carry ``<name>_ms`` and ``<name>_ratio``.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import sys
import time
import traceback
from pathlib import Path

from .argtypes import positive_int as _positive_int

__all__ = ["SUITES", "main", "add_arguments", "run_from_args", "find_benchmarks_dir",
           "write_markdown", "write_plot"]

#: The benchmark modules, in the order they run.
SUITES = ("kernels", "recurrent", "training", "overhead")
SUITES += ("attention",)


def find_benchmarks_dir() -> Path | None:
    """The ``benchmarks/`` directory holding ``common.py``, or None when absent.

    Looks at ``$TINYNET_BENCHMARKS_DIR`` first, then at ``benchmarks/`` beside the
    ``tinynet`` package (the layout of a source checkout or an editable install).
    """
    candidates = []
    if os.environ.get("TINYNET_BENCHMARKS_DIR"):
        candidates.append(Path(os.environ["TINYNET_BENCHMARKS_DIR"]))
    candidates.append(Path(__file__).resolve().parent.parent / "benchmarks")
    for path in candidates:
        if (path / "common.py").is_file():
            return path
    return None


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the runner's options to ``parser`` (used by ``tinynet bench`` too)."""
    parser.add_argument("--device", default="cpu", type=_device_arg,
                        help="cpu (NumPy vs PyTorch CPU) or cuda / cuda:N (CuPy vs PyTorch "
                             "CUDA); default cpu")
    parser.add_argument("--quick", action="store_true",
                        help="few rounds and small sizes: checks that everything runs, "
                             "figures are not meaningful")
    parser.add_argument("--only", metavar="NAMES",
                        help=f"comma-separated suites to run, from: {', '.join(SUITES)}")
    parser.add_argument("--references", metavar="NAMES",
                        help="also time optional reference libraries on the same workloads, "
                             "as extra columns of the same tables: jax (the kernels rows, "
                             "jit-compiled; pip install -e '.[jax]') and/or keras (the U-Net "
                             "step as Keras 3 code on JAX; '.[keras]'), comma-separated; each "
                             "is skipped with the reason printed where it is not installed; "
                             "CPU only")
    parser.add_argument("--threads", type=_positive_int, default=2, metavar="N",
                        help="threads for NumPy's BLAS and for PyTorch (default 2)")
    parser.add_argument("--json", metavar="FILE", help="write machine info and all rows as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the results as a Markdown table")
    parser.add_argument("--plot", metavar="FILE",
                        help="write a PNG bar chart of the time ratios (needs matplotlib)")
    return parser


def _device_arg(text: str) -> str:
    from .backend import Device
    try:
        return str(Device(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parse_only(parser: argparse.ArgumentParser, only: str | None) -> list[str]:
    if not only:
        return list(SUITES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SUITES]
    if unknown or not names:
        parser.error(f"--only: unknown suite(s) {', '.join(unknown) or repr(only)}; "
                     f"choose from {', '.join(SUITES)}")
    return names


#: The reference libraries ``--references`` accepts, and the suite that times each.
REFERENCES = {"jax": "kernels", "keras": "training"}


def _parse_references(parser: argparse.ArgumentParser, text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in REFERENCES]
    if unknown or not names:
        parser.error(f"--references: unknown reference(s) {', '.join(unknown) or repr(text)}; "
                     f"choose from {', '.join(REFERENCES)}")
    return names


def _load_common(bench_dir: Path):
    """Imports ``benchmarks/common.py`` as the module ``common``, which the suites import.

    Registered under that plain name so that a suite's ``from common import ...`` and the
    runner share one module (one thread setting, one device, one roofline cache).
    """
    path = (bench_dir / "common.py").resolve()
    loaded = sys.modules.get("common")
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == path:
        return loaded
    if str(bench_dir) not in sys.path:
        sys.path.insert(0, str(bench_dir))
    spec = importlib.util.spec_from_file_location("common", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["common"] = module
    spec.loader.exec_module(module)
    return module


def _load(bench_dir: Path, name: str):
    """Imports ``benchmarks/<name>.py`` as a module (``common`` importable beside it)."""
    if str(bench_dir) not in sys.path:
        sys.path.insert(0, str(bench_dir))
    spec = importlib.util.spec_from_file_location(f"tinynet_benchmarks_{name}",
                                                  bench_dir / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _print_machine(info: dict, thread_report: dict, note: str | None = None) -> None:
    print("machine")
    print(f"  cpu      {info['cpu']} ({info['cores']} cores, {info['usable_cores']} usable, "
          f"{info['memory_gib']} GiB)")
    for blas in info["blas"]:
        print(f"  blas     {blas}")
    if note:
        print(f"  note     {note}")
    print(f"  threads  {thread_report['threads']} requested; NumPy BLAS: "
          f"{thread_report['numpy_threads'] or 'unknown (threadpoolctl missing)'}; "
          f"PyTorch: {thread_report['torch_threads'] if thread_report['torch_threads'] else '-'}")
    print(f"  versions python {info['python']}, numpy {info['numpy']}, tinynet {info['tinynet']}, "
          f"torch {info['torch'] or 'not installed'}")
    if "gpu" in info:
        print(f"  gpu      {info['gpu']} (cupy {info['cupy']}, torch cuda "
              f"{info.get('torch_cuda') or '-'})")
    print(f"  device   {info['device']}")
    print(f"  compiled {info.get('compiled', 'unknown')} (tinynet's CPU kernels, the jit extra)")


def run_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Runs the suites selected by parsed ``args``; returns the exit status."""
    parser = parser or add_arguments(argparse.ArgumentParser(prog="tinynet bench"))
    names = _parse_only(parser, args.only)
    references = _parse_references(parser, getattr(args, "references", None))
    for ref in references:
        if REFERENCES[ref] not in names:
            parser.error(f"--references {ref}: its rows are in the {REFERENCES[ref]} suite, "
                         "which --only leaves out")
    bench_dir = find_benchmarks_dir()
    if bench_dir is None:
        print("tinynet bench: the benchmark suite was not found. It lives in the benchmarks/ "
              "directory of the tinynet source tree, which an installed package does not "
              "include; run from a clone of the repository (pip install -e .), or point "
              "TINYNET_BENCHMARKS_DIR at its benchmarks/ directory.", file=sys.stderr)
        return 1
    common = _load_common(bench_dir)

    try:
        common.set_device(args.device)
    except (ValueError, RuntimeError) as e:
        print(f"tinynet bench: --device {args.device}: {e}", file=sys.stderr)
        return 1
    on_gpu = common.get_device().startswith("cuda")
    common.set_smoke(args.quick)
    thread_report = common.set_threads(args.threads)
    info = common.machine_info()
    _print_machine(info, thread_report, common.blas_note(info))
    torch = common.torch_or_none()
    if torch is None:
        print("\nPyTorch is not installed: timing tinynet alone; the torch and ratio columns "
              "stay empty. Install it (pip install torch) to compare.")
    elif on_gpu and not torch.cuda.is_available():
        print("\nPyTorch has no CUDA here: timing tinynet alone on the GPU; the torch and "
              "ratio columns stay empty. Install a CUDA build of PyTorch to compare.")
    if args.quick:
        print("\n--quick: a smoke run with few repetitions; do not quote these figures.")

    started, cpu_at_start = time.perf_counter(), common.cpu_times()
    gemm_library = "CuPy" if on_gpu else "NumPy"
    print(f"\nmeasuring the {gemm_library} float32 GEMM roofline ...", flush=True)
    sizes = (1024,) if args.quick else (1024, 2048) if not on_gpu else (2048, 4096)
    roofline = common.gemm_gflops(sizes, device=common.get_device())
    print(f"{gemm_library} float32 GEMM on square matrices: {roofline:.1f} GFLOP/s"
          + ("" if on_gpu else f" ({args.threads} threads)"))
    suites, all_rows = {}, []
    for name in names:
        path = bench_dir / f"{name}.py"
        print(f"\n=== {name} ===", flush=True)
        if not path.is_file():
            print(f"skipped: benchmarks/{name}.py is not in this tree")
            suites[name] = {"status": "missing", "rows": []}
            continue
        t0, cpu_before = time.perf_counter(), common.cpu_times()
        try:
            module = _load(bench_dir, name)
            run = getattr(module, "run")
            kwargs = {"quick": args.quick}
            wanted = tuple(r for r in references if REFERENCES[r] == name)
            if wanted:
                kwargs["references"] = wanted
            if "device" in inspect.signature(run).parameters:
                kwargs["device"] = common.get_device()
            elif on_gpu:
                print(f"skipped: benchmarks/{name}.py has no GPU support "
                      "(its run() takes no device argument)")
                suites[name] = {"status": "no GPU support", "rows": []}
                continue
            rows = list(run(**kwargs))
        except Exception as e:  # one broken suite must not lose the others' results
            traceback.print_exc()
            print(f"failed: {name}: {type(e).__name__}: {e}")
            suites[name] = {"status": f"error: {type(e).__name__}: {e}", "rows": []}
            continue
        common.set_threads(args.threads)     # a module may have changed them; restore
        for row in rows:
            _normalise(row, name)
        seconds = time.perf_counter() - t0
        steal = common.steal_share(cpu_before, common.cpu_times())
        suites[name] = {"status": "ok", "seconds": round(seconds, 1), "steal": steal, "rows": rows}
        all_rows.extend(rows)
        print(f"({name}: {len(rows)} rows in {seconds:.1f} s{_steal_text(steal, '; hypervisor steal ')})")

    print("\n=== summary: time ratio tinynet / PyTorch (below 1 = tinynet faster) ===")
    if all_rows:
        print(common.format_table(all_rows))
    else:
        print("no results")
    failed = [n for n, s in suites.items() if s["status"].startswith("error")]
    total = time.perf_counter() - started
    steal = common.steal_share(cpu_at_start, common.cpu_times())
    print(f"\n{len(all_rows)} rows from {sum(s['status'] == 'ok' for s in suites.values())} "
          f"suite(s) in {total:.0f} s" + _steal_text(steal, "; hypervisor steal ")
          + (f"; failed: {', '.join(failed)}" if failed else ""))

    result = {"created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": args.quick,
              "device": common.get_device(), "machine": info, "thread_setup": thread_report,
              "gemm_gflops": roofline, "steal": steal, "suites": suites, "rows": all_rows}
    if references:
        result["references"] = common.reference_versions(references)
        print("references: " + (", ".join(f"{common.REFERENCES[n]} {v}" for n, v in
                                          result["references"].items()) or "none could run"))
    if args.json:
        _ensure_parent(args.json)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=_jsonable)
        print(f"wrote {args.json}")
    if args.markdown:
        write_markdown(result, args.markdown)
        print(f"wrote {args.markdown}")
    if args.plot:
        if write_plot(all_rows, args.plot, title=_plot_title(info)):
            print(f"wrote {args.plot}")
    return 1 if failed else 0


def _normalise(row: dict, suite: str) -> None:
    """Tags a row with its suite (every suite builds its rows with ``common.make_row``)."""
    row.setdefault("suite", suite)


def _jsonable(value):
    if hasattr(value, "item"):        # numpy scalars
        return value.item()
    return str(value)


def _ensure_parent(path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)


def _plot_title(info: dict) -> str:
    return (f"tinynet / PyTorch time ({info['device']}, {info['threads']} threads, "
            f"{info['cpu']})")


def write_markdown(result: dict, path: str) -> None:
    """Writes the machine and one Markdown table of all rows (grouped by suite)."""
    common = sys.modules.get("common") or _load_common(find_benchmarks_dir())
    info = result["machine"]
    note = common.blas_note(info)
    lines = [f"Results from `tinynet bench` on {result['created']}"
             + (" (--quick: smoke run, not for quoting)" if result["quick"] else "") + ".", "",
             f"- CPU: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
             f"{info['memory_gib']} GiB",
             f"- Threads: {info['threads']} for NumPy's BLAS and for PyTorch",
             f"- BLAS: {'; '.join(info['blas'])}" + (f" ({note})" if note else ""),
             f"- Versions: Python {info['python']}, NumPy {info['numpy']}, "
             f"PyTorch {info['torch'] or 'not installed'}, tinynet {info['tinynet']}",
             f"- Device: {info['device']}" + (f" ({info['gpu']})" if "gpu" in info else ""),
             f"- tinynet's compiled CPU kernels (the jit extra): {info.get('compiled', 'unknown')}",
             *([_references_line(common, result["references"], info["threads"])]
               if "references" in result else []),
             f"- {'CuPy' if 'gpu' in info else 'NumPy'} float32 GEMM roofline: "
             f"{result['gemm_gflops']:.1f} GFLOP/s",
             f"- Hypervisor steal during the run: "
             + (_steal_text(result.get("steal")) or "not measured (no /proc/stat)"), ""]
    rows = result["rows"]
    if rows:
        lines.append(common.markdown_table(rows, suite_column=True))
    else:
        lines.append("No results.")
    skipped = {n: s["status"] for n, s in result["suites"].items() if s["status"] != "ok"}
    if skipped:
        lines += ["", "Not run: " + "; ".join(f"{n} ({s})" for n, s in skipped.items()) + "."]
    lines += ["", "Times are medians over interleaved rounds; ± is the interquartile range "
                  "over rounds. ratio = tinynet / PyTorch (below 1: tinynet faster). "
                  "GFLOP/s is tinynet's; \"of GEMM\" divides it by the roofline."]
    _ensure_parent(path)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _steal_text(share, lead: str = "") -> str:
    """``share`` of CPU time stolen by the hypervisor (:func:`common.steal_share`), in words;
    "" when it was not measured."""
    return "" if share is None else f"{lead}{share:.1%} of CPU time"


def _references_line(common, versions: dict, threads: int) -> str:
    """The Markdown line naming the reference libraries that ran, and XLA's threads."""
    if not versions:
        return "- References: none could run"
    names = ", ".join(f"{common.REFERENCES[n]} {v}" + (" (JAX backend)" if n == "keras" else "")
                      for n, v in versions.items())
    return f"- References: {names}; XLA on {'1 thread' if threads == 1 else 'all cores'}"


def write_plot(rows: list[dict], path: str, title: str = "tinynet / PyTorch time") -> bool:
    """A horizontal bar chart of the ratios (log scale, 1 = parity); False if impossible."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"--plot {path}: matplotlib is not installed, so no chart was written "
              "(pip install matplotlib, or tinynet[bench]).", file=sys.stderr)
        return False
    rows = [r for r in rows if r.get("ratio")]
    if not rows:
        print(f"--plot {path}: no ratios to plot (PyTorch missing or no results); "
              "no chart written.", file=sys.stderr)
        return False
    labels = [f"{r.get('suite', '')}: {r['workload']}" + (f" [{r['pass']}]" if isinstance(r.get("pass"), str) else "")
              for r in rows]
    ratios = [r["ratio"] for r in rows]
    colours = ["#2a9d8f" if v <= 1 else "#e76f51" for v in ratios]
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(rows) + 1.4))
    y = list(range(len(rows)))[::-1]
    ax.barh(y, ratios, color=colours)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(min(min(ratios), 1.0) / 1.3, max(max(ratios), 1.0) * 1.8)   # room for labels
    ax.axvline(1.0, color="black", linewidth=0.8)
    for yi, v in zip(y, ratios):
        ax.text(v, yi, f" {v:.2f}x", va="center", fontsize=7)
    ax.set_xlabel("time ratio tinynet / PyTorch (log scale; below 1 = tinynet faster)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _ensure_parent(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``tinynet bench ...`` and ``python benchmarks/run.py ...``."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="tinynet bench",
        description="Benchmark tinynet against PyTorch in one process, same thread count "
                    "(see benchmarks/README.md for the method)."))
    args = parser.parse_args(argv)
    return run_from_args(args, parser)


if __name__ == "__main__":
    sys.exit(main())
