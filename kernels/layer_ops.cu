// The decoder's small per-layer ops, each one launch (vLLM fuses the same ones): RMSNorm with an
// optional residual add before it, `act(gate) * up`, and the split of the fused q/k/v
// projection with Qwen3's optional per-head q/k RMSNorm and the rotary embedding.
//
// Every op rounds to the element type T exactly where transformers rounds in T (and computes in
// f32 where it upcasts), so f16/bf16 results are the same bits as the reference up to the
// order of the f32 sums. Products and sums that transformers rounds separately use __fmul_rn /
// __fadd_rn so the compiler cannot contract them into an FMA.

// Every entry calls ember_pdl_enter first (see common.cuh): graphs may launch them early.
#define EMBER_PDL_ENTRIES 1

#define EMBER_NORM_THREADS 256
#define EMBER_NORM_MAX_VECS 8     // 16-byte vectors per thread the vector path holds in registers
#define EMBER_NORM_WEIGHT 0        // x̂ cast to T, times T(scale)
#define EMBER_NORM_ONE_PLUS 1      // x̂ times scale (already 1 + w) in f32, then cast

struct RmsNormParams {
    unsigned int rows;
    unsigned int dim;
    unsigned int style;
    unsigned int has_residual;
    float eps;
    unsigned int x_stride;         // elements between rows of x (rows may be padded)
    unsigned int residual_stride;  // elements between rows of residual
    unsigned int pad;
};

__device__ __forceinline__ float ember_block_sum(float v, float* scratch) {
    const unsigned int lane = threadIdx.x % EMBER_WARP, warp = threadIdx.x / EMBER_WARP;
    v = ember_warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = 0.f;
    for (unsigned int w = 0; w < blockDim.x / EMBER_WARP; ++w) total += scratch[w];
    return total;
}

template <typename T>
__device__ __forceinline__ T ember_apply_norm(float x, float inv_rms_div, float scale, unsigned int style) {
    const float normed = x / inv_rms_div;  // x / sqrt(mean + eps), an IEEE division like the reference
    if (style == EMBER_NORM_WEIGHT) return ember_from_float<T>(__fmul_rn(ember_round<T>(normed), ember_round<T>(scale)));
    return ember_from_float<T>(__fmul_rn(normed, scale));
}

// One block per row. With has_residual: sum = T(x + residual) is written to residual_out and
// normalised; otherwise x is. Each thread re-reads only the elements it wrote. Outputs are
// dense; inputs may have padded rows. The element-at-a-time path, for rows the vector path
// below does not take.
template <typename T>
__device__ void rms_norm_scalar(const T* __restrict__ x_row, const T* __restrict__ residual_row, const float* __restrict__ scale,
                                T* __restrict__ out_row, T* __restrict__ residual_out_row, const RmsNormParams p, float* scratch) {
    float sq = 0.f;
    for (unsigned int i = threadIdx.x; i < p.dim; i += blockDim.x) {
        float v = ember_to_float(x_row[i]);
        if (p.has_residual) {
            const T sum = ember_from_float<T>(__fadd_rn(ember_to_float(residual_row[i]), v));
            residual_out_row[i] = sum;
            v = ember_to_float(sum);
        }
        sq = __fmaf_rn(v, v, sq);
    }
    const float total = ember_block_sum(sq, scratch);
    const float root = __fsqrt_rn(__fadd_rn(__fdiv_rn(total, (float)p.dim), p.eps));
    for (unsigned int i = threadIdx.x; i < p.dim; i += blockDim.x) {
        const float v = ember_to_float(p.has_residual ? residual_out_row[i] : x_row[i]);
        out_row[i] = ember_apply_norm<T>(v, root, scale[i], p.style);
    }
}

