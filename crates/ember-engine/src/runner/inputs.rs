//! Host-side inputs of one step, derived from the scheduler output: the flat token ids, the
//! [`BatchLayout`] (positions, slots, block tables), and which hidden rows need logits —
//! the last token of every sampling request, and each prompt position whose next token's
//! logprob was asked for.

use ember_core::{Scheduler, SchedulerOutput};
use ember_kernels::BatchLayout;

/// A hidden row whose logits feed the sampler.
pub(crate) struct SampleRow {
    /// Index into the flat token array.
    pub row: usize,
    /// Index into `SchedulerOutput::scheduled`.
    pub scheduled: usize,
}

/// A hidden row whose logits give the logprob of the next prompt token.
pub(crate) struct PromptRow {
    /// Index into the flat token array.
    pub row: usize,
    /// Index into `SchedulerOutput::scheduled`.
    pub scheduled: usize,
    /// The prompt token at the next position.
    pub target: u32,
}

/// Everything the runner needs on the host for one step.
pub(crate) struct StepInputs {
    pub input_ids: Vec<i64>,
    pub layout: BatchLayout,
    pub sample_rows: Vec<SampleRow>,
    pub prompt_rows: Vec<PromptRow>,
}

impl StepInputs {
    pub(crate) fn build(out: &SchedulerOutput, scheduler: &Scheduler, block_size: usize) -> Self {
        let layout = BatchLayout::from_sequences(
            block_size,
            out.scheduled.iter().map(|s| {
                let table = s.block_table.iter().map(|b| b.0).collect();
                (s.num_computed_tokens, s.token_ids.len(), table)
            }),
        );
        let input_ids = out.scheduled.iter().flat_map(|s| s.token_ids.iter().map(|&t| t as i64)).collect();
        let mut sample_rows = Vec::new();
        let mut prompt_rows = Vec::new();
        for (i, (s, seq)) in out.scheduled.iter().zip(&layout.seqs).enumerate() {
            if s.sample {
                sample_rows.push(SampleRow { row: seq.query_start + seq.query_len - 1, scheduled: i });
            }
            if s.sampling_params.prompt_logprobs.is_some() {
                let request = scheduler.get_request(&s.request_id).expect("scheduled request exists");
                for (offset, pos) in (s.num_computed_tokens..seq.context_len).enumerate() {
                    if pos + 1 < s.num_prompt_tokens {
                        let target = request.prompt_token_ids()[pos + 1];
                        prompt_rows.push(PromptRow { row: seq.query_start + offset, scheduled: i, target });
                    }
                }
            }
        }
        Self { input_ids, layout, sample_rows, prompt_rows }
    }
}
