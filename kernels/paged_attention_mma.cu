// Paged attention on tensor cores, for f16 / bf16 caches with head_dim 64 or 128 and up to 8
// query heads per KV head: the same contract as kernels/paged_attention.cu (varlen decode and
// prefill over the block KV cache, causal per token, GQA, sliding window, soft-capping,
// partitions of `partition_size` keys merged by ember_paged_attention_reduce_*).
//
// One warp per (token, KV head, partition) walks the partition's keys 16 at a time with an
// online softmax, and does both products with mma.sync.m16n8k16 (f32 accumulators):
//
// - scores S = Q K^T: A = the group's query heads as rows (G <= 8 of the 16 rows; the rest
//   zero), B = 8 keys as columns, two n-tiles per 16 keys;
// - O^T += V^T P^T: A = 16 head dimensions x 16 keys of V, B = the probabilities as 16 keys x 8
//   heads, straight from the score registers (an mma result row is a B column: no shuffle).
//
// A dot product does not depend on the order of its terms, so each operand's "k" index is
// mapped to whichever element makes the loads contiguous: for the scores, lane (r = lane/4,
// t = lane%4) holds dims t*D/4 .. +D/4 of a key row (its k-step s uses dims t*D/4 + 4s .. +3,
// and the query fragment follows the same map); for P.V it holds dims r*D/8 .. +D/8 of four
// key rows (keys 2t, 2t+1, 2t+8, 2t+9 of the 16), and m-tile i's rows r / r+8 are dims
// r*D/8 + i / r*D/8 + D/16 + i. Every row is read once with 16-byte loads, and the output
// comes back as contiguous runs. A 32-entry slice of the block table sits one entry per lane
// and is read with shuffles (a partition spanning more blocks reads the table itself).
//
// P is rounded to the cache's dtype before the second product (as FlashAttention does); the
// scores, the softmax and the sums are f32. Keys past the end are clamped to the last key (so
// nothing uninitialised is read) and get probability 0.
//
// Layouts and parameters: as paged_attention.cu. Grid (num_tokens, num_kv_heads,
// num_partitions), block 32 threads.

// Every entry calls ember_pdl_enter first (see common.cuh): graphs may launch them early.
#define EMBER_PDL_ENTRIES 1

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

template <typename T> struct EmberMma;
template <> struct EmberMma<__half> {
    static __device__ __forceinline__ void run(float c[4], const unsigned int a[4], unsigned int b0, unsigned int b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                     "{%0, %1, %2, %3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ unsigned int pack(float lo, float hi) {
        const __half2 h = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<const unsigned int*>(&h);
    }
};
template <> struct EmberMma<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float c[4], const unsigned int a[4], unsigned int b0, unsigned int b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                     "{%0, %1, %2, %3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ unsigned int pack(float lo, float hi) {
        const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<const unsigned int*>(&h);
    }
};

// Copies N 32-bit words (N % 4 == 0, 16-byte aligned) from global memory.
template <int N>
__device__ __forceinline__ void ember_pam_load(const void* src, unsigned int dst[N]) {
#pragma unroll
    for (int c = 0; c < N / 4; ++c) reinterpret_cast<uint4*>(dst)[c] = reinterpret_cast<const uint4*>(src)[c];
}

// Element e (0-based, 16-bit) of x and of y as one pair: (x_e, y_e), x_e in the low half.
__device__ __forceinline__ unsigned int ember_pam_pair(const unsigned int* x, const unsigned int* y, int e) {
    return __byte_perm(x[e / 2], y[e / 2], (e % 2) ? 0x7632 : 0x5410);
}

