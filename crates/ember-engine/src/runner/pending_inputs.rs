//! Inputs a step takes from the step before it (async scheduling): a decode row scheduled
//! while the previous step was still running has, as its input, the token that step samples
//! for the same request ([`ember_core::ScheduledRequest::input_token_pending`]). The runner
//! remembers where each request's token is in the previous step's sampled ids, on the
//! device (eager steps: the host has not read them yet) or on the host (graph steps, which
//! read them back at once), and patches the flat input ids with them, so the host never
//! waits for the previous step before queueing the next.

use std::collections::HashMap;

use burn_tensor::{Int, Tensor, TensorData, backend::Backend};
use ember_core::SchedulerOutput;
use ember_kernels::SamplingBackend;

use super::inputs::StepInputs;

/// The previous step's sampled ids.
enum SampledIds<B: Backend> {
    Device(Tensor<B, 1, Int>),
    Host(Vec<u32>),
}

/// Where each request's token of the previous step is.
pub(crate) struct PrevSampled<B: Backend> {
    /// Request id -> index into the ids.
    rows: HashMap<String, usize>,
    ids: SampledIds<B>,
}

/// Input ids to overwrite on the device: flat token rows, and the rows of the previous step's
/// sampled ids that go there.
pub(crate) struct DevicePatch<B: Backend> {
    rows: Vec<i64>,
    from: Vec<i64>,
    sampled: Tensor<B, 1, Int>,
}

impl<B: Backend> PrevSampled<B> {
    /// Ids still on the device, `[sampled rows, 1]` in `step.sample_rows` order.
    pub(crate) fn on_device(out: &SchedulerOutput, step: &StepInputs, ids: Tensor<B, 2, Int>) -> Self {
        let len = ids.dims()[0];
        Self { rows: rows(out, step), ids: SampledIds::Device(ids.reshape([len])) }
    }

    /// Ids already read back, one per scheduled request (a graph step).
    pub(crate) fn on_host(out: &SchedulerOutput, ids: Vec<u32>) -> Self {
        let rows = out.scheduled.iter().enumerate().map(|(i, s)| (s.request_id.clone(), i)).collect();
        Self { rows, ids: SampledIds::Host(ids) }
    }
}

fn rows(out: &SchedulerOutput, step: &StepInputs) -> HashMap<String, usize> {
    step.sample_rows.iter().enumerate().map(|(i, r)| (out.scheduled[r.scheduled].request_id.clone(), i)).collect()
}

/// Fills `step.input_ids` at the pending inputs of `out`: directly when the previous step's
/// ids are on the host, otherwise returns the patch to apply on the device.
///
/// # Panics
/// If an input is pending and the previous step did not sample that request: the scheduler
/// and the runner disagree about what is in flight (an engine bug).
pub(crate) fn resolve<B: Backend>(prev: Option<&PrevSampled<B>>, out: &SchedulerOutput, step: &mut StepInputs) -> Option<DevicePatch<B>> {
    let mut flat_rows = Vec::new();
    let mut prev_rows = Vec::new();
    for (s, seq) in out.scheduled.iter().zip(&step.layout.seqs) {
        if !s.input_token_pending {
            continue;
        }
        let prev = prev.unwrap_or_else(|| panic!("request {}: pending input with no step before", s.request_id));
        let row = *prev.rows.get(&s.request_id).unwrap_or_else(|| panic!("request {}: pending input the step before did not sample", s.request_id));
        let flat = seq.query_start + seq.query_len - 1;
        match &prev.ids {
            SampledIds::Host(ids) => step.input_ids[flat] = i64::from(ids[row]),
            SampledIds::Device(_) => {
                flat_rows.push(flat as i64);
                prev_rows.push(row as i64);
            }
        }
    }
    let SampledIds::Device(ids) = &prev?.ids else { return None };
    if flat_rows.is_empty() {
        return None;
    }
    Some(DevicePatch { rows: flat_rows, from: prev_rows, sampled: ids.clone() })
}

impl<B: SamplingBackend> DevicePatch<B> {
    /// `ids` with the patched rows overwritten ([`SamplingBackend::patch_input_ids`]).
    pub(crate) fn apply(self, ids: Tensor<B, 1, Int>, device: &B::Device) -> Tensor<B, 1, Int> {
        let tensor = |v: Vec<i64>| {
            let len = v.len();
            Tensor::<B, 1, Int>::from_data(TensorData::new(v, [len]), device)
        };
        B::patch_input_ids(ids, tensor(self.rows), self.sampled, tensor(self.from))
    }
}
