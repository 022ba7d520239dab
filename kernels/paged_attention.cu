// Paged attention over the block KV cache, for decode and prefill alike ("varlen"): every
// query token attends to the keys of its own sequence up to its own position (causal), found
// through the sequence's block table. Handles GQA (query head h reads KV head
// h / (num_heads / num_kv_heads)), Gemma2's logit soft-capping and sliding windows.
//
// Long contexts are split into partitions of `partition_size` keys processed by separate
// thread blocks (flash-decoding); `ember_paged_attention_reduce_*` merges their partial
// softmax states. With one partition the first kernel writes the output directly.
//
// Layouts: query/out [num_tokens, num_heads, head_dim]; key_cache/value_cache
// [num_blocks, block_size, num_kv_heads, head_dim]; block_tables [num_seqs, max_blocks_per_seq]
// with rows `block_table_stride` apart;
// token_seq / token_pos [num_tokens] (the token's sequence and its absolute position, which is
// the number of keys it sees minus one). head_dim at most 256 (lanes past it idle).
//
// Grid (num_tokens, num_heads, num_partitions), 128 threads: each warp takes every 4th key of
// the partition, lanes hold ceil(head_dim / 32) strided elements of q and of the running output, and
// the four warps' online-softmax states are merged through shared memory at the end.

#define EMBER_PA_WARPS 4
#define EMBER_PA_MAX_ELEMS 8  // head_dim <= 256

// Every entry calls ember_pdl_enter first (see common.cuh): graphs may launch them early.
#define EMBER_PDL_ENTRIES 1

struct PagedAttentionParams {
    unsigned int num_heads;
    unsigned int num_kv_heads;
    unsigned int head_dim;
    unsigned int block_size;
    unsigned int block_table_stride;  // elements between rows of block_tables (rows may be pitched)
    unsigned int partition_size;
    unsigned int num_partitions;
    unsigned int sliding_window;  // 0 = full causal
    float scale;
    float softcap;  // 0 = none
};

template <typename T>
__device__ void paged_attention(const T* __restrict__ query, const T* __restrict__ key_cache,
                                const T* __restrict__ value_cache, const int* __restrict__ block_tables,
                                const int* __restrict__ token_seq, const int* __restrict__ token_pos,
                                T* __restrict__ out, float* __restrict__ tmp_out, float* __restrict__ tmp_max,
                                float* __restrict__ tmp_sum, const PagedAttentionParams p) {
    const unsigned int token = blockIdx.x;
    const unsigned int head = blockIdx.y;
    const unsigned int part = blockIdx.z;
    const unsigned int warp = threadIdx.x / EMBER_WARP;
    const unsigned int lane = threadIdx.x % EMBER_WARP;
    const unsigned int D = p.head_dim;
    const unsigned int kv_head = head / (p.num_heads / p.num_kv_heads);
    const int seq = token_seq[token];
    const int pos = token_pos[token];

    // Keys this block covers: the partition, cut to [pos - window + 1, pos].
    int first = (int)(part * p.partition_size);
    int last = min((int)((part + 1) * p.partition_size), pos + 1);  // exclusive
    if (p.sliding_window > 0) first = max(first, pos + 1 - (int)p.sliding_window);

    float q[EMBER_PA_MAX_ELEMS];
    float acc[EMBER_PA_MAX_ELEMS];
    const T* q_row = query + ((size_t)token * p.num_heads + head) * D;
#pragma unroll
    for (int e = 0; e < EMBER_PA_MAX_ELEMS; ++e) {
        q[e] = lane + e * EMBER_WARP < D ? ember_to_float(q_row[lane + e * EMBER_WARP]) * p.scale : 0.f;
        acc[e] = 0.f;
    }
    float m = -INFINITY;
    float l = 0.f;
    const int* table = block_tables + (size_t)seq * p.block_table_stride;
    const size_t row = (size_t)p.num_kv_heads * D;
    for (int j = first + (int)warp; j < last; j += EMBER_PA_WARPS) {
        const int block = table[j / (int)p.block_size];
        const size_t base = ((size_t)block * p.block_size + (j % (int)p.block_size)) * row + (size_t)kv_head * D;
        float dot = 0.f;
#pragma unroll
        for (int e = 0; e < EMBER_PA_MAX_ELEMS; ++e)
            if (lane + e * EMBER_WARP < D) dot += q[e] * ember_to_float(key_cache[base + lane + e * EMBER_WARP]);
        float s = ember_warp_sum(dot);
        if (p.softcap > 0.f) s = p.softcap * tanhf(s / p.softcap);
        const float m_new = fmaxf(m, s);
        const float correction = __expf(m - m_new);
        const float weight = __expf(s - m_new);
        l = l * correction + weight;
#pragma unroll
        for (int e = 0; e < EMBER_PA_MAX_ELEMS; ++e)
            if (lane + e * EMBER_WARP < D) acc[e] = acc[e] * correction + weight * ember_to_float(value_cache[base + lane + e * EMBER_WARP]);
        m = m_new;
    }

    // Merge the warps' states.
    __shared__ float s_m[EMBER_PA_WARPS];
    __shared__ float s_l[EMBER_PA_WARPS];
    __shared__ float s_acc[EMBER_PA_WARPS][EMBER_PA_MAX_ELEMS * EMBER_WARP];
    if (lane == 0) {
        s_m[warp] = m;
        s_l[warp] = l;
    }
#pragma unroll
    for (int e = 0; e < EMBER_PA_MAX_ELEMS; ++e)
        if (lane + e * EMBER_WARP < D) s_acc[warp][lane + e * EMBER_WARP] = acc[e];
    __syncthreads();
    float big = -INFINITY;
    for (int w = 0; w < EMBER_PA_WARPS; ++w) big = fmaxf(big, s_m[w]);
    float total = 0.f;
    float factor[EMBER_PA_WARPS];
    for (int w = 0; w < EMBER_PA_WARPS; ++w) {
        factor[w] = s_m[w] == -INFINITY ? 0.f : __expf(s_m[w] - big);
        total += s_l[w] * factor[w];
    }
    const size_t out_row = ((size_t)token * p.num_heads + head);
    if (p.num_partitions == 1) {
        const float inv = total > 0.f ? 1.f / total : 0.f;
        for (unsigned int d = threadIdx.x; d < D; d += blockDim.x) {
            float o = 0.f;
            for (int w = 0; w < EMBER_PA_WARPS; ++w) o += s_acc[w][d] * factor[w];
            out[out_row * D + d] = ember_from_float<T>(o * inv);
        }
    } else {
        const size_t part_row = out_row * p.num_partitions + part;
        for (unsigned int d = threadIdx.x; d < D; d += blockDim.x) {
            float o = 0.f;
            for (int w = 0; w < EMBER_PA_WARPS; ++w) o += s_acc[w][d] * factor[w];
            tmp_out[part_row * D + d] = o;
        }
        if (threadIdx.x == 0) {
            tmp_max[part_row] = big;
            tmp_sum[part_row] = total;
        }
    }
}

