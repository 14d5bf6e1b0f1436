//! Motion over a whole clip, streamed frame by frame with bounded memory.
//!
//! The face is tracked through the clip. Every `anchor_s` seconds a frame becomes the anchor:
//! its face is aligned, and each following frame is aligned the same way and compared with
//! it (flow anchor -> frame, head motion removed). A region's displacement at frame `t` is its
//! mean facial flow from the anchor plus the anchor's own displacement, so displacements chain
//! from anchor to anchor and stay comparable over the clip while each flow spans at most
//! `anchor_s` (short flows, little drift). Only the anchor frame is held in memory; per frame
//! the series keeps one displacement per region.
//!
//! [`au_curves`] turns the displacements into per-AU curves: each region's slow drift is
//! removed (a running median over `detrend_s`), and each frame's displacement is explained by
//! the AU motion patterns ([`super::au`]); an AU's curve is the displacement it explains
//! (pixels of the aligned face).

use serde::{Deserialize, Serialize};

use super::au::{self, MotionOptions};
use super::pair::{displacements_iod, pair_motion, AlignedFace, ALIGNED_SIZE};
use super::spotting::Curve;
use crate::error::Result;
use crate::face::pipeline::FacePipeline;
use crate::face::track::{TrackConfig, Tracker};
use crate::flow::FlowMethod;
use crate::media::{Media, RgbImage};

/// How the series is measured.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesOptions {
    /// Seconds between anchor frames.
    pub anchor_s: f32,
    /// Stop after this many frames (the rest of the clip is left out, and said so).
    pub max_frames: usize,
    #[serde(skip)]
    pub track: TrackConfig,
}

impl Default for SeriesOptions {
    fn default() -> Self {
        SeriesOptions {
            anchor_s: 1.0,
            max_frames: 60 * 60 * 60,
            track: TrackConfig::default(),
        }
    }
}

/// One frame of the series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesFrame {
    pub index: usize,
    pub time_s: f64,
    /// Whether the face was found in this frame.
    pub face: bool,
    /// Per region of [`MotionSeries::regions`], the chained displacement in IOD (empty
    /// without a face).
    pub displacement: Vec<[f32; 2]>,
}

/// A clip's motion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MotionSeries {
    pub fps: f32,
    pub regions: Vec<String>,
    /// The aligned face's inter-ocular distance, pixels (displacements times this are pixels).
    pub iod_px: f32,
    pub frames: Vec<SeriesFrame>,
    /// What went wrong on the way, kept with the frames measured before it (a frame that
    /// cannot be decoded, the face lost, the frame limit).
    pub notes: Vec<String>,
}

impl MotionSeries {
    pub fn face_frames(&self) -> usize {
        self.frames.iter().filter(|f| f.face).count()
    }
}

struct Anchor {
    index: usize,
    image: RgbImage,
    face: AlignedFace,
    /// The anchor's own chained displacement, per region (IOD).
    base: Vec<[f32; 2]>,
}

/// Measures a clip. `progress` gets the number of frames done.
pub fn motion_series(
    media: &Media,
    pipeline: &FacePipeline,
    method: &dyn FlowMethod,
    options: &SeriesOptions,
    mut progress: impl FnMut(usize),
) -> Result<MotionSeries> {
    let info = media.info();
    let fps = info.fps.unwrap_or(crate::media::DEFAULT_FOLDER_FPS) as f32;
    let regions = au::observed_regions();
    let anchor_frames = ((options.anchor_s * fps).round() as usize).max(1);
    let mut tracker = Tracker::new(pipeline, options.track);
    let mut series = MotionSeries {
        fps,
        regions: regions.clone(),
        iod_px: 0.0,
        frames: Vec::new(),
        notes: Vec::new(),
    };
    let mut anchor: Option<Anchor> = None;
    let mut last = vec![[0.0f32; 2]; regions.len()];
    let mut had_face = false;
    for (n, frame) in media.frames()?.enumerate() {
        if n >= options.max_frames {
            series.notes.push(format!(
                "stopped after {} frames (the limit); the rest of the clip is not measured",
                options.max_frames
            ));
            break;
        }
        // a video that stops early is refused, as by every command that reads clips (one
        // policy: a truncated or corrupt file is an error naming it, never a shorter result)
        let frame = frame?;
        let tracked = tracker.step(&frame)?;
        let Some(face) = tracked.face else {
            if had_face {
                series.notes.push(format!(
                    "face lost at frame {} ({:.2} s)",
                    frame.index, frame.time_s
                ));
            }
            had_face = false;
            anchor = None;
            series.frames.push(SeriesFrame {
                index: frame.index,
                time_s: frame.time_s,
                face: false,
                displacement: Vec::new(),
            });
            progress(n + 1);
            continue;
        };
        if !had_face && !series.frames.is_empty() {
            // "again" only for a face seen before; a first face after faceless frames is new
            let note = if series.frames.iter().any(|f| f.face) {
                format!(
                    "face found again at frame {} ({:.2} s); displacements restart from the last known",
                    frame.index, frame.time_s
                )
            } else {
                format!(
                    "no face in frames 0 to {}; the face is first found at frame {} ({:.2} s)",
                    frame.index - 1,
                    frame.index,
                    frame.time_s
                )
            };
            series.notes.push(note);
        }
        had_face = true;
        let due = anchor
            .as_ref()
            .is_none_or(|a| frame.index - a.index >= anchor_frames);
        let displacement = match &anchor {
            Some(a) => {
                let motion = pair_motion(method, &a.face, &a.image, &frame.image)?;
                let d = displacements_iod(&motion.regions, a.face.iod);
                regions
                    .iter()
                    .zip(&a.base)
                    .map(|(name, base)| {
                        let m = d.iter().find(|(n, _)| n == name).map_or([0.0; 2], |x| x.1);
                        [base[0] + m[0], base[1] + m[1]]
                    })
                    .collect()
            }
            None => last.clone(),
        };
        if due {
            let face = AlignedFace::new(&face.landmarks68, ALIGNED_SIZE)?;
            series.iod_px = face.iod;
            anchor = Some(Anchor {
                index: frame.index,
                image: frame.image,
                face,
                base: displacement.clone(),
            });
        }
        last.clone_from(&displacement);
        series.frames.push(SeriesFrame {
            index: frame.index,
            time_s: frame.time_s,
            face: true,
            displacement,
        });
        progress(n + 1);
    }
    Ok(series)
}

