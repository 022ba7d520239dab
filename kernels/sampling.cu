// The last step of sampling: one token per row of logits ([rows, vocab], f32 / f16 / bf16, each
// value read as f32 and divided by the row's temperature), instead of the reference's few dozen
// burn ops. The logits come either processed (f32, after penalties, temperature and
// truncation, with temperatures of 1) or straight from the LM head (the sampler's plain path:
// no processing but the temperature, which is applied here, so the [rows, vocab] tensor is
// neither cast nor divided in a pass of its own).
//
// uniform[row] < 0 marks a greedy row: the argmax (the lowest index among equal maxima). Else
// inverse-CDF sampling: with e_i = exp(logit_i - max), the token is the first i at which
// e_0 + ... + e_i reaches uniform * sum(e). The vocabulary is cut into EMBER_SAMPLE_CHUNKS
// contiguous chunks; the chunk sums are scanned in a fixed order, and the one thread whose
// chunk holds the target walks it again in the same order, so it reproduces its own sum
// exactly and always finds the token. A -inf logit (truncated) has e = 0 and is never returned.
//
// Two ways to run it, with the same chunks and the same order of every sum, so the same token:
// - ember_sample_tokens_*: one block of EMBER_SAMPLE_CHUNKS threads per row (one chunk each),
//   all three phases in one launch; the choice for many rows.
// - ember_sample_max_*, ember_sample_chunks_*, ember_sample_pick_*: the phases as three
//   launches spread over many blocks per row, for a few rows. One block reading a 128k-entry
//   row, dividing and exponentiating every entry, took ~80 us at batch 1 (one SM's issue
//   rate); the max and the chunk sums are now spread over EMBER_SAMPLE_SLICES and
//   EMBER_SAMPLE_CHUNKS / EMBER_SAMPLE_CHUNK_THREADS blocks per row.
//
// `row_params` holds rows uniforms, then rows temperatures. `scratch` (split path) holds, per
// row, EMBER_SAMPLE_SLICES slice maxima, their indices (as bits) and EMBER_SAMPLE_CHUNKS chunk
// sums.

#define EMBER_SAMPLE_CHUNKS 1024
#define EMBER_SAMPLE_WARPS (EMBER_SAMPLE_CHUNKS / EMBER_WARP)
#define EMBER_SAMPLE_SLICES 32
#define EMBER_SAMPLE_SLICE_THREADS 256
#define EMBER_SAMPLE_CHUNK_THREADS 64
#define EMBER_SAMPLE_SCRATCH (2 * EMBER_SAMPLE_SLICES + EMBER_SAMPLE_CHUNKS)

struct SampleParams {
    unsigned int rows;
    unsigned int vocab;
    unsigned int row_stride;  // elements between rows of logits
    unsigned int pad;
};

// One row's logits as the sampler sees them: divided by the row's temperature.
template <typename T>
struct SampleRow {
    const T* logits;
    float temperature;
    // IEEE division, as the reference's tensor division (a temperature of 1 changes nothing).
    __device__ __forceinline__ float operator()(unsigned int i) const {
        return __fdiv_rn(ember_to_float(logits[i]), temperature);
    }
};

template <typename T>
__device__ __forceinline__ SampleRow<T> sample_row(const T* logits, const float* row_params, unsigned int row, const SampleParams& p) {
    return SampleRow<T>{logits + (size_t)row * p.row_stride, row_params[p.rows + row]};
}

// (v, i) beats (best, best_i): larger, or equal with a lower index. The maximum and the lowest
// index reaching it do not depend on the order of comparisons.
__device__ __forceinline__ void sample_take_max(float v, unsigned int i, float& best, unsigned int& best_i) {
    if (v > best || (v == best && i < best_i)) { best = v; best_i = i; }
}

__device__ __forceinline__ void sample_warp_max(float& best, unsigned int& best_i) {
#pragma unroll
    for (int off = EMBER_WARP / 2; off > 0; off /= 2) {
        const float v = __shfl_xor_sync(0xffffffffu, best, off);
        const unsigned int j = __shfl_xor_sync(0xffffffffu, best_i, off);
        sample_take_max(v, j, best, best_i);
    }
}

// The bounds of chunk c.
__device__ __forceinline__ void sample_chunk(unsigned int c, unsigned int vocab, unsigned int& begin, unsigned int& end) {
    const unsigned int chunk = (vocab + EMBER_SAMPLE_CHUNKS - 1) / EMBER_SAMPLE_CHUNKS;
    begin = min(c * chunk, vocab);
    end = min(begin + chunk, vocab);
}

// sum of exp(x_i - best) over chunk c, in index order.
template <typename T>
__device__ __forceinline__ float sample_chunk_sum(const SampleRow<T>& x, unsigned int c, unsigned int vocab, float best) {
    unsigned int begin, end;
    sample_chunk(c, vocab, begin, end);
    float mine = 0.f;
#pragma unroll 8
    for (unsigned int i = begin; i < end; ++i) mine += expf(x(i) - best);
    return mine;
}

