#!/usr/bin/env bash
# The GPU path in one command (issue 11): on a machine with one NVIDIA GPU,
#
#   1. checks that there is a GPU that CuPy (tinynet) can use, and fails loudly if not;
#   2. runs the test suite with TINYNET_TEST_DEVICE=cuda (every test on the GPU);
#   3. runs the kernel and training benchmarks, tinynet on CuPy against PyTorch CUDA;
#   4. profiles one U-Net training step on the GPU (tinynet profile, per-op table);
#
# and writes everything to one Markdown report. Each stage has its own time limit, so the
# whole check ends within 8 minutes on one GPU (tests 270 s, kernels 75 s, training 75 s,
# profile 40 s, plus start-up).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]          # default OUT_DIR: gpu_check/
#
# Needs: tinynet[cuda,test,bench] installed (CuPy matching the CUDA driver) and a CUDA
# build of PyTorch for stage 3 (without one, stage 3 is reported as failed, not skipped).
# Exit status: 2 no GPU / CuPy cannot use it (nothing else runs); 1 a later stage failed
# or timed out; 0 all stages passed. The report says which stage failed and why.
set -u
cd "$(dirname "$0")/.."
OUT="${1:-gpu_check}"
mkdir -p "$OUT"
REPORT="$OUT/report.md"
PY="${PYTHON:-python}"
status=0
started=$(date +%s)

fail_loudly() {
    echo "gpu_check: $*" >&2
    { echo "# tinynet GPU check: FAILED before running anything"; echo; echo "$*"; } > "$REPORT"
    exit 2
}

# ---------------------------------------------------------------- 1. is there a usable GPU?
command -v nvidia-smi >/dev/null 2>&1 || fail_loudly "no nvidia-smi on PATH: this machine has no NVIDIA GPU driver"
gpus=$(nvidia-smi -L 2>&1) || fail_loudly "nvidia-smi failed: $gpus"
[ -n "$gpus" ] || fail_loudly "nvidia-smi lists no GPU"
reason=$("$PY" -c "import tinynet as tn; r = tn.backend.cuda_unavailable_reason(); print(r or '')" 2>&1) \
    || fail_loudly "importing tinynet failed: $reason"
[ -z "$reason" ] || fail_loudly "tinynet cannot use CUDA: $reason"
"$PY" -c "import tinynet as tn; x = tn.ones(3, device='cuda'); assert float((x * 2).sum().item()) == 6.0" \
    || fail_loudly "a first tinynet op on the GPU failed (see the error above)"

{
    echo "# tinynet GPU check"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- GPU: $gpus"
    echo "- driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
    "$PY" - <<'EOF'
import platform
import numpy
import tinynet as tn
cp = tn.backend._import_cupy()
print(f"- Python {platform.python_version()}, NumPy {numpy.__version__}, CuPy {cp.__version__}, "
      f"CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}")
try:
    import torch
    print(f"- PyTorch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"torch.cuda.is_available() = {torch.cuda.is_available()}")
except ImportError:
    print("- PyTorch: not installed")
EOF
    echo
} > "$REPORT"

# run_stage NAME SECONDS COMMAND...: runs with a time limit, logs to OUT/NAME.log, and
# appends the outcome and the log's tail to the report.
run_stage() {
    local name=$1 limit=$2
    shift 2
    local log="$OUT/$name.log" t0 rc
    t0=$(date +%s)
    echo "gpu_check: stage $name (limit ${limit}s): $*" >&2
    timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
    rc=$?
    local took=$(( $(date +%s) - t0 ))
    {
        echo "## $name"
        echo
        echo "\`$*\`"
        echo
        if [ "$rc" -eq 0 ]; then
            echo "**passed** in ${took} s"
        elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "**TIMED OUT** after ${limit} s (exit $rc)"
        else
            echo "**FAILED** (exit $rc) after ${took} s"
        fi
        echo
        echo '```text'
        tail -n "${TAIL_LINES:-60}" "$log"
        echo '```'
        echo
    } >> "$REPORT"
    [ "$rc" -eq 0 ] || status=1
    return 0
}

# ---------------------------------------------------------------- 2. the test suite on the GPU
export HYPOTHESIS_PROFILE=ci
TAIL_LINES=80 run_stage tests 270 env TINYNET_TEST_DEVICE=cuda "$PY" -m pytest -q -rfE \
    --maxfail=100 -p no:cacheprovider

# ---------------------------------------------------------------- 3. benchmarks against PyTorch CUDA
if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    run_stage kernels 75 "$PY" benchmarks/run.py --device cuda --only kernels \
        --json "$OUT/kernels.json" --markdown "$OUT/kernels.md"
    run_stage training 75 "$PY" benchmarks/run.py --device cuda --only training \
        --json "$OUT/training.json" --markdown "$OUT/training.md"
    for part in kernels training; do
        if [ -s "$OUT/$part.md" ]; then
            { echo "### $part: tinynet (CuPy) / PyTorch CUDA"; echo; cat "$OUT/$part.md"; echo; } >> "$REPORT"
        fi
    done
else
    echo "gpu_check: PyTorch has no CUDA here; the benchmark stage fails" >&2
    { echo "## benchmarks"; echo; echo "**FAILED**: PyTorch is missing or has no CUDA"
      echo "(install a CUDA build of torch to compare against PyTorch CUDA)."; echo; } >> "$REPORT"
    status=1
fi

# ---------------------------------------------------------------- 4. where a GPU step's time goes
TAIL_LINES=40 run_stage profile 40 "$PY" -m tinynet profile unet --device cuda --steps 3 --rows 15

{
    echo "---"
    echo "total $(( $(date +%s) - started )) s; overall: $([ "$status" -eq 0 ] && echo PASSED || echo FAILED)"
} >> "$REPORT"
echo "gpu_check: report in $REPORT ($([ "$status" -eq 0 ] && echo passed || echo FAILED))" >&2
exit "$status"
