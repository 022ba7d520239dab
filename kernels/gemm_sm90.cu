// gemm_sm90: y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n]) in f16 / bf16 on Hopper (sm_90a), the
// linear layers above the GEMV's 8 rows; and the same in FP8 for `--quantization fp8` (the
// `e4m3_*` entries: x and w in E4M3, one byte each, quantized per row by quantize_fp8.cu; the
// f32 sums scaled by x_scale[m] * w_scale[n]; a stage holds 128 e4m3 of K instead of 64, and
// each wgmma is k32 instead of k16: the same bytes, so the same tiles, swizzle and descriptors). Same contract as kernels/gemm.cu's tensor-core path
// (x [M, K] and w [N, K] row-major with padded rows allowed, y [M, N] dense, f32 accumulation,
// bias added before the one rounding), but built on Hopper's asynchronous units:
//
// - TMA (cp.async.bulk.tensor) copies a 64-wide K slice of x (BM rows) and of w (BN rows)
//   into shared memory, in the 128-byte swizzled layout wgmma reads without bank conflicts.
//   The two tensor maps (`tm_x`, `tm_w`: 2-d, box 64 x 128 and 64 x BN, swizzle 128B, zero
//   fill out of bounds) are encoded by cubecl at launch from the Rust side's TensorMapMeta and
//   passed as __grid_constant__ parameters; rows past M / N and columns past K read as zeros.
// - wgmma.mma_async (m64nBNk16, both operands from shared memory through matrix descriptors,
//   K-major, f32 accumulators in registers).
// - Warp specialisation, 384 threads = 3 warpgroups (256 = 2 for 64-row tiles): warpgroup 0
//   is the producer (one thread
//   issues the TMA copies; the group gives its registers away with setmaxnreg), warpgroups 1
//   and 2 are consumers, each multiplying 64 of the tile's 128 rows by all BN columns.
// - A ring of STAGES stage buffers with two mbarriers each: `full[s]` (the producer arms it
//   with the stage's byte count; TMA completes it) and `empty[s]` (each consumer warp arrives
//   once it no longer reads the stage). Consumers keep one wgmma group in flight: after issuing
//   the group for K tile t they wait for the group of tile t - 1 and release its stage.
//
// Tile shapes (template): 128 x 256 with 4 stages (48 KB per stage) for large grids, 128 x 192
// with 4 stages (40 KB; its waves fit N = 6,144 at ~1,000 rows: 256 tiles on 132 SMs), 128 x 128
// with 6 stages (32 KB per stage), both one block per SM (192 KB of dynamic shared memory + 1 KB
// for the 1024-byte alignment the 128B swizzle needs); and 64 x 128 with a single consumer
// warpgroup (CONSUMERS = 1, 256 threads, 4 stages of 24 KB, two blocks per SM) for decode
// batches, whose few 128-row tiles would leave SMs idle. The Rust side picks by waves. The grid
// is (ceil(N / BN), ceil(M / BM)); blocks visit tiles grouped by EMBER_SM90_GROUP_M M tiles so
// blocks running together share w tiles in L2 (as gemm.cu).
//
// wgmma matrix descriptor for a K-major tile with 128B swizzle (PTX ISA "Matrix Descriptor
// Format"): start address >> 4 in bits 0-13, leading byte offset >> 4 in bits 16-29 (unused
// for this layout, set to 1), stride byte offset >> 4 in bits 32-45 (1024 bytes between
// groups of 8 rows of 128 bytes), swizzle mode 1 (128B) in bits 62-63, base offset 0 (every
// tile starts 1024-byte aligned). The k16 steps inside the 64-wide slice advance the start
// address by 32 bytes; the hardware applies the swizzle to the computed addresses.
//
// Accumulator fragment (PTX ISA, wgmma m64nNk16 f32 D): thread t of the warpgroup, warp
// w = t / 32, lane l: d[4j + 0..1] = rows 16w + l / 4, columns 8j + 2(l % 4) + 0..1, and
// d[4j + 2..3] the same columns of row + 8.
//
// Split-K (grids with too few tiles for the SMs, e.g. o_proj and down_proj at <= 256 rows):
// gridDim.z > 1 splits the K tiles into runs of k_tiles_per_split; block z writes its f32 sums
// to partials[z] ([M, N]) and ember_gemm_split_reduce_<dtype> adds the splits and the bias and
// rounds once (the sum's order differs from one pass, so the result may differ in rounding).
//
// Launch contract: block (128 * (CONSUMERS + 1), 1, 1), grid (ceil(N / BN), ceil(M / BM), splits),
// dynamic shared memory STAGES * (BM + BN) * 128 + 1024 bytes. Parameters: tm_x, tm_w (by value), then the
// pointers cubecl passes for the tensor maps' buffers (x, w; unused: TMA reads them), y, bias,
// partials (unused without split-K), [e4m3 entries: x_scale, w_scale,] then Sm90GemmParams by value. Requires: sm_90a, N % 8 == 0, K % 8 == 0, row strides % 8 == 0,
// 16-byte aligned x / w / y (the Rust side checks and otherwise uses kernels/gemm.cu).

