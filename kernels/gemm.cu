// gemm: y[m, n] = sum_k x[m, k] * w[n, k] for the linear layers at prefill and at large decode
// batches. x is [M, K] row-major (activations), w is the checkpoint's [N, K] row-major weight,
// y is [M, N] row-major. f32 accumulation, y rounded once to the element type.
//
// f16 / bf16: tensor cores through mma.sync.m16n8k16 (f32 accumulators), 256 threads per block,
// one 128 x 128 tile of y per block. The 8 warps are laid out 2 (M) x 4 (N); each warp owns a
// 64 x 32 sub-tile = 4 x 4 mma tiles of 16 x 8, i.e. 64 f32 accumulators per thread. Registers
// are capped at 128 (__launch_bounds__(256, 2)) so that two blocks share an SM: 16 warps and
// 2 x 48 KB of tiles in flight hide latency far better than one block of 8 warps could.
//
// Pipeline: K is walked in tiles of BK = 32. A stage holds the x tile (128 rows x 32) and the w
// tile (128 rows x 32) = 16 KB; 3 stages = 48 KB, the whole static shared-memory budget, so
// there is no room for padding (hence the swizzle). Tiles come in with 16-byte cp.async.cg
// (L2 only; src-size 0 zero-fills rows past M / N and chunks past K), two tiles in flight while
// the third is multiplied, one commit group per tile and one __syncthreads per tile (see the
// main loop for the hazard argument). The loop is unrolled by 3 so stage offsets are constants.
// Per tile and warp: 2 k16 steps of 4 + 2 ldmatrix.x4 (A, B fragments) and 16 mma.
//
// Fragment layouts (PTX ISA, mma.m16n8k16 with .bf16 / .f16, g = lane / 4, t = lane % 4):
//   A (16 x 16, row): a0 = (g, 2t..2t+1), a1 = (g + 8, 2t..), a2 = (g, 2t + 8..), a3 = (g + 8, 2t + 8..)
//   B (16 x 8, col):  b0 = (k 2t..2t+1, n g), b1 = (k 2t + 8.., n g)
//   C (16 x 8):       c0, c1 = (g, 2t..2t+1), c2, c3 = (g + 8, 2t..2t+1)
// ldmatrix (no .trans) hands lane l, for each 8 x 8 matrix, the 2 elements at row l / 4, cols
// 2 (l % 4)..+1; w's rows are n, its columns k, so B needs no transpose. Addressing in gemm_tc.
//
// Swizzle: a smem row is 32 halves = 64 bytes = 4 chunks of 16 bytes, so 8 rows of the same
// logical chunk would fall on only 2 distinct 16-byte bank groups (4-way conflict for ldmatrix,
// which reads 8 rows x 16 bytes per 8x8 matrix). Chunk c of row r is stored at physical chunk
// c ^ ((r >> 1) & 3): in any 8 consecutive rows (r0 % 8 == 0), (r & 1, (r >> 1) & 3) takes all
// 8 values, so the byte offset r * 64 + 16 * (c ^ ((r >> 1) & 3)) hits 8 distinct 16-byte bank
// groups: conflict-free ldmatrix, and conflict-free cp.async stores.
//
// Tile order: the grid is (ceil(N / 128), ceil(M / 128)) and covers each tile once, but the
// kernel visits the tiles grouped by EMBER_GEMM_GROUP_M (16) M tiles: linear block id
// b = blockIdx.y * gridDim.x + blockIdx.x goes to M tile first + i % rows, N tile i / rows
// (first = 16 * (b / (16 * gridDim.x)), rows = min(16, gridDim.y - first), i = b - first *
// gridDim.x), so blocks running together share w tiles in L2 (measured +10-20% at N = 28672 / 128256).
// It is a permutation of the same tiles inside the same grid; -DEMBER_GEMM_GROUP_M=1 gives the
// plain mapping (block (bx, by) -> y[by*128 .. +128][bx*128 .. +128]).
//
// f32: plain FFMA (no tensor cores, no TF32, so results are f32-exact up to summation order),
// 256 threads, a 64 x 64 tile per block, 4 x 4 outputs per thread, BK = 32 staged transposed
// in shared memory; block (bx, by) -> y[by*64 .. +64][bx*64 .. +64].
//
// Launch contract:
//   f16 / bf16: block (EMBER_GEMM_THREADS = 256, 1, 1), grid (ceil(N / 128), ceil(M / 128), 1).
//   f32:        block (256, 1, 1), grid (ceil(N / 64), ceil(M / 64), 1).
//   Static shared memory only (48 KB for f16 / bf16, 17 KB for f32). Params passed by value.
// Rows of x and w may be padded (x_stride, w_stride elements apart; cubecl pitches 2-d
// allocations), y is dense. Requires: K % 8 == 0, strides % 8 == 0, x / w / y 16-byte aligned, M >= 1, N >= 1. M, N arbitrary (edges are
// predicated), K need not be a multiple of 32 (the tail is zero-filled).