template <typename T, int D, bool PIPELINE>
__device__ void paged_attention_mma(const T* __restrict__ query, const T* __restrict__ key_cache,
                                    const T* __restrict__ value_cache, const int* __restrict__ block_tables,
                                    const int* __restrict__ token_seq, const int* __restrict__ token_pos,
                                    T* __restrict__ out, float* __restrict__ tmp_out, float* __restrict__ tmp_max,
                                    float* __restrict__ tmp_sum, const PagedAttentionParams p) {
    constexpr int KSTEPS = D / 16;   // k-steps of the scores
    constexpr int KW = D / 4 / 2;    // 32-bit words of a key row per lane (D/4 elements)
    constexpr int VE = D / 8;        // elements of a value row per lane
    constexpr int VW = VE / 2;       // ... in 32-bit words
    constexpr int MT = D / 16;       // m-tiles of O^T
    const unsigned int FULL = 0xffffffffu;
    const int lane = threadIdx.x;
    const int r = lane / 4;
    const int t = lane % 4;
    const unsigned int token = blockIdx.x;
    const unsigned int kv_head = blockIdx.y;
    const unsigned int part = blockIdx.z;
    const int G = (int)(p.num_heads / p.num_kv_heads);
    const int seq = token_seq[token];
    const int pos = token_pos[token];
    int first = (int)(part * p.partition_size);
    const int last = min((int)((part + 1) * p.partition_size), pos + 1);  // exclusive
    if (p.sliding_window > 0) first = max(first, pos + 1 - (int)p.sliding_window);
    const int num_keys = max(last - first, 0);
    const int bs = (int)p.block_size;
    const int* table = block_tables + (size_t)seq * p.block_table_stride;
    const int first_block = num_keys > 0 ? first / bs : 0;
    const int num_blocks = num_keys > 0 ? (last - 1) / bs - first_block + 1 : 0;
    const bool table_in_lanes = num_blocks <= EMBER_WARP;
    const int lane_block = table_in_lanes && lane < num_blocks ? table[first_block + lane] : 0;
    const size_t row = (size_t)p.num_kv_heads * D;
    // Key i of the partition (clamped to the last one): the offset of its row for this KV head.
    auto key_row = [&](int i) {
        const int j = first + min(i, num_keys - 1);
        const int b = j / bs;
        const int block = table_in_lanes ? __shfl_sync(FULL, lane_block, b - first_block) : table[b];
        return ((size_t)block * bs + (j - b * bs)) * row + (size_t)kv_head * D;
    };

    // The query fragments (rows = heads r < G; rows 8-15 are a1/a3 = 0).
    unsigned int qa[KSTEPS][2];
    {
        const T* q = query + ((size_t)token * p.num_heads + kv_head * G + r) * D + t * (D / 4);
#pragma unroll
        for (int s = 0; s < KSTEPS; ++s) {
            uint2 v = make_uint2(0u, 0u);
            if (r < G) v = *reinterpret_cast<const uint2*>(q + 4 * s);
            qa[s][0] = v.x;
            qa[s][1] = v.y;
        }
    }

    float m_run = -INFINITY;  // running max of head r's scores (same in the quad)
    float l_run = 0.f;        // this lane's share of head r's sum of exponentials
    float acc[MT][4];         // O^T: rows dims (m-tile i), columns heads 2t, 2t+1
#pragma unroll
    for (int i = 0; i < MT; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;

    // Loads 16 keys from `base`: K rows base + r and base + 8 + r (this lane's D/4 dims), and
    // V rows base + 2t, 2t+1, 2t+8, 2t+9 (its D/8 dims).
    auto load = [&](int base, unsigned int kb[2][KW], unsigned int vb[4][VW]) {
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) ember_pam_load<KW>(key_cache + key_row(base + nt * 8 + r) + t * (D / 4), kb[nt]);
#pragma unroll
        for (int c = 0; c < 4; ++c) ember_pam_load<VW>(value_cache + key_row(base + 2 * t + (c & 1) + (c >> 1) * 8) + r * VE, vb[c]);
    };
    auto compute = [&](int base, const unsigned int kb[2][KW], const unsigned int vb[4][VW]) {
        float s[2][4];
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
            for (int k = 0; k < KSTEPS; ++k) {
                const unsigned int a[4] = {qa[k][0], 0u, qa[k][1], 0u};
                EmberMma<T>::run(s[nt], a, kb[nt][2 * k], kb[nt][2 * k + 1]);
            }
        }
        // Head r's scores of keys 2t, 2t+1, 8+2t, 9+2t.
        float x[4] = {s[0][0], s[0][1], s[1][0], s[1][1]};
        float tile_max = -INFINITY;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            float v = x[c] * p.scale;
            if (p.softcap > 0.f) v = p.softcap * tanhf(v / p.softcap);
            x[c] = base + 2 * t + (c & 1) + (c >> 1) * 8 < num_keys ? v : -INFINITY;
            tile_max = fmaxf(tile_max, x[c]);
        }
        tile_max = fmaxf(tile_max, __shfl_xor_sync(FULL, tile_max, 1));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(FULL, tile_max, 2));
        // Key `base` is in range, so the quad's max is finite.
        const float m_new = fmaxf(m_run, tile_max);
        const float correction = __expf(m_run - m_new);
        float w[4];