// Merges the partitions of one (token, head): grid (num_tokens, num_heads), 128 threads.
template <typename T>
__device__ void paged_attention_reduce(const float* __restrict__ tmp_out, const float* __restrict__ tmp_max,
                                       const float* __restrict__ tmp_sum, T* __restrict__ out,
                                       const PagedAttentionParams p) {
    const size_t out_row = (size_t)blockIdx.x * p.num_heads + blockIdx.y;
    const size_t first = out_row * p.num_partitions;
    float big = -INFINITY;
    for (unsigned int i = 0; i < p.num_partitions; ++i) big = fmaxf(big, tmp_max[first + i]);
    float total = 0.f;
    for (unsigned int i = 0; i < p.num_partitions; ++i) {
        const float mi = tmp_max[first + i];
        if (mi != -INFINITY) total += tmp_sum[first + i] * __expf(mi - big);
    }
    const float inv = total > 0.f ? 1.f / total : 0.f;
    for (unsigned int d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
        float o = 0.f;
        for (unsigned int i = 0; i < p.num_partitions; ++i) {
            const float mi = tmp_max[first + i];
            if (mi != -INFINITY) o += tmp_out[(first + i) * p.head_dim + d] * __expf(mi - big);
        }
        out[out_row * p.head_dim + d] = ember_from_float<T>(o * inv);
    }
}

#define EMBER_PAGED_ATTENTION(SUFFIX, T)                                                                     \
    extern "C" __global__ void __launch_bounds__(EMBER_PA_WARPS * EMBER_WARP) ember_paged_attention_##SUFFIX( \
        const T* query, const T* key_cache, const T* value_cache, const int* block_tables,                  \
        const int* token_seq, const int* token_pos, T* out, float* tmp_out, float* tmp_max, float* tmp_sum,  \
        const PagedAttentionParams p) {                                                                      \
        ember_pdl_enter();                                                                                   \
        if constexpr (ember_compiles("ember_paged_attention_" #SUFFIX))                                      \
            paged_attention<T>(query, key_cache, value_cache, block_tables, token_seq, token_pos, out,       \
                               tmp_out, tmp_max, tmp_sum, p);                                                \
    }                                                                                                        \
    extern "C" __global__ void ember_paged_attention_reduce_##SUFFIX(                                        \
        const float* tmp_out, const float* tmp_max, const float* tmp_sum, T* out, const PagedAttentionParams p) { \
        ember_pdl_enter();                                                                                   \
        if constexpr (ember_compiles("ember_paged_attention_reduce_" #SUFFIX))                               \
            paged_attention_reduce<T>(tmp_out, tmp_max, tmp_sum, out, p);                                    \
    }

EMBER_PAGED_ATTENTION(f32, float)
EMBER_PAGED_ATTENTION(f16, __half)
EMBER_PAGED_ATTENTION(bf16, __nv_bfloat16)
