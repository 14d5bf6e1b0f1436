//! Motion analysis measured on a SynthME dataset: for every expression, the onset -> apex
//! motion read as AUs and an emotion, scored against the labels with the evaluation
//! protocols of [`crate::eval`] (per-AU F1, 3-class UF1/UAR, 7-emotion UF1).
//!
//! The face is found on the onset frame by the face pipeline (as for any clip); nothing
//! from the labels but the onset and apex frame numbers reaches the analysis.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::au::{MotionOptions, BLINK_AU};
use super::clip::{spot_clip, ClipOptions};
use super::pair::{displacements_iod, expression_of, pair_motion, AlignedFace, ALIGNED_SIZE};
use super::spotting::SpotKind;
use crate::error::{Error, Result};
use crate::eval::aus::{self as au_eval, AuOptions, AuReport};
use crate::eval::recognition::{self, RecognitionOptions, RecognitionReport};
use crate::eval::spotting::{Interval, Kind as SpotKindEval, SpottingOptions, SpottingReport};
use crate::eval::Joined;
use crate::face::pipeline::{select, FacePipeline};
use crate::facs::au::{AuCode, AuSet};
use crate::flow::FlowMethod;
use crate::media::{read_image, Media, OpenOptions};
use crate::synth::labels::{Kind, Labels};

/// One scored expression.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// `clip_id:event`.
    pub id: String,
    pub kind: Kind,
    pub gold_aus: Vec<u8>,
    pub predicted_aus: Vec<u8>,
    pub gold_class: String,
    pub predicted_class: String,
    pub gold_emotion: String,
    pub predicted_emotion: String,
}

/// Scores over one set of samples.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub samples: usize,
    pub aus: AuReport,
    /// Positive / negative / surprise.
    pub me_class: RecognitionReport,
    /// The seven emotions (neutral excluded from the prediction).
    pub emotion: RecognitionReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub method: String,
    pub micro: Option<Scores>,
    #[serde(rename = "macro")]
    pub macro_: Option<Scores>,
    pub samples: Vec<Sample>,
    /// Expressions skipped, with the reason (no face on the onset frame, ...).
    pub skipped: Vec<Skipped>,
    pub seconds: f64,
}

/// An expression left out: `(id, reason)`.
pub type Skipped = (String, String);

/// One expression's (or blink's) measured motion.
#[derive(Debug, Clone)]
pub struct Measured {
    /// `clip_id:event` (`clip_id:blink:k` for a blink).
    pub id: String,
    /// Indices into the labels' clips and that clip's events (or blinks).
    pub clip: usize,
    pub event: usize,
    /// Region displacements onset -> apex, IOD ([`super::pair::displacements_iod`]).
    pub displacements: Vec<(String, [f32; 2])>,
}

/// One onset -> apex pair to measure: `(clip, index, id, onset, apex)`.
type Moment = (usize, usize, String, usize, usize);

/// Measures every expression of a SynthME folder (frame folders): the face found on the
/// onset frame, the facial motion onset -> apex. Expressions whose onset frame shows no face
/// are returned apart with the reason.
pub fn measure(
    root: &Path,
    labels: &Labels,
    pipeline: &FacePipeline,
    method: &dyn FlowMethod,
    progress: impl FnMut(usize, usize),
) -> Result<(Vec<Measured>, Vec<Skipped>)> {
    let moments = labels
        .clips
        .iter()
        .enumerate()
        .flat_map(|(ci, clip)| {
            clip.events
                .iter()
                .enumerate()
                .map(move |(k, e)| (ci, k, format!("{}:{k}", clip.id), e.onset, e.apex))
        })
        .collect();
    measure_moments(root, labels, moments, pipeline, method, progress)
}

/// Measures the blinks of a SynthME folder that stand alone: onset -> apex of each blink whose
/// span, widened by [`BLINK_MARGIN`] frames, overlaps no expression of its clip (so the motion
/// is the blink's only). The examples from which `actfer train motion` learns AU45.
pub fn measure_blinks(
    root: &Path,
    labels: &Labels,
    pipeline: &FacePipeline,
    method: &dyn FlowMethod,
    progress: impl FnMut(usize, usize),
) -> Result<(Vec<Measured>, Vec<Skipped>)> {
    let moments = labels
        .clips
        .iter()
        .enumerate()
        .flat_map(|(ci, clip)| {
            clip.blinks
                .iter()
                .enumerate()
                .filter(|(_, b)| {
                    clip.events.iter().all(|e| {
                        b.offset + BLINK_MARGIN < e.onset || e.offset + BLINK_MARGIN < b.onset
                    })
                })
                .map(move |(k, b)| (ci, k, format!("{}:blink:{k}", clip.id), b.onset, b.apex))
        })
        .collect();
    measure_moments(root, labels, moments, pipeline, method, progress)
}

