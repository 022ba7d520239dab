#!/usr/bin/env bash
# The CUDA performance run behind docs/perf.md, on the GPU machine (no cargo there):
#
#   cargo build --release --bin ember && scripts/gpu_bench.sh pack     # here
#   scripts/gpu_bench.sh run [llama3-8b|llama3-1b]                     # there, repository root
#
# Writes a random-weight model of the real shape with transformers (benches/make_bench_model.py),
# then runs `ember bench latency` (single stream) and `ember bench throughput` on it in bf16.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-run}" in
pack)
    mkdir -p .carry
    strip -o .carry/ember target/release/ember
    gzip -f .carry/ember
    ls -la .carry/ember.gz
    ;;
run)
    shape=${2:-llama3-8b}
    export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
    gunzip -c .carry/ember.gz > /tmp/ember && chmod +x /tmp/ember
    model=/tmp/bench-$shape
    [ -f "$model/config.json" ] || python3 benches/make_bench_model.py --out "$model" --shape "$shape"
    M="--model $model --backend cuda --dtype bfloat16 --max-model-len 1024"
    echo "=== single stream: batch 1, 128 in / 128 out"
    /tmp/ember bench latency $M --input-len 128 --output-len 128 --batch-size 1 --num-iters-warmup 1 --num-iters 3
    echo "=== offline throughput: ${NUM_PROMPTS:-256} x 128/128"
    /tmp/ember bench throughput $M --input-len 128 --output-len 128 --num-prompts "${NUM_PROMPTS:-256}"
    ;;
*) echo "usage: $0 pack|run [shape]" >&2; exit 2 ;;
esac
