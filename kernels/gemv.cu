// gemv: y[m, n] = sum_k x[m, k] * w[n, k] for a few rows m (decode: one row per running
// sequence), the linear layers' shape when the batch is small and the step is bound by reading
// the weights. w is the checkpoint's [out_features, in_features] row-major matrix.
//
// One warp per output column n (8 warps per block): each lane reads 8 consecutive weights per
// iteration with one 16-byte (f16/bf16) or two 16-byte (f32) loads, 4 iterations' loads in
// flight at once (the row count is a template parameter, dispatched once per launch), multiplies them with the
// same 8 elements of every x row (x is small and stays in L1/L2), and the warp reduces at the
// end. f32 accumulation. Rows of x and w may be padded (strides in elements). Requires
// k % 8 == 0, strides % 8 == 0, 16-byte aligned pointers and m <= EMBER_GEMV_MAX_M.
//
// Under a programmatic launch (common.cuh) a warp loads its first group of weights into
// registers, then waits for the kernels before it. The one-row entries let the kernels after
// them start once their last loads are issued (at batch 1, 2.5% faster than right after the
// wait); the multi-row ones right after the wait (there the late trigger took the bf16 entry
// from 80 to 86 registers, 2 blocks per SM instead of 3, and batch 8 ran 7% slower). An L2
// prefetch of the rows' starts before the wait measured slower at batch 1.

// Every entry calls ember_pdl_wait (see common.cuh) before it reads x or writes y.
#define EMBER_PDL_ENTRIES 1

#define EMBER_GEMV_MAX_M 8
#define EMBER_GEMV_WARPS 8
#define EMBER_GEMV_UNROLL 4

struct GemvParams {
    unsigned int m;
    unsigned int n;
    unsigned int k;
    unsigned int x_stride;  // elements between rows of x (>= k)
    unsigned int w_stride;  // elements between rows of w (>= k)
    unsigned int has_bias;  // add bias[n] before rounding
};

// The deferred RMSNorm of single-stream decode (crates/ember-kernels/src/deferred_norm.rs).
// Instead of a norm kernel between the o_proj (or down_proj) GEMV and the next GEMV:
// - the producer (one-row GEMV over a 4096-wide output, say) adds its rounded output to the
//   residual, writes the sum r, writes T(r * scale) for the next norm's scale, and writes one
//   partial sum of r*r per block (8 outputs each: no atomics, no fence, a fixed order);
// - the consumer (the next one-row GEMV, plain or gated) runs on T(r * scale) and multiplies
//   each dot product by 1 / sqrt(mean(r*r) + eps), which each warp sums from the partials
//   (512 floats for a 4096-wide row) once it has waited for the producer.
// So the norm's per-element 1/rms factor moves out of the sum; the result differs from the
// separate norm by the rounding of T(r * scale) against T(T(r / rms) * scale).
#define EMBER_GEMV_PLAIN 0
#define EMBER_GEMV_RESIDUAL_NORM 1  // producer epilogue
#define EMBER_GEMV_NORMED 2         // consumer prologue/epilogue
#define EMBER_GEMV_NORMED_ROPE 3    // consumer whose outputs are q/k/v: rotary + cache writes (gemv_rope.cu)

// The rotary epilogue's parameters (gemv_rope.cu, compiled after this file), and what it reads
// before the product: the rotation of this thread's pair and the token's cache slot.
template <typename T> struct GemvRope;
struct GemvRopeOperands {
    float c, s;
    int slot;
};

template <typename T>
struct GemvNorm {
    const T* residual;      // producer: [n], added to the output
    const float* scale;     // producer: [n], the next norm's scale (f32)
    T* residual_out;        // producer: [n], residual + output
    T* scaled;              // producer: [n], T(residual_out * scale)
    float* partials;        // producer: [n / 8], sum of residual_out^2 per block
    const float* sums;      // consumer: the producer's partials
    float* staged;          // consumer: EMBER_GEMV_MAX_PARTS floats of shared memory
    unsigned int parts;     // consumer: how many (a multiple of 4, at most EMBER_GEMV_MAX_PARTS)
    float eps;              // consumer
};

// The consumer's partials: copied into shared memory with cp.async right after the wait (one
// 16-byte copy per thread for up to 1024 partials, so no registers are held across the main
// loop and the load's latency hides behind it), summed by every warp after the loop. (Each
// warp loading and summing them from global memory before its loop measured the same.)
#define EMBER_GEMV_MAX_PARTS 1024