#pragma unroll
        for (int c = 0; c < 4; ++c) w[c] = __expf(x[c] - m_new);
        l_run = l_run * correction + (w[0] + w[1]) + (w[2] + w[3]);
        m_run = m_new;
        // This lane's O^T columns are heads 2t and 2t+1, whose corrections quads 2t, 2t+1 hold.
        const float corr0 = __shfl_sync(FULL, correction, 8 * t);
        const float corr1 = __shfl_sync(FULL, correction, 8 * t + 4);
        const unsigned int b0 = EmberMma<T>::pack(w[0], w[1]);
        const unsigned int b1 = EmberMma<T>::pack(w[2], w[3]);
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            acc[i][0] *= corr0;
            acc[i][1] *= corr1;
            acc[i][2] *= corr0;
            acc[i][3] *= corr1;
            const unsigned int a[4] = {ember_pam_pair(vb[0], vb[1], i), ember_pam_pair(vb[0], vb[1], MT + i),
                                       ember_pam_pair(vb[2], vb[3], i), ember_pam_pair(vb[2], vb[3], MT + i)};
            EmberMma<T>::run(acc[i], a, b0, b1);
        }
    };

    if constexpr (PIPELINE) {
        // Two register buffers: the next 16 keys' loads are in flight while these are used.
        unsigned int kb0[2][KW], vb0[4][VW], kb1[2][KW], vb1[4][VW];
        if (num_keys > 0) load(0, kb0, vb0);
        for (int base = 0; base < num_keys; base += 32) {
            if (base + 16 < num_keys) load(base + 16, kb1, vb1);
            compute(base, kb0, vb0);
            if (base + 16 >= num_keys) break;
            if (base + 32 < num_keys) load(base + 32, kb0, vb0);
            compute(base + 16, kb1, vb1);
        }
    } else {
        for (int base = 0; base < num_keys; base += 16) {
            unsigned int kb[2][KW], vb[4][VW];
            load(base, kb, vb);
            compute(base, kb, vb);
        }
    }

    // Head r's total over its quad; then each lane takes its columns' (heads 2t, 2t+1).
    l_run += __shfl_xor_sync(FULL, l_run, 1);
    l_run += __shfl_xor_sync(FULL, l_run, 2);
    const float sums[2] = {__shfl_sync(FULL, l_run, 8 * t), __shfl_sync(FULL, l_run, 8 * t + 4)};
    const float maxes[2] = {__shfl_sync(FULL, m_run, 8 * t), __shfl_sync(FULL, m_run, 8 * t + 4)};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int head = 2 * t + h;
        if (head >= G) continue;
        const size_t out_row = (size_t)token * p.num_heads + kv_head * G + head;
        // This lane's dims r*VE .. r*VE + VE: m-tiles' row r (i) then row r + 8 (MT + i).
        float o[VE];
#pragma unroll
        for (int i = 0; i < MT; ++i) {
            o[i] = acc[i][h];
            o[MT + i] = acc[i][2 + h];
        }
        if (p.num_partitions == 1) {
            const float inv = sums[h] > 0.f ? 1.f / sums[h] : 0.f;
            unsigned int packed[VW];
#pragma unroll
            for (int w = 0; w < VW; ++w) packed[w] = EmberMma<T>::pack(o[2 * w] * inv, o[2 * w + 1] * inv);
            T* dst = out + out_row * D + r * VE;
#pragma unroll
            for (int c = 0; c < VW / 4; ++c) reinterpret_cast<uint4*>(dst)[c] = reinterpret_cast<const uint4*>(packed)[c];
        } else {
            const size_t part_row = out_row * p.num_partitions + part;
            float* dst = tmp_out + part_row * D + r * VE;
#pragma unroll
            for (int c = 0; c < VE / 4; ++c) reinterpret_cast<float4*>(dst)[c] = make_float4(o[4 * c], o[4 * c + 1], o[4 * c + 2], o[4 * c + 3]);
            if (r == 0) {
                tmp_max[part_row] = maxes[h];
                tmp_sum[part_row] = sums[h];
            }
        }
    }
}

#define EMBER_PAGED_ATTENTION_MMA(NAME, T, D, PIPELINE, MIN_BLOCKS)                                               \
    extern "C" __global__ void __launch_bounds__(EMBER_WARP, MIN_BLOCKS) ember_paged_attention_mma_##NAME(       \
        const T* query, const T* key_cache, const T* value_cache, const int* block_tables, const int* token_seq,   \
        const int* token_pos, T* out, float* tmp_out, float* tmp_max, float* tmp_sum, const PagedAttentionParams p) { \
        ember_pdl_enter();                                                                                        \
        paged_attention_mma<T, D, PIPELINE>(query, key_cache, value_cache, block_tables, token_seq, token_pos,    \
                                            out, tmp_out, tmp_max, tmp_sum, p);                                   \
    }

// Entry points: ember_paged_attention_mma_<dtype>_d<D> (one buffer of 16 keys) and _d<D>_p (two,
// loads of the next 16 keys in flight while the current ones are used). The CUDA backend
// compiles only the entry it launches (EMBER_KERNEL_SELECTED, raw_kernel.rs).
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_mma_f16_d64)
EMBER_PAGED_ATTENTION_MMA(f16_d64, __half, 64, false, 16)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_mma_f16_d64_p)
EMBER_PAGED_ATTENTION_MMA(f16_d64_p, __half, 64, true, 16)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_mma_f16_d128)
EMBER_PAGED_ATTENTION_MMA(f16_d128, __half, 128, false, 12)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_mma_f16_d128_p)
EMBER_PAGED_ATTENTION_MMA(f16_d128_p, __half, 128, true, 8)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_mma_bf16_d64)
EMBER_PAGED_ATTENTION_MMA(bf16_d64, __nv_bfloat16, 64, false, 16)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_mma_bf16_d64_p)
EMBER_PAGED_ATTENTION_MMA(bf16_d64_p, __nv_bfloat16, 64, true, 16)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_mma_bf16_d128)
EMBER_PAGED_ATTENTION_MMA(bf16_d128, __nv_bfloat16, 128, false, 12)
#endif
#if !defined(EMBER_KERNEL_SELECTED) || defined(EMBER_KERNEL_ember_paged_attention_mma_bf16_d128_p)
EMBER_PAGED_ATTENTION_MMA(bf16_d128_p, __nv_bfloat16, 128, true, 8)
#endif