// The same arithmetic with the row held in registers: each thread loads its (up to
// EMBER_NORM_MAX_VECS) 16-byte vectors of x and residual at once, so a row costs one memory
// latency instead of one per element (a 4096-wide row took 15 us element by element at batch 1).
// Needs 16-byte aligned rows of a multiple of 16 bytes, and dim <= threads * MAX_VECS * E.
template <typename T>
__device__ void rms_norm_vector(const T* __restrict__ x_row, const T* __restrict__ residual_row, const float* __restrict__ scale,
                                T* __restrict__ out_row, T* __restrict__ residual_out_row, const RmsNormParams p, float* scratch) {
    constexpr int E = 16 / (int)sizeof(T);
    const unsigned int nvec = p.dim / E;
    uint4 xv[EMBER_NORM_MAX_VECS], rv[EMBER_NORM_MAX_VECS];
#pragma unroll
    for (int j = 0; j < EMBER_NORM_MAX_VECS; ++j) {
        const unsigned int vi = threadIdx.x + j * blockDim.x;
        if (vi < nvec) {
            xv[j] = reinterpret_cast<const uint4*>(x_row)[vi];
            if (p.has_residual) rv[j] = reinterpret_cast<const uint4*>(residual_row)[vi];
        }
    }
    float vals[EMBER_NORM_MAX_VECS][E];
    float sq = 0.f;
#pragma unroll
    for (int j = 0; j < EMBER_NORM_MAX_VECS; ++j) {
        const unsigned int vi = threadIdx.x + j * blockDim.x;
        if (vi < nvec) {
            const T* xe = reinterpret_cast<const T*>(&xv[j]);
            const T* re = reinterpret_cast<const T*>(&rv[j]);
            uint4 sums;
            T* se = reinterpret_cast<T*>(&sums);
#pragma unroll
            for (int e = 0; e < E; ++e) {
                float v = ember_to_float(xe[e]);
                if (p.has_residual) {
                    se[e] = ember_from_float<T>(__fadd_rn(ember_to_float(re[e]), v));
                    v = ember_to_float(se[e]);
                }
                vals[j][e] = v;
                sq = __fmaf_rn(v, v, sq);
            }
            if (p.has_residual) reinterpret_cast<uint4*>(residual_out_row)[vi] = sums;
        }
    }
    const float total = ember_block_sum(sq, scratch);
    const float root = __fsqrt_rn(__fadd_rn(__fdiv_rn(total, (float)p.dim), p.eps));
#pragma unroll
    for (int j = 0; j < EMBER_NORM_MAX_VECS; ++j) {
        const unsigned int vi = threadIdx.x + j * blockDim.x;
        if (vi < nvec) {
            uint4 o;
            T* oe = reinterpret_cast<T*>(&o);
#pragma unroll
            for (int e = 0; e < E; ++e) oe[e] = ember_apply_norm<T>(vals[j][e], root, scale[vi * E + e], p.style);
            reinterpret_cast<uint4*>(out_row)[vi] = o;
        }
    }
}

template <typename T>
__device__ void rms_norm(const T* __restrict__ x, const T* __restrict__ residual, const float* __restrict__ scale,
                         T* __restrict__ out, T* __restrict__ residual_out, const RmsNormParams p) {
    __shared__ float scratch[EMBER_NORM_THREADS / EMBER_WARP];
    const size_t row = (size_t)blockIdx.x * p.dim;
    const T* x_row = x + (size_t)blockIdx.x * p.x_stride;
    const T* residual_row = residual + (size_t)blockIdx.x * p.residual_stride;
    constexpr unsigned int E = 16 / sizeof(T);
    const size_t addresses = (size_t)x_row | (size_t)residual_row | (size_t)(out + row) | (size_t)(residual_out + row);
    const bool vector = (addresses % 16 == 0) && p.dim % E == 0 && p.dim <= blockDim.x * EMBER_NORM_MAX_VECS * E;
    if (vector) rms_norm_vector<T>(x_row, residual_row, scale, out + row, residual_out + row, p, scratch);
    else rms_norm_scalar<T>(x_row, residual_row, scale, out + row, residual_out + row, p, scratch);
}

#define EMBER_ACT_THREADS 256

struct ActAndMulParams {
    unsigned int rows;
    unsigned int n;  // output columns; gate_up has 2n
    unsigned int activation;
    unsigned int in_stride;  // elements between rows of gate_up (>= 2n)
};

