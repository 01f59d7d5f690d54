"""The benchmark runner executes; benchmarks themselves never run in the test suite.

The runner is checked on a toy benchmark module (a tiny GEMM, fast and deterministic) for
its outputs, its torch-less mode and its errors, and the suites' scripts on the CPU; the
real suites' quick run on the suite's device is ``test_bench_suites.py``. Nothing here
depends on the suite's device or on TINYNET_JIT: only the default run runs it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.config_independent

ROOT = Path(__file__).resolve().parents[1]
#: The suites whose signatures are checked here (kernels is checked by the smoke run).
OWN_SUITES = ("overhead", "recurrent", "training", "attention")

TOY_MODULE = '''
import numpy as np
from common import compare, make_row, torch_or_none, gemm_gflops

def run(quick=False):
    a = np.ones((64, 64), dtype=np.float32)
    fns = {"tinynet": lambda: a @ a}
    torch = torch_or_none()
    if torch is not None:
        t = torch.ones(64, 64)
        fns["torch"] = lambda: t @ t
    timing = compare(fns, rounds=2, reps=2, gap=0.0)
    return [make_row("toy gemm 64", timing, flops=2 * 64 ** 3, roofline=100.0, notes="toy")]
'''


@pytest.fixture
def toy_bench_dir(tmp_path):
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    shutil.copy(ROOT / "benchmarks" / "common.py", bench / "common.py")
    (bench / "kernels.py").write_text(TOY_MODULE)
    return bench


def _run(args, env_extra=None, prelude="", timeout=120):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **(env_extra or {})}
    code = (f"import sys; {prelude}from tinynet.bench import main; "
            f"sys.exit(main({list(args)!r}))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_runner_writes_json_markdown_and_plot(toy_bench_dir, tmp_path):
    out = tmp_path / "out"
    result = _run(["--quick", "--only", "kernels", "--json", str(out / "r.json"),
                   "--markdown", str(out / "r.md"), "--plot", str(out / "r.png")],
                  env_extra={"TINYNET_BENCHMARKS_DIR": str(toy_bench_dir)})
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((out / "r.json").read_text())
    assert data["machine"]["threads"] == 2, "the thread count the runner set is not reported"
    assert data["machine"]["blas"], "the BLAS library is not reported"
    assert data["gemm_gflops"] > 0
    (row,) = data["rows"]
    assert row["suite"] == "kernels" and row["workload"] == "toy gemm 64"
    assert row["tinynet_ms"] > 0 and row["gflops"] > 0
    if data["machine"]["torch"]:
        assert row["ratio"] == pytest.approx(row["tinynet_ms"] / row["torch_ms"])
    markdown = (out / "r.md").read_text()
    assert "| kernels | toy gemm 64 |" in markdown and "Threads: 2" in markdown
    pytest.importorskip("matplotlib")
    if data["machine"]["torch"]:
        assert (out / "r.png").read_bytes()[:4] == b"\x89PNG"
    for heading in ("machine", "threads", "BLAS", "summary"):
        assert heading.lower() in result.stdout.lower()


def test_runner_without_torch_times_tinynet_alone(toy_bench_dir, tmp_path):
    result = _run(["--only", "kernels", "--quick", "--json", str(tmp_path / "r.json")],
                  env_extra={"TINYNET_BENCHMARKS_DIR": str(toy_bench_dir)},
                  prelude="sys.modules['torch'] = None; ")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PyTorch is not installed" in result.stdout
    (row,) = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert row["torch_ms"] is None and row["ratio"] is None and row["tinynet_ms"] > 0


def test_runner_reports_a_failing_suite_and_keeps_going(toy_bench_dir, tmp_path):
    (toy_bench_dir / "recurrent.py").write_text("def run(quick=False):\n    raise RuntimeError('boom')\n")
    result = _run(["--only", "recurrent,kernels", "--quick", "--json", str(tmp_path / "r.json")],
                  env_extra={"TINYNET_BENCHMARKS_DIR": str(toy_bench_dir)})
    assert result.returncode == 1
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["suites"]["recurrent"]["status"].startswith("error: RuntimeError: boom")
    assert len(data["rows"]) == 1, "one broken suite lost the others' results"


@pytest.mark.parametrize("args", [["--only", "nope"], ["--threads", "0"], ["--device", "tpu"]])
def test_bad_arguments_exit_with_status_2(args):
    result = _run(args)
    assert result.returncode == 2
    assert "error" in result.stderr


def test_missing_benchmarks_directory_is_said_plainly(monkeypatch, capsys):
    import tinynet.bench as bench
    monkeypatch.setattr(bench, "find_benchmarks_dir", lambda: None)
    assert bench.main(["--quick"]) == 1
    assert "benchmark suite was not found" in capsys.readouterr().err


def test_plot_without_matplotlib_is_a_clear_message(monkeypatch, capsys, tmp_path):
    import tinynet.bench as bench
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rows = [{"workload": "w", "ratio": 1.5, "suite": "kernels"}]
    assert bench.write_plot(rows, str(tmp_path / "p.png")) is False
    assert "matplotlib is not installed" in capsys.readouterr().err


def _suite_tree(name):
    import ast
    path = ROOT / "benchmarks" / f"{name}.py"
    if not path.is_file():
        pytest.skip(f"benchmarks/{name}.py is not in this tree")
    return ast.parse(path.read_text())


@pytest.mark.parametrize("name", OWN_SUITES)
def test_suite_takes_device_and_reads_no_private_state_of_common(name):
    """`run(quick, device)` lets the runner use it on a GPU; the thread count, device and
    smoke mode are read from `common` when used, never copied from its privates at import."""
    import ast
    tree = _suite_tree(name)
    (run,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"]
    params = [a.arg for a in run.args.args + run.args.kwonlyargs]
    assert params[:2] == ["quick", "device"], f"{name}.run{tuple(params)}"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "common":
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{name} imports private {private} from common"
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "common"):
            assert not node.attr.startswith("_"), f"{name} reads common.{node.attr}"


def test_overhead_standalone_prints_both_libraries_and_writes_common_rows(tmp_path, check_bench_row):
    """The cheapest suite as a script: both libraries side by side, rows in common keys."""
    pytest.importorskip("threadpoolctl")
    _suite_tree("overhead")
    out = tmp_path / "overhead.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "overhead.py"), "--quick",
                             "--threads", "1", "--json", str(out)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["machine"]["threads"] == 1, "the --threads the script set is not the one used"
    for row in data["rows"]:
        check_bench_row(row)
        assert row["pass"] in ("fwd", "fwd+bwd")
        if row["pass"] == "fwd+bwd":
            assert row["target"] == 3.0
            assert row["pass_target"] is None, "a --quick smoke run judged a target"
    assert "tinynet us" in result.stdout and "ratio" in result.stdout
    if data["machine"]["torch"]:
        assert "torch us" in result.stdout


def test_runner_keeps_rows_in_the_common_keys_as_they_are():
    """Suites emit the common keys themselves; the runner only adds the suite's name."""
    from tinynet.bench import _normalise
    row = {"workload": "add 4x4", "tinynet_ms": 0.02, "torch_ms": 0.01, "ratio": 2.0,
           "tinynet_spread_ms": 0.001, "torch_spread_ms": 0.001, "gflops": None,
           "pass": "fwd+bwd", "target": 3.0, "pass_target": True}
    before = dict(row)
    _normalise(row, "overhead")
    assert row.pop("suite") == "overhead"
    assert row == before


