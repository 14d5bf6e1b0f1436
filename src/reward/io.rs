//! Reading rollouts and labels: one JSON object a line (JSONL), with line numbers for every
//! problem. Blank lines are skipped; extra fields are ignored.
//!
//! Rollout line: `{"id": "r1", "group": "q1", "sample": "s1", "completion": "...", "zoomed": true}`,
//! or `"trace": {...}` (an `actfer.trace/1` document) in place of `completion`. With a
//! completion, `zoomed` defaults to whether the completion called the `zoom` tool; with a trace,
//! it is read from the trace.
//!
//! Label line: `{"sample": "s1", "emotion": "happiness", "aus": ["AU6", "AU12"]}`.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::parse::{parse_completion, parse_trace, Parsed};
use super::terms::Gold;
use crate::facs::{AuCode, AuSet, Emotion};

/// Something wrong with one input line (or request item), kept for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file (or request field) it came from.
    pub source: String,
    /// 1-based line (or item) number; 0 when the problem is not one line's.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{} line {}: {}", self.source, self.line, self.reason)
        } else {
            write!(f, "{}: {}", self.source, self.reason)
        }
    }
}

/// A rollout read from its line: ids, the parsed answer and the zoom flag.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub id: String,
    pub group: String,
    pub sample: String,
    pub parsed: Parsed,
    /// 1-based line (or item) number.
    pub line: usize,
}

#[derive(Deserialize)]
struct RolloutLine<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    group: Cow<'a, str>,
    #[serde(borrow)]
    sample: Cow<'a, str>,
    #[serde(borrow, default)]
    completion: Option<Cow<'a, str>>,
    #[serde(default)]
    trace: Option<Value>,
    #[serde(default)]
    zoomed: Option<bool>,
}

impl RolloutLine<'_> {
    fn into_rollout(self, line: usize) -> Result<Rollout, String> {
        if self.group.is_empty() {
            return Err(format!("rollout {:?}: empty group id", self.id));
        }
        let parsed = match (self.completion, self.trace) {
            (Some(c), None) => {
                let mut p = parse_completion(&c);
                if let Some(z) = self.zoomed {
                    p.zoomed = z;
                }
                p
            }
            (None, Some(t)) if t.is_object() => parse_trace(&t),
            (None, Some(_)) => {
                return Err(format!(
                    "rollout {:?}: \"trace\" must be an object",
                    self.id
                ))
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "rollout {:?}: give \"completion\" or \"trace\", not both",
                    self.id
                ))
            }
            (None, None) => {
                return Err(format!(
                    "rollout {:?}: no \"completion\" and no \"trace\"",
                    self.id
                ))
            }
        };
        Ok(Rollout {
            id: self.id.into_owned(),
            group: self.group.into_owned(),
            sample: self.sample.into_owned(),
            parsed,
            line,
        })
    }
}

/// Parses one rollout line.
pub fn parse_rollout(bytes: &[u8], line: usize) -> Result<Rollout, String> {
    let r: RolloutLine =
        serde_json::from_slice(bytes).map_err(|e| format!("not a rollout: {e}"))?;
    r.into_rollout(line)
}

/// Parses one rollout given as a JSON value (a `--serve` request item).
pub fn rollout_from_value(v: &Value, line: usize) -> Result<Rollout, String> {
    RolloutLine::deserialize(v)
        .map_err(|e| format!("not a rollout: {e}"))?
        .into_rollout(line)
}

#[derive(Deserialize)]
struct LabelLine {
    sample: String,
    emotion: Emotion,
    aus: Vec<AuCode>,
}

impl LabelLine {
    fn into_gold(self) -> Result<(String, Gold), String> {
        let aus =
            AuSet::from_codes(&self.aus).map_err(|e| format!("label {:?}: {e}", self.sample))?;
        Ok((
            self.sample,
            Gold {
                emotion: self.emotion,
                aus,
            },
        ))
    }
}

/// Just the sample of a label line, to name it when the rest is wrong.
#[derive(Deserialize)]
struct SampleOnly {
    sample: String,
}

fn label_error(sample: Option<SampleOnly>, e: serde_json::Error) -> String {
    match sample {
        Some(s) => format!("label {:?}: {e}", s.sample),
        None => format!("not a label: {e}"),
    }
}