// grid (ceil(n / (threads * VEC)), rows): VEC consecutive output elements per thread. VEC = 8
// (the `_v8` entries) moves 16 bytes (f16/bf16) per load and store; it requires n % 8 == 0,
// in_stride % 8 == 0 and 16-byte aligned buffers (the launch checks).
template <typename T, int VEC>
__device__ void act_and_mul(const T* __restrict__ gate_up, T* __restrict__ out, const ActAndMulParams p) {
    const unsigned int col = (blockIdx.x * blockDim.x + threadIdx.x) * VEC;
    if (col >= p.n) return;
    const size_t row = blockIdx.y;
    const T* gate_row = gate_up + row * p.in_stride + col;
    T gate[VEC], up[VEC], result[VEC];
    if constexpr (VEC == 1) {
        gate[0] = gate_row[0];
        up[0] = gate_row[p.n];
    } else {
        static_assert((VEC * sizeof(T)) % 16 == 0, "vectors of whole 16-byte words");
#pragma unroll
        for (int w = 0; w < (int)(VEC * sizeof(T) / 16); ++w) {
            reinterpret_cast<uint4*>(gate)[w] = reinterpret_cast<const uint4*>(gate_row)[w];
            reinterpret_cast<uint4*>(up)[w] = reinterpret_cast<const uint4*>(gate_row + p.n)[w];
        }
    }
#pragma unroll
    for (int i = 0; i < VEC; ++i)
        result[i] = ember_act_and_mul<T>(ember_to_float(gate[i]), ember_to_float(up[i]), p.activation);
    T* dst = out + row * p.n + col;
    if constexpr (VEC == 1) {
        dst[0] = result[0];
    } else {
#pragma unroll
        for (int w = 0; w < (int)(VEC * sizeof(T) / 16); ++w) reinterpret_cast<uint4*>(dst)[w] = reinterpret_cast<const uint4*>(result)[w];
    }
}

#define EMBER_ROPE_WARPS 4

struct SplitQkvRopeParams {
    unsigned int heads;
    unsigned int kv_heads;
    unsigned int head_dim;
    unsigned int qkv_stride;    // elements between rows of qkv (>= (heads + 2 kv_heads) * head_dim)
    unsigned int table_stride;  // elements between rows of the cos/sin tables (>= head_dim / 2)
    unsigned int has_qk_norm;
    unsigned int norm_style;
    float eps;
};

// grid (tokens, ceil((heads + 2 kv_heads) / EMBER_ROPE_WARPS)); one warp per head. q and k heads
// are (optionally) RMS-normed over head_dim, then rotated: out1 = x1 c - x2 s, out2 = x2 c + x1 s
// with c, s rounded to T and each product rounded to T (transformers' q * cos + rotate_half(q) *
// sin in T). v heads are copied. With TO_CACHE (reshape_and_cache fused in), k and v heads go
// straight into their slots of the paged caches ([num_blocks, block_size, kv_heads, head_dim];
// a negative slot is padding and writes nothing) instead of the k and v outputs.
template <typename T, bool TO_CACHE>
__device__ void split_qkv_rope(const T* __restrict__ qkv, const float* __restrict__ cos_table,
                               const float* __restrict__ sin_table, const int* __restrict__ positions,
                               const float* __restrict__ q_scale, const float* __restrict__ k_scale,
                               T* __restrict__ q, T* __restrict__ k, T* __restrict__ v, const int* __restrict__ slot_mapping,
                               const SplitQkvRopeParams p) {
    const unsigned int lane = threadIdx.x % EMBER_WARP;
    const unsigned int head = blockIdx.y * EMBER_ROPE_WARPS + threadIdx.x / EMBER_WARP;
    const unsigned int token = blockIdx.x;
    const unsigned int d = p.head_dim, half = d / 2;
    if (head >= p.heads + 2 * p.kv_heads) return;
    const T* src = qkv + (size_t)token * p.qkv_stride + (size_t)head * d;
    // Row of k and v: the token's own, or its cache slot.
    size_t kv_row = token;
    if (TO_CACHE && head >= p.heads) {
        const int slot = slot_mapping[token];
        if (slot < 0) return;
        kv_row = (size_t)slot;
    }
    if (head >= p.heads + p.kv_heads) {
        T* dst = v + (kv_row * p.kv_heads + (head - p.heads - p.kv_heads)) * d;
        for (unsigned int i = lane; i < d; i += EMBER_WARP) dst[i] = src[i];
        return;
    }
    const bool is_q = head < p.heads;
    T* dst = is_q ? q + ((size_t)token * p.heads + head) * d : k + (kv_row * p.kv_heads + (head - p.heads)) * d;
    float root = 1.f;
    if (p.has_qk_norm) {
        float sq = 0.f;
        for (unsigned int i = lane; i < d; i += EMBER_WARP) {
            const float x = ember_to_float(src[i]);
            sq = __fmaf_rn(x, x, sq);
        }
        root = __fsqrt_rn(__fadd_rn(__fdiv_rn(ember_warp_sum(sq), (float)d), p.eps));
    }
    const float* scale = is_q ? q_scale : k_scale;
    const size_t table_row = (size_t)positions[token] * p.table_stride;
    for (unsigned int i = lane; i < half; i += EMBER_WARP) {
        float x1 = ember_to_float(src[i]);
        float x2 = ember_to_float(src[i + half]);
        if (p.has_qk_norm) {
            x1 = ember_to_float(ember_apply_norm<T>(x1, root, scale[i], p.norm_style));
            x2 = ember_to_float(ember_apply_norm<T>(x2, root, scale[i + half], p.norm_style));
        }
        const float c = ember_round<T>(cos_table[table_row + i]);
        const float s = ember_round<T>(sin_table[table_row + i]);
        dst[i] = ember_from_float<T>(__fsub_rn(ember_round<T>(__fmul_rn(x1, c)), ember_round<T>(__fmul_rn(x2, s))));
        dst[i + half] = ember_from_float<T>(__fadd_rn(ember_round<T>(__fmul_rn(x2, c)), ember_round<T>(__fmul_rn(x1, s))));
    }
}

