// quantize_fp8: per-row dynamic FP8 (E4M3) quantization for `--quantization fp8`. Row r of
// x [m, k] (row stride x_stride elements, f16/bf16) becomes q[r, 0..k] (dense bytes) and
// scale[r] (f32) with x[r, c] ~= e4m3(q[r, c]) * scale[r]:
//
//   amax = max |x[r, c]|;  scale = max(amax, EMBER_FP8_MIN_AMAX) / 448;
//   q = e4m3_rn_satfinite(x * (448 / max(amax, EMBER_FP8_MIN_AMAX)))
//
// 448 is E4M3's largest finite value, so the row's largest element maps to it. The same kernel
// quantizes the activations before every FP8 GEMM (one scale per token, computed on the fly)
// and the weights once at load (one scale per output channel): kernels/gemm_sm90.cu's e4m3
// entries multiply their f32 sums by both scales. Both divisions are IEEE round-to-nearest, so
// a host reference can reproduce the bytes exactly (tests/cuda_kernels.rs).
//
// One block of 256 threads per row, 8 elements per thread per step (16-byte loads; k % 8 == 0,
// x_stride % 8 == 0, 16-byte aligned x): a max-reduction over the row, then a second pass that
// converts pairs with cvt.rn.satfinite.e4m3x2.f32 (sm_89+) and stores 8 bytes per thread.
// Launch: block (256, 1, 1), grid (m, 1, 1); buffers x, q, scale; then QuantizeFp8Params.

#define EMBER_FP8_THREADS 256
#define EMBER_FP8_MAX 448.f
// A row of zeros (or near) gets a scale that keeps x * (448 / amax) finite.
#define EMBER_FP8_MIN_AMAX 1e-12f

struct QuantizeFp8Params {
    unsigned int k;
    unsigned int x_stride;
};

// Two f32 to two e4m3 bytes (lo at the lower address), rounded to nearest even, saturated to
// +-448.
__device__ __forceinline__ unsigned short ember_e4m3x2(float lo, float hi) {
    unsigned short out;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(out) : "f"(hi), "f"(lo));
#else
    out = 0;  // never launched below sm_89: the Rust side checks the device
#endif
    return out;
}

template <typename T>
__device__ __forceinline__ void quantize_fp8_rows(const T* __restrict__ x, unsigned char* __restrict__ q, float* __restrict__ scale,
                                                  const QuantizeFp8Params& p) {
    __shared__ float warp_max[EMBER_FP8_THREADS / EMBER_WARP];
    const unsigned int row = blockIdx.x;
    const T* xr = x + (size_t)row * p.x_stride;
    float amax = 0.f;
    for (unsigned int c = threadIdx.x * 8; c < p.k; c += EMBER_FP8_THREADS * 8) {
        const uint4 raw = *reinterpret_cast<const uint4*>(xr + c);
        const T* v = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int i = 0; i < 8; ++i) amax = fmaxf(amax, fabsf(ember_to_float(v[i])));
    }
#pragma unroll
    for (int offset = EMBER_WARP / 2; offset > 0; offset /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
    if (threadIdx.x % EMBER_WARP == 0) warp_max[threadIdx.x / EMBER_WARP] = amax;
    __syncthreads();
    amax = warp_max[0];
#pragma unroll
    for (int w = 1; w < EMBER_FP8_THREADS / EMBER_WARP; ++w) amax = fmaxf(amax, warp_max[w]);
    amax = fmaxf(amax, EMBER_FP8_MIN_AMAX);
    const float inv = __fdiv_rn(EMBER_FP8_MAX, amax);
    if (threadIdx.x == 0) scale[row] = __fdiv_rn(amax, EMBER_FP8_MAX);

    unsigned char* qr = q + (size_t)row * p.k;
    for (unsigned int c = threadIdx.x * 8; c < p.k; c += EMBER_FP8_THREADS * 8) {
        const uint4 raw = *reinterpret_cast<const uint4*>(xr + c);
        const T* v = reinterpret_cast<const T*>(&raw);
        unsigned short pairs[4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
            pairs[i] = ember_e4m3x2(__fmul_rn(ember_to_float(v[2 * i]), inv), __fmul_rn(ember_to_float(v[2 * i + 1]), inv));
        uint2 packed;
        memcpy(&packed, pairs, sizeof(packed));
        *reinterpret_cast<uint2*>(qr + c) = packed;
    }
}

#define EMBER_QUANTIZE_FP8(SUFFIX, T)                                                                          \
    extern "C" __global__ void __launch_bounds__(EMBER_FP8_THREADS) ember_quantize_fp8_##SUFFIX(              \
        const T* x, unsigned char* q, float* scale, const QuantizeFp8Params p) {                              \
        if constexpr (ember_compiles("ember_quantize_fp8_" #SUFFIX)) quantize_fp8_rows<T>(x, q, scale, p);    \
    }

EMBER_QUANTIZE_FP8(f16, __half)
EMBER_QUANTIZE_FP8(bf16, __nv_bfloat16)
