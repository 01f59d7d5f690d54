"""One training step (forward, backward, Adam) of whole models: tinynet against PyTorch (issue 6).

Workloads (float32, the issue's):

* U-Net, the default Keras configuration (1,941,122 parameters), batch 2, 3x128x128,
  binary cross-entropy against 2-class masks (dropout on in both);
* ResNet-18 with the CIFAR stem, batch 16, 3x32x32, cross-entropy over 10 classes;
* SimpleCNN on digit-sized inputs, batch 64, 1x8x8, cross-entropy.

The PyTorch models are the same architectures written with ``torch.nn`` and loaded with
tinynet's initial weights. Both libraries run in this one process with the same thread
count (2 by default), after a warm-up, in interleaved rounds with an idle gap between
libraries (``common.compare``); medians with spread and the ratio tinynet / PyTorch. Rows
carry ``pass`` = ``fwd+bwd+adam`` (a whole step), the issue's ``target`` ratio and
``pass_target``.

Peak memory. NumPy reports its allocations to ``tracemalloc`` but PyTorch's CPU
allocator does not, so one method is used for both: each library runs its steps in a
fresh child process that samples its resident set size (``/proc/self/statm``) every
0.5 ms; the figure is the peak RSS during 3 steps minus the RSS just before them (model,
data and library already loaded: for tinynet with its compiled kernels on, that includes
Numba and its LLVM JIT, ~115 MB once per process, which would otherwise load during the
first step, as PyTorch's own code is loaded before its baseline). It therefore covers
activations, gradients, optimizer state and temporaries. tinynet's exact NumPy peak from ``tracemalloc`` over the same steps
is reported beside it as a cross-check. The issue's memory target (peak <= 1.5x PyTorch's)
is ``memory_target`` / ``pass_memory_target``. Peak memory is measured on the CPU only; on a
GPU the rows have no memory figures.

    python benchmarks/training.py              # full run (~2 minutes)
    python benchmarks/training.py --quick      # smoke run, figures not meaningful
    python benchmarks/training.py --profile    # also: where tinynet's step time goes
    python benchmarks/training.py --json out.json --threads 2 [--device cuda]

``run(quick=False, device=None, references=()) -> list[dict]`` is what
``benchmarks/run.py`` calls; ``references=("keras",)`` (``run.py --references keras``) also
times the U-Net written as Keras 3 code, in the same interleaved rounds (``keras_unet.py``).
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import threading
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))

import numpy as np  # noqa: E402  (benchmark driver, not a kernel)

import common  # noqa: E402
import tinynet as tn  # noqa: E402
import tinynet.functional as F  # noqa: E402
from tinynet import optim  # noqa: E402
from tinynet.models import SimpleCNN, UNet, resnet18  # noqa: E402
from tinynet.testing.torch_models import torch_resnet  # noqa: E402

# name -> (label, batch shape, the target ratio tinynet / PyTorch)
WORKLOADS = {
    "unet": ("U-Net step N2 3x128x128", (2, 3, 128, 128), 1.8),
    "resnet18": ("ResNet-18 CIFAR step N16 3x32x32", (16, 3, 32, 32), 1.8),
    "cnn": ("SimpleCNN step N64 1x8x8", (64, 1, 8, 8), 0.6),
}
QUICK_SHAPES = {"unet": (1, 3, 32, 32), "resnet18": (2, 3, 32, 32), "cnn": (8, 1, 8, 8)}
QUICK_WIDTHS = {"unet": 4, "resnet18": 8, "cnn": None}
PASS = "fwd+bwd+adam"      # what a timed call does: forward, backward and the Adam update
MEMORY_TARGET = 1.5        # the issue's: peak memory <= 1.5x PyTorch's


# ----------------------------------------------------------------------------- models
def tinynet_model(name, width=None):
    tn.manual_seed(0)
    if name == "unet":
        return UNet(3, 2, base_width=width or 16)
    if name == "resnet18":
        return resnet18(num_classes=10, stem="cifar", width=width or 64)
    return SimpleCNN()


def torch_model(torch, name, width=None):
    """The same architecture with torch.nn; module names match tinynet's state_dict keys."""
    if name == "cnn":
        return _TorchCNN(torch)
    if name == "resnet18":
        return torch_resnet(torch, (2, 2, 2, 2), 10, stem="cifar", width=width or 64)
    return _torch_unet(torch, width or 16)


