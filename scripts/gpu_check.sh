#!/usr/bin/env bash
# Runs the CUDA checks on the GPU machine (no cargo there): the kernel parity tests and the
# cross-backend conformance report on `--backend cuda`, from binaries built on a dev machine:
#
#   cargo test --test cuda_kernels --no-run && cargo build --example conformance_report
#   scripts/gpu_check.sh pack            # strips + gzips them into .carry/
#   (on the GPU machine, repository root) scripts/gpu_check.sh run
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-run}" in
pack)
    mkdir -p .carry
    bin=$(ls -t target/debug/deps/cuda_kernels-* | grep -v '\.d$' | head -1)
    strip -o .carry/cuda_kernels "$bin"
    strip -o .carry/conformance_report target/debug/examples/conformance_report
    gzip -f .carry/cuda_kernels .carry/conformance_report
    ls -la .carry
    ;;
run)
    export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
    mkdir -p /tmp/ember-bin
    for b in cuda_kernels conformance_report; do gunzip -c ".carry/$b.gz" > "/tmp/ember-bin/$b"; chmod +x "/tmp/ember-bin/$b"; done
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    echo "=== kernel parity (kernels/*.cu vs the dense oracle)"
    EMBER_TEST_CUDA=1 /tmp/ember-bin/cuda_kernels --nocapture --test-threads 1
    echo "=== conformance on cuda (greedy tokens and logprobs vs transformers)"
    for m in llama3 llama2 mistral qwen2 qwen3 gemma gemma2; do
        echo "--- $m"; BACKEND=cuda /tmp/ember-bin/conformance_report "$m" 2>&1 | grep -E "prompt|preempt|panicked|error"
    done
    ;;
*) echo "usage: $0 pack|run" >&2; exit 2 ;;
esac