def _benchmark_module(name):
    """``benchmarks/<name>.py`` imported as a top-level module, as its scripts import each
    other (the directory is on ``sys.path`` only for the import)."""
    import importlib
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def _run_files(tmp_path, runs, minute=0, steals=None):
    """One run.py-style JSON file per run's rows, ended at 10:mm, 11:mm, ... UTC."""
    paths = []
    for k, rows in enumerate(runs):
        paths.append(tmp_path / f"run{k}.json")
        result = {"created": f"2026-12-01 1{k}:{minute:02d}:00 UTC", "rows": rows}
        if steals is not None:
            result["steal"] = steals[k]
        paths[-1].write_text(json.dumps(result))
    return paths


def test_targets_reads_the_issue_rows_and_their_geometric_mean(tmp_path):
    """benchmarks/targets.py: each named fwd+bwd row against its target, forward rows
    ignored, and the geometric mean by hand: ratios 2 and 0.5 alternating over 10 rows and
    1 on the last give exactly 1.0."""
    targets = _benchmark_module("targets")
    rows = []
    for k, (workload, _) in enumerate(targets.TARGETS):
        ratio = 1.0 if k == len(targets.TARGETS) - 1 else (2.0 if k % 2 == 0 else 0.5)
        rows.append({"workload": workload, "pass": "fwd", "ratio": 99.0})
        rows.append({"workload": workload, "pass": "fwd+bwd+adam" if "step" in workload else "fwd+bwd",
                     "ratio": ratio})
    out, geomean = targets.table(rows)
    assert geomean == pytest.approx(1.0)
    assert [met for *_, met in out][:2] == [False, True]            # 2.0 > 1.3, 0.5 <= 1.3
    assert out[-1][1:] == (1.0, 0.5, False)                         # SimpleCNN: 1.0 > 0.5
    rows[-1].update(tinynet_peak_mb=30.0, torch_peak_mb=20.0, memory_ratio=1.5)
    assert targets.memory(rows) == [(targets.TARGETS[-1][0], 30.0, 20.0, 1.5, False)]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"rows": rows[:-1]}))                # one row missing
    assert targets.table(json.loads(path.read_text())["rows"])[1] is None
    assert targets.main([str(path), "--markdown"]) == 0


