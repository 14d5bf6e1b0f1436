//! What the page shows, computed from a trace: numbers formatted, bars sized, images inlined,
//! charts drawn. The template only lays it out, so everything here is testable without HTML.
//!
//! Step data is read leniently (`serde_json::Value` lookups): a tool this module does not know,
//! or a field it does not have yet, shows its text and its data, never an error.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::images::{self, Image};
use super::svg::{self, Span};
use super::FRAME;
use crate::agent::trace::{Answer, Check, Interval, Step, StopReason, Trace};

#[derive(Debug, Serialize)]
pub struct Page {
    pub question: String,
    pub version: String,
    /// The input in words: kind, frames, rate, the frame read, the face box.
    pub input: String,
    pub input_path: String,
    pub model: String,
    pub stop: String,
    /// How the stop reads: `good` (answered), `warn` (answered at the step limit), `bad`.
    pub stop_class: &'static str,
    pub timings: String,
    pub frame: Option<Image>,
    pub answer: Option<AnswerView>,
    pub checks: Vec<Check>,
    pub failed_checks: usize,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Serialize)]
pub struct AnswerView {
    pub label: String,
    pub confidence: Option<String>,
    pub distribution: Vec<Bar>,
    pub aus: Vec<Bar>,
    pub intervals: Vec<IntervalView>,
    /// The clip with the intervals shaded (SVG), on clips.
    pub timeline: Option<String>,
    pub text: String,
    pub step: usize,
}

/// One bar: a label, a value in 0..1 drawn as a width, and what else the row says.
#[derive(Debug, Serialize)]
pub struct Bar {
    pub label: String,
    pub name: String,
    pub value: String,
    /// CSS width of the fill, `"42.0%"`.
    pub width: String,
    pub side: String,
    /// Where the value came from (`blendshape:mouthSmileLeft`); empty when not said.
    pub source: String,
    /// Steps that show it (the answer's AUs).
    pub evidence: Vec<usize>,
}

#[derive(Debug, Serialize)]
pub struct IntervalView {
    pub onset: usize,
    pub apex: usize,
    pub offset: usize,
    /// The same in seconds, when the frame rate is known.
    pub seconds: Option<String>,
    pub kind: String,
}

#[derive(Debug, Serialize)]
pub struct Distribution {
    pub title: String,
    pub bars: Vec<Bar>,
}

#[derive(Debug, Serialize)]
pub struct StepView {
    pub id: usize,
    pub thought: String,
    pub tool: String,
    /// The arguments as compact JSON; empty when there are none.
    pub args: String,
    pub text: String,
    pub error: bool,
    pub is_answer: bool,
    pub cost: String,
    pub aus: Vec<Bar>,
    pub distributions: Vec<Distribution>,
    pub spots: Vec<IntervalView>,
    /// The motion curve with the spots shaded (SVG), when the step has `data.curve`.
    pub curve: Option<String>,
    pub images: Vec<Image>,
    /// The observation's data as pretty JSON, for what the page does not draw.
    pub data: String,
}

impl Page {
    pub fn new(trace: &Trace, dir: &Path) -> Page {
        let fps = trace.input.fps;
        let t = &trace.timings;
        Page {
            question: trace.question.clone(),
            version: trace.version.clone(),
            input: describe_input(trace),
            input_path: trace.input.path.clone(),
            model: trace.model.clone(),
            stop: trace.stop.describe().to_string(),
            stop_class: match (trace.stop, trace.answer.is_some()) {
                (StopReason::Answered, true) => "good",
                (_, true) => "warn",
                (_, false) => "bad",
            },
            timings: format!(
                "{:.1} s: perception {:.1} s (optical flow {:.1} s), language model {:.1} s",
                t.total_seconds, t.perception_seconds, t.flow_seconds, t.llm_seconds
            ),
            frame: dir.join(FRAME).exists().then(|| images::inline(dir, FRAME)),
            answer: trace
                .answer
                .as_ref()
                .map(|a| answer_view(a, trace.input.frames, fps)),
            failed_checks: trace.verifier.iter().filter(|c| !c.passed).count(),
            checks: trace.verifier.clone(),
            steps: trace
                .steps
                .iter()
                .map(|s| step_view(s, trace.answer.as_ref(), dir, fps))
                .collect(),
        }
    }
}

fn describe_input(trace: &Trace) -> String {
    let i = &trace.input;
    let mut parts = vec![i.kind.clone()];
    if i.frames > 1 {
        let mut clip = format!("{} frames", i.frames);
        if let Some(fps) = i.fps {
            clip.push_str(&format!(" at {fps:.0} fps"));
        }
        parts.push(clip);
        parts.push(format!("the tools read frame {}", i.frame));
    }
    if let Some([x0, y0, x1, y1]) = i.face_box {
        parts.push(format!("face box ({x0:.0}, {y0:.0})-({x1:.0}, {y1:.0})"));
    }
    parts.join(", ")
}

fn answer_view(a: &Answer, frames: usize, fps: Option<f64>) -> AnswerView {
    let spans: Vec<Span> = a.intervals.iter().map(span).collect();
    AnswerView {
        label: a.emotion.label.clone(),
        confidence: a.emotion.confidence.map(|c| format!("{c:.2}")),
        distribution: sorted_bars(&a.emotion.distribution),
        aus: a
            .aus
            .iter()
            .map(|au| Bar {
                evidence: au.evidence.clone(),
                ..bar(&au.au, &au.name, f64::from(au.intensity), &au.side, "")
            })
            .collect(),
        intervals: a
            .intervals
            .iter()
            .map(|iv| interval_view(span(iv), "", fps))
            .collect(),
        timeline: (frames > 1 && !spans.is_empty()).then(|| svg::timeline(frames, &spans)),
        text: a.text.clone(),
        step: a.step,
    }
}

