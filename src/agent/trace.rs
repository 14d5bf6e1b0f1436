//! The trace: one versioned JSON document per run (DESIGN.md, "Trace"), with the PNG artifacts
//! of its steps beside it.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// The value of [`Trace::schema`].
pub const SCHEMA: &str = "actfer.trace/1";

/// The file name of the trace inside its directory.
pub const FILE: &str = "trace.json";

/// The frame the tools read, with the subject's box drawn, beside the trace.
pub const FRAME: &str = "frame.png";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trace {
    pub schema: String,
    pub version: String,
    pub question: String,
    pub input: InputInfo,
    pub model: String,
    pub steps: Vec<Step>,
    /// Absent when a budget ended the run before an answer.
    pub answer: Option<Answer>,
    pub verifier: Vec<Check>,
    /// Why the loop ended.
    pub stop: StopReason,
    pub timings: Timings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputInfo {
    pub path: String,
    /// `image`, `video` or `frames`.
    pub kind: String,
    pub fps: Option<f64>,
    pub frames: usize,
    /// The frame the appearance tools read (0-based).
    pub frame: usize,
    /// The subject's face box `[x0, y0, x1, y1]` in pixels, once detected.
    pub face_box: Option<[f32; 4]>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub id: usize,
    pub thought: String,
    pub tool: ToolCall,
    pub observation: Observation,
    /// Tokens the model generated for this step.
    pub tokens: usize,
    pub seconds: f64,
    /// Artifacts of the previous observation that reached a multimodal model with the
    /// message this step answers (file names in the trace directory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolCall {
    pub name: String,
    pub args: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Observation {
    /// What the model reads.
    pub text: String,
    /// The same, as data (AUs with intensities, distributions, boxes).
    pub data: Value,
    /// File names of PNG artifacts, relative to the trace directory.
    pub artifacts: Vec<String>,
    /// Whether the tool refused or failed (the text says why).
    #[serde(default)]
    pub error: bool,
}

impl Observation {
    /// A tool's successful result.
    pub fn ok(text: String, data: Value, artifacts: Vec<String>) -> Self {
        Observation {
            text,
            data,
            artifacts,
            error: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub emotion: EmotionAnswer,
    pub aus: Vec<AnswerAu>,
    pub intervals: Vec<Interval>,
    pub text: String,
    /// The step that gave the answer.
    pub step: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmotionAnswer {
    pub label: String,
    /// The label's probability in the latest distribution a tool gave (classifier or
    /// prototype inference), when one was asked for.
    pub confidence: Option<f32>,
    pub distribution: Vec<(String, f32)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnswerAu {
    pub au: String,
    pub name: String,
    /// The strongest intensity a cited step measured (0 when no step did).
    pub intensity: f32,
    pub side: String,
    /// Steps whose observations show this AU present.
    pub evidence: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interval {
    pub onset: usize,
    pub apex: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model gave its final answer.
    Answered,
    /// The step budget ran out; the last step was held to a final answer.
    StepLimit,
    /// The generated-token budget ran out.
    TokenLimit,
    /// The time budget ran out.
    TimeLimit,
}

impl StopReason {
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Answered => "the model answered",
            StopReason::StepLimit => "the step budget ran out; the last step had to answer",
            StopReason::TokenLimit => "the token budget ran out before an answer",
            StopReason::TimeLimit => "the time budget ran out before an answer",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    /// The tools: face pipeline, blendshapes, classifier, crops, and optical flow.
    pub perception_seconds: f64,
    /// The part of `perception_seconds` spent estimating optical flow.
    #[serde(default)]
    pub flow_seconds: f64,
    pub llm_seconds: f64,
    pub total_seconds: f64,
}

impl Trace {
    /// Writes `trace.json` into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let path = dir.join(FILE);
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("trace to JSON: {e}")))?;
        std::fs::write(&path, text + "\n").map_err(|e| Error::io(path.display().to_string(), e))
    }

    /// Reads a trace, checking its schema.
    pub fn read(path: &Path) -> Result<Trace> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let trace: Trace = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(path, format!("not an actfer trace ({e})")))?;
        if trace.schema != SCHEMA {
            return Err(Error::bad_input(
                path,
                format!(
                    "trace schema {:?}; this actfer reads {SCHEMA}",
                    trace.schema
                ),
            ));
        }
        Ok(trace)
    }
}
