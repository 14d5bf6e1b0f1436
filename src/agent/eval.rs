//! The agent scored on a SynthME folder, next to the tool-only pipeline on the same clips.
//!
//! Each expression clip (micro or macro) is one sample. The agent gets the clip, reads its
//! first frame for appearance (as `actfer ask` does by default) and the whole clip for
//! motion, and answers one question; nothing from the labels reaches it. The tool-only
//! pipeline spots the clip and reads each spotted interval's onset -> apex motion as AUs
//! (no language model): its AUs are those of every interval, its emotion the prototype
//! inference's top one on the interval with the most AU evidence, and "neutral" when nothing
//! was spotted. Both are scored with the same protocols as `actfer eval synthme` (per-AU F1,
//! 3-class and 7-emotion UF1/UAR).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::policy::Policy;
use super::run::{run, Limits};
use super::tools::{ClipMotion, Toolbox, FINAL_ANSWER};
use super::trace::{InputInfo, StopReason, Trace};
use super::words::{check_first_answer, Problem, TraceWords, Vocabulary, WordsTally};
use crate::error::{Error, Result};
use crate::evidence::AppearanceModels;
use crate::facs::Emotion;
use crate::flow::FlowMethod;
use crate::media::{Media, OpenOptions};
use crate::motion::au::BLINK_AU;
use crate::motion::clip::{analyze_intervals, spot_clip, ClipOptions, IntervalAnalysis};
use crate::motion::spotting::Spot;
use crate::motion::synthme::{score, Sample, Scores};
use crate::synth::labels::{ClipLabel, Kind, Labels};

/// The question every sample is asked.
pub const QUESTION: &str = "What expression does this face show, and which action units?";

/// Settings of an evaluation run.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub question: String,
    pub limits: Limits,
    /// Flow method of the motion tools (and of the tool-only pipeline).
    pub method: String,
    /// Clip analysis; the frame rate is each clip's own.
    pub clip: ClipOptions,
    /// Keep each sample's trace (and its crops) in `DIR/<clip id>/`.
    pub traces: Option<PathBuf>,
    /// At most this many samples, in the labels' order.
    pub limit: Option<usize>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            question: QUESTION.into(),
            limits: Limits::default(),
            method: "dis".into(),
            clip: ClipOptions::default(),
            traces: None,
            limit: None,
        }
    }
}

/// How one agent run went.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// The run ended with a final answer that parsed against the step schema.
    pub parsed: bool,
    pub steps: usize,
    pub zoomed: bool,
    pub stop: StopReason,
    pub verifier_passed: bool,
    /// The first final answer passed every verifier check (no revision was needed).
    pub first_passed: bool,
    /// The words checks of the thoughts and text as first written ([`check_first_answer`]).
    pub words: TraceWords,
    pub seconds: f64,
}

/// One side's scores and costs.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub scores: Scores,
    pub seconds_per_sample: f64,
}

/// The agent next to the tool-only pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct AgentReport {
    pub model: String,
    pub samples: usize,
    pub agent: Side,
    pub tools: Side,
    /// Share of runs that ended with a final answer that parsed.
    pub parse_rate: f64,
    pub mean_steps: f64,
    /// Share of runs that zoomed at least once.
    pub zoom_rate: f64,
    /// Share of answers that passed every verifier check.
    pub verified_rate: f64,
    /// Share of runs whose first final answer passed every check.
    pub first_pass_rate: f64,
    /// The words checks over the thoughts, and over the answer texts, as first written.
    pub thought_words: WordsTally,
    pub text_words: WordsTally,
    /// Different thoughts per trace, on average.
    pub distinct_thoughts: f64,
    /// Per sample: the agent's prediction, the tool-only one, and the run.
    pub agent_samples: Vec<Sample>,
    pub tool_samples: Vec<Sample>,
    pub runs: Vec<RunInfo>,
}

