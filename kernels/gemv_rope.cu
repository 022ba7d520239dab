// ember-compiled-after: gemv.cu
//
// The q/k/v GEMV of single-stream decode with the rotary embedding and the KV-cache write in
// its epilogue (compiled after gemv.cu, whose deferred-norm consumer it extends): one kernel
// instead of the GEMV and ember_split_qkv_rope_cache (layer_ops.cu), so the attention waits
// for one kernel boundary fewer per layer.
//
// Rotary pairs (dims i and i + head_dim/2 of a q or k head) must end in one block, so the
// q and k blocks take their rows in pairs: block b of a head (head_dim / 8 blocks per head)
// computes rows i = 4 (b % (head_dim / 8)) + w % 4, plus head_dim / 2 for warps w >= 4; the
// v blocks keep 8 consecutive rows. After the product each warp rounds its output to T (what
// the GEMV would have written), the block exchanges them through shared memory, and threads
// 0-3 rotate one pair each exactly as ember_split_qkv_rope does (cos and sin rounded to T,
// every product rounded to T), writing q, or k into its cache slot; v rows go straight into
// their slot. Same bits as the GEMV followed by the rope kernel. One token; no q/k norm
// (Qwen3's needs the whole head); head_dim % 16 == 0.

template <typename T>
struct GemvRope {
    const float* cos_table;  // [positions, table_stride] f32
    const float* sin_table;
    const int* positions;    // [1]
    const int* slot_mapping; // [1]; negative: padding, nothing is written to the caches
    T* q;                    // [heads * head_dim]
    T* key_cache;            // [blocks, block_size, kv_heads, head_dim]
    T* value_cache;
    unsigned int heads;
    unsigned int kv_heads;
    unsigned int head_dim;
    unsigned int table_stride;
};

// The output row of warp `warp` in block `block` (see above).
template <typename T>
__device__ __forceinline__ unsigned int ember_rope_row(const GemvRope<T>& r, unsigned int block, unsigned int warp) {
    const unsigned int d = r.head_dim;
    const unsigned int first = block * EMBER_GEMV_WARPS;
    if (first >= (r.heads + r.kv_heads) * d) return first + warp;
    return (first / d) * d + (first % d) / 2 + warp % 4 + (warp / 4) * (d / 2);
}

// Read before the product (the kernels before do not write them): the slot, and for threads
// 0-3 of a rotated block the cos and sin of their pair, rounded to T.
template <typename T>
__device__ __forceinline__ GemvRopeOperands ember_rope_operands(const GemvRope<T>& r) {
    GemvRopeOperands o{0.f, 0.f, r.slot_mapping[0]};
    if (threadIdx.x < 4 && blockIdx.x * EMBER_GEMV_WARPS < (r.heads + r.kv_heads) * r.head_dim) {
        const unsigned int i = ember_rope_row(r, blockIdx.x, threadIdx.x) % r.head_dim;
        const size_t row = (size_t)r.positions[0] * r.table_stride;
        o.c = ember_round<T>(r.cos_table[row + i]);
        o.s = ember_round<T>(r.sin_table[row + i]);
    }
    return o;
}

// Called by every thread with its warp's output `value` (row n), before rounding.
template <typename T>
__device__ __forceinline__ void ember_rope_store(const GemvRope<T>& r, const GemvRopeOperands& o, unsigned int n, float value) {
    __shared__ float values[EMBER_GEMV_WARPS];
    const unsigned int d = r.head_dim, half = d / 2, rotated = (r.heads + r.kv_heads) * d;
    const unsigned int warp = threadIdx.x / EMBER_WARP, lane = threadIdx.x % EMBER_WARP;
    const float x = ember_round<T>(value);
    if (n >= rotated) {  // a v block (the branch is the same for the whole block)
        if (lane == 0 && o.slot >= 0) r.value_cache[(size_t)o.slot * r.kv_heads * d + (n - rotated)] = ember_from_float<T>(x);
        return;
    }
    if (lane == 0) values[warp] = x;
    __syncthreads();
    if (threadIdx.x >= 4) return;
    const unsigned int lo = ember_rope_row(r, blockIdx.x, threadIdx.x);
    const unsigned int head = lo / d, i = lo % d;
    const float x1 = values[threadIdx.x], x2 = values[threadIdx.x + 4];
    T* dst;
    if (head < r.heads) {
        dst = r.q + (size_t)head * d;
    } else {
        if (o.slot < 0) return;
        dst = r.key_cache + ((size_t)o.slot * r.kv_heads + (head - r.heads)) * d;
    }
    dst[i] = ember_from_float<T>(__fsub_rn(ember_round<T>(__fmul_rn(x1, o.c)), ember_round<T>(__fmul_rn(x2, o.s))));
    dst[i + half] = ember_from_float<T>(__fadd_rn(ember_round<T>(__fmul_rn(x2, o.c)), ember_round<T>(__fmul_rn(x1, o.s))));
}

struct GemvRopeParams {
    GemvParams gemv;
    unsigned int parts;
    float eps;
    unsigned int heads;
    unsigned int kv_heads;
    unsigned int head_dim;
    unsigned int table_stride;
};

// ember_gemv_<dtype>_m1_normed_rope: the deferred norm's consumer (gemv.cu) over the q/k/v
// weight, with the epilogue above. Grid: rows / 8 blocks.
#define EMBER_GEMV_ROPE(SUFFIX, T)                                                                              \
    extern "C" __global__ void __launch_bounds__(EMBER_GEMV_WARPS * EMBER_WARP) ember_gemv_##SUFFIX##_m1_normed_rope( \
        const T* x, const T* w, const T* bias, const float* sums, const float* cos_table, const float* sin_table, \
        const int* positions, const int* slot_mapping, T* q, T* key_cache, T* value_cache, const GemvRopeParams p) { \
        __shared__ __align__(16) float staged[EMBER_GEMV_MAX_PARTS];                                           \
        GemvNorm<T> norm{nullptr, nullptr, nullptr, nullptr, nullptr, sums, staged, p.parts, p.eps};            \
        const GemvRope<T> rope{cos_table, sin_table, positions, slot_mapping, q, key_cache, value_cache,         \
                               p.heads, p.kv_heads, p.head_dim, p.table_stride};                                \
        if constexpr (ember_compiles("ember_gemv_" #SUFFIX "_m1_normed_rope"))                                  \
            gemv_rows<T, 1, EMBER_GEMV_NORMED_ROPE>(x, w, nullptr, bias, p.gemv, norm, &rope);                  \
    }

EMBER_GEMV_ROPE(f32, float)
EMBER_GEMV_ROPE(f16, __half)
EMBER_GEMV_ROPE(bf16, __nv_bfloat16)
