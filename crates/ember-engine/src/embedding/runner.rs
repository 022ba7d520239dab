//! [`EmbeddingCore`]: the embedding model on backend `B` — the backbone, the pooler and the
//! batch budget — behind [`EmbeddingCoreApi`] so that only `backend.rs` names a backend.
//!
//! A call embeds any number of inputs: they are sorted by length and cut into passes of at
//! most `max_num_seqs` sequences and `max_num_batched_tokens` padded tokens (one long input
//! always gets a pass of its own), so similar lengths share a pass and padding stays small.
//! Decoder passes use a scratch paged KV cache sized for that pass (each sequence gets fresh
//! blocks, all positions computed at once: a plain causal prefill).

use burn_tensor::{DType, Int, Tensor, TensorData};
use ember_kernels::{AttentionMetadata, BatchLayout, KvCache, KvCacheSpec, PagedAttentionBackend};
use ember_loader::SafetensorsWeights;
use ember_models::{DecoderModel, EncoderBatch, EncoderModel, Pooler};

use crate::embedding::spec::{Backbone, EmbeddingSpec};
use crate::engine_core::EngineInfo;
use crate::error::Result;

/// What the engine needs from an embedding model, whatever its backend.
pub(crate) trait EmbeddingCoreApi {
    /// One embedding per input (inputs already validated: non-empty, in vocabulary, within
    /// the maximum length).
    fn embed(&mut self, inputs: &[&[u32]]) -> Vec<Vec<f32>>;
    fn info(&self) -> &EngineInfo;
}

// One per engine: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum LoadedBackbone<B: PagedAttentionBackend> {
    Encoder(EncoderModel<B>),
    Decoder { model: DecoderModel<B>, kv: KvCacheSpec, windows: Vec<Option<usize>> },
}

/// Backbone + pooler on backend `B`.
pub(crate) struct EmbeddingCore<B: PagedAttentionBackend> {
    backbone: LoadedBackbone<B>,
    pooler: Pooler,
    device: B::Device,
    max_num_seqs: usize,
    /// Padded tokens per pass.
    max_pass_tokens: usize,
    info: EngineInfo,
}

impl<B: PagedAttentionBackend> EmbeddingCore<B> {
    /// Loads the backbone in `dtype` on `device`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn load(
        spec: &EmbeddingSpec,
        weights: &SafetensorsWeights,
        device: B::Device,
        dtype: DType,
        block_size: usize,
        max_num_seqs: usize,
        max_num_batched_tokens: usize,
        info: EngineInfo,
    ) -> Result<Self> {
        let backbone = match &spec.backbone {
            Backbone::Encoder(c) => LoadedBackbone::Encoder(EncoderModel::load(c, weights, &device, dtype)?),
            Backbone::Decoder(c) => LoadedBackbone::Decoder {
                model: DecoderModel::load_without_lm_head(c, weights, &device, dtype, spec.max_model_len)?,
                kv: KvCacheSpec {
                    num_layers: c.num_layers,
                    num_blocks: 0,
                    block_size,
                    num_kv_heads: c.num_kv_heads,
                    head_dim: c.head_dim,
                    dtype,
                },
                windows: c.distinct_windows(),
            },
        };
        Ok(Self {
            backbone,
            pooler: Pooler::new(spec.pooler.clone()),
            device,
            max_num_seqs: max_num_seqs.max(1),
            max_pass_tokens: max_num_batched_tokens.max(spec.max_model_len),
            info,
        })
    }

    /// One forward pass over `seqs`.
    fn run_pass(&self, seqs: &[&[u32]]) -> Vec<Vec<f32>> {
        match &self.backbone {
            LoadedBackbone::Encoder(model) => {
                let batch = EncoderBatch::new(model.config(), seqs, &self.device);
                let hidden = model.forward(&batch);
                self.pooler.pool_to_host(hidden, &batch.spans())
            }
            LoadedBackbone::Decoder { model, kv, windows } => {
                let mut next_block = 0u32;
                let layout = BatchLayout::from_sequences(
                    kv.block_size,
                    seqs.iter().map(|s| {
                        let blocks = s.len().div_ceil(kv.block_size) as u32;
                        let table = (next_block..next_block + blocks).collect();
                        next_block += blocks;
                        (0, s.len(), table)
                    }),
                );
                let mut cache = KvCache::new(KvCacheSpec { num_blocks: next_block as usize, ..*kv }, &self.device);
                let metadata = AttentionMetadata::<B>::new(&layout, windows, &self.device);
                let ids: Vec<i64> = seqs.iter().flat_map(|s| s.iter().map(|&t| t as i64)).collect();
                let hidden = model.forward(int_tensor::<B>(ids, &self.device), int_tensor::<B>(layout.positions(), &self.device), &mut cache, &metadata);
                let spans: Vec<(usize, usize)> = layout.seqs.iter().map(|s| (s.query_start, s.query_len)).collect();
                self.pooler.pool_to_host(hidden, &spans)
            }
        }
    }
}

impl<B: PagedAttentionBackend> EmbeddingCoreApi for EmbeddingCore<B> {
    fn embed(&mut self, inputs: &[&[u32]]) -> Vec<Vec<f32>> {
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); inputs.len()];
        for pass in plan_passes(inputs, self.max_num_seqs, self.max_pass_tokens) {
            let seqs: Vec<&[u32]> = pass.iter().map(|&i| inputs[i]).collect();
            for (i, embedding) in pass.into_iter().zip(self.run_pass(&seqs)) {
                out[i] = embedding;
            }
        }
        out
    }

    fn info(&self) -> &EngineInfo {
        &self.info
    }
}

/// Input indices grouped into passes: sorted by length, each pass at most `max_seqs` inputs
/// and `max_tokens` padded tokens (`count × longest`), never empty.
fn plan_passes(inputs: &[&[u32]], max_seqs: usize, max_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|&i| inputs[i].len());
    let mut passes: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let len = inputs[i].len();
        match passes.last_mut() {
            // Sorted ascending: the newcomer is the longest of the pass.
            Some(pass) if pass.len() < max_seqs && (pass.len() + 1) * len <= max_tokens => pass.push(i),
            _ => passes.push(vec![i]),
        }
    }
    passes
}

fn int_tensor<B: PagedAttentionBackend>(values: Vec<i64>, device: &B::Device) -> Tensor<B, 1, Int> {
    let len = values.len();
    Tensor::from_data(TensorData::new(values, [len]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_respect_both_budgets_and_keep_every_input() {
        let data: Vec<Vec<u32>> = [5, 1, 9, 3, 3, 40, 2].iter().map(|&n| vec![0; n]).collect();
        let inputs: Vec<&[u32]> = data.iter().map(Vec::as_slice).collect();
        let passes = plan_passes(&inputs, 3, 12);
        let mut seen: Vec<usize> = passes.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        for pass in &passes {
            let longest = pass.iter().map(|&i| inputs[i].len()).max().unwrap();
            assert!(pass.len() <= 3 && (pass.len() * longest <= 12 || pass.len() == 1), "{passes:?}");
        }
        assert!(passes.iter().any(|p| p == &vec![5]), "the 40-token input runs alone: {passes:?}");
    }
}