/// Runs the agent (`policy`) and the tool-only pipeline on every expression clip of the
/// SynthME folder `root`; `progress(done, total)` after each sample.
pub fn evaluate_agent(
    root: &Path,
    labels: &Labels,
    models: &AppearanceModels,
    policy: &mut dyn Policy,
    options: &EvalOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<AgentReport> {
    let clips: Vec<_> = expression_clips(labels)
        .take(options.limit.unwrap_or(usize::MAX))
        .collect();
    if clips.is_empty() {
        return Err(Error::bad_input(
            root,
            "holds no micro or macro expression clip; make some with `actfer synth --out DIR`",
        ));
    }
    let mut agent_samples = Vec::new();
    let mut tool_samples = Vec::new();
    let mut runs = Vec::new();
    let vocab = Vocabulary::shared()?;
    let (mut agent_seconds, mut tool_seconds) = (0.0, 0.0);
    for (done, clip) in clips.iter().enumerate() {
        let event = &clip.events[0];
        let path = root.join(&clip.files.frames);
        let open = || open_clip(&path, clip.fps);
        let mut clip_options = options.clip.clone();
        clip_options.spotting.fps = clip.fps;
        let gold = |aus: Vec<u8>, emotion: String, class: String| Sample {
            id: clip.id.clone(),
            kind: event.kind,
            gold_aus: event.aus.iter().map(|a| a.au).collect(),
            predicted_aus: aus,
            gold_class: event.me_class.name().to_string(),
            predicted_class: class,
            gold_emotion: event.emotion.name().to_string(),
            predicted_emotion: emotion,
        };

        // the agent
        let start = Instant::now();
        let dir = options.traces.as_ref().map(|d| d.join(&clip.id));
        let (mut toolbox, input) = clip_toolbox(
            models,
            &path,
            clip,
            &options.method,
            clip_options.clone(),
            dir.clone(),
        )?;
        let trace = run(
            &options.question,
            input,
            &mut toolbox,
            policy,
            &options.limits,
        )?;
        if let Some(dir) = &dir {
            trace.write(dir)?;
        }
        let seconds = start.elapsed().as_secs_f64();
        agent_seconds += seconds;
        runs.push(run_info(&trace, seconds, &vocab));
        let (aus, emotion) = match &trace.answer {
            Some(a) => (
                a.aus
                    .iter()
                    .filter_map(|x| x.au.trim_start_matches("AU").parse().ok())
                    .filter(|&n| n != BLINK_AU)
                    .collect(),
                a.emotion.label.clone(),
            ),
            None => (vec![], "none".to_string()),
        };
        let class = class_of(&emotion);
        agent_samples.push(gold(sorted(aus), emotion, class));

        // the tool-only pipeline
        let start = Instant::now();
        let media = open()?;
        let method = crate::flow::method::by_name(&options.method)?;
        let found = tool_only(&media, models, method.as_ref(), &clip_options)?;
        tool_seconds += start.elapsed().as_secs_f64();
        let (aus, emotion) = (found.aus, found.emotion.name().to_string());
        let class = class_of(&emotion);
        tool_samples.push(gold(aus, emotion, class));
        progress(done + 1, clips.len());
    }
    let n = clips.len() as f64;
    let share = |f: &dyn Fn(&RunInfo) -> bool| runs.iter().filter(|r| f(r)).count() as f64 / n;
    let refs = |v: &[Sample]| -> Result<Scores> { score(&v.iter().collect::<Vec<_>>()) };
    Ok(AgentReport {
        model: policy.name(),
        samples: clips.len(),
        agent: Side {
            scores: refs(&agent_samples)?,
            seconds_per_sample: agent_seconds / n,
        },
        tools: Side {
            scores: refs(&tool_samples)?,
            seconds_per_sample: tool_seconds / n,
        },
        parse_rate: share(&|r| r.parsed),
        mean_steps: runs.iter().map(|r| r.steps as f64).sum::<f64>() / n,
        zoom_rate: share(&|r| r.zoomed),
        verified_rate: share(&|r| r.verifier_passed),
        first_pass_rate: share(&|r| r.first_passed),
        thought_words: tally(&runs, |w| w.thoughts.iter().collect()),
        text_words: tally(&runs, |w| w.text.iter().collect()),
        distinct_thoughts: runs
            .iter()
            .map(|r| r.words.distinct_thoughts as f64)
            .sum::<f64>()
            / n,
        agent_samples,
        tool_samples,
        runs,
    })
}

/// The agent's tools over the SynthME clip `clip` (its frames at `path`): its first frame for
/// appearance (as `actfer ask` reads a clip by default), the whole clip for motion with
/// `method` and `options` (at the clip's frame rate); and the input its trace records.
pub fn clip_toolbox<'a>(
    models: &'a AppearanceModels,
    path: &Path,
    clip: &ClipLabel,
    method: &str,
    mut options: ClipOptions,
    artifacts: Option<PathBuf>,
) -> Result<(Toolbox<'a>, InputInfo)> {
    let media = open_clip(path, clip.fps)?;
    let frame = media
        .frames()?
        .next()
        .ok_or_else(|| Error::bad_input(path, "has no frame"))??;
    let method = crate::flow::method::by_name(method)?;
    options.spotting.fps = clip.fps;
    let toolbox = Toolbox::new(models, frame.image, artifacts)
        .with_clip(ClipMotion::new(media, method, options));
    let input = InputInfo {
        path: path.display().to_string(),
        kind: "frames".into(),
        fps: Some(clip.fps as f64),
        frames: clip.frames,
        frame: 0,
        face_box: None,
    };
    Ok((toolbox, input))
}

