#!/usr/bin/env bash
# The CUDA performance runs behind docs/perf.md, on the GPU machine (no cargo there):
#
#   cargo build --release --bin ember && scripts/gpu_bench.sh pack      # here
#   scripts/gpu_bench.sh run [SECTIONS]                                 # there, repository root
#
# Writes a random-weight Llama-3-8B-shaped model with transformers (benches/make_bench_model.py),
# then runs the sections named (default: latency throughput serve), all in bf16:
#   latency     `ember bench latency`, batch 1, 128 in / 128 out, with the step profile
#   latency8    the same at batch 8
#   eager       batch 1 and 8 again with --enforce-eager (no CUDA graphs), to compare
#   nopdl       batch 1 and 8 again with EMBER_CUDA_PDL=0 (graphs without programmatic launch)
#   overlap     batch 1 and 8 with the short kernels waiting before they trigger the next
#               (EMBER_PDL_ORDER=wait_first) instead of after
#   profile     batch 1 again with EMBER_PROFILE_SYNC=1: the device time of forward and sampler
#   ablate      batch 1, 2 rounds of: normal, then each kernel class skipped in decode steps
#               (EMBER_ABLATE=norm / attention / square_gemv / all three; wrong tokens by
#               design): the latency each costs inside the step graph; plus the prefill alone
#   ncu         Nsight Compute's time of every kernel of one decode step of the throughput run
#               with >= ${NCU_SEQS:-700} sequences (EMBER_PROFILE_DECODE_SEQS), summed per kernel
#               into /tmp/ncu_step.txt
#   ncu_mixed   the same for the first step with prefill tokens (>= ${NCU_TOKENS:-16000} tokens) of the
#               throughput run (EMBER_PROFILE_MIXED_TOKENS), into /tmp/ncu_mixed.txt
#   ncu1        the same for the first decode step at batch 1 (the step a graph records, so its
#               kernels run one by one), into /tmp/ncu_step1.txt
#   throughput  `ember bench throughput`, ${NUM_PROMPTS:-1000} x 128/128, with the step profile
#               (every ${PROFILE_STEPS:-100} steps of each kind)
#   sync        the same throughput with --no-async-scheduling (each step scheduled after the
#               previous one's tokens), to compare
#   attention   the same throughput under each large-batch attention kernel (EMBER_CUDA_ATTENTION
#               grouped, mma, mma_pipelined), to compare them
#   serve       time from `ember serve` (plus ${SERVE_FLAGS}) to a healthy server, then `ember bench serve` at
#               ${RATE:-16} req/s, random 1024 in / 128 out, ${SERVE_PROMPTS:-320} requests
#   baseline    transformers `generate` (SDPA, bf16) on the same model: batch 1 and batch 256
# QUANT=fp8 runs every Ember section with `--quantization fp8` (the model stays bf16).
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
    shift || true
    sections=${*:-latency throughput serve}
    export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
    gunzip -c .carry/ember.gz > /tmp/ember && chmod +x /tmp/ember
    model=/tmp/bench-llama3-8b
    [ -f "$model/config.json" ] || python3 benches/make_bench_model.py --out "$model" --shape llama3-8b
    Q=${QUANT:+--quantization $QUANT}
    M="--model $model --backend cuda --dtype bfloat16 --max-model-len 2048 $Q"
    # ncu_throughput_step VAR=VALUE OUT: Nsight Compute's kernel times of the one step of the
    # 1000 x 128/128 throughput run that the profiler-range variable picks, summed into OUT.txt.
    ncu_throughput_step() {
        env "$1" ncu --profile-from-start off --csv --metrics gpu__time_duration.sum --cache-control none \
            --clock-control none /tmp/ember bench throughput $M --input-len 128 --output-len 128 --num-prompts 1000 \
            > "$2.csv" 2> "$2.err" || { tail -5 "$2.err"; exit 1; }
        python3 scripts/ncu_summary.py "$2.csv" | tee "$2.txt"
    }
    for s in $sections; do
        case $s in
        latency)
            echo "=== single stream: batch 1, 128 in / 128 out"
            EMBER_PROFILE_STEPS=127 /tmp/ember bench latency $M --input-len 128 --output-len 128 --batch-size 1 --num-iters-warmup 1 --num-iters 3
            ;;
        latency8)
            echo "=== batch 8, 128 in / 128 out"
            EMBER_PROFILE_STEPS=127 /tmp/ember bench latency $M --input-len 128 --output-len 128 --batch-size 8 --num-iters-warmup 1 --num-iters 3
            ;;
        eager)
            echo "=== batch 1 and 8, --enforce-eager"
            /tmp/ember bench latency $M --enforce-eager --input-len 128 --output-len 128 --batch-size 1 --num-iters-warmup 1 --num-iters 3
            /tmp/ember bench latency $M --enforce-eager --input-len 128 --output-len 128 --batch-size 8 --num-iters-warmup 1 --num-iters 3
            ;;
        nopdl)
            echo "=== batch 1 and 8, EMBER_CUDA_PDL=0"
            EMBER_CUDA_PDL=0 /tmp/ember bench latency $M --input-len 128 --output-len 128 --batch-size 1 --num-iters-warmup 1 --num-iters 3
            EMBER_CUDA_PDL=0 /tmp/ember bench latency $M --input-len 128 --output-len 128 --batch-size 8 --num-iters-warmup 1 --num-iters 3
            ;;
        ablate)
            for round in 1 2; do
                for skip in "" norm attention square_gemv norm,attention,square_gemv; do
                    echo "=== round $round, batch 1, EMBER_ABLATE=$skip"
                    EMBER_ABLATE=$skip /tmp/ember bench latency $M --input-len 128 --output-len 128 --batch-size 1 --num-iters-warmup 1 --num-iters 4 2>&1 | grep "Avg latency"
                done
            done
            echo "=== the prefill alone: batch 1, 128 in / 1 out"
            /tmp/ember bench latency $M --input-len 128 --output-len 1 --batch-size 1 --num-iters-warmup 2 --num-iters 5 2>&1 | grep "Avg latency"
            ;;
        overlap)
            for batch in 1 8; do
                echo "=== batch $batch with EMBER_PDL_ORDER=wait_first"
                EMBER_PDL_ORDER=wait_first /tmp/ember bench latency $M --input-len 128 --output-len 128 --batch-size $batch --num-iters-warmup 1 --num-iters 3
            done
            ;;
        ncu)
            echo "=== ncu: one decode step of >= ${NCU_SEQS:-700} sequences (1000 x 128/128)"
            ncu_throughput_step EMBER_PROFILE_DECODE_SEQS="${NCU_SEQS:-700}" /tmp/ncu_step
            ;;
        ncu_mixed)
            echo "=== ncu: one step with >= ${NCU_TOKENS:-16000} tokens, prefill included (1000 x 128/128)"
            ncu_throughput_step EMBER_PROFILE_MIXED_TOKENS="${NCU_TOKENS:-16000}" /tmp/ncu_mixed
            ;;
        ncu1)
            echo "=== ncu: the first decode step at batch 1 (128 in)"
            EMBER_PROFILE_DECODE_SEQS=1 ncu --profile-from-start off --csv --metrics gpu__time_duration.sum \
                --cache-control none --clock-control none /tmp/ember bench latency $M --input-len 128 --output-len 8 \
                --batch-size 1 --num-iters-warmup 0 --num-iters 1 > /tmp/ncu_step1.csv 2> /tmp/ncu_step1.err || { tail -5 /tmp/ncu_step1.err; exit 1; }
            python3 scripts/ncu_summary.py /tmp/ncu_step1.csv | tee /tmp/ncu_step1.txt
            ;;
        profile)
            echo "=== batch 1 with a device sync after each phase (step profile = device time)"
            EMBER_PROFILE_STEPS=127 EMBER_PROFILE_SYNC=1 /tmp/ember bench latency $M --input-len 128 --output-len 128 --batch-size 1 --num-iters-warmup 1 --num-iters 1
            ;;
        throughput)
            echo "=== offline throughput: ${NUM_PROMPTS:-1000} x 128/128"
            EMBER_PROFILE_STEPS=${PROFILE_STEPS:-100} /tmp/ember bench throughput $M --input-len 128 --output-len 128 --num-prompts "${NUM_PROMPTS:-1000}"
            ;;
        sync)
            echo "=== offline throughput, --no-async-scheduling: ${NUM_PROMPTS:-1000} x 128/128"
            EMBER_PROFILE_STEPS=${PROFILE_STEPS:-100} /tmp/ember bench throughput $M --no-async-scheduling --input-len 128 --output-len 128 --num-prompts "${NUM_PROMPTS:-1000}"
            ;;
        attention)
            for kernel in grouped mma mma_pipelined; do
                echo "=== offline throughput with EMBER_CUDA_ATTENTION=$kernel"
                EMBER_CUDA_ATTENTION=$kernel /tmp/ember bench throughput $M --input-len 128 --output-len 128 --num-prompts "${NUM_PROMPTS:-1000}"
            done
            ;;
        serve)
            echo "=== serving: time to ready, then ${RATE:-16} req/s, random 1024 in / 128 out"
            start=$EPOCHREALTIME
            EMBER_PROFILE_STEPS=50 /tmp/ember serve "$model" --backend cuda --dtype bfloat16 --max-model-len 2048 --port 8123 $Q ${SERVE_FLAGS:-} > /tmp/serve.log 2>&1 &
            pid=$!
            until curl -sf localhost:8123/health > /dev/null; do
                kill -0 $pid 2>/dev/null || { cat /tmp/serve.log; exit 1; }
                sleep 0.2
            done
            awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "time to ready (process start to /health 200): %.1f s\n", b - a }'
            /tmp/ember bench serve --port 8123 --model "$model" --random-input-len 1024 --random-output-len 128 \
                --num-prompts "${SERVE_PROMPTS:-320}" --request-rate "${RATE:-16}" --seed 0
            kill $pid; wait $pid 2>/dev/null || true
            echo "--- server log: start-up, memory, and the step profile (every 50 steps)"
            grep -E "Setting|memory profiling|GPU blocks|ready|step profile" /tmp/serve.log | sed 's/\x1b\[[0-9;]*m//g' | head -40
            ;;
        baseline)
            echo "=== transformers generate, bf16, SDPA: batch 1 (128/128), batch 256 (128/128)"
            python3 benches/transformers_baseline.py --model "$model" --device cuda --dtype bfloat16 --input-len 128 --output-len 128 --num-prompts 1 --batch-size 1
            python3 benches/transformers_baseline.py --model "$model" --device cuda --dtype bfloat16 --input-len 128 --output-len 128 --num-prompts 256 --batch-size 256
            ;;
        *) echo "unknown section $s" >&2; exit 2 ;;
        esac
    done
    ;;
*) echo "usage: $0 pack|run [latency latency8 eager nopdl overlap profile ablate ncu ncu1 throughput attention serve baseline]" >&2; exit 2 ;;
esac