#define EMBER_SM90_BK 64
#ifndef EMBER_SM90_GROUP_M
#define EMBER_SM90_GROUP_M 8
#endif

struct Sm90GemmParams {
    unsigned int m;
    unsigned int n;
    unsigned int k;
    unsigned int has_bias;  // add bias[n] to the f32 accumulator before rounding (torch's addmm)
    unsigned int k_tiles_per_split;  // split-K: the K tiles of each blockIdx.z (all of them when gridDim.z == 1)
};

// The driver's CUtensorMap: 128 opaque bytes, 64-byte aligned (cuda.h is not included).
struct __align__(64) EmberTensorMap {
    unsigned long long opaque[16];
};

// ---- PTX wrappers ------------------------------------------------------------------------------

__device__ __forceinline__ unsigned int ember_smem(const void* p) {
    return static_cast<unsigned int>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ember_mbar_init(unsigned long long* bar, unsigned int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(ember_smem(bar)), "r"(count) : "memory");
}

// Arrives once and adds `bytes` to the transactions the current phase waits for.
__device__ __forceinline__ void ember_mbar_expect_tx(unsigned long long* bar, unsigned int bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(ember_smem(bar)), "r"(bytes) : "memory");
}

__device__ __forceinline__ void ember_mbar_arrive(unsigned long long* bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(ember_smem(bar)) : "memory");
}

// Waits until the phase with parity `parity` of `bar` has completed.
__device__ __forceinline__ void ember_mbar_wait(unsigned long long* bar, unsigned int parity) {
    unsigned int done;
    do {
        asm volatile(
            "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
            : "=r"(done)
            : "r"(ember_smem(bar)), "r"(parity)
            : "memory");
    } while (!done);
}

// TMA: the box at (c0 = column, c1 = row) of `map` into `dst`, completing bytes on `bar`.
__device__ __forceinline__ void ember_tma_load_2d(void* dst, const EmberTensorMap* map, unsigned long long* bar, int c0, int c1) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
            ember_smem(dst)),
        "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(ember_smem(bar))
        : "memory");
}

__device__ __forceinline__ unsigned long long ember_wgmma_desc(const void* tile) {
    const unsigned long long addr = ember_smem(tile);
    return ((addr & 0x3FFFFull) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}

__device__ __forceinline__ void ember_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void ember_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void ember_wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Register lists of the wgmma accumulators: 128 (n = 256), 96 (n = 192) and 64 (n = 128) f32
// per thread: the first 64, the next 32 (n = 192 stops there), the last 64.
#define EMBER_WGMMA_D_LO \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15" ", " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31" ", " \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47" ", " \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define EMBER_WGMMA_D_MID \
    "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79" ", " \
    "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95"
#define EMBER_WGMMA_D_HI \
    EMBER_WGMMA_D_MID ", " \
    "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111" ", " \
    "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
#define EMBER_WGMMA_D64 "{" EMBER_WGMMA_D_LO "}"
#define EMBER_WGMMA_D96 "{" EMBER_WGMMA_D_LO ", " EMBER_WGMMA_D_MID "}"
#define EMBER_WGMMA_D128 "{" EMBER_WGMMA_D_LO ", " EMBER_WGMMA_D_HI "}"

#define EMBER_WGMMA_OUT64(d) \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
    "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
    "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
    "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
    "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
    "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
    "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
    "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define EMBER_WGMMA_OUT96(d) \
    EMBER_WGMMA_OUT64(d), \
    "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
    "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), \
    "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), \
    "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95])
