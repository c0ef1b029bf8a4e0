#!/usr/bin/env bash
# tools/gpu_check.sh [--dry] OUTDIR: ropelib's CUDA path on one GPU, in under 8 minutes.
#
# Writes to OUTDIR, each JSON with the device's name, the torch version and the date:
#   cuda-tests.json     the tests marked `cuda` (tests/test_cuda.py), from pytest's JUnit XML
#   bench.json          bench rope | comrope | crope | hdd | train, bfloat16 and float32,
#                       eager and compiled, peak memory; RoPE at Liger-Kernel's shape
#   training-run.json   rope and crope at the CRoPE paper's shape, with and without compile
#   gpu-check.log       everything the three parts printed
# OUTDIR may exist, but not with any of these files in it: a check's figures are never
# overwritten (exit 2; give a new OUTDIR, e.g. results/gpu/<date>-2).
# Each part has its own time limit (TESTS_S, BENCH_S, TRAIN_S seconds: 120, 210, 110), so a
# slow part cannot take the others' time; bench.json is rewritten after each benchmark and
# keeps what a part measured before its limit. Commit the JSON under results/gpu/.
#
# Needs: one CUDA GPU, a CUDA build of PyTorch with numpy, einops and pytest. It runs from
# the repository with PYTHONPATH=. (no install) and needs no internet. Used only where they
# import: transformers (HF's apply_rotary_pos_emb), rotary-embedding-torch and liger-kernel
# (Triton; CUDA only). A machine without internet gets the last two as wheels: `make
# gpu-wheels`, on a machine with internet, downloads tools/gpu-wheels.txt into tools/wheels/
# (pure Python, under 1 MB; ignored by git), the directory to take along (or one named by
# ROPELIB_WHEELS). This script installs whatever wheels it finds there with `pip install
# --no-index --no-deps --target` into a temporary directory and puts it on PYTHONPATH; without
# them the references are left out of bench.json. The training run reads
# data/shakespeare-char/train.bin where it exists (`make book` writes it; take it along too),
# else it trains on the notebooks' bytes, and training-run.json names the corpus.
#
# --dry: the same code on the CPU at tiny sizes, compiled candidates through the aot_eager
# backend (traced, no code generated), in well under a minute, the CUDA tests included (on the
# CPU, where they compare the CPU with itself); tests/test_gpu_check.py runs it and checks the
# files' schema and that the tests passed. PYTHON names the interpreter (default: python3).
set -uo pipefail

dry=0
if [ "${1:-}" = "--dry" ]; then dry=1; shift; fi
if [ $# -ne 1 ]; then
  echo "usage: tools/gpu_check.sh [--dry] OUTDIR" >&2
  exit 2
fi
out=$1
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
files=(cuda-tests.xml cuda-tests.json bench.json training-run.json gpu-check.log)
for f in "${files[@]}"; do  # a check's figures are never overwritten: a new OUTDIR each run
  if [ -e "$out/$f" ]; then
    echo "gpu_check: $out/$f exists already; give a new OUTDIR (results are never overwritten)" >&2
    exit 2
  fi
done
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
log="$out/gpu-check.log"
: >"$log"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
cd "$root" || exit 1

wheels=${ROPELIB_WHEELS:-$root/tools/wheels}
if compgen -G "$wheels/*.whl" >/dev/null; then
  site=$(mktemp -d)  # outside OUTDIR, which is committed
  trap 'rm -rf "$site"' EXIT
  "$py" -m pip install -q --no-index --no-deps --target "$site" "$wheels"/*.whl \
    >>"$log" 2>&1 && export PYTHONPATH="$site:$PYTHONPATH"
fi

if [ "$dry" = 1 ]; then
  device=cpu; quick=(--quick); backend=aot_eager; seconds=0
  tests_s=60; bench_s=60; train_s=60
  # the CUDA tests' own code, on the CPU (tests/test_cuda.py compares the CPU with itself)
  export ROPELIB_CUDA_TESTS_DEVICE=cpu ROPELIB_CUDA_TESTS_BACKEND=aot_eager
else
  device=cuda; quick=(); backend=inductor; seconds=10
  tests_s=${TESTS_S:-120}; bench_s=${BENCH_S:-210}; train_s=${TRAIN_S:-110}
  if ! "$py" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: no CUDA device visible to $py (use --dry on a CPU)" >&2
    exit 1
  fi
fi
tokens=()
if [ -f data/shakespeare-char/train.bin ]; then tokens=(--tokens-file data/shakespeare-char/train.bin); fi

# the part's status, when it wrote no JSON of its own: the environment and its exit code
status() {  # status FILE PART CODE
  "$py" - "$1" "$2" "$3" "$device" <<'EOF'
import json, os, sys
from ropelib.bench import environment
path, part, code, device = sys.argv[1:]
if not os.path.exists(path):
    report = {**environment(device), "part": part, "exit_code": int(code), "error":
              "timed out" if code in ("124", "137") else "no result (see gpu-check.log)"}
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
EOF
}

start=$(date +%s)
echo "== cuda tests (limit ${tests_s}s), at $(( $(date +%s) - start ))s" | tee -a "$log"
# SIGINT at the limit: pytest stops and still writes the JUnit XML of what it ran
timeout -s INT -k 10 "$tests_s" "$py" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py \
  --junitxml "$out/cuda-tests.xml" >>"$log" 2>&1
code=$?
if [ -f "$out/cuda-tests.xml" ]; then
  "$py" - "$out" "$device" "$code" <<'EOF'
import json, sys
from ropelib.bench import environment, junit_summary
out, device, code = sys.argv[1:]
report = {**environment(device), "part": "cuda-tests", "exit_code": int(code),
          "timed_out": code in ("124", "137")}  # then the tests that ran before the limit
report.update(junit_summary(f"{out}/cuda-tests.xml"))
with open(f"{out}/cuda-tests.json", "w") as f:
    json.dump(report, f, indent=1)
EOF
fi
status "$out/cuda-tests.json" cuda-tests "$code"

echo "== bench (limit ${bench_s}s), at $(( $(date +%s) - start ))s" | tee -a "$log"
timeout -k 5 "$bench_s" "$py" -c "import sys; from ropelib.bench import main; main(sys.argv[1:])" \
  rope comrope crope hdd train "${quick[@]}" --device "$device" --dtype bfloat16 float32 \
  --compile-backend "$backend" --json "$out/bench.json" >>"$log" 2>&1
status "$out/bench.json" bench $?

echo "== training run (limit ${train_s}s), at $(( $(date +%s) - start ))s" | tee -a "$log"
timeout -k 5 "$train_s" "$py" -c "import sys; from ropelib.bench import main; main(sys.argv[1:])" \
  --training-run "${quick[@]}" --device "$device" --dtype bfloat16 --seconds "$seconds" \
  --compile-backend "$backend" "${tokens[@]}" --json "$out/training-run.json" >>"$log" 2>&1
status "$out/training-run.json" training-run $?

echo "gpu_check: $(( $(date +%s) - start ))s, results in $out" | tee -a "$log"
