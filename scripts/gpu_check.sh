#!/usr/bin/env bash
# Runs the CUDA checks on the GPU machine (no cargo there), from binaries built on a dev machine:
# the kernel parity tests, the cross-backend conformance suite on `--backend cuda` (f32: the
# same assertions as cpu; bf16: within tolerance), and the per-kernel timings beside cuBLAS
# (wall time of a loop of products, and each product's device time from Nsight Compute).
#
#   cargo test --test cuda_kernels --test cuda_fp8 --test cuda_deferred_norm --test cuda_qkv_rope --test cuda_graphs --test conformance --test conformance_bf16 --test sampling --test async_scheduling --no-run
#   cargo bench --bench cuda_ops --no-run
#   scripts/gpu_check.sh pack            # strips + gzips them into .carry/
#   (on the GPU machine, repository root) scripts/gpu_check.sh run [tests|ops|all]
#
# All the packed binaries together exceed what one device call carries (64 MiB): carry the
# .carry/*.gz files the chosen section runs (tests: cuda_kernels, cuda_fp8, cuda_deferred_norm, cuda_qkv_rope, cuda_graphs, conformance, conformance_bf16,
# sampling, async_scheduling; ops: cuda_ops); missing ones are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
newest() { ls -t "$1"-* | grep -v '\.d$' | head -1; }
case "${1:-run}" in
pack)
    mkdir -p .carry
    for t in cuda_kernels cuda_fp8 cuda_deferred_norm cuda_qkv_rope cuda_graphs conformance conformance_bf16 sampling async_scheduling; do strip -o ".carry/$t" "$(newest "target/debug/deps/$t")"; done
    strip -o .carry/cuda_ops "$(newest target/release/deps/cuda_ops)"
    for t in cuda_kernels cuda_fp8 cuda_deferred_norm cuda_qkv_rope cuda_graphs conformance conformance_bf16 sampling async_scheduling cuda_ops; do gzip -f ".carry/$t"; done
    ls -la .carry
    ;;
run)
    what=${2:-all}
    export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
    mkdir -p /tmp/ember-bin
    for b in cuda_kernels cuda_fp8 cuda_deferred_norm cuda_qkv_rope cuda_graphs conformance conformance_bf16 sampling async_scheduling cuda_ops; do
        [ -f ".carry/$b.gz" ] || continue  # carry only what the sections need (64 MiB a call)
        gunzip -c ".carry/$b.gz" > "/tmp/ember-bin/$b"; chmod +x "/tmp/ember-bin/$b"
    done
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
    status=0
    if [ "$what" != ops ]; then
        echo "=== kernel parity (kernels/*.cu vs the dense oracle, host products and reference ops)"
        [ -x /tmp/ember-bin/cuda_kernels ] && { EMBER_TEST_CUDA=1 /tmp/ember-bin/cuda_kernels --nocapture --test-threads 1 || status=1; }
        echo "=== --quantization fp8: quantization and FP8 product against the host"
        [ -x /tmp/ember-bin/cuda_fp8 ] && { EMBER_TEST_CUDA=1 /tmp/ember-bin/cuda_fp8 --nocapture || status=1; }
        echo "=== the deferred RMSNorm of one-token steps against add + norm + GEMV"
        [ -x /tmp/ember-bin/cuda_deferred_norm ] && { EMBER_TEST_CUDA=1 /tmp/ember-bin/cuda_deferred_norm --nocapture || status=1; }
        echo "=== rotary + cache write in the q/k/v GEMV against the GEMV and the rope kernel"
        [ -x /tmp/ember-bin/cuda_qkv_rope ] && { EMBER_TEST_CUDA=1 /tmp/ember-bin/cuda_qkv_rope --nocapture || status=1; }
        echo "=== the linear layers again on kernels/gemm.cu (EMBER_CUDA_GEMM=mma: no Hopper kernel)"
        [ -x /tmp/ember-bin/cuda_kernels ] && { EMBER_TEST_CUDA=1 EMBER_CUDA_GEMM=mma /tmp/ember-bin/cuda_kernels linear --nocapture || status=1; }
        echo "=== CUDA graphs of decode steps against --enforce-eager (f32 and bf16, batch 1 and 5)"
        [ -x /tmp/ember-bin/cuda_graphs ] && { EMBER_TEST_CUDA=1 /tmp/ember-bin/cuda_graphs --nocapture || status=1; }
        echo "=== conformance on cuda, f32 (the assertions cpu and wgpu pass; no Vulkan here)"
        [ -x /tmp/ember-bin/conformance ] && { EMBER_TEST_CUDA=1 EMBER_TEST_WGPU=0 /tmp/ember-bin/conformance --test-threads 1 2>&1 | grep -v "^SKIP" || status=1; }
        echo "=== conformance on cuda, bf16 (within tolerance)"
        [ -x /tmp/ember-bin/conformance_bf16 ] && { EMBER_TEST_CUDA=1 EMBER_TEST_WGPU=0 /tmp/ember-bin/conformance_bf16 --nocapture || status=1; }
        echo "=== sampling suite on cuda (seeds, n > 1, stops, min_tokens, logit_bias, truncation)"
        [ -x /tmp/ember-bin/sampling ] && { EMBER_TEST_CUDA=1 EMBER_TEST_WGPU=0 /tmp/ember-bin/sampling 2>&1 | grep -v "^SKIP" || status=1; }
        echo "=== async scheduling on cuda: the same outputs as synchronous steps"
        [ -x /tmp/ember-bin/async_scheduling ] && { EMBER_TEST_CUDA=1 EMBER_TEST_WGPU=0 /tmp/ember-bin/async_scheduling 2>&1 | grep -v "^SKIP" || status=1; }
    fi
    if [ "$what" != tests ]; then
        echo "=== kernels one at a time (cargo bench --bench cuda_ops)"
        [ -x /tmp/ember-bin/cuda_ops ] && { /tmp/ember-bin/cuda_ops || status=1; }
        echo "=== the linear layers on kernels/gemm.cu (EMBER_CUDA_GEMM=mma)"
        [ -x /tmp/ember-bin/cuda_ops ] && { EMBER_CUDA_GEMM=mma /tmp/ember-bin/cuda_ops linear-only || status=1; }
        echo "=== cuBLAS on the same shapes (benches/torch_ops.py)"
        python3 benches/torch_ops.py || status=1
        if command -v ncu > /dev/null && [ -x /tmp/ember-bin/cuda_ops ]; then
            echo "=== device time of each product, Ember and cuBLAS (Nsight Compute; benches/gemm_device_time.py)"
            ncu_time="ncu --csv --metrics gpu__time_duration.sum --cache-control none --clock-control none"
            $ncu_time /tmp/ember-bin/cuda_ops linear-only > /tmp/gemm_ember.csv 2> /tmp/gemm_ember.err || status=1
            $ncu_time python3 benches/torch_ops.py > /tmp/gemm_torch.csv 2> /tmp/gemm_torch.err || status=1
            python3 benches/gemm_device_time.py /tmp/gemm_ember.csv /tmp/gemm_torch.csv || status=1
        fi
    fi
    exit $status
    ;;
*) echo "usage: $0 pack|run [tests|ops|all]" >&2; exit 2 ;;
esac