def test_targets_over_several_runs_judges_the_median(tmp_path, capsys):
    """Several runs: each row's ratios per run and their median, the target judged on the
    median (not on any one run, nor the mean), a row missing from one run taken from the
    others, each run's geometric mean and the geometric mean of the medians, by hand."""
    targets = _benchmark_module("targets")
    n = len(targets.TARGETS)

    def rows(ratios, memory=None):
        out = [{"workload": w, "pass": "fwd+bwd+adam" if "step" in w else "fwd+bwd", "ratio": r}
               for (w, _), r in zip(targets.TARGETS, ratios) if r is not None]
        if memory is not None:
            out[-1].update(tinynet_peak_mb=1.0, torch_peak_mb=1.0, memory_ratio=memory)
        return out

    # row 0 (target 1.3): 1.0, 2.0, 1.2 -> median 1.2, met (mean 1.4 would miss)
    # row 1 (target 1.3): 1.4, 1.0, 1.5 -> median 1.4, missed though one run meets it
    # row 2: missing from run 3 -> median of 4.0 and 1.0 = 2.5; others 1.0 throughout
    runs = [rows([1.0, 1.4, 4.0] + [1.0] * (n - 3), memory=0.5),
            rows([2.0, 1.0, 1.0] + [1.0] * (n - 3), memory=2.0),
            rows([1.2, 1.5, None] + [1.0] * (n - 3), memory=0.9)]
    out, geomeans, geomean = targets.runs_table(runs)
    assert out[0][1:] == ([1.0, 2.0, 1.2], 1.2, 1.3, True)
    assert out[1][1:] == ([1.4, 1.0, 1.5], 1.4, 1.3, False)
    assert out[2][1:3] == ([4.0, 1.0, None], 2.5)
    assert geomeans[0] == pytest.approx((1.4 * 4.0) ** (1 / n))
    assert geomeans[1] == pytest.approx(2.0 ** (1 / n))
    assert geomeans[2] is None                                      # run 3 lacks a row
    assert geomean == pytest.approx((1.2 * 1.4 * 2.5) ** (1 / n))
    assert targets.runs_memory(runs) == [(targets.TARGETS[-1][0], [0.5, 2.0, 0.9], 0.9, True)]
    no_row_3 = [[r for r in run if r["workload"] != targets.TARGETS[3][0]] for run in runs]
    out, _, geomean = targets.runs_table(no_row_3)                  # missing from every run
    assert out[3][1:3] == ([None, None, None], None) and geomean is None
    paths = _run_files(tmp_path, runs, minute=30)
    assert targets.main([str(p) for p in paths] + ["--markdown"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split(" | ")[2:5] == ["10:30", "11:30", "12:30"]
    first = printed[2].split(" | ")
    assert first[0] == "| " + targets.TARGETS[0][0] and first[2:] == ["1.00x", "2.00x", "1.20x", "1.20x", "yes",
                                                                       "- |"]


def test_targets_floor_is_torch_over_the_gemm_roofline(tmp_path, capsys):
    """The floor column: PyTorch's GFLOP/s over the run's GEMM roofline, from the row's own
    key or (older JSON) through tinynet's rate and its fraction of the roofline; the
    median over runs; '-' where a row has no flop count. By hand: PyTorch at 300 GFLOP/s
    against a 200 GFLOP/s roofline reads 1.5x."""
    common = _benchmark_module("common")
    targets = _benchmark_module("targets")
    timing = {"tinynet": {"median_s": 0.02, "spread_s": 0.0}, "torch": {"median_s": 0.01, "spread_s": 0.0}}
    row = common.make_row(targets.TARGETS[0][0], timing, flops=3e9, roofline=200.0, **{"pass": "fwd+bwd"})
    assert row["torch_gflops"] == pytest.approx(300.0) and row["torch_roofline_fraction"] == pytest.approx(1.5)
    assert targets.floor(row) == pytest.approx(1.5)
    legacy = {k: v for k, v in row.items() if k != "torch_roofline_fraction"}
    assert targets.floor(legacy) == pytest.approx(1.5)         # 300 * 0.75 / 150
    assert targets.floor({"workload": "x", "ratio": 1.0}) is None and targets.floor(None) is None
    slower = dict(row, torch_roofline_fraction=0.5)
    runs = [[row], [slower], [dict(row, torch_roofline_fraction=1.0)]]
    assert targets.floors(runs)[:2] == [pytest.approx(1.0), None]   # median of 1.5, 0.5, 1.0
    paths = _run_files(tmp_path, runs)
    assert targets.main([str(p) for p in paths] + ["--markdown"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].endswith("| met | floor |") and printed[2].endswith("| 1.00x |")
    assert printed[3].endswith("| - |")                          # the second row: no flops
    assert targets.main([str(paths[0])]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("floor 1.50x")


# the per-CPU line first: the parser must pick the machine's ``cpu`` line by name
PROC_STAT = """cpu0 1 2 3 4 5 6 7 8 0 0
cpu  {user} 0 {system} {idle} 0 0 0 {steal} 0 0
intr 12345
"""


def test_steal_is_read_off_proc_stat_as_a_share_of_all_cpu_time():
    """/proc/stat's ``cpu`` line (not ``cpu0``), steal over the sum of the eight kinds, by
    hand: 300 user + 100 system + 500 idle + 100 steal ticks between the snapshots -> 10%."""
    common = _benchmark_module("common")
    before = common.cpu_times(PROC_STAT.format(user=1000, system=200, idle=5000, steal=50))
    after = common.cpu_times(PROC_STAT.format(user=1300, system=300, idle=5500, steal=150))
    assert before == {"user": 1000, "nice": 0, "system": 200, "idle": 5000, "iowait": 0,
                      "irq": 0, "softirq": 0, "steal": 50}
    assert common.steal_share(before, after) == pytest.approx(0.1)
    assert common.steal_share(before, before) is None                 # no time passed
    assert common.steal_share(None, after) is None
    assert common.cpu_times("cpu  1 2 3 4\n")["steal"] == 0          # a kernel without the field
    assert common.cpu_times("intr 1 2\n") is None
    assert common.cpu_times("cpu  1 x 3\n") is None


def test_runner_and_targets_report_the_steal_of_each_run(toy_bench_dir, tmp_path, capsys):
    """The JSON holds the run's and each suite's steal share (a fraction, where /proc/stat
    exists), the Markdown names it, and targets.py shows each run's beside the targets."""
    # /proc/stat counts in 10 ms ticks, and the toy suite alone can end inside one (its
    # share is then None: no time passed, as a CI run once saw); make it last 0.1 s
    (toy_bench_dir / "kernels.py").write_text(TOY_MODULE + """
_toy_run = run

def run(quick=False):
    import time
    end = time.perf_counter() + 0.1
    while time.perf_counter() < end:
        pass
    return _toy_run(quick)
""")
    result = _run(["--quick", "--only", "kernels", "--json", str(tmp_path / "r.json"),
                   "--markdown", str(tmp_path / "r.md")],
                  env_extra={"TINYNET_BENCHMARKS_DIR": str(toy_bench_dir)})
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    markdown = (tmp_path / "r.md").read_text()
    if os.path.exists("/proc/stat"):
        assert 0.0 <= data["steal"] <= 1.0 and 0.0 <= data["suites"]["kernels"]["steal"] <= 1.0
        assert f"Hypervisor steal during the run: {data['steal']:.1%} of CPU time" in markdown
    else:
        assert data["steal"] is None and "not measured" in markdown
    targets = _benchmark_module("targets")
    rows = [{"workload": w, "pass": "fwd+bwd+adam" if "step" in w else "fwd+bwd", "ratio": 1.0}
            for w, _ in targets.TARGETS]
    paths = _run_files(tmp_path, [rows] * 3, steals=[0.02, None, 0.30])
    assert targets.main([str(p) for p in paths] + ["--markdown"]) == 0
    last = capsys.readouterr().out.splitlines()[-1].split(" | ")
    assert last[0] == "| hypervisor steal during the run" and last[2:6] == ["2.0%", "-", "30.0%", "16.0%"]
    assert targets.main([str(paths[2])]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["hypervisor", "steal", "during", "the",
                                                              "run", "30.0%"]


def test_rows_and_tables_carry_the_reference_libraries():
    """A library of ``common.REFERENCES`` in the timing gives the row ``<name>_ms`` and its
    ratio to PyTorch (None without PyTorch); the tables add its two columns only when a
    row has it, and show its figures there."""
    common = _benchmark_module("common")

    def timing(**ms):
        return {lib: {"median_s": v / 1e3, "spread_s": 0.0} for lib, v in ms.items()}
    row = common.make_row("w", timing(tinynet=2.0, torch=1.0, jax=4.0), **{"pass": "fwd"})
    assert (row["jax_ms"], row["jax_ratio"], row["ratio"]) == (4.0, 4.0, 2.0)
    assert "keras_ms" not in row
    alone = common.make_row("v", timing(tinynet=2.0, keras=3.0))         # no PyTorch
    assert (alone["keras_ms"], alone["keras_ratio"]) == (3.0, None)
    plain = common.make_row("u", timing(tinynet=2.0, torch=1.0))
    assert "JAX" not in common.format_table([plain]) and "JAX" not in common.markdown_table([plain])
    text = common.format_table([row, plain]).splitlines()
    assert text[0].split()[-4:] == ["JAX", "ms", "JAX", "ratio"]
    assert text[2].split()[-2:] == ["4.000", "4.00"] and text[3].split()[-2:] == ["-", "-"]
    md = common.markdown_table([row, alone]).splitlines()
    assert md[0].endswith("| JAX ms | JAX ratio | Keras ms | Keras ratio |")
    assert md[2].endswith("| 4 | 4.00x | - | - |") and md[3].endswith("| - | - | 3 | - |")


REFERENCE_TOY = '''
from common import make_row

def run(quick=False, references=()):
    timing = {"tinynet": {"median_s": 0.002, "spread_s": 0.0}}
    return [make_row("toy", timing, notes=",".join(references) or "none")]
'''


def test_runner_hands_references_to_their_suite_only(toy_bench_dir, tmp_path):
    """``--references jax`` reaches the kernels suite's ``run(references=...)``, ``keras``
    the training suite's; a suite is not handed the other's, and one without any gets
    none. Unknown names, or a reference whose suite ``--only`` leaves out, exit with 2."""
    (toy_bench_dir / "kernels.py").write_text(REFERENCE_TOY)
    (toy_bench_dir / "training.py").write_text(REFERENCE_TOY)
    env = {"TINYNET_BENCHMARKS_DIR": str(toy_bench_dir)}
    result = _run(["--quick", "--only", "kernels,training", "--references", "jax",
                   "--json", str(tmp_path / "r.json")], env_extra=env)
    assert result.returncode == 0, result.stdout + result.stderr
    notes = {r["suite"]: r["notes"] for r in json.loads((tmp_path / "r.json").read_text())["rows"]}
    assert notes == {"kernels": "jax", "training": "none"}
    result = _run(["--quick", "--only", "kernels,training", "--references", "keras,jax",
                   "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")],
                  env_extra=env)
    data = json.loads((tmp_path / "r.json").read_text())
    assert {r["suite"]: r["notes"] for r in data["rows"]} == {"kernels": "jax", "training": "keras"}
    assert data["references"] == {}                 # the toy suites import neither library
    assert "- References: none could run" in (tmp_path / "r.md").read_text()
    bad = _run(["--references", "tensorflow"], env_extra=env)
    assert bad.returncode == 2 and "--references: unknown reference(s) tensorflow" in bad.stderr
    bad = _run(["--only", "kernels", "--references", "keras"], env_extra=env)
    assert bad.returncode == 2 and "training suite, which --only leaves out" in bad.stderr


def test_markdown_names_the_references_that_ran_and_xla_threads(monkeypatch):
    """The Markdown header line: each reference's version, Keras' backend, XLA's threads;
    and only the references asked for (Keras imports JAX, which then timed nothing)."""
    import tinynet.bench as bench
    common = _benchmark_module("common")
    import types
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(__version__="0.4.1"))
    monkeypatch.setitem(sys.modules, "keras", types.SimpleNamespace(__version__="3.1"))
    assert common.reference_versions(("keras",)) == {"keras": "3.1"}
    assert common.reference_versions() == {"jax": "0.4.1", "keras": "3.1"}
    line = bench._references_line(common, {"jax": "0.4.1", "keras": "3.1"}, threads=2)
    assert line == "- References: JAX 0.4.1, Keras 3.1 (JAX backend); XLA on all cores"
    assert bench._references_line(common, {"jax": "0.4.1"}, threads=1).endswith("XLA on 1 thread")


def test_reference_suites_say_why_a_reference_cannot_run(monkeypatch, capsys):
    """Without JAX (or Keras), or on a GPU, the kernels and training suites print why and
    time no reference, instead of failing."""
    kernels, training = _benchmark_module("kernels"), _benchmark_module("training")
    monkeypatch.setitem(sys.modules, "jax", None)
    assert kernels._jax_reference("cpu") is None
    assert training._keras_reference("cpu") is None
    out = capsys.readouterr().out
    assert "no JAX reference: JAX is not installed (pip install -e '.[jax]')" in out
    assert "no Keras reference: Keras 3 with JAX is not installed" in out
    monkeypatch.delitem(sys.modules, "jax")
    assert kernels._jax_reference("cuda:0") is None and training._keras_reference("cuda") is None
    assert "CPU backend only" in capsys.readouterr().out


def test_compare_rewarms_each_library_after_its_gap_untimed():
    """After each idle gap the callable runs untimed for ``rewarm`` seconds (at least once)
    before its ``reps`` timed calls; with rewarm=0 only warm-up and timed calls happen."""
    common = _benchmark_module("common")
    calls = []
    common.compare({"a": lambda: calls.append("a")}, rounds=3, reps=2, warmup=1, gap=0.001,
                   rewarm=0.0)
    assert len(calls) == 1 + 3 * 2
    calls.clear()
    common.compare({"a": lambda: calls.append("a")}, rounds=3, reps=2, warmup=1, gap=0.001,
                   rewarm=1e-9)
    assert len(calls) == 1 + 3 * (1 + 2)            # one untimed call after each gap
    calls.clear()
    slow = lambda: calls.append(time.sleep(0.004))  # noqa: E731
    common.compare({"a": slow}, rounds=1, reps=1, warmup=0, gap=0.0, rewarm=0.02)
    assert len(calls) >= 1 + 4                      # >= 20 ms of 4 ms calls, then the timed one


# ----------------------------------------------------------------- benchmarks/ab.py

def test_ab_swap_runs_the_old_module_and_restores_the_new():
    # the "old" conv.py: this one with flat rows for no batch size; its _use_flat_rows
    # reads the old constant through its own globals, and the swap back restores both
    ab = _benchmark_module("ab")
    from tinynet.functional import conv as conv_module
    live_source = Path(conv_module.__file__).read_text()
    assert "_FLAT_ROWS_MAX_BATCH = 2\n" in live_source
    old = ab.module_at_revision("tinynet.functional.conv",
                                live_source.replace("_FLAT_ROWS_MAX_BATCH = 2\n", "_FLAT_ROWS_MAX_BATCH = 0\n"),
                                "test")
    swap = ab.Swap(conv_module, old)
    args = ((2, 128, 16, 16), (128, 128, 3, 3), (1, 1), (1, 1), (1, 1), 1, (16, 16))
    live_function = conv_module._use_flat_rows
    try:
        swap.use("old")
        assert conv_module._FLAT_ROWS_MAX_BATCH == 0 and not conv_module._use_flat_rows(*args)
        assert conv_module._use_flat_rows is not live_function
    finally:
        swap.use("new")
    assert conv_module._FLAT_ROWS_MAX_BATCH == 2 and conv_module._use_flat_rows(*args)
    assert conv_module._use_flat_rows is live_function


def test_ab_swap_keeps_what_the_new_side_cached_since_the_last_switch():
    # a module that binds a cache into its globals on first use, as tinynet.cblas does:
    # the new side's binding, made after the Swap was built, must survive old-new switches
    ab = _benchmark_module("ab")
    source = ("_cache = None\n"
              "binds = []\n"
              "def bound():\n"
              "    global _cache\n"
              "    if _cache is None:\n"
              "        binds.append(1)\n"
              "        _cache = object()\n"
              "    return _cache\n")
    live = ab.module_at_revision("tinynet.cblas", source, "live")
    old = ab.module_at_revision("tinynet.cblas", source, "old")
    swap = ab.Swap(live, old)
    first = live.bound()
    for _ in range(3):
        swap.use("old")
        live.bound()            # the old function, its cache in the old module's globals
        swap.use("new")
        assert live.bound() is first
    assert live.binds == [1] and old.binds == [1]


def test_ab_alternates_sides_and_counts_the_pairs_the_new_side_wins():
    ab = _benchmark_module("ab")
    import types
    live, old = types.ModuleType("live"), types.ModuleType("old")
    live.delay, old.delay = 0.05, 0.0           # the new code is the slow one here (by far more
    # than a stall of this shared machine: 4 ms once lost a pair to one)
    swap = ab.Swap(live, old)
    seen = []

    def fn():
        seen.append(live.delay)
        time.sleep(live.delay)
    result = ab.alternate(fn, [swap], calls=4, warmup=1)
    assert seen == [0.0, 0.05] + [0.0, 0.05, 0.05, 0.0] * 2       # warm-up, then ABBA
    assert result["new_faster_pairs"] == 0
    assert min(result["new"]) > max(result["old"]) and live.delay == 0.05
    assert "new faster in 0 of 4 pairs" in ab.report(result, "toy")


def test_ab_names_a_bad_revision_and_an_unknown_workload():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: benchmarks/ab.py reads old code with git show")
    ab = _benchmark_module("ab")
    with pytest.raises(ValueError, match="ab: cannot read tinynet/kernels/subpixel.py at 'no-such-rev'"):
        ab.source_at_revision("tinynet.kernels.subpixel", "no-such-rev")
    assert "def conv_transpose2d_subpixel" in ab.source_at_revision("tinynet.kernels.subpixel", "HEAD")
    with pytest.raises(ValueError, match="ab: unknown workload 'nope'; one of: unet, resnet18, cnn"):
        ab.workload("nope")


def test_ab_lstm_workload_is_recurrent_py_s_one_layer_lstm():
    ab = _benchmark_module("ab")
    out, (h, c) = ab.workload("lstm", forward_only=True)()
    assert out.shape == (50, 32, 128) and h.shape == c.shape == (1, 32, 128)
    assert ab.workload("lstm")() is None             # forward and backward through time
    assert ab.workload("lstm", build=False) is None


def test_ab_rejects_a_call_count_below_one_and_an_unknown_module(capsys):
    ab = _benchmark_module("ab")
    with pytest.raises(SystemExit) as exit_info:
        ab.main(["--base", "HEAD", "--swap", "tinynet.random", "--workload", "unet", "--calls", "0"])
    assert exit_info.value.code == 2 and "--calls must be at least 1" in capsys.readouterr().err
    assert ab.main(["--base", "HEAD", "--swap", "tinynet.no_such_module", "--workload", "unet"]) == 2
    assert "tinynet.no_such_module" in capsys.readouterr().err


SLEEP_WORKER = """
import os, sys, time
delay = float(os.environ.get("AB_TEST_DELAY", "0.02"))
for _ in sys.stdin:
    start = time.perf_counter()
    time.sleep(delay)
    print(time.perf_counter() - start, flush=True)
"""


def test_ab_env_mode_runs_the_new_side_in_a_process_with_the_setting():
    """``--env``: two workers take turns; only the new one has the variable (here a worker
    that sleeps 20 ms, or 1 ms with the setting), so the new side wins every pair."""
    ab = _benchmark_module("ab")
    command = [sys.executable, "-c", SLEEP_WORKER]
    result = ab.alternate_processes(command, {"AB_TEST_DELAY": "0.001"}, calls=4, gap=0.0, warmup=1)
    assert len(result["old"]) == len(result["new"]) == 4
    assert result["new_faster_pairs"] == 4
    assert min(result["old"]) >= 0.02 > max(result["new"])
    assert "AB_TEST_DELAY" not in os.environ


def test_ab_env_mode_names_a_worker_that_died_and_bad_settings(capsys):
    ab = _benchmark_module("ab")
    with pytest.raises(RuntimeError, match="the old side's worker exited with status 3"):
        ab.alternate_processes([sys.executable, "-c", "raise SystemExit(3)"], {}, calls=1, gap=0.0)
    assert ab.main(["--env", "NO_EQUALS_SIGN", "--workload", "cnn"]) == 2
    assert "--env takes NAME=VALUE, got 'NO_EQUALS_SIGN'" in capsys.readouterr().err
    assert ab.main(["--env", "A=1", "--workload", "nope"]) == 2
    assert "unknown workload 'nope'" in capsys.readouterr().err
    for args in (["--env", "A=1", "--base", "HEAD", "--workload", "cnn"], ["--workload", "cnn"],
                 ["--env", "A=1", "--gap", "-1", "--workload", "cnn"]):
        with pytest.raises(SystemExit) as exit_info:
            ab.main(args)
        assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--env compares two processes of the same code" in err and "--gap must be 0 or more" in err


def test_blas_note_only_where_the_blas_runs_below_the_cpu():
    common = _benchmark_module("common")
    held = {"cpu_avx512": True, "blas_avx512": False, "blas_kernels": "Haswell",
            "openblas_coretype": "Haswell"}
    note = common.blas_note(held)
    assert "runs its Haswell kernels, not its AVX-512 ones" in note and "OPENBLAS_CORETYPE=Haswell" in note
    assert "OPENBLAS_CORETYPE" not in common.blas_note({**held, "openblas_coretype": None})
    assert common.blas_note({**held, "blas_avx512": True}) is None
    assert common.blas_note({**held, "cpu_avx512": False}) is None
    assert common.blas_note({"blas": ["unknown"]}) is None      # an older report's keys


def test_runner_reports_the_blas_kernels_and_a_coretype_that_holds_them(toy_bench_dir, tmp_path):
    """With ``OPENBLAS_CORETYPE=Haswell`` the report names the kernels OpenBLAS loaded and,
    on an AVX-512 CPU, says in its header and Markdown that NumPy's GEMMs run below it."""
    from tinynet import cblas
    if not cblas.available():
        pytest.skip("NumPy's BLAS here is not an OpenBLAS that tinynet.cblas can find")
    out = tmp_path / "out"
    result = _run(["--quick", "--only", "kernels", "--json", str(out / "r.json"),
                   "--markdown", str(out / "r.md")],
                  env_extra={"TINYNET_BENCHMARKS_DIR": str(toy_bench_dir),
                             "OPENBLAS_CORETYPE": "Haswell"})
    assert result.returncode == 0, result.stdout + result.stderr
    machine = json.loads((out / "r.json").read_text())["machine"]
    assert machine["blas_kernels"] == "Haswell" and machine["blas_avx512"] is False
    assert machine["openblas_coretype"] == "Haswell"
    said = "OPENBLAS_CORETYPE=Haswell" in result.stdout
    assert said == machine["cpu_avx512"], result.stdout
    assert ("OPENBLAS_CORETYPE=Haswell" in (out / "r.md").read_text()) == machine["cpu_avx512"]


def test_layers_standalone_prints_the_table_and_its_total(tmp_path, check_bench_row):
    pytest.importorskip("threadpoolctl")
    out = tmp_path / "layers.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "layers.py"), "--quick",
                             "--model", "cnn", "--threads", "1", "--json", str(out)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    rows = json.loads(out.read_text())["rows"]
    # SimpleCNN: conv 1->16 on 8x8 and 16->32 on 4x4, three passes each
    assert [(r["workload"], r["pass"]) for r in rows] == [
        (f"conv N8 {c} k3 s1 p1 x1", p) for c in ("1->16 8x8", "16->32 4x4") for p in ("fwd", "dx", "dW")]
    for row in rows:
        check_bench_row(row)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    assert "one step's convolutions" in result.stdout


@pytest.mark.parametrize("jit", ["0", ""])
def test_runner_says_whether_compiled_kernels_ran(toy_bench_dir, tmp_path, jit):
    """The report names the compiled CPU kernels' state: off with TINYNET_JIT=0 (or without
    Numba), else the Numba version, in the header, the JSON and the Markdown."""
    from tinynet import backend
    out = tmp_path / "out"
    result = _run(["--quick", "--only", "kernels", "--json", str(out / "r.json"),
                   "--markdown", str(out / "r.md")],
                  env_extra={"TINYNET_BENCHMARKS_DIR": str(toy_bench_dir), "TINYNET_JIT": jit})
    assert result.returncode == 0, result.stdout + result.stderr
    state = json.loads((out / "r.json").read_text())["machine"]["compiled"]
    if jit == "0":
        assert state.startswith("off (")
    elif backend.compiled_available():
        assert state.startswith("numba ")
    else:
        assert state == "off (Numba not installed)"
    assert f"compiled {state} (tinynet's CPU kernels" in result.stdout
    assert f"compiled CPU kernels (the jit extra): {state}" in (out / "r.md").read_text()


@pytest.mark.skipif(not __import__("tinynet").backend.compiled_available(),
                    reason="needs Numba (the jit extra): without it there is no runtime to load")
def test_memory_child_loads_the_compiled_kernels_runtime_before_its_baseline():
    """Numba and its LLVM JIT (~115 MB, once per process) are library code, loaded before
    the baseline as PyTorch's is; a tiny step then measures a few MB, not the runtime."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "training.py"), "--memory-child",
                          "tinynet", "cnn", "64,1,8,8"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), "TINYNET_JIT": "1"})
    assert run.returncode == 0, run.stderr
    peak = json.loads(run.stdout.strip().splitlines()[-1])["rss_peak_mb"]
    assert peak < 50, f"{peak:.0f} MB: the compiled kernels' runtime was counted in the step"