#define EMBER_GEMM_BM 128
#define EMBER_GEMM_BN 128
#define EMBER_GEMM_BK 32
#define EMBER_GEMM_STAGES 3
#define EMBER_GEMM_THREADS 256
#define EMBER_GEMM_F32_TILE 64
#define EMBER_GEMM_F32_BK 32
#define EMBER_GEMM_MIN_BLOCKS 2
#ifndef EMBER_GEMM_GROUP_M
#define EMBER_GEMM_GROUP_M 16
#endif

struct GemmParams {
    unsigned int m;
    unsigned int n;
    unsigned int k;
    unsigned int x_stride;  // elements between rows of x (>= k; cubecl pitches some 2-d rows)
    unsigned int w_stride;  // elements between rows of w (>= k)
    unsigned int has_bias;  // add bias[n] to the f32 accumulator before rounding (torch's addmm)
};

// ---- PTX wrappers ------------------------------------------------------------------------------

// Copies 16 bytes global -> shared, bypassing L1. src_size is 16 or 0: 0 reads nothing and
// fills the 16 destination bytes with zeros (src must still be a valid address).
__device__ __forceinline__ void ember_cp_async16(unsigned int dst, const void* src, unsigned int src_size) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_size) : "memory");
}

__device__ __forceinline__ void ember_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

template <int N> __device__ __forceinline__ void ember_cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ember_ldmatrix_x4(unsigned int r[4], unsigned int addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
}

