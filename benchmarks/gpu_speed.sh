#!/usr/bin/env bash
# The GPU speed and sampling tables in one device call (benchmarks/SPEED-cuda.md, SAMPLING-cuda.md).
#
# The device machine has torch with CUDA but no network: carry the peers and the data in a folder
# PEERS (default .peers), made here with
#   pip install --target .peers --no-deps --python-version 3.12 --only-binary :all: zuko pyro-ppl pyro-api opt_einsum
#   pip wheel --no-deps nflows==0.14 -w .whl && pip install --target .peers --no-deps .whl/nflows-0.14-*.whl
#   cp ../shared/data/binarized_mnist.npz .peers/
# then run `bash benchmarks/gpu_speed.sh` there (about 2 minutes) with OUT set to the output folder.
# DEVICE=cpu runs the same script here, to check it before spending device time.
set -u
PEERS=${PEERS:-.peers}
OUT=${OUT:-gpu-out}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=".:$PEERS"
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
start=$(date +%s)
timeout 240 python3 benchmarks/speed.py --device "$DEVICE" --data "$PEERS/binarized_mnist.npz" \
    --out "$OUT/SPEED-$DEVICE.md" > "$OUT/speed.log" 2>&1
echo "speed: exit $? after $(( $(date +%s) - start )) s"
start=$(date +%s)
timeout 120 python3 benchmarks/sampling.py --device "$DEVICE" --max-seconds 10 \
    --out "$OUT/SAMPLING-$DEVICE.md" > "$OUT/sampling.log" 2>&1
echo "sampling: exit $? after $(( $(date +%s) - start )) s"
tail -n 3 "$OUT/speed.log" "$OUT/sampling.log"
