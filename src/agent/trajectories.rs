//! Training trajectories for the reasoner (`actfer train policy data`): each SynthME
//! expression clip of the train or validation split (never the test split) goes through the
//! real loop with the [`Teacher`] as the policy, once as a clip and, optionally, once as its
//! apex frame (an image question). A run is kept when its answer names the gold emotion,
//! passes every verifier check (the words checks included) and every thought passes the words
//! checks; the conversation (system prompt, each message and reply) is written as one JSON
//! line, the format `actfer train policy sft` reads.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::eval::{expression_clips, open_clip, tool_only};
use super::explain::{evidence_text, moved_aus, TRAINED_SYSTEM};
use super::run::{run, trained_system_prompt, Limits};
use super::teacher::{explanation, Gold, Teacher};
use super::tools::{ClipMotion, Toolbox};
use super::trace::{InputInfo, Trace};
use super::words::{self, Evidence};
use super::words::{check_trace, Vocabulary};
use crate::error::{Error, Result};
use crate::evidence::AppearanceModels;
use crate::facs::emotion::Emotion;
use crate::llm::Message;
use crate::motion::clip::ClipOptions;
use crate::synth::identity::Split;
use crate::synth::labels::Labels;

/// The questions users ask, one a line (prompts/train_questions.txt); each run draws one.
pub const QUESTIONS: &str = include_str!("../../prompts/train_questions.txt");

/// The questions of [`QUESTIONS`] (its non-blank lines that are not `#` comments).
pub fn questions() -> Vec<&'static str> {
    QUESTIONS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Refuses a SynthME folder `root` that holds test-split clips: the reasoner never trains on
/// the clips it is evaluated on.
pub fn refuse_test_split(root: &Path, labels: &Labels) -> Result<()> {
    match labels.clips.iter().find(|c| c.split == Split::Test) {
        Some(c) => Err(Error::bad_input(
            root,
            format!(
                "holds test-split clips ({}); training data comes from the train and val \
                 splits only (actfer synth --split train|val)",
                c.id
            ),
        )),
        None => Ok(()),
    }
}

/// One training conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    /// `<split>/<clip id>/clip`, `.../apex` or `.../explain`.
    pub id: String,
    /// `train` or `val`.
    pub split: String,
    pub messages: Vec<Message>,
    pub gold_emotion: String,
    pub gold_aus: Vec<u8>,
}

/// Settings of a data run.
#[derive(Debug, Clone)]
pub struct DataOptions {
    pub seed: u64,
    /// Also ask about each clip's apex frame as an image.
    pub images: bool,
    /// Flow method of the motion tools.
    pub method: String,
    pub clip: ClipOptions,
    /// At most this many clips per folder.
    pub limit: Option<usize>,
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            seed: 1,
            images: true,
            method: "dis".into(),
            clip: ClipOptions::default(),
            limit: None,
        }
    }
}

/// What a data run kept and why it dropped the rest.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DataReport {
    pub runs: usize,
    pub kept: usize,
    /// The tools' evidence did not allow the gold emotion.
    pub other_emotion: usize,
    /// The answer failed a verifier check.
    pub verifier_failed: usize,
    /// A thought failed the words checks.
    pub thought_words: usize,
    /// No answer within the budgets.
    pub unanswered: usize,
    /// A step the loop refused (the teacher wrote one the schema did not allow).
    pub invalid_step: usize,
    /// Explanations kept, and those dropped because the motion's emotion was not the gold
    /// one (or nothing was spotted).
    pub explanations: usize,
    pub explanations_dropped: usize,
}

impl DataReport {
    /// Adds another run's counts.
    pub fn merge(&mut self, o: &DataReport) {
        self.runs += o.runs;
        self.kept += o.kept;
        self.other_emotion += o.other_emotion;
        self.verifier_failed += o.verifier_failed;
        self.thought_words += o.thought_words;
        self.unanswered += o.unanswered;
        self.invalid_step += o.invalid_step;
        self.explanations += o.explanations;
        self.explanations_dropped += o.explanations_dropped;
    }
}

