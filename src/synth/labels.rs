//! The SynthME labels file, `labels.json`, schema `actfer.synthme/1` (README, "SynthME").
//!
//! One document per dataset: the generator settings and one entry per clip. Frame numbers are
//! 0-based and inclusive; intensities are template units (1 = the template's apex, see
//! [`super::templates`]); displacements are in pixels of the clip's frames, and again scaled
//! to a 128-px face width (`*_128`), the unit the amplitude ranges are quoted in.

use serde::{Deserialize, Serialize};

use super::identity::{Augment, Split};
use crate::face::Point;
use crate::facs::au::AuSide;
use crate::facs::emotion::{Emotion, MeClass};

/// The schema name and version written into every labels file.
pub const SCHEMA: &str = "actfer.synthme/1";

/// What a clip holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One micro-expression (0.2-0.5 s, small).
    Micro,
    /// One macro-expression (0.5-4 s, large).
    Macro,
    /// No expression (nuisances and blinks only).
    None,
    /// A long video (`--long`) with 0-5 expressions of either kind.
    Long,
}

/// The side of a one-sided AU, as written in labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Left,
    Right,
}

impl From<Side> for AuSide {
    fn from(s: Side) -> AuSide {
        match s {
            Side::Left => AuSide::Left,
            Side::Right => AuSide::Right,
        }
    }
}

/// One AU of an expression at its apex.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AuLabel {
    pub au: u8,
    /// The subject's side for a one-sided AU; absent for both sides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// Apex intensity in template units.
    pub intensity: f32,
}

/// One expression in a clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `micro` or `macro`.
    pub kind: Kind,
    pub emotion: Emotion,
    pub me_class: MeClass,
    pub aus: Vec<AuLabel>,
    pub onset: usize,
    pub apex: usize,
    pub offset: usize,
    /// The largest landmark displacement at the apex, frame pixels.
    pub apex_displacement_px: f32,
    /// The same at a 128-px face width.
    pub apex_displacement_128: f32,
}

/// An eye blink (AU45), a distractor: not an expression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Blink {
    pub onset: usize,
    pub apex: usize,
    pub offset: usize,
    pub intensity: f32,
}

/// Smooth head motion: each of rotation (degrees), x and y translation (frame pixels) and
/// scale is `amplitude * sin(2 pi (frequency t) + phase)` summed over two components, `t` in
/// seconds; the per-frame values are in [`ClipLabel::head`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeadMotion {
    pub rotation_deg: [Wave; 2],
    pub shift_x_px: [Wave; 2],
    pub shift_y_px: [Wave; 2],
    pub scale: [Wave; 2],
}

/// One sinusoid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    pub amplitude: f32,
    pub frequency_hz: f32,
    pub phase: f32,
}

impl Wave {
    pub fn at(&self, t: f32) -> f32 {
        self.amplitude * (std::f32::consts::TAU * self.frequency_hz * t + self.phase).sin()
    }
}

/// Illumination drift: the frame is multiplied by `(1 + gain(t)) (1 + tilt(t) (x - c) / size)`
/// with `gain(t) = gain * r(t)`, `tilt(t) = tilt * r(t)`, `r` a smooth ramp 0 -> 1 over the
/// clip (a slow sine for long videos), `x - c` the column from the frame centre.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Light {
    pub gain: f32,
    pub tilt: f32,
}

/// The nuisances of one clip; an absent one is off.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Nuisance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadMotion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub light: Option<Light>,
    /// Gaussian sensor noise, standard deviation in grey levels, independent per pixel,
    /// channel and frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_sigma: Option<f32>,
    /// JPEG compression of every frame at this quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jpeg_quality: Option<u8>,
}

/// Where a clip's files are, relative to the dataset folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipFiles {
    /// Frame folder (`00000.png`, ...) or video file.
    pub frames: String,
    /// Ground-truth flow folder: `TTTTT.flo` from frame T to T+1 (with `--flow all`), and per
    /// event K `onset_apex_K.flo` (onset to apex) and `onset_apex_face_K.flo` (the same with
    /// the head held at its onset pose: the facial motion alone).
    pub flow: String,
    /// Face mask of frame 0 (PNG, non-zero inside): for EPE inside the face.
    pub mask: String,
    /// Contact sheet per event, when asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sheets: Vec<String>,
}

/// One clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipLabel {
    pub id: String,
    pub split: Split,
    /// The person (identities never cross splits).
    pub person: String,
    /// The photo or frame the clip was made from: `file#face` or `file@frame#face`.
    pub look: String,
    pub augment: Augment,
    pub kind: Kind,
    /// The clip's emotion: the event's for micro and macro clips, neutral for `none`, absent
    /// for long videos (see `events`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<Emotion>,
    pub fps: f32,
    pub frames: usize,
    /// Frame side, pixels (frames are square).
    pub size: u32,
    /// Jaw width (68-point 0 to 16) in frame pixels.
    pub face_width_px: f32,
    pub events: Vec<Event>,
    pub blinks: Vec<Blink>,
    pub nuisance: Nuisance,
    /// Per frame `[rotation_deg, shift_x_px, shift_y_px, scale]` of the head (empty when the
    /// head is still).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub head: Vec<[f32; 4]>,
    /// The 68 points of frame 0 before any expression, frame pixels (iBUG order).
    pub landmarks: Vec<Point>,
    /// The largest error of the written ground-truth flows, px: how far a flow vector's end
    /// is from where the renderer put that pixel (the inversion's residual).
    pub flow_residual_px: f32,
    pub files: ClipFiles,
}

/// The whole labels file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Labels {
    pub schema: String,
    pub generator: super::generate::Settings,
    pub clips: Vec<ClipLabel>,
}

impl Labels {
    /// Reads `DIR/labels.json`; a folder without one, or a file that is not a labels file,
    /// is bad input naming it.
    pub fn read(dir: &std::path::Path) -> crate::error::Result<Labels> {
        use crate::error::Error;
        let path = dir.join("labels.json");
        if !path.exists() {
            return Err(Error::bad_input(
                dir,
                "not a SynthME folder (no labels.json); make one with `actfer synth --out DIR`",
            ));
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(&path, format!("not a SynthME labels file: {e}")))
    }
}
