//! Turns the scheduler's token-level outputs into [`RequestOutput`]s: incremental
//! detokenization, stop strings (which finish a request early), logprob accumulation, prompt
//! logprobs arriving chunk by chunk, and the gathering of `n > 1` samples under their parent.
//!
//! Streaming safety: text that could be the beginning of a stop string is held back from
//! `delta_text` until it is known not to be one.

use std::collections::{HashMap, HashSet};

use ember_core::{EngineCoreOutput, FinishReason, PositionLogprobs, PromptLogprobs, StopReason, TokenId};
use ember_tokenizer::{IncrementalDetokenizer, StopStringMatcher, Tokenizer};

use crate::error::Result;
use crate::outputs::{CompletionOutput, RequestOutput};

/// State of one sample (child request).
struct Sample {
    detokenizer: IncrementalDetokenizer,
    stops: StopStringMatcher,
    output: CompletionOutput,
    /// Bytes of `detokenizer` text already released in `delta_text`.
    emitted: usize,
    /// Text after stop-string truncation, once one matched.
    final_text: Option<String>,
    wants_logprobs: bool,
}

/// State of one user request (parent of its samples).
struct Parent {
    prompt: Option<String>,
    prompt_token_ids: Vec<TokenId>,
    prompt_logprobs: Option<PromptLogprobs>,
    /// Position of the next prompt-logprobs entry, to drop entries recomputed after preemption.
    prompt_cursor: usize,
    samples: Vec<Sample>,
    num_cached_tokens: usize,
}

/// The front half of the engine's output path (see module docs).
#[derive(Default)]
pub(crate) struct OutputProcessor {
    parents: HashMap<String, Parent>,
    /// child request id -> (parent id, sample index)
    children: HashMap<String, (String, usize)>,
    /// Build a [`RequestOutput`] only when a request finishes (vLLM's `FINAL_ONLY`, what the
    /// offline `LLM` uses): no per-step copies of growing outputs.
    final_only: bool,
}

/// Describes a request being registered.
pub(crate) struct NewRequest<'a> {
    pub request_id: &'a str,
    pub prompt: Option<String>,
    pub prompt_token_ids: &'a [TokenId],
    pub child_ids: Vec<String>,
    pub stop: Vec<String>,
    pub include_stop_str_in_output: bool,
    pub skip_special_tokens: bool,
    pub wants_logprobs: bool,
    pub wants_prompt_logprobs: bool,
}

impl OutputProcessor {
    /// Only finished requests get a [`RequestOutput`] from [`Self::process`] from now on.
    pub(crate) fn set_final_only(&mut self, final_only: bool) {
        self.final_only = final_only;
    }

    /// Registers a request and its samples.
    pub(crate) fn add(&mut self, req: NewRequest<'_>) {
        let samples = req
            .child_ids
            .iter()
            .enumerate()
            .map(|(index, child)| {
                self.children.insert(child.clone(), (req.request_id.to_string(), index));
                Sample {
                    detokenizer: IncrementalDetokenizer::new(req.prompt_token_ids, req.skip_special_tokens),
                    stops: StopStringMatcher::new(req.stop.clone(), req.include_stop_str_in_output),
                    output: CompletionOutput {
                        index,
                        text: String::new(),
                        token_ids: Vec::new(),
                        delta_text: String::new(),
                        delta_token_ids: Vec::new(),
                        cumulative_logprob: req.wants_logprobs.then_some(0.0),
                        logprobs: req.wants_logprobs.then(Vec::new),
                        finish_reason: None,
                        stop_reason: None,
                    },
                    emitted: 0,
                    final_text: None,
                    wants_logprobs: req.wants_logprobs,
                }
            })
            .collect();
        self.parents.insert(
            req.request_id.to_string(),
            Parent {
                prompt: req.prompt,
                prompt_token_ids: req.prompt_token_ids.to_vec(),
                prompt_logprobs: req.wants_prompt_logprobs.then(Vec::new),
                prompt_cursor: 0,
                samples,
                num_cached_tokens: 0,
            },
        );
    }

    /// Whether `request_id` (a user-facing id) is still tracked.
    pub(crate) fn contains(&self, request_id: &str) -> bool {
        self.parents.contains_key(request_id)
    }

    /// The child request ids of a user-facing request.
    pub(crate) fn child_ids(&self, request_id: &str) -> Vec<String> {
        self.children.iter().filter(|(_, (p, _))| p == request_id).map(|(c, _)| c.clone()).collect()
    }

