//! Stop conditions the scheduler checks after each sampled token (stop *strings* are the
//! engine's, which sees text).
//!
//! Order (vLLM's): while fewer than `min_tokens` were generated, EOS and stop token ids are
//! ignored; then EOS (unless `ignore_eos`) -> stopped without a stop reason; then
//! `stop_token_ids` -> stopped with that token as the reason; then `max_tokens` or the context
//! length -> length.

use crate::request::{Request, RequestStatus, StopReason};

/// The finished status (and stop reason) the request's last token causes, if any.
pub(crate) fn check_stop(
    request: &Request,
    max_model_len: usize,
) -> Option<(RequestStatus, Option<StopReason>)> {
    let params = request.sampling_params();
    let last = *request.output_token_ids().last()?;
    if request.num_output_tokens() >= params.min_tokens {
        if !params.ignore_eos && request.eos_token_ids().contains(&last) {
            return Some((RequestStatus::FinishedStopped, None));
        }
        if params.stop_token_ids.contains(&last) {
            return Some((
                RequestStatus::FinishedStopped,
                Some(StopReason::TokenId(last)),
            ));
        }
    }
    if request.num_output_tokens() >= request.max_tokens() || request.num_tokens() >= max_model_len
    {
        return Some((RequestStatus::FinishedLength, None));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sampling_params::SamplingParams;

    const EOS: u32 = 2;

    fn run(
        params: SamplingParams,
        outputs: &[u32],
        max_model_len: usize,
    ) -> Option<(RequestStatus, Option<StopReason>)> {
        let mut r = Request::new("r", vec![7, 7], Arc::new(params.clone()), vec![EOS]);
        r.max_tokens = params
            .max_tokens
            .unwrap_or(usize::MAX)
            .min(max_model_len - 2);
        for &t in outputs {
            r.append_output_token(t);
        }
        check_stop(&r, max_model_len)
    }

    #[test]
    fn eos_stops_without_reason() {
        assert_eq!(
            run(SamplingParams::default(), &[5, EOS], 100),
            Some((RequestStatus::FinishedStopped, None))
        );
        assert_eq!(run(SamplingParams::default(), &[5, 6], 100), None);
    }

    #[test]
    fn ignore_eos() {
        let p = SamplingParams {
            ignore_eos: true,
            ..Default::default()
        };
        assert_eq!(run(p, &[EOS], 100), None);
    }

    #[test]
    fn stop_token_id_is_the_reason() {
        let p = SamplingParams {
            stop_token_ids: vec![9],
            ..Default::default()
        };
        assert_eq!(
            run(p, &[9], 100),
            Some((RequestStatus::FinishedStopped, Some(StopReason::TokenId(9))))
        );
    }

    #[test]
    fn min_tokens_gates_eos_and_stop_ids_but_not_length() {
        let p = SamplingParams {
            min_tokens: 3,
            stop_token_ids: vec![9],
            max_tokens: Some(3),
            ..Default::default()
        };
        assert_eq!(run(p.clone(), &[EOS], 100), None);
        assert_eq!(run(p.clone(), &[EOS, 9], 100), None);
        assert_eq!(
            run(p.clone(), &[EOS, 9, EOS], 100),
            Some((RequestStatus::FinishedStopped, None))
        );
        assert_eq!(
            run(p, &[1, 1, 1], 100),
            Some((RequestStatus::FinishedLength, None))
        );
    }

    #[test]
    fn length_limits() {
        let p = SamplingParams {
            max_tokens: Some(2),
            ..Default::default()
        };
        assert_eq!(run(p.clone(), &[1], 100), None);
        assert_eq!(
            run(p, &[1, 1], 100),
            Some((RequestStatus::FinishedLength, None))
        );
        // Context length: prompt 2 + 2 outputs = 4 = max_model_len.
        assert_eq!(run(SamplingParams::default(), &[1], 4), None);
        assert_eq!(
            run(SamplingParams::default(), &[1, 1], 4),
            Some((RequestStatus::FinishedLength, None))
        );
        // EOS on the last allowed token reports stop, not length.
        let p = SamplingParams {
            max_tokens: Some(1),
            ..Default::default()
        };
        assert_eq!(
            run(p, &[EOS], 100),
            Some((RequestStatus::FinishedStopped, None))
        );
    }
}
