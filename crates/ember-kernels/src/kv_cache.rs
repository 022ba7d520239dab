//! The paged KV cache on the device: for each layer one key and one value tensor of shape
//! `[num_blocks, block_size, num_kv_heads, head_dim]`.
//!
//! The block pool (which block belongs to which request) lives in `ember-core`; this type only
//! owns the memory. A layer's tensors are moved out while the layer runs (`take_layer`) and put
//! back afterwards, so that each holds a single reference and burn can update it in place.

use burn_tensor::{DType, Tensor, backend::Backend};

/// Geometry and dtype of the cache.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KvCacheSpec {
    /// Decoder layers (one K and one V tensor each).
    pub num_layers: usize,
    /// Blocks per layer.
    pub num_blocks: usize,
    /// Tokens per block.
    pub block_size: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Size of each head.
    pub head_dim: usize,
    /// Element type (the model's compute dtype).
    pub dtype: DType,
}

impl KvCacheSpec {
    /// Bytes of one block in one layer's K (or V) tensor.
    pub fn block_bytes_per_tensor(&self) -> usize {
        self.block_size * self.num_kv_heads * self.head_dim * self.dtype.size()
    }

    /// Bytes of one block across all layers, K and V: the unit the byte budget is divided by.
    pub fn block_bytes(&self) -> usize {
        2 * self.num_layers * self.block_bytes_per_tensor()
    }

    /// How many blocks fit in `budget_bytes`, keeping each per-layer tensor under
    /// `max_buffer_bytes` (wgpu on lavapipe cannot bind a buffer over 128 MiB).
    pub fn blocks_for_budget(&self, budget_bytes: usize, max_buffer_bytes: Option<usize>) -> usize {
        let by_budget = budget_bytes / self.block_bytes().max(1);
        match max_buffer_bytes {
            Some(limit) => by_budget.min(limit / self.block_bytes_per_tensor().max(1)),
            None => by_budget,
        }
    }

    /// Total bytes of the cache.
    pub fn total_bytes(&self) -> usize {
        self.num_blocks * self.block_bytes()
    }
}

/// One layer's key and value caches.
#[derive(Debug, Clone)]
pub struct KvLayerCache<B: Backend> {
    /// `[num_blocks, block_size, num_kv_heads, head_dim]`.
    pub key: Tensor<B, 4>,
    /// `[num_blocks, block_size, num_kv_heads, head_dim]`.
    pub value: Tensor<B, 4>,
}

/// The whole cache: one [`KvLayerCache`] per decoder layer.
#[derive(Debug)]
pub struct KvCache<B: Backend> {
    spec: KvCacheSpec,
    layers: Vec<Option<KvLayerCache<B>>>,
}

impl<B: Backend> KvCache<B> {
    /// Allocates a zeroed cache.
    pub fn new(spec: KvCacheSpec, device: &B::Device) -> Self {
        let shape = [spec.num_blocks, spec.block_size, spec.num_kv_heads, spec.head_dim];
        let layers = (0..spec.num_layers)
            .map(|_| {
                Some(KvLayerCache {
                    key: Tensor::zeros(shape, (device, spec.dtype)),
                    value: Tensor::zeros(shape, (device, spec.dtype)),
                })
            })
            .collect();
        Self { spec, layers }
    }

    /// The cache geometry.
    pub fn spec(&self) -> &KvCacheSpec {
        &self.spec
    }

    /// Moves layer `layer`'s tensors out; they must be returned with [`Self::put_layer`].
    ///
    /// # Panics
    /// If the layer is already taken (a bug in the model code).
    pub fn take_layer(&mut self, layer: usize) -> KvLayerCache<B> {
        self.layers[layer]
            .take()
            .unwrap_or_else(|| panic!("KV cache layer {layer} taken twice"))
    }

    /// Every layer's K and V tensors (clones of the handles), e.g. for a step graph to know
    /// which buffers it must not keep alive.
    pub fn tensors(&self) -> Vec<Tensor<B, 4>> {
        self.layers.iter().flatten().flat_map(|l| [l.key.clone(), l.value.clone()]).collect()
    }

    /// Returns a layer taken with [`Self::take_layer`].
    pub fn put_layer(&mut self, layer: usize, cache: KvLayerCache<B>) {
        self.layers[layer] = Some(cache);
    }
}
