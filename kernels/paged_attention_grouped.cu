// Grouped paged attention: the same contract as kernels/paged_attention.cu (varlen decode and
// prefill over the block KV cache, causal per token, GQA, sliding window, soft-capping,
// partitions of `partition_size` keys merged by ember_paged_attention_reduce_*), organised for
// memory bandwidth and latency:
//
// - one block per (token, KV head, partition) serves all G = num_heads / num_kv_heads query
//   heads that share the KV head, so each K/V row is read once per token instead of G times;
// - a key's row is read by 16 lanes at once (E = head_dim / 16 contiguous elements each, one
//   8-64 byte vector load), so a warp reads 2 keys per load instruction;
// - one pass with an online softmax (FlashDecoding): each half-warp takes U keys per turn and
//   has both their K and V rows in flight before using them, keeps a running max, sum and
//   p·V per head in registers, and the 8 half-warps' states are merged through shared memory
//   at the end. A turn costs one memory round trip (the block's slice of the block table is
//   read into shared memory first, so a key's address needs no dependent load).
//
// Layouts as paged_attention.cu. Parameters: PagedAttentionParams (same struct, same order).
// Template: T (f32 / f16 / bf16), D (head_dim: 64, 128 or 256), MAX_G (the query heads per
// KV head a block serves: G * D <= 512 for the `_g` kernels, e.g. Llama-3's 4 heads of 128,
// and <= 1024 for the `_gl` ones, e.g. Qwen2.5-7B's 7). The queries sit in shared memory so
// that registers go to the K/V rows in flight; the entries' register budgets (MIN_BLOCKS per
// SM: 4 = 128 registers for most `_g`, 3 otherwise) are the largest without spills. Any partition size works; the
// launch (attention.rs, `partitioning`) uses at most EMBER_PAG_PARTITION keys, and fewer for
// small batches so that enough blocks run.
//
// Grid (num_tokens, num_kv_heads, num_partitions), block 128 threads.

// Every entry calls ember_pdl_enter first (see common.cuh): graphs may launch them early.
#define EMBER_PDL_ENTRIES 1

#define EMBER_PAG_THREADS 128
#define EMBER_PAG_PARTITION 512
#define EMBER_PAG_HALF_WARPS (EMBER_PAG_THREADS / 16)
// Block-table entries a block stages in shared memory (a 512-key partition of 16-token blocks
// spans 33); a partition spanning more reads the table from global memory.
#define EMBER_PAG_TABLE 128

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
    constexpr int E = D / 16;  // elements per lane of one row
    // Keys per half-warp per turn: 4 while q, acc and the K/V rows fit the registers, else 2.
    constexpr int U = (MAX_G * D <= 512 && D <= 128) ? 4 : 2;
    constexpr int TURN = EMBER_PAG_HALF_WARPS * U;
    __shared__ float s_acc[EMBER_PAG_HALF_WARPS * MAX_G * D];
    __shared__ float s_max[EMBER_PAG_HALF_WARPS * MAX_G];
    __shared__ float s_sum[EMBER_PAG_HALF_WARPS * MAX_G];
    __shared__ int s_table[EMBER_PAG_TABLE];
    __shared__ float s_q[MAX_G * D];

    const unsigned int token = blockIdx.x;
    const unsigned int kv_head = blockIdx.y;
    const unsigned int part = blockIdx.z;
    const int G = (int)(p.num_heads / p.num_kv_heads);
    const int warp = threadIdx.x / EMBER_WARP;
    const int lane = threadIdx.x % EMBER_WARP;
    const int half_warp = threadIdx.x / 16;  // 0..7
    const int half = lane / 16;
    const int l16 = lane % 16;
    const int seq = token_seq[token];
    const int pos = token_pos[token];
    int first = (int)(part * p.partition_size);
    const int last = min((int)((part + 1) * p.partition_size), pos + 1);  // exclusive
    if (p.sliding_window > 0) first = max(first, pos + 1 - (int)p.sliding_window);
    const int num_keys = max(last - first, 0);
    const int bs = (int)p.block_size;
    const int* table = block_tables + (size_t)seq * p.block_table_stride;

    // The G query vectors, pre-scaled, in shared memory (registers hold the K/V rows in flight).
    for (int idx = threadIdx.x; idx < G * D; idx += EMBER_PAG_THREADS)
        s_q[idx] = ember_to_float(query[((size_t)token * p.num_heads + kv_head * G) * D + idx]) * p.scale;
    // The partition's block-table entries, staged once.
    const int first_block = num_keys > 0 ? first / bs : 0;
    const int num_blocks = num_keys > 0 ? (last - 1) / bs - first_block + 1 : 0;
    const bool staged = num_blocks <= EMBER_PAG_TABLE;
    if (staged)
        for (int b = threadIdx.x; b < num_blocks; b += EMBER_PAG_THREADS) s_table[b] = table[first_block + b];
    __syncthreads();
    const size_t row = (size_t)p.num_kv_heads * D;
    // The offset of key `j`'s row (absolute position) for this KV head, at this lane's elements.
    auto row_at = [&](int j) {
        const int b = j / bs;
        const int block = staged ? s_table[b - first_block] : table[b];
        return ((size_t)block * bs + (j - b * bs)) * row + (size_t)kv_head * D + l16 * E;
    };

    // Running state of this half-warp per head (the same in its 16 lanes): max, sum of
    // exponentials, and this lane's elements of the exponential-weighted sum of V.
    float m[MAX_G], l[MAX_G], acc[MAX_G][E];