/// Frames kept between a training blink and any expression.
pub const BLINK_MARGIN: usize = 3;

fn measure_moments(
    root: &Path,
    labels: &Labels,
    moments: Vec<Moment>,
    pipeline: &FacePipeline,
    method: &dyn FlowMethod,
    mut progress: impl FnMut(usize, usize),
) -> Result<(Vec<Measured>, Vec<Skipped>)> {
    let total = moments.len();
    let mut measured = Vec::new();
    let mut skipped = Vec::new();
    for (ci, k, id, onset, apex) in moments {
        let clip = &labels.clips[ci];
        if clip.files.frames.ends_with(".mp4") {
            return Err(Error::bad_input(
                root,
                "holds mp4 clips; this evaluation reads frame folders (synth without --video)",
            ));
        }
        let frames = root.join(&clip.files.frames);
        let onset_path = frames.join(format!("{onset:05}.png"));
        let onset = read_image(&onset_path)?;
        let apex = read_image(&frames.join(format!("{apex:05}.png")))?;
        let faces = pipeline.faces(&onset)?;
        let face = match select(&faces, 0, &onset_path) {
            Ok(i) => AlignedFace::new(&faces[i].landmarks68, ALIGNED_SIZE)?,
            Err(e) => {
                skipped.push((id, e.to_string()));
                continue;
            }
        };
        let motion = pair_motion(method, &face, &onset, &apex)?;
        measured.push(Measured {
            id,
            clip: ci,
            event: k,
            displacements: displacements_iod(&motion.regions, face.iod),
        });
        progress(measured.len() + skipped.len(), total);
    }
    Ok((measured, skipped))
}