__device__ __forceinline__ void ember_stage_partials(float* staged, const float* __restrict__ sums, unsigned int parts) {
    for (unsigned int i = threadIdx.x * 4; i < parts; i += blockDim.x * 4) {
        const unsigned int dst = (unsigned int)__cvta_generic_to_shared(staged + i);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(sums + i) : "memory");
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// 1 / sqrt(mean + eps) of the staged partials (k: the norm's width), summed lane-strided in
// float4s and then across the warp: the same order in every warp. Every thread of the block
// must call it (it waits for the block's copies).
__device__ __forceinline__ float ember_staged_inv_rms(const float* staged, unsigned int parts, unsigned int k, float eps) {
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    __syncthreads();
    const unsigned int lane = threadIdx.x % EMBER_WARP;
    float t = 0.f;
    for (unsigned int i = lane * 4; i < parts; i += EMBER_WARP * 4) {
        const float4 v = *reinterpret_cast<const float4*>(staged + i);
        t += (v.x + v.y) + (v.z + v.w);
    }
    t = ember_warp_sum(t);
    // The approximate reciprocal square root (2 ulp): the IEEE division and square root of the
    // norm kernel put a longer dependent chain at the end of every warp.
    return rsqrtf(__fdividef(t, (float)k) + eps);
}

__device__ __forceinline__ void ember_load8(const float* p, float out[8]) {
    const float4 a = reinterpret_cast<const float4*>(p)[0];
    const float4 b = reinterpret_cast<const float4*>(p)[1];
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
}

__device__ __forceinline__ void ember_load8(const __half* p, float out[8]) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 f = __half22float2(h[i]);
        out[2 * i] = f.x;
        out[2 * i + 1] = f.y;
    }
}

__device__ __forceinline__ void ember_load8(const __nv_bfloat16* p, float out[8]) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 f = __bfloat1622float2(h[i]);
        out[2 * i] = f.x;
        out[2 * i + 1] = f.y;
    }
}