#define EMBER_LAYER_OPS(SUFFIX, T)                                                                               \
    extern "C" __global__ void __launch_bounds__(EMBER_NORM_THREADS) ember_rms_norm_##SUFFIX(                   \
        const T* x, const T* residual, const float* scale, T* out, T* residual_out, const RmsNormParams p) {     \
        ember_pdl_enter();                                                                                      \
        if constexpr (ember_compiles("ember_rms_norm_" #SUFFIX))                                                \
            rms_norm<T>(x, residual, scale, out, residual_out, p);                                              \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(EMBER_ACT_THREADS)                                             \
        ember_act_and_mul_##SUFFIX(const T* gate_up, T* out, const ActAndMulParams p) {                         \
        ember_pdl_enter();                                                                                      \
        if constexpr (ember_compiles("ember_act_and_mul_" #SUFFIX))                                             \
            act_and_mul<T, 1>(gate_up, out, p);                                                                 \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(EMBER_ACT_THREADS)                                             \
        ember_act_and_mul_##SUFFIX##_v8(const T* gate_up, T* out, const ActAndMulParams p) {                    \
        ember_pdl_enter();                                                                                      \
        if constexpr (ember_compiles("ember_act_and_mul_" #SUFFIX "_v8"))                                       \
            act_and_mul<T, 8>(gate_up, out, p);                                                                 \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(EMBER_ROPE_WARPS * EMBER_WARP) ember_split_qkv_rope_##SUFFIX(  \
        const T* qkv, const float* cos_table, const float* sin_table, const int* positions,                     \
        const float* q_scale, const float* k_scale, T* q, T* k, T* v, const SplitQkvRopeParams p) {             \
        ember_pdl_enter();                                                                                      \
        if constexpr (ember_compiles("ember_split_qkv_rope_" #SUFFIX))                                          \
            split_qkv_rope<T, false>(qkv, cos_table, sin_table, positions, q_scale, k_scale, q, k, v, nullptr, p);      \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(EMBER_ROPE_WARPS * EMBER_WARP)                                 \
        ember_split_qkv_rope_cache_##SUFFIX(const T* qkv, const float* cos_table, const float* sin_table,        \
                                            const int* positions, const float* q_scale, const float* k_scale,   \
                                            T* q, T* key_cache, T* value_cache, const int* slot_mapping,        \
                                            const SplitQkvRopeParams p) {                                       \
        ember_pdl_enter();                                                                                      \
        if constexpr (ember_compiles("ember_split_qkv_rope_cache_" #SUFFIX))                                    \
            split_qkv_rope<T, true>(qkv, cos_table, sin_table, positions, q_scale, k_scale, q, key_cache,       \
                                value_cache, slot_mapping, p);                                                  \
    }

EMBER_LAYER_OPS(f32, float)
EMBER_LAYER_OPS(f16, __half)
EMBER_LAYER_OPS(bf16, __nv_bfloat16)
