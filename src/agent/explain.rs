//! Micro-expression explanations for clips and datasets: each clip is spotted, each spotted
//! interval's onset -> apex motion read as AUs and an emotion (the tool-only pipeline of
//! [`super::eval::tool_only`]), and the language model writes one explanation per interval
//! from that evidence (prompts/explain_system.md), in the style of ME captioning work: which
//! regions moved, which AUs that is, what it suggests, with the uncertainty said.
//!
//! Results are JSON lines, one per clip, appended and flushed as each clip ends, so an
//! interrupted run resumes where it stopped ([`done_ids`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::eval::tool_only;
use super::words::{self, Evidence, Problem, Vocabulary};
use crate::error::{Error, Result};
use crate::evidence::AppearanceModels;
use crate::facs::emotion::{Emotion, MeClass};
use crate::facs::evidence::AuEvidence;
use crate::flow::FlowMethod;
use crate::llm::constrain::{ConstraintVocab, JsonConstraint};
use crate::llm::{Chat, GenerateOptions, Message, SamplingParams, TextModel};
use crate::media::{Media, OpenOptions};
use crate::motion::clip::{ClipOptions, IntervalAnalysis};
use crate::motion::spotting::Spot;

/// The system prompt of the explanations.
pub const SYSTEM: &str = include_str!("../../prompts/explain_system.md");

/// The trained reasoner's explain prompt (prompts/explain_system_trained.md), as it was
/// trained with.
pub const TRAINED_SYSTEM: &str = include_str!("../../prompts/explain_system_trained.md");

/// The explain prompt for a model: the trained one for the reasoner, [`SYSTEM`] (with its
/// example) for any other.
pub fn explain_system_for(model: &str) -> &'static str {
    if model == crate::llm::REASONER_MODEL {
        TRAINED_SYSTEM
    } else {
        SYSTEM
    }
}

/// One clip to explain.
#[derive(Debug, Clone)]
pub struct ClipRef {
    /// The key of its result line (a SynthME clip id, or the path relative to the dataset).
    pub id: String,
    pub path: PathBuf,
    /// Frame rate for frame folders that carry none.
    pub fps: Option<f64>,
}

/// One explained interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Explained {
    pub onset: usize,
    pub apex: usize,
    pub offset: usize,
    /// `micro` or `macro`.
    pub kind: String,
    /// Present AUs with intensities, strongest first: `("AU12", 0.61)`.
    pub aus: Vec<(String, f32)>,
    pub emotion: String,
    pub me_class: String,
    pub explanation: String,
    /// What the words checks found wrong with the explanation ([`super::words`]): another
    /// emotion named, something outside the catalogue, an AU or frame the evidence did not
    /// give, a non-word. Empty when it reads soundly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Problem>,
}

/// One result line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipResult {
    pub id: String,
    pub path: String,
    pub frames: usize,
    pub fps: Option<f64>,
    pub intervals: Vec<Explained>,
    pub model: String,
    pub seconds: f64,
}