def _TorchCNN(torch):
    nn = torch.nn

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

        def forward(self, x):
            return self.classifier(self.features(x))
    return CNN()


def _torch_unet(torch, base):
    nn = torch.nn
    drop = (0.1, 0.1, 0.2, 0.2, 0.3)

    class Block(nn.Module):
        def __init__(self, a, b, p):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(a, b, 3, padding=1), nn.Conv2d(b, b, 3, padding=1)
            self.dropout = nn.Dropout(p)

        def forward(self, x):
            return nn.functional.elu(self.conv2(self.dropout(nn.functional.elu(self.conv1(x)))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            w = [base * 2 ** i for i in range(5)]
            self.down = nn.ModuleList([Block(3 if i == 0 else w[i - 1], w[i], drop[i]) for i in range(5)])
            self.upsample = nn.ModuleList([nn.ConvTranspose2d(w[i + 1], w[i], 2, 2) for i in range(3, -1, -1)])
            self.up = nn.ModuleList([Block(2 * w[i], w[i], drop[i]) for i in range(3, -1, -1)])
            self.head = nn.Conv2d(base, 2, 1)

        def forward(self, x):
            x = x / 255
            skips = []
            for i, b in enumerate(self.down):
                x = b(x)
                if i < 4:
                    skips.append(x)
                    x = nn.functional.max_pool2d(x, 2)
            for u, b in zip(self.upsample, self.up):
                x = b(torch.cat([u(x), skips.pop()], 1))
            return torch.sigmoid(self.head(x))
    return Net()


def make_data(name, shape, seed=0):
    rng = np.random.default_rng(seed)
    if name == "unet":
        x = rng.uniform(0, 255, shape).astype(np.float32)
        y = (rng.random((shape[0], 2) + shape[2:]) < 0.3).astype(np.float32)
    else:
        x = rng.standard_normal(shape).astype(np.float32)
        y = rng.integers(0, 10, shape[0])
    return x, y


def tinynet_step_fn(name, shape, width=None, device="cpu"):
    model = tinynet_model(name, width).to(device)
    x, y = make_data(name, shape)
    tx, ty = tn.tensor(x, device=device), tn.tensor(y, device=device)
    opt = optim.Adam(model.parameters(), lr=1e-3)       # after .to: its state on the device
    loss_fn = F.binary_cross_entropy if name == "unet" else F.cross_entropy

    def step():
        loss = loss_fn(model(tx), ty)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return model, step


def torch_step_fn(torch, name, shape, init_from=None, width=None, device="cpu"):
    model = torch_model(torch, name, width)
    if init_from is not None:       # .numpy() copies a GPU tensor to the host
        state = {k: torch.from_numpy(v.numpy().copy()) for k, v in init_from.state_dict().items()}
        model.load_state_dict(state, strict=False)
    model.to(device)
    x, y = make_data(name, shape)
    tx, ty = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.functional.binary_cross_entropy if name == "unet" else torch.nn.functional.cross_entropy

    def step():
        loss = loss_fn(model(tx), ty)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return model, step


# ----------------------------------------------------------------------------- memory
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _load_compiled_runtime() -> None:
    """Loads what tinynet's compiled kernels (the jit extra) load on their first call:
    Numba (~55 MB of RSS) and its LLVM JIT (~60 MB), once per process, whatever the model,
    the float32 native pieces of the activations' passes (7 MB for the first, 12.6 MB for
    all six: :mod:`tinynet.kernels.compiled.pieces`), and the native jobs' pieces (the
    convolutions', the conv-ReLU-pool's, the LSTM loop's: 4.5 MB for the first, ~2 MB for
    a later one), which compile, from the cache, when their module is imported: so every
    module of :mod:`tinynet.kernels.compiled` is (a list of pieces once missed a new job's,
    whose code then counted as the SimpleCNN step's memory). Library code, like PyTorch's,
    so the memory child loads it before its baseline."""
    import importlib
    import pkgutil
    from tinynet import backend
    if backend.use_compiled(np.empty(0)):
        import tinynet.kernels.compiled as compiled
        for module in pkgutil.iter_modules(compiled.__path__):
            importlib.import_module(f"{compiled.__name__}.{module.name}")
        from tinynet.kernels.compiled import activation, pieces, pool
        x = np.zeros(1, np.float32)
        activation.relu_forward(x, np.empty_like(x), 0, 1)
        tile, one = np.zeros((1, 2, 2), np.float32), np.zeros((1, 1, 1), np.float32)
        where = np.zeros((1, 1, 1), np.int8)
        pool.max_pool_2x2_forward(tile, one, where, 0, 1, False)
        pool.max_pool_2x2_backward(one, where, np.float32(0), tile, 0, 1, one, False)
        for name in pieces.LAYOUTS:
            pieces.piece(name, "float32")


def _memory_child(library: str, name: str, shape, steps: int = 3) -> dict:
    """Runs in a fresh process: peak RSS over ``steps`` steps minus RSS before them."""
    common.set_threads(int(os.environ.get("TINYNET_BENCH_THREADS", str(common.DEFAULT_THREADS))))
    if library == "tinynet":
        _, step = tinynet_step_fn(name, shape)
        _load_compiled_runtime()
    else:
        import torch
        _, step = torch_step_fn(torch, name, shape)
    baseline = _rss_bytes()
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0005)
    sampler = threading.Thread(target=sample, daemon=True)
    if library == "tinynet":
        tracemalloc.start()
    sampler.start()
    for _ in range(steps):
        step()
    done.set()
    sampler.join()
    peak[0] = max(peak[0], _rss_bytes())
    traced = tracemalloc.get_traced_memory()[1] if library == "tinynet" else None
    return {"rss_peak_mb": (peak[0] - baseline) / 2 ** 20,
            "traced_peak_mb": None if traced is None else traced / 2 ** 20}


def measure_memory(library: str, name: str, shape) -> dict | None:
    env = dict(os.environ, TINYNET_BENCH_THREADS=str(common.get_threads()))
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", library, name,
           ",".join(map(str, shape))]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError) as e:
        print(f"memory measurement of {library} {name} failed: {e}", file=sys.stderr)
        return None