    /// Processes one step's outputs. Returns the updated requests, and the child ids that a stop
    /// string finished (the caller tells the scheduler, which frees their blocks).
    pub(crate) fn process(
        &mut self,
        outputs: Vec<EngineCoreOutput>,
        tokenizer: &Tokenizer,
    ) -> Result<(Vec<RequestOutput>, Vec<String>)> {
        // In first-seen order; the set keeps the membership test O(1) at 1,000 requests a step.
        let mut touched: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut stopped = Vec::new();
        for out in outputs {
            let Some((parent_id, index)) = self.children.get(&out.request_id).cloned() else { continue };
            let Some(parent) = self.parents.get_mut(&parent_id) else { continue };
            parent.num_cached_tokens = parent.num_cached_tokens.max(out.num_cached_tokens);
            if let (Some(chunk), Some(acc)) = (&out.new_prompt_logprobs, parent.prompt_logprobs.as_mut()) {
                merge_prompt_logprobs(acc, &mut parent.prompt_cursor, chunk);
            }
            let sample = &mut parent.samples[index];
            if sample.output.finished() {
                continue;
            }
            if process_sample(sample, &out, tokenizer)? {
                stopped.push(out.request_id.clone());
            }
            if seen.insert(parent_id.clone()) {
                touched.push(parent_id);
            }
        }
        let mut results = Vec::with_capacity(touched.len());
        for parent_id in touched {
            let parent = &mut self.parents.get_mut(&parent_id).expect("touched parents exist");
            let finished = parent.samples.iter().all(|s| s.output.finished());
            if self.final_only && !finished {
                continue; // deltas accumulate until the final output
            }
            results.push(RequestOutput {
                request_id: parent_id.clone(),
                prompt: parent.prompt.clone(),
                prompt_token_ids: parent.prompt_token_ids.clone(),
                prompt_logprobs: parent.prompt_logprobs.clone(),
                outputs: parent.samples.iter().map(|s| s.output.clone()).collect(),
                finished,
                num_cached_tokens: parent.num_cached_tokens,
            });
            for s in &mut parent.samples {
                s.output.delta_text.clear();
                s.output.delta_token_ids.clear();
            }
            if finished {
                self.parents.remove(&parent_id);
                self.children.retain(|_, (p, _)| *p != parent_id);
            }
        }
        Ok((results, stopped))
    }

    /// Marks every sample of `request_id` aborted and returns its final output.
    pub(crate) fn abort(&mut self, request_id: &str) -> Option<RequestOutput> {
        let mut parent = self.parents.remove(request_id)?;
        self.children.retain(|_, (p, _)| p != request_id);
        for s in &mut parent.samples {
            if !s.output.finished() {
                s.output.finish_reason = Some(FinishReason::Abort.as_str());
            }
        }
        Some(RequestOutput {
            request_id: request_id.to_string(),
            prompt: parent.prompt,
            prompt_token_ids: parent.prompt_token_ids,
            prompt_logprobs: parent.prompt_logprobs,
            outputs: parent.samples.into_iter().map(|s| s.output).collect(),
            finished: true,
            num_cached_tokens: parent.num_cached_tokens,
        })
    }
}

/// Applies one core output to a sample; returns true when a stop string finished a request the
/// scheduler is still running.
fn process_sample(sample: &mut Sample, out: &EngineCoreOutput, tokenizer: &Tokenizer) -> Result<bool> {
    let o = &mut sample.output;
    o.token_ids.extend_from_slice(&out.new_token_ids);
    o.delta_token_ids.extend_from_slice(&out.new_token_ids);
    if let (Some(lp), true) = (&out.new_logprobs, sample.wants_logprobs) {
        o.cumulative_logprob = o.cumulative_logprob.map(|c| c + lp.token.logprob as f64);
        if let Some(all) = o.logprobs.as_mut() {
            all.push(lp.clone());
        }
    }
    let before = sample.detokenizer.output_text().len();
    if !out.new_token_ids.is_empty() {
        sample.detokenizer.push(tokenizer, &out.new_token_ids)?;
    }
    if out.finish_reason.is_some() {
        sample.detokenizer.finish(tokenizer)?; // flushes text held back (e.g. a partial character)
    }
    // Stop strings are searched in all text produced this step, the final flush included.
    let text = sample.detokenizer.output_text();
    let mut stopped = false;
    if let Some(m) = sample.stops.check(text, text.len() - before) {
        sample.final_text = Some(text[..m.truncate_to].to_string());
        o.finish_reason = Some(FinishReason::Stop.as_str());
        o.stop_reason = Some(StopReason::Str(m.stop));
        stopped = out.finish_reason.is_none(); // the scheduler still runs it: finish it there
    } else if let Some(reason) = out.finish_reason {
        o.finish_reason = Some(reason.as_str());
        o.stop_reason = out.stop_reason.clone();
    }
    // Release text: all of it once finished, otherwise what cannot start a stop string.
    let full = match &sample.final_text {
        Some(t) => t.clone(),
        None => sample.detokenizer.output_text().to_string(),
    };
    let releasable = if o.finished() { full.len() } else { sample.stops.streamable_len(&full) };
    if releasable > sample.emitted {
        o.delta_text.push_str(&full[sample.emitted..releasable]);
        sample.emitted = releasable;
    }
    o.text = full[..sample.emitted.min(full.len())].to_string();
    Ok(stopped)
}

/// Appends a chunk of prompt logprobs; a chunk starting with `None` (position 0) restarts the
/// cursor, so entries recomputed after a preemption are not appended twice.
fn merge_prompt_logprobs(acc: &mut PromptLogprobs, cursor: &mut usize, chunk: &[Option<PositionLogprobs>]) {
    if matches!(chunk.first(), Some(None)) {
        *cursor = 0;
    }
    for entry in chunk {
        if *cursor >= acc.len() {
            acc.push(entry.clone());
        }
        *cursor += 1;
    }
}
