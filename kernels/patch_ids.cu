// The input ids a step takes from the step before it (async scheduling): ids[rows[i]] =
// sampled[from[i]] for i < n, all i32. A kernel of its own because burn's select + scatter_nd
// size their blocks by the element count, so cubecl compiled a new kernel (~150 ms) for every
// new number of patched rows, which changes at every prefill and tail step.

extern "C" __global__ void __launch_bounds__(256)
ember_patch_input_ids(int* __restrict__ ids, const int* __restrict__ rows, const int* __restrict__ sampled,
                      const int* __restrict__ from, const unsigned int n) {
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) ids[rows[i]] = sampled[from[i]];
}
