//! [`StopStringMatcher`]: finding user stop strings in generated text, with
//! vLLM's semantics (output truncated before the stop string, or right after it
//! with `include_stop_str_in_output`), and how much of the tail a streaming
//! sender must hold back because it could still become a stop string.

/// A stop string found in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopMatch {
    /// The stop string that matched (the request's `stop_reason`).
    pub stop: String,
    /// Byte length the output text must be truncated to.
    pub truncate_to: usize,
}

/// Searches generated text for any of a request's stop strings.
#[derive(Debug, Clone)]
pub struct StopStringMatcher {
    stops: Vec<String>,
    include_stop_str_in_output: bool,
    /// Longest stop string, in bytes.
    max_len: usize,
    stopped: bool,
}

impl StopStringMatcher {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new(stops: Vec<String>, include_stop_str_in_output: bool) -> Self {
        let stops: Vec<String> = stops.into_iter().filter(|s| !s.is_empty()).collect();
        let max_len = stops.iter().map(String::len).max().unwrap_or(0);
        Self {
            stops,
            include_stop_str_in_output,
            max_len,
            stopped: false,
        }
    }

    /// Whether there are no stop strings (every check is a no-op).
    pub fn is_empty(&self) -> bool {
        self.stops.is_empty()
    }

    /// Looks for a stop string that ends inside the newest `new_delta_len`
    /// bytes of `text` (the full output so far), i.e. searches only the delta
    /// plus the `max_stop_len - 1` bytes before it. Returns the earliest match
    /// (ties: the first stop listed). After a match the matcher is done and
    /// further calls return `None`.
    pub fn check(&mut self, text: &str, new_delta_len: usize) -> Option<StopMatch> {
        if self.stopped || new_delta_len == 0 || self.stops.is_empty() {
            return None;
        }
        let delta_start = floor_char_boundary(text, text.len().saturating_sub(new_delta_len));
        let mut best: Option<(usize, &String)> = None;
        for stop in &self.stops {
            let from = floor_char_boundary(text, delta_start.saturating_sub(stop.len() - 1));
            if let Some(pos) = text[from..].find(stop.as_str()).map(|p| p + from)
                && best.is_none_or(|(b, _)| pos < b)
            {
                best = Some((pos, stop));
            }
        }
        let (pos, stop) = best?;
        self.stopped = true;
        let truncate_to = if self.include_stop_str_in_output {
            pos + stop.len()
        } else {
            pos
        };
        Some(StopMatch {
            stop: stop.clone(),
            truncate_to,
        })
    }

    /// Conservative holdback: a streamer that has not seen a match may send all
    /// but the last `holdback_chars()` characters. That is the longest stop
    /// string's length in chars minus one, or 0 with
    /// `include_stop_str_in_output` (a stop string is then part of the output).
    pub fn holdback_chars(&self) -> usize {
        if self.include_stop_str_in_output {
            return 0;
        }
        let longest = self.stops.iter().map(|s| s.chars().count()).max();
        longest.map_or(0, |n| n - 1)
    }

    /// Precise holdback: the byte length of the prefix of `text` that is safe to
    /// send, i.e. `text` minus its longest suffix that is a proper prefix of a
    /// stop string. Call after [`check`](Self::check) found no match.
    pub fn streamable_len(&self, text: &str) -> usize {
        if self.include_stop_str_in_output || self.max_len <= 1 {
            return text.len();
        }
        let longest_suffix = (1..self.max_len.min(text.len() + 1))
            .rev()
            .filter(|&k| text.is_char_boundary(text.len() - k))
            .find(|&k| {
                let tail = &text[text.len() - k..];
                self.stops
                    .iter()
                    .any(|s| s.len() > k && s.starts_with(tail))
            })
            .unwrap_or(0);
        text.len() - longest_suffix
    }
}

/// The largest char boundary of `text` that is `<= index`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut i = index.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(stops: &[&str], include: bool) -> StopStringMatcher {
        StopStringMatcher::new(stops.iter().map(|s| s.to_string()).collect(), include)
    }

    /// Feeds `deltas` one by one; returns (delta index, match) of the first match.
    fn run(m: &mut StopStringMatcher, deltas: &[&str]) -> Option<(usize, String, StopMatch)> {
        let mut text = String::new();
        for (i, d) in deltas.iter().enumerate() {
            text.push_str(d);
            if let Some(hit) = m.check(&text, d.len()) {
                return Some((i, text, hit));
            }
        }
        None
    }

    #[test]
    fn stop_spanning_two_deltas_truncates_before_it() {
        let mut m = matcher(&["</end>", "STOP"], false);
        let (i, text, hit) = run(&mut m, &["Hello </e", "nd> tail"]).unwrap();
        assert_eq!(i, 1);
        assert_eq!(hit.stop, "</end>");
        assert_eq!(&text[..hit.truncate_to], "Hello ");
        // Done: later checks are no-ops.
        assert_eq!(m.check("Hello </end> STOP", 5), None);
    }

    #[test]
    fn include_stop_str_keeps_it_and_drops_the_rest() {
        let mut m = matcher(&["\n\n"], true);
        let (_, text, hit) = run(&mut m, &["a\n", "\nb"]).unwrap();
        assert_eq!(&text[..hit.truncate_to], "a\n\n");
        assert_eq!(m.holdback_chars(), 0);
        assert_eq!(m.streamable_len("a\n"), 2);
    }

    #[test]
    fn earliest_match_wins_and_old_text_is_not_searched() {
        let mut m = matcher(&["world", "lo w"], false);
        let (_, _, hit) = run(&mut m, &["hel", "lo world"]).unwrap();
        assert_eq!((hit.stop.as_str(), hit.truncate_to), ("lo w", 3));

        // A stop already present before the search window is not re-found.
        let mut m = matcher(&["ab"], false);
        assert_eq!(m.check("ab xyz", 3), None);
        assert_eq!(m.check("ab xyz", 0), None);
        assert_eq!(matcher(&[], false).check("anything", 3), None);
    }

    #[test]
    fn multibyte_text_and_stops_never_split_chars() {
        let mut m = matcher(&["世界"], false);
        let (_, text, hit) = run(&mut m, &["naïve 世", "界 🙂"]).unwrap();
        assert_eq!(&text[..hit.truncate_to], "naïve ");
        // Oversized or mid-char delta lengths are clamped, not a panic.
        let mut m = matcher(&["🙂"], false);
        assert_eq!(m.check("é🙂", 2).map(|h| h.truncate_to), Some(2));
        let mut m = matcher(&["x"], false);
        assert_eq!(m.check("ab", 99), None);
    }

    #[test]
    fn holdback_withholds_possible_stop_prefixes_only() {
        let m = matcher(&["</s>", "STOP"], false);
        assert_eq!(m.holdback_chars(), 3);
        assert_eq!(m.streamable_len("Hello </"), 6);
        assert_eq!(m.streamable_len("Hello ST"), 6);
        assert_eq!(m.streamable_len("Hello S"), 6);
        assert_eq!(m.streamable_len("Hello"), 5);
        assert_eq!(m.streamable_len("<"), 0);
        assert_eq!(m.streamable_len(""), 0);
        let m = matcher(&["世界"], false);
        assert_eq!(m.holdback_chars(), 1);
        assert_eq!(m.streamable_len("a世"), 1);
        assert_eq!(m.streamable_len("a界"), 4);
        assert_eq!(matcher(&["x"], false).streamable_len("abx"), 3);
    }
}
