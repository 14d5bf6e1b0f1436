//! The words term: how much of what a rollout wrote reads soundly, by the agent's words checks
//! ([`crate::agent::words`]).
//!
//! `r_words` = the share of a rollout's texts that pass, 1 when it wrote none:
//! - a trace: each thought up to its first final answer and that answer's text, each read
//!   against the observations before it ([`check_first_answer`]): no other emotion than the
//!   answer's, nothing outside the catalogue, only AUs and frames an observation showed, no
//!   non-words;
//! - a completion: its thoughts (the `<think>` block, or the text around tool calls) and its
//!   answer's `text`, with the same checks but the citation one (a completion has no
//!   observations to cite).
//!
//! Like every term it is 0 when the answer does not parse ([`super::score_batch`]).

use serde::Deserialize;
use serde_json::Value;

use crate::agent::trace::{
    InputInfo, Observation, Step, StopReason, Timings, ToolCall, Trace, SCHEMA,
};
use crate::agent::words::{check, check_first_answer, Evidence, Problem, Vocabulary};
use crate::facs::Emotion;

/// What a rollout wrote, as the words term reads it.
#[derive(Debug, Clone)]
pub enum Writing {
    /// A trace.
    Trace(Box<Trace>),
    /// A completion's thoughts and its answer's text.
    Texts {
        thoughts: Vec<String>,
        text: Option<String>,
    },
}

/// `r_words` of a rollout whose answer names `emotion` (see the module docs).
pub fn words_share(writing: &Writing, emotion: Emotion, vocab: &Vocabulary) -> f64 {
    let (passed, texts) = match writing {
        Writing::Trace(trace) => {
            let w = check_first_answer(trace, vocab);
            let all: Vec<&Vec<Problem>> = w.thoughts.iter().chain(&w.text).collect();
            (all.iter().filter(|p| p.is_empty()).count(), all.len())
        }
        Writing::Texts { thoughts, text } => {
            let evidence = Evidence {
                emotion: Some(emotion),
                ..Default::default()
            };
            let sound = |t: &String| {
                check(t, &evidence, vocab)
                    .iter()
                    .all(|p| matches!(p, Problem::Unsupported { .. }))
            };
            let all: Vec<&String> = thoughts.iter().chain(text).collect();
            (all.iter().filter(|t| sound(t)).count(), all.len())
        }
    };
    if texts == 0 {
        1.0
    } else {
        passed as f64 / texts as f64
    }
}

/// The trace a document holds: the document itself when it is a whole `actfer.trace/1`, else
/// what the words checks read of it (the question, and each step's thought, tool and
/// observation), every missing field empty, so a partial document is still read.
pub fn trace_for_words(doc: &Value) -> Trace {
    if let Ok(t) = Trace::deserialize(doc) {
        return t;
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let steps = doc["steps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(k, s)| Step {
            id: s["id"].as_u64().map_or(k + 1, |n| n as usize),
            thought: text(&s["thought"]),
            tool: ToolCall {
                name: text(&s["tool"]["name"]),
                args: s["tool"]["args"].clone(),
            },
            observation: Observation {
                text: text(&s["observation"]["text"]),
                data: s["observation"]["data"].clone(),
                artifacts: vec![],
                error: s["observation"]["error"].as_bool().unwrap_or(false),
            },
            tokens: 0,
            seconds: 0.0,
            images: vec![],
        })
        .collect();
    Trace {
        schema: SCHEMA.into(),
        version: String::new(),
        question: text(&doc["question"]),
        input: InputInfo {
            path: String::new(),
            kind: String::new(),
            fps: None,
            frames: 0,
            frame: 0,
            face_box: None,
        },
        model: String::new(),
        steps,
        answer: None,
        verifier: vec![],
        stop: StopReason::Answered,
        timings: Timings::default(),
    }
}