# ----------------------------------------------------------------------------- run
def run(quick: bool = False, device: str | None = None, memory: bool | None = None,
        references=(), names=None) -> list[dict]:
    """Rows for the workloads (``names``, default all three); ``memory`` (default: on the
    CPU and not ``quick``) adds peak memory, measured in child processes. ``references``
    may name ``"keras"``: the Keras U-Net then runs beside both libraries on the U-Net row
    (skipped, with the reason printed, where it cannot run).

    Uses the thread count and smoke mode already in force (``main`` and the runner set
    them); ``device`` defaults to the runner's.
    """
    device = device or common.get_device()
    on_gpu = device.startswith("cuda")
    torch = common.torch_or_none()
    if memory is None:
        memory = not quick and not on_gpu
    elif memory and on_gpu:
        print("training: peak memory is measured on the CPU only; skipped on "
              f"{device}", file=sys.stderr)
        memory = False
    keras = _keras_reference(device) if "keras" in references else None
    rounds, reps = (2, 1) if quick else (7, 3)
    rows = []
    for name in names or WORKLOADS:
        label, shape, target = WORKLOADS[name]
        width = None
        if quick:
            shape, width = QUICK_SHAPES[name], QUICK_WIDTHS[name]
            label = f"{label} (quick: {'x'.join(map(str, shape))}, narrow)"
        model, tn_step = tinynet_step_fn(name, shape, width, device=device)
        fns = {"tinynet": tn_step}
        if torch is not None:
            fns["torch"] = torch_step_fn(torch, name, shape, init_from=model, width=width,
                                         device=common.torch_device(device))[1]
        if keras is not None and name == "unet":
            import keras_unet
            fns["keras"] = keras_unet.keras_step_fn(keras, shape, base_width=width or 16)[1]
        timing = common.compare(fns, rounds=rounds, reps=reps, warmup=1 if quick else 2,
                                device=device)
        row = common.make_row(label, timing, target=target, **{"pass": PASS})
        # a smoke run's shrunken models and single calls are no result to judge
        row["pass_target"] = None if quick or row["ratio"] is None else row["ratio"] <= target
        if memory:
            mem_tn = measure_memory("tinynet", name, shape)
            mem_pt = measure_memory("torch", name, shape) if torch is not None else None
            row["tinynet_peak_mb"] = mem_tn and mem_tn["rss_peak_mb"]
            row["tinynet_traced_mb"] = mem_tn and mem_tn["traced_peak_mb"]
            row["torch_peak_mb"] = mem_pt and mem_pt["rss_peak_mb"]
            row["memory_target"] = MEMORY_TARGET
            if row["tinynet_peak_mb"] and row["torch_peak_mb"]:
                row["memory_ratio"] = row["tinynet_peak_mb"] / row["torch_peak_mb"]
                row["pass_memory_target"] = row["memory_ratio"] <= MEMORY_TARGET
        rows.append(row)
    return rows