/// Analyses and scores every expression of a SynthME folder (frame folders).
pub fn evaluate(
    root: &Path,
    labels: &Labels,
    pipeline: &FacePipeline,
    method: &dyn FlowMethod,
    options: &MotionOptions,
    progress: impl FnMut(usize, usize),
) -> Result<Report> {
    let start = Instant::now();
    let (measured, skipped) = measure(root, labels, pipeline, method, progress)?;
    let samples: Vec<Sample> = measured
        .iter()
        .map(|m| {
            let event = &labels.clips[m.clip].events[m.event];
            let source = format!("{} {} -> {}", method.name(), event.onset, event.apex);
            let ex = expression_of(&m.displacements, options, &source);
            let mut predicted_aus: Vec<u8> = ex
                .aus
                .iter()
                .map(|e| e.au)
                .filter(|&a| a != BLINK_AU)
                .collect();
            predicted_aus.sort_unstable();
            let top_emotion = ex
                .inference
                .emotions
                .iter()
                .find(|s| s.emotion != crate::facs::Emotion::Neutral)
                .map(|s| s.emotion)
                .expect("seven emotions besides neutral");
            Sample {
                id: m.id.clone(),
                kind: event.kind,
                gold_aus: event.aus.iter().map(|a| a.au).collect(),
                predicted_aus,
                gold_class: event.me_class.name().to_string(),
                predicted_class: ex.inference.top_me().name().to_string(),
                gold_emotion: event.emotion.name().to_string(),
                predicted_emotion: top_emotion.name().to_string(),
            }
        })
        .collect();
    let scores = |kind: Kind| -> Result<Option<Scores>> {
        let of: Vec<&Sample> = samples.iter().filter(|s| s.kind == kind).collect();
        if of.is_empty() {
            return Ok(None);
        }
        score(&of).map(Some)
    };
    Ok(Report {
        method: method.name().to_string(),
        micro: scores(Kind::Micro)?,
        macro_: scores(Kind::Macro)?,
        samples,
        skipped,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn au_set(aus: &[u8]) -> AuSet {
    let codes: Vec<AuCode> = aus
        .iter()
        .map(|&n| AuCode {
            number: n,
            side: None,
        })
        .collect();
    AuSet::from_codes(&codes).expect("catalogue AUs")
}

fn joined<T: Clone>(samples: &[&Sample], f: impl Fn(&Sample) -> (T, T)) -> Joined<T> {
    Joined {
        pairs: samples
            .iter()
            .map(|s| {
                let (g, p) = f(s);
                (s.id.clone(), g, Some(p))
            })
            .collect(),
        missing: Vec::new(),
        unmatched: Vec::new(),
    }
}

/// Scores samples: per-AU F1, 3-class and 7-emotion recognition.
pub fn score(samples: &[&Sample]) -> Result<Scores> {
    let aus = au_eval::evaluate(
        &joined(samples, |s| (au_set(&s.gold_aus), au_set(&s.predicted_aus))),
        AuOptions::default(),
    );
    let recog = |f: &dyn Fn(&Sample) -> (String, String)| {
        recognition::evaluate(&joined(samples, f), RecognitionOptions::default())
            .map_err(Error::Internal)
    };
    Ok(Scores {
        samples: samples.len(),
        aus,
        me_class: recog(&|s| (s.gold_class.clone(), s.predicted_class.clone()))?,
        emotion: recog(&|s| (s.gold_emotion.clone(), s.predicted_emotion.clone()))?,
    })
}

/// Spotting scored on a SynthME folder's long videos (`actfer synth --long`).
#[derive(Debug, Clone, Serialize)]
pub struct SpottingResult {
    pub method: String,
    pub videos: usize,
    pub frames: usize,
    pub report: SpottingReport,
    /// Blinks in the labels, and how many a spotted expression overlapped.
    pub blinks: usize,
    pub blinks_taken_for_expressions: usize,
    /// Spotted intervals, JSONL-ready for `actfer eval spotting`.
    pub predicted: Vec<Interval>,
    pub gold: Vec<Interval>,
    pub seconds: f64,
}

fn interval(video: &str, onset: usize, offset: usize, kind: Kind) -> Interval {
    Interval {
        video: video.to_string(),
        onset: onset as u64,
        offset: offset as u64,
        kind: match kind {
            Kind::Macro => SpotKindEval::Macro,
            _ => SpotKindEval::Micro,
        },
    }
}

/// Spots every long video of a SynthME folder and scores the intervals (MEGC: IoU >= 0.5,
/// same kind).
pub fn evaluate_spotting(
    root: &Path,
    labels: &Labels,
    pipeline: &FacePipeline,
    method: &dyn FlowMethod,
    options: &ClipOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<SpottingResult> {
    let start = Instant::now();
    let long: Vec<_> = labels
        .clips
        .iter()
        .filter(|c| c.kind == Kind::Long)
        .collect();
    let total_frames: usize = long.iter().map(|c| c.frames).sum();
    let (mut gold, mut predicted) = (Vec::new(), Vec::new());
    let (mut blinks, mut taken, mut done) = (0, 0, 0);
    for clip in &long {
        let media = Media::open(&root.join(&clip.files.frames), &OpenOptions::default())?;
        let spotted = spot_clip(&media, pipeline, method, options, |n| {
            progress(done + n, total_frames)
        })?;
        done += clip.frames;
        for e in &clip.events {
            gold.push(interval(&clip.id, e.onset, e.offset, e.kind));
        }
        for s in &spotted.spotting.spots {
            let kind = match s.kind {
                SpotKind::Micro => Kind::Micro,
                SpotKind::Macro => Kind::Macro,
            };
            predicted.push(interval(&clip.id, s.onset, s.offset, kind));
        }
        blinks += clip.blinks.len();
        taken += clip
            .blinks
            .iter()
            .filter(|b| {
                spotted
                    .spotting
                    .spots
                    .iter()
                    .any(|s| s.onset <= b.offset && b.onset <= s.offset)
                    && !clip
                        .events
                        .iter()
                        .any(|e| e.onset <= b.offset && b.onset <= e.offset)
            })
            .count();
    }
    let report = crate::eval::spotting::evaluate(&gold, &predicted, SpottingOptions::default());
    Ok(SpottingResult {
        method: method.name().to_string(),
        videos: long.len(),
        frames: total_frames,
        report,
        blinks,
        blinks_taken_for_expressions: taken,
        predicted,
        gold,
        seconds: start.elapsed().as_secs_f64(),
    })
}
