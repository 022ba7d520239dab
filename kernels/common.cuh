// Shared helpers for Ember's CUDA kernels: element conversions for f32 / f16 / bf16 and warp
// reductions. NVRTC compiles each kernel file with this text prepended (the Rust side
// concatenates them), so there is no #include of project headers.
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#define EMBER_WARP 32

// NVRTC has no <math.h> macros.
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float ember_to_float(float x) { return x; }
__device__ __forceinline__ float ember_to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float ember_to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T ember_from_float(float x);
template <> __device__ __forceinline__ float ember_from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __half ember_from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 ember_from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// x rounded to T's precision (as transformers rounds an intermediate in T).
template <typename T> __device__ __forceinline__ float ember_round(float x) { return ember_to_float(ember_from_float<T>(x)); }

// The gated MLP's activations (layer_ops.cu's act_and_mul, and the gate/up GEMV of gemv.cu).
#define EMBER_ACT_SILU 0
#define EMBER_ACT_GELU_TANH 1

__device__ __forceinline__ float ember_activate(float x, unsigned int activation) {
    if (activation == EMBER_ACT_SILU) return __fdiv_rn(x, __fadd_rn(1.f, expf(-x)));
    // gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    const float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.f + tanhf(inner));
}

// act(gate) * up from the two values in T: act is rounded to T before the product, as
// transformers computes act_fn(gate_proj(x)) * up_proj(x) in T.
template <typename T>
__device__ __forceinline__ T ember_act_and_mul(float gate, float up, unsigned int activation) {
    return ember_from_float<T>(__fmul_rn(ember_round<T>(ember_activate(gate, activation)), up));
}

__device__ __forceinline__ float ember_warp_sum(float v) {
#pragma unroll
    for (int offset = EMBER_WARP / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float ember_warp_max(float v) {
#pragma unroll
    for (int offset = EMBER_WARP / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Programmatic dependent launch (Hopper and later). The decode step graphs launch the kernels
// of files marked `#define EMBER_PDL_ENTRIES` with the programmatic stream-serialization
// attribute (crates/ember-kernels/src/cuda/step_graph.rs): such a kernel may be scheduled
// while the kernel before it is still running, once every block of that kernel has triggered
// (ember_pdl_trigger) or exited. ember_pdl_wait returns when the previous kernel has completed
// and its writes are visible, so every entry of a marked file waits before it reads anything an
// earlier kernel wrote or writes anything, on every path that touches memory (a kernel
// completes only after its predecessor did, so the wait also covers all kernels before).
// Outside such a launch (cubecl's eager launches, older GPUs) both are no-ops.
__device__ __forceinline__ void ember_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void ember_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// The entry of a short kernel (norms, rotary, cache writes, attention): trigger first, then
// wait. A chain of short kernels is thereby all scheduled at once, and the GEMV after it is
// resident with its first weight loads in flight while the chain runs (gemv.cu); the GEMV
// triggers only once its own loads are issued, so the chain does not run ahead into the next
// GEMV. (The Rust side defines EMBER_PDL_WAIT_FIRST under EMBER_PDL_ORDER=wait_first, to
// compare.)
__device__ __forceinline__ void ember_pdl_enter() {
#ifdef EMBER_PDL_WAIT_FIRST
    ember_pdl_wait();
    ember_pdl_trigger();
#else
    ember_pdl_trigger();
    ember_pdl_wait();
#endif
}

// Whether the entry point `name` is the one being compiled. The CUDA backend compiles each entry
// on its own, with EMBER_KERNEL_ENTRY defined to its name (raw_kernel.rs); a file that defines
// many entries wraps each body in `if constexpr (ember_compiles("..."))`, so the others compile
// to empty functions (kernels/gemv.cu: 3.9 s whole, 0.1 s for one entry). Without the define
// (scripts/nvrtc_check.py) every entry compiles.
__host__ __device__ constexpr bool ember_same_name(const char* a, const char* b) {
    return *a == *b && (*a == 0 || ember_same_name(a + 1, b + 1));
}
#ifdef EMBER_KERNEL_ENTRY
__host__ __device__ constexpr bool ember_compiles(const char* name) { return ember_same_name(name, EMBER_KERNEL_ENTRY); }
#else
__host__ __device__ constexpr bool ember_compiles(const char*) { return true; }
#endif