template <typename T> struct EmberMma;
template <> struct EmberMma<__half> {
    static __device__ __forceinline__ void run(float c[4], const unsigned int a[4], unsigned int b0, unsigned int b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
            "{%0, %1, %2, %3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};
template <> struct EmberMma<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float c[4], const unsigned int a[4], unsigned int b0, unsigned int b1) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
            "{%0, %1, %2, %3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};

// Stores y[row][col] and y[row][col + 1] (col is even), plus the bias when there is one; a 32-bit
// store when both are in range and the pair is 4-byte aligned (n even), else element by element.
template <typename T>
__device__ __forceinline__ void ember_gemm_store2(T* y, const T* bias, unsigned int row, unsigned int col, const GemmParams& p, float v0, float v1) {
    if (row >= p.m || col >= p.n) return;
    if (p.has_bias) {
        v0 += ember_to_float(bias[col]);
        if (col + 1 < p.n) v1 += ember_to_float(bias[col + 1]);
    }
    T* dst = y + (size_t)row * p.n + col;
    if (col + 1 < p.n && (p.n & 1u) == 0) {
        const T pair[2] = {ember_from_float<T>(v0), ember_from_float<T>(v1)};
        unsigned int bits;
        memcpy(&bits, pair, sizeof(bits));
        *reinterpret_cast<unsigned int*>(dst) = bits;
    } else {
        dst[0] = ember_from_float<T>(v0);
        if (col + 1 < p.n) dst[1] = ember_from_float<T>(v1);
    }
}

// ---- f16 / bf16: tensor cores ------------------------------------------------------------------

// One stage: x tile then w tile, each 128 rows x 64 bytes, swizzled (see header).
#define EMBER_GEMM_TILE_BYTES (EMBER_GEMM_BM * EMBER_GEMM_BK * 2)
#define EMBER_GEMM_STAGE_BYTES (2 * EMBER_GEMM_TILE_BYTES)

template <typename T>
__device__ __forceinline__ void gemm_tc(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, const T* __restrict__ bias, const GemmParams p) {
    __shared__ __align__(128) unsigned char smem[EMBER_GEMM_STAGES * EMBER_GEMM_STAGE_BYTES];

    const unsigned int tid = threadIdx.x;
    const unsigned int lane = tid % EMBER_WARP;
    const unsigned int warp = tid / EMBER_WARP;
    const unsigned int warp_m = warp / 4;  // 0..1: rows warp_m * 64 .. +64 of the block tile
    const unsigned int warp_n = warp % 4;  // 0..3: cols warp_n * 32 .. +32

    // Tile order (see the header): runs of EMBER_GEMM_GROUP_M consecutive blocks walk down M
    // with the same w tile. A bijection of the grid's tile set onto itself.
    unsigned int bx = blockIdx.x, by = blockIdx.y;
    if (EMBER_GEMM_GROUP_M > 1) {
        const unsigned int gx = gridDim.x, gy = gridDim.y;
        const unsigned int bid = by * gx + bx;
        const unsigned int first = bid / (EMBER_GEMM_GROUP_M * gx) * EMBER_GEMM_GROUP_M;  // first M tile of the group
        const unsigned int rows = min((unsigned int)EMBER_GEMM_GROUP_M, gy - first);     // M tiles in the group (>= 1)
        const unsigned int in = bid - first * gx;                                         // < rows * gx
        by = first + in % rows;
        bx = in / rows;
    }
    const unsigned int m0 = by * EMBER_GEMM_BM;
    const unsigned int n0 = bx * EMBER_GEMM_BN;
    const unsigned int smem_base = (unsigned int)__cvta_generic_to_shared(smem);

    // Loader: a tile is 128 rows x 4 chunks = 512 chunks; thread tid copies chunk tid % 4 (k
    // offset 8 * c) of rows tid / 4 and tid / 4 + 64, of both x and w: copies i = 0, 1 are x rows,
    // 2, 3 are w rows. The swizzle key (row >> 1) & 3 = (tid >> 3) & 3 is the same for both rows.
    // src[i] walks along K (advanced by 3 tiles per trip of the main loop, so each cp.async uses
    // a constant offset from it); rows past M / N copy 0 bytes from row 0.
    const unsigned int ld_row = tid / 4;
    const unsigned int ld_chunk = tid % 4;
    const unsigned int ld_soff = ld_row * 64 + ((ld_chunk ^ ((tid >> 3) & 3)) * 16);
    const T* src[4];
    unsigned int src_size[4];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
        const unsigned int xr = m0 + ld_row + 64 * j;
        const unsigned int wr = n0 + ld_row + 64 * j;
        src[j] = x + (size_t)(xr < p.m ? xr : 0) * p.x_stride + ld_chunk * 8;
        src[2 + j] = w + (size_t)(wr < p.n ? wr : 0) * p.w_stride + ld_chunk * 8;
        src_size[j] = xr < p.m ? 16 : 0;
        src_size[2 + j] = wr < p.n ? 16 : 0;
    }
    const unsigned int ktiles = (p.k + EMBER_GEMM_BK - 1) / EMBER_GEMM_BK;
    const unsigned int kfull = p.k / EMBER_GEMM_BK;  // tiles with no K tail

    // Copies tile tl (whose elements start at src[i] + off) into stage.
    auto load_tile = [&](unsigned int tl, unsigned int off, unsigned int stage) {
        const unsigned int dst = smem_base + stage * EMBER_GEMM_STAGE_BYTES + ld_soff;
        if (tl < kfull) {
#pragma unroll
            for (int i = 0; i < 4; ++i)
                ember_cp_async16(dst + (i / 2) * EMBER_GEMM_TILE_BYTES + (i % 2) * 64 * 64, src[i] + off, src_size[i]);
        } else {
            // The K tail (K % 8 == 0, so a chunk is all in or all out): chunks past K are zero-filled
            // and point at the matrix base, which is always valid and never read.
            const bool k_ok = tl * EMBER_GEMM_BK + ld_chunk * 8 < p.k;
#pragma unroll
            for (int i = 0; i < 4; ++i)
                ember_cp_async16(dst + (i / 2) * EMBER_GEMM_TILE_BYTES + (i % 2) * 64 * 64,
                                 k_ok ? (const void*)(src[i] + off) : (const void*)(i < 2 ? x : w), k_ok ? src_size[i] : 0);
        }
    };

    // ldmatrix addressing (see the header for the fragment layouts). A, for a 16 x 16 block at
    // rows r0 (r0 % 16 == 0), k0: lane l points at row r0 + (l & 15), k k0 + 8 * (l >> 4), so
    // matrices 0..3 = (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15)
    // = a0..a3. B, for 16 n x 16 k of w's rows: lane l points at n r0 + (l & 7) + 8 * (l >> 4),
    // k k0 + 8 * ((l >> 3) & 1), so matrices 0..3 = (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7),
    // (n 8-15, k 8-15) = {b0, b1} of n-tile 2j, then {b0, b1} of n-tile 2j + 1, each pair in
    // consecutive registers as mma wants them. The swizzle key of every row a lane points at is
    // (row >> 1) & 3 = (l >> 1) & 3, because r0 % 16 == 0 and the in-block row is l & 15 or
    // (l & 7) + 8 * (l >> 4), whose bits 1..2 are those of l.
    const unsigned int lkey = (lane >> 1) & 3;
    unsigned int a_addr[2], b_addr[2];  // stage 0, m-tile / n-pair 0, k16 step ks
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
        a_addr[ks] = smem_base + (warp_m * 64 + (lane & 15)) * 64 + ((2 * ks + (lane >> 4)) ^ lkey) * 16;
        b_addr[ks] = smem_base + EMBER_GEMM_TILE_BYTES + (warp_n * 32 + (lane & 7) + ((lane >> 4) << 3)) * 64 +
                     ((2 * ks + ((lane >> 3) & 1)) ^ lkey) * 16;
    }

    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.f;

    // Prologue: tiles 0 and 1 in flight, one commit group each (empty groups past the end keep
    // the group count uniform).