/// Runs the teacher over the expression clips of the SynthME folder `root`; `keep` gets
/// each conversation kept, `progress(done, total)` follows the clips.
pub fn trajectories(
    root: &Path,
    labels: &Labels,
    models: &AppearanceModels,
    options: &DataOptions,
    mut keep: impl FnMut(&Conversation) -> Result<()>,
    mut progress: impl FnMut(usize, usize),
) -> Result<DataReport> {
    refuse_test_split(root, labels)?;
    let questions = questions();
    let vocab = Vocabulary::shared()?;
    let system = trained_system_prompt();
    let clips: Vec<_> = expression_clips(labels)
        .take(options.limit.unwrap_or(usize::MAX))
        .collect();
    // the loop's defaults: the answer names the emotion the tools rank first among those
    // the shown AUs fit, so a run is kept only where the evidence leads to the gold emotion
    let limits = Limits::default();
    let mut report = DataReport::default();
    for (done, clip) in clips.iter().enumerate() {
        let event = &clip.events[0];
        let gold = Gold {
            emotion: event.emotion,
            aus: event.aus.iter().map(|a| a.au).collect(),
        };
        let path = root.join(&clip.files.frames);
        let open = || open_clip(&path, clip.fps);
        let split = format!("{:?}", clip.split).to_lowercase();
        let seed = options.seed ^ (done as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for image in [false, true] {
            if image && !options.images {
                continue;
            }
            let media = open()?;
            let frame_index = if image { event.apex } else { 0 };
            let frame = media
                .frames()?
                .nth(frame_index)
                .ok_or_else(|| Error::bad_input(&path, format!("has no frame {frame_index}")))??;
            let mut clip_options = options.clip.clone();
            clip_options.spotting.fps = clip.fps;
            let mut toolbox = Toolbox::new(models, frame.image, None);
            if !image {
                let method = crate::flow::method::by_name(&options.method)?;
                toolbox = toolbox.with_clip(ClipMotion::new(media, method, clip_options));
            }
            let input = InputInfo {
                path: path.display().to_string(),
                kind: if image { "image" } else { "frames" }.into(),
                fps: Some(clip.fps as f64),
                frames: if image { 1 } else { clip.frames },
                frame: 0,
                face_box: None,
            };
            let question = questions[(seed as usize + usize::from(image)) % questions.len()];
            let mut teacher = Teacher::new(gold.clone(), seed + u64::from(image), system.clone());
            let trace = run(question, input, &mut toolbox, &mut teacher, &limits)?;
            report.runs += 1;
            match verdict(&trace, &gold, &vocab) {
                Some(Drop::Unanswered) => report.unanswered += 1,
                Some(Drop::InvalidStep) => report.invalid_step += 1,
                Some(Drop::OtherEmotion) => report.other_emotion += 1,
                Some(Drop::Verifier) => report.verifier_failed += 1,
                Some(Drop::ThoughtWords) => report.thought_words += 1,
                None => {
                    report.kept += 1;
                    keep(&Conversation {
                        id: format!(
                            "{split}/{}/{}",
                            clip.id,
                            if image { "apex" } else { "clip" }
                        ),
                        split: split.clone(),
                        messages: teacher.conversation().to_vec(),
                        gold_emotion: gold.emotion.name().to_string(),
                        gold_aus: gold.aus.clone(),
                    })?;
                }
            }
        }
        // an explanation of the main expression, from the evidence `actfer explain` reads
        let media = open()?;
        let method = crate::flow::method::by_name(&options.method)?;
        let mut clip_options = options.clip.clone();
        clip_options.spotting.fps = clip.fps;
        let found = tool_only(&media, models, method.as_ref(), &clip_options)?;
        let main = crate::motion::clip::strongest(&found.intervals);
        let spot = main.and_then(|iv| found.spots.iter().find(|s| s.onset == iv.onset));
        match (main, spot) {
            (Some(iv), Some(spot)) if iv.expression.inference.top() == gold.emotion => {
                let present = moved_aus(iv);
                let emotion = iv.expression.inference.top();
                let evidence =
                    evidence_text(spot, &present, emotion, iv.expression.inference.top_me());
                let mut rng = crate::synth::rng::Rng::new(seed ^ 0xe8);
                let text = explanation(spot, &present, emotion, &mut rng);
                let mut given = Evidence {
                    emotion: Some(emotion),
                    ..Default::default()
                };
                given.add_text(&evidence);
                if words::check(&text, &given, &vocab).is_empty() {
                    report.explanations += 1;
                    keep(&Conversation {
                        id: format!("{split}/{}/explain", clip.id),
                        split: split.clone(),
                        messages: vec![
                            Message::system(TRAINED_SYSTEM.trim()),
                            Message::user(evidence),
                            Message::assistant(text),
                        ],
                        gold_emotion: gold.emotion.name().to_string(),
                        gold_aus: gold.aus.clone(),
                    })?;
                } else {
                    report.explanations_dropped += 1;
                }
            }
            _ => report.explanations_dropped += 1,
        }
        progress(done + 1, clips.len());
    }
    Ok(report)
}

enum Drop {
    Unanswered,
    InvalidStep,
    OtherEmotion,
    Verifier,
    ThoughtWords,
}

/// Why a teacher run is not kept, if it is not.
fn verdict(trace: &Trace, gold: &Gold, vocab: &Vocabulary) -> Option<Drop> {
    if let Some(s) = trace.steps.iter().find(|s| s.observation.error) {
        tracing::debug!(
            "{}: step {} refused: {} (the step: {})",
            trace.input.path,
            s.id,
            s.observation.text,
            s.thought
        );
        return Some(Drop::InvalidStep);
    }
    let Some(answer) = &trace.answer else {
        return Some(Drop::Unanswered);
    };
    if Emotion::parse(&answer.emotion.label).ok() != Some(gold.emotion) {
        return Some(Drop::OtherEmotion);
    }
    if !trace.verifier.iter().all(|c| c.passed) {
        return Some(Drop::Verifier);
    }
    let words = check_trace(
        &trace.question,
        &trace.steps,
        Some(gold.emotion),
        None,
        vocab,
    );
    if words.thoughts.iter().any(|p| !p.is_empty()) {
        return Some(Drop::ThoughtWords);
    }
    None
}
