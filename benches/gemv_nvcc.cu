// GEMV variants timed with nvcc on the GPU machine, outside Ember (docs/perf.md, fourth pass):
// kernels/gemv.cu's `ember_gemv_bf16` entry against `gemv_m`, a copy of its loop with the row
// count as a template parameter, at 1 and 8 rows on Llama-3-8B's projections, bf16, rotating over
// 8 weight copies so that L2 cannot serve them. At commit 9200f98 `ember_gemv_bf16` still had a
// runtime row count (the perf.md table's first and third columns); since cce8930 it dispatches to
// the templated loop (`gemv_rows`), and the two columns agree within ~10%.
//
//   (on the GPU machine, repository root)
//   nvcc -O3 -arch=sm_90a -std=c++17 -o /tmp/gemv_nvcc benches/gemv_nvcc.cu && /tmp/gemv_nvcc
#include "../kernels/common.cuh"
#include "../kernels/gemv.cu"
#include <cstdio>

template <typename T, int M>
__global__ void __launch_bounds__(256) gemv_m(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, const T* __restrict__ bias, const GemvParams p) {
    const unsigned int warp = threadIdx.x / EMBER_WARP;
    const unsigned int lane = threadIdx.x % EMBER_WARP;
    const unsigned int n = blockIdx.x * EMBER_GEMV_WARPS + warp;
    if (n >= p.n) return;
    float acc[M];
#pragma unroll
    for (int m = 0; m < M; ++m) acc[m] = 0.f;
    const T* row = w + (size_t)n * p.w_stride;
    constexpr unsigned int STEP = EMBER_WARP * 8;
    unsigned int k0 = lane * 8;
    for (; k0 + (EMBER_GEMV_UNROLL - 1) * STEP < p.k; k0 += EMBER_GEMV_UNROLL * STEP) {
        float wv[EMBER_GEMV_UNROLL][8];
#pragma unroll
        for (int u = 0; u < EMBER_GEMV_UNROLL; ++u) ember_load8(row + k0 + u * STEP, wv[u]);
#pragma unroll
        for (int u = 0; u < EMBER_GEMV_UNROLL; ++u)
#pragma unroll
            for (int m = 0; m < M; ++m) {
                float xv[8];
                ember_load8(x + (size_t)m * p.x_stride + k0 + u * STEP, xv);
#pragma unroll
                for (int j = 0; j < 8; ++j) acc[m] += wv[u][j] * xv[j];
            }
    }
    for (; k0 < p.k; k0 += STEP) {
        float wv[8];
        ember_load8(row + k0, wv);
#pragma unroll
        for (int m = 0; m < M; ++m) {
            float xv[8];
            ember_load8(x + (size_t)m * p.x_stride + k0, xv);
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[m] += wv[j] * xv[j];
        }
    }
#pragma unroll
    for (int m = 0; m < M; ++m) {
        const float s = ember_warp_sum(acc[m]);
        if (lane == 0) y[(size_t)m * p.n + n] = ember_from_float<T>(p.has_bias ? s + ember_to_float(bias[n]) : s);
    }
}

typedef __nv_bfloat16 bf;
template <typename K>
void time(const char* name, K kernel, int n, int k, int m, bf* x, bf* const* ws, bf* y) {
    GemvParams p{(unsigned)m, (unsigned)n, (unsigned)k, (unsigned)k, (unsigned)k, 0};
    int blocks = (n + EMBER_GEMV_WARPS - 1) / EMBER_GEMV_WARPS;
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    for (int i = 0; i < 8; ++i) kernel<<<blocks, 256>>>(x, ws[i % 8], y, y, p);
    cudaEventRecord(a);
    for (int i = 0; i < 64; ++i) kernel<<<blocks, 256>>>(x, ws[i % 8], y, y, p);
    cudaEventRecord(b); cudaEventSynchronize(b); float ms; cudaEventElapsedTime(&ms, a, b);
    float us = ms * 1000 / 64;
    printf("%-26s m=%d n=%6d k=%6d %7.2f us %5.2f TB/s\n", name, m, n, k, us, (double)n * k * 2 / us / 1e6);
}

int main() {
    int shapes[4][2] = {{6144, 4096}, {4096, 4096}, {28672, 4096}, {4096, 14336}};
    bf *x, *y; cudaMalloc(&x, 8 * 14336 * 2); cudaMalloc(&y, 8 * 28672 * 2); cudaMemset(x, 0, 8 * 14336 * 2);
    for (auto& s : shapes) {
        int n = s[0], k = s[1];
        bf* ws[8];
        for (int i = 0; i < 8; ++i) { cudaMalloc(&ws[i], (size_t)n * k * 2); cudaMemset(ws[i], 1, (size_t)n * k * 2); }
        time("ember gemv", ember_gemv_bf16, n, k, 1, x, ws, y);
        time("templated M=1", gemv_m<bf, 1>, n, k, 1, x, ws, y);
        time("ember gemv", ember_gemv_bf16, n, k, 8, x, ws, y);
        time("templated M=8", gemv_m<bf, 8>, n, k, 8, x, ws, y);
        for (int i = 0; i < 8; ++i) cudaFree(ws[i]);
    }
    return 0;
}