// The pick from the chunk sums, by a block of EMBER_SAMPLE_CHUNKS threads (thread t holds chunk
// t's sum `mine`): an inclusive scan across the block, then the chunk holding the target walks
// it again. Writes out[row].
template <typename T>
__device__ void sample_pick(const SampleRow<T>& x, unsigned int vocab, float mine, float best, unsigned int best_i, float u,
                            int* out_row) {
    __shared__ float s_sum[EMBER_SAMPLE_WARPS];
    __shared__ int s_found;
    const unsigned int tid = threadIdx.x, lane = tid % EMBER_WARP, warp = tid / EMBER_WARP;
    if (tid == 0) s_found = 0x7fffffff;
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

    // Rounding in the scan can let two neighbouring chunks both claim a target on their common
    // boundary (the lower index wins, deterministically) or, even more rarely, none (the argmax).
    if (mine > 0.f && prefix < target && target <= prefix + mine) {
        unsigned int begin, end;
        sample_chunk(tid, vocab, begin, end);
        const float need = target - prefix;
        float local = 0.f;
        unsigned int pick = 0xffffffffu, last_positive = 0xffffffffu;
        for (unsigned int i = begin; i < end; ++i) {
            const float e = expf(x(i) - best);
            if (e > 0.f) {
                local += e;  // the same additions, in the same order, as the chunk sum
                last_positive = i;
                if (local >= need) { pick = i; break; }
            }
        }
        atomicMin(&s_found, (int)(pick != 0xffffffffu ? pick : last_positive));
    }
    __syncthreads();
    if (tid == 0) *out_row = s_found != 0x7fffffff ? s_found : (int)best_i;
}

// Greedy rows and rows with nothing finite take the argmax (0 when there is none).
__device__ __forceinline__ bool sample_is_argmax(float u, float best) { return u < 0.f || best == -INFINITY; }

// Single launch: grid (rows), EMBER_SAMPLE_CHUNKS threads.
template <typename T>
__device__ void sample_tokens(const T* __restrict__ logits, const float* __restrict__ row_params, int* __restrict__ out,
                              const SampleParams p) {
    __shared__ float s_val[EMBER_SAMPLE_WARPS];
    __shared__ unsigned int s_idx[EMBER_SAMPLE_WARPS];
    const unsigned int row = blockIdx.x;
    const unsigned int tid = threadIdx.x, lane = tid % EMBER_WARP, warp = tid / EMBER_WARP;
    const SampleRow<T> x = sample_row(logits, row_params, row, p);

    // 1. Max and its lowest index (coalesced strided pass). Unrolled so that several loads are
    // in flight; the comparisons still run in index order.
    float best = -INFINITY;
    unsigned int best_i = 0xffffffffu;
#pragma unroll 8
    for (unsigned int i = tid; i < p.vocab; i += EMBER_SAMPLE_CHUNKS) {
        const float v = x(i);
        if (v > best) { best = v; best_i = i; }  // i grows, so ties keep the lowest index
    }
    sample_warp_max(best, best_i);
    if (lane == 0) { s_val[warp] = best; s_idx[warp] = best_i; }
    __syncthreads();
    best = s_val[0];
    best_i = s_idx[0];
    for (int w = 1; w < EMBER_SAMPLE_WARPS; ++w) sample_take_max(s_val[w], s_idx[w], best, best_i);
    const float u = row_params[row];
    if (sample_is_argmax(u, best)) {
        if (tid == 0) out[row] = (int)(best_i == 0xffffffffu ? 0 : best_i);
        return;
    }
    // 2. and 3.
    sample_pick(x, p.vocab, sample_chunk_sum(x, tid, p.vocab, best), best, best_i, u, out + row);
}

// Split path, launch 1: grid (EMBER_SAMPLE_SLICES, rows), EMBER_SAMPLE_SLICE_THREADS threads.
// The max (and lowest index) of each slice of the row.
template <typename T>
__device__ void sample_max(const T* __restrict__ logits, const float* __restrict__ row_params, float* __restrict__ scratch,
                           const SampleParams p) {
    __shared__ float s_val[EMBER_SAMPLE_SLICE_THREADS / EMBER_WARP];
    __shared__ unsigned int s_idx[EMBER_SAMPLE_SLICE_THREADS / EMBER_WARP];
    const unsigned int slice = blockIdx.x, row = blockIdx.y;
    const unsigned int tid = threadIdx.x, lane = tid % EMBER_WARP, warp = tid / EMBER_WARP;
    const SampleRow<T> x = sample_row(logits, row_params, row, p);
    const unsigned int len = (p.vocab + EMBER_SAMPLE_SLICES - 1) / EMBER_SAMPLE_SLICES;
    const unsigned int begin = min(slice * len, p.vocab), end = min(begin + len, p.vocab);
    float best = -INFINITY;
    unsigned int best_i = 0xffffffffu;
#pragma unroll 8
    for (unsigned int i = begin + tid; i < end; i += EMBER_SAMPLE_SLICE_THREADS) {
        const float v = x(i);
        if (v > best) { best = v; best_i = i; }
    }
    sample_warp_max(best, best_i);
    if (lane == 0) { s_val[warp] = best; s_idx[warp] = best_i; }
    __syncthreads();
    if (tid == 0) {
        for (int w = 1; w < EMBER_SAMPLE_SLICE_THREADS / EMBER_WARP; ++w) sample_take_max(s_val[w], s_idx[w], s_val[0], s_idx[0]);
        float* mine = scratch + (size_t)row * EMBER_SAMPLE_SCRATCH;
        mine[slice] = s_val[0];
        mine[EMBER_SAMPLE_SLICES + slice] = __uint_as_float(s_idx[0]);
    }
}

