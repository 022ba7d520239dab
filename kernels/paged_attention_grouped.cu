// Grouped paged attention: the same contract as kernels/paged_attention.cu (varlen decode and
// prefill over the block KV cache, causal per token, GQA, sliding window, soft-capping,
// partitions of `partition_size` keys merged by ember_paged_attention_reduce_*), organised for
// memory bandwidth:
//
// - one block per (token, KV head, partition) serves all G = num_heads / num_kv_heads query
//   heads that share the KV head, so each K/V row is read once per token instead of G times;
// - a key's row is read by 16 lanes at once (E = head_dim / 16 contiguous elements each, one
//   8-64 byte vector load), so a warp reads 2 keys per load instruction, and each half-warp
//   keeps EMBER_PAG_UNROLL keys' loads in flight before using them;
// - three passes over the partition: scores q·k for the G heads into shared memory; per head
//   (one warp each) the max, the exponentials and their sum; then p·V, each half-warp summing
//   its keys into registers, merged through shared memory at the end.
//
// Layouts as paged_attention.cu. Parameters: PagedAttentionParams (same struct, same order).
// Template: T (f32 / f16 / bf16), D (head_dim: 64, 128 or 256), MAX_G (the query heads per
// KV head it holds in registers: G * D <= 512 for the `_g` kernels, e.g. Llama-3's 4 heads of
// 128, and <= 1024 for the `_gl` ones, e.g. Qwen2.5-7B's 7). Requires partition_size <=
// EMBER_PAG_PARTITION (shared memory holds that many scores per head); small batches use
// shorter partitions so that enough blocks run (attention.rs, `partitioning`).
//
// Grid (num_tokens, num_kv_heads, num_partitions), block 128 threads.

#define EMBER_PAG_THREADS 128
#define EMBER_PAG_PARTITION 512
#define EMBER_PAG_UNROLL 4
#define EMBER_PAG_HALF_WARPS (EMBER_PAG_THREADS / 16)

struct PagedAttentionParams {
    unsigned int num_heads;
    unsigned int num_kv_heads;
    unsigned int head_dim;
    unsigned int block_size;
    unsigned int block_table_stride;
    unsigned int partition_size;
    unsigned int num_partitions;
    unsigned int sliding_window;  // 0 = full causal
    float scale;
    float softcap;  // 0 = none
};

// Loads E contiguous elements (E * sizeof(T) is 8, 16, 32 or 64 bytes, and so is the address's
// alignment) and widens them to f32.
template <typename T, int E>
__device__ __forceinline__ void ember_pag_load(const T* __restrict__ src, float out[E]) {
    constexpr int BYTES = E * (int)sizeof(T);
    if constexpr (BYTES % 16 == 0) {
        T tmp[E];
#pragma unroll
        for (int c = 0; c < BYTES / 16; ++c)
            reinterpret_cast<uint4*>(tmp)[c] = reinterpret_cast<const uint4*>(src)[c];
#pragma unroll
        for (int e = 0; e < E; ++e) out[e] = ember_to_float(tmp[e]);
    } else {
        static_assert(BYTES == 8, "8-byte rows only below 16 bytes");
        T tmp[E];
        *reinterpret_cast<uint2*>(tmp) = *reinterpret_cast<const uint2*>(src);
#pragma unroll
        for (int e = 0; e < E; ++e) out[e] = ember_to_float(tmp[e]);
    }
}