/// The clips of `input`: one clip (a video or a frame folder); a SynthME folder (its
/// `labels.json` lists the clips); or a folder of clips (videos, and sub-folders of frames),
/// in name order.
pub fn clips_of(input: &Path) -> Result<Vec<ClipRef>> {
    if !input.exists() {
        return Err(Error::NotFound {
            path: input.to_path_buf(),
        });
    }
    if input.is_file() {
        return Ok(vec![ClipRef {
            id: file_name(input),
            path: input.to_path_buf(),
            fps: None,
        }]);
    }
    if input.join("labels.json").is_file() {
        let labels = crate::synth::labels::Labels::read(input)?;
        return Ok(labels
            .clips
            .iter()
            .map(|c| ClipRef {
                id: c.id.clone(),
                path: input.join(&c.files.frames),
                fps: Some(c.fps as f64),
            })
            .collect());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
        .map_err(|e| Error::io(input.display().to_string(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !file_name(p).starts_with('.'))
        .collect();
    entries.sort();
    let clips: Vec<PathBuf> = entries
        .into_iter()
        .filter(|p| p.is_dir() || is_video(p))
        .collect();
    if clips.is_empty() {
        // a folder of frames is one clip
        return Ok(vec![ClipRef {
            id: file_name(input),
            path: input.to_path_buf(),
            fps: None,
        }]);
    }
    Ok(clips
        .into_iter()
        .map(|p| ClipRef {
            id: file_name(&p),
            path: p,
            fps: None,
        })
        .collect())
}

/// Video container extensions a dataset folder's clips may have.
const VIDEO_EXTENSIONS: &[&str] = &["mp4", "avi", "mov", "mkv", "webm", "m4v", "mpg", "mpeg"];

fn is_video(p: &Path) -> bool {
    p.is_file()
        && p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The ids already in the results file `out` (absent: none). A last line cut short by an
/// interruption is dropped from the file (its clip is done again); any other line that is not
/// a result is bad input naming the line.
pub fn done_ids(out: &Path) -> Result<Vec<String>> {
    let Ok(text) = std::fs::read_to_string(out) else {
        return Ok(vec![]);
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut ids = Vec::new();
    let mut keep = 0;
    for (k, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            keep += line.len() + 1;
            continue;
        }
        match serde_json::from_str::<ClipResult>(line) {
            Ok(r) => {
                ids.push(r.id);
                keep += line.len() + 1;
            }
            Err(_) if k + 1 == lines.len() && !text.ends_with('\n') => {
                tracing::warn!(
                    "{}: the last line was cut short (an interrupted run); its clip is done again",
                    out.display()
                );
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(out)
                    .map_err(|e| Error::io(out.display().to_string(), e))?;
                file.set_len(keep as u64)
                    .map_err(|e| Error::io(out.display().to_string(), e))?;
            }
            Err(e) => {
                return Err(Error::bad_input(
                    out,
                    format!(
                        "line {} is not an explain result ({e}); fix or delete it, or write to \
                         another --out",
                        k + 1
                    ),
                ))
            }
        }
    }
    Ok(ids)
}

/// Writes explanations with a language model.
pub struct Explainer {
    chat: Chat,
    vocab: std::sync::Arc<ConstraintVocab>,
    name: String,
    /// Tokens per explanation.
    pub max_tokens: usize,
    repeat_penalty: f32,
}

impl Explainer {
    /// `repeat_penalty`: 1.3 keeps the base model from looping; the trained reasoner writes
    /// its trained phrasings with none (1).
    pub fn new(model: TextModel, system: &str, repeat_penalty: f32) -> Result<Self> {
        let name = file_name(&model.path);
        let vocab = std::sync::Arc::new(ConstraintVocab::new(&model.tokenizer)?);
        let mut chat = Chat::new(model)?;
        chat.push(Message::system(system.trim()));
        Ok(Explainer {
            chat,
            vocab,
            name,
            max_tokens: 160,
            repeat_penalty,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One explanation of `evidence` (the observation text of an interval), greedy, written
    /// within `pattern` (a regular expression the whole text matches; see
    /// [`super::teacher::explanation_pattern`]) when given.
    pub fn explain(&mut self, evidence: &str, pattern: Option<&str>) -> Result<String> {
        self.chat.restart(1);
        let opts = GenerateOptions {
            max_tokens: self.max_tokens,
            // a small model loops on a phrase without a penalty
            sampling: SamplingParams {
                repeat_penalty: self.repeat_penalty,
                repeat_last_n: 64,
                ..SamplingParams::greedy()
            },
            ..Default::default()
        };
        let message = Message::user(evidence);
        let g = match pattern {
            Some(p) => {
                let mut c = JsonConstraint::for_text(&self.vocab, p)?;
                self.chat
                    .send_constrained(message, &opts, &mut c, &mut |_| true)?
            }
            None => self.chat.send(message, &opts, &mut |_| true)?,
        };
        // the first paragraph: a small model runs on into unrelated text after it
        let text = g.text.trim();
        Ok(text.split('\n').next().unwrap_or(text).trim().to_string())
    }
}

/// Explains one clip.
pub fn explain_clip(
    clip: &ClipRef,
    models: &AppearanceModels,
    method: &dyn FlowMethod,
    options: &ClipOptions,
    explainer: &mut Explainer,
) -> Result<ClipResult> {
    let start = Instant::now();
    let media = Media::open(
        &clip.path,
        &OpenOptions {
            fps: clip.fps,
            max_frames: None,
        },
    )?;
    let info = media.info().clone();
    if info.frames < 2 {
        return Err(Error::bad_input(
            &clip.path,
            "has one frame; explanations need a clip (motion between frames)",
        ));
    }
    let mut options = options.clone();
    options.spotting.fps = info.fps.unwrap_or(crate::media::DEFAULT_FOLDER_FPS) as f32;
    let found = tool_only(&media, models, method, &options)?;
    let vocab = Vocabulary::shared()?;
    let mut intervals = Vec::new();
    for (spot, iv) in found.spots.iter().zip(&found.intervals) {
        let present = moved_aus(iv);
        let emotion = iv.expression.inference.top();
        let me_class = iv.expression.inference.top_me();
        let evidence = evidence_text(spot, &present, emotion, me_class);
        let aus = present.iter().map(|a| (a.code(), a.intensity)).collect();
        // the model phrases it; the pattern keeps every fact to the evidence
        let pattern = super::teacher::explanation_pattern(spot, &present, emotion);
        let explanation = explainer.explain(&evidence, Some(&pattern))?;
        let mut given = Evidence {
            emotion: Some(emotion),
            ..Default::default()
        };
        given.add_text(&evidence);
        let words = words::check(&explanation, &given, &vocab);
        intervals.push(Explained {
            onset: spot.onset,
            apex: spot.apex,
            offset: spot.offset,
            kind: format!("{:?}", spot.kind).to_lowercase(),
            aus,
            emotion: emotion.name().to_string(),
            me_class: me_class.name().to_string(),
            explanation,
            words,
        });
    }
    Ok(ClipResult {
        id: clip.id.clone(),
        path: clip.path.display().to_string(),
        frames: info.frames,
        fps: info.fps,
        intervals,
        model: explainer.name().to_string(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The AUs an interval's motion shows present, blinks left out: what an explanation is about.
pub fn moved_aus(iv: &IntervalAnalysis) -> Vec<&AuEvidence> {
    iv.expression
        .aus
        .iter()
        .filter(|a| a.present() && a.au != crate::motion::au::BLINK_AU)
        .collect()
}

/// The message the explainer reads about one spotted expression: when, the AUs that moved with
/// their intensities, and the emotion and ME class they match best.
pub fn evidence_text(
    spot: &Spot,
    present: &[&AuEvidence],
    emotion: Emotion,
    me_class: MeClass,
) -> String {
    format!(
        "A {:?} expression from frame {} to {} (apex {}). AUs that moved: {}. The AUs match {} \
         best ({} class). Explain it.",
        spot.kind,
        spot.onset,
        spot.offset,
        spot.apex,
        if present.is_empty() {
            "none clearly".to_string()
        } else {
            super::tools::au_list(present)
        },
        emotion.name(),
        me_class.name()
    )
}

/// Appends `result` as one line to `out` and flushes it.
pub fn append(out: &Path, result: &ClipResult) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .map_err(|e| Error::io(out.display().to_string(), e))?;
    let line = serde_json::to_string(result)
        .map_err(|e| Error::Internal(format!("result to JSON: {e}")))?;
    writeln!(file, "{line}")
        .and_then(|_| file.flush())
        .map_err(|e| Error::io(out.display().to_string(), e))
}