#pragma unroll
    for (int s = 0; s < EMBER_GEMM_STAGES - 1; ++s) {
        if ((unsigned int)s < ktiles) load_tile(s, s * EMBER_GEMM_BK, s);
        ember_cp_async_commit();
    }
    ember_cp_async_wait<EMBER_GEMM_STAGES - 2>();  // tile 0 landed (this thread's copies)
    __syncthreads();                               // ... and everyone's

    // Main loop, unrolled by the stage count so that stage indices are constants: tile kt lives
    // in stage kt % 3 = h. Iteration kt: refill stage (h + 2) % 3 = (kt - 1) % 3 with tile kt + 2
    // (every warp finished reading it before the barrier that ended iteration kt - 1), multiply
    // tile kt, then wait for tile kt + 1. Commit groups so far: 2 + (kt + 1); wait_group 1 leaves
    // only the newest (tile kt + 2) pending, so tile kt + 1 has landed.
    for (unsigned int kt0 = 0; kt0 < ktiles; kt0 += EMBER_GEMM_STAGES) {
#pragma unroll
        for (int h = 0; h < EMBER_GEMM_STAGES; ++h) {
            const unsigned int kt = kt0 + h;
            if (kt >= ktiles) break;
            if (kt + EMBER_GEMM_STAGES - 1 < ktiles)
                load_tile(kt + EMBER_GEMM_STAGES - 1, (h + EMBER_GEMM_STAGES - 1) * EMBER_GEMM_BK, (h + EMBER_GEMM_STAGES - 1) % EMBER_GEMM_STAGES);
            ember_cp_async_commit();
#pragma unroll
            for (int ks = 0; ks < 2; ++ks) {
                unsigned int af[4][4];  // [m tile][a0..a3]
                unsigned int bf[2][4];  // [n pair][b0, b1 of n-tile 2j, b0, b1 of n-tile 2j + 1]
#pragma unroll
                for (int mt = 0; mt < 4; ++mt) ember_ldmatrix_x4(af[mt], a_addr[ks] + h * EMBER_GEMM_STAGE_BYTES + mt * 16 * 64);
#pragma unroll
                for (int j = 0; j < 2; ++j) ember_ldmatrix_x4(bf[j], b_addr[ks] + h * EMBER_GEMM_STAGE_BYTES + j * 16 * 64);
#pragma unroll
                for (int mt = 0; mt < 4; ++mt)
#pragma unroll
                    for (int nt = 0; nt < 4; ++nt)
                        EmberMma<T>::run(acc[mt][nt], af[mt], bf[nt >> 1][(nt & 1) * 2], bf[nt >> 1][(nt & 1) * 2 + 1]);
            }
            if (kt + 1 < ktiles) {
                ember_cp_async_wait<EMBER_GEMM_STAGES - 2>();
                __syncthreads();
            }
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) src[i] += EMBER_GEMM_STAGES * EMBER_GEMM_BK;
    }
    ember_cp_async_wait<0>();  // only empty groups can be pending; leave no copy in flight

    // Epilogue. C fragment of an m16n8 tile: c0, c1 at (g, 2t + {0, 1}), c2, c3 at (g + 8, ...),
    // g = lane / 4, t = lane % 4.
    const unsigned int row_base = m0 + warp_m * 64 + (lane >> 2);
    const unsigned int col_base = n0 + warp_n * 32 + (lane & 3) * 2;
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
            const unsigned int r = row_base + mt * 16;
            const unsigned int c = col_base + nt * 8;
            ember_gemm_store2<T>(y, bias, r, c, p, acc[mt][nt][0], acc[mt][nt][1]);
            ember_gemm_store2<T>(y, bias, r + 8, c, p, acc[mt][nt][2], acc[mt][nt][3]);
        }
}