// Sum over the 16 lanes of a half-warp.
__device__ __forceinline__ float ember_half_warp_sum(float v) {
#pragma unroll
    for (int offset = 8; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

template <typename T, int D, int MAX_G>
__device__ void paged_attention_grouped(const T* __restrict__ query, const T* __restrict__ key_cache,
                                        const T* __restrict__ value_cache, const int* __restrict__ block_tables,
                                        const int* __restrict__ token_seq, const int* __restrict__ token_pos,
                                        T* __restrict__ out, float* __restrict__ tmp_out, float* __restrict__ tmp_max,
                                        float* __restrict__ tmp_sum, const PagedAttentionParams p) {
    constexpr int E = D / 16;          // elements per lane of one row
    constexpr int P = EMBER_PAG_PARTITION;
    // Scores (MAX_G x P) during the first passes, then the half-warps' partial outputs.
    constexpr int SCORES = MAX_G * P;
    constexpr int PARTIALS = EMBER_PAG_HALF_WARPS * MAX_G * D;
    __shared__ float s_buf[SCORES > PARTIALS ? SCORES : PARTIALS];
    __shared__ float s_max[MAX_G];
    __shared__ float s_sum[MAX_G];

    const unsigned int token = blockIdx.x;
    const unsigned int kv_head = blockIdx.y;
    const unsigned int part = blockIdx.z;
    const int G = (int)(p.num_heads / p.num_kv_heads);
    const int warp = threadIdx.x / EMBER_WARP;
    const int lane = threadIdx.x % EMBER_WARP;
    const int half_warp = threadIdx.x / 16;  // 0..7
    const int l16 = lane % 16;
    const int seq = token_seq[token];
    const int pos = token_pos[token];
    int first = (int)(part * p.partition_size);
    const int last = min((int)((part + 1) * p.partition_size), pos + 1);  // exclusive
    if (p.sliding_window > 0) first = max(first, pos + 1 - (int)p.sliding_window);
    const int num_keys = max(last - first, 0);
    const int* table = block_tables + (size_t)seq * p.block_table_stride;
    const size_t row = (size_t)p.num_kv_heads * D;
    // The row of key `j` (absolute position) for this KV head, at this lane's elements.
    auto row_at = [&](int j) {
        const int block = table[j / (int)p.block_size];
        return ((size_t)block * p.block_size + (j % (int)p.block_size)) * row + (size_t)kv_head * D + l16 * E;
    };
    const int half = lane / 16;
    // This half-warp's EMBER_PAG_UNROLL keys of the turn starting at `base` (keys base + half,
    // + 8, + 16, + 24 of the partition), read from `cache`; keys past the end are not read.
    auto load_turn = [&](const T* __restrict__ cache, int base, float rows[EMBER_PAG_UNROLL][E]) {
#pragma unroll
        for (int u = 0; u < EMBER_PAG_UNROLL; ++u) {
            const int i = base + half + u * EMBER_PAG_HALF_WARPS;
            if (i < num_keys) ember_pag_load<T, E>(cache + row_at(first + i), rows[u]);
        }
    };

    // This lane's slice of the G query vectors, pre-scaled.
    float q[MAX_G][E];
#pragma unroll
    for (int g = 0; g < MAX_G; ++g) {
        if (g < G) {
            ember_pag_load<T, E>(query + ((size_t)token * p.num_heads + kv_head * G + g) * D + l16 * E, q[g]);
#pragma unroll
            for (int e = 0; e < E; ++e) q[g][e] *= p.scale;
        }
    }

    // Pass 1: scores. Half-warp h takes keys h, h + 8, h + 16, ... of the partition. The loop
    // bound is the warp's first key (2w), the same for both halves, so that every lane reaches
    // the shuffles; the half whose key is past the end computes on stale values and drops them.
    for (int base = warp * 2; base < num_keys; base += EMBER_PAG_HALF_WARPS * EMBER_PAG_UNROLL) {
        float k[EMBER_PAG_UNROLL][E];
        load_turn(key_cache, base, k);
#pragma unroll
        for (int u = 0; u < EMBER_PAG_UNROLL; ++u) {
            const int i = base + half + u * EMBER_PAG_HALF_WARPS;
#pragma unroll
            for (int g = 0; g < MAX_G; ++g) {
                if (g < G) {
                    float dot = 0.f;
#pragma unroll
                    for (int e = 0; e < E; ++e) dot += q[g][e] * k[u][e];
                    // Every lane of the half-warp takes part in the shuffles, in or out of range.
                    float s = ember_half_warp_sum(dot);
                    if (p.softcap > 0.f) s = p.softcap * tanhf(s / p.softcap);
                    if (l16 == 0 && i < num_keys) s_buf[g * P + i] = s;
                }
            }
        }
    }
    __syncthreads();

    // Pass 2: per head (warp w takes heads w, w + 4, ...), max, exponentials in place, sum.
    for (int g = warp; g < G; g += EMBER_PAG_THREADS / EMBER_WARP) {
        float m = -INFINITY;
        for (int i = lane; i < num_keys; i += EMBER_WARP) m = fmaxf(m, s_buf[g * P + i]);
        m = ember_warp_max(m);
        float l = 0.f;
        for (int i = lane; i < num_keys; i += EMBER_WARP) {
            const float e = __expf(s_buf[g * P + i] - m);
            s_buf[g * P + i] = e;
            l += e;
        }
        l = ember_warp_sum(l);
        if (lane == 0) {
            s_max[g] = m;
            s_sum[g] = l;
        }
    }
    __syncthreads();

    // Pass 3: p · V, the same key split as pass 1.
    float acc[MAX_G][E];
#pragma unroll
    for (int g = 0; g < MAX_G; ++g)
#pragma unroll
        for (int e = 0; e < E; ++e) acc[g][e] = 0.f;
    for (int base = warp * 2; base < num_keys; base += EMBER_PAG_HALF_WARPS * EMBER_PAG_UNROLL) {
        float v[EMBER_PAG_UNROLL][E];
        load_turn(value_cache, base, v);
#pragma unroll
        for (int u = 0; u < EMBER_PAG_UNROLL; ++u) {
            const int i = base + half + u * EMBER_PAG_HALF_WARPS;
            if (i < num_keys) {
#pragma unroll
                for (int g = 0; g < MAX_G; ++g) {
                    if (g < G) {
                        const float w = s_buf[g * P + i];
#pragma unroll
                        for (int e = 0; e < E; ++e) acc[g][e] += w * v[u][e];
                    }
                }
            }
        }
    }
    __syncthreads();  // the scores are read; the buffer now takes the partial outputs

#pragma unroll
    for (int g = 0; g < MAX_G; ++g)
        if (g < G)
#pragma unroll
            for (int e = 0; e < E; ++e) s_buf[(half_warp * MAX_G + g) * D + l16 * E + e] = acc[g][e];
    __syncthreads();

    for (int idx = threadIdx.x; idx < G * D; idx += EMBER_PAG_THREADS) {
        const int g = idx / D;
        const int d = idx % D;
        float o = 0.f;
#pragma unroll
        for (int h = 0; h < EMBER_PAG_HALF_WARPS; ++h) o += s_buf[(h * MAX_G + g) * D + d];
        const size_t out_row = (size_t)token * p.num_heads + kv_head * G + g;
        if (p.num_partitions == 1) {
            const float total = s_sum[g];
            out[out_row * D + d] = ember_from_float<T>(total > 0.f ? o / total : 0.f);
        } else {
            const size_t part_row = out_row * p.num_partitions + part;
            tmp_out[part_row * D + d] = o;
            if (d == 0) {
                tmp_max[part_row] = num_keys > 0 ? s_max[g] : -INFINITY;
                tmp_sum[part_row] = num_keys > 0 ? s_sum[g] : 0.f;
            }
        }
    }
}

#define EMBER_PAGED_ATTENTION_GROUPED(NAME, T, D, MAX_G)                                                         \
    extern "C" __global__ void __launch_bounds__(EMBER_PAG_THREADS) ember_paged_attention_grouped_##NAME(          \
        const T* query, const T* key_cache, const T* value_cache, const int* block_tables, const int* token_seq,   \
        const int* token_pos, T* out, float* tmp_out, float* tmp_max, float* tmp_sum, const PagedAttentionParams p) { \
        paged_attention_grouped<T, D, MAX_G>(query, key_cache, value_cache, block_tables, token_seq, token_pos,   \
                                             out, tmp_out, tmp_max, tmp_sum, p);                                  \
    }

// Entry points: ember_paged_attention_grouped_<dtype>_d<D>_g (G * D <= 512) and _gl (<= 1024).
// The CUDA backend compiles this file once per entry point it launches and defines
// EMBER_KERNEL_SELECTED and EMBER_KERNEL_<entry> (raw_kernel.rs), so only that entry is
// instantiated (all 18 take ~7 s through NVRTC); without them (scripts/nvrtc_check.py) all are.
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d64_g)
EMBER_PAGED_ATTENTION_GROUPED(f32_d64_g, float, 64, 8)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d64_gl)
EMBER_PAGED_ATTENTION_GROUPED(f32_d64_gl, float, 64, 16)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d128_g)
EMBER_PAGED_ATTENTION_GROUPED(f32_d128_g, float, 128, 4)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d128_gl)
EMBER_PAGED_ATTENTION_GROUPED(f32_d128_gl, float, 128, 8)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d256_g)
EMBER_PAGED_ATTENTION_GROUPED(f32_d256_g, float, 256, 2)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d256_gl)
EMBER_PAGED_ATTENTION_GROUPED(f32_d256_gl, float, 256, 4)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d64_g)
EMBER_PAGED_ATTENTION_GROUPED(f16_d64_g, __half, 64, 8)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d64_gl)
EMBER_PAGED_ATTENTION_GROUPED(f16_d64_gl, __half, 64, 16)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d128_g)
EMBER_PAGED_ATTENTION_GROUPED(f16_d128_g, __half, 128, 4)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d128_gl)
EMBER_PAGED_ATTENTION_GROUPED(f16_d128_gl, __half, 128, 8)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d256_g)
EMBER_PAGED_ATTENTION_GROUPED(f16_d256_g, __half, 256, 2)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d256_gl)
EMBER_PAGED_ATTENTION_GROUPED(f16_d256_gl, __half, 256, 4)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d64_g)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d64_g, __nv_bfloat16, 64, 8)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d64_gl)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d64_gl, __nv_bfloat16, 64, 16)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d128_g)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d128_g, __nv_bfloat16, 128, 4)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d128_gl)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d128_gl, __nv_bfloat16, 128, 8)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d256_g)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d256_g, __nv_bfloat16, 256, 2)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d256_gl)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d256_gl, __nv_bfloat16, 256, 4)
#endif