#pragma unroll
    for (int g = 0; g < MAX_G; ++g) {
        m[g] = -INFINITY;
        l[g] = 0.f;
#pragma unroll
        for (int e = 0; e < E; ++e) acc[g][e] = 0.f;
    }

    // Half-warp h takes keys h, h + 8, h + 16, ... of the partition, U per turn. The loop bound
    // is the warp's first key (2w), the same for both halves, so that every lane reaches the
    // shuffles; keys past the end get score -inf and zero rows.
    for (int base = warp * 2; base < num_keys; base += TURN) {
        float k[U][E], v[U][E];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int i = base + half + u * EMBER_PAG_HALF_WARPS;
            if (i < num_keys) {
                const size_t offset = row_at(first + i);
                ember_pag_load<T, E>(key_cache + offset, k[u]);
                ember_pag_load<T, E>(value_cache + offset, v[u]);
            } else {
#pragma unroll
                for (int e = 0; e < E; ++e) k[u][e] = v[u][e] = 0.f;
            }
        }
#pragma unroll
        for (int g = 0; g < MAX_G; ++g) {
            if (g < G) {
                float q[E];
#pragma unroll
                for (int e = 0; e < E; ++e) q[e] = s_q[g * D + l16 * E + e];
                float s[U];
                float turn_max = -INFINITY;
#pragma unroll
                for (int u = 0; u < U; ++u) {
                    float dot = 0.f;
#pragma unroll
                    for (int e = 0; e < E; ++e) dot += q[e] * k[u][e];
                    // Every lane of the half-warp takes part in the shuffles, in or out of range.
                    float x = ember_half_warp_sum(dot);
                    if (p.softcap > 0.f) x = p.softcap * tanhf(x / p.softcap);
                    s[u] = base + half + u * EMBER_PAG_HALF_WARPS < num_keys ? x : -INFINITY;
                    turn_max = fmaxf(turn_max, s[u]);
                }
                const float m_new = fmaxf(m[g], turn_max);
                if (m_new == -INFINITY) continue;  // no key of this half-warp yet
                const float correction = __expf(m[g] - m_new);
                l[g] *= correction;
#pragma unroll
                for (int e = 0; e < E; ++e) acc[g][e] *= correction;
#pragma unroll
                for (int u = 0; u < U; ++u) {
                    const float w = __expf(s[u] - m_new);
                    l[g] += w;
#pragma unroll
                    for (int e = 0; e < E; ++e) acc[g][e] += w * v[u][e];
                }
                m[g] = m_new;
            }
        }
    }

    // Merge the half-warps' states.
