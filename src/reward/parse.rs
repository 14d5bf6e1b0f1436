//! Parsing a rollout's final answer, tolerant of whitespace and strict about content.
//!
//! Two completion formats:
//! - R1-style: `<think>...</think>` then `<answer>{...}</answer>`, with only whitespace around
//!   and between the blocks, one block of each.
//! - prompts/ tool calls: free text (thoughts) and tool calls, each a JSON object
//!   `{"tool": NAME, "args": {...}}` (no other keys); the last one is
//!   `{"tool": "final_answer", "args": ANSWER}` and only whitespace follows it. Every `{` outside
//!   a tool call starts a tool call, so thoughts must not hold braces.
//!
//! ANSWER is the object of `prompts/answer.schema.json`: `{"emotion": LABEL, "aus": [AU, ...]}`
//! and optionally `"text"` (a string); no other keys, emotion spellings as in
//! [`Emotion::parse`], AUs as in [`AuCode::parse`], no AU twice.
//!
//! A trace (`actfer.trace/1`) is read from `answer.emotion.label` and `answer.aus[].au`; it
//! zoomed when a step's `tool.name` is `"zoom"`.
//!
//! Each format also yields what the words term reads ([`Writing`]): a completion's thoughts
//! (the `<think>` block; the text around tool calls) and its answer's `text`, or the trace.

use serde::Deserialize;
use serde_json::Value;

use super::writing::{trace_for_words, Writing};
use crate::facs::{AuCode, AuSet, Emotion};

/// A well-formed final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub emotion: Emotion,
    pub aus: AuSet,
}

/// What parsing a completion or trace found.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The answer, or why the format check failed.
    pub answer: Result<Answer, String>,
    /// Whether a `zoom` tool call was seen (before any format error).
    pub zoomed: bool,
    /// What the model wrote, for the words term.
    pub writing: Writing,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerJson {
    emotion: Emotion,
    aus: Vec<AuCode>,
    #[serde(default)]
    text: Option<String>,
}

/// An answer and its `text`, or why the format check failed.
type WithText = Result<(Answer, Option<String>), String>;

impl AnswerJson {
    /// The answer and its text.
    fn into_answer(self) -> WithText {
        let answer = Answer {
            emotion: self.emotion,
            aus: AuSet::from_codes(&self.aus)?,
        };
        Ok((answer, self.text))
    }
}

/// Parses an answer object's JSON text.
pub fn parse_answer(json: &str) -> Result<Answer, String> {
    parse_answer_text(json).map(|(a, _)| a)
}

fn parse_answer_text(json: &str) -> WithText {
    serde_json::from_str::<AnswerJson>(json)
        .map_err(|e| format!("answer: {e}"))?
        .into_answer()
}

/// Parses a completion in either format (R1-style when it holds `<answer>`).
pub fn parse_completion(text: &str) -> Parsed {
    if text.contains("<answer>") || text.trim_start().starts_with("<think>") {
        let (answer, thought) = parse_r1(text);
        let (answer, text) = split_text(answer);
        Parsed {
            answer,
            zoomed: false,
            writing: Writing::Texts {
                thoughts: thought
                    .into_iter()
                    .filter(|t| !t.trim().is_empty())
                    .collect(),
                text,
            },
        }
    } else {
        parse_tool_calls(text)
    }
}

/// An answer and its text, apart.
fn split_text(parsed: WithText) -> (Result<Answer, String>, Option<String>) {
    match parsed {
        Ok((a, text)) => (Ok(a), text),
        Err(e) => (Err(e), None),
    }
}

/// The answer (with its text) and the `<think>` block's text, when the block closed.
fn parse_r1(text: &str) -> (WithText, Option<String>) {
    let Some(rest) = text.trim_start().strip_prefix("<think>") else {
        return (
            Err("R1 format: the completion must start with <think>".into()),
            None,
        );
    };
    let Some(end) = rest.find("</think>") else {
        return (Err("R1 format: <think> is not closed".into()), None);
    };
    let thought = rest[..end].to_string();
    (parse_r1_answer(rest, end), Some(thought))
}