// ---- f32: FFMA ---------------------------------------------------------------------------------

// xs[k][m], ws[k][n]: the tiles transposed so that a thread reads 4 consecutive m (or n) with one
// float4. Row stride 64 + 4 floats keeps float4 alignment.
#define EMBER_GEMM_F32_LD (EMBER_GEMM_F32_TILE + 4)

__device__ __forceinline__ void gemm_f32(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y, const float* __restrict__ bias, const GemmParams p) {
    __shared__ __align__(16) float xs[EMBER_GEMM_F32_BK][EMBER_GEMM_F32_LD];
    __shared__ __align__(16) float ws[EMBER_GEMM_F32_BK][EMBER_GEMM_F32_LD];

    const unsigned int tid = threadIdx.x;
    const unsigned int tn = tid % 16;  // cols tn * 4 .. +4 of the tile
    const unsigned int tm = tid / 16;  // rows tm * 4 .. +4
    const unsigned int m0 = blockIdx.y * EMBER_GEMM_F32_TILE;
    const unsigned int n0 = blockIdx.x * EMBER_GEMM_F32_TILE;

    // Loader: 64 rows x 8 float4 per tile = 512 float4; thread tid loads float4 tid % 8 of rows
    // tid / 8 and tid / 8 + 32, for x and w.
    const unsigned int ld_row = tid / 8;
    const unsigned int ld_c = (tid % 8) * 4;

    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;

    for (unsigned int k0 = 0; k0 < p.k; k0 += EMBER_GEMM_F32_BK) {
        const bool k_ok = k0 + ld_c < p.k;  // K % 8 == 0: a float4 is all in or all out
        float4 xv[2], wv[2];
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const unsigned int xr = m0 + ld_row + 32 * j;
            const unsigned int wr = n0 + ld_row + 32 * j;
            const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
            xv[j] = (k_ok && xr < p.m) ? *reinterpret_cast<const float4*>(x + (size_t)xr * p.x_stride + k0 + ld_c) : zero;
            wv[j] = (k_ok && wr < p.n) ? *reinterpret_cast<const float4*>(w + (size_t)wr * p.w_stride + k0 + ld_c) : zero;
        }
        __syncthreads();  // the previous tile has been consumed
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const unsigned int r = ld_row + 32 * j;
            xs[ld_c + 0][r] = xv[j].x; xs[ld_c + 1][r] = xv[j].y; xs[ld_c + 2][r] = xv[j].z; xs[ld_c + 3][r] = xv[j].w;
            ws[ld_c + 0][r] = wv[j].x; ws[ld_c + 1][r] = wv[j].y; ws[ld_c + 2][r] = wv[j].z; ws[ld_c + 3][r] = wv[j].w;
        }
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < EMBER_GEMM_F32_BK; ++kk) {
            const float4 a = *reinterpret_cast<const float4*>(&xs[kk][tm * 4]);
            const float4 b = *reinterpret_cast<const float4*>(&ws[kk][tn * 4]);
            const float av[4] = {a.x, a.y, a.z, a.w};
            const float bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
    }

#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const unsigned int r = m0 + tm * 4 + i;
        if (r >= p.m) continue;
        const unsigned int c = n0 + tn * 4;
        float* dst = y + (size_t)r * p.n + c;
        if (p.has_bias)
#pragma unroll
            for (int j = 0; j < 4; ++j)
                if (c + j < p.n) acc[i][j] += bias[c + j];
        if (c + 3 < p.n && (p.n & 3u) == 0) {
            *reinterpret_cast<float4*>(dst) = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j)
                if (c + j < p.n) dst[j] = acc[i][j];
        }
    }
}

#define EMBER_GEMM_TC(SUFFIX, T)                                                                               \
    extern "C" __global__ void __launch_bounds__(EMBER_GEMM_THREADS, EMBER_GEMM_MIN_BLOCKS)                     \
        ember_gemm_##SUFFIX(const T* x, const T* w, T* y, const T* bias, const GemmParams p) {                  \
        if constexpr (ember_compiles("ember_gemm_" #SUFFIX))                                                    \
            gemm_tc<T>(x, w, y, bias, p);                                                                       \
    }

EMBER_GEMM_TC(f16, __half)
EMBER_GEMM_TC(bf16, __nv_bfloat16)

extern "C" __global__ void __launch_bounds__(EMBER_GEMM_THREADS) ember_gemm_f32(const float* x, const float* w, float* y, const float* bias, const GemmParams p) {
    gemm_f32(x, w, y, bias, p);
}