/// Parses one label line into (sample, gold). Errors start with `label "SAMPLE": ` when the
/// sample could be read.
pub fn parse_label(bytes: &[u8]) -> Result<(String, Gold), String> {
    serde_json::from_slice::<LabelLine>(bytes)
        .map_err(|e| label_error(serde_json::from_slice(bytes).ok(), e))?
        .into_gold()
}

/// Parses one label given as a JSON value.
pub fn label_from_value(v: &Value) -> Result<(String, Gold), String> {
    LabelLine::deserialize(v)
        .map_err(|e| label_error(SampleOnly::deserialize(v).ok(), e))?
        .into_gold()
}

/// The non-blank lines of a JSONL text with their 1-based numbers (a trailing `\r` dropped).
pub fn jsonl_lines(text: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            (!l.iter().all(u8::is_ascii_whitespace)).then_some((i + 1, l))
        })
}

/// Parses every rollout line of a JSONL text, on all cores (the lines split into one chunk
/// per thread), in line order.
pub fn parse_rollouts(text: &[u8]) -> Vec<(usize, Result<Rollout, String>)> {
    let lines: Vec<(usize, &[u8])> = jsonl_lines(text).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    if threads == 1 || lines.len() < 4096 {
        return lines
            .into_iter()
            .map(|(n, l)| (n, parse_rollout(l, n)))
            .collect();
    }
    let chunk = lines.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|&(n, l)| (n, parse_rollout(l, n)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("rollout parser thread"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_from_one_and_blank_ones_skipped() {
        let lines: Vec<(usize, &[u8])> = jsonl_lines(b"{}\n\n  \r\n{\"a\":1}\r\n").collect();
        assert_eq!(lines, vec![(1, &b"{}"[..]), (4, &b"{\"a\":1}"[..])]);
    }

    #[test]
    fn rollout_lines() {
        let r = parse_rollout(br#"{"id": "r1", "group": "q1", "sample": "s1", "completion": "<think>.</think><answer>{\"emotion\": \"sad\", \"aus\": [\"AU15\"]}</answer>", "zoomed": true, "extra": [1]}"#, 7).unwrap();
        assert_eq!(
            (r.id.as_str(), r.group.as_str(), r.line, r.parsed.zoomed),
            ("r1", "q1", 7, true)
        );
        assert_eq!(r.parsed.answer.unwrap().emotion, Emotion::Sadness);
        let t = parse_rollout(br#"{"id": "r2", "group": "q1", "sample": "s1", "zoomed": false, "trace": {"steps": [{"tool": {"name": "zoom", "args": {}}}], "answer": {"emotion": {"label": "sad"}, "aus": []}}}"#, 1).unwrap();
        assert!(t.parsed.zoomed, "a trace's own steps decide");
        assert!(
            parse_rollout(br#"{"id": "r1", "group": "q1", "sample": "s1"}"#, 1)
                .unwrap_err()
                .contains("no \"completion\"")
        );
        assert!(parse_rollout(
            br#"{"id": "r1", "group": "", "sample": "s1", "completion": ""}"#,
            1
        )
        .unwrap_err()
        .contains("empty group"));
        assert!(
            parse_rollout(br#"{"id": "r1", "group": "q1", "completion": ""}"#, 1)
                .unwrap_err()
                .contains("sample")
        );
        assert!(parse_rollout(b"{\"id\": \"r1\",", 1).is_err());
    }

    #[test]
    fn label_lines() {
        let (s, g) = parse_label(
            br#"{"sample": "s1", "emotion": "Happy", "aus": ["AU6", "AU12"], "subject": 3}"#,
        )
        .unwrap();
        assert_eq!(
            (s.as_str(), g.emotion, g.aus.len()),
            ("s1", Emotion::Happiness, 2)
        );
        assert!(
            parse_label(br#"{"sample": "s1", "emotion": "joyful", "aus": []}"#)
                .unwrap_err()
                .contains("unknown emotion")
        );
        assert!(
            parse_label(br#"{"sample": "s1", "emotion": "happy", "aus": ["AU6", "AU6"]}"#)
                .unwrap_err()
                .contains("twice")
        );
    }
}
