#!/usr/bin/env bash
# One device call for the GPU: the CUDA-only tests, the speed and sampling tables (benchmarks/SPEED-cuda.md,
# SAMPLING-cuda.md) and the paper's two-layer 8000-unit MNIST row within what is left of the call's time.
#
# The device machine has torch with CUDA but no network: carry the peers and the data in a folder
# PEERS (default .peers), made here with
#   pip install --target .peers --no-deps --python-version 3.12 --only-binary :all: zuko pyro-ppl pyro-api opt_einsum
#   pip wheel --no-deps nflows==0.14 -w .whl && pip install --target .peers --no-deps .whl/nflows-0.14-*.whl
#   cp ../shared/data/binarized_mnist.npz .peers/
# then run `bash benchmarks/gpu_speed.sh` there with OUT set to the output folder and SECONDS_TOTAL to the
# call's time limit (default 540): the MNIST row trains for what the tables leave, less 60 s for its evaluation.
# DEVICE=cpu runs the same script here, to check it before spending device time (with MNIST_ROW=mnist-500-1mask
# MNIST_MINUTES=0.1 SPEED_ARGS="--archs 500 --rounds 1" to keep it short).
set -u
PEERS=${PEERS:-.peers}
OUT=${OUT:-gpu-out}
DEVICE=${DEVICE:-cuda}
TOTAL=${SECONDS_TOTAL:-540}
MNIST_ROW=${MNIST_ROW:-mnist-8000x2-1mask}
MNIST_CANDIDATE=${MNIST_CANDIDATE:-lr0.01}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=".:$PEERS"
begin=$(date +%s)
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
start=$(date +%s)
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_graphs.py tests/test_sampling.py > "$OUT/tests.log" 2>&1
echo "tests: exit $? after $(( $(date +%s) - start )) s: $(tail -n 1 "$OUT/tests.log")"
start=$(date +%s)
timeout 180 python3 benchmarks/speed.py --device "$DEVICE" --data "$PEERS/binarized_mnist.npz" ${SPEED_ARGS:-} \
    --out "$OUT/SPEED-$DEVICE.md" > "$OUT/speed.log" 2>&1
echo "speed: exit $? after $(( $(date +%s) - start )) s"
start=$(date +%s)
timeout 120 python3 benchmarks/sampling.py --device "$DEVICE" --max-seconds 10 \
    --out "$OUT/SAMPLING-$DEVICE.md" > "$OUT/sampling.log" 2>&1
echo "sampling: exit $? after $(( $(date +%s) - start )) s"
minutes=${MNIST_MINUTES:-$(python3 -c "print(max(0.5, ($TOTAL - 60 - ($(date +%s) - $begin)) / 60))")}
echo "$MNIST_ROW $MNIST_CANDIDATE: training for at most $minutes minutes"
start=$(date +%s)
timeout $(( TOTAL - ($(date +%s) - begin) - 5 )) python3 benchmarks/paper/reproduce.py "$MNIST_ROW" \
    --candidate "$MNIST_CANDIDATE" --device "$DEVICE" --data-dir "$PEERS" --results "$OUT/results-gpu.jsonl" \
    --runs /tmp/made-gpu-runs --max-minutes "$minutes" --checkpoint-every 1000 > "$OUT/mnist.log" 2>&1
echo "mnist: exit $? after $(( $(date +%s) - start )) s"
tail -n 3 "$OUT/speed.log" "$OUT/sampling.log" "$OUT/mnist.log"
