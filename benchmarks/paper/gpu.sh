#!/usr/bin/env bash
# Binarized-MNIST rows of the MADE paper on one GPU, run concurrently, in under 8 minutes.
#
#   bash benchmarks/paper/gpu.sh OUT_DIR [DATA_DIR]
#
# DATA_DIR holds binarized_mnist.npz (default: $MADE_DATA_DIR, else shared/data in or beside the
# checkout). Six runs share the GPU: 500 hidden units with 1 and 8 masks (Figure 2) and 8000 hidden
# units with 1 mask (Table 6), each at adagrad learning rates 0.05 and 0.01 (two of the paper's grid; the
# reported one is chosen on validation). Each run stops by the paper's rule (30 epochs without
# validation improvement) or after GPU_MINUTES (default 6) minutes of training, keeping its best
# weights; RESULTS says which. Results: OUT_DIR/results.jsonl (JSON lines for
# benchmarks/paper/results-gpu.jsonl), OUT_DIR/RESULTS-gpu.md, OUT_DIR/gpu.log. Checkpoints and
# per-run logs: OUT_DIR/ckpt/runs/ (a training checkpoint every 5 epochs and at the end). Running it
# again skips runs already in OUT_DIR/results.jsonl and continues an interrupted one from its last
# checkpoint (made train --resume).
set -u
OUT=${1:?usage: bash benchmarks/paper/gpu.sh OUT_DIR [DATA_DIR]}
cd "$(dirname "$0")/../.."
REPO=$PWD
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
DATA=${2:-${MADE_DATA_DIR:-}}
if [ -z "$DATA" ]; then
  for d in "$REPO/shared/data" "$REPO/../shared/data"; do [ -d "$d" ] && DATA=$d && break; done
fi
if [ ! -f "$DATA/binarized_mnist.npz" ]; then
  echo "gpu.sh: no binarized_mnist.npz in '${DATA}'; pass its folder as the second argument" >&2
  exit 2
fi
MINUTES=${GPU_MINUTES:-6}
RUNS=$OUT/ckpt/runs
mkdir -p "$RUNS/logs"
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
PYTHON=${PYTHON:-python3}
{ date; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; "$PYTHON" -c 'import torch; print("torch", torch.__version__)'; } > "$OUT/gpu.log" 2>&1
start=$(date +%s)
pids=()
for job in "mnist-8000-1mask lr0.05" "mnist-8000-1mask lr0.01" "mnist-500-1mask lr0.05" "mnist-500-1mask lr0.01" \
           "mnist-500-8masks lr0.05" "mnist-500-8masks lr0.01"; do
  set -- $job
  "$PYTHON" benchmarks/paper/reproduce.py "$1" --candidate "$2" --device cuda --data-dir "$DATA" \
    --results "$OUT/results.jsonl" --runs "$RUNS" --max-minutes "$MINUTES" --checkpoint-every 5 > "$RUNS/logs/$1-$2.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
{
  echo "all runs ended after $(( $(date +%s) - start )) s (status $status)"
  for log in "$RUNS"/logs/*.log; do echo "== $(basename "$log")"; tail -n 4 "$log"; done
} >> "$OUT/gpu.log"
"$PYTHON" benchmarks/paper/report.py --results "$OUT/results.jsonl" --out "$OUT/RESULTS-gpu.md" --readme "" >> "$OUT/gpu.log" 2>&1
cat "$OUT/gpu.log"
exit $status