// The product for exactly M rows: with M a compile-time constant the rows' loads and FMAs are
// straight-line code (a runtime row count behind `if (m < p.m)` ran 1.2-1.8x slower at 1 row).
// EPI (one row only for the norm variants): EMBER_GEMV_PLAIN, or the producer / consumer of a
// deferred norm (above; both need p.n % EMBER_GEMV_WARPS == 0). The producer writes no y.
template <typename T, int M, int EPI = EMBER_GEMV_PLAIN>
__device__ void gemv_rows(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, const T* __restrict__ bias, const GemvParams p,
                          const GemvNorm<T> norm = {}, const GemvRope<T>* rope = nullptr) {
    static_assert(EPI == EMBER_GEMV_PLAIN || M == 1, "the deferred norm is for one row");
    constexpr bool NORMED = EPI == EMBER_GEMV_NORMED || EPI == EMBER_GEMV_NORMED_ROPE;
    const unsigned int warp = threadIdx.x / EMBER_WARP;
    const unsigned int lane = threadIdx.x % EMBER_WARP;
    unsigned int n = blockIdx.x * EMBER_GEMV_WARPS + warp;
    GemvRopeOperands rope_operands{0.f, 0.f, -1};
    if constexpr (EPI == EMBER_GEMV_NORMED_ROPE) {
        n = ember_rope_row(*rope, blockIdx.x, warp);
        rope_operands = ember_rope_operands(*rope);  // host-written inputs: before the wait
    }
    if (EPI == EMBER_GEMV_PLAIN && n >= p.n) {
        ember_pdl_wait();  // completes only after the kernel before (see ember_pdl_wait)
        return;
    }
    float acc[M];
#pragma unroll
    for (int m = 0; m < M; ++m) acc[m] = 0.f;
    const T* row = w + (size_t)n * p.w_stride;
    // x's 8 elements at k0 (for each row) times the weights wv, accumulated in k order.
    auto fma_rows = [&](unsigned int k0, const float wv[8]) {
#pragma unroll
        for (int m = 0; m < M; ++m) {
            float xv[8];
            ember_load8(x + (size_t)m * p.x_stride + k0, xv);
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[m] += wv[j] * xv[j];
        }
    };
    // EMBER_GEMV_UNROLL independent 16-byte weight loads in flight per lane before they are
    // used; the sums keep their order. The first group's loads go out before ember_pdl_wait:
    // the weights are no earlier kernel's output, so under a programmatic launch they stream
    // in while the kernel before finishes.
    constexpr unsigned int STEP = EMBER_WARP * 8;
    unsigned int k0 = lane * 8;
    float wv[EMBER_GEMV_UNROLL][8];
    const bool first_group = k0 + (EMBER_GEMV_UNROLL - 1) * STEP < p.k;
    if (first_group) {
#pragma unroll
        for (int u = 0; u < EMBER_GEMV_UNROLL; ++u) ember_load8(row + k0 + u * STEP, wv[u]);
    }
    ember_pdl_wait();
    if constexpr (M > 1) ember_pdl_trigger();
    float residual = 0.f, scale = 0.f;
    if constexpr (NORMED) ember_stage_partials(norm.staged, norm.sums, norm.parts);
    if constexpr (EPI == EMBER_GEMV_RESIDUAL_NORM) {
        if (lane == 0) {
            residual = ember_to_float(norm.residual[n]);
            scale = norm.scale[n];
        }
    }
    if (first_group) {
#pragma unroll
        for (int u = 0; u < EMBER_GEMV_UNROLL; ++u) fma_rows(k0 + u * STEP, wv[u]);
        k0 += EMBER_GEMV_UNROLL * STEP;
    }
    for (; k0 + (EMBER_GEMV_UNROLL - 1) * STEP < p.k; k0 += EMBER_GEMV_UNROLL * STEP) {
#pragma unroll
        for (int u = 0; u < EMBER_GEMV_UNROLL; ++u) ember_load8(row + k0 + u * STEP, wv[u]);
#pragma unroll
        for (int u = 0; u < EMBER_GEMV_UNROLL; ++u) fma_rows(k0 + u * STEP, wv[u]);
    }
    for (; k0 < p.k; k0 += STEP) {
        float wv[8];
        ember_load8(row + k0, wv);
        fma_rows(k0, wv);
    }
    if constexpr (M == 1) ember_pdl_trigger();
    if constexpr (EPI == EMBER_GEMV_RESIDUAL_NORM) {
        __shared__ float squares[EMBER_GEMV_WARPS];
        const float s = ember_warp_sum(acc[0]);
        if (lane == 0) {
            const float out = ember_round<T>(p.has_bias ? s + ember_to_float(bias[n]) : s);
            const T sum = ember_from_float<T>(__fadd_rn(residual, out));
            norm.residual_out[n] = sum;
            const float v = ember_to_float(sum);
            norm.scaled[n] = ember_from_float<T>(__fmul_rn(v, scale));
            squares[warp] = __fmul_rn(v, v);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            float t = 0.f;
#pragma unroll
            for (int i = 0; i < EMBER_GEMV_WARPS; ++i) t = __fadd_rn(t, squares[i]);
            norm.partials[blockIdx.x] = t;
        }
        return;
    }
    float inv_rms = 1.f;
    if constexpr (NORMED) inv_rms = ember_staged_inv_rms(norm.staged, norm.parts, p.k, norm.eps);
#pragma unroll
    for (int m = 0; m < M; ++m) {
        float s = ember_warp_sum(acc[m]);
        if constexpr (NORMED) s = __fmul_rn(s, inv_rms);
        if constexpr (EPI == EMBER_GEMV_NORMED_ROPE) {
            ember_rope_store(*rope, rope_operands, n, p.has_bias ? s + ember_to_float(bias[n]) : s);
        } else if (lane == 0) {
            y[(size_t)m * p.n + n] = ember_from_float<T>(p.has_bias ? s + ember_to_float(bias[n]) : s);
        }
    }
}

template <typename T>
__device__ void gemv(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, const T* __restrict__ bias, const GemvParams p) {
    switch (p.m) {
        case 1: gemv_rows<T, 1>(x, w, y, bias, p); break;
        case 2: gemv_rows<T, 2>(x, w, y, bias, p); break;
        case 3: gemv_rows<T, 3>(x, w, y, bias, p); break;
        case 4: gemv_rows<T, 4>(x, w, y, bias, p); break;
        case 5: gemv_rows<T, 5>(x, w, y, bias, p); break;
        case 6: gemv_rows<T, 6>(x, w, y, bias, p); break;
        case 7: gemv_rows<T, 7>(x, w, y, bias, p); break;
        default: gemv_rows<T, EMBER_GEMV_MAX_M>(x, w, y, bias, p); break;
    }
}