def _keras_reference(device):
    """The ``keras`` module for the U-Net reference, or None with the reason printed."""
    import keras_unet
    return common.load_reference("training", "Keras", keras_unet.unavailable(device),
                                 lambda: keras_unet.import_keras(common.get_threads()))


def profile(name: str, steps: int = 5, top: int = 15, device: str = "cpu") -> None:
    """Prints the functions where tinynet's training step spends its time."""
    label, shape, _ = WORKLOADS[name]
    _, step = tinynet_step_fn(name, shape, device=device)
    step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    print(f"\n--- tinynet {label}: top {top} by own time over {steps} steps")
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main(argv=None) -> int:
    parser = common.standalone_parser(__doc__.splitlines()[0])
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                        help="measure peak memory in child processes (default: on, off with --quick)")
    parser.add_argument("--profile", action="store_true", help="also profile tinynet's steps")
    parser.add_argument("--memory-child", nargs=3, metavar=("LIB", "MODEL", "SHAPE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        lib, name, shape = args.memory_child
        print(json.dumps(_memory_child(lib, name, tuple(int(s) for s in shape.split(",")))))
        return 0
    info, threads = common.start_standalone(args)
    rows = run(args.quick, device=common.get_device(), memory=args.memory)
    print(common.format_table(rows))
    for r in rows:
        verdict = {True: "PASS", False: "MISS",
                   None: "not judged (--quick, or no PyTorch)"}[r["pass_target"]]
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"{r['workload']} [{r['pass']}]: ratio {ratio} (target <= {r['target']}) {verdict}")
    for r in rows:
        if r.get("tinynet_peak_mb") is not None:
            print(f"{r['workload']}: peak memory tinynet {r['tinynet_peak_mb']:.1f} MB "
                  f"(NumPy traced {r['tinynet_traced_mb']:.1f} MB), PyTorch "
                  + (f"{r['torch_peak_mb']:.1f} MB, ratio {r.get('memory_ratio', float('nan')):.2f}"
                     f" (target <= {MEMORY_TARGET})"
                     if r.get("torch_peak_mb") is not None else "n/a"))
    common.write_json(args.json, info, threads, rows)
    if args.profile:
        for name in WORKLOADS:
            profile(name, device=common.get_device())
    return 0


if __name__ == "__main__":
    sys.exit(main())