// The row's max and its lowest index, from the slices' (every calling thread the same).
__device__ __forceinline__ void sample_row_max(const float* scratch_row, float& best, unsigned int& best_i) {
    best = -INFINITY;
    best_i = 0xffffffffu;
    for (int s = 0; s < EMBER_SAMPLE_SLICES; ++s)
        sample_take_max(scratch_row[s], __float_as_uint(scratch_row[EMBER_SAMPLE_SLICES + s]), best, best_i);
}

// Split path, launch 2: grid (EMBER_SAMPLE_CHUNKS / EMBER_SAMPLE_CHUNK_THREADS, rows): each
// thread sums one chunk (sampled rows only).
template <typename T>
__device__ void sample_chunks(const T* __restrict__ logits, const float* __restrict__ row_params, float* __restrict__ scratch,
                              const SampleParams p) {
    const unsigned int row = blockIdx.y;
    const unsigned int c = blockIdx.x * EMBER_SAMPLE_CHUNK_THREADS + threadIdx.x;
    float* scratch_row = scratch + (size_t)row * EMBER_SAMPLE_SCRATCH;
    float best;
    unsigned int best_i;
    sample_row_max(scratch_row, best, best_i);
    if (sample_is_argmax(row_params[row], best)) return;
    const SampleRow<T> x = sample_row(logits, row_params, row, p);
    scratch_row[2 * EMBER_SAMPLE_SLICES + c] = sample_chunk_sum(x, c, p.vocab, best);
}

// Split path, launch 3: grid (rows), EMBER_SAMPLE_CHUNKS threads: the pick.
template <typename T>
__device__ void sample_finish(const T* __restrict__ logits, const float* __restrict__ row_params, const float* __restrict__ scratch,
                              int* __restrict__ out, const SampleParams p) {
    const unsigned int row = blockIdx.x;
    const float* scratch_row = scratch + (size_t)row * EMBER_SAMPLE_SCRATCH;
    float best;
    unsigned int best_i;
    sample_row_max(scratch_row, best, best_i);
    const float u = row_params[row];
    if (sample_is_argmax(u, best)) {
        if (threadIdx.x == 0) out[row] = (int)(best_i == 0xffffffffu ? 0 : best_i);
        return;
    }
    const SampleRow<T> x = sample_row(logits, row_params, row, p);
    sample_pick(x, p.vocab, scratch_row[2 * EMBER_SAMPLE_SLICES + threadIdx.x], best, best_i, u, out + row);
}

#define EMBER_SAMPLE_TOKENS(SUFFIX, T)                                                                             \
    extern "C" __global__ void __launch_bounds__(EMBER_SAMPLE_CHUNKS)                                             \
        ember_sample_tokens_##SUFFIX(const T* logits, const float* row_params, int* out, const SampleParams p) {   \
        if constexpr (ember_compiles("ember_sample_tokens_" #SUFFIX))                                              \
            sample_tokens<T>(logits, row_params, out, p);                                                          \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(EMBER_SAMPLE_SLICE_THREADS)                                      \
        ember_sample_max_##SUFFIX(const T* logits, const float* row_params, float* scratch, const SampleParams p) { \
        if constexpr (ember_compiles("ember_sample_max_" #SUFFIX))                                                  \
            sample_max<T>(logits, row_params, scratch, p);                                                          \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(EMBER_SAMPLE_CHUNK_THREADS) ember_sample_chunks_##SUFFIX(         \
        const T* logits, const float* row_params, float* scratch, const SampleParams p) {                         \
        if constexpr (ember_compiles("ember_sample_chunks_" #SUFFIX))                                             \
            sample_chunks<T>(logits, row_params, scratch, p);                                                     \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(EMBER_SAMPLE_CHUNKS) ember_sample_pick_##SUFFIX(                 \
        const T* logits, const float* row_params, float* scratch, int* out, const SampleParams p) {               \
        if constexpr (ember_compiles("ember_sample_pick_" #SUFFIX))                                               \
            sample_finish<T>(logits, row_params, scratch, out, p);                                                \
    }

EMBER_SAMPLE_TOKENS(f32, float)
EMBER_SAMPLE_TOKENS(f16, __half)
EMBER_SAMPLE_TOKENS(bf16, __nv_bfloat16)