#pragma unroll
    for (int g = 0; g < MAX_G; ++g) {
        if (g < G) {
#pragma unroll
            for (int e = 0; e < E; ++e) s_acc[(half_warp * MAX_G + g) * D + l16 * E + e] = acc[g][e];
            if (l16 == 0) {
                s_max[half_warp * MAX_G + g] = m[g];
                s_sum[half_warp * MAX_G + g] = l[g];
            }
        }
    }
    __syncthreads();

    for (int idx = threadIdx.x; idx < G * D; idx += EMBER_PAG_THREADS) {
        const int g = idx / D;
        const int d = idx % D;
        float total_max = -INFINITY;
#pragma unroll
        for (int h = 0; h < EMBER_PAG_HALF_WARPS; ++h) total_max = fmaxf(total_max, s_max[h * MAX_G + g]);
        float o = 0.f, total = 0.f;
        if (total_max != -INFINITY) {
#pragma unroll
            for (int h = 0; h < EMBER_PAG_HALF_WARPS; ++h) {
                const float hm = s_max[h * MAX_G + g];
                const float scale = hm == -INFINITY ? 0.f : __expf(hm - total_max);
                o += s_acc[(h * MAX_G + g) * D + d] * scale;
                total += s_sum[h * MAX_G + g] * scale;
            }
        }
        const size_t out_row = (size_t)token * p.num_heads + kv_head * G + g;
        if (p.num_partitions == 1) {
            out[out_row * D + d] = ember_from_float<T>(total > 0.f ? o / total : 0.f);
        } else {
            const size_t part_row = out_row * p.num_partitions + part;
            tmp_out[part_row * D + d] = o;
            if (d == 0) {
                tmp_max[part_row] = total_max;
                tmp_sum[part_row] = total;
            }
        }
    }
}

#define EMBER_PAGED_ATTENTION_GROUPED(NAME, T, D, MAX_G, MIN_BLOCKS)                                               \
    extern "C" __global__ void __launch_bounds__(EMBER_PAG_THREADS, MIN_BLOCKS)                                   \
        ember_paged_attention_grouped_##NAME(                                                                     \
        const T* query, const T* key_cache, const T* value_cache, const int* block_tables, const int* token_seq,   \
        const int* token_pos, T* out, float* tmp_out, float* tmp_max, float* tmp_sum, const PagedAttentionParams p) { \
        ember_pdl_enter();                                                                                        \
        paged_attention_grouped<T, D, MAX_G>(query, key_cache, value_cache, block_tables, token_seq, token_pos,   \
                                             out, tmp_out, tmp_max, tmp_sum, p);                                  \
    }

// Entry points: ember_paged_attention_grouped_<dtype>_d<D>_g (G * D <= 512) and _gl (<= 1024).
// The CUDA backend compiles this file once per entry point it launches and defines
// EMBER_KERNEL_SELECTED and EMBER_KERNEL_<entry> (raw_kernel.rs), so only that entry is
// instantiated (all 18 take ~7 s through NVRTC); without them (scripts/nvrtc_check.py) all are.
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d64_g)
EMBER_PAGED_ATTENTION_GROUPED(f32_d64_g, float, 64, 8, 4)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d64_gl)
EMBER_PAGED_ATTENTION_GROUPED(f32_d64_gl, float, 64, 16, 3)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d128_g)
EMBER_PAGED_ATTENTION_GROUPED(f32_d128_g, float, 128, 4, 4)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d128_gl)
EMBER_PAGED_ATTENTION_GROUPED(f32_d128_gl, float, 128, 8, 3)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d256_g)
EMBER_PAGED_ATTENTION_GROUPED(f32_d256_g, float, 256, 2, 3)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f32_d256_gl)
EMBER_PAGED_ATTENTION_GROUPED(f32_d256_gl, float, 256, 4, 3)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d64_g)
EMBER_PAGED_ATTENTION_GROUPED(f16_d64_g, __half, 64, 8, 4)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d64_gl)
EMBER_PAGED_ATTENTION_GROUPED(f16_d64_gl, __half, 64, 16, 3)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d128_g)
EMBER_PAGED_ATTENTION_GROUPED(f16_d128_g, __half, 128, 4, 4)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d128_gl)
EMBER_PAGED_ATTENTION_GROUPED(f16_d128_gl, __half, 128, 8, 3)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d256_g)
EMBER_PAGED_ATTENTION_GROUPED(f16_d256_g, __half, 256, 2, 3)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_f16_d256_gl)
EMBER_PAGED_ATTENTION_GROUPED(f16_d256_gl, __half, 256, 4, 3)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d64_g)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d64_g, __nv_bfloat16, 64, 8, 4)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d64_gl)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d64_gl, __nv_bfloat16, 64, 16, 3)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d128_g)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d128_g, __nv_bfloat16, 128, 4, 4)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d128_gl)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d128_gl, __nv_bfloat16, 128, 8, 3)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d256_g)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d256_g, __nv_bfloat16, 256, 2, 3)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_grouped_bf16_d256_gl)
EMBER_PAGED_ATTENTION_GROUPED(bf16_d256_gl, __nv_bfloat16, 256, 4, 3)
#endif
