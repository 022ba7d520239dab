#!/usr/bin/env python3
"""cuBLAS (through PyTorch) on the shapes `cargo bench --bench cuda_ops` times: the Llama-3-8B
projections as `x @ w.T` in bf16 for the same row counts, timed with CUDA events over many
products after warm-ups. The ratio of Ember's TFLOP/s to these is the "GEMM efficiency vs
cuBLAS" of docs/perf.md. Then the FP8 product of the same shapes (`torch._scaled_mm`, e4m3
operands with per-row scales, bf16 out: what `ember bench ... --quantization fp8` runs), the
product alone, without quantizing the activations.

    python3 benches/torch_ops.py          # on the GPU machine
"""
import torch

PROJECTIONS = [("qkv", 6144, 4096), ("o", 4096, 4096), ("gate_up", 28672, 4096), ("down", 4096, 14336), ("lm_head", 128256, 4096)]


def time_ms(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def main():
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    print("| projection | M | cuBLAS ms | cuBLAS TFLOP/s | weight GB/s |")
    print("|---|---|---|---|---|")
    for name, n, k in PROJECTIONS:
        w = (torch.rand(n, k, device="cuda", dtype=torch.bfloat16) - 0.5) * 0.1
        for m in [1, 8, 64, 256, 1024, 4096, 16384]:
            if name == "lm_head" and m > 4096:
                continue
            x = (torch.rand(m, k, device="cuda", dtype=torch.bfloat16) - 0.5) * 0.1
            iters = 10 if m * n * k > 1 << 34 else 50
            ms = time_ms(lambda: x @ w.T, iters)
            print(f"| {name} {n}x{k} | {m} | {ms:.3f} | {2 * m * n * k / ms / 1e9:.0f} | {n * k * 2 / ms / 1e6:.0f} |")
    print("\n| projection | M | torch._scaled_mm fp8 ms (rowwise scales) | TFLOP/s |")
    print("|---|---|---|---|")
    for name, n, k in PROJECTIONS[:4]:
        w = ((torch.rand(n, k, device="cuda") - 0.5) * 400).to(torch.float8_e4m3fn)
        sw = torch.rand(1, n, device="cuda", dtype=torch.float32) * 1e-3
        for m in [64, 256, 1024, 4096, 16384]:
            x = ((torch.rand(m, k, device="cuda") - 0.5) * 400).to(torch.float8_e4m3fn)
            sx = torch.rand(m, 1, device="cuda", dtype=torch.float32) * 1e-3
            iters = 10 if m * n * k > 1 << 34 else 50
            try:
                ms = time_ms(lambda: torch._scaled_mm(x, w.t(), scale_a=sx, scale_b=sw, out_dtype=torch.bfloat16), iters)
            except RuntimeError as e:  # older torch: no rowwise scaling
                print(f"| {name} | {m} | {e} | |")
                break
            print(f"| {name} {n}x{k} | {m} | {ms:.3f} | {2 * m * n * k / ms / 1e9:.0f} |")


if __name__ == "__main__":
    main()