#define EMBER_WGMMA_OUT128(d) \
    EMBER_WGMMA_OUT96(d), \
    "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), \
    "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), \
    "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), \
    "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])

// FP8 E4M3 operands (`--quantization fp8`): one byte each, decoded by the tensor cores.
struct EmberE4M3 {
    unsigned char bits;
};

// One wgmma: d (64 x BN, f32) += A (64 x 32 bytes, descriptor a) · B (BN x 32 bytes,
// descriptor b)ᵀ, both K-major (no transpose), scale 1 for A, B and D: k16 for f16/bf16,
// k32 for e4m3 (which takes no transpose operands).
template <typename T, int BN> struct EmberWgmma;

#define EMBER_WGMMA_DEF_K(T, TY, KW, BN, NREG, OPS, TAIL)                                                    \
    template <> struct EmberWgmma<T, BN> {                                                                   \
        static __device__ __forceinline__ void run(float* d, unsigned long long a, unsigned long long b) {  \
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " OPS ";\n"                                       \
                         "wgmma.mma_async.sync.aligned.m64n" #BN #KW ".f32." TY "." TY " " EMBER_WGMMA_D##NREG \
                         ", " OPS_AB_##NREG ", p, 1, 1" TAIL ";\n}\n"                                       \
                         : EMBER_WGMMA_OUT##NREG(d)                                                          \
                         : "l"(a), "l"(b), "r"(1));                                                          \
        }                                                                                                    \
    };
#define EMBER_WGMMA_DEF(T, TY, BN, NREG, OPS) EMBER_WGMMA_DEF_K(T, TY, k16, BN, NREG, OPS, ", 0, 0")
#define EMBER_WGMMA_DEF_FP8(BN, NREG, OPS) EMBER_WGMMA_DEF_K(EmberE4M3, "e4m3", k32, BN, NREG, OPS, "")

// Operand numbers after the accumulators: descriptor a, descriptor b, the scale-d flag.
#define OPS_AB_128 "%128, %129"
#define OPS_AB_96 "%96, %97"
#define OPS_AB_64 "%64, %65"
EMBER_WGMMA_DEF(__nv_bfloat16, "bf16", 256, 128, "%130, 0")
EMBER_WGMMA_DEF(__half, "f16", 256, 128, "%130, 0")
EMBER_WGMMA_DEF(__nv_bfloat16, "bf16", 192, 96, "%98, 0")
EMBER_WGMMA_DEF(__half, "f16", 192, 96, "%98, 0")
EMBER_WGMMA_DEF(__nv_bfloat16, "bf16", 128, 64, "%66, 0")
EMBER_WGMMA_DEF(__half, "f16", 128, 64, "%66, 0")
EMBER_WGMMA_DEF_FP8(256, 128, "%130, 0")
EMBER_WGMMA_DEF_FP8(192, 96, "%98, 0")
EMBER_WGMMA_DEF_FP8(128, 64, "%66, 0")

// Stores y[row][col..col + 1] (col even, both < n) as one 32-bit store.
template <typename T>
__device__ __forceinline__ void ember_sm90_store2(T* y, size_t index, float v0, float v1) {
    const T pair[2] = {ember_from_float<T>(v0), ember_from_float<T>(v1)};
    unsigned int bits;
    memcpy(&bits, pair, sizeof(bits));
    *reinterpret_cast<unsigned int*>(y + index) = bits;
}

// ---- the kernel --------------------------------------------------------------------------------

// TIn: the operands' storage, T itself, or EmberE4M3 with per-row scales x_scale[m] and
// w_scale[n] applied to the f32 sums (y = sum * x_scale[m] * w_scale[n] + bias[n]).
template <typename T, typename TIn, int BN, int STAGES, int CONSUMERS>
__device__ __forceinline__ void gemm_sm90(const EmberTensorMap* tm_x, const EmberTensorMap* tm_w, T* y, const T* bias,
                                          float* partials, const float* x_scale, const float* w_scale, const Sm90GemmParams& p) {
    constexpr bool FP8 = sizeof(TIn) == 1;
    constexpr int BM = 64 * CONSUMERS;
    // A stage holds 128 bytes of every row: 64 f16/bf16 or 128 e4m3 values.
    constexpr int BK = EMBER_SM90_BK * 2 / sizeof(TIn);
    constexpr int A_BYTES = BM * 128;
    constexpr int STAGE_BYTES = A_BYTES + BN * 128;
    extern __shared__ __align__(1024) unsigned char ember_dyn_smem[];
    __shared__ __align__(8) unsigned long long full[STAGES];
    __shared__ __align__(8) unsigned long long empty[STAGES];
    // The 128B swizzle repeats every 1024 bytes: tiles must start 1024-byte aligned.
    unsigned char* tiles = ember_dyn_smem + ((1024u - (ember_smem(ember_dyn_smem) & 1023u)) & 1023u);

    // Grouped tile order (see the header).
    const unsigned int tiles_n = gridDim.x, tiles_m = gridDim.y;
    const unsigned int block = blockIdx.y * tiles_n + blockIdx.x;
    const unsigned int first = block / (EMBER_SM90_GROUP_M * tiles_n) * EMBER_SM90_GROUP_M;
    const unsigned int rows = min(EMBER_SM90_GROUP_M, tiles_m - first);
    const unsigned int i = block - first * tiles_n;
    const int m0 = (first + i % rows) * BM;
    const int n0 = (i / rows) * BN;
    // Split-K: block z takes K tiles [k_first, k_first + k_tiles).
    const int k_first = blockIdx.z * p.k_tiles_per_split;
    const int k_tiles = min((int)((p.k + BK - 1) / BK) - k_first, (int)p.k_tiles_per_split);
    const int warpgroup = threadIdx.x / 128;

    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; ++s) {
            ember_mbar_init(&full[s], 1);
            ember_mbar_init(&empty[s], 4 * CONSUMERS);  // one arrival per consumer warp
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (warpgroup == 0) {
        // Producer: one thread streams the K tiles through the ring.
        if constexpr (CONSUMERS == 2) asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
        if (threadIdx.x == 0) {
            for (int t = 0; t < k_tiles; ++t) {
                const int s = t % STAGES;
                if (t >= STAGES) ember_mbar_wait(&empty[s], ((t / STAGES) - 1) & 1);
                unsigned char* stage = tiles + s * STAGE_BYTES;
                ember_mbar_expect_tx(&full[s], STAGE_BYTES);
                ember_tma_load_2d(stage, tm_x, &full[s], (k_first + t) * BK, m0);
                ember_tma_load_2d(stage + A_BYTES, tm_w, &full[s], (k_first + t) * BK, n0);
            }
        }
        return;
    }

    // Consumers: warpgroup 1 multiplies rows 0..63 of the tile, warpgroup 2 rows 64..127.
    if constexpr (CONSUMERS == 2) asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    const int half = warpgroup - 1;
    float d[BN / 2];
#pragma unroll
    for (int r = 0; r < BN / 2; ++r) d[r] = 0.f;
    for (int t = 0; t < k_tiles; ++t) {
        const int s = t % STAGES;
        ember_mbar_wait(&full[s], (t / STAGES) & 1);
        const unsigned char* a = tiles + s * STAGE_BYTES + half * 64 * 128;
        const unsigned char* b = tiles + s * STAGE_BYTES + A_BYTES;
        ember_wgmma_fence();
        // Four wgmmas of 32 bytes of K each (k16 of f16/bf16, k32 of e4m3).
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
            EmberWgmma<TIn, BN>::run(d, ember_wgmma_desc(a + kk * 32), ember_wgmma_desc(b + kk * 32));
        }
        ember_wgmma_commit();
        // The group of tile t - 1 is done: its stage may be refilled.
        ember_wgmma_wait<1>();
        if (t > 0 && (threadIdx.x & 31) == 0) ember_mbar_arrive(&empty[(t - 1) % STAGES]);
    }
    ember_wgmma_wait<0>();

    // Epilogue: straight from the accumulator fragments to y (N % 8 == 0, so a pair is in range
    // when its first column is); under split-K, the f32 sums to this split's partials instead.
    const int tid = threadIdx.x % 128;
    const unsigned int row = m0 + half * 64 + (tid / 32) * 16 + (tid % 32) / 4;
    const unsigned int col0 = n0 + 2 * (tid % 4);
    float* part = partials + (size_t)blockIdx.z * p.m * p.n;
    // FP8: the rows' scales (split-K's partial sums are scaled too: the reduce only adds).
    float sx0 = 1.f, sx1 = 1.f;
    if constexpr (FP8) {
        if (row < p.m) sx0 = x_scale[row];
        if (row + 8 < p.m) sx1 = x_scale[row + 8];
    }
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
        const unsigned int col = col0 + 8 * j;
        if (col >= p.n) continue;
        if constexpr (FP8) {
            const float w0 = w_scale[col], w1 = w_scale[col + 1];
            d[4 * j] *= sx0 * w0;
            d[4 * j + 1] *= sx0 * w1;
            d[4 * j + 2] *= sx1 * w0;
            d[4 * j + 3] *= sx1 * w1;
        }
        if (gridDim.z > 1) {
            if (row < p.m) *reinterpret_cast<float2*>(part + (size_t)row * p.n + col) = make_float2(d[4 * j], d[4 * j + 1]);
            if (row + 8 < p.m) *reinterpret_cast<float2*>(part + (size_t)(row + 8) * p.n + col) = make_float2(d[4 * j + 2], d[4 * j + 3]);
            continue;
        }
        float b0 = 0.f, b1 = 0.f;
        if (p.has_bias) {
            b0 = ember_to_float(bias[col]);
            b1 = ember_to_float(bias[col + 1]);
        }
        if (row < p.m) ember_sm90_store2(y, (size_t)row * p.n + col, d[4 * j] + b0, d[4 * j + 1] + b1);
        if (row + 8 < p.m) ember_sm90_store2(y, (size_t)(row + 8) * p.n + col, d[4 * j + 2] + b0, d[4 * j + 3] + b1);
    }
}