// 8 consecutive elements of T as raw 16-byte words (one for f16/bf16, two for f32), kept
// unconverted while their loads are in flight.
template <typename T>
struct EmberRaw8 {
    uint4 words[sizeof(T) / 2];
    __device__ __forceinline__ void load(const T* p) {
#pragma unroll
        for (int i = 0; i < (int)(sizeof(T) / 2); ++i) words[i] = reinterpret_cast<const uint4*>(p)[i];
    }
    __device__ __forceinline__ const T* elements() const { return reinterpret_cast<const T*>(words); }
};

struct GemvGatedParams {
    unsigned int n;  // outputs; w has 2n rows, gate rows first, then up rows
    unsigned int k;
    unsigned int x_stride;
    unsigned int w_stride;
    unsigned int has_bias;  // bias[2n], added to gate and up before rounding
    unsigned int activation;  // EMBER_ACT_* (common.cuh)
};

// The gated MLP's gate/up projection with act_and_mul fused in, for one row of x (single-stream
// decode): warp n computes gate row n and up row n + p.n of w and writes act(gate) * up to y[n],
// with gate and up first rounded to T as the unfused pair (GEMV, then layer_ops.cu's
// act_and_mul) rounds them, so the result is the same bits. One launch instead of two, and
// twice the weight loads in flight per warp. The weights stay raw 16-byte words until used
// (EMBER_GEMV_UNROLL per row in flight).
// NORMED: x is a deferred norm's T(r * scale) and both sums are scaled by its 1/rms (above).
template <typename T, bool NORMED = false>
__device__ void gemv_gated(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, const T* __restrict__ bias,
                           const GemvGatedParams p, const GemvNorm<T> norm = {}) {
    const unsigned int warp = threadIdx.x / EMBER_WARP;
    const unsigned int lane = threadIdx.x % EMBER_WARP;
    const unsigned int n = blockIdx.x * EMBER_GEMV_WARPS + warp;
    if (!NORMED && n >= p.n) {
        ember_pdl_wait();
        return;
    }
    const T* gate_row = w + (size_t)n * p.w_stride;
    const T* up_row = w + (size_t)(n + p.n) * p.w_stride;
    constexpr unsigned int STEP = EMBER_WARP * 8;
    constexpr unsigned int U = EMBER_GEMV_UNROLL;
    float acc_gate = 0.f, acc_up = 0.f;
    EmberRaw8<T> wg[U], wu[U];
    auto load = [&](unsigned int k0) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
            wg[u].load(gate_row + k0 + u * STEP);
            wu[u].load(up_row + k0 + u * STEP);
        }
    };
    auto fma = [&](unsigned int k0, const EmberRaw8<T>& g, const EmberRaw8<T>& u) {
        float xv[8], gv[8], uv[8];
        ember_load8(x + k0, xv);
        ember_load8(g.elements(), gv);
        ember_load8(u.elements(), uv);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            acc_gate += gv[j] * xv[j];
            acc_up += uv[j] * xv[j];
        }
    };
    unsigned int k0 = lane * 8;
    const bool first_group = k0 + (U - 1) * STEP < p.k;
    if (first_group) load(k0);
    ember_pdl_wait();
    if constexpr (NORMED) ember_stage_partials(norm.staged, norm.sums, norm.parts);
    if (first_group) {
#pragma unroll
        for (int u = 0; u < U; ++u) fma(k0 + u * STEP, wg[u], wu[u]);
        k0 += U * STEP;
    }
    for (; k0 + (U - 1) * STEP < p.k; k0 += U * STEP) {
        load(k0);
#pragma unroll
        for (int u = 0; u < U; ++u) fma(k0 + u * STEP, wg[u], wu[u]);
    }
    for (; k0 < p.k; k0 += STEP) {
        EmberRaw8<T> g, u;
        g.load(gate_row + k0);
        u.load(up_row + k0);
        fma(k0, g, u);
    }
    ember_pdl_trigger();
    float gate = ember_warp_sum(acc_gate), up = ember_warp_sum(acc_up);
    if constexpr (NORMED) {
        const float inv_rms = ember_staged_inv_rms(norm.staged, norm.parts, p.k, norm.eps);
        gate = __fmul_rn(gate, inv_rms);
        up = __fmul_rn(up, inv_rms);
    }
    if (lane == 0) {
        const float g = ember_round<T>(p.has_bias ? gate + ember_to_float(bias[n]) : gate);
        const float u = ember_round<T>(p.has_bias ? up + ember_to_float(bias[n + p.n]) : up);
        y[n] = ember_act_and_mul<T>(g, u, p.activation);
    }
}