/// The answer after the `<think>` block that ends at `end` of `rest`.
fn parse_r1_answer(rest: &str, end: usize) -> WithText {
    if rest[..end].contains("<think>") || rest[..end].contains("<answer>") {
        return Err("R1 format: <think> holds another <think> or <answer>".into());
    }
    let rest = rest[end + "</think>".len()..].trim_start();
    let rest = rest
        .strip_prefix("<answer>")
        .ok_or("R1 format: <answer> must follow </think>")?;
    let end = rest
        .find("</answer>")
        .ok_or("R1 format: <answer> is not closed")?;
    let inner = &rest[..end];
    if !rest[end + "</answer>".len()..].trim().is_empty() {
        return Err("R1 format: text after </answer>".into());
    }
    if inner.contains("<answer>") || inner.contains("<think>") {
        return Err("R1 format: nested tags in <answer>".into());
    }
    parse_answer_text(inner.trim())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCall {
    tool: String,
    args: serde_json::Map<String, Value>,
}

fn parse_tool_calls(text: &str) -> Parsed {
    let mut zoomed = false;
    let mut last: Option<ToolCall> = None;
    let mut pos = 0;
    let mut calls = 0;
    // the free text before each tool call is a thought
    let mut thoughts: Vec<String> = Vec::new();
    while let Some(off) = text[pos..].find('{') {
        let start = pos + off;
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<ToolCall>();
        match stream.next() {
            Some(Ok(call)) => {
                calls += 1;
                zoomed |= call.tool == "zoom";
                let before = text[pos..start].trim();
                if !before.is_empty() {
                    thoughts.push(before.to_string());
                }
                pos = start + stream.byte_offset();
                last = Some(call);
            }
            Some(Err(e)) => {
                return Parsed {
                    answer: Err(format!("tool call {} at byte {start}: {e}", calls + 1)),
                    zoomed,
                    writing: Writing::Texts {
                        thoughts,
                        text: None,
                    },
                }
            }
            None => break,
        }
    }
    let answer = match last {
        None => {
            Err("no final answer: neither <answer>...</answer> nor a final_answer tool call".into())
        }
        Some(call) if call.tool != "final_answer" => Err(format!(
            "the last tool call is {:?}, not final_answer",
            call.tool
        )),
        Some(_) if !text[pos..].trim().is_empty() => {
            Err("text after the final_answer tool call".into())
        }
        Some(call) => AnswerJson::deserialize(Value::Object(call.args))
            .map_err(|e| format!("final_answer args: {e}"))
            .and_then(AnswerJson::into_answer),
    };
    let (answer, text) = split_text(answer);
    Parsed {
        answer,
        zoomed,
        writing: Writing::Texts { thoughts, text },
    }
}

/// Reads the answer and the zoom flag from a trace document.
pub fn parse_trace(trace: &Value) -> Parsed {
    let steps = trace
        .get("steps")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut zoomed = false;
    for (k, step) in steps.iter().enumerate() {
        match step.get("tool") {
            None | Some(Value::Null) => {}
            Some(tool) => match tool.get("name").and_then(Value::as_str) {
                Some(name) => zoomed |= name == "zoom",
                None => {
                    return Parsed {
                        answer: Err(format!("trace step {k}: tool without a name")),
                        zoomed,
                        writing: Writing::Trace(Box::new(trace_for_words(trace))),
                    }
                }
            },
        }
    }
    Parsed {
        answer: trace_answer(trace),
        zoomed,
        writing: Writing::Trace(Box::new(trace_for_words(trace))),
    }
}

fn trace_answer(trace: &Value) -> Result<Answer, String> {
    let answer = trace
        .get("answer")
        .filter(|a| !a.is_null())
        .ok_or("trace has no answer")?;
    let label = answer
        .pointer("/emotion/label")
        .and_then(Value::as_str)
        .ok_or("trace answer: emotion.label is missing")?;
    let emotion = Emotion::parse(label)?;
    let aus = answer
        .get("aus")
        .and_then(Value::as_array)
        .ok_or("trace answer: aus is missing")?;
    let codes = aus
        .iter()
        .map(|a| {
            let au = a
                .get("au")
                .ok_or("trace answer: an AU entry has no \"au\"")?;
            AuCode::deserialize(au).map_err(|e| format!("trace answer: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Answer {
        emotion,
        aus: AuSet::from_codes(&codes)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facs::au::mask;

    fn ok(text: &str) -> Answer {
        parse_completion(text)
            .answer
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn r1_tolerates_whitespace() {
        let a = ok("<think>cheeks up</think><answer>{\"emotion\": \"happy\", \"aus\": [\"AU6\", \"AU12\"]}</answer>");
        assert_eq!(
            a,
            Answer {
                emotion: Emotion::Happiness,
                aus: AuSet {
                    both: mask(&[6, 12]),
                    left: 0,
                    right: 0
                }
            }
        );
        let b = ok("\n  <think>\n..\n</think>\n\n<answer>\n {\"emotion\":\"Happiness\",\"aus\":[\"AU12\",\"AU6\"],\"text\":\"a smile\"}\n</answer>\n");
        assert_eq!(a, b);
    }

    #[test]
    fn r1_is_strict_about_content() {
        for bad in [
            "<answer>{\"emotion\": \"happy\", \"aus\": []}</answer>", // no think
            "<think>x</think><answer>{\"emotion\": \"joyful\", \"aus\": []}</answer>", // unknown emotion
            "<think>x</think><answer>{\"emotion\": \"happy\", \"aus\": [\"AU 6\"]}</answer>", // malformed AU
            "<think>x</think><answer>{\"emotion\": \"happy\", \"aus\": [\"AU6\", \"R6\"]}</answer>", // AU twice
            "<think>x</think><answer>{\"emotion\": \"happy\"}</answer>", // no aus
            "<think>x</think><answer>{\"emotion\": \"happy\", \"aus\": [], \"conf\": 1}</answer>", // unknown key
            "<think>x</think><answer>{\"emotion\": \"happy\", \"aus\": []}</answer> trailing",
            "<think>x</think> between <answer>{\"emotion\": \"happy\", \"aus\": []}</answer>",
            "<think>x<answer>{\"emotion\": \"happy\", \"aus\": []}</answer>",
            "<think>x</think><answer>{\"emotion\": \"happy\", \"aus\": []}",
        ] {
            assert!(parse_completion(bad).answer.is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn tool_call_format() {
        let text = r#"Look at the mouth first.
{"tool": "zoom", "args": {"region": "l_mouth_corner"}}
The corners rise.
{"tool": "final_answer", "args": {"emotion": "happiness", "aus": ["AU12", "R6"]}}
"#;
        let p = parse_completion(text);
        assert!(p.zoomed);
        assert_eq!(p.answer.unwrap().aus.numbers(), mask(&[6, 12]));
        let no_zoom =
            parse_completion(r#"{"tool": "final_answer", "args": {"emotion": "sad", "aus": []}}"#);
        assert_eq!(
            (no_zoom.answer.unwrap().emotion, no_zoom.zoomed),
            (Emotion::Sadness, false)
        );
        for bad in [
            r#"{"tool": "zoom", "args": {}}"#, // no final answer
            r#"{"tool": "final_answer", "args": {"emotion": "sad", "aus": []}} then more"#, // trailing text
            r#"{"tool": "zoom", "args": {} {"tool": "final_answer", "args": {"emotion": "sad", "aus": []}}"#, // broken call
            r#"{"tool": "zoom", "args": []} {"tool": "final_answer", "args": {"emotion": "sad", "aus": []}}"#, // args not an object
            r#"{"tool": "final_answer", "args": {"emotion": "sad", "aus": []}, "id": 1}"#, // unknown key
            "just prose",
        ] {
            assert!(parse_completion(bad).answer.is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn traces() {
        let t: Value = serde_json::from_str(
            r#"{"schema": "actfer.trace/1", "steps": [{"id": 1, "thought": "t", "tool": {"name": "detect", "args": {}}},
                {"id": 2, "tool": {"name": "zoom", "args": {"region": "glabella"}}}],
                "answer": {"emotion": {"label": "angry", "confidence": 0.7}, "aus": [{"au": "AU4", "intensity": 0.5}, {"au": 7}]}}"#,
        )
        .unwrap();
        let p = parse_trace(&t);
        assert!(p.zoomed);
        assert_eq!(
            p.answer.unwrap(),
            Answer {
                emotion: Emotion::Anger,
                aus: AuSet {
                    both: mask(&[4, 7]),
                    left: 0,
                    right: 0
                }
            }
        );
        let none: Value = serde_json::from_str(r#"{"steps": []}"#).unwrap();
        let p = parse_trace(&none);
        assert_eq!(
            (p.answer, p.zoomed),
            (Err("trace has no answer".into()), false)
        );
    }
}
