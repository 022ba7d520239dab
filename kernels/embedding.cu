// Token embedding lookup (`embed_tokens[input_ids]`), the first op of a decoder's forward pass.
// A plain row gather, dtype-agnostic: rows move as 16-byte vectors. It exists as an Ember kernel
// (instead of burn's `select`) so that a decode step's forward pass is Ember kernels only and can
// be captured into a CUDA graph (crates/ember-kernels/src/cuda/step_graph.rs). Ids outside the
// vocabulary give a zero row (the engine rejects them before they get here).

// Every entry calls ember_pdl_enter first (see common.cuh): graphs may launch them early.
#define EMBER_PDL_ENTRIES 1

struct EmbeddingParams {
    unsigned rows;          // tokens
    unsigned row_vecs;      // 16-byte vectors per output row
    unsigned weight_vecs;   // 16-byte vectors between weight rows (cubecl may pitch rows)
    unsigned vocab;         // weight rows
};

extern "C" __global__ void __launch_bounds__(256)
ember_embedding(const uint4* __restrict__ weight, const int* __restrict__ ids, uint4* __restrict__ out,
                const EmbeddingParams p) {
    ember_pdl_enter();
    const unsigned row = blockIdx.x;
    if (row >= p.rows) return;
    const int id = ids[row];
    const bool valid = id >= 0 && (unsigned)id < p.vocab;
    const uint4* src = weight + (size_t)(valid ? id : 0) * p.weight_vecs;
    uint4* dst = out + (size_t)row * p.row_vecs;
    for (unsigned i = threadIdx.x; i < p.row_vecs; i += blockDim.x) {
        dst[i] = valid ? src[i] : make_uint4(0u, 0u, 0u, 0u);
    }
}