#define EMBER_GEMM_SM90(NAME, T, BN, STAGES, CONSUMERS, MIN_BLOCKS)                                          \
    extern "C" __global__ void __launch_bounds__(128 * (CONSUMERS + 1), MIN_BLOCKS) ember_gemm_sm90_##NAME(   \
        const __grid_constant__ EmberTensorMap tm_x, const __grid_constant__ EmberTensorMap tm_w, const T* x, \
        const T* w, T* y, const T* bias, float* partials, const Sm90GemmParams p) {                           \
        if constexpr (ember_compiles("ember_gemm_sm90_" #NAME))                                               \
            gemm_sm90<T, T, BN, STAGES, CONSUMERS>(&tm_x, &tm_w, y, bias, partials, nullptr, nullptr, p);     \
    }

// The FP8 entries (`--quantization fp8`): x and w in e4m3 with their f32 row scales, y in T.
#define EMBER_GEMM_SM90_FP8(NAME, T, BN, STAGES, CONSUMERS, MIN_BLOCKS)                                      \
    extern "C" __global__ void __launch_bounds__(128 * (CONSUMERS + 1), MIN_BLOCKS) ember_gemm_sm90_##NAME(   \
        const __grid_constant__ EmberTensorMap tm_x, const __grid_constant__ EmberTensorMap tm_w,             \
        const unsigned char* x, const unsigned char* w, T* y, const T* bias, float* partials,                \
        const float* x_scale, const float* w_scale, const Sm90GemmParams p) {                                 \
        if constexpr (ember_compiles("ember_gemm_sm90_" #NAME))                                               \
            gemm_sm90<T, EmberE4M3, BN, STAGES, CONSUMERS>(&tm_x, &tm_w, y, bias, partials, x_scale, w_scale, p); \
    }

// 128 x 256 ("n256"), 128 x 192 ("n192": 4 stages of 40 KB) and 128 x 128 ("n128"): 384
// threads, one block per SM. 64 x 128 ("m64"):
// one consumer warpgroup, 256 threads, 4 stages of 24 KB, two blocks per SM (decode batches).
EMBER_GEMM_SM90(bf16_n256, __nv_bfloat16, 256, 4, 2, 1)
EMBER_GEMM_SM90(f16_n256, __half, 256, 4, 2, 1)
EMBER_GEMM_SM90(bf16_n192, __nv_bfloat16, 192, 4, 2, 1)
EMBER_GEMM_SM90(f16_n192, __half, 192, 4, 2, 1)
EMBER_GEMM_SM90(bf16_n128, __nv_bfloat16, 128, 6, 2, 1)
EMBER_GEMM_SM90(f16_n128, __half, 128, 6, 2, 1)
EMBER_GEMM_SM90(bf16_m64, __nv_bfloat16, 128, 4, 1, 2)
EMBER_GEMM_SM90(f16_m64, __half, 128, 4, 1, 2)
EMBER_GEMM_SM90_FP8(e4m3_bf16_n256, __nv_bfloat16, 256, 4, 2, 1)
EMBER_GEMM_SM90_FP8(e4m3_f16_n256, __half, 256, 4, 2, 1)
EMBER_GEMM_SM90_FP8(e4m3_bf16_n192, __nv_bfloat16, 192, 4, 2, 1)
EMBER_GEMM_SM90_FP8(e4m3_f16_n192, __half, 192, 4, 2, 1)
EMBER_GEMM_SM90_FP8(e4m3_bf16_n128, __nv_bfloat16, 128, 6, 2, 1)
EMBER_GEMM_SM90_FP8(e4m3_f16_n128, __half, 128, 6, 2, 1)
EMBER_GEMM_SM90_FP8(e4m3_bf16_m64, __nv_bfloat16, 128, 4, 1, 2)
EMBER_GEMM_SM90_FP8(e4m3_f16_m64, __half, 128, 4, 1, 2)

// Split-K's second pass: y = round(partials[0] + ... + partials[splits - 1] + bias), four
// consecutive outputs per thread (N % 8 == 0: they share a row). 256 threads per block.
struct Sm90SplitParams {
    unsigned int m;
    unsigned int n;
    unsigned int splits;
    unsigned int has_bias;
};

template <typename T>
__device__ __forceinline__ void gemm_split_reduce(const float* __restrict__ partials, const T* __restrict__ bias,
                                                  T* __restrict__ y, const Sm90SplitParams& p) {
    const size_t total = (size_t)p.m * p.n;
    const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    if (i >= total) return;
    float4 acc = *reinterpret_cast<const float4*>(partials + i);
    for (unsigned int s = 1; s < p.splits; ++s) {
        const float4 v = *reinterpret_cast<const float4*>(partials + s * total + i);
        acc.x += v.x;
        acc.y += v.y;
        acc.z += v.z;
        acc.w += v.w;
    }
    if (p.has_bias) {
        const unsigned int col = (unsigned int)(i % p.n);
        acc.x += ember_to_float(bias[col]);
        acc.y += ember_to_float(bias[col + 1]);
        acc.z += ember_to_float(bias[col + 2]);
        acc.w += ember_to_float(bias[col + 3]);
    }
    ember_sm90_store2(y, i, acc.x, acc.y);
    ember_sm90_store2(y, i + 2, acc.z, acc.w);
}

#define EMBER_GEMM_SPLIT_REDUCE(SUFFIX, T)                                                                  \
    extern "C" __global__ void __launch_bounds__(256) ember_gemm_split_reduce_##SUFFIX(                     \
        const float* partials, const T* bias, T* y, const Sm90SplitParams p) {                               \
        if constexpr (ember_compiles("ember_gemm_split_reduce_" #SUFFIX))                                   \
            gemm_split_reduce<T>(partials, bias, y, p);                                                     \
    }

EMBER_GEMM_SPLIT_REDUCE(bf16, __nv_bfloat16)
EMBER_GEMM_SPLIT_REDUCE(f16, __half)
