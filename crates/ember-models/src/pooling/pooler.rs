//! [`Pooler`]: pooling and normalisation on the device, for encoders (padded rows) and
//! decoders (flat rows) alike: each input is a span `(first row, length)` of the hidden
//! states. CLS and last-token select one row per span; the mean-style types are one matmul
//! with a `[inputs, rows]` weight matrix built on the host (zero outside each span). The
//! result is f32, L2-normalised when the model has a Normalize module.

use burn_tensor::{DType, FloatDType, Int, Tensor, TensorData, backend::Backend};

use crate::pooling::{PoolerConfig, PoolingType};

/// Pools hidden states into embeddings.
#[derive(Debug, Clone)]
pub struct Pooler {
    config: PoolerConfig,
}

impl Pooler {
    /// A pooler for `config`.
    pub fn new(config: PoolerConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &PoolerConfig {
        &self.config
    }

    /// `hidden: [rows, hidden]`, one span per input → `[inputs, hidden]` in f32.
    pub fn pool<B: Backend>(&self, hidden: Tensor<B, 2>, spans: &[(usize, usize)]) -> Tensor<B, 2> {
        let device = hidden.device();
        let [rows, _] = hidden.dims();
        let hidden = hidden.cast(FloatDType::F32);
        let pooled = match selected_rows(self.config.pooling_type, spans) {
            Some(index) => {
                let len = index.len();
                hidden.select(0, Tensor::<B, 1, Int>::from_data(TensorData::new(index, [len]), &device))
            }
            None => {
                let weights = span_weights(self.config.pooling_type, spans, rows);
                let w = Tensor::<B, 2>::from_data(TensorData::new(weights, [spans.len(), rows]), (&device, DType::F32));
                w.matmul(hidden)
            }
        };
        if self.config.normalize {
            let norm = (pooled.clone() * pooled.clone()).sum_dim(1).sqrt().clamp_min(1e-12);
            pooled / norm
        } else {
            pooled
        }
    }

    /// [`Self::pool`], read back to the host: one `Vec` per input.
    pub fn pool_to_host<B: Backend>(&self, hidden: Tensor<B, 2>, spans: &[(usize, usize)]) -> Vec<Vec<f32>> {
        let pooled = self.pool(hidden, spans);
        let [_, dim] = pooled.dims();
        let values = pooled.into_data().to_vec::<f32>().expect("pooled embeddings are f32");
        values.chunks(dim.max(1)).map(<[f32]>::to_vec).collect()
    }
}

/// The row of each span for the single-row types.
fn selected_rows(pooling_type: PoolingType, spans: &[(usize, usize)]) -> Option<Vec<i64>> {
    match pooling_type {
        PoolingType::Cls => Some(spans.iter().map(|&(start, _)| start as i64).collect()),
        PoolingType::Last => Some(spans.iter().map(|&(start, len)| (start + len - 1) as i64).collect()),
        _ => None,
    }
}

/// Row-major `[spans, rows]` weights of the mean-style types.
fn span_weights(pooling_type: PoolingType, spans: &[(usize, usize)], rows: usize) -> Vec<f32> {
    let mut w = vec![0.0f32; spans.len() * rows];
    for (i, &(start, len)) in spans.iter().enumerate() {
        let row = &mut w[i * rows + start..i * rows + start + len];
        match pooling_type {
            PoolingType::MeanSqrtLen => row.fill(1.0 / (len as f32).sqrt()),
            PoolingType::WeightedMean => {
                let total = (len * (len + 1) / 2) as f32;
                row.iter_mut().enumerate().for_each(|(j, x)| *x = (j + 1) as f32 / total);
            }
            _ => row.fill(1.0 / len as f32),
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_ndarray::NdArray;

    type B = NdArray<f32>;

    fn pooler(pooling_type: PoolingType, normalize: bool) -> Pooler {
        Pooler::new(PoolerConfig { pooling_type, normalize, embedding_dimension: None })
    }

    #[test]
    fn each_type_on_two_spans() {
        // Rows: span A = rows 0..3, a padding row 3, span B = rows 4..6.
        let rows: Vec<f32> = vec![1., 0., 2., 0., 3., 0., 99., 99., 0., 1., 0., 3.];
        let hidden = Tensor::<B, 2>::from_data(TensorData::new(rows, [6, 2]), &Default::default());
        let spans = [(0, 3), (4, 2)];
        let run = |t| pooler(t, false).pool_to_host(hidden.clone(), &spans);
        assert_eq!(run(PoolingType::Cls), vec![vec![1., 0.], vec![0., 1.]]);
        assert_eq!(run(PoolingType::Last), vec![vec![3., 0.], vec![0., 3.]]);
        assert_eq!(run(PoolingType::Mean), vec![vec![2., 0.], vec![0., 2.]]);
        let sqrt = run(PoolingType::MeanSqrtLen);
        assert!((sqrt[0][0] - 6. / 3f32.sqrt()).abs() < 1e-6 && (sqrt[1][1] - 4. / 2f32.sqrt()).abs() < 1e-6);
        let weighted = run(PoolingType::WeightedMean);
        assert!((weighted[0][0] - 14. / 6.).abs() < 1e-6 && (weighted[1][1] - 7. / 3.).abs() < 1e-6);
        let normed = pooler(PoolingType::Mean, true).pool_to_host(hidden, &spans);
        assert_eq!(normed, vec![vec![1., 0.], vec![0., 1.]]);
    }
}
