// The last step of sampling: one token per row of logits ([rows, vocab], f32 / f16 / bf16, each
// value read as f32 and divided by the row's temperature), in one launch instead of the
// reference's few dozen burn ops. The logits come either processed (f32, after penalties,
// temperature and truncation, with temperatures of 1) or straight from the LM head (the
// sampler's plain path: no processing but the temperature, which is applied here, so the
// [rows, vocab] tensor is neither cast nor divided in a pass of its own). Grid (rows),
// EMBER_SAMPLE_THREADS threads per row.
//
// uniform[row] < 0 marks a greedy row: the argmax (the lowest index among equal maxima). Else
// inverse-CDF sampling: with e_i = exp(logit_i - max), the token is the first i at which
// e_0 + ... + e_i reaches uniform * sum(e). Each thread owns a contiguous chunk of the
// vocabulary; the chunk sums are scanned across the block, and the one thread whose chunk
// holds the target walks it again in the same order, so it reproduces its own sum exactly and
// always finds the token. A -inf logit (truncated) has e = 0 and is never returned.
//
// `row_params` holds rows uniforms, then rows temperatures.

#define EMBER_SAMPLE_THREADS 1024
#define EMBER_SAMPLE_WARPS (EMBER_SAMPLE_THREADS / EMBER_WARP)

struct SampleParams {
    unsigned int rows;
    unsigned int vocab;
    unsigned int row_stride;  // elements between rows of logits
    unsigned int pad;
};

template <typename T>
__device__ void sample_tokens(const T* __restrict__ logits, const float* __restrict__ row_params, int* __restrict__ out,
                              const SampleParams p) {
    __shared__ float s_val[EMBER_SAMPLE_WARPS];
    __shared__ unsigned int s_idx[EMBER_SAMPLE_WARPS];
    __shared__ float s_sum[EMBER_SAMPLE_WARPS];
    __shared__ int s_found;
    const unsigned int row = blockIdx.x;
    const unsigned int tid = threadIdx.x, lane = tid % EMBER_WARP, warp = tid / EMBER_WARP;
    const T* row_logits = logits + (size_t)row * p.row_stride;
    const float temperature = row_params[p.rows + row];
    // IEEE division, as the reference's tensor division (a temperature of 1 changes nothing).
    auto x = [&](unsigned int i) { return __fdiv_rn(ember_to_float(row_logits[i]), temperature); };

    // 1. Max and its lowest index (coalesced strided pass).
    float best = -INFINITY;
    unsigned int best_i = 0xffffffffu;
    // Unrolled so that several loads are in flight (one at a time, a 128k-wide row took ~48 us);
    // the comparisons still run in index order.
#pragma unroll 8
    for (unsigned int i = tid; i < p.vocab; i += EMBER_SAMPLE_THREADS) {
        const float v = x(i);
        if (v > best) { best = v; best_i = i; }  // i grows, so ties keep the lowest index
    }
#pragma unroll
    for (int off = EMBER_WARP / 2; off > 0; off /= 2) {
        const float v = __shfl_xor_sync(0xffffffffu, best, off);
        const unsigned int j = __shfl_xor_sync(0xffffffffu, best_i, off);
        if (v > best || (v == best && j < best_i)) { best = v; best_i = j; }
    }
    if (lane == 0) { s_val[warp] = best; s_idx[warp] = best_i; }
    if (tid == 0) s_found = 0x7fffffff;
    __syncthreads();
    best = s_val[0];
    best_i = s_idx[0];
    for (int w = 1; w < EMBER_SAMPLE_WARPS; ++w)
        if (s_val[w] > best || (s_val[w] == best && s_idx[w] < best_i)) { best = s_val[w]; best_i = s_idx[w]; }
    const float u = row_params[row];
    if (u < 0.f || best == -INFINITY) {
        if (tid == 0) out[row] = (int)(best_i == 0xffffffffu ? 0 : best_i);
        return;
    }

    // 2. Chunk sums, then an inclusive scan of them across the block.
    const unsigned int chunk = (p.vocab + EMBER_SAMPLE_THREADS - 1) / EMBER_SAMPLE_THREADS;
    const unsigned int begin = min(tid * chunk, p.vocab), end = min(begin + chunk, p.vocab);
    float mine = 0.f;
#pragma unroll 8
    for (unsigned int i = begin; i < end; ++i) mine += expf(x(i) - best);
    float incl = mine;
#pragma unroll
    for (int off = 1; off < EMBER_WARP; off *= 2) {
        const float v = __shfl_up_sync(0xffffffffu, incl, off);
        if ((int)lane >= off) incl += v;
    }
    if (lane == EMBER_WARP - 1) s_sum[warp] = incl;
    __syncthreads();
    float before_warp = 0.f, total = 0.f;
    for (int w = 0; w < EMBER_SAMPLE_WARPS; ++w) {
        if (w < (int)warp) before_warp += s_sum[w];
        total += s_sum[w];
    }
    const float prefix = before_warp + incl - mine;  // exclusive prefix of this chunk
    const float target = u * total;

    // 3. The chunk holding the target walks it again.
    // Rounding in the scan can let two neighbouring chunks both claim a target on their common
    // boundary (the lower index wins, deterministically) or, even more rarely, none (the argmax).
    if (mine > 0.f && prefix < target && target <= prefix + mine) {
        const float need = target - prefix;
        float local = 0.f;
        unsigned int pick = 0xffffffffu, last_positive = 0xffffffffu;
        for (unsigned int i = begin; i < end; ++i) {
            const float e = expf(x(i) - best);
            if (e > 0.f) {
                local += e;  // the same additions, in the same order, as `mine`
                last_positive = i;
                if (local >= need) { pick = i; break; }
            }
        }
        atomicMin(&s_found, (int)(pick != 0xffffffffu ? pick : last_positive));
    }
    __syncthreads();
    if (tid == 0) out[row] = s_found != 0x7fffffff ? s_found : (int)best_i;
}

#define EMBER_SAMPLE_TOKENS(SUFFIX, T)                                                                             \
    extern "C" __global__ void __launch_bounds__(EMBER_SAMPLE_THREADS)                                            \
        ember_sample_tokens_##SUFFIX(const T* logits, const float* row_params, int* out, const SampleParams p) {   \
        sample_tokens<T>(logits, row_params, out, p);                                                             \
    }

EMBER_SAMPLE_TOKENS(f32, float)
EMBER_SAMPLE_TOKENS(f16, __half)
EMBER_SAMPLE_TOKENS(bf16, __nv_bfloat16)