fn step_view(s: &Step, answer: Option<&Answer>, dir: &Path, fps: Option<f64>) -> StepView {
    let data = &s.observation.data;
    let spots = spot_spans(data);
    let curve = curve_of(data, &spots);
    let distributions = [
        ("classifier", "classifier"),
        ("prototypes", "AU prototypes"),
    ]
    .iter()
    .filter_map(|(key, title)| {
        let pairs = pairs(&data[key]);
        (!pairs.is_empty()).then(|| Distribution {
            title: title.to_string(),
            bars: sorted_bars(&pairs),
        })
    })
    .collect();
    StepView {
        id: s.id,
        thought: s.thought.clone(),
        tool: s.tool.name.clone(),
        args: match &s.tool.args {
            Value::Null => String::new(),
            Value::Object(m) if m.is_empty() => String::new(),
            args => args.to_string(),
        },
        text: s.observation.text.clone(),
        error: s.observation.error,
        is_answer: answer.is_some_and(|a| a.step == s.id),
        cost: format!("{:.1} s, {} tokens", s.seconds, s.tokens),
        aus: data["aus"]
            .as_array()
            .map(|aus| aus.iter().map(au_bar).collect())
            .unwrap_or_default(),
        distributions,
        spots: spots
            .iter()
            .map(|(sp, kind)| interval_view(*sp, kind, fps))
            .collect(),
        curve,
        images: s
            .observation
            .artifacts
            .iter()
            .map(|name| images::inline(dir, name))
            .collect(),
        data: if data.is_null() {
            String::new()
        } else {
            serde_json::to_string_pretty(data).unwrap_or_default()
        },
    }
}

/// An AU of a step's `data.aus`: `{au, code, name, intensity, side, source}`.
fn au_bar(v: &Value) -> Bar {
    let text = |k: &str| v[k].as_str().unwrap_or_default();
    let label = if text("code").is_empty() {
        text("au")
    } else {
        text("code")
    };
    bar(
        label,
        text("name"),
        v["intensity"].as_f64().unwrap_or(0.0),
        text("side"),
        text("source"),
    )
}

fn bar(label: &str, name: &str, value: f64, side: &str, source: &str) -> Bar {
    Bar {
        label: label.to_string(),
        name: name.to_string(),
        value: format!("{value:.2}"),
        width: format!("{:.1}%", value.clamp(0.0, 1.0) * 100.0),
        side: side.to_string(),
        source: source.to_string(),
        evidence: vec![],
    }
}

/// A distribution as bars, most probable first.
fn sorted_bars(pairs: &[(String, f32)]) -> Vec<Bar> {
    let mut pairs = pairs.to_vec();
    pairs.sort_by(|a, b| b.1.total_cmp(&a.1));
    pairs
        .iter()
        .map(|(label, p)| bar(label, "", f64::from(*p), "", ""))
        .collect()
}

/// `[[label, p], ...]` from step data; entries of another shape are skipped.
fn pairs(v: &Value) -> Vec<(String, f32)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e[0].as_str()?.to_string(), e[1].as_f64()? as f32)))
        .collect()
}

/// The spots of a spot_expressions step (`data.spots`), with their kind.
fn spot_spans(data: &Value) -> Vec<(Span, String)> {
    data["spots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let frame = |k: &str| s[k].as_u64().map(|f| f as usize);
            let span = Span {
                onset: frame("onset")?,
                apex: frame("apex")?,
                offset: frame("offset")?,
            };
            let kind = s["kind"].as_str().unwrap_or_default().to_lowercase();
            Some((span, kind))
        })
        .collect()
}

/// The chart of `data.curve = {"frames": [...], "values": [...]}`, spots shaded.
fn curve_of(data: &Value, spots: &[(Span, String)]) -> Option<String> {
    let frames: Vec<usize> = data["curve"]["frames"]
        .as_array()?
        .iter()
        .map(|f| f.as_u64().map(|f| f as usize))
        .collect::<Option<_>>()?;
    let values: Vec<f32> = data["curve"]["values"]
        .as_array()?
        .iter()
        .map(|v| v.as_f64().map_or(f32::NAN, |v| v as f32))
        .collect();
    let spans: Vec<Span> = spots.iter().map(|(s, _)| *s).collect();
    svg::curve(&frames, &values, &spans)
}

fn span(iv: &Interval) -> Span {
    Span {
        onset: iv.onset,
        apex: iv.apex,
        offset: iv.offset,
    }
}

fn interval_view(s: Span, kind: &str, fps: Option<f64>) -> IntervalView {
    IntervalView {
        onset: s.onset,
        apex: s.apex,
        offset: s.offset,
        seconds: fps.filter(|f| *f > 0.0).map(|fps| {
            let t = |f: usize| f as f64 / fps;
            format!(
                "{:.2} s, {:.2} s, {:.2} s",
                t(s.onset),
                t(s.apex),
                t(s.offset)
            )
        }),
        kind: kind.to_string(),
    }
}
