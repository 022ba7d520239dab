//! The CUDA kernels one at a time on the Llama-3-8B shapes, in bf16, each timed over many
//! launches between two device syncs: the linear layers' product (`LinearBackend::linear`:
//! GEMV for up to 8 rows, above that `kernels/gemm_sm90.cu` on Hopper, `kernels/gemm.cu`
//! elsewhere or with `EMBER_CUDA_GEMM=mma`; burn's matmul beside it with `EMBER_BENCH_BURN=1`),
//! the FP8 product of `--quantization fp8` (activation quantization included), the fused layer ops,
//! and the host cost of one launch. `benches/torch_ops.py` times cuBLAS and PyTorch's eager
//! ops on the same shapes, so the two tables are read side by side (docs/perf.md).
//!
//! ```sh
//! cargo bench --bench cuda_ops              # on a machine with an NVIDIA GPU
//! ```
//! (`scripts/gpu_bench.sh` carries the built binary to the GPU machine and runs it there.)

use std::time::Instant;

use burn_tensor::{DType, Int, Tensor, TensorData, backend::Backend};
use ember::CudaBackend as B;
use ember_kernels::{Activation, LayerOpsBackend, LinearBackend, NormStyle, QkvShape, RmsNormWeights};

type Device = <B as burn_tensor::backend::BackendTypes>::Device;

const HIDDEN: usize = 4096;
/// (name, out_features, in_features) of Llama-3-8B's projections (q/k/v and gate/up fused).
const PROJECTIONS: [(&str, usize, usize); 5] =
    [("qkv", 6144, 4096), ("o", 4096, 4096), ("gate_up", 28672, 4096), ("down", 4096, 14336), ("lm_head", 128256, 4096)];

/// Mean milliseconds of `f` over `iters` runs after 3 warm-ups (device-synced at both ends).
fn time<O>(device: &Device, iters: usize, mut f: impl FnMut() -> O) -> f64 {
    for _ in 0..3 {
        drop(f());
    }
    B::sync(device).unwrap();
    let start = Instant::now();
    for _ in 0..iters {
        drop(f());
    }
    B::sync(device).unwrap();
    start.elapsed().as_secs_f64() * 1e3 / iters as f64
}

fn random(device: &Device, dims: [usize; 2], seed: u64) -> Tensor<B, 2> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let values: Vec<f32> = (0..dims[0] * dims[1])
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
        })
        .collect();
    Tensor::from_data(TensorData::new(values, dims), (device, DType::BF16))
}

fn linear_table(device: &Device) {
    // burn's matmul column is slow to fill (5-20x the kernels' time): only with EMBER_BENCH_BURN=1.
    let compare_burn = std::env::var("EMBER_BENCH_BURN").is_ok_and(|v| v == "1");
    println!("| projection | M | Ember ms | Ember TFLOP/s | Ember weight GB/s | burn matmul ms | burn TFLOP/s |");
    println!("|---|---|---|---|---|---|---|");
    for (name, n, k) in PROJECTIONS {
        let w = random(device, [n, k], n as u64);
        for m in [1usize, 8, 64, 256, 1024, 4096, 16384] {
            if name == "lm_head" && m > 4096 {
                continue; // the LM head only sees the rows that sample
            }
            let x = random(device, [m, k], m as u64);
            let iters = if m * n * k > 1 << 34 { 10 } else { 50 };
            let ours = time(device, iters, || <B as LinearBackend>::linear(x.clone(), w.clone(), None));
            let flops = 2.0 * (m * n * k) as f64;
            let tflops = |ms: f64| flops / ms / 1e9;
            let burn = if m > 8 && compare_burn { Some(time(device, iters, || x.clone().matmul(w.clone().transpose()))) } else { None };
            let gbs = (n * k * 2) as f64 / ours / 1e6;
            let burn_cols = burn.map_or("| | ".to_string(), |b| format!("| {b:.3} | {:.0} ", tflops(b)));
            println!("| {name} {n}x{k} | {m} | {ours:.3} | {:.0} | {gbs:.0} {burn_cols}|", tflops(ours));
        }
    }
}

