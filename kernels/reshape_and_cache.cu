// reshape_and_cache: writes the step's new keys and values into their paged-cache slots
// (vLLM's op of the same name). key/value: [num_tokens, num_kv_heads, head_dim], contiguous;
// key_cache/value_cache: [num_blocks, block_size, num_kv_heads, head_dim]; slot_mapping:
// [num_tokens] (block * block_size + offset; negative = padding, skipped).
// Grid: one block per token; threads stride over num_kv_heads * head_dim.

// Every entry calls ember_pdl_enter first (see common.cuh): graphs may launch them early.
#define EMBER_PDL_ENTRIES 1

struct ReshapeAndCacheParams {
    unsigned int row;  // num_kv_heads * head_dim
    unsigned int pad;
};

template <typename T>
__device__ void reshape_and_cache(const T* __restrict__ key, const T* __restrict__ value, T* __restrict__ key_cache,
                                  T* __restrict__ value_cache, const int* __restrict__ slot_mapping,
                                  const ReshapeAndCacheParams p) {
    const long long token = blockIdx.x;
    const int slot = slot_mapping[token];
    if (slot < 0) return;
    const long long src = token * p.row;
    const long long dst = (long long)slot * p.row;
    for (unsigned int i = threadIdx.x; i < p.row; i += blockDim.x) {
        key_cache[dst + i] = key[src + i];
        value_cache[dst + i] = value[src + i];
    }
}

#define EMBER_RESHAPE_AND_CACHE(NAME, T)                                                                    \
    extern "C" __global__ void NAME(const T* key, const T* value, T* key_cache, T* value_cache,            \
                                    const int* slot_mapping, const ReshapeAndCacheParams p) {              \
        ember_pdl_enter();                                                                                 \
        reshape_and_cache<T>(key, value, key_cache, value_cache, slot_mapping, p);                         \
    }

EMBER_RESHAPE_AND_CACHE(ember_reshape_and_cache_f32, float)
EMBER_RESHAPE_AND_CACHE(ember_reshape_and_cache_f16, __half)
EMBER_RESHAPE_AND_CACHE(ember_reshape_and_cache_bf16, __nv_bfloat16)