/// A SynthME clip's frames, at its frame rate.
pub fn open_clip(path: &Path, fps: f32) -> Result<Media> {
    Media::open(
        path,
        &OpenOptions {
            fps: Some(fps as f64),
            max_frames: None,
        },
    )
}

/// What the tool-only pipeline says of a clip.
#[derive(Debug, Clone)]
pub struct ToolOnly {
    /// The AUs present in any spotted interval (blinks left out), sorted.
    pub aus: Vec<u8>,
    /// The top emotion other than neutral on the interval with the most AU evidence; neutral
    /// when nothing was spotted.
    pub emotion: Emotion,
    /// The spotted intervals, and each one's analysis (same order).
    pub spots: Vec<Spot>,
    pub intervals: Vec<IntervalAnalysis>,
}

/// The tool-only pipeline on a clip: spotting, then each interval's onset -> apex motion read
/// as AUs and an emotion.
pub fn tool_only(
    media: &Media,
    models: &AppearanceModels,
    method: &dyn FlowMethod,
    options: &ClipOptions,
) -> Result<ToolOnly> {
    let spotted = spot_clip(media, &models.faces, method, options, |_| {})?;
    let pairs: Vec<(usize, usize)> = spotted
        .spotting
        .spots
        .iter()
        .map(|s| (s.onset, s.apex))
        .collect();
    let intervals = analyze_intervals(media, &models.faces, method, &pairs, &options.motion)?;
    let aus: Vec<u8> = intervals
        .iter()
        .flat_map(|iv| iv.expression.aus.iter().filter(|a| a.present()))
        .map(|a| a.au)
        .filter(|&n| n != BLINK_AU)
        .collect();
    let emotion = crate::motion::clip::strongest(&intervals).map_or(Emotion::Neutral, |iv| {
        iv.expression
            .inference
            .emotions
            .iter()
            .map(|s| s.emotion)
            .find(|e| *e != Emotion::Neutral)
            .unwrap_or(Emotion::Neutral)
    });
    Ok(ToolOnly {
        aus: sorted(aus),
        emotion,
        spots: spotted.spotting.spots,
        intervals,
    })
}

/// The words checks of every run's texts that `pick` chooses, tallied.
fn tally(runs: &[RunInfo], pick: impl Fn(&TraceWords) -> Vec<&Vec<Problem>>) -> WordsTally {
    let mut t = WordsTally::default();
    for r in runs {
        pick(&r.words).into_iter().for_each(|p| t.add(p));
    }
    t
}

/// Whether a run's first final answer passed every verifier check (no revision was needed).
pub fn first_passed(trace: &Trace) -> bool {
    let first = trace.steps.iter().find(|s| s.tool.name == FINAL_ANSWER);
    first.is_some_and(|s| !s.observation.error) && trace.verifier.iter().all(|c| c.passed)
}

/// The expression clips of a SynthME folder (micro or macro, one event each): the samples the
/// agent is evaluated and trained on.
pub fn expression_clips(labels: &Labels) -> impl Iterator<Item = &ClipLabel> {
    labels
        .clips
        .iter()
        .filter(|c| matches!(c.kind, Kind::Micro | Kind::Macro) && c.events.len() == 1)
}

fn run_info(trace: &Trace, seconds: f64, vocab: &Vocabulary) -> RunInfo {
    RunInfo {
        parsed: trace.answer.is_some(),
        steps: trace.steps.len(),
        zoomed: trace
            .steps
            .iter()
            .any(|s| s.tool.name == "zoom" && !s.observation.error),
        stop: trace.stop,
        verifier_passed: trace.answer.is_some() && trace.verifier.iter().all(|c| c.passed),
        first_passed: first_passed(trace),
        words: check_first_answer(trace, vocab),
        seconds,
    }
}

/// The ME class (positive, negative, surprise) of an emotion label; the label itself when it
/// has none (neutral, or no answer).
fn class_of(emotion: &str) -> String {
    Emotion::parse(emotion)
        .ok()
        .and_then(|e| e.me_class())
        .map_or(emotion.to_string(), |c| c.name().to_string())
}

fn sorted(mut aus: Vec<u8>) -> Vec<u8> {
    aus.sort_unstable();
    aus.dedup();
    aus
}

#[cfg(test)]
mod tests {
    use super::class_of;

    #[test]
    fn classes_of_labels() {
        assert_eq!(class_of("happiness"), "positive");
        assert_eq!(class_of("surprise"), "surprise");
        assert_eq!(class_of("disgust"), "negative");
        assert_eq!(class_of("neutral"), "neutral");
        assert_eq!(class_of("none"), "none");
    }
}