/// `--quantization fp8`'s product (`LinearBackend::linear_fp8`: the activations' per-token
/// quantization, then the e4m3 Hopper GEMM) on the layers' projections, above the GEMV's rows.
fn fp8_table(device: &Device) {
    println!("| projection | M | Ember fp8 ms (quantize + GEMM) | Ember fp8 TFLOP/s |");
    println!("|---|---|---|---|");
    for (name, n, k) in PROJECTIONS.into_iter().filter(|(name, ..)| *name != "lm_head") {
        let Some(w) = <B as LinearBackend>::quantize_weight_fp8(&random(device, [n, k], n as u64)) else {
            println!("(no FP8 product on this device)");
            return;
        };
        for m in [64usize, 256, 1024, 4096, 16384] {
            let x = random(device, [m, k], m as u64);
            let iters = if m * n * k > 1 << 34 { 10 } else { 50 };
            let ms = time(device, iters, || <B as LinearBackend>::linear_fp8(&x, &w, None).expect("fp8 product"));
            println!("| {name} {n}x{k} | {m} | {ms:.3} | {:.0} |", 2.0 * (m * n * k) as f64 / ms / 1e9);
        }
    }
}

fn layer_ops_table(device: &Device) {
    let norm = RmsNormWeights {
        scale: Tensor::<B, 1>::from_data(TensorData::new(vec![1.0f32; HIDDEN], [HIDDEN]), (device, DType::F32)),
        eps: 1e-5,
        style: NormStyle::Weight,
    };
    let shape = QkvShape { num_heads: 32, num_kv_heads: 8, head_dim: 128 };
    let table = Tensor::<B, 2>::from_data(TensorData::new(vec![0.5f32; 8192 * 64], [8192, 64]), (device, DType::F32));
    println!("| op | rows | ms | GB/s moved |");
    println!("|---|---|---|---|");
    for rows in [1usize, 256, 4096] {
        let x = random(device, [rows, HIDDEN], 1);
        let r = random(device, [rows, HIDDEN], 2);
        let gate_up = random(device, [rows, 2 * 14336], 3);
        let qkv = random(device, [rows, 6144], 4);
        let positions = Tensor::<B, 1, Int>::from_data(TensorData::new((0..rows as i32).collect::<Vec<_>>(), [rows]), (device, DType::I32));
        let rope = B::rope_for_step(table.clone(), table.clone(), positions, DType::BF16);
        let row_bytes = (rows * HIDDEN * 2) as f64;
        let cases: [(&str, f64, f64); 4] = [
            ("rms_norm", 2.0 * row_bytes, time(device, 200, || B::rms_norm(x.clone(), &norm))),
            ("fused_add_rms_norm", 4.0 * row_bytes, time(device, 200, || B::fused_add_rms_norm(x.clone(), r.clone(), &norm))),
            ("silu_and_mul", (rows * 3 * 14336 * 2) as f64, time(device, 200, || B::act_and_mul(gate_up.clone(), Activation::Silu))),
            ("split_qkv_rope", (rows * 6144 * 4) as f64, time(device, 200, || B::split_qkv_rope(qkv.clone(), shape, None, &rope))),
        ];
        for (name, bytes, ms) in cases {
            println!("| {name} | {rows} | {ms:.4} | {:.0} |", bytes / ms / 1e6);
        }
    }
}

/// Host cost of enqueueing one small kernel, and the device's rate of running them.
fn launch_overhead(device: &Device) {
    let norm = RmsNormWeights {
        scale: Tensor::<B, 1>::from_data(TensorData::new(vec![1.0f32; HIDDEN], [HIDDEN]), (device, DType::F32)),
        eps: 1e-5,
        style: NormStyle::Weight,
    };
    let x = random(device, [1, HIDDEN], 5);
    let n = 2000;
    time(device, 10, || B::rms_norm(x.clone(), &norm));
    let start = Instant::now();
    for _ in 0..n {
        drop(B::rms_norm(x.clone(), &norm));
    }
    let enqueue = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    B::sync(device).unwrap();
    let total = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("launch overhead (rms_norm, 1 row, {n} launches): {enqueue:.1} us to enqueue each, {total:.1} us each until the device finished");
    let y = random(device, [1, HIDDEN], 6);
    let burn = time(device, n, || x.clone() + y.clone()) * 1e3;
    println!("burn elementwise add of 1x{HIDDEN} (one burn op): {burn:.1} us each");
}

fn main() {
    let device = Default::default();
    println!("## linear layers (bf16), `LinearBackend::linear` vs burn's matmul");
    linear_table(&device);
    println!("\n## linear layers in FP8 (`--quantization fp8`)");
    fp8_table(&device);
    if std::env::args().any(|a| a == "linear-only") {
        return;
    }
    println!("\n## fused layer ops (bf16)");
    layer_ops_table(&device);
    println!();
    launch_overhead(&device);
}
