#!/usr/bin/env bash
# The tiny test config (configs/test.yaml) end to end on CUDA: capture, evaluation, interventions,
# training (which takes the GPU whenever torch sees one) and dictionary training on the GPU, bf16 mixed
# precision, in a temporary results folder; then the summed job time per stage from its logs/benchmarks/.
#
# Usage: benchmarks/gpu_smoke.sh [SNAKEMAKE ARGS...]    (CORES=n, default all; KEEP=1 keeps the folder)
# Exits nonzero when a job fails (the folder is kept for its logs), and at once (status 2) where no
# CUDA device is visible.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_smoke: no CUDA device visible to torch (torch.cuda.is_available() is False): this check needs a GPU" >&2
    exit 2
fi
"$PY" -c 'import torch; print("gpu_smoke:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)'

WORK="$(mktemp -d "${TMPDIR:-/tmp}/featdrift-gpu-smoke.XXXXXX")"
# Device keys of the schema set to cuda; bf16 autocast in training (the tiny Llama takes it) and in
# online dictionary forwards. Deterministic CUDA kernels are off: some have none (the CPU tests
# check byte-identical reruns).
cat > "$WORK/gpu.yaml" <<'EOF'
activations: {device: cuda}
eval: {device: cuda}
train: {bf16: true, deterministic: false}
dictionaries: {device: cuda, online: {device: cuda, dtype: bfloat16}}
EOF

echo "gpu_smoke: building in $WORK"
start=$(date +%s)
status=0
(cd "$WORK" && "$PY" -m snakemake -s "$ROOT/Snakefile" --configfile "$ROOT/configs/test.yaml" "$WORK/gpu.yaml" \
    --cores "${CORES:-all}" "$@") || status=$?
wall=$(( $(date +%s) - start ))

if [ -d "$WORK/logs/benchmarks" ]; then
    echo "gpu_smoke: stage times (summed over each stage's jobs, from logs/benchmarks/):"
    (cd "$ROOT/benchmarks" && "$PY" -c 'import sys; from pathlib import Path; from bench_workflow import stage_times; stage_times(Path(sys.argv[1]), float(sys.argv[2]))' \
        "$WORK/logs/benchmarks" "$wall")
fi
if [ "$status" -ne 0 ]; then
    echo "gpu_smoke: FAILED (snakemake exit $status) after ${wall} s; the jobs' logs are in $WORK/logs" >&2
    exit "$status"
fi
[ "${KEEP:-0}" = 1 ] && echo "gpu_smoke: results kept in $WORK" || rm -rf "$WORK"
echo "gpu_smoke: OK in ${wall} s"