struct GemvNormedParams {
    GemvParams gemv;
    unsigned int parts;
    float eps;
};

struct GemvGatedNormedParams {
    GemvGatedParams gemv;
    unsigned int parts;
    float eps;
};

// The gated normed entry takes 95 registers, so 2 blocks per SM: held to 3 blocks (80
// registers) it spilled and batch 1 ran 2-3% slower (docs/perf.md, ninth pass).
// ember_gemv_<dtype>: any row count up to EMBER_GEMV_MAX_M, at most 80 registers (3 blocks per
// SM: at 86 the bf16 entry held 2 and batch 8 ran 7% slower); ember_gemv_<dtype>_m1: exactly one
// row (single-stream decode), alone in its entry so that it gets its own register allocation
// (under the switch it ran ~10% slower on the largest shapes).
#define EMBER_GEMV(SUFFIX, T)                                                                                   \
    extern "C" __global__ void __launch_bounds__(EMBER_GEMV_WARPS * EMBER_WARP)                                 \
        ember_gemv_##SUFFIX(const T* x, const T* w, T* y, const T* bias, const GemvParams p) {                  \
        if constexpr (ember_compiles("ember_gemv_" #SUFFIX))                                                    \
            gemv<T>(x, w, y, bias, p);                                                                          \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(EMBER_GEMV_WARPS * EMBER_WARP)                                 \
        ember_gemv_##SUFFIX##_m1(const T* x, const T* w, T* y, const T* bias, const GemvParams p) {             \
        if constexpr (ember_compiles("ember_gemv_" #SUFFIX "_m1"))                                              \
            gemv_rows<T, 1>(x, w, y, bias, p);                                                                  \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(EMBER_GEMV_WARPS * EMBER_WARP)                                 \
        ember_gemv_##SUFFIX##_gated(const T* x, const T* w, T* y, const T* bias, const GemvGatedParams p) {     \
        if constexpr (ember_compiles("ember_gemv_" #SUFFIX "_gated"))                                           \
            gemv_gated<T>(x, w, y, bias, p);                                                                    \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(EMBER_GEMV_WARPS * EMBER_WARP)                                 \
        ember_gemv_##SUFFIX##_m1_residual_norm(const T* x, const T* w, const T* bias, const T* residual,        \
                                               const float* scale, T* residual_out, T* scaled, float* partials, \
                                               const GemvParams p) {                                            \
        GemvNorm<T> norm{residual, scale, residual_out, scaled, partials, nullptr, nullptr, 0, 0.f};                     \
        if constexpr (ember_compiles("ember_gemv_" #SUFFIX "_m1_residual_norm"))                                         \
            gemv_rows<T, 1, EMBER_GEMV_RESIDUAL_NORM>(x, w, nullptr, bias, p, norm);                                     \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(EMBER_GEMV_WARPS * EMBER_WARP)                                 \
        ember_gemv_##SUFFIX##_m1_normed(const T* x, const T* w, T* y, const T* bias, const float* sums,         \
                                        const GemvNormedParams p) {                                             \
        __shared__ __align__(16) float staged[EMBER_GEMV_MAX_PARTS];                                           \
        GemvNorm<T> norm{nullptr, nullptr, nullptr, nullptr, nullptr, sums, staged, p.parts, p.eps};            \
        if constexpr (ember_compiles("ember_gemv_" #SUFFIX "_m1_normed"))                                       \
            gemv_rows<T, 1, EMBER_GEMV_NORMED>(x, w, y, bias, p.gemv, norm);                                    \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(EMBER_GEMV_WARPS * EMBER_WARP)                                 \
        ember_gemv_##SUFFIX##_gated_normed(const T* x, const T* w, T* y, const T* bias, const float* sums,      \
                                           const GemvGatedNormedParams p) {                                     \
        __shared__ __align__(16) float staged[EMBER_GEMV_MAX_PARTS];                                           \
        GemvNorm<T> norm{nullptr, nullptr, nullptr, nullptr, nullptr, sums, staged, p.parts, p.eps};            \
        if constexpr (ember_compiles("ember_gemv_" #SUFFIX "_gated_normed"))                                    \
            gemv_gated<T, true>(x, w, y, bias, p.gemv, norm);                                                   \
    }

EMBER_GEMV(f32, float)
EMBER_GEMV(f16, __half)
EMBER_GEMV(bf16, __nv_bfloat16)