/// Running median of `values` over a centred window of `window` samples (NaN skipped).
fn running_median(values: &[f32], window: usize) -> Vec<f32> {
    let half = window / 2;
    let step = (window / 64).max(1); // subsample long windows: 64 values are plenty
    (0..values.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(values.len());
            let mut w: Vec<f32> = values[lo..hi]
                .iter()
                .step_by(step)
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            if w.is_empty() {
                return f32::NAN;
            }
            let mid = w.len() / 2;
            *w.select_nth_unstable_by(mid, f32::total_cmp).1
        })
        .collect()
}

/// Each region component's displacement with its slow drift removed (a running median over
/// `detrend_s`): `[2 * region + {0: x, 1: y}][frame]`, IOD; NaN without a face.
fn detrended(series: &MotionSeries, detrend_s: f32) -> Vec<Vec<f32>> {
    let window = ((detrend_s * series.fps).round() as usize).max(3);
    (0..2 * series.regions.len())
        .map(|c| {
            let raw: Vec<f32> = series
                .frames
                .iter()
                .map(|f| f.displacement.get(c / 2).map_or(f32::NAN, |d| d[c % 2]))
                .collect();
            let base = running_median(&raw, window);
            raw.iter().zip(&base).map(|(v, b)| v - b).collect()
        })
        .collect()
}

/// The eye-closure curve: how much nearer the upper lid has come to the lower one than at
/// rest, the larger of the two eyes, pixels of the aligned face. A blink closes the eye by
/// several pixels in a tenth of a second; no expression does.
pub fn eye_closure(series: &MotionSeries, detrend_s: f32) -> Curve {
    let d = detrended(series, detrend_s);
    let down = |name: &str, t: usize| {
        series
            .regions
            .iter()
            .position(|r| r == name)
            .map_or(0.0, |k| d[2 * k + 1][t])
    };
    let values = (0..series.frames.len())
        .map(|t| {
            if !series.frames[t].face {
                return 0.0;
            }
            let right = down("r_upper_eyelid", t) - down("r_lower_eyelid", t);
            let left = down("l_upper_eyelid", t) - down("l_lower_eyelid", t);
            let v = right.max(left) * series.iod_px;
            if v.is_finite() {
                v.max(0.0)
            } else {
                0.0
            }
        })
        .collect();
    Curve {
        name: "eye closure".into(),
        values,
    }
}

/// Per-AU curves of a series (see the module docs): one [`Curve`] per AU pattern, named
/// `AU12`, in pixels of the aligned face; frames without a face read 0.
pub fn au_curves(series: &MotionSeries, options: &MotionOptions, detrend_s: f32) -> Vec<Curve> {
    let n = series.frames.len();
    let detrended = detrended(series, detrend_s);
    let mut curves: Vec<Curve> = au::patterns()
        .iter()
        .map(|p| Curve {
            name: format!("AU{}", p.au),
            values: vec![0.0; n],
        })
        .collect();
    for (t, frame) in series.frames.iter().enumerate() {
        if !frame.face {
            continue;
        }
        let d: Vec<(String, [f32; 2])> = series
            .regions
            .iter()
            .enumerate()
            .map(|(k, name)| (name.clone(), [detrended[2 * k][t], detrended[2 * k + 1][t]]))
            .filter(|(_, v)| v[0].is_finite() && v[1].is_finite())
            .collect();
        let unmixed = au::unmix(&d, options);
        for (curve, (er, el)) in curves.iter_mut().zip(&unmixed.explained_iod) {
            curve.values[t] = er.max(*el) * series.iod_px;
        }
    }
    curves
}
